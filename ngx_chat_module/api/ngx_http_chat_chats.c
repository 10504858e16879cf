/*
 * Copyright (C) ngx_chat_module authors
 *
 * The chat routes: my chats by activity, a private or a group chat made,
 * a chat read, my settings of one; and what the routes of chats,
 * messages, groups and search share (ngx_http_chat_chats_int.h).
 */


#include "ngx_http_chat_chats_int.h"
#include "../ops/ngx_http_chat_op_chat.h"
#include "../ops/ngx_http_chat_op_group.h"
#include "../ops/ngx_http_chat_op_chat_list.h"


ngx_int_t
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

ngx_int_t
ngx_http_chat_chats_reply(ngx_http_request_t *r, ngx_int_t rc, json_t *json,
    const char *error)
{
    ngx_http_chat_op_told_t  told;

    ngx_http_chat_op_tell(rc, json, r->method == NGX_HTTP_POST, &told);

    return ngx_http_chat_told_send(r, &told, error);
}


ngx_int_t
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


/* the :id of the route as an ObjectId; NGX_DECLINED when it is not one */

ngx_int_t
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


/* a positive number of the query string: NGX_OK, NGX_DECLINED, NGX_ERROR */

ngx_int_t
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


/*
 * ?cursor=<ms>.<id> of a list ordered by a time and an id: NGX_OK with
 * both, NGX_DECLINED when there is none, NGX_ERROR when it is not valid
 */

ngx_int_t
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


/* GET /api/chats?cursor=&limit= */

static void ngx_http_chat_list_detach(void *op);


ngx_int_t
ngx_http_chat_chats_list(ngx_http_request_t *r)
{
    int64_t                     n;
    ngx_int_t                   rc;
    ngx_http_chat_wait_t       *w;
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

    w = ngx_http_chat_read_wait(r, ngx_http_chat_list_detach,
                                "the chat list");
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_op_chat_list(arg, ngx_http_chat_read_answered, w,
                                    (ngx_http_chat_op_chat_list_t **) &w->op);

    return ngx_http_chat_wait_start(r, w, rc);
}


static void
ngx_http_chat_list_detach(void *op)
{
    ngx_http_chat_op_chat_list_detach(op);
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
                                       ngx_http_chat_store_op(st), &refused);

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
                                     ngx_http_chat_store_op(st), &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
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
                                        ngx_http_chat_store_op(st), &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}


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


/*
 * GET /api/chats/:id: the chat with every member and their roles, its
 * last message and my unread count those of its row in my chats
 */

static void ngx_http_chat_get_detach(void *op);


ngx_int_t
ngx_http_chat_chats_get(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_chat_group_arg_t   *arg;
    ngx_http_chat_store_wait_t  *st;

    arg = ngx_http_chat_group_arg(r, NGX_HTTP_CHAT_GROUP_GET, 0, &rc);
    if (arg == NULL) {
        return rc;
    }

    st = ngx_http_chat_wait(r, ngx_http_chat_get_detach);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st->tell = (void *) ngx_http_chat_op_group_tell;

    rc = ngx_http_chat_op_chat_get(arg, ngx_http_chat_store_answered, st,
                                   (ngx_http_chat_op_chat_list_t **) &st->op);

    return ngx_http_chat_store_started(r, st, rc, NULL, NULL, NULL);
}


static void
ngx_http_chat_get_detach(void *op)
{
    ngx_http_chat_op_chat_list_detach(op);
}
