/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_USERS_H_INCLUDED_
#define _NGX_HTTP_CHAT_USERS_H_INCLUDED_


#include "ngx_http_chat_mongo.h"


/*
 * Users and sessions in MongoDB.  The *_run functions execute in the
 * thread pool with their argument struct copied into the task; they leave
 * their result in t->reply and t->rc.
 */

/* a user's privacy settings, by their key in the user document */
#define NGX_HTTP_CHAT_PRIVACY_N  7

extern const char  *ngx_http_chat_privacy_keys[NGX_HTTP_CHAT_PRIVACY_N];


typedef struct {
    bson_oid_t    user_id;
    bson_oid_t    session_id;
    char          phone[24];
    char          device[128 * 4 + 1];   /* 128 characters of UTF-8 */
    char          ip[64];
    char          cur[65];        /* SHA-256 of the refresh token, hex */
    int64_t       expires_at;     /* ms: the session ends idle then */
} ngx_http_chat_login_arg_t;


/* NGX_HTTP_CHAT_SESSION_USED: the rotated-away hashes a session keeps */
#define NGX_HTTP_CHAT_SESSION_USED  32

typedef struct {
    bson_oid_t    session_id;
    char          presented[65];  /* hash of the token presented */
    char          next[65];       /* hash of the token that replaces it */
    int64_t       ttl;            /* ms: the refresh token's idle life */
} ngx_http_chat_rotate_arg_t;

typedef struct ngx_http_chat_user_arg_s {
    bson_oid_t    user_id;
    bson_oid_t    session_id;     /* for session operations */
    unsigned      name:1;
    unsigned      bio:1;
    unsigned      avatar:1;
    unsigned      avatar_media:1; /* a media id: the user's own upload */
    unsigned      username:1;
    char          name_v[64 * 4 + 1];
    char          bio_v[500 * 4 + 1];
    char          avatar_v[512 * 4 + 1];
    char          username_v[40];
    char          username_lower[40];
    char          search_name[64 * 4 + 1];  /* name folded for search */
    char          privacy[NGX_HTTP_CHAT_PRIVACY_N][12]; /* "": unchanged */
    int           searchable;               /* -1 leaves it unchanged */
    int           push_preview;             /* -1 leaves it unchanged */
} ngx_http_chat_user_arg_t;


/* t->reply = {user: {...}, isNew: bool}; the session document inserted */
void ngx_http_chat_users_login_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* t->reply = {user: {...}}; t->rc NGX_DECLINED: username taken */
void ngx_http_chat_users_known_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_users_update_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* t->reply = {items: [...]}: the live sessions of user_id */
void ngx_http_chat_sessions_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* marks session_id of user_id revoked; t->rc NGX_DECLINED: no such one */
void ngx_http_chat_sessions_revoke_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * The session document, the record of a session (ngx_http_chat_sessions_
 * store.c): {_id, userId, device, ip, createdAt, lastUsedAt, expiresAt,
 * cur: hash of the live refresh token, used: the hashes rotated away,
 * newest last, revoked, revokedAt}.
 */

/* t->reply = {userId, revoked, expiresAt?}; t->rc NGX_DECLINED: none */
void ngx_http_chat_sessions_get_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * Refresh-token rotation (ngx_http_chat_rotate_arg_t): t->reply =
 * {status: "ok" | "reuse" | "revoked" | "invalid", userId?}; "reuse" has
 * revoked the session already.
 */
void ngx_http_chat_sessions_rotate_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);

/* posts the index creation of every collection, once per worker */
void ngx_http_chat_users_ensure_indexes(void);

/* the public form of a user document, on the event loop */
json_t *ngx_http_chat_user_json(const bson_t *doc);
/* "2026-11-26T07:10:48.123Z" */
json_t *ngx_http_chat_json_time(int64_t ms);


#endif /* _NGX_HTTP_CHAT_USERS_H_INCLUDED_ */
