/*
 * Copyright (C) ngx_chat_module authors
 *
 * The fan-out ceiling of tools/bench: the cheapest WebSocket fan-out
 * server we can write, measured by the same load generator in the same
 * run as the real servers.  It does nothing but what a delivery needs:
 *
 *   - accept, read the upgrade request, answer 101 with the RFC 6455
 *     Sec-WebSocket-Accept (SHA-1 and base64 from OpenSSL);
 *   - take the room from the path's trailing number ("/ps/room17" is
 *     room 17: loadgen's nchan protocol, which it speaks);
 *   - on a text frame from a client, build one unmasked frame and write
 *     that same buffer to every socket of the room, the sender included
 *     (as nchan's pubsub does).
 *
 * No authentication, no parsing of the payload, no storage.  One
 * single-threaded epoll loop per worker; with -w N the workers are
 * forked, each listens on the port with SO_REUSEPORT (as NGINX's
 * "reuseport"), and a worker forwards each published frame to the others
 * over a Unix datagram socket so that every room reaches all its
 * sockets, whichever worker accepted them (one extra write per message
 * and worker, none per delivery).
 *
 *   ceiling-fanout [-a 127.0.0.1] -p PORT [-w WORKERS] [-g NS]
 *
 * -g NS spins NS nanoseconds of user time between two writes of a
 * message (a test of the bench's: do frames further apart cost the
 * kernel more per delivery?); 0 by default.
 */


#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define CF_MAX_WORKERS      64
#define CF_RBUF_SIZE        2048
#define CF_MAX_FRAME        1024
#define CF_GUID             "258EAFA5-E914-47DA-95CA-C5AB0DC11B85"


typedef struct {
    int         fd;
    int         open;           /* upgraded */
    uint32_t    room;
    uint32_t    slot;           /* index in its room's array */
    uint32_t    rlen;
    uint32_t    wlen;
    u_char     *wbuf;           /* what the socket did not take */
    u_char      rbuf[CF_RBUF_SIZE];
} cf_conn_t;


typedef struct {
    cf_conn_t **subs;
    uint32_t    n;
    uint32_t    cap;
} cf_room_t;


static int          cf_ep;
static int          cf_worker;
static int          cf_nworkers = 1;
static long         cf_gap_ns;      /* -g: spun between two writes */
static int          cf_ipc[CF_MAX_WORKERS][2];  /* [i][0]: worker i reads */
static cf_room_t   *cf_rooms;
static uint32_t     cf_nrooms;
static pid_t        cf_children[CF_MAX_WORKERS];
static cf_conn_t    cf_ipc_conn;                /* marks the IPC socket */
static cf_conn_t    cf_listen_conn;             /* marks the listener */


static void *
cf_alloc(size_t size)
{
    void  *p;

    p = calloc(1, size);
    if (p == NULL) {
        fprintf(stderr, "ceiling-fanout: calloc(%zu) failed\n", size);
        exit(2);
    }

    return p;
}


static void
cf_close(cf_conn_t *c)
{
    cf_room_t  *r;

    if (c->open) {
        r = &cf_rooms[c->room];
        r->n--;
        r->subs[c->slot] = r->subs[r->n];
        r->subs[c->slot]->slot = c->slot;
    }

    close(c->fd);
    free(c->wbuf);
    free(c);
}


static int
cf_flush(cf_conn_t *c)
{
    ssize_t  n;

    while (c->wlen) {
        n = write(c->fd, c->wbuf, c->wlen);

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return 0;
            }
            return -1;
        }

        c->wlen -= n;
        memmove(c->wbuf, c->wbuf + n, c->wlen);
    }

    return 0;
}


/* write now; what the socket does not take waits for EPOLLOUT */
static int
cf_send(cf_conn_t *c, const u_char *p, size_t len)
{
    ssize_t  n;
    u_char  *b;

    if (c->wlen == 0) {
        n = write(c->fd, p, len);

        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                return -1;
            }
            n = 0;
        }

        if ((size_t) n == len) {
            return 0;
        }

        p += n;
        len -= n;
    }

    b = realloc(c->wbuf, c->wlen + len);
    if (b == NULL) {
        return -1;
    }

    memcpy(b + c->wlen, p, len);
    c->wbuf = b;
    c->wlen += len;

    return 0;
}


/* user time between two writes (-g): frames further apart, nothing else */
static void
cf_spin(long ns)
{
    struct timespec  t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);

    do {
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec
             < ns);
}


static void
cf_fanout(uint32_t room, const u_char *frame, size_t len)
{
    uint32_t    i;
    cf_room_t  *r;

    if (room >= cf_nrooms) {
        return;
    }

    r = &cf_rooms[room];

    /* a failed socket is closed by its own EPOLLHUP, not under this loop */
    for (i = 0; i < r->n; i++) {
        if (i && cf_gap_ns) {
            cf_spin(cf_gap_ns);
        }

        (void) cf_send(r->subs[i], frame, len);
    }
}


static void
cf_join(cf_conn_t *c, uint32_t room)
{
    cf_room_t  *r;
    uint32_t    n;

    if (room >= cf_nrooms) {
        n = room + 1 > cf_nrooms * 2 ? room + 1 : cf_nrooms * 2;
        cf_rooms = realloc(cf_rooms, n * sizeof(cf_room_t));
        if (cf_rooms == NULL) {
            fprintf(stderr, "ceiling-fanout: realloc() failed\n");
            exit(2);
        }
        memset(cf_rooms + cf_nrooms, 0,
               (n - cf_nrooms) * sizeof(cf_room_t));
        cf_nrooms = n;
    }

    r = &cf_rooms[room];

    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->subs = realloc(r->subs, r->cap * sizeof(cf_conn_t *));
        if (r->subs == NULL) {
            fprintf(stderr, "ceiling-fanout: realloc() failed\n");
            exit(2);
        }
    }

    c->room = room;
    c->slot = r->n;
    c->open = 1;
    r->subs[r->n++] = c;
}


/* 0: more bytes needed; -1: bad request; else bytes used */
static ssize_t
cf_handshake(cf_conn_t *c)
{
    int            n;
    char           out[256], key[128], *e, *k, *sp;
    u_char        *end;
    size_t         klen;
    uint32_t       room;
    unsigned char  sha[SHA_DIGEST_LENGTH], acc[64];

    end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (end == NULL) {
        return c->rlen == CF_RBUF_SIZE ? -1 : 0;
    }

    *end = '\0';

    /* "GET /anything<digits>[?...] HTTP/1.1" */
    sp = strchr((char *) c->rbuf + 4, ' ');
    if (sp == NULL) {
        return -1;
    }
    e = memchr(c->rbuf, '?', sp - (char *) c->rbuf);
    if (e == NULL) {
        e = sp;
    }
    while (e > (char *) c->rbuf && e[-1] >= '0' && e[-1] <= '9') {
        e--;
    }
    room = strtoul(e, NULL, 10);

    k = strcasestr((char *) c->rbuf, "\r\nSec-WebSocket-Key:");
    if (k == NULL) {
        return -1;
    }
    k += 20;
    while (*k == ' ') {
        k++;
    }
    klen = strcspn(k, " \r");
    if (klen == 0 || klen + sizeof(CF_GUID) > sizeof(key)) {
        return -1;
    }

    memcpy(key, k, klen);
    memcpy(key + klen, CF_GUID, sizeof(CF_GUID) - 1);
    SHA1((unsigned char *) key, klen + sizeof(CF_GUID) - 1, sha);
    EVP_EncodeBlock(acc, sha, SHA_DIGEST_LENGTH);

    n = snprintf(out, sizeof(out),
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n\r\n", acc);

    if (cf_send(c, (u_char *) out, n) == -1) {
        return -1;
    }

    cf_join(c, room);

    return end + 4 - c->rbuf;
}


/* 0: more bytes needed; -1: close; else bytes used */
static ssize_t
cf_frame(cf_conn_t *c, u_char *p, size_t len)
{
    int       opcode;
    size_t    hlen, i;
    uint64_t  plen;
    u_char    frame[4 + 4 + CF_MAX_FRAME], *mask, *out;

    if (len < 2) {
        return 0;
    }

    opcode = p[0] & 0x0f;
    plen = p[1] & 0x7f;
    hlen = 2;

    if (plen == 126) {
        if (len < 4) {
            return 0;
        }
        plen = ((uint64_t) p[2] << 8) | p[3];
        hlen = 4;

    } else if (plen == 127) {
        return -1;              /* no such publish in the bench */
    }

    if (!(p[1] & 0x80) || plen > CF_MAX_FRAME) {
        return -1;              /* clients must mask */
    }

    mask = p + hlen;
    hlen += 4;

    if (len < hlen + plen) {
        return 0;
    }

    if (opcode == 8) {
        return -1;
    }

    if (opcode != 1 && opcode != 2) {
        return hlen + plen;     /* pings, pongs: nothing to do */
    }

    /* frame = room (for the other workers) + header + unmasked payload */
    memcpy(frame, &c->room, 4);
    out = frame + 4;
    out[0] = 0x80 | opcode;
    if (plen < 126) {
        out[1] = (u_char) plen;
        out += 2;

    } else {
        out[1] = 126;
        out[2] = (u_char) (plen >> 8);
        out[3] = (u_char) plen;
        out += 4;
    }

    for (i = 0; i < plen; i++) {
        out[i] = p[hlen + i] ^ mask[i & 3];
    }
    out += plen;

    cf_fanout(c->room, frame + 4, out - frame - 4);

    for (i = 0; i < (size_t) cf_nworkers; i++) {
        if ((int) i != cf_worker) {
            (void) send(cf_ipc[i][1], frame, out - frame, MSG_DONTWAIT);
        }
    }

    return hlen + plen;
}


static void
cf_read(cf_conn_t *c)
{
    ssize_t  n, used;
    size_t   off;

    for ( ;; ) {
        n = read(c->fd, c->rbuf + c->rlen, CF_RBUF_SIZE - c->rlen);

        if (n == 0) {
            cf_close(c);
            return;
        }

        if (n < 0) {
            if (errno == EAGAIN) {
                return;
            }
            if (errno == EINTR) {
                continue;
            }
            cf_close(c);
            return;
        }

        c->rlen += n;
        off = 0;

        if (!c->open) {
            used = cf_handshake(c);
            if (used == -1) {
                cf_close(c);
                return;
            }
            off = used;
        }

        while (c->open && off < c->rlen) {
            used = cf_frame(c, c->rbuf + off, c->rlen - off);
            if (used == -1) {
                cf_close(c);
                return;
            }
            if (used == 0) {
                break;
            }
            off += used;
        }

        c->rlen -= off;
        memmove(c->rbuf, c->rbuf + off, c->rlen);

        if (c->rlen == CF_RBUF_SIZE) {
            cf_close(c);
            return;
        }
    }
}


static void
cf_accept(int ls)
{
    int                  fd, one;
    cf_conn_t           *c;
    struct epoll_event   ev;

    for ( ;; ) {
        fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
        if (fd == -1) {
            return;
        }

        one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        c = cf_alloc(sizeof(cf_conn_t));
        c->fd = fd;

        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = c;

        if (epoll_ctl(cf_ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
            close(fd);
            free(c);
        }
    }
}


static void
cf_ipc_read(int fd)
{
    ssize_t  n;
    uint32_t room;
    u_char   buf[4 + 4 + CF_MAX_FRAME];

    for ( ;; ) {
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 4) {
            return;
        }
        memcpy(&room, buf, 4);
        cf_fanout(room, buf + 4, n - 4);
    }
}


static int
cf_listen(const char *addr, int port)
{
    int                 fd, one;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd == -1) {
        perror("ceiling-fanout: socket()");
        exit(2);
    }

    one = 1;
    (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    (void) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        fprintf(stderr, "ceiling-fanout: bad address %s\n", addr);
        exit(2);
    }

    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        || listen(fd, 4096) == -1)
    {
        perror("ceiling-fanout: bind()/listen()");
        exit(2);
    }

    return fd;
}


static void
cf_run(const char *addr, int port)
{
    int                  i, n, ls;
    cf_conn_t           *c;
    struct epoll_event   ev, evs[512];

    ls = cf_listen(addr, port);

    cf_ep = epoll_create1(0);
    if (cf_ep == -1) {
        perror("ceiling-fanout: epoll_create1()");
        exit(2);
    }

    ev.events = EPOLLIN;
    ev.data.ptr = &cf_listen_conn;
    if (epoll_ctl(cf_ep, EPOLL_CTL_ADD, ls, &ev) == -1) {
        perror("ceiling-fanout: epoll_ctl()");
        exit(2);
    }

    if (cf_nworkers > 1) {
        ev.events = EPOLLIN;
        ev.data.ptr = &cf_ipc_conn;
        if (epoll_ctl(cf_ep, EPOLL_CTL_ADD, cf_ipc[cf_worker][0], &ev)
            == -1)
        {
            perror("ceiling-fanout: epoll_ctl()");
            exit(2);
        }
    }

    for ( ;; ) {
        n = epoll_wait(cf_ep, evs, 512, -1);

        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;

            if (c == &cf_listen_conn) {
                cf_accept(ls);
                continue;
            }

            if (c == &cf_ipc_conn) {
                cf_ipc_read(cf_ipc[cf_worker][0]);
                continue;
            }

            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                cf_close(c);
                continue;
            }

            if (evs[i].events & EPOLLOUT) {
                if (cf_flush(c) == -1) {
                    cf_close(c);
                    continue;
                }
            }

            if (evs[i].events & (EPOLLIN | EPOLLRDHUP)) {
                cf_read(c);
            }
        }
    }
}


static void
cf_stop(int signo)
{
    int  i;

    for (i = 0; i < cf_nworkers; i++) {
        if (cf_children[i] > 0) {
            kill(cf_children[i], SIGTERM);
        }
    }

    /* reaped here: whoever stops the master finds no worker left */
    for (i = 0; i < cf_nworkers; i++) {
        if (cf_children[i] > 0) {
            (void) waitpid(cf_children[i], NULL, 0);
        }
    }

    _exit(0);
}


int
main(int argc, char **argv)
{
    int            opt, i, port = 0, sz;
    pid_t          pid;
    const char    *addr = "127.0.0.1";
    struct rlimit  rl;

    while ((opt = getopt(argc, argv, "a:p:w:g:")) != -1) {
        switch (opt) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'g':
            cf_gap_ns = atol(optarg);
            break;
        case 'w':
            cf_nworkers = atoi(optarg);
            break;
        default:
            goto usage;
        }
    }

    if (port <= 0 || cf_nworkers < 1 || cf_nworkers > CF_MAX_WORKERS) {
        goto usage;
    }

    signal(SIGPIPE, SIG_IGN);

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }

    for (i = 0; i < cf_nworkers; i++) {
        if (socketpair(AF_UNIX, SOCK_DGRAM, 0, cf_ipc[i]) == -1) {
            perror("ceiling-fanout: socketpair()");
            return 2;
        }
        sz = 4 * 1024 * 1024;
        (void) setsockopt(cf_ipc[i][1], SOL_SOCKET, SO_SNDBUF, &sz,
                          sizeof(sz));
        (void) setsockopt(cf_ipc[i][0], SOL_SOCKET, SO_RCVBUF, &sz,
                          sizeof(sz));
    }

    /* the workers are children, as NGINX's: the bench reads their CPU */
    for (i = 0; i < cf_nworkers; i++) {
        pid = fork();
        if (pid == -1) {
            perror("ceiling-fanout: fork()");
            cf_stop(0);
        }
        if (pid == 0) {
            signal(SIGTERM, SIG_DFL);
            cf_worker = i;
            cf_run(addr, port);
        }
        cf_children[i] = pid;
    }

    signal(SIGTERM, cf_stop);
    signal(SIGINT, cf_stop);

    /* one worker gone stops the server: a half-served room is no ceiling */
    (void) wait(NULL);
    fprintf(stderr, "ceiling-fanout: a worker exited\n");
    cf_stop(0);

    return 1;

usage:

    fprintf(stderr,
            "usage: ceiling-fanout [-a ADDR] -p PORT [-w N] [-g NS]\n");
    return 2;
}
