/*
 * Copyright (C) ngx_chat_module authors
 *
 * The opening handshake (RFC 6455, section 4.2): a GET over HTTP/1.1
 * asking for an upgrade, checked header by header; then the request is
 * freed and the connection handed to a WebSocket session, so that an
 * idle socket keeps no HTTP buffers.
 */


#include <openssl/evp.h>
#include <openssl/sha.h>

#include "../core/ngx_http_chat_core.h"
#include "../ws/ngx_http_chat_ws.h"
#include "ngx_http_chat_rt.h"


#define NGX_HTTP_CHAT_WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


typedef struct {
    ngx_str_t                  key;
    ngx_str_t                  version;
    ngx_uint_t                 upgrade;      /* "websocket" was asked */
    ngx_uint_t                 connection;   /* Connection: upgrade */
    ngx_array_t                protocols;    /* ngx_str_t, all offered */
    ngx_array_t                extensions;   /* ngx_str_t header values */
    ngx_uint_t                 keys;
} ngx_http_chat_ws_offer_t;


typedef struct {
    ngx_event_t                event;        /* the detach, posted */
    ngx_http_request_t        *request;
    ngx_str_t                  response;
    ngx_http_chat_ws_deflate_params_t  deflate;
    ngx_uint_t                 use_deflate;
    ngx_http_chat_ws_peer_t   *peer;         /* its address's count */
} ngx_http_chat_ws_upgrade_t;


static ngx_int_t ngx_http_chat_ws_read_offer(ngx_http_request_t *r,
    ngx_http_chat_ws_offer_t *offer);
static ngx_uint_t ngx_http_chat_ws_has_token(ngx_str_t *value,
    const char *token);
static ngx_str_t *ngx_http_chat_ws_pick_protocol(ngx_http_chat_ws_conf_t *conf,
    ngx_array_t *offered);
static void ngx_http_chat_ws_detach(ngx_event_t *ev);
static ngx_int_t ngx_http_chat_ws_token(ngx_http_request_t *r,
    ngx_http_chat_ws_t *ws);
static void ngx_http_chat_ws_discard(ngx_http_chat_ws_t *ws);
static void ngx_http_chat_ws_shrink(ngx_connection_t *c,
    ngx_http_chat_ws_t *ws);


ngx_int_t
ngx_http_chat_ws_handler(ngx_http_request_t *r)
{
    u_char                      *p, sha[SHA_DIGEST_LENGTH], raw[32];
    u_char                       keyguid[24 + sizeof(NGX_HTTP_CHAT_WS_GUID)];
    ngx_int_t                    rc;
    ngx_str_t                    accept, digest, decoded, *protocol;
    ngx_str_t                    extensions, version;
    ngx_http_chat_ws_offer_t     offer;
    time_t                       retry;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_ws_peer_t     *peer;
    ngx_http_chat_loc_conf_t    *clcf;
    ngx_http_chat_ws_upgrade_t  *up;

    if (ngx_http_chat_prepare(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_chat_send_preflight(r, NGX_HTTP_GET);
    }

    if (r->method != NGX_HTTP_GET) {
        return ngx_http_chat_send_method_not_allowed(r, NGX_HTTP_GET);
    }

    if (r != r->main || r->http_version != NGX_HTTP_VERSION_11) {
        return ngx_http_chat_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "http11_required",
                                        "A WebSocket opens over HTTP/1.1");
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        return ngx_http_chat_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "unexpected_body",
                                        "A WebSocket handshake has no body");
    }

    rc = ngx_http_chat_ws_read_offer(r, &offer);
    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!offer.upgrade || !offer.connection) {
        ngx_str_set(&version, "websocket");
        if (ngx_http_chat_add_header(r, "Upgrade", &version) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_chat_send_error(r, NGX_HTTP_CHAT_UPGRADE_REQUIRED,
                                        "upgrade_required",
                                        "This endpoint speaks WebSocket: "
                                        "send Upgrade: websocket");
    }

    if (offer.version.len != 2
        || ngx_strncmp(offer.version.data, "13", 2) != 0)
    {
        ngx_str_set(&version, "13");
        if (ngx_http_chat_add_header(r, "Sec-WebSocket-Version", &version)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_chat_send_error(r, NGX_HTTP_CHAT_UPGRADE_REQUIRED,
                                        "unsupported_websocket_version",
                                        "Only WebSocket version 13 is "
                                        "spoken here");
    }

    /* the key: 16 random bytes in base64, exactly once */
    decoded.data = raw;

    if (offer.keys != 1
        || offer.key.len != 24
        || ngx_decode_base64(&decoded, &offer.key) != NGX_OK
        || decoded.len != 16)
    {
        return ngx_http_chat_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "bad_websocket_key",
                                        "Sec-WebSocket-Key must be 16 bytes "
                                        "in base64");
    }

    /*
     * The sockets of its address, counted till it signs in and till it
     * ends; a session that changes transport (an upgrade from polling)
     * was counted already, and is let in.
     */
    peer = NULL;

    if (clcf->ws.app != &ngx_http_chat_ws_echo_app) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

        rc = ngx_http_chat_rt_conn_take(r, &clcf->ws,
                                        ctx && ctx->ws_resume.len,
                                        &peer, &retry);
        if (rc == NGX_BUSY) {
            return ngx_http_chat_rt_conn_refuse(r, retry, NULL);
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    up = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_ws_upgrade_t));
    if (up == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    up->peer = peer;

    ngx_str_null(&extensions);

    if (clcf->ws.deflate && offer.extensions.nelts) {
        rc = ngx_http_chat_ws_deflate_negotiate(r->pool, &clcf->ws,
                                                &offer.extensions,
                                                &extensions, &up->deflate);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        up->use_deflate = (rc == NGX_OK);
    }

    protocol = ngx_http_chat_ws_pick_protocol(&clcf->ws, &offer.protocols);

    /* Sec-WebSocket-Accept: base64(SHA-1(key + GUID)) */
    p = ngx_cpymem(keyguid, offer.key.data, offer.key.len);
    p = ngx_cpymem(p, NGX_HTTP_CHAT_WS_GUID,
                   sizeof(NGX_HTTP_CHAT_WS_GUID) - 1);

    if (EVP_Digest(keyguid, p - keyguid, sha, NULL, EVP_sha1(), NULL) != 1) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    digest.data = sha;
    digest.len = sizeof(sha);

    accept.len = ngx_base64_encoded_length(digest.len);
    accept.data = ngx_pnalloc(r->pool, accept.len);
    if (accept.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_encode_base64(&accept, &digest);

    up->response.len = sizeof("HTTP/1.1 101 Switching Protocols" CRLF
                              "Upgrade: websocket" CRLF
                              "Connection: Upgrade" CRLF
                              "Sec-WebSocket-Accept: " CRLF CRLF) - 1
                       + accept.len
                       + (protocol ? sizeof("Sec-WebSocket-Protocol: " CRLF)
                                     - 1 + protocol->len : 0)
                       + (extensions.len
                          ? sizeof("Sec-WebSocket-Extensions: " CRLF) - 1
                            + extensions.len : 0);

    p = ngx_pnalloc(r->pool, up->response.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    up->response.data = p;

    p = ngx_cpymem(p, "HTTP/1.1 101 Switching Protocols" CRLF
                      "Upgrade: websocket" CRLF
                      "Connection: Upgrade" CRLF
                      "Sec-WebSocket-Accept: ",
                   sizeof("HTTP/1.1 101 Switching Protocols" CRLF
                          "Upgrade: websocket" CRLF
                          "Connection: Upgrade" CRLF
                          "Sec-WebSocket-Accept: ") - 1);
    p = ngx_cpymem(p, accept.data, accept.len);
    *p++ = CR; *p++ = LF;

    if (protocol) {
        p = ngx_cpymem(p, "Sec-WebSocket-Protocol: ",
                       sizeof("Sec-WebSocket-Protocol: ") - 1);
        p = ngx_cpymem(p, protocol->data, protocol->len);
        *p++ = CR; *p++ = LF;
    }

    if (extensions.len) {
        p = ngx_cpymem(p, "Sec-WebSocket-Extensions: ",
                       sizeof("Sec-WebSocket-Extensions: ") - 1);
        p = ngx_cpymem(p, extensions.data, extensions.len);
        *p++ = CR; *p++ = LF;
    }

    *p++ = CR; *p++ = LF;

    /*
     * The request cannot be freed under its own content handler: keep it
     * alive (count) and finish the switch in a posted event.
     */
    up->request = r;
    up->event.handler = ngx_http_chat_ws_detach;
    up->event.data = up;
    up->event.log = r->connection->log;

    r->main->count++;
    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_request_empty_handler;
    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;

    ngx_post_event(&up->event, &ngx_posted_events);

    return NGX_DONE;
}


static void
ngx_http_chat_ws_detach(ngx_event_t *ev)
{
    u_char                      *pipelined;
    size_t                       len;
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_chat_ws_t          *ws;
    ngx_http_connection_t       *hc;
    ngx_http_chat_loc_conf_t    *clcf;
    ngx_http_core_loc_conf_t    *core;
    ngx_http_chat_ws_upgrade_t  *up;
    ngx_chain_t                 *cl;
    ngx_http_chat_ctx_t         *ctx;

    up = ev->data;
    r = up->request;
    c = r->connection;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);
    core = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (c->error || c->close) {
        ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
        return;
    }

    /*
     * Each event is written as it comes (tcp_nodelay, as NGINX's own
     * upgraded connections): Nagle's algorithm held a frame written while
     * the one before was not acknowledged yet, up to the client's delayed
     * ACK, and let the held frames go out one by one later.
     */
    if (core->tcp_nodelay && ngx_tcp_nodelay(c) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
        return;
    }

    ws = ngx_http_chat_ws_create(c, &clcf->ws);
    if (ws == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
        return;
    }

    /* the count is the socket's from here: its session releases it */
    ngx_http_chat_rt_conn_move(up->peer, &ws->peer);

    if (up->use_deflate) {
        ws->deflate = ngx_http_chat_ws_deflate_create(&up->deflate,
                                                      &clcf->ws, c->log);
        if (ws->deflate == NULL) {
            ngx_http_chat_rt_conn_release(&ws->peer);
            ngx_free(ws);
            ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
            return;
        }
    }

    ws->main_conf = r->main_conf;
    ws->srv_conf = r->srv_conf;
    ws->loc_conf = r->loc_conf;

    if (ngx_http_chat_ws_token(r, ws) != NGX_OK) {
        ngx_http_chat_rt_conn_release(&ws->peer);
        ngx_http_chat_ws_deflate_free(ws->deflate);
        ngx_free(ws);
        ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ctx && ctx->ws_resume.len) {
        ws->resume.data = ngx_alloc(ctx->ws_resume.len, c->log);
        if (ws->resume.data == NULL) {
            ngx_http_chat_ws_discard(ws);
            ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
            return;
        }

        ngx_memcpy(ws->resume.data, ctx->ws_resume.data, ctx->ws_resume.len);
        ws->resume.len = ctx->ws_resume.len;
    }

    /* what the client sent after its request is its first frames */
    pipelined = NULL;
    b = r->header_in;
    len = b->last - b->pos;

    if (len) {
        pipelined = ngx_alloc(len, c->log);
        if (pipelined == NULL) {
            ngx_http_chat_ws_discard(ws);
            ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
            return;
        }

        ngx_memcpy(pipelined, b->pos, len);
    }

    /*
     * a sign-in with the request's token answers in the same write as
     * the 101 (ngx_http_chat_ws_hold_raw); Socket.IO's and the echo's
     * first frames wait for the client, which waits for the 101
     */
    if (ws->token.len && ws->conf->app == &ngx_http_chat_rt_app) {
        rc = ngx_http_chat_ws_hold_raw(ws, up->response.data,
                                       up->response.len);

    } else {
        rc = ngx_http_chat_ws_send_raw(ws, up->response.data,
                                       up->response.len);
    }

    if (rc != NGX_OK) {
        c->error = 1;
    }

    /* the request goes (and is logged with its 101); the socket stays */
    hc = r->http_connection;
    ngx_http_free_request(r, 0);
    c->destroyed = 0;

    if (c->buffer && c->buffer->start
        && ngx_pfree(c->pool, c->buffer->start) == NGX_OK)
    {
        c->buffer->pos = NULL;
        c->buffer->start = NULL;
    }

    for (cl = hc->free; cl; cl = cl->next) {
        ngx_pfree(c->pool, cl->buf->start);
    }

    for (cl = hc->busy; cl; cl = cl->next) {
        ngx_pfree(c->pool, cl->buf->start);
    }

    hc->free = NULL;
    hc->busy = NULL;
    hc->nbusy = 0;

    ngx_http_chat_ws_shrink(c, ws);

    (void) ngx_http_chat_ws_start(ws, pipelined, len);

    if (pipelined) {
        ngx_free(pipelined);
    }
}


/* the headers RFC 6455 reads, which NGINX does not parse by itself */
static ngx_int_t
ngx_http_chat_ws_read_offer(ngx_http_request_t *r,
    ngx_http_chat_ws_offer_t *offer)
{
    u_char           *p, *last, *start;
    ngx_str_t        *s;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    ngx_memzero(offer, sizeof(ngx_http_chat_ws_offer_t));

    if (ngx_array_init(&offer->protocols, r->pool, 2, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&offer->extensions, r->pool, 1, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Upgrade") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Upgrade",
                               h[i].key.len) == 0)
        {
            offer->upgrade |= ngx_http_chat_ws_has_token(&h[i].value,
                                                         "websocket");
            continue;
        }

        if (h[i].key.len == sizeof("Connection") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Connection",
                               h[i].key.len) == 0)
        {
            offer->connection |= ngx_http_chat_ws_has_token(&h[i].value,
                                                            "upgrade");
            continue;
        }

        if (h[i].key.len == sizeof("Sec-WebSocket-Key") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Sec-WebSocket-Key",
                               h[i].key.len) == 0)
        {
            offer->key = h[i].value;
            offer->keys++;
            continue;
        }

        if (h[i].key.len == sizeof("Sec-WebSocket-Version") - 1
            && ngx_strncasecmp(h[i].key.data,
                               (u_char *) "Sec-WebSocket-Version",
                               h[i].key.len) == 0)
        {
            offer->version = h[i].value;
            continue;
        }

        if (h[i].key.len == sizeof("Sec-WebSocket-Extensions") - 1
            && ngx_strncasecmp(h[i].key.data,
                               (u_char *) "Sec-WebSocket-Extensions",
                               h[i].key.len) == 0)
        {
            s = ngx_array_push(&offer->extensions);
            if (s == NULL) {
                return NGX_ERROR;
            }

            *s = h[i].value;
            continue;
        }

        if (h[i].key.len != sizeof("Sec-WebSocket-Protocol") - 1
            || ngx_strncasecmp(h[i].key.data,
                               (u_char *) "Sec-WebSocket-Protocol",
                               h[i].key.len) != 0)
        {
            continue;
        }

        /* a comma-separated list of tokens, perhaps in several headers */
        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last) {
            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            start = p;

            while (p < last && *p != ',' && *p != ' ' && *p != '\t') {
                p++;
            }

            if (p > start) {
                s = ngx_array_push(&offer->protocols);
                if (s == NULL) {
                    return NGX_ERROR;
                }

                s->data = start;
                s->len = p - start;
            }
        }
    }

    return NGX_OK;
}


/* is token one of the comma-separated values (case-insensitive)? */
static ngx_uint_t
ngx_http_chat_ws_has_token(ngx_str_t *value, const char *token)
{
    u_char  *p, *last, *start, *end;
    size_t   len;

    len = ngx_strlen(token);
    p = value->data;
    last = p + value->len;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        end = p;

        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        if ((size_t) (end - start) == len
            && ngx_strncasecmp(start, (u_char *) token, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* the first subprotocol the client offers that this location speaks */
static ngx_str_t *
ngx_http_chat_ws_pick_protocol(ngx_http_chat_ws_conf_t *conf,
    ngx_array_t *offered)
{
    ngx_str_t   *o, *ours;
    ngx_uint_t   i, j;

    if (conf->protocols == NULL) {
        return NULL;
    }

    o = offered->elts;
    ours = conf->protocols->elts;

    for (i = 0; i < offered->nelts; i++) {
        for (j = 0; j < conf->protocols->nelts; j++) {
            if (o[i].len == ours[j].len
                && ngx_strncmp(o[i].data, ours[j].data, o[i].len) == 0)
            {
                return &ours[j];
            }
        }
    }

    return NULL;
}


/* an access token in the query (?token=) or an Authorization header */
static ngx_int_t
ngx_http_chat_ws_token(ngx_http_request_t *r, ngx_http_chat_ws_t *ws)
{
    u_char     *p, *last;
    ngx_str_t   value;

    ngx_str_null(&value);

    if (ngx_http_arg(r, (u_char *) "token", 5, &value) != NGX_OK) {
        ngx_str_null(&value);

        if (r->headers_in.authorization) {
            p = r->headers_in.authorization->value.data;
            last = p + r->headers_in.authorization->value.len;

            if (last - p > 7
                && ngx_strncasecmp(p, (u_char *) "Bearer ", 7) == 0)
            {
                value.data = p + 7;
                value.len = last - p - 7;
            }
        }
    }

    if (value.len == 0 || value.len > 4096) {
        return NGX_OK;
    }

    ws->token.data = ngx_alloc(value.len, r->connection->log);
    if (ws->token.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ws->token.data, value.data, value.len);
    ws->token.len = value.len;

    return NGX_OK;
}


/* a session that never started: out of memory during the switch */
static void
ngx_http_chat_ws_discard(ngx_http_chat_ws_t *ws)
{
    ngx_http_chat_rt_conn_release(&ws->peer);
    ngx_http_chat_ws_deflate_free(ws->deflate);

    if (ws->token.data) {
        ngx_free(ws->token.data);
    }

    if (ws->resume.data) {
        ngx_free(ws->resume.data);
    }

    ngx_free(ws);
}


/*
 * The connection's pool holds what its HTTP requests needed (the HTTP
 * connection's state, the log's context: connection_pool_size, 512
 * bytes by default); a socket that lives for hours keeps only its log
 * and addresses, in a pool of their size.  Left as it is when the pool
 * holds anything else: a TLS connection's state, a PROXY protocol
 * header, a cleanup, a large block still in use.
 */
static void
ngx_http_chat_ws_shrink(ngx_connection_t *c, ngx_http_chat_ws_t *ws)
{
    size_t             size, local;
    u_char            *addr;
    ngx_log_t         *log;
    ngx_pool_t        *pool, *old;
    struct sockaddr   *sa, *ls;
    ngx_pool_large_t  *l;

    old = c->pool;

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        return;
    }
#endif

    if (c->proxy_protocol || old->cleanup || old->d.next) {
        return;
    }

    for (l = old->large; l; l = l->next) {
        if (l->alloc) {
            return;
        }
    }

    local = (c->local_sockaddr && c->local_sockaddr
                                  != c->listening->sockaddr)
            ? c->local_socklen : 0;

    size = sizeof(ngx_pool_t)
           + ngx_align(sizeof(ngx_log_t), NGX_ALIGNMENT)
           + ngx_align(c->socklen, NGX_ALIGNMENT)
           + ngx_align(local, NGX_ALIGNMENT)
           + ngx_align(c->addr_text.len, NGX_ALIGNMENT) + NGX_ALIGNMENT;

    pool = ngx_create_pool(size, c->log);
    if (pool == NULL) {
        return;
    }

    log = ngx_palloc(pool, sizeof(ngx_log_t));
    sa = ngx_palloc(pool, c->socklen);
    ls = local ? ngx_palloc(pool, local) : NULL;
    addr = ngx_pnalloc(pool, c->addr_text.len ? c->addr_text.len : 1);

    if (log == NULL || sa == NULL || addr == NULL || (local && ls == NULL)) {
        ngx_destroy_pool(pool);
        return;
    }

    /* ngx_http_chat_ws_start() gives the log its handler and data */
    *log = *c->log;
    log->handler = NULL;
    log->data = NULL;
    pool->log = log;

    ngx_memcpy(sa, c->sockaddr, c->socklen);
    ngx_memcpy(addr, c->addr_text.data, c->addr_text.len);

    if (local) {
        ngx_memcpy(ls, c->local_sockaddr, local);
        c->local_sockaddr = ls;
    }

    c->sockaddr = sa;
    c->addr_text.data = addr;
    c->log = log;
    c->read->log = log;
    c->write->log = log;
    ws->ping.log = log;
    c->pool = pool;

    ngx_destroy_pool(old);
}
