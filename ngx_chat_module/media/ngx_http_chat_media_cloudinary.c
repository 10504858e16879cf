/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>

#include "ngx_http_chat_media_int.h"
#include "../services/ngx_http_chat_curl.h"


/*
 * Cloudinary's upload API, signed as Cloudinary documents it: the
 * parameters other than file, api_key and resource_type, sorted and
 * joined as a=1&b=2, followed by the API secret, hashed with SHA-1.
 * The file part comes from the stored temporary file, read in chunks in
 * the thread pool: libcurl's read callback hands over what a thread read
 * and pauses the transfer until the next chunk is there.
 */

#define NGX_HTTP_CHAT_CLD_CHUNK  262144


typedef struct {
    ngx_http_request_t         *request;   /* NULL once it went away */
    ngx_http_cleanup_t         *cleanup;
    ngx_http_chat_curl_req_t   *curl;
    curl_mime                  *mime;
    ngx_int_t                 (*next)(ngx_http_request_t *r,
                                      ngx_str_t *secure_url);

    /* the file, and the chunk a thread read last */
    ngx_fd_t                    fd;
    off_t                       size;
    off_t                       offset;    /* of the next chunk to read */
    u_char                     *buf;
    u_char                     *pos;
    u_char                     *last;
    unsigned                    reading:1;
    unsigned                    failed:1;
} ngx_http_chat_media_cld_t;


/* a chunk to read: a duplicate of the descriptor, which the task closes */
typedef struct {
    ngx_fd_t                    fd;
    off_t                       offset;
    size_t                      len;
} ngx_http_chat_media_cld_chunk_t;


static void ngx_http_chat_media_cld_done(ngx_http_chat_curl_req_t *req,
    void *data);
static void ngx_http_chat_media_cld_cleanup(void *data);
static void ngx_http_chat_media_cld_release(ngx_http_chat_media_cld_t *cld);
static size_t ngx_http_chat_media_cld_read(char *buffer, size_t size,
    size_t nitems, void *arg);
static int ngx_http_chat_media_cld_seek(void *arg, curl_off_t offset,
    int origin);
static void ngx_http_chat_media_cld_chunk_run(ngx_http_chat_thread_t *t);
static void ngx_http_chat_media_cld_chunk_done(ngx_http_chat_thread_t *t);
static void ngx_http_chat_media_cld_chunk_free(ngx_http_chat_thread_t *t);


static ngx_int_t
ngx_http_chat_media_cld_part(curl_mime *mime, const char *name,
    const char *value)
{
    curl_mimepart  *part;

    part = curl_mime_addpart(mime);
    if (part == NULL
        || curl_mime_name(part, name) != CURLE_OK
        || curl_mime_data(part, value, CURL_ZERO_TERMINATED) != CURLE_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_media_cloudinary_upload(ngx_http_request_t *r,
    const char *path, ngx_int_t (*next)(ngx_http_request_t *r,
    ngx_str_t *secure_url))
{
    u_char                           *url, ts[NGX_TIME_T_LEN + 1];
    u_char                            md[EVP_MAX_MD_SIZE], sig[41];
    size_t                            len;
    EVP_MD_CTX                       *ctx;
    unsigned int                      md_len;
    curl_mimepart                    *part;
    ngx_file_info_t                   fi;
    ngx_http_cleanup_t               *cln;
    ngx_http_chat_main_conf_t        *cmcf;
    ngx_http_chat_media_cld_t        *cld;
    ngx_http_chat_media_main_conf_t  *mmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);
    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);

    (void) ngx_snprintf(ts, sizeof(ts) - 1, "%T%Z", ngx_time());

    /* signature = sha1("timestamp=<ts>" + api_secret) */
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1
        || EVP_DigestUpdate(ctx, "timestamp=", 10) != 1
        || EVP_DigestUpdate(ctx, ts, ngx_strlen(ts)) != 1
        || EVP_DigestUpdate(ctx, mmcf->cloudinary_api_secret.data,
                            mmcf->cloudinary_api_secret.len) != 1
        || EVP_DigestFinal_ex(ctx, md, &md_len) != 1)
    {
        EVP_MD_CTX_free(ctx);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    EVP_MD_CTX_free(ctx);

    *ngx_hex_dump(sig, md, md_len) = '\0';

    len = mmcf->cloudinary_base_url.len
          + mmcf->cloudinary_cloud_name.len + sizeof("/v1_1//auto/upload");

    url = ngx_pnalloc(r->pool, len);
    if (url == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_snprintf(url, len, "%V/v1_1/%V/auto/upload%Z",
                        &mmcf->cloudinary_base_url,
                        &mmcf->cloudinary_cloud_name);

    cld = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_media_cld_t));
    cln = ngx_http_cleanup_add(r, 0);

    if (cld == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cld->request = r;
    cld->fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (cld->fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", path);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_fd_info(cld->fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                      ngx_fd_info_n " \"%s\" failed", path);
        (void) ngx_close_file(cld->fd);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cld->size = ngx_file_size(&fi);

    /* the descriptor and the chunk go with the request from now on */
    cln->handler = ngx_http_chat_media_cld_cleanup;
    cln->data = cld;
    cld->cleanup = cln;

    cld->curl = ngx_http_chat_curl_create(ngx_cycle->log,
                                          cmcf->upstream_timeout);
    if (cld->curl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cld->mime = curl_mime_init(cld->curl->easy);
    if (cld->mime == NULL) {
        goto failed;
    }

    part = curl_mime_addpart(cld->mime);
    if (part == NULL
        || curl_mime_name(part, "file") != CURLE_OK
        || curl_mime_data_cb(part, (curl_off_t) cld->size,
                             ngx_http_chat_media_cld_read,
                             ngx_http_chat_media_cld_seek, NULL, cld)
           != CURLE_OK
        || curl_mime_filename(part, "upload") != CURLE_OK)
    {
        goto failed;
    }

    /* curl copies the strings it is given */
    if (ngx_http_chat_media_cld_part(cld->mime, "timestamp", (char *) ts)
        != NGX_OK
        || ngx_http_chat_media_cld_part(cld->mime, "signature", (char *) sig)
           != NGX_OK)
    {
        goto failed;
    }

    part = curl_mime_addpart(cld->mime);
    if (part == NULL
        || curl_mime_name(part, "api_key") != CURLE_OK
        || curl_mime_data(part, (char *) mmcf->cloudinary_api_key.data,
                          mmcf->cloudinary_api_key.len) != CURLE_OK)
    {
        goto failed;
    }

    if (curl_easy_setopt(cld->curl->easy, CURLOPT_URL, (char *) url)
        != CURLE_OK
        || curl_easy_setopt(cld->curl->easy, CURLOPT_MIMEPOST, cld->mime)
           != CURLE_OK)
    {
        goto failed;
    }

    cld->next = next;

    if (ngx_http_chat_curl_start(cld->curl, ngx_http_chat_media_cld_done,
                                 cld)
        != NGX_OK)
    {
        goto failed;
    }

    r->main->count++;

    return NGX_DONE;

failed:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "chat: cannot start the cloudinary upload");

    ngx_http_chat_curl_cancel(cld->curl);
    cld->curl = NULL;

    if (cld->mime) {
        curl_mime_free(cld->mime);
        cld->mime = NULL;
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* the request is freed: stop the transfer, which calls nobody back */

static void
ngx_http_chat_media_cld_cleanup(void *data)
{
    ngx_http_chat_media_cld_t  *cld = data;

    if (cld->curl) {
        ngx_http_chat_curl_cancel(cld->curl);
        cld->curl = NULL;
    }

    if (cld->mime) {
        curl_mime_free(cld->mime);
        cld->mime = NULL;
    }

    ngx_http_chat_media_cld_release(cld);
}


static void
ngx_http_chat_media_cld_release(ngx_http_chat_media_cld_t *cld)
{
    if (cld->fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(cld->fd);
        cld->fd = NGX_INVALID_FILE;
    }

    if (cld->buf) {
        ngx_free(cld->buf);
        cld->buf = NULL;
    }
}


/*
 * libcurl wants bytes of the file: those of the last chunk, or a pause
 * while a thread reads the next one.  On the event loop.
 */

static size_t
ngx_http_chat_media_cld_read(char *buffer, size_t size, size_t nitems,
    void *arg)
{
    ngx_http_chat_media_cld_t  *cld = arg;

    size_t                            n;
    ngx_http_chat_thread_t           *t;
    ngx_http_chat_media_cld_chunk_t   chunk;

    if (cld->failed) {
        return CURL_READFUNC_ABORT;
    }

    if (cld->pos < cld->last) {
        n = ngx_min(size * nitems, (size_t) (cld->last - cld->pos));
        ngx_memcpy(buffer, cld->pos, n);
        cld->pos += n;
        return n;
    }

    if (cld->offset >= cld->size) {
        return 0;
    }

    if (cld->reading) {
        return CURL_READFUNC_PAUSE;
    }

    chunk.offset = cld->offset;
    chunk.len = (size_t) ngx_min((off_t) NGX_HTTP_CHAT_CLD_CHUNK,
                                 cld->size - cld->offset);
    chunk.fd = dup(cld->fd);

    if (chunk.fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, cld->request->connection->log, ngx_errno,
                      "chat: dup() of the media file failed");
        return CURL_READFUNC_ABORT;
    }

    t = ngx_http_chat_thread_create(ngx_cycle->log,
                                    ngx_http_chat_media_cld_chunk_run,
                                    ngx_http_chat_media_cld_chunk_done, NULL,
                                    &chunk, sizeof(chunk));
    if (t == NULL) {
        (void) close(chunk.fd);
        return CURL_READFUNC_ABORT;
    }

    t->cleanup = ngx_http_chat_media_cld_chunk_free;
    t->next = cld;

    /* aborted with the request; the cleanup closes the duplicate */
    if (ngx_http_chat_thread_post_request(cld->request, t) != NGX_OK) {
        return CURL_READFUNC_ABORT;
    }

    cld->reading = 1;

    return CURL_READFUNC_PAUSE;
}


/* libcurl rewinds before it sends, and never seeks elsewhere */

static int
ngx_http_chat_media_cld_seek(void *arg, curl_off_t offset, int origin)
{
    ngx_http_chat_media_cld_t  *cld = arg;

    if (origin != SEEK_SET || offset != 0) {
        return CURL_SEEKFUNC_CANTSEEK;
    }

    if (cld->offset == 0 || (cld->reading == 0 && cld->buf
                             && cld->offset == cld->last - cld->buf))
    {
        /* nothing handed over yet, or the first chunk is still here */
        cld->pos = cld->buf;
        return CURL_SEEKFUNC_OK;
    }

    return CURL_SEEKFUNC_CANTSEEK;
}


/* in a pool thread */

static void
ngx_http_chat_media_cld_chunk_run(ngx_http_chat_thread_t *t)
{
    ngx_http_chat_media_cld_chunk_t  *chunk = t->arg;

    u_char   *buf;
    size_t    got;
    ssize_t   n;

    buf = ngx_alloc(chunk->len, t->log);
    if (buf == NULL) {
        return;
    }

    for (got = 0; got < chunk->len; got += n) {
        n = pread(chunk->fd, buf + got, chunk->len - got,
                  chunk->offset + got);

        if (n <= 0) {
            ngx_log_error(NGX_LOG_ERR, t->log, ngx_errno,
                          "chat: reading the media file failed");
            ngx_free(buf);
            return;
        }
    }

    t->result = buf;
    t->rc = NGX_OK;
}


/* on the event loop, while the request lives */

static void
ngx_http_chat_media_cld_chunk_done(ngx_http_chat_thread_t *t)
{
    ngx_http_chat_media_cld_chunk_t  *chunk = t->arg;

    ngx_http_request_t         *r;
    ngx_http_chat_media_cld_t  *cld;

    r = t->data;
    cld = t->next;

    cld->reading = 0;

    if (cld->curl == NULL) {
        /* the transfer ended meanwhile: the task's cleanup frees the chunk */
        ngx_http_finalize_request(r, NGX_DONE);
        return;
    }

    if (t->rc != NGX_OK || t->result == NULL) {
        cld->failed = 1;

    } else {
        if (cld->buf) {
            ngx_free(cld->buf);
        }

        cld->buf = t->result;
        t->result = NULL;
        cld->pos = cld->buf;
        cld->last = cld->buf + chunk->len;
        cld->offset += chunk->len;
    }

    /* libcurl calls the read callback again from its timer */
    (void) curl_easy_pause(cld->curl->easy, CURLPAUSE_CONT);

    /* the reference the task took */
    ngx_http_finalize_request(r, NGX_DONE);
}


static void
ngx_http_chat_media_cld_chunk_free(ngx_http_chat_thread_t *t)
{
    ngx_http_chat_media_cld_chunk_t  *chunk = t->arg;

    if (t->result) {
        ngx_free(t->result);
        t->result = NULL;
    }

    (void) close(chunk->fd);
}


static void
ngx_http_chat_media_cld_done(ngx_http_chat_curl_req_t *req, void *data)
{
    ngx_http_chat_media_cld_t  *cld = data;

    json_t              *json, *v;
    ngx_int_t            rc;
    ngx_str_t            url;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = cld->request;
    c = r->connection;

    cld->cleanup->handler = NULL;
    cld->curl = NULL;

    /* the easy handle goes after done(): the mime only then */
    json = NULL;

    if (req->result != CURLE_OK || req->status < 200 || req->status > 299
        || req->body == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "chat: cloudinary upload failed: %ld %s",
                      req->status, req->result != CURLE_OK ? req->errbuf
                                                          : "");
        rc = ngx_http_chat_send_error(r, NGX_HTTP_BAD_GATEWAY,
                                      "storage_unavailable",
                                      "the media storage refused the file");
        goto done;
    }

    json = json_loadb((char *) req->body, req->body_len, 0, NULL);
    v = json ? json_object_get(json, "secure_url") : NULL;

    if (!json_is_string(v)) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "chat: cloudinary answered without secure_url");
        rc = ngx_http_chat_send_error(r, NGX_HTTP_BAD_GATEWAY,
                                      "storage_unavailable",
                                      "the media storage gave no URL");
        goto done;
    }

    url.len = json_string_length(v);
    url.data = ngx_pnalloc(r->pool, url.len);
    if (url.data == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ngx_memcpy(url.data, json_string_value(v), url.len);

    rc = cld->next(r, &url);

done:

    json_decref(json);

    /* libcurl no longer reads it once done() is called */
    curl_easy_setopt(req->easy, CURLOPT_MIMEPOST, NULL);
    curl_mime_free(cld->mime);
    cld->mime = NULL;
    ngx_http_chat_media_cld_release(cld);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}
