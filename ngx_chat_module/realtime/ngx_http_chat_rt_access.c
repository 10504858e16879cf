/*
 * Copyright (C) ngx_chat_module authors
 *
 * What a socket may still do once it is signed in.  Access is taken
 * away from live sockets in three ways:
 *
 *   - a revoked session (logout, a device removed, a reused refresh
 *     token) is published as 'r' on its user's channel, and its sockets
 *     close (ngx_http_chat_rt_revoked);
 *   - the access token ends: the socket gets "token_expired" at its exp
 *     and may send "authenticate" with a fresh token of the same session;
 *     if not, it closes chat_jwt_leeway later (4001), when REST would
 *     refuse the token too;
 *   - when the subscriber connection to Redis comes back, what was
 *     published meanwhile is lost: every socket here gets "resync", its
 *     session is checked again (Redis, or MongoDB when Redis lost it),
 *     and its chats are read again
 *     (a member removed meanwhile stops receiving).
 */


#include "ngx_http_chat_rt.h"
#include "ngx_http_chat_sio.h"
#include "../auth/ngx_http_chat_jwt.h"
#include "../auth/ngx_http_chat_auth.h"


#define NGX_HTTP_CHAT_RT_TOKEN_EXPIRED  4001      /* close code */
#define NGX_HTTP_CHAT_RT_EXPIRY_MAX     86400     /* s: timers re-armed */


typedef struct {
    ngx_queue_t                   queue;     /* in the session's checks */
    ngx_http_chat_rt_session_t   *session;   /* NULL once it left */
    ngx_http_chat_rt_checked_pt   handler;
    void                         *data;
} ngx_http_chat_rt_check_t;


static void ngx_http_chat_rt_checked(void *data, ngx_int_t rc);
static void ngx_http_chat_rt_rechecked(ngx_http_chat_rt_session_t *s,
    void *data, ngx_int_t rc);
static void ngx_http_chat_rt_chats_read(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);


void
ngx_http_chat_rt_access_init(ngx_http_chat_rt_session_t *s)
{
    ngx_queue_init(&s->checks);
}


/* the session goes: its checks answer nobody */
void
ngx_http_chat_rt_access_free(ngx_http_chat_rt_session_t *s)
{
    ngx_queue_t               *q;
    ngx_http_chat_rt_check_t  *chk;

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    while (!ngx_queue_empty(&s->checks)) {
        q = ngx_queue_head(&s->checks);
        chk = ngx_queue_data(q, ngx_http_chat_rt_check_t, queue);
        ngx_queue_remove(q);
        chk->session = NULL;
    }
}


/*
 * The claims of a token, checked as the API's gate checks them (but not
 * its revocation, which needs Redis): NGX_OK, or NGX_DECLINED with
 * *reason, or NGX_ERROR.
 */
ngx_int_t
ngx_http_chat_rt_claims(ngx_http_chat_rt_session_t *s, ngx_str_t *token,
    ngx_http_chat_rt_claims_t *claims, const char **reason)
{
    ngx_int_t                   rc;
    ngx_pool_t                 *pool;
    ngx_http_chat_token_t       tok;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = s->main_conf[ngx_http_chat_module.ctx_index];

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        *reason = "out of memory";
        return NGX_ERROR;
    }

    rc = ngx_http_chat_jwt_verify(cmcf, pool, token, &tok, reason);

    if (rc == NGX_OK) {
        if (!ngx_http_chat_is_oid(&tok.sub)
            || tok.sid.len != NGX_HTTP_CHAT_RT_ID_LEN
            || tok.jti.len > sizeof(claims->jti))
        {
            *reason = "malformed token";
            rc = NGX_DECLINED;

        } else {
            ngx_memcpy(claims->sub, tok.sub.data, NGX_HTTP_CHAT_RT_ID_LEN);
            ngx_memcpy(claims->sid, tok.sid.data, NGX_HTTP_CHAT_RT_ID_LEN);
            ngx_memcpy(claims->jti, tok.jti.data, tok.jti.len);
            claims->jti_len = tok.jti.len;
            claims->exp = tok.exp;
        }

    } else if (rc == NGX_ERROR) {
        *reason = "the token could not be read";
    }

    ngx_destroy_pool(pool);

    return rc;
}


/* the socket's token is known (again): "token_expired" at its exp */
void
ngx_http_chat_rt_access_arm(ngx_http_chat_rt_session_t *s)
{
    time_t  now, left;

    if (!s->authenticated) {
        /* the timer is the sign-in's deadline still */
        return;
    }

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    s->expired = 0;

    if (s->token_exp == 0) {
        return;
    }

    now = ngx_time();
    left = s->token_exp - now;

    if (left > NGX_HTTP_CHAT_RT_EXPIRY_MAX) {
        left = NGX_HTTP_CHAT_RT_EXPIRY_MAX;
    }

    ngx_add_timer(&s->timer, left > 0 ? (ngx_msec_t) left * 1000 : 1);
}


void
ngx_http_chat_rt_access_expired(ngx_event_t *ev)
{
    time_t                       leeway;
    ngx_http_chat_ws_t          *ws;
    ngx_http_chat_main_conf_t   *cmcf;
    ngx_http_chat_rt_session_t  *s;

    s = ev->data;
    ws = s->ws;

    if (ws->close_sent || ws->destroy) {
        return;
    }

    if (s->expired) {
        /* no fresh token in the grace: REST refuses it now too */
        ngx_http_chat_rt_revoked(s, NGX_HTTP_CHAT_RT_TOKEN_EXPIRED,
                                 "token expired");
        return;
    }

    if (ngx_time() < s->token_exp) {
        /* a long-lived token: the timer was capped */
        ngx_http_chat_rt_access_arm(s);
        return;
    }

    cmcf = s->main_conf[ngx_http_chat_module.ctx_index];
    leeway = cmcf->jwt_leeway > 0 ? cmcf->jwt_leeway : 0;

    s->expired = 1;


    ngx_http_chat_rt_emit(s, "token_expired",
                          json_pack("{s:s,s:s,s:I}",
                                    "code", "token_expired",
                                    "message", "the access token expired: "
                                    "send \"authenticate\" with a fresh one",
                                    "closesIn", (json_int_t) leeway),
                          NULL);

    if (!ws->close_sent && !ws->destroy) {
        ngx_add_timer(&s->timer, leeway ? (ngx_msec_t) leeway * 1000 : 1);
    }

}


/*
 * The one way a socket loses its access: a Socket.IO socket is told
 * DISCONNECT (the client does not reconnect by itself), then the socket
 * closes with code and reason.  The caller told it why first.
 */
void
ngx_http_chat_rt_revoked(ngx_http_chat_rt_session_t *s, ngx_uint_t code,
    const char *reason)
{
    ngx_http_chat_ws_t  *ws;

    ws = s->ws;


    if (s->sio && !ws->close_sent && !ws->destroy) {
        (void) ngx_http_chat_ws_send(ws, NGX_HTTP_CHAT_WS_TEXT,
                                     (u_char *) "41", 2);
    }

    ngx_http_chat_ws_close(ws, code, reason);

}


/*
 * Asks whether the socket's session still stands, as the gate does
 * (Redis, MongoDB on a miss): handler gets NGX_OK, NGX_DECLINED (revoked,
 * gone, or another user's) or NGX_ERROR (no answer).  NGX_OK: the handler
 * will be called; otherwise it will not.
 */
ngx_int_t
ngx_http_chat_rt_access_check(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_checked_pt handler, void *data)
{
    ngx_str_t                  uid;
    ngx_http_chat_rt_check_t  *chk;

    if (s->session_id.len != NGX_HTTP_CHAT_RT_ID_LEN) {
        return NGX_ERROR;
    }

    chk = ngx_alloc(sizeof(ngx_http_chat_rt_check_t), ngx_cycle->log);
    if (chk == NULL) {
        return NGX_ERROR;
    }

    chk->session = s;
    chk->handler = handler;
    chk->data = data;

    uid.data = (u_char *) s->user;
    uid.len = NGX_HTTP_CHAT_RT_ID_LEN;

    if (ngx_http_chat_session_check(&s->session_id, &uid, NULL,
                                    ngx_http_chat_rt_checked, chk)
        != NGX_OK)
    {
        ngx_free(chk);
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(&s->checks, &chk->queue);

    return NGX_OK;
}


static void
ngx_http_chat_rt_checked(void *data, ngx_int_t rc)
{
    ngx_http_chat_rt_check_t    *chk;
    ngx_http_chat_rt_session_t  *s;

    chk = data;
    s = chk->session;

    if (s == NULL) {
        chk->handler(NULL, chk->data, NGX_ERROR);
        ngx_free(chk);
        return;
    }

    ngx_queue_remove(&chk->queue);

    if (rc != NGX_OK && rc != NGX_DECLINED) {
        rc = NGX_ERROR;
    }

    chk->handler(s, chk->data, rc);

    ngx_free(chk);
}


/*
 * The subscriber connection is (again) up: what was published while it
 * was down never came.  Every socket here is told to resync, and checked.
 */
void
ngx_http_chat_rt_access_reconnected(void)
{
    ngx_uint_t                   i;
    ngx_pool_t                  *pool;
    ngx_array_t                  sessions;
    ngx_http_chat_rt_session_t **sp, *s;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    if (ngx_array_init(&sessions, pool, 64, sizeof(void *)) != NGX_OK
        || ngx_http_chat_rt_sessions(&sessions) != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return;
    }

    /* none is freed under the loop: a socket goes from a posted event */
    sp = sessions.elts;

    for (i = 0; i < sessions.nelts; i++) {
        s = sp[i];

        if (s->ws->close_sent || s->ws->destroy) {
            continue;
        }

        ngx_http_chat_rt_emit(s, "resync",
                              json_pack("{s:s}", "reason", "reconnected"),
                              NULL);

        if (s->ws->close_sent || s->ws->destroy) {
            continue;
        }

        if (ngx_http_chat_rt_access_check(s, ngx_http_chat_rt_rechecked,
                                          NULL)
            != NGX_OK)
        {
            /* the command connection is not back yet: the chats still */
            ngx_http_chat_rt_rechecked(s, NULL, NGX_ERROR);
        }
    }

    ngx_destroy_pool(pool);
}


static void
ngx_http_chat_rt_rechecked(ngx_http_chat_rt_session_t *s, void *data,
    ngx_int_t rc)
{
    if (s == NULL || s->ws->close_sent || s->ws->destroy) {
        return;
    }

    if (rc == NGX_DECLINED) {
        /* its "session_revoked" was lost */
        ngx_http_chat_rt_emit(s, "session_revoked",
                              json_pack("{s:s%}", "sessionId",
                                        s->session_id.data,
                                        s->session_id.len),
                              NULL);
        ngx_http_chat_rt_revoked(s, NGX_HTTP_CHAT_WS_POLICY,
                                 "session revoked");
        return;
    }

    /* NGX_ERROR: not known now; the token's end still holds */

    /* the chats it is a member of now: removals and additions missed */
    (void) ngx_http_chat_rt_read_chat_ids(s, ngx_http_chat_rt_chats_read,
                                          NULL);
}


static void
ngx_http_chat_rt_chats_read(ngx_http_chat_rt_session_t *s, void *data,
    ngx_uint_t status, json_t *answer)
{
    if (s && status == 200) {
        ngx_http_chat_rt_keep_chats(s, json_object_get(answer, "items"));
    }

    json_decref(answer);
}
