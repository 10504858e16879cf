/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_chat_media_int.h"


/*
 * multipart/form-data over a file, in bounded chunks, in a pool thread:
 * finds the part named "file" and returns its byte range and its
 * Content-Type.  Anything truncated or malformed is EMULTIPART.
 */

#define NGX_HTTP_CHAT_MP_CHUNK    65536
#define NGX_HTTP_CHAT_MP_HEADERS  8192


/* the offset of pat at or after from, or -1 */

static off_t
ngx_http_chat_mp_find(ngx_fd_t fd, off_t size, off_t from, const u_char *pat,
    size_t len, u_char *buf)
{
    u_char   *p, *last;
    off_t     pos;
    ssize_t   n;

    pos = from;

    while (pos + (off_t) len <= size) {
        n = pread(fd, buf, NGX_HTTP_CHAT_MP_CHUNK, pos);
        if (n < (ssize_t) len) {
            return -1;
        }

        p = buf;
        last = buf + n - len + 1;

        while (p < last) {
            p = memchr(p, pat[0], last - p);
            if (p == NULL) {
                break;
            }

            if (ngx_memcmp(p, pat, len) == 0) {
                return pos + (p - buf);
            }

            p++;
        }

        pos += n - len + 1;
    }

    return -1;
}


/* the value of name="..." in a Content-Disposition, case-insensitive */

static ngx_uint_t
ngx_http_chat_mp_is_file(u_char *p, u_char *last)
{
    for ( /* void */ ; p + 11 <= last; p++) {
        if ((p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t')
            && ngx_strncasecmp(p, (u_char *) "name=\"file\"", 11) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* parses the part headers in h[0..len): is it "file", its type */

static ngx_uint_t
ngx_http_chat_mp_headers(u_char *h, size_t len, char *type, size_t size)
{
    u_char      *p, *eol, *last, *v;
    ngx_uint_t   file;

    file = 0;
    p = h;
    last = h + len;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        if (eol - p > 20
            && ngx_strncasecmp(p, (u_char *) "Content-Disposition:", 20) == 0)
        {
            file = ngx_http_chat_mp_is_file(p + 20, eol);

        } else if (eol - p > 13
                   && ngx_strncasecmp(p, (u_char *) "Content-Type:", 13) == 0)
        {
            v = p + 13;

            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }

            len = 0;

            while (v < eol && *v != '\r' && *v != ';' && len + 1 < size) {
                type[len++] = (char) *v++;
            }

            type[len] = '\0';
        }

        p = eol + 1;
    }

    return file;
}


ngx_uint_t
ngx_http_chat_media_multipart(ngx_fd_t fd, off_t size, const char *boundary,
    off_t *start, off_t *end, char *type, size_t type_size, ngx_log_t *log)
{
    u_char      *buf, *p, delim[NGX_HTTP_CHAT_MEDIA_BOUNDARY + 5];
    off_t        pos, next, hdr;
    size_t       dlen;
    ssize_t      n;
    ngx_uint_t   rc, found, file;
    char         ptype[NGX_HTTP_CHAT_MEDIA_MIME];

    /* "\r\n--boundary": the first one may come without its CRLF */
    dlen = ngx_strlen(boundary);
    delim[0] = '\r';
    delim[1] = '\n';
    delim[2] = '-';
    delim[3] = '-';
    ngx_memcpy(delim + 4, boundary, dlen);
    dlen += 4;

    buf = ngx_alloc(NGX_HTTP_CHAT_MP_CHUNK + 1, log);
    if (buf == NULL) {
        return NGX_HTTP_CHAT_MEDIA_EIO;
    }

    rc = NGX_HTTP_CHAT_MEDIA_EMULTIPART;
    found = 0;

    n = pread(fd, buf, dlen - 2, 0);

    if (n == (ssize_t) dlen - 2 && ngx_memcmp(buf, delim + 2, dlen - 2) == 0) {
        pos = dlen - 2;

    } else {
        pos = ngx_http_chat_mp_find(fd, size, 0, delim, dlen, buf);
        if (pos < 0) {
            goto done;
        }

        pos += dlen;
    }

    /* pos is just after a delimiter */

    for ( ;; ) {
        n = pread(fd, buf, 2, pos);
        if (n != 2) {
            goto done;
        }

        if (buf[0] == '-' && buf[1] == '-') {
            rc = found ? NGX_HTTP_CHAT_MEDIA_OK
                       : NGX_HTTP_CHAT_MEDIA_EMULTIPART;
            goto done;
        }

        if (buf[0] != '\r' || buf[1] != '\n') {
            goto done;
        }

        hdr = pos + 2;

        n = pread(fd, buf, NGX_HTTP_CHAT_MP_HEADERS, hdr);
        if (n < 2) {
            goto done;
        }

        if (buf[0] == '\r' && buf[1] == '\n') {
            p = buf;                                    /* no headers */

        } else {
            buf[n] = '\0';
            p = ngx_strlcasestrn(buf, buf + n, (u_char *) "\r\n\r\n", 3);
            if (p == NULL) {
                goto done;
            }

            p += 2;
        }

        ptype[0] = '\0';
        file = ngx_http_chat_mp_headers(buf, p - buf, ptype, sizeof(ptype));

        pos = hdr + (p - buf) + 2;

        next = ngx_http_chat_mp_find(fd, size, pos, delim, dlen, buf);
        if (next < 0) {
            goto done;                                  /* truncated */
        }

        if (file && !found) {
            found = 1;
            *start = pos;
            *end = next;
            ngx_cpystrn((u_char *) type, (u_char *) ptype, type_size);
        }

        pos = next + dlen;
    }

done:

    ngx_free(buf);

    return rc;
}


/*
 * The boundary parameter of a multipart/form-data Content-Type, into
 * boundary (NGX_HTTP_CHAT_MEDIA_BOUNDARY + 1 bytes).
 */

ngx_int_t
ngx_http_chat_media_boundary(ngx_str_t *type, char *boundary)
{
    u_char  *p, *last, *e;
    size_t   len;

    last = type->data + type->len;

    p = ngx_strlcasestrn(type->data, last, (u_char *) "boundary=", 8);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p += 9;

    if (p < last && *p == '"') {
        p++;
        e = ngx_strlchr(p, last, '"');
        if (e == NULL) {
            return NGX_ERROR;
        }

    } else {
        for (e = p; e < last && *e != ';' && *e != ' '; e++) { /* void */ }
    }

    len = e - p;

    if (len == 0 || len > NGX_HTTP_CHAT_MEDIA_BOUNDARY) {
        return NGX_ERROR;
    }

    ngx_memcpy(boundary, p, len);
    boundary[len] = '\0';

    return NGX_OK;
}
