/*
 * Copyright (C) ngx_chat_module authors
 *
 * GET /api/chats/ids: the ids of the chats the caller is in, read by the
 * operation sockets use too (ops/ngx_http_chat_op_chat_ids.c).
 */


#include "../util/ngx_http_chat_text.h"
#include "../ops/ngx_http_chat_op_chat_ids.h"
#include "ngx_http_chat_chats.h"


typedef struct {
    ngx_http_request_t           *request;
    ngx_http_cleanup_t           *cleanup;
    ngx_http_chat_op_chat_ids_t  *op;
} ngx_http_chat_ids_wait_t;


static void ngx_http_chat_ids_left(void *data);
static void ngx_http_chat_ids_answered(void *data, ngx_int_t rc,
    json_t *answer, const char *error);


ngx_int_t
ngx_http_chat_chats_ids(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_ids_wait_t  *w;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (!ngx_http_chat_is_oid(&ctx->user_id)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_ids_wait_t));
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->request = r;
    w->cleanup = ngx_http_cleanup_add(r, 0);
    if (w->cleanup == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_op_chat_ids(&ctx->user_id, ngx_http_chat_ids_answered,
                                  w, &w->op)
        != NGX_OK)
    {
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "a back end is unavailable, "
                                        "try again shortly");
    }

    w->cleanup->handler = ngx_http_chat_ids_left;
    w->cleanup->data = w;
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_chat_ids_left(void *data)
{
    ngx_http_chat_ids_wait_t  *w = data;

    ngx_http_chat_op_chat_ids_detach(w->op);
}


static void
ngx_http_chat_ids_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_ids_wait_t  *w = data;

    ngx_int_t            ret;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = w->request;
    c = r->connection;

    w->cleanup->handler = NULL;
    w->op = NULL;

    if (rc == NGX_DONE && answer) {
        ret = ngx_http_chat_send_json(r, NGX_HTTP_OK, answer);

    } else {
        json_decref(answer);
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "chat: cannot read a user's chats: %s", error);
        ret = ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "service_unavailable",
                                       "a back end is unavailable, "
                                       "try again shortly");
    }

    ngx_http_chat_finalize(r, ret);
    ngx_http_run_posted_requests(c);
}
