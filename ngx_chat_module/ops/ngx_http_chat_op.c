/*
 * Copyright (C) ngx_chat_module authors
 *
 * What every operation shares: how its outcome is told.
 */


#include "ngx_http_chat_op.h"


ngx_uint_t  ngx_http_chat_ops_exited;


void
ngx_http_chat_op_tell(ngx_int_t rc, json_t *answer, ngx_uint_t created,
    ngx_http_chat_op_told_t *told)
{
    json_t  *c, *m;

    ngx_memzero(told, sizeof(ngx_http_chat_op_told_t));

    switch (rc) {

    case NGX_OK:
    case NGX_DONE:
        if (answer == NULL) {
            break;      /* no memory for it */
        }

        told->status = (rc == NGX_OK && created) ? NGX_HTTP_CREATED
                                                 : NGX_HTTP_OK;
        told->answer = answer;
        return;

    case NGX_DECLINED:
        json_decref(answer);
        told->status = NGX_HTTP_NOT_FOUND;
        told->code = "not_found";
        told->message = "no such chat, message or user";
        return;

    case NGX_BUSY:
        /* a refusal the store explained with {code, message, details?} */
        told->status = NGX_HTTP_FORBIDDEN;
        told->code = "blocked";
        told->message = "one of you blocked the other";

        c = json_object_get(answer, "code");
        m = json_object_get(answer, "message");

        if (json_is_string(c) && json_is_string(m)) {
            told->code = json_string_value(c);
            told->message = json_string_value(m);
        }

        /* a refusal with a status of its own (a site's message filter) */
        if (json_is_integer(json_object_get(answer, "status"))) {
            told->status = json_integer_value(json_object_get(answer,
                                                              "status"));
        }

        /* a rate limit's (chat_send_rate): Retry-After, retryAfter */
        if (json_is_integer(json_object_get(answer, "retryAfter"))) {
            told->retry_after = (ngx_uint_t) json_integer_value(
                                    json_object_get(answer, "retryAfter"));
        }

        told->details = json_incref(json_object_get(answer, "details"));
        told->keep = answer;
        return;

    case NGX_ABORT:
        told->status = NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY;
        told->code = "invalid_value";
        told->message = "a value does not refer to what it must";
        told->details = answer;
        return;

    default:
        break;
    }

    json_decref(answer);
    told->status = NGX_HTTP_SERVICE_UNAVAILABLE;
    told->code = "service_unavailable";
    told->message = "a back end is unavailable, try again shortly";
}


ngx_int_t
ngx_http_chat_op_invalid(ngx_http_chat_op_refused_t *refused,
    const char *field, const char *err)
{
    refused->field = field;
    refused->err = err;

    return NGX_DECLINED;
}


json_t *
ngx_http_chat_op_envelope(ngx_http_chat_op_told_t *told)
{
    json_t  *json;

    json = json_pack("{s:{s:s,s:s}}", "error", "code", told->code,
                     "message", told->message);

    if (json && told->details) {
        json_object_set(json_object_get(json, "error"), "details",
                        told->details);
    }

    /* on sockets as the per-socket limits say it (ngx_http_chat_rt_limit) */
    if (json && told->retry_after) {
        json_object_set_new(json_object_get(json, "error"), "retryAfter",
                            json_integer((json_int_t) told->retry_after));
    }

    return json;
}
