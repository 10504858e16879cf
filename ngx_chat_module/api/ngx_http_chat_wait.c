/*
 * Copyright (C) ngx_chat_module authors
 *
 * A REST route waiting for a store operation (ngx_http_chat_wait.h).
 */


#include "ngx_http_chat_wait.h"
#include "../core/ngx_http_chat_async.h"


static void ngx_http_chat_store_detach(void *op);


ngx_http_chat_store_wait_t *
ngx_http_chat_store_wait(ngx_http_request_t *r, ngx_http_chat_op_tell_pt tell)
{
    ngx_http_chat_store_wait_t  *st;

    st = ngx_http_chat_wait(r, ngx_http_chat_store_detach);
    if (st == NULL) {
        return NULL;
    }

    st->tell = (void *) tell;

    return st;
}


ngx_http_chat_store_wait_t *
ngx_http_chat_user_wait(ngx_http_request_t *r, ngx_uint_t kind)
{
    ngx_http_chat_store_wait_t  *st;

    /* no tell: ngx_http_chat_op_user_tell(kind) */
    st = ngx_http_chat_store_wait(r, NULL);

    if (st) {
        st->kind = kind;
    }

    return st;
}


static void
ngx_http_chat_store_detach(void *op)
{
    ngx_http_chat_op_store_detach(op);
}


ngx_int_t
ngx_http_chat_op_started(ngx_http_request_t *r,
    ngx_http_chat_store_wait_t *st, ngx_int_t rc,
    ngx_http_chat_op_refused_t *refused)
{
    return ngx_http_chat_store_started(r, st, rc, refused->field,
                                       refused->err, refused->details);
}


ngx_int_t
ngx_http_chat_store_started(ngx_http_request_t *r,
    ngx_http_chat_store_wait_t *st, ngx_int_t rc, const char *field,
    const char *err, json_t *details)
{
    switch (rc) {

    case NGX_OK:
        return ngx_http_chat_wait_started(r, st);

    case NGX_DECLINED:
        if (err == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_chat_send_invalid(r, field, err);

    case NGX_ABORT:
        return ngx_http_chat_send_error_details(r,
                                            NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY,
                                            field, err, details);

    case NGX_BUSY:
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such user");

    default:
        return ngx_http_chat_send_unavailable(r);
    }
}


void
ngx_http_chat_store_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_store_wait_t  *st = data;

    ngx_http_request_t        *r;
    ngx_http_chat_op_told_t    told;
    ngx_http_chat_op_tell_pt   tell;

    r = ngx_http_chat_wait_over(st);

    tell = (ngx_http_chat_op_tell_pt) st->tell;

    if (tell) {
        tell(rc, answer, r->method == NGX_HTTP_POST, &told);

    } else {
        ngx_http_chat_op_user_tell(st->kind, rc, answer, &told);

        /* a user shown (a contact added) is online as Redis says */
        if (told.answer) {
            ngx_http_chat_wait_end(r,
                                   ngx_http_chat_send_json_online(r,
                                       told.status, told.answer));
            return;
        }
    }

    ngx_http_chat_wait_end(r, ngx_http_chat_told_send(r, &told, error));
}


ngx_int_t
ngx_http_chat_told_send(ngx_http_request_t *r, ngx_http_chat_op_told_t *told,
    const char *error)
{
    ngx_str_t  v;
    ngx_int_t  ret;

    if (told->answer) {
        return ngx_http_chat_send_json(r, told->status, told->answer);
    }

    if (told->code == NULL) {
        /* no memory for the answer: the transport's own failure */
        return told->status;
    }

    if (told->status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: operation failed: %s", error);
    }

    if (told->retry_after) {
        v.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (v.data == NULL) {
            json_decref(told->details);
            json_decref(told->keep);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        v.len = ngx_sprintf(v.data, "%ui", told->retry_after) - v.data;

        if (ngx_http_chat_add_header(r, "Retry-After", &v) != NGX_OK) {
            json_decref(told->details);
            json_decref(told->keep);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ret = ngx_http_chat_send_error_details(r, told->status, told->code,
                                           told->message, told->details);
    json_decref(told->keep);

    return ret;
}


ngx_http_chat_wait_t *
ngx_http_chat_read_wait(ngx_http_request_t *r,
    ngx_http_chat_wait_detach_pt detach, const char *what)
{
    ngx_http_chat_wait_t  *w;

    w = ngx_http_chat_wait(r, detach);
    if (w == NULL) {
        return NULL;
    }

    w->tell = (void *) what;

    return w;
}


void
ngx_http_chat_read_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_wait_t  *w = data;

    ngx_int_t            ret;
    ngx_http_request_t  *r;

    r = ngx_http_chat_wait_over(w);

    if ((rc == NGX_OK || rc == NGX_DONE) && answer) {
        ret = ngx_http_chat_send_json(r, NGX_HTTP_OK, answer);

    } else {
        json_decref(answer);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: cannot read %s: %s", (char *) w->tell, error);
        ret = ngx_http_chat_send_unavailable(r);
    }

    ngx_http_chat_wait_end(r, ret);
}
