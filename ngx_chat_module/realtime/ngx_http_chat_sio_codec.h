/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_SIO_CODEC_H_INCLUDED_
#define _NGX_HTTP_CHAT_SIO_CODEC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


/* a Socket.IO packet: <type>[/namespace,][ackid][JSON] */
typedef struct {
    ngx_uint_t   type;        /* 0 CONNECT .. 6 BINARY_ACK */
    u_char      *nsp;         /* "/" unless named */
    size_t       nsp_len;
    u_char      *data;        /* what follows the namespace */
    size_t       len;
    unsigned     root:1;      /* the main namespace, "/" */
} ngx_http_chat_sio_packet_t;


/*
 * Decodes a Socket.IO packet (an Engine.IO message without its "4"):
 * NGX_ERROR when it cannot be decoded, as the reference server judges
 * it.  What the type needs is checked: DISCONNECT has nothing after its
 * namespace, ACK an id and a JSON array, CONNECT to another namespace a
 * JSON object if anything; an EVENT is decoded by the next function.
 */
ngx_int_t ngx_http_chat_sio_decode(u_char *p, size_t len,
    ngx_http_chat_sio_packet_t *pkt);

/*
 * An EVENT's [ackid]["name", args...]: NGX_ERROR when undecodable;
 * otherwise *args, a new reference to an array whose first element is
 * the name (a string but a reserved one, or a number), or [0] when the
 * JSON has a key twice (ours to refuse as a malformed event), or NULL
 * when there is no memory.
 */
ngx_int_t ngx_http_chat_sio_decode_event(u_char *p, size_t len,
    json_t **args, json_int_t *ack, ngx_uint_t *has_ack);

/* whether JSON text is valid and of a type */
ngx_uint_t ngx_http_chat_sio_json_is(u_char *p, size_t len, json_type type);


#endif /* _NGX_HTTP_CHAT_SIO_CODEC_H_INCLUDED_ */
