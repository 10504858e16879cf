/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_STATS_H_INCLUDED_
#define _NGX_HTTP_CHAT_STATS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* chat_stats: the operator's counts of users, as JSON */
ngx_int_t ngx_http_chat_stats_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_STATS_H_INCLUDED_ */
