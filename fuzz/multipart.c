/*
 * Copyright (C) ngx_chat_module authors
 *
 * libFuzzer target: an upload's Content-Type and its multipart/form-data
 * body, through the boundary's parsing (ngx_http_chat_media_boundary)
 * and the parser the upload thread runs over the body's file
 * (ngx_http_chat_media_multipart), reading it from a memory file.
 *
 * sources: ngx_chat_module/media/ngx_http_chat_media_multipart.c
 *
 * The input: a line with the Content-Type, then the body.
 */


#define _GNU_SOURCE

#include "ngx_http_chat_fuzz.h"
#include "media/ngx_http_chat_media_int.h"

#include <sys/mman.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int         fd;
    char        boundary[NGX_HTTP_CHAT_MEDIA_BOUNDARY + 1];
    char        type[NGX_HTTP_CHAT_MEDIA_MIME];
    u_char     *p, *last;
    off_t       start, end;
    ngx_log_t  *log;
    ngx_str_t   ctype;
    ngx_uint_t  rc;

    log = ngx_http_chat_fuzz_init();

    p = (u_char *) data;
    last = p + size;

    ngx_http_chat_fuzz_line(&p, last, &ctype);

    if (ngx_http_chat_media_boundary(&ctype, boundary) != NGX_OK) {
        return 0;
    }

    fd = memfd_create("multipart", 0);
    if (fd == -1) {
        return 0;
    }

    if (last > p && write(fd, p, last - p) != last - p) {
        close(fd);
        return 0;
    }

    start = -1;
    end = -1;

    rc = ngx_http_chat_media_multipart(fd, last - p, boundary, &start, &end,
                                       type, sizeof(type), log);

    /* what the upload then stores: a range inside the body */
    if (rc == NGX_HTTP_CHAT_MEDIA_OK
        && (start < 0 || end < start || end > last - p
            || ngx_strlen(type) >= sizeof(type)))
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "fuzz: part %O-%O of a body of %O", start, end,
                      (off_t) (last - p));
        abort();
    }

    close(fd);

    return 0;
}
