/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_SYNC_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_SYNC_H_INCLUDED_


#include "ngx_http_chat_op_people.h"


/*
 * Address-book sync as an operation: which of up to 5,000 numbers as
 * typed have an account.  Its steps, on nobody's behalf: the user's
 * counter in Redis (20 an hour), the numbers parsed in a pool thread (a
 * quarter of a second of libphonenumber the event loop must not spend),
 * the day's lookup budget for the numbers that parse (whole, or refused
 * whole: ngx_http_chat_op_lookup.h), then one query.  It changes nothing
 * but the counters: a requester that leaves (detach) stops it at its next
 * step.
 *
 * Returns NGX_OK (started: done() will be called), NGX_ERROR (it could
 * not start: Redis or memory), or NGX_DECLINED with *field and *err, the
 * body refused (400 invalid_request), nothing counted.
 *
 * done(data, rc, answer, error): NGX_OK with {items}; NGX_BUSY over the
 * hourly limit or the daily budget, {"retryAfter": seconds}; NGX_DECLINED a refusal found once
 * counted, {field, message} (400); NGX_ABORT an internal failure (500);
 * NGX_ERROR a back end failed (503).
 */

typedef struct ngx_http_chat_op_sync_s  ngx_http_chat_op_sync_t;


ngx_int_t ngx_http_chat_op_sync(const bson_oid_t *user, json_t *body,
    ngx_http_chat_op_phone_pt phone, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_sync_t **out, const char **field,
    const char **err);
void ngx_http_chat_op_sync_detach(ngx_http_chat_op_sync_t *op);


#endif /* _NGX_HTTP_CHAT_OP_SYNC_H_INCLUDED_ */
