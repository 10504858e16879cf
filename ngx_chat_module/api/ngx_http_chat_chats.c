/*
 * Copyright (C) ngx_chat_module authors
 *
 * Chats and messages: private and group chats, my chats by activity,
 * sending with per-chat sequence numbers from Redis, paging by sequence.
 */


#include "../core/ngx_http_chat_async.h"
#include "../auth/ngx_http_chat_auth.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "ngx_http_chat_chats.h"
#include "../ops/ngx_http_chat_op_send.h"
#include "../ops/ngx_http_chat_op_input.h"
#include "../ops/ngx_http_chat_op_message.h"
#include "../ops/ngx_http_chat_op_chat.h"
#include "../ops/ngx_http_chat_op_group.h"
#include "../ops/ngx_http_chat_op_forward.h"
#include "../util/ngx_http_chat_text.h"


#define NGX_HTTP_CHAT_CHATS_LIMIT    20
#define NGX_HTTP_CHAT_MESSAGES_LIMIT 50


/* a request that waits for its send */
typedef struct {
    ngx_http_chat_op_send_t   *op;
    ngx_http_cleanup_t        *cleanup;
} ngx_http_chat_send_t;


static ngx_int_t ngx_http_chat_send_op(ngx_http_request_t *r,
    ngx_http_chat_send_t *st, json_t *body, ngx_uint_t flags);
static ngx_int_t ngx_http_chat_chats_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_chats_reply(ngx_http_request_t *r,
    ngx_int_t rc, json_t *json, const char *error);


static ngx_int_t
ngx_http_chat_chats_done(ngx_http_request_t *r, ngx_http_chat_mongo_task_t *t)
{
    json_t  *json;

    json = t->result;
    t->result = NULL;

    /* what the commit caused, said by the store, whoever still waits */
    ngx_http_chat_event_publish_committed(json);

    return ngx_http_chat_chats_reply(r, t->rc, json, t->error.message);
}


/* the answer of a route from the store's (or an operation's) outcome */

static ngx_int_t
ngx_http_chat_chats_reply(ngx_http_request_t *r, ngx_int_t rc, json_t *json,
    const char *error)
{
    ngx_int_t                ret;
    ngx_http_chat_op_told_t  told;

    ngx_http_chat_op_tell(rc, json, r->method == NGX_HTTP_POST, &told);

    if (told.answer) {
        return ngx_http_chat_send_json(r, told.status, told.answer);
    }

    if (told.status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: chats query failed: %s", error);
    }

    ret = ngx_http_chat_send_error_details(r, told.status, told.code,
                                           told.message, told.details);
    json_decref(told.keep);

    return ret;
}


static ngx_int_t
ngx_http_chat_chats_me(ngx_http_request_t *r, bson_oid_t *me)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (!ngx_http_chat_is_oid(&ctx->user_id)) {
        return NGX_ERROR;
    }

    bson_oid_init_from_string_unsafe(me, (char *) ctx->user_id.data);

    return NGX_OK;
}


/*
 * A route that waits for a store operation (ops/): the operation runs to
 * its end in any case (its events follow its commit), the request only
 * takes its answer
 */

typedef void (*ngx_http_chat_op_tell_pt)(ngx_int_t rc, json_t *answer,
    ngx_uint_t created, ngx_http_chat_op_told_t *told);

typedef struct {
    ngx_http_request_t        *request;
    ngx_http_chat_op_store_t  *op;
    ngx_http_cleanup_t        *cleanup;
    ngx_http_chat_op_tell_pt   tell;     /* as the operation's kind says */
} ngx_http_chat_store_wait_t;


static ngx_int_t ngx_http_chat_store_started(ngx_http_request_t *r,
    ngx_http_chat_store_wait_t *st, ngx_int_t rc, const char *field,
    const char *err, json_t *details);
static void ngx_http_chat_store_left(void *data);
static void ngx_http_chat_store_answered(void *data, ngx_int_t rc,
    json_t *answer, const char *error);


/* an operation with refusals of its input (ngx_http_chat_op.h) */

static ngx_int_t
ngx_http_chat_op_started(ngx_http_request_t *r,
    ngx_http_chat_store_wait_t *st, ngx_int_t rc,
    ngx_http_chat_op_refused_t *refused)
{
    return ngx_http_chat_store_started(r, st, rc, refused->field,
                                       refused->err, refused->details);
}


static ngx_http_chat_store_wait_t *
ngx_http_chat_store_wait(ngx_http_request_t *r, ngx_http_chat_op_tell_pt tell)
{
    ngx_http_chat_store_wait_t  *st;

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_store_wait_t));
    if (st == NULL) {
        return NULL;
    }

    st->cleanup = ngx_http_cleanup_add(r, 0);
    if (st->cleanup == NULL) {
        return NULL;
    }

    st->request = r;
    st->tell = tell;

    return st;
}


/* rc: the operation's start (ngx_http_chat_op.h); details are taken */

static ngx_int_t
ngx_http_chat_store_started(ngx_http_request_t *r,
    ngx_http_chat_store_wait_t *st, ngx_int_t rc, const char *field,
    const char *err, json_t *details)
{
    switch (rc) {

    case NGX_OK:
        st->cleanup->handler = ngx_http_chat_store_left;
        st->cleanup->data = st;
        r->main->count++;
        return NGX_DONE;

    case NGX_DECLINED:
        if (err == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_chat_send_invalid(r, field, err);

    case NGX_ABORT:
        return ngx_http_chat_send_error_details(r,
                                            NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY,
                                            field, err, details);

    default:
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "a back end is unavailable, "
                                        "try again shortly");
    }
}


static void
ngx_http_chat_store_left(void *data)
{
    ngx_http_chat_store_wait_t  *st = data;

    ngx_http_chat_op_store_detach(st->op);
}


static void
ngx_http_chat_store_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_store_wait_t  *st = data;

    ngx_int_t                 ret;
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_chat_op_told_t   told;

    r = st->request;
    c = r->connection;

    st->cleanup->handler = NULL;
    st->op = NULL;

    st->tell(rc, answer, r->method == NGX_HTTP_POST, &told);

    if (told.answer) {
        ret = ngx_http_chat_send_json(r, told.status, told.answer);

    } else {
        if (told.status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "chat: chats query failed: %s", error);
        }

        ret = ngx_http_chat_send_error_details(r, told.status, told.code,
                                               told.message, told.details);
        json_decref(told.keep);
    }

    ngx_http_chat_finalize(r, ret);
    ngx_http_run_posted_requests(c);
}


/* POST /api/chats/private {userId} */

ngx_int_t
ngx_http_chat_chats_private(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_tell);
    if (st == NULL || ngx_http_chat_chats_me(r, &me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_op_chat_private(&me, ctx->body,
                                       ngx_http_chat_store_answered, st,
                                       &st->op, &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}



/* POST /api/chats/group {name, memberIds, description?, avatar?} */

ngx_int_t
ngx_http_chat_chats_group(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_tell);
    if (st == NULL || ngx_http_chat_chats_me(r, &me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_op_chat_group(&me, ctx->body,
                                     ngx_http_chat_store_answered, st,
                                     &st->op, &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}



/* a positive number of the query string: NGX_OK, NGX_DECLINED, NGX_ERROR */

static ngx_int_t
ngx_http_chat_chats_arg_num(ngx_http_request_t *r, const char *name,
    int64_t min, int64_t max, int64_t *out)
{
    int64_t    n;
    ngx_str_t  v;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (v.len == 0 || v.len > 18) {
        return NGX_ERROR;
    }

    n = ngx_atoof(v.data, v.len);

    if (n == NGX_ERROR || n < min || n > max) {
        return NGX_ERROR;
    }

    *out = n;

    return NGX_OK;
}


/* GET /api/chats?cursor=&limit= */

/*
 * ?cursor=<ms>.<id> of a list ordered by a time and an id: NGX_OK with
 * both, NGX_DECLINED when there is none, NGX_ERROR when it is not valid
 */
static ngx_int_t
ngx_http_chat_cursor_arg(ngx_http_request_t *r, int64_t *ms, bson_oid_t *oid)
{
    u_char     *dot;
    int64_t     n;
    ngx_str_t   cursor, id;

    if (ngx_http_arg(r, (u_char *) "cursor", 6, &cursor) != NGX_OK) {
        return NGX_DECLINED;
    }

    dot = ngx_strlchr(cursor.data, cursor.data + cursor.len, '.');

    if (dot == NULL || dot == cursor.data || dot - cursor.data > 15) {
        return NGX_ERROR;
    }

    id.data = dot + 1;
    id.len = cursor.data + cursor.len - id.data;
    n = ngx_atoof(cursor.data, dot - cursor.data);

    if (n == NGX_ERROR || !ngx_http_chat_is_oid(&id)) {
        return NGX_ERROR;
    }

    *ms = n;
    bson_oid_init_from_string_unsafe(oid, (char *) id.data);

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_chats_list(ngx_http_request_t *r)
{
    int64_t                     n;
    ngx_int_t                   rc;
    ngx_http_chat_chats_arg_t  *arg;

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_chats_arg_t));
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    arg->limit = NGX_HTTP_CHAT_CHATS_LIMIT;

    rc = ngx_http_chat_chats_arg_num(r, "limit", 1, 50, &n);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "limit",
                                          "must be between 1 and 50");
    }

    if (rc == NGX_OK) {
        arg->limit = (ngx_uint_t) n;
    }

    /* "<updatedAt ms>.<id>" */
    rc = ngx_http_chat_cursor_arg(r, &arg->cursor_ms, &arg->cursor_id);

    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "cursor", "is not valid");
    }

    arg->has_cursor = (rc == NGX_OK);

    return ngx_http_chat_mongo_request(r, ngx_http_chat_chat_list_run,
                                       ngx_http_chat_chats_done, arg,
                                       sizeof(ngx_http_chat_chats_arg_t));
}


/* POST /api/messages {chatId, tempId, type, content, replyTo?} */

ngx_int_t
ngx_http_chat_messages_send(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t   *ctx;
    ngx_http_chat_send_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_send_t));
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->state = st;

    return ngx_http_chat_send_op(r, st, ctx->body,
                                 NGX_HTTP_CHAT_OP_SEND_CHECK
                                 |NGX_HTTP_CHAT_OP_SEND_MARK
                                 |NGX_HTTP_CHAT_OP_SEND_CACHE);
}


static void ngx_http_chat_send_left(void *data);
static void ngx_http_chat_send_answered(void *data, ngx_int_t rc,
    json_t *answer, const char *error);


/*
 * The route waits for a send operation (ops/): the operation runs to its
 * end in any case, the request only takes its answer
 */

static ngx_int_t
ngx_http_chat_send_op(ngx_http_request_t *r, ngx_http_chat_send_t *st,
    json_t *body, ngx_uint_t flags)
{
    ngx_int_t            rc;
    bson_oid_t           me;
    const char          *field, *err;
    ngx_http_cleanup_t  *cln;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a message as a client sends it, checked by the operation */
    if (ngx_http_chat_chats_me(r, &me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_op_send_message(&me, body, flags,
                                       ngx_http_chat_send_answered, r,
                                       &st->op, &field, &err);

    if (rc == NGX_DECLINED) {
        return ngx_http_chat_send_invalid(r, field, err);
    }

    if (rc != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "a back end is unavailable, "
                                        "try again shortly");
    }

    cln->handler = ngx_http_chat_send_left;
    cln->data = st;
    st->cleanup = cln;

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_chat_send_left(void *data)
{
    ngx_http_chat_send_t  *st = data;

    ngx_http_chat_op_send_detach(st->op);
}


static void
ngx_http_chat_send_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_request_t  *r = data;

    ngx_connection_t      *c;
    ngx_http_chat_ctx_t   *ctx;
    ngx_http_chat_send_t  *st;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    st = ctx->state;

    st->cleanup->handler = NULL;
    st->op = NULL;

    ngx_http_chat_finalize(r, ngx_http_chat_chats_reply(r, rc, answer, error));
    ngx_http_run_posted_requests(c);
}


/* the :id of the route as an ObjectId; NGX_DECLINED when it is not one */

static ngx_int_t
ngx_http_chat_chats_param(ngx_http_request_t *r, bson_oid_t *oid)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ctx->nparams == 0 || !ngx_http_chat_is_oid(&ctx->params[0])) {
        return NGX_DECLINED;
    }

    bson_oid_init_from_string_unsafe(oid, (char *) ctx->params[0].data);

    return NGX_OK;
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
                                 ngx_http_chat_store_answered, st, &st->op,
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
                               ngx_http_chat_store_answered, st, &st->op,
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
                                 ngx_http_chat_store_answered, st, &st->op);

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
                                ngx_http_chat_store_answered, st, &st->op,
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
                                  ngx_http_chat_store_answered, st, &st->op,
                                  &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}



static ngx_uint_t
ngx_http_chat_utf8_valid(ngx_str_t *s)
{
    u_char  *p, *last;

    p = s->data;
    last = s->data + s->len;

    while (p < last) {
        if (*p < 0x80) {
            p++;

        } else if (ngx_utf8_decode(&p, last - p) > 0x10ffff) {
            return 0;
        }
    }

    return 1;
}


/*
 * GET /api/chats/:id/messages/search?q=&before=&cursor=&limit= and
 * GET /api/messages/search?q=&cursor=&limit=: q becomes a regex with
 * every metacharacter escaped
 */

static ngx_int_t
ngx_http_chat_messages_search(ngx_http_request_t *r, ngx_uint_t all)
{
    u_char                   *end;
    int64_t                   n;
    ngx_int_t                 rc;
    ngx_str_t                 q, id;
    ngx_http_chat_msg_arg_t  *arg;

    if (ngx_http_arg(r, (u_char *) "q", 1, &q) != NGX_OK || q.len == 0) {
        return ngx_http_chat_send_invalid(r, "q", "is required");
    }

    /* a + in a query string is a space */
    for (end = q.data; end < q.data + q.len; end++) {
        if (*end == '+') {
            *end = ' ';
        }
    }

    id.data = ngx_pnalloc(r->pool, q.len);
    if (id.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    end = id.data;
    ngx_unescape_uri(&end, &q.data, q.len, 0);
    q.data = id.data;
    q.len = end - id.data;

    if (q.len == 0 || !ngx_http_chat_utf8_valid(&q)
        || ngx_utf8_length(q.data, q.len) > 100
        || ngx_http_chat_input_controls(&q, 0))
    {
        return ngx_http_chat_send_invalid(r, "q",
                                          "must be 1 to 100 characters of "
                                          "UTF-8, no control characters");
    }

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_msg_arg_t)
                               + 2 * q.len + 1);
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    end = ngx_http_chat_regex_escape((u_char *) (arg + 1), q.data, q.len);
    arg->content_len = end - (u_char *) (arg + 1);
    arg->all = all;

    if (!all && ngx_http_chat_chats_param(r, &arg->chat) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such chat");
    }

    arg->limit = NGX_HTTP_CHAT_CHATS_LIMIT;

    rc = ngx_http_chat_chats_arg_num(r, "limit", 1, 50, &n);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "limit",
                                          "must be between 1 and 50");
    }

    if (rc == NGX_OK) {
        arg->limit = (ngx_uint_t) n;
    }

    if (!all) {
        rc = ngx_http_chat_chats_arg_num(r, "before", 1, NGX_MAX_OFF_T_VALUE,
                                         &arg->before);
        if (rc == NGX_DECLINED) {
            rc = ngx_http_chat_chats_arg_num(r, "cursor", 1,
                                             NGX_MAX_OFF_T_VALUE,
                                             &arg->before);
        }

        if (rc == NGX_ERROR) {
            return ngx_http_chat_send_invalid(r, "before",
                                              "must be a positive number");
        }

        arg->has_before = (rc == NGX_OK);

    } else {
        /* "<createdAt ms>.<id>" */
        rc = ngx_http_chat_cursor_arg(r, &arg->cursor_ms, &arg->cursor_id);

        if (rc == NGX_ERROR) {
            return ngx_http_chat_send_invalid(r, "cursor", "is not valid");
        }

        arg->has_cursor = (rc == NGX_OK);
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_msg_search_run,
                                       ngx_http_chat_chats_done, arg,
                                       sizeof(ngx_http_chat_msg_arg_t)
                                       + 2 * q.len + 1);
}


ngx_int_t
ngx_http_chat_chats_search(ngx_http_request_t *r)
{
    return ngx_http_chat_messages_search(r, 0);
}


ngx_int_t
ngx_http_chat_messages_search_all(ngx_http_request_t *r)
{
    return ngx_http_chat_messages_search(r, 1);
}


/* PUT /api/chats/:id/settings {muted?, mutedUntil?, archived?, pinned?} */

ngx_int_t
ngx_http_chat_chats_settings(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_tell);
    if (st == NULL || ngx_http_chat_chats_me(r, &me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_chats_param(r, &chat) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such chat");
    }

    rc = ngx_http_chat_op_chat_settings(&me, &chat, ctx->body,
                                        ngx_http_chat_store_answered, st,
                                        &st->op, &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}



/*
 * Group administration: each change is an operation (ops/), which runs
 * its steps (the store's change, its system message, the events) to their
 * end whoever waits; the routes only adapt it.  Reading a group is one
 * MongoDB step.
 */

static ngx_int_t ngx_http_chat_group_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);


/* the argument of reading the chat :id; NULL when answered */

static ngx_http_chat_group_arg_t *
ngx_http_chat_group_arg(ngx_http_request_t *r, ngx_uint_t op, size_t extra,
    ngx_int_t *rc)
{
    ngx_http_chat_group_arg_t  *arg;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_group_arg_t) + extra);
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->user) != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NULL;
    }

    if (ngx_http_chat_chats_param(r, &arg->chat) != NGX_OK) {
        *rc = ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                       "no such chat");
        return NULL;
    }

    arg->op = op;
    arg->max_size = cmcf->group_max_size;

    return arg;
}


static ngx_int_t
ngx_http_chat_group_post(ngx_http_request_t *r,
    ngx_http_chat_group_arg_t *arg, size_t extra)
{
    return ngx_http_chat_mongo_request(r, ngx_http_chat_group_run,
                                       ngx_http_chat_group_done, arg,
                                       sizeof(ngx_http_chat_group_arg_t)
                                       + extra);
}


/* GET /api/chats/:id: the chat with every member and their roles */

ngx_int_t
ngx_http_chat_chats_get(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_chat_group_arg_t  *arg;

    arg = ngx_http_chat_group_arg(r, NGX_HTTP_CHAT_GROUP_GET, 0, &rc);
    if (arg == NULL) {
        return rc;
    }

    return ngx_http_chat_group_post(r, arg, 0);
}


static ngx_int_t
ngx_http_chat_group_done(ngx_http_request_t *r, ngx_http_chat_mongo_task_t *t)
{
    json_t                   *json;
    ngx_int_t                 ret;
    ngx_http_chat_op_told_t   told;

    json = t->result;
    t->result = NULL;

    ngx_http_chat_event_publish_committed(json);

    ngx_http_chat_op_group_tell(t->rc, json, 0, &told);

    if (told.answer) {
        return ngx_http_chat_send_json(r, told.status, told.answer);
    }

    if (told.status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: chats query failed: %s", t->error.message);
    }

    ret = ngx_http_chat_send_error_details(r, told.status, told.code,
                                           told.message, told.details);
    json_decref(told.keep);

    return ret;
}


/*
 * The caller, the chat :id and, when member, the member :userId of a
 * group change: NGX_OK, or the route's answer (a 404 when one is not an
 * id)
 */

static ngx_int_t
ngx_http_chat_group_ids(ngx_http_request_t *r, bson_oid_t *me,
    bson_oid_t *chat, bson_oid_t *member, ngx_int_t *rc)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ngx_http_chat_chats_me(r, me) != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    if (ngx_http_chat_chats_param(r, chat) != NGX_OK) {
        *rc = ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                       "no such chat");
        return NGX_ERROR;
    }

    if (member == NULL) {
        return NGX_OK;
    }

    if (ctx->nparams < 2 || !ngx_http_chat_is_oid(&ctx->params[1])) {
        *rc = ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                       "no such member");
        return NGX_ERROR;
    }

    bson_oid_init_from_string_unsafe(member, (char *) ctx->params[1].data);

    return NGX_OK;
}


/*
 * PUT /api/chats/:id {name?, description?, avatar?, onlyAdminsCanSend?,
 * onlyAdminsCanEditInfo?}: description and avatar are removed by null
 * (or ""); avatar is a media id
 */

ngx_int_t
ngx_http_chat_chats_update(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_group_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_group_ids(r, &me, &chat, NULL, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_group_update(&me, &chat, ctx->body,
                                       ngx_http_chat_store_answered, st,
                                       &st->op, &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}


/* POST /api/chats/:id/members {userIds} */

ngx_int_t
ngx_http_chat_members_add(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_group_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_group_ids(r, &me, &chat, NULL, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_group_add(&me, &chat,
                                    json_object_get(ctx->body, "userIds"),
                                    ngx_http_chat_store_answered, st,
                                    &st->op, &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}


/* DELETE /api/chats/:id/members/:userId */

ngx_int_t
ngx_http_chat_members_remove(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat, member;
    ngx_http_chat_store_wait_t  *st;

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_group_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_group_ids(r, &me, &chat, &member, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_group_remove(&me, &chat, &member,
                                       ngx_http_chat_store_answered, st,
                                       &st->op);

    return ngx_http_chat_store_started(r, st, rc, NULL, NULL, NULL);
}


/* PUT /api/chats/:id/members/:userId/role {role: "admin" | "member"} */

ngx_int_t
ngx_http_chat_members_role(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat, member;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_group_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_group_ids(r, &me, &chat, &member, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_group_role(&me, &chat, &member,
                                     json_object_get(ctx->body, "role"),
                                     ngx_http_chat_store_answered, st,
                                     &st->op, &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}


/* POST /api/chats/:id/leave */

ngx_int_t
ngx_http_chat_chats_leave(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat;
    ngx_http_chat_store_wait_t  *st;

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_group_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_group_ids(r, &me, &chat, NULL, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_group_leave(&me, &chat,
                                      ngx_http_chat_store_answered, st,
                                      &st->op);

    return ngx_http_chat_store_started(r, st, rc, NULL, NULL, NULL);
}
