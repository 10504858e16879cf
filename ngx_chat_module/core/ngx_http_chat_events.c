/*
 * Copyright (C) ngx_chat_module authors
 *
 * The event interface between the floors (ngx_http_chat_events.h).
 */


#include "ngx_http_chat_events.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "../store/ngx_http_chat_chat_ids_store.h"
#include "../store/ngx_http_chat_list_model.h"
#include "../util/ngx_http_chat_metrics.h"
#include "../store/ngx_http_chat_push_members.h"
#include "../services/ngx_http_chat_push.h"


ngx_http_chat_events_t  ngx_http_chat_events;


static void ngx_http_chat_event_count_stored(json_t *data);


void
ngx_http_chat_event_publish(const char *kind, ngx_str_t *id, u_char flag,
    ngx_str_t *origin, ngx_str_t *chat, const char *event, json_t *data)
{
    /*
     * every committed change passes here: the chat list's read model
     * follows it whether or not anybody listens
     */
    ngx_http_chat_list_model_event(event, data);
    /* and the members' cache of pushes, where pushes are sent */
    if (ngx_http_chat_push_enabled()) {
        ngx_http_chat_push_members_event(event, data);
    }

    if (ngx_strcmp(event, "new_message") == 0) {
        ngx_http_chat_event_count_stored(data);
    }

    if (ngx_http_chat_events.publish) {
        ngx_http_chat_events.publish(kind, id, flag, origin, chat, event,
                                     data);
    }

    if (ngx_http_chat_events.committed) {
        ngx_http_chat_events.committed(kind, id, event, data);
    }

    if (ngx_http_chat_events.pushed && ngx_strcmp(kind, "user:") == 0) {
        ngx_http_chat_events.pushed(id, event, data);
    }
}


ngx_int_t
ngx_http_chat_event_filter(u_char *user, u_char *chat, const char *type,
    u_char *content, size_t len, ngx_http_chat_filter_done_pt done,
    void *data)
{
    if (ngx_http_chat_events.filter == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_chat_events.filter(user, chat, type, content, len, done,
                                       data);
}


ngx_int_t
ngx_http_chat_event_signin(ngx_str_t *phone, ngx_str_t *device,
    ngx_http_chat_filter_done_pt done, void *data, void **handle)
{
    if (ngx_http_chat_events.signin == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_chat_events.signin(phone, device, done, data, handle);
}


void
ngx_http_chat_event_cancel(void *handle)
{
    if (ngx_http_chat_events.cancel && handle) {
        ngx_http_chat_events.cancel(handle);
    }
}


ngx_int_t
ngx_http_chat_event_socket_signin(u_char *what, size_t len,
    ngx_http_chat_filter_done_pt done, void *data)
{
    if (ngx_http_chat_events.socket_signin == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_chat_events.socket_signin(what, len, done, data);
}


/* a message stored, by its type, for the metrics */
static void
ngx_http_chat_event_count_stored(json_t *data)
{
    ngx_uint_t   i;
    const char  *type;

    static const char  *types[] = {
        "text", "image", "video", "audio", "document", "location",
        "contact", "system", NULL
    };

    type = json_string_value(json_object_get(json_object_get(data,
                                                             "message"),
                                             "type"));
    if (type == NULL) {
        return;
    }

    for (i = 0; types[i]; i++) {
        if (ngx_strcmp(type, types[i]) == 0) {
            ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_STORED_TEXT + i);
            return;
        }
    }
}


/* a string field of a JSON object, borrowed */
ngx_int_t
ngx_http_chat_rt_str_field(json_t *obj, const char *name, ngx_str_t *out)
{
    json_t  *v;

    v = json_object_get(obj, name);

    if (!json_is_string(v)) {
        return NGX_DECLINED;
    }

    out->data = (u_char *) json_string_value(v);
    out->len = json_string_length(v);

    return NGX_OK;
}


/*
 * The events a store's run() said its commit caused ("$events", built
 * from the stored state), published and taken out of the answer
 */

void
ngx_http_chat_event_publish_committed(json_t *answer)
{
    size_t       i;
    json_t      *events, *e;
    ngx_str_t    id, origin, chat, kind, flag, event;

    /* what changed for the chat list that no event tells (hidden) */
    events = json_object_get(answer, NGX_HTTP_CHAT_LIST_KEY);

    if (events) {
        json_array_foreach(events, i, e) {
            ngx_http_chat_list_model_hidden(e);
        }

        json_object_del(answer, NGX_HTTP_CHAT_LIST_KEY);
    }

    events = json_object_get(answer, NGX_HTTP_CHAT_EVENTS_KEY);

    if (events == NULL) {
        return;
    }

    json_array_foreach(events, i, e) {
        if (ngx_http_chat_rt_str_field(e, "kind", &kind) != NGX_OK
            || kind.len != 5
            || ngx_http_chat_rt_str_field(e, "id", &id) != NGX_OK
            || ngx_http_chat_rt_str_field(e, "flag", &flag) != NGX_OK
            || flag.len != 1
            || ngx_http_chat_rt_str_field(e, "event", &event) != NGX_OK)
        {
            continue;
        }

        if (ngx_http_chat_rt_str_field(e, "origin", &origin) != NGX_OK) {
            ngx_str_null(&origin);
        }

        if (ngx_http_chat_rt_str_field(e, "chat", &chat) != NGX_OK) {
            ngx_str_null(&chat);
        }

        /*
         * a user who joined a chat: it is among their chat ids
         * before any socket of theirs reads them (GET /api/chats/ids)
         */
        if (flag.data[0] == 'j' && chat.len
            && ngx_strncmp(kind.data, "user:", 5) == 0)
        {
            ngx_http_chat_chat_ids_joined(&id, &chat);
        }

        ngx_http_chat_event_publish((const char *) kind.data, &id,
                                    flag.data[0], &origin, &chat,
                                    (const char *) event.data,
                                    json_object_get(e, "data"));
    }

    json_object_del(answer, NGX_HTTP_CHAT_EVENTS_KEY);
}


/*
 * Those a stored change took out of a chat (the events it caused, 'l' on
 * a user's channel) are out of their chat ids at once, before the change
 * is published or answered: a socket of theirs that signs in after the
 * answer does not join the chat
 */

void
ngx_http_chat_event_left_committed(json_t *answer)
{
    size_t      i;
    json_t     *e;
    ngx_str_t   id, chat, kind, flag;

    json_array_foreach(json_object_get(answer, NGX_HTTP_CHAT_EVENTS_KEY),
                       i, e)
    {
        if (ngx_http_chat_rt_str_field(e, "kind", &kind) == NGX_OK
            && kind.len == 5 && ngx_strncmp(kind.data, "user:", 5) == 0
            && ngx_http_chat_rt_str_field(e, "flag", &flag) == NGX_OK
            && flag.len == 1 && flag.data[0] == 'l'
            && ngx_http_chat_rt_str_field(e, "id", &id) == NGX_OK
            && ngx_http_chat_rt_str_field(e, "chat", &chat) == NGX_OK)
        {
            ngx_http_chat_chat_ids_left(&id, &chat);
        }
    }
}
