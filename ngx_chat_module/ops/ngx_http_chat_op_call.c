/*
 * Copyright (C) ngx_chat_module authors
 *
 * Calls as operations: what a client sent is checked here, on the event
 * loop; the call's state changes in the store step (the call record in
 * MongoDB is the truth every worker reads).  The worker that started a
 * call keeps its ringing timeout; the worker whose socket went keeps the
 * grace of that device.  Both are timers in memory: a worker that dies
 * loses them, and a ringing call past its time then reads as missed
 * (ngx_http_chat_calls_store.c).
 */


#include "ngx_http_chat_op_call.h"
#include "ngx_http_chat_op_input.h"
#include "ngx_http_chat_op_send.h"
#include "../core/ngx_http_chat_events.h"


typedef struct {
    ngx_event_t                 ev;
    ngx_queue_t                 queue;
    ngx_http_chat_call_arg_t    arg;
} ngx_http_chat_op_call_timer_t;


/* the content of a call's message in its chat, while it is stored */
typedef struct {
    ngx_http_chat_op_store_t   *op;
    json_t                     *answer;
} ngx_http_chat_op_call_ctx_t;


static void ngx_http_chat_op_call_later(ngx_http_chat_call_arg_t *arg,
    ngx_msec_t delay);
static void ngx_http_chat_op_call_fire(ngx_event_t *ev);
static void ngx_http_chat_op_call_stored(ngx_http_chat_op_store_t *op,
    void *data, ngx_int_t rc, json_t *answer, const char *error);
static void ngx_http_chat_op_call_sent(void *data, ngx_int_t rc, json_t *json,
    const char *error);
static void ngx_http_chat_op_call_drop(void *data);


static const char  *ngx_http_chat_call_issues[] = {
    "echo", "noise", "audio_delay", "audio_dropouts", "no_audio",
    "poor_video", "frozen_video", "no_video", "call_dropped", "other", NULL
};


static ngx_queue_t       ngx_http_chat_op_call_timers;
static ngx_connection_t  ngx_http_chat_op_call_dummy;      /* timers' log */


static ngx_http_chat_main_conf_t *
ngx_http_chat_op_call_conf(void)
{
    return ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);
}


/*
 * After the first step: a call that rings now gets its timeout on this
 * worker, whoever waits for the answer
 */

static ngx_http_chat_mongo_run_pt
ngx_http_chat_op_call_started(void *data, ngx_int_t *rc, json_t *answer)
{
    ngx_http_chat_call_arg_t *arg = data;

    json_t                    *status;
    ngx_http_chat_call_arg_t   timeout;

    status = json_object_get(json_object_get(answer, "call"), "status");

    if (*rc == NGX_OK && json_is_string(status)
        && ngx_strcmp(json_string_value(status), "ringing") == 0)
    {
        ngx_memzero(&timeout, sizeof(ngx_http_chat_call_arg_t));
        timeout.what = NGX_HTTP_CHAT_CALL_TIMEOUT;
        timeout.id = arg->id;
        timeout.me = arg->me;

        ngx_http_chat_op_call_later(&timeout, (ngx_msec_t) arg->ring);
    }

    return NULL;
}


ngx_int_t
ngx_http_chat_op_call_initiate(const bson_oid_t *me, json_t *body,
    const char *sock, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused)
{
    ngx_str_t                   type;
    ngx_uint_t                  has_user, has_chat;
    const char                 *err;
    ngx_http_chat_call_arg_t    arg;
    ngx_http_chat_main_conf_t  *cmcf;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));
    ngx_memzero(&arg, sizeof(ngx_http_chat_call_arg_t));

    if (!json_is_object(body)) {
        return ngx_http_chat_op_invalid(refused, "body", "must be an object");
    }

    if ((err = ngx_http_chat_input_oid(body, "userId", 0, &arg.target,
                                       &has_user)))
    {
        return ngx_http_chat_op_invalid(refused, "userId", err);
    }

    if ((err = ngx_http_chat_input_oid(body, "chatId", 0, &arg.chat,
                                       &has_chat)))
    {
        return ngx_http_chat_op_invalid(refused, "chatId", err);
    }

    if (has_user == has_chat) {
        return ngx_http_chat_op_invalid(refused, "userId",
                                        "or chatId is required, not both");
    }

    if ((err = ngx_http_chat_json_string(body, "type", 1, 8, &type))) {
        return ngx_http_chat_op_invalid(refused, "type", err);
    }

    if (!(type.len == 5 && ngx_strncmp(type.data, "audio", 5) == 0)
        && !(type.len == 5 && ngx_strncmp(type.data, "video", 5) == 0))
    {
        return ngx_http_chat_op_invalid(refused, "type",
                                        "must be audio or video");
    }

    if (has_user && bson_oid_equal(&arg.target, me)) {
        refused->field = "invalid_value";
        refused->err = "you cannot call yourself";
        refused->details = json_pack("{s:s}", "field", "userId");
        return NGX_ABORT;
    }

    cmcf = ngx_http_chat_op_call_conf();
    if (cmcf == NULL) {
        return NGX_ERROR;
    }

    arg.what = NGX_HTTP_CHAT_CALL_INITIATE;
    arg.me = *me;
    arg.has_target = has_user;
    arg.has_chat = has_chat;
    arg.video = (type.data[0] == 'v');
    arg.ring = (int64_t) cmcf->call_ring_timeout;
    arg.max_peers = cmcf->call_max_participants;
    bson_oid_init(&arg.id, NULL);

    if (sock) {
        ngx_memcpy(arg.sock, sock, 24);
    }

    return ngx_http_chat_op_store(ngx_http_chat_call_initiate_run,
                                  ngx_http_chat_op_call_started, &arg,
                                  sizeof(ngx_http_chat_call_arg_t), done,
                                  data, out);
}


/* a signal's payload: {sdp} (a string) or {candidate} (an object) */

static ngx_int_t
ngx_http_chat_op_call_payload(json_t *body, const char *event,
    json_t **payload, ngx_http_chat_op_refused_t *refused)
{
    json_t      *v;
    ngx_uint_t   ice;
    const char  *name;

    ice = (ngx_strcmp(event, "webrtc_ice_candidate") == 0);
    name = ice ? "candidate" : "sdp";

    v = json_object_get(body, name);

    if (v == NULL || json_is_null(v)) {
        return ngx_http_chat_op_invalid(refused, name, "is required");
    }

    if (ice) {
        /* RTCIceCandidateInit, or the candidate line alone */
        if (!json_is_object(v) && !json_is_string(v)) {
            return ngx_http_chat_op_invalid(refused, name,
                                            "must be an object or a "
                                            "string");
        }

    } else if (!json_is_string(v) || json_string_length(v) == 0) {
        return ngx_http_chat_op_invalid(refused, name,
                                        "must be a non-empty string");
    }

    *payload = json_pack("{s:O}", name, v);
    if (*payload == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_op_call(const bson_oid_t *me, ngx_uint_t what,
    const bson_oid_t *id, json_t *body, const char *sock, const char *event,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused)
{
    size_t                     len;
    json_t                    *payload;
    ngx_int_t                  rc;
    ngx_uint_t                 found;
    const char                *err;
    ngx_http_chat_call_arg_t  *arg;
    ngx_http_chat_main_conf_t  *cmcf;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));

    cmcf = ngx_http_chat_op_call_conf();

    arg = ngx_calloc(sizeof(ngx_http_chat_call_arg_t)
                     + NGX_HTTP_CHAT_CALL_SIGNAL_MAX + 1024, ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    arg->what = what;
    arg->me = *me;
    arg->max_peers = cmcf ? cmcf->call_max_participants : 2;
    len = 0;

    if (id) {
        arg->id = *id;

    } else if (!json_is_object(body)) {
        ngx_free(arg);
        return ngx_http_chat_op_invalid(refused, "data", "must be an object");

    } else if ((err = ngx_http_chat_input_oid(body, "callId", 1, &arg->id,
                                              &found)))
    {
        ngx_free(arg);
        return ngx_http_chat_op_invalid(refused, "callId", err);
    }

    if (sock) {
        ngx_memcpy(arg->sock, sock, 24);
    }

    if (what == NGX_HTTP_CHAT_CALL_SIGNAL) {
        if ((err = ngx_http_chat_input_oid(body, "to", 1, &arg->target,
                                           &found)))
        {
            ngx_free(arg);
            return ngx_http_chat_op_invalid(refused, "to", err);
        }

        payload = NULL;
        rc = ngx_http_chat_op_call_payload(body, event, &payload, refused);

        if (rc != NGX_OK) {
            ngx_free(arg);
            return rc;
        }

        len = json_dumpb(payload, (char *) (arg + 1),
                         NGX_HTTP_CHAT_CALL_SIGNAL_MAX + 1024, JSON_COMPACT);
        json_decref(payload);

        if (len > NGX_HTTP_CHAT_CALL_SIGNAL_MAX) {
            ngx_free(arg);
            refused->field = "payload_too_large";
            refused->err = "an sdp or a candidate is at most 32 KB";
            refused->details = json_pack("{s:i}", "max",
                                         NGX_HTTP_CHAT_CALL_SIGNAL_MAX);
            return NGX_ABORT;
        }

        if (len == 0) {
            ngx_free(arg);
            return NGX_ERROR;
        }

        arg->payload_len = len;
        ngx_cpystrn((u_char *) arg->event, (u_char *) event,
                    sizeof(arg->event));
    }

    rc = ngx_http_chat_op_store(ngx_http_chat_call_act_run, NULL, arg,
                                sizeof(ngx_http_chat_call_arg_t) + len, done,
                                data, out);
    ngx_free(arg);

    return rc;
}


static ngx_int_t
ngx_http_chat_op_call_bad(ngx_http_chat_op_refused_t *refused,
    const char *field, const char *err)
{
    refused->field = "invalid_value";
    refused->err = err;
    refused->details = json_pack("{s:s}", "field", field);

    return NGX_ABORT;
}


/* a number of stats within [min, max]; absent is fine */

static ngx_int_t
ngx_http_chat_op_call_stat(json_t *stats, const char *name, double max,
    json_t *out, ngx_http_chat_op_refused_t *refused, const char *field)
{
    json_t  *v;
    double   d;

    v = json_object_get(stats, name);

    if (v == NULL || json_is_null(v)) {
        return NGX_OK;
    }

    if (!json_is_number(v)) {
        return ngx_http_chat_op_invalid(refused, field, "must be a number");
    }

    d = json_number_value(v);

    if (d < 0 || d > max) {
        return ngx_http_chat_op_call_bad(refused, field,
                                         "is out of its range");
    }

    return json_object_set(out, name, v) == 0 ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_chat_op_call_stats(json_t *stats, json_t *out,
    ngx_http_chat_op_refused_t *refused)
{
    u_char      *p;
    ngx_int_t    rc;
    ngx_str_t    codec;
    const char  *key, *err;
    json_t      *v;

    if (!json_is_object(stats)) {
        return ngx_http_chat_op_invalid(refused, "stats",
                                        "must be an object");
    }

    json_object_foreach(stats, key, v) {
        if (ngx_strcmp(key, "rttMs") != 0 && ngx_strcmp(key, "jitterMs") != 0
            && ngx_strcmp(key, "packetLoss") != 0
            && ngx_strcmp(key, "bitrateKbps") != 0
            && ngx_strcmp(key, "codec") != 0)
        {
            return ngx_http_chat_op_invalid(refused, "stats",
                                            "holds rttMs, jitterMs, "
                                            "packetLoss, bitrateKbps and "
                                            "codec only");
        }
    }

    if ((rc = ngx_http_chat_op_call_stat(stats, "rttMs", 60000, out, refused,
                                         "stats.rttMs")) != NGX_OK
        || (rc = ngx_http_chat_op_call_stat(stats, "jitterMs", 60000, out,
                                            refused, "stats.jitterMs"))
           != NGX_OK
        || (rc = ngx_http_chat_op_call_stat(stats, "packetLoss", 1, out,
                                            refused, "stats.packetLoss"))
           != NGX_OK
        || (rc = ngx_http_chat_op_call_stat(stats, "bitrateKbps", 100000,
                                            out, refused,
                                            "stats.bitrateKbps"))
           != NGX_OK)
    {
        return rc;
    }

    if ((err = ngx_http_chat_json_string(stats, "codec", 0, 32, &codec))) {
        return ngx_http_chat_op_invalid(refused, "stats.codec", err);
    }

    if (codec.data) {
        for (p = codec.data; p < codec.data + codec.len; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9')
                  || *p == '/' || *p == '.' || *p == '-' || *p == '_'))
            {
                return ngx_http_chat_op_call_bad(refused, "stats.codec",
                                                 "must be a codec's name, "
                                                 "as opus or video/VP8");
            }
        }

        if (codec.len == 0) {
            return ngx_http_chat_op_call_bad(refused, "stats.codec",
                                             "must not be empty");
        }

        if (json_object_set(out, "codec", json_object_get(stats, "codec"))
            != 0)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_op_call_feedback(const bson_oid_t *me, const bson_oid_t *id,
    json_t *body, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused)
{
    size_t                     len, i, j;
    json_t                    *rating, *issues, *stats, *v, *fb, *st;
    ngx_int_t                  rc;
    json_int_t                 n;
    ngx_uint_t                 k;
    ngx_http_chat_call_arg_t  *arg;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));

    if (!json_is_object(body)) {
        return ngx_http_chat_op_invalid(refused, "body", "must be an object");
    }

    rating = json_object_get(body, "rating");

    if (!json_is_integer(rating)) {
        return ngx_http_chat_op_invalid(refused, "rating",
                                        "is required, a whole number");
    }

    n = json_integer_value(rating);

    if (n < 1 || n > 5) {
        return ngx_http_chat_op_call_bad(refused, "rating",
                                         "must be from 1 to 5");
    }

    issues = json_object_get(body, "issues");

    if (issues && !json_is_null(issues) && !json_is_array(issues)) {
        return ngx_http_chat_op_invalid(refused, "issues",
                                        "must be an array of strings");
    }

    json_array_foreach(issues, i, v) {
        if (!json_is_string(v)) {
            return ngx_http_chat_op_invalid(refused, "issues",
                                            "must be an array of strings");
        }

        for (k = 0; ngx_http_chat_call_issues[k]; k++) {
            if (ngx_strcmp(json_string_value(v),
                           ngx_http_chat_call_issues[k]) == 0)
            {
                break;
            }
        }

        if (ngx_http_chat_call_issues[k] == NULL) {
            return ngx_http_chat_op_call_bad(refused, "issues",
                                             "holds an issue not in the "
                                             "list");
        }

        for (j = 0; j < i; j++) {
            if (json_equal(v, json_array_get(issues, j))) {
                return ngx_http_chat_op_call_bad(refused, "issues",
                                                 "holds an issue twice");
            }
        }
    }

    stats = json_object_get(body, "stats");

    fb = json_pack("{s:I,s:o}", "rating", n, "issues",
                   json_is_array(issues) ? json_incref(issues)
                                         : json_array());
    if (fb == NULL) {
        return NGX_ERROR;
    }

    if (stats && !json_is_null(stats)) {
        st = json_object();

        if (st == NULL || json_object_set_new(fb, "stats", st) != 0) {
            json_decref(fb);
            return NGX_ERROR;
        }

        rc = ngx_http_chat_op_call_stats(stats, st, refused);

        if (rc != NGX_OK) {
            json_decref(fb);
            return rc;
        }
    }

    len = json_dumpb(fb, NULL, 0, JSON_COMPACT);

    arg = (len == 0) ? NULL
                     : ngx_calloc(sizeof(ngx_http_chat_call_arg_t) + len,
                                  ngx_cycle->log);
    if (arg == NULL) {
        json_decref(fb);
        return NGX_ERROR;
    }

    arg->payload_len = json_dumpb(fb, (char *) (arg + 1), len, JSON_COMPACT);
    json_decref(fb);

    arg->what = NGX_HTTP_CHAT_CALL_FEEDBACK;
    arg->me = *me;
    arg->id = *id;

    rc = ngx_http_chat_op_store(ngx_http_chat_call_feedback_run, NULL, arg,
                                sizeof(ngx_http_chat_call_arg_t) + len, done,
                                data, out);
    ngx_free(arg);

    return rc;
}


void
ngx_http_chat_op_call_tell(ngx_int_t rc, json_t *answer, ngx_uint_t created,
    ngx_http_chat_op_told_t *told)
{
    ngx_http_chat_op_tell(rc, answer, created, told);

    if (rc == NGX_DECLINED) {
        told->message = "no such call, user or chat of yours";

    } else if (rc == NGX_BUSY && told->code
               && ngx_strcmp(told->code, "blocked") != 0
               && ngx_strcmp(told->code, "not_caller") != 0)
    {
        /* the call is not in the state the request needs */
        told->status = NGX_HTTP_CONFLICT;
    }
}


void
ngx_http_chat_op_call_gone(const bson_oid_t *me, const bson_oid_t *id,
    const char *sock)
{
    ngx_http_chat_call_arg_t    arg;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_chat_op_call_conf();
    if (cmcf == NULL || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_memzero(&arg, sizeof(ngx_http_chat_call_arg_t));
    arg.what = NGX_HTTP_CHAT_CALL_DROP;
    arg.me = *me;
    arg.id = *id;
    ngx_memcpy(arg.sock, sock, 24);

    ngx_http_chat_op_call_later(&arg, cmcf->call_grace);
}


/* a timer of this worker that starts a change of the call later */

static void
ngx_http_chat_op_call_later(ngx_http_chat_call_arg_t *arg, ngx_msec_t delay)
{
    ngx_http_chat_op_call_timer_t  *tm;

    tm = ngx_calloc(sizeof(ngx_http_chat_op_call_timer_t), ngx_cycle->log);
    if (tm == NULL) {
        return;     /* a lost timer: the call reads as missed after all */
    }

    if (ngx_http_chat_op_call_timers.next == NULL) {
        ngx_queue_init(&ngx_http_chat_op_call_timers);
    }

    tm->arg = *arg;
    ngx_http_chat_op_call_dummy.fd = (ngx_socket_t) -1;
    tm->ev.data = &ngx_http_chat_op_call_dummy;
    tm->ev.handler = ngx_http_chat_op_call_fire;
    tm->ev.log = ngx_cycle->log;
    tm->ev.cancelable = 1;

    ngx_queue_insert_tail(&ngx_http_chat_op_call_timers, &tm->queue);
    ngx_add_timer(&tm->ev, delay);
}


static void
ngx_http_chat_op_call_fire(ngx_event_t *ev)
{
    ngx_int_t                       rc;
    ngx_http_chat_op_store_t       *op;
    ngx_http_chat_op_call_ctx_t    *ctx;
    ngx_http_chat_op_call_timer_t  *tm;

    tm = (ngx_http_chat_op_call_timer_t *)
             ((u_char *) ev - offsetof(ngx_http_chat_op_call_timer_t, ev));

    ngx_queue_remove(&tm->queue);

    ctx = ngx_calloc(sizeof(ngx_http_chat_op_call_ctx_t), ngx_cycle->log);

    if (ctx == NULL) {
        rc = NGX_ERROR;

    } else {
        /* nobody waits: its events and message follow the commit */
        rc = ngx_http_chat_op_store_after(ngx_http_chat_call_act_run,
                                          ngx_http_chat_op_call_stored,
                                          ngx_http_chat_op_call_drop, ctx,
                                          &tm->arg,
                                          sizeof(ngx_http_chat_call_arg_t),
                                          NULL, NULL, &op);
    }

    if (rc != NGX_OK) {
        if (ctx) {
            ngx_free(ctx);
        }

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: a call's timer could not start its change");

    } else {
        ctx->op = op;
    }

    ngx_free(tm);
}


/* the timer's change is stored: first the call's message, then events */

static void
ngx_http_chat_op_call_stored(ngx_http_chat_op_store_t *op, void *data,
    ngx_int_t rc, json_t *answer, const char *error)
{
    ngx_http_chat_op_call_ctx_t *ctx = data;

    char                      id[25];
    size_t                    len, size;
    json_t                   *sys;
    ngx_str_t                 chat;
    ngx_http_chat_op_send_t  *send;
    ngx_http_chat_msg_arg_t  *arg;

    if (rc < 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: a call's timer failed in mongo: %s", error);
    }

    sys = (rc == NGX_OK) ? json_object_get(answer, "system") : NULL;

    if (sys == NULL
        || ngx_http_chat_rt_str_field(sys, "chatId", &chat) != NGX_OK)
    {
        ngx_http_chat_event_publish_committed(answer);
        ngx_free(ctx);
        ngx_http_chat_op_store_end(op, rc, answer, error);
        return;
    }

    len = json_dumpb(sys, NULL, 0, JSON_COMPACT);
    size = sizeof(ngx_http_chat_msg_arg_t) + len + 1;

    arg = ngx_calloc(size, ngx_cycle->log);
    if (arg == NULL) {
        ngx_http_chat_event_publish_committed(answer);
        ngx_free(ctx);
        ngx_http_chat_op_store_end(op, NGX_ERROR, answer, "no memory");
        return;
    }

    bson_oid_init_from_string(&arg->chat, (const char *) chat.data);
    (void) ngx_http_chat_rt_str_field(sys, "callerId", &chat);
    bson_oid_init_from_string(&arg->user, (const char *) chat.data);

    json_object_del(sys, "chatId");
    arg->content_len = json_dumpb(sys, (char *) (arg + 1), len, JSON_COMPACT);
    json_object_del(answer, "system");

    bson_oid_init(&arg->id, NULL);
    bson_oid_to_string(&arg->id, id);
    ngx_sprintf((u_char *) arg->temp_id, "call%s%Z", id);
    ngx_memcpy(arg->type, "call", sizeof("call"));

    ctx->answer = answer;

    if (ngx_http_chat_op_send(arg, size, 0, ngx_http_chat_op_call_sent, ctx,
                              &send)
        != NGX_OK)
    {
        ctx->answer = NULL;
        ngx_http_chat_event_publish_committed(answer);
        ngx_free(ctx);
        ngx_http_chat_op_store_end(op, NGX_ERROR, answer,
                                   "the call's message could not start");
    }

    ngx_free(arg);
}


static void
ngx_http_chat_op_call_sent(void *data, ngx_int_t rc, json_t *json,
    const char *error)
{
    ngx_http_chat_op_call_ctx_t *ctx = data;

    json_t                    *answer;
    ngx_http_chat_op_store_t  *op;

    if (rc != NGX_OK && rc != NGX_DONE) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: a call's message was not stored: %s", error);
    }

    json_decref(json);

    answer = ctx->answer;
    op = ctx->op;
    ngx_free(ctx);

    ngx_http_chat_event_publish_committed(answer);
    ngx_http_chat_op_store_end(op, NGX_OK, answer, NULL);
}


static void
ngx_http_chat_op_call_drop(void *data)
{
    ngx_http_chat_op_call_ctx_t *ctx = data;

    json_decref(ctx->answer);
    ngx_free(ctx);
}


void
ngx_http_chat_op_call_exit_process(void)
{
    ngx_queue_t                    *q;
    ngx_http_chat_op_call_timer_t  *tm;

    if (ngx_http_chat_op_call_timers.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_chat_op_call_timers)) {
        q = ngx_queue_head(&ngx_http_chat_op_call_timers);
        tm = ngx_queue_data(q, ngx_http_chat_op_call_timer_t, queue);
        ngx_queue_remove(q);

        if (tm->ev.timer_set) {
            ngx_del_timer(&tm->ev);
        }

        ngx_free(tm);
    }
}
