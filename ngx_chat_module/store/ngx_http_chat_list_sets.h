/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_LIST_SETS_H_INCLUDED_
#define _NGX_HTTP_CHAT_LIST_SETS_H_INCLUDED_


#include "ngx_http_chat_mongo.h"
#include "ngx_http_chat_list_facts.h"
#include <jansson.h>


/* what a rebuild reads of a chat for one member */
typedef struct {
    int64_t      top;              /* the highest number holding one */
    int64_t      read_seq;
    json_t      *voids;            /* all, of the chat */
    json_t      *own;              /* mine, above read_seq */
    json_t      *hidden;           /* deleted for me, above read_seq */
    json_t      *mentions;         /* mentioning me, above read_seq */
    json_t      *msgs;             /* the window's: [[seq, json], ...] */
} ngx_http_chat_list_sets_t;


/*
 * in a thread: the chat's top and the sets of user in it (read_seq set
 * by the caller), from the facts, this worker's facts not yet stored
 * (facts, nfacts) and the window's messages; on NGX_OK the caller frees
 * them with ngx_http_chat_list_sets_free()
 */
ngx_int_t ngx_http_chat_list_sets(mongoc_database_t *db, const bson_t *chat,
    const bson_oid_t *chat_id, const bson_oid_t *user,
    ngx_http_chat_list_sets_t *sets, ngx_http_chat_list_fact_t *facts,
    ngx_uint_t nfacts, bson_error_t *error);
void ngx_http_chat_list_sets_free(ngx_http_chat_list_sets_t *sets);

/* my unread count, and my unread mentions, as the read script counts */
int64_t ngx_http_chat_list_unread(ngx_http_chat_list_sets_t *sets);
int64_t ngx_http_chat_list_mentioned(ngx_http_chat_list_sets_t *sets);

/* what rebuilds the chat's keys (ngx_http_chat_list_model_fill()) */
json_t *ngx_http_chat_list_fill_json(mongoc_database_t *db,
    const bson_t *chat, const bson_oid_t *chat_id,
    ngx_http_chat_list_sets_t *sets, bson_error_t *error);


#endif /* _NGX_HTTP_CHAT_LIST_SETS_H_INCLUDED_ */
