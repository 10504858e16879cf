/*
 * Copyright (C) ngx_chat_module authors
 *
 * MongoDB through an NGINX thread pool: one mongoc_client_pool_t per
 * worker, a client popped per operation inside the thread.
 */


#include "ngx_http_chat_mongo.h"
#include "../util/ngx_http_chat_metrics.h"


typedef struct {
    ngx_thread_task_t             *task;
    ngx_http_chat_mongo_task_t    *t;
} ngx_http_chat_mongo_thread_ctx_t;


static void ngx_http_chat_mongo_thread(void *data, ngx_log_t *log);
static void ngx_http_chat_mongo_event(ngx_event_t *ev);
static void ngx_http_chat_mongo_free(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_mongo_request_cleanup(void *data);
static void ngx_http_chat_mongo_log(mongoc_log_level_t level,
    const char *domain, const char *message, void *data);
static ngx_int_t ngx_http_chat_mongo_concerns(ngx_cycle_t *cycle,
    mongoc_uri_t *uri);


static mongoc_client_pool_t  *ngx_http_chat_mongo_pool;
static ngx_thread_pool_t     *ngx_http_chat_mongo_threads;
static ngx_str_t              ngx_http_chat_mongo_db;
static ngx_queue_t            ngx_http_chat_mongo_tasks;
static ngx_uint_t             ngx_http_chat_mongo_inited;


/*
 * Fail fast instead of libmongoc's 30 s server selection wait: a chat
 * request should get a 503 while the database is away, not hang.
 */
static const char  *ngx_http_chat_mongo_defaults[][2] = {
    { MONGOC_URI_SERVERSELECTIONTIMEOUTMS, "2000" },
    { MONGOC_URI_CONNECTTIMEOUTMS, "2000" },
    { MONGOC_URI_SOCKETTIMEOUTMS, "10000" },
    { MONGOC_URI_APPNAME, "ngx_chat_module" },
    { NULL, NULL }
};


static void
ngx_http_chat_mongo_global_init(void)
{
    if (!ngx_http_chat_mongo_inited) {
        mongoc_init();
        ngx_http_chat_mongo_inited = 1;
    }
}


ngx_int_t
ngx_http_chat_mongo_check_uri(ngx_str_t *uri, u_char *err, size_t len)
{
    u_char         *s;
    bson_error_t    error;
    mongoc_uri_t   *u;

    ngx_http_chat_mongo_global_init();

    /* configuration strings are NUL-terminated by the parser */
    s = uri->data;

    u = mongoc_uri_new_with_error((const char *) s, &error);
    if (u == NULL) {
        ngx_cpystrn(err, (u_char *) error.message, len);
        return NGX_ERROR;
    }

    mongoc_uri_destroy(u);

    return NGX_OK;
}


/*
 * Unless the URI says otherwise: a write is acknowledged once a majority
 * of a replica set has it (an acknowledged message survives a failover),
 * waiting at most 5 s for it (then the request gets a 503, never a hang
 * while secondaries are away); writes are retried once across a primary
 * change.  Reads keep the defaults, the primary with "local": a user
 * reads what they have just written.
 */

static ngx_int_t
ngx_http_chat_mongo_concerns(ngx_cycle_t *cycle, mongoc_uri_t *uri)
{
    mongoc_write_concern_t  *wc;

    if (!mongoc_uri_has_option(uri, MONGOC_URI_RETRYWRITES)) {
        mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYWRITES, true);
    }

    if (mongoc_uri_has_option(uri, MONGOC_URI_W)
        || mongoc_uri_has_option(uri, MONGOC_URI_WTIMEOUTMS)
        || mongoc_uri_has_option(uri, MONGOC_URI_JOURNAL))
    {
        return NGX_OK;
    }

    wc = mongoc_write_concern_new();
    if (wc == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "chat: mongoc_write_concern_new() failed");
        return NGX_ERROR;
    }

    mongoc_write_concern_set_wmajority(wc, 5000);
    mongoc_uri_set_write_concern(uri, wc);
    mongoc_write_concern_destroy(wc);

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_mongo_init_process(ngx_cycle_t *cycle,
    ngx_http_chat_main_conf_t *cmcf)
{
    ngx_uint_t     i;
    bson_error_t   error;
    mongoc_uri_t  *uri;

    ngx_http_chat_mongo_global_init();

    /* the log of the task that runs, else the cycle's: never a pointer kept */
    mongoc_log_set_handler(ngx_http_chat_mongo_log, NULL);

    uri = mongoc_uri_new_with_error((const char *) cmcf->mongo_uri.data,
                                    &error);
    if (uri == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "chat: invalid mongo URI: %s", error.message);
        return NGX_ERROR;
    }

    for (i = 0; ngx_http_chat_mongo_defaults[i][0]; i++) {
        if (!mongoc_uri_has_option(uri, ngx_http_chat_mongo_defaults[i][0])) {
            if (ngx_strcmp(ngx_http_chat_mongo_defaults[i][0],
                           MONGOC_URI_APPNAME) == 0)
            {
                mongoc_uri_set_appname(uri,
                                       ngx_http_chat_mongo_defaults[i][1]);
                continue;
            }

            mongoc_uri_set_option_as_int32(uri,
                ngx_http_chat_mongo_defaults[i][0],
                ngx_atoi((u_char *) ngx_http_chat_mongo_defaults[i][1],
                         ngx_strlen(ngx_http_chat_mongo_defaults[i][1])));
        }
    }

    if (ngx_http_chat_mongo_concerns(cycle, uri) != NGX_OK) {
        mongoc_uri_destroy(uri);
        return NGX_ERROR;
    }

    ngx_http_chat_mongo_pool = mongoc_client_pool_new(uri);
    mongoc_uri_destroy(uri);

    if (ngx_http_chat_mongo_pool == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "chat: mongoc_client_pool_new() failed");
        return NGX_ERROR;
    }

    mongoc_client_pool_set_error_api(ngx_http_chat_mongo_pool,
                                     MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_max_size(ngx_http_chat_mongo_pool,
                                (uint32_t) cmcf->mongo_pool_size);

    ngx_http_chat_mongo_threads = cmcf->thread_pool;
    ngx_http_chat_mongo_db = cmcf->mongo_db;
    ngx_queue_init(&ngx_http_chat_mongo_tasks);

    return NGX_OK;
}


void
ngx_http_chat_mongo_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t                 *q;
    ngx_http_chat_mongo_task_t  *t;

    /*
     * The thread pools have been joined (core modules exit first), so
     * no thread touches these tasks any more: free what never completed
     * on the event loop.
     */

    if (ngx_http_chat_mongo_tasks.next) {
        while (!ngx_queue_empty(&ngx_http_chat_mongo_tasks)) {
            q = ngx_queue_head(&ngx_http_chat_mongo_tasks);
            t = ngx_queue_data(q, ngx_http_chat_mongo_task_t, queue);
            t->aborted = 1;
            ngx_http_chat_mongo_free(t);
        }
    }

    if (ngx_http_chat_mongo_pool) {
        mongoc_client_pool_destroy(ngx_http_chat_mongo_pool);
        ngx_http_chat_mongo_pool = NULL;
    }

    if (ngx_http_chat_mongo_inited) {
        mongoc_cleanup();
        ngx_http_chat_mongo_inited = 0;
    }
}


ngx_http_chat_mongo_task_t *
ngx_http_chat_mongo_task_create(ngx_log_t *log,
    ngx_http_chat_mongo_run_pt run, ngx_http_chat_mongo_done_pt done,
    void *data)
{
    return ngx_http_chat_mongo_task_create_arg(log, run, done, data, NULL, 0);
}


/* the task keeps its own copy of arg: run() may outlive the caller's */

ngx_http_chat_mongo_task_t *
ngx_http_chat_mongo_task_create_arg(ngx_log_t *log,
    ngx_http_chat_mongo_run_pt run, ngx_http_chat_mongo_done_pt done,
    void *data, void *arg, size_t size)
{
    ngx_thread_task_t                 *task;
    ngx_http_chat_mongo_task_t        *t;
    ngx_http_chat_mongo_thread_ctx_t  *ctx;

    /* one heap block: the thread task, its context, and our task */
    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_chat_mongo_thread_ctx_t)
                      + sizeof(ngx_http_chat_mongo_task_t) + size, log);
    if (task == NULL) {
        return NULL;
    }

    ctx = (ngx_http_chat_mongo_thread_ctx_t *) (task + 1);
    t = (ngx_http_chat_mongo_task_t *) (ctx + 1);

    task->ctx = ctx;
    task->handler = ngx_http_chat_mongo_thread;
    task->event.handler = ngx_http_chat_mongo_event;
    task->event.data = ctx;
    task->event.log = log;

    ctx->task = task;
    ctx->t = t;

    t->run = run;
    t->done = done;
    t->data = data;
    t->log = log;
    t->rc = NGX_ERROR;
    bson_init(&t->reply);

    if (size) {
        t->arg = t + 1;
        ngx_memcpy(t->arg, arg, size);
    }

    return t;
}


static ngx_thread_task_t *
ngx_http_chat_mongo_thread_task(ngx_http_chat_mongo_task_t *t)
{
    return (ngx_thread_task_t *) ((u_char *) t
                                  - sizeof(ngx_http_chat_mongo_thread_ctx_t)
                                  - sizeof(ngx_thread_task_t));
}


ngx_int_t
ngx_http_chat_mongo_post(ngx_http_chat_mongo_task_t *t)
{
    ngx_thread_task_t  *task;

    if (ngx_http_chat_mongo_pool == NULL) {
        ngx_log_error(NGX_LOG_ALERT, t->log, 0,
                      "chat: mongo is not initialised in this process");
        ngx_http_chat_mongo_free(t);
        return NGX_ERROR;
    }

    task = ngx_http_chat_mongo_thread_task(t);

    if (ngx_thread_task_post(ngx_http_chat_mongo_threads, task) != NGX_OK) {
        /* the queue is full: ngx_thread_task_post() logged it */
        ngx_http_chat_mongo_free(t);
        return NGX_ERROR;
    }

    ngx_http_chat_mongo_track(t);

    return NGX_OK;
}


/* a task counts as pending work from now until it completes */

void
ngx_http_chat_mongo_track(ngx_http_chat_mongo_task_t *t)
{
    t->posted = 1;
    t->posted_at = ngx_current_msec;
    ngx_queue_insert_tail(&ngx_http_chat_mongo_tasks, &t->queue);
    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_MONGO_PENDING);
}


ngx_uint_t
ngx_http_chat_mongo_busy(void)
{
    ngx_queue_t                 *q;
    ngx_http_chat_mongo_task_t  *t;

    if (ngx_http_chat_mongo_tasks.next == NULL) {
        return 0;
    }

    /* a task whose request left is a read nobody waits for: not work */
    for (q = ngx_queue_head(&ngx_http_chat_mongo_tasks);
         q != ngx_queue_sentinel(&ngx_http_chat_mongo_tasks);
         q = ngx_queue_next(q))
    {
        t = ngx_queue_data(q, ngx_http_chat_mongo_task_t, queue);

        if (!t->aborted) {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_http_chat_mongo_post_request(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    ngx_http_cleanup_t  *cln;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        ngx_http_chat_mongo_free(t);
        return NGX_ERROR;
    }

    t->data = r;
    t->skippable = ngx_http_chat_stops_with_client(r);

    ngx_http_chat_task_log_init(&t->own_log, r);
    t->log = &t->own_log.log;
    ngx_http_chat_mongo_thread_task(t)->event.log = t->log;

    if (ngx_http_chat_mongo_post(t) != NGX_OK) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_chat_mongo_request_cleanup;
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
ngx_http_chat_mongo_request_cleanup(void *data)
{
    ngx_http_chat_mongo_task_t  *t = data;

    /* the request is going away; the task finishes on its own */
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, t->log, 0,
                   "chat mongo: request gone, task aborted");

    t->aborted = 1;
    t->data = NULL;
    t->request_cleanup = NULL;
    t->gone = 1;
}


static void
ngx_http_chat_mongo_thread(void *data, ngx_log_t *log)
{
    ngx_http_chat_mongo_thread_ctx_t  *ctx = data;

    struct timeval               tv;
    ngx_msec_t                   start;
    mongoc_client_t             *client;
    mongoc_database_t           *db;
    ngx_http_chat_mongo_task_t  *t;

    t = ctx->t;

    /*
     * Of what the event loop may change meanwhile only "gone" is read: a
     * read whose request left before we got to it has nothing to do.  A
     * write runs either way.
     */

    if (t->skippable && t->gone) {
        t->skipped = 1;
        return;
    }

    /* the cached time is only updated on the event loop */
    ngx_gettimeofday(&tv);
    start = (ngx_msec_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;

    client = mongoc_client_pool_pop(ngx_http_chat_mongo_pool);
    if (client == NULL) {
        bson_set_error(&t->error, MONGOC_ERROR_CLIENT,
                       MONGOC_ERROR_CLIENT_TOO_BIG, "no mongo client");
        t->rc = NGX_ERROR;
        return;
    }

    db = mongoc_client_get_database(client,
                                    (const char *) ngx_http_chat_mongo_db.data);
    if (db == NULL) {
        bson_set_error(&t->error, MONGOC_ERROR_CLIENT,
                       MONGOC_ERROR_CLIENT_TOO_BIG, "no mongo database");
        t->rc = NGX_ERROR;

    } else {
        ngx_http_chat_thread_set_log(t->log);
        t->run(t, client, db);
        ngx_http_chat_thread_set_log(NULL);
        mongoc_database_destroy(db);
    }

    mongoc_client_pool_push(ngx_http_chat_mongo_pool, client);

    ngx_gettimeofday(&tv);
    t->elapsed = (ngx_msec_t) tv.tv_sec * 1000 + tv.tv_usec / 1000 - start;
}


static void
ngx_http_chat_mongo_event(ngx_event_t *ev)
{
    ngx_http_chat_mongo_thread_ctx_t  *ctx = ev->data;

    ngx_http_chat_mongo_complete(ctx->t);
}


/* on the event loop, once run() has ended: done(), then the task goes */

void
ngx_http_chat_mongo_complete(ngx_http_chat_mongo_task_t *t)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    /* a batch's tasks are observed each, not the batch */
    if (ngx_http_chat_metrics && !t->batch_of) {
        ngx_http_chat_metric_observe(
                            &ngx_http_chat_metrics->h[NGX_HTTP_CHAT_H_MONGO],
                            (ngx_msec_int_t) (ngx_current_msec
                                              - t->posted_at));

        if (t->rc == NGX_ERROR) {
            ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_MONGO_ERRORS);
        }
    }

    if (t->skipped) {
        ngx_log_error(NGX_LOG_INFO, t->log, 0,
                      "chat: mongo task skipped, its request left before "
                      "it ran");
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, t->log, 0,
                   "chat mongo: task done rc:%i aborted:%ud",
                   t->rc, (ngx_uint_t) t->aborted);

    if (t->aborted || t->done == NULL) {
        ngx_http_chat_mongo_free(t);
        return;
    }

    /* the request is alive: detach its cleanup before the task goes */
    if (t->request_cleanup) {
        t->request_cleanup->handler = NULL;
        t->request_cleanup = NULL;

        /* done() may free the request, the connection struct stays */
        r = t->data;
        c = r->connection;

        t->done(t);
        ngx_http_chat_mongo_free(t);

        ngx_http_run_posted_requests(c);
        return;
    }

    t->done(t);
    ngx_http_chat_mongo_free(t);
}


void
ngx_http_chat_mongo_task_free(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_mongo_free(t);
}


static void
ngx_http_chat_mongo_free(ngx_http_chat_mongo_task_t *t)
{
    if (t->posted) {
        ngx_queue_remove(&t->queue);
        ngx_http_chat_metric_dec(NGX_HTTP_CHAT_M_MONGO_PENDING);
    }

    if (t->request_cleanup) {
        t->request_cleanup->handler = NULL;
    }

    if (t->cleanup) {
        t->cleanup(t);
    }

    bson_destroy(&t->reply);

    ngx_free(ngx_http_chat_mongo_thread_task(t));
}


/*
 * One document of coll (the first by sort, if given), copied into out:
 * NGX_OK, NGX_DECLINED when there is none, NGX_ERROR.  In a thread.
 */

ngx_int_t
ngx_http_chat_mongo_find_one(mongoc_database_t *db, const char *coll,
    const bson_t *filter, const bson_t *sort, bson_t *out,
    bson_error_t *error)
{
    bson_t                opts;
    ngx_int_t             rc;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    bson_init(&opts);
    BSON_APPEND_INT64(&opts, "limit", 1);

    if (sort) {
        BSON_APPEND_DOCUMENT(&opts, "sort", sort);
    }

    c = mongoc_database_get_collection(db, coll);
    cursor = mongoc_collection_find_with_opts(c, filter, &opts, NULL);

    rc = NGX_DECLINED;

    if (mongoc_cursor_next(cursor, &doc)) {
        bson_copy_to(doc, out);
        rc = NGX_OK;

    } else if (mongoc_cursor_error(cursor, error)) {
        rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);
    bson_destroy(&opts);

    return rc;
}


static void
ngx_http_chat_mongo_log(mongoc_log_level_t level, const char *domain,
    const char *message, void *data)
{
    ngx_uint_t  lvl;

    /*
     * Called from pool threads too: ngx_log_error() writes to the log's
     * file descriptor with one write(2), which is safe to share.  In a
     * task the line goes to the task's log, which names its request; else
     * to the current cycle's log, never to a connection's.
     */

    switch (level) {

    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
        lvl = NGX_LOG_ERR;
        break;

    case MONGOC_LOG_LEVEL_WARNING:
        lvl = NGX_LOG_WARN;
        break;

    case MONGOC_LOG_LEVEL_MESSAGE:
    case MONGOC_LOG_LEVEL_INFO:
        lvl = NGX_LOG_INFO;
        break;

    default:
        return;
    }

    /* FerretDB has no endSessions; libmongoc tries it at pool teardown */
    if (ngx_strstr(message, "endSessions") != NULL) {
        lvl = NGX_LOG_INFO;
    }

    ngx_log_error(lvl, ngx_http_chat_thread_current_log(), 0,
                  "mongoc %s: %s", domain, message);
}
