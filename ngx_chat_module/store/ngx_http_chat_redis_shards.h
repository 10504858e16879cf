/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_REDIS_SHARDS_H_INCLUDED_
#define _NGX_HTTP_CHAT_REDIS_SHARDS_H_INCLUDED_


#include "ngx_http_chat_redis.h"
#include "../util/ngx_http_chat_conf.h"


/*
 * The Redis servers of chat_redis_shards carry the channels of chats,
 * users, sockets and presence: each id's channel is on the shard that
 * rendezvous hashing of (the shard's address as written, the id) ranks
 * first, so every instance with the same list agrees, and a shard added
 * or removed moves only the channels that were or will be on it.
 * Shard 0 is chat_redis itself: its keys, and every channel when no
 * shards are set.  A worker has one command connection per shard here,
 * for its publishes; its subscribers are the fan-out's.
 */

ngx_int_t ngx_http_chat_redis_shards_init_process(ngx_cycle_t *cycle,
    ngx_http_chat_main_conf_t *cmcf);
void ngx_http_chat_redis_shards_exit_process(void);

/* how many shards besides chat_redis: 0 when none are set */
ngx_uint_t ngx_http_chat_redis_shards_n(void);
/* the shard of an id: 1..n, or 0 when there are none */
ngx_uint_t ngx_http_chat_redis_shard_of(u_char *id, size_t len);
/*
 * The command connection of the shard of an id, for keys named by that
 * id without a tag (chat_redis's when there are no shards)
 */
ngx_http_chat_redis_t *ngx_http_chat_redis_of(u_char *id, size_t len);
/* shard i's command connection: chat_redis's for 0 */
ngx_http_chat_redis_t *ngx_http_chat_redis_shard(ngx_uint_t i);
/*
 * The connection for a script by its keys (EVAL's numkeys and keys): a
 * shard's when every key holds the same "{tag}" (Redis Cluster's hash
 * tags: the tag is an id, placed as the channels of that id are), so
 * that what a script touches together is on one server; chat_redis's
 * for every other command and for keys with no tag or different ones.
 */
ngx_http_chat_redis_t *ngx_http_chat_redis_keyed(int argc, const char **argv,
    const size_t *argvlen);
/* a new connection to shard i (a subscriber); NULL: no memory */
ngx_http_chat_redis_t *ngx_http_chat_redis_shard_connect(ngx_cycle_t *cycle,
    ngx_uint_t i);


#endif /* _NGX_HTTP_CHAT_REDIS_SHARDS_H_INCLUDED_ */
