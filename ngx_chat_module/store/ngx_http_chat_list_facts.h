/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_LIST_FACTS_H_INCLUDED_
#define _NGX_HTTP_CHAT_LIST_FACTS_H_INCLUDED_


#include "ngx_http_chat_mongo.h"


/*
 * What the chat list's Redis sets hold, kept in MongoDB too, so that a
 * rebuild after a Redis loss counts a chat's unread from a few small
 * reads whatever its backlog (README, "My chats as a read model").
 * Collection "listx", one document a fact, inserted once (a duplicate is
 * the same fact): {_id, of, k, seq}, "of" the set it belongs to:
 *
 *   "<chat>:v<seq>"         of "<chat>"          a number for nobody
 *   "<chat>:<user>:o<seq>"  of "<chat>:<user>"   my own message
 *   "<chat>:<user>:h<seq>"  of "<chat>:<user>"   deleted for me
 *   "<chat>:<user>:m<seq>"  of "<chat>:<user>"   a message mentioning me
 *   "<chat>:b", "<chat>:<user>:b"  (seq 0)       the set is complete
 *
 * A member's own, hidden and mention facts are deleted as their readSeq
 * passes; a sender's readSeq is settled over their own numbers, and a
 * chat's voids swept (ngx_http_chat_list_compact.h).
 */

#define NGX_HTTP_CHAT_LIST_FACTS       "listx"
#define NGX_HTTP_CHAT_LIST_FACTS_MAX   4096    /* waiting, a worker */


typedef struct {
    char       chat[25];
    char       user[25];               /* "": a fact of the chat */
    u_char     kind;                   /* 'v' 'o' 'h' 'm' 'b'; 't' trim,
                                          's' settle */
    int64_t    seq;                    /* trim: up to this readSeq;
                                          settle: at most up to this */
} ngx_http_chat_list_fact_t;

typedef void (*ngx_http_chat_list_fact_pt)(
    const ngx_http_chat_list_fact_t *f);
/* in a thread: what a settle does (ngx_http_chat_list_compact.h) */
typedef ngx_int_t (*ngx_http_chat_list_settle_pt)(mongoc_database_t *db,
    const char *chat, const char *user, int64_t upto, bson_error_t *error);


/*
 * On the event loop, after a commit: the fact is written by a batch of
 * the worker's; written() runs for it once it is stored
 */
void ngx_http_chat_list_facts_add(const char *chat, const char *user,
    u_char kind, int64_t seq, ngx_http_chat_list_fact_pt written);

/*
 * On the event loop: settle() runs for user in chat, up to upto, in the
 * batch that stores the facts queued before it (after their insert)
 */
void ngx_http_chat_list_facts_settle(const char *chat, const char *user,
    int64_t upto, ngx_http_chat_list_settle_pt settle);

/*
 * On the event loop: copies to out (up to max) the facts of chat and of
 * user in it that this worker has not stored yet; their number (all of
 * them, also past max)
 */
ngx_uint_t ngx_http_chat_list_facts_pending(const char *chat,
    const char *user, ngx_http_chat_list_fact_t *out, ngx_uint_t max);

/* in a thread: inserts n facts (duplicates are fine) */
ngx_int_t ngx_http_chat_list_facts_insert(mongoc_database_t *db,
    const ngx_http_chat_list_fact_t *f, size_t n, bson_error_t *error);

/*
 * in a thread: the facts of chat and of user's set in it, one read:
 * numbers appended to sets[0] voids, [1] own, [2] hidden, [3] mentions
 * (all but voids only above read_seq); *chat_built and *user_built say
 * whether each set is marked complete; *stale whether facts at or below
 * read_seq are left
 */
ngx_int_t ngx_http_chat_list_facts_read(mongoc_database_t *db,
    const char *chat, const char *user, int64_t read_seq, json_t **sets,
    ngx_uint_t *chat_built, ngx_uint_t *user_built, ngx_uint_t *stale,
    bson_error_t *error);

/*
 * in a thread: marks the set of chat (user NULL), or of user in it,
 * complete: a chat just created, a member just added (best effort: an
 * unmarked set is read once from the messages)
 */
void ngx_http_chat_list_facts_mark(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_oid_t *user);

/*
 * in a thread: NGX_OK when seq counts nothing for user in chat (a void,
 * or a fact of user's own or hidden number), NGX_DECLINED when it does
 * (or its fact is not stored yet): one read by _id, whatever the backlog
 */
ngx_int_t ngx_http_chat_list_facts_skips(mongoc_database_t *db,
    const char *chat, const char *user, int64_t seq, bson_error_t *error);

/* in a thread: deletes user's facts of chat at or below read_seq */
ngx_int_t ngx_http_chat_list_facts_trim(mongoc_database_t *db,
    const char *chat, const char *user, int64_t read_seq,
    bson_error_t *error);


#endif /* _NGX_HTTP_CHAT_LIST_FACTS_H_INCLUDED_ */
