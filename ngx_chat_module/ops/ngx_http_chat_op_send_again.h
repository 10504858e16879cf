/*
 * Copyright (C) ngx_chat_module authors
 *
 * A send's new_message, and once more for a retry whose first try may
 * have been stored without being published.
 */


#ifndef _NGX_HTTP_CHAT_OP_SEND_AGAIN_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_SEND_AGAIN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <bson/bson.h>
#include <jansson.h>


/* new_message of message (its chatId) from user: NGX_DECLINED no chatId */
ngx_int_t ngx_http_chat_op_send_publish(const bson_oid_t *user,
    json_t *message);
/* an insert of (user, temp_id) whose outcome is unknown: noted in Redis */
void ngx_http_chat_op_send_unsure(const bson_oid_t *user,
    const char *temp_id);
/* a retry found message stored: published if its first try was unsure */
void ngx_http_chat_op_send_again(const bson_oid_t *user, const char *temp_id,
    json_t *message);


#endif /* _NGX_HTTP_CHAT_OP_SEND_AGAIN_H_INCLUDED_ */
