/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CHATS_STORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_CHATS_STORE_H_INCLUDED_


#include "ngx_http_chat_mongo.h"
#include "ngx_http_chat_mongo_batch.h"


/*
 * Chats, memberships and messages in MongoDB.  Nothing read-modify-writes
 * a shared document: a membership is one document, a message is one
 * insert under the unique (chatId, seq) and (senderId, tempId) indexes.
 * The *_run functions leave a JSON answer in t->result (freed by
 * t->cleanup) and say what happened in t->rc:
 *
 *     NGX_OK        done (a chat or a message was created)
 *     NGX_DONE      it existed already: the existing one is in t->result
 *     NGX_DECLINED  no such chat, message or user, or not a member
 *     NGX_BUSY      blocked
 *     NGX_ABORT     an invalid value (t->result: the error's details)
 *     NGX_AGAIN     the sequence number was taken: t->reply {floor: n}
 *     NGX_ERROR     a database error, in t->error
 *
 * What a run() committed is said by the run() itself, never guessed from
 * the request: the answer may carry "$events", the events its commit
 * causes, built from the stored state (the marker as it is now, the
 * message as stored) and only when something changed.  The completion
 * publishes them and removes them before anything is answered
 * (ngx_http_chat_rt_publish_events).
 */

#define NGX_HTTP_CHAT_EVENTS_KEY    "$events"
/* what changed a read model without an event: [{chatId, userId, seq}] */
#define NGX_HTTP_CHAT_LIST_KEY      "$list"

#define NGX_HTTP_CHAT_TEMP_ID_MAX   64
#define NGX_HTTP_CHAT_EMOJI_MAX     8       /* code points */


typedef struct {
    bson_oid_t    user;
    bson_oid_t    other;           /* private: the other user */
    bson_oid_t    chat;            /* the new chat's id */
    bson_oid_t    cursor_id;
    int64_t       cursor_ms;
    ngx_uint_t    limit;
    unsigned      has_cursor:1;
    unsigned      has_description:1;
    unsigned      has_avatar:1;
    ngx_uint_t    nmembers;        /* group: the oids after the struct */
    char          name[100 * 4 + 1];
    char          description[500 * 4 + 1];
    char          avatar[512 * 4 + 1];
} ngx_http_chat_chats_arg_t;


typedef struct {
    bson_oid_t    user;
    bson_oid_t    chat;
    bson_oid_t    id;              /* the new message's, or the one asked */
    bson_oid_t    reply_to;
    bson_oid_t    fwd_id;          /* forwarded from this message */
    bson_oid_t    fwd_chat;        /* ... of this chat */
    bson_oid_t    cursor_id;       /* search in all my chats: the cursor */
    int64_t       cursor_ms;
    int64_t       seq;             /* the number taken in Redis */
    int64_t       before;
    int64_t       after;
    int64_t       window;          /* edit or delete: ms after createdAt */
    ngx_uint_t    limit;
    unsigned      has_reply:1;
    unsigned      has_before:1;
    unsigned      has_after:1;
    unsigned      read:1;          /* a marker: read (or delivered) */
    unsigned      everyone:1;      /* delete for everyone (or for me) */
    unsigned      forwarded:1;
    unsigned      allowed:1;       /* send: known to be allowed already */
    unsigned      lookup:1;        /* send: its tempId may be stored */
    unsigned      all:1;           /* search: all my chats */
    unsigned      has_cursor:1;
    unsigned      set_mute:1;      /* settings: before = mutedUntil ms */
    unsigned      mute_forever:1;  /* ... or forever */
    unsigned      unmute:1;
    unsigned      set_archived:1;
    unsigned      archived:1;
    unsigned      set_pinned:1;
    unsigned      pinned:1;
    char          temp_id[NGX_HTTP_CHAT_TEMP_ID_MAX + 1];
    char          type[16];
    size_t        content_len;     /* the content as JSON after the struct */
    ngx_uint_t    nmentions;       /* their oids after the content's NUL */
} ngx_http_chat_msg_arg_t;


/* the group administration operations */
#define NGX_HTTP_CHAT_GROUP_GET      0
#define NGX_HTTP_CHAT_GROUP_UPDATE   1
#define NGX_HTTP_CHAT_GROUP_ADD      2
#define NGX_HTTP_CHAT_GROUP_REMOVE   3
#define NGX_HTTP_CHAT_GROUP_ROLE     4
#define NGX_HTTP_CHAT_GROUP_LEAVE    5


typedef struct {
    bson_oid_t    user;            /* who acts */
    bson_oid_t    chat;
    bson_oid_t    target;          /* remove, role: the member */
    ngx_uint_t    op;
    ngx_uint_t    max_size;        /* chat_group_max_size */
    ngx_uint_t    nusers;          /* add: the oids after the struct */
    unsigned      admin:1;         /* role: admin, or member */
    unsigned      set_name:1;
    unsigned      set_description:1;   /* "" removes it */
    unsigned      set_avatar:1;        /* "" removes it */
    unsigned      set_only_send:1;
    unsigned      only_send:1;
    unsigned      set_only_edit:1;
    unsigned      only_edit:1;
    char          name[100 * 4 + 1];
    char          description[500 * 4 + 1];
    char          avatar[25];
} ngx_http_chat_group_arg_t;


void ngx_http_chat_chat_private_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_chat_group_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_chat_ids_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * GET /api/chats from the read model (store/ngx_http_chat_list_store.c):
 * page_run reads the page (t->result {items: [{id, ..., readSeq,
 * settings}], nextCursor?}); rebuild_run reads the chats Redis missed
 * (the misses after the struct, then the chat list's facts this worker
 * has not stored yet, ngx_http_chat_list_facts.h): {rows: {id: chat},
 * fills: [...]}
 */
typedef struct {
    bson_oid_t    chat;
    int64_t       read_seq;
    char          gen[32];         /* "": Redis gave none, nothing kept */
} ngx_http_chat_list_miss_t;

typedef struct {
    bson_oid_t    user;
    ngx_uint_t    n;
    ngx_uint_t    nfacts;          /* after the misses: not stored yet */
} ngx_http_chat_list_arg_t;

void ngx_http_chat_chat_page_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_chat_rebuild_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * GET /api/chats/:id (a ngx_http_chat_group_arg_t): NGX_DECLINED not a
 * member; NGX_DONE with {chat: with every member, without lastMessage and
 * unreadCount, which the chat list's model gives, readSeq}
 */
void ngx_http_chat_chat_get_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);

/*
 * a chat's activity (ops/ngx_http_chat_op_activity.c): its highest seq
 * and the time of its latest message, $max'ed into the chat's lastSeq
 * and updatedAt; the n entries after the struct
 */
typedef struct {
    bson_oid_t    chat;
    int64_t       seq;
    int64_t       ms;
    ngx_uint_t    tries;           /* flushes that failed it so far */
    ngx_uint_t    failed;          /* set by the run: not stored */
} ngx_http_chat_activity_t;

typedef struct {
    ngx_uint_t    n;
} ngx_http_chat_activity_arg_t;

void ngx_http_chat_chat_activity_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);

/* membership, replyTo and (with lookup) an earlier send of tempId */
void ngx_http_chat_msg_prepare_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* t->reply {floor: the highest stored seq of the chat, 0 if none} */
void ngx_http_chat_msg_floor_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* inserts the message at arg->seq */
void ngx_http_chat_msg_tombstone_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_msg_insert_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * posts a task of ngx_http_chat_msg_insert_run(): in one insert with the
 * worker's other messages that wait for the store (a group commit); on
 * NGX_ERROR the task is freed
 */
ngx_int_t ngx_http_chat_msg_insert_post(ngx_http_chat_mongo_task_t *t);
void ngx_http_chat_msg_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_msg_get_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * moves my read (and delivered) or delivered marker forward to arg->seq,
 * clamped to the chat's highest seq: NGX_DONE with the markers
 */
void ngx_http_chat_msg_marker_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * edits my text message arg->id: NGX_DONE with it, NGX_BUSY not mine,
 * NGX_ABORT with {code, message} not text or too late
 */
void ngx_http_chat_msg_edit_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * deletes message arg->id for me, or for everyone (arg->everyone: the
 * sender or a group admin, within the window): NGX_DONE, NGX_BUSY not
 * allowed, NGX_ABORT with {code, message} too late
 */
void ngx_http_chat_msg_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * my reaction arg->type (the emoji, after the struct) to message arg->id:
 * set, changed, or removed when it is the same: NGX_DONE with the message
 */
void ngx_http_chat_msg_react_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * before forwarding message arg->id to the arg->limit chats after the
 * struct: each must be mine and open to me (NGX_DECLINED, NGX_BUSY);
 * NGX_OK with {type, content, chatId} of the message
 */
void ngx_http_chat_msg_forward_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * text messages of arg->chat (or all my chats) whose content matches the
 * regex after the struct (escaped), case-insensitively, newest first
 */
void ngx_http_chat_msg_search_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* my settings of chat arg->chat: NGX_DONE with {"settings"} */
void ngx_http_chat_chat_settings_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * Group administration, op in the argument: NGX_DONE with {"chat"} (or
 * {"success"} after leaving) and, when something changed, "system": the
 * content of the system message the handler sends through the sequence
 * path; NGX_DECLINED not a member (or no such member), NGX_BUSY with
 * {code, message} not allowed, NGX_ABORT with {code, message, details?}
 */
void ngx_http_chat_group_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* who got and read message arg->id: NGX_DONE with the receipts */
void ngx_http_chat_msg_receipts_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);


#endif /* _NGX_HTTP_CHAT_CHATS_STORE_H_INCLUDED_ */
