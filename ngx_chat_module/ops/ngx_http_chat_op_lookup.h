/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_LOOKUP_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_LOOKUP_H_INCLUDED_


#include "ngx_http_chat_op.h"
#include <bson/bson.h>


/*
 * The lookup budget.  Lookups by phone number (contact sync, add-contact
 * by phone, search by number) share one daily cap of distinct numbers per
 * user (chat_lookup_daily_numbers), as Signal's contact discovery does:
 * without it a few accounts map which numbers have an account.  A Redis
 * set lk:<user>:<UTC day> holds a short keyed hash of each number looked
 * up that day, never the number; a number looked up again costs nothing;
 * the set expires when the day ends.  A lookup that would pass the cap
 * adds nothing and is refused whole.  The numbers counted are E.164, as
 * the ops normalised them, so formats of one number are one number.
 */

#define NGX_HTTP_CHAT_LOOKUP_HASH  16   /* hex digits of a number's hash */


/*
 * For one number looked up on a request's behalf (core's
 * ngx_http_chat_redis_eval()): the script, its key and its 3 args in
 * pool.  Its reply, as ngx_http_chat_rate_over() reads it: 0 within the
 * budget (counted), else the seconds until the day's end.
 */
extern const char  ngx_http_chat_op_lookup_script[];

ngx_int_t ngx_http_chat_op_lookup_one(ngx_pool_t *pool,
    const bson_oid_t *user, const char *e164, ngx_str_t *key,
    ngx_str_t *args);


/*
 * The short hash of a number (E.164) for user into out
 * (NGX_HTTP_CHAT_LOOKUP_HASH bytes): NGX_OK or NGX_ERROR.  Safe in any
 * thread: a sync hashes its thousands of numbers in the pool thread that
 * parses them.
 */
ngx_int_t ngx_http_chat_op_lookup_hash(const bson_oid_t *user,
    const char *e164, u_char *out);

/*
 * hashes: n hashes of numbers (above), one after another, counted on
 * nobody's behalf.  done(data, rc, retry, error): NGX_OK within the
 * budget, NGX_BUSY past it, nothing counted (retry: seconds until the
 * day's end), NGX_ERROR Redis failed (error says how).  Returns NGX_OK
 * (done() will be called, never before this returns) or NGX_ERROR (Redis
 * is not connected, no memory: done() is not called).
 */
typedef void (*ngx_http_chat_op_lookup_pt)(void *data, ngx_int_t rc,
    time_t retry, const char *error);

ngx_int_t ngx_http_chat_op_lookup(const bson_oid_t *user,
    const u_char *hashes, ngx_uint_t n, ngx_http_chat_op_lookup_pt done,
    void *data);


#endif /* _NGX_HTTP_CHAT_OP_LOOKUP_H_INCLUDED_ */
