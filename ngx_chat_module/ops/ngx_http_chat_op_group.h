/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_GROUP_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_GROUP_H_INCLUDED_


#include "ngx_http_chat_op_store.h"
#include <bson/bson.h>


/*
 * Group administration, transport-neutral: a change of the group's info,
 * members added, a member removed, a role, my leaving.  Each takes the
 * user, the chat and the arguments as the client sent them, checks them,
 * and runs as an operation, whoever waits: the store's change (the send
 * cache of the worker cleared, as it changes who may send where), then,
 * when it changed something, its system message through the send
 * operation (a number from Redis, the insert, new_message), then the
 * events the store said its change caused (chat_created, chat_removed,
 * chat_updated), in that order: those removed or gone see the system
 * message first.  The outcome goes to done(), the system message in the
 * answer's "message"; told with ngx_http_chat_op_group_tell().
 *
 * Each returns NGX_OK (started: done() will be called, detach it with
 * ngx_http_chat_op_store_detach()), NGX_ERROR (it could not start, done()
 * is not called), or, with nothing started, NGX_DECLINED, the input
 * refused as *refused says (ngx_http_chat_op.h).
 */

/* {name?, description?, avatar?, onlyAdminsCanSend?,
 * onlyAdminsCanEditInfo?}: description and avatar removed by null or "" */
ngx_int_t ngx_http_chat_op_group_update(const bson_oid_t *user,
    const bson_oid_t *chat, json_t *body, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out,
    ngx_http_chat_op_refused_t *refused);
/* user_ids: an array of ids */
ngx_int_t ngx_http_chat_op_group_add(const bson_oid_t *user,
    const bson_oid_t *chat, json_t *user_ids, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out,
    ngx_http_chat_op_refused_t *refused);
ngx_int_t ngx_http_chat_op_group_remove(const bson_oid_t *user,
    const bson_oid_t *chat, const bson_oid_t *member,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out);
/* role: "admin" or "member" */
ngx_int_t ngx_http_chat_op_group_role(const bson_oid_t *user,
    const bson_oid_t *chat, const bson_oid_t *member, json_t *role,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused);
ngx_int_t ngx_http_chat_op_group_leave(const bson_oid_t *user,
    const bson_oid_t *chat, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out);

/*
 * The outcome of a group change (or of reading a group), told as on
 * every transport: as ngx_http_chat_op_tell(), but NGX_BUSY is 403
 * forbidden and NGX_ABORT 422 invalid_value, each with the store's
 * {code, message, details?} when it gave them
 */
void ngx_http_chat_op_group_tell(ngx_int_t rc, json_t *answer,
    ngx_uint_t created, ngx_http_chat_op_told_t *told);


#endif /* _NGX_HTTP_CHAT_OP_GROUP_H_INCLUDED_ */
