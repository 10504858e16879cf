/*
 * Copyright (C) ngx_chat_module authors
 *
 * libFuzzer target: a client's bytes on an open WebSocket, RFC 6455
 * frames with or without permessage-deflate, through the parser the
 * sockets use (ngx_http_chat_ws_read), the offer's negotiation
 * (ngx_http_chat_ws_deflate_negotiate) and the echo app's replies.
 *
 * sources: ngx_chat_module/ws/ngx_http_chat_ws_frame.c
 * sources: ngx_chat_module/ws/ngx_http_chat_ws_deflate.c
 * sources: ngx_chat_module/ws/ngx_http_chat_ws_conn.c
 * sources: ngx_chat_module/ws/ngx_http_chat_ws_echo.c
 * sources: ngx_chat_module/util/ngx_http_chat_metrics.c
 * libs: -lz
 *
 * The input: one byte of settings (bit 0: the location allows
 * permessage-deflate, bit 1: context takeover, bits 2-7: the size of each
 * read, 0 all at once), a line with the client's Sec-WebSocket-Extensions,
 * then the bytes off the socket.
 */


#include "ngx_http_chat_fuzz.h"
#include "ws/ngx_http_chat_ws.h"


static ssize_t ngx_http_chat_fuzz_ws_send(ngx_connection_t *c, u_char *buf,
    size_t size);
static void ngx_http_chat_fuzz_ws_release(ngx_connection_t *c);


static ssize_t
ngx_http_chat_fuzz_ws_send(ngx_connection_t *c, u_char *buf, size_t size)
{
    /* the frame this side wrote must be whole: its header says its size */
    if (size >= 2 && ngx_http_chat_ws_frame_header_len(buf, size) > size) {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0, "fuzz: a frame cut short");
    }

    return size;
}


static void
ngx_http_chat_fuzz_ws_release(ngx_connection_t *c)
{
    c->data = NULL;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                             *p, *last, *copy;
    size_t                              step, n;
    ngx_str_t                           offer, reply;
    ngx_log_t                          *log, clog;
    ngx_pool_t                         *pool;
    ngx_array_t                         offers;
    ngx_event_t                         rev, wev;
    ngx_connection_t                    c;
    ngx_http_chat_ws_t                 *ws;
    ngx_http_chat_ws_conf_t             conf;
    ngx_http_chat_ws_deflate_params_t   params;

    log = ngx_http_chat_fuzz_init();

    if (size < 1) {
        return 0;
    }

    ngx_memzero(&conf, sizeof(ngx_http_chat_ws_conf_t));
    conf.max_message = 65536;
    conf.max_queue = 1024 * 1024;
    conf.ping_interval = 30000;
    conf.pong_timeout = 10000;
    conf.deflate = data[0] & 1;
    conf.deflate_takeover = (data[0] >> 1) & 1;
    conf.app = &ngx_http_chat_ws_echo_app;

    step = data[0] >> 2;

    /* the parser unmasks in place, as in the socket's read buffer */
    copy = malloc(size);
    if (copy == NULL) {
        return 0;
    }

    ngx_memcpy(copy, data, size);

    p = copy + 1;
    last = copy + size;

    ngx_http_chat_fuzz_line(&p, last, &offer);

    ngx_memzero(&rev, sizeof(ngx_event_t));
    ngx_memzero(&wev, sizeof(ngx_event_t));
    ngx_memzero(&c, sizeof(ngx_connection_t));

    clog = *log;
    c.log = &clog;
    c.read = &rev;
    c.write = &wev;
    c.send = ngx_http_chat_fuzz_ws_send;
    c.fd = (ngx_socket_t) -1;
    rev.data = &c;
    wev.data = &c;
    rev.log = &clog;
    wev.log = &clog;
    wev.ready = 1;

    pool = ngx_create_pool(1024, log);
    if (pool == NULL) {
        free(copy);
        return 0;
    }

    ws = ngx_http_chat_ws_create(&c, &conf);
    if (ws == NULL) {
        ngx_destroy_pool(pool);
        free(copy);
        return 0;
    }

    ws->release = ngx_http_chat_fuzz_ws_release;
    c.data = ws;

    if (conf.deflate && offer.len) {
        offers.elts = &offer;
        offers.nelts = 1;
        offers.size = sizeof(ngx_str_t);
        offers.nalloc = 1;
        offers.pool = pool;

        if (ngx_http_chat_ws_deflate_negotiate(pool, &conf, &offers, &reply,
                                               &params)
            == NGX_OK)
        {
            ws->deflate = ngx_http_chat_ws_deflate_create(&params, &conf,
                                                          log);
        }
    }

    while (p < last) {
        n = step ? ngx_min(step, (size_t) (last - p)) : (size_t) (last - p);

        if (ngx_http_chat_ws_read(ws, p, n) != NGX_OK) {
            break;
        }

        p += n;
    }

    /* the socket goes, as when its peer hangs up */
    ngx_http_chat_ws_abort(ws);
    ngx_http_chat_fuzz_run_posted();

    ngx_destroy_pool(pool);
    free(copy);

    return 0;
}
