/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_MONGO_H_INCLUDED_
#define _NGX_HTTP_CHAT_MONGO_H_INCLUDED_


#include "../util/ngx_http_chat_conf.h"
#include "ngx_http_chat_threads.h"
#include <jansson.h>
#include <mongoc/mongoc.h>


/*
 * libmongoc is blocking, so every operation runs in an NGINX thread pool.
 * A task is heap memory owned by this layer: it outlives the request that
 * posted it, and a request that goes away only marks it aborted.  run()
 * executes in a pool thread with a client popped from this worker's pool;
 * done() runs on the event loop afterwards, unless the task was aborted.
 * The log given to a task must outlive it: use ngx_cycle->log, not a
 * connection's log, which is freed with its connection (a task posted for
 * a request logs through a copy of the cycle's log that names the request
 * id).  run() must never touch t->data: the owner may be freed on the
 * event loop meanwhile.  A read posted for a request whose client left
 * before a thread took it is skipped, without popping a client
 * (ngx_http_chat_threads.h says which tasks are reads).
 */

typedef struct ngx_http_chat_mongo_task_s  ngx_http_chat_mongo_task_t;

typedef void (*ngx_http_chat_mongo_run_pt)(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
typedef void (*ngx_http_chat_mongo_done_pt)(ngx_http_chat_mongo_task_t *t);

struct ngx_http_chat_mongo_task_s {
    ngx_http_chat_mongo_run_pt    run;
    ngx_http_chat_mongo_done_pt   done;
    void                         *data;     /* the owner, e.g. a request */
    void                         *next;     /* the owner's continuation */
    void                         *arg;      /* run()'s input, a copy */

    /* results, written by run() in the thread, read by done() */
    ngx_int_t                     rc;       /* NGX_OK or NGX_ERROR */
    bson_error_t                  error;
    bson_t                        reply;    /* always initialised */
    ngx_msec_t                    elapsed;
    void                         *result;   /* run()'s own, see cleanup */

    /* frees result; called on the event loop, aborted or not */
    void                        (*cleanup)(ngx_http_chat_mongo_task_t *t);

    /* the request owner, when posted with ngx_http_chat_mongo_post_request */
    ngx_http_cleanup_t           *request_cleanup;

    ngx_log_t                    *log;
    ngx_http_chat_task_log_t      own_log;
    ngx_queue_t                   queue;
    ngx_queue_t                   batch;    /* waiting for its batch */

    /* words of their own: see ngx_http_chat_thread_t */
    ngx_uint_t                    skippable;
    ngx_atomic_t                  gone;
    ngx_uint_t                    skipped;

    ngx_msec_t                    posted_at;   /* for the metrics */

    unsigned                      aborted:1;
    unsigned                      posted:1;
    unsigned                      batch_of:1;  /* runs others: a batch */
};


ngx_int_t ngx_http_chat_mongo_check_uri(ngx_str_t *uri, u_char *err,
    size_t len);
ngx_int_t ngx_http_chat_mongo_init_process(ngx_cycle_t *cycle,
    ngx_http_chat_main_conf_t *cmcf);
void ngx_http_chat_mongo_exit_process(ngx_cycle_t *cycle);

ngx_http_chat_mongo_task_t *ngx_http_chat_mongo_task_create(ngx_log_t *log,
    ngx_http_chat_mongo_run_pt run, ngx_http_chat_mongo_done_pt done,
    void *data);
ngx_http_chat_mongo_task_t *ngx_http_chat_mongo_task_create_arg(
    ngx_log_t *log, ngx_http_chat_mongo_run_pt run,
    ngx_http_chat_mongo_done_pt done, void *data, void *arg, size_t size);
/* on NGX_ERROR the task is already freed */
ngx_int_t ngx_http_chat_mongo_post(ngx_http_chat_mongo_task_t *t);
/* in a thread: NGX_OK (out holds a copy), NGX_DECLINED, NGX_ERROR */
ngx_int_t ngx_http_chat_mongo_find_one(mongoc_database_t *db,
    const char *coll, const bson_t *filter, const bson_t *sort, bson_t *out,
    bson_error_t *error);
/*
 * For a layer that runs tasks in a task of its own (a batch): track()
 * counts one as pending work, as post() does; complete() runs its done()
 * on the event loop once its run() has ended, and frees it
 */
void ngx_http_chat_mongo_track(ngx_http_chat_mongo_task_t *t);
void ngx_http_chat_mongo_complete(ngx_http_chat_mongo_task_t *t);
/* a task never posted */
void ngx_http_chat_mongo_task_free(ngx_http_chat_mongo_task_t *t);
/* tasks posted whose completion has not run yet */
ngx_uint_t ngx_http_chat_mongo_busy(void);
/* posts on behalf of r: r->main->count++, aborted when r is freed */
ngx_int_t ngx_http_chat_mongo_post_request(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);





#endif /* _NGX_HTTP_CHAT_MONGO_H_INCLUDED_ */
