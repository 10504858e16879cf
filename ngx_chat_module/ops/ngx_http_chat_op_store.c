/*
 * Copyright (C) ngx_chat_module authors
 *
 * A change made by store steps on nobody's behalf: the Mongo task is the
 * operation's, never a request's, so a requester that leaves cannot stop
 * what follows the commit (its events).
 */


#include "ngx_http_chat_op_store.h"
#include "../core/ngx_http_chat_events.h"


#define NGX_HTTP_CHAT_OP_STORE_ERROR  128


struct ngx_http_chat_op_store_s {
    ngx_http_chat_op_done_pt         done;    /* NULL once nobody waits */
    void                            *data;
    ngx_http_chat_op_store_next_pt   next;
    ngx_http_chat_op_store_after_pt  after;   /* its own steps follow */
    ngx_http_chat_op_store_drop_pt   drop;
    void                            *ctx;     /* after()'s and drop()'s */
    ngx_http_chat_op_store_post_pt   post;    /* the first step's, or NULL */
    ngx_queue_t                      queue;   /* in the worker's live ops */
    size_t                           size;
    ngx_uint_t                       holds;   /* effects the end waits for */
    ngx_uint_t                       ended;   /* and the end came */
    ngx_int_t                        rc;      /* the end's, kept */
    json_t                          *answer;
    u_char                           error[NGX_HTTP_CHAT_OP_STORE_ERROR];
    void                            *arg;     /* after the struct */
};


static ngx_int_t ngx_http_chat_op_store_post(ngx_http_chat_op_store_t *op,
    ngx_http_chat_mongo_run_pt run);
static void ngx_http_chat_op_store_stored(ngx_http_chat_mongo_task_t *t);
static ngx_http_chat_op_store_t *ngx_http_chat_op_store_start(
    ngx_http_chat_op_store_post_pt post, ngx_http_chat_mongo_run_pt run,
    void *arg, size_t size, ngx_http_chat_op_done_pt done, void *data);


static void ngx_http_chat_op_store_finish(ngx_http_chat_op_store_t *op,
    ngx_int_t rc, json_t *answer, const char *error);


static ngx_queue_t  ngx_http_chat_op_store_live;


ngx_int_t
ngx_http_chat_op_store(ngx_http_chat_mongo_run_pt run,
    ngx_http_chat_op_store_next_pt next, void *arg, size_t size,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out)
{
    /* its step is posted already: next is read only when it ends */
    if (ngx_http_chat_op_store_batched(NULL, run, arg, size, done, data, out)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    (*out)->next = next;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_op_store_batched(ngx_http_chat_op_store_post_pt post,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out)
{
    ngx_http_chat_op_store_t  *op;

    op = ngx_http_chat_op_store_start(post, run, arg, size, done, data);
    if (op == NULL) {
        return NGX_ERROR;
    }

    *out = op;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_op_store_after(ngx_http_chat_mongo_run_pt run,
    ngx_http_chat_op_store_after_pt after, ngx_http_chat_op_store_drop_pt drop,
    void *ctx, void *arg, size_t size, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out)
{
    ngx_http_chat_op_store_t  *op;

    op = ngx_http_chat_op_store_start(NULL, run, arg, size, done, data);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->after = after;
    op->drop = drop;
    op->ctx = ctx;
    *out = op;

    return NGX_OK;
}


static ngx_http_chat_op_store_t *
ngx_http_chat_op_store_start(ngx_http_chat_op_store_post_pt post,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    ngx_http_chat_op_done_pt done, void *data)
{
    ngx_http_chat_op_store_t  *op;

    if (ngx_http_chat_ops_exited) {
        return NULL;
    }

    op = ngx_calloc(sizeof(ngx_http_chat_op_store_t) + size, ngx_cycle->log);
    if (op == NULL) {
        return NULL;
    }

    op->done = done;
    op->data = data;
    op->size = size;
    op->arg = op + 1;
    op->post = post;
    ngx_memcpy(op->arg, arg, size);

    if (ngx_http_chat_op_store_post(op, run) != NGX_OK) {
        ngx_free(op);
        return NULL;
    }

    if (ngx_http_chat_op_store_live.next == NULL) {
        ngx_queue_init(&ngx_http_chat_op_store_live);
    }

    ngx_queue_insert_tail(&ngx_http_chat_op_store_live, &op->queue);
    ngx_http_chat_work_begin();

    return op;
}


void
ngx_http_chat_op_store_detach(ngx_http_chat_op_store_t *op)
{
    op->done = NULL;
    op->data = NULL;
}


static ngx_int_t
ngx_http_chat_op_store_post(ngx_http_chat_op_store_t *op,
    ngx_http_chat_mongo_run_pt run)
{
    ngx_http_chat_op_store_post_pt   post;
    ngx_http_chat_mongo_task_t      *t;

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log, run,
                                            ngx_http_chat_op_store_stored,
                                            op, op->arg, op->size);
    if (t == NULL) {
        return NGX_ERROR;
    }

    /* a batch's for the first step only */
    post = op->post ? op->post : ngx_http_chat_mongo_post;
    op->post = NULL;

    /* on NGX_ERROR the task is freed */
    return post(t);
}


static void
ngx_http_chat_op_store_stored(ngx_http_chat_mongo_task_t *t)
{
    json_t                          *answer;
    ngx_int_t                        rc;
    ngx_http_chat_mongo_run_pt       run;
    ngx_http_chat_op_store_t        *op;
    ngx_http_chat_op_store_next_pt   next;

    op = t->data;
    rc = t->rc;

    answer = t->result;
    t->result = NULL;

    if (op->after) {
        /* its own steps publish what the commit caused, in their order */
        op->after(op, op->ctx, rc, answer, t->error.message);
        return;
    }

    /* what the commit caused, said by the store, whoever still waits */
    ngx_http_chat_event_publish_committed(answer);

    if (op->next) {
        next = op->next;
        op->next = NULL;

        run = next(op->arg, &rc, answer);

        if (run) {
            json_decref(answer);

            if (ngx_http_chat_op_store_post(op, run) != NGX_OK) {
                ngx_http_chat_op_store_end(op, NGX_ERROR, NULL,
                                           "mongo is not available");
            }

            return;
        }
    }

    ngx_http_chat_op_store_end(op, rc, answer, t->error.message);
}


ngx_http_chat_op_store_t *
ngx_http_chat_op_store_hold(void *arg)
{
    ngx_http_chat_op_store_t  *op;

    /* the arg given to next() is the operation's copy, right after it */
    op = (ngx_http_chat_op_store_t *) arg - 1;
    op->holds++;

    return op;
}


void
ngx_http_chat_op_store_release(ngx_http_chat_op_store_t *op)
{
    if (op->holds == 0 || --op->holds || !op->ended) {
        return;
    }

    ngx_http_chat_op_store_finish(op, op->rc, op->answer,
                                  op->error[0] ? (char *) op->error : NULL);
}


void
ngx_http_chat_op_store_end(ngx_http_chat_op_store_t *op, ngx_int_t rc,
    json_t *answer, const char *error)
{
    if (op->holds == 0) {
        ngx_http_chat_op_store_finish(op, rc, answer, error);
        return;
    }

    /* the task that gave error goes when this returns: a copy */
    op->ended = 1;
    op->rc = rc;
    op->answer = answer;

    if (error) {
        ngx_cpystrn(op->error, (u_char *) error, sizeof(op->error));
    }
}


static void
ngx_http_chat_op_store_finish(ngx_http_chat_op_store_t *op, ngx_int_t rc,
    json_t *answer, const char *error)
{
    ngx_queue_remove(&op->queue);
    ngx_http_chat_work_end();

    if (op->done) {
        op->done(op->data, rc, answer, error);

    } else if (answer) {
        json_decref(answer);
    }

    ngx_free(op);
}


/*
 * The worker exits (graceful exits waited for these, see
 * ngx_http_chat_work_begin(), so this is what a stop cut short):
 * MongoDB is gone and its tasks were freed, so nothing would call these
 * back.  Each is told so, which frees what its requester keeps for it.
 */

void
ngx_http_chat_op_store_exit_process(void)
{
    ngx_uint_t                 n;
    ngx_queue_t               *q;
    ngx_http_chat_op_store_t  *op;

    if (ngx_http_chat_op_store_live.next == NULL) {
        return;
    }

    n = 0;

    while (!ngx_queue_empty(&ngx_http_chat_op_store_live)) {
        q = ngx_queue_head(&ngx_http_chat_op_store_live);
        op = ngx_queue_data(q, ngx_http_chat_op_store_t, queue);

        if (op->drop) {
            op->drop(op->ctx);
        }

        n++;

        /* Redis went first and called back what it held: none is left */
        op->holds = 0;

        if (op->ended) {
            ngx_http_chat_op_store_finish(op, op->rc, op->answer,
                                          (char *) op->error);
            continue;
        }

        ngx_http_chat_op_store_end(op, NGX_ERROR, NULL,
                                   "the worker exited before the end");
    }

    if (n) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: %ui store operations in flight when the "
                      "worker exited", n);
    }
}
