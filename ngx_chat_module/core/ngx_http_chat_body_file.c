/*
 * Copyright (C) ngx_chat_module authors
 *
 * A JSON body that NGINX spilled to its temporary file (larger than
 * client_body_buffer_size) is read and parsed in the thread pool: reading
 * a file, even one in the page cache, and parsing a large document are
 * no work for the event loop.
 */


#include "ngx_http_chat_async.h"


/*
 * The thread's input: a duplicate of the temporary file's descriptor (the
 * request may close its own meanwhile), then nparts of the body in order,
 * then the bytes of the parts that were in memory.
 */

typedef struct {
    off_t                      pos;       /* in the file, or in the bytes */
    size_t                     len;
    ngx_uint_t                 in_file;
} ngx_http_chat_body_part_t;

typedef struct {
    ngx_fd_t                   fd;
    size_t                     total;
    ngx_uint_t                 nparts;
} ngx_http_chat_body_in_t;


static void ngx_http_chat_body_file_run(ngx_http_chat_thread_t *t);
static void ngx_http_chat_body_file_free(ngx_http_chat_thread_t *t);
static ngx_int_t ngx_http_chat_body_file_done(ngx_http_request_t *r,
    ngx_http_chat_thread_t *t);


ngx_int_t
ngx_http_chat_body_file_json(ngx_http_request_t *r, off_t total)
{
    u_char                     *p;
    size_t                      size, mem;
    ngx_fd_t                    fd;
    ngx_buf_t                  *b;
    ngx_uint_t                  n;
    ngx_chain_t                *cl;
    ngx_http_chat_body_in_t    *in;
    ngx_http_chat_body_part_t  *part;

    n = 0;
    mem = 0;
    fd = NGX_INVALID_FILE;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        n++;

        if (!b->in_file) {
            mem += b->last - b->pos;
            continue;
        }

        if (fd == NGX_INVALID_FILE) {
            fd = b->file->fd;

        } else if (b->file->fd != fd) {
            /* NGINX keeps one temporary file a body */
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    size = sizeof(ngx_http_chat_body_in_t)
           + n * sizeof(ngx_http_chat_body_part_t) + mem;

    in = ngx_pnalloc(r->pool, size);
    if (in == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    in->total = (size_t) total;
    in->nparts = n;

    part = (ngx_http_chat_body_part_t *) (in + 1);
    p = (u_char *) (part + n);
    mem = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next, part++) {
        b = cl->buf;

        if (b->in_file) {
            part->in_file = 1;
            part->pos = b->file_pos;
            part->len = (size_t) (b->file_last - b->file_pos);
            continue;
        }

        part->in_file = 0;
        part->pos = mem;
        part->len = b->last - b->pos;
        p = ngx_cpymem(p, b->pos, part->len);
        mem += part->len;
    }

    in->fd = dup(fd);
    if (in->fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                      "chat: dup() of the body's file failed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the task has its own copy of in; its cleanup closes the duplicate */
    return ngx_http_chat_thread_request_cleanup(r,
                                                ngx_http_chat_body_file_run,
                                                ngx_http_chat_body_file_done,
                                                ngx_http_chat_body_file_free,
                                                in, size);
}


/* in a pool thread */

static void
ngx_http_chat_body_file_run(ngx_http_chat_thread_t *t)
{
    ngx_http_chat_body_in_t  *in = t->arg;

    u_char                     *buf, *p, *mem;
    ssize_t                     n;
    ngx_uint_t                  i;
    json_error_t                err;
    ngx_http_chat_body_part_t  *part;

    buf = ngx_alloc(in->total ? in->total : 1, t->log);
    if (buf == NULL) {
        return;
    }

    part = (ngx_http_chat_body_part_t *) (in + 1);
    mem = (u_char *) (part + in->nparts);
    p = buf;

    for (i = 0; i < in->nparts; i++, part++) {

        if ((size_t) (p - buf) + part->len > in->total) {
            goto failed;
        }

        if (!part->in_file) {
            p = ngx_cpymem(p, mem + part->pos, part->len);
            continue;
        }

        n = pread(in->fd, p, part->len, part->pos);

        if (n != (ssize_t) part->len) {
            ngx_log_error(NGX_LOG_ERR, t->log, ngx_errno,
                          "chat: pread() of the body's file failed");
            goto failed;
        }

        p += n;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, t->log, 0,
                   "chat: a body of %uz bytes read from its file "
                   "in a pool thread", (size_t) (p - buf));

    /* NULL when invalid: the event loop answers 400 */
    t->result = json_loadb((const char *) buf, p - buf,
                           NGX_HTTP_CHAT_JSON_BODY_FLAGS, &err);
    t->rc = NGX_OK;

failed:

    ngx_free(buf);
}


static void
ngx_http_chat_body_file_free(ngx_http_chat_thread_t *t)
{
    ngx_http_chat_body_in_t  *in = t->arg;

    if (t->result) {
        json_decref(t->result);
        t->result = NULL;
    }

    if (in->fd != NGX_INVALID_FILE) {
        (void) close(in->fd);
        in->fd = NGX_INVALID_FILE;
    }
}


static ngx_int_t
ngx_http_chat_body_file_done(ngx_http_request_t *r, ngx_http_chat_thread_t *t)
{
    json_t  *json;

    if (t->rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the request owns the document from now on */
    json = t->result;
    t->result = NULL;

    return ngx_http_chat_body_json(r, json);
}
