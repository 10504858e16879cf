/*
 * Copyright (C) ngx_chat_module authors
 *
 * libFuzzer target: Socket.IO packets as a client sends them, through the
 * decoder the WebSocket and the polling transports share
 * (ngx_http_chat_sio_decode, ngx_http_chat_sio_decode_event): type,
 * namespace, ack id, the JSON of CONNECT, ACK and EVENT packets.
 *
 * sources: ngx_chat_module/realtime/ngx_http_chat_sio_codec.c
 * libs: -ljansson
 *
 * The input: a polling payload, Engine.IO packets separated by 0x1e
 * ("4" and a Socket.IO packet is a message; the other Engine.IO types are
 * one character the session acts on, not decoded here).
 */


#include "ngx_http_chat_fuzz.h"
#include "realtime/ngx_http_chat_sio_codec.h"


static void
ngx_http_chat_fuzz_sio(u_char *p, size_t len)
{
    json_t                      *args;
    json_int_t                   ack;
    ngx_uint_t                   has_ack;
    ngx_http_chat_sio_packet_t   pkt;

    if (ngx_http_chat_sio_decode(p, len, &pkt) != NGX_OK) {
        return;
    }

    if (pkt.type > 6 || pkt.nsp_len == 0 || pkt.data < p
        || pkt.data + pkt.len != p + len)
    {
        abort();
    }

    if (pkt.type == 0 && pkt.len) {
        (void) ngx_http_chat_sio_json_is(pkt.data, pkt.len, JSON_OBJECT);
    }

    if (pkt.type != 2) {
        return;
    }

    if (ngx_http_chat_sio_decode_event(pkt.data, pkt.len, &args, &ack,
                                       &has_ack)
        != NGX_OK)
    {
        return;
    }

    if (args == NULL) {
        return;
    }

    /* what the router is handed: a name first, an id that fits */
    if (!json_is_array(args) || json_array_size(args) == 0
        || ack < 0 || ack >= 10000000000LL || (!has_ack && ack != 0))
    {
        abort();
    }

    json_decref(args);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *copy, *p, *last, *end;

    (void) ngx_http_chat_fuzz_init();

    /* a copy of its own size: ASan sees a read past its end */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    ngx_memcpy(copy, data, size);

    /* as ngx_http_chat_sio_relayed cuts a polling payload */
    for (p = copy, last = copy + size; p < last; p = end + 1) {
        end = ngx_strlchr(p, last, 0x1e);
        if (end == NULL) {
            end = last;
        }

        if (end - p > 1 && p[0] == '4') {
            ngx_http_chat_fuzz_sio(p + 1, end - p - 1);
        }
    }

    free(copy);

    return 0;
}
