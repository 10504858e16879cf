/*
 * Copyright (C) ngx_chat_module authors
 *
 * Redis commands sent again until they are answered
 * (ngx_http_chat_redis_retry.h).
 */


#include "ngx_http_chat_redis_retry.h"
#include "ngx_http_chat_redis_shards.h"


static void ngx_http_chat_redis_retry_wait(ngx_http_chat_redis_retry_t *rt,
    ngx_http_chat_redis_retry_item_t *item);
static void ngx_http_chat_redis_retry_connected(void *data);
static void ngx_http_chat_redis_retry_settle(
    ngx_http_chat_redis_retry_item_t *item);


ngx_http_chat_redis_retry_t *
ngx_http_chat_redis_retry_of(ngx_http_chat_redis_retry_t *queues, u_char *id,
    size_t len, ngx_http_chat_redis_retry_send_pt send, const char *what,
    const char *lost)
{
    ngx_uint_t                    shard;
    ngx_http_chat_redis_retry_t  *rt;

    shard = ngx_http_chat_redis_shard_of(id, len);
    rt = &queues[shard];

    if (rt->send == NULL) {
        rt->send = send;
        rt->what = what;
        rt->lost = lost;
        rt->shard = shard;
    }

    return rt;
}


void
ngx_http_chat_redis_retry_send(ngx_http_chat_redis_retry_t *rt,
    ngx_http_chat_redis_retry_item_t *item)
{
    ngx_http_chat_redis_retry_send_then(rt, item, NULL, NULL);
}


void
ngx_http_chat_redis_retry_send_then(ngx_http_chat_redis_retry_t *rt,
    ngx_http_chat_redis_retry_item_t *item,
    ngx_http_chat_redis_retry_settled_pt settled, void *ctx)
{
    if (!rt->hooked) {
        ngx_queue_init(&rt->waiting);
        ngx_http_chat_redis_on_connect(ngx_http_chat_redis_shard(rt->shard),
                                       ngx_http_chat_redis_retry_connected,
                                       rt);
        rt->hooked = 1;
    }

    item->retry = rt;
    item->settled = settled;
    item->ctx = ctx;

    if (rt->send(item) == NGX_OK) {
        return;
    }

    /* nobody can wait for a connection that may take long to come */
    ngx_http_chat_redis_retry_settle(item);
    ngx_http_chat_redis_retry_wait(rt, item);
}


void
ngx_http_chat_redis_retry_reply(redisReply *reply, void *data)
{
    ngx_http_chat_redis_retry_item_t *item = data;

    ngx_http_chat_redis_retry_settle(item);

    if (reply == NULL && !ngx_exiting && !ngx_terminate && !ngx_quit) {
        /* the connection went with it: again once it is back */
        ngx_http_chat_redis_retry_wait(item->retry, item);
        return;
    }

    ngx_free(item);
}


static void
ngx_http_chat_redis_retry_settle(ngx_http_chat_redis_retry_item_t *item)
{
    ngx_http_chat_redis_retry_settled_pt  settled;

    settled = item->settled;

    if (settled) {
        item->settled = NULL;
        settled(item->ctx);
    }
}


static void
ngx_http_chat_redis_retry_wait(ngx_http_chat_redis_retry_t *rt,
    ngx_http_chat_redis_retry_item_t *item)
{
    if (rt->nwaiting == NGX_HTTP_CHAT_REDIS_RETRY_MAX) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: too many %s wait for Redis, %s", rt->what,
                      rt->lost);
        ngx_free(item);
        return;
    }

    ngx_queue_insert_tail(&rt->waiting, &item->queue);
    rt->nwaiting++;
}


static void
ngx_http_chat_redis_retry_connected(void *data)
{
    ngx_http_chat_redis_retry_t *rt = data;

    ngx_queue_t                        q;
    ngx_http_chat_redis_retry_item_t  *item;

    if (ngx_queue_empty(&rt->waiting)) {
        return;
    }

    /* what fails again is queued anew */
    ngx_queue_init(&q);
    ngx_queue_add(&q, &rt->waiting);
    ngx_queue_init(&rt->waiting);
    rt->nwaiting = 0;

    while (!ngx_queue_empty(&q)) {
        item = ngx_queue_data(ngx_queue_head(&q),
                              ngx_http_chat_redis_retry_item_t, queue);
        ngx_queue_remove(&item->queue);

        if (item->retry->send(item) != NGX_OK) {
            ngx_http_chat_redis_retry_wait(rt, item);
        }
    }
}
