/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CHAT_IDS_STORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_CHAT_IDS_STORE_H_INCLUDED_


#include "ngx_http_chat_redis.h"


/* the candidates for GET /api/chats/ids kept in Redis */

#define NGX_HTTP_CHAT_IDS_TTL      "86400"
#define NGX_HTTP_CHAT_IDS_GEN_TTL  "172800"
#define NGX_HTTP_CHAT_IDS_KEYS     (sizeof("uc:") + sizeof("ucg:") + 2 * 24)


/* "uc:<user>" and "ucg:<user>" in buf, NGX_HTTP_CHAT_IDS_KEYS bytes */
void ngx_http_chat_chat_ids_keys(u_char *buf, ngx_str_t *user,
    ngx_str_t *keys);
/* EVAL script 2 uc:<user> ucg:<user>: the first 5 of argv */
void ngx_http_chat_chat_ids_argv(const char **argv, size_t *argvlen,
    const char *script, size_t len, u_char *buf, ngx_str_t *user);

/* user joined chat, user was made just now: best effort, no answer */
void ngx_http_chat_chat_ids_joined(ngx_str_t *user, ngx_str_t *chat);
void ngx_http_chat_chat_ids_new_user(ngx_str_t *user);


#endif /* _NGX_HTTP_CHAT_CHAT_IDS_STORE_H_INCLUDED_ */
