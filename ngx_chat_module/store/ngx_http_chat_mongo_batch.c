/*
 * Copyright (C) ngx_chat_module authors
 *
 * Group commit of tasks of one kind (ngx_http_chat_mongo_batch.h): a
 * batch is a task of its own whose argument lists its tasks, which it
 * neither owns nor frees: each completes, and is freed, on its own.
 */


#include "ngx_http_chat_mongo_batch.h"
#include "../util/ngx_http_chat_metrics.h"


typedef struct {
    ngx_http_chat_mongo_batch_run_pt   run;
    ngx_uint_t                         n;
    ngx_http_chat_mongo_task_t        *tasks[NGX_HTTP_CHAT_MONGO_BATCH_MAX];
} ngx_http_chat_mongo_batch_arg_t;


static ngx_int_t ngx_http_chat_mongo_batch_start(
    ngx_http_chat_mongo_batch_t *b, ngx_http_chat_mongo_task_t **tasks,
    ngx_uint_t n);
static void ngx_http_chat_mongo_batch_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
static void ngx_http_chat_mongo_batch_done(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_mongo_batch_next(ngx_http_chat_mongo_batch_t *b);


ngx_int_t
ngx_http_chat_mongo_batch_post(ngx_http_chat_mongo_batch_t *b,
    ngx_http_chat_mongo_task_t *t)
{
    if (b->waiting.next == NULL) {
        ngx_queue_init(&b->waiting);
    }

    /* alone, at once; behind those that wait, never before them */
    if (b->running < b->running_max && b->nwaiting == 0) {
        if (ngx_http_chat_mongo_batch_start(b, &t, 1) != NGX_OK) {
            ngx_http_chat_mongo_task_free(t);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    ngx_http_chat_mongo_track(t);
    ngx_queue_insert_tail(&b->waiting, &t->batch);
    b->nwaiting++;

    return NGX_OK;
}


/*
 * posts a batch of n tasks, tracked from now if they were not before (on
 * NGX_ERROR too: they are then the caller's to end)
 */

static ngx_int_t
ngx_http_chat_mongo_batch_start(ngx_http_chat_mongo_batch_t *b,
    ngx_http_chat_mongo_task_t **tasks, ngx_uint_t n)
{
    size_t                            size;
    ngx_uint_t                        i;
    ngx_http_chat_mongo_task_t       *t;
    ngx_http_chat_mongo_batch_arg_t   a;

    a.run = b->run;
    a.n = n;
    ngx_memcpy(a.tasks, tasks, n * sizeof(ngx_http_chat_mongo_task_t *));

    /* the task keeps a copy of the list's used part */
    size = offsetof(ngx_http_chat_mongo_batch_arg_t, tasks)
           + n * sizeof(ngx_http_chat_mongo_task_t *);

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_mongo_batch_run,
                                            ngx_http_chat_mongo_batch_done,
                                            b, &a, size);
    if (t == NULL) {
        return NGX_ERROR;
    }

    t->batch_of = 1;

    /* pending work before a thread may touch them */
    for (i = 0; i < n; i++) {
        if (!tasks[i]->posted) {
            ngx_http_chat_mongo_track(tasks[i]);
        }
    }

    /* on NGX_ERROR the batch is freed, not its tasks */
    if (ngx_http_chat_mongo_post(t) != NGX_OK) {
        return NGX_ERROR;
    }

    b->running++;

    if (b->metric >= 0) {
        ngx_http_chat_metric_inc((ngx_uint_t) b->metric);
    }

    return NGX_OK;
}


/* in a pool thread: the tasks are this thread's until the batch is done */

static void
ngx_http_chat_mongo_batch_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_mongo_batch_arg_t  *a = t->arg;

    a->run(a->tasks, a->n, client, db);

    t->rc = NGX_OK;
}


static void
ngx_http_chat_mongo_batch_done(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_mongo_batch_t      *b = t->data;
    ngx_http_chat_mongo_batch_arg_t  *a = t->arg;

    ngx_uint_t  i;

    b->running--;

    for (i = 0; i < a->n; i++) {
        a->tasks[i]->elapsed = t->elapsed;
        ngx_http_chat_mongo_complete(a->tasks[i]);
    }

    ngx_http_chat_mongo_batch_next(b);
}


/* the tasks that waited go, up to max a batch */

static void
ngx_http_chat_mongo_batch_next(ngx_http_chat_mongo_batch_t *b)
{
    ngx_uint_t                   n;
    ngx_queue_t                 *q;
    ngx_http_chat_mongo_task_t  *tasks[NGX_HTTP_CHAT_MONGO_BATCH_MAX], *t;

    while (b->nwaiting && b->running < b->running_max) {

        for (n = 0; n < b->max && n < NGX_HTTP_CHAT_MONGO_BATCH_MAX
                    && !ngx_queue_empty(&b->waiting); n++)
        {
            q = ngx_queue_head(&b->waiting);
            ngx_queue_remove(q);
            tasks[n] = ngx_queue_data(q, ngx_http_chat_mongo_task_t, batch);
        }

        b->nwaiting -= n;

        if (ngx_http_chat_mongo_batch_start(b, tasks, n) == NGX_OK) {
            continue;
        }

        /* never to run: each ends with an error, as a task not posted */
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: a batch of %ui mongo tasks could not be posted",
                      n);

        while (n) {
            t = tasks[--n];
            t->rc = NGX_ERROR;
            bson_set_error(&t->error, MONGOC_ERROR_CLIENT,
                           MONGOC_ERROR_CLIENT_TOO_BIG,
                           "mongo is not available");

            if (b->unrun) {
                b->unrun(t);
            }

            ngx_http_chat_mongo_complete(t);
        }
    }
}
