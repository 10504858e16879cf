/*
 * Copyright (C) ngx_chat_module authors
 *
 * The chat endpoint (chat_ws): JSON events {"event", "data", "id"} over
 * a WebSocket.  A socket authenticates (token in the query, a Bearer
 * header, or the authenticate event) and then joins the channels of its
 * user and its chats; events call operations directly (ops/: a send,
 * an edit, a delete, a reaction, a marker; and what they read, through
 * ngx_http_chat_rt_read.c), with no request under them, and are
 * acknowledged with the answer only after it is stored; what changed
 * reaches every
 * socket concerned from what the store committed ("$events",
 * core/ngx_http_chat_events.c).
 */


#include "ngx_http_chat_rt.h"
#include "ngx_http_chat_sio.h"
#include "../util/ngx_http_chat_metrics.h"
#include "../auth/ngx_http_chat_auth.h"
#include "../store/ngx_http_chat_users.h"
#include "../store/ngx_http_chat_people.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "../ops/ngx_http_chat_op_send.h"
#include "../ops/ngx_http_chat_op_message.h"
#include "../ops/ngx_http_chat_op_call.h"



#define NGX_HTTP_CHAT_RT_SYNC_MAX     100    /* then page over REST */
#define NGX_HTTP_CHAT_RT_TYPING_GAP   1000   /* ms between typing events */
#define NGX_HTTP_CHAT_RT_TYPING_TTL   5000   /* typing ends by itself */
#define NGX_HTTP_CHAT_RT_PENDING_MAX  256    /* events waiting their turn */


struct ngx_http_chat_rt_op_s {
    json_t                      *id;         /* the event's, or NULL */
    json_t                      *extra;      /* the step's own */
    ngx_str_t                    text;       /* a sign-in's, as JSON */
    ngx_uint_t                   step;
    ngx_uint_t                   message;    /* an edit, delete, reaction */
    ngx_uint_t                   call;       /* a call's */
    ngx_uint_t                   hooked;     /* a sign-in past the hook */

    /* an operation's answer awaited: NULL once the session went */
    ngx_http_chat_rt_session_t  *session;
    ngx_queue_t                  queue;      /* in the session's waiting */
};


typedef void (*ngx_http_chat_rt_event_pt)(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);

typedef struct {
    const char                  *name;
    ngx_http_chat_rt_event_pt    handler;
} ngx_http_chat_rt_event_t;


static ngx_int_t ngx_http_chat_rt_open(ngx_http_chat_ws_t *ws);
static void ngx_http_chat_rt_message(ngx_http_chat_ws_t *ws,
    ngx_uint_t opcode, u_char *data, size_t len);
static void ngx_http_chat_rt_close(ngx_http_chat_ws_t *ws);
static void ngx_http_chat_rt_next(ngx_http_chat_rt_session_t *s);
static void ngx_http_chat_rt_op_done(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_op_t *op);
static void ngx_http_chat_rt_drop_text(ngx_http_chat_rt_op_t *op);
static void ngx_http_chat_rt_emit_text(ngx_http_chat_rt_session_t *s,
    const char *event, ngx_str_t *text, json_t *id);
static void ngx_http_chat_rt_dispatch(ngx_http_chat_rt_session_t *s,
    json_t *env);
static void ngx_http_chat_rt_timer(ngx_event_t *ev);
static void ngx_http_chat_rt_run(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    const char *not_found, json_t *id, ngx_http_chat_rt_done_pt done);
static void ngx_http_chat_rt_chat_arg(ngx_http_chat_rt_session_t *s,
    const char *chat, ngx_http_chat_group_arg_t *arg);
static const char *ngx_http_chat_rt_oid(json_t *data, const char *name);
static ngx_int_t ngx_http_chat_rt_message_id(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id, bson_oid_t *oid);

typedef ngx_int_t (*ngx_http_chat_rt_op_pt)(const bson_oid_t *user,
    json_t *body, ngx_uint_t flags, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_send_t **out, const char **field,
    const char **err);

static void ngx_http_chat_rt_sync_read(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_op_t *op, json_t *chat, json_t *after, ngx_uint_t limit,
    ngx_http_chat_rt_done_pt done);
static void ngx_http_chat_rt_op_start(ngx_http_chat_rt_session_t *s,
    json_t *id, json_t *body, ngx_http_chat_rt_op_pt start);
static void ngx_http_chat_rt_op_user(ngx_http_chat_rt_session_t *s,
    bson_oid_t *me);
static void ngx_http_chat_rt_waiting_detach(ngx_http_chat_rt_session_t *s);

static void ngx_http_chat_rt_authenticate(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_authenticated(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);
static void ngx_http_chat_rt_reauthenticate(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_reauthenticated(ngx_http_chat_rt_session_t *s,
    void *data, ngx_int_t rc);
static void ngx_http_chat_rt_chats_page(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);
static void ngx_http_chat_rt_acked(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);
static void ngx_http_chat_rt_join(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_joined(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);
static void ngx_http_chat_rt_left(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);
static void ngx_http_chat_rt_leave(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_send(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_typing_start(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_typing_stop(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_typing(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id, ngx_uint_t on);
static void ngx_http_chat_rt_typing_publish(ngx_http_chat_rt_session_t *s,
    ngx_str_t *chat_id, ngx_uint_t on);
static void ngx_http_chat_rt_typing_expired(ngx_event_t *ev);
static void ngx_http_chat_rt_delivered(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_read(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_marker(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id, ngx_uint_t read);
static void ngx_http_chat_rt_react(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_edit(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_delete(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_sync(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_watch(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
static void ngx_http_chat_rt_watched(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);
static void ngx_http_chat_rt_sync_next(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_op_t *op);
static void ngx_http_chat_rt_sync_probed(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);
static void ngx_http_chat_rt_synced(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);


ngx_http_chat_ws_app_t  ngx_http_chat_rt_app = {
    ngx_http_chat_rt_open,
    ngx_http_chat_rt_message,
    ngx_http_chat_rt_close
};


static ngx_http_chat_rt_event_t  ngx_http_chat_rt_events[] = {
    { "authenticate", ngx_http_chat_rt_authenticate },
    { "join_chat", ngx_http_chat_rt_join },
    { "leave_chat", ngx_http_chat_rt_leave },
    { "send_message", ngx_http_chat_rt_send },
    { "typing_start", ngx_http_chat_rt_typing_start },
    { "typing_stop", ngx_http_chat_rt_typing_stop },
    { "message_delivered", ngx_http_chat_rt_delivered },
    { "message_read", ngx_http_chat_rt_read },
    { "add_reaction", ngx_http_chat_rt_react },
    { "edit_message", ngx_http_chat_rt_edit },
    { "delete_message", ngx_http_chat_rt_delete },
    { "sync", ngx_http_chat_rt_sync },
    { "subscribe_presence", ngx_http_chat_rt_watch },
    { "call_initiate", ngx_http_chat_rt_call_initiate },
    { "call_accept", ngx_http_chat_rt_call_accept },
    { "call_reject", ngx_http_chat_rt_call_reject },
    { "call_cancel", ngx_http_chat_rt_call_cancel },
    { "call_end", ngx_http_chat_rt_call_end },
    { "call_join", ngx_http_chat_rt_call_join },
    { "call_leave", ngx_http_chat_rt_call_leave },
    { "webrtc_offer", ngx_http_chat_rt_call_offer },
    { "webrtc_answer", ngx_http_chat_rt_call_answer },
    { "webrtc_ice_candidate", ngx_http_chat_rt_call_ice },
    { NULL, NULL }
};


static ngx_int_t
ngx_http_chat_rt_open(ngx_http_chat_ws_t *ws)
{
    ngx_http_chat_rt_session_t  *s;

    s = ngx_http_chat_rt_session_create(ws);
    if (s == NULL) {
        return NGX_ERROR;
    }

    if (ws->token.len) {
        ngx_http_chat_rt_start_auth(s, &ws->token, NULL);

        /* the sign-in has its own copy: the token goes at once */
        ngx_explicit_memzero(ws->token.data, ws->token.len);
        ngx_free(ws->token.data);
        ws->token.data = NULL;
        ws->token.len = 0;

    } else {
        ngx_add_timer(&s->timer, ws->conf->auth_timeout);
    }

    return NGX_OK;
}


/* a session on a socket, not yet authenticated (Socket.IO's too) */
ngx_http_chat_rt_session_t *
ngx_http_chat_rt_session_create(ngx_http_chat_ws_t *ws)
{
    ngx_connection_t            *c;
    ngx_http_chat_rt_session_t  *s;

    c = ws->connection;

    s = ngx_calloc(sizeof(ngx_http_chat_rt_session_t), c->log);
    if (s == NULL) {
        ngx_http_chat_rt_conn_release(&ws->peer);
        return NULL;
    }

    s->ws = ws;
    s->main_conf = ws->main_conf;
    s->srv_conf = ws->srv_conf;
    s->loc_conf = ws->loc_conf;
    ngx_queue_init(&s->reads);
    ngx_queue_init(&s->waiting);
    ngx_queue_init(&s->chats);

    s->timer.handler = ngx_http_chat_rt_timer;
    s->timer.data = s;
    s->timer.log = c->log;
    s->timer.cancelable = 1;

    ngx_http_chat_rt_access_init(s);

    ws->data = s;
    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_SOCKETS_WS);

    return s;
}


static void
ngx_http_chat_rt_close(ngx_http_chat_ws_t *ws)
{
    ngx_http_chat_rt_session_free(ws);
}


void
ngx_http_chat_rt_session_free(ngx_http_chat_ws_t *ws)
{
    ngx_str_t                    chat_id;
    ngx_http_chat_rt_session_t  *s;

    s = ws->data;

    if (s == NULL) {
        return;
    }

    /* the gauges follow each other in the table */
    ngx_http_chat_metric_dec(NGX_HTTP_CHAT_M_SOCKETS_WS + s->gauge);

    /* its address has one socket less */
    ngx_http_chat_rt_conn_release(&ws->peer);

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    ngx_http_chat_rt_access_free(s);
    ngx_http_chat_rt_limit_free(s);

    if (s->typing) {
        if (s->typing->ev.timer_set) {
            /* gone while typing: the others see it stop */
            ngx_del_timer(&s->typing->ev);
            chat_id.data = s->typing->chat;
            chat_id.len = NGX_HTTP_CHAT_RT_ID_LEN;
            ngx_http_chat_rt_typing_publish(s, &chat_id, 0);
        }

        ngx_free(s->typing);
    }

    ngx_http_chat_rt_reads_detach(s);
    ngx_http_chat_rt_waiting_detach(s);
    ngx_http_chat_rt_call_gone(s);
    ngx_http_chat_rt_leave_all(s);

    ngx_http_chat_rt_presence_leave(s);

    if (s->session_id.data) {
        ngx_free(s->session_id.data);
    }

    if (s->pending) {
        json_decref(s->pending);
    }

    ngx_free(s);

    ws->data = NULL;
}


static void
ngx_http_chat_rt_timer(ngx_event_t *ev)
{
    ngx_http_chat_rt_session_t  *s;

    s = ev->data;

    /* one event a socket: the token's end once it is signed in */
    if (s->authenticated) {
        ngx_http_chat_rt_access_expired(ev);
        return;
    }

    ngx_http_chat_rt_emit(s, "authentication_error",
                          json_pack("{s:s}", "message",
                                    "no authentication in time"),
                          NULL);
    ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_POLICY,
                           "authentication timeout");
}


/* {"event": name, "data": data (taken), "id"?} to this socket */
void
ngx_http_chat_rt_emit(ngx_http_chat_rt_session_t *s, const char *event,
    json_t *data, json_t *id)
{
    char    *text;
    json_t  *env;

    if (s->sio) {
        ngx_http_chat_sio_emit(s, event, data, id);
        return;
    }

    env = json_pack("{s:s,s:o*}", "event", event, "data", data);
    if (env == NULL) {
        return;
    }

    if (id) {
        json_object_set(env, "id", id);
    }

    text = json_dumps(env, JSON_COMPACT);
    json_decref(env);

    if (text == NULL) {
        return;
    }

    (void) ngx_http_chat_ws_send(s->ws, NGX_HTTP_CHAT_WS_TEXT,
                                 (u_char *) text, ngx_strlen(text));
    free(text);
}


/*
 * {"event": name, "data": text, "id"?} to a plain socket, text JSON as
 * json_dumps() makes it: the frame ngx_http_chat_rt_emit() would make of
 * it, without parsing it or dumping it again
 */
static void
ngx_http_chat_rt_emit_text(ngx_http_chat_rt_session_t *s, const char *event,
    ngx_str_t *text, json_t *id)
{
    char    *ids;
    u_char  *frame, *p;
    size_t   len, ilen;

    ids = NULL;
    ilen = 0;

    if (id) {
        ids = json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
        if (ids == NULL) {
            return;
        }

        ilen = ngx_strlen(ids);
    }

    len = sizeof("{\"event\":\"\",\"data\":") - 1 + ngx_strlen(event)
          + text->len + sizeof(",\"id\":") - 1 + ilen + 1;

    frame = ngx_alloc(len, s->ws->connection->log);
    if (frame == NULL) {
        free(ids);
        return;
    }

    p = ngx_sprintf(frame, "{\"event\":\"%s\",\"data\":%V", event, text);

    if (ids) {
        p = ngx_sprintf(p, ",\"id\":%s", ids);
        free(ids);
    }

    *p++ = '}';

    (void) ngx_http_chat_ws_send(s->ws, NGX_HTTP_CHAT_WS_TEXT, frame,
                                 p - frame);
    ngx_free(frame);
}


static void
ngx_http_chat_rt_drop_text(ngx_http_chat_rt_op_t *op)
{
    ngx_free(op->text.data);
    op->text.data = NULL;
    op->text.len = 0;
}


/* an answer to the event that asked: "ack", or "error" */
void
ngx_http_chat_rt_ack(ngx_http_chat_rt_session_t *s, json_t *id,
    ngx_uint_t status, json_t *answer)
{
    char    *text;
    json_t  *env, *err;

    if (s->sio) {
        ngx_http_chat_sio_ack(s, id, status, answer);
        return;
    }

    if (status < 300) {
        env = json_pack("{s:s,s:O}", "event", "ack", "data", answer);

    } else {
        err = json_object_get(answer, "error");
        env = json_pack("{s:s,s:O*}", "event", "error", "error", err);
        json_object_set_new(env, "status", json_integer(status));
    }

    json_decref(answer);

    if (env == NULL) {
        return;
    }

    if (id) {
        json_object_set(env, "id", id);
    }

    text = json_dumps(env, JSON_COMPACT);
    json_decref(env);

    if (text) {
        (void) ngx_http_chat_ws_send(s->ws, NGX_HTTP_CHAT_WS_TEXT,
                                     (u_char *) text, ngx_strlen(text));
        free(text);
    }
}


void
ngx_http_chat_rt_error(ngx_http_chat_rt_session_t *s, json_t *id,
    const char *code, const char *message)
{
    json_t      *answer;
    ngx_uint_t   status;

    answer = json_pack("{s:{s:s,s:s}}", "error", "code", code,
                       "message", message);

    /* the status REST gives the same code */
    status = ngx_strcmp(code, "unauthenticated") == 0 ? 401
             : ngx_strcmp(code, "not_found") == 0 ? 404
             : ngx_strcmp(code, "already_authenticated") == 0 ? 409
             : ngx_strcmp(code, "internal_error") == 0 ? 500
             : ngx_strcmp(code, "overloaded") == 0 ? 503
             : ngx_strcmp(code, "service_unavailable") == 0 ? 503
             : 400;

    ngx_http_chat_rt_ack(s, id, status, answer);
}


static void
ngx_http_chat_rt_message(ngx_http_chat_ws_t *ws, ngx_uint_t opcode,
    u_char *text, size_t len)
{
    json_t                      *env;
    json_error_t                 err;
    ngx_http_chat_rt_session_t  *s;

    s = ws->data;

    if (opcode != NGX_HTTP_CHAT_WS_TEXT) {
        ngx_http_chat_ws_close(ws, NGX_HTTP_CHAT_WS_UNSUPPORTED,
                               "events are JSON text");
        return;
    }

    env = json_loadb((const char *) text, len, JSON_REJECT_DUPLICATES, &err);

    if (!json_is_object(env)) {
        ngx_http_chat_rt_error(s, NULL, "malformed_event",
                               "an event is a JSON object");
        json_decref(env);
        return;
    }

    ngx_http_chat_rt_event(s, env);
    json_decref(env);
}


/*
 * One event at a time per socket, in the order sent: a client that sends
 * m1 then m2 gets them stored (and numbered) in that order.  env is
 * borrowed.
 */
void
ngx_http_chat_rt_event(ngx_http_chat_rt_session_t *s, json_t *env)
{
    /* counted as it arrives: a flood is refused, not queued */
    if (ngx_http_chat_rt_limit(s, env) != NGX_OK) {
        return;
    }

    if (s->ops || s->pending || s->held) {
        if (s->pending == NULL) {
            s->pending = json_array();
        }

        if (json_array_size(s->pending) >= NGX_HTTP_CHAT_RT_PENDING_MAX) {
            ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_POLICY,
                                   "too many events waiting");
            return;
        }

        if (json_array_append(s->pending, env) != 0) {
            /* an event dropped unseen would be a lie to the client */
            ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_SERVER_ERROR,
                                   NULL);
        }

        return;
    }

    ngx_http_chat_rt_dispatch(s, env);
}


/* the events that waited for the one before them */
static void
ngx_http_chat_rt_next(ngx_http_chat_rt_session_t *s)
{
    json_t  *env;

    if (s->draining) {
        return;
    }

    s->draining = 1;

    while (s->ops == 0 && !s->held && s->pending
           && json_array_size(s->pending))
    {
        env = json_incref(json_array_get(s->pending, 0));
        json_array_remove(s->pending, 0);

        ngx_http_chat_rt_dispatch(s, env);
        json_decref(env);

        if (s->ws->close_sent || s->ws->destroy) {
            break;
        }
    }

    if (s->pending && json_array_size(s->pending) == 0) {
        json_decref(s->pending);
        s->pending = NULL;
    }

    s->draining = 0;

    if (s->sio && s->ops == 0 && s->pending == NULL) {
        ngx_http_chat_sio_leave(s);
    }
}


/* the session may run its events again: those that waited go first */
void
ngx_http_chat_rt_unhold(ngx_http_chat_rt_session_t *s)
{
    if (s->held) {
        s->held = 0;
        ngx_http_chat_rt_next(s);
    }
}


static void
ngx_http_chat_rt_dispatch(ngx_http_chat_rt_session_t *s, json_t *env)
{
    json_t                      *event, *data, *id;
    const char                  *name;
    ngx_http_chat_rt_event_t    *ev;

    if (s->ws->close_sent || s->ws->destroy) {
        /* going (revoked, expired): nothing it sent runs any more */
        return;
    }

    event = json_object_get(env, "event");
    data = json_object_get(env, "data");
    id = json_object_get(env, "id");

    if (id && !json_is_integer(id) && !json_is_string(id)) {
        id = NULL;
    }

    if (!json_is_string(event)) {
        ngx_http_chat_rt_error(s, id, "malformed_event",
                               "\"event\" must be a string");
        return;
    }

    if (data == NULL || json_is_null(data)) {
        data = json_object();
        json_object_set_new(env, "data", data);
    }

    if (!json_is_object(data)) {
        ngx_http_chat_rt_error(s, id, "malformed_event",
                               "\"data\" must be an object");
        return;
    }

    name = json_string_value(event);

    for (ev = ngx_http_chat_rt_events; ev->name; ev++) {
        if (ngx_strcmp(ev->name, name) == 0) {
            break;
        }
    }

    if (ev->name == NULL) {
        ngx_http_chat_rt_error(s, id, "unknown_event", "no such event");
        return;
    }

    if (!s->authenticated && ev->handler != ngx_http_chat_rt_authenticate) {
        ngx_http_chat_rt_error(s, id, "unauthenticated",
                               "authenticate first");
        return;
    }

    ev->handler(s, data, id);
}


/* an event that makes one read, answered by done() */
static void
ngx_http_chat_rt_run(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    const char *not_found, json_t *id, ngx_http_chat_rt_done_pt done)
{
    ngx_http_chat_rt_op_t  *op;

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    if (ngx_http_chat_rt_read_store(s, run, arg, size, not_found, done, op)
        != NGX_OK)
    {
        ngx_http_chat_rt_error(s, id, "internal_error",
                               "the event could not be run");
        ngx_http_chat_rt_op_done(s, op);
    }
}


/* GET /api/chats/:id's argument: the chat as this socket's user sees it */
static void
ngx_http_chat_rt_chat_arg(ngx_http_chat_rt_session_t *s, const char *chat,
    ngx_http_chat_group_arg_t *arg)
{
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = s->main_conf[ngx_http_chat_module.ctx_index];

    ngx_memzero(arg, sizeof(ngx_http_chat_group_arg_t));
    ngx_http_chat_rt_me(s, &arg->user);
    bson_oid_init_from_string(&arg->chat, chat);
    arg->op = NGX_HTTP_CHAT_GROUP_GET;
    arg->max_size = cmcf->group_max_size;
}


ngx_http_chat_rt_op_t *
ngx_http_chat_rt_op_new(ngx_http_chat_rt_session_t *s, json_t *id)
{
    ngx_http_chat_rt_op_t  *op;

    op = ngx_calloc(sizeof(ngx_http_chat_rt_op_t), ngx_cycle->log);
    if (op == NULL) {
        return NULL;
    }

    op->id = id ? json_incref(id) : NULL;
    s->ops++;

    return op;
}


void
ngx_http_chat_rt_op_call(ngx_http_chat_rt_op_t *op)
{
    op->call = 1;
}


/* s: NULL when the socket went while the op ran */
static void
ngx_http_chat_rt_op_done(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_op_t *op)
{
    json_decref(op->id);
    json_decref(op->extra);
    ngx_free(op->text.data);
    ngx_free(op);

    if (s && --s->ops == 0) {
        ngx_http_chat_rt_next(s);
    }
}


/* an ObjectId field of an event, or NULL */
static const char *
ngx_http_chat_rt_oid(json_t *data, const char *name)
{
    json_t     *v;
    ngx_str_t   oid;

    v = json_object_get(data, name);

    if (!json_is_string(v)) {
        return NULL;
    }

    oid.data = (u_char *) json_string_value(v);
    oid.len = json_string_length(v);

    return ngx_http_chat_is_oid(&oid) ? (const char *) oid.data : NULL;
}


/* the messageId of an event about one message; NGX_ERROR: answered */
static ngx_int_t
ngx_http_chat_rt_message_id(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id, bson_oid_t *oid)
{
    const char  *mid;

    mid = ngx_http_chat_rt_oid(data, "messageId");

    if (mid == NULL) {
        ngx_http_chat_rt_error(s, id, "invalid_value",
                               "messageId must be a message id");
        return NGX_ERROR;
    }

    bson_oid_init_from_string(oid, mid);

    return NGX_OK;
}


/* authenticate {token} */
static void
ngx_http_chat_rt_authenticate(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    json_t     *v;
    ngx_str_t   token;

    if (s->authenticated) {
        ngx_http_chat_rt_reauthenticate(s, data, id);
        return;
    }

    if (s->authenticating) {
        ngx_http_chat_rt_error(s, id, "already_authenticated",
                               "this socket is authenticated already");
        return;
    }

    v = json_object_get(data, "token");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > 4096)
    {
        ngx_http_chat_rt_emit(s, "authentication_error",
                              json_pack("{s:s}", "message",
                                        "a token is required"), id);
        return;
    }

    token.data = (u_char *) json_string_value(v);
    token.len = json_string_length(v);

    ngx_http_chat_rt_start_auth(s, &token, id);
}


void
ngx_http_chat_rt_start_auth(ngx_http_chat_rt_session_t *s, ngx_str_t *token,
    json_t *id)
{
    ngx_int_t                   rc;
    const char                 *reason;
    ngx_http_chat_rt_op_t      *op;
    ngx_http_chat_rt_claims_t   claims;

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_SERVER_ERROR, NULL);
        return;
    }

    s->authenticating = 1;

    /* the token is checked as the API's gate checks it */
    if (ngx_http_chat_rt_claims(s, token, &claims, &reason) != NGX_OK) {
        s->token_exp = 0;
        ngx_http_chat_rt_authenticated(s, op, NGX_HTTP_UNAUTHORIZED,
                                       json_pack("{s:{s:s,s:s}}", "error",
                                                 "code", "invalid_token",
                                                 "message", reason));
        return;
    }

    /* its end, for the socket */
    s->token_exp = claims.exp;

    /* its session (revocation included), then the user's profile */
    rc = ngx_http_chat_rt_read_signin(s, &claims, &op->text,
                                      ngx_http_chat_rt_authenticated, op);

    if (rc == NGX_DECLINED) {
        ngx_http_chat_rt_authenticated(s, op, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       json_pack("{s:{s:s,s:s}}", "error",
                                                 "code",
                                                 "service_unavailable",
                                                 "message",
                                                 "a back end is unavailable, "
                                                 "try again shortly"));
        return;
    }

    if (rc != NGX_OK) {
        s->authenticating = 0;
        ngx_http_chat_rt_op_done(s, op);
        ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_SERVER_ERROR, NULL);
    }
}


static void
ngx_http_chat_rt_authenticated(ngx_http_chat_rt_session_t *s, void *data,
    ngx_uint_t status, json_t *answer)
{
    json_t                 *user, *uid, *err;
    ngx_int_t               rc;
    ngx_http_chat_rt_op_t  *op;

    op = data;

    if (s == NULL) {
        json_decref(answer);
        ngx_http_chat_rt_op_done(s, op);
        return;
    }

    s->authenticating = 0;

    user = json_object_get(answer, "user");
    uid = json_object_get(user, "id");

    if (status != 200 || !json_is_string(uid)
        || json_string_length(uid) != NGX_HTTP_CHAT_RT_ID_LEN
        || s->session_id.len == 0)
    {
        err = json_object_get(json_object_get(answer, "error"), "message");
        ngx_http_chat_rt_emit(s, "authentication_error",
                              json_pack("{s:O*}", "message", err), op->id);
        json_decref(answer);
        ngx_http_chat_rt_op_done(s, op);

        if (!s->timer.timer_set && !s->ws->close_sent) {
            ngx_add_timer(&s->timer, s->ws->conf->auth_timeout);
        }

        return;
    }

    /* the site's hook (lua-compat), if any, lets the socket in first */
    if (!op->hooked) {
        op->hooked = 1;
        s->authenticating = 1;

        rc = ngx_http_chat_rt_read_hook(s, (u_char *) json_string_value(uid),
                                        answer,
                                        ngx_http_chat_rt_authenticated, op);
        if (rc == NGX_OK) {
            /* what the hook lets by is told as it says */
            ngx_http_chat_rt_drop_text(op);
            return;
        }

        s->authenticating = 0;

        if (rc != NGX_DECLINED) {
            json_decref(answer);
            ngx_http_chat_rt_op_done(s, op);
            ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_SERVER_ERROR,
                                   NULL);
            return;
        }
    }

    ngx_memcpy(s->user, json_string_value(uid), NGX_HTTP_CHAT_RT_ID_LEN);
    s->authenticated = 1;

    ngx_log_error(NGX_LOG_INFO, s->ws->connection->log, 0,
                  "chat ws: authenticated as %*s", NGX_HTTP_CHAT_RT_ID_LEN,
                  s->user);

    s->counted = 1;
    ngx_http_chat_rt_presence(s->user, 1);
    ngx_http_chat_rt_conn_signed_in(&s->ws->peer);

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    ngx_http_chat_rt_access_arm(s);

    if (ngx_http_chat_rt_join_user(s) != NGX_OK) {
        json_decref(answer);
        ngx_http_chat_rt_op_done(s, op);
        ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_SERVER_ERROR, NULL);
        return;
    }

    /*
     * Then the chats: their channels carry what happens in them.  The
     * profile's text as read is {"user"} as it would be dumped: the
     * socket is told it as it is.
     */
    if (json_object_size(answer) != 1) {
        ngx_http_chat_rt_drop_text(op);
    }

    if (op->text.len == 0) {
        json_decref(op->extra);
        op->extra = json_pack("{s:O}", "user", user);
    }

    if (ngx_http_chat_rt_read_chat_ids(s, ngx_http_chat_rt_chats_page, op)
        != NGX_OK)
    {
        json_decref(answer);
        ngx_http_chat_rt_op_done(s, op);
        ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_SERVER_ERROR, NULL);
        return;
    }

    json_decref(answer);
}


/* the ids of the user's chats; "authenticated" once they are joined */
static void
ngx_http_chat_rt_chats_page(ngx_http_chat_rt_session_t *s, void *data,
    ngx_uint_t status, json_t *answer)
{
    size_t                  i;
    json_t                 *items, *item;
    ngx_str_t               chat_id;
    ngx_http_chat_rt_op_t  *op;

    op = data;

    if (s == NULL) {
        json_decref(answer);
        ngx_http_chat_rt_op_done(s, op);
        return;
    }

    if (status != 200) {
        ngx_http_chat_rt_emit(s, "authentication_error",
                              json_pack("{s:s}", "message",
                                        "your chats could not be read"),
                              op->id);
        json_decref(answer);
        ngx_http_chat_rt_op_done(s, op);
        ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_TRY_AGAIN,
                               "try again later");
        return;
    }

    items = json_object_get(answer, "items");

    json_array_foreach(items, i, item) {
        if (json_is_string(item)) {
            chat_id.data = (u_char *) json_string_value(item);
            chat_id.len = json_string_length(item);
            (void) ngx_http_chat_rt_join_chat(s, &chat_id);
        }
    }

    json_decref(answer);

    ngx_http_chat_metric_inc(s->sio ? NGX_HTTP_CHAT_M_SIGNINS_SIO
                                    : NGX_HTTP_CHAT_M_SIGNINS_WS);

    if (op->text.len && s->sio) {
        ngx_http_chat_sio_emit_text(s, "authenticated", &op->text, op->id);

    } else if (op->text.len) {
        ngx_http_chat_rt_emit_text(s, "authenticated", &op->text, op->id);

    } else {
        ngx_http_chat_rt_emit(s, "authenticated", json_incref(op->extra),
                              op->id);
    }

    ngx_http_chat_rt_op_done(s, op);
}


/*
 * authenticate {token} on a signed-in socket: a fresh access token of the
 * same session (after a refresh) extends the socket's life; the session
 * is checked in Redis as the gate does.
 */
static void
ngx_http_chat_rt_reauthenticate(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    json_t                     *v;
    ngx_str_t                   token;
    const char                 *reason;
    ngx_http_chat_rt_op_t      *op;
    ngx_http_chat_rt_claims_t   claims;

    v = json_object_get(data, "token");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > 4096)
    {
        ngx_http_chat_rt_error(s, id, "invalid_value", "a token is required");
        return;
    }

    token.data = (u_char *) json_string_value(v);
    token.len = json_string_length(v);

    if (ngx_http_chat_rt_claims(s, &token, &claims, &reason) != NGX_OK) {
        ngx_http_chat_rt_ack(s, id, 401,
                             json_pack("{s:{s:s,s:s}}", "error",
                                       "code", "invalid_token",
                                       "message", reason));
        return;
    }

    if (ngx_strncmp(claims.sub, s->user, NGX_HTTP_CHAT_RT_ID_LEN) != 0
        || s->session_id.len != NGX_HTTP_CHAT_RT_ID_LEN
        || ngx_strncmp(claims.sid, s->session_id.data,
                       NGX_HTTP_CHAT_RT_ID_LEN) != 0)
    {
        ngx_http_chat_rt_error(s, id, "already_authenticated",
                               "this socket is authenticated already, "
                               "in another session");
        return;
    }

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    op->extra = json_pack("{s:I}", "exp", (json_int_t) claims.exp);

    if (op->extra == NULL
        || ngx_http_chat_rt_access_check(s, ngx_http_chat_rt_reauthenticated,
                                         op)
           != NGX_OK)
    {
        ngx_http_chat_rt_ack(s, id, 503,
                             json_pack("{s:{s:s,s:s}}", "error",
                                       "code", "service_unavailable",
                                       "message", "a back end is "
                                       "unavailable, try again shortly"));
        ngx_http_chat_rt_op_done(s, op);
    }
}


static void
ngx_http_chat_rt_reauthenticated(ngx_http_chat_rt_session_t *s, void *data,
    ngx_int_t rc)
{
    time_t                  exp;
    ngx_http_chat_rt_op_t  *op;

    op = data;

    if (s == NULL) {
        ngx_http_chat_rt_op_done(s, op);
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_chat_rt_ack(s, op->id, 503,
                             json_pack("{s:{s:s,s:s}}", "error",
                                       "code", "service_unavailable",
                                       "message", "a back end is "
                                       "unavailable, try again shortly"));
        ngx_http_chat_rt_op_done(s, op);
        return;
    }

    if (rc != NGX_OK) {
        /* the session itself is revoked: so is this socket */
        ngx_http_chat_rt_ack(s, op->id, 401,
                             json_pack("{s:{s:s,s:s}}", "error",
                                       "code", "invalid_token",
                                       "message", "the token was revoked"));
        ngx_http_chat_rt_op_done(s, op);
        ngx_http_chat_rt_revoked(s, NGX_HTTP_CHAT_WS_POLICY,
                                 "session revoked");
        return;
    }

    exp = (time_t) json_integer_value(json_object_get(op->extra, "exp"));

    if (exp > s->token_exp) {
        s->token_exp = exp;
    }

    ngx_http_chat_rt_access_arm(s);

    ngx_http_chat_rt_emit(s, "authenticated",
                          json_pack("{s:{s:s%},s:o}", "user",
                                    "id", s->user,
                                    (size_t) NGX_HTTP_CHAT_RT_ID_LEN,
                                    "expiresAt",
                                    ngx_http_chat_json_time(
                                        (int64_t) s->token_exp * 1000)),
                          op->id);
    ngx_http_chat_rt_op_done(s, op);
}


/* the end of an event that made one read: its answer to the client */
static void
ngx_http_chat_rt_acked(ngx_http_chat_rt_session_t *s, void *data,
    ngx_uint_t status, json_t *answer)
{
    ngx_http_chat_rt_op_t  *op;

    op = data;

    if (s) {
        ngx_http_chat_rt_ack(s, op->id, status, answer);

    } else {
        json_decref(answer);
    }

    ngx_http_chat_rt_op_done(s, op);
}


/* join_chat {chatId}: a member's socket follows the chat */
static void
ngx_http_chat_rt_join(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    const char                 *chat;
    ngx_http_chat_group_arg_t   arg;

    chat = ngx_http_chat_rt_oid(data, "chatId");

    if (chat == NULL) {
        ngx_http_chat_rt_error(s, id, "invalid_value",
                               "chatId must be a chat id");
        return;
    }

    /* a member's: the chat as GET /api/chats/:id shows it */
    ngx_http_chat_rt_chat_arg(s, chat, &arg);

    ngx_http_chat_rt_run(s, ngx_http_chat_group_run, &arg, sizeof(arg), NULL,
                         id, ngx_http_chat_rt_joined);
}


static void
ngx_http_chat_rt_joined(ngx_http_chat_rt_session_t *s, void *data,
    ngx_uint_t status, json_t *answer)
{
    ngx_str_t               chat_id;
    ngx_http_chat_rt_op_t  *op;

    op = data;

    if (s && status == 200
        && ngx_http_chat_rt_str_field(json_object_get(answer, "chat"), "id",
                                      &chat_id)
           == NGX_OK
        && ngx_http_chat_rt_join_chat(s, &chat_id) != NGX_OK)
    {
        status = 500;
    }

    ngx_http_chat_rt_acked(s, op, status, answer);
}


static void
ngx_http_chat_rt_leave(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    const char                 *chat;
    ngx_http_chat_group_arg_t   arg;

    chat = ngx_http_chat_rt_oid(data, "chatId");

    if (chat == NULL) {
        ngx_http_chat_rt_error(s, id, "invalid_value",
                               "chatId must be a chat id");
        return;
    }

    /* a member's socket stops following the chat; a non-member's: 404 */
    ngx_http_chat_rt_chat_arg(s, chat, &arg);

    ngx_http_chat_rt_run(s, ngx_http_chat_group_run, &arg, sizeof(arg), NULL,
                         id, ngx_http_chat_rt_left);
}


static void
ngx_http_chat_rt_left(ngx_http_chat_rt_session_t *s, void *data,
    ngx_uint_t status, json_t *answer)
{
    json_t                 *chat;
    ngx_str_t               chat_id;
    ngx_http_chat_rt_op_t  *op;

    op = data;
    chat = json_object_get(answer, "chat");

    if (s && status == 200
        && ngx_http_chat_rt_str_field(chat, "id", &chat_id) == NGX_OK)
    {
        ngx_http_chat_rt_leave_chat(s, &chat_id);

        chat = json_pack("{s:O}", "chatId", json_object_get(chat, "id"));
        json_decref(answer);
        answer = chat;

        if (answer == NULL) {
            status = 500;
        }
    }

    ngx_http_chat_rt_acked(s, op, status, answer);
}


/*
 * send_message {chatId, tempId, content, type?, replyTo?}: the seed's
 * content object {type, text, ...} or the REST form {type, content}.
 */
static void
ngx_http_chat_rt_send(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    json_t  *body, *content, *type, *text;

    body = json_deep_copy(data);
    if (body == NULL) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    content = json_object_get(body, "content");
    type = json_object_get(content, "type");

    if (json_is_object(content) && json_is_string(type)
        && json_object_get(body, "type") == NULL)
    {
        json_object_set(body, "type", type);

        if (ngx_strcmp(json_string_value(type), "text") == 0) {
            text = json_object_get(content, "text");
            json_object_set(body, "content", text ? text : json_null());

        } else {
            content = json_deep_copy(content);
            json_object_del(content, "type");
            json_object_set_new(body, "content", content);
        }
    }

    ngx_http_chat_rt_op_start(s, id, body, ngx_http_chat_op_send_message);
    json_decref(body);
}


/*
 * An event that runs an operation: its answer is the event's ack, or its
 * refusal the event's error, as REST would say it
 */
static void
ngx_http_chat_rt_op_start(ngx_http_chat_rt_session_t *s, json_t *id,
    json_t *body, ngx_http_chat_rt_op_pt start)
{
    ngx_int_t                 rc;
    bson_oid_t                me;
    const char               *field, *err;
    ngx_http_chat_rt_op_t    *op;
    ngx_http_chat_op_send_t  *send;

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    ngx_http_chat_rt_op_user(s, &me);

    rc = start(&me, body, NGX_HTTP_CHAT_OP_SEND_CHECK
                          |NGX_HTTP_CHAT_OP_SEND_MARK
                          |NGX_HTTP_CHAT_OP_SEND_CACHE
                          |NGX_HTTP_CHAT_OP_SEND_BOUND
                          |NGX_HTTP_CHAT_OP_SEND_BUDGET,
               ngx_http_chat_rt_op_answered, op, &send, &field, &err);

    ngx_http_chat_rt_op_started(s, op, rc, field, err);
}


/* the session's user as an ObjectId, for the operations */
static void
ngx_http_chat_rt_op_user(ngx_http_chat_rt_session_t *s, bson_oid_t *me)
{
    ngx_http_chat_rt_me(s, me);
}


/*
 * rc: how an operation started (ngx_http_chat_op_message.h): NGX_OK, it
 * answers later; or its refusal of the input, or NGX_ERROR, answered now
 */
void
ngx_http_chat_rt_op_started(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_op_t *op, ngx_int_t rc, const char *field,
    const char *err)
{
    json_t  *answer;

    if (rc == NGX_OK) {
        op->session = s;
        ngx_queue_insert_tail(&s->waiting, &op->queue);
        return;
    }

    if (rc == NGX_DECLINED) {
        answer = json_pack("{s:{s:s,s:s++,s:{s:s}}}", "error",
                           "code", "invalid_request",
                           "message", field, " ", err,
                           "details", "field", field);
        ngx_http_chat_rt_ack(s, op->id, NGX_HTTP_BAD_REQUEST, answer);

    } else if (rc == NGX_ABORT) {
        answer = json_pack("{s:{s:s,s:s}}", "error", "code", field,
                           "message", err);
        ngx_http_chat_rt_ack(s, op->id, NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY,
                             answer);

    } else if (rc == NGX_AGAIN) {
        /* the worker's sends in flight are at chat_send_max_pending */
        ngx_http_chat_rt_error(s, op->id, "overloaded",
                               "too many messages are being stored, "
                               "try again shortly");

    } else {
        ngx_http_chat_rt_error(s, op->id, "service_unavailable",
                               "a back end is unavailable, try again shortly");
    }

    ngx_http_chat_rt_op_done(s, op);
}


void
ngx_http_chat_rt_op_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_rt_op_t  *op = data;

    ngx_http_chat_op_told_t      told;
    ngx_http_chat_rt_session_t  *s;

    s = op->session;

    if (s == NULL) {
        json_decref(answer);
        ngx_http_chat_rt_op_done(NULL, op);
        return;
    }

    ngx_queue_remove(&op->queue);
    op->session = NULL;

    if (op->call) {
        ngx_http_chat_rt_call_noted(s, rc, answer);
        ngx_http_chat_op_call_tell(rc, answer, 0, &told);

    } else if (op->message) {
        ngx_http_chat_op_message_tell(rc, answer, 1, &told);

    } else {
        ngx_http_chat_op_tell(rc, answer, 1, &told);
    }

    if (told.answer == NULL) {
        told.answer = ngx_http_chat_op_envelope(&told);
        json_decref(told.details);
        json_decref(told.keep);
    }

    ngx_http_chat_rt_ack(s, op->id, told.status, told.answer);
    ngx_http_chat_rt_op_done(s, op);
}


/* the session goes: the operations its events started finish without it */
static void
ngx_http_chat_rt_waiting_detach(ngx_http_chat_rt_session_t *s)
{
    ngx_queue_t            *q;
    ngx_http_chat_rt_op_t  *op;

    while (!ngx_queue_empty(&s->waiting)) {
        q = ngx_queue_head(&s->waiting);
        op = ngx_queue_data(q, ngx_http_chat_rt_op_t, queue);
        ngx_queue_remove(q);
        op->session = NULL;
    }
}


static void
ngx_http_chat_rt_typing_start(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_typing(s, data, id, 1);
}


static void
ngx_http_chat_rt_typing_stop(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_typing(s, data, id, 0);
}


/*
 * Typing is never stored: it goes to the chat's other members, at most
 * one a second, and ends by itself: typing_stop, another chat, the
 * socket closing, or NGX_HTTP_CHAT_RT_TYPING_TTL without a new start.
 */
static void
ngx_http_chat_rt_typing(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id, ngx_uint_t on)
{
    ngx_str_t                  chat_id, old;
    ngx_http_chat_rt_typing_t  *t;

    if (ngx_http_chat_rt_oid(data, "chatId") == NULL) {
        ngx_http_chat_rt_error(s, id, "invalid_value",
                               "chatId must be a chat id");
        return;
    }

    (void) ngx_http_chat_rt_str_field(data, "chatId", &chat_id);

    if (!ngx_http_chat_rt_in_chat(s, &chat_id)) {
        ngx_http_chat_rt_error(s, id, "not_found", "no such chat");
        return;
    }

    t = s->typing;

    if (!on) {
        if (t && t->ev.timer_set) {
            ngx_del_timer(&t->ev);
        }

        s->typing_at = 0;
        ngx_http_chat_rt_typing_publish(s, &chat_id, 0);
        return;
    }

    if (t == NULL) {
        t = ngx_calloc(sizeof(ngx_http_chat_rt_typing_t), ngx_cycle->log);
        if (t == NULL) {
            return;
        }

        t->ev.handler = ngx_http_chat_rt_typing_expired;
        t->ev.data = s;
        t->ev.log = ngx_cycle->log;
        t->ev.cancelable = 1;
        s->typing = t;
    }

    if (t->ev.timer_set
        && ngx_strncmp(t->chat, chat_id.data, NGX_HTTP_CHAT_RT_ID_LEN) != 0)
    {
        /* typing somewhere else now */
        old.data = t->chat;
        old.len = NGX_HTTP_CHAT_RT_ID_LEN;
        ngx_http_chat_rt_typing_publish(s, &old, 0);
        s->typing_at = 0;
    }

    ngx_memcpy(t->chat, chat_id.data, NGX_HTTP_CHAT_RT_ID_LEN);
    ngx_add_timer(&t->ev, NGX_HTTP_CHAT_RT_TYPING_TTL);

    if (s->typing_at
        && ngx_current_msec - s->typing_at < NGX_HTTP_CHAT_RT_TYPING_GAP)
    {
        return;     /* rate-limited: the last one still stands */
    }

    s->typing_at = ngx_current_msec;
    ngx_http_chat_rt_typing_publish(s, &chat_id, 1);
}


static void
ngx_http_chat_rt_typing_publish(ngx_http_chat_rt_session_t *s,
    ngx_str_t *chat_id, ngx_uint_t on)
{
    json_t     *event;
    ngx_str_t   me;

    me.data = s->user;
    me.len = NGX_HTTP_CHAT_RT_ID_LEN;

    event = json_pack("{s:s%,s:s%,s:b,s:i}",
                      "chatId", chat_id->data, chat_id->len,
                      "userId", me.data, me.len,
                      "isTyping", (int) on,
                      "expiresIn", on ? NGX_HTTP_CHAT_RT_TYPING_TTL : 0);

    ngx_http_chat_rt_publish_as("chat:", chat_id, 'x', &me, NULL,
                                "user_typing", event);
    json_decref(event);
}


static void
ngx_http_chat_rt_typing_expired(ngx_event_t *ev)
{
    ngx_str_t                    chat_id;
    ngx_http_chat_rt_session_t  *s;

    s = ev->data;

    chat_id.data = s->typing->chat;
    chat_id.len = NGX_HTTP_CHAT_RT_ID_LEN;

    s->typing_at = 0;
    ngx_http_chat_rt_typing_publish(s, &chat_id, 0);
}


static void
ngx_http_chat_rt_delivered(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_marker(s, data, id, 0);
}


static void
ngx_http_chat_rt_read(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_marker(s, data, id, 1);
}


/*
 * message_read / message_delivered {messageId}: the marker moves up to
 * that message (found first for its chat and number), or {chatId,
 * upToSeq} directly.
 */
static void
ngx_http_chat_rt_marker(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id, ngx_uint_t read)
{
    ngx_int_t                  rc;
    bson_oid_t                 me, oid;
    const char                *chat, *field, *err;
    ngx_http_chat_rt_op_t     *op;
    ngx_http_chat_op_store_t  *store;

    chat = ngx_http_chat_rt_oid(data, "chatId");

    if (chat == NULL || json_object_get(data, "upToSeq") == NULL) {
        if (ngx_http_chat_rt_message_id(s, data, id, &oid) != NGX_OK) {
            return;
        }

        chat = NULL;

    } else {
        bson_oid_init_from_string(&oid, chat);
    }

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    ngx_http_chat_rt_op_user(s, &me);
    field = NULL;
    err = NULL;

    if (chat) {
        rc = ngx_http_chat_op_marker(&me, &oid,
                                     json_object_get(data, "upToSeq"), read,
                                     ngx_http_chat_rt_op_answered, op,
                                     &store, &field, &err);

    } else {
        rc = ngx_http_chat_op_marker_at(&me, &oid, read,
                                        ngx_http_chat_rt_op_answered, op,
                                        &store);
    }

    ngx_http_chat_rt_op_started(s, op, rc, field, err);
}


/* add_reaction {messageId, emoji} */
static void
ngx_http_chat_rt_react(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_int_t                  rc;
    bson_oid_t                 me, mid;
    const char                *field, *err;
    ngx_http_chat_rt_op_t     *op;
    ngx_http_chat_op_store_t  *store;

    if (ngx_http_chat_rt_message_id(s, data, id, &mid) != NGX_OK) {
        return;
    }

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    op->message = 1;
    ngx_http_chat_rt_op_user(s, &me);

    rc = ngx_http_chat_op_react(&me, &mid, json_object_get(data, "emoji"),
                                ngx_http_chat_rt_op_answered, op, &store,
                                &field, &err);

    ngx_http_chat_rt_op_started(s, op, rc, field, err);
}


/* edit_message {messageId, newContent} (or content) */
static void
ngx_http_chat_rt_edit(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    json_t                    *content;
    ngx_int_t                  rc;
    bson_oid_t                 me, mid;
    const char                *field, *err;
    ngx_http_chat_rt_op_t     *op;
    ngx_http_chat_op_store_t  *store;

    if (ngx_http_chat_rt_message_id(s, data, id, &mid) != NGX_OK) {
        return;
    }

    content = json_object_get(data, "newContent");
    if (content == NULL) {
        content = json_object_get(data, "content");
    }

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    op->message = 1;
    ngx_http_chat_rt_op_user(s, &me);

    rc = ngx_http_chat_op_edit(&me, &mid, content,
                               ngx_http_chat_rt_op_answered, op, &store,
                               &field, &err);

    ngx_http_chat_rt_op_started(s, op, rc, field, err);
}


/* delete_message {messageId, deleteForEveryone} */
static void
ngx_http_chat_rt_delete(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    json_t                    *all;
    ngx_int_t                  rc;
    bson_oid_t                 me, mid;
    ngx_http_chat_rt_op_t     *op;
    ngx_http_chat_op_store_t  *store;

    all = json_object_get(data, "deleteForEveryone");
    if (all == NULL) {
        all = json_object_get(data, "forEveryone");
    }

    if (ngx_http_chat_rt_message_id(s, data, id, &mid) != NGX_OK) {
        return;
    }

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    op->message = 1;
    ngx_http_chat_rt_op_user(s, &me);

    rc = ngx_http_chat_op_delete(&me, &mid, json_is_true(all),
                                 ngx_http_chat_rt_op_answered, op, &store);

    ngx_http_chat_rt_op_started(s, op, rc, NULL, NULL);
}


/*
 * sync {chats: {chatId: lastSeq}}: every message after lastSeq, in
 * order, as new_message; a chat too far behind gets sync_gap (page over
 * REST); then "synced".
 */
static void
ngx_http_chat_rt_sync(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    json_t                 *chats, *v, *todo;
    const char             *key;
    ngx_http_chat_rt_op_t  *op;

    chats = json_object_get(data, "chats");

    if (!json_is_object(chats) || json_object_size(chats) > 1000) {
        ngx_http_chat_rt_error(s, id, "invalid_value",
                               "chats must map chat ids to sequence "
                               "numbers");
        return;
    }

    todo = json_array();

    json_object_foreach(chats, key, v) {
        if (ngx_strlen(key) != 24 || !json_is_integer(v)
            || json_integer_value(v) < 0)
        {
            json_decref(todo);
            ngx_http_chat_rt_error(s, id, "invalid_value",
                                   "chats must map chat ids to sequence "
                                   "numbers");
            return;
        }

        json_array_append_new(todo, json_pack("[s,O]", key, v));
    }

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        json_decref(todo);
        return;
    }
    op->extra = json_pack("{s:o,s:o}", "todo", todo, "done", json_object());

    ngx_http_chat_rt_sync_next(s, op);
}


static void
ngx_http_chat_rt_sync_next(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_op_t *op)
{
    json_t  *todo, *item;

    todo = json_object_get(op->extra, "todo");

    if (op->step >= json_array_size(todo)) {
        ngx_http_chat_rt_emit(s, "synced",
                              json_pack("{s:O}", "chats",
                                        json_object_get(op->extra, "done")),
                              op->id);
        ngx_http_chat_rt_op_done(s, op);
        return;
    }

    item = json_array_get(todo, op->step);

    ngx_http_chat_rt_sync_read(s, op, json_array_get(item, 0),
                               json_array_get(item, 1),
                               NGX_HTTP_CHAT_RT_SYNC_MAX,
                               ngx_http_chat_rt_synced);
}


/* the messages of a chat after a seq, up to limit, to done() */
static void
ngx_http_chat_rt_sync_read(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_op_t *op, json_t *chat, json_t *after, ngx_uint_t limit,
    ngx_http_chat_rt_done_pt done)
{
    ngx_http_chat_msg_arg_t  arg;

    /* GET /api/chats/:id/messages?after=&limit= */
    ngx_memzero(&arg, sizeof(ngx_http_chat_msg_arg_t));
    ngx_http_chat_rt_me(s, &arg.user);
    bson_oid_init_from_string(&arg.chat, json_string_value(chat));
    arg.limit = limit;
    arg.after = (int64_t) json_integer_value(after);
    arg.has_after = 1;

    /* a resync's reads are paced (ngx_http_chat_rt_read.c) */
    if (ngx_http_chat_rt_read_store_paced(s, ngx_http_chat_msg_list_run,
                                          &arg,
                                          sizeof(ngx_http_chat_msg_arg_t),
                                          NULL, done, op)
        != NGX_OK)
    {
        ngx_http_chat_rt_error(s, op->id, "internal_error",
                               "the event could not be run");
        ngx_http_chat_rt_op_done(s, op);
    }
}


static void
ngx_http_chat_rt_synced(ngx_http_chat_rt_session_t *s, void *data,
    ngx_uint_t status, json_t *answer)
{
    size_t                  i;
    json_t                 *items, *m, *item, *last, *chat;
    ngx_http_chat_rt_op_t  *op;

    op = data;

    if (s == NULL) {
        json_decref(answer);
        ngx_http_chat_rt_op_done(s, op);
        return;
    }

    item = json_array_get(json_object_get(op->extra, "todo"), op->step);
    chat = json_array_get(item, 0);
    last = json_array_get(item, 1);

    if (status != 200) {
        /*
         * Not a member (any more), or the store failed this read (then
         * "unavailable": sync that chat again shortly): said, and the
         * others go on.
         */
        json_object_set_new(json_object_get(op->extra, "done"),
                            json_string_value(chat),
                            json_pack("{s:s}", "error",
                                      status >= 500 || status == 429
                                      ? "unavailable" : "not_found"));
        json_decref(answer);
        op->step++;
        ngx_http_chat_rt_sync_next(s, op);
        return;
    }

    items = json_object_get(answer, "items");

    json_array_foreach(items, i, m) {
        ngx_http_chat_rt_emit(s, "new_message",
                              json_pack("{s:O,s:O?}", "message", m,
                                        "tempId",
                                        json_object_get(m, "tempId")),
                              NULL);
        last = json_object_get(m, "seq");
    }

    if (json_is_integer(json_object_get(answer, "through"))) {
        /*
         * A young hole: a number taken whose message may still be on its
         * way.  Everything read was sent, but it says it covered only up
         * to the hole, so the client's next sync asks from there again.
         */
        json_object_set_new(json_object_get(op->extra, "done"),
                            json_string_value(chat),
                            json_pack("{s:O}", "lastSeq",
                                      json_object_get(answer, "through")));
        json_decref(answer);
        op->step++;
        ngx_http_chat_rt_sync_next(s, op);
        return;
    }

    json_object_set_new(json_object_get(op->extra, "done"),
                        json_string_value(chat),
                        json_pack("{s:O}", "lastSeq", last));

    if (json_array_size(items) >= NGX_HTTP_CHAT_RT_SYNC_MAX) {
        /* exactly the most a sync sends, or more: is there more? */
        json_object_set(op->extra, "after", last);
        json_decref(answer);
        ngx_http_chat_rt_sync_read(s, op, chat, last, 1,
                                   ngx_http_chat_rt_sync_probed);
        return;
    }

    json_decref(answer);
    op->step++;
    ngx_http_chat_rt_sync_next(s, op);
}


/* more after the messages sent: sync_gap, and the client pages on REST */
static void
ngx_http_chat_rt_sync_probed(ngx_http_chat_rt_session_t *s, void *data,
    ngx_uint_t status, json_t *answer)
{
    json_t                 *chat;
    ngx_http_chat_rt_op_t  *op;

    op = data;

    if (s == NULL) {
        json_decref(answer);
        ngx_http_chat_rt_op_done(s, op);
        return;
    }

    chat = json_array_get(json_array_get(json_object_get(op->extra, "todo"),
                                         op->step),
                          0);

    if (status != 200
        || json_array_size(json_object_get(answer, "items")) > 0)
    {
        ngx_http_chat_rt_emit(s, "sync_gap",
                              json_pack("{s:O,s:O}", "chatId", chat,
                                        "afterSeq",
                                        json_object_get(op->extra, "after")),
                              NULL);
    }

    json_decref(answer);
    op->step++;
    ngx_http_chat_rt_sync_next(s, op);
}


/*
 * subscribe_presence {userId}: user_online / user_offline of that user
 * from now on, if their privacy settings and blocks let this user see
 * it; the ack carries the user as GET /api/users/:id shows them.
 */
static void
ngx_http_chat_rt_watch(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_str_t               uid;
    ngx_http_chat_rt_op_t  *op;

    if (ngx_http_chat_rt_oid(data, "userId") == NULL) {
        ngx_http_chat_rt_error(s, id, "invalid_value",
                               "userId must be a user id");
        return;
    }

    (void) ngx_http_chat_rt_str_field(data, "userId", &uid);

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    /* the user as GET /api/users/:id shows them to this one */
    if (ngx_http_chat_rt_read_user(s, &uid, 1, ngx_http_chat_rt_watched, op)
        != NGX_OK)
    {
        ngx_http_chat_rt_error(s, id, "internal_error",
                               "the event could not be run");
        ngx_http_chat_rt_op_done(s, op);
    }
}


static void
ngx_http_chat_rt_watched(ngx_http_chat_rt_session_t *s, void *data,
    ngx_uint_t status, json_t *answer)
{
    json_t     *user;
    ngx_str_t   uid;

    user = json_object_get(answer, "user");

    if (s && status == 200 && json_object_get(user, "online")
        && ngx_http_chat_rt_str_field(user, "id", &uid) == NGX_OK
        && ngx_http_chat_rt_join_presence(s, &uid) == NGX_ERROR)
    {
        status = 500;
    }

    ngx_http_chat_rt_acked(s, data, status, answer);
}
