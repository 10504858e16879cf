/*
 * Copyright (C) ngx_chat_module authors
 *
 * libFuzzer target: a bearer token through ngx_http_chat_jwt_verify, the
 * check every request and socket makes: the split, the header's "alg"
 * and "typ", the signature's check, the claims (typ, iss, aud, exp,
 * iat, nbf, sub, sid, jti).
 *
 * sources: ngx_chat_module/auth/ngx_http_chat_jwt.c
 * sources: ngx_chat_module/auth/ngx_http_chat_jwt_hmac.c
 * sources: ngx_chat_module/auth/ngx_http_chat_jwt_claims.c
 * libs: -ljwt -ljansson
 *
 * The input: one byte of settings, then either a token as a client sends
 * it (bit 0 clear), or (bit 0 set) a line with the header's JSON and the
 * claims' JSON after it, which this target encodes and signs with the
 * configured HS256 secret, so that the claims' checks are reached.  Bit 1:
 * an issuer and an audience are configured.  The clock stands at
 * 1700000000 (2023-11-14T22:13:20Z) so that the seeds' times hold.
 */


#include "ngx_http_chat_fuzz.h"
#include "auth/ngx_http_chat_jwt.h"

#include <openssl/hmac.h>


#define NGX_HTTP_CHAT_FUZZ_NOW  1700000000


static u_char  ngx_http_chat_fuzz_secret[] =
    "fuzz-secret-fuzz-secret-fuzz-secret";


static ngx_int_t
ngx_http_chat_fuzz_sign(ngx_pool_t *pool, ngx_str_t *header,
    ngx_str_t *claims, ngx_str_t *token)
{
    u_char        mac[EVP_MAX_MD_SIZE];
    u_char       *p;
    ngx_str_t     part, src;
    unsigned int  mac_len;

    token->len = ngx_base64_encoded_length(header->len)
                 + ngx_base64_encoded_length(claims->len)
                 + ngx_base64_encoded_length(EVP_MAX_MD_SIZE) + 2;
    token->data = ngx_pnalloc(pool, token->len);
    if (token->data == NULL) {
        return NGX_ERROR;
    }

    p = token->data;

    part.data = p;
    ngx_encode_base64url(&part, header);
    p += part.len;
    *p++ = '.';

    part.data = p;
    ngx_encode_base64url(&part, claims);
    p += part.len;

    if (HMAC(EVP_sha256(), ngx_http_chat_fuzz_secret,
             sizeof(ngx_http_chat_fuzz_secret) - 1, token->data,
             p - token->data, mac, &mac_len)
        == NULL)
    {
        return NGX_ERROR;
    }

    *p++ = '.';

    src.data = mac;
    src.len = mac_len;
    part.data = p;
    ngx_encode_base64url(&part, &src);
    p += part.len;

    token->len = p - token->data;

    return NGX_OK;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                     *p, *last;
    ngx_log_t                  *log;
    ngx_str_t                   token, header, claims;
    ngx_int_t                   rc;
    ngx_pool_t                 *pool;
    const char                 *reason;
    ngx_http_chat_token_t       tok;
    ngx_http_chat_main_conf_t   cmcf;

    log = ngx_http_chat_fuzz_init();

    if (size < 1) {
        return 0;
    }

    ngx_cached_time->sec = NGX_HTTP_CHAT_FUZZ_NOW;

    ngx_memzero(&cmcf, sizeof(ngx_http_chat_main_conf_t));
    ngx_str_set(&cmcf.jwt_alg, "HS256");
    cmcf.jwt_secret.data = ngx_http_chat_fuzz_secret;
    cmcf.jwt_secret.len = sizeof(ngx_http_chat_fuzz_secret) - 1;
    cmcf.jwt_ttl = 900;
    cmcf.jwt_leeway = 30;

    if (data[0] & 2) {
        ngx_str_set(&cmcf.jwt_issuer, "chat");
        ngx_str_set(&cmcf.jwt_audience, "chat-clients");
    }

    pool = ngx_create_pool(4096, log);
    if (pool == NULL) {
        return 0;
    }

    p = (u_char *) data + 1;
    last = (u_char *) data + size;

    if (data[0] & 1) {
        ngx_http_chat_fuzz_line(&p, last, &header);
        claims.data = p;
        claims.len = last - p;

        if (ngx_http_chat_fuzz_sign(pool, &header, &claims, &token)
            != NGX_OK)
        {
            ngx_destroy_pool(pool);
            return 0;
        }

    } else {
        /* a copy of its own: ASan sees a read past its end */
        token.len = last - p;
        token.data = ngx_pnalloc(pool, token.len ? token.len : 1);
        if (token.data == NULL) {
            ngx_destroy_pool(pool);
            return 0;
        }

        ngx_memcpy(token.data, p, token.len);
    }

    reason = NULL;

    rc = ngx_http_chat_jwt_verify(&cmcf, pool, &token, &tok, &reason);

    if (rc == NGX_OK
        && (tok.sub.len != 24 || tok.sid.len != 24 || tok.jti.len == 0))
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "fuzz: a token accepted with sub \"%V\" sid \"%V\"",
                      &tok.sub, &tok.sid);
    }

    if (rc == NGX_DECLINED && reason == NULL) {
        ngx_log_error(NGX_LOG_EMERG, log, 0, "fuzz: refused for no reason");
    }

    ngx_destroy_pool(pool);

    return 0;
}
