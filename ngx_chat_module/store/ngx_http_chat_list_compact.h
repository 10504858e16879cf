/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_LIST_COMPACT_H_INCLUDED_
#define _NGX_HTTP_CHAT_LIST_COMPACT_H_INCLUDED_


#include "ngx_http_chat_mongo.h"
#include <jansson.h>


/*
 * What keeps the chat list's facts (ngx_http_chat_list_facts.h) bounded
 * besides a read's trim (README, "My chats as a read model"): a sender's
 * own facts settled, a chat's voids swept.
 */

/* a member's own new messages in a chat between two settles */
#define NGX_HTTP_CHAT_LIST_SETTLE    64
#define NGX_HTTP_CHAT_LIST_SETTLE_S  "64"

/* a rebuild that reads this many voids at or below my readSeq sweeps */
#define NGX_HTTP_CHAT_LIST_SWEEP     16


/*
 * in a thread: user's readSeq of chat moved, silently, over the numbers
 * right after it that do not count for them (their own, void, deleted
 * for them), as far as upto, and their facts up to it trimmed: what a
 * read would do, with no number of another's message passed
 */
ngx_int_t ngx_http_chat_list_settle(mongoc_database_t *db, const char *chat,
    const char *user, int64_t upto, bson_error_t *error);

/*
 * in a thread, best effort: when voids (the chat's, as a rebuild read
 * them) hold NGX_HTTP_CHAT_LIST_SWEEP or more at or below read_seq, the
 * void facts at or below every member's readSeq are deleted
 */
void ngx_http_chat_list_sweep(mongoc_database_t *db,
    const bson_oid_t *chat_id, json_t *voids, int64_t read_seq);


#endif /* _NGX_HTTP_CHAT_LIST_COMPACT_H_INCLUDED_ */
