/*
 * Copyright (C) ngx_chat_module authors
 *
 * APNs: the provider API over HTTP/2 and TLS (libcurl with nghttp2, on
 * the same multi handle as every outbound call), authenticated by an
 * ES256 provider token that the worker signs with the key of
 * chat_push_apns_key and reuses for 50 minutes (Apple refuses one older
 * than an hour, and more than one new token every 20 minutes).
 */


#include "ngx_http_chat_push_int.h"
#include <jwt.h>
#include <openssl/err.h>


#define NGX_HTTP_CHAT_APNS_TOKEN_LIFE  (50 * 60)


static void ngx_http_chat_push_apns_sent(ngx_http_chat_curl_req_t *req,
    void *data);


/* "authorization: bearer <token>", heap, and when it was signed */
static char    *ngx_http_chat_apns_auth;
static time_t   ngx_http_chat_apns_iat;


char *
ngx_http_chat_push_apns_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_main_conf_t *cmcf = conf;

    ssize_t           n;
    ngx_str_t        *value, file;
    ngx_file_t        f;
    ngx_file_info_t   fi;

    if (cmcf->push_apns_key.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    file = value[1];

    if (value[2].len == 0 || value[3].len == 0) {
        return "needs a key id and a team id";
    }

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&f, sizeof(ngx_file_t));
    f.name = file;
    f.log = cf->log;

    /* configuration time: reading a file blocks nobody */
    f.fd = ngx_open_file(file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (f.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &file);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(f.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) == 0 || ngx_file_size(&fi) > 16384)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the APNs key \"%V\" is not a key file", &file);
        ngx_close_file(f.fd);
        return NGX_CONF_ERROR;
    }

    cmcf->push_apns_key.len = (size_t) ngx_file_size(&fi);
    cmcf->push_apns_key.data = ngx_pnalloc(cf->pool,
                                           cmcf->push_apns_key.len + 1);
    if (cmcf->push_apns_key.data == NULL) {
        ngx_close_file(f.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&f, cmcf->push_apns_key.data, cmcf->push_apns_key.len,
                      0);
    ngx_close_file(f.fd);

    if (n != (ssize_t) cmcf->push_apns_key.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot read the APNs key \"%V\"", &file);
        return NGX_CONF_ERROR;
    }

    cmcf->push_apns_key.data[n] = '\0';

    /* as C strings for libjwt */
    cmcf->push_apns_key_id.len = value[2].len;
    cmcf->push_apns_key_id.data = ngx_pnalloc(cf->pool, value[2].len + 1);
    cmcf->push_apns_team_id.len = value[3].len;
    cmcf->push_apns_team_id.data = ngx_pnalloc(cf->pool, value[3].len + 1);

    if (cmcf->push_apns_key_id.data == NULL
        || cmcf->push_apns_team_id.data == NULL)
    {
        return NGX_CONF_ERROR;
    }

    *ngx_cpymem(cmcf->push_apns_key_id.data, value[2].data, value[2].len)
        = '\0';
    *ngx_cpymem(cmcf->push_apns_team_id.data, value[3].data, value[3].len)
        = '\0';

    return NGX_CONF_OK;
}


/*
 * The body: the ids beside "aps" (as FCM's data), and an alert with no
 * text unless a preview is allowed: the app's notification service
 * extension fetches what it shows.  A VoIP push has an empty "aps".
 */

char *
ngx_http_chat_push_apns_body(ngx_http_chat_push_msg_t *m)
{
    char        *out, *p;
    size_t       len;
    json_t      *body, *aps, *alert;
    const char  *key, *kind;

    body = json_deep_copy(m->data);
    if (body == NULL) {
        return NULL;
    }

    if (m->voip) {
        aps = json_object();

    } else {
        kind = json_string_value(json_object_get(m->data, "kind"));

        if (m->preview.len) {
            alert = json_pack("{s:s%}", "body", m->preview.data,
                              m->preview.len);

        } else {
            key = (kind && ngx_strcmp(kind, "missed_call") == 0)
                  ? "MISSED_CALL"
                  : (kind && ngx_strcmp(kind, "call") == 0)
                  ? "INCOMING_CALL" : "NEW_MESSAGE";
            alert = json_pack("{s:s}", "loc-key", key);
        }

        aps = json_pack("{s:o,s:s,s:i,s:s%}", "alert", alert,
                        "sound", "default", "mutable-content", 1,
                        "thread-id", m->collapse.data, m->collapse.len);
    }

    if (aps == NULL) {
        json_decref(body);
        return NULL;
    }

    json_object_set_new(body, "aps", aps);

    p = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    if (p == NULL) {
        return NULL;
    }

    len = ngx_strlen(p);

    out = ngx_alloc(len + 1, ngx_cycle->log);
    if (out) {
        ngx_memcpy(out, p, len + 1);
    }

    free(p);

    return out;
}


/* the provider token, signed again when older than 50 minutes */

static char *
ngx_http_chat_push_apns_token(void)
{
    int                         err;
    char                       *jwt_str, *auth, *p;
    jwt_t                      *jwt;
    time_t                      now;
    size_t                      len;
    ngx_http_chat_main_conf_t  *cmcf;

    now = ngx_time();

    if (ngx_http_chat_apns_auth
        && now - ngx_http_chat_apns_iat < NGX_HTTP_CHAT_APNS_TOKEN_LIFE)
    {
        return ngx_http_chat_apns_auth;
    }

    cmcf = ngx_http_chat_push_conf;

    if (jwt_new(&jwt) != 0) {
        return NULL;
    }

    err = jwt_set_alg(jwt, JWT_ALG_ES256, cmcf->push_apns_key.data,
                      (int) cmcf->push_apns_key.len);

    if (err == 0) {
        err = jwt_add_header(jwt, "kid",
                             (char *) cmcf->push_apns_key_id.data);
    }

    if (err == 0) {
        err = jwt_add_grant(jwt, "iss",
                            (char *) cmcf->push_apns_team_id.data);
    }

    if (err == 0) {
        err = jwt_add_grant_int(jwt, "iat", (long) now);
    }

    jwt_str = (err == 0) ? jwt_encode_str(jwt) : NULL;

    jwt_free(jwt);
    ERR_clear_error();

    if (jwt_str == NULL) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat push apns: cannot sign the provider token");
        return NULL;
    }

    len = sizeof("authorization: bearer ") - 1 + ngx_strlen(jwt_str);

    auth = ngx_alloc(len + 1, ngx_cycle->log);
    if (auth == NULL) {
        free(jwt_str);
        return NULL;
    }

    p = (char *) ngx_cpymem(auth, "authorization: bearer ",
                            sizeof("authorization: bearer ") - 1);
    p = (char *) ngx_cpymem(p, jwt_str, ngx_strlen(jwt_str));
    *p = '\0';

    free(jwt_str);

    if (ngx_http_chat_apns_auth) {
        ngx_free(ngx_http_chat_apns_auth);
    }

    ngx_http_chat_apns_auth = auth;
    ngx_http_chat_apns_iat = now;

    return auth;
}


void
ngx_http_chat_push_apns_exit(void)
{
    if (ngx_http_chat_apns_auth) {
        ngx_free(ngx_http_chat_apns_auth);
        ngx_http_chat_apns_auth = NULL;
    }
}


static ngx_int_t
ngx_http_chat_push_apns_header(ngx_http_chat_curl_req_t *req,
    const char *fmt, ...)
{
    u_char   buf[512], *last;
    va_list  args;

    va_start(args, fmt);
    last = ngx_vslprintf(buf, buf + sizeof(buf) - 1, fmt, args);
    va_end(args);

    *last = '\0';

    return ngx_http_chat_curl_add_header(req, (char *) buf);
}


void
ngx_http_chat_push_apns_start(ngx_http_chat_push_t *p)
{
    char                       *auth;
    u_char                     *url, *last;
    size_t                      len;
    CURLcode                    rc;
    ngx_int_t                   hrc;
    ngx_http_chat_main_conf_t  *cmcf;
    ngx_http_chat_curl_req_t   *req;

    p->attempts++;

    cmcf = ngx_http_chat_push_conf;

    auth = ngx_http_chat_push_apns_token();
    if (auth == NULL) {
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN, 0);
        return;
    }

    len = cmcf->push_apns_base_url.len + sizeof("/3/device/")
          + ngx_strlen(p->token);

    url = ngx_alloc(len, ngx_cycle->log);
    if (url == NULL) {
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN, 0);
        return;
    }

    /* the token was checked at registration: printable, no spaces */
    last = ngx_cpymem(url, cmcf->push_apns_base_url.data,
                      cmcf->push_apns_base_url.len);
    last = ngx_cpymem(last, "/3/device/", sizeof("/3/device/") - 1);
    last = ngx_cpymem(last, p->token, ngx_strlen(p->token));
    *last = '\0';

    req = ngx_http_chat_curl_create(ngx_cycle->log, cmcf->upstream_timeout);
    if (req == NULL) {
        ngx_free(url);
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN, 0);
        return;
    }

    rc = curl_easy_setopt(req->easy, CURLOPT_URL, (char *) url);
    ngx_free(url);

    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(req->easy, CURLOPT_HTTP_VERSION,
                              (long) CURL_HTTP_VERSION_2TLS);
    }

    if (rc == CURLE_OK && cmcf->push_apns_ca_file.len) {
        rc = curl_easy_setopt(req->easy, CURLOPT_CAINFO,
                              (char *) cmcf->push_apns_ca_file.data);
    }

    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE,
                              (long) ngx_strlen(p->body));
    }

    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, p->body);
    }

    hrc = (rc == CURLE_OK) ? NGX_OK : NGX_ERROR;

    if (hrc == NGX_OK) {
        hrc = ngx_http_chat_curl_add_header(req, auth);
    }

    if (hrc == NGX_OK) {
        hrc = ngx_http_chat_push_apns_header(req, "apns-push-type: %s",
                                             p->voip ? "voip" : "alert");
    }

    if (hrc == NGX_OK) {
        hrc = ngx_http_chat_push_apns_header(req, "apns-priority: %s",
                                             p->urgent ? "10" : "5");
    }

    if (hrc == NGX_OK) {
        hrc = ngx_http_chat_push_apns_header(req, "apns-topic: %s",
                                             p->topic);
    }

    if (hrc == NGX_OK) {
        hrc = ngx_http_chat_push_apns_header(req, "apns-expiration: %T",
                                             p->expiration);
    }

    if (hrc == NGX_OK && p->collapse[0]) {
        hrc = ngx_http_chat_push_apns_header(req, "apns-collapse-id: %s",
                                             p->collapse);
    }

    if (hrc == NGX_OK) {
        hrc = ngx_http_chat_curl_add_header(req,
                                            "content-type: application/json");
    }

    if (hrc != NGX_OK
        || ngx_http_chat_curl_start(req, ngx_http_chat_push_apns_sent, p)
           != NGX_OK)
    {
        ngx_http_chat_curl_cancel(req);
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN, 0);
        return;
    }

    p->curl = req;
}


/* APNs' reason, {"reason": "..."}: NULL-safe comparison */

static ngx_uint_t
ngx_http_chat_push_apns_reason(ngx_http_chat_curl_req_t *req,
    const char *reason)
{
    json_t      *reply;
    ngx_uint_t   is;
    const char  *r;

    if (req->body == NULL) {
        return 0;
    }

    reply = json_loadb((char *) req->body, req->body_len, 0, NULL);
    r = json_string_value(json_object_get(reply, "reason"));
    is = (r && ngx_strcmp(r, reason) == 0);
    json_decref(reply);

    return is;
}


static void
ngx_http_chat_push_apns_sent(ngx_http_chat_curl_req_t *req, void *data)
{
    ngx_http_chat_push_t *p = data;

    curl_off_t  after;

    p->curl = NULL;

    if (req->result == CURLE_OK && req->status == 200) {
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_OK, 0);
        return;
    }

    if (req->result != CURLE_OK || req->status == 429 || req->status >= 500)
    {
        after = 0;

        if (req->result == CURLE_OK
            && curl_easy_getinfo(req->easy, CURLINFO_RETRY_AFTER, &after)
               != CURLE_OK)
        {
            after = 0;
        }

        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "chat push apns: send answered %l%s%s", req->status,
                      req->result == CURLE_OK ? "" : ": ",
                      req->result == CURLE_OK ? "" : req->errbuf);

        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN,
                                     after > 0 ? (ngx_uint_t) after : 0);
        return;
    }

    if (req->status == 403
        && (ngx_http_chat_push_apns_reason(req, "ExpiredProviderToken")
            || ngx_http_chat_push_apns_reason(req, "InvalidProviderToken")))
    {
        /* the next attempt signs a new provider token */
        ngx_http_chat_apns_iat = 0;
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN, 0);
        return;
    }

    if (req->status == 410
        || (req->status == 400
            && (ngx_http_chat_push_apns_reason(req, "BadDeviceToken")
                || ngx_http_chat_push_apns_reason(req,
                                                  "DeviceTokenNotForTopic"))))
    {
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_INVALID, 0);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "chat push apns: send refused with %l", req->status);

    ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_REFUSED, 0);
}
