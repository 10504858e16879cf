/*
 * Copyright (C) ngx_chat_module authors
 *
 * RFC 6455 frames: a streaming parser that takes bytes as they come off
 * the socket, and the encoder of server frames.  The parser needs no
 * buffer of its own for a frame's header (at most 14 bytes in the
 * session); a message is copied only when it spans reads or frames.
 */


#include "ngx_http_chat_ws.h"


static ngx_int_t ngx_http_chat_ws_header_done(ngx_http_chat_ws_t *ws);
static ngx_int_t ngx_http_chat_ws_frame_done(ngx_http_chat_ws_t *ws);
static ngx_int_t ngx_http_chat_ws_payload(ngx_http_chat_ws_t *ws, u_char *p,
    size_t n);
static ngx_int_t ngx_http_chat_ws_append(ngx_http_chat_ws_t *ws, u_char *p,
    size_t n);
static ngx_int_t ngx_http_chat_ws_deliver(ngx_http_chat_ws_t *ws, u_char *p,
    size_t n);
static ngx_int_t ngx_http_chat_ws_control(ngx_http_chat_ws_t *ws);
static ngx_int_t ngx_http_chat_ws_fail(ngx_http_chat_ws_t *ws,
    ngx_uint_t code, const char *reason);
static ngx_int_t ngx_http_chat_ws_fail_stream(ngx_http_chat_ws_t *ws,
    ngx_uint_t code, const char *reason);
static void ngx_http_chat_ws_message_reset(ngx_http_chat_ws_t *ws);


#define ngx_http_chat_ws_header_size(h)                                      \
    (2 + (((h)[1] & 0x7f) == 126 ? 2 : ((h)[1] & 0x7f) == 127 ? 8 : 0)       \
     + (((h)[1] & 0x80) ? 4 : 0))


ngx_http_chat_ws_buf_t *
ngx_http_chat_ws_buf_alloc(size_t len)
{
    ngx_http_chat_ws_buf_t  *buf;

    buf = ngx_alloc(offsetof(ngx_http_chat_ws_buf_t, data) + len,
                    ngx_cycle->log);
    if (buf == NULL) {
        return NULL;
    }

    buf->refs = 0;
    buf->len = len;

    return buf;
}


void
ngx_http_chat_ws_buf_release(ngx_http_chat_ws_buf_t *buf)
{
    if (buf->refs > 1) {
        buf->refs--;
        return;
    }

    ngx_free(buf);
}


size_t
ngx_http_chat_ws_frame_header(u_char *p, ngx_uint_t opcode, ngx_uint_t rsv1,
    size_t len)
{
    p[0] = (u_char) (0x80 | (rsv1 ? 0x40 : 0) | opcode);

    if (len < 126) {
        p[1] = (u_char) len;
        return 2;
    }

    if (len <= 0xffff) {
        p[1] = 126;
        p[2] = (u_char) (len >> 8);
        p[3] = (u_char) len;
        return 4;
    }

    p[1] = 127;
    p[2] = (u_char) ((uint64_t) len >> 56);
    p[3] = (u_char) ((uint64_t) len >> 48);
    p[4] = (u_char) ((uint64_t) len >> 40);
    p[5] = (u_char) ((uint64_t) len >> 32);
    p[6] = (u_char) (len >> 24);
    p[7] = (u_char) (len >> 16);
    p[8] = (u_char) (len >> 8);
    p[9] = (u_char) len;

    return 10;
}


size_t
ngx_http_chat_ws_frame_header_len(u_char *p, size_t size)
{
    if (size < 2) {
        return 2;
    }

    switch (p[1] & 0x7f) {
    case 126:
        return 4;
    case 127:
        return 10;
    default:
        return 2;
    }
}


/* one frame, header and payload together, ready to be queued anywhere */
ngx_http_chat_ws_buf_t *
ngx_http_chat_ws_frame(ngx_uint_t opcode, ngx_uint_t rsv1, u_char *payload,
    size_t len)
{
    size_t                   hlen;
    u_char                   header[10];
    ngx_http_chat_ws_buf_t  *buf;

    hlen = ngx_http_chat_ws_frame_header(header, opcode, rsv1, len);

    buf = ngx_http_chat_ws_buf_alloc(hlen + len);
    if (buf == NULL) {
        return NULL;
    }

    ngx_memcpy(buf->data, header, hlen);

    if (len) {
        ngx_memcpy(buf->data + hlen, payload, len);
    }

    return buf;
}


/*
 * An incremental UTF-8 check (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF) that fails at the first bad byte, as a fragment
 * arrives.  The state keeps the bytes still expected and the range of the
 * next one; 0 means "between characters".
 */
ngx_uint_t
ngx_http_chat_ws_utf8(uint32_t *state, u_char *p, size_t len)
{
    u_char      c, *last;
    uint32_t    need, lo, hi;

    need = *state & 3;
    lo = (*state >> 8) & 0xff;
    hi = (*state >> 16) & 0xff;

    for (last = p + len; p < last; p++) {
        c = *p;

        if (need) {
            if (c < lo || c > hi) {
                return 0;
            }

            need--;
            lo = 0x80;
            hi = 0xbf;
            continue;
        }

        if (c < 0x80) {
            continue;
        }

        lo = 0x80;
        hi = 0xbf;

        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;

        } else if (c == 0xe0) {
            need = 2;
            lo = 0xa0;

        } else if (c == 0xed) {
            need = 2;
            hi = 0x9f;

        } else if (c >= 0xe1 && c <= 0xef) {
            need = 2;

        } else if (c == 0xf0) {
            need = 3;
            lo = 0x90;

        } else if (c >= 0xf1 && c <= 0xf3) {
            need = 3;

        } else if (c == 0xf4) {
            need = 3;
            hi = 0x8f;

        } else {
            return 0;
        }
    }

    *state = need ? (need | (lo << 8) | (hi << 16)) : 0;

    return 1;
}


ngx_uint_t
ngx_http_chat_ws_close_code_valid(ngx_uint_t code)
{
    return (code >= 1000 && code <= 1003)
           || (code >= 1007 && code <= 1014)
           || (code >= 3000 && code <= 4999);
}


/*
 * Takes n bytes that came off the socket (unmasked in place).  NGX_OK:
 * all taken; NGX_DONE: the peer's close came (or the stream cannot be
 * trusted any more) and the rest was dropped.
 */
ngx_int_t
ngx_http_chat_ws_read(ngx_http_chat_ws_t *ws, u_char *p, size_t n)
{
    size_t     need, m;
    ngx_int_t  rc;

    while (n && !ws->close_received && !ws->destroy) {

        if (!ws->in_payload) {
            need = (ws->header_len < 2)
                   ? 2 : ngx_http_chat_ws_header_size(ws->header);

            m = ngx_min(need - ws->header_len, n);
            ngx_memcpy(ws->header + ws->header_len, p, m);
            ws->header_len += m;
            p += m;
            n -= m;

            if (ws->header_len == 2
                && ngx_http_chat_ws_header_size(ws->header) > 2)
            {
                continue;
            }

            if (ws->header_len < need) {
                break;
            }

            rc = ngx_http_chat_ws_header_done(ws);

            if (rc == NGX_OK && !ws->in_payload) {
                /* an empty frame is done as soon as its header is */
                rc = ngx_http_chat_ws_frame_done(ws);
            }

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            continue;
        }

        m = (size_t) ngx_min((uint64_t) n, ws->payload_left);

        rc = ngx_http_chat_ws_payload(ws, p, m);

        p += m;
        n -= m;
        ws->payload_left -= m;

        if (rc != NGX_ERROR && ws->payload_left == 0) {
            ws->in_payload = 0;
            rc = ngx_http_chat_ws_frame_done(ws);
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    return (ws->close_received || ws->destroy) ? NGX_DONE : NGX_OK;
}


static ngx_int_t
ngx_http_chat_ws_header_done(ngx_http_chat_ws_t *ws)
{
    u_char      *h;
    uint64_t     len;
    ngx_uint_t   fin, rsv1, opcode, i;

    h = ws->header;
    fin = h[0] & 0x80;
    rsv1 = h[0] & 0x40;
    opcode = h[0] & 0x0f;

    if (h[0] & 0x30) {
        return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                     "reserved bits set");
    }

    if (!(h[1] & 0x80)) {
        return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                     "client frames must be masked");
    }

    len = h[1] & 0x7f;

    if (len == 126) {
        len = ((uint64_t) h[2] << 8) | h[3];

    } else if (len == 127) {
        len = 0;
        for (i = 2; i < 10; i++) {
            len = (len << 8) | h[i];
        }

        if (len >> 63) {
            return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                         "bad frame length");
        }
    }

    switch (opcode) {

    case NGX_HTTP_CHAT_WS_CLOSE:
    case NGX_HTTP_CHAT_WS_PING:
    case NGX_HTTP_CHAT_WS_PONG:
        if (!fin || rsv1) {
            return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                         "fragmented control frame");
        }

        if (len > 125) {
            return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                         "control frame too long");
        }

        ws->control_len = 0;

        if (len) {
            ws->control = ngx_alloc(len, ws->connection->log);
            if (ws->control == NULL) {
                return ngx_http_chat_ws_fail_stream(ws,
                                             NGX_HTTP_CHAT_WS_SERVER_ERROR,
                                             NULL);
            }
        }

        break;

    case NGX_HTTP_CHAT_WS_CONT:
        if (ws->message_opcode == 0) {
            return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                         "continuation without a message");
        }

        if (rsv1) {
            return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                         "RSV1 on a continuation");
        }

        break;

    case NGX_HTTP_CHAT_WS_TEXT:
    case NGX_HTTP_CHAT_WS_BINARY:
        if (ws->message_opcode) {
            return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                         "message inside a message");
        }

        if (rsv1 && ws->deflate == NULL) {
            return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                         "RSV1 without permessage-deflate");
        }

        ws->message_opcode = (uint8_t) opcode;
        ws->compressed = rsv1 ? 1 : 0;
        ws->utf8_state = 0;
        ws->message_len = 0;
        break;

    default:
        return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                     "reserved opcode");
    }

    if (opcode < NGX_HTTP_CHAT_WS_CLOSE
        && len > ws->conf->max_message - ws->message_len)
    {
        return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_TOO_BIG,
                                     "message too big");
    }

    ws->opcode = (uint8_t) opcode;
    ws->fin = fin ? 1 : 0;
    ws->payload_left = len;
    ws->mask_pos = 0;
    ws->in_payload = (len > 0);

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_ws_payload(ngx_http_chat_ws_t *ws, u_char *p, size_t n)
{
    u_char  *key, *q, *last;
    size_t   hlen;

    hlen = ngx_http_chat_ws_header_size(ws->header);
    key = ws->header + hlen - 4;

    for (q = p, last = p + n; q < last; q++) {
        *q ^= key[ws->mask_pos & 3];
        ws->mask_pos++;
    }

    if (ws->opcode >= NGX_HTTP_CHAT_WS_CLOSE) {
        ngx_memcpy(ws->control + ws->control_len, p, n);
        ws->control_len += n;
        return NGX_OK;
    }

    if (ws->close_sent) {
        return NGX_OK;    /* closing: data is no longer read */
    }

    if (ws->message_opcode == NGX_HTTP_CHAT_WS_TEXT && !ws->compressed
        && !ngx_http_chat_ws_utf8(&ws->utf8_state, p, n))
    {
        return ngx_http_chat_ws_fail(ws, NGX_HTTP_CHAT_WS_BAD_DATA,
                                     "invalid UTF-8");
    }

    /* a whole message in one read: handed over without a copy */
    if (ws->fin && ws->message == NULL && n == ws->payload_left) {
        ws->delivered = 1;
        return ngx_http_chat_ws_deliver(ws, p, n);
    }

    return ngx_http_chat_ws_append(ws, p, n);
}


static ngx_int_t
ngx_http_chat_ws_append(ngx_http_chat_ws_t *ws, u_char *p, size_t n)
{
    u_char  *m;
    size_t   size;

    if (ws->message_len + n > ws->message_size) {
        /* the frame's length is known: room for all of it at once */
        size = ngx_max(ws->message_len + (size_t) ws->payload_left,
                       ws->message_size * 2);
        size = ngx_min(size, ws->conf->max_message);
        size = ngx_max(size, ws->message_len + n);

        m = ngx_alloc(size, ws->connection->log);
        if (m == NULL) {
            return ngx_http_chat_ws_fail(ws, NGX_HTTP_CHAT_WS_SERVER_ERROR,
                                         NULL);
        }

        if (ws->message) {
            ngx_memcpy(m, ws->message, ws->message_len);
            ngx_free(ws->message);
        }

        ws->message = m;
        ws->message_size = size;
    }

    ngx_memcpy(ws->message + ws->message_len, p, n);
    ws->message_len += n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_ws_frame_done(ngx_http_chat_ws_t *ws)
{
    ngx_int_t  rc;

    ws->header_len = 0;

    if (ws->opcode >= NGX_HTTP_CHAT_WS_CLOSE) {
        rc = ngx_http_chat_ws_control(ws);

        if (ws->control) {
            ngx_free(ws->control);
            ws->control = NULL;
        }

        return rc;
    }

    if (ws->delivered) {
        ws->delivered = 0;
        return NGX_OK;
    }

    if (!ws->fin) {
        return NGX_OK;
    }

    if (ws->close_sent) {
        ngx_http_chat_ws_message_reset(ws);
        return NGX_OK;
    }

    return ngx_http_chat_ws_deliver(ws, ws->message, ws->message_len);
}


static ngx_int_t
ngx_http_chat_ws_deliver(ngx_http_chat_ws_t *ws, u_char *p, size_t n)
{
    size_t       len;
    u_char      *data;
    uint32_t     state;
    ngx_int_t    rc;
    ngx_uint_t   opcode;

    opcode = ws->message_opcode;
    data = p;
    len = n;

    if (ws->compressed) {
        rc = ngx_http_chat_ws_inflate(ws, p, n, &data, &len);

        if (rc == NGX_DECLINED) {
            ngx_http_chat_ws_message_reset(ws);
            return ngx_http_chat_ws_fail(ws, NGX_HTTP_CHAT_WS_TOO_BIG,
                                         "message too big");
        }

        if (rc != NGX_OK) {
            ngx_http_chat_ws_message_reset(ws);
            return ngx_http_chat_ws_fail(ws, NGX_HTTP_CHAT_WS_BAD_DATA,
                                         "bad compressed data");
        }

        state = 0;

        if (opcode == NGX_HTTP_CHAT_WS_TEXT
            && (!ngx_http_chat_ws_utf8(&state, data, len) || state != 0))
        {
            ngx_http_chat_ws_message_reset(ws);
            return ngx_http_chat_ws_fail(ws, NGX_HTTP_CHAT_WS_BAD_DATA,
                                         "invalid UTF-8");
        }

    } else if (opcode == NGX_HTTP_CHAT_WS_TEXT && ws->utf8_state != 0) {
        ngx_http_chat_ws_message_reset(ws);
        return ngx_http_chat_ws_fail(ws, NGX_HTTP_CHAT_WS_BAD_DATA,
                                     "truncated UTF-8");
    }

    ws->message_opcode = 0;

    ws->conf->app->message(ws, opcode, data, len);

    ngx_http_chat_ws_message_reset(ws);

    return (ws->destroy || ws->close_received) ? NGX_DONE : NGX_OK;
}


static void
ngx_http_chat_ws_message_reset(ngx_http_chat_ws_t *ws)
{
    if (ws->message) {
        ngx_free(ws->message);
        ws->message = NULL;
    }

    ws->message_len = 0;
    ws->message_size = 0;
    ws->message_opcode = 0;
    ws->compressed = 0;
}


static ngx_int_t
ngx_http_chat_ws_control(ngx_http_chat_ws_t *ws)
{
    uint32_t    state;
    ngx_uint_t  code;

    switch (ws->opcode) {

    case NGX_HTTP_CHAT_WS_PING:
        if (!ws->close_sent) {
            (void) ngx_http_chat_ws_send(ws, NGX_HTTP_CHAT_WS_PONG,
                                         ws->control, ws->control_len);
        }

        return NGX_OK;

    case NGX_HTTP_CHAT_WS_PONG:
        ws->awaiting_pong = 0;
        return NGX_OK;

    default: /* NGX_HTTP_CHAT_WS_CLOSE */
        break;
    }

    /* the peer is done, even when its close frame is bad */
    code = NGX_HTTP_CHAT_WS_NORMAL;

    if (ws->control_len == 1) {
        return ngx_http_chat_ws_fail_stream(ws, NGX_HTTP_CHAT_WS_PROTOCOL,
                                            "bad close frame");
    }

    if (ws->control_len >= 2) {
        code = ((ngx_uint_t) ws->control[0] << 8) | ws->control[1];

        if (!ngx_http_chat_ws_close_code_valid(code)) {
            return ngx_http_chat_ws_fail_stream(ws,
                                                NGX_HTTP_CHAT_WS_PROTOCOL,
                                                "bad close code");
        }

        state = 0;

        if (!ngx_http_chat_ws_utf8(&state, ws->control + 2,
                                   ws->control_len - 2)
            || state != 0)
        {
            return ngx_http_chat_ws_fail_stream(ws,
                                                NGX_HTTP_CHAT_WS_BAD_DATA,
                                                "invalid UTF-8 in close "
                                                "reason");
        }
    }

    ws->close_received = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ws->connection->log, 0,
                   "chat ws: close %ui received", code);

    /* answered with the same code; the socket goes once that is out */
    ngx_http_chat_ws_close(ws, code, NULL);

    return NGX_DONE;
}


/* the stream itself is broken: close right after our close frame */
static ngx_int_t
ngx_http_chat_ws_fail_stream(ngx_http_chat_ws_t *ws, ngx_uint_t code,
    const char *reason)
{
    (void) ngx_http_chat_ws_fail(ws, code, reason);

    ws->close_received = 1;
    ws->in_payload = 0;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_chat_ws_fail(ngx_http_chat_ws_t *ws, ngx_uint_t code,
    const char *reason)
{
    ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                  "chat ws: closing with %ui: %s", code,
                  reason ? reason : "internal error");

    if (ws->close_sent) {
        /* garbage after our close: nothing more to say */
        ws->close_received = 1;
        ws->failed = 1;
        return NGX_DONE;
    }

    ws->failed = 1;
    ngx_http_chat_ws_close(ws, code, reason);

    return NGX_DONE;
}
