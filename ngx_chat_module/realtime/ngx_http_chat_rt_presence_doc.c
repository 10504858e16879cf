/*
 * Copyright (C) ngx_chat_module authors
 *
 * Presence: the users' documents (online, lastSeenAt), brought to the
 * latest state Redis holds, one writer at a time per user.
 *
 * The user's document.  FerretDB runs a conditional update as a find,
 * then a rewrite, not atomically: two workers writing one user at once
 * could both pass "presenceVersion < mine" and the older land last.  So
 * the writes of one user take turns under a short lock
 * (presence:wl:<user>, a token of the try); its holder writes the latest
 * state Redis holds (online iff presence:u:<user> exists, the version
 * presence:v:<user>, the time presence:at:<user> of the last going
 * offline) unless presence:ws:<user>, the version last written, is as
 * new.  A worker that finds the lock taken tries again shortly and
 * writes what is latest then: a burst costs few writes.  A lock whose
 * holder died expires.  A holder whose lock expired during a slow write
 * may have written over a newer state: its release marks the user
 * (presence:wx:<user>) so that the next holder writes again.
 */



#include "ngx_http_chat_rt_presence_int.h"
#include "../store/ngx_http_chat_mongo.h"
#include "../store/ngx_http_chat_users.h"


#define NGX_HTTP_CHAT_RT_LOCK       3000  /* ms, a dead writer's lock */
#define NGX_HTTP_CHAT_RT_BUSY       50    /* ms, while another writes */
#define NGX_HTTP_CHAT_RT_FAILED     1000  /* ms, after a failed write */
#define NGX_HTTP_CHAT_RT_FAILS      5     /* failed writes, then drop */


/* a user whose document this worker brings to their latest state */
typedef struct {
    ngx_rbtree_node_t            node;
    u_char                       id[NGX_HTTP_CHAT_RT_ID_LEN];
    ngx_event_t                  ev;        /* the next try */
    ngx_uint_t                   busy;      /* a command or write out */
    ngx_uint_t                   fails;
} ngx_http_chat_rt_pending_t;


/* one write of a user's document, under its lock */
typedef struct {
    bson_oid_t                   user;
    int64_t                      version;
    int64_t                      at;        /* ms */
    ngx_uint_t                   online;
    ngx_uint_t                   superseded; /* a newer one is stored */
    size_t                       token_len;
    u_char                       token[NGX_HTTP_CHAT_RT_WID_LEN
                                       + NGX_INT_T_LEN + 1];
    u_char                       id[NGX_HTTP_CHAT_RT_ID_LEN];
} ngx_http_chat_rt_presence_t;


static void ngx_http_chat_rt_presence_retry(ngx_event_t *ev);
static void ngx_http_chat_rt_presence_done(ngx_http_chat_rt_pending_t *pd);
static void ngx_http_chat_rt_presence_later(ngx_http_chat_rt_pending_t *pd,
    ngx_msec_t ms);
static void ngx_http_chat_rt_presence_lock(ngx_http_chat_rt_pending_t *pd);
static void ngx_http_chat_rt_presence_locked(redisReply *reply, void *data);
static void ngx_http_chat_rt_presence_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
static void ngx_http_chat_rt_presence_stored(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_rt_presence_unlock(ngx_http_chat_rt_presence_t *p,
    int64_t written);
static void ngx_http_chat_rt_presence_unlocked(redisReply *reply,
    void *data);


#define NGX_HTTP_CHAT_RT_WRITE_LUA                                            \
    "local u = ARGV[1] "                                                      \
    "local L, W, X = 'presence:wl:' .. u, 'presence:ws:' .. u, "              \
    "'presence:wx:' .. u "                                                    \
    "local function vget(k) return tonumber(redis.call('GET', k) or '0') "    \
    "end "


/*
 * ARGV: user, token, lock ms.  {1, online, version, at}: locked, write
 * that; {0}: the document has the latest state; {-2}: another holds it.
 */
static char  ngx_http_chat_rt_presence_lock_lua[] =
    NGX_HTTP_CHAT_RT_WRITE_LUA
    "if redis.call('EXISTS', L) == 1 then return {-2} end "
    "if redis.call('EXISTS', X) == 1 then redis.call('DEL', X, W) end "
    "local v = vget('presence:v:' .. u) "
    "if v == 0 or vget(W) >= v then return {0} end "
    "redis.call('SET', L, ARGV[2], 'PX', ARGV[3]) "
    "local at = vget('presence:at:' .. u) "
    "if at == 0 then local t = redis.call('TIME') "
    "at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end "
    "return {1, redis.call('EXISTS', 'presence:u:' .. u), v, at}";


/*
 * ARGV: user, token, the version written (0: none).  0: the document
 * has the latest state; 1: write again (a newer state came meanwhile, or
 * the lock was lost, or a lost holder may have written over this).
 */
static char  ngx_http_chat_rt_presence_unlock_lua[] =
    NGX_HTTP_CHAT_RT_WRITE_LUA
    "local mine = tonumber(ARGV[3]) "
    "if redis.call('GET', L) ~= ARGV[2] then "
    "redis.call('SET', X, '1', 'PX', 86400000) return 1 end "
    "redis.call('DEL', L) "
    "if redis.call('EXISTS', X) == 1 then redis.call('DEL', X, W) return 1 "
    "end "
    "if mine > vget(W) then redis.call('SET', W, ARGV[3], 'PX', 86400000) "
    "end "
    "if vget('presence:v:' .. u) > mine then return 1 end "
    "return 0";


static ngx_rbtree_t        ngx_http_chat_rt_pending;
static ngx_rbtree_node_t   ngx_http_chat_rt_pending_sentinel;
static ngx_uint_t          ngx_http_chat_rt_lock_n;
static ngx_connection_t    ngx_http_chat_rt_doc_dummy;   /* the timers' log */
static u_char             *ngx_http_chat_rt_doc_wid;     /* the worker's id */
static size_t              ngx_http_chat_rt_doc_wid_len;
static ngx_uint_t          ngx_http_chat_rt_doc_on;


void
ngx_http_chat_rt_presence_doc_init(u_char *wid, size_t len, ngx_uint_t on)
{
    ngx_rbtree_init(&ngx_http_chat_rt_pending,
                    &ngx_http_chat_rt_pending_sentinel,
                    ngx_http_chat_rt_keyed_insert);

    ngx_http_chat_rt_doc_wid = wid;
    ngx_http_chat_rt_doc_wid_len = len;
    ngx_http_chat_rt_doc_dummy.fd = (ngx_socket_t) -1;
    ngx_http_chat_rt_doc_on = on;
}


void
ngx_http_chat_rt_presence_doc_exit(void)
{
    /*
     * Writes not made yet are dropped: a lock this worker holds expires,
     * and the holder of another writes the latest state as it releases.
     * The replies still to come find no user here.
     */
    while (ngx_http_chat_rt_pending.root
           && ngx_http_chat_rt_pending.root
              != &ngx_http_chat_rt_pending_sentinel)
    {
        ngx_http_chat_rt_presence_done((ngx_http_chat_rt_pending_t *)
                                       ngx_http_chat_rt_pending.root);
    }

    ngx_http_chat_rt_doc_on = 0;
}


/*
 * A transition of the user: their document must come to it, or to a
 * newer state, and be published.  It runs whether or not the
 * socket that caused it is still there.  One try at a time per user
 * here: a transition that comes meanwhile is taken by the try under way
 * (it writes the latest state) or by the next one.
 */
void
ngx_http_chat_rt_presence_store(u_char *id, size_t len)
{
    ngx_http_chat_rt_pending_t  *pd;

    if (len != NGX_HTTP_CHAT_RT_ID_LEN || !ngx_http_chat_rt_doc_on
        || !bson_oid_is_valid((const char *) id, len))
    {
        return;
    }

    pd = (ngx_http_chat_rt_pending_t *)
         ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_pending, id);

    if (pd == NULL) {
        pd = ngx_calloc(sizeof(ngx_http_chat_rt_pending_t), ngx_cycle->log);
        if (pd == NULL) {
            return;
        }

        ngx_memcpy(pd->id, id, NGX_HTTP_CHAT_RT_ID_LEN);
        pd->node.key = ngx_crc32_short(pd->id, NGX_HTTP_CHAT_RT_ID_LEN);
        pd->ev.handler = ngx_http_chat_rt_presence_retry;
        pd->ev.log = ngx_cycle->log;
        pd->ev.data = &ngx_http_chat_rt_doc_dummy;

        /* a worker going away waits for no try (see exit_process) */
        pd->ev.cancelable = 1;

        ngx_rbtree_insert(&ngx_http_chat_rt_pending, &pd->node);
    }

    if (pd->busy || pd->ev.timer_set) {
        return;
    }

    ngx_http_chat_rt_presence_lock(pd);
}


static void
ngx_http_chat_rt_presence_retry(ngx_event_t *ev)
{
    ngx_http_chat_rt_pending_t  *pd;

    pd = (ngx_http_chat_rt_pending_t *)
         ((u_char *) ev - offsetof(ngx_http_chat_rt_pending_t, ev));

    if (!pd->busy) {
        ngx_http_chat_rt_presence_lock(pd);
    }
}


/* the document has the latest state, or this worker gives up on it */
static void
ngx_http_chat_rt_presence_done(ngx_http_chat_rt_pending_t *pd)
{
    if (pd->ev.timer_set) {
        ngx_del_timer(&pd->ev);
    }

    ngx_rbtree_delete(&ngx_http_chat_rt_pending, &pd->node);
    ngx_free(pd);
}


static void
ngx_http_chat_rt_presence_later(ngx_http_chat_rt_pending_t *pd,
    ngx_msec_t ms)
{
    pd->busy = 0;

    if (!pd->ev.timer_set) {
        ngx_add_timer(&pd->ev, ms);
    }
}


/* take the user's lock and read their latest state */
static void
ngx_http_chat_rt_presence_lock(ngx_http_chat_rt_pending_t *pd)
{
    u_char                       ms[NGX_INT_T_LEN];
    const char                  *argv[6];
    size_t                       argvlen[6];
    ngx_http_chat_rt_presence_t *p;

    if (ngx_http_chat_redis_main == NULL
        || !ngx_http_chat_redis_is_connected(ngx_http_chat_redis_main))
    {
        ngx_http_chat_rt_presence_later(pd, NGX_HTTP_CHAT_RT_RETRY);
        return;
    }

    p = ngx_calloc(sizeof(ngx_http_chat_rt_presence_t), ngx_cycle->log);
    if (p == NULL) {
        ngx_http_chat_rt_presence_later(pd, NGX_HTTP_CHAT_RT_RETRY);
        return;
    }

    /* this try's own token: a lock of an earlier one is not taken for it */
    ngx_memcpy(p->id, pd->id, NGX_HTTP_CHAT_RT_ID_LEN);
    p->token_len = ngx_snprintf(p->token, sizeof(p->token), "%*s:%ui",
                                ngx_http_chat_rt_doc_wid_len,
                                ngx_http_chat_rt_doc_wid,
                                ++ngx_http_chat_rt_lock_n)
                   - p->token;

    argv[3] = (const char *) p->id;
    argvlen[3] = NGX_HTTP_CHAT_RT_ID_LEN;
    argv[4] = (const char *) p->token;
    argvlen[4] = p->token_len;
    argv[5] = (const char *) ms;
    argvlen[5] = ngx_sprintf(ms, "%ui", (ngx_uint_t) NGX_HTTP_CHAT_RT_LOCK)
                 - ms;

    if (NGX_HTTP_CHAT_RT_EVAL(ngx_http_chat_rt_presence_lock_lua, 6, argv,
                              argvlen, ngx_http_chat_rt_presence_locked, p)
        != NGX_OK)
    {
        ngx_free(p);
        ngx_http_chat_rt_presence_later(pd, NGX_HTTP_CHAT_RT_RETRY);
        return;
    }

    pd->busy = 1;
}


static void
ngx_http_chat_rt_presence_locked(redisReply *reply, void *data)
{
    redisReply                   **e;
    ngx_http_chat_mongo_task_t    *t;
    ngx_http_chat_rt_pending_t    *pd;
    ngx_http_chat_rt_presence_t   *p;

    p = data;

    pd = (ngx_http_chat_rt_pending_t *)
         ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_pending, p->id);

    if (pd == NULL) {
        /* the worker is going: a lock it took expires by itself */
        ngx_free(p);
        return;
    }

    e = ngx_http_chat_rt_presence_reply(reply, "lock");

    if (e == NULL) {
        ngx_free(p);
        ngx_http_chat_rt_presence_later(pd, NGX_HTTP_CHAT_RT_RETRY);
        return;
    }

    if (e[0]->integer == -2) {
        /* another worker writes: the next try writes what is latest */
        ngx_free(p);
        ngx_http_chat_rt_presence_later(pd, NGX_HTTP_CHAT_RT_BUSY);
        return;
    }

    if (e[0]->integer != 1 || reply->elements != 4
        || e[1]->type != REDIS_REPLY_INTEGER
        || e[2]->type != REDIS_REPLY_INTEGER
        || e[3]->type != REDIS_REPLY_INTEGER)
    {
        /*
         * the document has the latest state (the transitions of this
         * worker ran before this script, on the same connection)
         */
        ngx_free(p);
        ngx_http_chat_rt_presence_done(pd);
        return;
    }

    bson_oid_init_from_string(&p->user, (const char *) p->id);
    p->online = e[1]->integer ? 1 : 0;
    p->version = e[2]->integer;
    p->at = e[3]->integer;

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_rt_presence_run,
                                            ngx_http_chat_rt_presence_stored,
                                            NULL, p, sizeof(*p));

    if (t == NULL || ngx_http_chat_mongo_post(t) != NGX_OK) {
        ngx_http_chat_rt_presence_unlock(p, 0);
        ngx_free(p);
        return;
    }

    ngx_free(p);
}


static void
ngx_http_chat_rt_presence_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    bson_t                        filter, update, set, or, a, b, lt, ex,
                                  reply;
    bson_iter_t                   it;
    mongoc_collection_t          *coll;
    ngx_http_chat_rt_presence_t  *p;

    p = t->arg;

    /*
     * Only a newer state than the one the document holds: atomic on
     * MongoDB; on FerretDB the lock does it (see above).
     */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &p->user);
    BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &or);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &a);
    BSON_APPEND_DOCUMENT_BEGIN(&a, "presenceVersion", &ex);
    BSON_APPEND_BOOL(&ex, "$exists", false);
    bson_append_document_end(&a, &ex);
    bson_append_document_end(&or, &a);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &b);
    BSON_APPEND_DOCUMENT_BEGIN(&b, "presenceVersion", &lt);
    BSON_APPEND_INT64(&lt, "$lt", p->version);
    bson_append_document_end(&b, &lt);
    bson_append_document_end(&or, &b);
    bson_append_array_end(&filter, &or);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_BOOL(&set, "online", p->online ? true : false);
    BSON_APPEND_INT64(&set, "presenceVersion", p->version);

    if (!p->online) {
        BSON_APPEND_DATE_TIME(&set, "lastSeenAt", p->at);
    }

    bson_append_document_end(&update, &set);

    coll = mongoc_database_get_collection(db, "users");

    if (mongoc_collection_update_one(coll, &filter, &update, NULL, &reply,
                                     &t->error))
    {
        t->rc = NGX_OK;

        if (bson_iter_init_find(&it, &reply, "matchedCount")
            && BSON_ITER_HOLDS_NUMBER(&it)
            && bson_iter_as_int64(&it) == 0)
        {
            p->superseded = 1;
        }

    } else {
        t->rc = NGX_ERROR;
    }

    bson_destroy(&reply);
    mongoc_collection_destroy(coll);
    bson_destroy(&update);
    bson_destroy(&filter);
}


/* written: published (by whoever wrote it), then the lock goes */
static void
ngx_http_chat_rt_presence_stored(ngx_http_chat_mongo_task_t *t)
{
    json_t                       *data;
    ngx_str_t                     id;
    ngx_http_chat_rt_presence_t  *p;

    p = t->arg;

    ngx_http_chat_rt_presence_unlock(p, t->rc == NGX_OK ? p->version : 0);

    if (t->rc != NGX_OK) {
        /* published all the same: the sockets are told what happened */
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat ws: presence not stored: %s", t->error.message);

    } else if (p->superseded) {
        /* the document holds this state or a newer one, published */
        return;
    }

    id.data = p->id;
    id.len = NGX_HTTP_CHAT_RT_ID_LEN;

    /* "v" orders the events of one user for each subscriber */
    if (p->online) {
        data = json_pack("{s:s%,s:I}", "userId", id.data, id.len,
                         "v", (json_int_t) p->version);

    } else {
        data = json_pack("{s:s%,s:o,s:I}", "userId", id.data, id.len,
                         "lastSeen", ngx_http_chat_json_time(p->at),
                         "v", (json_int_t) p->version);
    }

    if (data == NULL) {
        return;
    }

    ngx_http_chat_rt_publish_as("pres:", &id, '-', &id, NULL,
                                p->online ? "user_online" : "user_offline",
                                data);
    json_decref(data);
}


/*
 * The lock goes, with the version written (0: none).  A lock that is no
 * longer ours (it expired during a slow write) marks the user for a
 * rewrite instead.
 */
static void
ngx_http_chat_rt_presence_unlock(ngx_http_chat_rt_presence_t *p,
    int64_t written)
{
    u_char                        v[NGX_INT64_LEN];
    const char                   *argv[6];
    size_t                        argvlen[6];
    ngx_http_chat_rt_pending_t   *pd;
    ngx_http_chat_rt_presence_t  *q;

    q = NULL;

    if (ngx_http_chat_redis_main != NULL) {
        q = ngx_alloc(sizeof(ngx_http_chat_rt_presence_t), ngx_cycle->log);
    }

    if (q != NULL) {
        ngx_memcpy(q, p, sizeof(ngx_http_chat_rt_presence_t));
        q->version = written;

        argv[3] = (const char *) q->id;
        argvlen[3] = NGX_HTTP_CHAT_RT_ID_LEN;
        argv[4] = (const char *) q->token;
        argvlen[4] = q->token_len;
        argv[5] = (const char *) v;
        argvlen[5] = ngx_sprintf(v, "%L", written) - v;

        if (NGX_HTTP_CHAT_RT_EVAL(ngx_http_chat_rt_presence_unlock_lua, 6,
                                  argv, argvlen,
                                  ngx_http_chat_rt_presence_unlocked, q)
            == NGX_OK)
        {
            return;
        }

        ngx_free(q);
    }

    /* the lock expires by itself; until then the tries find it taken */
    pd = (ngx_http_chat_rt_pending_t *)
         ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_pending, p->id);

    if (pd != NULL) {
        ngx_http_chat_rt_presence_later(pd, NGX_HTTP_CHAT_RT_RETRY);
    }
}


static void
ngx_http_chat_rt_presence_unlocked(redisReply *reply, void *data)
{
    ngx_http_chat_rt_pending_t   *pd;
    ngx_http_chat_rt_presence_t  *q;

    q = data;

    pd = (ngx_http_chat_rt_pending_t *)
         ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_pending, q->id);

    if (pd == NULL) {
        ngx_free(q);
        return;
    }

    if (q->version == 0) {
        /* not written: tried again a few times, a while apart */
        ngx_free(q);

        if (++pd->fails > NGX_HTTP_CHAT_RT_FAILS) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "chat ws: presence of %*s not stored, "
                          "left to the next transition",
                          (size_t) NGX_HTTP_CHAT_RT_ID_LEN, pd->id);
            ngx_http_chat_rt_presence_done(pd);
            return;
        }

        ngx_http_chat_rt_presence_later(pd, NGX_HTTP_CHAT_RT_FAILED);
        return;
    }

    ngx_free(q);

    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER
        && reply->integer == 0)
    {
        ngx_http_chat_rt_presence_done(pd);
        return;
    }

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat ws: presence unlock failed: %s", reply->str);
    }

    /* a newer state came, or the lock expired meanwhile: again */
    ngx_http_chat_rt_presence_lock(pd);
}
