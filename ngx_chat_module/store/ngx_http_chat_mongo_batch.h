/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_MONGO_BATCH_H_INCLUDED_
#define _NGX_HTTP_CHAT_MONGO_BATCH_H_INCLUDED_


#include "ngx_http_chat_mongo.h"


#define NGX_HTTP_CHAT_MONGO_BATCH_MAX  64


/*
 * A group commit: tasks of one kind (each an ordinary task with its own
 * run() and done()) that arrive while this worker already has "running"
 * of their kind in the store wait, and go together in one pool thread as
 * soon as one of those ends, up to "max" a command: the store pays its
 * per-command cost (parsing, a transaction, a commit) once for them all.
 * Alone, a task goes at once and runs as it would by itself, so a quiet
 * store adds no latency.  run() of a batch gets the tasks and writes each
 * one's results as its own run() would; each task then completes as if it
 * had run alone (its done(), its own latency).
 *
 * A task that waits is pending work (ngx_http_chat_mongo_busy()), so a
 * worker that stops finishes its batches first.
 */

typedef void (*ngx_http_chat_mongo_batch_run_pt)(
    ngx_http_chat_mongo_task_t **tasks, ngx_uint_t n,
    mongoc_client_t *client, mongoc_database_t *db);

typedef struct {
    ngx_http_chat_mongo_batch_run_pt   run;
    /* a task that will never run (its batch could not be posted) */
    ngx_http_chat_mongo_done_pt        unrun;
    ngx_uint_t                         max;        /* tasks a batch */
    ngx_uint_t                         running_max;
    ngx_int_t                          metric;     /* counts batches, or -1 */

    /* this worker's */
    ngx_queue_t                        waiting;
    ngx_uint_t                         nwaiting;
    ngx_uint_t                         running;
} ngx_http_chat_mongo_batch_t;


/* on NGX_ERROR the task is already freed, as ngx_http_chat_mongo_post() */
ngx_int_t ngx_http_chat_mongo_batch_post(ngx_http_chat_mongo_batch_t *b,
    ngx_http_chat_mongo_task_t *t);


#endif /* _NGX_HTTP_CHAT_MONGO_BATCH_H_INCLUDED_ */
