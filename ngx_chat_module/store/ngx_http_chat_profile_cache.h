/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_PROFILE_CACHE_H_INCLUDED_
#define _NGX_HTTP_CHAT_PROFILE_CACHE_H_INCLUDED_


#include "ngx_http_chat_redis.h"
#include "ngx_http_chat_redis_retry.h"


/*
 * A user's own profile as GET /api/users/profile shows it (privacy
 * included), kept in Redis for the sockets' sign-in: "up:{<user>}" the
 * JSON, "upg:{<user>}" the generation every change of the profile bumps,
 * both on the user's shard (chat_redis when there are none).
 */

#define NGX_HTTP_CHAT_PROFILE_GEN_MAX  32


/*
 * got(data, rc, json, gen): rc NGX_OK with the JSON (borrowed until
 * got() returns: copy it),
 * NGX_DECLINED a miss, NGX_ERROR Redis did not answer; gen (borrowed) is
 * what fill() wants, empty when Redis did not answer
 */
typedef void (*ngx_http_chat_profile_got_pt)(void *data, ngx_int_t rc,
    ngx_str_t *json, ngx_str_t *gen);


/* NGX_OK: got() will be called, never before this returns */
ngx_int_t ngx_http_chat_profile_cache_get(ngx_str_t *user,
    ngx_http_chat_profile_got_pt got, void *data);
/* stores json as read from MongoDB if gen did not move: best effort */
void ngx_http_chat_profile_cache_fill(ngx_str_t *user, ngx_str_t *gen,
    ngx_str_t *json);
/* the profile changed (stored): what Redis holds of it is gone */
void ngx_http_chat_profile_cache_drop(ngx_str_t *user);
/*
 * the same, and settled(ctx) once Redis has done it, or at once when it
 * waits for a connection (ngx_http_chat_redis_retry.h); NGX_ERROR (no
 * memory, not a user id): settled() is not called
 */
ngx_int_t ngx_http_chat_profile_cache_drop_then(ngx_str_t *user,
    ngx_http_chat_redis_retry_settled_pt settled, void *ctx);


#endif /* _NGX_HTTP_CHAT_PROFILE_CACHE_H_INCLUDED_ */
