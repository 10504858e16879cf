/*
 * Copyright (C) ngx_chat_module authors
 *
 * Rates of a socket's events, kept in worker memory:
 *   - every event takes a token of the socket's own bucket
 *     (chat_ws_event_rate);
 *   - a send_message takes one more from its user's bucket in this
 *     worker (chat_ws_send_rate), shared by all the user's sockets here;
 *   - an event over a rate is not run: it is answered "rate_limited"
 *     with retryAfter, as the event's error or ack;
 *   - a socket refused more than close= events within 10 s is closed
 *     with 1008 (Socket.IO: DISCONNECT first).
 * The buckets count as limit_req's do: the excess in thousandths of an
 * event, drained at the rate since the last event taken.
 */


#include "ngx_http_chat_rt.h"
#include "../util/ngx_http_chat_metrics.h"


#define NGX_HTTP_CHAT_RT_FLOOD_WINDOW  10000    /* ms: refusals counted */


/* a user's sends in this worker: held by the user's sockets that sent */
typedef struct {
    ngx_str_node_t               sn;          /* str: the user's id */
    ngx_uint_t                   refs;
    ngx_http_chat_rt_bucket_t    bucket;
    u_char                       user[NGX_HTTP_CHAT_RT_ID_LEN];
} ngx_http_chat_rt_sender_t;


static ngx_msec_t ngx_http_chat_rt_take(ngx_http_chat_rt_bucket_t *b,
    ngx_http_chat_ws_rate_t *rate);
static ngx_http_chat_rt_sender_t *ngx_http_chat_rt_sender(
    ngx_http_chat_rt_session_t *s);
static void ngx_http_chat_rt_sender_release(ngx_http_chat_rt_sender_t *snd);


static ngx_rbtree_t       ngx_http_chat_rt_senders;
static ngx_rbtree_node_t  ngx_http_chat_rt_senders_sentinel;


/*
 * NGX_OK: the event runs; NGX_DECLINED: it was refused and answered;
 * NGX_DONE: the socket is closed for flooding.  env is borrowed.
 */
ngx_int_t
ngx_http_chat_rt_limit(ngx_http_chat_rt_session_t *s, json_t *env)
{
    json_t                     *id, *event, *answer;
    ngx_msec_t                  wait;
    ngx_http_chat_ws_conf_t    *conf;
    ngx_http_chat_rt_sender_t  *snd;

    conf = s->ws->conf;

    if (s->ws->close_sent || s->ws->destroy) {
        /* going: the router drops it anyway */
        return NGX_OK;
    }

    wait = 0;

    if (conf->event_rate.rate) {
        wait = ngx_http_chat_rt_take(&s->bucket, &conf->event_rate);
    }

    event = json_object_get(env, "event");

    if (wait == 0 && conf->send_rate.rate && s->authenticated
        && json_is_string(event)
        && ngx_strcmp(json_string_value(event), "send_message") == 0)
    {
        snd = ngx_http_chat_rt_sender(s);

        /* out of memory: the socket's own bucket still holds */
        if (snd) {
            wait = ngx_http_chat_rt_take(&snd->bucket, &conf->send_rate);
        }
    }

    if (wait == 0) {
        return NGX_OK;
    }

    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_EVENTS_REFUSED);

    if (conf->event_rate.close) {
        if (s->refused == 0
            || ngx_current_msec - s->refused_at
               >= NGX_HTTP_CHAT_RT_FLOOD_WINDOW)
        {
            s->refused_at = ngx_current_msec;
            s->refused = 0;
        }

        if (++s->refused > conf->event_rate.close) {
            ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_FLOOD_CLOSED);
            ngx_log_error(NGX_LOG_INFO, s->ws->connection->log, 0,
                          "chat ws: closing a socket that floods events");
            ngx_http_chat_rt_revoked(s, NGX_HTTP_CHAT_WS_POLICY,
                                     "too many events");
            return NGX_DONE;
        }
    }

    id = json_object_get(env, "id");

    if (id && !json_is_integer(id) && !json_is_string(id)) {
        id = NULL;
    }

    /* retryAfter in whole seconds, as Retry-After is on REST */
    answer = json_pack("{s:{s:s,s:s,s:I}}", "error",
                       "code", "rate_limited",
                       "message", "too many events, try again later",
                       "retryAfter", (json_int_t) ((wait + 999) / 1000));
    if (answer) {
        ngx_http_chat_rt_ack(s, id, 429, answer);
    }

    return NGX_DECLINED;
}


/* 0: a token taken; else the ms till one is free (none taken) */
static ngx_msec_t
ngx_http_chat_rt_take(ngx_http_chat_rt_bucket_t *b,
    ngx_http_chat_ws_rate_t *rate)
{
    int64_t         excess, cap;
    ngx_msec_int_t  ms;

    ms = (ngx_msec_int_t) (ngx_current_msec - b->last);

    if (ms < 0 || b->last == 0) {
        ms = 0;
    }

    excess = (int64_t) b->excess - (int64_t) rate->rate * ms / 1000;

    if (excess < 0) {
        excess = 0;
    }

    excess += 1000;
    cap = (int64_t) rate->burst * 1000;

    if (excess > cap) {
        return (ngx_msec_t) (((excess - cap) * 1000 + rate->rate - 1)
                             / rate->rate);
    }

    b->excess = (ngx_uint_t) excess;
    b->last = ngx_current_msec;

    /* a last of 0 means "never": the clock's 0 is a millisecond off */
    if (b->last == 0) {
        b->last = 1;
    }

    return 0;
}


/* the socket's user's sender, made or found at its first send */
static ngx_http_chat_rt_sender_t *
ngx_http_chat_rt_sender(ngx_http_chat_rt_session_t *s)
{
    uint32_t                    hash;
    ngx_str_t                   name;
    ngx_http_chat_rt_sender_t  *snd;

    snd = s->sender;

    if (snd) {
        if (ngx_memcmp(snd->user, s->user, NGX_HTTP_CHAT_RT_ID_LEN) == 0) {
            return snd;
        }

        /* signed in again as someone else: that user's bucket */
        ngx_http_chat_rt_sender_release(snd);
        s->sender = NULL;
    }

    if (ngx_http_chat_rt_senders.root == NULL) {
        ngx_rbtree_init(&ngx_http_chat_rt_senders,
                        &ngx_http_chat_rt_senders_sentinel,
                        ngx_str_rbtree_insert_value);
    }

    name.data = s->user;
    name.len = NGX_HTTP_CHAT_RT_ID_LEN;
    hash = ngx_crc32_short(name.data, name.len);

    snd = (ngx_http_chat_rt_sender_t *)
              ngx_str_rbtree_lookup(&ngx_http_chat_rt_senders, &name, hash);

    if (snd == NULL) {
        snd = ngx_calloc(sizeof(ngx_http_chat_rt_sender_t), ngx_cycle->log);
        if (snd == NULL) {
            return NULL;
        }

        ngx_memcpy(snd->user, s->user, NGX_HTTP_CHAT_RT_ID_LEN);
        snd->sn.str.data = snd->user;
        snd->sn.str.len = NGX_HTTP_CHAT_RT_ID_LEN;
        snd->sn.node.key = hash;

        ngx_rbtree_insert(&ngx_http_chat_rt_senders, &snd->sn.node);
    }

    snd->refs++;
    s->sender = snd;

    return snd;
}


static void
ngx_http_chat_rt_sender_release(ngx_http_chat_rt_sender_t *snd)
{
    if (--snd->refs) {
        return;
    }

    ngx_rbtree_delete(&ngx_http_chat_rt_senders, &snd->sn.node);
    ngx_free(snd);
}


/* the socket goes: its hold on its user's sends */
void
ngx_http_chat_rt_limit_free(ngx_http_chat_rt_session_t *s)
{
    if (s->sender) {
        ngx_http_chat_rt_sender_release(s->sender);
        s->sender = NULL;
    }
}
