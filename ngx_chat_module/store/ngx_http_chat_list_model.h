/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_LIST_MODEL_H_INCLUDED_
#define _NGX_HTTP_CHAT_LIST_MODEL_H_INCLUDED_


#include "ngx_http_chat_redis.h"
#include <jansson.h>


/*
 * The chat list's read model in Redis (README, "Chats and messages"):
 * per chat "cl:{<chat>}" (a hash: "sum" what every member sees of the
 * chat, "top" its highest number holding a message, "m:<seq>" the
 * messages of the last NGX_HTTP_CHAT_LIST_WINDOW numbers), "clx:{<chat>}"
 * (a sorted set of the numbers that count for nobody: tombstones,
 * deleted for everyone), per member "clu:{<chat>}:<user>" (a sorted set:
 * "o<seq>" my own, "h<seq>" hidden by me, "m<seq>" one that mentions me),
 * and "clg:{<chat>}", the generation every change bumps; all on the
 * chat's shard (ngx_http_chat_redis_shards.h).  Everything is derived
 * from MongoDB; a miss is rebuilt.
 */

#define NGX_HTTP_CHAT_LIST_WINDOW  16


/* a committed event (new_message, message_edited, ...): best effort */
void ngx_http_chat_list_model_event(const char *event, json_t *data);

/* {chatId, userId, seq}: a message deleted for one member */
void ngx_http_chat_list_model_hidden(json_t *note);

/* a number of chat that holds no message (a tombstone) */
void ngx_http_chat_list_model_void(const char *chat, int64_t seq);

/*
 * A page's rows: one EVAL per shard that holds some of its chats (one in
 * all without shards).  Per item i (its "id" and "readSeq") that its
 * shard answered, row(data, i, r) with r {gen} on a miss, {gen, sum, last
 * or "", unread, unread mentions} on a hit (r is freed after row
 * returns); an item without a row is to be read from MongoDB.  Then
 * done(data), once.  NGX_DECLINED: nothing asked, done is not called.
 */
typedef void (*ngx_http_chat_list_row_pt)(void *data, size_t i,
    redisReply *r);
typedef void (*ngx_http_chat_list_done_pt)(void *data);

ngx_int_t ngx_http_chat_list_model_read(json_t *items, const char *user,
    ngx_http_chat_list_row_pt row, ngx_http_chat_list_done_pt done,
    void *data);

/*
 * fill: {chatId, gen, top, sum, msgs: [..], voids: [..], own: [..],
 * hidden: [..], mentions: [..]} as read from MongoDB, stored unless gen
 * moved
 */
void ngx_http_chat_list_model_fill(json_t *fill, const char *user);


#endif /* _NGX_HTTP_CHAT_LIST_MODEL_H_INCLUDED_ */
