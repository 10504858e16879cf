/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_RT_H_INCLUDED_
#define _NGX_HTTP_CHAT_RT_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"
#include "../ws/ngx_http_chat_ws.h"
#include "../store/ngx_http_chat_mongo.h"


#define NGX_HTTP_CHAT_RT_ID_LEN  24    /* an ObjectId in hex */

#if (defined __GNUC__ || defined __clang__)
#define ngx_http_chat_prefetch(p)  __builtin_prefetch(p)
#else
#define ngx_http_chat_prefetch(p)
#endif


typedef struct ngx_http_chat_rt_session_s  ngx_http_chat_rt_session_t;
typedef struct ngx_http_chat_sio_s  ngx_http_chat_sio_t;
typedef struct ngx_http_chat_rt_link_s  ngx_http_chat_rt_link_t;
typedef void (*ngx_http_chat_rt_wake_pt)(void *data, u_char *msg,
    size_t len);

/* an access check's answer: NGX_OK live, NGX_DECLINED revoked, or
 * NGX_ERROR (Redis away); s is NULL when the socket went meanwhile */
typedef void (*ngx_http_chat_rt_checked_pt)(ngx_http_chat_rt_session_t *s,
    void *data, ngx_int_t rc);


/* what a socket knows of its access token */
typedef struct {
    u_char                       sub[NGX_HTTP_CHAT_RT_ID_LEN];
    u_char                       sid[NGX_HTTP_CHAT_RT_ID_LEN];
    u_char                       jti[64];
    size_t                       jti_len;
    time_t                       exp;
} ngx_http_chat_rt_claims_t;


/* a socket's typing, made at its first typing_start */
typedef struct {
    ngx_event_t                  ev;          /* it ends by itself */
    u_char                       chat[NGX_HTTP_CHAT_RT_ID_LEN];
} ngx_http_chat_rt_typing_t;


/* a token bucket (ngx_http_chat_rt_limit.c) */
typedef struct {
    ngx_msec_t                   last;        /* 0: never taken */
    ngx_uint_t                   excess;      /* thousandths of events */
} ngx_http_chat_rt_bucket_t;


/* the answer of a read made for an event: status and JSON (owned) as
 * REST would give them; s is NULL when the socket went meanwhile */
typedef void (*ngx_http_chat_rt_done_pt)(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);


struct ngx_http_chat_rt_session_s {
    /* first: what a delivery reads (ngx_http_chat_rt_deliver()) */
    ngx_http_chat_ws_t          *ws;
    ngx_http_chat_sio_t         *sio;         /* a Socket.IO socket */

    u_char                       user[NGX_HTTP_CHAT_RT_ID_LEN];
    ngx_str_t                    session_id;  /* malloc'ed */

    /* the configuration of the location */
    void                       **main_conf;
    void                       **srv_conf;
    void                       **loc_conf;

    ngx_queue_t                  reads;       /* ngx_http_chat_rt_read.c */
    ngx_queue_t                  waiting;     /* events' operations */
    ngx_queue_t                  chats;       /* ngx_http_chat_rt_link_t */

    /* the sign-in's deadline until it is in, then the token's end */
    ngx_event_t                  timer;
    time_t                       token_exp;   /* the access token's exp */
    ngx_queue_t                  checks;      /* access checks running */

    ngx_msec_t                   typing_at;   /* the last typing event */
    ngx_http_chat_rt_typing_t   *typing;

    json_t                      *pending;     /* events waiting their turn */

    /* a call: this socket's own channel id, and the call it is in */
    u_char                       sock[NGX_HTTP_CHAT_RT_ID_LEN];
    u_char                       call[NGX_HTTP_CHAT_RT_ID_LEN];
    ngx_uint_t                   ops;         /* events running */

    /* its events' rate, and its user's sends here (rt_limit.c) */
    ngx_http_chat_rt_bucket_t    bucket;
    void                        *sender;
    ngx_msec_t                   refused_at;  /* the refusals' window */
    ngx_uint_t                   refused;

    unsigned                     authenticated:1;
    unsigned                     authenticating:1;
    unsigned                     draining:1;
    unsigned                     counted:1;   /* in the online counter */
    unsigned                     held:1;      /* events wait (an upgrade) */
    unsigned                     expired:1;   /* told: token_expired */
    unsigned                     gauge:2;     /* its count: 0 plain, 1
                                                 Socket.IO, 2 polling */
};


/*
 * ngx_http_chat_ws_handshake.c: the upgrade of a chat_ws, chat_ws_echo or
 * Socket.IO request, then the connection is a ws/ socket of the location's
 * app
 */
ngx_int_t ngx_http_chat_ws_handler(ngx_http_request_t *r);


/* ngx_http_chat_rt_session.c */
extern ngx_http_chat_ws_app_t  ngx_http_chat_rt_app;

ngx_http_chat_rt_session_t *ngx_http_chat_rt_session_create(
    ngx_http_chat_ws_t *ws);
void ngx_http_chat_rt_session_free(ngx_http_chat_ws_t *ws);
void ngx_http_chat_rt_event(ngx_http_chat_rt_session_t *s, json_t *env);
void ngx_http_chat_rt_start_auth(ngx_http_chat_rt_session_t *s,
    ngx_str_t *token, json_t *id);
void ngx_http_chat_rt_unhold(ngx_http_chat_rt_session_t *s);

void ngx_http_chat_rt_emit(ngx_http_chat_rt_session_t *s, const char *event,
    json_t *data, json_t *id);
void ngx_http_chat_rt_error(ngx_http_chat_rt_session_t *s, json_t *id,
    const char *code, const char *message);

/*
 * An event's operation: op_new() counts it on the socket (its next
 * events wait), op_started() tells a refusal at once or waits, and
 * op_answered(), the operation's done(), acks it.  A call's operation
 * (op_call()) is told as calls are, and the call is noted on the socket.
 */
typedef struct ngx_http_chat_rt_op_s  ngx_http_chat_rt_op_t;

ngx_http_chat_rt_op_t *ngx_http_chat_rt_op_new(ngx_http_chat_rt_session_t *s,
    json_t *id);
void ngx_http_chat_rt_op_call(ngx_http_chat_rt_op_t *op);
void ngx_http_chat_rt_op_started(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_op_t *op, ngx_int_t rc, const char *field,
    const char *err);
void ngx_http_chat_rt_op_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error);

/* ngx_http_chat_rt_call.c: the call events */
void ngx_http_chat_rt_call_initiate(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
void ngx_http_chat_rt_call_accept(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
void ngx_http_chat_rt_call_reject(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
void ngx_http_chat_rt_call_cancel(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
void ngx_http_chat_rt_call_end(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
void ngx_http_chat_rt_call_join(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
void ngx_http_chat_rt_call_leave(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
void ngx_http_chat_rt_call_offer(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
void ngx_http_chat_rt_call_answer(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
void ngx_http_chat_rt_call_ice(ngx_http_chat_rt_session_t *s,
    json_t *data, json_t *id);
/* an answer of a call's operation, before its ack: the socket's call */
void ngx_http_chat_rt_call_noted(ngx_http_chat_rt_session_t *s,
    ngx_int_t rc, json_t *answer);
/* the socket goes: its call, if any, after the grace */
void ngx_http_chat_rt_call_gone(ngx_http_chat_rt_session_t *s);
void ngx_http_chat_rt_ack(ngx_http_chat_rt_session_t *s, json_t *id,
    ngx_uint_t status, json_t *answer);

/*
 * ngx_http_chat_rt_read.c: what an event reads, as the REST route that
 * reads it would answer, on nobody's request: NGX_OK, done() is called
 * later (with s NULL if the socket went meanwhile); NGX_ERROR, it is not
 */
ngx_int_t ngx_http_chat_rt_read_store(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    const char *not_found, ngx_http_chat_rt_done_pt done, void *data);
/*
 * The same, paced: at most a few per worker in the pool (a resync's);
 * one waiting answers all that ask the same, so arg is compared whole
 * (zero it before it is filled) and the answer is only read
 */
ngx_int_t ngx_http_chat_rt_read_store_paced(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    const char *not_found, ngx_http_chat_rt_done_pt done, void *data);
/* the worker goes: the paced reads still waiting end unread */
void ngx_http_chat_rt_paced_exit(void);
/* GET /api/chats/ids */
ngx_int_t ngx_http_chat_rt_read_chat_ids(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_done_pt done, void *data);
/*
 * GET /api/users/profile with the token of claims: its session checked as
 * the access-token gate does; the socket's session id is set when it is
 * answered 200.  text, if not NULL, gets the answer's compact JSON when
 * the profile had one (ngx_alloc()ed, the caller's even without a
 * session), before done() is called.  NGX_DECLINED: the session cannot be
 * checked now.
 */
ngx_int_t ngx_http_chat_rt_read_signin(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_claims_t *claims, ngx_str_t *text,
    ngx_http_chat_rt_done_pt done, void *data);
/* GET /api/users/:id, uid an ObjectId in hex */
ngx_int_t ngx_http_chat_rt_read_user(ngx_http_chat_rt_session_t *s,
    ngx_str_t *uid, ngx_uint_t online, ngx_http_chat_rt_done_pt done,
    void *data);
/*
 * lua-compat's hook on a socket's sign-in: answer (owned) back with 200,
 * or 403 / 503; NGX_DECLINED no hook (answer still the caller's)
 */
ngx_int_t ngx_http_chat_rt_read_hook(ngx_http_chat_rt_session_t *s,
    u_char *uid, json_t *answer, ngx_http_chat_rt_done_pt done, void *data);
void ngx_http_chat_rt_reads_detach(ngx_http_chat_rt_session_t *s);
void ngx_http_chat_rt_me(ngx_http_chat_rt_session_t *s, bson_oid_t *me);
/* fills realtime's slots of core's event interface */
void ngx_http_chat_rt_register(ngx_http_chat_events_t *events);

/* ngx_http_chat_rt_fanout.c: channels, local delivery, publishing */
ngx_int_t ngx_http_chat_rt_init_process(ngx_cycle_t *cycle);
void ngx_http_chat_rt_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_chat_rt_join_user(ngx_http_chat_rt_session_t *s);
ngx_int_t ngx_http_chat_rt_join_sock(ngx_http_chat_rt_session_t *s);
ngx_int_t ngx_http_chat_rt_join_chat(ngx_http_chat_rt_session_t *s,
    ngx_str_t *chat_id);
void ngx_http_chat_rt_leave_chat(ngx_http_chat_rt_session_t *s,
    ngx_str_t *chat_id);
void ngx_http_chat_rt_leave_all(ngx_http_chat_rt_session_t *s);
void ngx_http_chat_rt_publish(const char *kind, ngx_str_t *id,
    const char *event, json_t *data);
void ngx_http_chat_rt_publish_as(const char *kind, ngx_str_t *id,
    u_char flag, ngx_str_t *origin, ngx_str_t *chat, const char *event,
    json_t *data);

ngx_int_t ngx_http_chat_rt_join_presence(ngx_http_chat_rt_session_t *s,
    ngx_str_t *user_id);
ngx_http_chat_rt_link_t *ngx_http_chat_rt_wait(const char *kind, u_char *id,
    ngx_http_chat_rt_wake_pt wake, void *data);
void ngx_http_chat_rt_unwait(ngx_http_chat_rt_link_t *link);
ngx_int_t ngx_http_chat_rt_join_relay(ngx_http_chat_rt_session_t *s,
    u_char *sid);
ngx_int_t ngx_http_chat_rt_publish_raw(const char *kind, u_char *id,
    u_char *msg, size_t len);
ngx_uint_t ngx_http_chat_rt_in_chat(ngx_http_chat_rt_session_t *s,
    ngx_str_t *chat_id);
ngx_int_t ngx_http_chat_rt_sessions(ngx_array_t *out);
void ngx_http_chat_rt_keep_chats(ngx_http_chat_rt_session_t *s,
    json_t *ids);

/* ngx_http_chat_sio.c: Engine.IO v4 and Socket.IO v5 */
extern ngx_http_chat_ws_app_t  ngx_http_chat_sio_app;

ngx_int_t ngx_http_chat_sio_handler(ngx_http_request_t *r);
void ngx_http_chat_sio_emit(ngx_http_chat_rt_session_t *s, const char *event,
    json_t *data, json_t *id);
void ngx_http_chat_sio_emit_text(ngx_http_chat_rt_session_t *s,
    const char *event, ngx_str_t *text, json_t *id);
void ngx_http_chat_sio_ack(ngx_http_chat_rt_session_t *s, json_t *id,
    ngx_uint_t status, json_t *answer);
ngx_http_chat_ws_buf_t *ngx_http_chat_sio_frame(u_char *envelope,
    size_t len);
void ngx_http_chat_sio_relayed(ngx_http_chat_rt_session_t *s, u_char *msg,
    size_t len);

/*
 * ngx_http_chat_rt_limit.c: an event's rates; NGX_OK it runs,
 * NGX_DECLINED refused and answered, NGX_DONE the socket is closed
 */
ngx_int_t ngx_http_chat_rt_limit(ngx_http_chat_rt_session_t *s, json_t *env);
void ngx_http_chat_rt_limit_free(ngx_http_chat_rt_session_t *s);

/*
 * ngx_http_chat_rt_conn.c: sockets per address across the workers (the
 * zone's part, a worker's start and exit; a handshake's count, moved to
 * its socket, off the unsigned at its sign-in, released at its end; the
 * 429 of a refusal, body NULL for the error envelope)
 */
#define NGX_HTTP_CHAT_CONN_ZONE  (1024 * 1024)

void *ngx_http_chat_rt_conn_zone(ngx_slab_pool_t *shpool);
void ngx_http_chat_rt_conn_attach(ngx_shm_zone_t *zone, void *conns);
void ngx_http_chat_rt_conn_detach(void);
ngx_int_t ngx_http_chat_rt_conn_take(ngx_http_request_t *r,
    ngx_http_chat_ws_conf_t *conf, ngx_uint_t force,
    ngx_http_chat_ws_peer_t **held, time_t *retry);
void ngx_http_chat_rt_conn_move(ngx_http_chat_ws_peer_t *held,
    ngx_http_chat_ws_peer_t *to);
void ngx_http_chat_rt_conn_signed_in(ngx_http_chat_ws_peer_t *peer);
void ngx_http_chat_rt_conn_release(ngx_http_chat_ws_peer_t *peer);
ngx_int_t ngx_http_chat_rt_conn_refuse(ngx_http_request_t *r, time_t retry,
    json_t *body);

/* ngx_http_chat_rt_access.c: what a socket may still do */
void ngx_http_chat_rt_access_init(ngx_http_chat_rt_session_t *s);
/* the session's timer, signed in: the token's end (or its grace's) */
void ngx_http_chat_rt_access_expired(ngx_event_t *ev);
void ngx_http_chat_rt_access_free(ngx_http_chat_rt_session_t *s);
ngx_int_t ngx_http_chat_rt_claims(ngx_http_chat_rt_session_t *s,
    ngx_str_t *token, ngx_http_chat_rt_claims_t *claims,
    const char **reason);
void ngx_http_chat_rt_access_arm(ngx_http_chat_rt_session_t *s);
ngx_int_t ngx_http_chat_rt_access_check(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_checked_pt handler, void *data);
void ngx_http_chat_rt_revoked(ngx_http_chat_rt_session_t *s,
    ngx_uint_t code, const char *reason);
void ngx_http_chat_rt_access_reconnected(void);

/* ngx_http_chat_rt_presence.c: online while a live worker counts them */
ngx_int_t ngx_http_chat_rt_presence_init_process(ngx_cycle_t *cycle);
void ngx_http_chat_rt_presence_exit_process(ngx_cycle_t *cycle);
void ngx_http_chat_rt_presence(u_char *user, ngx_uint_t online);
void ngx_http_chat_rt_presence_leave(ngx_http_chat_rt_session_t *s);
ngx_uint_t ngx_http_chat_rt_presence_here(u_char *user);

/* ngx_http_chat_rt_presence_watch.c: presence events to subscribers */
void ngx_http_chat_rt_presence_deliver(ngx_http_chat_rt_session_t *s,
    u_char *json, size_t len);
void ngx_http_chat_rt_presence_unwatch(ngx_http_chat_rt_session_t *s);


#endif /* _NGX_HTTP_CHAT_RT_H_INCLUDED_ */
