/*
 * Copyright (C) ngx_chat_module authors
 *
 * A WebSocket after the upgrade: the HTTP request is gone, the connection
 * belongs to a small session.  Reads go through one buffer per worker;
 * writes go straight to the socket and are queued only when it is full,
 * up to a bound past which a slow reader is closed.
 */


#include "ngx_http_chat_ws.h"
#include "../util/ngx_http_chat_metrics.h"


#define NGX_HTTP_CHAT_WS_READ_BUF      65536
#define NGX_HTTP_CHAT_WS_READS         16    /* then let others run */
#define NGX_HTTP_CHAT_WS_CLOSE_WAIT    5000  /* for the peer's close */


static void ngx_http_chat_ws_read_handler(ngx_event_t *rev);
static void ngx_http_chat_ws_write_handler(ngx_event_t *wev);
static void ngx_http_chat_ws_ping_handler(ngx_event_t *ev);
static void ngx_http_chat_ws_ping(ngx_http_chat_ws_t *ws);
static void ngx_http_chat_ws_close_frame(ngx_http_chat_ws_t *ws,
    ngx_uint_t code, const char *reason);
static ngx_int_t ngx_http_chat_ws_queue(ngx_http_chat_ws_t *ws,
    ngx_http_chat_ws_buf_t *buf);
static ngx_int_t ngx_http_chat_ws_unhold(ngx_http_chat_ws_t *ws,
    ngx_http_chat_ws_buf_t *buf);
static ngx_int_t ngx_http_chat_ws_queue_rest(ngx_http_chat_ws_t *ws,
    ngx_http_chat_ws_buf_t *buf, size_t sent);
static ngx_int_t ngx_http_chat_ws_flush(ngx_http_chat_ws_t *ws);
static void ngx_http_chat_ws_drop_queue(ngx_http_chat_ws_t *ws,
    ngx_uint_t keep_partial);
static void ngx_http_chat_ws_finalize(ngx_http_chat_ws_t *ws);
static void ngx_http_chat_ws_free_handler(ngx_event_t *ev);
static void ngx_http_chat_ws_free(ngx_http_chat_ws_t *ws);
static u_char *ngx_http_chat_ws_log_error(ngx_log_t *log, u_char *buf,
    size_t len);


static u_char  ngx_http_chat_ws_read_buf[NGX_HTTP_CHAT_WS_READ_BUF];


ngx_http_chat_ws_t *
ngx_http_chat_ws_create(ngx_connection_t *c, ngx_http_chat_ws_conf_t *conf)
{
    ngx_http_chat_ws_t  *ws;

    ws = ngx_calloc(sizeof(ngx_http_chat_ws_t), c->log);
    if (ws == NULL) {
        return NULL;
    }

    ws->connection = c;
    ws->conf = conf;
    ws->out_last = &ws->out;

    ws->ping.handler = ngx_http_chat_ws_ping_handler;
    ws->ping.data = ws;
    ws->ping.log = c->log;

    return ws;
}


/*
 * The request was freed; the connection is ours.  The 101 response is
 * already queued; bytes the client sent right after its request are
 * parsed as frames.
 */
ngx_int_t
ngx_http_chat_ws_start(ngx_http_chat_ws_t *ws, u_char *pipelined, size_t len)
{
    ngx_connection_t  *c;

    c = ws->connection;

    c->data = ws;
    c->read->handler = ngx_http_chat_ws_read_handler;
    c->write->handler = ngx_http_chat_ws_write_handler;
    c->log->handler = ngx_http_chat_ws_log_error;
    c->log->data = ws;
    c->log->action = NULL;

    /* a graceful shutdown closes "idle" connections: ours say 1001 */
    c->idle = 1;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    ws->last_read = ngx_current_msec;
    ws->ping.cancelable = 1;

    /*
     * a transport without a socket of its own keeps its own heartbeat; a
     * held 101 goes alone when this fires first (then it pings as usual)
     */
    if (ws->release == NULL) {
        ngx_add_timer(&ws->ping, ws->held ? NGX_HTTP_CHAT_WS_HOLD
                                          : ws->conf->ping_interval);
    }

    if (ws->conf->app->open(ws) != NGX_OK) {
        ws->closed = 1;
        ngx_http_chat_ws_close(ws, NGX_HTTP_CHAT_WS_SERVER_ERROR, NULL);
    }

    if (len) {
        (void) ngx_http_chat_ws_read(ws, pipelined, len);
    }

    if (ngx_exiting) {
        ngx_http_chat_ws_close(ws, NGX_HTTP_CHAT_WS_GOING_AWAY,
                               "server shutting down");
    }

    if (ws->destroy || ws->release) {
        return NGX_OK;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_chat_ws_finalize(ws);
        return NGX_OK;
    }

    if (c->read->ready) {
        ngx_post_event(c->read, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_http_chat_ws_read_handler(ngx_event_t *rev)
{
    ssize_t              n;
    ngx_uint_t           i;
    ngx_connection_t    *c;
    ngx_http_chat_ws_t  *ws;

    c = rev->data;
    ws = c->data;

    if (ws->destroy) {
        return;     /* its free is posted */
    }

    if (c->close) {
        c->close = 0;
        ngx_http_chat_ws_close(ws, NGX_HTTP_CHAT_WS_GOING_AWAY,
                               "server shutting down");
        return;
    }

    for (i = 0; i < NGX_HTTP_CHAT_WS_READS; i++) {

        n = c->recv(c, ngx_http_chat_ws_read_buf,
                    NGX_HTTP_CHAT_WS_READ_BUF);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            /* the peer went away without a close frame */
            c->error = 1;
            ngx_http_chat_ws_finalize(ws);
            return;
        }

        ws->last_read = ngx_current_msec;
        ws->awaiting_pong = 0;

        if (ngx_http_chat_ws_read(ws, ngx_http_chat_ws_read_buf, n)
            != NGX_OK)
        {
            if (ws->close_received && ws->out == NULL) {
                ngx_http_chat_ws_finalize(ws);
            }

            return;
        }

        if (ws->destroy) {
            return;
        }
    }

    if (i == NGX_HTTP_CHAT_WS_READS) {
        ngx_post_event(rev, &ngx_posted_events);
        return;
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_chat_ws_finalize(ws);
    }
}


static void
ngx_http_chat_ws_write_handler(ngx_event_t *wev)
{
    ngx_connection_t    *c;
    ngx_http_chat_ws_t  *ws;

    c = wev->data;
    ws = c->data;

    if (ws->destroy) {
        return;
    }

    if (ngx_http_chat_ws_flush(ws) == NGX_ERROR) {
        ngx_http_chat_ws_finalize(ws);
    }
}


static void
ngx_http_chat_ws_ping_handler(ngx_event_t *ev)
{
    ngx_http_chat_ws_t  *ws;

    ws = ev->data;

    ngx_http_chat_ws_ping(ws);
}


static void
ngx_http_chat_ws_ping(ngx_http_chat_ws_t *ws)
{
    ngx_msec_t  idle;
    ngx_event_t *ev;

    ev = &ws->ping;

    if (ws->held && ngx_http_chat_ws_unhold(ws, NULL) == NGX_ERROR) {
        ngx_http_chat_ws_finalize(ws);
        return;
    }

    if (ws->close_sent) {
        /* the peer never answered our close */
        ngx_http_chat_ws_finalize(ws);
        return;
    }

    idle = ngx_current_msec - ws->last_read;

    if (ws->awaiting_pong) {
        if (idle >= ws->conf->pong_timeout) {
            ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                          "chat ws: no pong in time, closing");
            ws->connection->timedout = 1;
            ngx_http_chat_ws_finalize(ws);
            return;
        }

        ngx_add_timer(ev, ws->conf->pong_timeout - idle);
        return;
    }

    if (idle < ws->conf->ping_interval) {
        ngx_add_timer(ev, ws->conf->ping_interval - idle);
        return;
    }

    ws->awaiting_pong = 1;
    ws->last_read = ngx_current_msec;

    /* pings go out only after a quiet interval: never on the hot path */
    if (ngx_http_chat_ws_send(ws, NGX_HTTP_CHAT_WS_PING, NULL, 0) == NGX_OK
        && !ws->destroy)
    {
        ngx_add_timer(ev, ws->conf->pong_timeout);
    }
}


ngx_int_t
ngx_http_chat_ws_send(ngx_http_chat_ws_t *ws, ngx_uint_t opcode, u_char *data,
    size_t len)
{
    ngx_int_t                rc;
    ngx_http_chat_ws_buf_t  *buf;

    if (ws->deflate && opcode < NGX_HTTP_CHAT_WS_CLOSE) {
        buf = ngx_http_chat_ws_deflate_frame(ws, opcode, data, len);

    } else {
        buf = ngx_http_chat_ws_frame(opcode, 0, data, len);
    }

    if (buf == NULL) {
        return NGX_ERROR;
    }

    buf->refs = 1;
    rc = ngx_http_chat_ws_send_buf(ws, buf);
    ngx_http_chat_ws_buf_release(buf);

    return rc;
}


/*
 * Sends or queues a frame; the caller keeps its reference.  NGX_OK: out
 * or queued; NGX_DECLINED: the socket is closing and the frame was
 * dropped; NGX_ERROR: the socket failed and goes.  The socket and its
 * app session stay valid until the posted free runs: the caller may go
 * on using them, and sees ws->destroy.
 */
ngx_int_t
ngx_http_chat_ws_send_buf(ngx_http_chat_ws_t *ws, ngx_http_chat_ws_buf_t *buf)
{
    if (ws->close_sent || ws->destroy) {
        return NGX_DECLINED;
    }

    if (ngx_http_chat_ws_queue(ws, buf) == NGX_ERROR) {
        ngx_http_chat_ws_finalize(ws);
    }

    if (ws->destroy) {
        return NGX_ERROR;
    }

    return ws->close_sent ? NGX_DECLINED : NGX_OK;
}


/* bytes that are not a frame: the 101 response */
ngx_int_t
ngx_http_chat_ws_send_raw(ngx_http_chat_ws_t *ws, u_char *data, size_t len)
{
    ngx_int_t                rc;
    ngx_http_chat_ws_buf_t  *buf;

    buf = ngx_http_chat_ws_buf_alloc(len);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(buf->data, data, len);
    buf->refs = 1;

    rc = ngx_http_chat_ws_queue(ws, buf);

    ngx_http_chat_ws_buf_release(buf);

    return rc;
}


/*
 * The 101 of a socket that signs in with its request's token waits for
 * the first frame, the sign-in's answer, and goes in the same write: one
 * segment and one wakeup of the client, not two.  A sign-in that takes
 * longer than NGX_HTTP_CHAT_WS_HOLD lets it go alone (the ping timer).
 */
ngx_int_t
ngx_http_chat_ws_hold_raw(ngx_http_chat_ws_t *ws, u_char *data, size_t len)
{
    ngx_http_chat_ws_buf_t  *buf;
    ngx_http_chat_ws_out_t  *out;

    buf = ngx_http_chat_ws_buf_alloc(len);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    out = ngx_alloc(sizeof(ngx_http_chat_ws_out_t), ws->connection->log);
    if (out == NULL) {
        ngx_free(buf);
        return NGX_ERROR;
    }

    ngx_memcpy(buf->data, data, len);
    buf->refs = 1;

    out->next = NULL;
    out->buf = buf;
    out->sent = 0;

    ws->out = out;
    ws->out_last = &out->next;
    ws->queued = len;
    ws->held = 1;

    return NGX_OK;
}


/* the held 101 goes, with buf after it in the same write if there is one */
static ngx_int_t
ngx_http_chat_ws_unhold(ngx_http_chat_ws_t *ws, ngx_http_chat_ws_buf_t *buf)
{
    ngx_int_t                rc;
    ngx_http_chat_ws_buf_t  *held, *both;
    ngx_http_chat_ws_out_t  *out;

    out = ws->out;
    held = out->buf;
    ngx_free(out);

    ws->held = 0;
    ws->out = NULL;
    ws->out_last = &ws->out;
    ws->queued = 0;

    if (buf) {
        /* the hold's timer is the ping's again, not a wakeup in a second */
        if (ws->ping.timer_set) {
            ngx_add_timer(&ws->ping, ws->conf->ping_interval);
        }

        both = ngx_http_chat_ws_buf_alloc(held->len + buf->len);
        if (both == NULL) {
            ngx_http_chat_ws_buf_release(held);
            return NGX_ERROR;
        }

        ngx_memcpy(ngx_cpymem(both->data, held->data, held->len),
                   buf->data, buf->len);
        both->refs = 1;

        ngx_http_chat_ws_buf_release(held);
        held = both;
    }

    rc = ngx_http_chat_ws_queue(ws, held);
    ngx_http_chat_ws_buf_release(held);

    return rc;
}


/* a write straight to the socket when nothing waits, else the queue */
static ngx_int_t
ngx_http_chat_ws_queue(ngx_http_chat_ws_t *ws, ngx_http_chat_ws_buf_t *buf)
{
    size_t             sent;
    ssize_t            n;
    ngx_connection_t  *c;

    if (ws->held) {
        return ngx_http_chat_ws_unhold(ws, buf);
    }

    c = ws->connection;
    sent = 0;

    if (ws->out == NULL && c->write->ready) {
        n = c->send(c, buf->data, buf->len);

        if (n == NGX_ERROR) {
            c->error = 1;
            return NGX_ERROR;
        }

        if (n > 0) {
            sent = n;
        }

        if (sent == buf->len) {
            return NGX_OK;
        }
    }

    return ngx_http_chat_ws_queue_rest(ws, buf, sent);
}


/*
 * A send of buf made elsewhere (ngx_http_chat_ws_batch.c), on a socket
 * that had nothing queued: n its result as c->send() would return it.
 * What did not go is queued; a failed socket is closed (its free is
 * posted), as ngx_http_chat_ws_send_buf() does.
 */
void
ngx_http_chat_ws_sent(ngx_http_chat_ws_t *ws, ngx_http_chat_ws_buf_t *buf,
    ssize_t n)
{
    ngx_connection_t  *c;

    c = ws->connection;

    if (n == NGX_ERROR) {
        c->error = 1;
        c->write->error = 1;
        ngx_http_chat_ws_finalize(ws);
        return;
    }

    if (n > 0) {
        c->sent += n;
    }

    if (n == (ssize_t) buf->len) {
        return;
    }

    /* the socket is full: what is left waits for it, as c->send() says */
    c->write->ready = 0;

    if (ngx_http_chat_ws_queue_rest(ws, buf, n > 0 ? (size_t) n : 0)
        == NGX_ERROR)
    {
        ngx_http_chat_ws_finalize(ws);
    }
}


static ngx_int_t
ngx_http_chat_ws_queue_rest(ngx_http_chat_ws_t *ws,
    ngx_http_chat_ws_buf_t *buf, size_t sent)
{
    ngx_connection_t        *c;
    ngx_http_chat_ws_out_t  *out;

    c = ws->connection;

    out = ngx_alloc(sizeof(ngx_http_chat_ws_out_t), c->log);
    if (out == NULL) {
        return NGX_ERROR;
    }

    out->next = NULL;
    out->buf = buf;
    out->sent = sent;
    buf->refs++;

    *ws->out_last = out;
    ws->out_last = &out->next;
    ws->queued += buf->len - sent;

    if (ws->queued > ws->conf->max_queue && !ws->close_sent) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "chat ws: %uz bytes wait to go out, closing a slow "
                      "reader", ws->queued);
        ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_SLOW_CLOSED);

        ngx_http_chat_ws_close_frame(ws, NGX_HTTP_CHAT_WS_POLICY,
                                     "slow reader");
        return NGX_OK;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_ws_flush(ngx_http_chat_ws_t *ws)
{
    ssize_t                  n;
    ngx_connection_t        *c;
    ngx_http_chat_ws_out_t  *out;

    if (ws->held) {
        return NGX_OK;
    }

    c = ws->connection;

    while (ws->out) {
        out = ws->out;

        n = c->send(c, out->buf->data + out->sent, out->buf->len - out->sent);

        if (n == NGX_ERROR) {
            c->error = 1;
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN) {
            break;
        }

        out->sent += n;
        ws->queued -= n;

        if (out->sent < out->buf->len) {
            break;
        }

        ws->out = out->next;
        ngx_http_chat_ws_buf_release(out->buf);
        ngx_free(out);
    }

    if (ws->out) {
        if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    ws->out_last = &ws->out;

    if (ws->close_sent && ws->close_received) {
        ngx_http_chat_ws_finalize(ws);
        return NGX_DONE;
    }

    return NGX_OK;
}


/* a slow reader: what it has not started to get is dropped */
static void
ngx_http_chat_ws_drop_queue(ngx_http_chat_ws_t *ws, ngx_uint_t keep_partial)
{
    ngx_http_chat_ws_out_t  *out, *next, *keep;

    keep = NULL;
    out = ws->out;

    if (keep_partial && out && out->sent) {
        keep = out;
        out = out->next;
        keep->next = NULL;
    }

    for ( /* void */ ; out; out = next) {
        next = out->next;
        ngx_http_chat_ws_buf_release(out->buf);
        ngx_free(out);
    }

    ws->out = keep;
    ws->out_last = keep ? &keep->next : &ws->out;
    ws->queued = keep ? keep->buf->len - keep->sent : 0;
}


/*
 * Starts the closing handshake: our close frame goes out, and the socket
 * closes when the peer's close came back (or after a wait).
 */
void
ngx_http_chat_ws_close(ngx_http_chat_ws_t *ws, ngx_uint_t code,
    const char *reason)
{
    ngx_http_chat_ws_close_frame(ws, code, reason);
}


static void
ngx_http_chat_ws_close_frame(ngx_http_chat_ws_t *ws, ngx_uint_t code,
    const char *reason)
{
    size_t                   len;
    u_char                   payload[125];
    ngx_http_chat_ws_buf_t  *buf;

    if (ws->close_sent || ws->destroy) {
        return;
    }

    /* a held 101 is not a reader's backlog: it goes with the close */
    if (ws->queued > ws->conf->max_queue && !ws->held) {
        ngx_http_chat_ws_drop_queue(ws, 1);
    }

    payload[0] = (u_char) (code >> 8);
    payload[1] = (u_char) code;
    len = 2;

    if (reason) {
        len += ngx_min(ngx_strlen(reason), sizeof(payload) - 2);
        ngx_memcpy(payload + 2, reason, len - 2);
    }

    ws->close_sent = 1;

    buf = ngx_http_chat_ws_frame(NGX_HTTP_CHAT_WS_CLOSE, 0, payload, len);
    if (buf == NULL) {
        ngx_http_chat_ws_finalize(ws);
        return;
    }

    buf->refs = 1;

    if (ngx_http_chat_ws_queue(ws, buf) != NGX_OK) {
        ngx_http_chat_ws_buf_release(buf);
        ngx_http_chat_ws_finalize(ws);
        return;
    }

    ngx_http_chat_ws_buf_release(buf);

    if (ws->close_received && ws->out == NULL) {
        ngx_http_chat_ws_finalize(ws);
        return;
    }

    /* the wait for the peer's close keeps an exiting worker alive */
    if (ws->ping.timer_set) {
        ngx_del_timer(&ws->ping);
    }

    ws->ping.cancelable = 0;
    ngx_add_timer(&ws->ping, ngx_exiting ? 1000 : NGX_HTTP_CHAT_WS_CLOSE_WAIT);
}


/*
 * The one way a socket goes: it is freed from a posted event, never under
 * a caller that may still use it or its app session.  The ping event does
 * it: a socket that goes needs no more pings.
 */
static void
ngx_http_chat_ws_finalize(ngx_http_chat_ws_t *ws)
{
    if (ws->destroy) {
        return;
    }

    ws->destroy = 1;

    if (ws->ping.timer_set) {
        ngx_del_timer(&ws->ping);
    }

    ws->ping.handler = ngx_http_chat_ws_free_handler;
    ngx_post_event(&ws->ping, &ngx_posted_events);
}


static void
ngx_http_chat_ws_free_handler(ngx_event_t *ev)
{
    ngx_http_chat_ws_free(ev->data);
}


static void
ngx_http_chat_ws_free(ngx_http_chat_ws_t *ws)
{
    ngx_connection_t  *c;

    c = ws->connection;

    if (!ws->closed) {
        ws->closed = 1;
        ws->conf->app->close(ws);
    }

    if (ws->ping.timer_set) {
        ngx_del_timer(&ws->ping);
    }

    if (ws->ping.posted) {
        ngx_delete_posted_event(&ws->ping);
    }

    ngx_http_chat_ws_drop_queue(ws, 0);

    if (ws->message) {
        ngx_free(ws->message);
    }

    if (ws->control) {
        ngx_free(ws->control);
    }

    if (ws->deflate) {
        ngx_http_chat_ws_deflate_free(ws->deflate);
    }

    if (ws->token.data) {
        ngx_free(ws->token.data);
    }

    if (ws->resume.data) {
        ngx_free(ws->resume.data);
    }

    if (ws->release) {
        /* not a socket: its owner frees what stands for one */
        ws->release(c);
        ngx_free(ws);
        return;
    }

    ngx_free(ws);

    c->log->handler = NULL;
    c->log->data = NULL;
    c->data = NULL;

    ngx_http_close_connection(c);
}


static u_char *
ngx_http_chat_ws_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    u_char              *p;
    ngx_http_chat_ws_t  *ws;

    ws = log->data;
    p = buf;

    if (ws == NULL) {
        return p;
    }

    p = ngx_snprintf(buf, len, ", client: %V, websocket",
                     &ws->connection->addr_text);

    return p;
}


/*
 * The socket goes without a closing handshake (a Socket.IO transport that
 * was upgraded), freed from a posted event.
 */
void
ngx_http_chat_ws_abort(ngx_http_chat_ws_t *ws)
{
    ngx_http_chat_ws_finalize(ws);
}
