/*
 * Copyright (C) ngx_chat_module authors
 *
 * Whether a session still stands, for the access-token gate and for live
 * sockets.  Redis caches what the check needs of a session (sess:<id> =
 * {uid, revoked}); MongoDB's session document is the record.  A session
 * Redis does not hold (it expired, was evicted, or Redis lost its data)
 * is read from MongoDB once, in the thread pool, and cached again; the
 * checks of that session that arrive meanwhile in this worker wait for
 * that one read (single flight).  Only what MongoDB says (revoked, gone,
 * another user's) refuses a session; a back end that cannot answer says
 * so (NGX_AGAIN), never "revoked".
 */


#include "ngx_http_chat_auth.h"
#include "../store/ngx_http_chat_users.h"
#include "../store/ngx_http_chat_redis_shards.h"


#define NGX_HTTP_CHAT_SID_LEN  24


typedef struct {
    ngx_queue_t                        queue;     /* in its flight */
    u_char                             sid[NGX_HTTP_CHAT_SID_LEN];
    u_char                             uid[NGX_HTTP_CHAT_SID_LEN];
    ngx_http_chat_session_checked_pt   handler;   /* NULL: nobody waits */
    void                              *data;
    unsigned                           replies:2; /* to come */
    unsigned                           jti_revoked:1;
    unsigned                           jti_failed:1;
} ngx_http_chat_session_look_t;


/* one MongoDB read of a session, and the checks that wait for it */
typedef struct {
    ngx_str_node_t                     sn;
    u_char                             sid[NGX_HTTP_CHAT_SID_LEN];
    ngx_queue_t                        waiters;
} ngx_http_chat_session_flight_t;


/*
 * A check is plain reads, not a script (a script costs Redis about ten
 * times as much): the token's jti, if any (EXISTS jti:{<sid>}:<jti>,
 * revoked when it is there), then the session (HMGET sess:{<sid>} uid
 * revoked), pipelined to the shard of the session's tag, whose replies
 * come in that order.  They need not be atomic: a revocation between the
 * two is one made after the check.
 */

/*
 * KEYS: sess:<id>.  ARGV: uid, "1" when revoked, ttl.  Never clears
 * "revoked": a revocation cached meanwhile stays.
 */
static const char  ngx_http_chat_session_fill_script[] =
    "redis.call('HSET', KEYS[1], 'uid', ARGV[1]) "
    "if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'revoked', '1') end "
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) "
    "return 1";


static void ngx_http_chat_session_jti(redisReply *reply, void *data);
static void ngx_http_chat_session_cached(redisReply *reply, void *data);
static ngx_int_t ngx_http_chat_session_fly(ngx_http_chat_session_look_t *lk);
static void ngx_http_chat_session_landed(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_session_answer(ngx_http_chat_session_flight_t *f,
    ngx_int_t rc, const char *uid);
static void ngx_http_chat_session_fill(u_char *sid, const char *uid,
    ngx_uint_t revoked, time_t ttl);


static ngx_rbtree_t       ngx_http_chat_session_flights;
static ngx_rbtree_node_t  ngx_http_chat_session_sentinel;
static ngx_uint_t         ngx_http_chat_session_flights_init;


ngx_int_t
ngx_http_chat_session_check(ngx_str_t *sid, ngx_str_t *uid, ngx_str_t *jti,
    ngx_http_chat_session_checked_pt handler, void *data)
{
    u_char                         skey[sizeof("sess:{}") + 24];
    u_char                         jkey[sizeof("jti:{}:") + 24 + 64];
    size_t                         argvlen[4];
    ngx_int_t                      rc;
    const char                    *argv[4];
    ngx_http_chat_session_look_t  *lk;

    if (sid->len != NGX_HTTP_CHAT_SID_LEN || uid->len != NGX_HTTP_CHAT_SID_LEN
        || (jti && (jti->len == 0 || jti->len > 64)))
    {
        return NGX_ERROR;
    }

    lk = ngx_calloc(sizeof(ngx_http_chat_session_look_t), ngx_cycle->log);
    if (lk == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(lk->sid, sid->data, NGX_HTTP_CHAT_SID_LEN);
    ngx_memcpy(lk->uid, uid->data, NGX_HTTP_CHAT_SID_LEN);
    lk->handler = handler;
    lk->data = data;

    if (jti) {
        argv[0] = "EXISTS";
        argvlen[0] = sizeof("EXISTS") - 1;
        argv[1] = (char *) jkey;
        argvlen[1] = ngx_sprintf(jkey, "jti:{%V}:%V", sid, jti) - jkey;

        rc = ngx_http_chat_redis_command_argv(
                                ngx_http_chat_redis_of(lk->sid,
                                                       NGX_HTTP_CHAT_SID_LEN),
                                ngx_http_chat_session_jti, lk, 2, argv,
                                argvlen);
        if (rc != NGX_OK) {
            ngx_free(lk);
            return rc;
        }

        lk->replies++;
    }

    argv[0] = "HMGET";
    argvlen[0] = sizeof("HMGET") - 1;
    argv[1] = (char *) skey;
    argvlen[1] = ngx_sprintf(skey, "sess:{%V}", sid) - skey;
    argv[2] = "uid";
    argvlen[2] = sizeof("uid") - 1;
    argv[3] = "revoked";
    argvlen[3] = sizeof("revoked") - 1;

    rc = ngx_http_chat_redis_command_argv(
                              ngx_http_chat_redis_of(lk->sid,
                                                     NGX_HTTP_CHAT_SID_LEN),
                              ngx_http_chat_session_cached, lk, 4, argv,
                              argvlen);
    if (rc != NGX_OK) {
        if (lk->replies) {
            /* the jti's reply frees it */
            lk->handler = NULL;

        } else {
            ngx_free(lk);
        }

        return rc;
    }

    lk->replies++;

    return NGX_OK;
}


static void
ngx_http_chat_session_jti(redisReply *reply, void *data)
{
    ngx_http_chat_session_look_t *lk = data;

    if (--lk->replies == 0) {
        /* the session's read could not be sent */
        ngx_free(lk);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        lk->jti_failed = 1;

    } else if (reply->integer != 0) {
        lk->jti_revoked = 1;
    }
}


static void
ngx_http_chat_session_cached(redisReply *reply, void *data)
{
    ngx_http_chat_session_look_t *lk = data;

    ngx_int_t    rc;
    redisReply  *u, *r;

    lk->replies--;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2 || lk->jti_failed)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: session check: redis did not answer: %s",
                      (reply && reply->type == REDIS_REPLY_ERROR)
                      ? reply->str : "no reply");
        rc = NGX_AGAIN;
        goto done;
    }

    u = reply->element[0];
    r = reply->element[1];

    if (lk->jti_revoked || r->type != REDIS_REPLY_NIL) {
        rc = NGX_DECLINED;

    } else if (u->type != REDIS_REPLY_STRING) {
        /* not cached */
        if (ngx_http_chat_session_fly(lk) == NGX_OK) {
            return;
        }

        rc = NGX_AGAIN;

    } else {
        rc = (u->len == NGX_HTTP_CHAT_SID_LEN
              && ngx_memcmp(u->str, lk->uid, NGX_HTTP_CHAT_SID_LEN) == 0)
             ? NGX_OK : NGX_DECLINED;
    }

done:

    lk->handler(lk->data, rc);
    ngx_free(lk);
}


/* joins the read of the session in flight, or starts it */

static ngx_int_t
ngx_http_chat_session_fly(ngx_http_chat_session_look_t *lk)
{
    uint32_t                         hash;
    ngx_str_t                        key;
    ngx_http_chat_user_arg_t         arg;
    ngx_http_chat_mongo_task_t      *t;
    ngx_http_chat_session_flight_t  *f;

    if (!ngx_http_chat_session_flights_init) {
        ngx_rbtree_init(&ngx_http_chat_session_flights,
                        &ngx_http_chat_session_sentinel,
                        ngx_str_rbtree_insert_value);
        ngx_http_chat_session_flights_init = 1;
    }

    key.data = lk->sid;
    key.len = NGX_HTTP_CHAT_SID_LEN;
    hash = ngx_crc32_short(key.data, key.len);

    f = (ngx_http_chat_session_flight_t *)
        ngx_str_rbtree_lookup(&ngx_http_chat_session_flights, &key, hash);

    if (f) {
        ngx_queue_insert_tail(&f->waiters, &lk->queue);
        return NGX_OK;
    }

    if (!bson_oid_is_valid((char *) lk->sid, NGX_HTTP_CHAT_SID_LEN)) {
        return NGX_ERROR;
    }

    f = ngx_alloc(sizeof(ngx_http_chat_session_flight_t), ngx_cycle->log);
    if (f == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(f->sid, lk->sid, NGX_HTTP_CHAT_SID_LEN);
    f->sn.str.data = f->sid;
    f->sn.str.len = NGX_HTTP_CHAT_SID_LEN;
    f->sn.node.key = hash;
    ngx_queue_init(&f->waiters);

    ngx_memzero(&arg, sizeof(arg));
    bson_oid_init_from_string_unsafe(&arg.session_id, (char *) f->sid);

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_sessions_get_run,
                                            ngx_http_chat_session_landed,
                                            f, &arg, sizeof(arg));
    if (t == NULL) {
        ngx_free(f);
        return NGX_ERROR;
    }

    if (ngx_http_chat_mongo_post(t) != NGX_OK) {
        ngx_free(f);
        return NGX_ERROR;
    }

    /* the line that tells how often a session is read from MongoDB */
    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "chat: session %*s not in redis, read from mongo",
                  (size_t) NGX_HTTP_CHAT_SID_LEN, f->sid);

    ngx_rbtree_insert(&ngx_http_chat_session_flights, &f->sn.node);
    ngx_queue_insert_tail(&f->waiters, &lk->queue);

    return NGX_OK;
}


static void
ngx_http_chat_session_landed(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_session_flight_t *f = t->data;

    char                        uid[25];
    time_t                      ttl, left;
    int64_t                     expires;
    ngx_uint_t                  revoked;
    bson_iter_t                 it;
    ngx_http_chat_main_conf_t  *cmcf;

    ngx_rbtree_delete(&ngx_http_chat_session_flights, &f->sn.node);

    if (t->rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: session %*s cannot be read from mongo: %s",
                      (size_t) NGX_HTTP_CHAT_SID_LEN, f->sid,
                      t->error.message);
        ngx_http_chat_session_answer(f, NGX_AGAIN, NULL);
        return;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);

    /* refused: cached as long as an access token of it may live */
    ttl = cmcf->jwt_ttl + cmcf->jwt_leeway + 1;

    uid[0] = '\0';
    revoked = 1;

    if (t->rc == NGX_OK
        && bson_iter_init_find(&it, &t->reply, "userId")
        && BSON_ITER_HOLDS_OID(&it))
    {
        bson_oid_to_string(bson_iter_oid(&it), uid);

        revoked = bson_iter_init_find(&it, &t->reply, "revoked")
                  && bson_iter_as_bool(&it);

        if (!revoked) {
            ttl = cmcf->refresh_ttl;

            if (bson_iter_init_find(&it, &t->reply, "expiresAt")
                && BSON_ITER_HOLDS_DATE_TIME(&it))
            {
                expires = bson_iter_date_time(&it);
                left = (time_t) (expires / 1000) - ngx_time();

                if (left <= 0) {
                    /* idle past its end: no refresh token revives it */
                    revoked = 1;
                    ttl = cmcf->jwt_ttl + cmcf->jwt_leeway + 1;

                } else if (left < ttl) {
                    ttl = left;
                }
            }
        }
    }

    ngx_http_chat_session_fill(f->sid, uid, revoked, ttl);

    ngx_http_chat_session_answer(f, revoked ? NGX_DECLINED : NGX_OK, uid);
}


static void
ngx_http_chat_session_answer(ngx_http_chat_session_flight_t *f,
    ngx_int_t rc, const char *uid)
{
    ngx_int_t                      r;
    ngx_queue_t                   *q;
    ngx_http_chat_session_look_t  *lk;

    /* a handler may start another check: f is out of the tree already */

    while (!ngx_queue_empty(&f->waiters)) {
        q = ngx_queue_head(&f->waiters);
        lk = ngx_queue_data(q, ngx_http_chat_session_look_t, queue);
        ngx_queue_remove(q);

        r = rc;

        if (rc == NGX_OK
            && ngx_strncmp(lk->uid, uid, NGX_HTTP_CHAT_SID_LEN) != 0)
        {
            /* a token of one user on another user's session */
            r = NGX_DECLINED;
        }

        lk->handler(lk->data, r);
        ngx_free(lk);
    }

    ngx_free(f);
}


/* best effort: a fill lost costs one more read, nothing else */

static void
ngx_http_chat_session_fill(u_char *sid, const char *uid, ngx_uint_t revoked,
    time_t ttl)
{
    u_char       key[sizeof("sess:{}") + NGX_HTTP_CHAT_SID_LEN];
    u_char       num[NGX_TIME_T_LEN];
    size_t       argvlen[7];
    const char  *argv[7];

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_chat_session_fill_script;
    argvlen[1] = sizeof(ngx_http_chat_session_fill_script) - 1;
    argv[2] = "1";
    argvlen[2] = 1;
    argv[3] = (char *) key;
    argvlen[3] = ngx_sprintf(key, "sess:{%*s}",
                             (size_t) NGX_HTTP_CHAT_SID_LEN, sid)
                 - key;
    argv[4] = uid;
    argvlen[4] = ngx_strlen(uid);
    argv[5] = revoked ? "1" : "0";
    argvlen[5] = 1;
    argv[6] = (char *) num;
    argvlen[6] = ngx_sprintf(num, "%T", ttl > 0 ? ttl : 1) - num;

    (void) ngx_http_chat_redis_command_argv(
                                   ngx_http_chat_redis_keyed(7, argv, argvlen),
                                   NULL, NULL, 7, argv, argvlen);
}
