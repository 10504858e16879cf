/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CALLS_H_INCLUDED_
#define _NGX_HTTP_CHAT_CALLS_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/* ngx_http_chat_calls.c: the /api/calls routes */
ngx_int_t ngx_http_chat_calls_initiate(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_calls_end(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_calls_history(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_calls_feedback(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_CALLS_H_INCLUDED_ */
