/*
 * Copyright (C) ngx_chat_module authors
 *
 * Redis commands and Mongo tasks started by a request, which may leave
 * before they complete.
 */


#include "ngx_http_chat_async.h"
#include "../store/ngx_http_chat_redis_shards.h"


typedef struct {
    ngx_http_request_t           *request;   /* NULL once the request left */
    ngx_http_cleanup_t           *cleanup;
    ngx_http_chat_redis_next_pt   next;
    ngx_http_chat_redis_orphan_pt orphan;
    void                         *orphan_data;
} ngx_http_chat_redis_wait_t;


static void ngx_http_chat_redis_request_reply(redisReply *reply, void *data);
static void ngx_http_chat_redis_wait_cleanup(void *data);
static void ngx_http_chat_mongo_request_done(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_thread_request_done(ngx_http_chat_thread_t *t);


static void
ngx_http_chat_async_hold(ngx_http_request_t *r)
{
    r->main->count++;

    /* a read notices a client that leaves while it waits */
    if (ngx_http_chat_stops_with_client(r)) {
        r->read_event_handler = ngx_http_test_reading;
    }
}


ngx_int_t
ngx_http_chat_redis_request(ngx_http_request_t *r,
    ngx_http_chat_redis_next_pt next, int argc, const char **argv,
    const size_t *argvlen)
{
    return ngx_http_chat_redis_request_orphan(r, next, NULL, NULL, argc, argv,
                                              argvlen);
}


/*
 * As ngx_http_chat_redis_request(), and when the request is gone by the
 * time the reply comes, orphan(reply, orphan_data) still sees it: for
 * commands whose effect must be completed by somebody (a sequence number
 * taken must be stored).  orphan_data is heap memory, freed after the
 * reply, orphaned or not.
 */

ngx_int_t
ngx_http_chat_redis_request_orphan(ngx_http_request_t *r,
    ngx_http_chat_redis_next_pt next, ngx_http_chat_redis_orphan_pt orphan,
    void *orphan_data, int argc, const char **argv, const size_t *argvlen)
{
    ngx_int_t                    rc;
    ngx_http_cleanup_t          *cln;
    ngx_http_chat_redis_t       *rds;
    ngx_http_chat_redis_wait_t  *w;

    cln = ngx_http_cleanup_add(r, 0);
    w = cln ? ngx_alloc(sizeof(ngx_http_chat_redis_wait_t), ngx_cycle->log)
            : NULL;

    if (w == NULL) {
        if (orphan_data) {
            ngx_free(orphan_data);
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->request = r;
    w->cleanup = cln;
    w->next = next;
    w->orphan = orphan;
    w->orphan_data = orphan_data;

    rds = ngx_http_chat_redis_keyed(argc, argv, argvlen);

    rc = ngx_http_chat_redis_command_argv(rds,
                                          ngx_http_chat_redis_request_reply,
                                          w, argc, argv, argvlen);
    if (rc != NGX_OK) {
        /* the command never ran: there is nothing to complete */
        ngx_free(w);

        if (orphan_data) {
            ngx_free(orphan_data);
        }

        /* a full output buffer was logged by the Redis layer */

        if (rc == NGX_DECLINED && !ngx_http_chat_redis_is_connected(rds))
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "chat: redis is not connected");
        }

        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "a back end is unavailable, "
                                        "try again shortly");
    }

    cln->handler = ngx_http_chat_redis_wait_cleanup;
    cln->data = w;

    ngx_http_chat_async_hold(r);
    ngx_http_chat_store_begin(r);

    return NGX_DONE;
}


static void
ngx_http_chat_redis_wait_cleanup(void *data)
{
    ngx_http_chat_redis_wait_t  *w = data;

    /* the reply still comes; it frees w */
    w->request = NULL;
}


static void
ngx_http_chat_redis_request_reply(redisReply *reply, void *data)
{
    ngx_http_chat_redis_wait_t  *w = data;

    ngx_int_t                     rc;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_chat_redis_next_pt   next;

    r = w->request;
    next = w->next;

    if (r) {
        w->cleanup->handler = NULL;

    } else if (w->orphan) {
        w->orphan(reply, w->orphan_data);
    }

    if (w->orphan_data) {
        ngx_free(w->orphan_data);
    }

    ngx_free(w);

    if (r == NULL) {
        return;
    }

    c = r->connection;

    ngx_http_chat_store_end(r);

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "chat: redis command failed: %s",
                      reply ? reply->str : "connection lost");

        rc = ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "service_unavailable",
                                      "a back end is unavailable, "
                                      "try again shortly");
    } else {
        rc = next(r, reply);
    }

    ngx_http_chat_finalize(r, rc);
    ngx_http_run_posted_requests(c);
}


/* EVAL script with keys and args, on behalf of r */

ngx_int_t
ngx_http_chat_redis_eval(ngx_http_request_t *r, const char *script,
    ngx_uint_t nkeys, ngx_str_t *keys, ngx_uint_t nargs, ngx_str_t *args,
    ngx_http_chat_redis_next_pt next)
{
    return ngx_http_chat_redis_eval_orphan(r, script, nkeys, keys, nargs,
                                           args, next, NULL, NULL);
}


ngx_int_t
ngx_http_chat_redis_eval_orphan(ngx_http_request_t *r, const char *script,
    ngx_uint_t nkeys, ngx_str_t *keys, ngx_uint_t nargs, ngx_str_t *args,
    ngx_http_chat_redis_next_pt next, ngx_http_chat_redis_orphan_pt orphan,
    void *orphan_data)
{
    u_char       nk[NGX_INT_T_LEN];
    ngx_uint_t   i, n;
    const char  *argv[NGX_HTTP_CHAT_EVAL_MAX + 3];
    size_t       argvlen[NGX_HTTP_CHAT_EVAL_MAX + 3];

    if (nkeys + nargs > NGX_HTTP_CHAT_EVAL_MAX) {
        if (orphan_data) {
            ngx_free(orphan_data);
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;
    argv[n] = "EVAL";
    argvlen[n++] = 4;
    argv[n] = script;
    argvlen[n++] = ngx_strlen(script);
    argv[n] = (char *) nk;
    argvlen[n++] = ngx_sprintf(nk, "%ui", nkeys) - nk;

    for (i = 0; i < nkeys; i++) {
        argv[n] = (char *) keys[i].data;
        argvlen[n++] = keys[i].len;
    }

    for (i = 0; i < nargs; i++) {
        argv[n] = (char *) args[i].data;
        argvlen[n++] = args[i].len;
    }

    /* hiredis copies the command before this returns */
    return ngx_http_chat_redis_request_orphan(r, next, orphan, orphan_data,
                                              (int) n, argv, argvlen);
}


/* a decimal number as a string in pool */

ngx_int_t
ngx_http_chat_str_num(ngx_pool_t *pool, ngx_str_t *s, int64_t n)
{
    s->data = ngx_pnalloc(pool, NGX_INT64_LEN);
    if (s->data == NULL) {
        return NGX_ERROR;
    }

    s->len = ngx_sprintf(s->data, "%L", n) - s->data;

    return NGX_OK;
}


void
ngx_http_chat_redis_forget(int argc, const char **argv,
    const size_t *argvlen)
{
    (void) ngx_http_chat_redis_command_argv(
                              ngx_http_chat_redis_keyed(argc, argv, argvlen),
                              NULL, NULL, argc, argv, argvlen);
}


ngx_int_t
ngx_http_chat_mongo_request(ngx_http_request_t *r,
    ngx_http_chat_mongo_run_pt run, ngx_http_chat_mongo_next_pt next,
    void *arg, size_t size)
{
    ngx_http_chat_mongo_task_t  *t;

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log, run,
                                            ngx_http_chat_mongo_request_done,
                                            r, arg, size);
    if (t == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    t->next = (void *) next;

    if (ngx_http_chat_mongo_post_request(r, t) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "a back end is unavailable, "
                                        "try again shortly");
    }

    ngx_http_chat_store_begin(r);

    return NGX_DONE;
}


static void
ngx_http_chat_mongo_request_done(ngx_http_chat_mongo_task_t *t)
{
    ngx_int_t                     rc;
    ngx_http_request_t           *r;
    ngx_http_chat_mongo_next_pt   next;

    r = t->data;
    next = (ngx_http_chat_mongo_next_pt) t->next;

    ngx_http_chat_store_end(r);

    rc = next(r, t);

    /* the Mongo layer runs the posted requests after this */
    ngx_http_chat_finalize(r, rc);
}


ngx_int_t
ngx_http_chat_thread_request(ngx_http_request_t *r,
    ngx_http_chat_thread_pt run, ngx_http_chat_thread_next_pt next,
    void *arg, size_t size)
{
    return ngx_http_chat_thread_request_cleanup(r, run, next, NULL, arg,
                                                size);
}


ngx_int_t
ngx_http_chat_thread_request_cleanup(ngx_http_request_t *r,
    ngx_http_chat_thread_pt run, ngx_http_chat_thread_next_pt next,
    ngx_http_chat_thread_pt cleanup, void *arg, size_t size)
{
    ngx_http_chat_thread_t   *t, none;

    t = ngx_http_chat_thread_create(ngx_cycle->log, run,
                                    ngx_http_chat_thread_request_done, r,
                                    arg, size);
    if (t == NULL) {
        if (cleanup) {
            /* what arg holds is released as the task would have */
            ngx_memzero(&none, sizeof(ngx_http_chat_thread_t));
            none.arg = arg;
            none.log = ngx_cycle->log;
            cleanup(&none);
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    t->next = (void *) next;
    t->cleanup = cleanup;

    if (ngx_http_chat_thread_post_request(r, t) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "the server is busy, "
                                        "try again shortly");
    }

    return NGX_DONE;
}


static void
ngx_http_chat_thread_request_done(ngx_http_chat_thread_t *t)
{
    ngx_int_t                      rc;
    ngx_http_request_t            *r;
    ngx_http_chat_thread_next_pt   next;

    r = t->data;
    next = (ngx_http_chat_thread_next_pt) t->next;

    rc = next(r, t);

    /* the thread layer runs the posted requests after this */
    ngx_http_chat_finalize(r, rc);
}


/* its TTL once past the limit, 0 under it */

static const char  ngx_http_chat_rate_script[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end "
    "if n > tonumber(ARGV[1]) then return redis.call('TTL', KEYS[1]) end "
    "return 0";


ngx_int_t
ngx_http_chat_rate_limit(ngx_http_request_t *r, const char *what,
    ngx_http_chat_rate_t *rate, ngx_http_chat_redis_next_pt next)
{
    ngx_str_t             key, args[2];
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    key.data = ngx_pnalloc(r->pool, sizeof("rl::{}") + ngx_strlen(what)
                                    + ctx->user_id.len);
    if (key.data == NULL
        || ngx_http_chat_str_num(r->pool, &args[0], rate->count) != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[1], rate->window) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* tagged by the user: on their shard (ngx_http_chat_redis_shards.h) */
    key.len = ngx_sprintf(key.data, "rl:%s:{%V}", what, &ctx->user_id)
              - key.data;

    return ngx_http_chat_redis_eval(r, ngx_http_chat_rate_script, 1, &key,
                                    2, args, next);
}


ngx_int_t
ngx_http_chat_rate_over(ngx_http_request_t *r, redisReply *reply)
{
    u_char     *p;
    ngx_str_t   v;

    /* errors never come here: the command's step answered them */
    if (reply->type != REDIS_REPLY_INTEGER) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (reply->integer == 0) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v.data = p;
    v.len = ngx_sprintf(p, "%L", (int64_t) (reply->integer > 0
                                            ? reply->integer : 1)) - p;

    if (ngx_http_chat_add_header(r, "Retry-After", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                    "rate_limited",
                                    "too many requests, try again later");
}
