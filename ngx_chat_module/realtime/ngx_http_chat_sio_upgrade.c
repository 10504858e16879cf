/*
 * Copyright (C) ngx_chat_module authors
 *
 * The upgrade of an Engine.IO polling session to a WebSocket.  The GET
 * ?transport=websocket&sid= may land on any worker: it reads what the
 * session's hash in Redis remembers (its Socket.IO id, whether the client
 * connected, the sealed token) and opens a WebSocket that resumes the
 * session.  "2probe" on it ends the polling session's waiting GET; at
 * "5" the WebSocket, once it listens to the user's channels, tells the
 * polling session to go, and takes over what it queued that the client
 * never fetched.  What arrives for the WebSocket before then is held.
 * The polling session, told, answers the events it runs, queues a noop
 * and goes.
 */


#include "ngx_http_chat_rt.h"
#include "ngx_http_chat_sio_int.h"
#include "../core/ngx_http_chat_async.h"


/* the WebSocket's wait for the polling session to go */
typedef struct {
    ngx_http_chat_rt_session_t  *session;   /* NULL once it went */
    ngx_http_chat_rt_link_t     *link;
    ngx_http_chat_rt_link_t     *barrier;
    ngx_event_t                  timeout;
} ngx_http_chat_sio_handover_t;


static ngx_int_t ngx_http_chat_sio_upgrade_found(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_chat_sio_handover_recalled(redisReply *reply,
    void *data);
static void ngx_http_chat_sio_flush_held(ngx_http_chat_rt_session_t *s,
    redisReply *list);
static void ngx_http_chat_sio_handover_end(ngx_http_chat_rt_session_t *s);
static void ngx_http_chat_sio_handover_start(ngx_http_chat_sio_handover_t *h);
static void ngx_http_chat_sio_handover_wake(void *data, u_char *msg,
    size_t len);
static void ngx_http_chat_sio_handover_ready(void *data, u_char *msg,
    size_t len);
static void ngx_http_chat_sio_handover_timeout(ngx_event_t *ev);
static void ngx_http_chat_sio_handover_taken(redisReply *reply, void *data);


/*
 * GET ?transport=websocket&sid=: the upgrade of a polling session.  This
 * worker takes the session over with what Redis remembers of it; the
 * polling one lets go when the client says "5" here.
 */
ngx_int_t
ngx_http_chat_sio_upgrade_handler(ngx_http_request_t *r, ngx_str_t *sid)
{
    ngx_str_t             key;
    const char           *argv[2];
    ngx_http_chat_ctx_t  *ctx;

    if (!ngx_http_chat_sio_sid_valid(sid)) {
        return ngx_http_chat_sio_unknown(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ngx_http_chat_eio_key_alloc(r->pool, &key, NGX_HTTP_CHAT_EIO_SESSION,
                                    sid->data)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->state = ngx_pnalloc(r->pool, NGX_HTTP_CHAT_SIO_ID_LEN);
    if (ctx->state == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->state, sid->data, NGX_HTTP_CHAT_SIO_ID_LEN);

    argv[0] = "HGETALL";
    argv[1] = (const char *) key.data;

    {
        size_t  argvlen[2];

        argvlen[0] = 7;
        argvlen[1] = key.len;

        return ngx_http_chat_redis_request(r, ngx_http_chat_sio_upgrade_found,
                                           2, argv, argvlen);
    }
}


/* resume: "<eio sid> <sio sid> <connected> <token>" for the new socket */
static ngx_int_t
ngx_http_chat_sio_upgrade_found(ngx_http_request_t *r, redisReply *reply)
{
    u_char                    *p;
    size_t                     i;
    ngx_str_t                  sio_sid, token, connected, addr;
    redisReply                *k, *v;
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_loc_conf_t  *clcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        return ngx_http_chat_sio_unknown(r);
    }

    ngx_str_null(&sio_sid);
    ngx_str_null(&token);
    ngx_str_null(&addr);
    ngx_str_set(&connected, "0");

    for (i = 0; i + 1 < reply->elements; i += 2) {
        k = reply->element[i];
        v = reply->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING
            || k->len != 1)
        {
            continue;
        }

        switch (k->str[0]) {
        case 's':
            sio_sid.data = (u_char *) v->str;
            sio_sid.len = v->len;
            break;
        case 't':
            token.data = (u_char *) v->str;
            token.len = v->len;
            break;
        case 'c':
            connected.data = (u_char *) v->str;
            connected.len = v->len;
            break;
        case 'i':
            addr.data = (u_char *) v->str;
            addr.len = v->len;
            break;
        }
    }

    if (sio_sid.len != NGX_HTTP_CHAT_SIO_ID_LEN
        || token.len > NGX_HTTP_CHAT_SIO_SEALED_MAX)
    {
        return ngx_http_chat_sio_unknown(r);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);

    /* whoever has the sid takes the session over: only where it began */
    if (!clcf->sio_upgrade_any_addr
        && (addr.len != r->connection->addr_text.len
            || ngx_strncmp(addr.data, r->connection->addr_text.data,
                           addr.len) != 0))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chat socket.io: an upgrade from another address "
                      "than the session's, refused");
        return ngx_http_chat_sio_unknown(r);
    }

    ctx->ws_resume.len = 2 * NGX_HTTP_CHAT_SIO_ID_LEN + 3 + 1 + token.len;
    ctx->ws_resume.data = ngx_pnalloc(r->pool, ctx->ws_resume.len);
    if (ctx->ws_resume.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(ctx->ws_resume.data, ctx->state,
                   NGX_HTTP_CHAT_SIO_ID_LEN);
    *p++ = ' ';
    p = ngx_cpymem(p, sio_sid.data, sio_sid.len);
    *p++ = ' ';
    *p++ = (connected.len == 1 && connected.data[0] == '1') ? '1' : '0';
    *p++ = ' ';
    p = ngx_cpymem(p, token.data, token.len);
    ctx->ws_resume.len = p - ctx->ws_resume.data;

    return ngx_http_chat_ws_handler(r);
}


/*
 * The upgrade, on the WebSocket's side.  At "2probe" the polling
 * session's waiting GET is ended with a noop (the client pauses polling).
 * At "5", once this session listens to its channels, the polling one is
 * told to go: its last packet is a noop, and what it queued that the
 * client never fetched is taken from Redis and sent here.
 */
void
ngx_http_chat_sio_probe(ngx_http_chat_rt_session_t *s)
{
    if (ngx_http_chat_sio_push_packet(s, (u_char *) "6", 1) == NGX_OK) {
        (void) ngx_http_chat_rt_publish_raw(NGX_HTTP_CHAT_EIO_WAKE_KIND,
                                            s->sio->eio_sid,
                                            (u_char *) "1", 1);
    }
}


void
ngx_http_chat_sio_handover(ngx_http_chat_rt_session_t *s)
{
    u_char                         key[NGX_HTTP_CHAT_EIO_KEY_LEN];
    size_t                         klen;
    ngx_http_chat_sio_handover_t  *h;

    h = ngx_calloc(sizeof(ngx_http_chat_sio_handover_t), ngx_cycle->log);
    if (h == NULL) {
        ngx_http_chat_sio_handover_end(s);
        return;
    }

    h->session = s;
    h->timeout.handler = ngx_http_chat_sio_handover_timeout;
    h->timeout.data = h;
    h->timeout.log = ngx_cycle->log;
    h->timeout.cancelable = 1;

    s->sio->handover = h;

    if (s->authenticated || s->authenticating || s->sio->recalled
        || s->ws->close_sent)
    {
        ngx_http_chat_sio_handover_start(h);
        return;
    }

    s->sio->recalled = 1;

    /*
     * The upgrade read the session before the client's CONNECT was
     * there: the polling session may have signed in with it by now.
     * Then this socket signs in and listens to its chats before the
     * polling one goes, or what is sent to them meanwhile would reach
     * neither.
     */
    klen = ngx_http_chat_eio_key(key, NGX_HTTP_CHAT_EIO_SESSION,
                                 s->sio->eio_sid, NGX_HTTP_CHAT_SIO_ID_LEN)
           - key;

    if (ngx_http_chat_redis_command(ngx_http_chat_redis_main,
                                    ngx_http_chat_sio_handover_recalled, h,
                                    "HMGET %b t a c", key, klen)
        != NGX_OK)
    {
        ngx_http_chat_sio_handover_start(h);
    }
}


static void
ngx_http_chat_sio_handover_recalled(redisReply *reply, void *data)
{
    ngx_str_t                      token;
    redisReply                    *t, *a, *c;
    ngx_http_chat_rt_session_t    *s;
    ngx_http_chat_sio_handover_t  *h;

    h = data;
    s = h->session;

    if (s == NULL) {
        ngx_free(h);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3)
    {
        ngx_http_chat_sio_handover_start(h);
        return;
    }

    t = reply->element[0];
    a = reply->element[1];
    c = reply->element[2];

    /*
     * A token the polling session signed in with and told, or one of an
     * authenticate event still running there (the CONNECT was answered
     * without a token): either way this socket listens before the
     * polling one goes, and the handover tells the client
     * "authenticated" only if the polling session did not.  Not the
     * token of a CONNECT being answered or refused.
     */
    if (t->type != REDIS_REPLY_STRING || t->len == 0
        || t->len > NGX_HTTP_CHAT_SIO_SEALED_MAX
        || !((a->type == REDIS_REPLY_STRING && a->len == 1
              && a->str[0] == '1')
             || (c->type == REDIS_REPLY_STRING && c->len == 1
                 && c->str[0] == '1'))
        || s->authenticated || s->authenticating || s->ws->close_sent)
    {
        ngx_http_chat_sio_handover_start(h);
        return;
    }

    s->sio->handover = NULL;
    ngx_free(h);

    /* a quiet sign-in, as with a token at the upgrade; then the handover */
    s->sio->resuming = 1;
    s->sio->handover_due = 1;

    token.data = (u_char *) t->str;
    token.len = t->len;
    ngx_http_chat_sio_start_sealed(s, &token);
}


static void
ngx_http_chat_sio_handover_start(ngx_http_chat_sio_handover_t *h)
{
    ngx_http_chat_rt_session_t  *s;

    s = h->session;

    h->link = ngx_http_chat_rt_wait(NGX_HTTP_CHAT_EIO_WAKE_KIND,
                                    s->sio->eio_sid,
                                    ngx_http_chat_sio_handover_wake, h);
    if (h->link == NULL) {
        goto failed;
    }

    /*
     * The polling session may go only when this one's subscriptions are
     * live in Redis: a subscription of its own, confirmed after them,
     * says so (Redis answers one connection in order).
     */
    h->barrier = ngx_http_chat_rt_wait(NGX_HTTP_CHAT_EIO_BARRIER_KIND,
                                       s->sio->eio_sid,
                                       ngx_http_chat_sio_handover_ready, h);
    if (h->barrier == NULL) {
        ngx_http_chat_rt_unwait(h->link);
        goto failed;
    }

    /* a polling session already gone never answers: take what is left */
    ngx_add_timer(&h->timeout, 2000);

    return;

failed:

    s->sio->handover = NULL;
    ngx_free(h);
    ngx_http_chat_sio_handover_end(s);
}


static void
ngx_http_chat_sio_handover_ready(void *data, u_char *msg, size_t len)
{
    ngx_http_chat_sio_handover_t  *h;

    h = data;

    if (h->barrier == NULL) {
        return;
    }

    ngx_http_chat_rt_unwait(h->barrier);
    h->barrier = NULL;

    if (h->session) {
        (void) ngx_http_chat_rt_publish_raw(NGX_HTTP_CHAT_EIO_INPUT_KIND,
                                            h->session->sio->eio_sid,
                                            (u_char *) "5", 1);
    }
}


void
ngx_http_chat_sio_handover_cancel(ngx_http_chat_rt_session_t *s)
{
    ngx_http_chat_sio_handover_t  *h;

    h = s->sio->handover;
    s->sio->handover = NULL;
    h->session = NULL;

    if (h->link) {
        ngx_http_chat_rt_unwait(h->link);
        h->link = NULL;
    }

    if (h->barrier) {
        ngx_http_chat_rt_unwait(h->barrier);
        h->barrier = NULL;
    }

    if (h->timeout.timer_set) {
        ngx_del_timer(&h->timeout);
        ngx_free(h);
    }

    /* else a reply is on its way: it frees h */
}


static void
ngx_http_chat_sio_handover_timeout(ngx_event_t *ev)
{
    ngx_http_chat_sio_handover_wake(ev->data, NULL, 0);
}


static void
ngx_http_chat_sio_handover_wake(void *data, u_char *msg, size_t len)
{
    u_char                         key[NGX_HTTP_CHAT_EIO_KEY_LEN],
                                   skey[NGX_HTTP_CHAT_EIO_KEY_LEN];
    size_t                         klen, slen;
    ngx_http_chat_rt_session_t    *s;
    ngx_http_chat_sio_handover_t  *h;

    h = data;

    if (msg && !(len == 1 && msg[0] == 'g')) {
        /* a packet the polling session queued: its last one is due */
        return;
    }

    if (h->link) {
        ngx_http_chat_rt_unwait(h->link);
        h->link = NULL;
    }

    if (h->barrier) {
        /* no confirmation in time: the polling session is told anyway */
        ngx_http_chat_sio_handover_ready(h, NULL, 0);
    }

    if (h->timeout.timer_set) {
        ngx_del_timer(&h->timeout);
    }

    if (h->session == NULL) {
        ngx_free(h);
        return;
    }

    klen = ngx_http_chat_eio_key(key, NGX_HTTP_CHAT_EIO_QUEUE,
                                 h->session->sio->eio_sid,
                                 NGX_HTTP_CHAT_SIO_ID_LEN)
           - key;
    slen = ngx_http_chat_eio_key(skey, NGX_HTTP_CHAT_EIO_SESSION,
                                 h->session->sio->eio_sid,
                                 NGX_HTTP_CHAT_SIO_ID_LEN)
           - skey;

    /* the list, atomically; the session's keys are this socket's now */
    if (ngx_http_chat_redis_command(ngx_http_chat_redis_main,
                                    ngx_http_chat_sio_handover_taken, h,
                                    "EVAL %s 2 %b %b",
                                    "local p = redis.call('LRANGE', KEYS[2],"
                                    " 0, -1) local c = redis.call('HGET', "
                                    "KEYS[1], 'c') local t = redis.call("
                                    "'HGET', KEYS[1], 't') local a = "
                                    "redis.call('HGET', KEYS[1], 'a') "
                                    "redis.call('DEL', KEYS[2], KEYS[1]) "
                                    "return {c or '', p, t or '', "
                                    "a or ''}",
                                    skey, slen, key, klen)
        != NGX_OK)
    {
        s = h->session;
        s->sio->handover = NULL;
        ngx_free(h);
        ngx_http_chat_sio_handover_end(s);
    }
}


static void
ngx_http_chat_sio_handover_taken(redisReply *reply, void *data)
{
    size_t                         i;
    ngx_str_t                      token;
    redisReply                    *e, *c, *list, *t, *a;
    ngx_http_chat_ws_t            *ws;
    ngx_http_chat_rt_session_t    *s;
    ngx_http_chat_sio_handover_t  *h;

    h = data;
    s = h->session;

    if (s == NULL) {
        ngx_free(h);
        return;
    }

    ws = s->ws;
    s->sio->handover = NULL;
    ngx_free(h);

    c = NULL;
    t = NULL;
    a = NULL;
    list = NULL;

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 4) {
        c = reply->element[0];
        list = reply->element[1];
        t = reply->element[2];
        a = reply->element[3];
    }

    if (c && c->type == REDIS_REPLY_STRING && c->len == 1 && c->str[0] == '1')
    {
        /* the polling session answered the CONNECT, its GET took it */
        s->sio->unanswered = 0;
        s->sio->connected = 1;

    } else if (!(c && c->type == REDIS_REPLY_STRING && c->len == 1
                 && c->str[0] == 'p'))
    {
        /* no CONNECT is owed an answer: none is sent unasked */
        s->sio->unanswered = 0;
    }

    if (list && list->type != REDIS_REPLY_ARRAY) {
        list = NULL;
    }

    /* messages only: pings and noops were the polling transport's */
    for (i = 0; list && i < list->elements; i++) {
        e = list->element[i];

        if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->str[0] != '4')
        {
            continue;
        }

        if (e->len > 1 && (e->str[1] == '0' || e->str[1] == '4')) {
            /* the polling session answered the CONNECT after all */
            s->sio->unanswered = 0;
        }

        if (ngx_http_chat_ws_send(ws, NGX_HTTP_CHAT_WS_TEXT,
                                  (u_char *) e->str, e->len)
            != NGX_OK)
        {
            break;
        }
    }

    /* then what reached this socket meanwhile, but not twice */
    ngx_http_chat_sio_flush_held(s, list);

    if (!ws->destroy && s->sio->unanswered) {
        if (s->sio->auth_data == NULL && !s->authenticated
            && t && t->type == REDIS_REPLY_STRING && t->len
            && t->len <= NGX_HTTP_CHAT_SIO_SEALED_MAX)
        {
            /* the CONNECT came with a token after the upgrade began */
            s->sio->unanswered = 0;
            s->sio->connecting = 1;
            token.data = (u_char *) t->str;
            token.len = t->len;
            ngx_http_chat_sio_start_sealed(s, &token);

        } else {
            ngx_http_chat_sio_answer_connect(s);
        }
    }

    if (!ws->destroy && !s->sio->connecting) {
        if (s->sio->auth_data
            && !(a && a->type == REDIS_REPLY_STRING && a->len == 1))
        {
            /* signed in here, never told over polling */
            ngx_http_chat_sio_answer_auth(s);

        } else if (!s->authenticated && !s->authenticating
                   && t && t->type == REDIS_REPLY_STRING && t->len
                   && t->len <= NGX_HTTP_CHAT_SIO_SEALED_MAX)
        {
            /*
             * An authenticate event still running over polling when this
             * socket recalled the session.  If the polling session
             * finished it and told the client (its "authenticated" was
             * in the list sent above), this socket signs in quietly:
             * a second "authenticated" would be the client's second.
             * Otherwise it never finished: this socket answers it.
             */
            if (a && a->type == REDIS_REPLY_STRING && a->len == 1
                && a->str[0] == '1')
            {
                s->sio->resuming = 1;
            }

            token.data = (u_char *) t->str;
            token.len = t->len;
            ngx_http_chat_sio_start_sealed(s, &token);
        }
    }

    if (s->sio->auth_data) {
        json_decref(s->sio->auth_data);
        s->sio->auth_data = NULL;
    }

    if (!ws->destroy) {
        /* after a sign-in started above: its events still wait for it */
        ngx_http_chat_rt_unhold(s);
    }
}


/* no handover after all: what waited for it goes on */
static void
ngx_http_chat_sio_handover_end(ngx_http_chat_rt_session_t *s)
{
    ngx_http_chat_ws_t  *ws;

    ws = s->ws;

    ngx_http_chat_sio_flush_held(s, NULL);

    if (!ws->destroy) {
        ngx_http_chat_rt_unhold(s);
    }
}


/* a delivery to an upgrade's WebSocket before the handover: kept */
ngx_int_t
ngx_http_chat_sio_hold_frame(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_ws_buf_t *buf)
{
    ngx_uint_t               size;
    ngx_http_chat_sio_t     *sio;
    ngx_http_chat_ws_buf_t **held;

    sio = s->sio;

    if (sio->nheld == sio->held_size) {
        if (sio->held_size == NGX_HTTP_CHAT_SIO_QUEUE_MAX) {
            /* as a poller that stops polling: it comes back and resyncs */
            ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_TRY_AGAIN,
                                   "too much waiting");
            return NGX_ERROR;
        }

        size = ngx_min(sio->held_size ? 2 * sio->held_size : 16,
                       NGX_HTTP_CHAT_SIO_QUEUE_MAX);

        held = ngx_alloc(size * sizeof(ngx_http_chat_ws_buf_t *),
                         ngx_cycle->log);
        if (held == NULL) {
            ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_SERVER_ERROR,
                                   NULL);
            return NGX_ERROR;
        }

        if (sio->nheld) {
            ngx_memcpy(held, sio->held,
                       sio->nheld * sizeof(ngx_http_chat_ws_buf_t *));
        }

        ngx_free(sio->held);
        sio->held = held;
        sio->held_size = size;
    }

    buf->refs++;
    sio->held[sio->nheld++] = buf;

    return NGX_OK;
}


/* the text of a frame the fan-out encoded: after its header */
static u_char *
ngx_http_chat_sio_frame_text(ngx_http_chat_ws_buf_t *buf, size_t *len)
{
    size_t  hlen;

    hlen = ngx_min(ngx_http_chat_ws_frame_header_len(buf->data, buf->len),
                   buf->len);
    *len = buf->len - hlen;

    return buf->data + hlen;
}


/*
 * The held deliveries go out, but not those the polling session queued
 * too (list): an event both heard between this socket's subscriptions
 * and the polling session's going.  Each queued packet stands for one.
 */
static void
ngx_http_chat_sio_flush_held(ngx_http_chat_rt_session_t *s,
    redisReply *list)
{
    u_char                  *text, *used;
    size_t                   len;
    ngx_uint_t               i, j, n;
    redisReply              *e;
    ngx_http_chat_sio_t     *sio;
    ngx_http_chat_ws_buf_t  *buf;

    sio = s->sio;
    sio->holding = 0;

    n = list ? list->elements : 0;
    used = n ? ngx_calloc(n, ngx_cycle->log) : NULL;

    for (i = 0; i < sio->nheld; i++) {
        buf = sio->held[i];
        sio->held[i] = NULL;

        text = ngx_http_chat_sio_frame_text(buf, &len);

        for (j = 0; used && j < n; j++) {
            e = list->element[j];

            if (!used[j] && e->type == REDIS_REPLY_STRING
                && (size_t) e->len == len
                && ngx_memcmp(e->str, text, len) == 0)
            {
                used[j] = 1;
                break;
            }
        }

        if ((used == NULL || j == n) && !s->ws->destroy) {
            (void) ngx_http_chat_ws_send_buf(s->ws, buf);
        }

        ngx_http_chat_ws_buf_release(buf);
    }

    if (used) {
        ngx_free(used);
    }

    ngx_free(sio->held);
    sio->held = NULL;
    sio->nheld = 0;
    sio->held_size = 0;
}


/* at "2probe" (keep): what was held till then reaches the client over
 * polling, which heard it too */
void
ngx_http_chat_sio_drop_held(ngx_http_chat_rt_session_t *s, ngx_uint_t keep)
{
    ngx_uint_t  i;

    for (i = 0; i < s->sio->nheld; i++) {
        ngx_http_chat_ws_buf_release(s->sio->held[i]);
    }

    ngx_free(s->sio->held);
    s->sio->held = NULL;
    s->sio->nheld = 0;
    s->sio->held_size = 0;
    s->sio->holding = keep ? s->sio->holding : 0;
}


/*
 * The polling session after an upgrade: gone once its events are
 * answered (their acks must reach the queue the new transport takes),
 * its last packet a noop.
 */
void
ngx_http_chat_sio_leave(ngx_http_chat_rt_session_t *s)
{
    if (!s->sio->leaving || s->ops || s->pending) {
        return;
    }

    s->sio->leaving = 0;

    /* the last packet: the upgrade's socket takes what is left after it */
    s->sio->gone = 1;

    (void) ngx_http_chat_ws_send(s->ws, NGX_HTTP_CHAT_WS_TEXT,
                                 (u_char *) "6", 1);

    /* posted: callers up the stack may still hold the session */
    ngx_post_event(&s->sio->leave, &ngx_posted_events);
}


void
ngx_http_chat_sio_left(ngx_event_t *ev)
{
    ngx_http_chat_sio_t  *sio;

    sio = ev->data;

    ngx_http_chat_ws_abort(sio->session->ws);
}
