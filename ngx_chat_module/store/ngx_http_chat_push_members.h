/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_PUSH_MEMBERS_H_INCLUDED_
#define _NGX_HTTP_CHAT_PUSH_MEMBERS_H_INCLUDED_


#include "ngx_http_chat_redis.h"
#include <jansson.h>


/*
 * What a push needs of a chat's members, cached in Redis so that a
 * message does not read them from MongoDB: pushm:<chatId>, a hash of
 * userId -> mute end in ms (0 none, -1 forever), rebuilt from MongoDB on
 * a miss, dropped (and pushg:<chatId>, its generation, bumped) by every
 * committed change of who is in the chat or of a member's settings.  A
 * read of the cache also tells who has a live socket (presence:s:<user>):
 * one round trip for a message.  With chat_redis_shards both keys are on
 * the chat's shard, the users' presence on theirs: the read leaves the
 * live sockets to its caller.
 */

/*
 * The members to push of chat: not sender, not muted at now (a member in
 * mentions passes a mute; NULL: none does), with no live socket (but
 * with shards).  The
 * reply: {1, userId...}, or on a miss {0, generation}.  As
 * ngx_http_chat_redis_command_argv(): NGX_OK, the handler will be called.
 */
ngx_int_t ngx_http_chat_push_members_read(const char *chat,
    const char *sender, json_t *mentions,
    ngx_http_chat_redis_reply_pt handler, void *data);

/*
 * The cache filled with members ([[userId, until]...], read from MongoDB
 * after the miss that answered gen), unless a change bumped it since;
 * the reply is the read's, from members: {1, userId...}
 */
ngx_int_t ngx_http_chat_push_members_fill(const char *chat, const char *gen,
    json_t *members, const char *sender, json_t *mentions,
    ngx_http_chat_redis_reply_pt handler, void *data);

/* a committed event: the chat's cache dropped if it changed what it holds */
void ngx_http_chat_push_members_event(const char *event, json_t *data);


#endif /* _NGX_HTTP_CHAT_PUSH_MEMBERS_H_INCLUDED_ */
