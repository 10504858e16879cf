/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_MESSAGE_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_MESSAGE_H_INCLUDED_


#include "ngx_http_chat_op_store.h"
#include <bson/bson.h>


/*
 * The operations on a stored message and on a reader's markers,
 * transport-neutral: edit, delete, react, read and delivered.  Each takes
 * the user and plain arguments, checks them, and starts its store step as
 * an operation (ngx_http_chat_op_store.h): its events follow the commit
 * whoever waits, its outcome goes to done().
 *
 * Each returns NGX_OK (started: done() will be called, detach it with
 * ngx_http_chat_op_store_detach()), NGX_ERROR (it could not start, done()
 * is not called), or, with nothing started, a refusal of the input:
 * NGX_DECLINED, *field and *err say what is wrong (400 invalid_request),
 * or NGX_ABORT, a value refused, *field its code and *err the message
 * (422).
 */

/* edit my text message id: content as the client sent it */
ngx_int_t ngx_http_chat_op_edit(const bson_oid_t *user, const bson_oid_t *id,
    json_t *content, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, const char **field, const char **err);
/* delete message id for me, or for everyone */
ngx_int_t ngx_http_chat_op_delete(const bson_oid_t *user,
    const bson_oid_t *id, ngx_uint_t everyone, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out);
/* my reaction to message id: emoji as the client sent it */
ngx_int_t ngx_http_chat_op_react(const bson_oid_t *user, const bson_oid_t *id,
    json_t *emoji, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, const char **field, const char **err);
/* my read (and delivered) or delivered marker of chat up to up_to_seq */
ngx_int_t ngx_http_chat_op_marker(const bson_oid_t *user,
    const bson_oid_t *chat, json_t *up_to_seq, ngx_uint_t read,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, const char **field, const char **err);
/* the same up to message id (its chat and number found first) */
ngx_int_t ngx_http_chat_op_marker_at(const bson_oid_t *user,
    const bson_oid_t *id, ngx_uint_t read, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out);

/*
 * The outcome of an edit, a delete or a reaction, told as on every
 * transport: as ngx_http_chat_op_tell(), but NGX_BUSY is 403 forbidden
 * (not yours) and NGX_ABORT with {code, message} is 422 with them
 */
void ngx_http_chat_op_message_tell(ngx_int_t rc, json_t *answer,
    ngx_uint_t created, ngx_http_chat_op_told_t *told);

/* s (UTF-8) is one emoji of at most 8 code points (stories too) */
ngx_uint_t ngx_http_chat_emoji_valid(ngx_str_t *s);


#endif /* _NGX_HTTP_CHAT_OP_MESSAGE_H_INCLUDED_ */
