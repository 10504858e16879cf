/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_AUTH_H_INCLUDED_
#define _NGX_HTTP_CHAT_AUTH_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"
#include "../core/ngx_http_chat_async.h"
#include "../util/ngx_http_chat_text.h"


/* the route handlers under /api/auth/ */
ngx_int_t ngx_http_chat_send_otp(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_verify_otp(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_refresh_token(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_logout(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_sessions_list(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_sessions_delete(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_complete_profile(ngx_http_request_t *r);

/*
 * The access-token gate of every other route: verifies the bearer token,
 * then checks its session (ngx_http_chat_session_check); calls next on
 * success, answers 401 with WWW-Authenticate for a session revoked, gone
 * or another user's, and 503 with Retry-After while the back ends cannot
 * tell.
 */
ngx_int_t ngx_http_chat_authenticate(ngx_http_request_t *r,
    ngx_int_t (*next)(ngx_http_request_t *r));

/*
 * Whether session sid of user uid stands (and token jti, when given, was
 * not revoked on its own): Redis, or on a miss MongoDB, read once per
 * session in flight in this worker, then cached.  handler(data, rc) runs
 * once, later, with NGX_OK (live), NGX_DECLINED (revoked, gone, expired,
 * another user's) or NGX_AGAIN (a back end did not answer).  Returns
 * NGX_OK, or NGX_DECLINED (Redis not connected) / NGX_ERROR, and then the
 * handler is not called.
 */
typedef void (*ngx_http_chat_session_checked_pt)(void *data, ngx_int_t rc);

ngx_int_t ngx_http_chat_session_check(ngx_str_t *sid, ngx_str_t *uid,
    ngx_str_t *jti, ngx_http_chat_session_checked_pt handler, void *data);

/* a session was revoked: its live sockets close (every revocation) */
void ngx_http_chat_session_revoked(ngx_str_t *uid, ngx_str_t *sid);

/* issues the token pair of a new session: the JSON auth reply, in ctx */
ngx_int_t ngx_http_chat_session_tokens(ngx_http_request_t *r,
    ngx_str_t *uid, ngx_str_t *sid, ngx_str_t *refresh, json_t *reply);

/* "<session id>.<256 random bits, base64url>" and its SHA-256, hex */
ngx_int_t ngx_http_chat_refresh_new(ngx_pool_t *pool, ngx_str_t *sid,
    ngx_str_t *token, ngx_str_t *hash);
ngx_int_t ngx_http_chat_sha256_hex(ngx_pool_t *pool, ngx_str_t *in,
    ngx_str_t *out);

struct ngx_http_chat_user_arg_s;
/* the caller's user id (and a session id) as a Mongo task argument */
ngx_int_t ngx_http_chat_user_arg(ngx_http_request_t *r,
    struct ngx_http_chat_user_arg_s *arg, ngx_str_t *sid);


#endif /* _NGX_HTTP_CHAT_AUTH_H_INCLUDED_ */
