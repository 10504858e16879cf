/*
 * Copyright (C) ngx_chat_module authors
 *
 * Engine.IO's HTTP long-polling transport: the handshake, the GETs that
 * take or wait for packets, the POSTs of packets, the session's queue.
 * Its upgrade to a WebSocket is ngx_http_chat_sio_upgrade.c.
 *
 * The session of a polling client lives in the worker that answered its
 * handshake, on a stand-in connection whose send() turns each frame into
 * an Engine.IO packet in Redis: the list "eio:q:<sid>", with a wake-up on
 * "eiow:<sid>".  So a GET may land on any worker of any instance: it takes
 * what the list holds, or waits for the wake-up.  A POST, wherever it
 * lands, is published on "eioi:<sid>", which the session's worker hears.
 * "eio:s:<sid>" says the session exists and remembers, for the worker that
 * takes the upgrade, its Socket.IO id and token.  Every such name is
 * made by ngx_http_chat_eio_key().
 */


#include "ngx_http_chat_rt.h"
#include "ngx_http_chat_sio_int.h"
#include "../util/ngx_http_chat_metrics.h"
#include "../core/ngx_http_chat_async.h"


#define NGX_HTTP_CHAT_SIO_RECHECK  1000    /* ms: a waiting GET looks again */
#define NGX_HTTP_CHAT_SIO_OPEN_WAIT  2000   /* ms: a handshake's subscription */


/* a handshake's ids, and the count of its address */
typedef struct {
    u_char                       ids[2 * NGX_HTTP_CHAT_SIO_ID_LEN];
    ngx_http_chat_ws_peer_t     *peer;
} ngx_http_chat_sio_born_t;


typedef struct {
    ngx_http_request_t          *request;
    ngx_http_chat_rt_link_t     *link;
    ngx_event_t                  recheck;
    ngx_msec_t                   deadline;
    ngx_str_t                    keys[2];
    u_char                       sid[NGX_HTTP_CHAT_SIO_ID_LEN];
    u_char                       gid[NGX_HTTP_CHAT_SIO_ID_LEN]; /* GET's */
    unsigned                     waiting:1;
    unsigned                     woken:1;   /* while its look was on */
    unsigned                     marked:1;  /* the session's waiting GET */
    unsigned                     last:1;    /* its last look */
} ngx_http_chat_sio_poll_t;


/* a handshake, answered once its session hears its input channel */
typedef struct {
    ngx_http_request_t          *request;
    ngx_http_chat_rt_session_t  *session;   /* NULL once it went */
    ngx_http_chat_rt_link_t     *barrier;
    ngx_event_t                  timeout;
    size_t                       len;
    u_char                       open[256]; /* the open packet */
} ngx_http_chat_sio_opening_t;


static ngx_int_t ngx_http_chat_sio_handshake(ngx_http_request_t *r);
static ngx_int_t ngx_http_chat_sio_handshaken(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_chat_sio_opened(void *data, u_char *msg, size_t len);
static void ngx_http_chat_sio_open_timeout(ngx_event_t *ev);
static ngx_http_chat_rt_session_t *ngx_http_chat_sio_opening_stop(
    ngx_http_chat_sio_opening_t *o);
static void ngx_http_chat_sio_opening_cleanup(void *data);
static ssize_t ngx_http_chat_sio_poll_send(ngx_connection_t *c, u_char *buf,
    size_t size);
static void ngx_http_chat_sio_poll_release(ngx_connection_t *c);
static ngx_int_t ngx_http_chat_sio_get(ngx_http_request_t *r);
static ngx_int_t ngx_http_chat_sio_got(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_chat_sio_wake(void *data, u_char *msg, size_t len);
static void ngx_http_chat_sio_recheck(ngx_event_t *ev);
static void ngx_http_chat_sio_poll_cleanup(void *data);
static void ngx_http_chat_sio_post_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_chat_sio_posted(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_sio_text(ngx_http_request_t *r,
    ngx_uint_t status, u_char *text, size_t len);


/*
 * What a GET takes: nil when there is no such session.  A GET that finds
 * nothing marks itself as the session's waiting one ("g"); another GET
 * while one waits ends the session (Engine.IO's rule): -1 for it, a
 * close for the waiting one, and the session's worker told to close.
 * ARGV: the GET's id, "l" for its last look (it unmarks itself and
 * answers whatever it finds), the wake-up and the input channels.
 */
static const char  ngx_http_chat_sio_take[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end "
    "local g = redis.call('HGET', KEYS[1], 'g') "
    "if g and g ~= ARGV[1] then "
    "redis.call('DEL', KEYS[1], KEYS[2]) "
    "redis.call('PUBLISH', ARGV[3], 'x1') "
    "redis.call('PUBLISH', ARGV[4], '\\0') "
    "return -1 end "
    "local p = redis.call('LRANGE', KEYS[2], 0, -1) "
    "if #p > 0 then redis.call('DEL', KEYS[2]) end "
    "if #p > 0 or ARGV[2] == 'l' then "
    "if g then redis.call('HDEL', KEYS[1], 'g') end "
    "else redis.call('HSET', KEYS[1], 'g', ARGV[1]) end "
    "return p";

/* a waiting GET the client left: no longer the session's poller */
static const char  ngx_http_chat_sio_untake[] =
    "if redis.call('HGET', KEYS[1], 'g') == ARGV[1] then "
    "redis.call('HDEL', KEYS[1], 'g') end "
    "return 1";

/* a POST to the session's worker: -1 no session, else the listeners */
static const char  ngx_http_chat_sio_give[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end "
    "return redis.call('PUBLISH', ARGV[1], ARGV[2])";

/*
 * A packet for the client, while the session exists; the list lives no
 * longer than the session.  A client that stopped polling is not let
 * grow the list for ever: past the bound its packets give way to a close
 * (it comes back and resyncs, as a slow WebSocket reader does).  A note
 * (ARGV[4], ARGV[5]: a field of the session's hash and its value) is
 * set with its packet, in one step: the upgrade's socket, which takes
 * the list and the hash in one step too, never reads "the client was
 * told" without the packet that told it.  "a" (told it signed in) ends
 * the session's count among those not signed in (ARGV[6]: the eio sid).
 */
static const char  ngx_http_chat_sio_push[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "local n = redis.call('RPUSH', KEYS[2], ARGV[1]) "
    "if n > tonumber(ARGV[2]) then "
    "redis.call('DEL', KEYS[2]) redis.call('RPUSH', KEYS[2], '1') "
    "elseif ARGV[4] ~= '' then "
    "redis.call('HSET', KEYS[1], ARGV[4], ARGV[5]) "
    "if ARGV[4] == 'a' then "
    "redis.call('ZREM', KEYS[3], ARGV[6]) "
    "redis.call('ZREM', KEYS[4], ARGV[6]) end end "
    "redis.call('EXPIRE', KEYS[2], ARGV[3]) "
    "return n";

/*
 * The handshake, unless the sessions not yet signed in are too many in
 * all (-1) or from this address (-2): each such session is a member of
 * "eio:u" and "eio:u:<address>" scored with the time it is counted till
 * (its heartbeat moves it on; signing in and closing take it out).  The
 * session is known before its first GET.
 * ARGV: sio sid, TTL, now, max in all, max per address, eio sid, address
 */
static const char  ngx_http_chat_sio_born[] =
    "local t = tonumber(ARGV[2]) local now = tonumber(ARGV[3]) "
    "for i = 2, 3 do "
    "redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now) end "
    "if tonumber(ARGV[4]) > 0 "
    "and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then "
    "return -1 end "
    "if tonumber(ARGV[5]) > 0 "
    "and redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then "
    "return -2 end "
    "for i = 2, 3 do "
    "redis.call('ZADD', KEYS[i], now + t, ARGV[6]) "
    "if redis.call('TTL', KEYS[i]) < t then "
    "redis.call('EXPIRE', KEYS[i], t) end end "
    "redis.call('HSET', KEYS[1], 's', ARGV[1], 'c', '0', 'i', ARGV[7]) "
    "redis.call('EXPIRE', KEYS[1], t) "
    "return 1";

/* the heartbeat: the keys live on, and the count of one not signed in */
static const char  ngx_http_chat_sio_alive[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "local t = tonumber(ARGV[1]) "
    "redis.call('EXPIRE', KEYS[1], t) redis.call('EXPIRE', KEYS[2], t) "
    "if ARGV[4] == '1' then "
    "for i = 3, 4 do "
    "redis.call('ZADD', KEYS[i], 'XX', tonumber(ARGV[2]) + t, ARGV[3]) "
    "if redis.call('TTL', KEYS[i]) < t then "
    "redis.call('EXPIRE', KEYS[i], t) end end end "
    "return 1";

/*
 * The session is over: gone at once.  A waiting GET hears its last
 * packets on the wake-up channel ("x" and the payload); every later
 * request finds no session.  ARGV: eio sid, the last packet, the channel
 */
static const char  ngx_http_chat_sio_end[] =
    "local p = redis.call('LRANGE', KEYS[2], 0, -1) "
    "redis.call('DEL', KEYS[1], KEYS[2]) "
    "redis.call('ZREM', KEYS[3], ARGV[1]) "
    "redis.call('ZREM', KEYS[4], ARGV[1]) "
    "p[#p + 1] = ARGV[2] "
    "redis.call('PUBLISH', ARGV[3], 'x' .. table.concat(p, '\\30')) "
    "return 1";

/* remembered only while the session exists: no key without a TTL */
static const char  ngx_http_chat_sio_note[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) "
    "return 1";


/* by ngx_http_chat_eio_kind_e: the one place these names are spelled */
static ngx_str_t  ngx_http_chat_eio_prefixes[] = {
    ngx_string("eio:s:"),
    ngx_string("eio:q:"),
    ngx_string("eio:u"),
    ngx_string("eio:u:"),
    ngx_string(NGX_HTTP_CHAT_EIO_WAKE_KIND),
    ngx_string(NGX_HTTP_CHAT_EIO_INPUT_KIND)
};


u_char *
ngx_http_chat_eio_key(u_char *buf, ngx_uint_t kind, u_char *id, size_t len)
{
    u_char  *p;

    p = ngx_cpymem(buf, ngx_http_chat_eio_prefixes[kind].data,
                   ngx_http_chat_eio_prefixes[kind].len);

    switch (kind) {

    case NGX_HTTP_CHAT_EIO_UNAUTH:
        return p;

    case NGX_HTTP_CHAT_EIO_UNAUTH_ADDR:
        return ngx_cpymem(p, id, ngx_min(len, NGX_SOCKADDR_STRLEN));

    default:
        return ngx_cpymem(p, id, ngx_min(len, NGX_HTTP_CHAT_SIO_ID_LEN));
    }
}


ngx_int_t
ngx_http_chat_eio_key_alloc(ngx_pool_t *pool, ngx_str_t *key,
    ngx_uint_t kind, u_char *sid)
{
    key->data = ngx_pnalloc(pool, NGX_HTTP_CHAT_EIO_KEY_LEN);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_http_chat_eio_key(key->data, kind, sid,
                                     NGX_HTTP_CHAT_SIO_ID_LEN)
               - key->data;

    return NGX_OK;
}


ngx_uint_t
ngx_http_chat_sio_sid_valid(ngx_str_t *sid)
{
    size_t  i;
    u_char  ch;

    if (sid->len != NGX_HTTP_CHAT_SIO_ID_LEN) {
        return 0;
    }

    for (i = 0; i < sid->len; i++) {
        ch = sid->data[i];

        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z')
              || (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/* the names of a polling session's keys, and of its counts: keys[kind] */
typedef struct {
    ngx_str_t  keys[4];
    u_char     buf[3 * NGX_HTTP_CHAT_EIO_KEY_LEN + NGX_HTTP_CHAT_EIO_KEY_MAX];
} ngx_http_chat_sio_names_t;


static void
ngx_http_chat_sio_names(ngx_http_chat_sio_names_t *n, u_char *sid,
    ngx_str_t *addr)
{
    u_char      *p;
    ngx_uint_t   i;

    p = n->buf;

    /* eio:s:<sid>, eio:q:<sid>, eio:u, eio:u:<address> */
    for (i = 0; i < 4; i++) {
        n->keys[i].data = p;

        if (i == NGX_HTTP_CHAT_EIO_UNAUTH_ADDR) {
            p = ngx_http_chat_eio_key(p, i, addr->data, addr->len);

        } else {
            p = ngx_http_chat_eio_key(p, i, sid, NGX_HTTP_CHAT_SIO_ID_LEN);
        }

        n->keys[i].len = p - n->keys[i].data;
    }
}


/* a script for the session's own keys, whose answer nobody waits for */
static ngx_int_t
ngx_http_chat_sio_run(const char *script, ngx_uint_t nkeys, ngx_str_t *args,
    ngx_uint_t nargs)
{
    u_char       nk[NGX_INT_T_LEN];
    ngx_uint_t   i;
    const char  *argv[16];
    size_t       argvlen[16];

    if (nargs > 13) {
        return NGX_ERROR;
    }

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = script;
    argvlen[1] = ngx_strlen(script);
    argv[2] = (const char *) nk;
    argvlen[2] = ngx_sprintf(nk, "%ui", nkeys) - nk;

    for (i = 0; i < nargs; i++) {
        argv[3 + i] = (const char *) args[i].data;
        argvlen[3 + i] = args[i].len;
    }

    return ngx_http_chat_redis_command_argv(ngx_http_chat_redis_main, NULL,
                                            NULL, (int) (3 + nargs), argv,
                                            argvlen);
}


/* seconds a polling session's keys outlive its last heartbeat */
static time_t
ngx_http_chat_sio_ttl(ngx_http_chat_ws_conf_t *conf)
{
    return 2 * (conf->ping_interval + conf->pong_timeout) / 1000 + 1;
}


/* the sid is the session's only credential: no cache keeps an answer */
static ngx_int_t
ngx_http_chat_sio_no_store(ngx_http_request_t *r)
{
    ngx_str_t  value;

    ngx_str_set(&value, "no-store");

    if (ngx_http_chat_add_header(r, "Cache-Control", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_str_set(&value, "nosniff");

    return ngx_http_chat_add_header(r, "X-Content-Type-Options", &value);
}


/* GET/POST /socket.io/?EIO=4&transport=polling[&sid=] */
ngx_int_t
ngx_http_chat_sio_poll_handler(ngx_http_request_t *r, ngx_str_t *sid)
{
    ngx_int_t                  rc;
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_sio_poll_t  *st;
    ngx_http_chat_loc_conf_t  *clcf;

    if (sid->len == 0) {
        if (r->method != NGX_HTTP_GET) {
            return ngx_http_chat_send_json(r, NGX_HTTP_BAD_REQUEST,
                                   json_pack("{s:i,s:s}", "code", 2,
                                             "message",
                                             "Bad handshake method"));
        }

        return ngx_http_chat_sio_handshake(r);
    }

    if (!ngx_http_chat_sio_sid_valid(sid)) {
        return ngx_http_chat_sio_unknown(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_sio_poll_t));
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st->request = r;
    ngx_memcpy(st->sid, sid->data, NGX_HTTP_CHAT_SIO_ID_LEN);
    ngx_http_chat_sio_id(st->gid);
    ctx->state = st;

    if (ngx_http_chat_eio_key_alloc(r->pool, &st->keys[0],
                                    NGX_HTTP_CHAT_EIO_SESSION, st->sid)
        != NGX_OK
        || ngx_http_chat_eio_key_alloc(r->pool, &st->keys[1],
                                       NGX_HTTP_CHAT_EIO_QUEUE, st->sid)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_GET) {
        return ngx_http_chat_sio_get(r);
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_chat_send_json(r, NGX_HTTP_BAD_REQUEST,
                                       json_pack("{s:i,s:s}", "code", 3,
                                                 "message", "Bad request"));
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);

    if (r->headers_in.content_length_n > (off_t) clcf->ws.max_message) {
        /* as the reference server: a bare 413; the body is not read */
        r->keepalive = 0;
        r->lingering_close = 1;
        return ngx_http_chat_sio_text(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      (u_char *) "", 0);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_chat_sio_post_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    /* the body handler finalizes */
    return NGX_DONE;
}


/*
 * The handshake: its ids and its existence in Redis first (unless the
 * sessions not signed in are too many), then a session on a stand-in
 * connection in this worker, and the open packet as the answer.
 */
static ngx_int_t
ngx_http_chat_sio_handshake(ngx_http_request_t *r)
{
    u_char                     *ids;
    time_t                      retry;
    ngx_int_t                   rc;
    ngx_str_t                   args[7];
    ngx_pool_t                 *pool;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_loc_conf_t   *clcf;
    ngx_http_chat_sio_names_t  *n;
    ngx_http_chat_sio_born_t   *born;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    pool = r->pool;

    /* the answer needs the ids: they stay in the request's pool */
    born = ngx_pcalloc(pool, sizeof(ngx_http_chat_sio_born_t));
    n = ngx_palloc(pool, sizeof(ngx_http_chat_sio_names_t));
    if (born == NULL || n == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the sessions of its address in this instance first */
    rc = ngx_http_chat_rt_conn_take(r, &clcf->ws, 0, &born->peer, &retry);

    if (rc == NGX_BUSY) {
        /* Engine.IO's refusal of a handshake, as a 429 */
        return ngx_http_chat_rt_conn_refuse(r, retry,
                   json_pack("{s:i,s:s}", "code", 4, "message",
                             "Too many connections from this address"));
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ids = born->ids;
    ngx_http_chat_sio_id(ids);
    ngx_http_chat_sio_id(ids + NGX_HTTP_CHAT_SIO_ID_LEN);
    ctx->state = born;

    ngx_http_chat_sio_names(n, ids, &r->connection->addr_text);

    args[0].data = ids + NGX_HTTP_CHAT_SIO_ID_LEN;
    args[0].len = NGX_HTTP_CHAT_SIO_ID_LEN;
    args[5].data = ids;
    args[5].len = NGX_HTTP_CHAT_SIO_ID_LEN;
    args[6] = r->connection->addr_text;

    if (ngx_http_chat_str_num(pool, &args[1],
                              ngx_http_chat_sio_ttl(&clcf->ws))
        != NGX_OK
        || ngx_http_chat_str_num(pool, &args[2], ngx_time()) != NGX_OK
        || ngx_http_chat_str_num(pool, &args[3], clcf->sio_max_unauth)
           != NGX_OK
        || ngx_http_chat_str_num(pool, &args[4], clcf->sio_max_unauth_addr)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* eio:s:<sid>, eio:u, eio:u:<address> */
    n->keys[1] = n->keys[2];
    n->keys[2] = n->keys[3];

    return ngx_http_chat_redis_eval(r, ngx_http_chat_sio_born, 3, n->keys, 7,
                                    args, ngx_http_chat_sio_handshaken);
}


static ngx_int_t
ngx_http_chat_sio_handshaken(ngx_http_request_t *r, redisReply *reply)
{
    u_char                       *ids;
    ngx_pool_t                   *pool;
    ngx_connection_t             *c;
    ngx_http_cleanup_t           *cln;
    ngx_http_chat_ws_t           *ws;
    ngx_http_chat_ctx_t          *ctx;
    ngx_http_chat_loc_conf_t     *clcf;
    ngx_http_chat_sio_born_t     *born;
    ngx_http_chat_rt_session_t   *s;
    ngx_http_chat_sio_opening_t  *o;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    born = ctx->state;
    ids = born->ids;

    if (reply->type != REDIS_REPLY_INTEGER) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (reply->integer < 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "chat socket.io: too many sessions not signed in%s, "
                      "handshake refused",
                      reply->integer == -2 ? " from this address" : "");

        /* as the reference server refuses a handshake it does not allow */
        return ngx_http_chat_send_json(r, NGX_HTTP_FORBIDDEN,
                                       json_pack("{s:i,s:s}", "code", 4,
                                                 "message", "Forbidden"));
    }

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));
    if (c == NULL) {
        ngx_destroy_pool(pool);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    c->pool = pool;
    c->fd = (ngx_socket_t) -1;
    c->log = ngx_palloc(pool, sizeof(ngx_log_t));
    c->read = ngx_pcalloc(pool, sizeof(ngx_event_t));
    c->write = ngx_pcalloc(pool, sizeof(ngx_event_t));
    c->addr_text.data = ngx_pnalloc(pool, r->connection->addr_text.len);

    if (c->log == NULL || c->read == NULL || c->write == NULL
        || c->addr_text.data == NULL)
    {
        ngx_destroy_pool(pool);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *c->log = *ngx_cycle->log;
    c->log->connection = r->connection->number;
    c->number = r->connection->number;
    c->read->log = c->log;
    c->write->log = c->log;
    c->write->ready = 1;
    c->send = ngx_http_chat_sio_poll_send;

    ngx_memcpy(c->addr_text.data, r->connection->addr_text.data,
               r->connection->addr_text.len);
    c->addr_text.len = r->connection->addr_text.len;

    ws = ngx_http_chat_ws_create(c, &clcf->ws);
    if (ws == NULL) {
        ngx_destroy_pool(pool);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the count is the session's from here: its end releases it */
    ngx_http_chat_rt_conn_move(born->peer, &ws->peer);

    ws->release = ngx_http_chat_sio_poll_release;
    ws->main_conf = r->main_conf;
    ws->srv_conf = r->srv_conf;
    ws->loc_conf = r->loc_conf;
    ws->last_read = ngx_current_msec;
    c->data = ws;

    if (ngx_http_chat_sio_app.open(ws) != NGX_OK) {
        ngx_free(ws);
        ngx_destroy_pool(pool);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the ids Redis knows the session by */
    s = ws->data;
    s->sio->polling = 1;

    s->gauge = 2;
    ngx_http_chat_metric_dec(NGX_HTTP_CHAT_M_SOCKETS_SIO_WS);
    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_SOCKETS_SIO_POLL);
    ngx_memcpy(s->sio->eio_sid, ids, NGX_HTTP_CHAT_SIO_ID_LEN);
    ngx_memcpy(s->sio->sid, ids + NGX_HTTP_CHAT_SIO_ID_LEN,
               NGX_HTTP_CHAT_SIO_ID_LEN);

    o = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_sio_opening_t));
    cln = ngx_http_cleanup_add(r, 0);

    if (o == NULL || cln == NULL
        || ngx_http_chat_rt_join_relay(s, s->sio->eio_sid) != NGX_OK)
    {
        ngx_http_chat_ws_abort(ws);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o->request = r;
    o->len = ngx_http_chat_sio_open_packet(o->open, sizeof(o->open), ids,
                                           &clcf->ws, 1);

    /*
     * The client may POST the moment it has the sid, on any worker, and
     * a POST is published on "eioi:<sid>": the answer waits till this
     * worker hears that channel.  A subscription of its own, asked after
     * it on the same connection, is confirmed after it (Redis answers a
     * connection in order), as the upgrade's barrier is.
     */
    o->barrier = ngx_http_chat_rt_wait(NGX_HTTP_CHAT_EIO_BARRIER_KIND,
                                       s->sio->eio_sid,
                                       ngx_http_chat_sio_opened, o);
    if (o->barrier == NULL) {
        ngx_http_chat_ws_abort(ws);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o->session = s;
    s->sio->opening = o;

    cln->handler = ngx_http_chat_sio_opening_cleanup;
    cln->data = o;

    o->timeout.handler = ngx_http_chat_sio_open_timeout;
    o->timeout.data = o;
    o->timeout.log = r->connection->log;
    ngx_add_timer(&o->timeout, NGX_HTTP_CHAT_SIO_OPEN_WAIT);

    /* a client that goes away ends the wait, and the session it began */
    r->read_event_handler = ngx_http_test_reading;
    r->main->count++;

    return NGX_DONE;
}


/* the session hears its input channel: the open packet is the answer */
static void
ngx_http_chat_sio_opened(void *data, u_char *msg, size_t len)
{
    ngx_int_t                     rc;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_chat_sio_opening_t  *o;

    o = data;
    r = o->request;
    c = r->connection;

    if (ngx_http_chat_sio_opening_stop(o) == NULL) {
        /* the session ended meanwhile (its heartbeat, the worker going) */
        rc = ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "service_unavailable",
                                      "a back end is unavailable, "
                                      "try again shortly");

    } else {
        rc = ngx_http_chat_sio_text(r, NGX_HTTP_OK, o->open, o->len);
    }

    /* the wait's own reference goes */
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * No confirmation in time: the subscriber connection is away.  The
 * client, told 503, opens another session later; this one, whose sid
 * nobody knows, ends now (it counts among those not signed in).
 */
static void
ngx_http_chat_sio_open_timeout(ngx_event_t *ev)
{
    ngx_int_t                     rc;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_chat_rt_session_t   *s;
    ngx_http_chat_sio_opening_t  *o;

    o = ev->data;
    r = o->request;
    c = r->connection;

    s = ngx_http_chat_sio_opening_stop(o);

    ngx_log_error(NGX_LOG_WARN, c->log, 0,
                  "chat socket.io: the session's input channel was not "
                  "heard in time, handshake answered 503");

    if (s) {
        ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_GOING_AWAY, NULL);
    }

    rc = ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "service_unavailable",
                                  "a back end is unavailable, "
                                  "try again shortly");

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* the wait ends: the session it held, if it still lives and was held */
static ngx_http_chat_rt_session_t *
ngx_http_chat_sio_opening_stop(ngx_http_chat_sio_opening_t *o)
{
    ngx_http_chat_rt_session_t  *s;

    if (o->barrier) {
        ngx_http_chat_rt_unwait(o->barrier);
        o->barrier = NULL;
    }

    if (o->timeout.timer_set) {
        ngx_del_timer(&o->timeout);
    }

    s = o->session;
    o->session = NULL;

    if (s) {
        s->sio->opening = NULL;
    }

    return s;
}


/* the request goes: before its answer, the client never had the sid */
static void
ngx_http_chat_sio_opening_cleanup(void *data)
{
    ngx_http_chat_sio_opening_t  *o = data;

    ngx_http_chat_rt_session_t  *s;

    s = ngx_http_chat_sio_opening_stop(o);

    if (s) {
        /* freed from a posted event, not under this cleanup */
        ngx_http_chat_ws_close(s->ws, NGX_HTTP_CHAT_WS_GOING_AWAY, NULL);
    }
}


/* the stand-in connection's send(): frames become packets in Redis */
static ssize_t
ngx_http_chat_sio_poll_send(ngx_connection_t *c, u_char *buf, size_t size)
{
    u_char                      *payload;
    size_t                       hlen;
    ngx_uint_t                   opcode;
    ngx_http_chat_ws_t          *ws;
    ngx_http_chat_rt_session_t  *s;

    ws = c->data;
    s = ws->data;

    if (size < 2 || s == NULL || s->sio == NULL) {
        return size;
    }

    opcode = buf[0] & 0x0f;
    hlen = ngx_http_chat_ws_frame_header_len(buf, size);

    if (hlen > size) {
        return size;
    }

    payload = buf + hlen;

    if (s->sio->gone) {
        if (s->sio->gone_told || size - hlen != 1 || payload[0] != '6') {
            /* after its last packet: the upgrade's socket has the rest */
            return size;
        }

        s->sio->gone_told = 1;
    }

    if (opcode == NGX_HTTP_CHAT_WS_CLOSE) {
        /* the transport closes: the session's end tells a waiting GET */
        ws->close_received = 1;
        return size;
    }

    if (opcode != NGX_HTTP_CHAT_WS_TEXT) {
        return size;    /* pings and pongs are the socket's own business */
    }

    if (ngx_http_chat_sio_push_packet(s, payload, size - hlen) != NGX_OK) {
        /* Redis is away: as a socket that failed */
        return NGX_ERROR;
    }

    /* "g": the last packet, which the upgrade's socket waits for */
    (void) ngx_http_chat_rt_publish_raw(NGX_HTTP_CHAT_EIO_WAKE_KIND,
                                        s->sio->eio_sid,
                                        (u_char *) (s->sio->gone_told
                                                    ? "g" : "1"), 1);

    return size;
}


/*
 * A packet into the session's list, which lives no longer than it; the
 * session's note, if any, set with it (and used up)
 */
ngx_int_t
ngx_http_chat_sio_push_packet(ngx_http_chat_rt_session_t *s, u_char *data,
    size_t len)
{
    u_char                     note[2];
    ngx_str_t                  args[10];
    ngx_http_chat_sio_names_t  n;
    u_char                     max[NGX_INT_T_LEN], ttl[NGX_INT64_LEN];

    note[0] = s->sio->note[0];
    note[1] = s->sio->note[1];
    s->sio->note[0] = '\0';

    ngx_http_chat_sio_names(&n, s->sio->eio_sid,
                            &s->ws->connection->addr_text);

    args[0] = n.keys[0];
    args[1] = n.keys[1];
    args[2] = n.keys[2];
    args[3] = n.keys[3];
    args[4].data = data;
    args[4].len = len;
    args[5].data = max;
    args[5].len = ngx_sprintf(max, "%d", NGX_HTTP_CHAT_SIO_QUEUE_MAX) - max;
    args[6].data = ttl;
    args[6].len = ngx_sprintf(ttl, "%T", ngx_http_chat_sio_ttl(s->ws->conf))
                  - ttl;
    args[7].data = note;
    args[7].len = note[0] ? 1 : 0;
    args[8].data = note + 1;
    args[8].len = note[0] ? 1 : 0;
    args[9].data = s->sio->eio_sid;
    args[9].len = NGX_HTTP_CHAT_SIO_ID_LEN;

    return ngx_http_chat_sio_run(ngx_http_chat_sio_push, 4, args, 10);
}


static void
ngx_http_chat_sio_poll_release(ngx_connection_t *c)
{
    ngx_destroy_pool(c->pool);
}


/*
 * The session keeps its keys alive with its heartbeat, and, till it
 * signs in, its place among those not signed in.
 */
void
ngx_http_chat_sio_poll_refresh(ngx_http_chat_rt_session_t *s)
{
    u_char                     ttl[NGX_INT64_LEN], now[NGX_INT64_LEN];
    ngx_str_t                  args[8];
    ngx_http_chat_sio_names_t  n;

    ngx_http_chat_sio_names(&n, s->sio->eio_sid,
                            &s->ws->connection->addr_text);

    args[0] = n.keys[0];
    args[1] = n.keys[1];
    args[2] = n.keys[2];
    args[3] = n.keys[3];
    args[4].data = ttl;
    args[4].len = ngx_sprintf(ttl, "%T", ngx_http_chat_sio_ttl(s->ws->conf))
                  - ttl;
    args[5].data = now;
    args[5].len = ngx_sprintf(now, "%T", ngx_time()) - now;
    args[6].data = s->sio->eio_sid;
    args[6].len = NGX_HTTP_CHAT_SIO_ID_LEN;
    args[7].data = (u_char *) (s->authenticated ? "0" : "1");
    args[7].len = 1;

    (void) ngx_http_chat_sio_run(ngx_http_chat_sio_alive, 4, args, 8);
}


/*
 * The session is over: its keys go at once, and a waiting GET gets what
 * was left and the last packet (a noop when the client closed, else a
 * close).  After an upgrade the WebSocket owns the keys.
 */
void
ngx_http_chat_sio_poll_gone(ngx_http_chat_rt_session_t *s)
{
    u_char                        channel[NGX_HTTP_CHAT_EIO_KEY_LEN];
    ngx_str_t                     args[7];
    ngx_http_chat_sio_names_t     n;
    ngx_http_chat_sio_opening_t  *o;

    o = s->sio->opening;

    if (o) {
        /* its handshake, still waiting, answers 503 */
        s->sio->opening = NULL;
        o->session = NULL;
    }

    if (s->sio->gone) {
        return;
    }

    ngx_http_chat_sio_names(&n, s->sio->eio_sid,
                            &s->ws->connection->addr_text);

    args[0] = n.keys[0];
    args[1] = n.keys[1];
    args[2] = n.keys[2];
    args[3] = n.keys[3];
    args[4].data = s->sio->eio_sid;
    args[4].len = NGX_HTTP_CHAT_SIO_ID_LEN;
    args[5].data = (u_char *) (s->sio->client_closed ? "6" : "1");
    args[5].len = 1;
    args[6].data = channel;
    args[6].len = ngx_http_chat_eio_key(channel, NGX_HTTP_CHAT_EIO_WAKE,
                                        s->sio->eio_sid,
                                        NGX_HTTP_CHAT_SIO_ID_LEN)
                  - channel;

    (void) ngx_http_chat_sio_run(ngx_http_chat_sio_end, 4, args, 7);
}


/*
 * Remembered for the worker that takes the upgrade, while the session
 * exists: the token, a CONNECT being answered.  What the client was told
 * is not remembered here but noted with the packet that tells it
 * (ngx_http_chat_sio_push_packet()).
 */
void
ngx_http_chat_sio_remember(ngx_http_chat_rt_session_t *s, const char *field,
    ngx_str_t *value)
{
    u_char                      sealed[NGX_HTTP_CHAT_SIO_SEALED_MAX],
                                key[NGX_HTTP_CHAT_EIO_KEY_LEN];
    ngx_str_t                   args[3], v;
    ngx_http_chat_main_conf_t  *cmcf;

    v = *value;

    if (field[0] == 't') {
        /* the token, sealed: Redis never holds a bearer token */
        cmcf = s->main_conf[ngx_http_chat_module.ctx_index];
        v.data = sealed;
        v.len = sizeof(sealed);

        if (ngx_http_chat_sio_seal(&cmcf->jwt_secret, s->sio->eio_sid, value,
                                   &v)
            != NGX_OK)
        {
            return;
        }
    }

    args[0].data = key;
    args[0].len = ngx_http_chat_eio_key(key, NGX_HTTP_CHAT_EIO_SESSION,
                                        s->sio->eio_sid,
                                        NGX_HTTP_CHAT_SIO_ID_LEN)
                  - key;
    args[1].data = (u_char *) field;
    args[1].len = ngx_strlen(field);
    args[2] = v;

    (void) ngx_http_chat_sio_run(ngx_http_chat_sio_note, 1, args, 3);
}


/* what a client posted, relayed to the session's worker */
void
ngx_http_chat_sio_relayed(ngx_http_chat_rt_session_t *s, u_char *msg,
    size_t len)
{
    u_char              *p, *last, *end;
    ngx_http_chat_ws_t  *ws;

    ws = s->ws;
    ws->last_read = ngx_current_msec;

    /* packets separated by a record separator (0x1e) */
    for (p = msg, last = msg + len; p < last && !ws->destroy; p = end + 1) {
        end = ngx_strlchr(p, last, 0x1e);
        if (end == NULL) {
            end = last;
        }

        if (end > p) {
            ngx_http_chat_sio_message(ws, NGX_HTTP_CHAT_WS_TEXT, p, end - p);
        }
    }
}


static ngx_int_t
ngx_http_chat_sio_get(ngx_http_request_t *r)
{
    u_char                     *p;
    ngx_str_t                   args[4];
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_sio_poll_t   *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    st = ctx->state;

    p = ngx_pnalloc(r->pool, 2 * NGX_HTTP_CHAT_EIO_KEY_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args[0].data = st->gid;
    args[0].len = NGX_HTTP_CHAT_SIO_ID_LEN;
    args[1].data = (u_char *) (st->last ? "l" : "w");
    args[1].len = 1;
    args[2].data = p;
    p = ngx_http_chat_eio_key(p, NGX_HTTP_CHAT_EIO_WAKE, st->sid,
                              NGX_HTTP_CHAT_SIO_ID_LEN);
    args[2].len = p - args[2].data;
    args[3].data = p;
    p = ngx_http_chat_eio_key(p, NGX_HTTP_CHAT_EIO_INPUT, st->sid,
                              NGX_HTTP_CHAT_SIO_ID_LEN);
    args[3].len = p - args[3].data;

    return ngx_http_chat_redis_eval(r, ngx_http_chat_sio_take, 2, st->keys,
                                    4, args, ngx_http_chat_sio_got);
}


/* packets separated by a record separator (0x1e) */
static ngx_int_t
ngx_http_chat_sio_payload(ngx_http_request_t *r, redisReply *reply)
{
    u_char  *body, *p;
    size_t   i, len;

    len = 0;

    for (i = 0; i < reply->elements; i++) {
        len += reply->element[i]->len + 1;
    }

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body;

    for (i = 0; i < reply->elements; i++) {
        if (i) {
            *p++ = 0x1e;
        }

        p = ngx_cpymem(p, reply->element[i]->str, reply->element[i]->len);
    }

    return ngx_http_chat_sio_text(r, NGX_HTTP_OK, body, p - body);
}


static ngx_int_t
ngx_http_chat_sio_got(ngx_http_request_t *r, redisReply *reply)
{
    ngx_http_cleanup_t        *cln;
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_sio_poll_t  *st;
    ngx_http_chat_loc_conf_t  *clcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    st = ctx->state;

    if (reply->type == REDIS_REPLY_INTEGER) {
        /* a GET while another waited: the session is closed */
        st->marked = 0;
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chat socket.io: a GET while another waited, "
                      "session closed");
        return ngx_http_chat_sio_text(r, NGX_HTTP_BAD_REQUEST,
                                      (u_char *) "", 0);
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        st->marked = 0;
        return ngx_http_chat_sio_unknown(r);
    }

    if (reply->elements || st->last) {
        st->marked = 0;

        if (reply->elements == 0) {
            /* past the wait: a noop, the client polls on */
            return ngx_http_chat_sio_text(r, NGX_HTTP_OK, (u_char *) "6", 1);
        }

        return ngx_http_chat_sio_payload(r, reply);
    }

    st->marked = 1;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);

    if (st->deadline == 0) {
        st->deadline = ngx_current_msec + clcf->ws.ping_interval
                       + clcf->ws.pong_timeout;

        cln = ngx_http_cleanup_add(r, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_chat_sio_poll_cleanup;
        cln->data = st;

        st->recheck.handler = ngx_http_chat_sio_recheck;
        st->recheck.data = st;
        st->recheck.log = r->connection->log;

        /* a client that goes away ends the wait */
        r->read_event_handler = ngx_http_test_reading;
    }

    /*
     * Past the wait, or the worker is going: a last look, which ends this
     * GET's mark before it answers (the client's next GET is no
     * duplicate).
     */
    if ((ngx_msec_int_t) (ngx_current_msec - st->deadline) >= 0
        || ngx_exiting)
    {
        st->last = 1;
        return ngx_http_chat_sio_get(r);
    }

    if (st->woken) {
        /* woken while it looked: what woke it may have come after */
        st->woken = 0;
        return ngx_http_chat_sio_get(r);
    }

    /*
     * Nothing yet: wait for the session's wake-up, or look again soon.
     * The wait is heard from for as long as this GET lasts; a packet
     * queued before its subscription was live is looked for again when
     * Redis confirms it (an empty wake-up).
     */
    if (st->link == NULL) {
        st->link = ngx_http_chat_rt_wait(NGX_HTTP_CHAT_EIO_WAKE_KIND,
                                         st->sid, ngx_http_chat_sio_wake,
                                         st);
        if (st->link == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ngx_add_timer(&st->recheck, NGX_HTTP_CHAT_SIO_RECHECK);
    st->waiting = 1;
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_chat_sio_wake(void *data, u_char *msg, size_t len)
{
    u_char                    *body;
    ngx_int_t                  rc;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_chat_sio_poll_t  *st;

    st = data;
    r = st->request;
    c = r->connection;

    if (!st->waiting) {
        /* its look is on: another follows it */
        st->woken = 1;
        return;
    }

    st->waiting = 0;

    if (st->recheck.timer_set) {
        ngx_del_timer(&st->recheck);
    }

    if (msg && len > 1 && msg[0] == 'x') {
        /* the session ended: its last packets, and no session after */
        st->marked = 0;

        if (st->link) {
            ngx_http_chat_rt_unwait(st->link);
            st->link = NULL;
        }

        body = ngx_pnalloc(r->pool, len - 1);
        if (body == NULL) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

        } else {
            ngx_memcpy(body, msg + 1, len - 1);
            rc = ngx_http_chat_sio_text(r, NGX_HTTP_OK, body, len - 1);
        }

    } else {
        rc = ngx_http_chat_sio_get(r);
    }

    /* the wait's own reference goes; the new step holds its own */
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_chat_sio_recheck(ngx_event_t *ev)
{
    ngx_http_chat_sio_wake(ev->data, NULL, 0);
}


static void
ngx_http_chat_sio_poll_cleanup(void *data)
{
    ngx_http_chat_sio_poll_t  *st = data;

    ngx_str_t  args[2];

    st->waiting = 0;

    if (st->link) {
        ngx_http_chat_rt_unwait(st->link);
        st->link = NULL;
    }

    if (st->recheck.timer_set) {
        ngx_del_timer(&st->recheck);
    }

    if (st->marked) {
        /* the client left while this GET waited: the next is no duplicate */
        st->marked = 0;

        args[0] = st->keys[0];
        args[1].data = st->gid;
        args[1].len = NGX_HTTP_CHAT_SIO_ID_LEN;

        (void) ngx_http_chat_sio_run(ngx_http_chat_sio_untake, 1, args, 2);
    }
}


static void
ngx_http_chat_sio_post_body(ngx_http_request_t *r)
{
    u_char                    *p;
    size_t                     len;
    ssize_t                    n;
    ngx_http_chat_loc_conf_t  *clcf;
    ngx_int_t                  rc;
    ngx_str_t                  args[2];
    ngx_chain_t               *cl;
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_sio_poll_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    st = ctx->state;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);

    if (r->request_body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_BAD_REQUEST);
        return;
    }

    /* at most maxPayload: in memory, or in NGINX's small temp file */
    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += cl->buf->in_file ? cl->buf->file_last - cl->buf->file_pos
                                : cl->buf->last - cl->buf->pos;
    }

    if (len > clcf->ws.max_message) {
        ngx_http_finalize_request(r,
            ngx_http_chat_sio_text(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                   (u_char *) "", 0));
        return;
    }

    args[1].data = ngx_pnalloc(r->pool, len + 1);
    if (args[1].data == NULL
        || ngx_http_chat_eio_key_alloc(r->pool, &args[0],
                                       NGX_HTTP_CHAT_EIO_INPUT, st->sid)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = args[1].data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (!cl->buf->in_file) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
            continue;
        }

        n = ngx_read_file(cl->buf->file, p,
                          cl->buf->file_last - cl->buf->file_pos,
                          cl->buf->file_pos);
        if (n != cl->buf->file_last - cl->buf->file_pos) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        p += n;
    }

    args[1].len = p - args[1].data;

    rc = ngx_http_chat_redis_eval(r, ngx_http_chat_sio_give, 1, st->keys,
                                  2, args, ngx_http_chat_sio_posted);

    ngx_http_finalize_request(r, rc);
}


/*
 * Nobody heard (0): the session's worker is gone, or its subscriber
 * connection to Redis was lost and is not back yet (what was published
 * meanwhile is lost to it); never a session just opened, whose handshake
 * answered only once its worker heard the channel.  The client is told
 * the session is unknown: it opens another, signs in and resyncs.
 */
static ngx_int_t
ngx_http_chat_sio_posted(ngx_http_request_t *r, redisReply *reply)
{
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer <= 0) {
        return ngx_http_chat_sio_unknown(r);
    }

    return ngx_http_chat_sio_text(r, NGX_HTTP_OK, (u_char *) "ok", 2);
}



ngx_int_t
ngx_http_chat_sio_unknown(ngx_http_request_t *r)
{
    return ngx_http_chat_send_json(r, NGX_HTTP_BAD_REQUEST,
                                   json_pack("{s:i,s:s}", "code", 1,
                                             "message",
                                             "Session ID unknown"));
}


static ngx_int_t
ngx_http_chat_sio_text(ngx_http_request_t *r, ngx_uint_t status,
    u_char *text, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (len == 0) {
        r->header_only = 1;
    }

    b = ngx_create_temp_buf(r->pool, len ? len : 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, text, len);
    b->last_buf = 1;
    b->last_in_chain = 1;

    if (ngx_http_chat_sio_no_store(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    ngx_str_set(&r->headers_out.content_type, "text/plain; charset=UTF-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
