/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CHATS_API_H_INCLUDED_
#define _NGX_HTTP_CHAT_CHATS_API_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/* the route handlers under /api/chats/ and /api/messages/ */
ngx_int_t ngx_http_chat_chats_private(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_chats_group(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_chats_list(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_chats_ids(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_messages_send(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_messages_list(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_messages_get(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_chats_read(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_chats_delivered(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_messages_receipts(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_messages_edit(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_messages_delete(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_messages_react(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_messages_forward(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_chats_search(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_messages_search_all(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_chats_settings(ngx_http_request_t *r);
/* group administration */
ngx_int_t ngx_http_chat_chats_get(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_chats_update(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_members_add(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_members_remove(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_members_role(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_chats_leave(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_CHATS_API_H_INCLUDED_ */
