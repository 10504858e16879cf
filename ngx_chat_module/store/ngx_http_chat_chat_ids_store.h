/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CHAT_IDS_STORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_CHAT_IDS_STORE_H_INCLUDED_


#include "ngx_http_chat_redis.h"


/* the ids of a user's chats kept in Redis (GET /api/chats/ids, sign-in) */

#define NGX_HTTP_CHAT_IDS_TTL       "86400"
#define NGX_HTTP_CHAT_IDS_GEN_TTL   "172800"
#define NGX_HTTP_CHAT_IDS_MARK_TTL  "60"
#define NGX_HTTP_CHAT_IDS_KEYS     (sizeof("uh:{}") + sizeof("ucg:{}")     \
                                    + 2 * 24)


/*
 * "uh:{<user>}" and "ucg:{<user>}" in buf, NGX_HTTP_CHAT_IDS_KEYS bytes;
 * the user's shard, where they are (ngx_http_chat_redis_shard())
 */
ngx_uint_t ngx_http_chat_chat_ids_keys(u_char *buf, ngx_str_t *user,
    ngx_str_t *keys);
/* EVAL script 2 uh:{<user>} ucg:{<user>}: the first 5 of argv; the shard */
ngx_uint_t ngx_http_chat_chat_ids_argv(const char **argv, size_t *argvlen,
    const char *script, size_t len, u_char *buf, ngx_str_t *user);

/*
 * user joined chat, user left chat (removed or by themselves), each once
 * stored; user was made just now: no answer
 */
void ngx_http_chat_chat_ids_joined(ngx_str_t *user, ngx_str_t *chat);
void ngx_http_chat_chat_ids_left(ngx_str_t *user, ngx_str_t *chat);
void ngx_http_chat_chat_ids_new_user(ngx_str_t *user);


#endif /* _NGX_HTTP_CHAT_CHAT_IDS_STORE_H_INCLUDED_ */
