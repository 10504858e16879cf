/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_STORIES_H_INCLUDED_
#define _NGX_HTTP_CHAT_STORIES_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/* ngx_http_chat_stories.c: the /api/stories routes */
ngx_int_t ngx_http_chat_stories_feed(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_stories_create(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_stories_mine(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_stories_get(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_stories_delete(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_stories_view(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_stories_views(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_stories_react(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_stories_unreact(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_stories_of_user(ngx_http_request_t *r);

/* ngx_http_chat_highlights.c: a user's highlights */
ngx_int_t ngx_http_chat_highlights_create(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_highlights_update(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_highlights_delete(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_highlights_of_user(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_STORIES_H_INCLUDED_ */
