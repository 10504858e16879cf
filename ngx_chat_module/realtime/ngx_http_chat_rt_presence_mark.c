/*
 * Copyright (C) ngx_chat_module authors
 *
 * The stats' mark of activity (activeAt in the user's document) for
 * the users a worker counts.  A sign-in writes nothing: every second
 * the worker takes the next of its users, in order, so that each is
 * visited once every chat_active_walk (at most MARK_MAX a step); one
 * still online whose mark ("a" in presence:h:<user>, Redis's time) is an
 * hour old or missing has it taken in Redis (so that the user's other
 * workers do not mark too), then written to the document, and given
 * back when the write fails.  So a mass reconnect costs the store its
 * marks over the walk, not at once; a session shorter than the walk
 * costs only its lastSeenAt; a socket open for days is marked every
 * hour.
 */


#include "ngx_http_chat_rt_presence_int.h"
#include "../store/ngx_http_chat_mongo.h"


#define NGX_HTTP_CHAT_RT_MARK_EVERY  1000      /* ms: a step of the walk */


typedef struct {
    u_char                        id[NGX_HTTP_CHAT_RT_ID_LEN];
    ngx_uint_t                    shard;
    int64_t                       at;        /* ms, the shard's clock */
    unsigned                      taken:1;
    unsigned                      written:1;
} ngx_http_chat_rt_mark_user_t;


typedef struct {
    ngx_uint_t                    n;
    ngx_http_chat_rt_mark_user_t  user[NGX_HTTP_CHAT_RT_MARK_MAX];
} ngx_http_chat_rt_mark_step_t;


static void ngx_http_chat_rt_mark_timer(ngx_event_t *ev);
static void ngx_http_chat_rt_mark_taken(redisReply *reply, void *data);
static void ngx_http_chat_rt_mark_write(void);
static void ngx_http_chat_rt_mark_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
static void ngx_http_chat_rt_mark_written(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_rt_mark_give_back(ngx_http_chat_rt_mark_step_t *st);
static void ngx_http_chat_rt_mark_end(void);


/*
 * ARGV: users.  {now, then for each user 1: the mark taken (online, a
 * worker counts a socket of theirs, and marked an hour ago or never),
 * else 0}
 */
static char  ngx_http_chat_rt_mark_take_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local out = {now} "
    "for i = 1, #ARGV do local u, r = ARGV[i], 0 "
    "local H = 'presence:h:' .. u "
    "if redis.call('EXISTS', 'presence:s:' .. u) == 1 "
    "or redis.call('EXISTS', 'presence:u:' .. u) == 1 then "
    "if now - tonumber(redis.call('HGET', H, 'a') or '0') >= 3600000 then "
    "redis.call('HSET', H, 'a', string.format('%d', now)) "
    "redis.call('PEXPIRE', H, 86400000) r = 1 end end "
    "out[#out + 1] = r end "
    "return out";


/* ARGV: the time taken, then users: their mark goes, unless another's */
static char  ngx_http_chat_rt_mark_give_lua[] =
    "for i = 2, #ARGV do local H = 'presence:h:' .. ARGV[i] "
    "if redis.call('HGET', H, 'a') == ARGV[1] then "
    "redis.call('HDEL', H, 'a') end end "
    "return {1}";


static ngx_http_chat_rt_mark_step_t  ngx_http_chat_rt_mark;
static ngx_uint_t          ngx_http_chat_rt_mark_on;
static ngx_uint_t          ngx_http_chat_rt_mark_busy;   /* a step out */
static ngx_uint_t          ngx_http_chat_rt_mark_replies;  /* awaited */
static ngx_msec_t          ngx_http_chat_rt_mark_walk;
static ngx_msec_t          ngx_http_chat_rt_mark_last;     /* a walk */
static ngx_event_t         ngx_http_chat_rt_mark_ev;
static ngx_connection_t    ngx_http_chat_rt_mark_dummy;    /* the log */


void
ngx_http_chat_rt_presence_mark_init(ngx_msec_t walk)
{
    ngx_http_chat_rt_mark_walk = walk;
    ngx_http_chat_rt_mark.n = 0;
    ngx_http_chat_rt_mark_busy = 0;
    ngx_http_chat_rt_mark_last = ngx_current_msec;
    ngx_http_chat_rt_mark_on = 1;

    ngx_http_chat_rt_mark_ev.handler = ngx_http_chat_rt_mark_timer;
    ngx_http_chat_rt_mark_ev.log = ngx_cycle->log;
    ngx_http_chat_rt_mark_dummy.fd = (ngx_socket_t) -1;
    ngx_http_chat_rt_mark_ev.data = &ngx_http_chat_rt_mark_dummy;
    ngx_http_chat_rt_mark_ev.cancelable = 1;

    ngx_add_timer(&ngx_http_chat_rt_mark_ev, NGX_HTTP_CHAT_RT_MARK_EVERY);
}


/* a step under way is dropped: marks taken and not written stay an hour */
void
ngx_http_chat_rt_presence_mark_exit(void)
{
    ngx_http_chat_rt_mark_on = 0;

    if (ngx_http_chat_rt_mark_ev.timer_set) {
        ngx_del_timer(&ngx_http_chat_rt_mark_ev);
    }
}


/* a user the walk visits: NGX_DECLINED once the step is full */
ngx_int_t
ngx_http_chat_rt_presence_mark_add(u_char *id, ngx_uint_t shard)
{
    ngx_http_chat_rt_mark_user_t  *u;

    if (ngx_http_chat_rt_mark.n == NGX_HTTP_CHAT_RT_MARK_MAX) {
        return NGX_DECLINED;
    }

    u = &ngx_http_chat_rt_mark.user[ngx_http_chat_rt_mark.n++];

    ngx_memcpy(u->id, id, NGX_HTTP_CHAT_RT_ID_LEN);
    u->shard = shard;
    u->taken = 0;
    u->written = 0;

    return NGX_OK;
}


/* a step: the next users, one script for those of each shard */
static void
ngx_http_chat_rt_mark_timer(ngx_event_t *ev)
{
    size_t                         argvlen[3 + NGX_HTTP_CHAT_RT_MARK_MAX];
    ngx_msec_t                     every;
    ngx_uint_t                     i, k, n, shard, done;
    const char                    *argv[3 + NGX_HTTP_CHAT_RT_MARK_MAX];
    ngx_http_chat_rt_mark_step_t  *st;

    if (!ngx_http_chat_rt_mark_on || ngx_exiting || ngx_quit
        || ngx_terminate)
    {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_CHAT_RT_MARK_EVERY);

    if (ngx_http_chat_rt_mark_busy) {
        return;
    }

    st = &ngx_http_chat_rt_mark;
    st->n = 0;

    /* the time since the last step: a slow step delays, never skips */
    every = ngx_current_msec - ngx_http_chat_rt_mark_last;
    ngx_http_chat_rt_mark_last = ngx_current_msec;

    ngx_http_chat_rt_presence_walk(ngx_min(every, ngx_http_chat_rt_mark_walk),
                                   ngx_http_chat_rt_mark_walk);

    if (st->n == 0) {
        return;
    }

    ngx_http_chat_rt_mark_busy = 1;
    ngx_http_chat_rt_mark_replies = 1;     /* this loop's own */

    /* each shard once: the users of the first one not sent yet */
    done = 0;

    while (done < st->n) {
        shard = NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1;
        n = 0;

        for (i = 0; i < st->n; i++) {
            if (st->user[i].taken || st->user[i].written) {
                continue;
            }

            if (shard == NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1) {
                shard = st->user[i].shard;
            }

            if (st->user[i].shard == shard) {
                /* sent: "taken" until the reply says */
                st->user[i].taken = 1;
                argv[3 + n] = (const char *) st->user[i].id;
                argvlen[3 + n] = NGX_HTTP_CHAT_RT_ID_LEN;
                n++;
            }
        }

        done += n;

        if (NGX_HTTP_CHAT_RT_EVAL(shard, ngx_http_chat_rt_mark_take_lua,
                                  3 + n, argv, argvlen,
                                  ngx_http_chat_rt_mark_taken,
                                  (void *) (uintptr_t) shard)
            == NGX_OK)
        {
            ngx_http_chat_rt_mark_replies++;
            continue;
        }

        /* Redis away: those users wait for the next round */
        for (k = 0; k < st->n; k++) {
            if (st->user[k].shard == shard) {
                st->user[k].taken = 0;
                st->user[k].written = 1;
            }
        }
    }

    if (--ngx_http_chat_rt_mark_replies == 0) {
        ngx_http_chat_rt_mark_write();
    }
}


static void
ngx_http_chat_rt_mark_taken(redisReply *reply, void *data)
{
    int64_t                        at;
    ngx_uint_t                     i, j, shard, ok;
    redisReply                   **e;
    ngx_http_chat_rt_mark_step_t  *st;

    if (!ngx_http_chat_rt_mark_on) {
        return;
    }

    shard = (ngx_uint_t) (uintptr_t) data;
    st = &ngx_http_chat_rt_mark;

    e = ngx_http_chat_rt_presence_reply(reply, "mark");
    ok = (e != NULL);
    at = ok ? e[0]->integer : 0;

    /* the users of that shard, in the order sent */
    j = 1;

    for (i = 0; i < st->n; i++) {
        if (st->user[i].shard != shard || st->user[i].written) {
            continue;
        }

        if (!ok || j >= reply->elements
            || e[j]->type != REDIS_REPLY_INTEGER || e[j]->integer != 1)
        {
            /* not taken: nothing to write or give back */
            st->user[i].taken = 0;
            st->user[i].written = 1;

        } else {
            st->user[i].at = at;
        }

        j++;
    }

    if (--ngx_http_chat_rt_mark_replies == 0) {
        ngx_http_chat_rt_mark_write();
    }
}


/* the marks taken, written one after another in one task */
static void
ngx_http_chat_rt_mark_write(void)
{
    ngx_uint_t                     i;
    ngx_http_chat_mongo_task_t    *t;
    ngx_http_chat_rt_mark_step_t  *st;

    st = &ngx_http_chat_rt_mark;

    for (i = 0; i < st->n; i++) {
        if (st->user[i].taken) {
            break;
        }
    }

    if (i == st->n) {
        ngx_http_chat_rt_mark_end();
        return;
    }

    /* the users of this step only */
    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                  ngx_http_chat_rt_mark_run,
                                  ngx_http_chat_rt_mark_written, NULL, st,
                                  offsetof(ngx_http_chat_rt_mark_step_t, user)
                                  + st->n
                                    * sizeof(ngx_http_chat_rt_mark_user_t));

    if (t == NULL || ngx_http_chat_mongo_post(t) != NGX_OK) {
        ngx_http_chat_rt_mark_give_back(st);
        ngx_http_chat_rt_mark_end();
    }
}


static void
ngx_http_chat_rt_mark_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    bson_t                         filter, update, set;
    bson_oid_t                     oid;
    ngx_uint_t                     i;
    mongoc_collection_t           *coll;
    ngx_http_chat_rt_mark_user_t  *u;
    ngx_http_chat_rt_mark_step_t  *st;

    st = t->arg;
    t->rc = NGX_OK;

    coll = mongoc_database_get_collection(db, "users");

    /* by _id alone, one after another (as the presence batches) */
    for (i = 0; t->rc == NGX_OK && i < st->n; i++) {
        u = &st->user[i];

        if (!u->taken) {
            continue;
        }

        bson_oid_init_from_string(&oid, (const char *) u->id);

        bson_init(&filter);
        BSON_APPEND_OID(&filter, "_id", &oid);

        bson_init(&update);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
        BSON_APPEND_DATE_TIME(&set, "activeAt", u->at);
        bson_append_document_end(&update, &set);

        if (mongoc_collection_update_one(coll, &filter, &update, NULL, NULL,
                                         &t->error))
        {
            u->written = 1;

        } else {
            t->rc = NGX_ERROR;
        }

        bson_destroy(&update);
        bson_destroy(&filter);
    }

    mongoc_collection_destroy(coll);
}


static void
ngx_http_chat_rt_mark_written(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_rt_mark_step_t  *st;

    if (!ngx_http_chat_rt_mark_on) {
        return;
    }

    st = t->arg;

    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat ws: marks of activity not written: %s",
                      t->error.message);
        ngx_http_chat_rt_mark_give_back(st);
    }

    ngx_http_chat_rt_mark_end();
}


/* marks taken and not written: a later round takes them again */
static void
ngx_http_chat_rt_mark_give_back(ngx_http_chat_rt_mark_step_t *st)
{
    u_char       at[NGX_INT64_LEN];
    size_t       argvlen[4 + NGX_HTTP_CHAT_RT_MARK_MAX];
    ngx_uint_t   i, j, n, shard;
    const char  *argv[4 + NGX_HTTP_CHAT_RT_MARK_MAX];

    for (i = 0; i < st->n; i++) {
        if (!st->user[i].taken || st->user[i].written) {
            continue;
        }

        /* the users of a shard share the time its script took */
        shard = st->user[i].shard;
        argv[3] = (const char *) at;
        argvlen[3] = ngx_sprintf(at, "%L", st->user[i].at) - at;
        n = 0;

        for (j = i; j < st->n; j++) {
            if (st->user[j].shard == shard && st->user[j].taken
                && !st->user[j].written)
            {
                st->user[j].written = 1;
                argv[4 + n] = (const char *) st->user[j].id;
                argvlen[4 + n] = NGX_HTTP_CHAT_RT_ID_LEN;
                n++;
            }
        }

        /* not given back: the mark holds for the hour */
        (void) NGX_HTTP_CHAT_RT_EVAL(shard, ngx_http_chat_rt_mark_give_lua,
                                     4 + n, argv, argvlen, NULL, NULL);
    }
}


static void
ngx_http_chat_rt_mark_end(void)
{
    ngx_http_chat_rt_mark.n = 0;
    ngx_http_chat_rt_mark_busy = 0;
}
