/*
 * Copyright (C) ngx_chat_module authors
 *
 * Running a function in the module's thread pool, without a MongoDB
 * client: the event loop only posts the task and takes its result.
 */


#include "ngx_http_chat_threads.h"


typedef struct {
    ngx_thread_task_t         *task;
    ngx_http_chat_thread_t    *t;
} ngx_http_chat_thread_ctx_t;


static ngx_thread_task_t *ngx_http_chat_thread_task(
    ngx_http_chat_thread_t *t);
static void ngx_http_chat_thread_handler(void *data, ngx_log_t *log);
static void ngx_http_chat_thread_event(ngx_event_t *ev);
static void ngx_http_chat_thread_free(ngx_http_chat_thread_t *t);
static void ngx_http_chat_thread_request_cleanup(void *data);
static u_char *ngx_http_chat_task_log_handler(ngx_log_t *log, u_char *buf,
    size_t len);


static ngx_thread_pool_t  *ngx_http_chat_threads;
static ngx_queue_t         ngx_http_chat_thread_tasks;

/* the log of the task a pool thread runs now */
static __thread ngx_log_t  *ngx_http_chat_thread_log;

ngx_http_chat_request_id_pt  ngx_http_chat_task_request_id;


ngx_int_t
ngx_http_chat_threads_init_process(ngx_cycle_t *cycle,
    ngx_thread_pool_t *pool)
{
    ngx_http_chat_threads = pool;
    ngx_queue_init(&ngx_http_chat_thread_tasks);

    return NGX_OK;
}


void
ngx_http_chat_threads_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t             *q;
    ngx_http_chat_thread_t  *t;

    /*
     * The thread pools have been joined (core modules exit first): free
     * what never completed on the event loop.
     */

    if (ngx_http_chat_thread_tasks.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_chat_thread_tasks)) {
        q = ngx_queue_head(&ngx_http_chat_thread_tasks);
        t = ngx_queue_data(q, ngx_http_chat_thread_t, queue);
        t->aborted = 1;
        ngx_http_chat_thread_free(t);
    }
}


ngx_thread_pool_t *
ngx_http_chat_thread_pool(void)
{
    return ngx_http_chat_threads;
}


ngx_http_chat_thread_t *
ngx_http_chat_thread_create(ngx_log_t *log, ngx_http_chat_thread_pt run,
    ngx_http_chat_thread_pt done, void *data, void *arg, size_t size)
{
    ngx_thread_task_t           *task;
    ngx_http_chat_thread_t      *t;
    ngx_http_chat_thread_ctx_t  *ctx;

    /* one heap block: the thread task, its context, the task, arg */
    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_chat_thread_ctx_t)
                      + sizeof(ngx_http_chat_thread_t) + size, log);
    if (task == NULL) {
        return NULL;
    }

    ctx = (ngx_http_chat_thread_ctx_t *) (task + 1);
    t = (ngx_http_chat_thread_t *) (ctx + 1);

    task->ctx = ctx;
    task->handler = ngx_http_chat_thread_handler;
    task->event.handler = ngx_http_chat_thread_event;
    task->event.data = ctx;
    task->event.log = log;

    ctx->task = task;
    ctx->t = t;

    t->run = run;
    t->done = done;
    t->data = data;
    t->log = log;
    t->rc = NGX_ERROR;

    if (size) {
        t->arg = t + 1;
        ngx_memcpy(t->arg, arg, size);
    }

    return t;
}


static ngx_thread_task_t *
ngx_http_chat_thread_task(ngx_http_chat_thread_t *t)
{
    return (ngx_thread_task_t *) ((u_char *) t
                                  - sizeof(ngx_http_chat_thread_ctx_t)
                                  - sizeof(ngx_thread_task_t));
}


ngx_int_t
ngx_http_chat_thread_post(ngx_http_chat_thread_t *t)
{
    ngx_thread_task_t  *task;

    if (ngx_http_chat_threads == NULL) {
        ngx_log_error(NGX_LOG_ALERT, t->log, 0,
                      "chat: no thread pool in this process");
        ngx_http_chat_thread_free(t);
        return NGX_ERROR;
    }

    task = ngx_http_chat_thread_task(t);

    /* the log is final now: the event handler logs through it too */
    task->event.log = t->log;

    if (ngx_thread_task_post(ngx_http_chat_threads, task) != NGX_OK) {
        /* the queue is full: ngx_thread_task_post() logged it */
        ngx_http_chat_thread_free(t);
        return NGX_ERROR;
    }

    t->posted = 1;
    ngx_queue_insert_tail(&ngx_http_chat_thread_tasks, &t->queue);

    return NGX_OK;
}


ngx_uint_t
ngx_http_chat_thread_busy(void)
{
    ngx_queue_t             *q;
    ngx_http_chat_thread_t  *t;

    if (ngx_http_chat_thread_tasks.next == NULL) {
        return 0;
    }

    /* a task whose request left is work nobody waits for */
    for (q = ngx_queue_head(&ngx_http_chat_thread_tasks);
         q != ngx_queue_sentinel(&ngx_http_chat_thread_tasks);
         q = ngx_queue_next(q))
    {
        t = ngx_queue_data(q, ngx_http_chat_thread_t, queue);

        if (!t->aborted) {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_http_chat_thread_post_request(ngx_http_request_t *r,
    ngx_http_chat_thread_t *t)
{
    ngx_http_cleanup_t  *cln;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        ngx_http_chat_thread_free(t);
        return NGX_ERROR;
    }

    t->data = r;
    t->skippable = ngx_http_chat_stops_with_client(r);

    ngx_http_chat_task_log_init(&t->own_log, r);
    t->log = &t->own_log.log;

    if (ngx_http_chat_thread_post(t) != NGX_OK) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_chat_thread_request_cleanup;
    cln->data = t;
    t->request_cleanup = cln;

    r->main->count++;

    /* a read notices a client that leaves while it waits */
    if (t->skippable) {
        r->read_event_handler = ngx_http_test_reading;
    }

    return NGX_OK;
}


static void
ngx_http_chat_thread_request_cleanup(void *data)
{
    ngx_http_chat_thread_t  *t = data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, t->log, 0,
                   "chat thread: request gone, task aborted");

    t->aborted = 1;
    t->data = NULL;
    t->request_cleanup = NULL;
    t->gone = 1;
}


static void
ngx_http_chat_thread_handler(void *data, ngx_log_t *log)
{
    ngx_http_chat_thread_ctx_t  *ctx = data;

    ngx_http_chat_thread_t  *t;

    t = ctx->t;

    /*
     * Only "gone" is read here of what the event loop may change: a read
     * whose request left before we got to it has nothing to do.
     */

    if (t->skippable && t->gone) {
        t->skipped = 1;
        return;
    }

    ngx_http_chat_thread_log = t->log;

    t->run(t);

    ngx_http_chat_thread_log = NULL;
}


static void
ngx_http_chat_thread_event(ngx_event_t *ev)
{
    ngx_http_chat_thread_ctx_t  *ctx = ev->data;

    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_chat_thread_t  *t;

    t = ctx->t;

    if (t->skipped) {
        ngx_log_error(NGX_LOG_INFO, t->log, 0,
                      "chat: task skipped, its request left before it ran");
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, t->log, 0,
                   "chat thread: task done rc:%i aborted:%ud",
                   t->rc, (ngx_uint_t) t->aborted);

    if (t->aborted || t->done == NULL) {
        ngx_http_chat_thread_free(t);
        return;
    }

    if (t->request_cleanup) {
        t->request_cleanup->handler = NULL;
        t->request_cleanup = NULL;

        /* done() may free the request, the connection struct stays */
        r = t->data;
        c = r->connection;

        t->done(t);
        ngx_http_chat_thread_free(t);

        ngx_http_run_posted_requests(c);
        return;
    }

    t->done(t);
    ngx_http_chat_thread_free(t);
}


static void
ngx_http_chat_thread_free(ngx_http_chat_thread_t *t)
{
    if (t->posted) {
        ngx_queue_remove(&t->queue);
    }

    if (t->request_cleanup) {
        t->request_cleanup->handler = NULL;
    }

    if (t->cleanup) {
        t->cleanup(t);
    }

    ngx_free(ngx_http_chat_thread_task(t));
}


/*
 * A copy of the cycle's log whose lines name the request: the cycle's log
 * lives as long as the worker, a connection's log only as long as its
 * connection.  The id is copied: the task may outlive the request.
 */

void
ngx_http_chat_task_log_init(ngx_http_chat_task_log_t *tl,
    ngx_http_request_t *r)
{
    ngx_str_t  *id;

    tl->log = *ngx_cycle->log;
    tl->len = 0;

    id = (r && ngx_http_chat_task_request_id)
         ? ngx_http_chat_task_request_id(r) : NULL;

    if (id && id->len) {
        tl->len = ngx_min(id->len, sizeof(tl->id));
        ngx_memcpy(tl->id, id->data, tl->len);
    }

    tl->log.handler = ngx_http_chat_task_log_handler;
    tl->log.data = tl;
    tl->log.action = NULL;
    tl->log.connection = r ? r->connection->number : 0;
}


static u_char *
ngx_http_chat_task_log_handler(ngx_log_t *log, u_char *buf, size_t len)
{
    ngx_http_chat_task_log_t  *tl = log->data;

    if (tl->len == 0) {
        return buf;
    }

    return ngx_snprintf(buf, len, ", request_id: \"%*s\"", tl->len, tl->id);
}


ngx_log_t *
ngx_http_chat_thread_current_log(void)
{
    return ngx_http_chat_thread_log ? ngx_http_chat_thread_log
                                    : ngx_cycle->log;
}


void
ngx_http_chat_thread_set_log(ngx_log_t *log)
{
    ngx_http_chat_thread_log = log;
}
