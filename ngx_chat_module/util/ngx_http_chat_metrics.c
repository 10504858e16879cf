/*
 * Copyright (C) ngx_chat_module authors
 *
 * The metrics' slots in shared memory (ngx_http_chat_metrics.h).
 */


#include "ngx_http_chat_metrics.h"


ngx_http_chat_metrics_slot_t  *ngx_http_chat_metrics;

ngx_uint_t  ngx_http_chat_metric_bounds_ms[NGX_HTTP_CHAT_METRIC_BUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000
};


static ngx_http_chat_metrics_zone_t  *ngx_http_chat_metrics_zone;


static void ngx_http_chat_metrics_fold(ngx_http_chat_metrics_slot_t *to,
    ngx_http_chat_metrics_slot_t *from, ngx_uint_t gauges);
static void ngx_http_chat_metrics_retire(ngx_http_chat_metrics_zone_t *zone,
    ngx_http_chat_metrics_slot_t *s);
static void ngx_http_chat_metrics_clear(ngx_http_chat_metrics_slot_t *s);
static ngx_uint_t ngx_http_chat_metrics_alive(ngx_atomic_uint_t pid);
static ngx_uint_t ngx_http_chat_metrics_zombie(ngx_atomic_uint_t pid);


ngx_uint_t
ngx_http_chat_metric_is_gauge(ngx_uint_t i)
{
    return i == NGX_HTTP_CHAT_M_SOCKETS_WS
           || i == NGX_HTTP_CHAT_M_SOCKETS_SIO_WS
           || i == NGX_HTTP_CHAT_M_SOCKETS_SIO_POLL
           || i == NGX_HTTP_CHAT_M_MONGO_PENDING
           || i == NGX_HTTP_CHAT_M_SENDS_IN_FLIGHT
           || i == NGX_HTTP_CHAT_M_RESYNC_RUNNING
           || i == NGX_HTTP_CHAT_M_RESYNC_WAITING
           || i == NGX_HTTP_CHAT_M_RESYNC_SHARED;
}


void
ngx_http_chat_metric_observe(ngx_http_chat_histogram_t *h, ngx_msec_int_t ms)
{
    ngx_http_chat_metric_observe_n(h, ms, 1);
}


void
ngx_http_chat_metric_observe_n(ngx_http_chat_histogram_t *h,
    ngx_msec_int_t ms, ngx_uint_t n)
{
    ngx_uint_t  i;

    if (ngx_http_chat_metrics == NULL) {
        return;
    }

    if (ms < 0) {
        ms = 0;
    }

    for (i = 0; i < NGX_HTTP_CHAT_METRIC_BUCKETS; i++) {
        if ((ngx_uint_t) ms <= ngx_http_chat_metric_bounds_ms[i]) {
            (void) ngx_atomic_fetch_add(&h->bucket[i], n);
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&h->count, n);
    (void) ngx_atomic_fetch_add(&h->sum_us,
                                (ngx_atomic_int_t) (ms * 1000 * n));
}


/*
 * A free slot, or one whose worker is gone (killed: it could not fold
 * its own), after its counters are folded into the retired
 */
void
ngx_http_chat_metrics_attach(ngx_http_chat_metrics_zone_t *zone,
    ngx_log_t *log)
{
    ngx_uint_t                     i, pass;
    ngx_atomic_uint_t              pid, me;
    ngx_http_chat_metrics_slot_t  *s;

    ngx_http_chat_metrics_zone = zone;
    me = (ngx_atomic_uint_t) ngx_pid;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < NGX_HTTP_CHAT_METRIC_SLOTS; i++) {
            s = &zone->slot[i];
            pid = s->pid;

            if (pass == 0 && pid == 0 && ngx_atomic_cmp_set(&s->pid, 0, me)) {
                ngx_http_chat_metrics_clear(s);
                ngx_http_chat_metrics = s;
                return;
            }

            if (pass == 1 && pid != 0 && !ngx_http_chat_metrics_alive(pid)
                && ngx_atomic_cmp_set(&s->pid, pid, me))
            {
                ngx_http_chat_metrics_retire(zone, s);
                ngx_http_chat_metrics = s;
                return;
            }
        }
    }

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "chat: no free metrics slot of %d: this worker's work "
                  "is not counted", NGX_HTTP_CHAT_METRIC_SLOTS);
}


void
ngx_http_chat_metrics_detach(void)
{
    ngx_http_chat_metrics_slot_t  *s;

    s = ngx_http_chat_metrics;

    if (s == NULL) {
        return;
    }

    ngx_http_chat_metrics = NULL;
    ngx_http_chat_metrics_retire(ngx_http_chat_metrics_zone, s);
    s->pid = 0;
}


/*
 * A slot's counters into the retired, one move at a time, marked for the
 * sums by the mover's pid: a mover killed in its move leaves its pid
 * there, which the next move and the sums see is dead
 */
static void
ngx_http_chat_metrics_retire(ngx_http_chat_metrics_zone_t *zone,
    ngx_http_chat_metrics_slot_t *s)
{
    ngx_uint_t         try;
    ngx_atomic_uint_t  me, mover;

    me = (ngx_atomic_uint_t) ngx_pid;

    /*
     * a move takes microseconds: one still marked after 10,000 yields is
     * a dead mover's whose pid another process has since taken
     */
    for (try = 0; /* void */; try++) {
        mover = zone->moving;

        if ((mover == 0 || try >= 10000
             || !ngx_http_chat_metrics_alive(mover))
            && ngx_atomic_cmp_set(&zone->moving, mover, me))
        {
            break;
        }

        ngx_sched_yield();
    }

    ngx_http_chat_metrics_fold(&zone->retired, s, 0);
    ngx_http_chat_metrics_clear(s);
    (void) ngx_atomic_fetch_add(&zone->moved, 1);
    ngx_memory_barrier();
    zone->moving = 0;
}


/*
 * A sum read again while a slot moves into the retired (a worker's exit,
 * a dead one's slot taken); a move whose mover died is not waited for,
 * and after 100 tries the last sum stands
 */
void
ngx_http_chat_metrics_sum(ngx_http_chat_metrics_zone_t *zone,
    ngx_http_chat_metrics_slot_t *out)
{
    ngx_uint_t                     i, try;
    ngx_atomic_uint_t              moved, mover;
    ngx_http_chat_metrics_slot_t  *s;

    for (try = 0; /* void */; try++) {
        moved = zone->moved;
        mover = zone->moving;
        ngx_memory_barrier();

        ngx_memzero(out, sizeof(ngx_http_chat_metrics_slot_t));

        ngx_http_chat_metrics_fold(out, &zone->retired, 0);

        for (i = 0; i < NGX_HTTP_CHAT_METRIC_SLOTS; i++) {
            s = &zone->slot[i];

            if (s->pid) {
                ngx_http_chat_metrics_fold(out, s,
                                          ngx_http_chat_metrics_alive(s->pid));
            }
        }

        ngx_memory_barrier();

        if (zone->moved == moved
            && (zone->moving == 0
                || (zone->moving == mover
                    && !ngx_http_chat_metrics_alive(mover))))
        {
            return;
        }

        if (try == 100) {
            return;
        }

        ngx_sched_yield();
    }
}


/* adds from's counts to to's (atomically: to may be a live slot) */
static void
ngx_http_chat_metrics_fold(ngx_http_chat_metrics_slot_t *to,
    ngx_http_chat_metrics_slot_t *from, ngx_uint_t gauges)
{
    ngx_uint_t                  i, k, n;
    ngx_atomic_t               *a, *b;
    ngx_http_chat_histogram_t  *hf, *ht;

    for (i = 0; i < NGX_HTTP_CHAT_M_N; i++) {
        if (ngx_http_chat_metric_is_gauge(i) && !gauges) {
            continue;
        }

        (void) ngx_atomic_fetch_add(&to->c[i],
                                    (ngx_atomic_int_t) from->c[i]);
    }

    /* the rest is counts only: added word by word */
    n = NGX_HTTP_CHAT_H_N + NGX_HTTP_CHAT_METRIC_ROUTES;

    for (i = 0; i < n; i++) {
        hf = (i < NGX_HTTP_CHAT_H_N) ? &from->h[i]
                                     : &from->route[i - NGX_HTTP_CHAT_H_N];
        ht = (i < NGX_HTTP_CHAT_H_N) ? &to->h[i]
                                     : &to->route[i - NGX_HTTP_CHAT_H_N];
        a = (ngx_atomic_t *) hf;
        b = (ngx_atomic_t *) ht;

        for (k = 0; k < sizeof(ngx_http_chat_histogram_t)
                        / sizeof(ngx_atomic_t); k++)
        {
            if (a[k]) {
                (void) ngx_atomic_fetch_add(&b[k], (ngx_atomic_int_t) a[k]);
            }
        }
    }

    for (i = 0; i < NGX_HTTP_CHAT_METRIC_ROUTES; i++) {
        for (k = 0; k < 5; k++) {
            if (from->status[i][k]) {
                (void) ngx_atomic_fetch_add(&to->status[i][k],
                                        (ngx_atomic_int_t) from->status[i][k]);
            }
        }
    }
}


static void
ngx_http_chat_metrics_clear(ngx_http_chat_metrics_slot_t *s)
{
    ngx_atomic_uint_t  pid;

    pid = s->pid;
    ngx_memzero(s, sizeof(ngx_http_chat_metrics_slot_t));
    s->pid = pid;
}


static ngx_uint_t
ngx_http_chat_metrics_alive(ngx_atomic_uint_t pid)
{
    if (kill((ngx_pid_t) pid, 0) == -1) {
        return ngx_errno != NGX_ESRCH;
    }

    return !ngx_http_chat_metrics_zombie(pid);
}


/*
 * a worker killed but not reaped by the master yet is still there for
 * kill(), and holds no sockets any more (Linux's /proc; elsewhere: no)
 */
static ngx_uint_t
ngx_http_chat_metrics_zombie(ngx_atomic_uint_t pid)
{
    u_char     *p;
    ssize_t     n;
    ngx_fd_t    fd;
    u_char      name[32], buf[512];

    ngx_sprintf(name, "/proc/%P/stat%Z", (ngx_pid_t) pid);

    fd = ngx_open_file(name, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        return 0;
    }

    n = read(fd, buf, sizeof(buf));
    (void) ngx_close_file(fd);

    if (n <= 0) {
        return 0;
    }

    /* "pid (comm) S ...": the state after the last ')' */
    for (p = buf + n - 1; p > buf && *p != ')'; p--) { /* void */ }

    return p + 2 < buf + n && *p == ')' && p[2] == 'Z';
}


/* "YYYY-MM-DDTHH:MM:SS.mmmZ" as the API writes times: ms, or -1 */
int64_t
ngx_http_chat_metric_iso_ms(const u_char *p, size_t len)
{
    int64_t     y, m, d, era, yoe, doy, doe, days;
    ngx_int_t   hh, mi, ss, ms;
    ngx_uint_t  i;

    static const u_char  shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    if (len < sizeof(shape) - 1) {
        return -1;
    }

    for (i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? (p[i] < '0' || p[i] > '9') : p[i] != shape[i]) {
            return -1;
        }
    }

    y = ngx_atoi((u_char *) p, 4);
    m = ngx_atoi((u_char *) p + 5, 2);
    d = ngx_atoi((u_char *) p + 8, 2);
    hh = ngx_atoi((u_char *) p + 11, 2);
    mi = ngx_atoi((u_char *) p + 14, 2);
    ss = ngx_atoi((u_char *) p + 17, 2);
    ms = ngx_atoi((u_char *) p + 20, 3);

    /* days since 1970-01-01 of a proleptic Gregorian date */
    y -= (m <= 2);
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = era * 146097 + doe - 719468;

    return ((days * 86400 + hh * 3600 + mi * 60 + ss) * 1000) + ms;
}
