/*
 * Copyright (C) ngx_chat_module authors
 *
 * The ids of a user's chats in Redis (GET /api/chats/ids and every
 * socket's sign-in; the route is api/ngx_http_chat_chat_ids.c):
 * "uh:{<user>}", a hash of exactly the chats the user is in (each id a
 * field, its value empty; a small hash is packed, where a set of strings
 * costs Redis a table), "" (so that none is not a miss) and 'g', the
 * generation "ucg:{<user>}" it is current at, which every change bumps (a
 * read from MongoDB is stored only if it did not move, a hash whose 'g'
 * is behind is a miss: a change it did not see, e.g. an older build's).
 * A new user starts with the empty hash; a join adds to it and a removal
 * or a leave takes the chat out, each once it is stored.  Two changes of
 * one membership whose hooks may cross (a member removed and added again
 * at once, on two workers: the later commit's hook may run first) are
 * told by a mark, "ucm:{<user>}:<chat>" ('j' or 'l', 60 s): a change that
 * finds the other's mark drops the whole hash, which the next read
 * rebuilds from MongoDB, where both are stored by then.  All are on the
 * user's shard (chat_redis when there are none).
 */


#include "ngx_http_chat_chat_ids_store.h"
#include "ngx_http_chat_redis_retry.h"
#include "ngx_http_chat_redis_shards.h"
#include "../util/ngx_http_chat_text.h"


/*
 * KEYS: uh:, ucg:, ucm:{<user>}:<chat>, uc: (an older build's set, which
 * it drops: that build's workers read it again from MongoDB); ARGV: the
 * chat, 'j' (joined) or 'l' (left).  The hash is changed only if it was
 * current ('g' the generation before this change), else dropped.
 */
static const char  ngx_http_chat_ids_change[] =
    "local g = redis.call('INCR', KEYS[2]) "
    "redis.call('EXPIRE', KEYS[2], " NGX_HTTP_CHAT_IDS_GEN_TTL ") "
    "redis.call('DEL', KEYS[4]) "
    "local m = redis.call('GET', KEYS[3]) "
    "redis.call('SET', KEYS[3], ARGV[2], 'EX', "
        NGX_HTTP_CHAT_IDS_MARK_TTL ") "
    "if (m and m ~= ARGV[2]) "
    "   or redis.call('HGET', KEYS[1], 'g') ~= tostring(g - 1) then "
    "  redis.call('DEL', KEYS[1]) "
    "  return 0 "
    "end "
    "if ARGV[2] == 'j' then "
    "  redis.call('HSET', KEYS[1], ARGV[1], '') "
    "else "
    "  redis.call('HDEL', KEYS[1], ARGV[1]) "
    "end "
    "redis.call('HSET', KEYS[1], 'g', g) "
    "return 1";

/* a new user is in no chat */
static const char  ngx_http_chat_ids_new[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
    "redis.call('HSET', KEYS[1], '', '', 'g', "
        "redis.call('GET', KEYS[2]) or '0') "
    "return redis.call('EXPIRE', KEYS[1], " NGX_HTTP_CHAT_IDS_TTL ")";


/* user is an ObjectId: 24 hex digits, in either case from a client */

ngx_uint_t
ngx_http_chat_chat_ids_keys(u_char *buf, ngx_str_t *user, ngx_str_t *keys)
{
    u_char  id[24];

    ngx_strlow(id, user->data, 24);

    keys[0].data = buf;
    keys[0].len = ngx_sprintf(buf, "uh:{%*s}", (size_t) 24, id) - buf;
    keys[1].data = buf + keys[0].len;
    keys[1].len = ngx_sprintf(keys[1].data, "ucg:{%*s}", (size_t) 24, id)
                  - keys[1].data;

    return ngx_http_chat_redis_shard_of(id, 24);
}


/*
 * EVAL script 2 uh:{<user>} ucg:{<user>}: the first 5 of argv; buf holds
 * the keys; the user's shard
 */

ngx_uint_t
ngx_http_chat_chat_ids_argv(const char **argv, size_t *argvlen,
    const char *script, size_t len, u_char *buf, ngx_str_t *user)
{
    ngx_uint_t  shard;
    ngx_str_t   keys[2];

    shard = ngx_http_chat_chat_ids_keys(buf, user, keys);

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = script;
    argvlen[1] = len;
    argv[2] = "2";
    argvlen[2] = 1;
    argv[3] = (char *) keys[0].data;
    argvlen[3] = keys[0].len;
    argv[4] = (char *) keys[1].data;
    argvlen[4] = keys[1].len;

    return shard;
}


/*
 * user joined chat, or left it (removed, or by themselves).  A join that
 * does not reach Redis would leave the user's sockets out of that chat
 * until the set expires, a leave would let them in, so each waits in the
 * worker for the connection (a new worker's first one, or the next after
 * an outage) and is sent again when the connection is lost before its
 * reply (ngx_http_chat_redis_retry.h).
 */

typedef struct {
    ngx_http_chat_redis_retry_item_t   item;     /* first: it is freed */
    u_char                             user[24];
    u_char                             chat[24];
    u_char                             kind;     /* 'j' joined, 'l' left */
} ngx_http_chat_ids_join_t;


static void ngx_http_chat_chat_ids_change(ngx_str_t *user, ngx_str_t *chat,
    u_char kind);
static ngx_int_t ngx_http_chat_ids_send_join(
    ngx_http_chat_redis_retry_item_t *item);


/* a queue per shard, each on its shard's connection */
static ngx_http_chat_redis_retry_t
    ngx_http_chat_ids_changes[NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1];


void
ngx_http_chat_chat_ids_joined(ngx_str_t *user, ngx_str_t *chat)
{
    ngx_http_chat_chat_ids_change(user, chat, 'j');
}


void
ngx_http_chat_chat_ids_left(ngx_str_t *user, ngx_str_t *chat)
{
    ngx_http_chat_chat_ids_change(user, chat, 'l');
}


static void
ngx_http_chat_chat_ids_change(ngx_str_t *user, ngx_str_t *chat, u_char kind)
{
    u_char                        id[24];
    ngx_http_chat_redis_retry_t  *rt;
    ngx_http_chat_ids_join_t     *j;

    if (!ngx_http_chat_is_oid(user) || !ngx_http_chat_is_oid(chat)) {
        return;
    }

    ngx_strlow(id, user->data, 24);
    rt = ngx_http_chat_redis_retry_of(ngx_http_chat_ids_changes, id, 24,
                                      ngx_http_chat_ids_send_join,
                                      "joins and leaves",
                                      "a user's chats may be wrong for up "
                                      "to " NGX_HTTP_CHAT_IDS_TTL " s");

    j = ngx_alloc(sizeof(ngx_http_chat_ids_join_t), ngx_cycle->log);
    if (j == NULL) {
        return;
    }

    ngx_memcpy(j->user, user->data, 24);
    ngx_strlow(j->chat, chat->data, 24);
    j->kind = kind;

    ngx_http_chat_redis_retry_send(rt, &j->item);
}


static ngx_int_t
ngx_http_chat_ids_send_join(ngx_http_chat_redis_retry_item_t *item)
{
    ngx_http_chat_ids_join_t *j = (ngx_http_chat_ids_join_t *) item;

    u_char       buf[NGX_HTTP_CHAT_IDS_KEYS];
    u_char       mark[sizeof("ucm:{}:") + 2 * 24];
    u_char       old[sizeof("uc:{}") + 24];
    u_char       uid[24];
    ngx_str_t    user;
    const char  *argv[9];
    size_t       argvlen[9];

    user.data = j->user;
    user.len = 24;

    (void) ngx_http_chat_chat_ids_argv(argv, argvlen,
                                       ngx_http_chat_ids_change,
                                       sizeof(ngx_http_chat_ids_change) - 1,
                                       buf, &user);
    argv[2] = "4";
    ngx_strlow(uid, j->user, 24);
    argv[5] = (char *) mark;
    argvlen[5] = ngx_sprintf(mark, "ucm:{%*s}:%*s", (size_t) 24, uid,
                             (size_t) 24, j->chat)
                 - mark;
    argv[6] = (char *) old;
    argvlen[6] = ngx_sprintf(old, "uc:{%*s}", (size_t) 24, uid) - old;
    argv[7] = (char *) j->chat;
    argvlen[7] = 24;
    argv[8] = (char *) &j->kind;
    argvlen[8] = 1;

    return ngx_http_chat_redis_command_argv(
                               ngx_http_chat_redis_shard(item->retry->shard),
                               ngx_http_chat_redis_retry_reply, item, 9, argv,
                               argvlen);
}


/*
 * a user made just now is in no chat: no reading for them in MongoDB.
 * Best effort: without the set their first sign-in reads MongoDB.
 */

void
ngx_http_chat_chat_ids_new_user(ngx_str_t *user)
{
    u_char       buf[NGX_HTTP_CHAT_IDS_KEYS];
    size_t       argvlen[5];
    ngx_uint_t   shard;
    const char  *argv[5];

    if (!ngx_http_chat_is_oid(user)) {
        return;
    }

    shard = ngx_http_chat_chat_ids_argv(argv, argvlen, ngx_http_chat_ids_new,
                                        sizeof(ngx_http_chat_ids_new) - 1,
                                        buf, user);

    (void) ngx_http_chat_redis_command_argv(ngx_http_chat_redis_shard(shard),
                                            NULL, NULL, 5, argv, argvlen);
}
