/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_WS_H_INCLUDED_
#define _NGX_HTTP_CHAT_WS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_CHAT_WS_CONT    0x0
#define NGX_HTTP_CHAT_WS_TEXT    0x1
#define NGX_HTTP_CHAT_WS_BINARY  0x2
#define NGX_HTTP_CHAT_WS_CLOSE   0x8
#define NGX_HTTP_CHAT_WS_PING    0x9
#define NGX_HTTP_CHAT_WS_PONG    0xa

/* close codes (RFC 6455, section 7.4.1) */
#define NGX_HTTP_CHAT_WS_NORMAL         1000
#define NGX_HTTP_CHAT_WS_GOING_AWAY     1001
#define NGX_HTTP_CHAT_WS_PROTOCOL       1002
#define NGX_HTTP_CHAT_WS_UNSUPPORTED    1003
#define NGX_HTTP_CHAT_WS_NO_STATUS      1005
#define NGX_HTTP_CHAT_WS_BAD_DATA       1007
#define NGX_HTTP_CHAT_WS_POLICY         1008
#define NGX_HTTP_CHAT_WS_TOO_BIG        1009
#define NGX_HTTP_CHAT_WS_SERVER_ERROR   1011
#define NGX_HTTP_CHAT_WS_TRY_AGAIN      1013

/* the largest frame header: 2 + 8 bytes of length + 4 of mask */
#define NGX_HTTP_CHAT_WS_HEADER_MAX     14

/* ms a held 101 waits for the first frame before it goes alone */
#define NGX_HTTP_CHAT_WS_HOLD           1000


typedef struct ngx_http_chat_ws_s  ngx_http_chat_ws_t;


/* what a location does with its sockets: the echo test or the chat */
typedef struct {
    /* the socket is open; NGX_ERROR closes it with 1011 */
    ngx_int_t  (*open)(ngx_http_chat_ws_t *ws);
    /* one whole message, text already checked to be UTF-8 */
    void       (*message)(ngx_http_chat_ws_t *ws, ngx_uint_t opcode,
                          u_char *data, size_t len);
    /* the socket goes away: free what open() made */
    void       (*close)(ngx_http_chat_ws_t *ws);
} ngx_http_chat_ws_app_t;


/* a token bucket's settings: chat_ws_event_rate, chat_ws_send_rate */
typedef struct {
    ngx_uint_t                 rate;          /* per 1000 s; 0 no limit */
    ngx_uint_t                 burst;         /* events at once */
    ngx_uint_t                 close;         /* refusals in 10 s, then
                                                 1008; 0 never */
} ngx_http_chat_ws_rate_t;


typedef struct {
    size_t                     max_message;   /* 1009 above it */
    size_t                     max_queue;     /* bytes waiting to go out */
    ngx_msec_t                 ping_interval;
    ngx_msec_t                 pong_timeout;
    ngx_msec_t                 auth_timeout;  /* the app enforces it */
    ngx_flag_t                 deflate;       /* permessage-deflate */
    ngx_flag_t                 deflate_takeover;
    ngx_array_t               *protocols;     /* ngx_str_t subprotocols */
    ngx_http_chat_ws_rate_t    event_rate;    /* the app enforces them */
    ngx_http_chat_ws_rate_t    send_rate;
    /* sockets of one address: not signed in, and all; 0 no limit */
    ngx_uint_t                 unauth_per_addr;
    ngx_uint_t                 conn_per_addr;
    ngx_http_chat_ws_app_t    *app;
} ngx_http_chat_ws_conf_t;


/*
 * The client's address as its handshake counted it for the app's limits
 * per address (a /64 for IPv6): len 0, not counted.
 */
typedef struct {
    u_char                     addr[9];       /* family, then the bytes */
    uint8_t                    len;
    uint8_t                    unauth;        /* counted as not signed in */
} ngx_http_chat_ws_peer_t;


/*
 * A shared outgoing frame: encoded once, queued on any number of sockets,
 * freed by the last of them.
 */
typedef struct {
    ngx_uint_t                 refs;
    size_t                     len;
    u_char                     data[1];
} ngx_http_chat_ws_buf_t;


typedef struct ngx_http_chat_ws_out_s  ngx_http_chat_ws_out_t;

struct ngx_http_chat_ws_out_s {
    ngx_http_chat_ws_out_t    *next;
    ngx_http_chat_ws_buf_t    *buf;
    size_t                     sent;
};


typedef struct ngx_http_chat_ws_deflate_s  ngx_http_chat_ws_deflate_t;


/* what the two sides agreed on for permessage-deflate */
typedef struct {
    ngx_uint_t                 server_bits;
    ngx_uint_t                 client_bits;
    unsigned                   server_no_takeover:1;
    unsigned                   client_no_takeover:1;
    unsigned                   server_bits_asked:1;
} ngx_http_chat_ws_deflate_params_t;


struct ngx_http_chat_ws_s {
    /* first: what a send reads, in one or two cache lines */
    ngx_connection_t          *connection;
    ngx_http_chat_ws_conf_t   *conf;
    void                      *data;          /* the app's session */

    ngx_http_chat_ws_out_t    *out;
    ngx_http_chat_ws_out_t   **out_last;
    size_t                     queued;

    unsigned                   in_payload:1;
    unsigned                   fin:1;         /* of the current frame */
    unsigned                   delivered:1;   /* handed over in place */
    unsigned                   compressed:1;  /* current message: RSV1 */
    unsigned                   failed:1;      /* closed for an error */
    unsigned                   close_sent:1;
    unsigned                   close_received:1;
    unsigned                   awaiting_pong:1;
    unsigned                   closed:1;      /* no more app callbacks */
    unsigned                   destroy:1;     /* its free is posted */
    unsigned                   held:1;        /* the 101 waits (out) */

    /* what the app keeps of the handshake: gone after open() */
    void                     **main_conf;
    void                     **srv_conf;
    void                     **loc_conf;
    ngx_str_t                  token;         /* ?token= or Bearer */
    ngx_str_t                  resume;        /* the app's, from the ctx */
    ngx_http_chat_ws_peer_t    peer;          /* the app releases it */

    /* set: not a socket (Socket.IO polling); frees the connection */
    void                     (*release)(ngx_connection_t *c);

    /* the frame being parsed */
    u_char                     header[NGX_HTTP_CHAT_WS_HEADER_MAX];
    uint8_t                    header_len;
    uint8_t                    opcode;        /* of the current frame */
    uint8_t                    mask_pos;
    uint8_t                    message_opcode; /* 0: no message open */
    uint64_t                   payload_left;

    /* a data message being assembled; NULL between messages */
    u_char                    *message;
    size_t                     message_len;
    size_t                     message_size;

    /* a control frame's payload (at most 125 bytes), while it arrives */
    u_char                    *control;
    size_t                     control_len;

    uint32_t                   utf8_state;    /* incremental UTF-8 check */

    ngx_http_chat_ws_deflate_t *deflate;

    ngx_event_t                ping;          /* idle ping and pong wait */
    ngx_msec_t                 last_read;
};


/* the socket's life after the upgrade: ngx_http_chat_ws_conn.c */
ngx_http_chat_ws_t *ngx_http_chat_ws_create(ngx_connection_t *c,
    ngx_http_chat_ws_conf_t *conf);
ngx_int_t ngx_http_chat_ws_start(ngx_http_chat_ws_t *ws, u_char *pipelined,
    size_t len);
ngx_int_t ngx_http_chat_ws_send(ngx_http_chat_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len);
ngx_int_t ngx_http_chat_ws_send_buf(ngx_http_chat_ws_t *ws,
    ngx_http_chat_ws_buf_t *buf);
void ngx_http_chat_ws_sent(ngx_http_chat_ws_t *ws,
    ngx_http_chat_ws_buf_t *buf, ssize_t n);
ngx_int_t ngx_http_chat_ws_send_raw(ngx_http_chat_ws_t *ws, u_char *data,
    size_t len);
ngx_int_t ngx_http_chat_ws_hold_raw(ngx_http_chat_ws_t *ws, u_char *data,
    size_t len);
void ngx_http_chat_ws_close(ngx_http_chat_ws_t *ws, ngx_uint_t code,
    const char *reason);
void ngx_http_chat_ws_abort(ngx_http_chat_ws_t *ws);

/* frames: ngx_http_chat_ws_frame.c */
ngx_http_chat_ws_buf_t *ngx_http_chat_ws_buf_alloc(size_t len);
void ngx_http_chat_ws_buf_release(ngx_http_chat_ws_buf_t *buf);
ngx_http_chat_ws_buf_t *ngx_http_chat_ws_frame(ngx_uint_t opcode,
    ngx_uint_t rsv1, u_char *payload, size_t len);
size_t ngx_http_chat_ws_frame_header(u_char *p, ngx_uint_t opcode,
    ngx_uint_t rsv1, size_t len);
/* the length of the header of a frame this side wrote (not masked): may
 * be more than size when the frame is cut short */
size_t ngx_http_chat_ws_frame_header_len(u_char *p, size_t size);
ngx_int_t ngx_http_chat_ws_read(ngx_http_chat_ws_t *ws, u_char *p,
    size_t n);
ngx_uint_t ngx_http_chat_ws_utf8(uint32_t *state, u_char *p, size_t len);
ngx_uint_t ngx_http_chat_ws_close_code_valid(ngx_uint_t code);

/* permessage-deflate: ngx_http_chat_ws_deflate.c */
ngx_int_t ngx_http_chat_ws_deflate_negotiate(ngx_pool_t *pool,
    ngx_http_chat_ws_conf_t *conf, ngx_array_t *offers, ngx_str_t *reply,
    ngx_http_chat_ws_deflate_params_t *params);
ngx_http_chat_ws_deflate_t *ngx_http_chat_ws_deflate_create(
    ngx_http_chat_ws_deflate_params_t *params, ngx_http_chat_ws_conf_t *conf,
    ngx_log_t *log);
ngx_int_t ngx_http_chat_ws_inflate(ngx_http_chat_ws_t *ws, u_char *in,
    size_t len, u_char **out, size_t *out_len);
ngx_http_chat_ws_buf_t *ngx_http_chat_ws_deflate_frame(
    ngx_http_chat_ws_t *ws, ngx_uint_t opcode, u_char *data, size_t len);
void ngx_http_chat_ws_deflate_free(ngx_http_chat_ws_deflate_t *d);

/* the echo app of the conformance tests: ngx_http_chat_ws_echo.c */
extern ngx_http_chat_ws_app_t  ngx_http_chat_ws_echo_app;


/*
 * One frame to many sockets, in one call to the kernel where it can
 * (ngx_http_chat_ws_batch.c): add each socket's, then flush; buf is held
 * until it went.  NGX_OK: it goes (or went); as ngx_http_chat_ws_send_buf()
 * otherwise.
 */
ngx_int_t ngx_http_chat_ws_batch_add(ngx_http_chat_ws_t *ws,
    ngx_http_chat_ws_buf_t *buf);
void ngx_http_chat_ws_batch_flush(void);


#endif /* _NGX_HTTP_CHAT_WS_H_INCLUDED_ */
