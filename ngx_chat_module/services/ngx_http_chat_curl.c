/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_http_chat_curl.h"


#if (LIBCURL_VERSION_NUM < 0x075500)
#error "ngx_chat_module needs libcurl 7.85.0 or newer (CURLOPT_PROTOCOLS_STR)"
#endif


#define NGX_HTTP_CHAT_CURL_MAX_BODY         65536
#define NGX_HTTP_CHAT_CURL_BODY_MIN         1024
#define NGX_HTTP_CHAT_CURL_TIMEOUT          10000
#define NGX_HTTP_CHAT_CURL_CONNECT_TIMEOUT  5000


/* the public request plus bookkeeping the callers need not see */

typedef struct {
    ngx_http_chat_curl_req_t    req;          /* must be first */
    size_t                      body_size;    /* allocated, with the NUL */
    unsigned                    active:1;     /* in the multi and queue */
    unsigned                    completing:1; /* inside done() */
} ngx_http_chat_curl_handle_t;


/*
 * A curl socket being watched.  uniq (the inode) tells whether the fd still
 * names the socket we registered: libcurl 7.88 closes sockets that fail or
 * are dropped while connecting with plain close() and reports REMOVE only
 * afterwards, by which time the fd number may name a new socket.
 */

typedef struct {
    ngx_connection_t           *connection;
    ngx_file_uniq_t             uniq;
    ngx_queue_t                 queue;
} ngx_http_chat_curl_socket_t;


static int ngx_http_chat_curl_socket_cb(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static int ngx_http_chat_curl_timer_cb(CURLM *multi, long timeout_ms,
    void *userp);
static int ngx_http_chat_curl_close_socket(void *clientp, curl_socket_t s);
static size_t ngx_http_chat_curl_write(char *ptr, size_t size, size_t nmemb,
    void *userdata);

static ngx_http_chat_curl_socket_t *ngx_http_chat_curl_socket_add(
    curl_socket_t s);
static ngx_http_chat_curl_socket_t *ngx_http_chat_curl_socket_find(
    curl_socket_t s);
static ngx_uint_t ngx_http_chat_curl_socket_alive(
    ngx_http_chat_curl_socket_t *sock);
static void ngx_http_chat_curl_socket_watch(ngx_connection_t *c, int what);
static void ngx_http_chat_curl_socket_release(
    ngx_http_chat_curl_socket_t *sock, ngx_uint_t flags);

static void ngx_http_chat_curl_event_handler(ngx_event_t *ev);
static void ngx_http_chat_curl_timer_handler(ngx_event_t *ev);
static void ngx_http_chat_curl_process_done(void);
static void ngx_http_chat_curl_finish(ngx_http_chat_curl_handle_t *h,
    CURLcode result);
static void ngx_http_chat_curl_free(ngx_http_chat_curl_handle_t *h);


static CURLM             *ngx_http_chat_curl_multi;
static ngx_uint_t         ngx_http_chat_curl_global;

/* the single worker timer libcurl asks for */
static ngx_event_t        ngx_http_chat_curl_timer;

/* timer debug logs read ev->data as a connection */
static ngx_connection_t   ngx_http_chat_curl_dummy;

/* started requests, ngx_http_chat_curl_req_t.queue */
static ngx_queue_t        ngx_http_chat_curl_requests;

/* watched curl sockets, ngx_http_chat_curl_socket_t.queue */
static ngx_queue_t        ngx_http_chat_curl_sockets;


ngx_int_t
ngx_http_chat_curl_init_process(ngx_cycle_t *cycle)
{
    CURLM     *multi;
    CURLcode   code;

    if (ngx_http_chat_curl_multi) {
        return NGX_OK;
    }

    ngx_queue_init(&ngx_http_chat_curl_requests);
    ngx_queue_init(&ngx_http_chat_curl_sockets);

    ngx_http_chat_curl_dummy.fd = (ngx_socket_t) -1;

    ngx_http_chat_curl_timer.handler = ngx_http_chat_curl_timer_handler;
    ngx_http_chat_curl_timer.data = &ngx_http_chat_curl_dummy;
    ngx_http_chat_curl_timer.log = cycle->log;

    /* a pending transfer must not delay a graceful worker shutdown */
    ngx_http_chat_curl_timer.cancelable = 1;

    if (!ngx_http_chat_curl_global) {
        code = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (code != CURLE_OK) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "curl_global_init() failed: %s",
                          curl_easy_strerror(code));
            return NGX_ERROR;
        }

        ngx_http_chat_curl_global = 1;
    }

    multi = curl_multi_init();
    if (multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "curl_multi_init() failed");
        return NGX_ERROR;
    }

    if (curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION,
                          ngx_http_chat_curl_socket_cb)
        != CURLM_OK
        || curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION,
                             ngx_http_chat_curl_timer_cb)
           != CURLM_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "curl_multi_setopt() failed");
        (void) curl_multi_cleanup(multi);
        return NGX_ERROR;
    }

    ngx_http_chat_curl_multi = multi;

    ngx_log_debug0(NGX_LOG_DEBUG_EVENT, cycle->log, 0, "chat curl init");

    return NGX_OK;
}


void
ngx_http_chat_curl_exit_process(ngx_cycle_t *cycle)
{
    CURLM                        *multi;
    CURLMcode                     rc;
    ngx_queue_t                  *q;
    ngx_http_chat_curl_socket_t  *sock;
    ngx_http_chat_curl_handle_t  *h;

    multi = ngx_http_chat_curl_multi;

    if (multi) {
        while (!ngx_queue_empty(&ngx_http_chat_curl_requests)) {
            q = ngx_queue_head(&ngx_http_chat_curl_requests);
            h = (ngx_http_chat_curl_handle_t *)
                    ngx_queue_data(q, ngx_http_chat_curl_req_t, queue);

            ngx_queue_remove(q);
            h->active = 0;

            (void) curl_multi_remove_handle(multi, h->req.easy);
            ngx_http_chat_curl_free(h);
        }

        /* callbacks run by the cleanup must not use the dying handle */
        ngx_http_chat_curl_multi = NULL;

        rc = curl_multi_cleanup(multi);
        if (rc != CURLM_OK) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "curl_multi_cleanup() failed: %s",
                          curl_multi_strerror(rc));
        }

        /* only sockets curl forgot to report REMOVE for are left */
        while (!ngx_queue_empty(&ngx_http_chat_curl_sockets)) {
            q = ngx_queue_head(&ngx_http_chat_curl_sockets);
            sock = ngx_queue_data(q, ngx_http_chat_curl_socket_t, queue);

            ngx_http_chat_curl_socket_release(sock,
                ngx_http_chat_curl_socket_alive(sock) ? 0 : NGX_CLOSE_EVENT);
        }

        if (ngx_http_chat_curl_timer.timer_set) {
            ngx_del_timer(&ngx_http_chat_curl_timer);
        }

        if (ngx_http_chat_curl_timer.posted) {
            ngx_delete_posted_event(&ngx_http_chat_curl_timer);
        }
    }

    if (ngx_http_chat_curl_global) {
        curl_global_cleanup();
        ngx_http_chat_curl_global = 0;
    }
}


ngx_http_chat_curl_req_t *
ngx_http_chat_curl_create(ngx_log_t *log, ngx_msec_t timeout)
{
    CURL                         *easy;
    CURLcode                      rc;
    ngx_msec_t                    connect;
    ngx_http_chat_curl_req_t     *req;
    ngx_http_chat_curl_handle_t  *h;

    h = ngx_calloc(sizeof(ngx_http_chat_curl_handle_t), log);
    if (h == NULL) {
        return NULL;
    }

    req = &h->req;
    req->log = log;
    req->max_body = NGX_HTTP_CHAT_CURL_MAX_BODY;

    easy = curl_easy_init();
    if (easy == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0, "curl_easy_init() failed");
        ngx_free(h);
        return NULL;
    }

    req->easy = easy;

    /* 0 would mean "no timeout" to curl: a request must always end */
    if (timeout == 0 || timeout == NGX_CONF_UNSET_MSEC) {
        timeout = NGX_HTTP_CHAT_CURL_TIMEOUT;
    }

    timeout = ngx_min(timeout, (ngx_msec_t) NGX_MAX_INT32_VALUE);
    connect = ngx_min(timeout, NGX_HTTP_CHAT_CURL_CONNECT_TIMEOUT);

    if ((rc = curl_easy_setopt(easy, CURLOPT_PRIVATE, h)) != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout))
           != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                                  (long) connect))
           != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->errbuf))
           != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
                                  ngx_http_chat_curl_write))
           != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_WRITEDATA, h)) != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION,
                                  ngx_http_chat_curl_close_socket))
           != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"))
           != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR,
                                  "http,https"))
           != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L))
           != CURLE_OK
        || (rc = curl_easy_setopt(easy, CURLOPT_USERAGENT, "ngx_chat_module"))
           != CURLE_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "curl_easy_setopt() failed: %s",
                      curl_easy_strerror(rc));
        ngx_http_chat_curl_free(h);
        return NULL;
    }

    return req;
}


ngx_int_t
ngx_http_chat_curl_add_header(ngx_http_chat_curl_req_t *req,
    const char *header)
{
    struct curl_slist  *list;

    /* curl sends custom headers verbatim: refuse header injection */
    if (strpbrk(header, "\r\n") != NULL) {
        ngx_log_error(NGX_LOG_ERR, req->log, 0,
                      "chat curl: header with CR or LF rejected");
        return NGX_ERROR;
    }

    list = curl_slist_append(req->headers, header);
    if (list == NULL) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "curl_slist_append() failed");
        return NGX_ERROR;
    }

    req->headers = list;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_curl_start(ngx_http_chat_curl_req_t *req,
    ngx_http_chat_curl_done_pt done, void *data)
{
    CURLcode                      code;
    CURLMcode                     rc;
    ngx_http_chat_curl_handle_t  *h;

    h = (ngx_http_chat_curl_handle_t *) req;

    if (ngx_http_chat_curl_multi == NULL) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "chat curl: not initialized in this process");
        return NGX_ERROR;
    }

    if (h->active || h->completing) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "chat curl: request started twice");
        return NGX_ERROR;
    }

    if (req->headers) {
        code = curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers);
        if (code != CURLE_OK) {
            ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                          "curl_easy_setopt(CURLOPT_HTTPHEADER) failed: %s",
                          curl_easy_strerror(code));
            return NGX_ERROR;
        }
    }

    req->done = done;
    req->data = data;

    ngx_queue_insert_tail(&ngx_http_chat_curl_requests, &req->queue);

    /* runs no transfer, only reports a 0 ms timeout to the timer callback */
    rc = curl_multi_add_handle(ngx_http_chat_curl_multi, req->easy);
    if (rc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "curl_multi_add_handle() failed: %s",
                      curl_multi_strerror(rc));
        ngx_queue_remove(&req->queue);
        return NGX_ERROR;
    }

    h->active = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, req->log, 0,
                   "chat curl start: %p", req);

    return NGX_OK;
}


void
ngx_http_chat_curl_cancel(ngx_http_chat_curl_req_t *req)
{
    CURLMcode                     rc;
    ngx_http_chat_curl_handle_t  *h;

    h = (ngx_http_chat_curl_handle_t *) req;

    /* cancelled from its own done(): it is freed once done() returns */
    if (h->completing) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, req->log, 0,
                   "chat curl cancel: %p active:%d", req, (int) h->active);

    if (h->active) {
        rc = curl_multi_remove_handle(ngx_http_chat_curl_multi, req->easy);

        if (rc != CURLM_OK) {
            /*
             * curl still owns the easy handle, so freeing it now would be
             * a use after free: detach the caller instead and let the
             * completion free the request silently
             */

            ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                          "curl_multi_remove_handle() failed: %s",
                          curl_multi_strerror(rc));

            req->done = NULL;
            req->data = NULL;
            return;
        }

        ngx_queue_remove(&req->queue);
        h->active = 0;
    }

    ngx_http_chat_curl_free(h);
}


static int
ngx_http_chat_curl_socket_cb(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_http_chat_curl_socket_t  *sock, *stale;

    sock = socketp;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "chat curl socket: fd:%d what:%d sock:%p", s, what, sock);

    /*
     * Never return -1: curl would mark the whole multi handle dead and
     * fail every transfer of this worker for good.  A socket left
     * unwatched only makes its own transfer run into CURLOPT_TIMEOUT_MS.
     */

    if (sock && !ngx_http_chat_curl_socket_alive(sock)) {

        /*
         * curl closed the socket before this call: close() already removed
         * it from epoll/kqueue, and the fd number may now name another
         * socket, which must not be touched
         */

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                       "chat curl socket closed before REMOVE: fd:%d", s);

        ngx_http_chat_curl_socket_release(sock, NGX_CLOSE_EVENT);
        sock = NULL;

        if (ngx_http_chat_curl_multi) {
            (void) curl_multi_assign(ngx_http_chat_curl_multi, s, NULL);
        }
    }

    if (what == CURL_POLL_REMOVE) {
        if (sock) {
            ngx_http_chat_curl_socket_release(sock, 0);
        }

        return 0;
    }

    if (ngx_http_chat_curl_multi == NULL) {
        /* curl_multi_cleanup() in progress */
        return 0;
    }

    if (sock == NULL) {

        /* one watcher per fd number, whatever curl forgot to report */

        stale = ngx_http_chat_curl_socket_find(s);

        if (stale) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "chat curl: stale watcher for socket %d", s);

            ngx_http_chat_curl_socket_release(stale,
                ngx_http_chat_curl_socket_alive(stale) ? 0 : NGX_CLOSE_EVENT);
        }

        sock = ngx_http_chat_curl_socket_add(s);
        if (sock == NULL) {
            return 0;
        }
    }

    ngx_http_chat_curl_socket_watch(sock->connection, what);

    return 0;
}


static int
ngx_http_chat_curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_event_t  *ev;

    ev = &ngx_http_chat_curl_timer;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ev->log, 0,
                   "chat curl timer: %l", timeout_ms);

    /*
     * Always re-arm from scratch: ngx_add_timer() keeps an existing timer
     * that differs by less than NGX_TIMER_LAZY_DELAY, which would delay
     * curl by up to 300 ms.
     */

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (ev->posted) {
        ngx_delete_posted_event(ev);
    }

    if (timeout_ms < 0) {
        return 0;
    }

    if (timeout_ms == 0) {

        /*
         * Calling curl_multi_socket_action() from here is forbidden.  A 0 ms
         * timer could spin inside ngx_event_expire_timers() if curl keeps
         * asking for 0 from the handler, as ngx_current_msec does not move
         * there; the next loop iteration polls with a zero timeout instead.
         */

        ngx_post_event(ev, &ngx_posted_next_events);
        return 0;
    }

    ngx_add_timer(ev, (ngx_msec_t) timeout_ms);

    return 0;
}


static int
ngx_http_chat_curl_close_socket(void *clientp, curl_socket_t s)
{
    ngx_http_chat_curl_socket_t  *sock;

    /*
     * Connected sockets get REMOVE before this call and are not found;
     * otherwise stop watching now, before the fd number can be reused.
     */

    sock = ngx_http_chat_curl_socket_find(s);

    if (sock) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                       "chat curl close without REMOVE: fd:%d", s);

        /* a later callback for this fd must not get the freed watcher */
        if (ngx_http_chat_curl_multi) {
            (void) curl_multi_assign(ngx_http_chat_curl_multi, s, NULL);
        }

        ngx_http_chat_curl_socket_release(sock, NGX_CLOSE_EVENT);
    }

    if (ngx_close_socket(s) == -1) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_socket_errno,
                      ngx_close_socket_n " %d failed", s);
        return 1;
    }

    return 0;
}


static size_t
ngx_http_chat_curl_write(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    size_t                        n, len, need, alloc;
    u_char                       *p;
    ngx_http_chat_curl_req_t     *req;
    ngx_http_chat_curl_handle_t  *h;

    h = userdata;
    req = &h->req;

    /* size is always 1 for the write callback */
    n = size * nmemb;
    len = n;

    if (req->body_len >= req->max_body) {
        len = 0;
        req->truncated = 1;

    } else if (len > req->max_body - req->body_len) {
        len = req->max_body - req->body_len;
        req->truncated = 1;
    }

    if (len) {
        need = req->body_len + len + 1;

        if (need > h->body_size) {
            alloc = ngx_max(h->body_size * 2, NGX_HTTP_CHAT_CURL_BODY_MIN);
            alloc = ngx_max(alloc, need);

            if (alloc > req->max_body) {
                alloc = req->max_body + 1;
            }

            p = ngx_alloc(alloc, req->log);
            if (p == NULL) {
                return 0;
            }

            if (req->body) {
                ngx_memcpy(p, req->body, req->body_len);
                ngx_free(req->body);
            }

            req->body = p;
            h->body_size = alloc;
        }

        ngx_memcpy(req->body + req->body_len, ptr, len);
        req->body_len += len;
        req->body[req->body_len] = '\0';
    }

    if (req->truncated) {
        /* stop downloading what nobody will read: CURLE_WRITE_ERROR */
        return 0;
    }

    return n;
}


static ngx_http_chat_curl_socket_t *
ngx_http_chat_curl_socket_add(curl_socket_t s)
{
    CURLMcode                     rc;
    ngx_file_info_t               fi;
    ngx_connection_t             *c;
    ngx_http_chat_curl_socket_t  *sock;

    if (ngx_fd_info(s, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      ngx_fd_info_n " curl socket %d failed", s);
        return NULL;
    }

    sock = ngx_alloc(sizeof(ngx_http_chat_curl_socket_t), ngx_cycle->log);
    if (sock == NULL) {
        return NULL;
    }

    /* cached curl connections outlive requests: use the cycle log */

    c = ngx_get_connection(s, ngx_cycle->log);
    if (c == NULL) {
        ngx_free(sock);
        return NULL;
    }

    c->data = sock;
    c->read->handler = ngx_http_chat_curl_event_handler;
    c->write->handler = ngx_http_chat_curl_event_handler;
    c->read->log = c->log;
    c->write->log = c->log;

    sock->connection = c;
    sock->uniq = ngx_file_uniq(&fi);

    rc = curl_multi_assign(ngx_http_chat_curl_multi, s, sock);
    if (rc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "curl_multi_assign(%d) failed: %s",
                      s, curl_multi_strerror(rc));
        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
        ngx_free(sock);
        return NULL;
    }

    ngx_queue_insert_tail(&ngx_http_chat_curl_sockets, &sock->queue);

    return sock;
}


static ngx_http_chat_curl_socket_t *
ngx_http_chat_curl_socket_find(curl_socket_t s)
{
    ngx_queue_t                  *q;
    ngx_http_chat_curl_socket_t  *sock;

    /* a handful of sockets per worker: a list walk is cheap enough */

    for (q = ngx_queue_head(&ngx_http_chat_curl_sockets);
         q != ngx_queue_sentinel(&ngx_http_chat_curl_sockets);
         q = ngx_queue_next(q))
    {
        sock = ngx_queue_data(q, ngx_http_chat_curl_socket_t, queue);

        if (sock->connection->fd == s) {
            return sock;
        }
    }

    return NULL;
}


static ngx_uint_t
ngx_http_chat_curl_socket_alive(ngx_http_chat_curl_socket_t *sock)
{
    ngx_file_info_t  fi;

    if (ngx_fd_info(sock->connection->fd, &fi) == NGX_FILE_ERROR) {
        return 0;
    }

    return ngx_file_uniq(&fi) == sock->uniq;
}


static void
ngx_http_chat_curl_socket_watch(ngx_connection_t *c, int what)
{
    /*
     * Level-triggered: curl may leave data unread in a socket_action call
     * and expects to be told again, which edge-triggered epoll would not.
     * Failures are logged by the event module.
     */

    if (what & CURL_POLL_IN) {
        if (!c->read->active) {
            (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
        }

    } else if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (what & CURL_POLL_OUT) {
        if (!c->write->active) {
            (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
        }

    } else if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


static void
ngx_http_chat_curl_socket_release(ngx_http_chat_curl_socket_t *sock,
    ngx_uint_t flags)
{
    ngx_connection_t  *c;

    c = sock->connection;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, c->log, 0,
                   "chat curl release: fd:%d flags:%ui", c->fd, flags);

    /*
     * NGX_CLOSE_EVENT when the socket is (about to be) closed: the kernel
     * drops the registration itself, and no syscall may be made on an fd
     * number that can already name another socket
     */

    if (c->read->active || c->write->active) {
        if (ngx_del_conn) {
            (void) ngx_del_conn(c, flags);

        } else {
            if (c->read->active) {
                (void) ngx_del_event(c->read, NGX_READ_EVENT, flags);
            }

            if (c->write->active) {
                (void) ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
            }
        }
    }

    c->read->active = 0;
    c->write->active = 0;

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_queue_remove(&sock->queue);
    ngx_free(sock);

    /*
     * ngx_free_connection() still needs c->fd (cycle->files); fd = -1 then
     * makes the event loop skip events already fetched for it.  The socket
     * itself belongs to curl and is not closed here.
     */

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


static void
ngx_http_chat_curl_event_handler(ngx_event_t *ev)
{
    int                running;
    CURLMcode          rc;
    ngx_connection_t  *c;

    c = ev->data;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, ev->log, 0,
                   "chat curl %s event: fd:%d",
                   ev->write ? "write" : "read", c->fd);

    if (ngx_http_chat_curl_multi == NULL) {
        return;
    }

    /* the connection may be released from within this call */

    rc = curl_multi_socket_action(ngx_http_chat_curl_multi, c->fd,
                                  ev->write ? CURL_CSELECT_OUT
                                            : CURL_CSELECT_IN,
                                  &running);

    if (rc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "curl_multi_socket_action() failed: %s",
                      curl_multi_strerror(rc));
    }

    ngx_http_chat_curl_process_done();
}


static void
ngx_http_chat_curl_timer_handler(ngx_event_t *ev)
{
    int        running;
    CURLMcode  rc;

    ngx_log_debug0(NGX_LOG_DEBUG_EVENT, ev->log, 0, "chat curl timer fired");

    ev->timedout = 0;

    if (ngx_http_chat_curl_multi == NULL) {
        return;
    }

    rc = curl_multi_socket_action(ngx_http_chat_curl_multi,
                                  CURL_SOCKET_TIMEOUT, 0, &running);

    if (rc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "curl_multi_socket_action() failed: %s",
                      curl_multi_strerror(rc));
    }

    ngx_http_chat_curl_process_done();
}


static void
ngx_http_chat_curl_process_done(void)
{
    int        pending;
    CURL      *easy;
    char      *priv;
    CURLMsg   *msg;
    CURLcode   result;

    /*
     * Read one message at a time: done() may start or cancel requests, and
     * curl drops the pending message of a handle removed meanwhile.
     */

    while (ngx_http_chat_curl_multi) {

        msg = curl_multi_info_read(ngx_http_chat_curl_multi, &pending);
        if (msg == NULL) {
            return;
        }

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        /* msg does not survive curl_multi_remove_handle() */
        easy = msg->easy_handle;
        result = msg->data.result;

        priv = NULL;
        (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);

        if (priv == NULL) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "chat curl: completed transfer without request");
            (void) curl_multi_remove_handle(ngx_http_chat_curl_multi, easy);
            continue;
        }

        ngx_http_chat_curl_finish((ngx_http_chat_curl_handle_t *) priv,
                                  result);
    }
}


static void
ngx_http_chat_curl_finish(ngx_http_chat_curl_handle_t *h, CURLcode result)
{
    CURLMcode                  rc;
    ngx_http_chat_curl_req_t  *req;

    req = &h->req;

    req->result = result;

    if (curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status)
        != CURLE_OK)
    {
        req->status = 0;
    }

    /* errbuf is documented to be meaningful whenever result is not OK */
    if (result != CURLE_OK && req->errbuf[0] == '\0') {
        ngx_cpystrn((u_char *) req->errbuf,
                    (u_char *) curl_easy_strerror(result), CURL_ERROR_SIZE);
    }

    rc = curl_multi_remove_handle(ngx_http_chat_curl_multi, req->easy);
    if (rc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "curl_multi_remove_handle() failed: %s",
                      curl_multi_strerror(rc));
    }

    ngx_queue_remove(&req->queue);
    h->active = 0;

    if (result != CURLE_OK) {
        ngx_log_error(NGX_LOG_INFO, req->log, 0,
                      "chat curl: transfer failed: %s", req->errbuf);
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, req->log, 0,
                   "chat curl done: %p result:%d status:%l len:%uz trunc:%d",
                   req, (int) result, req->status, req->body_len,
                   (int) req->truncated);

    if (req->done) {
        h->completing = 1;
        req->done(req, req->data);
    }

    ngx_http_chat_curl_free(h);
}


static void
ngx_http_chat_curl_free(ngx_http_chat_curl_handle_t *h)
{
    /* the easy handle references the header list: clean it up first */

    if (h->req.easy) {
        curl_easy_cleanup(h->req.easy);
    }

    if (h->req.headers) {
        curl_slist_free_all(h->req.headers);
    }

    if (h->req.body) {
        ngx_free(h->req.body);
    }

    ngx_free(h);
}
