/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_SESSION_OP_H_INCLUDED_
#define _NGX_HTTP_CHAT_SESSION_OP_H_INCLUDED_


#include "ngx_http_chat_auth.h"
#include "../core/ngx_http_chat_work.h"
#include "../store/ngx_http_chat_users.h"


/*
 * The session operations, transport-neutral: a logout, a device removed,
 * a refresh-token rotation (whose reuse revokes).  Each takes copies of
 * its inputs and runs its steps on nobody's behalf: the session document
 * in MongoDB (the record), then, for a revocation, the Redis cache
 * (sess:<id> and the token's jti:<id>) and the session's live sockets
 * (ngx_http_chat_session_revoked()), to the end whether or not anybody
 * still waits.  A requester that leaves detaches and loses only the
 * answer.  An exiting worker waits for them.
 *
 * done(data, rc, uid): uid, the session's user (24 hex digits), or NULL.
 * A revocation: NGX_OK revoked, or already revoked in the record (the
 * retry of one whose cache step failed: the cache and the sockets are
 * told again); NGX_DECLINED no such session of the user (a device
 * removed); NGX_ERROR a back end failed (a logout still
 * revokes in the cache and closes the sockets: the client is told to try
 * again so that the record gets it too).  A rotation: NGX_OK rotated;
 * NGX_DECLINED the token is not valid; NGX_BUSY a rotated-away token came
 * back, the session is revoked (again for every later try with it: the
 * cache and the sockets are told each time); NGX_ERROR a back end failed.
 */

typedef struct ngx_http_chat_session_op_s  ngx_http_chat_session_op_t;

typedef void (*ngx_http_chat_session_op_done_pt)(void *data, ngx_int_t rc,
    ngx_str_t *uid);


/* a revocation: jti and exp, the access token's (logout), or NULL and 0 */
#define NGX_HTTP_CHAT_SESSION_OP_LOGOUT  0
#define NGX_HTTP_CHAT_SESSION_OP_REMOVE  1

/*
 * NGX_OK: started, done() will be called, never before this returns;
 * NGX_ERROR: it could not start (MongoDB, memory), done() is not called
 */
ngx_int_t ngx_http_chat_session_op_revoke(ngx_uint_t kind, ngx_str_t *uid,
    ngx_str_t *sid, ngx_str_t *jti, time_t exp,
    ngx_http_chat_session_op_done_pt done, void *data,
    ngx_http_chat_session_op_t **out);
/* the same; arg names the session and both hashes */
ngx_int_t ngx_http_chat_session_op_rotate(ngx_http_chat_rotate_arg_t *arg,
    ngx_http_chat_session_op_done_pt done, void *data,
    ngx_http_chat_session_op_t **out);
/* nobody waits any more: done() is not called */
void ngx_http_chat_session_op_detach(void *op);

/* what never finished when the worker exits */
void ngx_http_chat_session_op_exit_process(void);


#endif /* _NGX_HTTP_CHAT_SESSION_OP_H_INCLUDED_ */
