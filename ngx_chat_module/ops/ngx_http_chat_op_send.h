/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_SEND_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_SEND_H_INCLUDED_


#include "ngx_http_chat_op.h"
#include "../store/ngx_http_chat_chats_store.h"


/*
 * Storing a message, transport-neutral: a send, a forwarded copy, a
 * system message.  It takes a copy of its input, runs its steps (the
 * checks in MongoDB, a number from Redis, the insert) on nobody's behalf,
 * and gives its outcome to done().  What follows the commit (the
 * new_message event, the chat's activity) runs in the operation itself,
 * whether or not anybody still waits for the answer: a requester that
 * leaves calls detach() and loses only the answer.
 *
 * done() as every operation's (ngx_http_chat_op.h): NGX_OK stored,
 * NGX_DONE the tempId was stored before (that message), NGX_DECLINED no
 * such chat, NGX_BUSY not allowed there (or, with
 * NGX_HTTP_CHAT_OP_SEND_BUDGET, over the user's chat_send_rate:
 * {code "rate_limited", status 429, retryAfter}), NGX_ABORT a value refers
 * to nothing.
 */

typedef struct ngx_http_chat_op_send_s  ngx_http_chat_op_send_t;


#define NGX_HTTP_CHAT_OP_SEND_CHECK  0x01  /* may the sender send there */
#define NGX_HTTP_CHAT_OP_SEND_MARK   0x02  /* note the tempId in Redis */
#define NGX_HTTP_CHAT_OP_SEND_CACHE  0x04  /* remember who may send */
#define NGX_HTTP_CHAT_OP_SEND_BOUND  0x08  /* refused beyond the bound */
#define NGX_HTTP_CHAT_OP_SEND_FILTER 0x10  /* the site's message filter */
#define NGX_HTTP_CHAT_OP_SEND_BUDGET 0x20  /* counts in chat_send_rate */


/*
 * arg: size bytes, the content's JSON after the struct.  NGX_OK: started,
 * done() will be called, never before this returns; NGX_ERROR: it could
 * not start (a back end is down, no memory), done() is not called;
 * NGX_AGAIN (with NGX_HTTP_CHAT_OP_SEND_BOUND): the worker has
 * chat_send_max_pending sends in flight already, or its sends of late
 * took longer than chat_send_max_wait with a queue of them in flight;
 * nothing started (no number taken, nothing stored), done() is not
 * called: "overloaded".
 * Sends without the flag (forwarded copies, system messages) are counted
 * but never refused: they follow a commit or a copy already made.
 */
ngx_int_t ngx_http_chat_op_send(ngx_http_chat_msg_arg_t *arg, size_t size,
    ngx_uint_t flags, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_send_t **out);
/*
 * A message as a client sends it, {chatId, tempId, type, content,
 * replyTo?}, checked: NGX_DECLINED when it is not valid (*field and *err
 * say why, done() is not called), else as ngx_http_chat_op_send().
 */
ngx_int_t ngx_http_chat_op_send_message(const bson_oid_t *user, json_t *body,
    ngx_uint_t flags, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_send_t **out, const char **field, const char **err);
void ngx_http_chat_op_send_detach(ngx_http_chat_op_send_t *op);
/*
 * A chat made now has no message: its counter starts at 0, which spares
 * its first send the read of the highest stored number
 */
void ngx_http_chat_op_send_new_chat(const bson_oid_t *chat);

/* what never finished when the worker exits */
void ngx_http_chat_ops_exit_process(void);


#endif /* _NGX_HTTP_CHAT_OP_SEND_H_INCLUDED_ */
