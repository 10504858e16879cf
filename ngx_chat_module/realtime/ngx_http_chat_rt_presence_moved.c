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


static void ngx_http_chat_rt_presence_moved(u_char *id, long long at,
    ngx_uint_t shard);
static void ngx_http_chat_rt_presence_handed(redisReply *reply,
    void *data);


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
            ngx_http_chat_rt_presence_moved((u_char *) u->str, at->integer,
                                            now);
        }
    }
}


/* the user's offline state on their shard now, then their document */
static void
ngx_http_chat_rt_presence_moved(u_char *id, long long at, ngx_uint_t shard)
{
    u_char                     seen[NGX_INT64_LEN];
    const char                *argv[5];
    size_t                     argvlen[5];
    ngx_http_chat_rt_keyed_t  *user;

    user = ngx_alloc(sizeof(ngx_http_chat_rt_keyed_t), ngx_cycle->log);
    if (user == NULL) {
        return;
    }

    ngx_memcpy(user->id, id, NGX_HTTP_CHAT_RT_ID_LEN);

    argv[3] = (const char *) user->id;
    argvlen[3] = NGX_HTTP_CHAT_RT_ID_LEN;
    argv[4] = (const char *) seen;
    argvlen[4] = ngx_sprintf(seen, "%L", (int64_t) at) - seen;

    if (NGX_HTTP_CHAT_RT_EVAL(shard, ngx_http_chat_rt_moved_lua, 5, argv,
                              argvlen, ngx_http_chat_rt_presence_handed,
                              user)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat ws: presence of %*s not handed over to "
                      "shard %ui", (size_t) NGX_HTTP_CHAT_RT_ID_LEN,
                      user->id, shard);
        ngx_free(user);
    }
}


static void
ngx_http_chat_rt_presence_handed(redisReply *reply, void *data)
{
    ngx_http_chat_rt_keyed_t  *user = data;

    if (ngx_http_chat_rt_presence_reply(reply, "hand-over") != NULL) {
        /* counted there: the document is at or comes to that state */
        ngx_http_chat_rt_presence_store(user->id, NGX_HTTP_CHAT_RT_ID_LEN);

    } else {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat ws: presence of %*s not handed over",
                      (size_t) NGX_HTTP_CHAT_RT_ID_LEN, user->id);
    }

    ngx_free(user);
}
