/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_METRICS_PAGE_H_INCLUDED_
#define _NGX_HTTP_CHAT_METRICS_PAGE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* chat_metrics: the Prometheus page of every worker's counters */
ngx_int_t ngx_http_chat_metrics_handler(ngx_http_request_t *r);

/* the log phase: a REST answer counted by route, status class and time */
ngx_int_t ngx_http_chat_metrics_log(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_METRICS_PAGE_H_INCLUDED_ */
