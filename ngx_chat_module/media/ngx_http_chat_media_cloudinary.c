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
 * The file part is read by libcurl from the stored temporary file.
 */

typedef struct {
    ngx_http_request_t         *request;   /* NULL once it went away */
    ngx_http_cleanup_t         *cleanup;
    ngx_http_chat_curl_req_t   *curl;
    curl_mime                  *mime;
    ngx_int_t                 (*next)(ngx_http_request_t *r,
                                      ngx_str_t *secure_url);
} ngx_http_chat_media_cld_t;


static void ngx_http_chat_media_cld_done(ngx_http_chat_curl_req_t *req,
    void *data);
static void ngx_http_chat_media_cld_cleanup(void *data);


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
        || curl_mime_filedata(part, path) != CURLE_OK
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

    cld->request = r;
    cld->next = next;
    cld->cleanup = cln;

    if (ngx_http_chat_curl_start(cld->curl, ngx_http_chat_media_cld_done,
                                 cld)
        != NGX_OK)
    {
        goto failed;
    }

    cln->handler = ngx_http_chat_media_cld_cleanup;
    cln->data = cld;

    r->main->count++;

    return NGX_DONE;

failed:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "chat: cannot start the cloudinary upload");

    ngx_http_chat_curl_cancel(cld->curl);

    if (cld->mime) {
        curl_mime_free(cld->mime);
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* the request is freed: stop the transfer, which calls nobody back */

static void
ngx_http_chat_media_cld_cleanup(void *data)
{
    ngx_http_chat_media_cld_t  *cld = data;

    ngx_http_chat_curl_cancel(cld->curl);
    curl_mime_free(cld->mime);
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

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}
