/*
 * Copyright (C) ngx_chat_module authors
 *
 * An answer that shows users, sent once their "online" is read from Redis
 * (store/ngx_http_chat_presence_read.c), on behalf of a request that may
 * leave meanwhile.
 */


#include "ngx_http_chat_async.h"
#include "../store/ngx_http_chat_presence_read.h"


typedef struct {
    ngx_http_request_t       *request;
    ngx_http_chat_online_t   *read;
    json_t                   *json;
    ngx_uint_t                status;
} ngx_http_chat_online_wait_t;


static void ngx_http_chat_online_read_done(void *data);
static void ngx_http_chat_online_cleanup(void *data);


ngx_int_t
ngx_http_chat_send_json_online(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json)
{
    ngx_http_cleanup_t           *cln;
    ngx_http_chat_online_wait_t  *w;

    cln = ngx_http_cleanup_add(r, sizeof(ngx_http_chat_online_wait_t));
    if (cln == NULL) {
        json_decref(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w = cln->data;
    w->request = r;
    w->json = json;
    w->status = status;
    w->read = NULL;

    if (ngx_http_chat_online_read(json, ngx_http_chat_online_read_done, w,
                                  &w->read)
        != NGX_OK)
    {
        /* Redis away: the views as the store had them */
        return ngx_http_chat_send_json(r, status, json);
    }

    cln->handler = ngx_http_chat_online_cleanup;

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_chat_online_read_done(void *data)
{
    ngx_http_chat_online_wait_t  *w = data;

    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = w->request;
    c = r->connection;

    /* the read frees itself after this returns */
    w->read = NULL;

    rc = ngx_http_chat_send_json(r, w->status, w->json);
    w->json = NULL;

    ngx_http_chat_finalize(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_chat_online_cleanup(void *data)
{
    ngx_http_chat_online_wait_t  *w = data;

    /* the request left first: the read's replies find nobody */
    if (w->read) {
        ngx_http_chat_online_cancel(w->read);
        w->read = NULL;
    }

    json_decref(w->json);
    w->json = NULL;
}
