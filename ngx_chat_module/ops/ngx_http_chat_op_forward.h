/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_FORWARD_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_FORWARD_H_INCLUDED_


#include "ngx_http_chat_op_store.h"
#include <bson/bson.h>


/*
 * A forward, transport-neutral: message id, as user may see it, copied
 * into each chat of chat_ids (1 to 10 ids, as the client sent them).  The
 * check of the source and of each chat is one store step, then each copy
 * is a send operation (its new_message follows its insert), one after
 * the other, all of them whoever waits.  A copy's tempId is
 * "fw<source><chat>", so a retry of the forward returns the copies made,
 * not new ones.
 *
 * done(): NGX_OK with {messages} when a copy was made, NGX_DONE when all
 * were made before (a retry), or the first refusal (a copy refused stops
 * the forward); told with ngx_http_chat_op_tell().  Returns as
 * ngx_http_chat_op_group_update() (ngx_http_chat_op_group.h).
 */

ngx_int_t ngx_http_chat_op_forward(const bson_oid_t *user,
    const bson_oid_t *id, json_t *chat_ids, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out,
    ngx_http_chat_op_refused_t *refused);


#endif /* _NGX_HTTP_CHAT_OP_FORWARD_H_INCLUDED_ */
