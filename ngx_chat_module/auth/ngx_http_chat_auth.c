/*
 * Copyright (C) ngx_chat_module authors
 *
 * The access-token gate in front of every authenticated route.
 */


#include "ngx_http_chat_auth.h"
#include "ngx_http_chat_jwt.h"


typedef struct {
    ngx_int_t                  (*next)(ngx_http_request_t *r);
} ngx_http_chat_gate_t;


/*
 * 1 when the jti or the whole session was revoked, or the session is gone
 * or belongs to someone else than the token's subject
 */
static const char  ngx_http_chat_auth_check[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end "
    "local s = redis.call('HMGET', KEYS[1], 'uid', 'revoked') "
    "if s[1] ~= ARGV[1] or s[2] then return 1 end "
    "return 0";


static ngx_int_t ngx_http_chat_auth_checked(ngx_http_request_t *r,
    redisReply *reply);


static ngx_int_t
ngx_http_chat_unauthorized(ngx_http_request_t *r, const char *code,
    const char *message, ngx_uint_t invalid)
{
    ngx_str_t  v;

    if (invalid) {
        ngx_str_set(&v, "Bearer error=\"invalid_token\"");

    } else {
        ngx_str_set(&v, "Bearer");
    }

    if (ngx_http_chat_add_header(r, "WWW-Authenticate", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_error(r, NGX_HTTP_UNAUTHORIZED, code, message);
}


ngx_int_t
ngx_http_chat_authenticate(ngx_http_request_t *r,
    ngx_int_t (*next)(ngx_http_request_t *r))
{
    u_char                     *p, *last;
    ngx_str_t                   token, keys[2];
    const char                 *reason;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_gate_t       *gate;
    ngx_http_chat_token_t       tok;
    ngx_http_chat_main_conf_t  *cmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    if (r->headers_in.authorization == NULL) {
        return ngx_http_chat_unauthorized(r, "unauthorized",
                                          "an access token is required", 0);
    }

    p = r->headers_in.authorization->value.data;
    last = p + r->headers_in.authorization->value.len;

    if (last - p < 7 || ngx_strncasecmp(p, (u_char *) "Bearer ", 7) != 0) {
        return ngx_http_chat_unauthorized(r, "invalid_token",
                                          "the Authorization header must be "
                                          "\"Bearer <token>\"", 1);
    }

    for (p += 7; p < last && *p == ' '; p++) { /* void */ }

    token.data = p;
    token.len = last - p;

    if (ngx_http_chat_jwt_verify(cmcf, r->pool, &token, &tok, &reason)
        != NGX_OK)
    {
        return ngx_http_chat_unauthorized(r, "invalid_token", reason, 1);
    }

    ctx->user_id = tok.sub;
    ctx->session_id = tok.sid;
    ctx->jti = tok.jti;
    ctx->token_exp = tok.exp;

    gate = ngx_palloc(r->pool, sizeof(ngx_http_chat_gate_t));
    if (gate == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gate->next = next;
    ctx->state = gate;

    keys[0].data = ngx_pnalloc(r->pool, sizeof("sess:") + tok.sid.len);
    keys[1].data = ngx_pnalloc(r->pool, sizeof("jti:") + tok.jti.len);

    if (keys[0].data == NULL || keys[1].data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    keys[0].len = ngx_sprintf(keys[0].data, "sess:%V", &tok.sid)
                  - keys[0].data;
    keys[1].len = ngx_sprintf(keys[1].data, "jti:%V", &tok.jti)
                  - keys[1].data;

    return ngx_http_chat_redis_eval(r, ngx_http_chat_auth_check, 2, keys,
                                    1, &ctx->user_id,
                                    ngx_http_chat_auth_checked);
}


static ngx_int_t
ngx_http_chat_auth_checked(ngx_http_request_t *r, redisReply *reply)
{
    ngx_http_chat_ctx_t   *ctx;
    ngx_http_chat_gate_t  *gate;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    gate = ctx->state;
    ctx->state = NULL;

    if (reply->type != REDIS_REPLY_INTEGER) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (reply->integer != 0) {
        return ngx_http_chat_unauthorized(r, "invalid_token",
                                          "the token was revoked", 1);
    }

    return gate->next(r);
}
