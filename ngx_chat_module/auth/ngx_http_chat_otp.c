/*
 * Copyright (C) ngx_chat_module authors
 *
 * POST /api/auth/send-otp and /api/auth/verify-otp.  Redis keeps only an
 * HMAC of each code, its attempt counter and the rate limits; each step is
 * one Lua script, so concurrent requests cannot slip between a check and
 * its update.
 */


#include "ngx_http_chat_auth.h"
#include "ngx_http_chat_phone.h"
#include "../services/ngx_http_chat_sms.h"
#include "../store/ngx_http_chat_users.h"
#include "../store/ngx_http_chat_chat_ids_store.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>


#define NGX_HTTP_CHAT_OTP_ATTEMPTS  5


typedef struct {
    ngx_http_chat_phone_t        phone;
    ngx_str_t                    e164;
    ngx_str_t                    code;
    ngx_str_t                    keys[5];   /* otp, next, day, ip, country */
    ngx_str_t                    args[8];   /* the reserve script's */
    long long                    country_retry;
    ngx_str_t                    device;
    ngx_str_t                    refresh;   /* the new session's token */
    ngx_http_chat_sms_t         *sms;
    ngx_http_cleanup_t          *sms_cleanup;
    ngx_uint_t                   retry_after;
    ngx_http_chat_sms_channel_e  channel;
    void                        *hook;      /* the site's sign-in hook */
} ngx_http_chat_otp_t;


/*
 * KEYS: otp, next, day, ip, country.  ARGV: hash, ttl, daily limit,
 * ip limit, country limit, window, first resend delay, and 1 for a
 * number that has an account (the country's limit is not its: a flood
 * of new numbers must not lock the country's users out).  {1, retry
 * after} when limited, {2, retry after} when only the country's limit
 * refuses a number not known to have an account, else {0, seconds until
 * the next send is allowed}: the delay grows with each send of the day
 * (1, 2, 4, 10, 20, 60 times the first one), as messengers space their
 * "resend code" buttons.
 */
static const char  ngx_http_chat_otp_reserve[] =
    "local function over(k, limit)"
    "  if tonumber(redis.call('GET', k) or '0') >= limit then"
    "    local t = redis.call('TTL', k)"
    "    if t < 1 then t = 1 end"
    "    return t"
    "  end "
    "end "
    "local known = ARGV[8] == '1' "
    "local r = over(KEYS[4], tonumber(ARGV[4]))"
    "  or over(KEYS[3], tonumber(ARGV[3])) "
    "if r then return {1, r} end "
    "if not known then"
    "  r = over(KEYS[5], tonumber(ARGV[5]))"
    "  if r then return {2, r} end "
    "end "
    "local w = redis.call('PTTL', KEYS[2]) "
    "if w > 0 then return {1, math.ceil(w / 1000)} end "
    "local function bump(k, ttl)"
    "  local n = redis.call('INCR', k)"
    "  if n == 1 then redis.call('EXPIRE', k, ttl) end"
    "  return n "
    "end "
    "bump(KEYS[4], tonumber(ARGV[6])) "
    "if not known then bump(KEYS[5], tonumber(ARGV[6])) end "
    "local n = bump(KEYS[3], 86400) "
    "local steps = {1, 2, 4, 10, 20, 60} "
    "local d = tonumber(ARGV[7]) * steps[math.min(n, #steps)] "
    "redis.call('SET', KEYS[2], '1', 'EX', d) "
    "redis.call('DEL', KEYS[1]) "
    "redis.call('HSET', KEYS[1], 'h', ARGV[1], 'a', 0) "
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) "
    "return {0, d}";


/*
 * The SMS failed: the number is not charged for it (its daily count and
 * resend delay come back).  The address and country counts stay: they
 * meter what was asked of us, and would otherwise let one address send
 * without end to numbers the provider refuses.
 */
static const char  ngx_http_chat_otp_release[] =
    "if redis.call('DECR', KEYS[3]) <= 0 then redis.call('DEL', KEYS[3]) end "
    "redis.call('DEL', KEYS[1], KEYS[2]) "
    "return 0";


/*
 * KEYS: otp.  ARGV: the HMAC of the code given, the attempts allowed.
 * {0}: no live code; {2}: right, and consumed; {1, attempts left}: wrong,
 * and the code is void once none are left.  One script, so that a resend
 * or a concurrent guess cannot slip between the check and its effect.
 * The values compared are keyed hashes: timing tells nothing useful.
 */
static const char  ngx_http_chat_otp_check[] =
    "local h = redis.call('HGET', KEYS[1], 'h') "
    "if not h then return {0} end "
    "if h == ARGV[1] then redis.call('DEL', KEYS[1]) return {2} end "
    "local left = tonumber(ARGV[2]) - redis.call('HINCRBY', KEYS[1], 'a', 1) "
    "if left <= 0 then redis.call('DEL', KEYS[1]) left = 0 end "
    "return {1, left}";


static ngx_int_t ngx_http_chat_otp_phone(ngx_http_request_t *r,
    ngx_http_chat_otp_t *otp, ngx_int_t *rc);
static ngx_int_t ngx_http_chat_otp_channel(ngx_http_request_t *r,
    ngx_http_chat_otp_t *otp, ngx_int_t *rc);
static ngx_int_t ngx_http_chat_otp_hash(ngx_http_request_t *r,
    ngx_str_t *e164, ngx_str_t *code, ngx_str_t *out);
static ngx_int_t ngx_http_chat_otp_lookup(ngx_http_request_t *r,
    ngx_http_chat_otp_t *otp);
static ngx_int_t ngx_http_chat_otp_too_many(ngx_http_request_t *r,
    long long retry);
static ngx_int_t ngx_http_chat_otp_looked_up(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_otp_reserved(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_chat_otp_sms_done(ngx_http_chat_sms_t *sms,
    ngx_http_chat_sms_status_e status, void *data);
static void ngx_http_chat_otp_sms_cleanup(void *data);
static ngx_int_t ngx_http_chat_otp_released(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_otp_checked(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_otp_hook(ngx_http_request_t *r);
static void ngx_http_chat_otp_hooked(void *data, ngx_int_t rc,
    u_char *content, size_t len, const char *reason);
static void ngx_http_chat_otp_hook_cleanup(void *data);
static ngx_int_t ngx_http_chat_otp_login(ngx_http_request_t *r);
static ngx_int_t ngx_http_chat_otp_logged_in(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);


static ngx_int_t
ngx_http_chat_otp_key(ngx_http_request_t *r, ngx_str_t *key,
    const char *prefix, ngx_str_t *value)
{
    size_t  len;

    len = ngx_strlen(prefix) + value->len;

    key->data = ngx_pnalloc(r->pool, len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_sprintf(key->data, "%s%V", prefix, value) - key->data;

    return NGX_OK;
}


/*
 * The client's network for the address limit: an IPv4 address, or the /64
 * of an IPv6 one (a single host is given a whole /64 to rotate through).
 */

static ngx_int_t
ngx_http_chat_otp_client(ngx_http_request_t *r, ngx_str_t *out)
{
#if (NGX_HAVE_INET6)
    u_char               *p;
    struct sockaddr_in6  *sin6;

    if (r->connection->sockaddr->sa_family == AF_INET6) {
        sin6 = (struct sockaddr_in6 *) r->connection->sockaddr;

        p = ngx_pnalloc(r->pool, 2 * 8 + sizeof("/64"));
        if (p == NULL) {
            return NGX_ERROR;
        }

        out->data = p;
        p = ngx_hex_dump(p, sin6->sin6_addr.s6_addr, 8);
        out->len = ngx_cpymem(p, "/64", 3) - out->data;

        return NGX_OK;
    }
#endif

    *out = r->connection->addr_text;

    return NGX_OK;
}


/*
 * Reads and normalises "phone" and "countryCode" of the body: NGX_OK, or
 * NGX_ERROR after an error answer was sent, whose rc is in *rc.
 */

static ngx_int_t
ngx_http_chat_otp_phone(ngx_http_request_t *r, ngx_http_chat_otp_t *otp,
    ngx_int_t *rc)
{
    int                   n;
    ngx_str_t             phone, country;
    const char           *err, *code, *msg;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    err = ngx_http_chat_json_string(ctx->body, "phone", 1, 64, &phone);
    if (err) {
        *rc = ngx_http_chat_send_invalid(r, "phone", err);
        return NGX_ERROR;
    }

    err = ngx_http_chat_json_string(ctx->body, "countryCode", 0, 8, &country);
    if (err) {
        *rc = ngx_http_chat_send_invalid(r, "countryCode", err);
        return NGX_ERROR;
    }

    n = ngx_http_chat_phone_normalize((char *) phone.data, phone.len,
                                      (char *) country.data, country.len,
                                      &otp->phone);

    switch (n) {

    case NGX_HTTP_CHAT_PHONE_OK:
        otp->e164.data = (u_char *) otp->phone.e164;
        otp->e164.len = ngx_strlen(otp->phone.e164);
        return NGX_OK;

    case NGX_HTTP_CHAT_PHONE_NOT_MOBILE:
        code = "phone_not_mobile";
        msg = "this number cannot receive SMS";
        break;

    case NGX_HTTP_CHAT_PHONE_BAD_COUNTRY:
        code = "invalid_country";
        msg = "unknown country";
        break;

    default:
        code = "invalid_phone";
        msg = "the phone number is not valid";
    }

    *rc = ngx_http_chat_send_error(r, NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY, code,
                                   otp->phone.error ? otp->phone.error : msg);
    return NGX_ERROR;
}


/*
 * "channel": "sms" (the default) or "whatsapp".  WhatsApp without a
 * sender configured is a 400 too, not a 5xx: it is the same answer until
 * the operator changes the configuration, so a client should fall back
 * to SMS rather than retry, and monitoring should not count a client's
 * choice as a server failure.  details.channels lists what is offered.
 */

static ngx_int_t
ngx_http_chat_otp_channel(ngx_http_request_t *r, ngx_http_chat_otp_t *otp,
    ngx_int_t *rc)
{
    ngx_str_t                   ch;
    const char                 *err;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_main_conf_t  *cmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    otp->channel = NGX_HTTP_CHAT_SMS_CHANNEL_SMS;

    err = ngx_http_chat_json_string(ctx->body, "channel", 0, 16, &ch);
    if (err) {
        *rc = ngx_http_chat_send_invalid(r, "channel", err);
        return NGX_ERROR;
    }

    if (ch.data == NULL
        || (ch.len == 3 && ngx_strncmp(ch.data, "sms", 3) == 0))
    {
        return NGX_OK;
    }

    if (ch.len != 8 || ngx_strncmp(ch.data, "whatsapp", 8) != 0) {
        *rc = ngx_http_chat_send_invalid(r, "channel",
                                         "must be \"sms\" or \"whatsapp\"");
        return NGX_ERROR;
    }

    if (cmcf->twilio_whatsapp_from.len == 0) {
        *rc = ngx_http_chat_send_error_details(r, NGX_HTTP_BAD_REQUEST,
                  "channel_unavailable",
                  "one-time codes are not sent over WhatsApp here, "
                  "use \"sms\"",
                  json_pack("{s:s,s:[s]}", "field", "channel",
                            "channels", "sms"));
        return NGX_ERROR;
    }

    otp->channel = NGX_HTTP_CHAT_SMS_CHANNEL_WHATSAPP;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_send_otp(ngx_http_request_t *r)
{
    u_char                     *p, rnd[4];
    uint32_t                    v;
    ngx_int_t                   rc;
    ngx_str_t                  *args, hash, cc, client;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_otp_t        *otp;
    ngx_http_chat_main_conf_t  *cmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    otp = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_otp_t));
    if (otp == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->state = otp;

    if (ngx_http_chat_otp_phone(r, otp, &rc) != NGX_OK
        || ngx_http_chat_otp_channel(r, otp, &rc) != NGX_OK)
    {
        return rc;
    }

    /* six uniform digits: reject the top of the range to avoid bias */
    do {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        v = (uint32_t) rnd[0] << 24 | rnd[1] << 16 | rnd[2] << 8 | rnd[3];

    } while (v >= 4294000000u);

    p = ngx_pnalloc(r->pool, 7);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    otp->code.data = p;
    otp->code.len = ngx_sprintf(p, "%06uD", v % 1000000) - p;

    if (ngx_http_chat_otp_hash(r, &otp->e164, &otp->code, &hash) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_otp_client(r, &client) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cc.data = (u_char *) otp->phone.region;
    cc.len = ngx_strlen(otp->phone.region);

    args = otp->args;

    if (ngx_http_chat_otp_key(r, &otp->keys[0], "otp:", &otp->e164)
        != NGX_OK
        || ngx_http_chat_otp_key(r, &otp->keys[1], "otp:next:", &otp->e164)
           != NGX_OK
        || ngx_http_chat_otp_key(r, &otp->keys[2], "otp:day:", &otp->e164)
           != NGX_OK
        || ngx_http_chat_otp_key(r, &otp->keys[3], "rl:otp:ip:", &client)
           != NGX_OK
        || ngx_http_chat_otp_key(r, &otp->keys[4], "rl:otp:cc:", &cc)
           != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[1], cmcf->otp_ttl) != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[2], cmcf->otp_daily_limit)
           != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[3], cmcf->otp_ip_limit)
           != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[4], cmcf->otp_country_limit)
           != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[5], cmcf->otp_window) != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[6], cmcf->otp_resend_delay)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args[0] = hash;
    ngx_str_set(&args[7], "0");

    return ngx_http_chat_redis_eval(r, ngx_http_chat_otp_reserve, 5,
                                    otp->keys, 8, args,
                                    ngx_http_chat_otp_reserved);
}


/*
 * Only when a country's limit refuses a number: a number with an account
 * gets its code all the same (its own, address and daily limits hold)
 */
static ngx_int_t
ngx_http_chat_otp_lookup(ngx_http_request_t *r, ngx_http_chat_otp_t *otp)
{
    ngx_http_chat_login_arg_t  *arg;

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_login_arg_t));
    if (arg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_cpystrn((u_char *) arg->phone, otp->e164.data,
                ngx_min(sizeof(arg->phone), otp->e164.len + 1));

    return ngx_http_chat_mongo_request(r, ngx_http_chat_users_known_run,
                                       ngx_http_chat_otp_looked_up, arg,
                                       sizeof(ngx_http_chat_login_arg_t));
}


static ngx_int_t
ngx_http_chat_otp_looked_up(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_ctx_t  *ctx;
    ngx_http_chat_otp_t  *otp;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    otp = ctx->state;

    if (t->rc != NGX_OK) {
        /* a new number, or the store cannot tell: the guard holds */
        return ngx_http_chat_otp_too_many(r, otp->country_retry);
    }

    ngx_str_set(&otp->args[7], "1");

    return ngx_http_chat_redis_eval(r, ngx_http_chat_otp_reserve, 5,
                                    otp->keys, 8, otp->args,
                                    ngx_http_chat_otp_reserved);
}


static ngx_int_t
ngx_http_chat_otp_too_many(ngx_http_request_t *r, long long retry)
{
    u_char     *p;
    ngx_str_t   v;

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v.data = p;
    v.len = ngx_sprintf(p, "%L", (int64_t) (retry > 0 ? retry : 1)) - p;

    if (ngx_http_chat_add_header(r, "Retry-After", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_error_details(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                            "rate_limited",
                                            "too many requests, try again "
                                            "later",
                                            json_pack("{s:I}", "retryAfter",
                                                      (json_int_t) retry));
}


static ngx_int_t
ngx_http_chat_otp_reserved(ngx_http_request_t *r, redisReply *reply)
{
    u_char                     *p;
    ngx_str_t                   body;
    ngx_http_cleanup_t         *cln;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_otp_t        *otp;
    ngx_http_chat_main_conf_t  *cmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);
    otp = ctx->state;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (reply->element[0]->integer == 1) {
        return ngx_http_chat_otp_too_many(r, reply->element[1]->integer);
    }

    if (reply->element[0]->integer == 2) {
        /* the country is over its limit: does the number have an account? */
        otp->country_retry = reply->element[1]->integer;
        return ngx_http_chat_otp_lookup(r, otp);
    }

    otp->retry_after = (ngx_uint_t) reply->element[1]->integer;

    p = ngx_pnalloc(r->pool, 128);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;
    body.len = ngx_sprintf(p, "%V is your verification code. "
                           "It expires in %T minutes.",
                           &otp->code, cmcf->otp_ttl / 60) - p;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * The request's log: the send's lines name its request id.  The send
     * ends before the request does (done, or cancelled by the cleanup).
     */
    otp->sms = ngx_http_chat_sms_send(cmcf, r->connection->log, otp->channel,
                                      &otp->e164, &body, &otp->code,
                                      ngx_http_chat_otp_sms_done, r);
    if (otp->sms == NULL) {
        /* not sent: give the number its attempt back, then answer 503 */
        otp->retry_after = NGX_HTTP_CHAT_SMS_UNAVAILABLE;
        return ngx_http_chat_redis_eval(r, ngx_http_chat_otp_release, 5,
                                        otp->keys, 0, NULL,
                                        ngx_http_chat_otp_released);
    }

    cln->handler = ngx_http_chat_otp_sms_cleanup;
    cln->data = otp;
    otp->sms_cleanup = cln;

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_chat_otp_sms_cleanup(void *data)
{
    ngx_http_chat_otp_t  *otp = data;

    /* the client left: the SMS may still go out, nobody waits for it */
    ngx_http_chat_sms_cancel(otp->sms);
    otp->sms = NULL;
}


static void
ngx_http_chat_otp_sms_done(ngx_http_chat_sms_t *sms,
    ngx_http_chat_sms_status_e status, void *data)
{
    ngx_http_request_t *r = data;

    ngx_int_t                   rc;
    ngx_connection_t           *c;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_otp_t        *otp;
    ngx_http_chat_main_conf_t  *cmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    otp = ctx->state;
    c = r->connection;

    otp->sms = NULL;
    otp->sms_cleanup->handler = NULL;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    if (status == NGX_HTTP_CHAT_SMS_SENT) {
        rc = ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                     json_pack("{s:b,s:s,s:s,s:I,s:I}",
                                               "success", 1,
                                               "phone", otp->phone.e164,
                                               "channel",
                                               otp->channel
                                               == NGX_HTTP_CHAT_SMS_CHANNEL_SMS
                                               ? "sms" : "whatsapp",
                                               "expiresIn",
                                               (json_int_t) cmcf->otp_ttl,
                                               "retryAfter",
                                               (json_int_t) otp->retry_after));

    } else {
        otp->retry_after = status;
        rc = ngx_http_chat_redis_eval(r, ngx_http_chat_otp_release, 5,
                                      otp->keys, 0, NULL,
                                      ngx_http_chat_otp_released);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_chat_otp_released(ngx_http_request_t *r, redisReply *reply)
{
    ngx_http_chat_ctx_t  *ctx;
    ngx_http_chat_otp_t  *otp;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    otp = ctx->state;

    if (otp->retry_after == NGX_HTTP_CHAT_SMS_REJECTED) {
        return ngx_http_chat_send_error(r, NGX_HTTP_BAD_GATEWAY,
                                        "sms_rejected",
                                        "the SMS provider refused to send "
                                        "to this number");
    }

    return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "sms_unavailable",
                                    "the SMS could not be sent, try again "
                                    "shortly");
}


/* HMAC-SHA256(secret, "+14155550100:123456"), hex */

static ngx_int_t
ngx_http_chat_otp_hash(ngx_http_request_t *r, ngx_str_t *e164,
    ngx_str_t *code, ngx_str_t *out)
{
    u_char                      msg[64], mac[EVP_MAX_MD_SIZE], *p;
    unsigned int                len;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    if (e164->len + code->len + 1 > sizeof(msg)) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(msg, "%V:%V", e164, code);

    if (HMAC(EVP_sha256(), cmcf->otp_secret.data, (int) cmcf->otp_secret.len,
             msg, p - msg, mac, &len)
        == NULL)
    {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(r->pool, 2 * len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_hex_dump(out->data, mac, len) - out->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_verify_otp(ngx_http_request_t *r)
{
    ngx_int_t              rc;
    ngx_str_t              args[2];
    ngx_uint_t             i;
    json_t                *dev;
    const char            *err;
    ngx_http_chat_ctx_t   *ctx;
    ngx_http_chat_otp_t   *otp;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    otp = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_otp_t));
    if (otp == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->state = otp;

    err = ngx_http_chat_json_string(ctx->body, "code", 1, 6, &otp->code);
    if (err) {
        return ngx_http_chat_send_invalid(r, "code", err);
    }

    for (i = 0; i < otp->code.len; i++) {
        if (otp->code.data[i] < '0' || otp->code.data[i] > '9') {
            break;
        }
    }

    if (otp->code.len != 6 || i != 6) {
        return ngx_http_chat_send_invalid(r, "code", "must be 6 digits");
    }

    /* "device": a name, or {"name": ..., "platform": ...} */
    dev = json_object_get(ctx->body, "device");

    if (dev && json_is_object(dev)) {
        err = ngx_http_chat_json_string(dev, "name", 0, 128, &otp->device);

    } else {
        err = ngx_http_chat_json_string(ctx->body, "device", 0, 128,
                                        &otp->device);
    }

    if (err) {
        return ngx_http_chat_send_invalid(r, "device", err);
    }

    if (otp->device.len && ngx_http_chat_has_controls(&otp->device, 0)) {
        return ngx_http_chat_send_invalid(r, "device",
                                          "has control characters");
    }

    if (ngx_http_chat_otp_phone(r, otp, &rc) != NGX_OK) {
        return rc;
    }

    if (ngx_http_chat_otp_key(r, &otp->keys[0], "otp:", &otp->e164)
        != NGX_OK
        || ngx_http_chat_otp_hash(r, &otp->e164, &otp->code, &args[0])
           != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[1],
                                 NGX_HTTP_CHAT_OTP_ATTEMPTS)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_redis_eval(r, ngx_http_chat_otp_check, 1, otp->keys,
                                    2, args, ngx_http_chat_otp_checked);
}


static ngx_int_t
ngx_http_chat_otp_expired(ngx_http_request_t *r)
{
    return ngx_http_chat_send_error(r, NGX_HTTP_CHAT_GONE, "code_expired",
                                    "no valid code for this number, "
                                    "request a new one");
}


static ngx_int_t
ngx_http_chat_otp_checked(ngx_http_request_t *r, redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_INTEGER)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (reply->element[0]->integer) {

    case 2:
        return ngx_http_chat_otp_hook(r);

    case 1:
        if (reply->elements != 2
            || reply->element[1]->type != REDIS_REPLY_INTEGER)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_chat_send_error_details(r,
                   NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY, "invalid_code",
                   "the code is not correct",
                   json_pack("{s:I}", "attemptsLeft",
                             (json_int_t) reply->element[1]->integer));

    default:
        return ngx_http_chat_otp_expired(r);
    }
}


/*
 * The code was right: the site's sign-in hook (lua-compat), if any, may
 * still refuse before the session is made.  The request waits for its
 * verdict, or chat_lua_hook_timeout.
 */

static ngx_int_t
ngx_http_chat_otp_hook(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_http_cleanup_t   *cln;
    ngx_http_chat_ctx_t  *ctx;
    ngx_http_chat_otp_t  *otp;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    otp = ctx->state;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_event_signin(&otp->e164, &otp->device,
                                    ngx_http_chat_otp_hooked, r, &otp->hook);

    if (rc == NGX_DECLINED) {
        return ngx_http_chat_otp_login(r);
    }

    if (rc != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "signin_hook_failed",
                                        "the sign-in hook is not running");
    }

    cln->handler = ngx_http_chat_otp_hook_cleanup;
    cln->data = otp;

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_chat_otp_hooked(void *data, ngx_int_t rc, u_char *content,
    size_t len, const char *reason)
{
    ngx_http_request_t *r = data;

    ngx_connection_t     *c;
    ngx_http_chat_ctx_t  *ctx;
    ngx_http_chat_otp_t  *otp;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    otp = ctx->state;
    otp->hook = NULL;

    c = r->connection;

    if (rc == NGX_OK) {
        rc = ngx_http_chat_otp_login(r);

    } else if (rc == NGX_BUSY) {
        rc = ngx_http_chat_send_error(r, NGX_HTTP_FORBIDDEN,
                                      "sign_in_refused",
                                      reason ? reason
                                             : "this sign-in was refused");

    } else {
        rc = ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "signin_hook_failed",
                                      reason ? reason
                                             : "the sign-in hook failed");
    }

    ngx_http_chat_finalize(r, rc);
    ngx_http_run_posted_requests(c);
}


/* the request goes before the verdict: it will go to nobody */

static void
ngx_http_chat_otp_hook_cleanup(void *data)
{
    ngx_http_chat_otp_t  *otp = data;

    if (otp->hook) {
        ngx_http_chat_event_cancel(otp->hook);
        otp->hook = NULL;
    }
}


static ngx_int_t
ngx_http_chat_otp_login(ngx_http_request_t *r)
{
    char                        oid[25];
    size_t                      n;
    ngx_str_t                   sid, hash;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_otp_t        *otp;
    ngx_http_chat_login_arg_t   arg;
    ngx_http_chat_main_conf_t  *cmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);
    otp = ctx->state;

    ngx_memzero(&arg, sizeof(ngx_http_chat_login_arg_t));

    bson_oid_init(&arg.user_id, NULL);
    bson_oid_init(&arg.session_id, NULL);

    /* the session document holds its refresh token's hash from the start */
    bson_oid_to_string(&arg.session_id, oid);
    sid.data = (u_char *) oid;
    sid.len = 24;

    if (ngx_http_chat_refresh_new(r->pool, &sid, &otp->refresh, &hash)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(arg.cur, hash.data, ngx_min(hash.len, sizeof(arg.cur) - 1));
    arg.expires_at = ((int64_t) ngx_time() + cmcf->refresh_ttl) * 1000;
    ngx_cpystrn((u_char *) arg.phone, otp->e164.data,
                ngx_min(otp->e164.len + 1, sizeof(arg.phone)));

    n = ngx_min(otp->device.len, sizeof(arg.device) - 1);
    ngx_memcpy(arg.device, otp->device.data, n);

    n = ngx_min(r->connection->addr_text.len, sizeof(arg.ip) - 1);
    ngx_memcpy(arg.ip, r->connection->addr_text.data, n);

    return ngx_http_chat_mongo_request(r, ngx_http_chat_users_login_run,
                                       ngx_http_chat_otp_logged_in, &arg,
                                       sizeof(arg));
}


static ngx_int_t
ngx_http_chat_otp_logged_in(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    char                        oid[25];
    json_t                     *user, *reply;
    bson_t                      doc;
    bson_iter_t                 it;
    ngx_str_t                   uid, sid;
    const uint8_t              *data;
    uint32_t                    len;
    ngx_uint_t                  is_new;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_otp_t        *otp;
    ngx_http_chat_login_arg_t  *a;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    otp = ctx->state;

    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: sign-in failed in mongo: %s", t->error.message);
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "a back end is unavailable, "
                                        "try again shortly");
    }

    a = t->arg;
    user = NULL;
    is_new = 0;

    if (bson_iter_init_find(&it, &t->reply, "user")
        && BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        bson_iter_document(&it, &len, &data);

        if (bson_init_static(&doc, data, len)) {
            user = ngx_http_chat_user_json(&doc);
        }
    }

    if (bson_iter_init_find(&it, &t->reply, "isNew")) {
        is_new = bson_iter_as_bool(&it);
    }

    if (user == NULL || json_object_get(user, "id") == NULL) {
        json_decref(user);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    uid.len = 24;
    uid.data = ngx_pnalloc(r->pool, 25);
    sid.len = 24;
    sid.data = ngx_pnalloc(r->pool, 25);

    if (uid.data == NULL || sid.data == NULL) {
        json_decref(user);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(uid.data, json_string_value(json_object_get(user, "id")), 25);
    bson_oid_to_string(&a->session_id, oid);
    ngx_memcpy(sid.data, oid, 25);

    if (is_new) {
        ngx_http_chat_chat_ids_new_user(&uid);
    }

    reply = json_pack("{s:o,s:b}", "user", user, "isNewUser", (int) is_new);
    if (reply == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_session_tokens(r, &uid, &sid, &otp->refresh, reply);
}
