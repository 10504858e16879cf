/*
 * Copyright (C) ngx_chat_module authors
 *
 * permessage-deflate (RFC 7692) with zlib.  A side that keeps no context
 * between messages needs no stream of its own: such sockets share one
 * deflater and one inflater per worker, reset for every message.  Only a
 * context kept across messages costs a socket its own zlib state.
 */


#include <zlib.h>

#include "ngx_http_chat_ws.h"


struct ngx_http_chat_ws_deflate_s {
    z_stream                  *deflater;   /* NULL: the worker's shared */
    z_stream                  *inflater;
    ngx_http_chat_ws_deflate_params_t  params;
};


/* a worker's buffer that grows as needed and is never shrunk */
typedef struct {
    u_char                    *data;
    size_t                     size;
} ngx_http_chat_ws_zbuf_t;


/*
 * The worker's shared streams and buffers.  Inflated messages and
 * deflated frames have a buffer each: the echo deflates straight from
 * what was just inflated.
 */
static z_stream   *ngx_http_chat_ws_shared_deflater[16];
static z_stream   *ngx_http_chat_ws_shared_inflater[16];
static ngx_http_chat_ws_zbuf_t  ngx_http_chat_ws_inflated;
static ngx_http_chat_ws_zbuf_t  ngx_http_chat_ws_deflated;


static ngx_int_t ngx_http_chat_ws_parse_offer(u_char *p, u_char *last,
    ngx_http_chat_ws_deflate_params_t *params);
static z_stream *ngx_http_chat_ws_zstream(ngx_uint_t deflate,
    ngx_uint_t bits, ngx_log_t *log);
static void ngx_http_chat_ws_zstream_free(z_stream *zs, ngx_uint_t deflate);
static ngx_int_t ngx_http_chat_ws_zbuf_reserve(ngx_http_chat_ws_zbuf_t *zb,
    size_t size, size_t keep);


/*
 * Picks the first acceptable offer among the Sec-WebSocket-Extensions
 * values.  NGX_OK: *reply is the response header's value; NGX_DECLINED:
 * nothing acceptable (the socket opens without compression).
 */
ngx_int_t
ngx_http_chat_ws_deflate_negotiate(ngx_pool_t *pool,
    ngx_http_chat_ws_conf_t *conf, ngx_array_t *offers, ngx_str_t *reply,
    ngx_http_chat_ws_deflate_params_t *params)
{
    u_char      *p, *last, *start, *end, *q;
    ngx_str_t   *values;
    ngx_uint_t   i;

    values = offers->elts;

    for (i = 0; i < offers->nelts; i++) {
        p = values[i].data;
        last = p + values[i].len;

        while (p < last) {
            /* one offer runs up to a comma outside of quotes */
            start = p;

            while (p < last && *p != ',') {
                p++;
            }

            end = p;
            p++;

            ngx_memzero(params, sizeof(ngx_http_chat_ws_deflate_params_t));

            if (ngx_http_chat_ws_parse_offer(start, end, params) != NGX_OK) {
                continue;
            }

            if (!conf->deflate_takeover) {
                params->server_no_takeover = 1;
                params->client_no_takeover = 1;
            }

            /* zlib's deflate cannot do 8: 9 emits no distance past 250 */
            if (params->server_bits == 0) {
                params->server_bits = 15;
            }

            reply->len = sizeof("permessage-deflate"
                                "; server_no_context_takeover"
                                "; client_no_context_takeover"
                                "; server_max_window_bits=15"
                                "; client_max_window_bits=15") - 1;
            reply->data = ngx_pnalloc(pool, reply->len);
            if (reply->data == NULL) {
                return NGX_ERROR;
            }

            q = ngx_cpymem(reply->data, "permessage-deflate",
                           sizeof("permessage-deflate") - 1);

            if (params->server_no_takeover) {
                q = ngx_cpymem(q, "; server_no_context_takeover",
                               sizeof("; server_no_context_takeover") - 1);
            }

            if (params->client_no_takeover) {
                q = ngx_cpymem(q, "; client_no_context_takeover",
                               sizeof("; client_no_context_takeover") - 1);
            }

            if (params->server_bits_asked) {
                q = ngx_sprintf(q, "; server_max_window_bits=%ui",
                                params->server_bits);
            }

            if (params->client_bits) {
                q = ngx_sprintf(q, "; client_max_window_bits=%ui",
                                params->client_bits);

            } else {
                params->client_bits = 15;
            }

            reply->len = q - reply->data;

            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* "permessage-deflate; a; b=1"; anything unknown or repeated declines */
static ngx_int_t
ngx_http_chat_ws_parse_offer(u_char *p, u_char *last,
    ngx_http_chat_ws_deflate_params_t *params)
{
    u_char      *name, *name_end, *value, *value_end;
    ngx_int_t    n;
    ngx_uint_t   first, seen;

    first = 1;
    seen = 0;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        name = p;

        while (p < last && *p != ';' && *p != '=' && *p != ' '
               && *p != '\t')
        {
            p++;
        }

        name_end = p;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        value = NULL;
        value_end = NULL;

        if (p < last && *p == '=') {
            p++;

            while (p < last && (*p == ' ' || *p == '\t')) {
                p++;
            }

            if (p < last && *p == '"') {
                p++;
            }

            value = p;

            while (p < last && *p != ';' && *p != '"' && *p != ' '
                   && *p != '\t')
            {
                p++;
            }

            value_end = p;

            while (p < last && *p != ';') {
                p++;
            }
        }

        if (p < last && *p == ';') {
            p++;
        }

        if (first) {
            if ((size_t) (name_end - name) != sizeof("permessage-deflate") - 1
                || ngx_strncasecmp(name, (u_char *) "permessage-deflate",
                                   name_end - name) != 0
                || value)
            {
                return NGX_DECLINED;
            }

            first = 0;
            continue;
        }

#define ngx_http_chat_ws_param(s)                                            \
        ((size_t) (name_end - name) == sizeof(s) - 1                         \
         && ngx_strncasecmp(name, (u_char *) s, sizeof(s) - 1) == 0)

        if (value) {
            n = ngx_atoi(value, value_end - value);

        } else {
            n = 0;
        }

        if (ngx_http_chat_ws_param("server_no_context_takeover")) {
            if (value || (seen & 1)) {
                return NGX_DECLINED;
            }

            seen |= 1;
            params->server_no_takeover = 1;

        } else if (ngx_http_chat_ws_param("client_no_context_takeover")) {
            if (value || (seen & 2)) {
                return NGX_DECLINED;
            }

            seen |= 2;
            params->client_no_takeover = 1;

        } else if (ngx_http_chat_ws_param("server_max_window_bits")) {
            if (!value || n < 8 || n > 15 || (seen & 4)) {
                return NGX_DECLINED;
            }

            seen |= 4;
            params->server_bits = n;
            params->server_bits_asked = 1;

        } else if (ngx_http_chat_ws_param("client_max_window_bits")) {
            if ((value && (n < 8 || n > 15)) || (seen & 8)) {
                return NGX_DECLINED;
            }

            seen |= 8;
            params->client_bits = value ? (ngx_uint_t) n : 0;

        } else {
            return NGX_DECLINED;
        }

#undef ngx_http_chat_ws_param
    }

    return first ? NGX_DECLINED : NGX_OK;
}


ngx_http_chat_ws_deflate_t *
ngx_http_chat_ws_deflate_create(ngx_http_chat_ws_deflate_params_t *params,
    ngx_http_chat_ws_conf_t *conf, ngx_log_t *log)
{
    ngx_http_chat_ws_deflate_t  *d;

    d = ngx_calloc(sizeof(ngx_http_chat_ws_deflate_t), log);
    if (d == NULL) {
        return NULL;
    }

    d->params = *params;

    if (!params->server_no_takeover) {
        d->deflater = ngx_http_chat_ws_zstream(1, params->server_bits, log);
        if (d->deflater == NULL) {
            ngx_free(d);
            return NULL;
        }
    }

    if (!params->client_no_takeover) {
        d->inflater = ngx_http_chat_ws_zstream(0, params->client_bits, log);
        if (d->inflater == NULL) {
            ngx_http_chat_ws_deflate_free(d);
            return NULL;
        }
    }

    return d;
}


void
ngx_http_chat_ws_deflate_free(ngx_http_chat_ws_deflate_t *d)
{
    if (d == NULL) {
        return;
    }

    if (d->deflater) {
        ngx_http_chat_ws_zstream_free(d->deflater, 1);
    }

    if (d->inflater) {
        ngx_http_chat_ws_zstream_free(d->inflater, 0);
    }

    ngx_free(d);
}


static z_stream *
ngx_http_chat_ws_zstream(ngx_uint_t deflate, ngx_uint_t bits, ngx_log_t *log)
{
    int        rc, wbits;
    z_stream  *zs;

    zs = ngx_calloc(sizeof(z_stream), log);
    if (zs == NULL) {
        return NULL;
    }

    /* raw deflate; zlib's deflate takes 9 for 8 */
    wbits = (deflate && bits < 9) ? 9 : (int) bits;

    /*
     * The fastest level: the default one cost a worker three to four
     * times the CPU in the Autobahn 12.x cases (t/041-autobahn.t).
     */
    if (deflate) {
        rc = deflateInit2(zs, Z_BEST_SPEED, Z_DEFLATED, -wbits, 8,
                          Z_DEFAULT_STRATEGY);

    } else {
        rc = inflateInit2(zs, -wbits);
    }

    if (rc != Z_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0, "chat ws: zlib init failed: %d",
                      rc);
        ngx_free(zs);
        return NULL;
    }

    return zs;
}


static void
ngx_http_chat_ws_zstream_free(z_stream *zs, ngx_uint_t deflate)
{
    if (deflate) {
        (void) deflateEnd(zs);

    } else {
        (void) inflateEnd(zs);
    }

    ngx_free(zs);
}


/* room for size bytes; the first keep bytes stay as they are */
static ngx_int_t
ngx_http_chat_ws_zbuf_reserve(ngx_http_chat_ws_zbuf_t *zb, size_t size,
    size_t keep)
{
    u_char  *p;

    if (size <= zb->size) {
        return NGX_OK;
    }

    size = ngx_max(size, 2 * zb->size);
    size = ngx_max(size, 4096);

    p = ngx_alloc(size, ngx_cycle->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (zb->data) {
        if (keep) {
            ngx_memcpy(p, zb->data, keep);
        }

        ngx_free(zb->data);
    }

    zb->data = p;
    zb->size = size;

    return NGX_OK;
}


/*
 * Inflates one message into the worker's buffer (valid until the next
 * call).  NGX_DECLINED: it grows past the message limit; NGX_ERROR: bad
 * data.
 */
ngx_int_t
ngx_http_chat_ws_inflate(ngx_http_chat_ws_t *ws, u_char *in, size_t len,
    u_char **out, size_t *out_len)
{
    int                          rc;
    size_t                       have, max;
    z_stream                    *zs;
    ngx_uint_t                   pass, bits;
    ngx_http_chat_ws_zbuf_t     *zb;
    ngx_http_chat_ws_deflate_t  *d;
    static u_char                tail[4] = { 0x00, 0x00, 0xff, 0xff };

    d = ws->deflate;
    zs = d->inflater;
    max = ws->conf->max_message;

    if (zs == NULL) {
        bits = d->params.client_bits;

        if (ngx_http_chat_ws_shared_inflater[bits] == NULL) {
            ngx_http_chat_ws_shared_inflater[bits] =
                ngx_http_chat_ws_zstream(0, bits, ngx_cycle->log);
            if (ngx_http_chat_ws_shared_inflater[bits] == NULL) {
                return NGX_ERROR;
            }
        }

        zs = ngx_http_chat_ws_shared_inflater[bits];
        (void) inflateReset(zs);
    }

    zb = &ngx_http_chat_ws_inflated;

    if (ngx_http_chat_ws_zbuf_reserve(zb, ngx_min(max + 1, len * 4 + 1024),
                                      0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    have = 0;

    /* the message, then the four bytes every sender strips */
    for (pass = 0; pass < 2; pass++) {
        zs->next_in = pass ? tail : in;
        zs->avail_in = pass ? sizeof(tail) : len;

        do {
            if (have == zb->size) {
                /* full: grow, keeping what is inflated, up to max + 1 */
                if (have > max) {
                    return NGX_DECLINED;
                }

                if (ngx_http_chat_ws_zbuf_reserve(zb,
                                                  ngx_min(2 * have, max + 1),
                                                  have)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }

            zs->next_out = zb->data + have;
            zs->avail_out = zb->size - have;

            rc = inflate(zs, Z_SYNC_FLUSH);

            have = zb->size - zs->avail_out;

            if (rc == Z_STREAM_END) {
                /* a final block: the next message starts afresh */
                (void) inflateReset(zs);
                pass = 2;
                break;
            }

            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                return NGX_ERROR;
            }

            if (have > max) {
                return NGX_DECLINED;
            }

        } while (zs->avail_in > 0 || zs->avail_out == 0);
    }

    *out = zb->data;
    *out_len = have;

    return NGX_OK;
}


/* one compressed frame (RSV1) of a whole message */
ngx_http_chat_ws_buf_t *
ngx_http_chat_ws_deflate_frame(ngx_http_chat_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len)
{
    int                          rc;
    size_t                       have;
    z_stream                    *zs;
    ngx_uint_t                   bits;
    ngx_http_chat_ws_zbuf_t     *zb;
    ngx_http_chat_ws_deflate_t  *d;

    /*
     * An empty message goes uncompressed, as RFC 7692 (section 6) lets
     * a sender do: a sync flush with no input right after another makes
     * no progress, and zlib says so with Z_BUF_ERROR.
     */
    if (len == 0) {
        return ngx_http_chat_ws_frame(opcode, 0, data, 0);
    }

    d = ws->deflate;
    zs = d->deflater;

    if (zs == NULL) {
        bits = d->params.server_bits;

        if (ngx_http_chat_ws_shared_deflater[bits] == NULL) {
            ngx_http_chat_ws_shared_deflater[bits] =
                ngx_http_chat_ws_zstream(1, bits, ngx_cycle->log);
            if (ngx_http_chat_ws_shared_deflater[bits] == NULL) {
                return NULL;
            }
        }

        zs = ngx_http_chat_ws_shared_deflater[bits];
        (void) deflateReset(zs);
    }

    zb = &ngx_http_chat_ws_deflated;

    if (ngx_http_chat_ws_zbuf_reserve(zb, deflateBound(zs, len) + 16, 0)
        != NGX_OK)
    {
        return NULL;
    }

    zs->next_in = data;
    zs->avail_in = len;
    zs->next_out = zb->data;
    zs->avail_out = zb->size;

    rc = deflate(zs, Z_SYNC_FLUSH);

    if (rc != Z_OK || zs->avail_in != 0 || zs->avail_out == 0) {
        ngx_log_error(NGX_LOG_ALERT, ws->connection->log, 0,
                      "chat ws: deflate failed: %d", rc);
        return NULL;
    }

    have = zb->size - zs->avail_out;

    /* a sync flush ends with 00 00 ff ff, which the peer puts back */
    if (have >= 4) {
        have -= 4;
    }

    return ngx_http_chat_ws_frame(opcode, 1, zb->data, have);
}
