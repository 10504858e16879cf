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
#include "../ops/ngx_http_chat_op_send.h"
#include "../realtime/ngx_http_chat_rt.h"


typedef struct {
    void                        *sem;
    ngx_http_chat_ffi_post_pt    post;
    ngx_http_chat_op_send_t     *op;       /* NULL once answered */
    int                          status;   /* 0 while it runs */
    char                        *answer;   /* JSON, malloc'ed */
    size_t                       len;
} ngx_http_chat_ffi_call_t;


int ngx_http_chat_ffi_publish(const char *kind, const char *id,
    size_t id_len, const char *event, const char *data, size_t len);
int ngx_http_chat_ffi_check_token(const char *token, size_t len,
    char *user, char *session, const char **reason);
void *ngx_http_chat_ffi_send(const char *user, const char *body, size_t len,
    void *sem, ngx_http_chat_ffi_post_pt post, const char **err);
int ngx_http_chat_ffi_call_status(void *call);
const char *ngx_http_chat_ffi_call_answer(void *call, size_t *len);
void ngx_http_chat_ffi_call_free(void *call);


static void ngx_http_chat_ffi_sent(void *data, ngx_int_t rc, json_t *answer,
    const char *error);


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

    call = ngx_calloc(sizeof(ngx_http_chat_ffi_call_t), ngx_cycle->log);
    if (call == NULL) {
        json_decref(json);
        *err = "no memory";
        return NULL;
    }

    call->sem = sem;
    call->post = post;

    rc = ngx_http_chat_op_send_message(&me, json,
                                       NGX_HTTP_CHAT_OP_SEND_CHECK
                                       |NGX_HTTP_CHAT_OP_SEND_MARK
                                       |NGX_HTTP_CHAT_OP_SEND_CACHE
                                       |NGX_HTTP_CHAT_OP_SEND_BOUND,
                                       ngx_http_chat_ffi_sent, call,
                                       &call->op, &field, err);
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

    if (call->op) {
        ngx_http_chat_op_send_detach(call->op);
    }

    free(call->answer);
    ngx_free(call);
}
