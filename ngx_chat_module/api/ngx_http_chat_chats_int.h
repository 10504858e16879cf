/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CHATS_INT_H_INCLUDED_
#define _NGX_HTTP_CHAT_CHATS_INT_H_INCLUDED_


#include "../core/ngx_http_chat_async.h"
#include "../auth/ngx_http_chat_auth.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "../ops/ngx_http_chat_op_store.h"
#include "../util/ngx_http_chat_text.h"
#include "ngx_http_chat_chats.h"


/*
 * What the routes of chats, messages, groups and search share: the
 * caller and the :id, numbers of the query string, and the wait of a
 * request for a store step or an operation (ops/).
 */

#define NGX_HTTP_CHAT_CHATS_LIMIT    20


/*
 * A route that waits for a store operation (ops/): the operation runs to
 * its end in any case (its events follow its commit), the request only
 * takes its answer
 */

typedef void (*ngx_http_chat_op_tell_pt)(ngx_int_t rc, json_t *answer,
    ngx_uint_t created, ngx_http_chat_op_told_t *told);

typedef struct {
    ngx_http_request_t        *request;
    ngx_http_chat_op_store_t  *op;
    ngx_http_cleanup_t        *cleanup;
    ngx_http_chat_op_tell_pt   tell;     /* as the operation's kind says */
} ngx_http_chat_store_wait_t;


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

/* the wait of r for an operation, its outcome told with tell; NULL */
ngx_http_chat_store_wait_t *ngx_http_chat_store_wait(ngx_http_request_t *r,
    ngx_http_chat_op_tell_pt tell);
/* rc: the operation's start (ngx_http_chat_op.h); details are taken */
ngx_int_t ngx_http_chat_store_started(ngx_http_request_t *r,
    ngx_http_chat_store_wait_t *st, ngx_int_t rc, const char *field,
    const char *err, json_t *details);
/* the same, with the refusals of its input */
ngx_int_t ngx_http_chat_op_started(ngx_http_request_t *r,
    ngx_http_chat_store_wait_t *st, ngx_int_t rc,
    ngx_http_chat_op_refused_t *refused);
/* the operation's done(): data is the wait */
void ngx_http_chat_store_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error);


#endif /* _NGX_HTTP_CHAT_CHATS_INT_H_INCLUDED_ */
