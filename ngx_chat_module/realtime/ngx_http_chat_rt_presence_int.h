/*
 * Copyright (C) ngx_chat_module authors
 *
 * What the two halves of presence share: the counting of sockets
 * (ngx_http_chat_rt_presence.c) and the users' documents
 * (ngx_http_chat_rt_presence_store.c).
 */


#ifndef _NGX_HTTP_CHAT_RT_PRESENCE_INT_H_INCLUDED_
#define _NGX_HTTP_CHAT_RT_PRESENCE_INT_H_INCLUDED_


#include "ngx_http_chat_rt.h"
#include "../store/ngx_http_chat_redis.h"
#include "../store/ngx_http_chat_redis_shards.h"


#define NGX_HTTP_CHAT_RT_RETRY      200   /* ms, while Redis is away */
#define NGX_HTTP_CHAT_RT_MARK_MAX   256   /* users a step of the walk */

/* a worker's id: the host, the process and its start */
#define NGX_HTTP_CHAT_RT_WID_LEN    (NGX_MAXHOSTNAMELEN + 2 * NGX_INT64_LEN \
                                     + 2)


/*
 * What every presence script starts with: keys are built inside (each
 * script concerns one worker and its users, which a Redis Cluster could
 * not hold in one slot anyway); "alive" is a worker's last beat within
 * the ttl, bump() a user's version, add() and del() a worker's count of
 * a user, true when it was the first or the last.
 *
 * A user's keys are hashes, so that a signed-in user costs Redis two
 * small keys (Redis 7.0 keeps a set of strings as a hash table, a small
 * hash packed): presence:s:<user>, worker -> the user's sockets there
 * ("1" unless the counts script wrote more); presence:h:<user>, the
 * version (v), the time of the last going offline (at) and the
 * document's writes (w, x: ngx_http_chat_rt_presence_store.c), for a
 * day after its last change.  A worker of the build before these
 * (presence:u:<user>, a set of workers; presence:n:<user>, the counts)
 * is still swept from those keys, and a user it counts there is not
 * offline.
 */
#define NGX_HTTP_CHAT_RT_PRESENCE_LUA                                         \
    "local Z = 'presence:workers' "                                           \
    "local function now() local t = redis.call('TIME') "                      \
    "return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end "   \
    "local function bump(u, t, at) local k = 'presence:h:' .. u "             \
    "local v = tonumber(redis.call('HGET', k, 'v') or '0') + 1 "              \
    "if v < t then v = t end "                                                \
    "redis.call('HSET', k, 'v', string.format('%d', v)) "                     \
    "if at then redis.call('HSET', k, 'at', string.format('%d', at)) end "    \
    "redis.call('PEXPIRE', k, 86400000) "                                     \
    "return v end "                                                           \
    "local function alive(w, t, ttl) local s = redis.call('ZSCORE', Z, w) "   \
    "return s and tonumber(s) >= t - ttl end "                                \
    "local function add(w, u) redis.call('SADD', 'presence:w:' .. w, u) "     \
    "return redis.call('HSETNX', 'presence:s:' .. u, w, '1') == 1 "           \
    "and redis.call('HLEN', 'presence:s:' .. u) == 1 end "                    \
    "local function del(w, u) redis.call('SREM', 'presence:w:' .. w, u) "     \
    "local k, o = 'presence:s:' .. u, 'presence:u:' .. u "                    \
    "if redis.call('HDEL', k, w) == 0 then "                                  \
    "if redis.call('TYPE', o).ok ~= 'set' "                                   \
    "or redis.call('SREM', o, w) == 0 then return false end "                 \
    "redis.call('HDEL', 'presence:n:' .. u, w) end "                          \
    "return redis.call('EXISTS', k) == 0 "                                    \
    "and redis.call('EXISTS', o) == 0 end "


/* a user in a tree: the id follows the node in each such struct */
typedef struct {
    ngx_rbtree_node_t            node;      /* key: crc32 of the id */
    u_char                       id[NGX_HTTP_CHAT_RT_ID_LEN];
} ngx_http_chat_rt_keyed_t;


ngx_http_chat_rt_keyed_t *ngx_http_chat_rt_keyed_find(ngx_rbtree_t *tree,
    u_char *id);
void ngx_http_chat_rt_keyed_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);

/*
 * EVAL of a script with no keys on a shard (0: chat_redis): argv[0..2]
 * are set here, the caller's arguments are argv[3] to argv[n - 1];
 * NGX_OK, NGX_DECLINED, NGX_ERROR as ngx_http_chat_redis_command_argv()
 */
ngx_int_t ngx_http_chat_rt_presence_eval(ngx_uint_t shard, const char *lua,
    size_t len, ngx_uint_t n, const char **argv, size_t *argvlen,
    ngx_http_chat_redis_reply_pt handler, void *data);
#define NGX_HTTP_CHAT_RT_EVAL(shard, lua, n, argv, argvlen, handler, data)   \
    ngx_http_chat_rt_presence_eval(shard, lua, sizeof(lua) - 1, n, argv,    \
                                   argvlen, handler, data)
/* a script's reply: its elements when it is {integer, ...}, else NULL
 * (a Redis error logged with what failed, unless what is NULL) */
redisReply **ngx_http_chat_rt_presence_reply(redisReply *reply,
    const char *what);

/* the documents, in batches: wid is the worker's id, kept */
void ngx_http_chat_rt_presence_store_init(u_char *wid, size_t len);
void ngx_http_chat_rt_presence_store_exit(void);
/* a transition of user id: their document comes to the latest state */
void ngx_http_chat_rt_presence_store(u_char *id, size_t len);

/*
 * The users whose presence a script on a shard changed ({user, integer,
 * integer, ...}: a beat's sweep or a resync): their documents, through
 * the shard their keys are on now when that is another (the shard list
 * changed; only a sweep finds those, with the dead worker's last beat
 * third)
 */
void ngx_http_chat_rt_presence_changed(redisReply *out, ngx_uint_t shard);
/*
 * The marks of activity (ngx_http_chat_rt_presence_mark.c): walk is
 * chat_active_walk; the walk over this worker's users, a step of every
 * ms, hands each user visited to mark_add(), at most MARK_MAX a step
 */
void ngx_http_chat_rt_presence_mark_init(ngx_msec_t walk);
void ngx_http_chat_rt_presence_mark_exit(void);
ngx_int_t ngx_http_chat_rt_presence_mark_add(u_char *id, ngx_uint_t shard);
void ngx_http_chat_rt_presence_walk(ngx_msec_t every, ngx_msec_t walk);

/* the worker exits: the hand-overs still to be tried again are dropped */
void ngx_http_chat_rt_presence_moved_exit(void);


#endif /* _NGX_HTTP_CHAT_RT_PRESENCE_INT_H_INCLUDED_ */
