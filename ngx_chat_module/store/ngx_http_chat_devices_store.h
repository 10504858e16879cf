/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_DEVICES_STORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_DEVICES_STORE_H_INCLUDED_


#include "ngx_http_chat_mongo.h"


/*
 * Push devices (collection "devices"): one document per push token,
 * {_id: token, userId, sessionId, platform, bundleId, voipToken?,
 * updatedAt}.  The token is the key, so a token registered again by
 * another session moves to it; a session holds one device.
 */

#define NGX_HTTP_CHAT_DEVICE_TOKEN_MAX   512
#define NGX_HTTP_CHAT_DEVICE_BUNDLE_MAX  255


typedef struct {
    bson_oid_t    user;
    bson_oid_t    session;
    char          platform[8];            /* android, ios, web */
    char          token[NGX_HTTP_CHAT_DEVICE_TOKEN_MAX + 1];
    char          voip[NGX_HTTP_CHAT_DEVICE_TOKEN_MAX + 1];   /* "" none */
    char          bundle[NGX_HTTP_CHAT_DEVICE_BUNDLE_MAX + 1];
} ngx_http_chat_device_arg_t;


/* in a thread: the session's device is a's (t->rc NGX_OK or NGX_ERROR) */
void ngx_http_chat_devices_register_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* in a thread: the session has no device (a->session, a->user) */
void ngx_http_chat_devices_unregister_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* in a thread: the token a->token (or the VoIP token a->voip) is gone */
void ngx_http_chat_devices_forget_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* in a thread, from a session's revocation: its device is dropped */
ngx_int_t ngx_http_chat_devices_drop_session(mongoc_database_t *db,
    const bson_oid_t *session, bson_error_t *error);


/* the bound of a push's recipients: members read for one message */
#define NGX_HTTP_CHAT_PUSH_MEMBERS_MAX  1024

/*
 * Whom a message is pushed to: the members of chat but the sender, less
 * those who muted it (unless mentioned and mention_muted), those who
 * blocked the sender, and those with no device; with given, the users
 * in ids alone, already told (the members' cache in Redis, a call's
 * callee), whose mutes are not read.  t->result is a JSON array of
 * {userId, token, platform, bundleId, voipToken?, preview}.
 */
typedef struct {
    bson_oid_t    chat;
    bson_oid_t    sender;
    ngx_uint_t    given;
    ngx_uint_t    nids;
    ngx_uint_t    mention_muted;
    ngx_uint_t    nmentions;
    bson_oid_t    mentions[50];
    bson_oid_t    ids[NGX_HTTP_CHAT_PUSH_MEMBERS_MAX];
} ngx_http_chat_push_plan_arg_t;

void ngx_http_chat_devices_plan_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_devices_plan_cleanup(ngx_http_chat_mongo_task_t *t);

/*
 * The members of a->chat with their mutes, to fill the members' cache:
 * t->result a JSON array of [userId, until] (until in ms, 0 not muted,
 * -1 forever); the cleanup is ngx_http_chat_devices_plan_cleanup
 */
void ngx_http_chat_devices_members_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);


#endif /* _NGX_HTTP_CHAT_DEVICES_STORE_H_INCLUDED_ */
