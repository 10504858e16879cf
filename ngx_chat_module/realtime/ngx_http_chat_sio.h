/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_SIO_H_INCLUDED_
#define _NGX_HTTP_CHAT_SIO_H_INCLUDED_


#include "ngx_http_chat_rt.h"


#define NGX_HTTP_CHAT_SIO_ID_LEN  20


/* what a Socket.IO socket adds to a realtime session */
struct ngx_http_chat_sio_s {
    ngx_http_chat_rt_session_t  *session;
    ngx_event_t                  heartbeat;   /* Engine.IO ping, pong wait */
    u_char                       eio_sid[NGX_HTTP_CHAT_SIO_ID_LEN];
    u_char                       sid[NGX_HTTP_CHAT_SIO_ID_LEN];
    unsigned                     waiting_pong:1;
    unsigned                     connecting:1;  /* CONNECT authenticating */
    unsigned                     connected:1;
};


void ngx_http_chat_sio_id(u_char *out);
size_t ngx_http_chat_sio_open_packet(u_char *buf, size_t size, u_char *sid,
    ngx_http_chat_ws_conf_t *conf, ngx_uint_t upgrades);


#endif /* _NGX_HTTP_CHAT_SIO_H_INCLUDED_ */
