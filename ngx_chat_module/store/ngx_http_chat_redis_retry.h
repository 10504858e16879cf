/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_REDIS_RETRY_H_INCLUDED_
#define _NGX_HTTP_CHAT_REDIS_RETRY_H_INCLUDED_


#include "ngx_http_chat_redis.h"


/*
 * Commands on a Redis connection (chat_redis's, or that of the queue's
 * shard) that must arrive (a cached key dropped, a set changed once
 * stored): one that cannot be sent, or whose
 * connection is lost before its reply, waits in the worker and is sent
 * again on the next connect.  Only a worker that exits or dies with some
 * waiting loses them, and past NGX_HTTP_CHAT_REDIS_RETRY_MAX waiting the
 * newest is dropped with a warning (what, lost).
 *
 * An item is ngx_alloc()ed with this header first; from _send() on the
 * queue owns it and ngx_free()s it once its reply came.
 */

#define NGX_HTTP_CHAT_REDIS_RETRY_MAX  100000


typedef struct ngx_http_chat_redis_retry_s  ngx_http_chat_redis_retry_t;

/*
 * settled(ctx), when set, is called once: at the command's first reply
 * (whatever it is), or at once when it cannot be sent now and waits
 */
typedef void (*ngx_http_chat_redis_retry_settled_pt)(void *ctx);

typedef struct {
    ngx_queue_t                            queue;
    ngx_http_chat_redis_retry_t           *retry;
    ngx_http_chat_redis_retry_settled_pt   settled;
    void                                  *ctx;
} ngx_http_chat_redis_retry_item_t;

/*
 * sends the item's command with ngx_http_chat_redis_retry_reply as the
 * handler and the item as its data; the rc of the send
 */
typedef ngx_int_t (*ngx_http_chat_redis_retry_send_pt)(
    ngx_http_chat_redis_retry_item_t *item);

struct ngx_http_chat_redis_retry_s {
    ngx_http_chat_redis_retry_send_pt   send;
    const char                         *what;  /* "profile changes" */
    const char                         *lost;  /* what a dropped one costs */
    ngx_queue_t                         waiting;
    ngx_uint_t                          nwaiting;
    ngx_uint_t                          hooked;
    ngx_uint_t                          shard;  /* its connection's */
};


/* a static queue on chat_redis: send, what and lost set, the rest zero */
#define ngx_http_chat_redis_retry(send, what, lost)                          \
    { send, what, lost, { NULL, NULL }, 0, 0, 0 }


/*
 * The queue of id's shard among queues (NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1
 * of them, static, zero), set up on its first use; id as in the key's tag
 */
ngx_http_chat_redis_retry_t *ngx_http_chat_redis_retry_of(
    ngx_http_chat_redis_retry_t *queues, u_char *id, size_t len,
    ngx_http_chat_redis_retry_send_pt send, const char *what,
    const char *lost);
void ngx_http_chat_redis_retry_send(ngx_http_chat_redis_retry_t *rt,
    ngx_http_chat_redis_retry_item_t *item);
void ngx_http_chat_redis_retry_send_then(ngx_http_chat_redis_retry_t *rt,
    ngx_http_chat_redis_retry_item_t *item,
    ngx_http_chat_redis_retry_settled_pt settled, void *ctx);
void ngx_http_chat_redis_retry_reply(redisReply *reply, void *data);


#endif /* _NGX_HTTP_CHAT_REDIS_RETRY_H_INCLUDED_ */
