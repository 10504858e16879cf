/*
 * Copyright (C) ngx_chat_module authors
 *
 * The Socket.IO packet decoder: what a client sends, checked and cut into
 * its parts before anything acts on it.  It needs no session, so that the
 * fuzz target (fuzz/sio_packet.c) runs it as the sockets do.
 */


#include "ngx_http_chat_sio_codec.h"


static ngx_uint_t ngx_http_chat_sio_reserved(json_t *name);


ngx_int_t
ngx_http_chat_sio_decode(u_char *p, size_t len,
    ngx_http_chat_sio_packet_t *pkt)
{
    u_char  *last;

    last = p + len;

    if (len == 0 || p[0] < '0' || p[0] > '6') {
        return NGX_ERROR;
    }

    pkt->type = *p++ - '0';

    /* the namespace: "/" unless named */
    pkt->nsp = (u_char *) "/";
    pkt->nsp_len = 1;

    if (p < last && *p == '/') {
        pkt->nsp = p;

        while (p < last && *p != ',') {
            p++;
        }

        pkt->nsp_len = p - pkt->nsp;

        if (p < last) {
            p++;
        }
    }

    pkt->root = (pkt->nsp_len == 1);
    pkt->data = p;
    pkt->len = last - p;

    switch (pkt->type) {

    case 0:
        if (!pkt->root && p < last
            && !ngx_http_chat_sio_json_is(p, last - p, JSON_OBJECT))
        {
            return NGX_ERROR;
        }

        return NGX_OK;

    case 1:
        return (p == last) ? NGX_OK : NGX_ERROR;

    case 3:
        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

        return ngx_http_chat_sio_json_is(p, last - p, JSON_ARRAY)
               ? NGX_OK : NGX_ERROR;

    default:
        return NGX_OK;
    }
}


ngx_int_t
ngx_http_chat_sio_decode_event(u_char *p, size_t len, json_t **args,
    json_int_t *ack, ngx_uint_t *has_ack)
{
    u_char        *last;
    json_t        *a, *name;
    json_error_t   err;

    last = p + len;
    *args = NULL;
    *ack = 0;
    *has_ack = 0;

    while (p < last && *p >= '0' && *p <= '9') {
        if (*ack >= 1000000000) {
            return NGX_ERROR;
        }

        *ack = *ack * 10 + (*p++ - '0');
        *has_ack = 1;
    }

    a = json_loadb((const char *) p, last - p, JSON_REJECT_DUPLICATES, &err);

    if (a == NULL) {
        /* valid JSON with a key twice: ours to refuse, not undecodable */
        a = json_loadb((const char *) p, last - p, 0, &err);
        if (!json_is_array(a) || json_array_size(a) == 0) {
            json_decref(a);
            return NGX_ERROR;
        }

        json_decref(a);
        a = json_array();
        if (a == NULL) {
            return NGX_OK;
        }

        /* a name the router knows of no event: its "error" answers */
        json_array_append_new(a, json_integer(0));
    }

    name = json_array_get(a, 0);

    if (!json_is_array(a)
        || !(json_is_integer(name) || json_is_real(name)
             || (json_is_string(name) && !ngx_http_chat_sio_reserved(name))))
    {
        json_decref(a);
        return NGX_ERROR;
    }

    *args = a;

    return NGX_OK;
}


ngx_uint_t
ngx_http_chat_sio_json_is(u_char *p, size_t len, json_type type)
{
    json_t        *json;
    ngx_uint_t     ok;
    json_error_t   err;

    json = json_loadb((const char *) p, len, JSON_DECODE_ANY, &err);
    ok = (json != NULL && json_typeof(json) == type);
    json_decref(json);

    return ok;
}


/* names Socket.IO keeps for itself: no event may have them */
static ngx_uint_t
ngx_http_chat_sio_reserved(json_t *name)
{
    ngx_uint_t   i;
    const char  *v;

    static const char  *reserved[] = {
        "connect", "connect_error", "disconnect", "disconnecting",
        "newListener", "removeListener", NULL
    };

    v = json_string_value(name);

    for (i = 0; reserved[i]; i++) {
        if (ngx_strcmp(v, reserved[i]) == 0) {
            return 1;
        }
    }

    return 0;
}
