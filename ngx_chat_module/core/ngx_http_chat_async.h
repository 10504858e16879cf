/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_ASYNC_H_INCLUDED_
#define _NGX_HTTP_CHAT_ASYNC_H_INCLUDED_


#include "ngx_http_chat_core.h"
#include "../store/ngx_http_chat_redis.h"
#include "../store/ngx_http_chat_mongo.h"
#include "../store/ngx_http_chat_threads.h"


/*
 * Asynchronous steps on behalf of a request.  Each start takes a request
 * reference (r->main->count++) and returns NGX_DONE; its completion runs
 * only while the request lives, and whatever the handler returns is
 * passed to ngx_http_finalize_request(): the final status, or NGX_DONE
 * when the handler started the next step.
 */

typedef ngx_int_t (*ngx_http_chat_redis_next_pt)(ngx_http_request_t *r,
    redisReply *reply);
typedef ngx_int_t (*ngx_http_chat_mongo_next_pt)(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
/* the reply (or NULL) of a command whose request left before it came */
typedef void (*ngx_http_chat_redis_orphan_pt)(redisReply *reply,
    void *data);


/* NGX_DONE, or an error response already sent (return it as it is) */
ngx_int_t ngx_http_chat_redis_request(ngx_http_request_t *r,
    ngx_http_chat_redis_next_pt next, int argc, const char **argv,
    const size_t *argvlen);

ngx_int_t ngx_http_chat_redis_request_orphan(ngx_http_request_t *r,
    ngx_http_chat_redis_next_pt next, ngx_http_chat_redis_orphan_pt orphan,
    void *orphan_data, int argc, const char **argv, const size_t *argvlen);

/* run() in the thread pool, then next() on the event loop */
ngx_int_t ngx_http_chat_mongo_request(ngx_http_request_t *r,
    ngx_http_chat_mongo_run_pt run, ngx_http_chat_mongo_next_pt next,
    void *arg, size_t size);

/* run() in the thread pool without a Mongo client, then next() */
typedef ngx_int_t (*ngx_http_chat_thread_next_pt)(ngx_http_request_t *r,
    ngx_http_chat_thread_t *t);

ngx_int_t ngx_http_chat_thread_request(ngx_http_request_t *r,
    ngx_http_chat_thread_pt run, ngx_http_chat_thread_next_pt next,
    void *arg, size_t size);
/* the same, with a cleanup that runs whether run() ran or not */
ngx_int_t ngx_http_chat_thread_request_cleanup(ngx_http_request_t *r,
    ngx_http_chat_thread_pt run, ngx_http_chat_thread_next_pt next,
    ngx_http_chat_thread_pt cleanup, void *arg, size_t size);

#define NGX_HTTP_CHAT_EVAL_MAX  64

/* EVAL script nkeys keys... args... */
ngx_int_t ngx_http_chat_redis_eval(ngx_http_request_t *r, const char *script,
    ngx_uint_t nkeys, ngx_str_t *keys, ngx_uint_t nargs, ngx_str_t *args,
    ngx_http_chat_redis_next_pt next);

ngx_int_t ngx_http_chat_redis_eval_orphan(ngx_http_request_t *r,
    const char *script, ngx_uint_t nkeys, ngx_str_t *keys, ngx_uint_t nargs,
    ngx_str_t *args, ngx_http_chat_redis_next_pt next,
    ngx_http_chat_redis_orphan_pt orphan, void *orphan_data);

/*
 * A per-user rate limit: a counter in Redis (key rl:<what>:<user>) that
 * lives rate->window seconds; next() gets its reply, which
 * ngx_http_chat_rate_over() turns into NGX_DECLINED (under the limit) or
 * the rc of the 429 rate_limited answer it sent, with Retry-After.
 */
ngx_int_t ngx_http_chat_rate_limit(ngx_http_request_t *r, const char *what,
    ngx_http_chat_rate_t *rate, ngx_http_chat_redis_next_pt next);
ngx_int_t ngx_http_chat_rate_over(ngx_http_request_t *r, redisReply *reply);

ngx_int_t ngx_http_chat_str_num(ngx_pool_t *pool, ngx_str_t *s, int64_t n);

/*
 * ngx_http_chat_online.c: send_json() once the "online" of the users the
 * answer shows is read from Redis (NGX_DONE meanwhile)
 */
ngx_int_t ngx_http_chat_send_json_online(ngx_http_request_t *r,
    ngx_uint_t status, json_t *json);

/* a Redis command nobody waits for (best-effort bookkeeping) */
void ngx_http_chat_redis_forget(int argc, const char **argv,
    const size_t *argvlen);


#endif /* _NGX_HTTP_CHAT_ASYNC_H_INCLUDED_ */
