/*
 * Copyright (C) ngx_chat_module authors
 *
 * Sessions: the token pair of a sign-in, refresh-token rotation with
 * reuse detection, logout, and a user's list of devices.  MongoDB's
 * session document is the record of each (ngx_http_chat_sessions_store.c):
 * every change is written there first, a revocation included, so that a
 * Redis that loses its data signs nobody out and revives no session.
 * Redis caches what the access check needs (sess:<id> = {uid, revoked},
 * ngx_http_chat_session_check.c) and each revoked token id (jti:<id>).
 *
 * This file is the HTTP adapter; a rotation and a revocation are
 * operations (ngx_http_chat_session_op.c) that run to their end whether
 * or not the request still waits.
 */


#include "ngx_http_chat_auth.h"
#include "ngx_http_chat_jwt.h"
#include "ngx_http_chat_session_op.h"
#include "../core/ngx_http_chat_wait.h"
#include "../store/ngx_http_chat_users.h"
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>


/* s: how long Redis keeps a live session before asking MongoDB again */
#define NGX_HTTP_CHAT_SESSION_CACHE_TTL  3600


typedef struct {
    json_t                      *reply;
    ngx_str_t                    uid;
    ngx_str_t                    sid;
    ngx_str_t                    refresh;
    ngx_str_t                    keys[2];
} ngx_http_chat_session_t;


/* KEYS: sess.  ARGV: uid, the cache's ttl */
static const char  ngx_http_chat_session_create[] =
    "redis.call('HSET', KEYS[1], 'uid', ARGV[1]) "
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) "
    "return 1";


static ngx_int_t ngx_http_chat_session_created(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_chat_session_rotated(void *data, ngx_int_t rc,
    ngx_str_t *uid);
static void ngx_http_chat_session_revoked_done(void *data, ngx_int_t rc,
    ngx_str_t *uid);
static ngx_int_t ngx_http_chat_session_listed(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);


static void
ngx_http_chat_json_pool_cleanup(void *data)
{
    json_decref((json_t *) data);
}


ngx_int_t
ngx_http_chat_sha256_hex(ngx_pool_t *pool, ngx_str_t *in, ngx_str_t *out)
{
    u_char  md[SHA256_DIGEST_LENGTH];

    if (SHA256(in->data, in->len, md) == NULL) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, 2 * sizeof(md));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_hex_dump(out->data, md, sizeof(md)) - out->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_refresh_new(ngx_pool_t *pool, ngx_str_t *sid,
    ngx_str_t *token, ngx_str_t *hash)
{
    u_char     rnd[32], *p;
    ngx_str_t  src, dst;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(pool, sid->len + 1 + ngx_base64_encoded_length(32));
    if (p == NULL) {
        return NGX_ERROR;
    }

    token->data = p;
    p = ngx_cpymem(p, sid->data, sid->len);
    *p++ = '.';

    src.data = rnd;
    src.len = sizeof(rnd);
    dst.data = p;
    ngx_encode_base64url(&dst, &src);

    token->len = p + dst.len - token->data;

    return ngx_http_chat_sha256_hex(pool, token, hash);
}


static ngx_int_t
ngx_http_chat_session_key(ngx_pool_t *pool, ngx_str_t *key, ngx_str_t *sid,
    const char *suffix)
{
    key->data = ngx_pnalloc(pool, sizeof("sess:{}") + sid->len
                                  + ngx_strlen(suffix));
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    /* tagged by the session: on its shard (store/_redis_shards.h) */
    key->len = ngx_sprintf(key->data, "sess:{%V}%s", sid, suffix)
               - key->data;

    return NGX_OK;
}


static ngx_http_chat_session_t *
ngx_http_chat_session_state(ngx_http_request_t *r, json_t *reply)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_chat_ctx_t      *ctx;
    ngx_http_chat_session_t  *ss;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    ss = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_session_t));
    if (ss == NULL) {
        json_decref(reply);
        return NULL;
    }

    if (reply) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            json_decref(reply);
            return NULL;
        }

        cln->handler = ngx_http_chat_json_pool_cleanup;
        cln->data = reply;
        ss->reply = reply;
    }

    ctx->state = ss;

    return ss;
}


/* adds accessToken, refreshToken, expiresIn to reply and sends it */

static ngx_int_t
ngx_http_chat_session_send(ngx_http_request_t *r,
    ngx_http_chat_session_t *ss)
{
    time_t                      exp;
    ngx_str_t                   token, jti;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    if (ngx_http_chat_jwt_issue(cmcf, r->pool, &ss->uid, &ss->sid, &token,
                                &jti, &exp)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: cannot issue an access token");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_object_set_new(ss->reply, "accessToken",
                        json_stringn((char *) token.data, token.len));
    json_object_set_new(ss->reply, "refreshToken",
                        json_stringn((char *) ss->refresh.data,
                                     ss->refresh.len));
    json_object_set_new(ss->reply, "expiresIn",
                        json_integer((json_int_t) cmcf->jwt_ttl));
    json_object_set_new(ss->reply, "tokenType", json_string("Bearer"));

    return ngx_http_chat_send_json(r, NGX_HTTP_OK, json_incref(ss->reply));
}


ngx_int_t
ngx_http_chat_session_tokens(ngx_http_request_t *r, ngx_str_t *uid,
    ngx_str_t *sid, ngx_str_t *refresh, json_t *reply)
{
    time_t                      ttl;
    ngx_str_t                   args[2];
    ngx_http_chat_session_t    *ss;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    ss = ngx_http_chat_session_state(r, reply);
    if (ss == NULL || refresh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ss->uid = *uid;
    ss->sid = *sid;
    ss->refresh = *refresh;

    ttl = ngx_min(cmcf->refresh_ttl, NGX_HTTP_CHAT_SESSION_CACHE_TTL);

    if (ngx_http_chat_session_key(r->pool, &ss->keys[0], sid, "")
        != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[1], ttl) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args[0] = *uid;

    /* the session document is written: this only warms the cache */
    return ngx_http_chat_redis_eval(r, ngx_http_chat_session_create, 1,
                                    ss->keys, 2, args,
                                    ngx_http_chat_session_created);
}


static ngx_int_t
ngx_http_chat_session_created(ngx_http_request_t *r, redisReply *reply)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    return ngx_http_chat_session_send(r, ctx->state);
}


/*
 * POST /api/auth/refresh-token {refreshToken}: a rotation, an operation
 * (ngx_http_chat_session_op.h) whose reuse revokes the session whoever
 * waits
 */

ngx_int_t
ngx_http_chat_refresh_token(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    token, sid, presented, next;
    const char                  *err;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_wait_t        *w;
    ngx_http_chat_session_t     *ss;
    ngx_http_chat_rotate_arg_t   arg;
    ngx_http_chat_main_conf_t   *cmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    err = ngx_http_chat_json_string(ctx->body, "refreshToken", 1, 128,
                                    &token);
    if (err) {
        return ngx_http_chat_send_invalid(r, "refreshToken", err);
    }

    sid.data = token.data;
    sid.len = 24;

    if (token.len != 24 + 1 + 43 || token.data[24] != '.'
        || !ngx_http_chat_is_oid(&sid))
    {
        return ngx_http_chat_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "invalid_refresh_token",
                                        "the refresh token is not valid");
    }

    ss = ngx_http_chat_session_state(r, json_object());
    w = ngx_http_chat_wait(r, ngx_http_chat_session_op_detach);
    if (ss == NULL || w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the token lives in the body, which the pool keeps */
    ss->sid.data = ngx_pstrdup(r->pool, &sid);
    if (ss->sid.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ss->sid.len = sid.len;

    if (ngx_http_chat_sha256_hex(r->pool, &token, &presented) != NGX_OK
        || ngx_http_chat_refresh_new(r->pool, &ss->sid, &ss->refresh, &next)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&arg, sizeof(arg));
    bson_oid_init_from_string_unsafe(&arg.session_id, (char *) ss->sid.data);
    ngx_memcpy(arg.presented, presented.data,
               ngx_min(presented.len, sizeof(arg.presented) - 1));
    ngx_memcpy(arg.next, next.data, ngx_min(next.len, sizeof(arg.next) - 1));
    arg.ttl = (int64_t) cmcf->refresh_ttl * 1000;

    rc = ngx_http_chat_session_op_rotate(&arg, ngx_http_chat_session_rotated,
                                         w, (ngx_http_chat_session_op_t **)
                                            &w->op);

    return ngx_http_chat_wait_start(r, w, rc);
}


static void
ngx_http_chat_session_rotated(void *data, ngx_int_t rc, ngx_str_t *uid)
{
    ngx_int_t                 ret;
    ngx_http_request_t       *r;
    ngx_http_chat_ctx_t      *ctx;
    ngx_http_chat_session_t  *ss;

    r = ngx_http_chat_wait_over(data);

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    ss = ctx->state;

    switch (rc) {

    case NGX_OK:
        ss->uid.data = ngx_pstrdup(r->pool, uid);
        if (ss->uid.data == NULL) {
            ret = NGX_HTTP_INTERNAL_SERVER_ERROR;
            break;
        }

        ss->uid.len = uid->len;
        ret = ngx_http_chat_session_send(r, ss);
        break;

    case NGX_BUSY:
        ret = ngx_http_chat_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                       "refresh_token_reused",
                                       "this refresh token was already "
                                       "used; the session is revoked, "
                                       "sign in again");
        break;

    case NGX_DECLINED:
        ret = ngx_http_chat_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                       "invalid_refresh_token",
                                       "the refresh token is not valid");
        break;

    default:
        ret = ngx_http_chat_send_retry(r);
    }

    ngx_http_chat_wait_end(r, ret);
}


/*
 * POST /api/auth/logout and DELETE /api/auth/sessions/:id: a revocation,
 * an operation (ngx_http_chat_session_op.h): the record, the cache and
 * the session's sockets, whoever waits
 */

static ngx_int_t
ngx_http_chat_session_revoke(ngx_http_request_t *r, ngx_uint_t kind,
    ngx_str_t *sid, ngx_str_t *jti, time_t exp)
{
    ngx_int_t              rc;
    ngx_http_chat_ctx_t   *ctx;
    ngx_http_chat_wait_t  *w;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    w = ngx_http_chat_wait(r, ngx_http_chat_session_op_detach);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_session_op_revoke(kind, &ctx->user_id, sid, jti, exp,
                                         ngx_http_chat_session_revoked_done,
                                         w, (ngx_http_chat_session_op_t **)
                                            &w->op);

    return ngx_http_chat_wait_start(r, w, rc);
}


static void
ngx_http_chat_session_revoked_done(void *data, ngx_int_t rc, ngx_str_t *uid)
{
    ngx_int_t              ret;
    ngx_http_request_t    *r;
    ngx_http_chat_wait_t  *w = data;

    r = ngx_http_chat_wait_over(w);

    switch (rc) {

    case NGX_OK:
        ret = ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                      json_pack("{s:b}", "success", 1));
        break;

    case NGX_DECLINED:
        ret = ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                       "no such session");
        break;

    default:
        ret = ngx_http_chat_send_retry(r);
    }

    ngx_http_chat_wait_end(r, ret);
}


/* MongoDB first, then the cache, then the sockets */

ngx_int_t
ngx_http_chat_logout(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    return ngx_http_chat_session_revoke(r, NGX_HTTP_CHAT_SESSION_OP_LOGOUT,
                                        &ctx->session_id, &ctx->jti,
                                        ctx->token_exp);
}


/* only the owner's session matches */

ngx_int_t
ngx_http_chat_sessions_delete(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ctx->nparams != 1 || !ngx_http_chat_is_oid(&ctx->params[0])) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such session");
    }

    return ngx_http_chat_session_revoke(r, NGX_HTTP_CHAT_SESSION_OP_REMOVE,
                                        &ctx->params[0], NULL, 0);
}


ngx_int_t
ngx_http_chat_user_arg(ngx_http_request_t *r, ngx_http_chat_user_arg_t *arg,
    ngx_str_t *sid)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    ngx_memzero(arg, sizeof(ngx_http_chat_user_arg_t));

    if (!ngx_http_chat_is_oid(&ctx->user_id)
        || (sid && !ngx_http_chat_is_oid(sid)))
    {
        return NGX_ERROR;
    }

    /* both were checked to be 24 lowercase hex digits */
    bson_oid_init_from_string_unsafe(&arg->user_id,
                                     (char *) ctx->user_id.data);
    if (sid) {
        bson_oid_init_from_string_unsafe(&arg->session_id,
                                         (char *) sid->data);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_sessions_list(ngx_http_request_t *r)
{
    ngx_http_chat_user_arg_t  arg;

    if (ngx_http_chat_user_arg(r, &arg, NULL) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_sessions_list_run,
                                       ngx_http_chat_session_listed,
                                       &arg, sizeof(arg));
}


/* the record lists the sessions neither revoked nor idle past their end */

static ngx_int_t
ngx_http_chat_session_listed(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    char                  oid[25];
    json_t               *items, *item;
    const char           *key;
    bson_iter_t           it, arr, doc;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: session list failed in mongo: %s",
                      t->error.message);
        return ngx_http_chat_send_retry(r);
    }

    items = json_array();
    if (items == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (bson_iter_init_find(&it, &t->reply, "items")
        && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr))
    {
        while (bson_iter_next(&arr)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr)
                || !bson_iter_recurse(&arr, &doc))
            {
                continue;
            }

            item = json_object();
            if (item == NULL) {
                break;
            }

            while (bson_iter_next(&doc)) {
                key = bson_iter_key(&doc);

                if (ngx_strcmp(key, "_id") == 0 && BSON_ITER_HOLDS_OID(&doc))
                {
                    bson_oid_to_string(bson_iter_oid(&doc), oid);
                    json_object_set_new(item, "id", json_string(oid));
                    json_object_set_new(item, "current",
                        json_boolean(ngx_strncmp(oid,
                                                 ctx->session_id.data, 24)
                                     == 0));

                } else if (BSON_ITER_HOLDS_UTF8(&doc)
                           && (ngx_strcmp(key, "device") == 0
                               || ngx_strcmp(key, "ip") == 0))
                {
                    json_object_set_new(item, key,
                        json_string(bson_iter_utf8(&doc, NULL)));

                } else if (BSON_ITER_HOLDS_DATE_TIME(&doc)
                           && (ngx_strcmp(key, "createdAt") == 0
                               || ngx_strcmp(key, "lastUsedAt") == 0))
                {
                    json_object_set_new(item, key,
                        ngx_http_chat_json_time(bson_iter_date_time(&doc)));
                }
            }

            json_array_append_new(items, item);
        }
    }

    return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                   json_pack("{s:o}", "items", items));
}
