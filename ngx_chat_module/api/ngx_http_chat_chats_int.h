/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CHATS_INT_H_INCLUDED_
#define _NGX_HTTP_CHAT_CHATS_INT_H_INCLUDED_


#include "../core/ngx_http_chat_async.h"
#include "../auth/ngx_http_chat_auth.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "../ops/ngx_http_chat_op_store.h"
#include "ngx_http_chat_wait.h"
#include "../util/ngx_http_chat_text.h"
#include "ngx_http_chat_chats.h"


/*
 * What the routes of chats, messages, groups and search share: the
 * caller and the :id, numbers of the query string, the answer of a
 * store step; the wait of a request for an operation is
 * ngx_http_chat_wait.h.
 */

#define NGX_HTTP_CHAT_CHATS_LIMIT    20


/* the caller's id */
ngx_int_t ngx_http_chat_chats_me(ngx_http_request_t *r, bson_oid_t *me);
/* the :id of the route as an ObjectId; NGX_DECLINED when it is not one */
ngx_int_t ngx_http_chat_chats_param(ngx_http_request_t *r, bson_oid_t *oid);
/* a positive number of the query string: NGX_OK, NGX_DECLINED, NGX_ERROR */
ngx_int_t ngx_http_chat_chats_arg_num(ngx_http_request_t *r, const char *name,
    int64_t min, int64_t max, int64_t *out);
/* the cursor "<updatedAt ms>.<id>": NGX_OK, NGX_DECLINED, NGX_ERROR */
ngx_int_t ngx_http_chat_cursor_arg(ngx_http_request_t *r, int64_t *ms,
    bson_oid_t *oid);

/* a store step's done(): its events published, its answer sent */
ngx_int_t ngx_http_chat_chats_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
/* the answer of a route from the store's (or an operation's) outcome */
ngx_int_t ngx_http_chat_chats_reply(ngx_http_request_t *r, ngx_int_t rc,
    json_t *json, const char *error);


#endif /* _NGX_HTTP_CHAT_CHATS_INT_H_INCLUDED_ */
