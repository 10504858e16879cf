/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_METRICS_H_INCLUDED_
#define _NGX_HTTP_CHAT_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Counters and histograms for the Prometheus page (README, "Metrics"):
 * each worker adds to a slot of its own in the module's shared memory
 * (an atomic add, no lock), a scrape sums the slots.  A slot is claimed
 * by a worker's pid; what an exited or killed worker counted is folded
 * into a slot of the retired, so counters never go back; its gauges go.
 */

/* counters, and gauges (marked), in the order of the page's table */
enum {
    NGX_HTTP_CHAT_M_SOCKETS_WS = 0,     /* gauge: plain WebSocket */
    NGX_HTTP_CHAT_M_SOCKETS_SIO_WS,     /* gauge: Socket.IO, WebSocket */
    NGX_HTTP_CHAT_M_SOCKETS_SIO_POLL,   /* gauge: Socket.IO, polling */
    NGX_HTTP_CHAT_M_SIGNINS_WS,
    NGX_HTTP_CHAT_M_SIGNINS_SIO,
    NGX_HTTP_CHAT_M_STORED_TEXT,
    NGX_HTTP_CHAT_M_STORED_IMAGE,
    NGX_HTTP_CHAT_M_STORED_VIDEO,
    NGX_HTTP_CHAT_M_STORED_AUDIO,
    NGX_HTTP_CHAT_M_STORED_DOCUMENT,
    NGX_HTTP_CHAT_M_STORED_LOCATION,
    NGX_HTTP_CHAT_M_STORED_CONTACT,
    NGX_HTTP_CHAT_M_STORED_SYSTEM,
    NGX_HTTP_CHAT_M_DELIVERIES,
    NGX_HTTP_CHAT_M_SLOW_CLOSED,
    NGX_HTTP_CHAT_M_REDIS_ERRORS,
    NGX_HTTP_CHAT_M_MONGO_ERRORS,
    NGX_HTTP_CHAT_M_MONGO_PENDING,      /* gauge: tasks posted, not done */
    NGX_HTTP_CHAT_M_SENDS_IN_FLIGHT,    /* gauge: sends taken, not ended */
    NGX_HTTP_CHAT_M_RESYNC_RUNNING,     /* gauge: a resync's reads, paced */
    NGX_HTTP_CHAT_M_RESYNC_WAITING,     /* gauge: ... waiting their turn */
    NGX_HTTP_CHAT_M_RESYNC_SHARED,      /* gauge: ... answered by another */
    NGX_HTTP_CHAT_M_OTP_SENT,
    NGX_HTTP_CHAT_M_OTP_FAILED,
    NGX_HTTP_CHAT_M_CALLS_ANSWERED,     /* calls ended, by status */
    NGX_HTTP_CHAT_M_CALLS_MISSED,
    NGX_HTTP_CHAT_M_CALLS_REJECTED,
    NGX_HTTP_CHAT_M_CALLS_CANCELLED,
    NGX_HTTP_CHAT_M_CALLS_BUSY,
    NGX_HTTP_CHAT_M_CALLS_FAILED,
    NGX_HTTP_CHAT_M_CALL_SECONDS,       /* answered calls' durations */
    NGX_HTTP_CHAT_M_FEEDBACK_1,         /* first feedback, by rating */
    NGX_HTTP_CHAT_M_FEEDBACK_2,
    NGX_HTTP_CHAT_M_FEEDBACK_3,
    NGX_HTTP_CHAT_M_FEEDBACK_4,
    NGX_HTTP_CHAT_M_FEEDBACK_5,
    NGX_HTTP_CHAT_M_PUSH_FCM_SENT,      /* pushes: by provider, by result */
    NGX_HTTP_CHAT_M_PUSH_FCM_RETRIED,
    NGX_HTTP_CHAT_M_PUSH_FCM_GONE,
    NGX_HTTP_CHAT_M_PUSH_FCM_FAILED,
    NGX_HTTP_CHAT_M_PUSH_FCM_DROPPED,
    NGX_HTTP_CHAT_M_PUSH_APNS_SENT,
    NGX_HTTP_CHAT_M_PUSH_APNS_RETRIED,
    NGX_HTTP_CHAT_M_PUSH_APNS_GONE,
    NGX_HTTP_CHAT_M_PUSH_APNS_FAILED,
    NGX_HTTP_CHAT_M_PUSH_APNS_DROPPED,
    NGX_HTTP_CHAT_M_EVENTS_REFUSED,     /* socket events over a rate */
    NGX_HTTP_CHAT_M_FLOOD_CLOSED,       /* sockets closed for flooding */
    NGX_HTTP_CHAT_M_SEND_BUDGET,        /* sends over chat_send_rate */
    NGX_HTTP_CHAT_M_UPLOAD_QUOTA,       /* uploads over the daily bytes */
    NGX_HTTP_CHAT_M_UPGRADES_REFUSED,   /* too many sockets of an address */
    NGX_HTTP_CHAT_M_REST_REFUSED,       /* REST answers 429 over a rate, */
    NGX_HTTP_CHAT_M_REST_REFUSED_1,     /* by route group, in the order */
    NGX_HTTP_CHAT_M_REST_REFUSED_2,     /* of ngx_http_chat_rest_group_e */
    NGX_HTTP_CHAT_M_REST_REFUSED_3,
    NGX_HTTP_CHAT_M_REST_REFUSED_4,
    NGX_HTTP_CHAT_M_REST_REFUSED_5,
    NGX_HTTP_CHAT_M_REST_REFUSED_6,
    NGX_HTTP_CHAT_M_REST_REFUSED_7,
    NGX_HTTP_CHAT_M_MSG_INSERTS,        /* insert commands of messages */
    NGX_HTTP_CHAT_M_N
};

/* histograms, in milliseconds */
enum {
    NGX_HTTP_CHAT_H_DELIVERY = 0,       /* a message's commit to a write */
    NGX_HTTP_CHAT_H_REDIS,              /* a command to its reply */
    NGX_HTTP_CHAT_H_MONGO,              /* a task posted to its end */
    NGX_HTTP_CHAT_H_CALL_RTT,           /* feedback: round-trip time */
    NGX_HTTP_CHAT_H_CALL_LOSS,          /* feedback: loss, per mille */
    NGX_HTTP_CHAT_H_N
};

#define NGX_HTTP_CHAT_METRIC_BUCKETS  12
#define NGX_HTTP_CHAT_METRIC_ROUTES   128   /* REST routes counted */
#define NGX_HTTP_CHAT_METRIC_SLOTS    64    /* workers at once */

/* a histogram: the buckets' counts (not cumulative), all, sum in us */
typedef struct {
    ngx_atomic_t   bucket[NGX_HTTP_CHAT_METRIC_BUCKETS];
    ngx_atomic_t   count;
    ngx_atomic_t   sum_us;
} ngx_http_chat_histogram_t;

typedef struct {
    ngx_atomic_t                pid;       /* 0: free */
    ngx_atomic_t                c[NGX_HTTP_CHAT_M_N];
    ngx_http_chat_histogram_t   h[NGX_HTTP_CHAT_H_N];
    /* REST: per route, answers by status class (1xx..5xx), and latency */
    ngx_atomic_t                status[NGX_HTTP_CHAT_METRIC_ROUTES][5];
    ngx_http_chat_histogram_t   route[NGX_HTTP_CHAT_METRIC_ROUTES];
} ngx_http_chat_metrics_slot_t;

/*
 * the zone's part: the retired first, then the workers' slots; a slot's
 * counts moved into the retired are in both, or in neither, for a moment:
 * a sum that saw a move under way, begun or ended reads again
 */
typedef struct {
    ngx_atomic_t                  moving;    /* the mover's pid, or 0 */
    ngx_atomic_t                  moved;     /* moves done */
    ngx_http_chat_metrics_slot_t  retired;
    ngx_http_chat_metrics_slot_t  slot[NGX_HTTP_CHAT_METRIC_SLOTS];
} ngx_http_chat_metrics_zone_t;


/* this worker's slot, NULL outside a worker or without a zone */
extern ngx_http_chat_metrics_slot_t  *ngx_http_chat_metrics;

extern ngx_uint_t  ngx_http_chat_metric_bounds_ms[NGX_HTTP_CHAT_METRIC_BUCKETS];


#define ngx_http_chat_metric_add(i, n)                                       \
    if (ngx_http_chat_metrics) {                                             \
        (void) ngx_atomic_fetch_add(&ngx_http_chat_metrics->c[i],            \
                                    (ngx_atomic_int_t) (n));                 \
    }

#define ngx_http_chat_metric_inc(i)  ngx_http_chat_metric_add(i, 1)
#define ngx_http_chat_metric_dec(i)  ngx_http_chat_metric_add(i, -1)


/* a duration in ms into histogram h of this worker (no-op without one) */
void ngx_http_chat_metric_observe(ngx_http_chat_histogram_t *h,
    ngx_msec_int_t ms);
/* n observations of the same duration */
void ngx_http_chat_metric_observe_n(ngx_http_chat_histogram_t *h,
    ngx_msec_int_t ms, ngx_uint_t n);

/* a worker's start and exit: its slot claimed, then folded and freed */
void ngx_http_chat_metrics_attach(ngx_http_chat_metrics_zone_t *zone,
    ngx_log_t *log);
void ngx_http_chat_metrics_detach(void);

/*
 * The sum of every slot into out (zeroed first); gauges only from slots
 * whose worker is alive
 */
void ngx_http_chat_metrics_sum(ngx_http_chat_metrics_zone_t *zone,
    ngx_http_chat_metrics_slot_t *out);

/* a time as the API writes it ("2026-12-03T10:00:00.000Z") in ms, or -1 */
int64_t ngx_http_chat_metric_iso_ms(const u_char *p, size_t len);

/* whether counter i is a gauge */
ngx_uint_t ngx_http_chat_metric_is_gauge(ngx_uint_t i);


#endif /* _NGX_HTTP_CHAT_METRICS_H_INCLUDED_ */
