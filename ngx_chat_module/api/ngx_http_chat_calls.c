/*
 * Copyright (C) ngx_chat_module authors
 *
 * The call routes: writes wait on their operation (ops/), the history is
 * one store step for the request.  Ringing, answering and the media's
 * signalling are the realtime endpoint's.
 */


#include "../core/ngx_http_chat_async.h"
#include "../ops/ngx_http_chat_op_call.h"
#include "ngx_http_chat_calls.h"
#include "ngx_http_chat_chats_int.h"
#include "ngx_http_chat_wait.h"


#define NGX_HTTP_CHAT_CALL_PAGE      20
#define NGX_HTTP_CHAT_CALL_PAGE_MAX  50


/* POST /api/calls/initiate {userId | chatId, type} */

ngx_int_t
ngx_http_chat_calls_initiate(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *w;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ngx_http_chat_chats_me(r, &me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w = ngx_http_chat_store_wait(r, ngx_http_chat_op_call_tell);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_op_call_initiate(&me, ctx->body, NULL,
                                        ngx_http_chat_store_answered, w,
                                        ngx_http_chat_store_op(w), &refused);

    return ngx_http_chat_op_started(r, w, rc, &refused);
}


/* PUT /api/calls/:id/end, and POST /api/calls/:id/feedback */

static ngx_int_t
ngx_http_chat_calls_write(ngx_http_request_t *r, ngx_uint_t what)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, id;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *w;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ngx_http_chat_chats_me(r, &me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_chats_param(r, &id) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such call");
    }

    w = ngx_http_chat_store_wait(r, ngx_http_chat_op_call_tell);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (what == NGX_HTTP_CHAT_CALL_FEEDBACK) {
        rc = ngx_http_chat_op_call_feedback(&me, &id, ctx->body,
                                            ngx_http_chat_store_answered, w,
                                            ngx_http_chat_store_op(w),
                                            &refused);

    } else {
        rc = ngx_http_chat_op_call(&me, what, &id, NULL, NULL, NULL,
                                   ngx_http_chat_store_answered, w,
                                   ngx_http_chat_store_op(w), &refused);
    }

    return ngx_http_chat_op_started(r, w, rc, &refused);
}


ngx_int_t
ngx_http_chat_calls_end(ngx_http_request_t *r)
{
    return ngx_http_chat_calls_write(r, NGX_HTTP_CHAT_CALL_END);
}


ngx_int_t
ngx_http_chat_calls_feedback(ngx_http_request_t *r)
{
    return ngx_http_chat_calls_write(r, NGX_HTTP_CHAT_CALL_FEEDBACK);
}


static ngx_int_t
ngx_http_chat_calls_listed(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    json_t  *json;

    if (t->rc != NGX_OK || t->result == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: call history failed in mongo: %s",
                      t->error.message);
        return ngx_http_chat_send_unavailable(r);
    }

    json = t->result;
    t->result = NULL;

    return ngx_http_chat_send_json(r, NGX_HTTP_OK, json);
}


/* GET /api/calls/history?cursor=&limit= */

ngx_int_t
ngx_http_chat_calls_history(ngx_http_request_t *r)
{
    ngx_int_t                  n, rc;
    ngx_str_t                  v;
    ngx_http_chat_call_arg_t  *arg;

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_call_arg_t));
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    arg->what = NGX_HTTP_CHAT_CALL_HISTORY;
    arg->limit = NGX_HTTP_CHAT_CALL_PAGE;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &v) == NGX_OK && v.len) {
        n = (v.len <= 9) ? ngx_atoi(v.data, v.len) : NGX_ERROR;

        if (n == NGX_ERROR || n < 1 || n > NGX_HTTP_CHAT_CALL_PAGE_MAX) {
            return ngx_http_chat_send_invalid(r, "limit",
                                              "must be between 1 and 50");
        }

        arg->limit = (ngx_uint_t) n;
    }

    /* "<startedAt ms>.<id>" of the page's last call, opaque to clients */
    rc = ngx_http_chat_cursor_arg(r, &arg->cursor_ms, &arg->cursor);

    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "cursor", "is not valid");
    }

    arg->has_cursor = (rc == NGX_OK);

    return ngx_http_chat_mongo_request(r, ngx_http_chat_call_history_run,
                                       ngx_http_chat_calls_listed, arg,
                                       sizeof(ngx_http_chat_call_arg_t));
}
