/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_STORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_STORE_H_INCLUDED_


#include "ngx_http_chat_op.h"
#include "../store/ngx_http_chat_mongo.h"


/*
 * A change made by one store step (or a few in a row), transport-neutral:
 * it takes a copy of the step's argument, runs the step in the thread
 * pool on nobody's behalf, publishes the events its commit caused (the
 * "$events" of its answer) whether or not anybody still waits, and gives
 * the outcome to done().  A requester that leaves calls detach() and
 * loses only the answer.  An exiting worker waits for it.
 *
 * next(arg, &rc, answer), when given, runs once, after the first step:
 * it may change arg (the operation's copy) and returns the second step's
 * run(), or NULL to give rc (which it may change) and answer to done().
 */

typedef struct ngx_http_chat_op_store_s  ngx_http_chat_op_store_t;

typedef ngx_http_chat_mongo_run_pt (*ngx_http_chat_op_store_next_pt)(
    void *arg, ngx_int_t *rc, json_t *answer);
/*
 * after(op, ctx, rc, answer, error): an operation with steps of its own
 * after the store's (a system message, a loop of sends) runs them in
 * after() instead of the publish and the end: it owns answer, publishes
 * the store's events when its order says, and calls
 * ngx_http_chat_op_store_end() once.  drop(ctx) frees ctx when the worker
 * exits before that.
 */
typedef void (*ngx_http_chat_op_store_after_pt)(ngx_http_chat_op_store_t *op,
    void *ctx, ngx_int_t rc, json_t *answer, const char *error);
typedef void (*ngx_http_chat_op_store_drop_pt)(void *ctx);


/*
 * NGX_OK: started, done() will be called, never before this returns;
 * NGX_ERROR: it could not start (MongoDB is down, no memory), done() is
 * not called
 */
ngx_int_t ngx_http_chat_op_store(ngx_http_chat_mongo_run_pt run,
    ngx_http_chat_op_store_next_pt next, void *arg, size_t size,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out);
/*
 * the same with one step posted by post() (a batch's, as
 * ngx_http_chat_people_self_post(): it goes with the worker's others;
 * NULL: ngx_http_chat_mongo_post())
 */
typedef ngx_int_t (*ngx_http_chat_op_store_post_pt)(
    ngx_http_chat_mongo_task_t *t);

ngx_int_t ngx_http_chat_op_store_batched(ngx_http_chat_op_store_post_pt post,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out);
ngx_int_t ngx_http_chat_op_store_after(ngx_http_chat_mongo_run_pt run,
    ngx_http_chat_op_store_after_pt after, ngx_http_chat_op_store_drop_pt drop,
    void *ctx, void *arg, size_t size, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out);
/* the outcome, to done() if anybody waits (answer is given) */
void ngx_http_chat_op_store_end(ngx_http_chat_op_store_t *op, ngx_int_t rc,
    json_t *answer, const char *error);
void ngx_http_chat_op_store_detach(ngx_http_chat_op_store_t *op);

/*
 * An effect of the commit outside the store that the answer waits for (a
 * cached copy dropped, so that what follows the answer cannot see it):
 * hold(arg) from next(), with the arg it was given, then release(op) once
 * the effect is done or cannot be waited for.  The end is delayed until
 * then.
 */
ngx_http_chat_op_store_t *ngx_http_chat_op_store_hold(void *arg);
void ngx_http_chat_op_store_release(ngx_http_chat_op_store_t *op);

/* what never finished when the worker exits */
void ngx_http_chat_op_store_exit_process(void);


#endif /* _NGX_HTTP_CHAT_OP_STORE_H_INCLUDED_ */
