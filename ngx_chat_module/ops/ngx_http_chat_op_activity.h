/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_ACTIVITY_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_ACTIVITY_H_INCLUDED_


#include "ngx_http_chat_op.h"
#include "../store/ngx_http_chat_chats_store.h"


/*
 * A chat's activity (its updatedAt, which orders the chat list, and its
 * lastSeq) after a message is stored, coalesced per worker: a table of
 * chat -> highest seq and latest time, flushed as one MongoDB task with
 * one update a chat.  A flush starts at once when none is in flight;
 * what is stored meanwhile waits for it to end, and a chat written less
 * than a second ago waits for the rest of that second, so a busy chat
 * costs one update a second.  Pending or flushing activity
 * holds an exiting worker.  A chat whose update fails is tried once more
 * by the next flush, then logged.
 */
void ngx_http_chat_op_activity_add(const bson_oid_t *chat, int64_t seq);
void ngx_http_chat_op_activity_exit_process(void);


#endif /* _NGX_HTTP_CHAT_OP_ACTIVITY_H_INCLUDED_ */
