/*
 * Copyright (C) ngx_chat_module authors
 *
 * The call events of the chat endpoint (both codecs): each calls its
 * operation (ops/ngx_http_chat_op_call.c) with the socket's own id, so
 * that what is meant for one device (the media's signalling) reaches
 * that socket alone through its "sock:" channel.  A socket in a call
 * notes it: when the socket goes, the call hears of it after the grace.
 */


#include "ngx_http_chat_rt.h"
#include "../ops/ngx_http_chat_op_call.h"


static void
ngx_http_chat_rt_call_start(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id, ngx_uint_t what, const char *event)
{
    char                         sock[NGX_HTTP_CHAT_RT_ID_LEN + 1];
    ngx_int_t                    rc;
    bson_oid_t                   me;
    ngx_http_chat_rt_op_t       *op;
    ngx_http_chat_op_store_t    *store;
    ngx_http_chat_op_refused_t   refused;

    /* before the call's events can name it */
    if (ngx_http_chat_rt_join_sock(s) != NGX_OK) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    op = ngx_http_chat_rt_op_new(s, id);
    if (op == NULL) {
        ngx_http_chat_rt_error(s, id, "internal_error", "out of memory");
        return;
    }

    ngx_http_chat_rt_op_call(op);
    ngx_http_chat_rt_me(s, &me);

    ngx_memcpy(sock, s->sock, NGX_HTTP_CHAT_RT_ID_LEN);
    sock[NGX_HTTP_CHAT_RT_ID_LEN] = '\0';

    if (what == NGX_HTTP_CHAT_CALL_INITIATE) {
        rc = ngx_http_chat_op_call_initiate(&me, data, sock,
                                            ngx_http_chat_rt_op_answered, op,
                                            &store, &refused);

    } else {
        rc = ngx_http_chat_op_call(&me, what, NULL, data, sock, event,
                                   ngx_http_chat_rt_op_answered, op, &store,
                                   &refused);
    }

    ngx_http_chat_rt_op_started(s, op, rc, refused.field, refused.err);

    if (rc != NGX_OK) {
        json_decref(refused.details);
    }
}


void
ngx_http_chat_rt_call_initiate(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_call_start(s, data, id, NGX_HTTP_CHAT_CALL_INITIATE,
                                NULL);
}


void
ngx_http_chat_rt_call_accept(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_call_start(s, data, id, NGX_HTTP_CHAT_CALL_ACCEPT, NULL);
}


void
ngx_http_chat_rt_call_reject(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_call_start(s, data, id, NGX_HTTP_CHAT_CALL_REJECT, NULL);
}


void
ngx_http_chat_rt_call_cancel(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_call_start(s, data, id, NGX_HTTP_CHAT_CALL_CANCEL, NULL);
}


void
ngx_http_chat_rt_call_end(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_call_start(s, data, id, NGX_HTTP_CHAT_CALL_END, NULL);
}


void
ngx_http_chat_rt_call_join(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_call_start(s, data, id, NGX_HTTP_CHAT_CALL_JOIN, NULL);
}


void
ngx_http_chat_rt_call_leave(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_call_start(s, data, id, NGX_HTTP_CHAT_CALL_LEAVE, NULL);
}


void
ngx_http_chat_rt_call_offer(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_call_start(s, data, id, NGX_HTTP_CHAT_CALL_SIGNAL,
                                "webrtc_offer");
}


void
ngx_http_chat_rt_call_answer(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_call_start(s, data, id, NGX_HTTP_CHAT_CALL_SIGNAL,
                                "webrtc_answer");
}


void
ngx_http_chat_rt_call_ice(ngx_http_chat_rt_session_t *s, json_t *data,
    json_t *id)
{
    ngx_http_chat_rt_call_start(s, data, id, NGX_HTTP_CHAT_CALL_SIGNAL,
                                "webrtc_ice_candidate");
}


/*
 * A call's answer to this socket: the call it is now this user's device
 * in (the caller's, or one accepted), or none once it is over
 */
void
ngx_http_chat_rt_call_noted(ngx_http_chat_rt_session_t *s, ngx_int_t rc,
    json_t *answer)
{
    size_t      i;
    json_t     *call, *p, *v;
    ngx_str_t   cid, status, user, state;

    if (rc != NGX_OK) {
        return;
    }

    call = json_object_get(answer, "call");

    if (call == NULL) {
        /* a signal: {callId}, sent from the device in the call */
        if (ngx_http_chat_rt_str_field(answer, "callId", &cid) == NGX_OK
            && cid.len == NGX_HTTP_CHAT_RT_ID_LEN)
        {
            ngx_memcpy(s->call, cid.data, NGX_HTTP_CHAT_RT_ID_LEN);
        }

        return;
    }

    if (ngx_http_chat_rt_str_field(call, "id", &cid) != NGX_OK
        || cid.len != NGX_HTTP_CHAT_RT_ID_LEN
        || ngx_http_chat_rt_str_field(call, "status", &status) != NGX_OK)
    {
        return;
    }

    if (!(status.len == 7 && ngx_strncmp(status.data, "ringing", 7) == 0)
        && !(status.len == 8 && ngx_strncmp(status.data, "answered", 8) == 0))
    {
        if (ngx_strncmp(s->call, cid.data, NGX_HTTP_CHAT_RT_ID_LEN) == 0) {
            ngx_memzero(s->call, NGX_HTTP_CHAT_RT_ID_LEN);
        }

        return;
    }

    json_array_foreach(json_object_get(call, "participants"), i, p) {
        v = json_object_get(p, "userId");

        if (ngx_http_chat_rt_str_field(p, "userId", &user) != NGX_OK
            || v == NULL
            || user.len != NGX_HTTP_CHAT_RT_ID_LEN
            || ngx_strncmp(user.data, s->user, NGX_HTTP_CHAT_RT_ID_LEN) != 0
            || ngx_http_chat_rt_str_field(p, "state", &state) != NGX_OK)
        {
            continue;
        }

        if ((state.len == 6 && ngx_strncmp(state.data, "caller", 6) == 0)
            || (state.len == 8
                && ngx_strncmp(state.data, "accepted", 8) == 0))
        {
            ngx_memcpy(s->call, cid.data, NGX_HTTP_CHAT_RT_ID_LEN);
        }
    }
}


/* the socket goes: if it was its user's device in a call, the grace */
void
ngx_http_chat_rt_call_gone(ngx_http_chat_rt_session_t *s)
{
    char        sock[NGX_HTTP_CHAT_RT_ID_LEN + 1];
    char        call[NGX_HTTP_CHAT_RT_ID_LEN + 1];
    bson_oid_t  me, id;

    if (s->call[0] == '\0' || s->sock[0] == '\0' || !s->authenticated) {
        return;
    }

    ngx_memcpy(call, s->call, NGX_HTTP_CHAT_RT_ID_LEN);
    call[NGX_HTTP_CHAT_RT_ID_LEN] = '\0';
    ngx_memcpy(sock, s->sock, NGX_HTTP_CHAT_RT_ID_LEN);
    sock[NGX_HTTP_CHAT_RT_ID_LEN] = '\0';

    if (!bson_oid_is_valid(call, NGX_HTTP_CHAT_RT_ID_LEN)) {
        return;
    }

    bson_oid_init_from_string(&id, call);
    ngx_http_chat_rt_me(s, &me);

    ngx_http_chat_op_call_gone(&me, &id, sock);
}
