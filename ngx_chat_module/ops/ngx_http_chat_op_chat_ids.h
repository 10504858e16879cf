/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_CHAT_IDS_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_CHAT_IDS_H_INCLUDED_


#include "ngx_http_chat_op.h"


/*
 * The ids of the chats a user is in (GET /api/chats/ids, and every socket
 * that signs in or resyncs): the exact set Redis keeps, with no MongoDB
 * read, or all memberships read (and stored) when Redis has none.
 * done() gets NGX_DONE and {"items": [...]}, or NGX_ERROR and what
 * failed; never before this returns.  NGX_ERROR: it could not start,
 * done() is not called.  A requester that leaves calls detach() and
 * loses the answer.
 */

typedef struct ngx_http_chat_op_chat_ids_s  ngx_http_chat_op_chat_ids_t;


ngx_int_t ngx_http_chat_op_chat_ids(ngx_str_t *user,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_chat_ids_t **out);
void ngx_http_chat_op_chat_ids_detach(ngx_http_chat_op_chat_ids_t *op);


#endif /* _NGX_HTTP_CHAT_OP_CHAT_IDS_H_INCLUDED_ */
