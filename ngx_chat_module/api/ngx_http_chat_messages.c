/*
 * Copyright (C) ngx_chat_module authors
 *
 * The message routes: a send, a chat's messages by sequence, one message
 * and its receipts, my markers, an edit, a delete, a reaction, a
 * forward; the changes are operations (ops/) the routes adapt.
 */


#include "ngx_http_chat_chats_int.h"
#include "../ops/ngx_http_chat_op_send.h"
#include "../ops/ngx_http_chat_op_message.h"
#include "../ops/ngx_http_chat_op_forward.h"


#define NGX_HTTP_CHAT_MESSAGES_LIMIT 50


static ngx_int_t ngx_http_chat_send_overloaded(ngx_http_request_t *r);
static void ngx_http_chat_send_detach(void *op);


/* POST /api/messages {chatId, tempId, type, content, replyTo?} */

ngx_int_t
ngx_http_chat_messages_send(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me;
    const char                  *field, *err;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    /* the send operation runs to its end, the request takes its answer */
    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_tell);
    if (st == NULL || ngx_http_chat_chats_me(r, &me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st->detach = ngx_http_chat_send_detach;

    /* a message as a client sends it, checked by the operation */
    rc = ngx_http_chat_op_send_message(&me, ctx->body,
                                       NGX_HTTP_CHAT_OP_SEND_CHECK
                                       |NGX_HTTP_CHAT_OP_SEND_MARK
                                       |NGX_HTTP_CHAT_OP_SEND_CACHE
                                       |NGX_HTTP_CHAT_OP_SEND_BOUND
                                       |NGX_HTTP_CHAT_OP_SEND_BUDGET,
                                       ngx_http_chat_store_answered, st,
                                       (ngx_http_chat_op_send_t **) &st->op,
                                       &field, &err);

    if (rc == NGX_AGAIN) {
        /* the worker's sends in flight are at chat_send_max_pending */
        return ngx_http_chat_send_overloaded(r);
    }

    return ngx_http_chat_store_started(r, st, rc, field, err, NULL);
}


static ngx_int_t
ngx_http_chat_send_overloaded(ngx_http_request_t *r)
{
    ngx_str_t  v;

    ngx_str_set(&v, "1");

    if (ngx_http_chat_add_header(r, "Retry-After", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "overloaded",
                                    "too many messages are being stored, "
                                    "try again shortly");
}


static void
ngx_http_chat_send_detach(void *op)
{
    ngx_http_chat_op_send_detach(op);
}


/* GET /api/chats/:id/messages?before=&after=&limit= */

ngx_int_t
ngx_http_chat_messages_list(ngx_http_request_t *r)
{
    int64_t                   n;
    ngx_int_t                 rc;
    ngx_http_chat_msg_arg_t  *arg;

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_msg_arg_t));
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_chats_param(r, &arg->chat) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such chat");
    }

    arg->limit = NGX_HTTP_CHAT_MESSAGES_LIMIT;

    rc = ngx_http_chat_chats_arg_num(r, "limit", 1, 100, &n);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "limit",
                                          "must be between 1 and 100");
    }

    if (rc == NGX_OK) {
        arg->limit = (ngx_uint_t) n;
    }

    rc = ngx_http_chat_chats_arg_num(r, "before", 1, NGX_MAX_OFF_T_VALUE,
                                     &arg->before);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "before",
                                          "must be a positive number");
    }

    arg->has_before = (rc == NGX_OK);

    rc = ngx_http_chat_chats_arg_num(r, "after", 0, NGX_MAX_OFF_T_VALUE,
                                     &arg->after);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "after",
                                          "must be a number, 0 or more");
    }

    arg->has_after = (rc == NGX_OK);

    return ngx_http_chat_mongo_request(r, ngx_http_chat_msg_list_run,
                                       ngx_http_chat_chats_done, arg,
                                       sizeof(ngx_http_chat_msg_arg_t));
}


/* the routes that need only the caller and a message :id */

static ngx_int_t
ngx_http_chat_messages_by_id(ngx_http_request_t *r,
    ngx_http_chat_mongo_run_pt run)
{
    ngx_http_chat_msg_arg_t  *arg;

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_msg_arg_t));
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_chats_param(r, &arg->id) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such message");
    }

    return ngx_http_chat_mongo_request(r, run, ngx_http_chat_chats_done, arg,
                                       sizeof(ngx_http_chat_msg_arg_t));
}


/* GET /api/messages/:id */

ngx_int_t
ngx_http_chat_messages_get(ngx_http_request_t *r)
{
    return ngx_http_chat_messages_by_id(r, ngx_http_chat_msg_get_run);
}


/* POST /api/chats/:id/read and /delivered {upToSeq} */

static ngx_int_t
ngx_http_chat_chats_marker(ngx_http_request_t *r, ngx_uint_t read)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat;
    const char                  *field, *err;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_tell);
    if (st == NULL || ngx_http_chat_chats_me(r, &me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_chats_param(r, &chat) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such chat");
    }

    rc = ngx_http_chat_op_marker(&me, &chat,
                                 json_object_get(ctx->body, "upToSeq"), read,
                                 ngx_http_chat_store_answered, st,
                                 ngx_http_chat_store_op(st),
                                 &field, &err);

    return ngx_http_chat_store_started(r, st, rc, field, err, NULL);
}


ngx_int_t
ngx_http_chat_chats_read(ngx_http_request_t *r)
{
    return ngx_http_chat_chats_marker(r, 1);
}


ngx_int_t
ngx_http_chat_chats_delivered(ngx_http_request_t *r)
{
    return ngx_http_chat_chats_marker(r, 0);
}


/* GET /api/messages/:id/receipts */

ngx_int_t
ngx_http_chat_messages_receipts(ngx_http_request_t *r)
{
    return ngx_http_chat_messages_by_id(r, ngx_http_chat_msg_receipts_run);
}


/*
 * The caller and the message :id of an operation on a message: NGX_OK,
 * or the route's answer (a 404 when :id is not an id)
 */

static ngx_int_t
ngx_http_chat_msg_op_ids(ngx_http_request_t *r, bson_oid_t *me,
    bson_oid_t *id, ngx_int_t *rc)
{
    if (ngx_http_chat_chats_me(r, me) != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    if (ngx_http_chat_chats_param(r, id) != NGX_OK) {
        *rc = ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                       "no such message");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* PUT /api/messages/:id {content} */

ngx_int_t
ngx_http_chat_messages_edit(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, id;
    const char                  *field, *err;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_message_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_msg_op_ids(r, &me, &id, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_edit(&me, &id,
                               json_object_get(ctx->body, "content"),
                               ngx_http_chat_store_answered, st,
                               ngx_http_chat_store_op(st),
                               &field, &err);

    return ngx_http_chat_store_started(r, st, rc, field, err, NULL);
}


/* DELETE /api/messages/:id?forEveryone=true */

ngx_int_t
ngx_http_chat_messages_delete(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    v;
    bson_oid_t                   me, id;
    ngx_uint_t                   everyone;
    ngx_http_chat_store_wait_t  *st;

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_message_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    everyone = 0;

    if (ngx_http_arg(r, (u_char *) "forEveryone", 11, &v) == NGX_OK) {
        if (v.len == 4 && ngx_strncmp(v.data, "true", 4) == 0) {
            everyone = 1;

        } else if (!(v.len == 5 && ngx_strncmp(v.data, "false", 5) == 0)) {
            return ngx_http_chat_send_invalid(r, "forEveryone",
                                              "must be true or false");
        }
    }

    if (ngx_http_chat_msg_op_ids(r, &me, &id, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_delete(&me, &id, everyone,
                                 ngx_http_chat_store_answered, st,
                                 ngx_http_chat_store_op(st));

    return ngx_http_chat_store_started(r, st, rc, NULL, NULL, NULL);
}


/* POST /api/messages/:id/react {emoji} */

ngx_int_t
ngx_http_chat_messages_react(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, id;
    const char                  *field, *err;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_message_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_msg_op_ids(r, &me, &id, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_react(&me, &id,
                                json_object_get(ctx->body, "emoji"),
                                ngx_http_chat_store_answered, st,
                                ngx_http_chat_store_op(st),
                                &field, &err);

    return ngx_http_chat_store_started(r, st, rc, field, err, NULL);
}


/* POST /api/messages/:id/forward {chatIds} */

ngx_int_t
ngx_http_chat_messages_forward(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, id;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_msg_op_ids(r, &me, &id, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_forward(&me, &id,
                                  json_object_get(ctx->body, "chatIds"),
                                  ngx_http_chat_store_answered, st,
                                  ngx_http_chat_store_op(st),
                                  &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}
