/*
 * Copyright (C) ngx_chat_module authors
 *
 * A request waiting for an operation: the one adapter of every route
 * that starts one (ngx_http_chat_wait.h).
 */


#include "ngx_http_chat_wait.h"


static void ngx_http_chat_wait_left(void *data);


ngx_http_chat_wait_t *
ngx_http_chat_wait(ngx_http_request_t *r, ngx_http_chat_wait_detach_pt detach)
{
    ngx_http_chat_wait_t  *w;

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_wait_t));
    if (w == NULL) {
        return NULL;
    }

    /* reserved now: once the operation started, nothing may fail */
    w->cleanup = ngx_http_cleanup_add(r, 0);
    if (w->cleanup == NULL) {
        return NULL;
    }

    w->request = r;
    w->detach = detach;

    return w;
}


ngx_int_t
ngx_http_chat_wait_started(ngx_http_request_t *r, ngx_http_chat_wait_t *w)
{
    w->cleanup->handler = ngx_http_chat_wait_left;
    w->cleanup->data = w;
    r->main->count++;

    /* an operation's steps are its back ends' (Redis, MongoDB, a provider) */
    ngx_http_chat_store_begin(r);

    return NGX_DONE;
}


ngx_int_t
ngx_http_chat_wait_start(ngx_http_request_t *r, ngx_http_chat_wait_t *w,
    ngx_int_t rc)
{
    if (rc != NGX_OK) {
        return ngx_http_chat_send_retry(r);
    }

    return ngx_http_chat_wait_started(r, w);
}


/* the request is going: the operation goes on, its answer is dropped */

static void
ngx_http_chat_wait_left(void *data)
{
    ngx_http_chat_wait_t  *w = data;

    if (w->op) {
        w->detach(w->op);
        w->op = NULL;
    }
}


ngx_http_request_t *
ngx_http_chat_wait_over(ngx_http_chat_wait_t *w)
{
    w->cleanup->handler = NULL;
    w->op = NULL;

    ngx_http_chat_store_end(w->request);

    return w->request;
}


void
ngx_http_chat_wait_end(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_chat_finalize(r, rc);
    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_http_chat_send_unavailable(ngx_http_request_t *r)
{
    return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "service_unavailable",
                                    "a back end is unavailable, "
                                    "try again shortly");
}


ngx_int_t
ngx_http_chat_send_retry(ngx_http_request_t *r)
{
    ngx_str_t  v;

    ngx_str_set(&v, "1");

    if (ngx_http_chat_add_header(r, "Retry-After", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_unavailable(r);
}
