/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_SELF_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_SELF_H_INCLUDED_


#include "ngx_http_chat_op.h"


/*
 * A user's own profile, {"user": {...}} as GET /api/users/profile answers
 * it (privacy included), for a socket's sign-in: from Redis, or read from
 * MongoDB and stored there.  done() gets NGX_OK and the answer, or what
 * the store said; never before this returns, always once.  NGX_ERROR: it
 * could not start, done() is not called.  text, if not NULL, gets the
 * answer's compact JSON as Redis holds it (ngx_alloc()ed, the caller's to
 * free) before done() is called with NGX_OK, when there is one: a hit's,
 * or a fill's; so a sign-in need not dump the profile again.
 */

ngx_int_t ngx_http_chat_op_self(ngx_str_t *user, ngx_str_t *text,
    ngx_http_chat_op_done_pt done, void *data);


#endif /* _NGX_HTTP_CHAT_OP_SELF_H_INCLUDED_ */
