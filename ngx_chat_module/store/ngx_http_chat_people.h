/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_PEOPLE_H_INCLUDED_
#define _NGX_HTTP_CHAT_PEOPLE_H_INCLUDED_


#include "ngx_http_chat_mongo.h"
#include "ngx_http_chat_users.h"


/*
 * Users as others see them: profiles filtered by privacy settings, the
 * contacts and blocks relations (one document per relation: FerretDB loses
 * concurrent updates of one document), search and address-book sync.
 * The *_run functions run in the thread pool and leave a JSON answer in
 * t->result (freed by t->cleanup); t->rc NGX_DECLINED means "not found".
 */

#define NGX_HTTP_CHAT_PEOPLE_PHONE   1
#define NGX_HTTP_CHAT_PEOPLE_NAME    2

#define NGX_HTTP_CHAT_SYNC_MAX  5000


typedef struct {
    bson_oid_t    viewer;
    bson_oid_t    target;
    bson_oid_t    cursor;
    unsigned      has_target:1;
    unsigned      has_cursor:1;
    unsigned      mode:2;           /* search: phone or name */
    ngx_uint_t    limit;
    char          phone[24];        /* E.164, for phone lookups */
    char          query[256];       /* folded, regex-escaped name prefix */
    char          name[64 * 4 + 1]; /* a contact's name, optional */
} ngx_http_chat_people_arg_t;


/*
 * the sync list lives after the struct: count slots of
 * NGX_HTTP_CHAT_SYNC_OUT bytes, each the E.164 form (24 bytes, NUL
 * ended), then the number as the caller sent it (NUL ended, up to 64)
 */
#define NGX_HTTP_CHAT_SYNC_E164  24
#define NGX_HTTP_CHAT_SYNC_OUT   (NGX_HTTP_CHAT_SYNC_E164 + 65)

typedef struct {
    bson_oid_t    viewer;
    ngx_uint_t    count;
} ngx_http_chat_sync_arg_t;


/*
 * The relations of a viewer with a set of users, in four indexed queries
 * whatever the set's size (stories reuse them for their privacy).
 */
typedef struct {
    bson_oid_t   *ids;
    size_t        n;
} ngx_http_chat_oidset_t;

typedef struct {
    ngx_http_chat_oidset_t   they_have_me;   /* I am in their contacts */
    ngx_http_chat_oidset_t   blockers;       /* they blocked me */
    ngx_http_chat_oidset_t   mine;           /* in my contacts */
    ngx_http_chat_oidset_t   blocked;        /* I blocked them */
} ngx_http_chat_rel_t;


/* in a thread: the relations of viewer with the n users of ids */
ngx_int_t ngx_http_chat_rel_load(mongoc_database_t *db,
    const bson_oid_t *viewer, bson_oid_t *ids, size_t n,
    ngx_http_chat_rel_t *rel, bson_error_t *error);
void ngx_http_chat_rel_free(ngx_http_chat_rel_t *rel);
ngx_uint_t ngx_http_chat_oidset_has(ngx_http_chat_oidset_t *set,
    const bson_oid_t *oid);


void ngx_http_chat_people_self_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/*
 * posts a task of ngx_http_chat_people_self_run() with the worker's other
 * reads of profiles: those that wait for the store go as one find
 */
ngx_int_t ngx_http_chat_people_self_post(ngx_http_chat_mongo_task_t *t);
void ngx_http_chat_people_view_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_people_search_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_contacts_add_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_contacts_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_contacts_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_contacts_sync_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_blocks_add_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_blocks_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_blocks_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);


#endif /* _NGX_HTTP_CHAT_PEOPLE_H_INCLUDED_ */
