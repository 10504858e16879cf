/*
 * Copyright (C) ngx_chat_module authors
 *
 * GET /healthz: the worker answers.  GET /readyz: Redis, MongoDB and the
 * configured HTTP dependencies answer, checked concurrently.
 */


#include "ngx_http_chat_api.h"
#include "../store/ngx_http_chat_mongo.h"
#include "../store/ngx_http_chat_redis.h"
#include "../services/ngx_http_chat_curl.h"


#define NGX_HTTP_CHAT_READY_DEADLINE  5000


typedef enum {
    NGX_HTTP_CHAT_CHECK_PENDING = 0,
    NGX_HTTP_CHAT_CHECK_UP,
    NGX_HTTP_CHAT_CHECK_DOWN
} ngx_http_chat_check_state_e;


typedef struct ngx_http_chat_ready_s  ngx_http_chat_ready_t;

typedef struct {
    ngx_http_chat_ready_t        *ready;
    ngx_http_chat_check_state_e   state;
    ngx_msec_t                    start;
    ngx_msec_t                    elapsed;
    long                          http_status;
    char                          error[128];
    ngx_str_t                    *url;
    ngx_http_chat_curl_req_t     *curl;
} ngx_http_chat_check_t;


/*
 * Heap state shared by the checks: it outlives the request when the client
 * goes away or the deadline passes, and is freed by the last completion.
 * What outlives the request logs to the cycle's log: the connection's log
 * is freed with the connection.
 */
struct ngx_http_chat_ready_s {
    ngx_http_request_t           *request;    /* NULL once answered or gone */
    ngx_http_cleanup_t           *cleanup;
    ngx_event_t                   deadline;
    ngx_uint_t                    pending;
    ngx_uint_t                    nchecks;
    ngx_http_chat_check_t         checks[1];  /* redis, mongo, urls... */
};


static void ngx_http_chat_ready_redis(redisReply *reply, void *data);
static void ngx_http_chat_ready_mongo_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
static void ngx_http_chat_ready_mongo_done(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_ready_curl(ngx_http_chat_curl_req_t *req,
    void *data);
static void ngx_http_chat_ready_complete(ngx_http_chat_check_t *check);
static void ngx_http_chat_ready_deadline(ngx_event_t *ev);
static void ngx_http_chat_ready_respond(ngx_http_chat_ready_t *ready);
static ngx_int_t ngx_http_chat_ready_send(ngx_http_chat_ready_t *ready);
static void ngx_http_chat_ready_cleanup(void *data);
static void ngx_http_chat_ready_release(ngx_http_chat_ready_t *ready);


ngx_int_t
ngx_http_chat_healthz_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (ngx_http_chat_prepare(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_chat_send_preflight(r, NGX_HTTP_GET);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_chat_send_method_not_allowed(r, NGX_HTTP_GET);
    }

    rc = ngx_http_chat_discard_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                   json_pack("{s:s,s:s}", "status", "ok",
                                             "version",
                                             NGX_HTTP_CHAT_VERSION));
}


ngx_int_t
ngx_http_chat_readyz_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                   *urls;
    ngx_uint_t                   i, n;
    ngx_http_chat_check_t       *check;
    ngx_http_chat_ready_t       *ready;
    ngx_http_chat_curl_req_t    *req;
    ngx_http_chat_main_conf_t   *cmcf;
    ngx_http_chat_mongo_task_t  *t;

    if (ngx_http_chat_prepare(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_chat_send_preflight(r, NGX_HTTP_GET);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_chat_send_method_not_allowed(r, NGX_HTTP_GET);
    }

    rc = ngx_http_chat_discard_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    n = 2 + (cmcf->ready_checks ? cmcf->ready_checks->nelts : 0);

    ready = ngx_calloc(sizeof(ngx_http_chat_ready_t)
                       + (n - 1) * sizeof(ngx_http_chat_check_t),
                       r->connection->log);
    if (ready == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ready->cleanup = ngx_http_cleanup_add(r, 0);
    if (ready->cleanup == NULL) {
        ngx_free(ready);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ready->cleanup->handler = ngx_http_chat_ready_cleanup;
    ready->cleanup->data = ready;
    ready->request = r;
    ready->nchecks = n;

    /* held by the handler itself until every check has started */
    ready->pending = 1;

    for (i = 0; i < n; i++) {
        ready->checks[i].ready = ready;
        ready->checks[i].start = ngx_current_msec;
    }

    /* Redis */

    check = &ready->checks[0];
    ready->pending++;

    if (ngx_http_chat_redis_command(ngx_http_chat_redis_main,
                                    ngx_http_chat_ready_redis, check, "PING")
        != NGX_OK)
    {
        ngx_cpystrn((u_char *) check->error, (u_char *) "not connected",
                    sizeof(check->error));
        check->state = NGX_HTTP_CHAT_CHECK_DOWN;
        ready->pending--;
    }

    /* MongoDB, in the thread pool */

    check = &ready->checks[1];
    ready->pending++;

    t = ngx_http_chat_mongo_task_create(ngx_cycle->log,
                                        ngx_http_chat_ready_mongo_run,
                                        ngx_http_chat_ready_mongo_done,
                                        check);

    if (t == NULL || ngx_http_chat_mongo_post(t) != NGX_OK) {
        ngx_cpystrn((u_char *) check->error,
                    (u_char *) "cannot queue the check",
                    sizeof(check->error));
        check->state = NGX_HTTP_CHAT_CHECK_DOWN;
        ready->pending--;
    }

    /* HTTP dependencies */

    urls = cmcf->ready_checks ? cmcf->ready_checks->elts : NULL;

    for (i = 2; i < n; i++) {
        check = &ready->checks[i];
        check->url = &urls[i - 2];
        ready->pending++;

        req = ngx_http_chat_curl_create(ngx_cycle->log,
                                        cmcf->upstream_timeout);
        if (req == NULL) {
            goto failed;
        }

        curl_easy_setopt(req->easy, CURLOPT_URL, (char *) check->url->data);

        if (ngx_http_chat_curl_start(req, ngx_http_chat_ready_curl, check)
            != NGX_OK)
        {
            ngx_http_chat_curl_cancel(req);
            goto failed;
        }

        check->curl = req;
        continue;

    failed:

        ngx_cpystrn((u_char *) check->error,
                    (u_char *) "cannot start the check",
                    sizeof(check->error));
        check->state = NGX_HTTP_CHAT_CHECK_DOWN;
        ready->pending--;
    }

    /* every check failed at once: answer here, nothing is in flight */
    if (ready->pending == 1) {
        rc = ngx_http_chat_ready_send(ready);
        ngx_free(ready);
        return rc;
    }

    ready->deadline.handler = ngx_http_chat_ready_deadline;
    ready->deadline.data = ready;
    ready->deadline.log = ngx_cycle->log;

    /*
     * Not cancelable: a graceful reload or quit waits for this answer
     * instead of dropping the connection.
     */
    ngx_add_timer(&ready->deadline, NGX_HTTP_CHAT_READY_DEADLINE);

    r->main->count++;

    /* notice a client that leaves while the checks run */
    if (!r->discard_body) {
        r->read_event_handler = ngx_http_test_reading;
    }

    /* drop the handler's own hold; the checks answer from events */
    ngx_http_chat_ready_release(ready);

    return NGX_DONE;
}


static void
ngx_http_chat_ready_redis(redisReply *reply, void *data)
{
    ngx_http_chat_check_t  *check = data;

    if (reply == NULL) {
        ngx_cpystrn((u_char *) check->error,
                    (u_char *) "connection lost", sizeof(check->error));
        check->state = NGX_HTTP_CHAT_CHECK_DOWN;

    } else if (reply->type == REDIS_REPLY_ERROR) {
        ngx_cpystrn((u_char *) check->error, (u_char *) reply->str,
                    sizeof(check->error));
        check->state = NGX_HTTP_CHAT_CHECK_DOWN;

    } else {
        check->state = NGX_HTTP_CHAT_CHECK_UP;
    }

    ngx_http_chat_ready_complete(check);
}


static void
ngx_http_chat_ready_mongo_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    bson_t  cmd;

    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "ping", 1);

    bson_destroy(&t->reply);

    t->rc = mongoc_database_command_simple(db, &cmd, NULL, &t->reply,
                                           &t->error)
            ? NGX_OK : NGX_ERROR;

    bson_destroy(&cmd);
}


static void
ngx_http_chat_ready_mongo_done(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_check_t  *check = t->data;

    if (t->rc == NGX_OK) {
        check->state = NGX_HTTP_CHAT_CHECK_UP;

    } else {
        ngx_cpystrn((u_char *) check->error, (u_char *) t->error.message,
                    sizeof(check->error));
        check->state = NGX_HTTP_CHAT_CHECK_DOWN;
    }

    ngx_http_chat_ready_complete(check);
}


static void
ngx_http_chat_ready_curl(ngx_http_chat_curl_req_t *req, void *data)
{
    ngx_http_chat_check_t  *check = data;

    check->curl = NULL;
    check->http_status = req->status;

    /* a big answer is cut at the body cap; its status is what counts */
    if (req->result != CURLE_OK && !(req->truncated && req->status)) {
        ngx_cpystrn((u_char *) check->error,
                    (u_char *) (req->errbuf[0] ? req->errbuf
                                : curl_easy_strerror(req->result)),
                    sizeof(check->error));
        check->state = NGX_HTTP_CHAT_CHECK_DOWN;

    } else if (req->status >= 500) {
        ngx_snprintf((u_char *) check->error, sizeof(check->error) - 1,
                     "HTTP status %l%Z", req->status);
        check->state = NGX_HTTP_CHAT_CHECK_DOWN;

    } else {
        check->state = NGX_HTTP_CHAT_CHECK_UP;
    }

    ngx_http_chat_ready_complete(check);
}


static void
ngx_http_chat_ready_complete(ngx_http_chat_check_t *check)
{
    ngx_http_chat_ready_t  *ready = check->ready;

    check->elapsed = ngx_current_msec - check->start;

    ngx_http_chat_ready_release(ready);
}


static void
ngx_http_chat_ready_release(ngx_http_chat_ready_t *ready)
{
    if (--ready->pending) {
        return;
    }

    if (ready->request) {
        ngx_http_chat_ready_respond(ready);
    }

    if (ready->deadline.timer_set) {
        ngx_del_timer(&ready->deadline);
    }

    ngx_free(ready);
}


static void
ngx_http_chat_ready_deadline(ngx_event_t *ev)
{
    ngx_uint_t              i;
    ngx_http_chat_check_t  *check;
    ngx_http_chat_ready_t  *ready = ev->data;

    for (i = 0; i < ready->nchecks; i++) {
        check = &ready->checks[i];

        if (check->state == NGX_HTTP_CHAT_CHECK_PENDING) {
            ngx_cpystrn((u_char *) check->error, (u_char *) "timed out",
                        sizeof(check->error));
            check->state = NGX_HTTP_CHAT_CHECK_DOWN;
            check->elapsed = ngx_current_msec - check->start;
        }
    }

    if (ready->request) {
        ngx_http_chat_ready_respond(ready);
    }
}


static void
ngx_http_chat_ready_respond(ngx_http_chat_ready_t *ready)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ready->request;
    c = r->connection;

    rc = ngx_http_chat_ready_send(ready);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_chat_ready_send(ngx_http_chat_ready_t *ready)
{
    ngx_uint_t              i, ok;
    json_t                 *checks, *urls, *item;
    ngx_http_request_t     *r;
    ngx_http_chat_check_t  *check;

    static const char  *ngx_http_chat_ready_names[] = { "redis", "mongo" };

    r = ready->request;

    ready->request = NULL;
    ready->cleanup->handler = NULL;

    checks = json_object();
    urls = json_array();

    if (checks == NULL || urls == NULL) {
        json_decref(checks);
        json_decref(urls);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ok = 1;

    for (i = 0; i < ready->nchecks; i++) {
        check = &ready->checks[i];

        if (check->state != NGX_HTTP_CHAT_CHECK_UP) {
            ok = 0;
        }

        item = json_pack("{s:s,s:I}", "status",
                         check->state == NGX_HTTP_CHAT_CHECK_UP ? "up"
                                                                : "down",
                         "ms", (json_int_t) check->elapsed);
        if (item == NULL) {
            continue;
        }

        if (check->state != NGX_HTTP_CHAT_CHECK_UP) {
            json_object_set_new(item, "error", json_string(check->error));
        }

        if (i < 2) {
            json_object_set_new(checks, ngx_http_chat_ready_names[i], item);
            continue;
        }

        json_object_set_new(item, "url",
                            json_stringn((char *) check->url->data,
                                         check->url->len));
        if (check->http_status) {
            json_object_set_new(item, "httpStatus",
                                json_integer(check->http_status));
        }

        json_array_append_new(urls, item);
    }

    if (json_array_size(urls)) {
        json_object_set_new(checks, "upstreams", urls);

    } else {
        json_decref(urls);
    }

    if (!ok) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "chat: not ready");
    }

    return ngx_http_chat_send_json(r, ok ? NGX_HTTP_OK
                                         : NGX_HTTP_SERVICE_UNAVAILABLE,
                                   json_pack("{s:s,s:o}", "status",
                                             ok ? "ready" : "unavailable",
                                             "checks", checks));
}


static void
ngx_http_chat_ready_cleanup(void *data)
{
    ngx_http_chat_ready_t  *ready = data;

    /* the client went away: the checks finish and free the state */
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ready->deadline.log, 0,
                   "chat readyz: request gone, checks go on");

    ready->request = NULL;

    /* nobody to answer: the deadline must not hold a worker that exits */
    if (ready->deadline.timer_set) {
        ngx_del_timer(&ready->deadline);
    }
}
