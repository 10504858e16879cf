/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_STORY_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_STORY_H_INCLUDED_


#include "ngx_http_chat_op_store.h"


/*
 * Stories as operations: the checks of what was sent, then one store
 * step owned by the operation (ngx_http_chat_op_store.h), never by a
 * request.  Returns as ngx_http_chat_op_store(), or NGX_DECLINED /
 * NGX_ABORT with refused (ngx_http_chat_op.h).  The outcome: NGX_OK (a
 * new story, a first view), NGX_DONE (done, or done before), NGX_DECLINED
 * (no such story for me), NGX_BUSY (refused, {code, message}), NGX_ABORT
 * (a mediaId of nothing or of another type, {field, reason}).
 */

/* body {type, text, backgroundColor?, font?, mediaId, caption?, privacy?} */
ngx_int_t ngx_http_chat_op_story_create(const bson_oid_t *me, json_t *body,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused);

#define NGX_HTTP_CHAT_OP_STORY_DELETE  0
#define NGX_HTTP_CHAT_OP_STORY_VIEW    1
#define NGX_HTTP_CHAT_OP_STORY_REACT   2   /* body {emoji} */
#define NGX_HTTP_CHAT_OP_STORY_UNREACT 3

ngx_int_t ngx_http_chat_op_story(const bson_oid_t *me, const bson_oid_t *id,
    ngx_uint_t what, json_t *body, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out,
    ngx_http_chat_op_refused_t *refused);

/* the outcome told as on every transport: a missing story is a story */
void ngx_http_chat_op_story_tell(ngx_int_t rc, json_t *answer,
    ngx_uint_t created, ngx_http_chat_op_told_t *told);


#endif /* _NGX_HTTP_CHAT_OP_STORY_H_INCLUDED_ */
