/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <magic.h>
#include <pthread.h>

#include "ngx_http_chat_media_int.h"


/*
 * libmagic is safe in threads as long as no magic_t is shared: each pool
 * thread that sniffs opens its own on first use, kept in thread-specific
 * data and closed when the thread exits.  The compiled database is
 * mapped, so its pages are shared between them.
 */

static void ngx_http_chat_media_magic_key_create(void);
static void ngx_http_chat_media_magic_free(void *data);


static pthread_key_t   ngx_http_chat_media_magic_key;
static pthread_once_t  ngx_http_chat_media_magic_once = PTHREAD_ONCE_INIT;
static int             ngx_http_chat_media_magic_key_err;


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


static void
ngx_http_chat_media_magic_key_create(void)
{
    ngx_http_chat_media_magic_key_err =
        pthread_key_create(&ngx_http_chat_media_magic_key,
                           ngx_http_chat_media_magic_free);
}


static void
ngx_http_chat_media_magic_free(void *data)
{
    magic_close((magic_t) data);
}


static magic_t
ngx_http_chat_media_magic_open(ngx_log_t *log)
{
    magic_t  m;

    m = magic_open(MAGIC_MIME_TYPE);
    if (m == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno, "magic_open() failed");
        return NULL;
    }

    if (magic_load(m, NULL) != 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "magic_load() failed: %s",
                      magic_error(m));
        magic_close(m);
        return NULL;
    }

    return m;
}


ngx_int_t
ngx_http_chat_media_sniff(const u_char *head, size_t len, char *mime,
    size_t size, ngx_log_t *log)
{
    magic_t      m;
    const char  *type;

    if (pthread_once(&ngx_http_chat_media_magic_once,
                     ngx_http_chat_media_magic_key_create)
        != 0
        || ngx_http_chat_media_magic_key_err != 0)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "chat: pthread_key_create() failed");
        return NGX_ERROR;
    }

    m = pthread_getspecific(ngx_http_chat_media_magic_key);

    if (m == NULL) {
        m = ngx_http_chat_media_magic_open(log);
        if (m == NULL) {
            return NGX_ERROR;
        }

        if (pthread_setspecific(ngx_http_chat_media_magic_key, m) != 0) {
            magic_close(m);
            return NGX_ERROR;
        }
    }

    type = magic_buffer(m, head, len);
    if (type == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "chat: magic_buffer() failed: %s",
                      magic_error(m));
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) mime, (u_char *) type, size);

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_media_sniff_check(ngx_log_t *log)
{
    magic_t  m;

    m = ngx_http_chat_media_magic_open(log);
    if (m == NULL) {
        return NGX_ERROR;
    }

    magic_close(m);

    return NGX_OK;
}
