/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"
#include "../core/ngx_http_chat_work.h"


/*
 * Chat operations, transport-neutral: each takes copies of its inputs,
 * runs its steps on nobody's behalf, and gives its outcome to a callback.
 * REST routes and the realtime codecs are adapters: parse, call, render.
 *
 * done(data, rc, answer, error): rc as the store's (NGX_OK done, NGX_DONE
 * done before: what was done then, NGX_DECLINED no such thing, NGX_BUSY
 * refused (the answer may say how), NGX_ABORT a value refers to nothing
 * (the answer says which), NGX_ERROR a back end failed, error says how);
 * the answer (or NULL) is the callee's.
 */

typedef void (*ngx_http_chat_op_done_pt)(void *data, ngx_int_t rc,
    json_t *answer, const char *error);


/*
 * An input refused before anything started: NGX_DECLINED, field and err
 * say what is wrong (400 invalid_request); NGX_ABORT, a value refused,
 * field is the code and err the message (422), with details (owned) or
 * NULL
 */
typedef struct {
    const char   *field;
    const char   *err;
    json_t       *details;
} ngx_http_chat_op_refused_t;


/* sets refused to {field, err}: NGX_DECLINED */
ngx_int_t ngx_http_chat_op_invalid(ngx_http_chat_op_refused_t *refused,
    const char *field, const char *err);


/* how an outcome is told, the same on every transport */
typedef struct {
    ngx_uint_t    status;      /* as HTTP's */
    json_t       *answer;      /* a success: what to send (owned) */
    const char   *code;        /* a refusal: the error envelope's */
    const char   *message;
    json_t       *details;     /* owned, or NULL */
    json_t       *keep;        /* what code and message point into */
    ngx_uint_t    retry_after; /* a refusal's seconds to wait, 0 none */
} ngx_http_chat_op_told_t;


/* takes answer; created: a new thing answers 201 */
void ngx_http_chat_op_tell(ngx_int_t rc, json_t *answer, ngx_uint_t created,
    ngx_http_chat_op_told_t *told);
/* the error envelope {"error": {code, message, details?}}, owned */
json_t *ngx_http_chat_op_envelope(ngx_http_chat_op_told_t *told);

/*
 * Set when the worker's exit_process begins: MongoDB and Redis are gone,
 * so no operation starts any more (its start answers NGX_ERROR).
 */
extern ngx_uint_t  ngx_http_chat_ops_exited;


#endif /* _NGX_HTTP_CHAT_OP_H_INCLUDED_ */
