/*
 * Copyright (C) ngx_chat_module authors
 *
 * Presence after a change of the shard list.  A user's keys are placed
 * by the list (ngx_http_chat_redis_shards.h), so when it changes, what
 * the workers of the old list counted may be on a server that is not
 * the user's any more: chat_redis for workers of a build without
 * shards, or a shard the hash no longer picks for that user.  The
 * workers of the new list sweep those servers too (every shard they
 * beat, and chat_redis with shards), and a user swept there is handed
 * over to their shard now: unless a worker counts them there, their
 * version there is bumped, last seen when their old worker last beat,
 * and their document follows (the lock script writes them offline).
 * The sweep already took them off the old server, so a hand-over that
 * fails (that shard's connection dropped, its script refused) is tried
 * again, a second apart, while the worker lives.
 */


#include "ngx_http_chat_rt_presence_int.h"


/*
 * ARGV: user, last seen (ms).  {0}: a worker counts the user here;
 * {1, version}: the user's offline state written here.
 */
static char  ngx_http_chat_rt_moved_lua[] =
    NGX_HTTP_CHAT_RT_PRESENCE_LUA
    "local u = ARGV[1] "
    "if redis.call('EXISTS', 'presence:s:' .. u) == 1 then return {0} end "
    "return {1, bump(u, now(), tonumber(ARGV[2]))}";


#define NGX_HTTP_CHAT_RT_MOVED_TRIES  60      /* a second apart */


typedef struct {
    ngx_queue_t                  queue;     /* while it waits its retry */
    long long                    at;        /* last seen */
    ngx_uint_t                   tries;
    u_char                       id[NGX_HTTP_CHAT_RT_ID_LEN];
} ngx_http_chat_rt_moved_t;


static void ngx_http_chat_rt_presence_moved(u_char *id, long long at);
static void ngx_http_chat_rt_presence_hand(ngx_http_chat_rt_moved_t *m);
static void ngx_http_chat_rt_presence_handed(redisReply *reply,
    void *data);
static void ngx_http_chat_rt_presence_again(ngx_http_chat_rt_moved_t *m);
static void ngx_http_chat_rt_presence_retry(ngx_event_t *ev);


static ngx_queue_t        ngx_http_chat_rt_moved_queue;
static ngx_event_t        ngx_http_chat_rt_moved_ev;
static ngx_connection_t   ngx_http_chat_rt_moved_dummy;  /* the timer's */


void
ngx_http_chat_rt_presence_changed(redisReply *out, ngx_uint_t shard)
{
    size_t       i;
    ngx_uint_t   now;
    redisReply  *u, *v, *at;

    for (i = 0; i + 2 < out->elements; i += 3) {
        u = out->element[i];
        v = out->element[i + 1];
        at = out->element[i + 2];

        if (u->type != REDIS_REPLY_STRING
            || v->type != REDIS_REPLY_INTEGER
            || at->type != REDIS_REPLY_INTEGER
            || u->len != NGX_HTTP_CHAT_RT_ID_LEN)
        {
            continue;
        }

        now = ngx_http_chat_redis_shard_of((u_char *) u->str, u->len);

        if (now == shard) {
            ngx_http_chat_rt_presence_store((u_char *) u->str, u->len);

        } else {
            ngx_http_chat_rt_presence_moved((u_char *) u->str, at->integer);
        }
    }
}


/* the user's offline state on their shard now, then their document */
static void
ngx_http_chat_rt_presence_moved(u_char *id, long long at)
{
    ngx_http_chat_rt_moved_t  *m;

    m = ngx_alloc(sizeof(ngx_http_chat_rt_moved_t), ngx_cycle->log);
    if (m == NULL) {
        return;
    }

    ngx_memcpy(m->id, id, NGX_HTTP_CHAT_RT_ID_LEN);
    m->at = at;
    m->tries = 0;

    ngx_http_chat_rt_presence_hand(m);
}


static void
ngx_http_chat_rt_presence_hand(ngx_http_chat_rt_moved_t *m)
{
    u_char       seen[NGX_INT64_LEN];
    size_t       argvlen[5];
    ngx_uint_t   shard;
    const char  *argv[5];

    shard = ngx_http_chat_redis_shard_of(m->id, NGX_HTTP_CHAT_RT_ID_LEN);

    argv[3] = (const char *) m->id;
    argvlen[3] = NGX_HTTP_CHAT_RT_ID_LEN;
    argv[4] = (const char *) seen;
    argvlen[4] = ngx_sprintf(seen, "%L", (int64_t) m->at) - seen;

    if (NGX_HTTP_CHAT_RT_EVAL(shard, ngx_http_chat_rt_moved_lua, 5, argv,
                              argvlen, ngx_http_chat_rt_presence_handed, m)
        != NGX_OK)
    {
        ngx_http_chat_rt_presence_again(m);
    }
}


static void
ngx_http_chat_rt_presence_handed(redisReply *reply, void *data)
{
    ngx_http_chat_rt_moved_t  *m = data;

    /* a shard that refuses the script for a minute: its error logged once */
    if (ngx_http_chat_rt_presence_reply(reply, m->tries ? NULL : "hand-over")
        == NULL)
    {
        ngx_http_chat_rt_presence_again(m);
        return;
    }

    /* counted there: the document is at or comes to that state */
    ngx_http_chat_rt_presence_store(m->id, NGX_HTTP_CHAT_RT_ID_LEN);
    ngx_free(m);
}


/* a hand-over that failed: again in a second, up to the tries */
static void
ngx_http_chat_rt_presence_again(ngx_http_chat_rt_moved_t *m)
{
    if (++m->tries >= NGX_HTTP_CHAT_RT_MOVED_TRIES
        || ngx_exiting || ngx_quit || ngx_terminate)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat ws: presence of %*s not handed over to its "
                      "shard after %ui tries",
                      (size_t) NGX_HTTP_CHAT_RT_ID_LEN, m->id, m->tries);
        ngx_free(m);
        return;
    }

    if (ngx_http_chat_rt_moved_ev.handler == NULL) {
        ngx_queue_init(&ngx_http_chat_rt_moved_queue);
        ngx_http_chat_rt_moved_ev.handler = ngx_http_chat_rt_presence_retry;
        ngx_http_chat_rt_moved_ev.log = ngx_cycle->log;
        ngx_http_chat_rt_moved_dummy.fd = (ngx_socket_t) -1;
        ngx_http_chat_rt_moved_ev.data = &ngx_http_chat_rt_moved_dummy;
        ngx_http_chat_rt_moved_ev.cancelable = 1;
    }

    ngx_queue_insert_tail(&ngx_http_chat_rt_moved_queue, &m->queue);

    if (!ngx_http_chat_rt_moved_ev.timer_set) {
        ngx_add_timer(&ngx_http_chat_rt_moved_ev, 1000);
    }
}


static void
ngx_http_chat_rt_presence_retry(ngx_event_t *ev)
{
    ngx_queue_t                q, *e;
    ngx_http_chat_rt_moved_t  *m;

    if (ngx_queue_empty(&ngx_http_chat_rt_moved_queue)) {
        return;
    }

    /* each goes once: one that fails again waits the next second */
    ngx_queue_init(&q);
    ngx_queue_add(&q, &ngx_http_chat_rt_moved_queue);
    ngx_queue_init(&ngx_http_chat_rt_moved_queue);

    while (!ngx_queue_empty(&q)) {
        e = ngx_queue_head(&q);
        ngx_queue_remove(e);
        m = ngx_queue_data(e, ngx_http_chat_rt_moved_t, queue);
        ngx_http_chat_rt_presence_hand(m);
    }
}


/* the worker goes: the hand-overs still waiting are dropped */
void
ngx_http_chat_rt_presence_moved_exit(void)
{
    ngx_queue_t               *e;
    ngx_http_chat_rt_moved_t  *m;

    if (ngx_http_chat_rt_moved_ev.handler == NULL) {
        return;
    }

    if (ngx_http_chat_rt_moved_ev.timer_set) {
        ngx_del_timer(&ngx_http_chat_rt_moved_ev);
    }

    while (!ngx_queue_empty(&ngx_http_chat_rt_moved_queue)) {
        e = ngx_queue_head(&ngx_http_chat_rt_moved_queue);
        ngx_queue_remove(e);
        m = ngx_queue_data(e, ngx_http_chat_rt_moved_t, queue);
        ngx_free(m);
    }
}
