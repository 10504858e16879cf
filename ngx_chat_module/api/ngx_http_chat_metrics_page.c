/*
 * Copyright (C) ngx_chat_module authors
 *
 * chat_metrics: every worker's counters in the Prometheus text format
 * (0.0.4), summed at each scrape (util/ngx_http_chat_metrics.h).
 */


#include "ngx_http_chat_api.h"
#include "ngx_http_chat_metrics_page.h"
#include "../core/ngx_http_chat_core.h"
#include "../util/ngx_http_chat_conf.h"
#include "../util/ngx_http_chat_metrics.h"


typedef struct {
    ngx_uint_t    index;
    const char   *name;           /* the same name: one HELP and TYPE */
    const char   *type;
    const char   *help;
    const char   *labels;         /* "" or {...} */
} ngx_http_chat_metric_def_t;


static ngx_http_chat_metric_def_t  ngx_http_chat_metric_defs[] = {

    { NGX_HTTP_CHAT_M_SOCKETS_WS, "chat_sockets_open", "gauge",
      "Sockets open now, by codec and transport.",
      "{codec=\"plain\",transport=\"websocket\"}" },
    { NGX_HTTP_CHAT_M_SOCKETS_SIO_WS, "chat_sockets_open", "gauge", NULL,
      "{codec=\"socketio\",transport=\"websocket\"}" },
    { NGX_HTTP_CHAT_M_SOCKETS_SIO_POLL, "chat_sockets_open", "gauge", NULL,
      "{codec=\"socketio\",transport=\"polling\"}" },

    { NGX_HTTP_CHAT_M_SIGNINS_WS, "chat_signins_total", "counter",
      "Sockets signed in, by codec.", "{codec=\"plain\"}" },
    { NGX_HTTP_CHAT_M_SIGNINS_SIO, "chat_signins_total", "counter", NULL,
      "{codec=\"socketio\"}" },

    { NGX_HTTP_CHAT_M_STORED_TEXT, "chat_messages_stored_total", "counter",
      "Messages stored, by type.", "{type=\"text\"}" },
    { NGX_HTTP_CHAT_M_STORED_IMAGE, "chat_messages_stored_total", "counter",
      NULL, "{type=\"image\"}" },
    { NGX_HTTP_CHAT_M_STORED_VIDEO, "chat_messages_stored_total", "counter",
      NULL, "{type=\"video\"}" },
    { NGX_HTTP_CHAT_M_STORED_AUDIO, "chat_messages_stored_total", "counter",
      NULL, "{type=\"audio\"}" },
    { NGX_HTTP_CHAT_M_STORED_DOCUMENT, "chat_messages_stored_total",
      "counter", NULL, "{type=\"document\"}" },
    { NGX_HTTP_CHAT_M_STORED_LOCATION, "chat_messages_stored_total",
      "counter", NULL, "{type=\"location\"}" },
    { NGX_HTTP_CHAT_M_STORED_CONTACT, "chat_messages_stored_total",
      "counter", NULL, "{type=\"contact\"}" },
    { NGX_HTTP_CHAT_M_STORED_SYSTEM, "chat_messages_stored_total", "counter",
      NULL, "{type=\"system\"}" },

    { NGX_HTTP_CHAT_M_DELIVERIES, "chat_deliveries_total", "counter",
      "Events written to sockets of this instance.", "" },
    { NGX_HTTP_CHAT_M_SLOW_CLOSED, "chat_slow_readers_closed_total",
      "counter", "Sockets closed for reading too slowly.", "" },
    { NGX_HTTP_CHAT_M_REDIS_ERRORS, "chat_redis_errors_total", "counter",
      "Redis commands failed or unanswered.", "" },
    { NGX_HTTP_CHAT_M_MONGO_ERRORS, "chat_mongo_errors_total", "counter",
      "MongoDB tasks that failed.", "" },
    { NGX_HTTP_CHAT_M_MONGO_PENDING, "chat_mongo_tasks_pending", "gauge",
      "MongoDB tasks queued or running in the thread pool.", "" },
    { NGX_HTTP_CHAT_M_MSG_INSERTS, "chat_message_insert_commands_total",
      "counter", "Insert commands of new messages sent to MongoDB: the "
      "messages a worker stores while others are in the store go in one "
      "(group commit).", "" },
    { NGX_HTTP_CHAT_M_SENDS_IN_FLIGHT, "chat_sends_in_flight", "gauge",
      "Sends taken and not yet stored or failed (chat_send_max_pending "
      "bounds them).", "" },
    { NGX_HTTP_CHAT_M_RESYNC_RUNNING, "chat_resync_reads", "gauge",
      "A resync's reads of the store: running (paced), waiting, and "
      "shared (answered by a waiting read that asks the same).",
      "{state=\"running\"}" },
    { NGX_HTTP_CHAT_M_RESYNC_WAITING, "chat_resync_reads", "gauge", NULL,
      "{state=\"waiting\"}" },
    { NGX_HTTP_CHAT_M_RESYNC_SHARED, "chat_resync_reads", "gauge", NULL,
      "{state=\"shared\"}" },
    { NGX_HTTP_CHAT_M_OTP_SENT, "chat_otp_sends_total", "counter",
      "One-time codes handed to the SMS provider, by result.",
      "{result=\"sent\"}" },
    { NGX_HTTP_CHAT_M_OTP_FAILED, "chat_otp_sends_total", "counter", NULL,
      "{result=\"failed\"}" },

    { NGX_HTTP_CHAT_M_CALLS_ANSWERED, "chat_calls_total", "counter",
      "Calls ended, by status.", "{status=\"answered\"}" },
    { NGX_HTTP_CHAT_M_CALLS_MISSED, "chat_calls_total", "counter", NULL,
      "{status=\"missed\"}" },
    { NGX_HTTP_CHAT_M_CALLS_REJECTED, "chat_calls_total", "counter", NULL,
      "{status=\"rejected\"}" },
    { NGX_HTTP_CHAT_M_CALLS_CANCELLED, "chat_calls_total", "counter", NULL,
      "{status=\"cancelled\"}" },
    { NGX_HTTP_CHAT_M_CALLS_BUSY, "chat_calls_total", "counter", NULL,
      "{status=\"busy\"}" },
    { NGX_HTTP_CHAT_M_CALLS_FAILED, "chat_calls_total", "counter", NULL,
      "{status=\"failed\"}" },
    { NGX_HTTP_CHAT_M_CALL_SECONDS, "chat_call_answered_seconds_total",
      "counter", "Answered calls' durations, summed.", "" },

    { NGX_HTTP_CHAT_M_FEEDBACK_1, "chat_call_feedback_total", "counter",
      "Call feedback (a participant's first), by rating.",
      "{rating=\"1\"}" },
    { NGX_HTTP_CHAT_M_FEEDBACK_2, "chat_call_feedback_total", "counter",
      NULL, "{rating=\"2\"}" },
    { NGX_HTTP_CHAT_M_FEEDBACK_3, "chat_call_feedback_total", "counter",
      NULL, "{rating=\"3\"}" },
    { NGX_HTTP_CHAT_M_FEEDBACK_4, "chat_call_feedback_total", "counter",
      NULL, "{rating=\"4\"}" },
    { NGX_HTTP_CHAT_M_FEEDBACK_5, "chat_call_feedback_total", "counter",
      NULL, "{rating=\"5\"}" },

    { NGX_HTTP_CHAT_M_PUSH_FCM_SENT, "chat_pushes_total", "counter",
      "Pushes by provider and result.", "{provider=\"fcm\",result=\"sent\"}" },
    { NGX_HTTP_CHAT_M_PUSH_FCM_RETRIED, "chat_pushes_total", "counter",
      NULL, "{provider=\"fcm\",result=\"retried\"}" },
    { NGX_HTTP_CHAT_M_PUSH_FCM_GONE, "chat_pushes_total", "counter",
      NULL, "{provider=\"fcm\",result=\"gone\"}" },
    { NGX_HTTP_CHAT_M_PUSH_FCM_FAILED, "chat_pushes_total", "counter",
      NULL, "{provider=\"fcm\",result=\"failed\"}" },
    { NGX_HTTP_CHAT_M_PUSH_FCM_DROPPED, "chat_pushes_total", "counter",
      NULL, "{provider=\"fcm\",result=\"dropped\"}" },
    { NGX_HTTP_CHAT_M_PUSH_APNS_SENT, "chat_pushes_total", "counter",
      NULL, "{provider=\"apns\",result=\"sent\"}" },
    { NGX_HTTP_CHAT_M_PUSH_APNS_RETRIED, "chat_pushes_total", "counter",
      NULL, "{provider=\"apns\",result=\"retried\"}" },
    { NGX_HTTP_CHAT_M_PUSH_APNS_GONE, "chat_pushes_total", "counter",
      NULL, "{provider=\"apns\",result=\"gone\"}" },
    { NGX_HTTP_CHAT_M_PUSH_APNS_FAILED, "chat_pushes_total", "counter",
      NULL, "{provider=\"apns\",result=\"failed\"}" },
    { NGX_HTTP_CHAT_M_PUSH_APNS_DROPPED, "chat_pushes_total", "counter",
      NULL, "{provider=\"apns\",result=\"dropped\"}" },
    { NGX_HTTP_CHAT_M_EVENTS_REFUSED, "chat_socket_events_refused_total",
      "counter", "Socket events refused for going over a rate "
      "(chat_ws_event_rate, chat_ws_send_rate).", "" },
    { NGX_HTTP_CHAT_M_FLOOD_CLOSED, "chat_socket_flood_closed_total",
      "counter", "Sockets closed (1008) for flooding events.", "" },
    { NGX_HTTP_CHAT_M_SEND_BUDGET, "chat_user_limited_total", "counter",
      "Sends and uploads refused for going over a user's budget "
      "(chat_send_rate, chat_upload_daily_bytes).",
      "{limit=\"send_rate\"}" },
    { NGX_HTTP_CHAT_M_UPLOAD_QUOTA, "chat_user_limited_total", "counter",
      NULL, "{limit=\"upload_daily_bytes\"}" },
    { NGX_HTTP_CHAT_M_UPGRADES_REFUSED, "chat_socket_upgrades_refused_total",
      "counter", "Socket upgrades refused: too many from one address.", "" },
    { NGX_HTTP_CHAT_M_REST_REFUSED, "chat_rest_rate_limited_total",
      "counter", "REST requests answered 429 for going over a rate, by "
      "route group (chat_rest_rate).", "{group=\"auth\"}" },
    { NGX_HTTP_CHAT_M_REST_REFUSED_1, "chat_rest_rate_limited_total",
      "counter", NULL, "{group=\"read\"}" },
    { NGX_HTTP_CHAT_M_REST_REFUSED_2, "chat_rest_rate_limited_total",
      "counter", NULL, "{group=\"write\"}" },
    { NGX_HTTP_CHAT_M_REST_REFUSED_3, "chat_rest_rate_limited_total",
      "counter", NULL, "{group=\"send\"}" },
    { NGX_HTTP_CHAT_M_REST_REFUSED_4, "chat_rest_rate_limited_total",
      "counter", NULL, "{group=\"search\"}" },
    { NGX_HTTP_CHAT_M_REST_REFUSED_5, "chat_rest_rate_limited_total",
      "counter", NULL, "{group=\"group\"}" },
    { NGX_HTTP_CHAT_M_REST_REFUSED_6, "chat_rest_rate_limited_total",
      "counter", NULL, "{group=\"upload\"}" },
    { NGX_HTTP_CHAT_M_REST_REFUSED_7, "chat_rest_rate_limited_total",
      "counter", NULL, "{group=\"address\"}" },

    { 0, NULL, NULL, NULL, NULL }
};


static const char  *ngx_http_chat_histogram_names[NGX_HTTP_CHAT_H_N][2] = {
    { "chat_delivery_latency_seconds",
      "From a message's commit to its write to a socket." },
    { "chat_redis_latency_seconds", "From a Redis command to its reply." },
    { "chat_mongo_latency_seconds",
      "From a MongoDB task posted to the thread pool to its end." },
    { "chat_call_rtt_seconds",
      "Round-trip time a call's feedback reported (stats.rttMs)." },
    { "chat_call_packet_loss_ratio",
      "Packet loss a call's feedback reported (stats.packetLoss)." }
};


static u_char *ngx_http_chat_metrics_histogram(u_char *p, u_char *last,
    const char *name, ngx_str_t *labels, ngx_http_chat_histogram_t *h);


/* the page's size: generous, checked as it is written */
#define NGX_HTTP_CHAT_METRICS_PAGE  (256 * 1024)


ngx_int_t
ngx_http_chat_metrics_handler(ngx_http_request_t *r)
{
    u_char                        *p, *last;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_str_t                      method, path, labels;
    ngx_uint_t                     i, k, n;
    ngx_chain_t                    out;
    const char                    *prev;
    ngx_http_chat_shared_t        *shared;
    ngx_http_chat_main_conf_t     *cmcf;
    ngx_http_chat_metrics_slot_t  *sum;
    ngx_http_chat_metric_def_t    *d;

    static const char  *klass[5] = { "1xx", "2xx", "3xx", "4xx", "5xx" };

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    if (cmcf->shm == NULL || cmcf->shm->data == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    shared = cmcf->shm->data;

    sum = ngx_palloc(r->pool, sizeof(ngx_http_chat_metrics_slot_t));
    b = ngx_create_temp_buf(r->pool, NGX_HTTP_CHAT_METRICS_PAGE);

    if (sum == NULL || b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_chat_metrics_sum(shared->metrics, sum);

    p = b->pos;
    last = b->end;
    prev = "";

    for (d = ngx_http_chat_metric_defs; d->name; d++) {
        if (ngx_strcmp(prev, d->name) != 0) {
            p = ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s %s\n",
                             d->name, d->help, d->name, d->type);
            prev = d->name;
        }

        p = ngx_slprintf(p, last, "%s%s %uA\n", d->name, d->labels,
                         sum->c[d->index]);
    }

    ngx_str_null(&labels);

    for (i = 0; i < NGX_HTTP_CHAT_H_N; i++) {
        p = ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s histogram\n",
                         ngx_http_chat_histogram_names[i][0],
                         ngx_http_chat_histogram_names[i][1],
                         ngx_http_chat_histogram_names[i][0]);
        p = ngx_http_chat_metrics_histogram(p, last,
                                        ngx_http_chat_histogram_names[i][0],
                                        &labels, &sum->h[i]);
    }

    /* REST: the routes that answered, by status class, and their time */
    p = ngx_slprintf(p, last,
                     "# HELP chat_http_requests_total REST answers, by "
                     "route and status class.\n"
                     "# TYPE chat_http_requests_total counter\n");

    n = ngx_min(ngx_http_chat_api_routes(), NGX_HTTP_CHAT_METRIC_ROUTES);

    for (i = 0; i < n; i++) {
        ngx_http_chat_api_route_name(i, &method, &path);

        for (k = 0; k < 5; k++) {
            if (sum->status[i][k]) {
                p = ngx_slprintf(p, last,
                                 "chat_http_requests_total{method=\"%V\","
                                 "route=\"%V\",status=\"%s\"} %uA\n",
                                 &method, &path, klass[k],
                                 sum->status[i][k]);
            }
        }
    }

    p = ngx_slprintf(p, last,
                     "# HELP chat_http_request_duration_seconds REST "
                     "answers' time, by route.\n"
                     "# TYPE chat_http_request_duration_seconds "
                     "histogram\n");

    for (i = 0; i < n; i++) {
        if (sum->route[i].count == 0) {
            continue;
        }

        ngx_http_chat_api_route_name(i, &method, &path);

        labels.data = ngx_pnalloc(r->pool, method.len + path.len + 32);
        if (labels.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        labels.len = ngx_sprintf(labels.data, "method=\"%V\",route=\"%V\"",
                                 &method, &path)
                     - labels.data;

        p = ngx_http_chat_metrics_histogram(p, last,
                                        "chat_http_request_duration_seconds",
                                        &labels, &sum->route[i]);
    }

    if (p == last) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: the metrics page is larger than %uz bytes",
                      (size_t) NGX_HTTP_CHAT_METRICS_PAGE);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* name_bucket{labels,le} cumulative, name_sum in seconds, name_count */
static u_char *
ngx_http_chat_metrics_histogram(u_char *p, u_char *last, const char *name,
    ngx_str_t *labels, ngx_http_chat_histogram_t *h)
{
    ngx_uint_t         i, ms;
    ngx_atomic_uint_t  cum;

    cum = 0;

    for (i = 0; i < NGX_HTTP_CHAT_METRIC_BUCKETS; i++) {
        cum += h->bucket[i];
        ms = ngx_http_chat_metric_bounds_ms[i];

        p = ngx_slprintf(p, last, "%s_bucket{%V%sle=\"%ui.%03ui\"} %uA\n",
                         name, labels, labels->len ? "," : "",
                         ms / 1000, ms % 1000, cum);
    }

    p = ngx_slprintf(p, last, "%s_bucket{%V%sle=\"+Inf\"} %uA\n",
                     name, labels, labels->len ? "," : "", h->count);

    p = ngx_slprintf(p, last, "%s_sum%s%V%s %uA.%06uA\n", name,
                     labels->len ? "{" : "", labels,
                     labels->len ? "}" : "",
                     h->sum_us / 1000000, h->sum_us % 1000000);

    return ngx_slprintf(p, last, "%s_count%s%V%s %uA\n", name,
                        labels->len ? "{" : "", labels,
                        labels->len ? "}" : "", h->count);
}


/* the log phase: a REST answer's route, status class and time */

ngx_int_t
ngx_http_chat_metrics_log(ngx_http_request_t *r)
{
    ngx_int_t                  i;
    ngx_uint_t                 k;
    ngx_time_t                *tp;
    ngx_msec_int_t             ms;
    ngx_http_chat_metrics_slot_t  *s;

    s = ngx_http_chat_metrics;

    if (s == NULL || r != r->main) {
        return NGX_OK;
    }

    i = ngx_http_chat_api_route_index(r);

    if (i < 0 || i >= NGX_HTTP_CHAT_METRIC_ROUTES) {
        return NGX_OK;
    }

    k = r->headers_out.status / 100;

    if (k >= 1 && k <= 5) {
        (void) ngx_atomic_fetch_add(&s->status[i][k - 1], 1);
    }

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));

    ngx_http_chat_metric_observe(&s->route[i], ms);

    return NGX_OK;
}
