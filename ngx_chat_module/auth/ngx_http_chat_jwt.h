/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_JWT_H_INCLUDED_
#define _NGX_HTTP_CHAT_JWT_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/* the claims of a verified access token, strings in the request's pool */
typedef struct {
    ngx_str_t     sub;        /* user id, 24 hex */
    ngx_str_t     sid;        /* session id, 24 hex */
    ngx_str_t     jti;        /* token id */
    time_t        iat;
    time_t        exp;
} ngx_http_chat_token_t;


/*
 * Issues an access token for user sub in session sid: the configured
 * algorithm and key, claims sub, sid, iat, exp (now + chat_jwt_ttl),
 * jti (128 random bits, hex), iss and aud when configured, typ "access".
 * The token (NUL-terminated) and its jti are allocated from pool.
 */
ngx_int_t ngx_http_chat_jwt_issue(ngx_http_chat_main_conf_t *cmcf,
    ngx_pool_t *pool, ngx_str_t *sub, ngx_str_t *sid, ngx_str_t *token,
    ngx_str_t *jti, time_t *exp);

/*
 * Verifies a compact JWS: the header's "alg" must be exactly the
 * configured one (no "none", no HS/RS confusion), the signature valid,
 * typ "access", iss/aud equal to the configured ones when set, exp and iat
 * checked with a clock skew of chat_jwt_leeway.  Returns NGX_OK and fills
 * tok, or NGX_DECLINED with *reason set to a static sentence.
 */
ngx_int_t ngx_http_chat_jwt_verify(ngx_http_chat_main_conf_t *cmcf,
    ngx_pool_t *pool, ngx_str_t *token, ngx_http_chat_token_t *tok,
    const char **reason);

/*
 * ngx_http_chat_jwt_hmac.c: NGX_OK when sig is the base64url of the
 * HMAC (digest "SHA256", "SHA384" or "SHA512") of signed_part with key,
 * NGX_DECLINED when it is not, NGX_ERROR when it could not be computed.
 */
ngx_int_t ngx_http_chat_jwt_hmac_verify(const char *digest, ngx_str_t *key,
    ngx_str_t *signed_part, ngx_str_t *sig, ngx_log_t *log);

/*
 * Configuration-time check of the key material of the configured
 * algorithm, for the main conf's init once chat_jwt_* are set: PEM keys
 * must parse without a passphrase (OpenSSL would otherwise prompt on the
 * terminal at signing time), be of the algorithm's type (RSA of 2048 bits
 * or more; EC on P-256, P-384, P-521 for ES256, ES384, ES512), and the
 * public key must be the private key's.  Logs and returns NGX_ERROR if not.
 */
ngx_int_t ngx_http_chat_jwt_check_keys(ngx_conf_t *cf,
    ngx_http_chat_main_conf_t *cmcf);


#endif /* _NGX_HTTP_CHAT_JWT_H_INCLUDED_ */
