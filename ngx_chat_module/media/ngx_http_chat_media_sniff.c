/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_chat_media_int.h"


/* the types we accept, as libmagic names them, and their family */

static const struct {
    const char  *mime;
    ngx_uint_t   prefix;        /* any type starting with mime */
    ngx_uint_t   family;
} ngx_http_chat_media_types[] = {
    { "image/jpeg", 0, NGX_HTTP_CHAT_MEDIA_IMAGE },
    { "image/png", 0, NGX_HTTP_CHAT_MEDIA_IMAGE },
    { "image/gif", 0, NGX_HTTP_CHAT_MEDIA_IMAGE },
    { "image/webp", 0, NGX_HTTP_CHAT_MEDIA_IMAGE },
    { "video/mp4", 0, NGX_HTTP_CHAT_MEDIA_VIDEO },
    { "video/webm", 0, NGX_HTTP_CHAT_MEDIA_VIDEO },
    { "video/quicktime", 0, NGX_HTTP_CHAT_MEDIA_VIDEO },
    { "audio/mpeg", 0, NGX_HTTP_CHAT_MEDIA_AUDIO },
    { "audio/ogg", 0, NGX_HTTP_CHAT_MEDIA_AUDIO },
    { "audio/mp4", 0, NGX_HTTP_CHAT_MEDIA_AUDIO },
    { "audio/x-m4a", 0, NGX_HTTP_CHAT_MEDIA_AUDIO },
    { "audio/webm", 0, NGX_HTTP_CHAT_MEDIA_AUDIO },
    { "audio/wav", 0, NGX_HTTP_CHAT_MEDIA_AUDIO },
    { "audio/x-wav", 0, NGX_HTTP_CHAT_MEDIA_AUDIO },
    { "audio/vnd.wave", 0, NGX_HTTP_CHAT_MEDIA_AUDIO },
    { "application/pdf", 0, NGX_HTTP_CHAT_MEDIA_DOCUMENT },
    { "application/zip", 0, NGX_HTTP_CHAT_MEDIA_DOCUMENT },
    { "application/msword", 0, NGX_HTTP_CHAT_MEDIA_DOCUMENT },
    { "application/vnd.openxmlformats-officedocument.", 1,
      NGX_HTTP_CHAT_MEDIA_DOCUMENT },
    { "text/plain", 0, NGX_HTTP_CHAT_MEDIA_DOCUMENT },
    { NULL, 0, 0 }
};


/* the family of a detected type, NGX_HTTP_CHAT_MEDIA_NONE if refused */

ngx_uint_t
ngx_http_chat_media_family(const char *mime)
{
    size_t      len;
    ngx_uint_t  i;

    for (i = 0; ngx_http_chat_media_types[i].mime; i++) {
        len = ngx_strlen(ngx_http_chat_media_types[i].mime);

        if (ngx_http_chat_media_types[i].prefix
            ? ngx_strncmp(mime, ngx_http_chat_media_types[i].mime, len) == 0
            : ngx_strcmp(mime, ngx_http_chat_media_types[i].mime) == 0)
        {
            return ngx_http_chat_media_types[i].family;
        }
    }

    return NGX_HTTP_CHAT_MEDIA_NONE;
}


/*
 * The family a client claims by a Content-Type, or NONE when it claims
 * nothing useful (absent, application/octet-stream, multipart/...).
 */

ngx_uint_t
ngx_http_chat_media_declared_family(ngx_str_t *type)
{
    if (type->len >= 6 && ngx_strncasecmp(type->data, (u_char *) "image/", 6)
                          == 0)
    {
        return NGX_HTTP_CHAT_MEDIA_IMAGE;
    }

    if (type->len >= 6 && ngx_strncasecmp(type->data, (u_char *) "video/", 6)
                          == 0)
    {
        return NGX_HTTP_CHAT_MEDIA_VIDEO;
    }

    if (type->len >= 6 && ngx_strncasecmp(type->data, (u_char *) "audio/", 6)
                          == 0)
    {
        return NGX_HTTP_CHAT_MEDIA_AUDIO;
    }

    if (type->len >= 24
        && ngx_strncasecmp(type->data, (u_char *) "application/octet-stream",
                           24) == 0)
    {
        return NGX_HTTP_CHAT_MEDIA_NONE;
    }

    if ((type->len >= 12
         && ngx_strncasecmp(type->data, (u_char *) "application/", 12) == 0)
        || (type->len >= 5
            && ngx_strncasecmp(type->data, (u_char *) "text/", 5) == 0))
    {
        return NGX_HTTP_CHAT_MEDIA_DOCUMENT;
    }

    return NGX_HTTP_CHAT_MEDIA_NONE;
}


#define ngx_http_chat_media_be16(p)  (((p)[0] << 8) | (p)[1])
#define ngx_http_chat_media_le16(p)  ((p)[0] | ((p)[1] << 8))
#define ngx_http_chat_media_le24(p)                                          \
    ((p)[0] | ((p)[1] << 8) | ((p)[2] << 16))
#define ngx_http_chat_media_be32(p)                                          \
    (((uint32_t) (p)[0] << 24) | ((p)[1] << 16) | ((p)[2] << 8) | (p)[3])


/* walks the JPEG markers up to a SOFn, reading a few bytes at a time */

static void
ngx_http_chat_media_jpeg(ngx_fd_t fd, off_t size, int32_t *width,
    int32_t *height)
{
    off_t       pos;
    u_char      b[9];
    ngx_uint_t  n, marker;

    pos = 2;

    for (n = 0; n < 1024 && pos + 4 <= size; n++) {

        if (pread(fd, b, sizeof(b), pos) < 4 || b[0] != 0xff) {
            return;
        }

        marker = b[1];

        if (marker == 0xff) {
            pos++;                                  /* fill byte */
            continue;
        }

        if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
            pos += 2;                               /* no length */
            continue;
        }

        if (marker == 0xd9 || marker == 0xda) {
            return;                                 /* EOI, SOS */
        }

        if (marker >= 0xc0 && marker <= 0xcf
            && marker != 0xc4 && marker != 0xc8 && marker != 0xcc)
        {
            if (pos + 9 > size) {
                return;
            }

            *height = ngx_http_chat_media_be16(&b[5]);
            *width = ngx_http_chat_media_be16(&b[7]);
            return;
        }

        pos += 2 + ngx_http_chat_media_be16(&b[2]);
    }
}


/* image width and height from the first bytes (and, for JPEG, the file) */

void
ngx_http_chat_media_dimensions(ngx_fd_t fd, off_t size, const u_char *h,
    size_t len, int32_t *width, int32_t *height)
{
    *width = 0;
    *height = 0;

    if (len >= 24 && ngx_memcmp(h, "\x89PNG\r\n\x1a\n", 8) == 0
        && ngx_memcmp(h + 12, "IHDR", 4) == 0)
    {
        *width = (int32_t) ngx_http_chat_media_be32(h + 16);
        *height = (int32_t) ngx_http_chat_media_be32(h + 20);

    } else if (len >= 10 && (ngx_memcmp(h, "GIF87a", 6) == 0
                             || ngx_memcmp(h, "GIF89a", 6) == 0))
    {
        *width = ngx_http_chat_media_le16(h + 6);
        *height = ngx_http_chat_media_le16(h + 8);

    } else if (len >= 30 && ngx_memcmp(h, "RIFF", 4) == 0
               && ngx_memcmp(h + 8, "WEBP", 4) == 0)
    {
        if (ngx_memcmp(h + 12, "VP8 ", 4) == 0
            && h[23] == 0x9d && h[24] == 0x01 && h[25] == 0x2a)
        {
            *width = ngx_http_chat_media_le16(h + 26) & 0x3fff;
            *height = ngx_http_chat_media_le16(h + 28) & 0x3fff;

        } else if (ngx_memcmp(h + 12, "VP8L", 4) == 0 && h[20] == 0x2f) {
            *width = 1 + (((h[22] & 0x3f) << 8) | h[21]);
            *height = 1 + (((h[24] & 0x0f) << 10) | (h[23] << 2)
                           | ((h[22] & 0xc0) >> 6));

        } else if (ngx_memcmp(h + 12, "VP8X", 4) == 0) {
            *width = 1 + ngx_http_chat_media_le24(h + 24);
            *height = 1 + ngx_http_chat_media_le24(h + 27);
        }

    } else if (len >= 4 && h[0] == 0xff && h[1] == 0xd8 && h[2] == 0xff) {
        ngx_http_chat_media_jpeg(fd, size, width, height);
    }

    if (*width < 0 || *height < 0) {
        *width = 0;
        *height = 0;
    }
}
