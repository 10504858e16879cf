/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_WAIT_H_INCLUDED_
#define _NGX_HTTP_CHAT_WAIT_H_INCLUDED_


#include "ngx_http_chat_core.h"


/*
 * A request that waits for an operation's answer (ops/, auth's session
 * operations).  The operation owns its steps and runs to its end; the
 * request only takes the answer.  When the request goes first, its
 * cleanup detaches the operation, which then drops the answer.
 *
 *     w = ngx_http_chat_wait(r, detach);      before the operation starts
 *     rc = start(..., done, w, &w->op);
 *     return ngx_http_chat_wait_started(r, w);   if rc says it started
 *
 *     done(w, ...): r = ngx_http_chat_wait_over(w); answer r;
 *                   ngx_http_chat_wait_end(r, status);
 */

typedef void (*ngx_http_chat_wait_detach_pt)(void *op);

typedef struct {
    ngx_http_request_t            *request;
    ngx_http_cleanup_t            *cleanup;
    void                          *op;        /* the operation's handle */
    ngx_http_chat_wait_detach_pt   detach;
    void                          *tell;      /* the adapter's: how to tell */
    ngx_uint_t                     kind;      /* the adapter's */
} ngx_http_chat_wait_t;


/* in r's pool, its cleanup reserved; NULL: no memory */
ngx_http_chat_wait_t *ngx_http_chat_wait(ngx_http_request_t *r,
    ngx_http_chat_wait_detach_pt detach);
/* the operation started: r waits (NGX_DONE, return it as it is) */
ngx_int_t ngx_http_chat_wait_started(ngx_http_request_t *r,
    ngx_http_chat_wait_t *w);
/* the same from the start's rc: NGX_OK waits, else 503 with Retry-After */
ngx_int_t ngx_http_chat_wait_start(ngx_http_request_t *r,
    ngx_http_chat_wait_t *w, ngx_int_t rc);
/* the answer came while r waits: r, which is no longer detached */
ngx_http_request_t *ngx_http_chat_wait_over(ngx_http_chat_wait_t *w);
/* r answered (or rc, an answer to send): finalized, posted requests run */
void ngx_http_chat_wait_end(ngx_http_request_t *r, ngx_int_t rc);

/* 503 service_unavailable, "a back end is unavailable" */
ngx_int_t ngx_http_chat_send_unavailable(ngx_http_request_t *r);
/* the same with Retry-After: 1 */
ngx_int_t ngx_http_chat_send_retry(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_WAIT_H_INCLUDED_ */
