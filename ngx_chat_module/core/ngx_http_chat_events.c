/*
 * Copyright (C) ngx_chat_module authors
 *
 * The event interface between the floors (ngx_http_chat_events.h).
 */


#include "ngx_http_chat_events.h"


ngx_http_chat_events_t  ngx_http_chat_events;


void
ngx_http_chat_event_notify(ngx_http_request_t *r, json_t *answer,
    ngx_uint_t fresh)
{
    if (ngx_http_chat_events.notify) {
        ngx_http_chat_events.notify(r, answer, fresh);
    }
}


void
ngx_http_chat_event_publish(const char *kind, ngx_str_t *id, u_char flag,
    ngx_str_t *origin, ngx_str_t *chat, const char *event, json_t *data)
{
    if (ngx_http_chat_events.publish) {
        ngx_http_chat_events.publish(kind, id, flag, origin, chat, event,
                                     data);
    }
}


ngx_int_t
ngx_http_chat_event_route(ngx_http_request_t *r)
{
    if (ngx_http_chat_events.route == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    return ngx_http_chat_events.route(r);
}


ngx_str_t *
ngx_http_chat_event_route_path(ngx_http_request_t *r)
{
    if (ngx_http_chat_events.route_path == NULL) {
        return NULL;
    }

    return ngx_http_chat_events.route_path(r);
}
