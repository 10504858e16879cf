/*
 * Copyright (C) ngx_chat_module authors
 *
 * lua-compat's API (resty.chat over LuaJIT's FFI): publishing an event,
 * an access token's check, a message sent as a user.  What needs no back
 * end answers at once; a send starts the send operation and its answer
 * posts the caller's ngx.semaphore (lua-nginx-module's post function and
 * semaphore, handed over by Lua as plain pointers), so the Lua coroutine
 * yields and the worker goes on.
 */


#include "ngx_http_chat_lua.h"
#include "../auth/ngx_http_chat_jwt.h"
#include "../auth/ngx_http_chat_auth.h"
#include "../ops/ngx_http_chat_op_send.h"
#include "../ops/ngx_http_chat_op_chat_list.h"
#include "../realtime/ngx_http_chat_rt.h"
#include "../store/ngx_http_chat_redis.h"
#include "../store/ngx_http_chat_redis_shards.h"


typedef void (*ngx_http_chat_ffi_detach_pt)(void *op);

typedef struct {
    void                        *sem;
    ngx_http_chat_ffi_post_pt    post;
    void                        *op;       /* an operation, till answered */
    ngx_http_chat_ffi_detach_pt  detach;
    int                          status;   /* 0 while it runs */
    char                        *answer;   /* JSON, malloc'ed */
    size_t                       len;
    unsigned                     waiting:1;    /* a Redis reply to come */
    unsigned                     freed:1;      /* Lua let it go */
} ngx_http_chat_ffi_call_t;


/* who is online: the live workers that count the user's sockets */
static const char  ngx_http_chat_ffi_presence_lua[] =
    "local ws = redis.call('HGETALL', 'presence:s:' .. ARGV[1]) "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local n, c = 0, 0 "
    "for i = 1, #ws - 1, 2 do "
    "local at = redis.call('ZSCORE', 'presence:workers', ws[i]) "
    "if at and now - tonumber(at) <= tonumber(ARGV[2]) then n = n + 1 "
    "c = c + (tonumber(ws[i + 1]) or 1) end "
    "end "
    "return {n, c}";


int ngx_http_chat_ffi_publish(const char *kind, const char *id,
    size_t id_len, const char *event, const char *data, size_t len);
int ngx_http_chat_ffi_publish_socket(const char *sock, const char *event,
    const char *data, size_t len);
int ngx_http_chat_ffi_publish_session(const char *user,
    const char *session, const char *event, const char *data, size_t len);
int ngx_http_chat_ffi_check_token(const char *token, size_t len,
    char *user, char *session, const char **reason);
void *ngx_http_chat_ffi_check_session(const char *token, size_t len,
    char *user, char *session, void *sem, ngx_http_chat_ffi_post_pt post,
    const char **err);
void *ngx_http_chat_ffi_send(const char *user, const char *body, size_t len,
    void *sem, ngx_http_chat_ffi_post_pt post, const char **err);
void *ngx_http_chat_ffi_send_system(const char *chat, const char *actor,
    const char *content, size_t len, void *sem,
    ngx_http_chat_ffi_post_pt post, const char **err);
void *ngx_http_chat_ffi_chat(const char *user, const char *chat, void *sem,
    ngx_http_chat_ffi_post_pt post, const char **err);
void *ngx_http_chat_ffi_presence(const char *user, void *sem,
    ngx_http_chat_ffi_post_pt post, int *here, const char **err);
int ngx_http_chat_ffi_call_status(void *call);
const char *ngx_http_chat_ffi_call_answer(void *call, size_t *len);
void ngx_http_chat_ffi_call_free(void *call);


static ngx_http_chat_ffi_call_t *ngx_http_chat_ffi_call(void *sem,
    ngx_http_chat_ffi_post_pt post, const char **err);
static void ngx_http_chat_ffi_sent(void *data, ngx_int_t rc, json_t *answer,
    const char *error);
static void ngx_http_chat_ffi_counted(redisReply *reply, void *data);
static void ngx_http_chat_ffi_session_checked(void *data, ngx_int_t rc);
static void ngx_http_chat_ffi_send_detach(void *op);
static void ngx_http_chat_ffi_chat_detach(void *op);


/* an event to every socket of a user ("user") or of a chat ("chat") */

int
ngx_http_chat_ffi_publish(const char *kind, const char *id, size_t id_len,
    const char *event, const char *data, size_t len)
{
    json_t        *payload;
    ngx_str_t      cid;
    json_error_t   err;

    if (id_len != NGX_HTTP_CHAT_RT_ID_LEN) {
        return -1;
    }

    payload = json_loadb(data, len, 0, &err);
    if (payload == NULL) {
        return -1;
    }

    cid.data = (u_char *) id;
    cid.len = id_len;

    ngx_http_chat_rt_publish(ngx_strcmp(kind, "chat") == 0 ? "chat:"
                                                            : "user:",
                             &cid, event, payload);
    json_decref(payload);

    return 0;
}


/*
 * An event to the sockets of one session of a user (one device's sign-in:
 * check_token gives a token's session), on every instance
 */

int
ngx_http_chat_ffi_publish_session(const char *user, const char *session,
    const char *event, const char *data, size_t len)
{
    json_t        *payload;
    ngx_str_t      uid, sid;
    json_error_t   err;

    if (ngx_strlen(user) != NGX_HTTP_CHAT_RT_ID_LEN
        || ngx_strlen(session) != NGX_HTTP_CHAT_RT_ID_LEN)
    {
        return -1;
    }

    payload = json_loadb(data, len, 0, &err);
    if (payload == NULL) {
        return -1;
    }

    uid.data = (u_char *) user;
    uid.len = NGX_HTTP_CHAT_RT_ID_LEN;
    sid.data = (u_char *) session;
    sid.len = NGX_HTTP_CHAT_RT_ID_LEN;

    ngx_http_chat_rt_publish_as("user:", &uid, 's', NULL, &sid, event,
                                payload);
    json_decref(payload);

    return 0;
}


/*
 * An event to one socket, by the id the socket hook was given
 * (socketId), on whichever instance holds it
 */

int
ngx_http_chat_ffi_publish_socket(const char *sock, const char *event,
    const char *data, size_t len)
{
    json_t        *payload;
    ngx_str_t      id;
    json_error_t   err;

    id.data = (u_char *) sock;
    id.len = ngx_strlen(sock);

    if (!ngx_http_chat_is_oid(&id)) {
        return -1;
    }

    payload = json_loadb(data, len, 0, &err);
    if (payload == NULL) {
        return -1;
    }

    ngx_http_chat_rt_publish("sock:", &id, event, payload);
    json_decref(payload);

    return 0;
}


/*
 * An access token as the gate reads it (signature, algorithm, expiry,
 * issuer and audience): 0 and user, session (25 bytes each, 24 hex and a
 * NUL), or -1 and *reason.
 */

int
ngx_http_chat_ffi_check_token(const char *token, size_t len, char *user,
    char *session, const char **reason)
{
    ngx_int_t                   rc;
    ngx_str_t                   t;
    ngx_pool_t                 *pool;
    ngx_http_chat_token_t       tok;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (cmcf == NULL || pool == NULL) {
        *reason = "no memory";
        if (pool) {
            ngx_destroy_pool(pool);
        }
        return -1;
    }

    t.data = (u_char *) token;
    t.len = len;

    rc = ngx_http_chat_jwt_verify(cmcf, pool, &t, &tok, reason);

    if (rc == NGX_OK && tok.sub.len == 24 && tok.sid.len == 24) {
        ngx_cpystrn((u_char *) user, tok.sub.data, 25);
        ngx_cpystrn((u_char *) session, tok.sid.data, 25);

    } else if (rc == NGX_OK) {
        *reason = "the token has no user or session";
        rc = NGX_DECLINED;
    }

    ngx_destroy_pool(pool);

    return rc == NGX_OK ? 0 : -1;
}


/*
 * An access token checked as the gate checks it in full: the token, then
 * its session (and the token itself) not revoked, from Redis or MongoDB.
 * NULL and *err when the token is refused at once; else the call, whose
 * status is 200 (live), 401 (revoked, gone) or 503 (the back ends cannot
 * tell), user and session filled as check_token's.
 */

void *
ngx_http_chat_ffi_check_session(const char *token, size_t len, char *user,
    char *session, void *sem, ngx_http_chat_ffi_post_pt post,
    const char **err)
{
    u_char                      jti[64];
    ngx_int_t                   rc;
    ngx_str_t                   t, uid, sid, tid;
    ngx_pool_t                 *pool;
    ngx_http_chat_token_t       tok;
    ngx_http_chat_ffi_call_t   *call;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (cmcf == NULL || pool == NULL) {
        *err = "no memory";
        if (pool) {
            ngx_destroy_pool(pool);
        }
        return NULL;
    }

    t.data = (u_char *) token;
    t.len = len;

    rc = ngx_http_chat_jwt_verify(cmcf, pool, &t, &tok, err);

    if (rc == NGX_OK
        && (tok.sub.len != 24 || tok.sid.len != 24 || tok.jti.len == 0
            || tok.jti.len > sizeof(jti)))
    {
        *err = "the token has no user or session";
        rc = NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    ngx_cpystrn((u_char *) user, tok.sub.data, 25);
    ngx_cpystrn((u_char *) session, tok.sid.data, 25);
    ngx_memcpy(jti, tok.jti.data, tok.jti.len);

    uid.data = (u_char *) user;
    uid.len = 24;
    sid.data = (u_char *) session;
    sid.len = 24;
    tid.data = jti;
    tid.len = tok.jti.len;

    ngx_destroy_pool(pool);

    call = ngx_http_chat_ffi_call(sem, post, err);
    if (call == NULL) {
        return NULL;
    }

    call->waiting = 1;

    /* the check copies what it keeps */
    if (ngx_http_chat_session_check(&sid, &uid, &tid,
                                    ngx_http_chat_ffi_session_checked, call)
        != NGX_OK)
    {
        ngx_free(call);
        *err = "redis is not available";
        return NULL;
    }

    return call;
}


static void
ngx_http_chat_ffi_session_checked(void *data, ngx_int_t rc)
{
    ngx_http_chat_ffi_call_t  *call = data;

    call->waiting = 0;

    if (call->freed) {
        ngx_free(call);
        return;
    }

    call->status = rc == NGX_OK ? NGX_HTTP_OK
                   : rc == NGX_DECLINED ? NGX_HTTP_UNAUTHORIZED
                   : NGX_HTTP_SERVICE_UNAVAILABLE;

    (void) call->post(call->sem, 1);
}


/*
 * A message {chatId, tempId, type, content, ...} sent as user, as POST
 * /api/messages sends it (the same operation and checks).  The call, or
 * NULL and *err; the semaphore is posted once the operation answered.
 */

void *
ngx_http_chat_ffi_send(const char *user, const char *body, size_t len,
    void *sem, ngx_http_chat_ffi_post_pt post, const char **err)
{
    json_t                    *json;
    ngx_int_t                  rc;
    bson_oid_t                 me;
    const char                *field;
    json_error_t               jerr;
    ngx_http_chat_ffi_call_t  *call;

    if (!bson_oid_is_valid(user, ngx_strlen(user))
        || ngx_strlen(user) != 24)
    {
        *err = "invalid user id";
        return NULL;
    }

    bson_oid_init_from_string(&me, user);

    json = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(json)) {
        json_decref(json);
        *err = "the message is not a JSON object";
        return NULL;
    }

    call = ngx_http_chat_ffi_call(sem, post, err);
    if (call == NULL) {
        json_decref(json);
        return NULL;
    }

    call->detach = ngx_http_chat_ffi_send_detach;

    rc = ngx_http_chat_op_send_message(&me, json,
                                       NGX_HTTP_CHAT_OP_SEND_CHECK
                                       |NGX_HTTP_CHAT_OP_SEND_MARK
                                       |NGX_HTTP_CHAT_OP_SEND_CACHE
                                       |NGX_HTTP_CHAT_OP_SEND_BOUND,
                                       ngx_http_chat_ffi_sent, call,
                                       (ngx_http_chat_op_send_t **) &call->op,
                                       &field, err);
    json_decref(json);

    if (rc == NGX_OK) {
        return call;
    }

    ngx_free(call);

    if (rc == NGX_DECLINED) {
        /* *err says what is wrong with field */
        return NULL;
    }

    *err = rc == NGX_AGAIN ? "overloaded" : "the store is not available";

    return NULL;
}


static void
ngx_http_chat_ffi_sent(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_ffi_call_t  *call = data;

    json_t                   *json;
    ngx_http_chat_op_told_t   told;

    call->op = NULL;

    if (call->freed) {
        json_decref(answer);
        ngx_free(call);
        return;
    }

    /* told as REST tells it: the status and the body */
    ngx_http_chat_op_tell(rc, answer, 1, &told);

    json = told.answer ? told.answer : ngx_http_chat_op_envelope(&told);

    call->status = told.status ? (int) told.status : 500;
    call->answer = json ? json_dumps(json, JSON_COMPACT) : NULL;
    call->len = call->answer ? ngx_strlen(call->answer) : 0;

    json_decref(json);

    if (told.answer == NULL) {
        json_decref(told.details);
        json_decref(told.keep);
    }

    (void) call->post(call->sem, 1);
}


static ngx_http_chat_ffi_call_t *
ngx_http_chat_ffi_call(void *sem, ngx_http_chat_ffi_post_pt post,
    const char **err)
{
    ngx_http_chat_ffi_call_t  *call;

    call = ngx_calloc(sizeof(ngx_http_chat_ffi_call_t), ngx_cycle->log);
    if (call == NULL) {
        *err = "no memory";
        return NULL;
    }

    call->sem = sem;
    call->post = post;

    return call;
}


static ngx_int_t
ngx_http_chat_ffi_oid(const char *hex, bson_oid_t *oid)
{
    if (hex == NULL || ngx_strlen(hex) != 24
        || !bson_oid_is_valid(hex, 24))
    {
        return NGX_ERROR;
    }

    bson_oid_init_from_string(oid, hex);

    return NGX_OK;
}


/*
 * A system message (content {action, ...}, as the group notices are) in
 * chat on behalf of actor, a member (a bot's account, a moderator): the
 * send operation without the site's filter, numbered and delivered as
 * every message; its tempId "sys<id>".
 */

void *
ngx_http_chat_ffi_send_system(const char *chat, const char *actor,
    const char *content, size_t len, void *sem,
    ngx_http_chat_ffi_post_pt post, const char **err)
{
    char                       id[25];
    size_t                     n, size;
    json_t                    *json;
    ngx_int_t                  rc;
    json_error_t               jerr;
    ngx_http_chat_msg_arg_t   *arg;
    ngx_http_chat_ffi_call_t  *call;

    json = json_loadb(content, len, 0, &jerr);

    if (!json_is_object(json)
        || !json_is_string(json_object_get(json, "action")))
    {
        json_decref(json);
        *err = "the content must be an object with an \"action\" string";
        return NULL;
    }

    n = json_dumpb(json, NULL, 0, JSON_COMPACT);
    size = sizeof(ngx_http_chat_msg_arg_t) + n + 1;

    arg = ngx_calloc(size, ngx_cycle->log);
    if (arg == NULL || n == 0) {
        json_decref(json);
        ngx_free(arg);
        *err = "no memory";
        return NULL;
    }

    arg->content_len = json_dumpb(json, (char *) (arg + 1), n, JSON_COMPACT);
    json_decref(json);

    if (ngx_http_chat_ffi_oid(chat, &arg->chat) != NGX_OK
        || ngx_http_chat_ffi_oid(actor, &arg->user) != NGX_OK)
    {
        ngx_free(arg);
        *err = "invalid chat or actor id";
        return NULL;
    }

    bson_oid_init(&arg->id, NULL);
    bson_oid_to_string(&arg->id, id);
    ngx_sprintf((u_char *) arg->temp_id, "sys%s%Z", id);
    ngx_memcpy(arg->type, "system", sizeof("system"));

    call = ngx_http_chat_ffi_call(sem, post, err);
    if (call == NULL) {
        ngx_free(arg);
        return NULL;
    }

    call->detach = ngx_http_chat_ffi_send_detach;

    /* the check: the actor may send there */
    rc = ngx_http_chat_op_send(arg, size, NGX_HTTP_CHAT_OP_SEND_CHECK,
                               ngx_http_chat_ffi_sent, call,
                               (ngx_http_chat_op_send_t **) &call->op);
    ngx_free(arg);

    if (rc != NGX_OK) {
        ngx_free(call);
        *err = "the store is not available";
        return NULL;
    }

    return call;
}


/*
 * A chat as its member user reads it (GET /api/chats/:id): its members
 * with their roles; 404 when user is not one of them
 */

void *
ngx_http_chat_ffi_chat(const char *user, const char *chat, void *sem,
    ngx_http_chat_ffi_post_pt post, const char **err)
{
    ngx_int_t                   rc;
    ngx_http_chat_ffi_call_t   *call;
    ngx_http_chat_group_arg_t  *arg;

    arg = ngx_calloc(sizeof(ngx_http_chat_group_arg_t), ngx_cycle->log);
    if (arg == NULL) {
        *err = "no memory";
        return NULL;
    }

    if (ngx_http_chat_ffi_oid(user, &arg->user) != NGX_OK
        || ngx_http_chat_ffi_oid(chat, &arg->chat) != NGX_OK)
    {
        ngx_free(arg);
        *err = "invalid user or chat id";
        return NULL;
    }

    arg->op = NGX_HTTP_CHAT_GROUP_GET;

    call = ngx_http_chat_ffi_call(sem, post, err);
    if (call == NULL) {
        ngx_free(arg);
        return NULL;
    }

    call->detach = ngx_http_chat_ffi_chat_detach;

    /* the operation copies arg */
    rc = ngx_http_chat_op_chat_get(arg, ngx_http_chat_ffi_sent, call,
                                   (ngx_http_chat_op_chat_list_t **)
                                   &call->op);
    ngx_free(arg);

    if (rc != NGX_OK) {
        ngx_free(call);
        *err = "the store is not available";
        return NULL;
    }

    return call;
}


/*
 * Is user online: *here, the user's sockets in this worker, at once; the
 * call's answer {"workers": n, "sockets": m}, the live workers of every
 * instance that count a socket of theirs (this one included) and their
 * sockets there, from Redis
 */

void *
ngx_http_chat_ffi_presence(const char *user, void *sem,
    ngx_http_chat_ffi_post_pt post, int *here, const char **err)
{
    u_char                      ttl[NGX_INT64_LEN];
    ngx_int_t                   rc;
    bson_oid_t                  oid;
    const char                 *argv[5];
    size_t                      argvlen[5];
    ngx_http_chat_ffi_call_t   *call;
    ngx_http_chat_main_conf_t  *cmcf;

    if (ngx_http_chat_ffi_oid(user, &oid) != NGX_OK) {
        *err = "invalid user id";
        return NULL;
    }

    *here = (int) ngx_http_chat_rt_presence_here((u_char *) user);

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);

    call = ngx_http_chat_ffi_call(sem, post, err);
    if (call == NULL) {
        return NULL;
    }

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_chat_ffi_presence_lua;
    argvlen[1] = sizeof(ngx_http_chat_ffi_presence_lua) - 1;
    argv[2] = "0";
    argvlen[2] = 1;
    argv[3] = user;
    argvlen[3] = 24;
    argv[4] = (char *) ttl;
    argvlen[4] = ngx_sprintf(ttl, "%M", cmcf->presence_ttl) - ttl;

    call->waiting = 1;

    /* the user's keys, and the workers' beats there, on their shard */
    rc = ngx_http_chat_redis_command_argv(
             ngx_http_chat_redis_of((u_char *) user, 24),
             ngx_http_chat_ffi_counted, call, 5, argv, argvlen);
    if (rc != NGX_OK) {
        ngx_free(call);
        *err = "redis is not available";
        return NULL;
    }

    return call;
}


static void
ngx_http_chat_ffi_counted(redisReply *reply, void *data)
{
    ngx_http_chat_ffi_call_t  *call = data;

    u_char  *p;

    call->waiting = 0;

    if (call->freed) {
        ngx_free(call);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        call->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    } else {
        call->answer = malloc(sizeof("{\"workers\":,\"sockets\":}")
                              + 2 * NGX_INT64_LEN);

        if (call->answer) {
            p = ngx_sprintf((u_char *) call->answer,
                            "{\"workers\":%L,\"sockets\":%L}",
                            (int64_t) reply->element[0]->integer,
                            (int64_t) reply->element[1]->integer);
            call->len = p - (u_char *) call->answer;
        }

        call->status = NGX_HTTP_OK;
    }

    (void) call->post(call->sem, 1);
}


static void
ngx_http_chat_ffi_send_detach(void *op)
{
    ngx_http_chat_op_send_detach(op);
}


static void
ngx_http_chat_ffi_chat_detach(void *op)
{
    ngx_http_chat_op_chat_list_detach(op);
}


int
ngx_http_chat_ffi_call_status(void *call)
{
    return ((ngx_http_chat_ffi_call_t *) call)->status;
}


const char *
ngx_http_chat_ffi_call_answer(void *call, size_t *len)
{
    *len = ((ngx_http_chat_ffi_call_t *) call)->len;

    return ((ngx_http_chat_ffi_call_t *) call)->answer;
}


/* Lua is done with it (or its coroutine went): the operation goes on */

void
ngx_http_chat_ffi_call_free(void *p)
{
    ngx_http_chat_ffi_call_t  *call = p;

    free(call->answer);
    call->answer = NULL;

    if (call->op) {
        /* the operation runs to its end, answering nobody */
        call->detach(call->op);

    } else if (call->waiting) {
        /* hiredis calls back later: the call goes then */
        call->freed = 1;
        return;
    }

    ngx_free(call);
}
