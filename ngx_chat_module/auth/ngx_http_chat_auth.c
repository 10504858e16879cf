/*
 * Copyright (C) ngx_chat_module authors
 *
 * The access-token gate in front of every authenticated route.
 */


#include "ngx_http_chat_auth.h"
#include "ngx_http_chat_jwt.h"


/* heap memory: the check may answer after the request left */
typedef struct {
    ngx_http_request_t          *request;   /* NULL once it left */
    ngx_http_cleanup_t          *cleanup;
    ngx_int_t                  (*next)(ngx_http_request_t *r);
} ngx_http_chat_gate_t;


static void ngx_http_chat_auth_checked(void *data, ngx_int_t rc);
static void ngx_http_chat_auth_gone(void *data);
static ngx_int_t ngx_http_chat_auth_unavailable(ngx_http_request_t *r);


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
    ngx_int_t                   rc;
    ngx_str_t                   token;
    const char                 *reason;
    ngx_http_cleanup_t         *cln;
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

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gate = ngx_alloc(sizeof(ngx_http_chat_gate_t), r->connection->log);
    if (gate == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gate->request = r;
    gate->cleanup = cln;
    gate->next = next;

    rc = ngx_http_chat_session_check(&tok.sid, &tok.sub, &tok.jti,
                                     ngx_http_chat_auth_checked, gate);
    if (rc != NGX_OK) {
        ngx_free(gate);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "chat: redis is not connected, access not checked");

        return ngx_http_chat_auth_unavailable(r);
    }

    cln->handler = ngx_http_chat_auth_gone;
    cln->data = gate;

    r->main->count++;
    ngx_http_chat_store_begin(r);

    return NGX_DONE;
}


static void
ngx_http_chat_auth_gone(void *data)
{
    ngx_http_chat_gate_t  *gate = data;

    /* the check still answers; it frees gate */
    gate->request = NULL;
}


static void
ngx_http_chat_auth_checked(void *data, ngx_int_t rc)
{
    ngx_http_chat_gate_t  *gate = data;

    ngx_int_t            (*next)(ngx_http_request_t *r);
    ngx_connection_t      *c;
    ngx_http_request_t    *r;

    r = gate->request;
    next = gate->next;

    if (r) {
        gate->cleanup->handler = NULL;
    }

    ngx_free(gate);

    if (r == NULL) {
        return;
    }

    c = r->connection;

    ngx_http_chat_store_end(r);

    if (rc == NGX_OK) {
        rc = next(r);

    } else if (rc == NGX_DECLINED) {
        rc = ngx_http_chat_unauthorized(r, "invalid_token",
                                        "the token was revoked", 1);

    } else {
        rc = ngx_http_chat_auth_unavailable(r);
    }

    ngx_http_chat_finalize(r, rc);
    ngx_http_run_posted_requests(c);
}


/* nothing says the session is revoked: the client keeps its tokens */

static ngx_int_t
ngx_http_chat_auth_unavailable(ngx_http_request_t *r)
{
    ngx_str_t  v;

    ngx_str_set(&v, "1");

    if (ngx_http_chat_add_header(r, "Retry-After", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "service_unavailable",
                                    "a back end is unavailable, "
                                    "try again shortly");
}
