/*
 * Copyright (C) ngx_chat_module authors
 *
 * GET /api/chats/ids: the ids of the chats the caller is in, read by the
 * operation sockets use too (ops/ngx_http_chat_op_chat_ids.c).
 */


#include "../util/ngx_http_chat_text.h"
#include "../ops/ngx_http_chat_op_chat_ids.h"
#include "ngx_http_chat_chats.h"
#include "ngx_http_chat_wait.h"


static void ngx_http_chat_ids_detach(void *op);


ngx_int_t
ngx_http_chat_chats_ids(ngx_http_request_t *r)
{
    ngx_int_t              rc;
    ngx_http_chat_ctx_t   *ctx;
    ngx_http_chat_wait_t  *w;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (!ngx_http_chat_is_oid(&ctx->user_id)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w = ngx_http_chat_read_wait(r, ngx_http_chat_ids_detach,
                                "a user's chats");
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_op_chat_ids(&ctx->user_id, ngx_http_chat_read_answered,
                                   w, (ngx_http_chat_op_chat_ids_t **) &w->op);

    return ngx_http_chat_wait_start(r, w, rc);
}


static void
ngx_http_chat_ids_detach(void *op)
{
    ngx_http_chat_op_chat_ids_detach(op);
}
