/*
 * Copyright (C) ngx_chat_module authors
 *
 * The signature of an HS256, HS384 or HS512 token, checked here rather
 * than by libjwt: its decode parsed the token's JSON a second time and
 * fetched the digest and keyed the HMAC for every token, about a tenth
 * of a worker's CPU in a storm of sign-ins.  The key is set once per
 * process in a context that each check copies.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include "ngx_http_chat_jwt.h"


typedef struct {
    EVP_MAC_CTX   *ctx;         /* keyed, never finalized: copied */
    const char    *digest;
    u_char        *key;         /* a copy: a new cycle may reuse its address */
    size_t         key_len;
} ngx_http_chat_jwt_hmac_t;


static EVP_MAC_CTX *ngx_http_chat_jwt_hmac_keyed(const char *digest,
    ngx_str_t *key, ngx_log_t *log);


static ngx_http_chat_jwt_hmac_t  ngx_http_chat_jwt_hmac;


ngx_int_t
ngx_http_chat_jwt_hmac_verify(const char *digest, ngx_str_t *key,
    ngx_str_t *signed_part, ngx_str_t *sig, ngx_log_t *log)
{
    int           ok;
    size_t        len;
    u_char        md[EVP_MAX_MD_SIZE];
    u_char        enc[ngx_base64_encoded_length(EVP_MAX_MD_SIZE)];
    ngx_str_t     src, dst;
    EVP_MAC_CTX  *keyed, *ctx;

    keyed = ngx_http_chat_jwt_hmac_keyed(digest, key, log);
    if (keyed == NULL) {
        return NGX_ERROR;
    }

    ctx = EVP_MAC_CTX_dup(keyed);

    ok = ctx != NULL
         && EVP_MAC_update(ctx, signed_part->data, signed_part->len)
         && EVP_MAC_final(ctx, md, &len, sizeof(md));

    EVP_MAC_CTX_free(ctx);

    if (!ok) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "chat jwt: HMAC-%s of a token failed", digest);
        ERR_clear_error();
        return NGX_ERROR;
    }

    /* compared as libjwt did: the canonical base64url of the HMAC */

    src.data = md;
    src.len = len;
    dst.data = enc;

    ngx_encode_base64url(&dst, &src);

    if (dst.len != sig->len
        || CRYPTO_memcmp(dst.data, sig->data, dst.len) != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static EVP_MAC_CTX *
ngx_http_chat_jwt_hmac_keyed(const char *digest, ngx_str_t *key,
    ngx_log_t *log)
{
    u_char                    *copy;
    EVP_MAC                   *mac;
    OSSL_PARAM                 params[2];
    EVP_MAC_CTX               *ctx;
    ngx_http_chat_jwt_hmac_t  *h;

    h = &ngx_http_chat_jwt_hmac;

    if (h->ctx != NULL
        && h->digest == digest
        && h->key_len == key->len
        && ngx_memcmp(h->key, key->data, key->len) == 0)
    {
        return h->ctx;
    }

    copy = ngx_alloc(key->len, log);
    if (copy == NULL) {
        return NULL;
    }

    ngx_memcpy(copy, key->data, key->len);

    mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    ctx = (mac != NULL) ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) digest, 0);
    params[1] = OSSL_PARAM_construct_end();

    if (ctx == NULL || !EVP_MAC_init(ctx, key->data, key->len, params)) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "chat jwt: HMAC-%s could not be keyed", digest);
        EVP_MAC_CTX_free(ctx);
        ngx_free(copy);
        ERR_clear_error();
        return NULL;
    }

    EVP_MAC_CTX_free(h->ctx);

    if (h->key) {
        ngx_explicit_memzero(h->key, h->key_len);
        ngx_free(h->key);
    }

    h->ctx = ctx;
    h->digest = digest;
    h->key = copy;
    h->key_len = key->len;

    return ctx;
}
