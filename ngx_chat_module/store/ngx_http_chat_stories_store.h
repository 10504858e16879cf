/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_STORIES_STORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_STORIES_STORE_H_INCLUDED_


#include "ngx_http_chat_mongo.h"


/*
 * Stories in MongoDB: "stories" {_id, authorId, type, text?,
 * backgroundColor?, font?, mediaId?, caption?, privacy: {mode, userIds},
 * createdAt, expiresAt}, read by _id or by authorId (indexed); "storyviews"
 * {_id: "<storyId>:<viewerId>", storyId, authorId, viewerId, viewedAt,
 * emoji?, reactedAt?}, one per viewer by its _id.  Every read keeps only
 * stories whose expiresAt is still ahead.  The *_run functions run in the
 * thread pool and leave a JSON answer in t->result; t->rc NGX_DECLINED:
 * no such story (or not one the viewer may see).
 */

#define NGX_HTTP_CHAT_STORY_TEXT_MAX     700     /* characters */
#define NGX_HTTP_CHAT_STORY_CAPTION_MAX  200
#define NGX_HTTP_CHAT_STORY_IDS_MAX      256     /* a privacy list */
#define NGX_HTTP_CHAT_STORY_FEED_MAX     50      /* authors a page */

#define NGX_HTTP_CHAT_STORY_EVERYONE         0
#define NGX_HTTP_CHAT_STORY_CONTACTS         1
#define NGX_HTTP_CHAT_STORY_CONTACTS_EXCEPT  2
#define NGX_HTTP_CHAT_STORY_ONLY             3


typedef struct {
    bson_oid_t    me;
    bson_oid_t    id;          /* the story, or the author of a listing */
    bson_oid_t    media;
    int64_t       lifetime;    /* ms */
    ngx_uint_t    mode;        /* NGX_HTTP_CHAT_STORY_* */
    ngx_uint_t    nids;
    ngx_uint_t    offset;      /* the feed: authors before this page */
    ngx_uint_t    limit;
    unsigned      has_media:1;
    char          type[8];
    char          text[NGX_HTTP_CHAT_STORY_TEXT_MAX * 4 + 1];
    char          color[8];    /* "#rrggbb" */
    char          font[33];
    char          caption[NGX_HTTP_CHAT_STORY_CAPTION_MAX * 4 + 1];
    char          emoji[8 * 4 + 1];   /* "": remove my reaction */
    bson_oid_t    ids[NGX_HTTP_CHAT_STORY_IDS_MAX];
} ngx_http_chat_story_arg_t;


extern const char  *ngx_http_chat_story_modes[4];


/* writes: {story}; a mediaId that is none or of another type: NGX_ABORT */
void ngx_http_chat_story_create_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* the author's only, with its views and reactions */
void ngx_http_chat_story_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* {view}: NGX_OK the first time, NGX_DONE after */
void ngx_http_chat_story_view_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
/* sets (emoji) or removes (emoji "") my reaction: {reaction}, NGX_DONE */
void ngx_http_chat_story_react_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);

/* reads */
void ngx_http_chat_story_get_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_story_mine_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_story_user_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_story_feed_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_story_views_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);


#endif /* _NGX_HTTP_CHAT_STORIES_STORE_H_INCLUDED_ */
