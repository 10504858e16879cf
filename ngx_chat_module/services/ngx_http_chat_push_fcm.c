/*
 * Copyright (C) ngx_chat_module authors
 *
 * FCM HTTP v1: the service account's RS256 assertion exchanged at its
 * token_uri for an OAuth2 access token, which the worker's sends share
 * until shortly before it expires; then messages:send, one request a
 * push, over libcurl multi.
 */


#include "ngx_http_chat_push_int.h"
#include <jwt.h>
#include <openssl/err.h>


#define NGX_HTTP_CHAT_FCM_SCOPE                                              \
    "https://www.googleapis.com/auth/firebase.messaging"
#define NGX_HTTP_CHAT_FCM_GRANT                                              \
    "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
#define NGX_HTTP_CHAT_FCM_MARGIN  60     /* s before expiry: a new token */


static void ngx_http_chat_push_fcm_token_start(void);
static void ngx_http_chat_push_fcm_token_done(ngx_http_chat_curl_req_t *req,
    void *data);
static void ngx_http_chat_push_fcm_send(ngx_http_chat_push_t *p);
static void ngx_http_chat_push_fcm_sent(ngx_http_chat_curl_req_t *req,
    void *data);


/* "Authorization: Bearer <token>", heap, and until when it serves */
static char                      *ngx_http_chat_fcm_auth;
static time_t                     ngx_http_chat_fcm_until;
static ngx_http_chat_curl_req_t  *ngx_http_chat_fcm_token_req;
static ngx_queue_t                ngx_http_chat_fcm_waiting;


/* a string field of the service account, into cf->pool */

static char *
ngx_http_chat_push_fcm_field(ngx_conf_t *cf, json_t *account,
    const char *name, ngx_str_t *out)
{
    json_t  *v;

    v = json_object_get(account, name);

    if (!json_is_string(v) || json_string_length(v) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the service account has no \"%s\"", name);
        return NGX_CONF_ERROR;
    }

    out->len = json_string_length(v);
    out->data = ngx_pnalloc(cf->pool, out->len + 1);
    if (out->data == NULL) {
        return NGX_CONF_ERROR;
    }

    *ngx_cpymem(out->data, json_string_value(v), out->len) = '\0';

    return NGX_CONF_OK;
}


char *
ngx_http_chat_push_fcm_account(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_chat_main_conf_t *cmcf = conf;

    char          *rv;
    json_t        *account;
    ngx_str_t     *value, file;
    json_error_t   err;

    if (cmcf->push_fcm_project.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    file = value[1];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* configuration time: reading a file blocks nobody */
    account = json_load_file((char *) file.data, 0, &err);
    if (account == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot read the service account \"%V\": %s",
                           &file, err.text);
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_chat_push_fcm_field(cf, account, "project_id",
                                      &cmcf->push_fcm_project);

    if (rv == NGX_CONF_OK) {
        rv = ngx_http_chat_push_fcm_field(cf, account, "client_email",
                                          &cmcf->push_fcm_email);
    }

    if (rv == NGX_CONF_OK) {
        rv = ngx_http_chat_push_fcm_field(cf, account, "private_key",
                                          &cmcf->push_fcm_key);
    }

    if (rv == NGX_CONF_OK) {
        rv = ngx_http_chat_push_fcm_field(cf, account, "token_uri",
                                          &cmcf->push_fcm_token_uri);
    }

    json_decref(account);

    return rv;
}


/*
 * The request body: ids (and the preview where allowed) as FCM's data,
 * strings only; priority and a collapse key per chat for each platform.
 */

char *
ngx_http_chat_push_fcm_body(ngx_http_chat_push_msg_t *m)
{
    char    *out, *p;
    json_t  *msg, *body;
    size_t   len;

    msg = json_pack("{s:s%,s:O,s:{s:s,s:s%},s:{s:{s:s,s:s%}},"
                    "s:{s:{s:s,s:s%}}}",
                    "token", m->token.data, m->token.len,
                    "data", m->data,
                    "android",
                      "priority", m->urgent ? "high" : "normal",
                      "collapse_key", m->collapse.data, m->collapse.len,
                    "apns", "headers",
                      "apns-priority", m->urgent ? "10" : "5",
                      "apns-collapse-id", m->collapse.data, m->collapse.len,
                    "webpush", "headers",
                      "Urgency", m->urgent ? "high" : "normal",
                      "Topic", m->collapse.data, m->collapse.len);
    if (msg == NULL) {
        return NULL;
    }

    if (m->preview.len) {
        json_object_set_new(msg, "notification",
                            json_pack("{s:s%}", "body", m->preview.data,
                                      m->preview.len));
    }

    body = json_pack("{s:o}", "message", msg);
    if (body == NULL) {
        return NULL;
    }

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


void
ngx_http_chat_push_fcm_start(ngx_http_chat_push_t *p)
{
    p->attempts++;

    if (ngx_http_chat_fcm_auth && ngx_time() < ngx_http_chat_fcm_until) {
        ngx_http_chat_push_fcm_send(p);
        return;
    }

    if (ngx_http_chat_fcm_waiting.next == NULL) {
        ngx_queue_init(&ngx_http_chat_fcm_waiting);
    }

    /* one token request at a time: the others wait for its answer */
    ngx_queue_insert_tail(&ngx_http_chat_fcm_waiting, &p->wait);
    p->waiting = 1;

    if (ngx_http_chat_fcm_token_req == NULL) {
        ngx_http_chat_push_fcm_token_start();
    }
}


void
ngx_http_chat_push_fcm_forget(ngx_http_chat_push_t *p)
{
    if (p->waiting) {
        ngx_queue_remove(&p->wait);
        p->waiting = 0;
    }
}


void
ngx_http_chat_push_fcm_exit(void)
{
    if (ngx_http_chat_fcm_token_req) {
        ngx_http_chat_curl_cancel(ngx_http_chat_fcm_token_req);
        ngx_http_chat_fcm_token_req = NULL;
    }

    if (ngx_http_chat_fcm_auth) {
        ngx_free(ngx_http_chat_fcm_auth);
        ngx_http_chat_fcm_auth = NULL;
    }
}


/* the waiting pushes, after the token request: sent, or failed */

static void
ngx_http_chat_push_fcm_resume(ngx_uint_t ok)
{
    ngx_queue_t           *q;
    ngx_http_chat_push_t  *p;

    if (ngx_http_chat_fcm_waiting.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_chat_fcm_waiting)) {
        q = ngx_queue_head(&ngx_http_chat_fcm_waiting);
        p = ngx_queue_data(q, ngx_http_chat_push_t, wait);

        ngx_queue_remove(q);
        p->waiting = 0;

        if (ok) {
            ngx_http_chat_push_fcm_send(p);

        } else {
            ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN, 0);
        }
    }
}


/* the RS256 assertion of the service account, malloc()ed by libjwt */

static char *
ngx_http_chat_push_fcm_assertion(ngx_http_chat_main_conf_t *cmcf)
{
    int      err;
    char    *out;
    jwt_t   *jwt;
    time_t   now;

    now = ngx_time();

    if (jwt_new(&jwt) != 0) {
        return NULL;
    }

    err = jwt_set_alg(jwt, JWT_ALG_RS256, cmcf->push_fcm_key.data,
                      (int) cmcf->push_fcm_key.len);

    if (err == 0) {
        err = jwt_add_grant(jwt, "iss", (char *) cmcf->push_fcm_email.data);
    }

    if (err == 0) {
        err = jwt_add_grant(jwt, "scope", NGX_HTTP_CHAT_FCM_SCOPE);
    }

    if (err == 0) {
        err = jwt_add_grant(jwt, "aud",
                            (char *) cmcf->push_fcm_token_uri.data);
    }

    if (err == 0) {
        err = jwt_add_grant_int(jwt, "iat", (long) now);
    }

    if (err == 0) {
        err = jwt_add_grant_int(jwt, "exp", (long) now + 3600);
    }

    out = (err == 0) ? jwt_encode_str(jwt) : NULL;

    jwt_free(jwt);
    ERR_clear_error();

    return out;
}


static void
ngx_http_chat_push_fcm_token_start(void)
{
    char                       *assertion;
    u_char                     *form, *p;
    size_t                      len;
    CURLcode                    rc;
    ngx_http_chat_main_conf_t  *cmcf;
    ngx_http_chat_curl_req_t   *req;

    cmcf = ngx_http_chat_push_conf;

    assertion = ngx_http_chat_push_fcm_assertion(cmcf);
    if (assertion == NULL) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat push fcm: cannot sign the service account's "
                      "assertion");
        ngx_http_chat_push_fcm_resume(0);
        return;
    }

    len = sizeof("grant_type=" NGX_HTTP_CHAT_FCM_GRANT "&assertion=") - 1
          + ngx_strlen(assertion);

    form = ngx_alloc(len + 1, ngx_cycle->log);
    if (form == NULL) {
        free(assertion);
        ngx_http_chat_push_fcm_resume(0);
        return;
    }

    /*
     * the assertion is base64url and dots: nothing to escape; copied, as
     * the grant's "%3A" would be a format to ngx_sprintf()
     */
    p = ngx_cpymem(form, "grant_type=" NGX_HTTP_CHAT_FCM_GRANT "&assertion=",
                   sizeof("grant_type=" NGX_HTTP_CHAT_FCM_GRANT
                          "&assertion=") - 1);
    p = ngx_cpymem(p, assertion, ngx_strlen(assertion));
    *p = '\0';
    free(assertion);

    req = ngx_http_chat_curl_create(ngx_cycle->log, cmcf->upstream_timeout);
    if (req == NULL) {
        ngx_free(form);
        ngx_http_chat_push_fcm_resume(0);
        return;
    }

    rc = curl_easy_setopt(req->easy, CURLOPT_URL,
                          (char *) cmcf->push_fcm_token_uri.data);

    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE, (long) len);
    }

    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(req->easy, CURLOPT_COPYPOSTFIELDS, form);
    }

    ngx_free(form);

    if (rc != CURLE_OK
        || ngx_http_chat_curl_add_header(req,
               "Content-Type: application/x-www-form-urlencoded")
           != NGX_OK
        || ngx_http_chat_curl_add_header(req, "Expect:") != NGX_OK
        || ngx_http_chat_curl_start(req, ngx_http_chat_push_fcm_token_done,
                                    NULL)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat push fcm: cannot start the token request");
        ngx_http_chat_curl_cancel(req);
        ngx_http_chat_push_fcm_resume(0);
        return;
    }

    ngx_http_chat_fcm_token_req = req;
}


static void
ngx_http_chat_push_fcm_token_done(ngx_http_chat_curl_req_t *req, void *data)
{
    char        *auth, *p;
    json_t      *reply, *token;
    size_t       len;
    json_int_t   expires;

    ngx_http_chat_fcm_token_req = NULL;

    reply = NULL;
    token = NULL;

    if (req->result == CURLE_OK && req->status == 200 && req->body) {
        reply = json_loadb((char *) req->body, req->body_len, 0, NULL);
        token = json_object_get(reply, "access_token");
    }

    if (!json_is_string(token) || json_string_length(token) == 0) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat push fcm: the token endpoint answered %l: %s",
                      req->status,
                      req->result == CURLE_OK ? "no access_token"
                                              : req->errbuf);
        json_decref(reply);
        ngx_http_chat_push_fcm_resume(0);
        return;
    }

    len = sizeof("Authorization: Bearer ") - 1 + json_string_length(token);

    auth = ngx_alloc(len + 1, ngx_cycle->log);
    if (auth == NULL) {
        json_decref(reply);
        ngx_http_chat_push_fcm_resume(0);
        return;
    }

    p = (char *) ngx_sprintf((u_char *) auth, "Authorization: Bearer %s",
                             json_string_value(token));
    *p = '\0';

    expires = json_integer_value(json_object_get(reply, "expires_in"));
    if (expires <= 0) {
        expires = 3600;
    }

    /* shortly before it expires; a short-lived one serves half its life */
    expires = (expires > 2 * NGX_HTTP_CHAT_FCM_MARGIN)
              ? expires - NGX_HTTP_CHAT_FCM_MARGIN : expires / 2;

    if (ngx_http_chat_fcm_auth) {
        ngx_free(ngx_http_chat_fcm_auth);
    }

    ngx_http_chat_fcm_auth = auth;
    ngx_http_chat_fcm_until = ngx_time() + (time_t) expires;

    json_decref(reply);

    ngx_http_chat_push_fcm_resume(1);
}


static void
ngx_http_chat_push_fcm_send(ngx_http_chat_push_t *p)
{
    u_char                     *url, *last;
    size_t                      len;
    CURLcode                    rc;
    ngx_http_chat_main_conf_t  *cmcf;
    ngx_http_chat_curl_req_t   *req;

    cmcf = ngx_http_chat_push_conf;

    len = cmcf->push_fcm_base_url.len + sizeof("/v1/projects/") - 1
          + cmcf->push_fcm_project.len + sizeof("/messages:send");

    url = ngx_alloc(len, ngx_cycle->log);
    if (url == NULL) {
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN, 0);
        return;
    }

    last = ngx_sprintf(url, "%V/v1/projects/%V/messages:send",
                       &cmcf->push_fcm_base_url, &cmcf->push_fcm_project);
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
        rc = curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE,
                              (long) ngx_strlen(p->body));
    }

    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, p->body);
    }

    if (rc != CURLE_OK
        || ngx_http_chat_curl_add_header(req, ngx_http_chat_fcm_auth)
           != NGX_OK
        || ngx_http_chat_curl_add_header(req,
               "Content-Type: application/json; charset=UTF-8")
           != NGX_OK
        || ngx_http_chat_curl_add_header(req, "Expect:") != NGX_OK
        || ngx_http_chat_curl_start(req, ngx_http_chat_push_fcm_sent, p)
           != NGX_OK)
    {
        ngx_http_chat_curl_cancel(req);
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN, 0);
        return;
    }

    p->curl = req;
}


/* FCM's errorCode in error.details[], or error.status */

static ngx_uint_t
ngx_http_chat_push_fcm_gone(ngx_http_chat_curl_req_t *req)
{
    size_t       i;
    json_t      *reply, *error, *d;
    ngx_uint_t   gone;
    const char  *code;

    if (req->body == NULL) {
        return 0;
    }

    reply = json_loadb((char *) req->body, req->body_len, 0, NULL);
    error = json_object_get(reply, "error");

    gone = 0;

    json_array_foreach(json_object_get(error, "details"), i, d) {
        code = json_string_value(json_object_get(d, "errorCode"));

        if (code && (ngx_strcmp(code, "UNREGISTERED") == 0
                     || ngx_strcmp(code, "INVALID_ARGUMENT") == 0))
        {
            gone = 1;
        }
    }

    code = json_string_value(json_object_get(error, "status"));

    if (code && (ngx_strcmp(code, "UNREGISTERED") == 0
                 || (req->status == 400
                     && ngx_strcmp(code, "INVALID_ARGUMENT") == 0)))
    {
        gone = 1;
    }

    json_decref(reply);

    return gone;
}


static void
ngx_http_chat_push_fcm_sent(ngx_http_chat_curl_req_t *req, void *data)
{
    ngx_http_chat_push_t *p = data;

    curl_off_t  after;

    p->curl = NULL;

    if (req->result == CURLE_OK && req->status >= 200 && req->status < 300) {
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
                      "chat push fcm: send answered %l%s%s", req->status,
                      req->result == CURLE_OK ? "" : ": ",
                      req->result == CURLE_OK ? "" : req->errbuf);

        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN,
                                     after > 0 ? (ngx_uint_t) after : 0);
        return;
    }

    if (req->status == 401) {
        /* the access token was refused: the next attempt takes a new one */
        ngx_http_chat_fcm_until = 0;
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_AGAIN, 0);
        return;
    }

    if ((req->status == 400 || req->status == 404)
        && ngx_http_chat_push_fcm_gone(req))
    {
        ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_INVALID, 0);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "chat push fcm: send refused with %l", req->status);

    ngx_http_chat_push_attempted(p, NGX_HTTP_CHAT_PUSH_REFUSED, 0);
}
