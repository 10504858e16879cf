/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_CHAT_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_CHAT_H_INCLUDED_


#include "ngx_http_chat_op_store.h"
#include <bson/bson.h>


/*
 * Making a chat and my settings of one, transport-neutral: each takes the
 * user and the arguments as the client sent them, checks them, and starts
 * its store step as an operation (ngx_http_chat_op_store.h): its events
 * (chat_created, chat_updated) follow the commit whoever waits, its
 * outcome goes to done(), told with ngx_http_chat_op_tell().
 *
 * Each returns NGX_OK (started: done() will be called, detach it with
 * ngx_http_chat_op_store_detach()), NGX_ERROR (it could not start, done()
 * is not called), or, with nothing started, a refusal of the input,
 * NGX_DECLINED or NGX_ABORT as *refused says (ngx_http_chat_op.h).
 */

/* a private chat with {userId}: NGX_DONE it was there */
ngx_int_t ngx_http_chat_op_chat_private(const bson_oid_t *user, json_t *body,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused);
/* a group {name, memberIds, description?, avatar?} */
ngx_int_t ngx_http_chat_op_chat_group(const bson_oid_t *user, json_t *body,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused);
/* my settings of chat {muted?, mutedUntil?, archived?, pinned?} */
ngx_int_t ngx_http_chat_op_chat_settings(const bson_oid_t *user,
    const bson_oid_t *chat, json_t *body, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out,
    ngx_http_chat_op_refused_t *refused);


#endif /* _NGX_HTTP_CHAT_OP_CHAT_H_INCLUDED_ */
