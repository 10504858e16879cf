/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_HIGHLIGHTS_STORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_HIGHLIGHTS_STORE_H_INCLUDED_


#include "ngx_http_chat_mongo.h"


/*
 * Highlights in MongoDB: "highlights" {_id, ownerId, title, storyIds,
 * cover?, privacy: "everyone" | "contacts", createdAt, updatedAt}, read by
 * ownerId and by storyIds (indexed).  Only the owner's own stories, live
 * or expired, go in; a story in a highlight is marked kept: true, so the
 * sweeper passes it by, and unmarked when it leaves its last highlight.
 * The *_run functions run in the thread pool and leave a JSON answer in
 * t->result; t->rc NGX_DECLINED: no such highlight of mine; NGX_ABORT:
 * {field, reason} of a value refused (a story not mine).
 */

#define NGX_HTTP_CHAT_HIGHLIGHT_TITLE_MAX    50     /* characters */
#define NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX  100
#define NGX_HTTP_CHAT_HIGHLIGHTS_MAX         100    /* a user's */

#define NGX_HTTP_CHAT_HIGHLIGHT_EVERYONE  0
#define NGX_HTTP_CHAT_HIGHLIGHT_CONTACTS  1


typedef struct {
    bson_oid_t    me;
    bson_oid_t    id;          /* the highlight, or the owner of a list */
    bson_oid_t    cover;
    ngx_uint_t    privacy;
    ngx_uint_t    nadd;
    ngx_uint_t    nremove;
    unsigned      has_title:1;
    unsigned      has_cover:1;
    unsigned      has_privacy:1;
    char          title[NGX_HTTP_CHAT_HIGHLIGHT_TITLE_MAX * 4 + 1];
    bson_oid_t    add[NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX];
    bson_oid_t    remove[NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX];
} ngx_http_chat_highlight_arg_t;


/* {highlight}: a new one of add's stories */
void ngx_http_chat_highlight_create_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* {highlight}: title, cover, privacy set; add's stories in, remove's out */
void ngx_http_chat_highlight_update_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* {id, deleted} */
void ngx_http_chat_highlight_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* {items}: the highlights of id that me may see, with their stories */
void ngx_http_chat_highlight_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);

/*
 * In a thread: the story id, expired or not, into doc if it is in a
 * highlight that me may see: NGX_OK, NGX_DECLINED, NGX_ERROR.
 */
ngx_int_t ngx_http_chat_highlight_story(mongoc_database_t *db,
    const bson_oid_t *me, const bson_oid_t *id, bson_t *doc,
    bson_oid_t *author, bson_error_t *error);

#define NGX_HTTP_CHAT_STORY_SWEEP_BATCH  500   /* stories a sweep removes */

/* in a thread: one batch of expired stories in no highlight removed */
void ngx_http_chat_story_sweep_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);


#endif /* _NGX_HTTP_CHAT_HIGHLIGHTS_STORE_H_INCLUDED_ */
