/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_http_chat_redis.h"


#define NGX_HTTP_CHAT_REDIS_BACKOFF_MIN  100

/* a connection lost sooner than this after connecting counts as a failure */
#define NGX_HTTP_CHAT_REDIS_STABLE       1000


typedef enum {
    NGX_HTTP_CHAT_REDIS_DISCONNECTED = 0,
    NGX_HTTP_CHAT_REDIS_CONNECTING,
    NGX_HTTP_CHAT_REDIS_CONNECTED
} ngx_http_chat_redis_state_e;


struct ngx_http_chat_redis_s {
    redisAsyncContext            *ac;
    ngx_connection_t             *conn;
    ngx_log_t                    *log;

    char                         *host;
    int                           port;

    ngx_msec_t                    connect_timeout;
    ngx_msec_t                    backoff;
    ngx_msec_t                    backoff_max;
    ngx_msec_t                    connected_at;

    ngx_event_t                   timeout_ev;   /* connect timeout, abort */
    ngx_event_t                   reconnect_ev;

    ngx_uint_t                    event_flags;
    ngx_uint_t                    failures;     /* since last connect */
    const char                   *reason;       /* of a teardown we started */

    ngx_http_chat_redis_state_e   state;

    ngx_http_chat_redis_connect_pt  on_connect;  /* pub/sub: subscribe */
    void                         *on_connect_data;
    ngx_http_chat_redis_reply_pt  sub_handler;
    void                         *sub_data;

    unsigned                      edge:1;       /* edge-triggered reads */
    unsigned                      quiet:1;      /* outage already logged */
    unsigned                      connected_once:1;
    unsigned                      destroyed:1;
    unsigned                      in_destroy:1;
};


typedef struct {
    ngx_http_chat_redis_reply_pt  handler;
    void                         *data;
} ngx_http_chat_redis_cmd_t;


static void ngx_http_chat_redis_connect(ngx_http_chat_redis_t *rds);
static void ngx_http_chat_redis_connect_failed(ngx_http_chat_redis_t *rds,
    const char *reason);
static void ngx_http_chat_redis_schedule(ngx_http_chat_redis_t *rds);
static void ngx_http_chat_redis_abort(ngx_http_chat_redis_t *rds,
    const char *reason);
static void ngx_http_chat_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_chat_redis_timeout_handler(ngx_event_t *ev);
static void ngx_http_chat_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_chat_redis_read_handler(ngx_event_t *rev);
static void ngx_http_chat_redis_write_handler(ngx_event_t *wev);
static void ngx_http_chat_redis_add_event(ngx_http_chat_redis_t *rds,
    ngx_event_t *ev, ngx_int_t event);
static void ngx_http_chat_redis_del_event(ngx_http_chat_redis_t *rds,
    ngx_event_t *ev, ngx_int_t event);
static void ngx_http_chat_redis_add_read(void *privdata);
static void ngx_http_chat_redis_del_read(void *privdata);
static void ngx_http_chat_redis_add_write(void *privdata);
static void ngx_http_chat_redis_del_write(void *privdata);
static void ngx_http_chat_redis_cleanup(void *privdata);
static ngx_int_t ngx_http_chat_redis_check_name(ngx_http_chat_redis_t *rds,
    u_char *name, size_t len);
static ngx_int_t ngx_http_chat_redis_check_formatted(
    ngx_http_chat_redis_t *rds, char *buf, size_t len);
static ngx_http_chat_redis_cmd_t *ngx_http_chat_redis_cmd_alloc(
    ngx_http_chat_redis_t *rds, ngx_http_chat_redis_reply_pt handler,
    void *data);
static void ngx_http_chat_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);


ngx_http_chat_redis_t *
ngx_http_chat_redis_create(ngx_cycle_t *cycle, ngx_str_t *host,
    in_port_t port, ngx_msec_t connect_timeout, ngx_msec_t backoff_max)
{
    ngx_http_chat_redis_t  *rds;

    rds = ngx_alloc(sizeof(ngx_http_chat_redis_t) + host->len + 1,
                    cycle->log);
    if (rds == NULL) {
        return NULL;
    }

    ngx_memzero(rds, sizeof(ngx_http_chat_redis_t));

    rds->host = (char *) (rds + 1);
    ngx_memcpy(rds->host, host->data, host->len);
    rds->host[host->len] = '\0';

    rds->port = port;
    rds->log = cycle->log;
    rds->connect_timeout = connect_timeout;
    rds->backoff = NGX_HTTP_CHAT_REDIS_BACKOFF_MIN;
    rds->backoff_max = ngx_max(backoff_max, NGX_HTTP_CHAT_REDIS_BACKOFF_MIN);

    /*
     * hiredis reads at most 16K per call, so edge-triggered reads are only
     * safe when we can ask the kernel how much is left in the socket
     */

    rds->event_flags = NGX_LEVEL_EVENT;

#if (NGX_HAVE_FIONREAD)
    if (ngx_event_flags & NGX_USE_CLEAR_EVENT) {
        rds->edge = 1;
        rds->event_flags = NGX_CLEAR_EVENT;
    }
#endif

    rds->timeout_ev.handler = ngx_http_chat_redis_timeout_handler;
    rds->timeout_ev.data = rds;
    rds->timeout_ev.log = rds->log;
    rds->timeout_ev.cancelable = 1;

    rds->reconnect_ev.handler = ngx_http_chat_redis_reconnect_handler;
    rds->reconnect_ev.data = rds;
    rds->reconnect_ev.log = rds->log;
    rds->reconnect_ev.cancelable = 1;

    ngx_http_chat_redis_connect(rds);

    return rds;
}


void
ngx_http_chat_redis_destroy(ngx_http_chat_redis_t *rds)
{
    redisAsyncContext  *ac;

    if (rds == NULL || rds->destroyed) {
        return;
    }

    rds->destroyed = 1;
    rds->state = NGX_HTTP_CHAT_REDIS_DISCONNECTED;

    if (rds->timeout_ev.timer_set) {
        ngx_del_timer(&rds->timeout_ev);
    }

    if (rds->reconnect_ev.timer_set) {
        ngx_del_timer(&rds->reconnect_ev);
    }

    ac = rds->ac;

    if (ac == NULL) {
        ngx_free(rds);
        return;
    }

    /* pending commands get NULL replies; the cleanup hook releases c */

    ac->data = NULL;

    rds->in_destroy = 1;
    redisAsyncFree(ac);
    rds->in_destroy = 0;

    if (rds->ac == NULL) {
        ngx_free(rds);
    }

    /*
     * otherwise we were called from a reply handler: hiredis frees the
     * context once the handler returns and the cleanup hook frees rds
     */
}


ngx_uint_t
ngx_http_chat_redis_is_connected(ngx_http_chat_redis_t *rds)
{
    return rds != NULL
           && rds->state == NGX_HTTP_CHAT_REDIS_CONNECTED
           && rds->ac != NULL
           && !(rds->ac->c.flags & (REDIS_DISCONNECTING|REDIS_FREEING));
}


ngx_int_t
ngx_http_chat_redis_command(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, const char *fmt, ...)
{
    int                         len, rc;
    char                       *buf;
    va_list                     args;
    ngx_http_chat_redis_cmd_t  *cmd;

    if (!ngx_http_chat_redis_is_connected(rds)) {
        return NGX_DECLINED;
    }

    /* formatted first to be able to reject commands with many replies */

    va_start(args, fmt);
    len = redisvFormatCommand(&buf, fmt, args);
    va_end(args);

    if (len < 0) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "chat redis: cannot format command \"%s\"", fmt);
        return NGX_ERROR;
    }

    if (ngx_http_chat_redis_check_formatted(rds, buf, len) != NGX_OK) {
        redisFreeCommand(buf);
        return NGX_ERROR;
    }

    cmd = ngx_http_chat_redis_cmd_alloc(rds, handler, data);
    if (cmd == NULL) {
        redisFreeCommand(buf);
        return NGX_ERROR;
    }

    rc = redisAsyncFormattedCommand(rds->ac, ngx_http_chat_redis_reply, cmd,
                                    buf, len);
    redisFreeCommand(buf);

    if (rc != REDIS_OK) {
        ngx_free(cmd);
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "chat redis: cannot queue command \"%s\"", fmt);
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rds->log, 0,
                   "chat redis: queued \"%s\" data:%p", fmt, data);

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_redis_command_argv(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    size_t                      len;
    ngx_http_chat_redis_cmd_t  *cmd;

    if (!ngx_http_chat_redis_is_connected(rds)) {
        return NGX_DECLINED;
    }

    if (argc < 1 || argv == NULL || argv[0] == NULL) {
        ngx_log_error(NGX_LOG_ALERT, rds->log, 0,
                      "chat redis: empty command");
        return NGX_ERROR;
    }

    len = argvlen ? argvlen[0] : ngx_strlen(argv[0]);

    if (ngx_http_chat_redis_check_name(rds, (u_char *) argv[0], len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmd = ngx_http_chat_redis_cmd_alloc(rds, handler, data);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    if (redisAsyncCommandArgv(rds->ac, ngx_http_chat_redis_reply, cmd,
                              argc, argv, argvlen)
        != REDIS_OK)
    {
        ngx_free(cmd);
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "chat redis: cannot queue command \"%*s\"",
                      len, argv[0]);
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, rds->log, 0,
                   "chat redis: queued \"%*s\" data:%p", len, argv[0], data);

    return NGX_OK;
}


static void
ngx_http_chat_redis_connect(ngx_http_chat_redis_t *rds)
{
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "chat redis: connecting to %s:%d", rds->host, rds->port);

    /* non-blocking, but a host name is resolved synchronously */

    ac = redisAsyncConnect(rds->host, rds->port);

    if (ac == NULL) {
        ngx_http_chat_redis_connect_failed(rds, "out of memory");
        return;
    }

    if (ac->err) {
        /* no hooks are attached yet, so this does not reach our cleanup */
        ngx_http_chat_redis_connect_failed(rds, ac->errstr);
        redisAsyncFree(ac);
        return;
    }

    c = ngx_get_connection(ac->c.fd, rds->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_chat_redis_connect_failed(rds, "no free connection");
        return;
    }

    c->data = rds;
    c->read->handler = ngx_http_chat_redis_read_handler;
    c->write->handler = ngx_http_chat_redis_write_handler;
    c->read->log = rds->log;
    c->write->log = rds->log;

    ac->data = rds;
    ac->ev.data = rds;
    ac->ev.addRead = ngx_http_chat_redis_add_read;
    ac->ev.delRead = ngx_http_chat_redis_del_read;
    ac->ev.addWrite = ngx_http_chat_redis_add_write;
    ac->ev.delWrite = ngx_http_chat_redis_del_write;
    ac->ev.cleanup = ngx_http_chat_redis_cleanup;

    rds->ac = ac;
    rds->conn = c;
    rds->state = NGX_HTTP_CHAT_REDIS_CONNECTING;
    rds->reason = NULL;

    /* before the callback: an abort from add_write must override it */

    if (rds->connect_timeout) {
        ngx_add_timer(&rds->timeout_ev, rds->connect_timeout);
    }

    /* this arms the write event that reports the connect result */

    redisAsyncSetConnectCallback(ac, ngx_http_chat_redis_connected);
}


static void
ngx_http_chat_redis_connect_failed(ngx_http_chat_redis_t *rds,
    const char *reason)
{
    ngx_uint_t  level;

    /* the first failure of an outage is an error, retries are not news */

    level = rds->quiet ? NGX_LOG_INFO : NGX_LOG_ERR;
    rds->quiet = 1;
    rds->failures++;

    ngx_log_error(level, rds->log, 0,
                  "chat redis: cannot connect to %s:%d: %s, "
                  "retrying in %Mms",
                  rds->host, rds->port, reason, rds->backoff);

    ngx_http_chat_redis_schedule(rds);
}


static void
ngx_http_chat_redis_schedule(ngx_http_chat_redis_t *rds)
{
    ngx_add_timer(&rds->reconnect_ev, rds->backoff);

    rds->backoff = ngx_min(rds->backoff * 2, rds->backoff_max);
}


static void
ngx_http_chat_redis_abort(ngx_http_chat_redis_t *rds, const char *reason)
{
    /*
     * called from hiredis hooks, where the context must not be freed;
     * the timeout handler tears it down on the next event loop pass
     */

    if (rds->reason == NULL) {
        rds->reason = reason;
    }

    ngx_add_timer(&rds->timeout_ev, 0);
}


static void
ngx_http_chat_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_chat_redis_t  *rds;

    rds = ac->data;

    if (rds == NULL || status != REDIS_OK) {
        /* hiredis frees the context next; the cleanup hook reports it */
        return;
    }

    if (rds->timeout_ev.timer_set && rds->reason == NULL) {
        ngx_del_timer(&rds->timeout_ev);
    }

    rds->state = NGX_HTTP_CHAT_REDIS_CONNECTED;
    rds->connected_at = ngx_current_msec;

    /* a peer that vanishes without a FIN is noticed in minutes, not never */
    if (redisEnableKeepAlive((redisContext *) &ac->c) != REDIS_OK) {
        ngx_log_error(NGX_LOG_WARN, rds->log, 0,
                      "chat redis: cannot enable TCP keepalive");
    }

    if (rds->failures) {
        ngx_log_error(NGX_LOG_NOTICE, rds->log, 0,
                      "chat redis: connected to %s:%d after %ui failed "
                      "attempts", rds->host, rds->port, rds->failures);

    } else if (rds->connected_once) {
        ngx_log_error(NGX_LOG_NOTICE, rds->log, 0,
                      "chat redis: reconnected to %s:%d",
                      rds->host, rds->port);

    } else {
        ngx_log_error(NGX_LOG_INFO, rds->log, 0,
                      "chat redis: connected to %s:%d",
                      rds->host, rds->port);
    }

    rds->failures = 0;
    rds->connected_once = 1;

    if (rds->on_connect) {
        rds->on_connect(rds->on_connect_data);
    }
}


void
ngx_http_chat_redis_on_connect(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_connect_pt handler, void *data)
{
    rds->on_connect = handler;
    rds->on_connect_data = data;
}


/* hiredis keeps this callback per channel and calls it for every reply */

static void
ngx_http_chat_redis_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_http_chat_redis_t  *rds;

    rds = privdata;

    if (rds->sub_handler) {
        rds->sub_handler(r, rds->sub_data);
    }
}


ngx_int_t
ngx_http_chat_redis_subscribe(ngx_http_chat_redis_t *rds,
    ngx_uint_t subscribe, ngx_str_t *channel,
    ngx_http_chat_redis_reply_pt handler, void *data)
{
    const char  *argv[2];
    size_t       argvlen[2];

    if (!ngx_http_chat_redis_is_connected(rds)) {
        return NGX_DECLINED;
    }

    rds->sub_handler = handler;
    rds->sub_data = data;

    argv[0] = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
    argvlen[0] = ngx_strlen(argv[0]);
    argv[1] = (const char *) channel->data;
    argvlen[1] = channel->len;

    if (redisAsyncCommandArgv(rds->ac, ngx_http_chat_redis_sub_reply, rds,
                              2, argv, argvlen)
        != REDIS_OK)
    {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "chat redis: cannot queue %s \"%V\"", argv[0],
                      channel);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_chat_redis_timeout_handler(ngx_event_t *ev)
{
    ngx_http_chat_redis_t  *rds;

    rds = ev->data;

    if (rds->ac == NULL) {
        return;
    }

    if (rds->reason == NULL) {
        if (rds->state != NGX_HTTP_CHAT_REDIS_CONNECTING) {
            return;
        }

        rds->reason = "connect timed out";
    }

    /* not inside hiredis here, so the context is freed right away */

    redisAsyncFree(rds->ac);
}


static void
ngx_http_chat_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_chat_redis_t  *rds;

    rds = ev->data;

    if (rds->destroyed || rds->ac != NULL) {
        return;
    }

    ngx_http_chat_redis_connect(rds);
}


static void
ngx_http_chat_redis_read_handler(ngx_event_t *rev)
{
#if (NGX_HAVE_FIONREAD)
    int                     n;
#endif
    ngx_uint_t              eof_tried;
    ngx_connection_t       *c;
    ngx_http_chat_redis_t  *rds;

    c = rev->data;
    rds = c->data;
    eof_tried = 0;

    for ( ;; ) {
        redisAsyncHandleRead(rds->ac);

        /*
         * the context may be gone (disconnect, or destroy from a reply
         * handler): the cleanup hook sets c->fd to -1, and rds may be
         * freed, c is not
         */

        if (c->fd == (ngx_socket_t) -1 || !rds->edge) {
            return;
        }

#if (NGX_HAVE_FIONREAD)

        /* an edge is not signalled again for data already in the socket */

        if (ngx_socket_nread(c->fd, &n) == -1) {
            ngx_log_error(NGX_LOG_ALERT, rds->log, ngx_socket_errno,
                          ngx_socket_nread_n " failed");
            ngx_http_chat_redis_abort(rds, ngx_socket_nread_n " failed");
            return;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                       "chat redis: %d bytes left in socket", n);

        if (n > 0) {
            continue;
        }

#endif

        /* a FIN merged into the same edge as the last data */

        if (rev->pending_eof && !eof_tried) {
            eof_tried = 1;
            continue;
        }

        return;
    }
}


static void
ngx_http_chat_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t       *c;
    ngx_http_chat_redis_t  *rds;

    c = wev->data;
    rds = c->data;

    redisAsyncHandleWrite(rds->ac);
}


static void
ngx_http_chat_redis_add_event(ngx_http_chat_redis_t *rds, ngx_event_t *ev,
    ngx_int_t event)
{
    if (ev->active) {
        return;
    }

    if (ngx_add_event(ev, event, rds->event_flags) != NGX_OK) {
        ngx_http_chat_redis_abort(rds, "cannot add event");
    }
}


static void
ngx_http_chat_redis_del_event(ngx_http_chat_redis_t *rds, ngx_event_t *ev,
    ngx_int_t event)
{
    if (!ev->active) {
        return;
    }

    /* with epoll the flags apply to the event left registered */

    if (ngx_del_event(ev, event, rds->event_flags) != NGX_OK) {
        ngx_http_chat_redis_abort(rds, "cannot delete event");
    }
}


static void
ngx_http_chat_redis_add_read(void *privdata)
{
    ngx_http_chat_redis_t  *rds = privdata;

    if (rds->conn) {
        ngx_http_chat_redis_add_event(rds, rds->conn->read, NGX_READ_EVENT);
    }
}


static void
ngx_http_chat_redis_del_read(void *privdata)
{
    ngx_http_chat_redis_t  *rds = privdata;

    if (rds->conn) {
        ngx_http_chat_redis_del_event(rds, rds->conn->read, NGX_READ_EVENT);
    }
}


static void
ngx_http_chat_redis_add_write(void *privdata)
{
    ngx_http_chat_redis_t  *rds = privdata;

    if (rds->conn) {
        ngx_http_chat_redis_add_event(rds, rds->conn->write,
                                      NGX_WRITE_EVENT);
    }
}


static void
ngx_http_chat_redis_del_write(void *privdata)
{
    ngx_http_chat_redis_t  *rds = privdata;

    if (rds->conn) {
        ngx_http_chat_redis_del_event(rds, rds->conn->write,
                                      NGX_WRITE_EVENT);
    }
}


/*
 * Called by hiredis exactly once per attached context, on every teardown
 * path (connect failure, read/write error, redisAsyncFree), after pending
 * callbacks ran and before it closes the fd and frees the context.
 */

static void
ngx_http_chat_redis_cleanup(void *privdata)
{
    ngx_uint_t                    level;
    const char                   *reason;
    ngx_connection_t             *c;
    redisAsyncContext            *ac;
    ngx_http_chat_redis_t        *rds;
    ngx_http_chat_redis_state_e   state;

    rds = privdata;
    ac = rds->ac;
    c = rds->conn;

    if (c) {

        /*
         * hiredis owns and closes the fd, so no ngx_close_connection();
         * c->fd = -1 marks events already returned by epoll as stale
         */

        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;

        rds->conn = NULL;
    }

    if (rds->timeout_ev.timer_set) {
        ngx_del_timer(&rds->timeout_ev);
    }

    state = rds->state;

    rds->ac = NULL;
    rds->state = NGX_HTTP_CHAT_REDIS_DISCONNECTED;

    if (rds->destroyed) {
        if (!rds->in_destroy) {
            ngx_free(rds);
        }

        return;
    }

    if (rds->reason) {
        reason = rds->reason;
        rds->reason = NULL;

    } else if (ac != NULL && ac->c.err) {
        reason = ac->c.errstr;

    } else {
        reason = "connection closed";
    }

    if (state != NGX_HTTP_CHAT_REDIS_CONNECTED) {
        ngx_http_chat_redis_connect_failed(rds, reason);
        return;
    }

    /* a flapping server must not reset the backoff or spam the log */

    if (ngx_current_msec - rds->connected_at >= NGX_HTTP_CHAT_REDIS_STABLE) {
        rds->backoff = NGX_HTTP_CHAT_REDIS_BACKOFF_MIN;
        level = NGX_LOG_ERR;

    } else {
        level = rds->quiet ? NGX_LOG_INFO : NGX_LOG_ERR;
    }

    rds->quiet = 1;

    ngx_log_error(level, rds->log, 0,
                  "chat redis: lost connection to %s:%d: %s, "
                  "reconnecting in %Mms",
                  rds->host, rds->port, reason, rds->backoff);

    ngx_http_chat_redis_schedule(rds);
}


static ngx_int_t
ngx_http_chat_redis_check_name(ngx_http_chat_redis_t *rds, u_char *name,
    size_t len)
{
    ngx_str_t  *s;

    /*
     * hiredis calls the callback of these many times or never, which
     * breaks the "exactly once" contract and the per-command wrapper
     */

    static ngx_str_t  ngx_http_chat_redis_forbidden[] = {
        ngx_string("subscribe"),
        ngx_string("psubscribe"),
        ngx_string("ssubscribe"),
        ngx_string("unsubscribe"),
        ngx_string("punsubscribe"),
        ngx_string("sunsubscribe"),
        ngx_string("monitor"),
        ngx_null_string
    };

    for (s = ngx_http_chat_redis_forbidden; s->len; s++) {
        if (len == s->len && ngx_strncasecmp(name, s->data, len) == 0) {
            ngx_log_error(NGX_LOG_ALERT, rds->log, 0,
                          "chat redis: \"%*s\" is not supported",
                          len, name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_redis_check_formatted(ngx_http_chat_redis_t *rds, char *buf,
    size_t len)
{
    u_char     *p, *name, *last;
    ngx_int_t   n;

    /* "*<argc>\r\n$<len>\r\n<name>\r\n..."; hiredis asserts on no args */

    p = (u_char *) buf;
    last = p + len;

    p = ngx_strlchr(p, last, '$');
    if (p == NULL) {
        goto invalid;
    }

    name = ngx_strlchr(p, last, '\r');
    if (name == NULL || last - name < 2) {
        goto invalid;
    }

    n = ngx_atoi(p + 1, name - p - 1);
    name += 2;

    if (n == NGX_ERROR || n > last - name) {
        goto invalid;
    }

    return ngx_http_chat_redis_check_name(rds, name, n);

invalid:

    ngx_log_error(NGX_LOG_ALERT, rds->log, 0,
                  "chat redis: empty or malformed command");

    return NGX_ERROR;
}


static ngx_http_chat_redis_cmd_t *
ngx_http_chat_redis_cmd_alloc(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data)
{
    ngx_http_chat_redis_cmd_t  *cmd;

    /* heap, not a pool: it must outlive any request until hiredis is done */

    cmd = ngx_alloc(sizeof(ngx_http_chat_redis_cmd_t), rds->log);
    if (cmd == NULL) {
        return NULL;
    }

    cmd->handler = handler;
    cmd->data = data;

    return cmd;
}


static void
ngx_http_chat_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    void                          *data;
    redisReply                    *reply;
    ngx_http_chat_redis_cmd_t     *cmd;
    ngx_http_chat_redis_reply_pt   handler;

    cmd = privdata;
    reply = r;

    handler = cmd->handler;
    data = cmd->data;

    ngx_free(cmd);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "chat redis: reply type:%d data:%p",
                   reply ? reply->type : -1, data);

    if (handler) {
        handler(reply, data);
    }
}
