/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_API_H_INCLUDED_
#define _NGX_HTTP_CHAT_API_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/* ngx_http_chat_api.c: the route table and the access-token gate */
ngx_int_t ngx_http_chat_api_handler(ngx_http_request_t *r);

/* ngx_http_chat_health.c */
ngx_int_t ngx_http_chat_healthz_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_readyz_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_API_H_INCLUDED_ */
