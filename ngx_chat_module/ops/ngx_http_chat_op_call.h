/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_CALL_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_CALL_H_INCLUDED_


#include "ngx_http_chat_op_store.h"
#include "../store/ngx_http_chat_calls_store.h"


/*
 * Calls as operations: the checks of what was sent, here; one store step
 * owned by the operation (the call record's change and the events it
 * caused, published from the commit whoever waits); then the worker's
 * timers: the ringing timeout of a call started here, and the grace of a
 * device that went.  Returns as ngx_http_chat_op_store(), or NGX_DECLINED
 * / NGX_ABORT with refused.  sock: the requesting socket's id (24 hex),
 * or NULL on REST.
 */

/* body {userId | chatId, type} */
ngx_int_t ngx_http_chat_op_call_initiate(const bson_oid_t *me, json_t *body,
    const char *sock, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused);

/*
 * what: NGX_HTTP_CHAT_CALL_ACCEPT, _REJECT, _CANCEL, _END, _JOIN, _LEAVE
 * or _SIGNAL;
 * id: the call, or NULL for body's callId; signal: event is the one
 * relayed (webrtc_offer, webrtc_answer, webrtc_ice_candidate) and body
 * {callId, to, sdp | candidate}
 */
ngx_int_t ngx_http_chat_op_call(const bson_oid_t *me, ngx_uint_t what,
    const bson_oid_t *id, json_t *body, const char *sock, const char *event,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused);

/* body {rating, issues?, stats?} */
ngx_int_t ngx_http_chat_op_call_feedback(const bson_oid_t *me,
    const bson_oid_t *id, json_t *body, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out,
    ngx_http_chat_op_refused_t *refused);

/* the outcome told as on every transport */
void ngx_http_chat_op_call_tell(ngx_int_t rc, json_t *answer,
    ngx_uint_t created, ngx_http_chat_op_told_t *told);

/*
 * The socket sock, in call id as me's device, went: after chat_call_grace
 * the call ends unless me signalled from another socket meanwhile
 */
void ngx_http_chat_op_call_gone(const bson_oid_t *me, const bson_oid_t *id,
    const char *sock);

/* the timers still set when the worker exits */
void ngx_http_chat_op_call_exit_process(void);


#endif /* _NGX_HTTP_CHAT_OP_CALL_H_INCLUDED_ */
