/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <jwt.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "ngx_http_chat_jwt.h"
#include "ngx_http_chat_jwt_claims.h"


#define NGX_HTTP_CHAT_JWT_MAX_LEN     8192
#define NGX_HTTP_CHAT_JWT_ID_LEN      24     /* sub and sid: 12 bytes, hex */
#define NGX_HTTP_CHAT_JWT_JTI_BYTES   16
#define NGX_HTTP_CHAT_JWT_JTI_MAX     64

/* 9999-12-31T23:59:59Z: keeps exp + leeway far from overflowing */
#define NGX_HTTP_CHAT_JWT_MAX_TIME    253402300799LL

/* the longest header segment remembered as accepted */
#define NGX_HTTP_CHAT_JWT_HEADER_MAX  128


typedef struct {
    ngx_str_t     name;
    jwt_alg_t     alg;
} ngx_http_chat_jwt_alg_t;


static jwt_alg_t ngx_http_chat_jwt_alg(ngx_str_t *name);
static EVP_PKEY *ngx_http_chat_jwt_read_key(ngx_conf_t *cf, ngx_str_t *pem,
    ngx_uint_t private);
static int ngx_http_chat_jwt_no_passphrase(char *buf, int size, int rwflag,
    void *data);
static const char *ngx_http_chat_jwt_hmac_digest(jwt_alg_t alg);
static void ngx_http_chat_jwt_key(ngx_http_chat_main_conf_t *cmcf,
    jwt_alg_t alg, ngx_uint_t sign, ngx_str_t *key);
static ngx_uint_t ngx_http_chat_jwt_is_id(u_char *p, size_t len);
static ngx_uint_t ngx_http_chat_jwt_is_jti(u_char *p, size_t len);
static u_char *ngx_http_chat_jwt_cstr(ngx_pool_t *pool, u_char *p,
    size_t len);
static ngx_int_t ngx_http_chat_jwt_split(ngx_str_t *token,
    ngx_str_t *segs);
static ngx_int_t ngx_http_chat_jwt_decode_segment(ngx_pool_t *pool,
    ngx_str_t *seg, ngx_str_t *dec);
static ngx_int_t ngx_http_chat_jwt_parse_segment(ngx_pool_t *pool,
    ngx_str_t *seg, json_t **json);
static ngx_int_t ngx_http_chat_jwt_check_header(
    ngx_http_chat_main_conf_t *cmcf, json_t *header, const char **reason);
static ngx_int_t ngx_http_chat_jwt_check_claims(
    ngx_http_chat_main_conf_t *cmcf, ngx_pool_t *pool,
    ngx_http_chat_jwt_claims_t *claims, ngx_http_chat_token_t *tok,
    const char **reason);
static ngx_uint_t ngx_http_chat_jwt_aud(ngx_http_chat_jwt_value_t *aud,
    ngx_str_t *want);
static ngx_uint_t ngx_http_chat_jwt_str_eq(ngx_http_chat_jwt_value_t *v,
    ngx_str_t *str);
static ngx_int_t ngx_http_chat_jwt_time(ngx_http_chat_jwt_value_t *v,
    time_t *t);


static ngx_http_chat_jwt_alg_t  ngx_http_chat_jwt_algs[] = {
    { ngx_string("HS256"), JWT_ALG_HS256 },
    { ngx_string("HS384"), JWT_ALG_HS384 },
    { ngx_string("HS512"), JWT_ALG_HS512 },
    { ngx_string("RS256"), JWT_ALG_RS256 },
    { ngx_string("RS384"), JWT_ALG_RS384 },
    { ngx_string("RS512"), JWT_ALG_RS512 },
    { ngx_string("ES256"), JWT_ALG_ES256 },
    { ngx_string("ES384"), JWT_ALG_ES384 },
    { ngx_string("ES512"), JWT_ALG_ES512 },
    { ngx_null_string, JWT_ALG_INVAL }
};


static ngx_str_t  ngx_http_chat_jwt_access = ngx_string("access");

static u_char                      ngx_http_chat_jwt_header[
                                       NGX_HTTP_CHAT_JWT_HEADER_MAX];
static size_t                      ngx_http_chat_jwt_header_len;
static ngx_http_chat_main_conf_t  *ngx_http_chat_jwt_header_conf;


ngx_int_t
ngx_http_chat_jwt_issue(ngx_http_chat_main_conf_t *cmcf, ngx_pool_t *pool,
    ngx_str_t *sub, ngx_str_t *sid, ngx_str_t *token, ngx_str_t *jti,
    time_t *exp)
{
    int         err;
    char       *out;
    size_t      len;
    u_char     *c_sub, *c_sid, *c_iss, *c_aud, *id;
    u_char      rnd[NGX_HTTP_CHAT_JWT_JTI_BYTES];
    jwt_t      *jwt;
    time_t      now, expires;
    ngx_str_t   key;
    jwt_alg_t   alg;

    alg = ngx_http_chat_jwt_alg(&cmcf->jwt_alg);
    if (alg == JWT_ALG_INVAL) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "chat jwt: unknown algorithm \"%V\"", &cmcf->jwt_alg);
        return NGX_ERROR;
    }

    if (!ngx_http_chat_jwt_is_id(sub->data, sub->len)
        || !ngx_http_chat_jwt_is_id(sid->data, sid->len))
    {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "chat jwt: user id \"%V\" or session id \"%V\" is "
                      "not 24 lowercase hex digits", sub, sid);
        return NGX_ERROR;
    }

    ngx_http_chat_jwt_key(cmcf, alg, 1, &key);

    if (key.len == 0 || key.len > NGX_MAX_INT32_VALUE) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "chat jwt: no signing key for \"%V\"", &cmcf->jwt_alg);
        return NGX_ERROR;
    }

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "chat jwt: RAND_bytes() failed");
        return NGX_ERROR;
    }

    id = ngx_pnalloc(pool, 2 * sizeof(rnd) + 1);
    if (id == NULL) {
        return NGX_ERROR;
    }

    *ngx_hex_dump(id, rnd, sizeof(rnd)) = '\0';

    c_sub = ngx_http_chat_jwt_cstr(pool, sub->data, sub->len);
    c_sid = ngx_http_chat_jwt_cstr(pool, sid->data, sid->len);
    c_iss = ngx_http_chat_jwt_cstr(pool, cmcf->jwt_issuer.data,
                                   cmcf->jwt_issuer.len);
    c_aud = ngx_http_chat_jwt_cstr(pool, cmcf->jwt_audience.data,
                                   cmcf->jwt_audience.len);

    if (c_sub == NULL || c_sid == NULL || c_iss == NULL || c_aud == NULL) {
        return NGX_ERROR;
    }

    now = ngx_time();
    expires = now + cmcf->jwt_ttl;

    err = jwt_new(&jwt);
    if (err != 0) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, err,
                      "chat jwt: jwt_new() failed");
        return NGX_ERROR;
    }

    /* jwt_set_alg() copies the key; jwt_free() wipes the copy */

    err = jwt_set_alg(jwt, alg, key.data, (int) key.len);

    if (err == 0) {
        err = jwt_add_grant(jwt, "sub", (char *) c_sub);
    }

    if (err == 0) {
        err = jwt_add_grant(jwt, "sid", (char *) c_sid);
    }

    if (err == 0) {
        err = jwt_add_grant_int(jwt, "iat", (long) now);
    }

    if (err == 0) {
        err = jwt_add_grant_int(jwt, "exp", (long) expires);
    }

    if (err == 0) {
        err = jwt_add_grant(jwt, "jti", (char *) id);
    }

    if (err == 0 && cmcf->jwt_issuer.len) {
        err = jwt_add_grant(jwt, "iss", (char *) c_iss);
    }

    if (err == 0 && cmcf->jwt_audience.len) {
        err = jwt_add_grant(jwt, "aud", (char *) c_aud);
    }

    if (err == 0) {
        err = jwt_add_grant(jwt, "typ", "access");
    }

    if (err != 0) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, err,
                      "chat jwt: building the token failed");
        jwt_free(jwt);
        return NGX_ERROR;
    }

    /* the header is {"alg":<alg>,"typ":"JWT"}, written by libjwt */

    out = jwt_encode_str(jwt);
    err = errno;

    jwt_free(jwt);

    /* what libjwt left in OpenSSL's queue must not show up in others' logs */
    ERR_clear_error();

    if (out == NULL) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, err,
                      "chat jwt: jwt_encode_str() failed for \"%V\"",
                      &cmcf->jwt_alg);
        return NGX_ERROR;
    }

    len = ngx_strlen(out);

    token->data = ngx_pnalloc(pool, len + 1);
    if (token->data == NULL) {
        free(out);
        return NGX_ERROR;
    }

    ngx_memcpy(token->data, out, len + 1);
    token->len = len;

    free(out);

    if (jti) {
        jti->data = id;
        jti->len = 2 * sizeof(rnd);
    }

    if (exp) {
        *exp = expires;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_jwt_verify(ngx_http_chat_main_conf_t *cmcf, ngx_pool_t *pool,
    ngx_str_t *token, ngx_http_chat_token_t *tok, const char **reason)
{
    int         err;
    char       *buf;
    jwt_t      *jwt;
    json_t     *header;
    ngx_int_t   rc;
    ngx_str_t   segs[3], key, signed_part, dec;
    jwt_alg_t   alg;
    const char *digest;

    ngx_http_chat_jwt_claims_t  claims;

    *reason = "malformed token";

    alg = ngx_http_chat_jwt_alg(&cmcf->jwt_alg);
    if (alg == JWT_ALG_INVAL) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "chat jwt: unknown algorithm \"%V\"", &cmcf->jwt_alg);
        return NGX_ERROR;
    }

    if (token->len > NGX_HTTP_CHAT_JWT_MAX_LEN) {
        *reason = "token too long";
        return NGX_DECLINED;
    }

    if (ngx_http_chat_jwt_split(token, segs) != NGX_OK) {
        return NGX_DECLINED;
    }

    /*
     * The header is decoded here, before libjwt sees the token, and its
     * "alg" must be the configured one: libjwt 1.10 would otherwise take
     * the algorithm from the token, e.g. HS256 keyed with the RSA public
     * key, or "none" when no key is passed.
     */

    if (segs[0].len != ngx_http_chat_jwt_header_len
        || cmcf != ngx_http_chat_jwt_header_conf
        || ngx_memcmp(segs[0].data, ngx_http_chat_jwt_header, segs[0].len)
           != 0)
    {
        rc = ngx_http_chat_jwt_parse_segment(pool, &segs[0], &header);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_chat_jwt_check_header(cmcf, header, reason);

        json_decref(header);

        if (rc != NGX_OK) {
            return rc;
        }

        /*
         * every token we issue has the same header: the next one with
         * these very bytes is accepted without decoding them again
         */

        if (segs[0].len <= NGX_HTTP_CHAT_JWT_HEADER_MAX) {
            ngx_memcpy(ngx_http_chat_jwt_header, segs[0].data, segs[0].len);
            ngx_http_chat_jwt_header_len = segs[0].len;
            ngx_http_chat_jwt_header_conf = cmcf;
        }
    }

    if (segs[2].len == 0) {
        *reason = "malformed token";
        return NGX_DECLINED;
    }

    /* the claims from the very bytes the signature covers */

    rc = ngx_http_chat_jwt_decode_segment(pool, &segs[1], &dec);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_chat_jwt_claims_parse(dec.data, dec.len, &claims)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_http_chat_jwt_key(cmcf, alg, 0, &key);

    if (key.len == 0 || key.len > NGX_MAX_INT32_VALUE) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "chat jwt: no verification key for \"%V\"",
                      &cmcf->jwt_alg);
        ngx_http_chat_jwt_claims_free(&claims);
        return NGX_ERROR;
    }

    digest = ngx_http_chat_jwt_hmac_digest(alg);

    if (digest != NULL) {
        /* the header and the claims as sent: what the signature covers */
        signed_part.data = token->data;
        signed_part.len = segs[1].data + segs[1].len - token->data;

        rc = ngx_http_chat_jwt_hmac_verify(digest, &key, &signed_part,
                                           &segs[2], pool->log);
        if (rc != NGX_OK) {
            ngx_http_chat_jwt_claims_free(&claims);

            if (rc == NGX_DECLINED) {
                *reason = "bad signature";
            }

            return rc;
        }

        goto verified;
    }

    buf = (char *) ngx_http_chat_jwt_cstr(pool, token->data, token->len);
    if (buf == NULL) {
        ngx_http_chat_jwt_claims_free(&claims);
        return NGX_ERROR;
    }

    jwt = NULL;

    err = jwt_decode(&jwt, buf, key.data, (int) key.len);

    ERR_clear_error();

    if (err != 0) {
        ngx_http_chat_jwt_claims_free(&claims);

        if (err == ENOMEM) {
            return NGX_ERROR;
        }

        *reason = "bad signature";
        return NGX_DECLINED;
    }

    if (jwt_get_alg(jwt) != alg) {
        jwt_free(jwt);
        ngx_http_chat_jwt_claims_free(&claims);
        *reason = "algorithm not allowed";
        return NGX_DECLINED;
    }

    jwt_free(jwt);

verified:

    rc = ngx_http_chat_jwt_check_claims(cmcf, pool, &claims, tok, reason);

    ngx_http_chat_jwt_claims_free(&claims);

    return rc;
}


ngx_int_t
ngx_http_chat_jwt_check_keys(ngx_conf_t *cf, ngx_http_chat_main_conf_t *cmcf)
{
    int          type, bits;
    char         group[32];
    size_t       n;
    EVP_PKEY    *priv, *pub;
    jwt_alg_t    alg;
    ngx_int_t    rc;
    const char  *curve;

    alg = ngx_http_chat_jwt_alg(&cmcf->jwt_alg);

    switch (alg) {

    case JWT_ALG_HS256:
    case JWT_ALG_HS384:
    case JWT_ALG_HS512:
        return NGX_OK;

    case JWT_ALG_RS256:
    case JWT_ALG_RS384:
    case JWT_ALG_RS512:
        type = EVP_PKEY_RSA;
        curve = NULL;
        break;

    case JWT_ALG_ES256:
        type = EVP_PKEY_EC;
        curve = "prime256v1";
        break;

    case JWT_ALG_ES384:
        type = EVP_PKEY_EC;
        curve = "secp384r1";
        break;

    case JWT_ALG_ES512:
        type = EVP_PKEY_EC;
        curve = "secp521r1";
        break;

    default:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown JWT algorithm \"%V\"", &cmcf->jwt_alg);
        return NGX_ERROR;
    }

    priv = ngx_http_chat_jwt_read_key(cf, &cmcf->jwt_private_key, 1);
    if (priv == NULL) {
        return NGX_ERROR;
    }

    pub = ngx_http_chat_jwt_read_key(cf, &cmcf->jwt_public_key, 0);
    if (pub == NULL) {
        EVP_PKEY_free(priv);
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (EVP_PKEY_get_base_id(priv) != type) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_jwt_private_key\" is not an %s key, as "
                           "\"chat_jwt_algorithm %V\" needs",
                           type == EVP_PKEY_RSA ? "RSA" : "EC",
                           &cmcf->jwt_alg);
        goto done;
    }

    if (EVP_PKEY_eq(priv, pub) != 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_jwt_public_key\" is not the public half "
                           "of \"chat_jwt_private_key\"");
        goto done;
    }

    if (type == EVP_PKEY_RSA) {
        bits = EVP_PKEY_get_bits(priv);

        if (bits < 2048) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"chat_jwt_private_key\" is an RSA key of "
                               "%d bits, at least 2048 are needed", bits);
            goto done;
        }

    } else if (EVP_PKEY_get_group_name(priv, group, sizeof(group), &n) != 1
               || ngx_strcmp(group, curve) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_jwt_algorithm %V\" needs an EC key on "
                           "curve %s", &cmcf->jwt_alg, curve);
        goto done;
    }

    rc = NGX_OK;

done:

    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);

    ERR_clear_error();

    return rc;
}


static EVP_PKEY *
ngx_http_chat_jwt_read_key(ngx_conf_t *cf, ngx_str_t *pem, ngx_uint_t private)
{
    BIO       *bio;
    EVP_PKEY  *key;

    if (pem->len == 0 || pem->len > NGX_MAX_INT32_VALUE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"chat_jwt_%s_key\" is "
                           "required for \"chat_jwt_algorithm\"",
                           private ? "private" : "public");
        return NULL;
    }

    bio = BIO_new_mem_buf(pem->data, (int) pem->len);
    if (bio == NULL) {
        return NULL;
    }

    if (private) {
        key = PEM_read_bio_PrivateKey(bio, NULL,
                                      ngx_http_chat_jwt_no_passphrase, NULL);

    } else {
        key = PEM_read_bio_PUBKEY(bio, NULL,
                                  ngx_http_chat_jwt_no_passphrase, NULL);
    }

    BIO_free(bio);

    if (key == NULL) {
        ERR_clear_error();

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_jwt_%s_key\" is not a %s key in PEM "
                           "(an encrypted key is not supported)",
                           private ? "private" : "public",
                           private ? "private" : "public");
    }

    return key;
}


/* keeps OpenSSL from asking for a passphrase on the terminal */

static int
ngx_http_chat_jwt_no_passphrase(char *buf, int size, int rwflag, void *data)
{
    return -1;
}


static jwt_alg_t
ngx_http_chat_jwt_alg(ngx_str_t *name)
{
    ngx_http_chat_jwt_alg_t  *a;

    for (a = ngx_http_chat_jwt_algs; a->name.len; a++) {
        if (a->name.len == name->len
            && ngx_strncmp(a->name.data, name->data, name->len) == 0)
        {
            return a->alg;
        }
    }

    return JWT_ALG_INVAL;
}


/* HS256, HS384, HS512: checked by ngx_http_chat_jwt_hmac.c */

static const char *
ngx_http_chat_jwt_hmac_digest(jwt_alg_t alg)
{
    switch (alg) {

    case JWT_ALG_HS256:
        return "SHA256";

    case JWT_ALG_HS384:
        return "SHA384";

    case JWT_ALG_HS512:
        return "SHA512";

    default:
        return NULL;
    }
}


static void
ngx_http_chat_jwt_key(ngx_http_chat_main_conf_t *cmcf, jwt_alg_t alg,
    ngx_uint_t sign, ngx_str_t *key)
{
    switch (alg) {

    case JWT_ALG_HS256:
    case JWT_ALG_HS384:
    case JWT_ALG_HS512:
        *key = cmcf->jwt_secret;
        break;

    default:
        /* PEM: the configuration NUL-terminates it, len excludes the NUL */
        *key = sign ? cmcf->jwt_private_key : cmcf->jwt_public_key;
        break;
    }

    if (key->data == NULL) {
        key->len = 0;
    }
}


static ngx_uint_t
ngx_http_chat_jwt_is_id(u_char *p, size_t len)
{
    size_t  i;

    if (len != NGX_HTTP_CHAT_JWT_ID_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


/* token ids: what we issue (hex) and the usual UUIDs, safe as Redis keys */

static ngx_uint_t
ngx_http_chat_jwt_is_jti(u_char *p, size_t len)
{
    u_char  c;
    size_t  i;

    if (len == 0 || len > NGX_HTTP_CHAT_JWT_JTI_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
            || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.'
            || c == ':')
        {
            continue;
        }

        return 0;
    }

    return 1;
}


static u_char *
ngx_http_chat_jwt_cstr(ngx_pool_t *pool, u_char *p, size_t len)
{
    u_char  *s;

    s = ngx_pnalloc(pool, len + 1);
    if (s == NULL) {
        return NULL;
    }

    if (len) {
        ngx_memcpy(s, p, len);
    }

    s[len] = '\0';

    return s;
}


/*
 * three base64url segments separated by dots, nothing else; the signature
 * may be empty here, so that "alg":"none" is refused as an algorithm
 */

static ngx_int_t
ngx_http_chat_jwt_split(ngx_str_t *token, ngx_str_t *segs)
{
    u_char      c, *p, *last, *start;
    ngx_uint_t  n;

    n = 0;
    start = token->data;
    last = token->data + token->len;

    for (p = start; /* void */ ; p++) {

        if (p == last || *p == '.') {
            if (n == 3 || (p == start && n < 2) || (p - start) % 4 == 1) {
                return NGX_DECLINED;
            }

            segs[n].data = start;
            segs[n].len = p - start;
            n++;

            if (p == last) {
                break;
            }

            start = p + 1;
            continue;
        }

        c = *p;

        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
            || (c >= 'A' && c <= 'Z') || c == '-' || c == '_')
        {
            continue;
        }

        return NGX_DECLINED;
    }

    return (n == 3) ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_http_chat_jwt_decode_segment(ngx_pool_t *pool, ngx_str_t *seg,
    ngx_str_t *dec)
{
    dec->data = ngx_pnalloc(pool, ngx_base64_decoded_length(seg->len));
    if (dec->data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64url(dec, seg) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_jwt_parse_segment(ngx_pool_t *pool, ngx_str_t *seg,
    json_t **json)
{
    json_t     *j;
    ngx_str_t   dec;
    ngx_int_t   rc;

    *json = NULL;

    rc = ngx_http_chat_jwt_decode_segment(pool, seg, &dec);
    if (rc != NGX_OK) {
        return rc;
    }

    j = json_loadb((const char *) dec.data, dec.len, JSON_REJECT_DUPLICATES,
                   NULL);
    if (j == NULL) {
        return NGX_DECLINED;
    }

    if (!json_is_object(j)) {
        json_decref(j);
        return NGX_DECLINED;
    }

    *json = j;

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_jwt_check_header(ngx_http_chat_main_conf_t *cmcf,
    json_t *header, const char **reason)
{
    json_t  *v;

    v = json_object_get(header, "alg");

    if (!json_is_string(v)
        || json_string_length(v) != cmcf->jwt_alg.len
        || ngx_memcmp(json_string_value(v), cmcf->jwt_alg.data,
                      cmcf->jwt_alg.len)
           != 0)
    {
        *reason = "algorithm not allowed";
        return NGX_DECLINED;
    }

    /* libjwt refuses any other "typ" as a bad token, not a bad signature */

    v = json_object_get(header, "typ");

    if (v != NULL) {
        if (!json_is_string(v)
            || ngx_strcasecmp((u_char *) json_string_value(v),
                              (u_char *) "JWT")
               != 0)
        {
            *reason = "malformed token";
            return NGX_DECLINED;
        }
    }

    /* we understand no extension, so none may be critical (RFC 7515 4.1.11) */

    if (json_object_get(header, "crit") != NULL) {
        *reason = "unsupported token header";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_jwt_check_claims(ngx_http_chat_main_conf_t *cmcf,
    ngx_pool_t *pool, ngx_http_chat_jwt_claims_t *claims,
    ngx_http_chat_token_t *tok, const char **reason)
{
    time_t                     now, exp, iat, nbf;
    ngx_http_chat_jwt_value_t  v;

    now = ngx_time();

    ngx_http_chat_jwt_claims_get(claims, "typ", &v);

    if (!ngx_http_chat_jwt_str_eq(&v, &ngx_http_chat_jwt_access)) {
        *reason = "not an access token";
        return NGX_DECLINED;
    }

    if (cmcf->jwt_issuer.len) {
        ngx_http_chat_jwt_claims_get(claims, "iss", &v);

        if (!ngx_http_chat_jwt_str_eq(&v, &cmcf->jwt_issuer)) {
            *reason = "wrong issuer";
            return NGX_DECLINED;
        }
    }

    if (cmcf->jwt_audience.len) {
        ngx_http_chat_jwt_claims_get(claims, "aud", &v);

        if (!ngx_http_chat_jwt_aud(&v, &cmcf->jwt_audience)) {
            *reason = "wrong audience";
            return NGX_DECLINED;
        }
    }

    *reason = "malformed token";

    ngx_http_chat_jwt_claims_get(claims, "exp", &v);

    if (ngx_http_chat_jwt_time(&v, &exp) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_http_chat_jwt_claims_get(claims, "iat", &v);

    if (ngx_http_chat_jwt_time(&v, &iat) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (now > exp + cmcf->jwt_leeway) {
        *reason = "token expired";
        return NGX_DECLINED;
    }

    if (iat > now + cmcf->jwt_leeway) {
        *reason = "token used before issued";
        return NGX_DECLINED;
    }

    /* we never set "nbf", but honour it when present */

    ngx_http_chat_jwt_claims_get(claims, "nbf", &v);

    if (v.type != NGX_HTTP_CHAT_JWT_NONE) {
        if (ngx_http_chat_jwt_time(&v, &nbf) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (nbf > now + cmcf->jwt_leeway) {
            *reason = "token not yet valid";
            return NGX_DECLINED;
        }
    }

    ngx_http_chat_jwt_claims_get(claims, "sub", &v);

    if (v.type != NGX_HTTP_CHAT_JWT_STRING
        || !ngx_http_chat_jwt_is_id(v.str.data, v.str.len))
    {
        *reason = "invalid subject";
        return NGX_DECLINED;
    }

    tok->sub.len = v.str.len;
    tok->sub.data = ngx_http_chat_jwt_cstr(pool, v.str.data, v.str.len);
    if (tok->sub.data == NULL) {
        return NGX_ERROR;
    }

    ngx_http_chat_jwt_claims_get(claims, "sid", &v);

    if (v.type != NGX_HTTP_CHAT_JWT_STRING
        || !ngx_http_chat_jwt_is_id(v.str.data, v.str.len))
    {
        *reason = "invalid session id";
        return NGX_DECLINED;
    }

    tok->sid.len = v.str.len;
    tok->sid.data = ngx_http_chat_jwt_cstr(pool, v.str.data, v.str.len);
    if (tok->sid.data == NULL) {
        return NGX_ERROR;
    }

    ngx_http_chat_jwt_claims_get(claims, "jti", &v);

    if (v.type != NGX_HTTP_CHAT_JWT_STRING
        || !ngx_http_chat_jwt_is_jti(v.str.data, v.str.len))
    {
        *reason = "invalid token id";
        return NGX_DECLINED;
    }

    tok->jti.len = v.str.len;
    tok->jti.data = ngx_http_chat_jwt_cstr(pool, v.str.data, v.str.len);
    if (tok->jti.data == NULL) {
        return NGX_ERROR;
    }

    tok->iat = iat;
    tok->exp = exp;

    *reason = NULL;

    return NGX_OK;
}


/* "aud": the audience, or an array (jansson's) that has it */

static ngx_uint_t
ngx_http_chat_jwt_aud(ngx_http_chat_jwt_value_t *aud, ngx_str_t *want)
{
    size_t                     i;
    json_t                    *e;
    ngx_http_chat_jwt_value_t  v;

    if (aud->type != NGX_HTTP_CHAT_JWT_ARRAY) {
        return ngx_http_chat_jwt_str_eq(aud, want);
    }

    json_array_foreach(aud->json, i, e) {
        if (json_is_string(e)) {
            v.type = NGX_HTTP_CHAT_JWT_STRING;
            v.str.data = (u_char *) json_string_value(e);
            v.str.len = json_string_length(e);

            if (ngx_http_chat_jwt_str_eq(&v, want)) {
                return 1;
            }
        }
    }

    return 0;
}


/* a JSON string equal to str, byte for byte */

static ngx_uint_t
ngx_http_chat_jwt_str_eq(ngx_http_chat_jwt_value_t *v, ngx_str_t *str)
{
    return v->type == NGX_HTTP_CHAT_JWT_STRING && v->str.len == str->len
           && ngx_memcmp(v->str.data, str->data, str->len) == 0;
}


/* a NumericDate: an integer, or a real truncated, from 0 to year 9999 */

static ngx_int_t
ngx_http_chat_jwt_time(ngx_http_chat_jwt_value_t *v, time_t *t)
{
    if (v->type == NGX_HTTP_CHAT_JWT_INTEGER) {
        if (v->num < 0 || v->num > NGX_HTTP_CHAT_JWT_MAX_TIME) {
            return NGX_DECLINED;
        }

        *t = (time_t) v->num;
        return NGX_OK;
    }

    if (v->type == NGX_HTTP_CHAT_JWT_REAL) {
        if (!(v->real >= 0 && v->real <= (double) NGX_HTTP_CHAT_JWT_MAX_TIME))
        {
            return NGX_DECLINED;
        }

        *t = (time_t) v->real;
        return NGX_OK;
    }

    return NGX_DECLINED;
}
