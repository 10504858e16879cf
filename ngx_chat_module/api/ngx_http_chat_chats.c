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
#include "../util/ngx_http_chat_text.h"


#define NGX_HTTP_CHAT_CHATS_LIMIT    20
#define NGX_HTTP_CHAT_MESSAGES_LIMIT 50
#define NGX_HTTP_CHAT_FORWARD_MAX    10


typedef ngx_int_t (*ngx_http_chat_op_next_pt)(ngx_http_request_t *r,
    ngx_int_t rc, json_t *answer, const char *error);


/* a request that waits for the sends of its route */
typedef struct {
    ngx_http_chat_op_send_t   *op;
    ngx_http_cleanup_t        *cleanup;
    ngx_http_chat_op_next_pt   answered; /* what the route does with it */

    /* a forward: one send per chat, the copies collected in out */
    bson_oid_t                 source;
    bson_oid_t                 source_chat;
    bson_oid_t                *chats;
    ngx_uint_t                 nchats;
    ngx_uint_t                 next;
    json_t                    *content;
    json_t                    *out;
    ngx_str_t                  type;
    ngx_uint_t                 made;     /* copies new (not a retry's) */

    /* a system message: the answer of its group operation, sent after */
    json_t                    *answer;
} ngx_http_chat_send_t;


static ngx_int_t ngx_http_chat_chats_refused(ngx_http_request_t *r,
    ngx_uint_t status, json_t *json, const char *code, const char *message);
static ngx_int_t ngx_http_chat_chats_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_chats_reply(ngx_http_request_t *r,
    ngx_int_t rc, json_t *json, const char *error);
static ngx_int_t ngx_http_chat_send_op(ngx_http_request_t *r,
    ngx_http_chat_send_t *st, ngx_http_chat_msg_arg_t *arg, size_t size,
    json_t *body, ngx_uint_t flags, ngx_http_chat_op_next_pt next);
static ngx_int_t ngx_http_chat_forward_next(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_forward_step(ngx_http_request_t *r,
    ngx_int_t rc, json_t *json, const char *error);
static ngx_int_t ngx_http_chat_group_answer(ngx_http_request_t *r,
    ngx_int_t rc, json_t *json, const char *error);
static void ngx_http_chat_forward_cleanup(void *data);


/*
 * A refusal the store explained with {code, message, details?} in json
 * (taken), or the default code and message
 */

static ngx_int_t
ngx_http_chat_chats_refused(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json, const char *code, const char *message)
{
    json_t     *c, *m;
    ngx_int_t   rc;

    c = json_object_get(json, "code");
    m = json_object_get(json, "message");

    if (json_is_string(c) && json_is_string(m)) {
        code = json_string_value(c);
        message = json_string_value(m);
    }

    rc = ngx_http_chat_send_error_details(r, status, code, message,
                                          json_incref(json_object_get(json,
                                                                "details")));
    json_decref(json);

    return rc;
}


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
 * The ids of an array in the body (its size checked by the caller), none
 * twice, and not me when me is given: NULL when fine, or what is wrong
 */

static const char *
ngx_http_chat_chats_body_oids(json_t *ids, bson_oid_t *oids,
    const bson_oid_t *me)
{
    size_t      i, j;
    json_t     *v;
    ngx_str_t   s;

    json_array_foreach(ids, i, v) {
        if (!json_is_string(v)) {
            return "must hold ids, as strings";
        }

        s.data = (u_char *) json_string_value(v);
        s.len = json_string_length(v);

        if (!ngx_http_chat_is_oid(&s)) {
            return "must hold ids of 24 hexadecimal digits";
        }

        bson_oid_init_from_string_unsafe(&oids[i], (char *) s.data);

        if (me && bson_oid_equal(&oids[i], me)) {
            return "must not hold you: you are in it";
        }

        for (j = 0; j < i; j++) {
            if (bson_oid_equal(&oids[i], &oids[j])) {
                return "must not hold an id twice";
            }
        }
    }

    return NULL;
}


/* POST /api/chats/private {userId} */

ngx_int_t
ngx_http_chat_chats_private(ngx_http_request_t *r)
{
    ngx_uint_t                 found;
    const char                *err;
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_chats_arg_t *arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_chats_arg_t));
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if ((err = ngx_http_chat_input_oid(ctx->body, "userId", 1,
                                            &arg->other, &found)))
    {
        return ngx_http_chat_send_invalid(r, "userId", err);
    }

    if (bson_oid_equal(&arg->user, &arg->other)) {
        return ngx_http_chat_send_error(r, NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY,
                                        "invalid_value",
                                        "userId is you: a private chat "
                                        "needs someone else");
    }

    bson_oid_init(&arg->chat, NULL);

    return ngx_http_chat_mongo_request(r, ngx_http_chat_chat_private_run,
                                       ngx_http_chat_chats_done, arg,
                                       sizeof(ngx_http_chat_chats_arg_t));
}


/* POST /api/chats/group {name, memberIds, description?, avatar?} */

ngx_int_t
ngx_http_chat_chats_group(ngx_http_request_t *r)
{
    size_t                      n;
    json_t                     *ids;
    ngx_str_t                   name, description, avatar;
    bson_oid_t                 *oids, me;
    const char                 *err, *field;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_chats_arg_t  *arg;
    ngx_http_chat_main_conf_t  *cmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    if (ngx_http_chat_chats_me(r, &me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    field = "name";
    if ((err = ngx_http_chat_input_text(ctx->body, "name", 1, 100, 0, &name)))
    {
        goto invalid;
    }

    field = "description";
    if ((err = ngx_http_chat_input_text(ctx->body, "description", 0, 500, 1,
                                        &description)))
    {
        goto invalid;
    }

    field = "avatar";
    if ((err = ngx_http_chat_input_text(ctx->body, "avatar", 0, 512, 0,
                                        &avatar)))
    {
        goto invalid;
    }

    if (avatar.data && avatar.len
        && !ngx_http_chat_is_oid(&avatar)
        && ngx_strncmp(avatar.data, "https://", 8) != 0
        && ngx_strncmp(avatar.data, "http://", 7) != 0)
    {
        err = "must be a media id or a URL";
        goto invalid;
    }

    field = "memberIds";
    ids = json_object_get(ctx->body, "memberIds");

    if (ids == NULL || json_is_null(ids)) {
        err = "is required";
        goto invalid;
    }

    if (!json_is_array(ids)) {
        err = "must be an array";
        goto invalid;
    }

    n = json_array_size(ids);

    if (n + 1 > cmcf->group_max_size) {
        return ngx_http_chat_send_error_details(r,
                                  NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY,
                                  "group_too_large",
                                  "the group would have too many members",
                                  /* the largest group, creator included */
                                  json_pack("{s:s,s:I}", "field", "memberIds",
                                            "max", (json_int_t)
                                            cmcf->group_max_size));
    }

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_chats_arg_t)
                               + n * sizeof(bson_oid_t));
    if (arg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    oids = (bson_oid_t *) (arg + 1);

    if ((err = ngx_http_chat_chats_body_oids(ids, oids, &me))) {
        goto invalid;
    }

    arg->user = me;
    arg->nmembers = n;
    bson_oid_init(&arg->chat, NULL);
    ngx_memcpy(arg->name, name.data, name.len);

    if (description.data) {
        arg->has_description = 1;
        ngx_memcpy(arg->description, description.data, description.len);
    }

    if (avatar.data) {
        arg->has_avatar = 1;
        ngx_memcpy(arg->avatar, avatar.data, avatar.len);
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_chat_group_run,
                                       ngx_http_chat_chats_done, arg,
                                       sizeof(ngx_http_chat_chats_arg_t)
                                       + n * sizeof(bson_oid_t));

invalid:

    return ngx_http_chat_send_invalid(r, field, err);
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

    return ngx_http_chat_send_op(r, st, NULL, 0, ctx->body,
                                 NGX_HTTP_CHAT_OP_SEND_CHECK
                                 |NGX_HTTP_CHAT_OP_SEND_MARK
                                 |NGX_HTTP_CHAT_OP_SEND_CACHE,
                                 ngx_http_chat_chats_reply);
}


static void ngx_http_chat_send_left(void *data);
static void ngx_http_chat_send_answered(void *data, ngx_int_t rc,
    json_t *answer, const char *error);


/*
 * The route waits for a send operation (ops/): the operation runs to its
 * end in any case, the request only takes its answer, to next()
 */

static ngx_int_t
ngx_http_chat_send_op(ngx_http_request_t *r, ngx_http_chat_send_t *st,
    ngx_http_chat_msg_arg_t *arg, size_t size, json_t *body,
    ngx_uint_t flags, ngx_http_chat_op_next_pt next)
{
    ngx_int_t            rc;
    bson_oid_t           me;
    const char          *field, *err;
    ngx_http_cleanup_t  *cln;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st->answered = next;

    if (body) {
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

    } else {
        rc = ngx_http_chat_op_send(arg, size, flags,
                                   ngx_http_chat_send_answered, r, &st->op);
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

    ngx_http_chat_finalize(r, st->answered(r, rc, answer, error));
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


/*
 * A route that waits for a store operation (ops/): the operation runs to
 * its end in any case (its events follow its commit), the request only
 * takes its answer
 */

typedef struct {
    ngx_http_request_t        *request;
    ngx_http_chat_op_store_t  *op;
    ngx_http_cleanup_t        *cleanup;
    ngx_uint_t                 message;  /* an edit, a delete, a reaction */
} ngx_http_chat_store_wait_t;


static void ngx_http_chat_store_left(void *data);
static void ngx_http_chat_store_answered(void *data, ngx_int_t rc,
    json_t *answer, const char *error);


static ngx_http_chat_store_wait_t *
ngx_http_chat_store_wait(ngx_http_request_t *r, ngx_uint_t message)
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
    st->message = message;

    return st;
}


/* rc: the operation's start (ngx_http_chat_op_message.h) */

static ngx_int_t
ngx_http_chat_store_started(ngx_http_request_t *r,
    ngx_http_chat_store_wait_t *st, ngx_int_t rc, const char *field,
    const char *err)
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
        return ngx_http_chat_send_error(r, NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY,
                                        field, err);

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

    if (st->message) {
        ngx_http_chat_op_message_tell(rc, answer, r->method == NGX_HTTP_POST,
                                      &told);

    } else {
        ngx_http_chat_op_tell(rc, answer, r->method == NGX_HTTP_POST, &told);
    }

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

    st = ngx_http_chat_store_wait(r, 0);
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

    return ngx_http_chat_store_started(r, st, rc, field, err);
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

    st = ngx_http_chat_store_wait(r, 1);
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

    return ngx_http_chat_store_started(r, st, rc, field, err);
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

    st = ngx_http_chat_store_wait(r, 1);
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

    return ngx_http_chat_store_started(r, st, rc, NULL, NULL);
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

    st = ngx_http_chat_store_wait(r, 1);
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

    return ngx_http_chat_store_started(r, st, rc, field, err);
}


static void
ngx_http_chat_forward_cleanup(void *data)
{
    ngx_http_chat_send_t  *st = data;

    json_decref(st->content);
    json_decref(st->out);
    json_decref(st->answer);
}


/* POST /api/messages/:id/forward {chatIds} */

ngx_int_t
ngx_http_chat_messages_forward(ngx_http_request_t *r)
{
    size_t                    n;
    json_t                   *ids;
    const char               *err;
    ngx_pool_cleanup_t       *cln;
    ngx_http_chat_ctx_t      *ctx;
    ngx_http_chat_send_t     *st;
    ngx_http_chat_msg_arg_t  *arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    ids = json_object_get(ctx->body, "chatIds");

    if (ids == NULL || json_is_null(ids)) {
        return ngx_http_chat_send_invalid(r, "chatIds", "is required");
    }

    if (!json_is_array(ids)) {
        return ngx_http_chat_send_invalid(r, "chatIds", "must be an array");
    }

    n = json_array_size(ids);

    if (n == 0 || n > NGX_HTTP_CHAT_FORWARD_MAX) {
        return ngx_http_chat_send_invalid(r, "chatIds",
                                          "must hold 1 to 10 ids");
    }

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_msg_arg_t)
                               + n * sizeof(bson_oid_t));
    st = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_send_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (arg == NULL || st == NULL || cln == NULL
        || ngx_http_chat_chats_me(r, &arg->user) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_chat_forward_cleanup;
    cln->data = st;

    st->chats = (bson_oid_t *) (arg + 1);
    st->nchats = n;

    if ((err = ngx_http_chat_chats_body_oids(ids, st->chats, NULL))) {
        goto invalid;
    }

    if (ngx_http_chat_chats_param(r, &arg->id) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such message");
    }

    arg->limit = n;
    st->source = arg->id;
    ctx->state = st;

    return ngx_http_chat_mongo_request(r, ngx_http_chat_msg_forward_run,
                                       ngx_http_chat_forward_next, arg,
                                       sizeof(ngx_http_chat_msg_arg_t)
                                       + n * sizeof(bson_oid_t));

invalid:

    return ngx_http_chat_send_invalid(r, "chatIds", err);
}


/*
 * After the check of the source and each chat, and after each copy: the
 * next copy, or the answer.  A copy's tempId is "fw<source><chat>", so a
 * retry of the forward returns the copies made, not new ones.
 */

static ngx_int_t
ngx_http_chat_forward_next(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    json_t  *json;

    json = t->result;
    t->result = NULL;

    return ngx_http_chat_forward_step(r, t->rc, json, t->error.message);
}


static ngx_int_t
ngx_http_chat_forward_step(ngx_http_request_t *r, ngx_int_t rc, json_t *json,
    const char *error)
{
    char                      *p, src[25], dst[25];
    size_t                     len;
    json_t                    *m, *type;
    ngx_int_t                  ret;
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_send_t      *st;
    ngx_http_chat_msg_arg_t   *arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    st = ctx->state;

    if (rc != NGX_OK && rc != NGX_DONE) {
        return ngx_http_chat_chats_reply(r, rc, json, error);
    }

    /* json is ours: what is kept of it is taken with a reference */
    ret = NGX_OK;

    if (st->out == NULL) {
        /* the check: the source's type, content and chat */
        type = json_object_get(json, "type");
        st->content = json_incref(json_object_get(json, "content"));
        st->out = json_array();

        st->type.len = json_string_length(type);
        st->type.data = ngx_pnalloc(r->pool, st->type.len);

        if (!json_is_string(type) || st->content == NULL || st->out == NULL
            || json_string_length(type) > 15 || st->type.data == NULL
            || !bson_oid_is_valid(json_string_value(json_object_get(json,
                                                                 "chatId")),
                                  24))
        {
            ret = NGX_HTTP_INTERNAL_SERVER_ERROR;

        } else {
            ngx_memcpy(st->type.data, json_string_value(type),
                       st->type.len);
            bson_oid_init_from_string(&st->source_chat,
                          json_string_value(json_object_get(json, "chatId")));
        }

    } else {
        /* a copy made, or found made by an earlier try */
        m = json_object_get(json, "message");

        if (rc == NGX_OK) {
            st->made++;
        }

        if (m == NULL || json_array_append(st->out, m) != 0) {
            ret = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    json_decref(json);

    if (ret != NGX_OK) {
        return ret;
    }

    if (st->next == st->nchats) {
        json = json_pack("{s:O}", "messages", st->out);
        if (json == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* each copy made was pushed by its own send; a retry: 200 */
        return ngx_http_chat_send_json(r, st->made ? NGX_HTTP_CREATED
                                                   : NGX_HTTP_OK,
                                       json);
    }

    len = json_dumpb(st->content, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_msg_arg_t) + len + 1);
    if (arg == NULL || len == 0
        || ngx_http_chat_chats_me(r, &arg->user) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = (char *) (arg + 1);
    arg->content_len = json_dumpb(st->content, p, len,
                                  JSON_COMPACT | JSON_ENCODE_ANY);

    arg->chat = st->chats[st->next++];
    bson_oid_init(&arg->id, NULL);
    arg->forwarded = 1;
    arg->fwd_id = st->source;
    arg->fwd_chat = st->source_chat;
    ngx_memcpy(arg->type, st->type.data, st->type.len);

    bson_oid_to_string(&st->source, src);
    bson_oid_to_string(&arg->chat, dst);
    ngx_sprintf((u_char *) arg->temp_id, "fw%s%s%Z", src, dst);

    return ngx_http_chat_send_op(r, st, arg,
                                 sizeof(ngx_http_chat_msg_arg_t) + len + 1,
                                 NULL, NGX_HTTP_CHAT_OP_SEND_CHECK,
                                 ngx_http_chat_forward_step);
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


/* "YYYY-MM-DDTHH:MM:SS[.mmm]Z" as ms since the epoch, or -1 */

static int64_t
ngx_http_chat_parse_time(ngx_str_t *s)
{
    u_char     *p;
    time_t      sec;
    ngx_int_t   ms;
    ngx_uint_t  i;
    struct tm   tm, check;

    p = s->data;

    if (!(s->len == 20 || s->len == 24) || p[s->len - 1] != 'Z'
        || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':'
        || p[16] != ':' || (s->len == 24 && p[19] != '.'))
    {
        return -1;
    }

    for (i = 0; i < s->len - 1; i++) {
        if (i == 4 || i == 7 || i == 10 || i == 13 || i == 16 || i == 19) {
            continue;
        }

        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
    }

    ngx_memzero(&tm, sizeof(struct tm));
    tm.tm_year = ngx_atoi(p, 4) - 1900;
    tm.tm_mon = ngx_atoi(p + 5, 2) - 1;
    tm.tm_mday = ngx_atoi(p + 8, 2);
    tm.tm_hour = ngx_atoi(p + 11, 2);
    tm.tm_min = ngx_atoi(p + 14, 2);
    tm.tm_sec = ngx_atoi(p + 17, 2);
    ms = (s->len == 24) ? ngx_atoi(p + 20, 3) : 0;

    check = tm;
    sec = timegm(&tm);

    /* timegm() normalises: 2026-02-30 would pass as March */
    if (sec == (time_t) -1 || tm.tm_mday != check.tm_mday
        || tm.tm_mon != check.tm_mon || tm.tm_hour != check.tm_hour
        || tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec)
    {
        return -1;
    }

    return (int64_t) sec * 1000 + ms;
}


/* an optional boolean member: NGX_OK, NGX_DECLINED absent, NGX_ERROR */

static ngx_int_t
ngx_http_chat_chats_bool(json_t *body, const char *name, ngx_uint_t *out)
{
    json_t  *v;

    v = json_object_get(body, name);

    if (v == NULL || json_is_null(v)) {
        return NGX_DECLINED;
    }

    if (!json_is_boolean(v)) {
        return NGX_ERROR;
    }

    *out = json_is_true(v);

    return NGX_OK;
}


/* PUT /api/chats/:id/settings {muted?, mutedUntil?, archived?, pinned?} */

ngx_int_t
ngx_http_chat_chats_settings(ngx_http_request_t *r)
{
    int64_t                   until, now;
    ngx_int_t                 rc;
    ngx_str_t                 s;
    ngx_uint_t                b, any;
    const char               *err;
    struct timeval            tv;
    ngx_http_chat_ctx_t      *ctx;
    ngx_http_chat_msg_arg_t  *arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_msg_arg_t));
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    any = 0;

    rc = ngx_http_chat_chats_bool(ctx->body, "muted", &b);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "muted", "must be a boolean");
    }

    if (rc == NGX_OK) {
        any = 1;
        arg->set_mute = b;
        arg->mute_forever = b;
        arg->unmute = !b;
    }

    if ((err = ngx_http_chat_json_string(ctx->body, "mutedUntil", 0, 24,
                                         &s)))
    {
        return ngx_http_chat_send_invalid(r, "mutedUntil", err);
    }

    if (s.data) {
        if (rc == NGX_OK) {
            return ngx_http_chat_send_invalid(r, "mutedUntil",
                                              "must not come with muted");
        }

        until = ngx_http_chat_parse_time(&s);

        ngx_gettimeofday(&tv);
        now = (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;

        if (until < 0) {
            return ngx_http_chat_send_invalid(r, "mutedUntil",
                                              "must be a UTC time like "
                                              "2030-01-31T08:00:00Z");
        }

        if (until <= now || until - now > (int64_t) 10 * 366 * 86400000) {
            return ngx_http_chat_send_invalid(r, "mutedUntil",
                                              "must be in the next "
                                              "10 years");
        }

        any = 1;
        arg->set_mute = 1;
        arg->before = until;
    }

    rc = ngx_http_chat_chats_bool(ctx->body, "archived", &b);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "archived", "must be a boolean");
    }

    if (rc == NGX_OK) {
        any = 1;
        arg->set_archived = 1;
        arg->archived = b;
    }

    rc = ngx_http_chat_chats_bool(ctx->body, "pinned", &b);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "pinned", "must be a boolean");
    }

    if (rc == NGX_OK) {
        any = 1;
        arg->set_pinned = 1;
        arg->pinned = b;
    }

    if (!any) {
        return ngx_http_chat_send_invalid(r, "settings",
                                          "need muted, mutedUntil, "
                                          "archived or pinned");
    }

    if (ngx_http_chat_chats_param(r, &arg->chat) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such chat");
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_chat_settings_run,
                                       ngx_http_chat_chats_done, arg,
                                       sizeof(ngx_http_chat_msg_arg_t));
}


/*
 * Group administration.  Each route is one MongoDB step; when it changed
 * something, the store hands back the content of a system message, which
 * is sent through the same sequence path as any message (a number from
 * Redis, the insert, a tombstone when it fails), so that readers paging
 * by seq see it in its place.  The operation's answer is sent after,
 * and the events the store said its change caused (chat_created,
 * chat_removed, chat_updated) are published then: those removed or gone
 * see the system message first.
 */

static ngx_int_t ngx_http_chat_group_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_group_cleanup(void *data);


/* the argument of an operation on the chat :id; NULL when answered */

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


/* the :userId of a member route, the second parameter: NGX_DECLINED */

static ngx_int_t
ngx_http_chat_group_target(ngx_http_request_t *r,
    ngx_http_chat_group_arg_t *arg)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ctx->nparams < 2 || !ngx_http_chat_is_oid(&ctx->params[1])) {
        return NGX_DECLINED;
    }

    bson_oid_init_from_string_unsafe(&arg->target,
                                     (char *) ctx->params[1].data);

    return NGX_OK;
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


/*
 * PUT /api/chats/:id {name?, description?, avatar?, onlyAdminsCanSend?,
 * onlyAdminsCanEditInfo?}: description and avatar are removed by null
 * (or ""); avatar is a media id
 */

ngx_int_t
ngx_http_chat_chats_update(ngx_http_request_t *r)
{
    json_t                     *v;
    ngx_int_t                   rc;
    ngx_str_t                   s;
    ngx_uint_t                  b;
    const char                 *err, *field;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_group_arg_t  *arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    arg = ngx_http_chat_group_arg(r, NGX_HTTP_CHAT_GROUP_UPDATE, 0, &rc);
    if (arg == NULL) {
        return rc;
    }

    field = "name";
    if ((err = ngx_http_chat_input_text(ctx->body, "name", 0, 100, 0, &s))) {
        goto invalid;
    }

    if (s.data) {
        if (s.len == 0) {
            err = "must not be empty";
            goto invalid;
        }

        arg->set_name = 1;
        ngx_memcpy(arg->name, s.data, s.len);
    }

    field = "description";
    if ((err = ngx_http_chat_input_text(ctx->body, "description", 0, 500, 1,
                                        &s)))
    {
        goto invalid;
    }

    v = json_object_get(ctx->body, "description");

    if (v) {
        arg->set_description = 1;
        ngx_memcpy(arg->description, s.data, s.len);
    }

    field = "avatar";
    if ((err = ngx_http_chat_json_string(ctx->body, "avatar", 0, 24, &s))) {
        goto invalid;
    }

    v = json_object_get(ctx->body, "avatar");

    if (v) {
        if (s.len && !ngx_http_chat_is_oid(&s)) {
            err = "must be a media id of 24 hexadecimal digits, or null";
            goto invalid;
        }

        arg->set_avatar = 1;
        ngx_memcpy(arg->avatar, s.data, s.len);
    }

    field = "onlyAdminsCanSend";
    rc = ngx_http_chat_chats_bool(ctx->body, field, &b);
    if (rc == NGX_ERROR) {
        err = "must be a boolean";
        goto invalid;
    }

    if (rc == NGX_OK) {
        arg->set_only_send = 1;
        arg->only_send = b;
    }

    field = "onlyAdminsCanEditInfo";
    rc = ngx_http_chat_chats_bool(ctx->body, field, &b);
    if (rc == NGX_ERROR) {
        err = "must be a boolean";
        goto invalid;
    }

    if (rc == NGX_OK) {
        arg->set_only_edit = 1;
        arg->only_edit = b;
    }

    if (!(arg->set_name || arg->set_description || arg->set_avatar
          || arg->set_only_send || arg->set_only_edit))
    {
        return ngx_http_chat_send_invalid(r, "chat",
                                          "needs name, description, avatar, "
                                          "onlyAdminsCanSend or "
                                          "onlyAdminsCanEditInfo");
    }

    return ngx_http_chat_group_post(r, arg, 0);

invalid:

    return ngx_http_chat_send_invalid(r, field, err);
}


/* POST /api/chats/:id/members {userIds} */

ngx_int_t
ngx_http_chat_members_add(ngx_http_request_t *r)
{
    size_t                      n;
    json_t                     *ids;
    ngx_int_t                   rc;
    bson_oid_t                 *oids;
    const char                 *err;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_group_arg_t  *arg;
    ngx_http_chat_main_conf_t  *cmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    ids = json_object_get(ctx->body, "userIds");

    if (ids == NULL || json_is_null(ids)) {
        return ngx_http_chat_send_invalid(r, "userIds", "is required");
    }

    if (!json_is_array(ids)) {
        return ngx_http_chat_send_invalid(r, "userIds", "must be an array");
    }

    n = json_array_size(ids);

    if (n == 0 || n >= cmcf->group_max_size) {
        return ngx_http_chat_send_invalid(r, "userIds",
                                          "must hold 1 to the group's "
                                          "largest size less one ids");
    }

    arg = ngx_http_chat_group_arg(r, NGX_HTTP_CHAT_GROUP_ADD,
                                  n * sizeof(bson_oid_t), &rc);
    if (arg == NULL) {
        return rc;
    }

    oids = (bson_oid_t *) (arg + 1);

    if ((err = ngx_http_chat_chats_body_oids(ids, oids, &arg->user))) {
        goto invalid;
    }

    arg->nusers = n;

    return ngx_http_chat_group_post(r, arg, n * sizeof(bson_oid_t));

invalid:

    return ngx_http_chat_send_invalid(r, "userIds", err);
}


/* DELETE /api/chats/:id/members/:userId */

ngx_int_t
ngx_http_chat_members_remove(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_chat_group_arg_t  *arg;

    arg = ngx_http_chat_group_arg(r, NGX_HTTP_CHAT_GROUP_REMOVE, 0, &rc);
    if (arg == NULL) {
        return rc;
    }

    if (ngx_http_chat_group_target(r, arg) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such member");
    }

    return ngx_http_chat_group_post(r, arg, 0);
}


/* PUT /api/chats/:id/members/:userId/role {role: "admin" | "member"} */

ngx_int_t
ngx_http_chat_members_role(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   role;
    const char                 *err;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_group_arg_t  *arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if ((err = ngx_http_chat_json_string(ctx->body, "role", 1, 6, &role))) {
        return ngx_http_chat_send_invalid(r, "role", err);
    }

    if (!(role.len == 5 && ngx_strncmp(role.data, "admin", 5) == 0)
        && !(role.len == 6 && ngx_strncmp(role.data, "member", 6) == 0))
    {
        return ngx_http_chat_send_invalid(r, "role",
                                          "must be admin or member");
    }

    arg = ngx_http_chat_group_arg(r, NGX_HTTP_CHAT_GROUP_ROLE, 0, &rc);
    if (arg == NULL) {
        return rc;
    }

    arg->admin = (role.len == 5);

    if (ngx_http_chat_group_target(r, arg) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such member");
    }

    return ngx_http_chat_group_post(r, arg, 0);
}


/* POST /api/chats/:id/leave */

ngx_int_t
ngx_http_chat_chats_leave(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_chat_group_arg_t  *arg;

    arg = ngx_http_chat_group_arg(r, NGX_HTTP_CHAT_GROUP_LEAVE, 0, &rc);
    if (arg == NULL) {
        return rc;
    }

    return ngx_http_chat_group_post(r, arg, 0);
}


/* the store's answer: a refusal, the answer, or first a system message */

static ngx_int_t
ngx_http_chat_group_done(ngx_http_request_t *r, ngx_http_chat_mongo_task_t *t)
{
    char                        id[25];
    size_t                      len;
    json_t                     *json, *system;
    ngx_pool_cleanup_t         *cln;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_send_t       *st;
    ngx_http_chat_msg_arg_t    *arg;
    ngx_http_chat_group_arg_t  *ga;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    ga = t->arg;
    json = t->result;

    switch (t->rc) {

    case NGX_BUSY:
        t->result = NULL;
        return ngx_http_chat_chats_refused(r, NGX_HTTP_FORBIDDEN, json,
                                           "forbidden", "not allowed");

    case NGX_ABORT:
        t->result = NULL;
        return ngx_http_chat_chats_refused(r,
                                           NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY,
                                           json, "invalid_value",
                                           "a value is not valid here");

    case NGX_DONE:
        break;

    default:
        return ngx_http_chat_chats_done(r, t);
    }

    t->result = NULL;
    system = json_incref(json_object_get(json, "system"));

    if (system == NULL) {
        /* nothing changed (no system message), so the store said none */
        ngx_http_chat_event_publish_committed(json);
        return ngx_http_chat_send_json(r, NGX_HTTP_OK, json);
    }

    json_object_del(json, "system");

    len = json_dumpb(system, NULL, 0, JSON_COMPACT);

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_send_t));
    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_msg_arg_t) + len + 1);
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (st == NULL || arg == NULL || cln == NULL || len == 0) {
        ngx_http_chat_event_publish_committed(json);
        json_decref(system);
        json_decref(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * The answer, with the events its commit caused, is freed with the
     * request whatever happens: they are published once the system
     * message is (so that those who leave see it first), or when the
     * request goes before that
     */
    st->answer = json;
    cln->handler = ngx_http_chat_group_cleanup;
    cln->data = st;

    arg->content_len = json_dumpb(system, (char *) (arg + 1), len,
                                  JSON_COMPACT);
    json_decref(system);

    arg->user = ga->user;
    arg->chat = ga->chat;
    bson_oid_init(&arg->id, NULL);
    bson_oid_to_string(&arg->id, id);
    ngx_sprintf((u_char *) arg->temp_id, "sys%s%Z", id);
    ngx_memcpy(arg->type, "system", sizeof("system"));

    ctx->state = st;

    return ngx_http_chat_send_op(r, st, arg,
                                 sizeof(ngx_http_chat_msg_arg_t) + len + 1,
                                 NULL, 0, ngx_http_chat_group_answer);
}


/*
 * The system message is stored (or failed, and its number holds a
 * tombstone): the operation's answer, with the message but after leaving
 */

static ngx_int_t
ngx_http_chat_group_answer(ngx_http_request_t *r, ngx_int_t rc,
    json_t *json, const char *error)
{
    json_t                *answer, *m;
    ngx_http_chat_ctx_t   *ctx;
    ngx_http_chat_send_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    st = ctx->state;

    answer = st->answer;
    st->answer = NULL;

    if (rc == NGX_OK || rc == NGX_DONE) {
        m = json_object_get(json, "message");

        if (m && json_object_get(answer, "chat")) {
            json_object_set(answer, "message", m);
        }

    } else {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "chat: a system message was not stored: %s", error);
    }

    json_decref(json);

    ngx_http_chat_event_publish_committed(answer);

    return ngx_http_chat_send_json(r, NGX_HTTP_OK, answer);
}


/* the request goes: what the change caused is published in any case */

static void
ngx_http_chat_group_cleanup(void *data)
{
    ngx_http_chat_send_t  *st = data;

    if (st->answer) {
        ngx_http_chat_event_publish_committed(st->answer);
        json_decref(st->answer);
        st->answer = NULL;
    }
}
