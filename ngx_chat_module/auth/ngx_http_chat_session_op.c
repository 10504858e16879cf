/*
 * Copyright (C) ngx_chat_module authors
 *
 * The session operations (ngx_http_chat_session_op.h): MongoDB's session
 * document first, then, for a revocation, the Redis cache, then the
 * session's sockets.  The Mongo task and the Redis command are the
 * operation's, never a request's: a client that resets right after
 * writing its logout cannot leave a session revoked in the record but
 * live in the cache and on its sockets.
 */


#include "ngx_http_chat_session_op.h"
#include "../store/ngx_http_chat_redis_shards.h"


/* the longest token id the access check accepts */
#define NGX_HTTP_CHAT_SESSION_OP_JTI_MAX  64

#define NGX_HTTP_CHAT_SESSION_OP_ROTATE   2


struct ngx_http_chat_session_op_s {
    ngx_http_chat_session_op_done_pt   done;     /* NULL once nobody waits */
    void                              *data;
    ngx_queue_t                        queue;    /* while MongoDB has it */
    ngx_uint_t                         kind;
    ngx_int_t                          rc;       /* once the record told */
    time_t                             exp;      /* the access token's */
    ngx_str_t                          uid;
    ngx_str_t                          sid;
    ngx_str_t                          jti;
    u_char                             uid_data[24];
    u_char                             sid_data[24];
    u_char                             jti_data[
                                           NGX_HTTP_CHAT_SESSION_OP_JTI_MAX];
};


/*
 * KEYS: sess, jti (optional).  ARGV: how long an access token of the
 * session may still live, the jti's remaining lifetime.  Written after
 * MongoDB took the revocation: the cache must not say "live" any more.
 */
static const char  ngx_http_chat_session_op_uncache_script[] =
    "redis.call('HSET', KEYS[1], 'revoked', '1') "
    "if redis.call('TTL', KEYS[1]) < tonumber(ARGV[1]) then"
    "  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) "
    "end "
    "if KEYS[2] then"
    "  redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[2])) "
    "end "
    "return 1";


static ngx_http_chat_session_op_t *ngx_http_chat_session_op_start(
    ngx_uint_t kind, ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    ngx_http_chat_session_op_done_pt done, void *data);
static void ngx_http_chat_session_op_recorded(ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_session_op_rotated(
    ngx_http_chat_session_op_t *op, ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_session_op_uncache(ngx_http_chat_session_op_t *op);
static void ngx_http_chat_session_op_uncached(redisReply *reply, void *data);
static void ngx_http_chat_session_op_end(ngx_http_chat_session_op_t *op,
    ngx_int_t rc);


static ngx_queue_t  ngx_http_chat_session_op_live;


ngx_int_t
ngx_http_chat_session_op_revoke(ngx_uint_t kind, ngx_str_t *uid,
    ngx_str_t *sid, ngx_str_t *jti, time_t exp,
    ngx_http_chat_session_op_done_pt done, void *data,
    ngx_http_chat_session_op_t **out)
{
    ngx_http_chat_user_arg_t     arg;
    ngx_http_chat_session_op_t  *op;

    if (!ngx_http_chat_is_oid(uid) || !ngx_http_chat_is_oid(sid)) {
        return NGX_ERROR;
    }

    ngx_memzero(&arg, sizeof(ngx_http_chat_user_arg_t));

    /* both were checked to be 24 lowercase hex digits */
    bson_oid_init_from_string_unsafe(&arg.user_id, (char *) uid->data);
    bson_oid_init_from_string_unsafe(&arg.session_id, (char *) sid->data);

    op = ngx_http_chat_session_op_start(kind,
                                        ngx_http_chat_sessions_revoke_run,
                                        &arg, sizeof(arg), done, data);
    if (op == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(op->uid_data, uid->data, 24);
    op->uid.data = op->uid_data;
    op->uid.len = 24;

    ngx_memcpy(op->sid_data, sid->data, 24);
    op->sid.data = op->sid_data;
    op->sid.len = 24;

    if (jti && jti->len && jti->len <= NGX_HTTP_CHAT_SESSION_OP_JTI_MAX) {
        ngx_memcpy(op->jti_data, jti->data, jti->len);
        op->jti.data = op->jti_data;
        op->jti.len = jti->len;
        op->exp = exp;
    }

    *out = op;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_session_op_rotate(ngx_http_chat_rotate_arg_t *arg,
    ngx_http_chat_session_op_done_pt done, void *data,
    ngx_http_chat_session_op_t **out)
{
    char                         sid[25];
    ngx_http_chat_session_op_t  *op;

    op = ngx_http_chat_session_op_start(NGX_HTTP_CHAT_SESSION_OP_ROTATE,
                                        ngx_http_chat_sessions_rotate_run,
                                        arg, sizeof(*arg), done, data);
    if (op == NULL) {
        return NGX_ERROR;
    }

    bson_oid_to_string(&arg->session_id, sid);
    ngx_memcpy(op->sid_data, sid, 24);
    op->sid.data = op->sid_data;
    op->sid.len = 24;

    *out = op;

    return NGX_OK;
}


static ngx_http_chat_session_op_t *
ngx_http_chat_session_op_start(ngx_uint_t kind,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    ngx_http_chat_session_op_done_pt done, void *data)
{
    ngx_http_chat_session_op_t  *op;
    ngx_http_chat_mongo_task_t  *t;

    op = ngx_calloc(sizeof(ngx_http_chat_session_op_t), ngx_cycle->log);
    if (op == NULL) {
        return NULL;
    }

    op->done = done;
    op->data = data;
    op->kind = kind;

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log, run,
                                            ngx_http_chat_session_op_recorded,
                                            op, arg, size);

    /* on NGX_ERROR the task is freed */
    if (t == NULL || ngx_http_chat_mongo_post(t) != NGX_OK) {
        ngx_free(op);
        return NULL;
    }

    if (ngx_http_chat_session_op_live.next == NULL) {
        ngx_queue_init(&ngx_http_chat_session_op_live);
    }

    ngx_queue_insert_tail(&ngx_http_chat_session_op_live, &op->queue);
    ngx_http_chat_work_begin();

    return op;
}


void
ngx_http_chat_session_op_detach(void *data)
{
    ngx_http_chat_session_op_t  *op = data;

    op->done = NULL;
    op->data = NULL;
}


/* the record answered: what follows it runs whoever waits */

static void
ngx_http_chat_session_op_recorded(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_session_op_t  *op;

    op = t->data;

    ngx_queue_remove(&op->queue);

    switch (op->kind) {

    case NGX_HTTP_CHAT_SESSION_OP_ROTATE:
        op->rc = ngx_http_chat_session_op_rotated(op, t);

        if (op->rc != NGX_BUSY) {
            ngx_http_chat_session_op_end(op, op->rc);
            return;
        }

        /* a rotated-away token came back: assume it was stolen */
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: refresh token reused, session %V revoked",
                      &op->sid);
        break;

    case NGX_HTTP_CHAT_SESSION_OP_REMOVE:
        if (t->rc != NGX_OK) {
            if (t->rc == NGX_ERROR) {
                ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                              "chat: session revoke failed in mongo: %s",
                              t->error.message);
            }

            ngx_http_chat_session_op_end(op, t->rc);
            return;
        }

        op->rc = NGX_OK;
        break;

    default: /* NGX_HTTP_CHAT_SESSION_OP_LOGOUT */
        op->rc = NGX_OK;

        if (t->rc == NGX_ERROR) {
            /*
             * not recorded: the cache still refuses the session, and the
             * client is told to try again, so that the record gets it too
             */
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "chat: session revoke failed in mongo: %s",
                          t->error.message);
            op->rc = NGX_ERROR;
        }

        break;
    }

    ngx_http_chat_session_op_uncache(op);
}


/* NGX_OK, NGX_DECLINED, NGX_BUSY (reused) or NGX_ERROR; op->uid set */

static ngx_int_t
ngx_http_chat_session_op_rotated(ngx_http_chat_session_op_t *op,
    ngx_http_chat_mongo_task_t *t)
{
    char         oid[25];
    const char  *status;
    bson_iter_t  it;

    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: refresh failed in mongo: %s", t->error.message);
        return NGX_ERROR;
    }

    status = "";

    if (bson_iter_init_find(&it, &t->reply, "status")
        && BSON_ITER_HOLDS_UTF8(&it))
    {
        status = bson_iter_utf8(&it, NULL);
    }

    if (bson_iter_init_find(&it, &t->reply, "userId")
        && BSON_ITER_HOLDS_OID(&it))
    {
        bson_oid_to_string(bson_iter_oid(&it), oid);
        ngx_memcpy(op->uid_data, oid, 24);
        op->uid.data = op->uid_data;
        op->uid.len = 24;
    }

    if (op->uid.len != 24) {
        return NGX_DECLINED;
    }

    if (ngx_strcmp(status, "reuse") == 0) {
        return NGX_BUSY;
    }

    return ngx_strcmp(status, "ok") == 0 ? NGX_OK : NGX_DECLINED;
}


/*
 * The cache learns of a revocation MongoDB holds: sess:<sid> refuses the
 * session (and jti:<jti> the token) for as long as a token may live
 */

static void
ngx_http_chat_session_op_uncache(ngx_http_chat_session_op_t *op)
{
    u_char                      nk[NGX_INT_T_LEN];
    u_char                      ttl1[NGX_INT64_LEN], ttl2[NGX_INT64_LEN];
    u_char                      sess[sizeof("sess:{}") + 24];
    u_char                      jti[sizeof("jti:{}:") + 24
                                    + NGX_HTTP_CHAT_SESSION_OP_JTI_MAX];
    time_t                      ttl;
    ngx_int_t                   rc;
    ngx_uint_t                  n, nkeys;
    const char                 *argv[7];
    size_t                      argvlen[7];
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);

    ttl = op->exp - ngx_time() + cmcf->jwt_leeway;
    if (ttl < 1) {
        ttl = 1;
    }

    nkeys = op->jti.len ? 2 : 1;

    n = 0;
    argv[n] = "EVAL";
    argvlen[n++] = 4;
    argv[n] = ngx_http_chat_session_op_uncache_script;
    argvlen[n++] = sizeof(ngx_http_chat_session_op_uncache_script) - 1;
    argv[n] = (char *) nk;
    argvlen[n++] = ngx_sprintf(nk, "%ui", nkeys) - nk;
    argv[n] = (char *) sess;
    argvlen[n++] = ngx_sprintf(sess, "sess:{%V}", &op->sid) - sess;

    if (op->jti.len) {
        argv[n] = (char *) jti;
        argvlen[n++] = ngx_sprintf(jti, "jti:{%V}:%V", &op->sid, &op->jti)
                       - jti;
    }

    argv[n] = (char *) ttl1;
    argvlen[n++] = ngx_sprintf(ttl1, "%L",
                               (int64_t) (cmcf->jwt_ttl + cmcf->jwt_leeway
                                          + 1))
                   - ttl1;
    argv[n] = (char *) ttl2;
    argvlen[n++] = ngx_sprintf(ttl2, "%L", (int64_t) ttl) - ttl2;

    /* hiredis copies the command before this returns */
    rc = ngx_http_chat_redis_command_argv(
                          ngx_http_chat_redis_keyed((int) n, argv, argvlen),
                          ngx_http_chat_session_op_uncached, op, (int) n,
                          argv, argvlen);
    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: session %V revoked in the record, "
                      "redis is not available for its cache", &op->sid);

        /* the sockets learn it when the subscriber is back (resync) */
        ngx_http_chat_session_op_end(op, NGX_ERROR);
    }
}


static void
ngx_http_chat_session_op_uncached(redisReply *reply, void *data)
{
    ngx_http_chat_session_op_t  *op = data;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: session %V revoked in the record, "
                      "its cache failed: %s", &op->sid,
                      reply ? reply->str : "connection lost");
        op->rc = NGX_ERROR;
    }

    /*
     * the sockets, on every instance; a Redis that is gone (or a worker
     * destroying its connection) carries nothing: resync catches it
     */
    if (reply) {
        ngx_http_chat_session_revoked(&op->uid, &op->sid);
    }

    ngx_http_chat_session_op_end(op, op->rc);
}


static void
ngx_http_chat_session_op_end(ngx_http_chat_session_op_t *op, ngx_int_t rc)
{
    ngx_http_chat_work_end();

    if (op->done) {
        op->done(op->data, rc, op->uid.len ? &op->uid : NULL);
    }

    ngx_free(op);
}


void
ngx_http_chat_session_op_exit_process(void)
{
    ngx_queue_t                 *q;
    ngx_http_chat_session_op_t  *op;

    /* MongoDB is gone: nothing will call these back */

    if (ngx_http_chat_session_op_live.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_chat_session_op_live)) {
        q = ngx_queue_head(&ngx_http_chat_session_op_live);
        op = ngx_queue_data(q, ngx_http_chat_session_op_t, queue);
        ngx_queue_remove(q);
        ngx_free(op);
    }
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
