/*
 * Copyright (C) ngx_chat_module authors
 *
 * What the chat and message stores share among themselves: not for the
 * handlers, which see ngx_http_chat_chats_store.h only.  All of these
 * run in the thread pool.
 */


#ifndef _NGX_HTTP_CHAT_CHATS_STORE_INT_H_INCLUDED_
#define _NGX_HTTP_CHAT_CHATS_STORE_INT_H_INCLUDED_


#include "ngx_http_chat_chats_store.h"
#include "ngx_http_chat_users.h"


/* a tombstone at seq: NGX_OK, NGX_DECLINED the number holds one already */
ngx_int_t ngx_http_chat_msg_tombstone_insert(mongoc_collection_t *messages,
    const bson_oid_t *chat, int64_t seq, int64_t now, bson_error_t *error);
/*
 * a forward read's holes (ngx_http_chat_msg_holes.c): see() each document
 * read, in order, then settle() once with the read's filter: through >= 0
 * when a young hole, a message stored after the read, or a gap it did not
 * look at, stops what the read may say it covered
 */
#define NGX_HTTP_CHAT_HOLES_MAX    16      /* gaps one read looks at */
#define NGX_HTTP_CHAT_HOLES_SPAN   512     /* numbers in them, at most */

typedef struct {
    int64_t     from;
    int64_t     to;
    int64_t     created;        /* of the message above the gap */
} ngx_http_chat_msg_gap_t;

typedef struct {
    int64_t                  next;
    int64_t                  through;
    int64_t                  cut;
    size_t                   numbers;
    ngx_uint_t               ngaps;
    ngx_http_chat_msg_gap_t  gaps[NGX_HTTP_CHAT_HOLES_MAX];
} ngx_http_chat_msg_holes_t;

void ngx_http_chat_msg_holes_init(ngx_http_chat_msg_holes_t *h,
    int64_t after);
void ngx_http_chat_msg_holes_see(ngx_http_chat_msg_holes_t *h,
    const bson_t *doc);
ngx_int_t ngx_http_chat_msg_holes_settle(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_t *read, ngx_http_chat_msg_holes_t *h,
    ngx_log_t *log, bson_error_t *error);


/* common: errors, times, answers, values */

/* a unique-index violation (of index, when not NULL) */
ngx_uint_t ngx_http_chat_chats_is_dup(bson_error_t *error,
    const char *index);
int64_t ngx_http_chat_chats_now(void);
/* the task's answer: json becomes t->result, freed by t->cleanup */
void ngx_http_chat_chats_answer(ngx_http_chat_mongo_task_t *t, ngx_int_t rc,
    json_t *json);
json_t *ngx_http_chat_chats_oid_json(const bson_oid_t *oid);

/*
 * a chat as the API shows it to user (NULL: to every member), with up to
 * member_limit ids (0: all); how says what it reads of the messages:
 * COUNTED the last message and the unread count and mentions, exactly;
 * EXACT the last message only, the caller counts the unread exactly (the
 * chat list's rebuild, from its facts); BARE neither, the caller takes
 * both from the chat list's read model (GET /api/chats/:id)
 */
#define NGX_HTTP_CHAT_CHAT_COUNTED  0
#define NGX_HTTP_CHAT_CHAT_EXACT    1
#define NGX_HTTP_CHAT_CHAT_BARE     2

json_t *ngx_http_chat_chat_json(mongoc_database_t *db, const bson_t *chat,
    const bson_oid_t *user, ngx_uint_t member_limit, ngx_uint_t how,
    bson_error_t *error);
/* c's unreadCount and unreadMentions for user, exactly, as a rebuild of
 * the chat list counts them (ngx_http_chat_list_sets.c) */
ngx_int_t ngx_http_chat_chat_counts(mongoc_database_t *db,
    const bson_t *chat, const bson_oid_t *chat_id, const bson_oid_t *user,
    int64_t read_seq, json_t *c, bson_error_t *error);
/* its own fields only; my settings of a membership */
json_t *ngx_http_chat_chat_base_json(const bson_t *chat,
    const bson_oid_t *chat_id);
json_t *ngx_http_chat_chat_settings_json(const bson_t *member, int64_t now);
/*
 * an event of what run() committed, to the channel kind ("chat:",
 * "user:") of id, with the fan-out's flag ('-' all, 'x' not to origin's
 * own sockets, 'l' then leave chat): data is taken; NGX_ERROR on no memory
 */
ngx_int_t ngx_http_chat_chats_event(json_t *answer, const char *kind,
    const bson_oid_t *id, u_char flag, const bson_oid_t *origin,
    const bson_oid_t *chat, const char *event, json_t *data);
/* NGX_OK when a document of coll matches, NGX_DECLINED, NGX_ERROR */
ngx_int_t ngx_http_chat_chats_exists(mongoc_database_t *db,
    const char *coll, const bson_t *filter, bson_error_t *error);
/* one update_one on coll: NGX_OK (also when nothing matched), NGX_ERROR */
ngx_int_t ngx_http_chat_chats_update_one(mongoc_database_t *db,
    const char *coll, const bson_t *filter, const bson_t *update,
    bson_error_t *error);
/* the same: NGX_OK when it matched, NGX_DECLINED when nothing did */
ngx_int_t ngx_http_chat_chats_update_changed(mongoc_database_t *db,
    const char *coll, const bson_t *filter, const bson_t *update,
    bson_error_t *error);
/* "<chat>:<user>" or "<chat>:<field>", the _id of what is keyed by them */
#define NGX_HTTP_CHAT_KEY_LEN  (24 + 1 + 24)
void ngx_http_chat_chats_key(char *buf, const bson_oid_t *chat,
    const bson_oid_t *user, const char *field);
/* appends the _id of user's membership of chat */
void ngx_http_chat_chats_member_id(bson_t *b, const bson_oid_t *chat,
    const bson_oid_t *user);
/* a number field, 0 when absent */
int64_t ngx_http_chat_chats_int(const bson_t *doc, const char *key);
json_t *ngx_http_chat_chats_value_json(bson_iter_t *it);
void ngx_http_chat_chats_append_json(bson_t *b, const char *key, json_t *v);
ngx_uint_t ngx_http_chat_msg_is(const bson_t *doc, const char *key,
    const char *value);
ngx_uint_t ngx_http_chat_msg_sent_by(const bson_t *doc,
    const bson_oid_t *user);
ngx_uint_t ngx_http_chat_msg_mentions(const bson_t *doc,
    const bson_oid_t *user);
/* a date field in ms, 0 when absent */
int64_t ngx_http_chat_msg_time(const bson_t *doc, const char *key);
/*
 * appends key: {op: [...]}, the ids in field of coll's documents of user
 * (and of chat, if not NULL); an empty "$nin" is left out
 */
ngx_int_t ngx_http_chat_chats_ids_filter(mongoc_database_t *db,
    const char *coll, const bson_oid_t *user, const bson_oid_t *chat,
    const char *field, bson_t *filter, const char *key, const char *op,
    bson_error_t *error);
/* keyset pages by (field, _id) descending: what follows "<ms>.<id>" */
void ngx_http_chat_chats_after_cursor(bson_t *filter, const char *field,
    int64_t ms, const bson_oid_t *id);
void ngx_http_chat_chats_next_cursor(json_t *answer, int64_t ms,
    const bson_oid_t *last);


/* chats and memberships */

/* a cursor over user's memberships, with opts (a projection) or NULL */
mongoc_cursor_t *ngx_http_chat_chats_memberships(mongoc_database_t *db,
    const bson_oid_t *user, const bson_t *opts);

/* NGX_OK with the membership in out, NGX_DECLINED, NGX_ERROR */
ngx_int_t ngx_http_chat_chats_member(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_oid_t *user, bson_t *out,
    bson_error_t *error);
/* the same without the document */
ngx_int_t ngx_http_chat_chats_is_member(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_oid_t *user, bson_error_t *error);
/*
 * inserts a membership with its markers at seq, and peer, the other of a
 * private chat (NULL in a group); an existing one is fine
 */
ngx_int_t ngx_http_chat_chats_add_member(mongoc_database_t *db,
    mongoc_collection_t *members, const bson_oid_t *chat,
    const bson_oid_t *user, const bson_oid_t *peer, int64_t now, int64_t seq,
    bson_error_t *error);
/* {"chat": {...}} of chat id as user sees it, with every member */
json_t *ngx_http_chat_chat_answer(mongoc_database_t *db, const bson_oid_t *id,
    const bson_oid_t *user, bson_error_t *error);
/*
 * chat id as every member sees it, what an event to many carries: without
 * the requester's own fields (role, settings, markers, unread count)
 */
json_t *ngx_http_chat_chat_shared(mongoc_database_t *db, const bson_oid_t *id,
    bson_error_t *error);
/*
 * the event of a chat that user joined (chat_created, their sockets join
 * it: 'j') or left (chat_removed, they leave it: 'l'), or that changed for
 * all (chat_updated, user NULL), with the shared chat: NGX_ERROR no memory
 */
ngx_int_t ngx_http_chat_chat_event(json_t *answer, const char *event,
    const bson_oid_t *chat, const bson_oid_t *user, const bson_oid_t *actor,
    json_t *shared);
/* NGX_OK when one of the two blocked the other, NGX_DECLINED if not */
ngx_int_t ngx_http_chat_chats_blocked(mongoc_database_t *db,
    const bson_oid_t *x, const bson_oid_t *y, bson_error_t *error);
/* the other member of a private chat; NGX_DECLINED in a group */
ngx_int_t ngx_http_chat_chats_private_peer(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_oid_t *user, bson_oid_t *peer,
    bson_error_t *error);


/* messages */

/* a message document as the API shows it; full: with its edit history */
json_t *ngx_http_chat_msg_json(const bson_t *doc, ngx_uint_t full);
/* {"message": {...}} */
json_t *ngx_http_chat_msg_answer(const bson_t *doc);
/*
 * appends _id: {$nin: [...]} of what user deleted for themselves in chat
 * (in any chat when chat is NULL), if anything
 */
ngx_int_t ngx_http_chat_msg_hidden_nin(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_oid_t *user, bson_t *filter,
    bson_error_t *error);
/* NGX_OK when user did not delete message id for themselves */
ngx_int_t ngx_http_chat_msg_hidden(mongoc_database_t *db,
    const bson_oid_t *id, const bson_oid_t *user, bson_error_t *error);
/* the last message matching filter: by seq windows near the chat's
 * lastSeq, else by a scan (ngx_http_chat_msg_window.c); NGX_DECLINED none */
ngx_int_t ngx_http_chat_msg_last(mongoc_database_t *db, const bson_t *filter,
    int64_t last_seq, bson_t *msg, bson_error_t *error);
/* a marker's bound: want if the chat holds it, else its last number */
ngx_int_t ngx_http_chat_msg_bound(mongoc_database_t *db,
    const bson_oid_t *chat, int64_t want, int64_t *bound,
    bson_error_t *error);
/* the chat document's lastSeq (behind by what is not yet written), 0 */
ngx_int_t ngx_http_chat_msg_last_seq(mongoc_database_t *db,
    const bson_oid_t *chat, int64_t *last_seq, bson_error_t *error);
/* the highest stored seq of a chat, 0 if none (reads the whole chat on
 * FerretDB: after a Redis loss, and for a group's new members) */
ngx_int_t ngx_http_chat_msg_floor(mongoc_database_t *db,
    const bson_oid_t *chat, int64_t *floor, bson_error_t *error);
/* message a->id of a chat a->user is in (a->chat is set from it) */
ngx_int_t ngx_http_chat_msg_mine_to_see(mongoc_database_t *db,
    ngx_http_chat_msg_arg_t *a, bson_t *doc, bson_error_t *error);
/* {"message"} with its reactions */
json_t *ngx_http_chat_msg_answer_reactions(mongoc_database_t *db,
    const bson_t *doc, const bson_oid_t *id, const bson_oid_t *user,
    bson_error_t *error);


/* groups: admins, info, who may send and add */

/* {code, message} of a refusal */
json_t *ngx_http_chat_group_error(const char *code, const char *message);
ngx_int_t ngx_http_chat_group_own_media(mongoc_database_t *db,
    const bson_oid_t *user, const char *id, json_t **why,
    bson_error_t *error);
ngx_int_t ngx_http_chat_group_is_admin(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_oid_t *user, bson_error_t *error);
ngx_int_t ngx_http_chat_group_set_admin(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_oid_t *user, ngx_uint_t on,
    bson_error_t *error);
/* the admins' ids, oldest first */
json_t *ngx_http_chat_group_admins(mongoc_database_t *db,
    const bson_oid_t *chat, bson_error_t *error);
/* sets the edited info and the permissions on a chat's JSON */
ngx_int_t ngx_http_chat_group_info_json(mongoc_database_t *db,
    const bson_oid_t *chat, json_t *c, bson_error_t *error);
/* NGX_OK, or NGX_BUSY with *why when only admins may send */
ngx_int_t ngx_http_chat_group_may_send(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_oid_t *user, json_t **why,
    bson_error_t *error);
/* NGX_OK, NGX_BUSY blocked, NGX_DECLINED by privacy, NGX_ERROR */
ngx_int_t ngx_http_chat_group_may_add(mongoc_database_t *db,
    const bson_oid_t *adder, const bson_oid_t *user, bson_error_t *error);
/* NGX_OK when adder may add all n, or NGX_BUSY with *why naming the rest */
ngx_int_t ngx_http_chat_group_check_adds(mongoc_database_t *db,
    const bson_oid_t *adder, const bson_oid_t *ids, ngx_uint_t n,
    json_t **why, bson_error_t *error);
/* NGX_OK when all n are users, or NGX_ABORT with *unknown */
ngx_int_t ngx_http_chat_group_unknown_users(mongoc_database_t *db,
    const bson_oid_t *ids, ngx_uint_t n, json_t **unknown,
    bson_error_t *error);


#endif /* _NGX_HTTP_CHAT_CHATS_STORE_INT_H_INCLUDED_ */
