/*
 * Copyright (C) ngx_chat_module authors
 *
 * An event that changes state (send, edit, read, ...) runs the very API
 * route that REST clients call, so that there is one implementation of
 * the chat logic: the route runs on a request made for the event, with no
 * socket under it, and its JSON answer comes back to the WebSocket
 * session instead of going out as HTTP.
 */


#include "ngx_http_chat_rt.h"


static void ngx_http_chat_rt_call_free(ngx_event_t *ev);
static void ngx_http_chat_rt_call_json_free(void *data);


ngx_int_t
ngx_http_chat_rt_call(ngx_http_chat_rt_session_t *s, ngx_uint_t method,
    ngx_str_t *uri, json_t *body, ngx_str_t *token,
    ngx_http_chat_rt_done_pt done, void *data)
{
    u_char                     *q;
    ngx_int_t                   rc;
    ngx_log_t                  *log;
    ngx_pool_t                 *pool;
    ngx_connection_t           *c;
    ngx_table_elt_t            *h;
    ngx_http_request_t         *r;
    ngx_pool_cleanup_t         *cln;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_rt_call_t    *call;
    ngx_http_core_main_conf_t  *cmcf;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    log = ngx_palloc(pool, sizeof(ngx_log_t));
    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));
    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));
    call = ngx_pcalloc(pool, sizeof(ngx_http_chat_rt_call_t));

    if (log == NULL || c == NULL || r == NULL || call == NULL) {
        goto failed;
    }

    *log = *s->ws->connection->log;
    log->handler = NULL;
    log->data = NULL;
    log->action = "running a route for a websocket event";

    c->fd = (ngx_socket_t) -1;
    c->pool = pool;
    c->log = log;
    c->log_error = NGX_ERROR_INFO;
    c->data = r;
    c->number = s->ws->connection->number;

    c->read = ngx_pcalloc(pool, sizeof(ngx_event_t));
    c->write = ngx_pcalloc(pool, sizeof(ngx_event_t));
    if (c->read == NULL || c->write == NULL) {
        goto failed;
    }

    c->read->log = log;
    c->write->log = log;

    /*
     * The route may outlive the session: what it reads of the session
     * (the address, the user, the session id) is copied into its pool.
     */
    c->addr_text.data = ngx_pstrdup(pool, &s->addr_text);
    if (c->addr_text.data == NULL && s->addr_text.len) {
        goto failed;
    }

    c->addr_text.len = s->addr_text.len;

    r->pool = pool;
    r->connection = c;
    r->main = r;
    r->count = 1;
    r->signature = NGX_HTTP_MODULE;
    r->method = method;
    r->http_version = NGX_HTTP_VERSION_11;
    r->main_conf = s->main_conf;
    r->srv_conf = s->srv_conf;
    r->loc_conf = s->loc_conf;
    r->start_sec = ngx_time();
    r->start_msec = ngx_current_msec;
    r->headers_in.content_length_n = -1;
    r->headers_out.content_length_n = -1;
    r->headers_out.last_modified_time = -1;

    r->ctx = ngx_pcalloc(pool, sizeof(void *) * ngx_http_max_module);
    if (r->ctx == NULL) {
        goto failed;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    r->variables = ngx_pcalloc(pool, cmcf->variables.nelts
                                     * sizeof(ngx_http_variable_value_t));
    if (r->variables == NULL) {
        goto failed;
    }

    if (ngx_list_init(&r->headers_in.headers, pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK
        || ngx_list_init(&r->headers_out.headers, pool, 4,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        goto failed;
    }

    /* the path, and its query string for the routes that read one */
    r->unparsed_uri.data = ngx_pnalloc(pool, uri->len);
    if (r->unparsed_uri.data == NULL) {
        goto failed;
    }

    r->unparsed_uri.len = uri->len;
    ngx_memcpy(r->unparsed_uri.data, uri->data, uri->len);

    r->uri = r->unparsed_uri;
    q = ngx_strlchr(r->uri.data, r->uri.data + r->uri.len, '?');

    if (q) {
        r->uri.len = q - r->uri.data;
        r->args.data = q + 1;
        r->args.len = r->unparsed_uri.len - r->uri.len - 1;
    }

    if (token) {
        h = ngx_list_push(&r->headers_in.headers);
        if (h == NULL) {
            goto failed;
        }

        ngx_str_set(&h->key, "Authorization");
        h->lowcase_key = (u_char *) "authorization";
        h->hash = 1;
        h->value.len = sizeof("Bearer ") - 1 + token->len;
        h->value.data = ngx_pnalloc(pool, h->value.len);
        if (h->value.data == NULL) {
            goto failed;
        }

        ngx_sprintf(h->value.data, "Bearer %V", token);
        r->headers_in.authorization = h;
    }

    ctx = ngx_http_chat_prepare(r);
    if (ctx == NULL) {
        goto failed;
    }

    call->session = s;
    call->done = done;
    call->data = data;
    call->request = r;
    call->free.handler = ngx_http_chat_rt_call_free;
    call->free.data = call;
    call->free.log = ngx_cycle->log;

    ctx->call = call;
    ctx->body = body ? json_incref(body) : json_object();

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        json_decref(ctx->body);
        goto failed;
    }

    cln->handler = ngx_http_chat_rt_call_json_free;
    cln->data = ctx->body;

    if (s->authenticated) {
        ctx->user_id.len = NGX_HTTP_CHAT_RT_ID_LEN;
        ctx->user_id.data = ngx_pnalloc(pool, NGX_HTTP_CHAT_RT_ID_LEN);
        ctx->session_id.len = s->session_id.len;
        ctx->session_id.data = ngx_pstrdup(pool, &s->session_id);

        if (ctx->user_id.data == NULL
            || (ctx->session_id.data == NULL && s->session_id.len))
        {
            goto failed;
        }

        ngx_memcpy(ctx->user_id.data, s->user, NGX_HTTP_CHAT_RT_ID_LEN);
    }

    ngx_queue_insert_tail(&s->calls, &call->queue);

    rc = ngx_http_chat_event_route(r);

    ngx_http_chat_rt_call_finalize(r, rc);

    return NGX_OK;

failed:

    ngx_destroy_pool(pool);
    return NGX_ERROR;
}


/* called by the answer's sender in place of the HTTP output */
ngx_int_t
ngx_http_chat_rt_call_answer(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json)
{
    ngx_http_chat_ctx_t      *ctx;
    ngx_http_chat_rt_call_t  *call;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    call = ctx->call;

    if (call->answer) {
        json_decref(call->answer);
    }

    call->status = status;
    call->answer = json;

    return NGX_OK;
}


/*
 * The request's counting mirrors an HTTP request's: every async step
 * holds a reference, and the answer goes to the session when the last
 * one is let go.
 */
void
ngx_http_chat_rt_call_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    json_t                      *answer;
    ngx_uint_t                   status;
    ngx_http_cleanup_t          *cln;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_rt_call_t     *call;
    ngx_http_chat_rt_session_t  *s;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    call = ctx->call;

    if (call->finished) {
        return;
    }

    if (r->count > 1 || rc == NGX_DONE) {
        r->count--;

        if (r->count > 0) {
            return;
        }
    }

    call->finished = 1;

    status = call->status;
    answer = call->answer;
    call->answer = NULL;

    if (answer == NULL) {
        /* a bare status: what NGINX would have made of it */
        status = (rc >= NGX_HTTP_SPECIAL_RESPONSE) ? (ngx_uint_t) rc
                                                   : 500;
        answer = json_pack("{s:{s:s,s:s}}", "error", "code",
                           status == 500 ? "internal_error" : "failed",
                           "message", "the request failed");
    }

    /* the routes' own cleanups: pending steps are aborted */
    for (cln = r->cleanup; cln; cln = cln->next) {
        if (cln->handler) {
            cln->handler(cln->data);
            cln->handler = NULL;
        }
    }

    s = call->session;

    if (s) {
        ngx_queue_remove(&call->queue);
        call->session = NULL;

        /* the gate accepted the token: the socket's session is known */
        if (s->authenticating && status == 200
            && ctx->session_id.len && s->session_id.data == NULL)
        {
            s->session_id.data = ngx_alloc(ctx->session_id.len,
                                           ngx_cycle->log);
            if (s->session_id.data) {
                ngx_memcpy(s->session_id.data, ctx->session_id.data,
                           ctx->session_id.len);
                s->session_id.len = ctx->session_id.len;
            }
        }
    }

    /* without a session: done() frees its data and the answer */
    call->done(s, call->data, status, answer);

    /* our callers may still look at the connection: free it later */
    r->connection->destroyed = 1;
    ngx_post_event(&call->free, &ngx_posted_events);
}


static void
ngx_http_chat_rt_call_free(ngx_event_t *ev)
{
    ngx_http_chat_rt_call_t  *call;

    call = ev->data;

    ngx_destroy_pool(call->request->pool);
}


static void
ngx_http_chat_rt_call_json_free(void *data)
{
    json_decref(data);
}


/* the session goes: its running routes finish without it */
void
ngx_http_chat_rt_calls_detach(ngx_http_chat_rt_session_t *s)
{
    ngx_queue_t              *q;
    ngx_http_chat_rt_call_t  *call;

    while (!ngx_queue_empty(&s->calls)) {
        q = ngx_queue_head(&s->calls);
        call = ngx_queue_data(q, ngx_http_chat_rt_call_t, queue);
        ngx_queue_remove(q);
        call->session = NULL;
    }
}


/* what api/ and auth/ ask of realtime, through core's event interface */
void
ngx_http_chat_rt_register(ngx_http_chat_events_t *events)
{
    events->publish = ngx_http_chat_rt_publish_as;
    events->call_answer = ngx_http_chat_rt_call_answer;
    events->call_finalize = ngx_http_chat_rt_call_finalize;
}
