/*
 * Copyright (C) ngx_chat_module authors
 *
 * SMS delivery: Twilio's Messages REST API over the libcurl multi layer,
 * or the error log for development.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_http_chat_sms.h"
#include "../util/ngx_http_chat_metrics.h"
#include "ngx_http_chat_curl.h"


/* E.164: "+" and at most 15 digits */
#define NGX_HTTP_CHAT_SMS_DIGITS_MAX   15

/* Twilio takes up to 1600 characters, each at most 4 bytes of UTF-8 */
#define NGX_HTTP_CHAT_SMS_BODY_MAX     (1600 * 4)

/* how much of a provider's error reply goes to the log */
#define NGX_HTTP_CHAT_SMS_DETAIL_MAX   256

/* digit runs this long in provider messages are taken for phone numbers */
#define NGX_HTTP_CHAT_SMS_MASK_RUN     7

/* a template variable: the code, a few digits */
#define NGX_HTTP_CHAT_SMS_CODE_MAX     16

/* the fields of a Twilio form at most: To, From, Body or the template */
#define NGX_HTTP_CHAT_SMS_FIELDS       4


typedef struct {
    const char                  *name;
    ngx_str_t                    value;
    ngx_uint_t                   secret;    /* holds the code */
} ngx_http_chat_sms_field_t;


/*
 * The handle lives on the heap until done() has returned or the owner
 * cancels it.  log is the caller's (it carries the request id): it is only
 * used while the owner is there to be told, that is until done() or
 * cancel().  What may outlive the owner, the curl request, logs to the
 * cycle's log.
 */

struct ngx_http_chat_sms_s {
    ngx_http_chat_sms_done_pt    done;
    void                        *data;
    ngx_log_t                   *log;

    ngx_http_chat_curl_req_t    *curl;      /* twilio: while in flight */
    ngx_event_t                  event;     /* log: the posted done() */

    ngx_queue_t                  queue;     /* in the worker's sends */

    unsigned                     completing:1;   /* inside done() */

    /* the number for logs: "+*******0100" */
    u_char                       masked[NGX_HTTP_CHAT_SMS_DIGITS_MAX + 2];
};


static void ngx_http_chat_sms_free(ngx_http_chat_sms_t *sms);
static ngx_int_t ngx_http_chat_sms_check_number(ngx_str_t *to);
static ngx_int_t ngx_http_chat_sms_check_code(ngx_str_t *code);


static ngx_queue_t  ngx_http_chat_sms_live;
static ngx_uint_t   ngx_http_chat_sms_inited;

static void ngx_http_chat_sms_mask(ngx_http_chat_sms_t *sms, ngx_str_t *to);
static size_t ngx_http_chat_sms_sanitize(u_char *dst, size_t size,
    u_char *src, size_t len);
static void ngx_http_chat_sms_finish(ngx_http_chat_sms_t *sms,
    ngx_http_chat_sms_status_e status);

static void ngx_http_chat_sms_log_send(ngx_http_chat_sms_t *sms,
    ngx_http_chat_sms_channel_e channel, ngx_str_t *to, ngx_str_t *body);
static void ngx_http_chat_sms_log_handler(ngx_event_t *ev);

static ngx_int_t ngx_http_chat_sms_twilio_send(ngx_http_chat_sms_t *sms,
    ngx_http_chat_main_conf_t *cmcf, ngx_http_chat_sms_channel_e channel,
    ngx_str_t *to, ngx_str_t *body, ngx_str_t *code);
static ngx_int_t ngx_http_chat_sms_twilio_url(ngx_http_chat_curl_req_t *req,
    ngx_http_chat_main_conf_t *cmcf);
static ngx_int_t ngx_http_chat_sms_twilio_fields(
    ngx_http_chat_curl_req_t *req, ngx_http_chat_main_conf_t *cmcf,
    ngx_http_chat_sms_channel_e channel, ngx_str_t *to, ngx_str_t *body,
    ngx_str_t *code);
static ngx_int_t ngx_http_chat_sms_twilio_form(
    ngx_http_chat_curl_req_t *req, ngx_http_chat_sms_field_t *fields,
    ngx_uint_t n);
static ngx_int_t ngx_http_chat_sms_setopt_str(ngx_http_chat_curl_req_t *req,
    CURLoption option, const char *name, ngx_str_t *value);
static void ngx_http_chat_sms_twilio_done(ngx_http_chat_curl_req_t *req,
    void *data);
static void ngx_http_chat_sms_twilio_detail(ngx_http_chat_curl_req_t *req,
    u_char *buf, size_t size);


ngx_http_chat_sms_t *
ngx_http_chat_sms_send(ngx_http_chat_main_conf_t *cmcf, ngx_log_t *log,
    ngx_http_chat_sms_channel_e channel, ngx_str_t *to, ngx_str_t *body,
    ngx_str_t *code, ngx_http_chat_sms_done_pt done, void *data)
{
    ngx_http_chat_sms_t  *sms;

    if (log == NULL) {
        log = ngx_cycle->log;
    }

    if (ngx_http_chat_sms_check_number(to) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "chat sms: the recipient is not an E.164 number");
        return NULL;
    }

    if (body->len == 0 || body->len > NGX_HTTP_CHAT_SMS_BODY_MAX) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "chat sms: message of %uz bytes refused", body->len);
        return NULL;
    }

    if (channel == NGX_HTTP_CHAT_SMS_CHANNEL_WHATSAPP
        && cmcf->twilio_whatsapp_from.len == 0)
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "chat sms: no \"chat_twilio_whatsapp_from\" to send "
                      "a WhatsApp message from");
        return NULL;
    }

    /* digits only: the template's variables are written as JSON as is */

    if (code && ngx_http_chat_sms_check_code(code) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "chat sms: a template variable of %uz bytes that is "
                      "not all digits refused", code->len);
        return NULL;
    }

    sms = ngx_calloc(sizeof(ngx_http_chat_sms_t), log);
    if (sms == NULL) {
        return NULL;
    }

    sms->done = done;
    sms->data = data;
    sms->log = log;

    /* what a worker's exit frees if its owner never comes back */
    if (!ngx_http_chat_sms_inited) {
        ngx_queue_init(&ngx_http_chat_sms_live);
        ngx_http_chat_sms_inited = 1;
    }

    ngx_queue_insert_tail(&ngx_http_chat_sms_live, &sms->queue);

    ngx_http_chat_sms_mask(sms, to);

    if (cmcf->sms_provider == NGX_HTTP_CHAT_SMS_TWILIO) {
        if (ngx_http_chat_sms_twilio_send(sms, cmcf, channel, to, body, code)
            != NGX_OK)
        {
            ngx_http_chat_sms_free(sms);
            return NULL;
        }

        return sms;
    }

    ngx_http_chat_sms_log_send(sms, channel, to, body);

    return sms;
}


void
ngx_http_chat_sms_cancel(ngx_http_chat_sms_t *sms)
{
    if (sms == NULL) {
        return;
    }

    /* cancelled from its own done(): it is freed once done() returns */
    if (sms->completing) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sms->log, 0,
                   "chat sms cancel: %p", sms);

    if (sms->curl) {
        ngx_http_chat_curl_cancel(sms->curl);
        sms->curl = NULL;
    }

    if (sms->event.posted) {
        ngx_delete_posted_event(&sms->event);
    }

    if (sms->event.timer_set) {
        ngx_del_timer(&sms->event);
    }

    ngx_http_chat_sms_free(sms);
}


/*
 * A worker's exit: sends whose owner (a request the exit cut short)
 * will never cancel them are cancelled here, unheard
 */

void
ngx_http_chat_sms_exit_process(void)
{
    ngx_queue_t          *q;
    ngx_http_chat_sms_t  *sms;

    if (!ngx_http_chat_sms_inited) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_chat_sms_live)) {
        q = ngx_queue_head(&ngx_http_chat_sms_live);
        sms = ngx_queue_data(q, ngx_http_chat_sms_t, queue);
        sms->completing = 0;
        ngx_http_chat_sms_cancel(sms);
    }
}


static void
ngx_http_chat_sms_free(ngx_http_chat_sms_t *sms)
{
    ngx_queue_remove(&sms->queue);
    ngx_free(sms);
}


static ngx_int_t
ngx_http_chat_sms_check_number(ngx_str_t *to)
{
    size_t  i;

    if (to->len < 2 || to->len > NGX_HTTP_CHAT_SMS_DIGITS_MAX + 1
        || to->data[0] != '+')
    {
        return NGX_ERROR;
    }

    for (i = 1; i < to->len; i++) {
        if (to->data[i] < '0' || to->data[i] > '9') {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_sms_check_code(ngx_str_t *code)
{
    size_t  i;

    if (code->len == 0 || code->len > NGX_HTTP_CHAT_SMS_CODE_MAX) {
        return NGX_ERROR;
    }

    for (i = 0; i < code->len; i++) {
        if (code->data[i] < '0' || code->data[i] > '9') {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_chat_sms_mask(ngx_http_chat_sms_t *sms, ngx_str_t *to)
{
    size_t   i, keep;
    u_char  *p;

    /* a checked number: "+" and 1 to 15 digits; only the last 4 are kept */

    keep = ngx_min(to->len - 1, 4);

    p = sms->masked;
    *p++ = '+';

    for (i = 1; i < to->len - keep; i++) {
        *p++ = '*';
    }

    p = ngx_cpymem(p, to->data + to->len - keep, keep);
    *p = '\0';
}


/*
 * Copies what a provider said for the log: control characters become
 * spaces, and the digits of every run long enough to be a phone number
 * (Twilio quotes the number in some messages) but the last 4 become "*".
 * Returns the length written; dst is NUL-terminated.
 */

static size_t
ngx_http_chat_sms_sanitize(u_char *dst, size_t size, u_char *src, size_t len)
{
    size_t   i, j, run;
    u_char  *p, *last;

    p = dst;
    last = dst + size - 1;

    for (i = 0; i < len && p < last; /* void */) {

        if (src[i] >= '0' && src[i] <= '9') {

            for (run = 0; i + run < len; run++) {
                if (src[i + run] < '0' || src[i + run] > '9') {
                    break;
                }
            }

            for (j = 0; j < run && p < last; j++) {
                if (run >= NGX_HTTP_CHAT_SMS_MASK_RUN && j < run - 4) {
                    *p++ = '*';

                } else {
                    *p++ = src[i + j];
                }
            }

            i += run;
            continue;
        }

        *p++ = (src[i] < 0x20 || src[i] == 0x7f) ? ' ' : src[i];
        i++;
    }

    *p = '\0';

    return p - dst;
}


static void
ngx_http_chat_sms_finish(ngx_http_chat_sms_t *sms,
    ngx_http_chat_sms_status_e status)
{
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sms->log, 0,
                   "chat sms done: %p status:%d", sms, (int) status);

    sms->completing = 1;

    ngx_http_chat_metric_inc(status == NGX_HTTP_CHAT_SMS_SENT
                             ? NGX_HTTP_CHAT_M_OTP_SENT
                             : NGX_HTTP_CHAT_M_OTP_FAILED);

    if (sms->done) {
        sms->done(sms, status, sms->data);
    }

    ngx_http_chat_sms_free(sms);
}


/*
 * The "log" provider is for development only: the message, which holds
 * the one-time code, is written to the error log in clear text.
 */

static void
ngx_http_chat_sms_log_send(ngx_http_chat_sms_t *sms,
    ngx_http_chat_sms_channel_e channel, ngx_str_t *to, ngx_str_t *body)
{
    ngx_log_error(NGX_LOG_NOTICE, sms->log, 0,
                  "chat %s: to %V: %V",
                  channel == NGX_HTTP_CHAT_SMS_CHANNEL_WHATSAPP
                  ? "whatsapp" : "sms", to, body);

    /* done() must not run inside ngx_http_chat_sms_send() */

    sms->event.handler = ngx_http_chat_sms_log_handler;
    sms->event.data = sms;
    sms->event.log = ngx_cycle->log;

    ngx_post_event(&sms->event, &ngx_posted_events);
}


static void
ngx_http_chat_sms_log_handler(ngx_event_t *ev)
{
    ngx_http_chat_sms_finish(ev->data, NGX_HTTP_CHAT_SMS_SENT);
}


static ngx_int_t
ngx_http_chat_sms_twilio_send(ngx_http_chat_sms_t *sms,
    ngx_http_chat_main_conf_t *cmcf, ngx_http_chat_sms_channel_e channel,
    ngx_str_t *to, ngx_str_t *body, ngx_str_t *code)
{
    CURLcode                   rc;
    ngx_http_chat_curl_req_t  *req;

    /* the request may outlive the caller's log: see the handle */

    req = ngx_http_chat_curl_create(ngx_cycle->log, cmcf->upstream_timeout);
    if (req == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_chat_sms_twilio_url(req, cmcf) != NGX_OK
        || ngx_http_chat_sms_twilio_fields(req, cmcf, channel, to, body, code)
           != NGX_OK)
    {
        goto failed;
    }

    rc = curl_easy_setopt(req->easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
    if (rc != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, sms->log, 0,
                      "curl_easy_setopt(CURLOPT_HTTPAUTH) failed: %s",
                      curl_easy_strerror(rc));
        goto failed;
    }

    if (ngx_http_chat_sms_setopt_str(req, CURLOPT_USERNAME, "USERNAME",
                                     &cmcf->twilio_account_sid)
        != NGX_OK
        || ngx_http_chat_sms_setopt_str(req, CURLOPT_PASSWORD, "PASSWORD",
                                        &cmcf->twilio_auth_token)
           != NGX_OK)
    {
        goto failed;
    }

    /*
     * "Expect:" stops curl from waiting for "100 Continue" before a large
     * body: Twilio answers at once anyway
     */

    if (ngx_http_chat_curl_add_header(req,
            "Content-Type: application/x-www-form-urlencoded")
        != NGX_OK
        || ngx_http_chat_curl_add_header(req, "Accept: application/json")
           != NGX_OK
        || ngx_http_chat_curl_add_header(req, "Expect:") != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_chat_curl_start(req, ngx_http_chat_sms_twilio_done, sms)
        != NGX_OK)
    {
        goto failed;
    }

    sms->curl = req;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sms->log, 0,
                   "chat sms twilio: %p to %s", sms, sms->masked);

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_ERR, sms->log, 0,
                  "chat sms: cannot start the twilio request for %s",
                  sms->masked);

    /* frees a request that was never started */
    ngx_http_chat_curl_cancel(req);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_chat_sms_twilio_url(ngx_http_chat_curl_req_t *req,
    ngx_http_chat_main_conf_t *cmcf)
{
    char       *sid;
    size_t      len, base;
    u_char     *url, *p;
    CURLcode    rc;
    ngx_int_t   ret;

    static u_char  accounts[] = "/2010-04-01/Accounts/";
    static u_char  messages[] = "/Messages.json";

    /* "https://api.twilio.com/" is taken as "https://api.twilio.com" */

    base = cmcf->twilio_base_url.len;

    while (base && cmcf->twilio_base_url.data[base - 1] == '/') {
        base--;
    }

    sid = curl_easy_escape(req->easy, (char *) cmcf->twilio_account_sid.data,
                           (int) cmcf->twilio_account_sid.len);
    if (sid == NULL) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "curl_easy_escape() failed");
        return NGX_ERROR;
    }

    len = base + sizeof(accounts) - 1 + ngx_strlen(sid) + sizeof(messages);

    url = ngx_alloc(len, req->log);
    if (url == NULL) {
        curl_free(sid);
        return NGX_ERROR;
    }

    p = ngx_cpymem(url, cmcf->twilio_base_url.data, base);
    p = ngx_cpymem(p, accounts, sizeof(accounts) - 1);
    p = ngx_cpymem(p, sid, ngx_strlen(sid));
    ngx_memcpy(p, messages, sizeof(messages));

    curl_free(sid);

    ret = NGX_OK;

    /* curl copies string options */

    rc = curl_easy_setopt(req->easy, CURLOPT_URL, (char *) url);
    if (rc != CURLE_OK) {
        ngx_log_error(NGX_LOG_ERR, req->log, 0,
                      "chat sms: bad twilio URL \"%s\": %s",
                      url, curl_easy_strerror(rc));
        ret = NGX_ERROR;
    }

    ngx_free(url);

    return ret;
}


/*
 * The Messages API's fields.  SMS: To, From (or MessagingServiceSid),
 * Body.  WhatsApp: the same with "whatsapp:" addresses, and the code in
 * the content template (ContentSid, ContentVariables {"1":"<code>"})
 * when one is configured: outside a conversation the user opened in the
 * last 24 hours WhatsApp delivers only approved templates.
 */

static ngx_int_t
ngx_http_chat_sms_twilio_fields(ngx_http_chat_curl_req_t *req,
    ngx_http_chat_main_conf_t *cmcf, ngx_http_chat_sms_channel_e channel,
    ngx_str_t *to, ngx_str_t *body, ngx_str_t *code)
{
    u_char                     *p;
    ngx_int_t                   rc;
    ngx_str_t                  *from;
    ngx_uint_t                  n, whatsapp;
    ngx_http_chat_sms_field_t   fields[NGX_HTTP_CHAT_SMS_FIELDS];

    /* "whatsapp:" + "+" and 15 digits, or an "MG" SID of 34 characters */
    u_char  to_addr[sizeof("whatsapp:") + NGX_HTTP_CHAT_SMS_DIGITS_MAX + 1];
    u_char  from_addr[sizeof("whatsapp:") + 34];
    u_char  vars[sizeof("{\"1\":\"\"}") + NGX_HTTP_CHAT_SMS_CODE_MAX];

    whatsapp = (channel == NGX_HTTP_CHAT_SMS_CHANNEL_WHATSAPP);
    from = whatsapp ? &cmcf->twilio_whatsapp_from : &cmcf->twilio_from;

    if (whatsapp && from->len > 34) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "chat sms: sender of %uz bytes refused", from->len);
        return NGX_ERROR;
    }

    n = 0;

    fields[n].name = "To";
    fields[n].secret = 0;

    if (whatsapp) {
        p = ngx_cpymem(to_addr, "whatsapp:", sizeof("whatsapp:") - 1);
        p = ngx_cpymem(p, to->data, to->len);
        fields[n].value.data = to_addr;
        fields[n].value.len = p - to_addr;

    } else {
        fields[n].value = *to;
    }

    n++;

    /* a Messaging Service SID sends from the service's own senders */

    fields[n].secret = 0;

    if (from->len > 2 && ngx_strncmp(from->data, "MG", 2) == 0) {
        fields[n].name = "MessagingServiceSid";
        fields[n].value = *from;

    } else if (whatsapp) {
        fields[n].name = "From";
        p = ngx_cpymem(from_addr, "whatsapp:", sizeof("whatsapp:") - 1);
        p = ngx_cpymem(p, from->data, from->len);
        fields[n].value.data = from_addr;
        fields[n].value.len = p - from_addr;

    } else {
        fields[n].name = "From";
        fields[n].value = *from;
    }

    n++;

    if (whatsapp && code && cmcf->twilio_whatsapp_content_sid.len) {
        fields[n].name = "ContentSid";
        fields[n].value = cmcf->twilio_whatsapp_content_sid;
        fields[n].secret = 0;
        n++;

        /* the code was checked digits: nothing in it needs JSON escaping */
        fields[n].name = "ContentVariables";
        fields[n].value.data = vars;
        fields[n].value.len = ngx_sprintf(vars, "{\"1\":\"%V\"}", code)
                              - vars;
        fields[n].secret = 1;
        n++;

    } else {
        fields[n].name = "Body";
        fields[n].value = *body;
        fields[n].secret = 1;
        n++;
    }

    rc = ngx_http_chat_sms_twilio_form(req, fields, n);

    ngx_explicit_memzero(vars, sizeof(vars));

    return rc;
}


/* name=value&... of the fields, URL-encoded, as the request's body */

static ngx_int_t
ngx_http_chat_sms_twilio_form(ngx_http_chat_curl_req_t *req,
    ngx_http_chat_sms_field_t *fields, ngx_uint_t n)
{
    char        *esc[NGX_HTTP_CHAT_SMS_FIELDS];
    size_t       len;
    u_char      *form, *p;
    CURLcode     rc;
    ngx_int_t    ret;
    ngx_uint_t   i;

    ret = NGX_ERROR;
    form = NULL;
    len = 1;

    ngx_memzero(esc, sizeof(esc));

    for (i = 0; i < n; i++) {
        esc[i] = curl_easy_escape(req->easy, (char *) fields[i].value.data,
                                  (int) fields[i].value.len);
        if (esc[i] == NULL) {
            ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                          "curl_easy_escape() failed");
            goto done;
        }

        len += sizeof("&=") - 1 + ngx_strlen(fields[i].name)
               + ngx_strlen(esc[i]);
    }

    form = ngx_alloc(len, req->log);
    if (form == NULL) {
        goto done;
    }

    p = form;

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = '&';
        }

        p = ngx_cpymem(p, fields[i].name, ngx_strlen(fields[i].name));
        *p++ = '=';
        p = ngx_cpymem(p, esc[i], ngx_strlen(esc[i]));
    }

    *p = '\0';

    /* a POST of a body that curl copies */

    rc = curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE,
                          (long) (p - form));

    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(req->easy, CURLOPT_COPYPOSTFIELDS,
                              (char *) form);
    }

    if (rc != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "curl_easy_setopt(CURLOPT_COPYPOSTFIELDS) failed: %s",
                      curl_easy_strerror(rc));
        goto done;
    }

    ret = NGX_OK;

done:

    /* the form holds the message, that is the code: leave no copy around */

    if (form) {
        ngx_explicit_memzero(form, len);
        ngx_free(form);
    }

    for (i = 0; i < n; i++) {
        if (esc[i] == NULL) {
            continue;
        }

        if (fields[i].secret) {
            ngx_explicit_memzero(esc[i], ngx_strlen(esc[i]));
        }

        curl_free(esc[i]);
    }

    return ret;
}


static ngx_int_t
ngx_http_chat_sms_setopt_str(ngx_http_chat_curl_req_t *req,
    CURLoption option, const char *name, ngx_str_t *value)
{
    u_char    *s;
    CURLcode   rc;

    /* curl wants C strings and copies them */

    s = ngx_alloc(value->len + 1, req->log);
    if (s == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s, value->data, value->len);
    s[value->len] = '\0';

    rc = curl_easy_setopt(req->easy, option, (char *) s);

    ngx_explicit_memzero(s, value->len);
    ngx_free(s);

    if (rc != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "curl_easy_setopt(CURLOPT_%s) failed: %s",
                      name, curl_easy_strerror(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_chat_sms_twilio_done(ngx_http_chat_curl_req_t *req, void *data)
{
    ngx_http_chat_sms_t  *sms = data;

    u_char                      detail[NGX_HTTP_CHAT_SMS_DETAIL_MAX];
    ngx_http_chat_sms_status_e  status;

    /* the curl layer frees the request once this returns */
    sms->curl = NULL;

    /* a reply cut at the body cap still has its status */

    if (req->status == 0 || (req->result != CURLE_OK && !req->truncated)) {
        ngx_log_error(NGX_LOG_ERR, sms->log, 0,
                      "chat sms: twilio unreachable, the message to %s "
                      "was not sent: %s",
                      sms->masked,
                      req->errbuf[0] ? req->errbuf
                                     : curl_easy_strerror(req->result));

        status = NGX_HTTP_CHAT_SMS_UNAVAILABLE;

    } else if (req->status >= 200 && req->status < 300) {
        ngx_log_error(NGX_LOG_INFO, sms->log, 0,
                      "chat sms: twilio accepted the message to %s "
                      "(HTTP %l)", sms->masked, req->status);

        status = NGX_HTTP_CHAT_SMS_SENT;

    } else if (req->status >= 400 && req->status < 500
               && req->status != 401 && req->status != 403
               && req->status != 429)
    {
        ngx_http_chat_sms_twilio_detail(req, detail, sizeof(detail));

        ngx_log_error(NGX_LOG_ERR, sms->log, 0,
                      "chat sms: twilio refused the message to %s: %s "
                      "(HTTP %l)", sms->masked, detail, req->status);

        status = NGX_HTTP_CHAT_SMS_REJECTED;

    } else {
        /*
         * 5xx, or our credentials refused (401, 403) or our account
         * throttled (429): not the number's fault, worth trying later
         */
        ngx_http_chat_sms_twilio_detail(req, detail, sizeof(detail));

        ngx_log_error(NGX_LOG_ERR, sms->log, 0,
                      "chat sms: twilio failed on the message to %s: %s "
                      "(HTTP %l)", sms->masked, detail, req->status);

        status = NGX_HTTP_CHAT_SMS_UNAVAILABLE;
    }

    ngx_http_chat_sms_finish(sms, status);
}


/*
 * Twilio's errors are {"code":21211,"message":"...","more_info":"...",
 * "status":400}: logged as "21211 ...".  Anything else is logged as the
 * start of the reply.  Never the request: it holds the code.
 */

static void
ngx_http_chat_sms_twilio_detail(ngx_http_chat_curl_req_t *req, u_char *buf,
    size_t size)
{
    u_char       raw[NGX_HTTP_CHAT_SMS_DETAIL_MAX], *p;
    json_t      *json, *code, *message;
    const char  *text;

    if (req->body == NULL || req->body_len == 0) {
        ngx_cpystrn(buf, (u_char *) "no details", size);
        return;
    }

    json = json_loadb((const char *) req->body, req->body_len, 0, NULL);

    if (json && json_is_object(json)) {
        code = json_object_get(json, "code");
        message = json_object_get(json, "message");

        if (json_is_integer(code) || json_is_string(message)) {
            text = json_is_string(message) ? json_string_value(message) : "";

            if (json_is_integer(code)) {
                p = ngx_snprintf(raw, sizeof(raw) - 1, "%L %s",
                                 (int64_t) json_integer_value(code), text);

            } else {
                p = ngx_snprintf(raw, sizeof(raw) - 1, "%s", text);
            }

            json_decref(json);

            (void) ngx_http_chat_sms_sanitize(buf, size, raw, p - raw);
            return;
        }
    }

    if (json) {
        json_decref(json);
    }

    (void) ngx_http_chat_sms_sanitize(buf, size, req->body,
                                      ngx_min(req->body_len, 128));
}
