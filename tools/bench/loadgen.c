/*
 * Copyright (C) ngx_chat_module authors
 *
 * The load generator of tools/bench: thousands of WebSocket clients on
 * epoll, spread over several processes and 127.0.0.x source addresses.
 *
 * Connection i is a member of room i / K; the first member of each room
 * publishes.  A published message carries "~P<room>.<seq>.<usec>" padded
 * to 100 bytes: every receiver takes the latency from the send time
 * (CLOCK_MONOTONIC, shared by every process of the machine) and checks
 * the sequence of its room's one publisher for gaps and repeats.
 *
 * With --overload (chat only) every connection may send instead: sends
 * go out at --rate a second in all, each on the next socket with no
 * send awaiting its answer, and carry "~M<slot>.<usec>".  The slot is
 * the message's row in a table shared by every process (mmap before the
 * fork): the sender notes there whether the send was acknowledged,
 * refused ("overloaded") or failed, the receivers count its deliveries,
 * and the parent reads the table after the drain.
 *
 * Protocols: chat (ours: /ws?token=, send_message, new_message), nchan
 * (a pubsub location over WebSocket), cf (Centrifugo's JSON protocol),
 * sio (Engine.IO 4 / Socket.IO 5 over WebSocket).
 *
 * The parent forks the clients, drives the phases over pipes, and reads
 * the server's CPU time and memory from /proc around them.  It prints
 * "key value" lines for tools/bench to turn into tables.
 */


#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define LG_MAX_PROCS        64
#define LG_MAX_PIDS         64
#define LG_RBUF_SIZE        (256 * 1024)
#define LG_MSG_SIZE         100
#define LG_HIST_SUB         1024
#define LG_HIST_SIZE        (LG_HIST_SUB * 28 + 2 * LG_HIST_SUB)
#define LG_MAX_PENDING      256

#define LG_PROTO_CHAT       0
#define LG_PROTO_NCHAN      1
#define LG_PROTO_CF         2
#define LG_PROTO_SIO        3
#define LG_PROTO_HTTP       4

#define LG_ST_CONNECTING    0
#define LG_ST_HANDSHAKE     1
#define LG_ST_SETUP         2
#define LG_ST_READY         3
#define LG_ST_DEAD          4

/* a row of the overload table */
#define LG_OV_UNSENT        0
#define LG_OV_SENT          1           /* no answer yet */
#define LG_OV_ACCEPTED      2           /* ack: stored */
#define LG_OV_REFUSED       3           /* error "overloaded" */
#define LG_OV_ERROR         4           /* any other error */


typedef struct {
    int                 fd;
    int                 state;
    uint32_t            id;             /* global connection number */
    uint32_t            room;
    uint32_t            last_seq;       /* of the room's publisher */
    uint32_t            sent;           /* messages published */
    uint32_t            skipped;        /* refused: their turns went */
    uint64_t            req_ts;         /* http: the request in flight;
                                           chat: the last publish */
    uint32_t            rlen;
    uint32_t            wlen;
    u_char             *rbuf;           /* an incomplete frame, if any */
    u_char             *wbuf;           /* bytes the socket did not take */
    char               *token;
    char               *chat;
    uint32_t            awaiting;       /* overload: slot + 1, or 0 */
} lg_conn_t;


/* overload: one message, shared by every client process */
typedef struct {
    uint64_t            sent_us;
    uint32_t            status;         /* LG_OV_*, by the sender only */
    uint32_t            delivered;      /* atomic: sockets that got it */
    uint32_t            expected;       /* its room's members */
    uint32_t            pad;
} lg_ov_msg_t;


typedef struct {
    uint64_t            ready;
    uint64_t            failed;
    uint64_t            closed;
    uint64_t            sent;
    uint64_t            send_errors;
    uint64_t            server_errors;
    uint64_t            refused;        /* fan-out: publishes refused */
    uint64_t            received;
    uint64_t            in_window;      /* received inside the window */
    uint64_t            ok_in_window;   /* http: of them 2xx */
    uint64_t            gaps;
    uint64_t            dups;
    uint64_t            foreign;
    uint64_t            expected;       /* sent x room members, ours */
    uint64_t            cpu_us;         /* this client's, in the window */
    uint64_t            sleeps;         /* its waits for a frame, there */
    uint64_t            connect_us;
    uint64_t            asked;          /* overload: sends due */
    uint64_t            not_sent;       /* overload: no socket free */
    uint64_t            hist[LG_HIST_SIZE];
    uint64_t            ack_hist[LG_HIST_SIZE];     /* overload: acks */
    uint64_t            refuse_hist[LG_HIST_SIZE];  /* and refusals */
} lg_stats_t;


typedef struct {
    int                 proto;
    const char         *host;
    int                 port;
    const char         *path;           /* nchan: prefix; cf: endpoint */
    uint32_t            conns;
    uint32_t            room_size;
    uint32_t            procs;
    uint32_t            srcs;
    double              rate;           /* messages a second, all rooms */
    double              duration;
    double              warmup;
    double              drain;
    double              idle;           /* idle mode: seconds to hold */
    double              tick;           /* fan-out: a "tick" line each */
    const char         *tokens;
    const char         *http_get;
    const char         *http_post;
    double              http_rate;      /* 0: each answer, the next */
    int                 fanout;
    int                 overload;
    int                 npids, nmpids, nxpids;
    pid_t               pids[LG_MAX_PIDS];      /* server: CPU and memory */
    pid_t               mpids[LG_MAX_PIDS];     /* database: CPU apart */
    pid_t               xpids[LG_MAX_PIDS];     /* memory only, e.g. Redis */
} lg_conf_t;


static lg_conf_t    lg_conf;
static lg_stats_t  *lg_st;
static lg_stats_t  *lg_shared;          /* every client's, read live */
static lg_conn_t   *lg_conns;
static uint32_t     lg_nconns;
static int          lg_ep;
static u_char      *lg_rbuf;
static uint32_t     lg_rooms;
static uint32_t    *lg_room_members;
static uint64_t     lg_rnd = 0x9e3779b97f4a7c15ULL;
static int          lg_publishing;
static uint32_t     lg_settled;         /* ready or failed, once each */
static uint32_t    *lg_pubs;            /* this process's publishers */
static uint32_t     lg_npubs;
static uint64_t     lg_pub_start, lg_pub_end, lg_win_start, lg_win_end;
static lg_ov_msg_t *lg_ov;              /* overload: the shared table */
static uint64_t    *lg_ov_next;         /* its next free slot, shared */
static uint32_t     lg_ov_cap;
static uint32_t     lg_ov_cursor;       /* the next socket to try */


static uint64_t
lg_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static void *
lg_alloc(size_t size)
{
    void  *p;

    p = calloc(1, size);
    if (p == NULL) {
        fprintf(stderr, "loadgen: calloc(%zu) failed\n", size);
        exit(2);
    }

    return p;
}


static uint32_t
lg_random(void)
{
    lg_rnd ^= lg_rnd << 13;
    lg_rnd ^= lg_rnd >> 7;
    lg_rnd ^= lg_rnd << 17;

    return (uint32_t) lg_rnd;
}


static uint32_t
lg_hist_index(uint64_t v)
{
    int  s;

    if (v < 2 * LG_HIST_SUB) {
        return (uint32_t) v;
    }

    s = 63 - __builtin_clzll(v) - 10;

    if (s > 27) {
        return LG_HIST_SIZE - 1;
    }

    return (uint32_t) (LG_HIST_SUB * s + (v >> s));
}


static uint64_t
lg_hist_value(uint32_t i)
{
    int  s;

    if (i < 2 * LG_HIST_SUB) {
        return i;
    }

    s = i / LG_HIST_SUB - 1;

    return (uint64_t) (i - LG_HIST_SUB * s) << s;
}


/* sending */

static void lg_close(lg_conn_t *c, int failed);


static void
lg_write(lg_conn_t *c, const u_char *data, size_t len)
{
    ssize_t   n;
    u_char   *p;

    if (c->state == LG_ST_DEAD) {
        return;
    }

    if (c->wlen == 0) {
        n = send(c->fd, data, len, MSG_NOSIGNAL);

        if (n == (ssize_t) len) {
            return;
        }

        if (n < 0) {
            if (errno != EAGAIN) {
                lg_close(c, 1);
                return;
            }
            n = 0;
        }

        data += n;
        len -= n;
    }

    if (c->wlen + len > 1024 * 1024) {
        lg_st->send_errors++;
        lg_close(c, 1);
        return;
    }

    p = realloc(c->wbuf, c->wlen + len);
    if (p == NULL) {
        fprintf(stderr, "loadgen: realloc() failed\n");
        exit(2);
    }

    memcpy(p + c->wlen, data, len);
    c->wbuf = p;
    c->wlen += len;
}


static void
lg_flush(lg_conn_t *c)
{
    ssize_t  n;

    if (c->wlen == 0) {
        return;
    }

    n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);

    if (n < 0) {
        if (errno != EAGAIN) {
            lg_close(c, 1);
        }
        return;
    }

    memmove(c->wbuf, c->wbuf + n, c->wlen - n);
    c->wlen -= n;

    if (c->wlen == 0) {
        free(c->wbuf);
        c->wbuf = NULL;
    }
}


/* a masked client frame */
static void
lg_frame(lg_conn_t *c, int opcode, const u_char *data, size_t len)
{
    u_char    frame[16 + 4096], *p, *m;
    size_t    i;
    uint32_t  key;

    if (len > 4096) {
        fprintf(stderr, "loadgen: frame too long\n");
        exit(2);
    }

    p = frame;
    *p++ = 0x80 | opcode;

    if (len < 126) {
        *p++ = 0x80 | len;

    } else {
        *p++ = 0x80 | 126;
        *p++ = len >> 8;
        *p++ = len & 0xff;
    }

    key = lg_random();
    m = p;
    memcpy(p, &key, 4);
    p += 4;

    for (i = 0; i < len; i++) {
        *p++ = data[i] ^ m[i & 3];
    }

    lg_write(c, frame, p - frame);
}


static void
lg_text(lg_conn_t *c, const char *s, size_t len)
{
    lg_frame(c, 1, (const u_char *) s, len);
}


static void
lg_publish(lg_conn_t *c, uint64_t now)
{
    int   n, m;
    char  body[LG_MSG_SIZE + 1], out[1024];

    c->sent++;
    c->req_ts = now;

    n = snprintf(body, sizeof(body), "~P%06u.%010u.%016llu.",
                 c->room, c->sent, (unsigned long long) now);

    memset(body + n, 'x', LG_MSG_SIZE - n);
    body[LG_MSG_SIZE] = '\0';

    switch (lg_conf.proto) {

    case LG_PROTO_CHAT:
        m = snprintf(out, sizeof(out),
                     "{\"event\":\"send_message\",\"data\":{\"chatId\":\"%s\","
                     "\"tempId\":\"b%u-%u\",\"type\":\"text\","
                     "\"content\":\"%s\"},\"id\":%u}",
                     c->chat, c->id, c->sent, body, c->sent);
        break;

    case LG_PROTO_NCHAN:
        m = snprintf(out, sizeof(out), "%s", body);
        break;

    case LG_PROTO_CF:
        m = snprintf(out, sizeof(out),
                     "{\"id\":%u,\"publish\":{\"channel\":\"room%u\","
                     "\"data\":{\"m\":\"%s\"}}}",
                     c->sent + 10, c->room, body);
        break;

    default: /* LG_PROTO_SIO */
        m = snprintf(out, sizeof(out), "42[\"pub\",\"room%u\",\"%s\"]",
                     c->room, body);
        break;
    }

    lg_text(c, out, m);
    lg_st->sent++;
    lg_st->expected += lg_room_members[c->room];
}


/* overload: one send due, on the next socket with none awaiting */
static void
lg_ov_send(uint64_t now)
{
    int           n, m;
    char          body[LG_MSG_SIZE + 1], out[1024];
    uint32_t      i, slot;
    lg_conn_t    *c;
    lg_ov_msg_t  *msg;

    lg_st->asked++;
    c = NULL;

    for (i = 0; i < lg_nconns; i++) {
        c = &lg_conns[lg_ov_cursor];
        lg_ov_cursor = (lg_ov_cursor + 1) % lg_nconns;

        if (c->state == LG_ST_READY && c->awaiting == 0) {
            break;
        }

        c = NULL;
    }

    if (c == NULL) {
        lg_st->not_sent++;
        return;
    }

    slot = (uint32_t) __atomic_fetch_add(lg_ov_next, 1, __ATOMIC_RELAXED);

    if (slot >= lg_ov_cap) {
        lg_st->not_sent++;
        return;
    }

    msg = &lg_ov[slot];
    msg->sent_us = now;
    msg->expected = lg_room_members[c->room];
    msg->status = LG_OV_SENT;
    c->awaiting = slot + 1;

    n = snprintf(body, sizeof(body), "~M%010u.%016llu.",
                 slot, (unsigned long long) now);

    memset(body + n, 'x', LG_MSG_SIZE - n);
    body[LG_MSG_SIZE] = '\0';

    m = snprintf(out, sizeof(out),
                 "{\"event\":\"send_message\",\"data\":{\"chatId\":\"%s\","
                 "\"tempId\":\"o%u\",\"type\":\"text\","
                 "\"content\":\"%s\"},\"id\":%u}",
                 c->chat, slot, body, slot + 1);

    lg_text(c, out, m);
    lg_st->sent++;
}


/* the number that ends a frame: its top-level "id", set last */
static uint32_t
lg_ov_trailing_id(const u_char *p, size_t len)
{
    size_t    i;
    uint32_t  v, mul;

    if (len < 8 || p[len - 1] != '}') {
        return 0;
    }

    v = 0;
    mul = 1;

    for (i = len - 1; i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9'; i--) {
        v += (p[i - 1] - '0') * mul;
        mul *= 10;
    }

    if (i < 6 || i == len - 1 || memcmp(p + i - 5, "\"id\":", 5) != 0) {
        return 0;
    }

    return v;
}


/* overload: a frame on a signed-in socket */
static void
lg_ov_message(lg_conn_t *c, u_char *p, size_t len, uint64_t now)
{
    int            ack;
    char          *e;
    size_t         head;
    u_char        *q;
    uint32_t       id, slot;
    uint64_t       ts, lat;
    lg_ov_msg_t   *msg;

    head = len < 40 ? len : 40;

    if (memmem(p, head, "\"event\":\"new_message\"", 21)) {
        q = memmem(p, len, "~M", 2);
        if (q == NULL) {
            lg_st->foreign++;
            return;
        }

        slot = strtoul((char *) q + 2, &e, 10);
        if (*e != '.' || slot >= lg_ov_cap) {
            lg_st->foreign++;
            return;
        }

        ts = strtoull(e + 1, &e, 10);

        __atomic_add_fetch(&lg_ov[slot].delivered, 1, __ATOMIC_RELAXED);
        lg_st->received++;
        lg_st->in_window++;
        lg_st->hist[lg_hist_index(now > ts ? now - ts : 0)]++;
        return;
    }

    ack = memmem(p, head, "\"event\":\"ack\"", 13) != NULL;

    if (!ack && memmem(p, head, "\"event\":\"error\"", 15) == NULL) {
        return;
    }

    id = lg_ov_trailing_id(p, len);

    if (id == 0 || id > lg_ov_cap) {
        lg_st->server_errors++;
        return;
    }

    if (c->awaiting == id) {
        c->awaiting = 0;
    }

    msg = &lg_ov[id - 1];
    lat = now > msg->sent_us ? now - msg->sent_us : 0;

    if (ack) {
        msg->status = LG_OV_ACCEPTED;
        lg_st->ack_hist[lg_hist_index(lat)]++;

    } else if (memmem(p, len, "\"overloaded\"", 12)) {
        msg->status = LG_OV_REFUSED;
        lg_st->refuse_hist[lg_hist_index(lat)]++;

    } else {
        msg->status = LG_OV_ERROR;
        lg_st->server_errors++;
    }
}


static void
lg_http_request(lg_conn_t *c, uint64_t now)
{
    int   n, m;
    char  body[512], out[2048], text[LG_MSG_SIZE + 1];

    c->sent++;
    c->req_ts = now;

    if (lg_conf.http_get) {
        n = snprintf(out, sizeof(out),
                     "GET %s HTTP/1.1\r\nHost: %s\r\n"
                     "Authorization: Bearer %s\r\n\r\n",
                     lg_conf.http_get, lg_conf.host,
                     c->token ? c->token : "-");

    } else {
        memset(text, 'x', LG_MSG_SIZE);
        text[LG_MSG_SIZE] = '\0';

        m = snprintf(body, sizeof(body),
                     "{\"chatId\":\"%s\",\"tempId\":\"h%d-%u-%u\","
                     "\"type\":\"text\",\"content\":\"%s\"}",
                     c->chat, (int) getpid(), c->id, c->sent, text);

        n = snprintf(out, sizeof(out),
                     "POST %s HTTP/1.1\r\nHost: %s\r\n"
                     "Authorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     lg_conf.http_post, lg_conf.host, c->token, m, body);
    }

    lg_write(c, (u_char *) out, n);
    lg_st->sent++;
}


/* a paced request: on the next socket with none in flight, else not sent */

static void
lg_http_paced(uint64_t now)
{
    uint32_t          i;
    lg_conn_t        *c;
    static uint32_t   next;

    for (i = 0; i < lg_nconns; i++) {
        c = &lg_conns[(next + i) % lg_nconns];

        if (c->state == LG_ST_READY && c->req_ts == 0) {
            next = (next + i + 1) % lg_nconns;
            lg_http_request(c, now);
            return;
        }
    }

    lg_st->not_sent++;
}


/* 0: more bytes needed, else bytes used by one response */
static ssize_t
lg_parse_response(lg_conn_t *c, u_char *p, size_t len, uint64_t now)
{
    u_char  *h, *cl;
    size_t   hlen, blen;

    h = memmem(p, len, "\r\n\r\n", 4);
    if (h == NULL) {
        return 0;
    }

    hlen = h + 4 - p;

    cl = memmem(p, hlen, "Content-Length: ", 16);
    if (cl == NULL) {
        cl = memmem(p, hlen, "content-length: ", 16);
    }

    if (cl == NULL) {
        fprintf(stderr, "loadgen: a response without Content-Length\n");
        lg_close(c, 1);
        return -1;
    }

    blen = strtoul((char *) cl + 16, NULL, 10);

    if (len < hlen + blen) {
        return 0;
    }

    if (len < 12 || p[9] != '2') {
        lg_st->server_errors++;

    } else {
        lg_st->received++;
    }

    if (c->req_ts >= lg_win_start && c->req_ts < lg_win_end) {
        lg_st->in_window++;
        lg_st->ok_in_window += (len >= 12 && p[9] == '2');
        lg_st->hist[lg_hist_index(now - c->req_ts)]++;
    }

    c->req_ts = 0;

    if (now < lg_pub_end && lg_conf.http_rate == 0) {
        lg_http_request(c, now);
    }

    return hlen + blen;
}


/* receiving */

static void
lg_deliver(lg_conn_t *c, const u_char *p, const u_char *last, uint64_t now)
{
    char       *e;
    uint32_t    room, seq;
    uint64_t    ts;

    /* "~P" then room.seq.usec */
    room = strtoul((const char *) p + 2, &e, 10);
    if (*e != '.') {
        return;
    }
    seq = strtoul(e + 1, &e, 10);
    if (*e != '.') {
        return;
    }
    ts = strtoull(e + 1, &e, 10);
    if ((u_char *) e > last) {
        return;
    }

    if (room != c->room) {
        lg_st->foreign++;
        return;
    }

    lg_st->received++;

    if (seq <= c->last_seq) {
        lg_st->dups++;
        lg_st->received--;
        return;
    }

    if (seq > c->last_seq + 1) {
        lg_st->gaps += seq - c->last_seq - 1;
    }

    c->last_seq = seq;

    if (ts >= lg_win_start && ts < lg_win_end) {
        lg_st->in_window++;
        lg_st->hist[lg_hist_index(now > ts ? now - ts : 0)]++;
    }
}


static void
lg_ready(lg_conn_t *c)
{
    if (c->state != LG_ST_READY) {
        c->state = LG_ST_READY;
        lg_st->ready++;
        lg_settled++;
    }
}


static void
lg_setup(lg_conn_t *c)
{
    int   n;
    char  out[2048];

    switch (lg_conf.proto) {

    case LG_PROTO_CHAT:
        c->state = LG_ST_SETUP;     /* the token was in the query */
        break;

    case LG_PROTO_NCHAN:
        lg_ready(c);
        break;

    case LG_PROTO_CF:
        c->state = LG_ST_SETUP;
        n = snprintf(out, sizeof(out),
                     "{\"id\":1,\"connect\":{\"token\":\"%s\"}}",
                     c->token);
        lg_text(c, out, n);
        n = snprintf(out, sizeof(out),
                     "{\"id\":2,\"subscribe\":{\"channel\":\"room%u\"}}",
                     c->room);
        lg_text(c, out, n);
        break;

    default: /* LG_PROTO_SIO: waits for the open packet */
        c->state = LG_ST_SETUP;
        break;
    }
}


static void
lg_message(lg_conn_t *c, u_char *p, size_t len, uint64_t now)
{
    int      n;
    char     out[128];
    u_char  *last, *q;

    last = p + len;

    if (c->state == LG_ST_SETUP) {

        switch (lg_conf.proto) {

        case LG_PROTO_CHAT:
            if (memmem(p, len, "\"authenticated\"", 15)) {
                lg_ready(c);

            } else if (memmem(p, len, "authentication_error", 20)) {
                lg_close(c, 1);
            }
            return;

        case LG_PROTO_CF:
            if (memmem(p, len, "\"id\":2,", 7)) {
                if (memmem(p, len, "\"error\"", 7)) {
                    lg_close(c, 1);
                    return;
                }
                lg_ready(c);
            }
            return;

        case LG_PROTO_SIO:
            if (len && p[0] == '0') {
                lg_text(c, "40", 2);

            } else if (len > 1 && p[0] == '4' && p[1] == '0') {
                n = snprintf(out, sizeof(out), "421[\"join\",\"room%u\"]",
                             c->room);
                lg_text(c, out, n);

            } else if (len > 2 && p[0] == '4' && p[1] == '3') {
                lg_ready(c);
            }
            return;
        }
    }

    if (lg_conf.overload) {
        lg_ov_message(c, p, len, now);
        return;
    }

    switch (lg_conf.proto) {

    case LG_PROTO_CHAT:
        if (memmem(p, len < 40 ? len : 40, "\"event\":\"ack\"", 13)) {
            /* a publisher's send stored: the commit's share of a delivery */
            if (lg_ov_trailing_id(p, len) == c->sent
                && c->req_ts >= lg_win_start && c->req_ts < lg_win_end)
            {
                lg_st->ack_hist[lg_hist_index(now > c->req_ts
                                              ? now - c->req_ts : 0)]++;
            }
            return;
        }
        if (memmem(p, len, "\"event\":\"error\"", 15)) {
            /* the first few say which refusal it was */
            if (lg_st->server_errors++ < 3) {
                fprintf(stderr, "loadgen: error event: %.*s\n",
                        (int) (len < 300 ? len : 300), p);
            }

            /*
             * a publisher's latest send refused (overloaded, say): the
             * sender was told, so it is no loss; nobody expects it, and
             * the next send takes its number (no gap)
             */
            if (!lg_conf.overload && c->sent
                && lg_ov_trailing_id(p, len) == c->sent)
            {
                lg_st->refused++;
                lg_st->expected -= lg_room_members[c->room];
                lg_st->sent--;
                c->sent--;
                c->skipped++;
            }
            return;
        }
        if (memmem(p, len, "\"new_message\"", 13) == NULL) {
            return;
        }
        break;

    case LG_PROTO_CF:
        if (len == 2 && p[0] == '{' && p[1] == '}') {
            lg_text(c, "{}", 2);
            return;
        }
        if (memmem(p, len, "\"error\"", 7)) {
            lg_st->server_errors++;
        }
        break;

    case LG_PROTO_SIO:
        if (len == 1 && p[0] == '2') {
            lg_text(c, "3", 1);
            return;
        }
        break;
    }

    /* every marker of the frame: Centrifugo batches pushes */
    while (p < last && (q = memmem(p, last - p, "~P", 2)) != NULL) {
        lg_deliver(c, q, last, now);
        p = q + 2;
    }
}


/* 0: more bytes needed; -1: closed; else bytes used */
static ssize_t
lg_parse_frame(lg_conn_t *c, u_char *p, size_t len, uint64_t now)
{
    int       opcode;
    size_t    hlen;
    uint64_t  plen;

    if (len < 2) {
        return 0;
    }

    opcode = p[0] & 0x0f;
    plen = p[1] & 0x7f;
    hlen = 2;

    if (p[1] & 0x80) {
        fprintf(stderr, "loadgen: masked server frame\n");
        lg_close(c, 1);
        return -1;
    }

    if (plen == 126) {
        if (len < 4) {
            return 0;
        }
        plen = ((uint64_t) p[2] << 8) | p[3];
        hlen = 4;

    } else if (plen == 127) {
        if (len < 10) {
            return 0;
        }
        plen = 0;
        for (hlen = 2; hlen < 10; hlen++) {
            plen = (plen << 8) | p[hlen];
        }
    }

    if (plen > LG_RBUF_SIZE / 2) {
        fprintf(stderr, "loadgen: frame of %llu bytes\n",
                (unsigned long long) plen);
        lg_close(c, 1);
        return -1;
    }

    if (len < hlen + plen) {
        return 0;
    }

    switch (opcode) {

    case 0x9:
        lg_frame(c, 0xa, p + hlen, plen);
        break;

    case 0x8:
        lg_close(c, 1);
        return -1;

    case 0xa:
        break;

    default:
        lg_message(c, p + hlen, plen, now);
    }

    return hlen + plen;
}


static void
lg_read(lg_conn_t *c)
{
    u_char    *p, *last, *q;
    ssize_t    n, used;
    uint64_t   now;

    for ( ;; ) {

        if (c->rlen) {
            memcpy(lg_rbuf, c->rbuf, c->rlen);
        }

        n = recv(c->fd, lg_rbuf + c->rlen, LG_RBUF_SIZE - c->rlen, 0);

        if (n == 0) {
            lg_close(c, 1);
            return;
        }

        if (n < 0) {
            if (errno != EAGAIN) {
                lg_close(c, 1);
            }
            return;
        }

        now = lg_now_us();
        p = lg_rbuf;
        last = lg_rbuf + c->rlen + n;

        if (c->state == LG_ST_HANDSHAKE) {
            q = memmem(p, last - p, "\r\n\r\n", 4);

            if (q == NULL) {
                if (last - p > 8192) {
                    lg_close(c, 1);
                    return;
                }
                goto keep;
            }

            if (last - p < 12 || memcmp(p + 9, "101", 3) != 0) {
                fprintf(stderr, "loadgen: handshake: %.*s\n",
                        (int) (q - p < 200 ? q - p : 200), p);
                lg_close(c, 1);
                return;
            }

            p = q + 4;
            lg_setup(c);
        }

        while (p < last) {
            used = lg_conf.proto == LG_PROTO_HTTP
                   ? lg_parse_response(c, p, last - p, now)
                   : lg_parse_frame(c, p, last - p, now);

            if (used < 0) {
                return;
            }

            if (used == 0) {
                break;
            }

            p += used;
        }

    keep:

        c->rlen = last - p;

        if (c->rlen) {
            q = realloc(c->rbuf, c->rlen);
            if (q == NULL) {
                fprintf(stderr, "loadgen: realloc() failed\n");
                exit(2);
            }
            memmove(q, p, c->rlen);
            c->rbuf = q;

        } else if (c->rbuf) {
            free(c->rbuf);
            c->rbuf = NULL;
        }

        if (c->state == LG_ST_DEAD) {
            return;
        }
    }
}


static void
lg_close(lg_conn_t *c, int failed)
{
    if (c->state == LG_ST_DEAD) {
        return;
    }

    if (c->state == LG_ST_READY) {
        lg_st->closed += failed;
        lg_st->ready--;

    } else {
        lg_st->failed += failed;
        lg_settled++;
    }

    c->state = LG_ST_DEAD;
    close(c->fd);
    c->fd = -1;
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = 0;
}


static int
lg_connect(lg_conn_t *c, uint32_t proc)
{
    int                  fd, one;
    char                 req[4096], addr[32];
    struct epoll_event   ev;
    struct sockaddr_in   sin;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd == -1) {
        perror("loadgen: socket()");
        return -1;
    }

    one = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                      sizeof(one));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    snprintf(addr, sizeof(addr), "127.0.0.%u",
             2 + (proc + c->id / 8192) % lg_conf.srcs);
    inet_pton(AF_INET, addr, &sin.sin_addr);

    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1) {
        perror("loadgen: bind()");
        close(fd);
        return -1;
    }

    sin.sin_port = htons(lg_conf.port);
    inet_pton(AF_INET, lg_conf.host, &sin.sin_addr);

    if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        && errno != EINPROGRESS)
    {
        perror("loadgen: connect()");
        close(fd);
        return -1;
    }

    c->fd = fd;
    c->state = LG_ST_HANDSHAKE;

    if (lg_conf.proto == LG_PROTO_HTTP) {
        c->state = LG_ST_SETUP;
        lg_ready(c);
    }

    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = c;

    if (epoll_ctl(lg_ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
        perror("loadgen: epoll_ctl()");
        exit(2);
    }

    switch (lg_conf.proto) {

    case LG_PROTO_CHAT:
        snprintf(req, sizeof(req), "%s?token=%s", lg_conf.path, c->token);
        break;

    case LG_PROTO_NCHAN:
        snprintf(req, sizeof(req), "%s%u", lg_conf.path, c->room);
        break;

    default:
        snprintf(req, sizeof(req), "%s", lg_conf.path);
    }

    if (lg_conf.proto == LG_PROTO_HTTP) {
        return 0;
    }

    /* queued until the connection is up */
    c->wlen = 0;
    {
        char  head[4608];
        int   n;

        n = snprintf(head, sizeof(head),
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     req, lg_conf.host, lg_conf.port);

        c->wbuf = malloc(n);
        if (c->wbuf == NULL) {
            fprintf(stderr, "loadgen: malloc() failed\n");
            exit(2);
        }
        memcpy(c->wbuf, head, n);
        c->wlen = n;
    }

    return 0;
}


/* the client process */

static void
lg_poll(int timeout)
{
    int                  i, n;
    lg_conn_t           *c;
    struct epoll_event   evs[512];

    n = epoll_wait(lg_ep, evs, 512, timeout);

    for (i = 0; i < n; i++) {
        c = evs[i].data.ptr;

        if (c->state == LG_ST_DEAD) {
            continue;
        }

        if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            lg_flush(c);
        }

        if (c->state != LG_ST_DEAD
            && evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        {
            lg_read(c);
        }
    }
}


/* the times this process slept (waited for a frame): ru_nvcsw */
static uint64_t
lg_sleeps(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);

    return (uint64_t) ru.ru_nvcsw;
}


static uint64_t
lg_cpu_us(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);

    return (uint64_t) ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec
           + (uint64_t) ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}


static int
lg_read_full(int fd, void *buf, size_t len)
{
    ssize_t  n;
    u_char  *p = buf;

    while (len) {
        n = read(fd, p, len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= n;
    }

    return 0;
}


static int
lg_write_full(int fd, const void *buf, size_t len)
{
    ssize_t        n;
    const u_char  *p = buf;

    while (len) {
        n = write(fd, p, len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= n;
    }

    return 0;
}


static void
lg_child(uint32_t proc, int cmd, int res)
{
    char        cbuf[64];
    uint32_t    i, next, pending, r;
    uint64_t    t0, now, cpu0, sleeps0, due, period, ov_due, ov_period;
    lg_conn_t  *c;

    lg_ep = epoll_create1(0);
    if (lg_ep == -1) {
        perror("loadgen: epoll_create1()");
        exit(2);
    }

    lg_rbuf = lg_alloc(LG_RBUF_SIZE);

    /* phase 1: connect, at most LG_MAX_PENDING handshakes at a time */
    if (lg_read_full(cmd, cbuf, 1) == -1) {
        exit(2);
    }

    fcntl(cmd, F_SETFL, O_NONBLOCK);
    t0 = lg_now_us();
    next = 0;

    for ( ;; ) {
        pending = 0;

        while (next < lg_nconns && next - lg_settled < LG_MAX_PENDING) {
            if (lg_connect(&lg_conns[next], proc) == -1) {
                lg_conns[next].state = LG_ST_DEAD;
                lg_st->failed++;
                lg_settled++;
            }
            next++;
        }

        pending = next - lg_settled;

        if (next == lg_nconns && pending == 0) {
            break;
        }

        if (lg_now_us() - t0 > 600 * 1000000ULL) {
            fprintf(stderr, "loadgen: %u connections not ready in 600 s\n",
                    pending);
            break;
        }

        lg_poll(10);
    }

    lg_st->connect_us = lg_now_us() - t0;

    if (lg_write_full(res, "R", 1) == -1) {
        exit(2);
    }

    /* phase 2: hold (and publish), until the parent sends the times */
    for ( ;; ) {
        lg_poll(50);

        {
            ssize_t  n;

            n = read(cmd, cbuf, sizeof(cbuf) - 1);
            if (n > 0) {
                cbuf[n] = '\0';
                break;
            }
        }
    }

    /* "P start end winstart winend" in microseconds, or "Q" */
    if (cbuf[0] == 'P') {
        unsigned long long  a, b, w0, w1;

        if (sscanf(cbuf + 1, "%llu %llu %llu %llu", &a, &b, &w0, &w1) != 4) {
            exit(2);
        }

        lg_pub_start = a;
        lg_pub_end = b;
        lg_win_start = w0;
        lg_win_end = w1;
        lg_publishing = 1;

        period = (uint64_t) (1000000.0 * lg_rooms / lg_conf.rate);
        cpu0 = 0;
        sleeps0 = 0;

        /* overload: this process's share of the rate, its phase apart */
        ov_period = (uint64_t) (1000000.0 * lg_conf.conns
                                / (lg_conf.http_rate > 0 ? lg_conf.http_rate
                                                         : lg_conf.rate)
                                / (lg_nconns ? lg_nconns : 1));
        if (ov_period == 0) {
            ov_period = 1;
        }
        ov_due = lg_pub_start + ov_period * proc / lg_conf.procs;

        for ( ;; ) {
            now = lg_now_us();

            if (cpu0 == 0 && now >= lg_win_start) {
                cpu0 = lg_cpu_us();
                sleeps0 = lg_sleeps();
            }

            if (now >= lg_win_end && cpu0) {
                lg_st->cpu_us = lg_cpu_us() - cpu0;
                lg_st->sleeps = lg_sleeps() - sleeps0;
                cpu0 = 1;
            }

            if (now >= lg_pub_end + (uint64_t) (lg_conf.drain * 1e6)) {
                break;
            }

            if (lg_conf.proto == LG_PROTO_HTTP && lg_conf.http_rate > 0) {
                /* paced: this process's share, on the next socket free */
                while (ov_due <= now && ov_due < lg_pub_end) {
                    lg_http_paced(now);
                    ov_due += ov_period;
                }

            } else if (lg_conf.proto == LG_PROTO_HTTP) {
                if (now >= lg_pub_start && now < lg_pub_end) {
                    for (i = 0; i < lg_nconns; i++) {
                        c = &lg_conns[i];

                        if (c->state == LG_ST_READY && c->req_ts == 0) {
                            lg_http_request(c, now);
                        }
                    }
                }

            } else if (lg_conf.overload) {
                while (ov_due <= now && ov_due < lg_pub_end) {
                    lg_ov_send(now);
                    ov_due += ov_period;
                }

            } else if (now >= lg_pub_start && now < lg_pub_end) {
                for (i = 0; i < lg_npubs; i++) {
                    c = &lg_conns[lg_pubs[i]];

                    if (c->state != LG_ST_READY) {
                        continue;
                    }

                    /* each room's phase spread over the period */
                    r = c->room;
                    due = lg_pub_start + period * r / lg_rooms
                          + (uint64_t) (c->sent + c->skipped) * period;

                    while (due <= now && due < lg_pub_end) {
                        lg_publish(c, now);
                        due += period;
                    }
                }
            }

            lg_poll(1);
        }
    }

    if (lg_write_full(res, lg_st, sizeof(lg_stats_t)) == -1) {
        exit(2);
    }

    /* hold the sockets until the parent says to go */
    fcntl(cmd, F_SETFL, 0);

    while (read(cmd, cbuf, 1) < 0 && errno == EINTR) {
        /* void */
    }

    exit(0);
}


/* the parent: /proc readings */

/* utime + stime, or (sys) stime alone: the time spent in the kernel */

static uint64_t
lg_proc_cpu_ticks(pid_t pid, int sys)
{
    char                 path[64], buf[4096], *p;
    int                  fd, i;
    ssize_t              n;
    unsigned long long   ut, st;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);

    fd = open(path, O_RDONLY);
    if (fd == -1) {
        return 0;
    }

    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);

    if (n <= 0) {
        return 0;
    }

    buf[n] = '\0';

    /* after the command's closing parenthesis: field 3 on */
    p = strrchr(buf, ')');
    if (p == NULL) {
        return 0;
    }

    p += 2;

    for (i = 3; i < 14; i++) {
        p = strchr(p, ' ');
        if (p == NULL) {
            return 0;
        }
        p++;
    }

    if (sscanf(p, "%llu %llu", &ut, &st) != 2) {
        return 0;
    }

    return sys ? st : ut + st;
}


static double
lg_cpu_seconds(pid_t *pids, int n, int sys)
{
    int       i;
    uint64_t  t = 0;

    for (i = 0; i < n; i++) {
        t += lg_proc_cpu_ticks(pids[i], sys);
    }

    return (double) t / sysconf(_SC_CLK_TCK);
}


/*
 * The time the threads of these processes waited, runnable, for a core
 * (schedstat's second field, summed over each one's tasks): a server
 * whose deliveries are late for want of a core shows it here.
 */

static double
lg_runq_seconds(pid_t *pids, int n)
{
    int                  i, fd;
    char                 path[96], buf[128];
    DIR                 *d;
    ssize_t              k;
    struct dirent       *e;
    unsigned long long   on, wait, t = 0;

    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/proc/%d/task", (int) pids[i]);

        d = opendir(path);
        if (d == NULL) {
            continue;
        }

        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') {
                continue;
            }

            snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat",
                     (int) pids[i], e->d_name);

            fd = open(path, O_RDONLY);
            if (fd == -1) {
                continue;
            }

            k = read(fd, buf, sizeof(buf) - 1);
            close(fd);

            if (k <= 0) {
                continue;
            }

            buf[k] = '\0';

            if (sscanf(buf, "%llu %llu", &on, &wait) == 2) {
                t += wait;
            }
        }

        closedir(d);
    }

    return (double) t / 1e9;
}


/* kB of "Pss:" (shared pages split among their processes) */
static uint64_t
lg_proc_pss(pid_t pid, const char *field)
{
    char                 path[64], line[256];
    FILE                *f;
    size_t               flen;
    unsigned long long   v = 0;

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int) pid);

    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }

    flen = strlen(field);

    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, flen) == 0) {
            sscanf(line + flen, "%llu", &v);
            break;
        }
    }

    fclose(f);

    return v;
}


static uint64_t
lg_mem_kb(pid_t *pids, int n, const char *field)
{
    int       i;
    uint64_t  t = 0;

    for (i = 0; i < n; i++) {
        t += lg_proc_pss(pids[i], field);
    }

    return t;
}


/* TCP "mem" of /proc/net/sockstat, in kB */
static uint64_t
lg_sockstat_kb(uint64_t *inuse)
{
    char                 line[256];
    FILE                *f;
    unsigned long long   u = 0, m = 0;

    f = fopen("/proc/net/sockstat", "r");
    if (f == NULL) {
        return 0;
    }

    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "TCP:", 4) == 0) {
            char  *p;

            p = strstr(line, "inuse ");
            if (p) {
                u = strtoull(p + 6, NULL, 10);
            }
            p = strstr(line, "mem ");
            if (p) {
                m = strtoull(p + 4, NULL, 10);
            }
        }
    }

    fclose(f);

    *inuse = u;

    return m * (sysconf(_SC_PAGESIZE) / 1024);
}


static int
lg_pids(const char *s, pid_t *pids)
{
    int    n = 0;
    char  *e;

    while (*s && n < LG_MAX_PIDS) {
        pids[n++] = (pid_t) strtol(s, &e, 10);
        if (*e != ',') {
            break;
        }
        s = e + 1;
    }

    return n;
}


/* "NAME_p50_us" and the like of a histogram */
static void
lg_print_quantiles(const char *name, uint64_t *hist)
{
    int              i;
    uint64_t         k, acc, total;
    static const double  q[] = { 0.5, 0.99, 0.999, 1.0 };
    static const char   *qn[] = { "p50", "p99", "p999", "max" };

    total = 0;

    for (k = 0; k < LG_HIST_SIZE; k++) {
        total += hist[k];
    }

    for (i = 0; i < 4; i++) {
        acc = 0;

        for (k = 0; k < LG_HIST_SIZE; k++) {
            acc += hist[k];
            if (total && acc >= (uint64_t) (q[i] * total + 0.5) && acc > 0) {
                break;
            }
        }

        printf("%s_%s_us %llu\n", name, qn[i],
               total ? (unsigned long long) lg_hist_value(
                           k < LG_HIST_SIZE ? k : LG_HIST_SIZE - 1)
                     : 0ULL);
    }
}


/* overload: the table read after the drain, with the clients' counts */
static void
lg_ov_report(lg_stats_t *all, uint64_t win_us, double cpu, double scpu,
    double mcpu)
{
    uint32_t      i, n;
    uint64_t      st[5], expected, delivered, lost, lost_msgs, dups;
    uint64_t      unanswered_delivered, refused_delivered;
    lg_ov_msg_t  *m;

    memset(st, 0, sizeof(st));
    expected = delivered = lost = lost_msgs = dups = 0;
    unanswered_delivered = refused_delivered = 0;

    n = *lg_ov_next < lg_ov_cap ? (uint32_t) *lg_ov_next : lg_ov_cap;

    for (i = 0; i < n; i++) {
        m = &lg_ov[i];
        st[m->status < 5 ? m->status : LG_OV_ERROR]++;

        if (m->delivered > m->expected) {
            dups += m->delivered - m->expected;
        }

        switch (m->status) {

        case LG_OV_ACCEPTED:
            expected += m->expected;

            if (m->delivered < m->expected) {
                delivered += m->delivered;
                lost += m->expected - m->delivered;
                lost_msgs++;

            } else {
                delivered += m->expected;
            }
            break;

        case LG_OV_REFUSED:
            refused_delivered += m->delivered ? 1 : 0;
            break;

        case LG_OV_SENT:
            unanswered_delivered += m->delivered ? 1 : 0;
            break;
        }
    }

    printf("overload 1\n");
    printf("room %u\n", lg_conf.room_size);
    printf("rate_asked %.1f\n", lg_conf.rate);
    printf("window_seconds %.3f\n", win_us / 1e6);
    printf("asked %llu\n", (unsigned long long) all->asked);
    printf("not_sent %llu\n", (unsigned long long) all->not_sent);
    printf("sent %llu\n", (unsigned long long) all->sent);
    printf("accepted %llu\n", (unsigned long long) st[LG_OV_ACCEPTED]);
    printf("refused %llu\n", (unsigned long long) st[LG_OV_REFUSED]);
    printf("errors_other %llu\n", (unsigned long long) st[LG_OV_ERROR]);
    printf("unanswered %llu\n", (unsigned long long) st[LG_OV_SENT]);
    printf("expected %llu\n", (unsigned long long) expected);
    printf("delivered %llu\n", (unsigned long long) delivered);
    printf("deliveries_seen %llu\n", (unsigned long long) all->received);
    printf("lost %llu\n", (unsigned long long) lost);
    printf("lost_messages %llu\n", (unsigned long long) lost_msgs);
    printf("dups %llu\n", (unsigned long long) dups);
    printf("refused_delivered %llu\n",
           (unsigned long long) refused_delivered);
    printf("unanswered_delivered %llu\n",
           (unsigned long long) unanswered_delivered);
    printf("foreign %llu\n", (unsigned long long) all->foreign);
    printf("closed %llu\n", (unsigned long long) all->closed);
    printf("send_errors %llu\n", (unsigned long long) all->send_errors);
    printf("server_cpu_seconds %.3f\n", cpu);
    printf("server_sys_cpu_seconds %.3f\n", scpu);
    printf("db_cpu_seconds %.3f\n", mcpu);
    printf("client_cpu_seconds %.3f\n", all->cpu_us / 1e6);
    printf("client_sleeps %llu\n", (unsigned long long) all->sleeps);

    lg_print_quantiles("latency", all->hist);
    lg_print_quantiles("ack", all->ack_hist);
    lg_print_quantiles("refuse", all->refuse_hist);
}


/*
 * the fan-out's window, with --tick: every SECS a line "tick <unix time>
 * <seconds into the window> <published> <expected> <received> <gaps>
 * <dups> <closed> <p50_us> <p99_us> <max_us>", counters since the start,
 * latencies of the deliveries since the last line
 */
static void
lg_ticks(uint64_t w0, uint64_t w1)
{
    int          i;
    uint32_t     p, k;
    uint64_t     next, now, acc, total, q[3], *prev, *cur;
    uint64_t     sent, expected, received, gaps, dups, closed;
    static const double  qv[] = { 0.5, 0.99, 1.0 };

    if (lg_conf.tick <= 0) {
        while (lg_now_us() < w1) {
            usleep(1000);
        }
        return;
    }

    prev = lg_alloc(LG_HIST_SIZE * sizeof(uint64_t));
    cur = lg_alloc(LG_HIST_SIZE * sizeof(uint64_t));
    next = w0 + (uint64_t) (lg_conf.tick * 1e6);

    for ( ;; ) {
        now = lg_now_us();

        if (now < next && now < w1) {
            usleep(1000);
            continue;
        }

        sent = expected = received = gaps = dups = closed = 0;
        memset(cur, 0, LG_HIST_SIZE * sizeof(uint64_t));

        for (p = 0; p < lg_conf.procs; p++) {
            sent += lg_shared[p].sent;
            expected += lg_shared[p].expected;
            received += lg_shared[p].received;
            gaps += lg_shared[p].gaps;
            dups += lg_shared[p].dups;
            closed += lg_shared[p].closed;

            for (k = 0; k < LG_HIST_SIZE; k++) {
                cur[k] += lg_shared[p].hist[k];
            }
        }

        total = 0;

        for (k = 0; k < LG_HIST_SIZE; k++) {
            total += cur[k] - prev[k];
        }

        for (i = 0; i < 3; i++) {
            acc = 0;
            q[i] = 0;

            for (k = 0; total && k < LG_HIST_SIZE; k++) {
                acc += cur[k] - prev[k];
                if (acc > 0 && acc >= (uint64_t) (qv[i] * total + 0.5)) {
                    q[i] = lg_hist_value(k);
                    break;
                }
            }
        }

        printf("tick %lld %.1f %llu %llu %llu %llu %llu %llu",
               (long long) time(NULL), (now - w0) / 1e6,
               (unsigned long long) sent,
               (unsigned long long) expected,
               (unsigned long long) received,
               (unsigned long long) gaps,
               (unsigned long long) dups,
               (unsigned long long) closed);
        printf(" %llu %llu %llu\n", (unsigned long long) q[0],
               (unsigned long long) q[1], (unsigned long long) q[2]);
        fflush(stdout);

        memcpy(prev, cur, LG_HIST_SIZE * sizeof(uint64_t));

        if (now >= w1) {
            break;
        }

        next += (uint64_t) (lg_conf.tick * 1e6);
    }

    free(prev);
    free(cur);
}


static void
lg_usage(void)
{
    fprintf(stderr,
        "usage: loadgen --proto chat|nchan|cf|sio|http --port P [--host H]\n"
        "         [--path /ws] --conns N --room-size K --procs P\n"
        "         [--srcs S] [--tokens FILE] [--idle SECS]\n"
        "         [--fanout --rate MSGS_PER_SEC --duration S --warmup S\n"
        "          --drain S] [--pids a,b] [--mpids c] [--xpids d]\n"
        "         [--http-get PATH | --http-post-message PATH]\n"
        "         [--http-rate R: paced, R requests a second in all]\n"
        "         [--overload: chat only, every socket sends, --rate\n"
        "          in all] [--tick SECS: fan-out, a line each]\n");
    exit(2);
}


static void
lg_load_tokens(char **tokens, char **chats)
{
    FILE      *f;
    char       line[4096], *sp, *nl;
    uint32_t   i = 0;

    f = fopen(lg_conf.tokens, "r");
    if (f == NULL) {
        perror("loadgen: tokens");
        exit(2);
    }

    while (i < lg_conf.conns && fgets(line, sizeof(line), f)) {
        nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
        }

        sp = strchr(line, ' ');
        if (sp) {
            *sp++ = '\0';
            chats[i] = strdup(sp);
            if (chats[i] == NULL) {
                exit(2);
            }
        }

        tokens[i] = strdup(line);
        if (tokens[i] == NULL) {
            exit(2);
        }
        i++;
    }

    fclose(f);

    if (i < lg_conf.conns) {
        fprintf(stderr, "loadgen: %u tokens for %u connections\n",
                i, lg_conf.conns);
        exit(2);
    }
}


int
main(int argc, char **argv)
{
    int          i, cmd[LG_MAX_PROCS], res[LG_MAX_PROCS], pc[2], pr[2];
    char         line[128], **tokens = NULL, **chats = NULL;
    pid_t        kids[LG_MAX_PROCS];
    uint32_t     p, j, n;
    uint64_t     t0, t1, inuse0, inuse1, sock0, sock1, mem0, mem1;
    uint64_t     x0, x1, m0, m1, k, total, acc, w0, w1, ps, pe;
    double       cpu0, cpu1, mcpu0, mcpu1, scpu0, scpu1, conn_s;
    double       rq0, rq1, mrq0, mrq1, crq0, crq1;
    lg_stats_t  *all;

    lg_conf.host = "127.0.0.1";
    lg_conf.path = "/ws";
    lg_conf.room_size = 160;
    lg_conf.procs = 2;
    lg_conf.srcs = 8;
    lg_conf.rate = 100;
    lg_conf.duration = 20;
    lg_conf.warmup = 5;
    lg_conf.drain = 5;
    lg_conf.proto = -1;

    for (i = 1; i < argc; i++) {
        const char  *a = argv[i], *v = (i + 1 < argc) ? argv[i + 1] : NULL;

        if (strcmp(a, "--fanout") == 0) {
            lg_conf.fanout = 1;
            continue;
        }

        if (strcmp(a, "--overload") == 0) {
            lg_conf.overload = 1;
            lg_conf.fanout = 1;
            continue;
        }

        if (v == NULL) {
            lg_usage();
        }

        i++;

        if (strcmp(a, "--proto") == 0) {
            lg_conf.proto = strcmp(v, "chat") == 0 ? LG_PROTO_CHAT
                            : strcmp(v, "nchan") == 0 ? LG_PROTO_NCHAN
                            : strcmp(v, "cf") == 0 ? LG_PROTO_CF
                            : strcmp(v, "sio") == 0 ? LG_PROTO_SIO
                            : strcmp(v, "http") == 0 ? LG_PROTO_HTTP : -1;
        } else if (strcmp(a, "--http-get") == 0) {
            lg_conf.http_get = v;
            lg_conf.fanout = 1;
        } else if (strcmp(a, "--http-post-message") == 0) {
            lg_conf.http_post = v;
            lg_conf.fanout = 1;
        } else if (strcmp(a, "--host") == 0) {
            lg_conf.host = v;
        } else if (strcmp(a, "--port") == 0) {
            lg_conf.port = atoi(v);
        } else if (strcmp(a, "--path") == 0) {
            lg_conf.path = v;
        } else if (strcmp(a, "--conns") == 0) {
            lg_conf.conns = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--room-size") == 0) {
            lg_conf.room_size = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--procs") == 0) {
            lg_conf.procs = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--srcs") == 0) {
            lg_conf.srcs = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--tokens") == 0) {
            lg_conf.tokens = v;
        } else if (strcmp(a, "--http-rate") == 0) {
            lg_conf.http_rate = atof(v);
        } else if (strcmp(a, "--rate") == 0) {
            lg_conf.rate = atof(v);
        } else if (strcmp(a, "--duration") == 0) {
            lg_conf.duration = atof(v);
        } else if (strcmp(a, "--warmup") == 0) {
            lg_conf.warmup = atof(v);
        } else if (strcmp(a, "--drain") == 0) {
            lg_conf.drain = atof(v);
        } else if (strcmp(a, "--idle") == 0) {
            lg_conf.idle = atof(v);
        } else if (strcmp(a, "--tick") == 0) {
            lg_conf.tick = atof(v);
        } else if (strcmp(a, "--pids") == 0) {
            lg_conf.npids = lg_pids(v, lg_conf.pids);
        } else if (strcmp(a, "--mpids") == 0) {
            lg_conf.nmpids = lg_pids(v, lg_conf.mpids);
        } else if (strcmp(a, "--xpids") == 0) {
            lg_conf.nxpids = lg_pids(v, lg_conf.xpids);
        } else {
            lg_usage();
        }
    }

    if (lg_conf.proto < 0 || lg_conf.port == 0 || lg_conf.conns == 0
        || lg_conf.room_size == 0 || lg_conf.procs == 0
        || lg_conf.procs > LG_MAX_PROCS || lg_conf.srcs == 0
        || lg_conf.rate <= 0)
    {
        lg_usage();
    }

    if ((lg_conf.proto == LG_PROTO_CHAT || lg_conf.proto == LG_PROTO_CF
         || lg_conf.http_post)
        && lg_conf.tokens == NULL)
    {
        fprintf(stderr, "loadgen: --tokens is needed for chat and cf\n");
        exit(2);
    }

    lg_rooms = (lg_conf.conns + lg_conf.room_size - 1) / lg_conf.room_size;
    lg_room_members = lg_alloc(lg_rooms * sizeof(uint32_t));

    for (j = 0; j < lg_conf.conns; j++) {
        lg_room_members[j / lg_conf.room_size]++;
    }

    if (lg_conf.overload && lg_conf.proto != LG_PROTO_CHAT) {
        fprintf(stderr, "loadgen: --overload is for --proto chat\n");
        exit(2);
    }

    if (lg_conf.overload) {
        /* every send of the window, with room to spare */
        lg_ov_cap = (uint32_t) (lg_conf.rate * (lg_conf.duration + 1) * 1.1)
                    + 1024;

        lg_ov = mmap(NULL, lg_ov_cap * sizeof(lg_ov_msg_t) + 64,
                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
        if (lg_ov == MAP_FAILED) {
            perror("loadgen: mmap()");
            exit(2);
        }

        lg_ov_next = (uint64_t *) (lg_ov + lg_ov_cap);
    }

    if (lg_conf.tokens) {
        tokens = lg_alloc(lg_conf.conns * sizeof(char *));
        chats = lg_alloc(lg_conf.conns * sizeof(char *));
        lg_load_tokens(tokens, chats);
    }

    /*
     * the clients' counters where the parent reads them while they run
     * (--tick); aligned 64-bit words, so a reading is never torn
     */
    lg_shared = mmap(NULL, lg_conf.procs * sizeof(lg_stats_t),
                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    if (lg_shared == MAP_FAILED) {
        perror("loadgen: mmap()");
        exit(2);
    }

    signal(SIGPIPE, SIG_IGN);

    sock0 = lg_sockstat_kb(&inuse0);
    mem0 = lg_mem_kb(lg_conf.pids, lg_conf.npids, "Pss:");
    x0 = lg_mem_kb(lg_conf.xpids, lg_conf.nxpids, "Pss:");
    m0 = lg_mem_kb(lg_conf.mpids, lg_conf.nmpids, "Pss:");

    for (p = 0; p < lg_conf.procs; p++) {
        if (pipe(pc) == -1 || pipe(pr) == -1) {
            perror("loadgen: pipe()");
            exit(2);
        }

        kids[p] = fork();

        if (kids[p] == -1) {
            perror("loadgen: fork()");
            exit(2);
        }

        if (kids[p] == 0) {
            close(pc[1]);
            close(pr[0]);

            for (j = 0; j < p; j++) {
                close(cmd[j]);
                close(res[j]);
            }

            lg_rnd ^= (uint64_t) getpid() << 21;
            lg_st = &lg_shared[p];

            /* connections p, p + procs, p + 2 procs... */
            n = (lg_conf.conns - p + lg_conf.procs - 1) / lg_conf.procs;
            lg_conns = lg_alloc((n ? n : 1) * sizeof(lg_conn_t));
            lg_pubs = lg_alloc((n ? n : 1) * sizeof(uint32_t));
            lg_nconns = 0;

            for (j = p; j < lg_conf.conns; j += lg_conf.procs) {
                lg_conn_t  *c = &lg_conns[lg_nconns++];

                c->fd = -1;
                c->id = j;
                c->room = j / lg_conf.room_size;
                c->token = tokens ? tokens[j] : NULL;
                c->chat = chats ? chats[j] : NULL;

                if (j % lg_conf.room_size == 0) {
                    lg_pubs[lg_npubs++] = lg_nconns - 1;
                }
            }

            lg_child(p, pc[0], pr[1]);
        }

        close(pc[0]);
        close(pr[1]);
        cmd[p] = pc[1];
        res[p] = pr[0];
    }

    /* connect everything */
    t0 = lg_now_us();

    for (p = 0; p < lg_conf.procs; p++) {
        if (lg_write_full(cmd[p], "C", 1) == -1) {
            exit(2);
        }
    }

    for (p = 0; p < lg_conf.procs; p++) {
        if (lg_read_full(res[p], line, 1) == -1) {
            fprintf(stderr, "loadgen: client %u died\n", p);
            exit(2);
        }
    }

    t1 = lg_now_us();
    conn_s = (t1 - t0) / 1e6;

    /* let the servers settle (timers, lazy frees) before measuring */
    sleep(lg_conf.fanout ? 2
                         : (lg_conf.idle > 0 ? (unsigned) lg_conf.idle : 5));

    sock1 = lg_sockstat_kb(&inuse1);
    mem1 = lg_mem_kb(lg_conf.pids, lg_conf.npids, "Pss:");
    x1 = lg_mem_kb(lg_conf.xpids, lg_conf.nxpids, "Pss:");
    m1 = lg_mem_kb(lg_conf.mpids, lg_conf.nmpids, "Pss:");

    printf("conns %u\n", lg_conf.conns);
    printf("procs %u\n", lg_conf.procs);
    printf("connect_seconds %.3f\n", conn_s);
    printf("server_pss_kb_before %llu\n", (unsigned long long) mem0);
    printf("server_pss_kb_after %llu\n", (unsigned long long) mem1);
    printf("aux_pss_kb_before %llu\n", (unsigned long long) x0);
    printf("aux_pss_kb_after %llu\n", (unsigned long long) x1);
    printf("db_pss_kb_before %llu\n", (unsigned long long) m0);
    printf("db_pss_kb_after %llu\n", (unsigned long long) m1);
    printf("sockstat_mem_kb_before %llu\n", (unsigned long long) sock0);
    printf("sockstat_mem_kb_after %llu\n", (unsigned long long) sock1);
    printf("tcp_inuse_before %llu\n", (unsigned long long) inuse0);
    printf("tcp_inuse_after %llu\n", (unsigned long long) inuse1);

    /* publish: warm-up, the measured window, then a drain */
    ps = lg_now_us() + 200000;
    w0 = ps + (uint64_t) (lg_conf.warmup * 1e6);
    w1 = w0 + (uint64_t) (lg_conf.duration * 1e6);
    pe = lg_conf.overload ? w1 : w1 + 500000;

    for (p = 0; p < lg_conf.procs; p++) {
        if (lg_conf.fanout) {
            n = snprintf(line, sizeof(line), "P %llu %llu %llu %llu",
                         (unsigned long long) ps, (unsigned long long) pe,
                         (unsigned long long) w0, (unsigned long long) w1);
        } else {
            n = snprintf(line, sizeof(line), "Q");
        }

        if (lg_write_full(cmd[p], line, n) == -1) {
            exit(2);
        }
    }

    cpu0 = 0;
    mcpu0 = 0;
    scpu0 = 0;
    rq0 = 0;
    mrq0 = 0;
    crq0 = 0;

    if (lg_conf.fanout) {
        while (lg_now_us() < w0) {
            usleep(1000);
        }
        cpu0 = lg_cpu_seconds(lg_conf.pids, lg_conf.npids, 0);
        scpu0 = lg_cpu_seconds(lg_conf.pids, lg_conf.npids, 1);
        mcpu0 = lg_cpu_seconds(lg_conf.mpids, lg_conf.nmpids, 0);
        rq0 = lg_runq_seconds(lg_conf.pids, lg_conf.npids);
        mrq0 = lg_runq_seconds(lg_conf.mpids, lg_conf.nmpids);
        crq0 = lg_runq_seconds(kids, (int) lg_conf.procs);

        lg_ticks(w0, w1);
    }

    cpu1 = lg_cpu_seconds(lg_conf.pids, lg_conf.npids, 0);
    scpu1 = lg_cpu_seconds(lg_conf.pids, lg_conf.npids, 1);
    mcpu1 = lg_cpu_seconds(lg_conf.mpids, lg_conf.nmpids, 0);
    rq1 = lg_runq_seconds(lg_conf.pids, lg_conf.npids);
    mrq1 = lg_runq_seconds(lg_conf.mpids, lg_conf.nmpids);
    crq1 = lg_runq_seconds(kids, (int) lg_conf.procs);

    all = lg_alloc(sizeof(lg_stats_t));
    {
        lg_stats_t  *one = lg_alloc(sizeof(lg_stats_t));

        for (p = 0; p < lg_conf.procs; p++) {
            if (lg_read_full(res[p], one, sizeof(lg_stats_t)) == -1) {
                fprintf(stderr, "loadgen: client %u died\n", p);
                exit(2);
            }

            all->ready += one->ready;
            all->failed += one->failed;
            all->closed += one->closed;
            all->sent += one->sent;
            all->send_errors += one->send_errors;
            all->server_errors += one->server_errors;
            all->refused += one->refused;
            all->received += one->received;
            all->in_window += one->in_window;
            all->ok_in_window += one->ok_in_window;
            all->gaps += one->gaps;
            all->dups += one->dups;
            all->foreign += one->foreign;
            all->expected += one->expected;
            all->cpu_us += one->cpu_us;
            all->sleeps += one->sleeps;
            all->asked += one->asked;
            all->not_sent += one->not_sent;

            for (k = 0; k < LG_HIST_SIZE; k++) {
                all->hist[k] += one->hist[k];
                all->ack_hist[k] += one->ack_hist[k];
                all->refuse_hist[k] += one->refuse_hist[k];
            }
        }

        free(one);
    }

    printf("ready %llu\n", (unsigned long long) all->ready);
    printf("failed %llu\n", (unsigned long long) all->failed);

    if (lg_conf.overload) {
        lg_ov_report(all, w1 - w0, cpu1 - cpu0, scpu1 - scpu0,
                     mcpu1 - mcpu0);

    } else if (lg_conf.fanout) {
        static const double  q[] = { 0.5, 0.99, 0.999, 1.0 };
        static const char   *qn[] = { "p50", "p99", "p999", "max" };

        printf("closed %llu\n", (unsigned long long) all->closed);
        printf("published %llu\n", (unsigned long long) all->sent);
        printf("expected %llu\n", (unsigned long long) all->expected);
        printf("received %llu\n", (unsigned long long) all->received);
        printf("lost %lld\n",
               (long long) all->expected - (long long) all->received);
        printf("gaps %llu\n", (unsigned long long) all->gaps);
        printf("dups %llu\n", (unsigned long long) all->dups);
        printf("foreign %llu\n", (unsigned long long) all->foreign);
        printf("server_errors %llu\n",
               (unsigned long long) all->server_errors);
        printf("refused %llu\n", (unsigned long long) all->refused);
        printf("send_errors %llu\n", (unsigned long long) all->send_errors);
        printf("window_seconds %.3f\n", (w1 - w0) / 1e6);
        printf("window_deliveries %llu\n",
               (unsigned long long) all->in_window);
        printf("window_ok %llu\n", (unsigned long long) all->ok_in_window);
        printf("server_cpu_seconds %.3f\n", cpu1 - cpu0);
        printf("server_sys_cpu_seconds %.3f\n", scpu1 - scpu0);
        printf("db_cpu_seconds %.3f\n", mcpu1 - mcpu0);
        printf("client_cpu_seconds %.3f\n", all->cpu_us / 1e6);
        printf("client_sleeps %llu\n", (unsigned long long) all->sleeps);
        printf("not_sent %llu\n", (unsigned long long) all->not_sent);
        printf("server_runq_seconds %.3f\n", rq1 - rq0);
        printf("db_runq_seconds %.3f\n", mrq1 - mrq0);
        printf("client_runq_seconds %.3f\n", crq1 - crq0);

        total = all->in_window;

        for (i = 0; i < 4; i++) {
            acc = 0;

            for (k = 0; k < LG_HIST_SIZE; k++) {
                acc += all->hist[k];
                if (total && acc >= (uint64_t) (q[i] * total + 0.5)
                    && acc > 0)
                {
                    break;
                }
            }

            printf("latency_%s_us %llu\n", qn[i],
                   total ? (unsigned long long) lg_hist_value(
                               k < LG_HIST_SIZE ? k : LG_HIST_SIZE - 1)
                         : 0ULL);
        }

        /* ours: a publisher's send to its ack (stored, not yet out) */
        lg_print_quantiles("commit", all->ack_hist);
    }

    fflush(stdout);

    for (p = 0; p < lg_conf.procs; p++) {
        (void) lg_write_full(cmd[p], "Q", 1);
        close(cmd[p]);
    }

    for (p = 0; p < lg_conf.procs; p++) {
        waitpid(kids[p], NULL, 0);
    }

    return 0;
}
