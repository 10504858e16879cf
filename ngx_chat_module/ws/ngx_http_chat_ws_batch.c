/*
 * Copyright (C) ngx_chat_module authors
 *
 * A message's frame to the sockets of a worker in one system call.
 *
 * A fan-out writes one frame to each of hundreds of sockets.  One send()
 * each spaces the writes by a system call's way in and out and by the
 * loop's work between them, and the readers, woken by one write, sleep
 * again before the next: a wakeup per frame or two (the bench's "sleeps
 * per delivery").  Here the sends of a message are queued in an
 * io_uring and submitted together: the kernel runs them back to back, as
 * the fan-out ceiling's tight loop does.
 *
 * Each send carries MSG_DONTWAIT, so the kernel tries it at once and
 * says how much went, as send() would, instead of waiting for room: all
 * of them complete within the submitting call, and nothing is left in
 * flight once the flush returns.  A socket with something queued, or not
 * ready for writing, is written the usual way (its order kept), and so
 * is a socket whose sends are not the kernel's alone (TLS, Socket.IO's
 * polling).  Without
 * io_uring (an older kernel, a sandbox that refuses it) every send is
 * the usual one.
 */


#include "ngx_http_chat_ws.h"

#if (NGX_LINUX)
#include <linux/io_uring.h>
#endif


/* kernel headers of 5.18 or later: every send of a batch submitted */
#if (NGX_LINUX) && defined IORING_SETUP_SUBMIT_ALL

#include <sys/mman.h>
#include <sys/syscall.h>


#define NGX_HTTP_CHAT_WS_BATCH  256     /* sends in one call */
#define NGX_HTTP_CHAT_WS_RETRY  10000   /* ms, after a refused setup */


typedef struct {
    ngx_http_chat_ws_t       *ws;
    ngx_http_chat_ws_buf_t   *buf;
} ngx_http_chat_ws_batched_t;


static ngx_int_t ngx_http_chat_ws_batch_init(void);


static int                         ngx_http_chat_ws_ring = -2;  /* unset */
static ngx_msec_t                  ngx_http_chat_ws_retry;
static struct io_uring_sqe        *ngx_http_chat_ws_sqes;
static unsigned                   *ngx_http_chat_ws_sq_tail;
static unsigned                   *ngx_http_chat_ws_sq_mask;
static unsigned                   *ngx_http_chat_ws_sq_array;
static unsigned                   *ngx_http_chat_ws_cq_head;
static unsigned                   *ngx_http_chat_ws_cq_tail;
static unsigned                   *ngx_http_chat_ws_cq_mask;
static struct io_uring_cqe        *ngx_http_chat_ws_cqes;
static ngx_http_chat_ws_batched_t  ngx_http_chat_ws_batched[
                                       NGX_HTTP_CHAT_WS_BATCH];
static ngx_uint_t                  ngx_http_chat_ws_nbatched;


ngx_int_t
ngx_http_chat_ws_batch_add(ngx_http_chat_ws_t *ws,
    ngx_http_chat_ws_buf_t *buf)
{
    unsigned                     tail, i;
    ngx_connection_t            *c;
    struct io_uring_sqe         *sqe;
    ngx_http_chat_ws_batched_t  *b;

    c = ws->connection;

    if (ngx_http_chat_ws_ring == -2
        && (ngx_http_chat_ws_retry == 0
            || (ngx_msec_int_t) (ngx_current_msec - ngx_http_chat_ws_retry)
               >= 0))
    {
        (void) ngx_http_chat_ws_batch_init();
    }

    /*
     * Only a plain TCP socket's send is the kernel's alone: TLS's goes
     * through OpenSSL, a Socket.IO polling session's is no socket at all
     */
    if (ngx_http_chat_ws_ring < 0 || ws->held || ws->out || ws->close_sent
        || ws->destroy || !c->write->ready || c->send != ngx_io.send
        || c->fd == (ngx_socket_t) -1)
    {
        return ngx_http_chat_ws_send_buf(ws, buf);
    }

    if (ngx_http_chat_ws_nbatched == NGX_HTTP_CHAT_WS_BATCH) {
        ngx_http_chat_ws_batch_flush();

        if (ngx_http_chat_ws_ring < 0) {
            return ngx_http_chat_ws_send_buf(ws, buf);
        }
    }

    tail = *ngx_http_chat_ws_sq_tail;
    i = tail & *ngx_http_chat_ws_sq_mask;

    sqe = &ngx_http_chat_ws_sqes[i];
    ngx_memzero(sqe, sizeof(struct io_uring_sqe));
    sqe->opcode = IORING_OP_SEND;
    sqe->fd = c->fd;
    sqe->addr = (uintptr_t) buf->data;
    sqe->len = buf->len;
    sqe->msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
    sqe->user_data = ngx_http_chat_ws_nbatched;

    ngx_http_chat_ws_sq_array[i] = i;
    __atomic_store_n(ngx_http_chat_ws_sq_tail, tail + 1, __ATOMIC_RELEASE);

    b = &ngx_http_chat_ws_batched[ngx_http_chat_ws_nbatched++];
    b->ws = ws;
    b->buf = buf;
    buf->refs++;

    return NGX_OK;
}


/*
 * The sends go; each outcome is then told to its socket as c->send()'s
 * would be.  The sockets are the caller's to keep until this returns: a
 * fan-out holds its channel, and a socket that fails has its free posted.
 */
void
ngx_http_chat_ws_batch_flush(void)
{
    int                          res;
    ssize_t                      n;
    unsigned                     head, tail, want, got;
    ngx_uint_t                   i;
    struct io_uring_cqe         *cqe;
    ngx_http_chat_ws_batched_t  *b;

    want = ngx_http_chat_ws_nbatched;

    if (want == 0) {
        return;
    }

    /*
     * With MSG_DONTWAIT each send completes as it is submitted: waiting
     * for all of them does not wait.
     */
    (void) syscall(__NR_io_uring_enter, ngx_http_chat_ws_ring, want, want,
                   IORING_ENTER_GETEVENTS, NULL, 0);

    got = 0;
    head = *ngx_http_chat_ws_cq_head;
    tail = __atomic_load_n(ngx_http_chat_ws_cq_tail, __ATOMIC_ACQUIRE);

    while (head != tail) {
        cqe = &ngx_http_chat_ws_cqes[head & *ngx_http_chat_ws_cq_mask];
        i = (ngx_uint_t) cqe->user_data;
        res = cqe->res;
        head++;

        if (i >= want) {
            continue;
        }

        got++;
        b = &ngx_http_chat_ws_batched[i];

        if (res >= 0) {
            n = res;

        } else if (res == -EAGAIN || res == -EINTR) {
            n = NGX_AGAIN;

        } else {
            /* logged as NGINX's own send() logs it */
            (void) ngx_connection_error(b->ws->connection, -res,
                                        "send() failed");
            n = NGX_ERROR;
        }

        ngx_http_chat_ws_sent(b->ws, b->buf, n);
        ngx_http_chat_ws_buf_release(b->buf);
        b->ws = NULL;
    }

    __atomic_store_n(ngx_http_chat_ws_cq_head, head, __ATOMIC_RELEASE);

    if (got != want) {
        /*
         * Not seen here: the call failed before it submitted them all.
         * What it did not take is sent now, one by one; nothing taken is
         * still in flight (MSG_DONTWAIT: each send ends within the call,
         * so none goes twice and no buffer is released under the kernel).
         */
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "chat ws: %ui of %ui batched sends completed, "
                      "batching off", (ngx_uint_t) got, (ngx_uint_t) want);

        ngx_http_chat_ws_ring = -1;

        for (i = 0; i < want; i++) {
            b = &ngx_http_chat_ws_batched[i];

            if (b->ws) {
                (void) ngx_http_chat_ws_send_buf(b->ws, b->buf);
                ngx_http_chat_ws_buf_release(b->buf);
                b->ws = NULL;
            }
        }
    }

    ngx_http_chat_ws_nbatched = 0;
}


static ngx_int_t
ngx_http_chat_ws_batch_init(void)
{
    int                      fd;
    size_t                   sq_size, cq_size, sqes_size;
    u_char                  *sq, *cq;
    ngx_err_t                err;
    struct io_uring_sqe     *sqes;
    struct io_uring_params   p;

    ngx_http_chat_ws_ring = -1;

    ngx_memzero(&p, sizeof(struct io_uring_params));

    /* every send submitted even after one that fails */
    p.flags = IORING_SETUP_SUBMIT_ALL;

    fd = syscall(__NR_io_uring_setup, NGX_HTTP_CHAT_WS_BATCH, &p);
    if (fd == -1) {
        err = ngx_errno;

        if (err == NGX_EMFILE || err == NGX_ENFILE || err == NGX_ENOMEM
            || err == NGX_EAGAIN)
        {
            /* out of files or memory for now: tried again later */
            ngx_http_chat_ws_ring = -2;
            ngx_http_chat_ws_retry = ngx_current_msec
                                     + NGX_HTTP_CHAT_WS_RETRY;
        }

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, err,
                      "chat ws: no io_uring, fan-out sends one by one");
        return NGX_ERROR;
    }

    sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);

    sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    cq = mmap(NULL, cq_size, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    sqes = mmap(NULL, sqes_size, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);

    if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED
        || p.sq_entries < NGX_HTTP_CHAT_WS_BATCH)
    {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "chat ws: io_uring not mapped, fan-out sends one "
                      "by one");

        if (sq != MAP_FAILED) {
            (void) munmap(sq, sq_size);
        }

        if (cq != MAP_FAILED) {
            (void) munmap(cq, cq_size);
        }

        if (sqes != MAP_FAILED) {
            (void) munmap(sqes, sqes_size);
        }

        (void) close(fd);
        return NGX_ERROR;
    }

    ngx_http_chat_ws_sqes = sqes;
    ngx_http_chat_ws_sq_tail = (unsigned *) (sq + p.sq_off.tail);
    ngx_http_chat_ws_sq_mask = (unsigned *) (sq + p.sq_off.ring_mask);
    ngx_http_chat_ws_sq_array = (unsigned *) (sq + p.sq_off.array);
    ngx_http_chat_ws_cq_head = (unsigned *) (cq + p.cq_off.head);
    ngx_http_chat_ws_cq_tail = (unsigned *) (cq + p.cq_off.tail);
    ngx_http_chat_ws_cq_mask = (unsigned *) (cq + p.cq_off.ring_mask);
    ngx_http_chat_ws_cqes = (struct io_uring_cqe *) (cq + p.cq_off.cqes);

    ngx_http_chat_ws_ring = fd;

    return NGX_OK;
}


#else


ngx_int_t
ngx_http_chat_ws_batch_add(ngx_http_chat_ws_t *ws,
    ngx_http_chat_ws_buf_t *buf)
{
    return ngx_http_chat_ws_send_buf(ws, buf);
}


void
ngx_http_chat_ws_batch_flush(void)
{
}


#endif
