/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_API_WAIT_H_INCLUDED_
#define _NGX_HTTP_CHAT_API_WAIT_H_INCLUDED_


#include "../core/ngx_http_chat_wait.h"
#include "../ops/ngx_http_chat_op_store.h"
#include "../ops/ngx_http_chat_op_user.h"


/*
 * The one adapter of the REST routes that start a store operation (ops/:
 * chats, messages, groups, users; core's ngx_http_chat_wait.h under it):
 * the operation runs to its end in any case (its events follow its
 * commit), the request only takes its answer, told as the operation's
 * kind says.
 *
 *     st = ngx_http_chat_store_wait(r, tell);      (or _user_wait)
 *     rc = ngx_http_chat_op_...(..., ngx_http_chat_store_answered, st,
 *                               ngx_http_chat_store_op(st), ...);
 *     return ngx_http_chat_store_started(r, st, rc, field, err, details);
 */

typedef void (*ngx_http_chat_op_tell_pt)(ngx_int_t rc, json_t *answer,
    ngx_uint_t created, ngx_http_chat_op_told_t *told);

typedef ngx_http_chat_wait_t  ngx_http_chat_store_wait_t;

/* where the operation's start puts its handle */
#define ngx_http_chat_store_op(st)                                           \
    ((ngx_http_chat_op_store_t **) &(st)->op)


/* the wait of r for an operation, its outcome told with tell; NULL */
ngx_http_chat_store_wait_t *ngx_http_chat_store_wait(ngx_http_request_t *r,
    ngx_http_chat_op_tell_pt tell);
/* the same for a user's write, told by ngx_http_chat_op_user_tell(kind) */
ngx_http_chat_store_wait_t *ngx_http_chat_user_wait(ngx_http_request_t *r,
    ngx_uint_t kind);
/*
 * rc: the operation's start (ngx_http_chat_op.h): NGX_OK waits; a refusal
 * of the input answers 400 (NGX_DECLINED, field and err), 422 (NGX_ABORT,
 * field the code, err the message, details taken) or 404 (NGX_BUSY, a
 * user who is nobody); else 503
 */
ngx_int_t ngx_http_chat_store_started(ngx_http_request_t *r,
    ngx_http_chat_store_wait_t *st, ngx_int_t rc, const char *field,
    const char *err, json_t *details);
/* the same, with the refusals of its input */
ngx_int_t ngx_http_chat_op_started(ngx_http_request_t *r,
    ngx_http_chat_store_wait_t *st, ngx_int_t rc,
    ngx_http_chat_op_refused_t *refused);
/* an outcome told (ngx_http_chat_op_tell()) as the answer of r */
ngx_int_t ngx_http_chat_told_send(ngx_http_request_t *r,
    ngx_http_chat_op_told_t *told, const char *error);
/* the operation's done(): data is the wait */
void ngx_http_chat_store_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error);


/*
 * A route that only reads (GET /api/chats, /api/chats/ids): its wait,
 * what naming the read in the log; the operation's done() is
 * ngx_http_chat_read_answered with the wait as data, which answers 200
 * with the answer (rc NGX_OK or NGX_DONE) or 503; its start is told by
 * ngx_http_chat_wait_start() (503 with Retry-After when it failed).
 */
ngx_http_chat_wait_t *ngx_http_chat_read_wait(ngx_http_request_t *r,
    ngx_http_chat_wait_detach_pt detach, const char *what);
void ngx_http_chat_read_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error);


#endif /* _NGX_HTTP_CHAT_API_WAIT_H_INCLUDED_ */
