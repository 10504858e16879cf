/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_CHAT_LIST_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_CHAT_LIST_H_INCLUDED_


#include "ngx_http_chat_op.h"
#include "../store/ngx_http_chat_chats_store.h"


/*
 * A page of my chats (GET /api/chats): two MongoDB reads (the page), then
 * one Redis script (each chat's summary, last message and unread count
 * from the read model), then MongoDB again only for the chats Redis
 * missed, whose keys are rebuilt.  done() gets NGX_OK and {items,
 * nextCursor?}, or NGX_ERROR and what failed; never before this returns.
 * NGX_ERROR: it could not start, done() is not called.  A requester that
 * leaves calls detach() and loses the answer.
 */

typedef struct ngx_http_chat_op_chat_list_s  ngx_http_chat_op_chat_list_t;


ngx_int_t ngx_http_chat_op_chat_list(ngx_http_chat_chats_arg_t *arg,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_chat_list_t **out);
/*
 * GET /api/chats/:id as a page of one: the chat with every member from
 * MongoDB (my membership, the chat), its lastMessage and unreadCount
 * those of its row in my chats.  done() gets NGX_DONE and {chat},
 * NGX_DECLINED not a member (or no such chat), or NGX_ERROR; detach() as
 * above.
 */
ngx_int_t ngx_http_chat_op_chat_get(ngx_http_chat_group_arg_t *arg,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_chat_list_t **out);
void ngx_http_chat_op_chat_list_detach(ngx_http_chat_op_chat_list_t *op);


#endif /* _NGX_HTTP_CHAT_OP_CHAT_LIST_H_INCLUDED_ */
