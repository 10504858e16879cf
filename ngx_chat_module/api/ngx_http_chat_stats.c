/*
 * Copyright (C) ngx_chat_module authors
 *
 * chat_stats: what an operator counts of the users that the metrics page
 * cannot (distinct users active in a day, a week, 30 days; new ones), as
 * JSON, from MongoDB through the thread pool.  The location is the
 * operator's to protect (allow/deny, auth_basic), as chat_metrics.
 */


#include "ngx_http_chat_api.h"
#include "ngx_http_chat_stats.h"
#include "../core/ngx_http_chat_async.h"
#include "../core/ngx_http_chat_wait.h"
#include "../store/ngx_http_chat_stats_store.h"


static ngx_int_t ngx_http_chat_stats_counted(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);


ngx_int_t
ngx_http_chat_stats_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->method != NGX_HTTP_GET) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_chat_prepare(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* NGX_DONE: the task holds the request (r->main->count) */
    return ngx_http_chat_mongo_request(r, ngx_http_chat_stats_run,
                                       ngx_http_chat_stats_counted, NULL, 0);
}


static ngx_int_t
ngx_http_chat_stats_counted(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    json_t       *users;
    bson_iter_t   it;

    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: stats failed in mongo: %s", t->error.message);
        return ngx_http_chat_send_retry(r);
    }

    users = json_object();
    if (users == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (bson_iter_init(&it, &t->reply)) {
        while (bson_iter_next(&it)) {
            if (BSON_ITER_HOLDS_INT64(&it)
                && json_object_set_new(users, bson_iter_key(&it),
                                       json_integer(bson_iter_int64(&it)))
                   != 0)
            {
                json_decref(users);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                   json_pack("{s:o}", "users", users));
}
