/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_STORIES_STORE_INT_H_INCLUDED_
#define _NGX_HTTP_CHAT_STORIES_STORE_INT_H_INCLUDED_


#include "ngx_http_chat_stories_store.h"
#include "ngx_http_chat_people.h"
#include "ngx_http_chat_users.h"


/* what the story files of store/ share, in a pool thread */

#define NGX_HTTP_CHAT_STORY_AUTHORS_MAX  1000   /* contacts a step reads */
#define NGX_HTTP_CHAT_STORY_READ_MAX     5000   /* stories a read keeps */
#define NGX_HTTP_CHAT_STORY_IN_MAX       1000   /* values of one $in */


int64_t ngx_http_chat_story_now(void);
/* t->result = json (freed with the task), t->rc = rc (NGX_ERROR if NULL) */
void ngx_http_chat_story_answer(ngx_http_chat_mongo_task_t *t, ngx_int_t rc,
    json_t *json);
/* "<storyId>:<viewerId>" into key (50 bytes), the _id of a view */
void ngx_http_chat_story_view_key(const bson_oid_t *story,
    const bson_oid_t *viewer, char *key);
json_t *ngx_http_chat_story_oid_json(const bson_oid_t *oid);
/* the ObjectId of doc's key into out: 1, or 0 when it has none */
ngx_uint_t ngx_http_chat_story_oid(const bson_t *doc, const char *key,
    bson_oid_t *out);
/* adds expiresAt > now to a filter */
void ngx_http_chat_story_live(bson_t *filter);
/* may me see the story doc, rel being me's relations with its author */
ngx_uint_t ngx_http_chat_story_visible(const bson_t *doc,
    const bson_oid_t *me, ngx_http_chat_rel_t *rel);
/* a story as clients see it; own: with its privacy, for the author */
json_t *ngx_http_chat_story_json(const bson_t *doc, ngx_uint_t own);
/* the live story id into doc: NGX_OK, NGX_DECLINED, NGX_ERROR */
ngx_int_t ngx_http_chat_story_find(mongoc_database_t *db,
    const bson_oid_t *id, bson_t *doc, bson_error_t *error);
/* the same, NGX_DECLINED unless me may see it; its author into author */
ngx_int_t ngx_http_chat_story_load(mongoc_database_t *db,
    const bson_oid_t *me, const bson_oid_t *id, bson_t *doc,
    bson_oid_t *author, bson_error_t *error);
/* a view document as {storyId, userId, viewedAt, reaction?, reactedAt?} */
json_t *ngx_http_chat_story_view_json(const bson_t *doc);


#endif /* _NGX_HTTP_CHAT_STORIES_STORE_INT_H_INCLUDED_ */
