/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_JWT_H_INCLUDED_
#define _NGX_HTTP_CHAT_JWT_H_INCLUDED_


#include "../ngx_http_chat_module.h"


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


#endif /* _NGX_HTTP_CHAT_JWT_H_INCLUDED_ */
