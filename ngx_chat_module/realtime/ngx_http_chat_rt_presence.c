/*
 * Copyright (C) ngx_chat_module authors
 *
 * Presence: a user is online while a live worker, of any instance,
 * counts an authenticated socket of theirs.
 *
 * A worker counts its own sockets per user in memory and tells Redis
 * only when a user's count here goes from 0 to 1 or back; all of that
 * goes in order on the worker's one command connection.  In Redis:
 *
 *     presence:workers      zset, worker id -> the last time it was
 *                           alive (ms, Redis's clock)
 *     presence:w:<worker>   set, the users that worker counts
 *     presence:s:<user>     hash, the workers that count the user ->
 *                           the user's sockets there: "1" when the
 *                           worker first counts them, the count of two
 *                           or more written 100 ms after a change, once
 *                           for however many (lua-compat counts)
 *     presence:h:<user>     hash, v: the version of the user's last
 *                           transition (and the document's marks)
 *
 * Each change is one Lua script: it changes the two sets and says
 * whether the user went online (first worker) or offline (last one),
 * with a version that only grows.  The version orders the transitions
 * of a user across workers and instances: the user's document is
 * written, one worker at a time per user, with the latest state Redis
 * holds (ngx_http_chat_rt_presence_store.c), and a subscriber is never
 * shown an older one after a newer (ngx_http_chat_rt_presence_watch.c).
 *
 * Every worker beats on a timer (chat_presence_ttl / 3).  A worker
 * whose last beat is older than chat_presence_ttl is dead: the next
 * beat of any worker sweeps it, from its own set, so the sweep costs
 * the users of that worker and nothing more.  A worker that finds
 * itself swept (Redis was away longer than the ttl), or lost a reply,
 * writes its whole set again from memory.
 *
 * A worker that exits gracefully (a reload, a stop) leaves its users to
 * the sweep: a client that reconnects to another worker within the ttl
 * is never seen offline.
 *
 * With chat_redis_shards, a user's keys are on the user's shard (the
 * one of their channels), and every shard holds its own
 * presence:workers and presence:w:<worker>, of the users placed there:
 * a transition goes to the user's shard, a worker beats, sweeps and
 * resyncs on each shard apart, and every script stays on one server.
 * Without shards that one shard is chat_redis.
 */


#include "ngx_http_chat_rt_presence_int.h"


#define NGX_HTTP_CHAT_RT_SWEEP_MAX  8     /* dead workers per beat */


typedef struct {
    ngx_rbtree_node_t            node;
    u_char                       id[NGX_HTTP_CHAT_RT_ID_LEN];
    ngx_uint_t                   count;     /* sockets here */
    ngx_uint_t                   shard;     /* of the user's keys */
    ngx_queue_t                  counts;    /* its count to write */
    unsigned                     queued:1;
} ngx_http_chat_rt_online_t;


static void ngx_http_chat_rt_presence_set(u_char *id, ngx_uint_t online);
static ngx_uint_t ngx_http_chat_rt_presence_first(void);
static void ngx_http_chat_rt_presence_was_set(redisReply *reply, void *data);
static void ngx_http_chat_rt_presence_beat(ngx_event_t *ev);
static void ngx_http_chat_rt_presence_beaten(redisReply *reply, void *data);
static void ngx_http_chat_rt_presence_resync(ngx_uint_t shard);
static void ngx_http_chat_rt_presence_resynced(redisReply *reply,
    void *data);
static void ngx_http_chat_rt_presence_args(ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, ngx_uint_t shard, const char **argv,
    size_t *argvlen, ngx_uint_t *n);
static void ngx_http_chat_rt_presence_recount(ngx_http_chat_rt_online_t *o);
static void ngx_http_chat_rt_presence_recount_all(ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, ngx_uint_t shard);
static void ngx_http_chat_rt_presence_forget(ngx_http_chat_rt_online_t *o);
static void ngx_http_chat_rt_presence_write_counts(ngx_event_t *ev);
static void ngx_http_chat_rt_presence_counts_written(redisReply *reply,
    void *data);


/* the scripts, each after NGX_HTTP_CHAT_RT_PRESENCE_LUA */

/*
 * ARGV: worker, user, 1 (a first socket here) or 0 (the last went), ttl.
 * {1|0, version, time}: the user went online or offline; {2}: no change;
 * {-1}: the worker is not alive in Redis (it resyncs at its next beat).
 */
static char  ngx_http_chat_rt_presence_set_lua[] =
    NGX_HTTP_CHAT_RT_PRESENCE_LUA
    "local t = now() local w, u = ARGV[1], ARGV[2] "
    "if not alive(w, t, tonumber(ARGV[4])) then return {-1} end "
    "redis.call('ZADD', Z, t, w) "
    "if ARGV[3] == '1' then "
    "if add(w, u) then return {1, bump(u, t), t} end "
    "elseif del(w, u) then return {0, bump(u, t, t), t} end "
    "return {2}";


/*
 * ARGV: worker, ttl, the most dead workers to sweep[, "sweep"].  Sweeps
 * them (their users that no other worker counts go offline, last seen
 * when their worker last beat), then beats, unless "sweep" says only
 * that (a server presence is no longer on).  {fresh, {user, version,
 * time, ...}}: fresh 1 when the worker was not alive (first beat, or
 * swept).
 */
static char  ngx_http_chat_rt_presence_beat_lua[] =
    NGX_HTTP_CHAT_RT_PRESENCE_LUA
    "local t = now() local w, ttl = ARGV[1], tonumber(ARGV[2]) "
    "local fresh = alive(w, t, ttl) and 0 or 1 "
    "local out = {} "
    "local dead = redis.call('ZRANGEBYSCORE', Z, '-inf', "
    "'(' .. string.format('%d', t - ttl), 'LIMIT', 0, tonumber(ARGV[3])) "
    "for _, d in ipairs(dead) do "
    "local at = tonumber(redis.call('ZSCORE', Z, d)) "
    "for _, u in ipairs(redis.call('SMEMBERS', 'presence:w:' .. d)) do "
    "if del(d, u) then "
    "out[#out + 1] = u out[#out + 1] = bump(u, t, at) out[#out + 1] = at end "
    "end "
    "redis.call('DEL', 'presence:w:' .. d) redis.call('ZREM', Z, d) "
    "end "
    "if ARGV[4] ~= 'sweep' then redis.call('ZADD', Z, t, w) end "
    "return {fresh, out}";


/*
 * ARGV: worker, ttl, every user the worker counts.  Makes its set that:
 * {time, {user, 1|0, version, ...}} with the transitions it caused, or
 * {-1, {}} when the worker is not alive.
 */
static char  ngx_http_chat_rt_presence_resync_lua[] =
    NGX_HTTP_CHAT_RT_PRESENCE_LUA
    "local t = now() local w = ARGV[1] "
    "if not alive(w, t, tonumber(ARGV[2])) then return {-1, {}} end "
    "redis.call('ZADD', Z, t, w) "
    "local want, out = {}, {} "
    "for i = 3, #ARGV do want[ARGV[i]] = true end "
    "for _, u in ipairs(redis.call('SMEMBERS', 'presence:w:' .. w)) do "
    "if not want[u] and del(w, u) then "
    "out[#out + 1] = u out[#out + 1] = 0 out[#out + 1] = bump(u, t, t) end "
    "end "
    "for u in pairs(want) do "
    "if add(w, u) then "
    "out[#out + 1] = u out[#out + 1] = 1 out[#out + 1] = bump(u, t) end "
    "end "
    "return {t, out}";


/*
 * ARGV: worker, then user and count pairs: the sockets the worker holds
 * of users it still counts (a user it no longer counts keeps no field)
 */
static char  ngx_http_chat_rt_presence_counts_lua[] =
    "local w = ARGV[1] "
    "for i = 2, #ARGV - 1, 2 do local k = 'presence:s:' .. ARGV[i] "
    "if tonumber(ARGV[i + 1]) >= 1 and redis.call('HEXISTS', k, w) == 1 "
    "then redis.call('HSET', k, w, ARGV[i + 1]) end end "
    "return 1";


static ngx_rbtree_t        ngx_http_chat_rt_online;
static ngx_rbtree_node_t   ngx_http_chat_rt_online_sentinel;
static ngx_uint_t          ngx_http_chat_rt_online_n;
static ngx_event_t         ngx_http_chat_rt_beat_ev;
static ngx_connection_t    ngx_http_chat_rt_beat_dummy;  /* the timer's log */
static u_char              ngx_http_chat_rt_wid[NGX_HTTP_CHAT_RT_WID_LEN];
static size_t              ngx_http_chat_rt_wid_len;
static u_char              ngx_http_chat_rt_ttl[NGX_INT64_LEN];
static size_t              ngx_http_chat_rt_ttl_len;
static ngx_msec_t          ngx_http_chat_rt_ttl_ms;
/* per shard: Redis may differ from memory; a beat in flight */
static ngx_uint_t          ngx_http_chat_rt_dirty[
                               NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1];
static ngx_uint_t          ngx_http_chat_rt_beating[
                               NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1];
static ngx_uint_t          ngx_http_chat_rt_on;      /* chat_ws is used */
static ngx_queue_t         ngx_http_chat_rt_counts;  /* counts to write */
static ngx_event_t         ngx_http_chat_rt_counts_ev;
/* the walk of the marks of activity: the last user visited, its credit */
static ngx_uint_t          ngx_http_chat_rt_walked;
static ngx_rbtree_key_t    ngx_http_chat_rt_walked_key;
static u_char              ngx_http_chat_rt_walked_id[
                               NGX_HTTP_CHAT_RT_ID_LEN];
static uint64_t            ngx_http_chat_rt_walk_credit;


ngx_int_t
ngx_http_chat_rt_presence_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_http_chat_main_conf_t  *cmcf;

    ngx_rbtree_init(&ngx_http_chat_rt_online,
                    &ngx_http_chat_rt_online_sentinel,
                    ngx_http_chat_rt_keyed_insert);
    ngx_queue_init(&ngx_http_chat_rt_counts);

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chat_module);

    if (cmcf == NULL || !cmcf->realtime) {
        return NGX_OK;
    }

    ngx_http_chat_rt_on = 1;

    for (i = 0; i <= NGX_HTTP_CHAT_REDIS_SHARDS_MAX; i++) {
        ngx_http_chat_rt_dirty[i] = 1;
        ngx_http_chat_rt_beating[i] = 0;
    }
    ngx_http_chat_rt_ttl_ms = cmcf->presence_ttl;
    ngx_http_chat_rt_ttl_len = ngx_sprintf(ngx_http_chat_rt_ttl, "%M",
                                           cmcf->presence_ttl)
                               - ngx_http_chat_rt_ttl;

    /* the host, the process and its start: never the same twice */
    ngx_http_chat_rt_wid_len = ngx_snprintf(ngx_http_chat_rt_wid,
                                            sizeof(ngx_http_chat_rt_wid),
                                            "%V:%P:%M", &cycle->hostname,
                                            ngx_pid,
                                            (ngx_msec_t) ngx_time() * 1000
                                            + ngx_current_msec % 1000)
                               - ngx_http_chat_rt_wid;

    /* the documents follow in batches (ngx_http_chat_rt_presence_store.c) */
    ngx_http_chat_rt_presence_store_init(ngx_http_chat_rt_wid,
                                         ngx_http_chat_rt_wid_len);

    /* the stats' marks of activity (ngx_http_chat_rt_presence_mark.c) */
    ngx_http_chat_rt_walked = 0;
    ngx_http_chat_rt_walk_credit = 0;
    ngx_http_chat_rt_presence_mark_init(cmcf->active_walk);

    ngx_http_chat_rt_beat_ev.handler = ngx_http_chat_rt_presence_beat;
    ngx_http_chat_rt_beat_ev.log = cycle->log;
    ngx_http_chat_rt_beat_dummy.fd = (ngx_socket_t) -1;
    ngx_http_chat_rt_beat_ev.data = &ngx_http_chat_rt_beat_dummy;

    /* a worker going away waits for no beat */
    ngx_http_chat_rt_beat_ev.cancelable = 1;

    ngx_http_chat_rt_counts_ev.handler =
                                    ngx_http_chat_rt_presence_write_counts;
    ngx_http_chat_rt_counts_ev.log = cycle->log;
    ngx_http_chat_rt_counts_ev.data = &ngx_http_chat_rt_beat_dummy;
    ngx_http_chat_rt_counts_ev.cancelable = 1;

    ngx_add_timer(&ngx_http_chat_rt_beat_ev, NGX_HTTP_CHAT_RT_RETRY);

    return NGX_OK;
}


void
ngx_http_chat_rt_presence_exit_process(ngx_cycle_t *cycle)
{
    ngx_rbtree_node_t  *node;

    if (ngx_http_chat_rt_beat_ev.timer_set) {
        ngx_del_timer(&ngx_http_chat_rt_beat_ev);
    }

    if (ngx_http_chat_rt_counts_ev.timer_set) {
        ngx_del_timer(&ngx_http_chat_rt_counts_ev);
    }

    ngx_queue_init(&ngx_http_chat_rt_counts);
    ngx_http_chat_rt_presence_moved_exit();

    /* what Redis holds for this worker is left to the sweep */
    while (ngx_http_chat_rt_online.root != &ngx_http_chat_rt_online_sentinel)
    {
        node = ngx_http_chat_rt_online.root;
        ngx_http_chat_rt_presence_forget((ngx_http_chat_rt_online_t *) node);
    }

    ngx_http_chat_rt_online_n = 0;

    ngx_http_chat_rt_presence_store_exit();
    ngx_http_chat_rt_presence_mark_exit();

    ngx_http_chat_rt_on = 0;
}


/* a socket of the user authenticated (online 1) */
void
ngx_http_chat_rt_presence(u_char *user, ngx_uint_t online)
{
    ngx_http_chat_rt_online_t  *o;

    if (!online || !ngx_http_chat_rt_on) {
        return;
    }

    o = (ngx_http_chat_rt_online_t *)
        ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_online, user);

    if (o == NULL) {
        o = ngx_calloc(sizeof(ngx_http_chat_rt_online_t), ngx_cycle->log);
        if (o == NULL) {
            return;
        }

        ngx_memcpy(o->id, user, NGX_HTTP_CHAT_RT_ID_LEN);
        o->shard = ngx_http_chat_redis_shard_of(o->id,
                                                NGX_HTTP_CHAT_RT_ID_LEN);
        o->node.key = ngx_crc32_short(o->id, NGX_HTTP_CHAT_RT_ID_LEN);
        ngx_rbtree_insert(&ngx_http_chat_rt_online, &o->node);
        ngx_http_chat_rt_online_n++;
    }

    if (o->count++ == 0) {
        ngx_http_chat_rt_presence_set(o->id, 1);

    } else {
        ngx_http_chat_rt_presence_recount(o);
    }
}


/* the authenticated sockets of a user in this worker (lua-compat) */
ngx_uint_t
ngx_http_chat_rt_presence_here(u_char *user)
{
    ngx_http_chat_rt_online_t  *o;

    if (!ngx_http_chat_rt_on) {
        return 0;
    }

    o = (ngx_http_chat_rt_online_t *)
        ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_online, user);

    return o ? o->count : 0;
}


/* a socket goes: its subscriptions, and its count if it was counted */
void
ngx_http_chat_rt_presence_leave(ngx_http_chat_rt_session_t *s)
{
    u_char                      id[NGX_HTTP_CHAT_RT_ID_LEN];
    ngx_http_chat_rt_online_t  *o;

    ngx_http_chat_rt_presence_unwatch(s);

    if (!s->counted || !ngx_http_chat_rt_on) {
        return;
    }

    s->counted = 0;

    o = (ngx_http_chat_rt_online_t *)
        ngx_http_chat_rt_keyed_find(&ngx_http_chat_rt_online, s->user);
    if (o == NULL) {
        return;
    }

    if (--o->count > 0) {
        if (!(ngx_exiting || ngx_quit || ngx_terminate)) {
            ngx_http_chat_rt_presence_recount(o);
        }

        return;
    }

    ngx_memcpy(id, o->id, NGX_HTTP_CHAT_RT_ID_LEN);
    ngx_http_chat_rt_presence_forget(o);
    ngx_http_chat_rt_online_n--;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        /* its client may be moving to a new worker: the sweep decides */
        return;
    }

    ngx_http_chat_rt_presence_set(id, 0);
}


/*
 * The next users after the one last visited, in the tree's order, and
 * round again: as many a step as visit each once a walk
 */
void
ngx_http_chat_rt_presence_walk(ngx_msec_t every, ngx_msec_t walk)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i, n;
    ngx_rbtree_node_t          *node, *next, *sentinel;
    ngx_http_chat_rt_online_t  *o;

    sentinel = ngx_http_chat_rt_online.sentinel;

    if (ngx_http_chat_rt_online.root == sentinel) {
        return;
    }

    /*
     * each step earns its share of a walk (users x ms), and a user is
     * visited for each whole walk's worth: one user alone once a walk
     */
    ngx_http_chat_rt_walk_credit += (uint64_t) ngx_http_chat_rt_online_n
                                    * every;
    n = (ngx_uint_t) (ngx_http_chat_rt_walk_credit / walk);
    n = ngx_min(n, NGX_HTTP_CHAT_RT_MARK_MAX);
    ngx_http_chat_rt_walk_credit -= (uint64_t) n * walk;

    /* what a full step left over is not saved up for a burst */
    ngx_http_chat_rt_walk_credit = ngx_min(ngx_http_chat_rt_walk_credit,
                                           (uint64_t) walk);
    n = ngx_min(n, ngx_http_chat_rt_online_n);

    if (n == 0) {
        return;
    }

    /* the first after the last visited (a user may have gone since) */
    next = NULL;
    node = ngx_http_chat_rt_online.root;

    while (ngx_http_chat_rt_walked && node != sentinel) {
        o = (ngx_http_chat_rt_online_t *) node;
        rc = (node->key != ngx_http_chat_rt_walked_key)
             ? ((node->key > ngx_http_chat_rt_walked_key) ? 1 : -1)
             : ngx_memcmp(o->id, ngx_http_chat_rt_walked_id,
                          NGX_HTTP_CHAT_RT_ID_LEN);

        if (rc > 0) {
            next = node;
            node = node->left;

        } else {
            node = node->right;
        }
    }

    for (i = 0; i < n; i++) {
        if (next == NULL) {
            next = ngx_rbtree_min(ngx_http_chat_rt_online.root, sentinel);
        }

        o = (ngx_http_chat_rt_online_t *) next;

        if (ngx_http_chat_rt_presence_mark_add(o->id, o->shard) != NGX_OK) {
            break;
        }

        ngx_http_chat_rt_walked = 1;
        ngx_http_chat_rt_walked_key = next->key;
        ngx_memcpy(ngx_http_chat_rt_walked_id, o->id,
                   NGX_HTTP_CHAT_RT_ID_LEN);

        next = ngx_rbtree_next(&ngx_http_chat_rt_online, next);
    }
}


ngx_http_chat_rt_keyed_t *
ngx_http_chat_rt_keyed_find(ngx_rbtree_t *tree, u_char *id)
{
    ngx_int_t                  rc;
    uint32_t                   hash;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_chat_rt_keyed_t  *k;

    if (tree->root == NULL) {
        return NULL;
    }

    hash = ngx_crc32_short(id, NGX_HTTP_CHAT_RT_ID_LEN);
    node = tree->root;
    sentinel = tree->sentinel;

    while (node != sentinel) {
        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        k = (ngx_http_chat_rt_keyed_t *) node;
        rc = ngx_memcmp(id, k->id, NGX_HTTP_CHAT_RT_ID_LEN);

        if (rc == 0) {
            return k;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


void
ngx_http_chat_rt_keyed_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_chat_rt_keyed_t   *k, *t;

    for ( ;; ) {
        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            k = (ngx_http_chat_rt_keyed_t *) node;
            t = (ngx_http_chat_rt_keyed_t *) temp;
            p = (ngx_memcmp(k->id, t->id, NGX_HTTP_CHAT_RT_ID_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * The user's first socket here came, or the last one went.  A command
 * Redis may not have run (refused, or its reply lost) leaves the worker
 * dirty on that shard: its next beat there writes its set again.
 */
static void
ngx_http_chat_rt_presence_set(u_char *id, ngx_uint_t online)
{
    const char                  *argv[7];
    size_t                       argvlen[7];
    ngx_http_chat_rt_keyed_t    *user;

    /* the id, and the shard in the node's key */
    user = ngx_alloc(sizeof(ngx_http_chat_rt_keyed_t), ngx_cycle->log);
    if (user == NULL) {
        ngx_http_chat_rt_dirty[ngx_http_chat_redis_shard_of(id,
                                   NGX_HTTP_CHAT_RT_ID_LEN)] = 1;
        return;
    }

    ngx_memcpy(user->id, id, NGX_HTTP_CHAT_RT_ID_LEN);
    user->node.key = ngx_http_chat_redis_shard_of(id,
                                                  NGX_HTTP_CHAT_RT_ID_LEN);

    argv[3] = (const char *) ngx_http_chat_rt_wid;
    argvlen[3] = ngx_http_chat_rt_wid_len;
    argv[4] = (const char *) user->id;
    argvlen[4] = NGX_HTTP_CHAT_RT_ID_LEN;
    argv[5] = online ? "1" : "0";
    argvlen[5] = 1;
    argv[6] = (const char *) ngx_http_chat_rt_ttl;
    argvlen[6] = ngx_http_chat_rt_ttl_len;

    if (NGX_HTTP_CHAT_RT_EVAL(user->node.key,
                              ngx_http_chat_rt_presence_set_lua, 7, argv,
                              argvlen, ngx_http_chat_rt_presence_was_set,
                              user)
        != NGX_OK)
    {
        ngx_http_chat_rt_dirty[user->node.key] = 1;
        ngx_free(user);
    }
}


static void
ngx_http_chat_rt_presence_was_set(redisReply *reply, void *data)
{
    long long                  state;
    redisReply               **e;
    ngx_http_chat_rt_keyed_t  *user;

    user = data;

    e = ngx_http_chat_rt_presence_reply(reply, "count");

    if (e == NULL) {
        ngx_http_chat_rt_dirty[user->node.key] = 1;
        ngx_free(user);
        return;
    }

    state = e[0]->integer;

    if (state == -1) {
        ngx_http_chat_rt_dirty[user->node.key] = 1;

    } else if ((state == 0 || state == 1) && reply->elements == 3
               && reply->element[1]->type == REDIS_REPLY_INTEGER
               && reply->element[2]->type == REDIS_REPLY_INTEGER)
    {
        ngx_http_chat_rt_presence_store(user->id, NGX_HTTP_CHAT_RT_ID_LEN);
    }

    ngx_free(user);
}


/* the shards that hold presence: chat_redis alone, or every shard */
static ngx_uint_t
ngx_http_chat_rt_presence_first(void)
{
    return ngx_http_chat_redis_shards_n() ? 1 : 0;
}


static void
ngx_http_chat_rt_presence_beat(ngx_event_t *ev)
{
    u_char                  limit[NGX_INT_T_LEN];
    const char             *argv[7];
    size_t                  argvlen[7];
    ngx_uint_t              i, away;
    ngx_http_chat_redis_t  *r;

    if (ngx_exiting || ngx_quit || ngx_terminate || !ngx_http_chat_rt_on) {
        /* it stops beating: its users wait for their new workers */
        return;
    }

    argv[3] = (const char *) ngx_http_chat_rt_wid;
    argvlen[3] = ngx_http_chat_rt_wid_len;
    argv[4] = (const char *) ngx_http_chat_rt_ttl;
    argvlen[4] = ngx_http_chat_rt_ttl_len;
    argv[5] = (const char *) limit;
    argvlen[5] = ngx_sprintf(limit, "%ui", NGX_HTTP_CHAT_RT_SWEEP_MAX)
                 - limit;

    away = 0;

    for (i = ngx_http_chat_rt_presence_first();
         i <= ngx_http_chat_redis_shards_n();
         i++)
    {
        r = ngx_http_chat_redis_shard(i);

        if (r == NULL || !ngx_http_chat_redis_is_connected(r)) {
            ngx_http_chat_rt_dirty[i] = 1;
            away = 1;
            continue;
        }

        if (ngx_http_chat_rt_beating[i]) {
            continue;
        }

        if (NGX_HTTP_CHAT_RT_EVAL(i, ngx_http_chat_rt_presence_beat_lua, 6,
                                  argv, argvlen,
                                  ngx_http_chat_rt_presence_beaten,
                                  (void *) (uintptr_t) i)
            == NGX_OK)
        {
            ngx_http_chat_rt_beating[i] = 1;
        }
    }

    /*
     * With shards, chat_redis holds no presence of this build, but may
     * hold what workers of a build without shards left there: their dead
     * ones are swept too (only swept), while every shard is here to take
     * their users over (ngx_http_chat_rt_presence_moved.c)
     */
    r = ngx_http_chat_redis_shard(0);

    if (ngx_http_chat_rt_presence_first() == 1 && !away && r != NULL
        && ngx_http_chat_redis_is_connected(r)
        && !ngx_http_chat_rt_beating[0])
    {
        argv[6] = "sweep";
        argvlen[6] = sizeof("sweep") - 1;

        if (NGX_HTTP_CHAT_RT_EVAL(0, ngx_http_chat_rt_presence_beat_lua, 7,
                                  argv, argvlen,
                                  ngx_http_chat_rt_presence_beaten,
                                  (void *) (uintptr_t) 0)
            == NGX_OK)
        {
            ngx_http_chat_rt_beating[0] = 1;
        }
    }

    /* a shard away is tried again soon: its sockets resync when it is back */
    ngx_add_timer(ev, away ? NGX_HTTP_CHAT_RT_RETRY
                           : ngx_max(ngx_http_chat_rt_ttl_ms / 3, 100));
}


static void
ngx_http_chat_rt_presence_beaten(redisReply *reply, void *data)
{
    ngx_uint_t    shard;
    redisReply  **e;

    shard = (ngx_uint_t) (uintptr_t) data;
    ngx_http_chat_rt_beating[shard] = 0;

    e = ngx_http_chat_rt_presence_reply(reply, "beat");

    if (e == NULL || reply->elements != 2
        || e[1]->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_chat_rt_dirty[shard] = 1;
        return;
    }

    /* the users of dead workers that no live one counts */
    ngx_http_chat_rt_presence_changed(e[1], shard);

    if (shard < ngx_http_chat_rt_presence_first()) {
        /* only swept: this worker counts nobody there */
        return;
    }

    if (e[0]->integer == 1) {
        /* a first beat, or this worker was swept: the shard knows none */
        ngx_http_chat_rt_dirty[shard] = 1;
    }

    if (ngx_http_chat_rt_dirty[shard] && ngx_http_chat_rt_on
        && !(ngx_exiting || ngx_quit || ngx_terminate))
    {
        ngx_http_chat_rt_presence_resync(shard);
    }
}


/* the worker's set on a shard, from memory, O(users here) */
static void
ngx_http_chat_rt_presence_resync(ngx_uint_t shard)
{
    size_t      *argvlen;
    ngx_uint_t   n;
    const char **argv;

    n = 5 + ngx_http_chat_rt_online_n;

    argv = ngx_alloc(n * sizeof(char *), ngx_cycle->log);
    argvlen = ngx_alloc(n * sizeof(size_t), ngx_cycle->log);

    if (argv == NULL || argvlen == NULL) {
        goto done;
    }

    argv[3] = (const char *) ngx_http_chat_rt_wid;
    argvlen[3] = ngx_http_chat_rt_wid_len;
    argv[4] = (const char *) ngx_http_chat_rt_ttl;
    argvlen[4] = ngx_http_chat_rt_ttl_len;

    n = 5;

    if (ngx_http_chat_rt_online.root != &ngx_http_chat_rt_online_sentinel) {
        ngx_http_chat_rt_presence_args(ngx_http_chat_rt_online.root,
                                       &ngx_http_chat_rt_online_sentinel,
                                       shard, argv, argvlen, &n);
    }

    /* hiredis copies the command: the ids may go meanwhile */
    if (NGX_HTTP_CHAT_RT_EVAL(shard, ngx_http_chat_rt_presence_resync_lua,
                              n, argv, argvlen,
                              ngx_http_chat_rt_presence_resynced,
                              (void *) (uintptr_t) shard)
        == NGX_OK)
    {
        ngx_http_chat_rt_dirty[shard] = 0;
    }

done:

    if (argv) {
        ngx_free(argv);
    }

    if (argvlen) {
        ngx_free(argvlen);
    }
}


static void
ngx_http_chat_rt_presence_args(ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, ngx_uint_t shard, const char **argv,
    size_t *argvlen, ngx_uint_t *n)
{
    ngx_http_chat_rt_online_t  *o;

    if (node->left != sentinel) {
        ngx_http_chat_rt_presence_args(node->left, sentinel, shard, argv,
                                       argvlen, n);
    }

    o = (ngx_http_chat_rt_online_t *) node;

    if (o->shard == shard) {
        argv[*n] = (const char *) o->id;
        argvlen[*n] = NGX_HTTP_CHAT_RT_ID_LEN;
        (*n)++;
    }

    if (node->right != sentinel) {
        ngx_http_chat_rt_presence_args(node->right, sentinel, shard, argv,
                                       argvlen, n);
    }
}


static void
ngx_http_chat_rt_presence_resynced(redisReply *reply, void *data)
{
    ngx_uint_t    shard;
    redisReply  **e;

    shard = (ngx_uint_t) (uintptr_t) data;

    e = ngx_http_chat_rt_presence_reply(reply, "resync");

    if (e == NULL || reply->elements != 2
        || e[1]->type != REDIS_REPLY_ARRAY || e[0]->integer < 0)
    {
        ngx_http_chat_rt_dirty[shard] = 1;
        return;
    }

    /* its own users, all placed on this shard */
    ngx_http_chat_rt_presence_changed(e[1], shard);

    /* the set written again: the counts of two or more too */
    if (ngx_http_chat_rt_online.root != &ngx_http_chat_rt_online_sentinel) {
        ngx_http_chat_rt_presence_recount_all(ngx_http_chat_rt_online.root,
                                             &ngx_http_chat_rt_online_sentinel,
                                             shard);
    }
}


/*
 * A user's count here changed past one: written with the others that
 * change within 100 ms, by one script per shard (one socket's sign-in or
 * close costs nothing more; a user's first and last socket here go with
 * the transition's own script)
 */
static void
ngx_http_chat_rt_presence_recount(ngx_http_chat_rt_online_t *o)
{
    if (!o->queued) {
        ngx_queue_insert_tail(&ngx_http_chat_rt_counts, &o->counts);
        o->queued = 1;
    }

    if (!ngx_http_chat_rt_counts_ev.timer_set) {
        ngx_add_timer(&ngx_http_chat_rt_counts_ev, 100);
    }
}


static void
ngx_http_chat_rt_presence_recount_all(ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, ngx_uint_t shard)
{
    ngx_http_chat_rt_online_t  *o;

    if (node->left != sentinel) {
        ngx_http_chat_rt_presence_recount_all(node->left, sentinel, shard);
    }

    o = (ngx_http_chat_rt_online_t *) node;

    if (o->count >= 2 && o->shard == shard) {
        ngx_http_chat_rt_presence_recount(o);
    }

    if (node->right != sentinel) {
        ngx_http_chat_rt_presence_recount_all(node->right, sentinel, shard);
    }
}


/* the user's last socket here went */
static void
ngx_http_chat_rt_presence_forget(ngx_http_chat_rt_online_t *o)
{
    if (o->queued) {
        ngx_queue_remove(&o->counts);
    }

    ngx_rbtree_delete(&ngx_http_chat_rt_online, &o->node);
    ngx_free(o);
}


static void
ngx_http_chat_rt_presence_write_counts(ngx_event_t *ev)
{
    u_char                     *nums, *p;
    size_t                     *argvlen;
    ngx_uint_t                  n, i, shard;
    const char                **argv;
    ngx_queue_t                *q, *next;
    ngx_http_chat_rt_online_t  *o;

    n = 0;

    for (q = ngx_queue_head(&ngx_http_chat_rt_counts);
         q != ngx_queue_sentinel(&ngx_http_chat_rt_counts);
         q = ngx_queue_next(q))
    {
        n++;
    }

    if (n == 0 || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    argv = ngx_alloc((4 + 2 * n) * sizeof(char *), ngx_cycle->log);
    argvlen = ngx_alloc((4 + 2 * n) * sizeof(size_t), ngx_cycle->log);
    nums = ngx_alloc(n * NGX_INT_T_LEN, ngx_cycle->log);

    if (argv == NULL || argvlen == NULL || nums == NULL) {
        goto failed;
    }

    argv[3] = (const char *) ngx_http_chat_rt_wid;
    argvlen[3] = ngx_http_chat_rt_wid_len;

    /* one script per shard, with the counts of its users */
    for (shard = ngx_http_chat_rt_presence_first();
         shard <= ngx_http_chat_redis_shards_n();
         shard++)
    {
        i = 4;
        p = nums;

        for (q = ngx_queue_head(&ngx_http_chat_rt_counts);
             q != ngx_queue_sentinel(&ngx_http_chat_rt_counts);
             q = next)
        {
            next = ngx_queue_next(q);
            o = ngx_queue_data(q, ngx_http_chat_rt_online_t, counts);

            if (o->shard != shard) {
                continue;
            }

            ngx_queue_remove(q);
            o->queued = 0;

            argv[i] = (const char *) o->id;
            argvlen[i++] = NGX_HTTP_CHAT_RT_ID_LEN;
            argv[i] = (const char *) p;
            argvlen[i++] = ngx_sprintf(p, "%ui", o->count) - p;
            p += NGX_INT_T_LEN;
        }

        if (i == 4) {
            continue;
        }

        /* hiredis copies the command; a count lost waits for the next */
        (void) NGX_HTTP_CHAT_RT_EVAL(shard,
                                     ngx_http_chat_rt_presence_counts_lua,
                                     i, argv, argvlen,
                                     ngx_http_chat_rt_presence_counts_written,
                                     NULL);
    }

failed:

    if (argv) {
        ngx_free(argv);
    }

    if (argvlen) {
        ngx_free(argvlen);
    }

    if (nums) {
        ngx_free(nums);
    }
}


static void
ngx_http_chat_rt_presence_counts_written(redisReply *reply, void *data)
{
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat ws: presence counts failed: %s", reply->str);
    }
}


/*
 * A presence script on a shard: argv[3] and on are the caller's, the
 * script and no keys go first.  NGX_DECLINED without a Redis connection.
 */
ngx_int_t
ngx_http_chat_rt_presence_eval(ngx_uint_t shard, const char *lua, size_t len,
    ngx_uint_t n, const char **argv, size_t *argvlen,
    ngx_http_chat_redis_reply_pt handler, void *data)
{
    ngx_http_chat_redis_t  *r;

    r = ngx_http_chat_redis_shard(shard);

    if (r == NULL) {
        return NGX_DECLINED;
    }

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = lua;
    argvlen[1] = len;
    argv[2] = "0";
    argvlen[2] = 1;

    return ngx_http_chat_redis_command_argv(r, handler, data, (int) n, argv,
                                            argvlen);
}


/*
 * The elements of a script's reply, an array that starts with an
 * integer, or NULL (a Redis error is logged: what failed; not when what
 * is NULL, a retry whose first failure was)
 */
redisReply **
ngx_http_chat_rt_presence_reply(redisReply *reply, const char *what)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_INTEGER)
    {
        if (what && reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "chat ws: presence %s failed: %s", what,
                          reply->str);
        }

        return NULL;
    }

    return reply->element;
}
