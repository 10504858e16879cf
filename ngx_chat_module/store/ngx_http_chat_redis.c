/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <openssl/evp.h>
#include "ngx_http_chat_redis.h"
#include "../util/ngx_http_chat_metrics.h"


#define NGX_HTTP_CHAT_REDIS_BACKOFF_MIN  100

/* a connection lost sooner than this after connecting counts as a failure */
#define NGX_HTTP_CHAT_REDIS_STABLE       1000

#define NGX_HTTP_CHAT_REDIS_SHA_LEN      40
#define NGX_HTTP_CHAT_REDIS_SCRIPTS_MAX  64
/* an EVAL's script by where its text is (callers pass static strings) */
#define NGX_HTTP_CHAT_REDIS_HINTS        64
/* the arguments an EVAL may have to go the short way */
#define NGX_HTTP_CHAT_REDIS_SHORT_ARGS   32


typedef enum {
    NGX_HTTP_CHAT_REDIS_DISCONNECTED = 0,
    NGX_HTTP_CHAT_REDIS_CONNECTING,
    NGX_HTTP_CHAT_REDIS_CONNECTED
} ngx_http_chat_redis_state_e;


/* a Lua script run as EVALSHA; hiredis needs it again after NOSCRIPT */

typedef struct ngx_http_chat_redis_script_s  ngx_http_chat_redis_script_t;

struct ngx_http_chat_redis_script_s {
    ngx_http_chat_redis_script_t *next;
    uint32_t                      crc;
    size_t                        len;
    u_char                        sha[NGX_HTTP_CHAT_REDIS_SHA_LEN];
    unsigned                      loaded:1;     /* SCRIPT LOAD was sent */
    u_char                        text[1];
};


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
    ngx_event_t                   command_ev;   /* oldest reply overdue */

    ngx_msec_t                    command_timeout;
    size_t                        output_max;

    /* commands sent or to be sent, oldest first, and their bytes */
    ngx_queue_t                   pending;
    size_t                        pending_size;

    ngx_http_chat_redis_script_t *scripts;
    ngx_uint_t                    nscripts;
    ngx_http_chat_redis_script_t *hints[NGX_HTTP_CHAT_REDIS_HINTS];

    ngx_uint_t                    event_flags;
    ngx_uint_t                    failures;     /* since last connect */
    const char                   *reason;       /* of a teardown we started */

    ngx_http_chat_redis_state_e   state;

    /* what follows a (re)connect: subscriptions, retries */
    ngx_http_chat_redis_connect_pt  on_connect[NGX_HTTP_CHAT_REDIS_HOOKS];
    void                         *on_connect_data[NGX_HTTP_CHAT_REDIS_HOOKS];
    ngx_uint_t                    nhooks;
    ngx_http_chat_redis_reply_pt  sub_handler;
    void                         *sub_data;

    unsigned                      edge:1;       /* edge-triggered reads */
    unsigned                      quiet:1;      /* outage already logged */
    unsigned                      connected_once:1;
    unsigned                      destroyed:1;
    unsigned                      in_destroy:1;
    unsigned                      full:1;       /* overflow already logged */
    unsigned                      writing:1;    /* in hiredis's write */
};


typedef struct {
    ngx_queue_t                   queue;        /* in rds->pending */
    ngx_http_chat_redis_t        *rds;
    ngx_http_chat_redis_reply_pt  handler;
    void                         *data;
    ngx_msec_t                    deadline;
    ngx_msec_t                    sent_at;     /* for the metrics */
    size_t                        size;

    /* EVALSHA: the script to load again and the command to send again */
    ngx_http_chat_redis_script_t *script;
    char                         *buf;
    unsigned                      retried:1;
} ngx_http_chat_redis_cmd_t;


/* the head of a formatted command */

typedef struct {
    ngx_int_t                     argc;
    u_char                       *start;        /* "$<len>" of the name */
    ngx_str_t                     name;
    ngx_str_t                     arg;          /* the second, if any */
    u_char                       *rest;         /* after those */
} ngx_http_chat_redis_head_t;


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
static ngx_int_t ngx_http_chat_redis_send(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, char *buf, size_t len);
static ngx_int_t ngx_http_chat_redis_evalsha(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen);
static ngx_int_t ngx_http_chat_redis_send_script(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, char *buf, size_t len,
    ngx_http_chat_redis_script_t *script);
static ngx_int_t ngx_http_chat_redis_queue(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_cmd_t *cmd, char *buf, size_t len);
static u_char *ngx_http_chat_redis_parse_bulk(u_char *p, u_char *last,
    ngx_str_t *arg);
static ngx_int_t ngx_http_chat_redis_parse(ngx_http_chat_redis_t *rds,
    u_char *buf, size_t len, ngx_http_chat_redis_head_t *head);
static ngx_http_chat_redis_script_t *ngx_http_chat_redis_script(
    ngx_http_chat_redis_t *rds, ngx_str_t *text);
static ngx_int_t ngx_http_chat_redis_load(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_script_t *script);
static void ngx_http_chat_redis_loaded(redisReply *reply, void *data);
static ngx_http_chat_redis_cmd_t *ngx_http_chat_redis_cmd_alloc(
    ngx_http_chat_redis_t *rds, ngx_http_chat_redis_reply_pt handler,
    void *data, size_t size);
static void ngx_http_chat_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_http_chat_redis_retry(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_cmd_t *cmd);
static void ngx_http_chat_redis_command_handler(ngx_event_t *ev);
static void ngx_http_chat_redis_free(ngx_http_chat_redis_t *rds);


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

    rds->command_ev.handler = ngx_http_chat_redis_command_handler;
    rds->command_ev.data = rds;
    rds->command_ev.log = rds->log;

    /*
     * Not cancelable: an exiting worker keeps its connection until the
     * last command waiting answers (or times out), so that a read in
     * flight gets its reply rather than "connection lost".
     */
    rds->command_ev.cancelable = 0;

    ngx_queue_init(&rds->pending);

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

    if (rds->command_ev.timer_set) {
        ngx_del_timer(&rds->command_ev);
    }

    ac = rds->ac;

    if (ac == NULL) {
        ngx_http_chat_redis_free(rds);
        return;
    }

    /* pending commands get NULL replies; the cleanup hook releases c */

    ac->data = NULL;

    rds->in_destroy = 1;
    redisAsyncFree(ac);
    rds->in_destroy = 0;

    if (rds->ac == NULL) {
        ngx_http_chat_redis_free(rds);
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
    int         len;
    char       *buf;
    va_list     args;
    ngx_int_t   rc;

    if (!ngx_http_chat_redis_is_connected(rds)) {
        return NGX_DECLINED;
    }

    va_start(args, fmt);
    len = redisvFormatCommand(&buf, fmt, args);
    va_end(args);

    if (len < 0) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "chat redis: cannot format command \"%s\"", fmt);
        return NGX_ERROR;
    }

    rc = ngx_http_chat_redis_send(rds, handler, data, buf, len);
    redisFreeCommand(buf);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, rds->log, 0,
                   "chat redis: queued \"%s\" data:%p rc:%i", fmt, data, rc);

    return rc;
}


ngx_int_t
ngx_http_chat_redis_command_argv(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    int         len;
    char       *buf;
    size_t      n;
    ngx_int_t   rc;

    if (!ngx_http_chat_redis_is_connected(rds)) {
        return NGX_DECLINED;
    }

    if (argc < 1 || argv == NULL || argv[0] == NULL) {
        ngx_log_error(NGX_LOG_ALERT, rds->log, 0,
                      "chat redis: empty command");
        return NGX_ERROR;
    }

    n = argvlen ? argvlen[0] : ngx_strlen(argv[0]);

    if (n == 4 && argvlen && argc >= 3
        && argc <= NGX_HTTP_CHAT_REDIS_SHORT_ARGS
        && ngx_strncasecmp((u_char *) argv[0], (u_char *) "EVAL", 4) == 0)
    {
        rc = ngx_http_chat_redis_evalsha(rds, handler, data, argc, argv,
                                         argvlen);
        if (rc != NGX_AGAIN) {
            return rc;
        }
    }

    len = redisFormatCommandArgv(&buf, argc, argv, argvlen);

    if (len < 0) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "chat redis: cannot format command \"%*s\"",
                      n, argv[0]);
        return NGX_ERROR;
    }

    rc = ngx_http_chat_redis_send(rds, handler, data, buf, len);
    redisFreeCommand(buf);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, rds->log, 0,
                   "chat redis: queued \"%*s\" data:%p rc:%i",
                   n, argv[0], data, rc);

    return rc;
}


/*
 * An EVAL of a script this connection knows, found by where its text is
 * (and checked, so a reused buffer only misses), is formatted straight as
 * EVALSHA: its text is neither copied into the command nor hashed again.
 * NGX_AGAIN: not known that way (too many scripts), the caller formats
 * the EVAL; else as ngx_http_chat_redis_command_argv().
 */

static ngx_int_t
ngx_http_chat_redis_evalsha(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    int                            len, i;
    char                          *buf;
    size_t                         lens[NGX_HTTP_CHAT_REDIS_SHORT_ARGS];
    ngx_str_t                      text;
    ngx_int_t                      rc;
    ngx_uint_t                     h;
    const char                    *args[NGX_HTTP_CHAT_REDIS_SHORT_ARGS];
    ngx_http_chat_redis_script_t  *script;

    h = ((uintptr_t) argv[1] >> 3) % NGX_HTTP_CHAT_REDIS_HINTS;
    script = rds->hints[h];

    if (script == NULL || script->len != argvlen[1]
        || ngx_memcmp(script->text, argv[1], argvlen[1]) != 0)
    {
        text.data = (u_char *) argv[1];
        text.len = argvlen[1];

        script = ngx_http_chat_redis_script(rds, &text);
        if (script == NULL) {
            return NGX_AGAIN;
        }

        rds->hints[h] = script;
    }

    if (!script->loaded && ngx_http_chat_redis_load(rds, script) != NGX_OK) {
        return NGX_ERROR;
    }

    args[0] = "EVALSHA";
    lens[0] = sizeof("EVALSHA") - 1;
    args[1] = (const char *) script->sha;
    lens[1] = NGX_HTTP_CHAT_REDIS_SHA_LEN;

    for (i = 2; i < argc; i++) {
        args[i] = argv[i];
        lens[i] = argvlen[i];
    }

    len = redisFormatCommandArgv(&buf, argc, args, lens);

    if (len < 0) {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "chat redis: cannot format command \"EVALSHA\"");
        return NGX_ERROR;
    }

    rc = ngx_http_chat_redis_send_script(rds, handler, data, buf, len,
                                         script);
    redisFreeCommand(buf);

    return rc;
}


void
ngx_http_chat_redis_set_limits(ngx_http_chat_redis_t *rds,
    ngx_msec_t command_timeout, size_t output_max)
{
    rds->command_timeout = command_timeout;
    rds->output_max = output_max;
}


/*
 * A formatted command "*<argc>\r\n$<len>\r\n<name>\r\n...": checked,
 * bounded, EVAL turned into EVALSHA, queued.  NGX_DECLINED when the
 * commands waiting for a reply already hold output_max bytes.
 */

static ngx_int_t
ngx_http_chat_redis_send(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, char *buf, size_t len)
{
    return ngx_http_chat_redis_send_script(rds, handler, data, buf, len,
                                           NULL);
}


/*
 * known: an EVALSHA of that script, formatted already (kept in the
 * command, which NOSCRIPT sends again after loading the script)
 */

static ngx_int_t
ngx_http_chat_redis_send_script(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, char *buf, size_t len,
    ngx_http_chat_redis_script_t *known)
{
    u_char                        *p;
    size_t                         size;
    ngx_int_t                      rc;
    ngx_http_chat_redis_head_t     head;
    ngx_http_chat_redis_cmd_t     *cmd;
    ngx_http_chat_redis_script_t  *script;

    static u_char  evalsha[] = "$7\r\nEVALSHA\r\n$40\r\n";

    if (ngx_http_chat_redis_parse(rds, (u_char *) buf, len, &head)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_chat_redis_check_name(rds, head.name.data, head.name.len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rds->output_max && rds->pending_size >= rds->output_max) {

        if (!rds->full) {
            ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                          "chat redis: %uz bytes of commands to %s:%d wait "
                          "for a reply, not less than "
                          "chat_redis_output_buffer %uz: failing new "
                          "commands", rds->pending_size, rds->host,
                          rds->port, rds->output_max);
            rds->full = 1;
        }

        return NGX_DECLINED;
    }

    if (known) {
        cmd = ngx_http_chat_redis_cmd_alloc(rds, handler, data, len);
        if (cmd == NULL) {
            return NGX_ERROR;
        }

        cmd->script = known;
        ngx_memcpy(cmd->buf, buf, len);

        rc = ngx_http_chat_redis_queue(rds, cmd, cmd->buf, len);

        if (rc != NGX_OK) {
            ngx_free(cmd);
            ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                          "chat redis: cannot queue command \"EVALSHA\"");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    script = NULL;

    if (head.argc >= 3
        && head.name.len == 4
        && ngx_strncasecmp(head.name.data, (u_char *) "EVAL", 4) == 0)
    {
        script = ngx_http_chat_redis_script(rds, &head.arg);

        if (script != NULL && !script->loaded
            && ngx_http_chat_redis_load(rds, script) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (script == NULL) {
        cmd = ngx_http_chat_redis_cmd_alloc(rds, handler, data, 0);
        if (cmd == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_http_chat_redis_queue(rds, cmd, buf, len);

    } else {

        /* "*<argc>\r\n" as it was, EVALSHA <sha>, the keys and args */

        size = (head.start - (u_char *) buf) + sizeof(evalsha) - 1
               + NGX_HTTP_CHAT_REDIS_SHA_LEN + 2
               + ((u_char *) buf + len - head.rest);

        cmd = ngx_http_chat_redis_cmd_alloc(rds, handler, data, size);
        if (cmd == NULL) {
            return NGX_ERROR;
        }

        cmd->script = script;

        p = ngx_cpymem(cmd->buf, buf, head.start - (u_char *) buf);
        p = ngx_cpymem(p, evalsha, sizeof(evalsha) - 1);
        p = ngx_cpymem(p, script->sha, NGX_HTTP_CHAT_REDIS_SHA_LEN);
        *p++ = CR; *p++ = LF;
        ngx_memcpy(p, head.rest, (u_char *) buf + len - head.rest);

        rc = ngx_http_chat_redis_queue(rds, cmd, cmd->buf, size);
    }

    if (rc != NGX_OK) {
        ngx_free(cmd);
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "chat redis: cannot queue command \"%V\"",
                      &head.name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* on the wire, hiredis owns the copy; cmd is in the pending queue */

static ngx_int_t
ngx_http_chat_redis_queue(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_cmd_t *cmd, char *buf, size_t len)
{
    if (redisAsyncFormattedCommand(rds->ac, ngx_http_chat_redis_reply, cmd,
                                   buf, len)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    cmd->size = len;
    cmd->deadline = ngx_current_msec + rds->command_timeout;
    cmd->sent_at = ngx_current_msec;

    ngx_queue_insert_tail(&rds->pending, &cmd->queue);
    rds->pending_size += len;

    if (rds->command_timeout && !rds->command_ev.timer_set) {
        ngx_add_timer(&rds->command_ev, rds->command_timeout);
    }

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
    rds->writing = 0;
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
    ngx_uint_t              i;
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

    for (i = 0; i < rds->nhooks; i++) {
        rds->on_connect[i](rds->on_connect_data[i]);
    }
}


void
ngx_http_chat_redis_on_connect(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_connect_pt handler, void *data)
{
    if (rds->nhooks == NGX_HTTP_CHAT_REDIS_HOOKS) {
        ngx_log_error(NGX_LOG_ALERT, rds->log, 0,
                      "chat redis: too many connect handlers");
        return;
    }

    rds->on_connect[rds->nhooks] = handler;
    rds->on_connect_data[rds->nhooks++] = data;
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

    rds->writing = 1;

    redisAsyncHandleWrite(rds->ac);

    /* the context may be gone, and rds with it (see the read handler) */

    if (c->fd != (ngx_socket_t) -1) {
        rds->writing = 0;
    }
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


/*
 * A command to send.  Once connected, the write is posted: what this pass
 * of the event loop asks for goes out in one write at its end, and the
 * kernel's interest in the socket is not changed twice per flush.  Only a
 * write that could not finish (hiredis asks again from inside it), or a
 * connect under way, waits for the socket to be writable.
 */

static void
ngx_http_chat_redis_add_write(void *privdata)
{
    ngx_http_chat_redis_t  *rds = privdata;

    ngx_event_t  *wev;

    if (rds->conn == NULL) {
        return;
    }

    wev = rds->conn->write;

    if (rds->state == NGX_HTTP_CHAT_REDIS_CONNECTED && !rds->writing) {
        if (!wev->active && !wev->posted) {
            ngx_post_event(wev, &ngx_posted_events);
        }

        return;
    }

    ngx_http_chat_redis_add_event(rds, wev, NGX_WRITE_EVENT);
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

    /* hiredis ran every pending callback before this hook */

    if (rds->command_ev.timer_set) {
        ngx_del_timer(&rds->command_ev);
    }

    rds->pending_size = 0;
    rds->full = 0;

    state = rds->state;

    rds->ac = NULL;
    rds->state = NGX_HTTP_CHAT_REDIS_DISCONNECTED;

    if (rds->destroyed) {
        if (!rds->in_destroy) {
            ngx_http_chat_redis_free(rds);
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


/* one "$<len>\r\n<bytes>\r\n" of a formatted command */

static u_char *
ngx_http_chat_redis_parse_bulk(u_char *p, u_char *last, ngx_str_t *arg)
{
    u_char     *eol;
    ngx_int_t   n;

    if (p == last || *p != '$') {
        return NULL;
    }

    eol = ngx_strlchr(p, last, CR);
    if (eol == NULL || last - eol < 2) {
        return NULL;
    }

    n = ngx_atoi(p + 1, eol - p - 1);
    p = eol + 2;

    if (n == NGX_ERROR || n + 2 > last - p) {
        return NULL;
    }

    arg->data = p;
    arg->len = n;

    return p + n + 2;
}


static ngx_int_t
ngx_http_chat_redis_parse(ngx_http_chat_redis_t *rds, u_char *buf,
    size_t len, ngx_http_chat_redis_head_t *head)
{
    u_char  *p, *eol, *last;

    /* hiredis asserts on a command without arguments */

    p = buf;
    last = buf + len;

    if (p == last || *p != '*') {
        goto invalid;
    }

    eol = ngx_strlchr(p, last, CR);
    if (eol == NULL || last - eol < 2) {
        goto invalid;
    }

    head->argc = ngx_atoi(p + 1, eol - p - 1);
    if (head->argc == NGX_ERROR || head->argc < 1) {
        goto invalid;
    }

    head->start = eol + 2;

    p = ngx_http_chat_redis_parse_bulk(head->start, last, &head->name);
    if (p == NULL) {
        goto invalid;
    }

    head->rest = p;
    ngx_str_null(&head->arg);

    if (head->argc >= 2) {
        p = ngx_http_chat_redis_parse_bulk(p, last, &head->arg);
        if (p == NULL) {
            goto invalid;
        }

        head->rest = p;
    }

    return NGX_OK;

invalid:

    ngx_log_error(NGX_LOG_ALERT, rds->log, 0,
                  "chat redis: empty or malformed command");

    return NGX_ERROR;
}


/*
 * The script's entry, its SHA1 computed once per worker; NULL (run it as
 * EVAL) when out of memory or when there are too many distinct scripts,
 * which would mean that a caller builds them from data.
 */

static ngx_http_chat_redis_script_t *
ngx_http_chat_redis_script(ngx_http_chat_redis_t *rds, ngx_str_t *text)
{
    u_char                         md[EVP_MAX_MD_SIZE];
    uint32_t                       crc;
    unsigned int                   mdlen;
    ngx_http_chat_redis_script_t  *s;

    crc = ngx_crc32_long(text->data, text->len);

    for (s = rds->scripts; s; s = s->next) {
        if (s->crc == crc && s->len == text->len
            && ngx_memcmp(s->text, text->data, text->len) == 0)
        {
            return s;
        }
    }

    if (rds->nscripts >= NGX_HTTP_CHAT_REDIS_SCRIPTS_MAX) {
        return NULL;
    }

    s = ngx_alloc(offsetof(ngx_http_chat_redis_script_t, text) + text->len,
                  rds->log);
    if (s == NULL) {
        return NULL;
    }

    if (EVP_Digest(text->data, text->len, md, &mdlen, EVP_sha1(), NULL) != 1
        || mdlen * 2 != NGX_HTTP_CHAT_REDIS_SHA_LEN)
    {
        ngx_log_error(NGX_LOG_ALERT, rds->log, 0,
                      "chat redis: EVP_Digest(SHA1) failed");
        ngx_free(s);
        return NULL;
    }

    ngx_hex_dump(s->sha, md, mdlen);
    s->crc = crc;
    s->len = text->len;
    s->loaded = 0;
    ngx_memcpy(s->text, text->data, text->len);

    s->next = rds->scripts;
    rds->scripts = s;
    rds->nscripts++;

    return s;
}


/* SCRIPT LOAD, queued before the EVALSHA that needs it */

static ngx_int_t
ngx_http_chat_redis_load(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_script_t *script)
{
    int                         len;
    char                       *buf;
    size_t                      argvlen[3];
    ngx_int_t                   rc;
    const char                 *argv[3];
    ngx_http_chat_redis_cmd_t  *cmd;

    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = (const char *) script->text;
    argvlen[2] = script->len;

    len = redisFormatCommandArgv(&buf, 3, argv, argvlen);
    if (len < 0) {
        return NGX_ERROR;
    }

    cmd = ngx_http_chat_redis_cmd_alloc(rds, ngx_http_chat_redis_loaded,
                                        script, 0);
    if (cmd == NULL) {
        redisFreeCommand(buf);
        return NGX_ERROR;
    }

    rc = ngx_http_chat_redis_queue(rds, cmd, buf, len);
    redisFreeCommand(buf);

    if (rc != NGX_OK) {
        ngx_free(cmd);
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rds->log, 0,
                   "chat redis: SCRIPT LOAD %*s",
                   (size_t) NGX_HTTP_CHAT_REDIS_SHA_LEN, script->sha);

    script->loaded = 1;

    return NGX_OK;
}


static void
ngx_http_chat_redis_loaded(redisReply *reply, void *data)
{
    ngx_http_chat_redis_script_t  *script = data;

    /* the EVALSHA after it fails with NOSCRIPT, and says so to its caller */

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat redis: SCRIPT LOAD %*s failed: %s",
                      (size_t) NGX_HTTP_CHAT_REDIS_SHA_LEN, script->sha,
                      reply->str);
    }
}


static ngx_http_chat_redis_cmd_t *
ngx_http_chat_redis_cmd_alloc(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, size_t size)
{
    ngx_http_chat_redis_cmd_t  *cmd;

    /* heap, not a pool: it must outlive any request until hiredis is done */

    cmd = ngx_alloc(sizeof(ngx_http_chat_redis_cmd_t) + size, rds->log);
    if (cmd == NULL) {
        return NULL;
    }

    cmd->rds = rds;
    cmd->handler = handler;
    cmd->data = data;
    cmd->deadline = 0;
    cmd->size = 0;
    cmd->script = NULL;
    cmd->buf = size ? (char *) (cmd + 1) : NULL;
    cmd->retried = 0;

    return cmd;
}


static void
ngx_http_chat_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    void                          *data;
    redisReply                    *reply;
    ngx_http_chat_redis_t         *rds;
    ngx_http_chat_redis_cmd_t     *cmd;
    ngx_http_chat_redis_reply_pt   handler;

    cmd = privdata;
    reply = r;
    rds = cmd->rds;

    ngx_queue_remove(&cmd->queue);
    rds->pending_size -= cmd->size;

    if (rds->full && rds->pending_size < rds->output_max / 2) {
        rds->full = 0;
    }

    if (ngx_exiting && ngx_queue_empty(&rds->pending)
        && rds->command_ev.timer_set)
    {
        /* nothing waits any more: the worker need not */
        ngx_del_timer(&rds->command_ev);
    }

    /* after SCRIPT FLUSH or a Redis restart: load it again, retry once */

    if (reply != NULL
        && reply->type == REDIS_REPLY_ERROR
        && cmd->script != NULL
        && !cmd->retried
        && reply->len >= 8
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
        && ngx_http_chat_redis_retry(rds, cmd) == NGX_OK)
    {
        return;
    }

    handler = cmd->handler;
    data = cmd->data;

    if (ngx_http_chat_metrics) {
        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_REDIS_ERRORS);

        } else {
            ngx_http_chat_metric_observe(
                            &ngx_http_chat_metrics->h[NGX_HTTP_CHAT_H_REDIS],
                            (ngx_msec_int_t) (ngx_current_msec
                                              - cmd->sent_at));
        }
    }

    ngx_free(cmd);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "chat redis: reply type:%d data:%p",
                   reply ? reply->type : -1, data);

    if (handler) {
        handler(reply, data);
    }
}


static ngx_int_t
ngx_http_chat_redis_retry(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_cmd_t *cmd)
{
    cmd->retried = 1;

    ngx_log_error(NGX_LOG_NOTICE, rds->log, 0,
                  "chat redis: script %*s is not in the script cache of "
                  "%s:%d, loading it again",
                  (size_t) NGX_HTTP_CHAT_REDIS_SHA_LEN, cmd->script->sha,
                  rds->host, rds->port);

    if (ngx_http_chat_redis_load(rds, cmd->script) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the same EVALSHA, after the SCRIPT LOAD on the same connection */

    return ngx_http_chat_redis_queue(rds, cmd, cmd->buf, cmd->size);
}


/*
 * Replies come in order, so the oldest command waiting is the first in
 * the queue.  When it is overdue the connection is dropped: hiredis then
 * completes every pending command with a NULL reply, once, and a late
 * reply cannot come on a connection that is gone.  The subscriber
 * connection has no command timeout: it may be idle forever.
 */

static void
ngx_http_chat_redis_command_handler(ngx_event_t *ev)
{
    ngx_msec_int_t              left;
    ngx_http_chat_redis_t      *rds;
    ngx_http_chat_redis_cmd_t  *cmd;

    rds = ev->data;

    if (rds->ac == NULL || ngx_queue_empty(&rds->pending)) {
        return;
    }

    cmd = ngx_queue_data(ngx_queue_head(&rds->pending),
                         ngx_http_chat_redis_cmd_t, queue);

    left = (ngx_msec_int_t) (cmd->deadline - ngx_current_msec);

    if (left > 0) {
        ngx_add_timer(ev, (ngx_msec_t) left);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                  "chat redis: no reply from %s:%d in %Mms "
                  "(chat_redis_command_timeout), dropping the connection "
                  "and failing %uz bytes of commands",
                  rds->host, rds->port, rds->command_timeout,
                  rds->pending_size);

    if (rds->reason == NULL) {
        rds->reason = "command timed out";
    }

    /* not inside hiredis here, so the context is freed right away */

    redisAsyncFree(rds->ac);
}


static void
ngx_http_chat_redis_free(ngx_http_chat_redis_t *rds)
{
    ngx_http_chat_redis_script_t  *s, *next;

    for (s = rds->scripts; s; s = next) {
        next = s->next;
        ngx_free(s);
    }

    ngx_free(rds);
}
