/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_SEND_CACHE_H_INCLUDED_
#define _NGX_HTTP_CHAT_SEND_CACHE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <bson/bson.h>


/* a worker's memory, for a second, of who may send where */
ngx_uint_t ngx_http_chat_send_cache_hit(const bson_oid_t *chat,
    const bson_oid_t *user);
/* the generation a check begins in; its put is dropped after a clear */
ngx_uint_t ngx_http_chat_send_cache_generation(void);
void ngx_http_chat_send_cache_put(const bson_oid_t *chat,
    const bson_oid_t *user, ngx_uint_t generation);
/* forgets what every worker of this instance knew */
void ngx_http_chat_send_cache_clear(void);
/* the instance's generation, in shared memory: a clear anywhere ends it */
void ngx_http_chat_send_cache_share(ngx_atomic_t *generation);


#endif /* _NGX_HTTP_CHAT_SEND_CACHE_H_INCLUDED_ */
