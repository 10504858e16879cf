/*
 * Copyright (C) ngx_chat_module authors
 *
 * Group changes as operations: the checks of what the user sent, the
 * store's change, its system message through the send operation, then
 * the store's events.  The steps are the operation's, never a request's:
 * a requester that leaves loses only the answer.
 */


#include "ngx_http_chat_op_group.h"
#include "ngx_http_chat_op_input.h"
#include "../util/ngx_http_chat_text.h"
#include "ngx_http_chat_op_send.h"
#include "ngx_http_chat_send_cache.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "../core/ngx_http_chat_events.h"


/* what a group change keeps between its steps */
typedef struct {
    ngx_http_chat_op_store_t  *op;
    bson_oid_t                 user;
    bson_oid_t                 chat;
    json_t                    *answer;   /* while its system message goes */
} ngx_http_chat_op_group_ctx_t;


static ngx_int_t ngx_http_chat_op_group_start(ngx_http_chat_group_arg_t *arg,
    size_t size, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out);
static void ngx_http_chat_op_group_stored(ngx_http_chat_op_store_t *op,
    void *data, ngx_int_t rc, json_t *answer, const char *error);
static ngx_int_t ngx_http_chat_op_group_system(
    ngx_http_chat_op_group_ctx_t *ctx, json_t *system);
static void ngx_http_chat_op_group_sent(void *data, ngx_int_t rc,
    json_t *json, const char *error);
static void ngx_http_chat_op_group_end(ngx_http_chat_op_group_ctx_t *ctx,
    ngx_int_t rc, json_t *answer, const char *error);
static void ngx_http_chat_op_group_drop(void *data);


static void
ngx_http_chat_op_group_arg(ngx_http_chat_group_arg_t *arg,
    const bson_oid_t *user, const bson_oid_t *chat, ngx_uint_t op)
{
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);

    arg->user = *user;
    arg->chat = *chat;
    arg->op = op;
    arg->max_size = cmcf ? cmcf->group_max_size : 0;
}


ngx_int_t
ngx_http_chat_op_group_update(const bson_oid_t *user, const bson_oid_t *chat,
    json_t *body, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused)
{
    json_t                     *v;
    ngx_int_t                   rc;
    ngx_str_t                   s;
    ngx_uint_t                  b;
    const char                 *err, *field;
    ngx_http_chat_group_arg_t  *arg;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));

    arg = ngx_calloc(sizeof(ngx_http_chat_group_arg_t), ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    ngx_http_chat_op_group_arg(arg, user, chat, NGX_HTTP_CHAT_GROUP_UPDATE);

    field = "name";
    if ((err = ngx_http_chat_input_text(body, "name", 0, 100, 0, &s))) {
        goto invalid;
    }

    if (s.data) {
        if (s.len == 0) {
            err = "must not be empty";
            goto invalid;
        }

        if (ngx_http_chat_has_spoofing(&s)) {
            err = "has invisible or text-direction characters";
            goto invalid;
        }

        arg->set_name = 1;
        ngx_memcpy(arg->name, s.data, s.len);
    }

    field = "description";
    if ((err = ngx_http_chat_input_text(body, "description", 0, 500, 1, &s)))
    {
        goto invalid;
    }

    if (s.data && ngx_http_chat_has_spoofing(&s)) {
        err = "has invisible or text-direction characters";
        goto invalid;
    }

    v = json_object_get(body, "description");

    if (v) {
        arg->set_description = 1;
        ngx_memcpy(arg->description, s.data, s.len);
    }

    field = "avatar";
    if ((err = ngx_http_chat_json_string(body, "avatar", 0, 24, &s))) {
        goto invalid;
    }

    v = json_object_get(body, "avatar");

    if (v) {
        if (s.len && !ngx_http_chat_is_oid(&s)) {
            err = "must be a media id of 24 hexadecimal digits, or null";
            goto invalid;
        }

        arg->set_avatar = 1;
        ngx_memcpy(arg->avatar, s.data, s.len);
    }

    field = "onlyAdminsCanSend";
    err = "must be a boolean";

    rc = ngx_http_chat_input_bool(body, field, &b);
    if (rc == NGX_ERROR) {
        goto invalid;
    }

    if (rc == NGX_OK) {
        arg->set_only_send = 1;
        arg->only_send = b;
    }

    field = "onlyAdminsCanEditInfo";

    rc = ngx_http_chat_input_bool(body, field, &b);
    if (rc == NGX_ERROR) {
        goto invalid;
    }

    if (rc == NGX_OK) {
        arg->set_only_edit = 1;
        arg->only_edit = b;
    }

    if (!(arg->set_name || arg->set_description || arg->set_avatar
          || arg->set_only_send || arg->set_only_edit))
    {
        field = "chat";
        err = "needs name, description, avatar, onlyAdminsCanSend or "
              "onlyAdminsCanEditInfo";
        goto invalid;
    }

    rc = ngx_http_chat_op_group_start(arg, sizeof(ngx_http_chat_group_arg_t),
                                      done, data, out);
    ngx_free(arg);

    return rc;

invalid:

    ngx_free(arg);

    return ngx_http_chat_op_invalid(refused, field, err);
}


ngx_int_t
ngx_http_chat_op_group_add(const bson_oid_t *user, const bson_oid_t *chat,
    json_t *user_ids, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused)
{
    size_t                      n, size;
    ngx_int_t                   rc;
    const char                 *err;
    ngx_http_chat_group_arg_t  *arg;
    ngx_http_chat_main_conf_t  *cmcf;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);
    if (cmcf == NULL) {
        return NGX_ERROR;
    }

    if (user_ids == NULL || json_is_null(user_ids)) {
        return ngx_http_chat_op_invalid(refused, "userIds", "is required");
    }

    if (!json_is_array(user_ids)) {
        return ngx_http_chat_op_invalid(refused, "userIds",
                                        "must be an array");
    }

    n = json_array_size(user_ids);

    if (n == 0 || n >= cmcf->group_max_size) {
        return ngx_http_chat_op_invalid(refused, "userIds",
                                        "must hold 1 to the group's "
                                        "largest size less one ids");
    }

    size = sizeof(ngx_http_chat_group_arg_t) + n * sizeof(bson_oid_t);

    arg = ngx_calloc(size, ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    ngx_http_chat_op_group_arg(arg, user, chat, NGX_HTTP_CHAT_GROUP_ADD);

    if ((err = ngx_http_chat_input_oids(user_ids, (bson_oid_t *) (arg + 1),
                                        user)))
    {
        ngx_free(arg);
        return ngx_http_chat_op_invalid(refused, "userIds", err);
    }

    arg->nusers = n;

    rc = ngx_http_chat_op_group_start(arg, size, done, data, out);
    ngx_free(arg);

    return rc;
}


ngx_int_t
ngx_http_chat_op_group_remove(const bson_oid_t *user, const bson_oid_t *chat,
    const bson_oid_t *member, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out)
{
    ngx_int_t                   rc;
    ngx_http_chat_group_arg_t  *arg;

    arg = ngx_calloc(sizeof(ngx_http_chat_group_arg_t), ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    ngx_http_chat_op_group_arg(arg, user, chat, NGX_HTTP_CHAT_GROUP_REMOVE);
    arg->target = *member;

    rc = ngx_http_chat_op_group_start(arg, sizeof(ngx_http_chat_group_arg_t),
                                      done, data, out);
    ngx_free(arg);

    return rc;
}


ngx_int_t
ngx_http_chat_op_group_role(const bson_oid_t *user, const bson_oid_t *chat,
    const bson_oid_t *member, json_t *role, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out,
    ngx_http_chat_op_refused_t *refused)
{
    json_t                     *body;
    ngx_int_t                   rc;
    ngx_str_t                   s;
    const char                 *err;
    ngx_http_chat_group_arg_t  *arg;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));

    /* the input check reads a field of an object */
    body = json_pack("{s:O*}", "role", role);
    if (body == NULL) {
        return NGX_ERROR;
    }

    err = ngx_http_chat_json_string(body, "role", 1, 6, &s);

    if (err == NULL
        && !(s.len == 5 && ngx_strncmp(s.data, "admin", 5) == 0)
        && !(s.len == 6 && ngx_strncmp(s.data, "member", 6) == 0))
    {
        err = "must be admin or member";
    }

    json_decref(body);

    if (err) {
        return ngx_http_chat_op_invalid(refused, "role", err);
    }

    arg = ngx_calloc(sizeof(ngx_http_chat_group_arg_t), ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    ngx_http_chat_op_group_arg(arg, user, chat, NGX_HTTP_CHAT_GROUP_ROLE);
    arg->target = *member;
    arg->admin = (s.len == 5);

    rc = ngx_http_chat_op_group_start(arg, sizeof(ngx_http_chat_group_arg_t),
                                      done, data, out);
    ngx_free(arg);

    return rc;
}


ngx_int_t
ngx_http_chat_op_group_leave(const bson_oid_t *user, const bson_oid_t *chat,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out)
{
    ngx_int_t                   rc;
    ngx_http_chat_group_arg_t  *arg;

    arg = ngx_calloc(sizeof(ngx_http_chat_group_arg_t), ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    ngx_http_chat_op_group_arg(arg, user, chat, NGX_HTTP_CHAT_GROUP_LEAVE);

    rc = ngx_http_chat_op_group_start(arg, sizeof(ngx_http_chat_group_arg_t),
                                      done, data, out);
    ngx_free(arg);

    return rc;
}


static ngx_int_t
ngx_http_chat_op_group_start(ngx_http_chat_group_arg_t *arg, size_t size,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out)
{
    ngx_int_t                      rc;
    ngx_http_chat_op_group_ctx_t  *ctx;

    ctx = ngx_calloc(sizeof(ngx_http_chat_op_group_ctx_t), ngx_cycle->log);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->user = arg->user;
    ctx->chat = arg->chat;

    /* it changes who may send where: no sender goes on what it knew */
    ngx_http_chat_send_cache_clear();

    rc = ngx_http_chat_op_store_after(ngx_http_chat_group_run,
                                      ngx_http_chat_op_group_stored,
                                      ngx_http_chat_op_group_drop, ctx,
                                      arg, size, done, data, &ctx->op);
    if (rc != NGX_OK) {
        ngx_free(ctx);
        return rc;
    }

    *out = ctx->op;

    return NGX_OK;
}


/* the store's outcome: a refusal, the answer, or first a system message */

static void
ngx_http_chat_op_group_stored(ngx_http_chat_op_store_t *op, void *data,
    ngx_int_t rc, json_t *answer, const char *error)
{
    ngx_http_chat_op_group_ctx_t *ctx = data;

    json_t  *system;

    if (rc == NGX_DONE) {
        /* and a check begun before the commit keeps nothing it saw */
        ngx_http_chat_send_cache_clear();

        /* and whoever it removed signs in without the chat from now on */
        ngx_http_chat_event_left_committed(answer);
    }

    system = (rc == NGX_DONE) ? json_object_get(answer, "system") : NULL;

    if (system == NULL) {
        /* nothing changed (no system message), so the store said none */
        ngx_http_chat_event_publish_committed(answer);
        ngx_http_chat_op_group_end(ctx, rc, answer, error);
        return;
    }

    json_incref(system);
    json_object_del(answer, "system");

    ctx->answer = answer;

    if (ngx_http_chat_op_group_system(ctx, system) != NGX_OK) {
        /* what the change caused is published in any case */
        ctx->answer = NULL;
        ngx_http_chat_event_publish_committed(answer);
        json_decref(answer);
        ngx_http_chat_op_group_end(ctx, NGX_ERROR, NULL,
                                   "the system message could not start");
    }

    json_decref(system);
}


/*
 * The system message goes through the same sequence path as any message
 * (a number from Redis, the insert, a tombstone when it fails), so that
 * readers paging by seq see it in its place
 */

static ngx_int_t
ngx_http_chat_op_group_system(ngx_http_chat_op_group_ctx_t *ctx,
    json_t *system)
{
    char                      id[25];
    size_t                    len, size;
    ngx_int_t                 rc;
    ngx_http_chat_op_send_t  *send;
    ngx_http_chat_msg_arg_t  *arg;

    len = json_dumpb(system, NULL, 0, JSON_COMPACT);
    if (len == 0) {
        return NGX_ERROR;
    }

    size = sizeof(ngx_http_chat_msg_arg_t) + len + 1;

    arg = ngx_calloc(size, ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    arg->content_len = json_dumpb(system, (char *) (arg + 1), len,
                                  JSON_COMPACT);

    arg->user = ctx->user;
    arg->chat = ctx->chat;
    bson_oid_init(&arg->id, NULL);
    bson_oid_to_string(&arg->id, id);
    ngx_sprintf((u_char *) arg->temp_id, "sys%s%Z", id);
    ngx_memcpy(arg->type, "system", sizeof("system"));

    rc = ngx_http_chat_op_send(arg, size, 0, ngx_http_chat_op_group_sent, ctx,
                               &send);
    ngx_free(arg);

    return rc;
}


/*
 * The system message is stored (or failed, and its number holds a
 * tombstone): the change's events, then the answer, with the message
 */

static void
ngx_http_chat_op_group_sent(void *data, ngx_int_t rc, json_t *json,
    const char *error)
{
    ngx_http_chat_op_group_ctx_t *ctx = data;

    json_t  *answer, *m;

    answer = ctx->answer;
    ctx->answer = NULL;

    if (rc == NGX_OK || rc == NGX_DONE) {
        m = json_object_get(json, "message");

        if (m && json_object_get(answer, "chat")) {
            json_object_set(answer, "message", m);
        }

    } else {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: a system message was not stored: %s", error);
    }

    json_decref(json);

    ngx_http_chat_event_publish_committed(answer);

    ngx_http_chat_op_group_end(ctx, NGX_DONE, answer, NULL);
}


static void
ngx_http_chat_op_group_end(ngx_http_chat_op_group_ctx_t *ctx, ngx_int_t rc,
    json_t *answer, const char *error)
{
    ngx_http_chat_op_store_t  *op;

    op = ctx->op;
    ngx_free(ctx);

    ngx_http_chat_op_store_end(op, rc, answer, error);
}


/* the worker exits before the end */

static void
ngx_http_chat_op_group_drop(void *data)
{
    ngx_http_chat_op_group_ctx_t *ctx = data;

    json_decref(ctx->answer);
    ngx_free(ctx);
}


void
ngx_http_chat_op_group_tell(ngx_int_t rc, json_t *answer, ngx_uint_t created,
    ngx_http_chat_op_told_t *told)
{
    json_t  *c, *m;

    switch (rc) {

    case NGX_BUSY:
    case NGX_ABORT:
        ngx_memzero(told, sizeof(ngx_http_chat_op_told_t));

        if (rc == NGX_BUSY) {
            told->status = NGX_HTTP_FORBIDDEN;
            told->code = "forbidden";
            told->message = "not allowed";

        } else {
            told->status = NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY;
            told->code = "invalid_value";
            told->message = "a value is not valid here";
        }

        /* a refusal the store explained with {code, message, details?} */
        c = json_object_get(answer, "code");
        m = json_object_get(answer, "message");

        if (json_is_string(c) && json_is_string(m)) {
            told->code = json_string_value(c);
            told->message = json_string_value(m);
        }

        told->details = json_incref(json_object_get(answer, "details"));
        told->keep = answer;
        return;

    default:
        ngx_http_chat_op_tell(rc, answer, created, told);
    }
}
