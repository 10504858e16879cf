/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_THREADS_H_INCLUDED_
#define _NGX_HTTP_CHAT_THREADS_H_INCLUDED_


#include "../util/ngx_http_chat_conf.h"


/*
 * Work that would stall the event loop (parsing thousands of phone
 * numbers, hashing or copying a file, libmagic, reading a spilled body)
 * runs in the module's thread pool, without a MongoDB client.  The task is
 * heap memory that outlives the request that posted it: the request's
 * cleanup only marks it aborted.  run() executes in a pool thread, done()
 * on the event loop afterwards unless the task was aborted; cleanup()
 * always runs, on the event loop.  run() must never touch t->data: the
 * owner may be freed on the event loop meanwhile.
 *
 * A task posted for a request that stops when its client leaves (a read,
 * ngx_http_chat_stops_with_client) is skipped when the request is gone
 * before a thread takes it: there is no effect to lose.  A write always
 * runs.
 */

/*
 * Whether a request that waits stops when its client leaves: a read does;
 * a write runs to the end, so that what follows its commit (publish, chat
 * activity, counters) never depends on the client, who loses only the
 * answer
 */
#define ngx_http_chat_stops_with_client(r)                                   \
    (!(r)->discard_body && ((r)->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)))


typedef struct ngx_http_chat_thread_s  ngx_http_chat_thread_t;

typedef void (*ngx_http_chat_thread_pt)(ngx_http_chat_thread_t *t);


/*
 * A task's log: the cycle's log (never a connection's, which may be freed
 * while the task runs), naming the request the task works for.
 */
typedef struct {
    ngx_log_t                  log;
    size_t                     len;
    u_char                     id[NGX_HTTP_CHAT_REQUEST_ID_MAX];
} ngx_http_chat_task_log_t;


struct ngx_http_chat_thread_s {
    ngx_http_chat_thread_pt    run;       /* in a pool thread */
    ngx_http_chat_thread_pt    done;      /* on the event loop */
    ngx_http_chat_thread_pt    cleanup;   /* frees result; always called */
    void                      *data;      /* the owner, e.g. a request */
    void                      *next;      /* the owner's continuation */
    void                      *arg;       /* run()'s input, a copy */

    /* written by run() in the thread, read on the event loop */
    ngx_int_t                  rc;        /* NGX_OK, NGX_ERROR... */
    void                      *result;    /* run()'s own, see cleanup */

    ngx_http_cleanup_t        *request_cleanup;
    ngx_log_t                 *log;
    ngx_http_chat_task_log_t   own_log;
    ngx_queue_t                queue;

    /*
     * Words of their own: the thread reads skippable and gone, and writes
     * skipped, while the event loop may write the bits below
     */
    ngx_uint_t                 skippable;     /* a read: may be skipped */
    ngx_atomic_t               gone;          /* its request left */
    ngx_uint_t                 skipped;       /* run() never ran */

    unsigned                   aborted:1;
    unsigned                   posted:1;
};


ngx_int_t ngx_http_chat_threads_init_process(ngx_cycle_t *cycle,
    ngx_thread_pool_t *pool);
void ngx_http_chat_threads_exit_process(ngx_cycle_t *cycle);

/* a task that keeps its own copy of arg (size bytes) */
ngx_http_chat_thread_t *ngx_http_chat_thread_create(ngx_log_t *log,
    ngx_http_chat_thread_pt run, ngx_http_chat_thread_pt done, void *data,
    void *arg, size_t size);
/* on NGX_ERROR the task is already freed */
ngx_int_t ngx_http_chat_thread_post(ngx_http_chat_thread_t *t);
/* posts on behalf of r: r->main->count++, aborted when r is freed */
ngx_int_t ngx_http_chat_thread_post_request(ngx_http_request_t *r,
    ngx_http_chat_thread_t *t);
/* tasks posted whose completion has not run yet */
ngx_uint_t ngx_http_chat_thread_busy(void);

/* the module's thread pool of this worker */
ngx_thread_pool_t *ngx_http_chat_thread_pool(void);

/* a log naming r's request id, for work done on r's behalf */
/* the id of the request a task works for (set by core/): NULL if none */
typedef ngx_str_t *(*ngx_http_chat_request_id_pt)(ngx_http_request_t *r);
extern ngx_http_chat_request_id_pt  ngx_http_chat_task_request_id;

void ngx_http_chat_task_log_init(ngx_http_chat_task_log_t *tl,
    ngx_http_request_t *r);

/*
 * The log of the task this pool thread runs now, or the cycle's log: for
 * libraries that log through a process-wide callback (libmongoc).
 */
ngx_log_t *ngx_http_chat_thread_current_log(void);
void ngx_http_chat_thread_set_log(ngx_log_t *log);


#endif /* _NGX_HTTP_CHAT_THREADS_H_INCLUDED_ */
