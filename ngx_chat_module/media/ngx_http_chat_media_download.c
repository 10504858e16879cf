/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>

#include "ngx_http_chat_media_int.h"


/*
 * GET <prefix><id>?exp=<unix time>&sig=<hex HMAC-SHA256(secret, id:exp)>:
 * the signature first, then the expiry, then the file.
 */

static ngx_int_t ngx_http_chat_media_download(ngx_http_request_t *r);
static ngx_int_t ngx_http_chat_media_found(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_media_file_headers(ngx_http_request_t *r,
    ngx_http_chat_media_doc_t *doc);


static ngx_str_t  ngx_http_chat_media_nosniff = ngx_string("nosniff");
static ngx_str_t  ngx_http_chat_media_sandbox = ngx_string("sandbox");


/*
 * The name a download is saved as: the media id and an extension from
 * the detected type, never anything the uploader chose
 */

static const struct {
    const char  *mime;
    const char  *ext;
} ngx_http_chat_media_extensions[] = {
    { "application/pdf", "pdf" },
    { "application/zip", "zip" },
    { "application/msword", "doc" },
    { "application/vnd.openxmlformats-officedocument.wordprocessingml."
      "document", "docx" },
    { "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
      "xlsx" },
    { "application/vnd.openxmlformats-officedocument.presentationml."
      "presentation", "pptx" },
    { "text/plain", "txt" },
    { NULL, NULL }
};


static void
ngx_http_chat_media_hmac(ngx_http_request_t *r, ngx_str_t *id, time_t exp,
    u_char *hex)
{
    u_char                            msg[64], md[EVP_MAX_MD_SIZE], *p;
    unsigned int                      len;
    ngx_http_chat_media_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);

    p = ngx_snprintf(msg, sizeof(msg), "%V:%T", id, exp);

    len = 0;
    (void) HMAC(EVP_sha256(), mmcf->url_secret.data,
                (int) mmcf->url_secret.len, msg, p - msg, md, &len);

    *ngx_hex_dump(hex, md, len) = '\0';
}


ngx_int_t
ngx_http_chat_media_sign(ngx_http_request_t *r, ngx_str_t *id, time_t exp,
    ngx_str_t *url)
{
    u_char                            hex[2 * EVP_MAX_MD_SIZE + 1];
    size_t                            len;
    ngx_http_chat_media_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);

    ngx_http_chat_media_hmac(r, id, exp, hex);

    len = mmcf->url_prefix.len + id->len + sizeof("?exp=&sig=")
          + NGX_TIME_T_LEN + 64;

    url->data = ngx_pnalloc(r->pool, len);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    url->len = ngx_snprintf(url->data, len, "%V%V?exp=%T&sig=%s",
                            &mmcf->url_prefix, id, exp, hex)
               - url->data;

    return NGX_OK;
}


char *
ngx_http_chat_media_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_chat_main_conf_t  *cmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_chat_media_download;

    /* downloads look the media up in MongoDB: start it in the workers */
    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_chat_module);
    cmcf->enabled = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_chat_media_forbidden(ngx_http_request_t *r, const char *code,
    const char *message)
{
    return ngx_http_chat_send_error(r, NGX_HTTP_FORBIDDEN, code, message);
}


static ngx_int_t
ngx_http_chat_media_download(ngx_http_request_t *r)
{
    u_char                         *p, hex[2 * EVP_MAX_MD_SIZE + 1];
    time_t                          exp;
    ngx_int_t                       rc;
    ngx_str_t                       id, es, sig;
    ngx_http_chat_media_ids_arg_t   arg;

    if (ngx_http_chat_prepare(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_chat_send_method_not_allowed(r, NGX_HTTP_GET);
    }

    rc = ngx_http_chat_discard_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the last path segment */
    p = r->uri.data + r->uri.len;

    while (p > r->uri.data && p[-1] != '/') {
        p--;
    }

    id.data = p;
    id.len = r->uri.data + r->uri.len - p;

    if (id.len != 24 || !bson_oid_is_valid((char *) id.data, 24)) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such media");
    }

    if (ngx_http_arg(r, (u_char *) "exp", 3, &es) != NGX_OK
        || ngx_http_arg(r, (u_char *) "sig", 3, &sig) != NGX_OK)
    {
        return ngx_http_chat_media_forbidden(r, "invalid_signature",
                                             "the URL is not signed");
    }

    exp = ngx_atotm(es.data, es.len);

    if (exp == NGX_ERROR || sig.len != 64) {
        return ngx_http_chat_media_forbidden(r, "invalid_signature",
                                             "the URL signature is invalid");
    }

    ngx_http_chat_media_hmac(r, &id, exp, hex);

    if (CRYPTO_memcmp(hex, sig.data, 64) != 0) {
        return ngx_http_chat_media_forbidden(r, "invalid_signature",
                                             "the URL signature is invalid");
    }

    if (exp < ngx_time()) {
        return ngx_http_chat_media_forbidden(r, "url_expired",
                                             "the URL has expired");
    }

    ngx_memzero(&arg, sizeof(arg));
    ngx_memcpy(arg.media_id, id.data, 24);

    return ngx_http_chat_mongo_request(r, ngx_http_chat_media_find_run,
                                       ngx_http_chat_media_found, &arg,
                                       sizeof(arg));
}


static ngx_int_t
ngx_http_chat_media_found(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    size_t                            len;
    ngx_int_t                         rc;
    ngx_str_t                         path, loc;
    ngx_buf_t                        *b;
    ngx_chain_t                       out;
    ngx_open_file_info_t              of;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_chat_media_doc_t        *doc;
    ngx_http_chat_media_main_conf_t  *mmcf;

    doc = t->result;

    if (t->rc != NGX_OK || doc == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: media lookup failed: %s", t->error.message);
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "a back end is unavailable, "
                                        "try again shortly");
    }

    if (!doc->found) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such media");
    }

    if (doc->storage == NGX_HTTP_CHAT_MEDIA_CLOUDINARY) {
        loc.len = ngx_strlen(doc->location);
        loc.data = ngx_pnalloc(r->pool, loc.len);
        if (loc.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(loc.data, doc->location, loc.len);

        r->headers_out.location = ngx_list_push(&r->headers_out.headers);
        if (r->headers_out.location == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->headers_out.location->hash = 1;
        ngx_str_set(&r->headers_out.location->key, "Location");
        r->headers_out.location->value = loc;

        return NGX_HTTP_MOVED_TEMPORARILY;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    len = mmcf->root.len + 1 + ngx_strlen(doc->location);

    path.data = ngx_pnalloc(r->pool, len + 1);
    if (path.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    path.len = ngx_snprintf(path.data, len + 1, "%V/%s%Z", &mmcf->root,
                            doc->location) - path.data - 1;

    ngx_memzero(&of, sizeof(ngx_open_file_info_t));

    of.read_ahead = clcf->read_ahead;
    of.directio = clcf->directio;
    of.valid = clcf->open_file_cache_valid;
    of.min_uses = clcf->open_file_cache_min_uses;
    of.errors = clcf->open_file_cache_errors;
    of.events = clcf->open_file_cache_events;

    if (ngx_open_cached_file(clcf->open_file_cache, &path, &of, r->pool)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, of.err,
                      "chat: %s \"%V\" failed", of.failed, &path);
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such media");
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = of.size;
    r->headers_out.last_modified_time = of.mtime;
    r->headers_out.content_type.len = ngx_strlen(doc->mime);
    r->headers_out.content_type.data = ngx_pnalloc(r->pool,
                                         r->headers_out.content_type.len);
    if (r->headers_out.content_type.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(r->headers_out.content_type.data, doc->mime,
               r->headers_out.content_type.len);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (ngx_http_chat_media_file_headers(r, doc) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->allow_ranges = 1;

    if (r->method == NGX_HTTP_HEAD || of.size == 0) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
    if (b->file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->file_pos = 0;
    b->file_last = of.size;
    b->in_file = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    b->file->fd = of.fd;
    b->file->name = path;
    b->file->log = r->connection->log;
    b->file->directio = of.is_directio;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * A download is served from the API's origin: nothing in it may run
 * there.  Every file is sandboxed (no script, no same origin, should a
 * browser render it) and never sniffed; what a browser could render as a
 * page (a PDF, a document, text: anything but images, video and audio)
 * is saved, not shown, under a name of ours; text says its charset, so
 * that no browser guesses one (UTF-7 and the like).
 */

static ngx_int_t
ngx_http_chat_media_file_headers(ngx_http_request_t *r,
    ngx_http_chat_media_doc_t *doc)
{
    u_char      *p;
    size_t       len;
    ngx_str_t    value;
    ngx_uint_t   i, family;
    const char  *ext;

    if (ngx_strncmp(doc->mime, "text/", 5) == 0) {
        len = r->headers_out.content_type.len + sizeof("; charset=utf-8");

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        r->headers_out.content_type.len = ngx_snprintf(p, len,
                                              "%s; charset=utf-8",
                                              doc->mime)
                                          - p;
        r->headers_out.content_type.data = p;
        r->headers_out.content_type_len = ngx_strlen(doc->mime);
        r->headers_out.charset.len = 0;
    }

    if (ngx_http_chat_add_header(r, "X-Content-Type-Options",
                                 &ngx_http_chat_media_nosniff)
        != NGX_OK
        || ngx_http_chat_add_header(r, "Content-Security-Policy",
                                    &ngx_http_chat_media_sandbox)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    family = ngx_http_chat_media_family(doc->mime);

    if (family == NGX_HTTP_CHAT_MEDIA_IMAGE
        || family == NGX_HTTP_CHAT_MEDIA_VIDEO
        || family == NGX_HTTP_CHAT_MEDIA_AUDIO)
    {
        return NGX_OK;
    }

    ext = "bin";

    for (i = 0; ngx_http_chat_media_extensions[i].mime; i++) {
        if (ngx_strcmp(doc->mime, ngx_http_chat_media_extensions[i].mime)
            == 0)
        {
            ext = ngx_http_chat_media_extensions[i].ext;
            break;
        }
    }

    /* the id is 24 hex digits, the extension ours: nothing to escape */
    len = sizeof("attachment; filename=\".\"") + 24 + ngx_strlen(ext);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value.data = p;
    value.len = ngx_snprintf(p, len, "attachment; filename=\"%*s.%s\"",
                             (size_t) 24, doc->id, ext)
                - p;

    return ngx_http_chat_add_header(r, "Content-Disposition", &value);
}
