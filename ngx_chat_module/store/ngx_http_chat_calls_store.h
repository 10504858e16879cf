/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CALLS_STORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_CALLS_STORE_H_INCLUDED_


#include "ngx_http_chat_mongo.h"


/*
 * Calls in MongoDB, the record and the truth of a call's state: "calls"
 * {_id, chatId?, type, group, callerId, members: [userId], peers:
 * [{userId, state, sock, at}], status, live, startedAt, ringUntil,
 * answeredAt?, endedAt?, endedBy?, reason?, v}.  Every change reads the
 * call and writes it back under its version v (a compare and set, tried
 * again when another worker wrote in between), so two devices or two
 * workers acting at once end in one state and only the one that made a
 * change tells it.  "callfeedback" {_id: "<callId>:<userId>", callId,
 * userId, rating, issues, stats, createdAt}, one per participant.
 *
 * The *_run functions run in the thread pool and leave a JSON answer in
 * t->result ({"call"} with "$events", the events the change caused):
 * NGX_OK done, NGX_DECLINED no such call of mine (or user, or chat),
 * NGX_BUSY refused ({code, message}), NGX_ABORT a value refused ({field,
 * reason}), NGX_ERROR.
 */

#define NGX_HTTP_CHAT_CALL_PEERS_MAX    32
#define NGX_HTTP_CHAT_CALL_SIGNAL_MAX   (32 * 1024)   /* sdp, candidate */

#define NGX_HTTP_CHAT_CALL_INITIATE     0
#define NGX_HTTP_CHAT_CALL_ACCEPT       1
#define NGX_HTTP_CHAT_CALL_REJECT       2
#define NGX_HTTP_CHAT_CALL_CANCEL       3
#define NGX_HTTP_CHAT_CALL_END          4
#define NGX_HTTP_CHAT_CALL_SIGNAL       5
#define NGX_HTTP_CHAT_CALL_TIMEOUT      6   /* nobody answered in time */
#define NGX_HTTP_CHAT_CALL_DROP         7   /* a device went for good */
#define NGX_HTTP_CHAT_CALL_FEEDBACK     8
#define NGX_HTTP_CHAT_CALL_HISTORY      9
#define NGX_HTTP_CHAT_CALL_JOIN         10  /* a group call, running */
#define NGX_HTTP_CHAT_CALL_LEAVE        11


typedef struct {
    bson_oid_t    me;
    bson_oid_t    id;          /* the call; initiate: the new one's */
    bson_oid_t    target;      /* initiate: the user called; signal: to */
    bson_oid_t    chat;        /* initiate: the chat called */
    bson_oid_t    cursor;      /* history: what comes after */
    int64_t       cursor_ms;   /* history: ... and its startedAt */
    int64_t       ring;        /* initiate: ms it rings */
    ngx_uint_t    what;        /* NGX_HTTP_CHAT_CALL_* */
    ngx_uint_t    limit;       /* history: a page */
    ngx_uint_t    max_peers;   /* chat_call_max_participants */
    unsigned      has_target:1;
    unsigned      has_chat:1;
    unsigned      has_cursor:1;
    unsigned      video:1;
    char          sock[25];    /* the requester's socket, "" on REST */
    char          event[24];   /* signal: the event relayed */
    size_t        payload_len; /* signal, feedback: JSON after the struct */
} ngx_http_chat_call_arg_t;


/* starts a call: {call}; a callee in another call: the call is busy */
void ngx_http_chat_call_initiate_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* accept, reject, cancel, end, signal, timeout, drop, join, leave */
void ngx_http_chat_call_act_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* {items, nextCursor?}: my calls, newest first (startedAt, then _id) */
void ngx_http_chat_call_history_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* {feedback}: NGX_OK the first, NGX_DONE replaced */
void ngx_http_chat_call_feedback_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);


#endif /* _NGX_HTTP_CHAT_CALLS_STORE_H_INCLUDED_ */
