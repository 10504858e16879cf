/*
 * Copyright (C) ngx_chat_module authors
 *
 * What the Socket.IO files share among themselves, chiefly the polling
 * transport (ngx_http_chat_sio_poll.c) and the upgrade of a polling
 * session to a WebSocket (ngx_http_chat_sio_upgrade.c): the names of a
 * polling session in Redis and a few helpers.  Not for the rest of
 * realtime/, which sees ngx_http_chat_sio.h only.
 */


#ifndef _NGX_HTTP_CHAT_SIO_INT_H_INCLUDED_
#define _NGX_HTTP_CHAT_SIO_INT_H_INCLUDED_


#include "ngx_http_chat_sio.h"


/* packets a poller may owe, and deliveries an upgrade may hold */
#define NGX_HTTP_CHAT_SIO_QUEUE_MAX  1000


/*
 * The names a polling session has in Redis, all made by
 * ngx_http_chat_eio_key().  Keys: "eio:s:<sid>", the session's hash (its
 * Socket.IO id, its sealed token, the address it began at, the GET that
 * waits, what the client was told); "eio:q:<sid>", the packets the
 * client has yet to fetch; "eio:u" and "eio:u:<address>", the sessions
 * not signed in, in all and from one address.  Channels: "eiow:<sid>"
 * wakes the GETs that wait for packets, "eioi:<sid>" carries what the
 * client posted to the session's worker.
 */
typedef enum {
    NGX_HTTP_CHAT_EIO_SESSION = 0,   /* eio:s:<sid> */
    NGX_HTTP_CHAT_EIO_QUEUE,         /* eio:q:<sid> */
    NGX_HTTP_CHAT_EIO_UNAUTH,        /* eio:u */
    NGX_HTTP_CHAT_EIO_UNAUTH_ADDR,   /* eio:u:<address> */
    NGX_HTTP_CHAT_EIO_WAKE,          /* eiow:<sid> */
    NGX_HTTP_CHAT_EIO_INPUT          /* eioi:<sid> */
} ngx_http_chat_eio_kind_e;

/*
 * The channels' kinds as ngx_http_chat_rt_wait() and
 * ngx_http_chat_rt_publish_raw() take them (five characters); "eiob:" is
 * the barrier of the handshake and of the upgrade, a subscription whose
 * confirmation says that the ones asked before it are live.
 */
#define NGX_HTTP_CHAT_EIO_WAKE_KIND     "eiow:"
#define NGX_HTTP_CHAT_EIO_INPUT_KIND    "eioi:"
#define NGX_HTTP_CHAT_EIO_BARRIER_KIND  "eiob:"

/* room for a name of a session id (every kind but eio:u:<address>) */
#define NGX_HTTP_CHAT_EIO_KEY_LEN  (6 + NGX_HTTP_CHAT_SIO_ID_LEN)
/* room for any name, eio:u:<address> included */
#define NGX_HTTP_CHAT_EIO_KEY_MAX  (6 + NGX_SOCKADDR_STRLEN)


/*
 * ngx_http_chat_sio_poll.c: the name of kind for id at buf (a session id
 * of NGX_HTTP_CHAT_SIO_ID_LEN, an address for eio:u:, none for eio:u);
 * the end of the name
 */
u_char *ngx_http_chat_eio_key(u_char *buf, ngx_uint_t kind, u_char *id,
    size_t len);
/* the same, in the pool, for a session id */
ngx_int_t ngx_http_chat_eio_key_alloc(ngx_pool_t *pool, ngx_str_t *key,
    ngx_uint_t kind, u_char *sid);

ngx_uint_t ngx_http_chat_sio_sid_valid(ngx_str_t *sid);
ngx_int_t ngx_http_chat_sio_unknown(ngx_http_request_t *r);
/* a packet into the session's queue, which lives no longer than it */
ngx_int_t ngx_http_chat_sio_push_packet(ngx_http_chat_rt_session_t *s,
    u_char *data, size_t len);

/* ngx_http_chat_sio_upgrade.c: the polling session gone after "5" */
void ngx_http_chat_sio_left(ngx_event_t *ev);


#endif /* _NGX_HTTP_CHAT_SIO_INT_H_INCLUDED_ */
