/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_USERS_API_H_INCLUDED_
#define _NGX_HTTP_CHAT_USERS_API_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/* the route handlers under /api/users/ */
ngx_int_t ngx_http_chat_profile_get(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_profile_put(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_user_get(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_search(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_contacts_add(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_contacts_list(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_contacts_delete(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_contacts_sync(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_block(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_unblock(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_blocked_list(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_USERS_API_H_INCLUDED_ */
