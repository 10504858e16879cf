/*
 * Copyright (C) ngx_chat_module authors
 *
 * What the access log takes from a request beyond NGINX's own variables
 * ($chat_request_id is in ngx_http_chat_http.c): the caller's user id
 * ($chat_user_id) and the time the request waited on its back ends
 * ($chat_store_time), from a step's start (a Redis command, a MongoDB
 * task, an operation, the token's session check) to its answer on the
 * event loop.  Steps that overlap count once: the clock runs while at
 * least one of them is pending.
 */


#include "ngx_http_chat_core.h"


void
ngx_http_chat_store_begin(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    if (ctx == NULL) {
        return;
    }

    if (ctx->store_waits++ == 0) {
        ctx->store_start = ngx_current_msec;
    }
}


void
ngx_http_chat_store_end(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    if (ctx == NULL || ctx->store_waits == 0) {
        return;
    }

    if (--ctx->store_waits == 0) {
        ctx->store_time += ngx_current_msec - ctx->store_start;
    }
}


/* seconds with milliseconds, as $request_time: "0.000" when none */

ngx_int_t
ngx_http_chat_store_time_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char               *p;
    ngx_msec_t            ms;
    ngx_http_chat_ctx_t  *ctx;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    ms = ctx ? ctx->store_time : 0;

    /* a step still pending when the line is written (the client left) */
    if (ctx && ctx->store_waits) {
        ms += ngx_current_msec - ctx->store_start;
    }

    v->len = ngx_sprintf(p, "%T.%03M", (time_t) (ms / 1000), ms % 1000) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/* the caller's user id once its access token checked: empty before */

ngx_int_t
ngx_http_chat_user_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    if (ctx == NULL || ctx->user_id.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ctx->user_id.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = ctx->user_id.data;

    return NGX_OK;
}
