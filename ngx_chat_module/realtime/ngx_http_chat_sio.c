/*
 * Copyright (C) ngx_chat_module authors
 *
 * Socket.IO v5 over Engine.IO v4: a second codec in front of the same
 * event router as the plain endpoint.  An EVENT ["name", data] with an
 * ack id becomes the event {"event": name, "data": data, "id": ackid};
 * what the router emits becomes EVENT packets, its answers ACK packets.
 *
 *     Engine.IO:  0 open  1 close  2 ping  3 pong  4 message  5 upgrade
 *                 6 noop
 *     Socket.IO:  0 CONNECT  1 DISCONNECT  2 EVENT  3 ACK
 *                 4 CONNECT_ERROR  5 BINARY_EVENT  6 BINARY_ACK
 */


#include <openssl/rand.h>

#include "ngx_http_chat_rt.h"
#include "ngx_http_chat_sio_int.h"
#include "ngx_http_chat_sio_codec.h"
#include "../util/ngx_http_chat_metrics.h"


static ngx_int_t ngx_http_chat_sio_open(ngx_http_chat_ws_t *ws);
static ngx_int_t ngx_http_chat_sio_resume(ngx_http_chat_rt_session_t *s,
    ngx_str_t *resume);
static void ngx_http_chat_sio_close(ngx_http_chat_ws_t *ws);
static void ngx_http_chat_sio_packet(ngx_http_chat_rt_session_t *s,
    u_char *p, size_t len);
static void ngx_http_chat_sio_connect(ngx_http_chat_rt_session_t *s,
    u_char *p, size_t len);
static ngx_int_t ngx_http_chat_sio_event(ngx_http_chat_rt_session_t *s,
    u_char *p, size_t len, ngx_uint_t root);
static void ngx_http_chat_sio_refuse_nsp(ngx_http_chat_rt_session_t *s,
    u_char *nsp, size_t len);
static void ngx_http_chat_sio_disconnect(ngx_http_chat_rt_session_t *s);
static void ngx_http_chat_sio_heartbeat(ngx_event_t *ev);
static void ngx_http_chat_sio_note_next(ngx_http_chat_rt_session_t *s,
    u_char field, u_char value);
static void ngx_http_chat_sio_send_json(ngx_http_chat_rt_session_t *s,
    const char *prefix, json_t *id, json_t *json, ngx_uint_t bracket);
static void ngx_http_chat_sio_send_frame(ngx_http_chat_rt_session_t *s,
    const char *prefix, json_t *id, json_t *json, ngx_str_t *js,
    ngx_uint_t bracket);
static void ngx_http_chat_sio_emit_frames(ngx_http_chat_rt_session_t *s,
    const char *event, json_t *data, ngx_str_t *text, json_t *id);


ngx_http_chat_ws_app_t  ngx_http_chat_sio_app = {
    ngx_http_chat_sio_open,
    ngx_http_chat_sio_message,
    ngx_http_chat_sio_close
};


/* 24 characters of base64url: an Engine.IO or a Socket.IO id */
void
ngx_http_chat_sio_id(u_char *out)
{
    u_char      raw[18];
    ngx_str_t   src, dst;
    ngx_msec_t  now;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        /* unpredictable ids matter little here: unique ones do */
        now = ngx_current_msec;
        ngx_memzero(raw, sizeof(raw));
        ngx_memcpy(raw, &now, sizeof(now));
        ngx_memcpy(raw + sizeof(now), &ngx_pid, sizeof(ngx_pid_t));
    }

    src.data = raw;
    src.len = sizeof(raw);
    dst.data = out;

    ngx_encode_base64url(&dst, &src);
}


/* the open packet: the session's id and the heartbeat it must keep */
size_t
ngx_http_chat_sio_open_packet(u_char *buf, size_t size, u_char *sid,
    ngx_http_chat_ws_conf_t *conf, ngx_uint_t upgrades)
{
    return ngx_snprintf(buf, size,
                        "0{\"sid\":\"%*s\",\"upgrades\":[%s],"
                        "\"pingInterval\":%M,\"pingTimeout\":%M,"
                        "\"maxPayload\":%uz}",
                        (size_t) NGX_HTTP_CHAT_SIO_ID_LEN, sid,
                        upgrades ? "\"websocket\"" : "",
                        conf->ping_interval, conf->pong_timeout,
                        conf->max_message)
           - buf;
}


/*
 * A WebSocket that upgrades a polling session: "<eio sid> <sio sid>
 * <connected> <token>" from Redis.  It authenticates again with the
 * token, quietly: the client is connected already.
 */
static ngx_int_t
ngx_http_chat_sio_resume(ngx_http_chat_rt_session_t *s, ngx_str_t *resume)
{
    ngx_str_t             token;
    ngx_http_chat_sio_t  *sio;

    sio = s->sio;

    if (resume->len < 2 * NGX_HTTP_CHAT_SIO_ID_LEN + 4) {
        return NGX_ERROR;
    }

    ngx_memcpy(sio->eio_sid, resume->data, NGX_HTTP_CHAT_SIO_ID_LEN);
    ngx_memcpy(sio->sid, resume->data + NGX_HTTP_CHAT_SIO_ID_LEN + 1,
               NGX_HTTP_CHAT_SIO_ID_LEN);

    sio->connected = (resume->data[2 * NGX_HTTP_CHAT_SIO_ID_LEN + 2] == '1');
    sio->unanswered = !sio->connected;
    sio->resuming_transport = 1;
    sio->resumed = 1;

    /*
     * The client may send events the moment it says "5", before the
     * handover tells whether and as whom its CONNECT signed in (the
     * upgrade may have read Redis before the token was there): they
     * wait for the handover, in order.  What is delivered to it waits
     * too: the client drops what comes before its "5", and what the
     * polling session queued meanwhile goes first (once).
     */
    s->held = 1;
    sio->holding = 1;

    token.data = resume->data + 2 * NGX_HTTP_CHAT_SIO_ID_LEN + 4;
    token.len = resume->len - 2 * NGX_HTTP_CHAT_SIO_ID_LEN - 4;

    if (token.len) {
        sio->resuming = 1;
        ngx_http_chat_sio_start_sealed(s, &token);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_sio_open(ngx_http_chat_ws_t *ws)
{
    u_char                       buf[256];
    size_t                       len;
    ngx_http_chat_sio_t         *sio;
    ngx_http_chat_rt_session_t  *s;

    s = ngx_http_chat_rt_session_create(ws);
    if (s == NULL) {
        return NGX_ERROR;
    }

    sio = ngx_calloc(sizeof(ngx_http_chat_sio_t), ws->connection->log);
    if (sio == NULL) {
        ngx_http_chat_rt_session_free(ws);
        return NGX_ERROR;
    }

    s->sio = sio;
    sio->session = s;

    /* the same socket, counted as Socket.IO's from here */
    s->gauge = 1;
    ngx_http_chat_metric_dec(NGX_HTTP_CHAT_M_SOCKETS_WS);
    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_SOCKETS_SIO_WS);

    if (ws->resume.len) {
        if (ngx_http_chat_sio_resume(s, &ws->resume) != NGX_OK) {
            ngx_free(sio);
            s->sio = NULL;
            ngx_http_chat_rt_session_free(ws);
            return NGX_ERROR;
        }

    } else {
        ngx_http_chat_sio_id(sio->eio_sid);
        ngx_http_chat_sio_id(sio->sid);
    }

    sio->leave.handler = ngx_http_chat_sio_left;
    sio->leave.data = sio;
    sio->leave.log = ws->connection->log;

    sio->heartbeat.handler = ngx_http_chat_sio_heartbeat;
    sio->heartbeat.data = sio;
    sio->heartbeat.log = ws->connection->log;
    sio->heartbeat.cancelable = 1;
    ngx_add_timer(&sio->heartbeat, ws->conf->ping_interval);

    if (ws->resume.len) {
        /* the polling transport said what was needed */
        return NGX_OK;
    }

    /* a CONNECT is due within the authentication timeout */
    ngx_add_timer(&s->timer, ws->conf->auth_timeout);

    if (ws->release) {
        /* polling: the open packet is the handshake's answer */
        return NGX_OK;
    }

    len = ngx_http_chat_sio_open_packet(buf, sizeof(buf), sio->eio_sid,
                                        ws->conf, 0);

    (void) ngx_http_chat_ws_send(ws, NGX_HTTP_CHAT_WS_TEXT, buf, len);

    return NGX_OK;
}


static void
ngx_http_chat_sio_close(ngx_http_chat_ws_t *ws)
{
    ngx_http_chat_rt_session_t  *s;

    s = ws->data;

    if (s && s->sio) {
        if (s->sio->heartbeat.timer_set) {
            ngx_del_timer(&s->sio->heartbeat);
        }

        if (s->sio->leave.posted) {
            ngx_delete_posted_event(&s->sio->leave);
        }

        if (s->sio->polling) {
            ngx_http_chat_sio_poll_gone(s);
        }

        if (s->sio->handover) {
            ngx_http_chat_sio_handover_cancel(s);
        }

        if (s->sio->auth_data) {
            json_decref(s->sio->auth_data);
        }

        ngx_http_chat_sio_drop_held(s, 0);

        ngx_free(s->sio);
        s->sio = NULL;
    }

    ngx_http_chat_rt_session_free(ws);
}


/* Engine.IO pings from the server (v4); no pong in time closes */
static void
ngx_http_chat_sio_heartbeat(ngx_event_t *ev)
{
    ngx_http_chat_sio_t         *sio;
    ngx_http_chat_rt_session_t  *s;

    sio = ev->data;
    s = sio->session;

    if (sio->waiting_pong) {
        ngx_log_error(NGX_LOG_INFO, s->ws->connection->log, 0,
                      "chat socket.io: no pong in time, closing");
        ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_GOING_AWAY,
                               "ping timeout");
        return;
    }

    sio->waiting_pong = 1;
    ngx_add_timer(ev, s->ws->conf->pong_timeout);

    if (sio->polling) {
        ngx_http_chat_sio_poll_refresh(s);
    }

    (void) ngx_http_chat_ws_send(s->ws, NGX_HTTP_CHAT_WS_TEXT,
                                 (u_char *) "2", 1);
}


void
ngx_http_chat_sio_message(ngx_http_chat_ws_t *ws, ngx_uint_t opcode,
    u_char *p, size_t len)
{
    u_char                       buf[64];
    ngx_http_chat_rt_session_t  *s;

    s = ws->data;

    if (opcode != NGX_HTTP_CHAT_WS_TEXT) {
        /* binary attachments are refused where their packet was */
        return;
    }

    if (len == 0) {
        ngx_http_chat_ws_close(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                               "empty Engine.IO packet");
        return;
    }

    switch (p[0]) {

    case '2':   /* a ping ("2probe" when upgrading): answered in kind */
        if (len > sizeof(buf)) {
            len = sizeof(buf);
        }

        buf[0] = '3';
        ngx_memcpy(buf + 1, p + 1, len - 1);
        (void) ngx_http_chat_ws_send(ws, NGX_HTTP_CHAT_WS_TEXT, buf, len);

        if (s->sio->resuming_transport && len == 6
            && ngx_strncmp(p, "2probe", 6) == 0)
        {
            /* the client pauses polling: its waiting GET ends now */
            ngx_http_chat_sio_probe(s);

            /* what this socket heard till now, polling brings */
            ngx_http_chat_sio_drop_held(s, 1);
        }

        return;

    case '3':   /* the pong of our ping */
        if (s->sio->waiting_pong) {
            s->sio->waiting_pong = 0;

            if (s->sio->heartbeat.timer_set) {
                ngx_del_timer(&s->sio->heartbeat);
            }

            ngx_add_timer(&s->sio->heartbeat, ws->conf->ping_interval);
        }

        return;

    case '4':
        ngx_http_chat_sio_packet(s, p + 1, len - 1);
        return;

    case '1':   /* the client closes: over polling, a waiting GET gets a noop */
        s->sio->client_closed = 1;
        ngx_http_chat_ws_close(ws, NGX_HTTP_CHAT_WS_NORMAL, NULL);
        return;

    case '5':   /* the upgrade is done */
        if (s->sio->polling) {
            /* this transport goes once what it runs has answered */
            s->sio->leaving = 1;
            ngx_http_chat_sio_leave(s);
            return;
        }

        if (s->sio->resuming_transport) {
            s->sio->resuming_transport = 0;

            /* the polling session lets go once this one listens */
            if (s->sio->resuming) {
                s->sio->handover_due = 1;

            } else {
                ngx_http_chat_sio_handover(s);
            }
        }

        return;

    case '6':
        return;

    default:
        ngx_http_chat_ws_close(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                               "unknown Engine.IO packet");
        return;
    }
}


/*
 * A Socket.IO packet, from a WebSocket frame or a polling payload:
 * <type>[/namespace,][ackid][JSON].  A packet that cannot be decoded
 * closes the connection, as the reference server does.
 */
static void
ngx_http_chat_sio_packet(ngx_http_chat_rt_session_t *s, u_char *p,
    size_t len)
{
    json_t                      *err;
    ngx_int_t                    rc;
    ngx_http_chat_sio_packet_t   pkt;

    if (ngx_http_chat_sio_decode(p, len, &pkt) != NGX_OK) {
        goto invalid;
    }

    switch (pkt.type) {

    case 0:
        if (!pkt.root) {
            ngx_http_chat_sio_refuse_nsp(s, pkt.nsp, pkt.nsp_len);
            return;
        }

        ngx_http_chat_sio_connect(s, pkt.data, pkt.len);
        return;

    case 1:
        if (pkt.root) {
            ngx_http_chat_sio_disconnect(s);
        }

        return;

    case 2:
        rc = ngx_http_chat_sio_event(s, pkt.data, pkt.len, pkt.root);
        if (rc == NGX_ERROR) {
            goto invalid;
        }

        return;

    case 5:
    case 6:
        err = json_pack("{s:{s:s,s:s}}", "error", "code",
                        "binary_unsupported", "message",
                        "binary attachments are not supported");
        ngx_http_chat_sio_send_json(s, "42[\"error\",", NULL, err, 1);
        json_decref(err);
        return;

    default:
        /* an ACK of an event of ours (we ask none), a CONNECT_ERROR */
        return;
    }

invalid:

    ngx_log_error(NGX_LOG_INFO, s->ws->connection->log, 0,
                  "chat socket.io: invalid packet, closing");
    ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_NORMAL, NULL);
}


/* CONNECT to a namespace we do not have: CONNECT_ERROR on it */
static void
ngx_http_chat_sio_refuse_nsp(ngx_http_chat_rt_session_t *s, u_char *nsp,
    size_t len)
{
    u_char  *text, *p;

    text = ngx_alloc(len + 64, s->ws->connection->log);
    if (text == NULL) {
        return;
    }

    p = ngx_cpymem(text, "44", 2);
    p = ngx_cpymem(p, nsp, len);
    p = ngx_cpymem(p, ",{\"message\":\"Invalid namespace\"}",
                   sizeof(",{\"message\":\"Invalid namespace\"}") - 1);

    (void) ngx_http_chat_ws_send(s->ws, NGX_HTTP_CHAT_WS_TEXT, text,
                                 p - text);
    ngx_free(text);
}


/*
 * DISCONNECT of the main namespace: the Socket.IO socket goes, the
 * Engine.IO connection stays with its heartbeat; nothing is delivered
 * to it till the client CONNECTs again.
 */
static void
ngx_http_chat_sio_disconnect(ngx_http_chat_rt_session_t *s)
{
    ngx_str_t  zero;

    s->sio->connected = 0;
    s->sio->connecting = 0;
    s->sio->resumed = 0;
    s->sio->unanswered = 0;
    s->sio->left = 1;

    if (s->sio->polling) {
        ngx_str_set(&zero, "0");
        ngx_http_chat_sio_remember(s, "c", &zero);
    }
}


/*
 * CONNECT [{auth}] to "/": with {"token"} the socket authenticates
 * before the CONNECT is answered (CONNECT_ERROR when it cannot); without,
 * the seed's "authenticate" event does it after.  After a DISCONNECT, a
 * socket signed in already is connected again as the same user.
 */
static void
ngx_http_chat_sio_connect(ngx_http_chat_rt_session_t *s, u_char *p,
    size_t len)
{
    u_char        buf[64];
    json_t       *auth, *token;
    ngx_str_t     tok, state;
    json_error_t  err;

    auth = NULL;

    if (len) {
        auth = json_loadb((const char *) p, len, 0, &err);

        if (!json_is_object(auth)) {
            json_decref(auth);
            ngx_log_error(NGX_LOG_INFO, s->ws->connection->log, 0,
                          "chat socket.io: invalid CONNECT, closing");
            ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_NORMAL, NULL);
            return;
        }
    }

    if (s->sio->connected || s->sio->connecting) {
        json_decref(auth);
        return;
    }

    if (s->sio->left) {
        /* a new Socket.IO socket on the same connection */
        s->sio->left = 0;
        ngx_http_chat_sio_id(s->sio->sid);
    }

    token = json_object_get(auth, "token");

    if (!s->authenticated && json_is_string(token)
        && json_string_length(token)
        && json_string_length(token) <= NGX_HTTP_CHAT_SIO_TOKEN_MAX)
    {
        tok.data = (u_char *) json_string_value(token);
        tok.len = json_string_length(token);

        s->sio->connecting = 1;

        if (s->sio->polling) {
            ngx_http_chat_sio_remember(s, "t", &tok);

            /* a CONNECT being answered: the upgrade's socket sees it */
            ngx_str_set(&state, "p");
            ngx_http_chat_sio_remember(s, "c", &state);
        }

        ngx_http_chat_rt_start_auth(s, &tok, NULL);
        json_decref(auth);
        return;
    }

    json_decref(auth);

    s->sio->connected = 1;

    /* the upgrade's socket: answered ("c" set with the answer queued) */
    ngx_http_chat_sio_note_next(s, 'c', '1');

    len = ngx_snprintf(buf, sizeof(buf), "40{\"sid\":\"%*s\"}",
                       (size_t) NGX_HTTP_CHAT_SIO_ID_LEN, s->sio->sid)
          - buf;
    (void) ngx_http_chat_ws_send(s->ws, NGX_HTTP_CHAT_WS_TEXT, buf, len);
    s->sio->note[0] = '\0';
}


/*
 * EVENT [ackid]["name", data] -> {"event", "data", "id"}; NGX_ERROR when
 * the packet cannot be decoded (no JSON array of a name and arguments).
 */
static ngx_int_t
ngx_http_chat_sio_event(ngx_http_chat_rt_session_t *s, u_char *p,
    size_t len, ngx_uint_t root)
{
    json_t      *args, *env, *name, *data;
    ngx_str_t    tok;
    json_int_t   ack;
    ngx_uint_t   has_ack;

    if (ngx_http_chat_sio_decode_event(p, len, &args, &ack, &has_ack)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (args == NULL) {
        return NGX_OK;
    }

    name = json_array_get(args, 0);

    if (!root || !(s->sio->connected || s->sio->resumed)) {
        /* another namespace, or not connected: nobody to hear it */
        json_decref(args);
        return NGX_OK;
    }

    if (!json_is_string(name)) {
        /* answered by the router like any malformed event */
        json_decref(args);
        env = json_pack("{s:n}", "event");
        if (env == NULL) {
            return NGX_OK;
        }

        if (has_ack) {
            json_object_set_new(env, "id", json_integer(ack));
        }

        ngx_http_chat_rt_event(s, env);
        json_decref(env);
        return NGX_OK;
    }

    data = json_array_get(args, 1);

    env = json_pack("{s:O,s:O*}", "event", name, "data",
                    data ? data : json_null());
    if (env == NULL) {
        json_decref(args);
        return NGX_OK;
    }

    if (has_ack) {
        json_object_set_new(env, "id", json_integer(ack));
    }

    if (s->sio->polling && json_is_object(data)
        && ngx_strcmp(json_string_value(name), "authenticate") == 0
        && json_is_string(json_object_get(data, "token")))
    {
        tok.data = (u_char *) json_string_value(json_object_get(data,
                                                                "token"));
        tok.len = json_string_length(json_object_get(data, "token"));
        ngx_http_chat_sio_remember(s, "t", &tok);
    }

    ngx_http_chat_rt_event(s, env);

    json_decref(env);
    json_decref(args);

    return NGX_OK;
}


/*
 * Polling: field = value in the session's hash in Redis, set by the
 * script that queues the next packet, not before (the caller sends it,
 * then clears the note, which a packet not queued leaves unused).  What
 * the hash says the client was told ("c" its CONNECT answered, "a" it
 * signed in) is then never ahead of the queue the upgrade's socket takes.
 */
static void
ngx_http_chat_sio_note_next(ngx_http_chat_rt_session_t *s, u_char field,
    u_char value)
{
    if (s->sio->polling) {
        s->sio->note[0] = field;
        s->sio->note[1] = value;
    }
}


/*
 * prefix, then "<id>[" for an ACK, the JSON, and "]" when bracket:
 * 42["name",data]  43<id>[data]  44{...}
 */
static void
ngx_http_chat_sio_send_json(ngx_http_chat_rt_session_t *s,
    const char *prefix, json_t *id, json_t *json, ngx_uint_t bracket)
{
    ngx_http_chat_sio_send_frame(s, prefix, id, json, NULL, bracket);
}


/* the same with json, or with JSON text as json_dumps() makes it */
static void
ngx_http_chat_sio_send_frame(ngx_http_chat_rt_session_t *s,
    const char *prefix, json_t *id, json_t *json, ngx_str_t *js,
    ngx_uint_t bracket)
{
    u_char  *p, *text;
    size_t   len, plen;

    len = js ? js->len
             : json_dumpb(json, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    plen = ngx_strlen(prefix);

    text = ngx_alloc(plen + NGX_INT64_LEN + 2 + len + 1,
                     s->ws->connection->log);
    if (text == NULL) {
        return;
    }

    p = ngx_cpymem(text, prefix, plen);

    if (id) {
        p = ngx_sprintf(p, "%L[", (int64_t) json_integer_value(id));
    }

    if (js) {
        p = ngx_cpymem(p, js->data, js->len);

    } else {
        p += json_dumpb(json, (char *) p, len,
                        JSON_COMPACT | JSON_ENCODE_ANY);
    }

    if (bracket) {
        *p++ = ']';
    }

    (void) ngx_http_chat_ws_send(s->ws, NGX_HTTP_CHAT_WS_TEXT, text,
                                 p - text);
    ngx_free(text);
}


/*
 * An event whose data is JSON text as json_dumps() makes it (a sign-in's
 * profile as it was read): the frames ngx_http_chat_sio_emit() makes of
 * it, without parsing it; a transport in a handover or out of the
 * namespace keeps or drops the data as JSON, so it is parsed there.
 */
void
ngx_http_chat_sio_emit_text(ngx_http_chat_rt_session_t *s, const char *event,
    ngx_str_t *text, json_t *id)
{
    ngx_http_chat_sio_t  *sio;

    sio = s->sio;

    if (sio->left || sio->resuming
        || (sio->connecting && ngx_strcmp(event, "authenticated") != 0))
    {
        ngx_http_chat_sio_emit(s, event,
                               json_loadb((char *) text->data, text->len,
                                          0, NULL),
                               id);
        return;
    }

    ngx_http_chat_sio_emit_frames(s, event, NULL, text, id);
}


/* the router's events; data is taken */
void
ngx_http_chat_sio_emit(ngx_http_chat_rt_session_t *s, const char *event,
    json_t *data, json_t *id)
{
    ngx_http_chat_sio_emit_frames(s, event, data, NULL, id);
}


/* data (taken), or text when data is NULL and text is not */
static void
ngx_http_chat_sio_emit_frames(ngx_http_chat_rt_session_t *s,
    const char *event, json_t *data, ngx_str_t *text, json_t *id)
{
    u_char               buf[64], prefix[128];
    size_t               len;
    json_t              *msg;
    ngx_http_chat_sio_t  *sio;

    sio = s->sio;

    if (sio->left && !sio->resuming) {
        /* out of the namespace: nobody to hear it */
        json_decref(data);
        return;
    }

    if (sio->resuming
        && (ngx_strcmp(event, "authenticated") == 0
            || ngx_strcmp(event, "authentication_error") == 0))
    {
        /*
         * The upgraded transport's own sign-in: the client knows of it,
         * unless its CONNECT was still unanswered (the handover sees).
         */
        sio->resuming = 0;
        sio->connected = 1;

        if (ngx_strcmp(event, "authenticated") == 0) {
            sio->auth_data = data;

        } else {
            json_decref(data);
        }

        if (sio->handover_due) {
            sio->handover_due = 0;
            ngx_http_chat_sio_handover(s);
        }

        if (ngx_strcmp(event, "authentication_error") == 0) {
            ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_POLICY,
                                   "authentication failed");
        }

        return;
    }

    if (sio->connecting) {
        sio->connecting = 0;

        if (ngx_strcmp(event, "authentication_error") == 0) {
            /* the CONNECT is refused: connect_error on the client */
            msg = json_pack("{s:O*}", "message",
                            json_object_get(data, "message"));
            ngx_http_chat_sio_note_next(s, 'c', '0');
            ngx_http_chat_sio_send_json(s, "44", NULL, msg, 0);
            sio->note[0] = '\0';
            json_decref(msg);
            json_decref(data);

            /* the client's last word: it may CONNECT again */
            if (!s->ws->close_sent) {
                ngx_add_timer(&s->timer, s->ws->conf->auth_timeout);
            }

            return;
        }

        if (ngx_strcmp(event, "authenticated") == 0) {
            sio->connected = 1;

            ngx_http_chat_sio_note_next(s, 'c', '1');
            len = ngx_snprintf(buf, sizeof(buf), "40{\"sid\":\"%*s\"}",
                               (size_t) NGX_HTTP_CHAT_SIO_ID_LEN, sio->sid)
                  - buf;
            (void) ngx_http_chat_ws_send(s->ws, NGX_HTTP_CHAT_WS_TEXT, buf,
                                         len);
            sio->note[0] = '\0';
        }
    }

    if (data == NULL && text == NULL) {
        data = json_object();
    }

    if (ngx_strcmp(event, "authenticated") == 0) {
        /*
         * For a handover: the client was told, in the step that queues
         * the telling.  Set apart, the upgrade's socket could take the
         * queue in between (its 2 s wait for the polling session past),
         * read "told" without the packet, and tell nobody.
         */
        ngx_http_chat_sio_note_next(s, 'a', '1');
    }

    /* 42["event",data], and the ACK of the event that asked for it */
    ngx_snprintf(prefix, sizeof(prefix), "42[\"%s\",%Z", event);
    ngx_http_chat_sio_send_frame(s, (char *) prefix, NULL, data, text, 1);
    sio->note[0] = '\0';

    if (id && json_is_integer(id)) {
        ngx_http_chat_sio_send_frame(s, "43", id, data, text, 1);
    }

    json_decref(data);
}


/* the router's answer to an event: an ACK when the client asked one */
void
ngx_http_chat_sio_ack(ngx_http_chat_rt_session_t *s, json_t *id,
    ngx_uint_t status, json_t *answer)
{
    json_t  *err;

    if (s->sio->left) {
        /* the event's namespace was left: the answer has nobody */
        json_decref(answer);
        return;
    }

    if (status >= 300) {
        err = json_pack("{s:O*,s:I}", "error",
                        json_object_get(answer, "error"),
                        "status", (json_int_t) status);

        if (id && json_is_integer(id)) {
            ngx_http_chat_sio_send_json(s, "43", id, err, 1);

        } else {
            ngx_http_chat_sio_send_json(s, "42[\"error\",", NULL, err, 1);
        }

        json_decref(err);

    } else if (id && json_is_integer(id)) {
        ngx_http_chat_sio_send_json(s, "43", id, answer, 1);
    }

    json_decref(answer);
}


/*
 * A published event {"event", "data"} as a Socket.IO EVENT frame: made
 * once per delivery for all the Socket.IO sockets of a worker.
 */
ngx_http_chat_ws_buf_t *
ngx_http_chat_sio_frame(u_char *envelope, size_t len)
{
    u_char                  *p, *text;
    size_t                   size, jlen;
    json_t                  *env, *event, *data;
    json_error_t             err;
    ngx_http_chat_ws_buf_t  *buf;

    env = json_loadb((const char *) envelope, len, 0, &err);
    event = json_object_get(env, "event");
    data = json_object_get(env, "data");

    if (!json_is_string(event) || data == NULL) {
        json_decref(env);
        return NULL;
    }

    jlen = json_dumpb(data, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    size = sizeof("42[\"\",]") - 1 + json_string_length(event) + jlen;

    text = ngx_alloc(size, ngx_cycle->log);
    if (text == NULL) {
        json_decref(env);
        return NULL;
    }

    p = ngx_cpymem(text, "42[\"", 4);
    p = ngx_cpymem(p, json_string_value(event), json_string_length(event));
    p = ngx_cpymem(p, "\",", 2);
    p += json_dumpb(data, (char *) p, jlen, JSON_COMPACT | JSON_ENCODE_ANY);
    *p++ = ']';

    buf = ngx_http_chat_ws_frame(NGX_HTTP_CHAT_WS_TEXT, 0, text, p - text);

    ngx_free(text);
    json_decref(env);

    return buf;
}


/*
 * /socket.io/?EIO=4&transport=websocket|polling[&sid=]: errors as the
 * reference server gives them, {"code", "message"} with a 400.
 */
static ngx_int_t
ngx_http_chat_sio_refuse(ngx_http_request_t *r, ngx_uint_t status,
    ngx_uint_t code, const char *message)
{
    return ngx_http_chat_send_json(r, status,
                                   json_pack("{s:i,s:s}", "code", (int) code,
                                             "message", message));
}


ngx_int_t
ngx_http_chat_sio_handler(ngx_http_request_t *r)
{
    ngx_str_t  eio, transport, sid;

    if (ngx_http_chat_prepare(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "EIO", 3, &eio) != NGX_OK
        || eio.len != 1 || eio.data[0] != '4')
    {
        return ngx_http_chat_sio_refuse(r, NGX_HTTP_BAD_REQUEST, 5,
                                        "Unsupported protocol version");
    }

    if (ngx_http_arg(r, (u_char *) "transport", 9, &transport) != NGX_OK) {
        ngx_str_null(&transport);
    }

    if (ngx_http_arg(r, (u_char *) "sid", 3, &sid) != NGX_OK) {
        ngx_str_null(&sid);
    }

    if (transport.len == 9
        && ngx_strncmp(transport.data, "websocket", 9) == 0)
    {
        if (sid.len) {
            return ngx_http_chat_sio_upgrade_handler(r, &sid);
        }

        return ngx_http_chat_ws_handler(r);
    }

    if (transport.len == 7 && ngx_strncmp(transport.data, "polling", 7) == 0)
    {
        return ngx_http_chat_sio_poll_handler(r, &sid);
    }

    return ngx_http_chat_sio_refuse(r, NGX_HTTP_BAD_REQUEST, 0,
                                    "Transport unknown");
}


/*
 * After a handover: what the polling session did not get to tell the
 * client, told here as it would have been.
 */
void
ngx_http_chat_sio_answer_connect(ngx_http_chat_rt_session_t *s)
{
    u_char               buf[64];
    size_t               len;
    ngx_http_chat_sio_t  *sio;

    sio = s->sio;
    sio->unanswered = 0;
    sio->connected = 1;

    len = ngx_snprintf(buf, sizeof(buf), "40{\"sid\":\"%*s\"}",
                       (size_t) NGX_HTTP_CHAT_SIO_ID_LEN, sio->sid)
          - buf;
    (void) ngx_http_chat_ws_send(s->ws, NGX_HTTP_CHAT_WS_TEXT, buf, len);
}


void
ngx_http_chat_sio_answer_auth(ngx_http_chat_rt_session_t *s)
{
    json_t  *data;

    data = s->sio->auth_data;
    s->sio->auth_data = NULL;

    if (data) {
        ngx_http_chat_sio_send_json(s, "42[\"authenticated\",", NULL, data,
                                    1);
        json_decref(data);
    }
}
