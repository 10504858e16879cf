/*
 * Copyright (C) ngx_chat_module authors
 *
 * Presence in the users' documents (online, lastSeenAt), in batches.
 *
 * The live state is Redis's (ngx_http_chat_rt_presence.c); a document
 * follows it.  A transition puts its user in this worker's queue, once
 * however many come; a timer (NGX_HTTP_CHAT_RT_FLUSH after the queue was
 * empty, NGX_HTTP_CHAT_RT_NEXT after a batch) takes up to
 * NGX_HTTP_CHAT_RT_BATCH users from it: one script locks them and reads
 * their latest state, one task writes them (one update each, one after
 * another), one script releases them.  Then each is published.  One
 * batch at a time per worker: thousands of sockets that close put one
 * task, not thousands, ahead of the users' requests in the thread pool.
 *
 * Two workers writing one user at once could land the older state last
 * (FerretDB runs an update as a find, then a rewrite, not atomically,
 * and a condition beside the id would make it scan the collection for
 * each user).  So a document is written by its id alone, and the writes
 * of one user take turns under a lock (presence:wl:<user>, the batch's
 * token); its holder writes the latest state Redis holds (online iff
 * presence:s:<user> exists; in the hash presence:h:<user> the version v
 * and the time at of the last going offline) unless w, the version last
 * written (in the same hash), is as new.  A user whose lock another
 * worker holds goes back to the queue for a later batch, which writes
 * what is latest then.  A lock whose holder died expires.  A holder
 * whose lock expired during a slow write may have written over a newer
 * state: its release marks the user (x in the hash) so that the next
 * holder writes again.
 *
 * With chat_redis_shards these keys are on the user's shard, as the
 * transitions are: a batch takes users of one shard, and its scripts
 * run there, after the transitions this worker sent there before.
 */


#include "ngx_http_chat_rt_presence_int.h"
#include "../store/ngx_http_chat_mongo.h"
#include "../store/ngx_http_chat_users.h"


/* users per batch: its task holds a thread of the pool briefly */
#define NGX_HTTP_CHAT_RT_BATCH      50
#define NGX_HTTP_CHAT_RT_FLUSH      100   /* ms, the first batch's wait */
#define NGX_HTTP_CHAT_RT_NEXT       10    /* ms between batches */
#define NGX_HTTP_CHAT_RT_LOCK       10000 /* ms, a dead writer's lock */
#define NGX_HTTP_CHAT_RT_BUSY       50    /* ms, while another writes */
#define NGX_HTTP_CHAT_RT_FAILED     1000  /* ms, after a failed write */
#define NGX_HTTP_CHAT_RT_FAILS      5     /* failed writes, then drop */

#define NGX_HTTP_CHAT_RT_TOKEN_LEN  (NGX_MAXHOSTNAMELEN + 3 * NGX_INT64_LEN \
                                     + 3)


/* a user whose document this worker brings to their latest state */
typedef struct {
    ngx_rbtree_node_t            node;      /* key: crc32 of the id */
    u_char                       id[NGX_HTTP_CHAT_RT_ID_LEN];
    ngx_queue_t                  queue;     /* waiting for a batch */
    ngx_msec_t                   after;     /* not in a batch before */
    ngx_uint_t                   busy;      /* in the batch under way */
    ngx_uint_t                   fails;
    ngx_uint_t                   shard;     /* of the user's keys */
} ngx_http_chat_rt_pending_t;


/* one user of a batch */
typedef struct {
    u_char                       id[NGX_HTTP_CHAT_RT_ID_LEN];
    bson_oid_t                   user;
    int64_t                      version;   /* 0: not to write */
    int64_t                      at;        /* ms */
    ngx_uint_t                   online;
    ngx_uint_t                   written;
} ngx_http_chat_rt_item_t;


/* the batch under way: it outlives the worker's exit (see below) */
typedef struct {
    ngx_uint_t                   n;
    ngx_uint_t                   shard;     /* of every user here */
    size_t                       token_len;
    u_char                       token[NGX_HTTP_CHAT_RT_TOKEN_LEN];
    ngx_http_chat_rt_item_t      item[1];
} ngx_http_chat_rt_batch_t;


static void ngx_http_chat_rt_store_queue(ngx_http_chat_rt_pending_t *pd,
    ngx_msec_t ms);
static void ngx_http_chat_rt_store_done(ngx_http_chat_rt_pending_t *pd);
static void ngx_http_chat_rt_store_flush(ngx_event_t *ev);
static void ngx_http_chat_rt_store_next(void);
static void ngx_http_chat_rt_store_locked(redisReply *reply, void *data);
static void ngx_http_chat_rt_store_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
static void ngx_http_chat_rt_store_stored(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_rt_store_written(ngx_http_chat_rt_batch_t *b,
    ngx_int_t rc, const char *error);
static void ngx_http_chat_rt_store_publish(ngx_http_chat_rt_item_t *it);
static void ngx_http_chat_rt_store_unlock(ngx_http_chat_rt_batch_t *b);
static void ngx_http_chat_rt_store_unlocked(redisReply *reply, void *data);
static void ngx_http_chat_rt_store_failed(ngx_http_chat_rt_batch_t *b,
    ngx_msec_t ms);


/* hget(u, f): a number field of the user's hash, 0 when there is none */
#define NGX_HTTP_CHAT_RT_WRITE_LUA                                            \
    "local function hget(u, f) return tonumber(redis.call('HGET', "           \
    "'presence:h:' .. u, f) or '0') end "


/*
 * ARGV: token, lock ms, users.  For each user {state, online, version,
 * at}: state 1: locked, write that; 0: the document has the latest
 * state; -2: another holds the lock.  online 1: a worker counts a
 * socket of theirs.
 */
static char  ngx_http_chat_rt_store_lock_lua[] =
    NGX_HTTP_CHAT_RT_WRITE_LUA
    "local out = {} local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "for i = 3, #ARGV do local u = ARGV[i] "
    "local L, H = 'presence:wl:' .. u, 'presence:h:' .. u "
    "local r = {0, 0, 0, 0} "
    "if redis.call('EXISTS', L) == 1 then r[1] = -2 else "
    "if redis.call('HEXISTS', H, 'x') == 1 then "
    "redis.call('HDEL', H, 'x', 'w') end "
    "local v = hget(u, 'v') "
    "if v > 0 and hget(u, 'w') < v then "
    "redis.call('SET', L, ARGV[1], 'PX', ARGV[2]) "
    "local at = hget(u, 'at') "
    "if at == 0 then at = now end "
    "r = {1, redis.call('EXISTS', 'presence:s:' .. u), v, at} end end "
    "for _, x in ipairs(r) do out[#out + 1] = x end "
    "end "
    "return out";


/*
 * ARGV: token, then user and the version written (0: none) for each.
 * For each user 0: the document has the latest state; 1: write again (a
 * newer state came meanwhile, or the lock was lost, or a lost holder
 * may have written over this).  The hash lasts a day after each change.
 */
static char  ngx_http_chat_rt_store_unlock_lua[] =
    NGX_HTTP_CHAT_RT_WRITE_LUA
    "local out = {} "
    "for i = 2, #ARGV - 1, 2 do local u = ARGV[i] "
    "local L, H = 'presence:wl:' .. u, 'presence:h:' .. u "
    "local mine, r = tonumber(ARGV[i + 1]), 0 "
    "if redis.call('GET', L) ~= ARGV[1] then "
    "redis.call('HSET', H, 'x', '1') redis.call('PEXPIRE', H, 86400000) "
    "r = 1 else "
    "redis.call('DEL', L) "
    "if redis.call('HEXISTS', H, 'x') == 1 then "
    "redis.call('HDEL', H, 'x', 'w') r = 1 "
    "else "
    "if mine > hget(u, 'w') then redis.call('HSET', H, 'w', ARGV[i + 1]) "
    "redis.call('PEXPIRE', H, 86400000) end "
    "if hget(u, 'v') > mine then r = 1 end end end "
    "out[#out + 1] = r end "
    "return out";


static ngx_rbtree_t        ngx_http_chat_rt_pending;
static ngx_rbtree_node_t   ngx_http_chat_rt_pending_sentinel;
static ngx_queue_t         ngx_http_chat_rt_waiting;
static ngx_event_t         ngx_http_chat_rt_flush_ev;
static ngx_connection_t    ngx_http_chat_rt_flush_dummy;  /* the log */
static ngx_uint_t          ngx_http_chat_rt_batching;  /* a batch out */
static ngx_uint_t          ngx_http_chat_rt_batch_n;
static ngx_uint_t          ngx_http_chat_rt_store_on;
static u_char             *ngx_http_chat_rt_store_wid;
static size_t              ngx_http_chat_rt_store_wid_len;


void
ngx_http_chat_rt_presence_store_init(u_char *wid, size_t len)
{
    ngx_rbtree_init(&ngx_http_chat_rt_pending,
                    &ngx_http_chat_rt_pending_sentinel,
                    ngx_http_chat_rt_keyed_insert);
    ngx_queue_init(&ngx_http_chat_rt_waiting);

    ngx_http_chat_rt_store_wid = wid;
    ngx_http_chat_rt_store_wid_len = len;

    ngx_http_chat_rt_flush_ev.handler = ngx_http_chat_rt_store_flush;
    ngx_http_chat_rt_flush_ev.log = ngx_cycle->log;
    ngx_http_chat_rt_flush_dummy.fd = (ngx_socket_t) -1;
    ngx_http_chat_rt_flush_ev.data = &ngx_http_chat_rt_flush_dummy;

    /* a worker going away waits for no batch (see exit) */
    ngx_http_chat_rt_flush_ev.cancelable = 1;

    ngx_http_chat_rt_batching = 0;
    ngx_http_chat_rt_store_on = 1;
}


/*
 * Writes not made yet are dropped: a lock this worker holds expires,
 * and the holder of another writes the latest state as it releases.
 * The replies still to come find no user here.
 */
void
ngx_http_chat_rt_presence_store_exit(void)
{
    if (!ngx_http_chat_rt_store_on) {
        return;
    }

    ngx_http_chat_rt_store_on = 0;

    if (ngx_http_chat_rt_flush_ev.timer_set) {
        ngx_del_timer(&ngx_http_chat_rt_flush_ev);
    }

    while (ngx_http_chat_rt_pending.root
           != &ngx_http_chat_rt_pending_sentinel)
    {
        ngx_http_chat_rt_store_done((ngx_http_chat_rt_pending_t *)
                                    ngx_http_chat_rt_pending.root);
    }
}


/*
 * A transition of the user: their document must come to it, or to a
 * newer state, and be published.  It runs whether or not the socket
 * that caused it is still there.  A user already waiting, or in the
 * batch under way, is not queued again: the batch writes the latest
 * state, and its release says whether a newer one came meanwhile.
 */
void
ngx_http_chat_rt_presence_store(u_char *id, size_t len)
{
    ngx_http_chat_rt_pending_t  *pd;

    if (len != NGX_HTTP_CHAT_RT_ID_LEN || !ngx_http_chat_rt_store_on
        || !bson_oid_is_valid((const char *) id, len))
    {
        return;
    }

    pd = (ngx_http_chat_rt_pending_t *)
         ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_pending, id);

    if (pd != NULL) {
        return;
    }

    pd = ngx_calloc(sizeof(ngx_http_chat_rt_pending_t), ngx_cycle->log);
    if (pd == NULL) {
        return;
    }

    ngx_memcpy(pd->id, id, NGX_HTTP_CHAT_RT_ID_LEN);
    pd->shard = ngx_http_chat_redis_shard_of(pd->id, NGX_HTTP_CHAT_RT_ID_LEN);
    pd->node.key = ngx_crc32_short(pd->id, NGX_HTTP_CHAT_RT_ID_LEN);
    ngx_rbtree_insert(&ngx_http_chat_rt_pending, &pd->node);
    ngx_queue_init(&pd->queue);

    ngx_http_chat_rt_store_queue(pd, 0);
}


/* to the queue's tail, for a batch in ms or later */
static void
ngx_http_chat_rt_store_queue(ngx_http_chat_rt_pending_t *pd, ngx_msec_t ms)
{
    pd->busy = 0;
    pd->after = ngx_current_msec + ms;
    ngx_queue_insert_tail(&ngx_http_chat_rt_waiting, &pd->queue);

    if (!ngx_http_chat_rt_batching && !ngx_http_chat_rt_flush_ev.timer_set) {
        ngx_add_timer(&ngx_http_chat_rt_flush_ev, NGX_HTTP_CHAT_RT_FLUSH);
    }
}


/* the document has the latest state, or this worker gives up on it */
static void
ngx_http_chat_rt_store_done(ngx_http_chat_rt_pending_t *pd)
{
    if (!pd->busy) {
        ngx_queue_remove(&pd->queue);
    }

    ngx_rbtree_delete(&ngx_http_chat_rt_pending, &pd->node);
    ngx_free(pd);
}


/*
 * The batch under way is over: the next one shortly, so that a long
 * queue drains with one task in the pool at a time.
 */
static void
ngx_http_chat_rt_store_next(void)
{
    ngx_http_chat_rt_batching = 0;

    if (ngx_http_chat_rt_store_on
        && !ngx_queue_empty(&ngx_http_chat_rt_waiting)
        && !ngx_http_chat_rt_flush_ev.timer_set)
    {
        ngx_add_timer(&ngx_http_chat_rt_flush_ev, NGX_HTTP_CHAT_RT_NEXT);
    }
}


/* the user is due now, and their shard is there */
static ngx_uint_t
ngx_http_chat_rt_store_due(ngx_http_chat_rt_pending_t *pd, ngx_uint_t *away)
{
    ngx_http_chat_redis_t  *r;

    if ((ngx_msec_int_t) (pd->after - ngx_current_msec) > 0) {
        return 0;
    }

    r = ngx_http_chat_redis_shard(pd->shard);

    if (r == NULL || !ngx_http_chat_redis_is_connected(r)) {
        (*away)++;
        return 0;
    }

    return 1;
}


/*
 * Up to a batch of the users due, of the shard of the first of them:
 * lock them and read their state
 */
static void
ngx_http_chat_rt_store_flush(ngx_event_t *ev)
{
    u_char                       ms[NGX_INT_T_LEN];
    size_t                      *argvlen;
    ngx_uint_t                   n, i, seen, total, away, shard;
    const char                 **argv;
    ngx_queue_t                 *q, *next;
    ngx_http_chat_rt_batch_t    *b;
    ngx_http_chat_rt_pending_t  *pd;

    if (!ngx_http_chat_rt_store_on || ngx_http_chat_rt_batching) {
        return;
    }

    /* the users due, in their order, on one shard, at most a batch */
    n = 0;
    total = 0;
    away = 0;
    shard = 0;

    for (q = ngx_queue_head(&ngx_http_chat_rt_waiting);
         q != ngx_queue_sentinel(&ngx_http_chat_rt_waiting);
         q = ngx_queue_next(q))
    {
        pd = ngx_queue_data(q, ngx_http_chat_rt_pending_t, queue);
        total++;

        if (!ngx_http_chat_rt_store_due(pd, &away)
            || (n && pd->shard != shard))
        {
            continue;
        }

        shard = pd->shard;

        if (++n == NGX_HTTP_CHAT_RT_BATCH) {
            break;
        }
    }

    if (n == 0) {
        if (total) {
            ngx_add_timer(ev, away ? NGX_HTTP_CHAT_RT_RETRY
                                   : NGX_HTTP_CHAT_RT_BUSY);
        }

        return;
    }

    b = ngx_calloc(sizeof(ngx_http_chat_rt_batch_t)
                   + (n - 1) * sizeof(ngx_http_chat_rt_item_t),
                   ngx_cycle->log);
    argv = ngx_alloc((n + 5) * sizeof(char *), ngx_cycle->log);
    argvlen = ngx_alloc((n + 5) * sizeof(size_t), ngx_cycle->log);

    if (b == NULL || argv == NULL || argvlen == NULL) {
        ngx_add_timer(ev, NGX_HTTP_CHAT_RT_RETRY);
        goto done;
    }

    /* this batch's own token: a lock of an earlier one is not taken */
    b->shard = shard;
    b->token_len = ngx_snprintf(b->token, sizeof(b->token), "%*s:%ui",
                                ngx_http_chat_rt_store_wid_len,
                                ngx_http_chat_rt_store_wid,
                                ++ngx_http_chat_rt_batch_n)
                   - b->token;

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_chat_rt_store_lock_lua;
    argvlen[1] = sizeof(ngx_http_chat_rt_store_lock_lua) - 1;
    argv[2] = "0";
    argvlen[2] = 1;
    argv[3] = (const char *) b->token;
    argvlen[3] = b->token_len;
    argv[4] = (const char *) ms;
    argvlen[4] = ngx_sprintf(ms, "%ui", (ngx_uint_t) NGX_HTTP_CHAT_RT_LOCK)
                 - ms;

    i = 0;
    seen = 0;
    q = ngx_queue_head(&ngx_http_chat_rt_waiting);

    while (i < n && seen++ < total) {
        next = ngx_queue_next(q);
        pd = ngx_queue_data(q, ngx_http_chat_rt_pending_t, queue);

        if (pd->shard == shard
            && (ngx_msec_int_t) (pd->after - ngx_current_msec) <= 0)
        {
            ngx_memcpy(b->item[i].id, pd->id, NGX_HTTP_CHAT_RT_ID_LEN);
            argv[5 + i] = (const char *) b->item[i].id;
            argvlen[5 + i] = NGX_HTTP_CHAT_RT_ID_LEN;
            i++;
        }

        q = next;
    }

    b->n = i;

    /* hiredis copies the command */
    if (ngx_http_chat_redis_command_argv(ngx_http_chat_redis_shard(shard),
                                         ngx_http_chat_rt_store_locked,
                                         b, (int) (5 + b->n), argv, argvlen)
        != NGX_OK)
    {
        ngx_add_timer(ev, NGX_HTTP_CHAT_RT_RETRY);
        goto done;
    }

    /* the users of the batch leave the queue */
    for (i = 0; i < b->n; i++) {
        pd = (ngx_http_chat_rt_pending_t *)
             ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_pending,
                                         b->item[i].id);
        ngx_queue_remove(&pd->queue);
        pd->busy = 1;
    }

    ngx_http_chat_rt_batching = 1;
    b = NULL;

done:

    if (b) {
        ngx_free(b);
    }

    if (argv) {
        ngx_free(argv);
    }

    if (argvlen) {
        ngx_free(argvlen);
    }
}


static void
ngx_http_chat_rt_store_locked(redisReply *reply, void *data)
{
    size_t                       size;
    ngx_uint_t                   i, writes, locked;
    redisReply                 **e;
    ngx_http_chat_mongo_task_t  *t;
    ngx_http_chat_rt_batch_t    *b;
    ngx_http_chat_rt_item_t     *it;
    ngx_http_chat_rt_pending_t  *pd;

    b = data;

    if (!ngx_http_chat_rt_store_on) {
        /* the worker is going: the locks it took expire by themselves */
        ngx_free(b);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 4 * b->n)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "chat ws: presence lock failed: %s", reply->str);
        }

        ngx_http_chat_rt_store_failed(b, NGX_HTTP_CHAT_RT_RETRY);
        ngx_free(b);
        ngx_http_chat_rt_store_next();
        return;
    }

    writes = 0;
    locked = 0;

    for (i = 0; i < b->n; i++) {
        it = &b->item[i];
        e = &reply->element[4 * i];

        pd = (ngx_http_chat_rt_pending_t *)
             ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_pending, it->id);

        if (e[0]->type != REDIS_REPLY_INTEGER
            || e[1]->type != REDIS_REPLY_INTEGER
            || e[2]->type != REDIS_REPLY_INTEGER
            || e[3]->type != REDIS_REPLY_INTEGER)
        {
            if (pd) {
                ngx_http_chat_rt_store_queue(pd, NGX_HTTP_CHAT_RT_RETRY);
            }

            continue;
        }

        if (e[0]->integer == 1) {
            /* locked: written whether or not this worker still has it */
            bson_oid_init_from_string(&it->user, (const char *) it->id);
            it->online = e[1]->integer ? 1 : 0;
            it->version = e[2]->integer;
            it->at = e[3]->integer;
            locked++;

            /*
             * Online is Redis's alone (store/ngx_http_chat_presence_read.c):
             * a user who comes online costs the document nothing (the
             * stats' mark of activity: ngx_http_chat_rt_presence_mark.c)
             */
            if (it->online) {
                it->written = 1;
                continue;
            }

            writes++;
            continue;
        }

        if (pd == NULL) {
            continue;
        }

        if (e[0]->integer == -2) {
            /* another worker writes: a later batch writes what is latest */
            ngx_http_chat_rt_store_queue(pd, NGX_HTTP_CHAT_RT_BUSY);

        } else {
            /*
             * the document has the latest state (the transitions of this
             * worker ran before this script, on the same connection)
             */
            ngx_http_chat_rt_store_done(pd);
        }
    }

    if (writes == 0 && locked) {
        /* nothing for the documents: the locks go, each is published */
        ngx_http_chat_rt_store_written(b, NGX_OK, NULL);
        ngx_free(b);
        return;
    }

    if (writes == 0) {
        ngx_free(b);
        ngx_http_chat_rt_store_next();
        return;
    }

    size = sizeof(ngx_http_chat_rt_batch_t)
           + (b->n - 1) * sizeof(ngx_http_chat_rt_item_t);

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_rt_store_run,
                                            ngx_http_chat_rt_store_stored,
                                            NULL, b, size);

    if (t == NULL || ngx_http_chat_mongo_post(t) != NGX_OK) {
        /*
         * published all the same, as after a failed task: an online that
         * needed no write is done, what had to be written goes again
         */
        ngx_http_chat_rt_store_written(b, NGX_ERROR,
                                       "the task could not be posted");
    }

    ngx_free(b);
}


static void
ngx_http_chat_rt_store_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    bson_t                     filter, update, set;
    ngx_uint_t                 i;
    mongoc_collection_t       *coll;
    ngx_http_chat_rt_item_t   *it;
    ngx_http_chat_rt_batch_t  *batch;

    batch = t->arg;
    t->rc = NGX_OK;

    coll = mongoc_database_get_collection(db, "users");

    /*
     * One update each, one after another, in this one task: FerretDB
     * stalls on an update command of many statements under load (one of
     * 100 never answers even alone), and a failure stops the batch
     * rather than wait for the store's timeout once per user.
     */
    for (i = 0; t->rc == NGX_OK && i < batch->n; i++) {
        it = &batch->item[i];

        if (it->version == 0 || it->written) {
            continue;
        }

        /*
         * The document by its id alone, which FerretDB finds by its
         * index (a condition beside it would scan the collection for
         * each user): the lock orders the writes of one user, and a
         * write that lost its lock is written over (see above).
         */
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "_id", &it->user);

        bson_init(&update);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);

        /* "online" false for what an older build wrote true */
        BSON_APPEND_BOOL(&set, "online", false);
        BSON_APPEND_INT64(&set, "presenceVersion", it->version);
        BSON_APPEND_DATE_TIME(&set, "lastSeenAt", it->at);

        bson_append_document_end(&update, &set);

        if (mongoc_collection_update_one(coll, &filter, &update, NULL, NULL,
                                         &t->error))
        {
            it->written = 1;

        } else {
            t->rc = NGX_ERROR;
        }

        bson_destroy(&update);
        bson_destroy(&filter);
    }

    mongoc_collection_destroy(coll);
}


static void
ngx_http_chat_rt_store_stored(ngx_http_chat_mongo_task_t *t)
{
    if (!ngx_http_chat_rt_store_on) {
        return;
    }

    ngx_http_chat_rt_store_written(t->arg, t->rc, t->error.message);
}


/* written: the locks go, then each state is published */
static void
ngx_http_chat_rt_store_written(ngx_http_chat_rt_batch_t *b, ngx_int_t rc,
    const char *error)
{
    ngx_uint_t  i;

    if (rc != NGX_OK) {
        /* published all the same: the sockets are told what happened */
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat ws: presence not stored: %s", error);
    }

    ngx_http_chat_rt_store_unlock(b);

    /*
     * A state the document held already (another holder wrote it) goes
     * again: each subscriber shows a version once.
     */
    for (i = 0; i < b->n; i++) {
        if (b->item[i].version) {
            ngx_http_chat_rt_store_publish(&b->item[i]);
        }
    }
}


static void
ngx_http_chat_rt_store_publish(ngx_http_chat_rt_item_t *it)
{
    json_t     *data;
    ngx_str_t   id;

    id.data = it->id;
    id.len = NGX_HTTP_CHAT_RT_ID_LEN;

    /* "v" orders the events of one user for each subscriber */
    if (it->online) {
        data = json_pack("{s:s%,s:I}", "userId", id.data, id.len,
                         "v", (json_int_t) it->version);

    } else {
        data = json_pack("{s:s%,s:o,s:I}", "userId", id.data, id.len,
                         "lastSeen", ngx_http_chat_json_time(it->at),
                         "v", (json_int_t) it->version);
    }

    if (data == NULL) {
        return;
    }

    ngx_http_chat_rt_publish_as("pres:", &id, '-', &id, NULL,
                                it->online ? "user_online" : "user_offline",
                                data);
    json_decref(data);
}


/*
 * The locks of the batch go, with the versions written (0: none).  A
 * lock that is no longer ours (it expired during a slow write) marks the
 * user for a rewrite instead.
 */
static void
ngx_http_chat_rt_store_unlock(ngx_http_chat_rt_batch_t *b)
{
    size_t                     size, *argvlen;
    u_char                    *v, *p;
    ngx_uint_t                 i, n;
    const char               **argv;
    ngx_http_chat_rt_batch_t  *c;

    size = sizeof(ngx_http_chat_rt_batch_t)
           + (b->n - 1) * sizeof(ngx_http_chat_rt_item_t);

    c = ngx_alloc(size, ngx_cycle->log);
    argv = ngx_alloc((4 + 2 * b->n) * sizeof(char *), ngx_cycle->log);
    argvlen = ngx_alloc((4 + 2 * b->n) * sizeof(size_t), ngx_cycle->log);
    v = ngx_alloc(b->n * NGX_INT64_LEN, ngx_cycle->log);

    if (c == NULL || argv == NULL || argvlen == NULL || v == NULL
        || ngx_http_chat_redis_shard(b->shard) == NULL)
    {
        goto failed;
    }

    ngx_memcpy(c, b, size);

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_chat_rt_store_unlock_lua;
    argvlen[1] = sizeof(ngx_http_chat_rt_store_unlock_lua) - 1;
    argv[2] = "0";
    argvlen[2] = 1;
    argv[3] = (const char *) c->token;
    argvlen[3] = c->token_len;

    n = 4;

    for (i = 0; i < c->n; i++) {
        if (c->item[i].version == 0) {
            continue;
        }

        argv[n] = (const char *) c->item[i].id;
        argvlen[n] = NGX_HTTP_CHAT_RT_ID_LEN;
        p = &v[i * NGX_INT64_LEN];
        argv[n + 1] = (const char *) p;
        argvlen[n + 1] = ngx_sprintf(p, "%L", c->item[i].written
                                              ? c->item[i].version
                                              : (int64_t) 0)
                         - p;
        n += 2;
    }

    if (ngx_http_chat_redis_command_argv(ngx_http_chat_redis_shard(c->shard),
                                         ngx_http_chat_rt_store_unlocked,
                                         c, (int) n, argv, argvlen)
        != NGX_OK)
    {
        goto failed;
    }

    ngx_free(argv);
    ngx_free(argvlen);
    ngx_free(v);

    return;

failed:

    /* the locks expire by themselves; until then the tries find them */
    ngx_http_chat_rt_store_failed(b, NGX_HTTP_CHAT_RT_RETRY);
    ngx_http_chat_rt_store_next();

    if (c) {
        ngx_free(c);
    }

    if (argv) {
        ngx_free(argv);
    }

    if (argvlen) {
        ngx_free(argvlen);
    }

    if (v) {
        ngx_free(v);
    }
}


static void
ngx_http_chat_rt_store_unlocked(redisReply *reply, void *data)
{
    ngx_uint_t                   i, k, again;
    ngx_http_chat_rt_batch_t    *b;
    ngx_http_chat_rt_pending_t  *pd;

    b = data;

    if (!ngx_http_chat_rt_store_on) {
        ngx_free(b);
        return;
    }

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat ws: presence unlock failed: %s", reply->str);
    }

    k = 0;

    for (i = 0; i < b->n; i++) {
        if (b->item[i].version == 0) {
            continue;
        }

        again = 1;

        if (reply && reply->type == REDIS_REPLY_ARRAY
            && k < reply->elements
            && reply->element[k]->type == REDIS_REPLY_INTEGER
            && reply->element[k]->integer == 0)
        {
            again = 0;
        }

        k++;

        pd = (ngx_http_chat_rt_pending_t *)
             ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_pending,
                                         b->item[i].id);

        if (pd == NULL) {
            continue;
        }

        if (!b->item[i].written) {
            /* not written: tried again a few times, a while apart */
            if (++pd->fails > NGX_HTTP_CHAT_RT_FAILS) {
                ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                              "chat ws: presence of %*s not stored, "
                              "left to the next transition",
                              (size_t) NGX_HTTP_CHAT_RT_ID_LEN, pd->id);
                ngx_http_chat_rt_store_done(pd);

            } else {
                ngx_http_chat_rt_store_queue(pd, NGX_HTTP_CHAT_RT_FAILED);
            }

            continue;
        }

        if (again) {
            /* a newer state came, or the lock expired meanwhile */
            ngx_http_chat_rt_store_queue(pd, 0);

        } else {
            ngx_http_chat_rt_store_done(pd);
        }
    }

    ngx_free(b);
    ngx_http_chat_rt_store_next();
}


/* the users of the batch still here wait for a later one */
static void
ngx_http_chat_rt_store_failed(ngx_http_chat_rt_batch_t *b, ngx_msec_t ms)
{
    ngx_uint_t                   i;
    ngx_http_chat_rt_pending_t  *pd;

    for (i = 0; i < b->n; i++) {
        pd = (ngx_http_chat_rt_pending_t *)
             ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_pending,
                                         b->item[i].id);

        if (pd != NULL && pd->busy) {
            ngx_http_chat_rt_store_queue(pd, ms);
        }
    }
}
