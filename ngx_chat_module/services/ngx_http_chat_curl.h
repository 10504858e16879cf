/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CURL_H_INCLUDED_
#define _NGX_HTTP_CHAT_CURL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <curl/curl.h>


/*
 * Outbound HTTP (SMS, push, media, readiness checks) over libcurl's multi
 * interface, driven by NGINX events and one cancelable timer per worker.
 */

typedef struct ngx_http_chat_curl_req_s  ngx_http_chat_curl_req_t;

typedef void (*ngx_http_chat_curl_done_pt)(ngx_http_chat_curl_req_t *req,
    void *data);

struct ngx_http_chat_curl_req_s {
    CURL                         *easy;
    struct curl_slist            *headers;

    /* response body, heap, NUL-terminated, capped at max_body */
    u_char                       *body;
    size_t                        body_len;
    size_t                        max_body;
    unsigned                      truncated:1;

    long                          status;      /* HTTP status, 0 if none */
    CURLcode                      result;      /* CURLE_OK on transfer */
    char                          errbuf[CURL_ERROR_SIZE];

    ngx_http_chat_curl_done_pt    done;
    void                         *data;
    ngx_log_t                    *log;
    ngx_queue_t                   queue;       /* active requests */
};


ngx_int_t ngx_http_chat_curl_init_process(ngx_cycle_t *cycle);
void ngx_http_chat_curl_exit_process(ngx_cycle_t *cycle);

/* creates the easy handle with safe defaults; the caller sets URL etc. */
ngx_http_chat_curl_req_t *ngx_http_chat_curl_create(ngx_log_t *log,
    ngx_msec_t timeout);
ngx_int_t ngx_http_chat_curl_add_header(ngx_http_chat_curl_req_t *req,
    const char *header);
/* starts the transfer; done() is called once, then the request is freed */
ngx_int_t ngx_http_chat_curl_start(ngx_http_chat_curl_req_t *req,
    ngx_http_chat_curl_done_pt done, void *data);
/* stops a transfer (or frees one never started); done() is not called */
void ngx_http_chat_curl_cancel(ngx_http_chat_curl_req_t *req);


#endif /* _NGX_HTTP_CHAT_CURL_H_INCLUDED_ */
