/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_API_H_INCLUDED_
#define _NGX_HTTP_CHAT_API_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/* ngx_http_chat_api.c: the route table and the access-token gate */
ngx_int_t ngx_http_chat_api_handler(ngx_http_request_t *r);

/* the route table, for the metrics: its size, route i's method and path,
 * and the index of the route a request matched (-1: none) */
ngx_uint_t ngx_http_chat_api_routes(void);
void ngx_http_chat_api_route_name(ngx_uint_t i, ngx_str_t *method,
    ngx_str_t *path);
ngx_int_t ngx_http_chat_api_route_index(ngx_http_request_t *r);
/* $chat_route, the route's pattern (not found: no route matched) */
ngx_int_t ngx_http_chat_api_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* ngx_http_chat_health.c */
ngx_int_t ngx_http_chat_healthz_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_readyz_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_API_H_INCLUDED_ */
