/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_SIO_H_INCLUDED_
#define _NGX_HTTP_CHAT_SIO_H_INCLUDED_


#include "ngx_http_chat_rt.h"


#define NGX_HTTP_CHAT_SIO_ID_LEN  24    /* a channel name takes 24 */
#define NGX_HTTP_CHAT_SIO_TOKEN_MAX   4096
/* a token sealed for Redis: base64url of IV, tag and ciphertext */
#define NGX_HTTP_CHAT_SIO_SEALED_MAX                                         \
    ngx_base64_encoded_length(12 + 16 + NGX_HTTP_CHAT_SIO_TOKEN_MAX)


/* what a Socket.IO socket adds to a realtime session */
struct ngx_http_chat_sio_s {
    ngx_http_chat_rt_session_t  *session;
    ngx_event_t                  heartbeat;   /* Engine.IO ping, pong wait */
    ngx_event_t                  leave;       /* polling, after an upgrade */
    u_char                       eio_sid[NGX_HTTP_CHAT_SIO_ID_LEN];
    u_char                       sid[NGX_HTTP_CHAT_SIO_ID_LEN];
    unsigned                     waiting_pong:1;
    unsigned                     connecting:1;  /* CONNECT authenticating */
    unsigned                     connected:1;
    unsigned                     resuming:1;    /* its quiet sign-in */
    unsigned                     resuming_transport:1;  /* till "5" */
    unsigned                     handover_due:1;
    unsigned                     leaving:1;
    unsigned                     resumed:1;     /* an upgrade's WebSocket */
    unsigned                     unanswered:1;  /* CONNECT not answered */
    void                        *handover;     /* waiting for the queue */
    void                        *opening;      /* polling: the handshake */
    json_t                      *auth_data;    /* "authenticated", held */

    /* an upgrade's deliveries, held till the polling session's are out */
    ngx_http_chat_ws_buf_t     **held;
    ngx_uint_t                   nheld;
    ngx_uint_t                   held_size;

    unsigned                     polling:1;     /* this is the polling one */
    unsigned                     holding:1;     /* deliveries go to held */
    unsigned                     recalled:1;    /* its token read again */
    unsigned                     gone:1;        /* polling: after the 5 */
    unsigned                     gone_told:1;   /* ... its last packet */
    unsigned                     client_closed:1;  /* the client's "1" */
    unsigned                     left:1;        /* "41": out of "/" */

    /*
     * polling: a field of the session's hash and its value, set by the
     * script that queues the next packet ("a1": the client is told it
     * signed in), so that what Redis says the client was told is
     * queued for it
     */
    u_char                       note[2];
};


/* ngx_http_chat_sio_poll.c: the polling transport */
ngx_int_t ngx_http_chat_sio_poll_handler(ngx_http_request_t *r,
    ngx_str_t *sid);
void ngx_http_chat_sio_remember(ngx_http_chat_rt_session_t *s,
    const char *field, ngx_str_t *value);
void ngx_http_chat_sio_poll_gone(ngx_http_chat_rt_session_t *s);
void ngx_http_chat_sio_poll_refresh(ngx_http_chat_rt_session_t *s);

/* ngx_http_chat_sio_upgrade.c: the upgrade of a polling session */
ngx_int_t ngx_http_chat_sio_upgrade_handler(ngx_http_request_t *r,
    ngx_str_t *sid);
void ngx_http_chat_sio_probe(ngx_http_chat_rt_session_t *s);
void ngx_http_chat_sio_handover(ngx_http_chat_rt_session_t *s);
void ngx_http_chat_sio_handover_cancel(ngx_http_chat_rt_session_t *s);
ngx_int_t ngx_http_chat_sio_hold_frame(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_ws_buf_t *buf);
void ngx_http_chat_sio_drop_held(ngx_http_chat_rt_session_t *s,
    ngx_uint_t keep);
void ngx_http_chat_sio_leave(ngx_http_chat_rt_session_t *s);

/* ngx_http_chat_sio_seal.c: the token kept for an upgrade, sealed */
ngx_int_t ngx_http_chat_sio_seal(ngx_str_t *secret, u_char *sid,
    ngx_str_t *in, ngx_str_t *out);
ngx_int_t ngx_http_chat_sio_unseal(ngx_str_t *secret, u_char *sid,
    ngx_str_t *in, ngx_str_t *out);
void ngx_http_chat_sio_start_sealed(ngx_http_chat_rt_session_t *s,
    ngx_str_t *sealed);

/* ngx_http_chat_sio.c: the packets */
void ngx_http_chat_sio_answer_connect(ngx_http_chat_rt_session_t *s);
void ngx_http_chat_sio_answer_auth(ngx_http_chat_rt_session_t *s);
void ngx_http_chat_sio_message(ngx_http_chat_ws_t *ws, ngx_uint_t opcode,
    u_char *p, size_t len);
void ngx_http_chat_sio_id(u_char *out);
size_t ngx_http_chat_sio_open_packet(u_char *buf, size_t size, u_char *sid,
    ngx_http_chat_ws_conf_t *conf, ngx_uint_t upgrades);


#endif /* _NGX_HTTP_CHAT_SIO_H_INCLUDED_ */
