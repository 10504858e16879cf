/*
 * Copyright (C) ngx_chat_module authors
 *
 * Sessions: the token pair of a sign-in, refresh-token rotation with
 * reuse detection, logout, and a user's list of devices.  Redis holds the
 * atomic part (sess:<id> = {uid, cur: hash of the live refresh token,
 * revoked}, sess:<id>:used = hashes already rotated away); MongoDB keeps
 * the session documents that users list.
 */


#include "ngx_http_chat_auth.h"
#include "ngx_http_chat_jwt.h"
#include "../store/ngx_http_chat_users.h"
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>


typedef struct {
    json_t                      *reply;
    ngx_str_t                    uid;
    ngx_str_t                    sid;
    ngx_str_t                    refresh;
    ngx_str_t                    keys[2];
} ngx_http_chat_session_t;


static const char  ngx_http_chat_session_create[] =
    "redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'cur', ARGV[2]) "
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) "
    "return 1";


/* {"ok", uid} | {"reuse", uid} | {"revoked"} | {"invalid"} */
static const char  ngx_http_chat_session_rotate[] =
    "local s = redis.call('HMGET', KEYS[1], 'uid', 'cur', 'revoked') "
    "if not s[1] then return {'invalid'} end "
    "if s[3] then return {'revoked'} end "
    "if s[2] == ARGV[1] then"
    "  redis.call('HSET', KEYS[1], 'cur', ARGV[2])"
    "  redis.call('SADD', KEYS[2], ARGV[1])"
    "  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))"
    "  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))"
    "  return {'ok', s[1]} "
    "end "
    "if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then"
    "  redis.call('HSET', KEYS[1], 'revoked', '1')"
    "  return {'reuse', s[1]} "
    "end "
    "return {'invalid'}";


/* for each KEYS[i] = sess:<id>: 1 while it can still be used, else 0 */
static const char  ngx_http_chat_session_live[] =
    "local r = {} "
    "for i, k in ipairs(KEYS) do"
    "  local s = redis.call('HMGET', k, 'uid', 'revoked')"
    "  r[i] = (s[1] and not s[2]) and 1 or 0 "
    "end "
    "return r";


/* KEYS: sess.  ARGV: the user who asks.  1: it was theirs, now revoked */
static const char  ngx_http_chat_session_revoke_own[] =
    "if redis.call('HGET', KEYS[1], 'uid') ~= ARGV[1] then return 0 end "
    "redis.call('HSET', KEYS[1], 'revoked', '1') "
    "return 1";


/* KEYS: sess, jti (optional).  ARGV: the jti's remaining lifetime */
static const char  ngx_http_chat_session_revoke[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then"
    "  redis.call('HSET', KEYS[1], 'revoked', '1') "
    "end "
    "if KEYS[2] then"
    "  redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[1])) "
    "end "
    "return 1";


static ngx_int_t ngx_http_chat_session_created(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_session_rotated(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_session_logged_out(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_session_revoked_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_session_listed(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_session_check_live(ngx_http_request_t *r,
    json_t *items);
static ngx_int_t ngx_http_chat_session_alive(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_session_deleted(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_session_unlinked(ngx_http_request_t *r,
    redisReply *reply);


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
    key->data = ngx_pnalloc(pool, sizeof("sess:") + sid->len
                                  + ngx_strlen(suffix));
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_sprintf(key->data, "sess:%V%s", sid, suffix) - key->data;

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
    ngx_str_t                   hash, args[3];
    ngx_http_chat_session_t    *ss;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    ss = ngx_http_chat_session_state(r, reply);
    if (ss == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ss->uid = *uid;
    ss->sid = *sid;

    if (ngx_http_chat_refresh_new(r->pool, sid, &ss->refresh, &hash)
        != NGX_OK
        || ngx_http_chat_session_key(r->pool, &ss->keys[0], sid, "")
           != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[2], cmcf->refresh_ttl)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args[0] = *uid;
    args[1] = hash;

    return ngx_http_chat_redis_eval(r, ngx_http_chat_session_create, 1,
                                      ss->keys, 3, args,
                                      ngx_http_chat_session_created);
}


static ngx_int_t
ngx_http_chat_session_created(ngx_http_request_t *r, redisReply *reply)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    return ngx_http_chat_session_send(r, ctx->state);
}


ngx_int_t
ngx_http_chat_refresh_token(ngx_http_request_t *r)
{
    ngx_str_t                   token, sid, presented, args[3];
    const char                 *err;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_session_t    *ss;
    ngx_http_chat_main_conf_t  *cmcf;

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
    if (ss == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the token lives in the body, which the pool keeps */
    ss->sid.data = ngx_pstrdup(r->pool, &sid);
    if (ss->sid.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ss->sid.len = sid.len;

    if (ngx_http_chat_sha256_hex(r->pool, &token, &presented) != NGX_OK
        || ngx_http_chat_refresh_new(r->pool, &ss->sid, &ss->refresh,
                                     &args[1])
           != NGX_OK
        || ngx_http_chat_session_key(r->pool, &ss->keys[0], &ss->sid, "")
           != NGX_OK
        || ngx_http_chat_session_key(r->pool, &ss->keys[1], &ss->sid,
                                     ":used")
           != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[2], cmcf->refresh_ttl)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args[0] = presented;

    return ngx_http_chat_redis_eval(r, ngx_http_chat_session_rotate, 2,
                                      ss->keys, 3, args,
                                      ngx_http_chat_session_rotated);
}


static void
ngx_http_chat_session_revoke_later(ngx_str_t *uid, ngx_str_t *sid)
{
    ngx_http_chat_user_arg_t     arg;
    ngx_http_chat_mongo_task_t  *t;

    ngx_memzero(&arg, sizeof(arg));

    if (!bson_oid_is_valid((char *) uid->data, uid->len)
        || !bson_oid_is_valid((char *) sid->data, sid->len))
    {
        return;
    }

    bson_oid_init_from_string_unsafe(&arg.user_id, (char *) uid->data);
    bson_oid_init_from_string_unsafe(&arg.session_id, (char *) sid->data);

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_sessions_revoke_run,
                                            NULL, NULL, &arg, sizeof(arg));
    if (t) {
        (void) ngx_http_chat_mongo_post(t);
    }
}


static ngx_int_t
ngx_http_chat_session_rotated(ngx_http_request_t *r, redisReply *reply)
{
    ngx_str_t                    status;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_session_t     *ss;
    ngx_http_chat_user_arg_t     arg;
    ngx_http_chat_mongo_task_t  *t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    ss = ctx->state;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    status.data = (u_char *) reply->element[0]->str;
    status.len = reply->element[0]->len;

    if (reply->elements == 2 && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        ss->uid.len = reply->element[1]->len;
        ss->uid.data = ngx_pnalloc(r->pool, ss->uid.len + 1);
        if (ss->uid.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ss->uid.data, reply->element[1]->str, ss->uid.len);
        ss->uid.data[ss->uid.len] = '\0';
    }

    if (status.len == 5 && ngx_strncmp(status.data, "reuse", 5) == 0) {
        /* a rotated-away token came back: assume it was stolen */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "chat: refresh token reused, session %V revoked",
                      &ss->sid);

        ngx_http_chat_session_revoked(&ss->uid, &ss->sid);
        ngx_http_chat_session_revoke_later(&ss->uid, &ss->sid);

        return ngx_http_chat_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "refresh_token_reused",
                                        "this refresh token was already "
                                        "used; the session is revoked, "
                                        "sign in again");
    }

    if (status.len != 2 || ngx_strncmp(status.data, "ok", 2) != 0
        || !ngx_http_chat_is_oid(&ss->uid))
    {
        return ngx_http_chat_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "invalid_refresh_token",
                                        "the refresh token is not valid");
    }

    /* lastUsedAt is bookkeeping: nobody waits for it */
    ngx_memzero(&arg, sizeof(arg));
    bson_oid_init_from_string_unsafe(&arg.session_id, (char *) ss->sid.data);

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_sessions_touch_run,
                                            NULL, NULL, &arg, sizeof(arg));
    if (t) {
        (void) ngx_http_chat_mongo_post(t);
    }

    return ngx_http_chat_session_send(r, ss);
}


ngx_int_t
ngx_http_chat_logout(ngx_http_request_t *r)
{
    time_t                      ttl;
    ngx_str_t                   keys[2], arg;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_main_conf_t  *cmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    ttl = ctx->token_exp - ngx_time() + cmcf->jwt_leeway;
    if (ttl < 1) {
        ttl = 1;
    }

    keys[1].data = ngx_pnalloc(r->pool, sizeof("jti:") + ctx->jti.len);
    if (keys[1].data == NULL
        || ngx_http_chat_session_key(r->pool, &keys[0], &ctx->session_id, "")
           != NGX_OK
        || ngx_http_chat_str_num(r->pool, &arg, ttl) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    keys[1].len = ngx_sprintf(keys[1].data, "jti:%V", &ctx->jti)
                  - keys[1].data;

    return ngx_http_chat_redis_eval(r, ngx_http_chat_session_revoke, 2,
                                      keys, 1, &arg,
                                      ngx_http_chat_session_logged_out);
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


static ngx_int_t
ngx_http_chat_session_logged_out(ngx_http_request_t *r, redisReply *reply)
{
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_user_arg_t   arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    /* revoked in Redis: its sockets go now, whatever Mongo says */
    ngx_http_chat_session_revoked(&ctx->user_id, &ctx->session_id);

    if (ngx_http_chat_user_arg(r, &arg, &ctx->session_id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_sessions_revoke_run,
                                       ngx_http_chat_session_revoked_done,
                                       &arg, sizeof(arg));
}


static ngx_int_t
ngx_http_chat_session_revoked_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    if (t->rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: session revoke failed in mongo: %s",
                      t->error.message);
    }

    /* Redis already refuses the session: the logout holds either way */
    return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                   json_pack("{s:b}", "success", 1));
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
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "a back end is unavailable, "
                                        "try again shortly");
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

    return ngx_http_chat_session_check_live(r, items);
}


/*
 * Redis forgets a session 30 idle days after its last refresh, MongoDB
 * does not: list only those Redis still honours
 */

static ngx_int_t
ngx_http_chat_session_check_live(ngx_http_request_t *r, json_t *items)
{
    size_t                    i, n;
    ngx_str_t                *keys, sid;
    ngx_http_chat_session_t  *ss;

    n = json_array_size(items);

    if (n == 0 || n > NGX_HTTP_CHAT_EVAL_MAX) {
        /* more devices than one script takes: list them all */
        return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                       json_pack("{s:o}", "items", items));
    }

    ss = ngx_http_chat_session_state(r, items);
    if (ss == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    keys = ngx_palloc(r->pool, n * sizeof(ngx_str_t));
    if (keys == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < n; i++) {
        sid.data = (u_char *) json_string_value(
                       json_object_get(json_array_get(items, i), "id"));
        sid.len = sid.data ? 24 : 0;

        if (sid.data == NULL
            || ngx_http_chat_session_key(r->pool, &keys[i], &sid, "")
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_chat_redis_eval(r, ngx_http_chat_session_live, n, keys,
                                    0, NULL, ngx_http_chat_session_alive);
}


static ngx_int_t
ngx_http_chat_session_alive(ngx_http_request_t *r, redisReply *reply)
{
    size_t                    i, n;
    json_t                   *live;
    ngx_http_chat_ctx_t      *ctx;
    ngx_http_chat_session_t  *ss;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    ss = ctx->state;
    n = json_array_size(ss->reply);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    live = json_array();
    if (live == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (reply->element[i]->type == REDIS_REPLY_INTEGER
            && reply->element[i]->integer == 1)
        {
            json_array_append(live, json_array_get(ss->reply, i));
        }
    }

    return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                   json_pack("{s:o}", "items", live));
}


/*
 * DELETE /api/auth/sessions/:id: Redis first, where the tokens are checked,
 * so that the device is out even if the client leaves before the answer;
 * then the document users list.
 */

ngx_int_t
ngx_http_chat_sessions_delete(ngx_http_request_t *r)
{
    ngx_str_t             key;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ctx->nparams != 1 || !ngx_http_chat_is_oid(&ctx->params[0])) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such session");
    }

    if (ngx_http_chat_session_key(r->pool, &key, &ctx->params[0], "")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_redis_eval(r, ngx_http_chat_session_revoke_own, 1,
                                    &key, 1, &ctx->user_id,
                                    ngx_http_chat_session_unlinked);
}


static ngx_int_t
ngx_http_chat_session_unlinked(ngx_http_request_t *r, redisReply *reply)
{
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_user_arg_t   arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (reply->type != REDIS_REPLY_INTEGER) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* remembered for the answer: Redis may have let an idle one expire */
    ctx->state = (void *) (uintptr_t) reply->integer;

    if (reply->integer == 1) {
        ngx_http_chat_session_revoked(&ctx->user_id, &ctx->params[0]);
    }

    if (ngx_http_chat_user_arg(r, &arg, &ctx->params[0]) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_sessions_revoke_run,
                                       ngx_http_chat_session_deleted,
                                       &arg, sizeof(arg));
}


static ngx_int_t
ngx_http_chat_session_deleted(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (t->rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: session revoke failed in mongo: %s",
                      t->error.message);
    }

    if (ctx->state == NULL && t->rc != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such session");
    }

    return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                   json_pack("{s:b}", "success", 1));
}


/*
 * Every path that revokes a session (logout, a device removed, a reused
 * refresh token) ends here once Redis refuses the session: its sockets,
 * on every instance, get "session_revoked" and close.  A socket that
 * misses it (a lost pub/sub message) is caught when the subscriber
 * reconnects or when its access token expires.
 */
void
ngx_http_chat_session_revoked(ngx_str_t *uid, ngx_str_t *sid)
{
    json_t  *data;

    if (uid->len != 24 || sid->len != 24) {
        return;
    }

    data = json_pack("{s:s%}", "sessionId", sid->data, sid->len);
    if (data == NULL) {
        return;
    }

    ngx_http_chat_event_publish("user:", uid, 'r', uid, sid,
                                "session_revoked", data);
    json_decref(data);
}
