/*
 * Copyright (C) ngx_chat_module authors
 *
 * A forward as an operation: the check in the store, then one send
 * operation per chat, the copies collected; the loop is the operation's,
 * never a request's.
 */


#include "ngx_http_chat_op_forward.h"
#include "ngx_http_chat_op_input.h"
#include "ngx_http_chat_op_send.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "../core/ngx_http_chat_events.h"


#define NGX_HTTP_CHAT_FORWARD_MAX  10


/* what a forward keeps between its steps */
typedef struct {
    ngx_http_chat_op_store_t  *op;
    bson_oid_t                 user;
    bson_oid_t                 source;
    bson_oid_t                 source_chat;
    json_t                    *content;
    json_t                    *out;       /* the copies */
    char                       type[16];
    ngx_uint_t                 made;      /* copies new (not a retry's) */
    ngx_uint_t                 next;
    ngx_uint_t                 nchats;
    bson_oid_t                 chats[NGX_HTTP_CHAT_FORWARD_MAX];
} ngx_http_chat_op_forward_ctx_t;


static void ngx_http_chat_op_forward_checked(ngx_http_chat_op_store_t *op,
    void *data, ngx_int_t rc, json_t *answer, const char *error);
static void ngx_http_chat_op_forward_copy(
    ngx_http_chat_op_forward_ctx_t *ctx);
static void ngx_http_chat_op_forward_sent(void *data, ngx_int_t rc,
    json_t *json, const char *error);
static void ngx_http_chat_op_forward_end(ngx_http_chat_op_forward_ctx_t *ctx,
    ngx_int_t rc, json_t *answer, const char *error);
static void ngx_http_chat_op_forward_drop(void *data);


ngx_int_t
ngx_http_chat_op_forward(const bson_oid_t *user, const bson_oid_t *id,
    json_t *chat_ids, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused)
{
    u_char                           buf[sizeof(ngx_http_chat_msg_arg_t)
                                         + NGX_HTTP_CHAT_FORWARD_MAX
                                           * sizeof(bson_oid_t)];
    size_t                           n;
    ngx_int_t                        rc;
    const char                      *err;
    ngx_http_chat_msg_arg_t         *arg;
    ngx_http_chat_op_forward_ctx_t  *ctx;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));

    if (chat_ids == NULL || json_is_null(chat_ids)) {
        return ngx_http_chat_op_invalid(refused, "chatIds", "is required");
    }

    if (!json_is_array(chat_ids)) {
        return ngx_http_chat_op_invalid(refused, "chatIds",
                                        "must be an array");
    }

    n = json_array_size(chat_ids);

    if (n == 0 || n > NGX_HTTP_CHAT_FORWARD_MAX) {
        return ngx_http_chat_op_invalid(refused, "chatIds",
                                        "must hold 1 to 10 ids");
    }

    ctx = ngx_calloc(sizeof(ngx_http_chat_op_forward_ctx_t), ngx_cycle->log);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if ((err = ngx_http_chat_input_oids(chat_ids, ctx->chats, NULL))) {
        ngx_free(ctx);
        return ngx_http_chat_op_invalid(refused, "chatIds", err);
    }

    ctx->user = *user;
    ctx->source = *id;
    ctx->nchats = n;

    ngx_memzero(buf, sizeof(buf));
    arg = (ngx_http_chat_msg_arg_t *) buf;

    arg->user = *user;
    arg->id = *id;
    arg->limit = n;
    ngx_memcpy(arg + 1, ctx->chats, n * sizeof(bson_oid_t));

    rc = ngx_http_chat_op_store_after(ngx_http_chat_msg_forward_run,
                                      ngx_http_chat_op_forward_checked,
                                      ngx_http_chat_op_forward_drop, ctx,
                                      arg, sizeof(ngx_http_chat_msg_arg_t)
                                           + n * sizeof(bson_oid_t),
                                      done, data, &ctx->op);
    if (rc != NGX_OK) {
        ngx_free(ctx);
        return rc;
    }

    *out = ctx->op;

    return NGX_OK;
}


/* the check: the source's type, content and chat, then the copies */

static void
ngx_http_chat_op_forward_checked(ngx_http_chat_op_store_t *op, void *data,
    ngx_int_t rc, json_t *answer, const char *error)
{
    ngx_http_chat_op_forward_ctx_t *ctx = data;

    json_t  *type, *chat;

    ngx_http_chat_event_publish_committed(answer);

    if (rc != NGX_OK && rc != NGX_DONE) {
        ngx_http_chat_op_forward_end(ctx, rc, answer, error);
        return;
    }

    type = json_object_get(answer, "type");
    chat = json_object_get(answer, "chatId");

    ctx->content = json_incref(json_object_get(answer, "content"));
    ctx->out = json_array();

    if (!json_is_string(type) || ctx->content == NULL || ctx->out == NULL
        || json_string_length(type) > 15
        || !bson_oid_is_valid(json_string_value(chat), 24))
    {
        json_decref(answer);
        ngx_http_chat_op_forward_end(ctx, NGX_ERROR, NULL,
                                     "the source message is not readable");
        return;
    }

    ngx_memcpy(ctx->type, json_string_value(type), json_string_length(type));
    bson_oid_init_from_string(&ctx->source_chat, json_string_value(chat));

    json_decref(answer);

    ngx_http_chat_op_forward_copy(ctx);
}


/* the next copy, or the answer */

static void
ngx_http_chat_op_forward_copy(ngx_http_chat_op_forward_ctx_t *ctx)
{
    char                      src[25], dst[25];
    size_t                    len, size;
    json_t                   *json;
    ngx_int_t                 rc;
    ngx_http_chat_op_send_t  *send;
    ngx_http_chat_msg_arg_t  *arg;

    if (ctx->next == ctx->nchats) {
        json = json_pack("{s:O}", "messages", ctx->out);

        /* each copy made was pushed by its own send; a retry: NGX_DONE */
        ngx_http_chat_op_forward_end(ctx, ctx->made ? NGX_OK : NGX_DONE,
                                     json, "no memory");
        return;
    }

    len = json_dumpb(ctx->content, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    size = sizeof(ngx_http_chat_msg_arg_t) + len + 1;

    arg = ngx_calloc(size, ngx_cycle->log);
    if (arg == NULL || len == 0) {
        ngx_free(arg);
        ngx_http_chat_op_forward_end(ctx, NGX_ERROR, NULL, "no memory");
        return;
    }

    arg->content_len = json_dumpb(ctx->content, (char *) (arg + 1), len,
                                  JSON_COMPACT | JSON_ENCODE_ANY);

    arg->user = ctx->user;
    arg->chat = ctx->chats[ctx->next++];
    bson_oid_init(&arg->id, NULL);
    arg->forwarded = 1;
    arg->fwd_id = ctx->source;
    arg->fwd_chat = ctx->source_chat;
    ngx_memcpy(arg->type, ctx->type, sizeof(ctx->type));

    bson_oid_to_string(&ctx->source, src);
    bson_oid_to_string(&arg->chat, dst);
    ngx_sprintf((u_char *) arg->temp_id, "fw%s%s%Z", src, dst);

    /* each copy is a send of the user's (a copy made before is not) */
    rc = ngx_http_chat_op_send(arg, size, NGX_HTTP_CHAT_OP_SEND_CHECK
                                          |NGX_HTTP_CHAT_OP_SEND_BUDGET,
                               ngx_http_chat_op_forward_sent, ctx, &send);
    ngx_free(arg);

    if (rc != NGX_OK) {
        ngx_http_chat_op_forward_end(ctx, NGX_ERROR, NULL,
                                     "a back end is unavailable");
    }
}


/* a copy made, or found made by an earlier try, or refused */

static void
ngx_http_chat_op_forward_sent(void *data, ngx_int_t rc, json_t *json,
    const char *error)
{
    ngx_http_chat_op_forward_ctx_t *ctx = data;

    json_t  *m;

    if (rc != NGX_OK && rc != NGX_DONE) {
        ngx_http_chat_op_forward_end(ctx, rc, json, error);
        return;
    }

    if (rc == NGX_OK) {
        ctx->made++;
    }

    m = json_object_get(json, "message");

    if (m == NULL || json_array_append(ctx->out, m) != 0) {
        json_decref(json);
        ngx_http_chat_op_forward_end(ctx, NGX_ERROR, NULL,
                                     "a copy has no message");
        return;
    }

    json_decref(json);

    ngx_http_chat_op_forward_copy(ctx);
}


static void
ngx_http_chat_op_forward_end(ngx_http_chat_op_forward_ctx_t *ctx,
    ngx_int_t rc, json_t *answer, const char *error)
{
    ngx_http_chat_op_store_t  *op;

    op = ctx->op;
    ngx_http_chat_op_forward_drop(ctx);

    ngx_http_chat_op_store_end(op, rc, answer, error);
}


static void
ngx_http_chat_op_forward_drop(void *data)
{
    ngx_http_chat_op_forward_ctx_t *ctx = data;

    json_decref(ctx->content);
    json_decref(ctx->out);
    ngx_free(ctx);
}
