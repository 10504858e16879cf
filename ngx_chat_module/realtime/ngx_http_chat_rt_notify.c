/*
 * Copyright (C) ngx_chat_module authors
 *
 * What a route changed, pushed to the sockets concerned: every change
 * made over REST or by an event goes through here once it is stored, so
 * the two transports cannot disagree.  Who joins a chat also has it
 * added to their candidate chat ids here (api/ngx_http_chat_chat_ids.c).
 */


#include "ngx_http_chat_rt.h"
#include "../store/ngx_http_chat_chat_ids_store.h"
#include "../store/ngx_http_chat_chats_store.h"


static void ngx_http_chat_rt_notify_users(ngx_http_request_t *r,
    json_t *ids, u_char flag, ngx_str_t *chat, const char *event,
    json_t *data);


#define ngx_http_chat_rt_route_is(path, s)                                   \
    ((path)->len == sizeof(s) - 1                                            \
     && ngx_strncmp((path)->data, s, sizeof(s) - 1) == 0)


/*
 * A chat as every member sees it: without the requester's own role,
 * settings, markers and unread count
 */
static json_t *
ngx_http_chat_rt_chat_shared(json_t *chat)
{
    json_t  *c;

    if (!json_is_object(chat)) {
        return NULL;
    }

    c = json_deep_copy(chat);
    if (c == NULL) {
        return NULL;
    }

    json_object_del(c, "role");
    json_object_del(c, "settings");
    json_object_del(c, "readSeq");
    json_object_del(c, "deliveredSeq");
    json_object_del(c, "unreadCount");

    return c;
}


/* fresh: the route made something new (not an idempotent replay) */
void
ngx_http_chat_rt_notify(ngx_http_request_t *r, json_t *answer,
    ngx_uint_t fresh)
{
    json_t               *data, *chat, *v;
    ngx_str_t            *path, chat_id, me;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    path = ngx_http_chat_event_route_path(r);

    if (ctx == NULL || path == NULL || answer == NULL) {
        return;
    }

    me = ctx->user_id;

    /*
     * A message stored (sent, forwarded, a system message) is pushed by
     * the send operation that stored it (ops/ngx_http_chat_op_send.c).
     */
    if (ngx_http_chat_rt_route_is(path, "/api/messages")
        || ngx_http_chat_rt_route_is(path, "/api/messages/:id/forward"))
    {
        return;
    }

    /*
     * A message edited, deleted for everyone, reacted to, and read and
     * delivered markers that moved: their stores say so ("$events",
     * published by the completion), from what they committed.  A read
     * (GET) publishes nothing.
     */
    if (r->method == NGX_HTTP_GET || r->method == NGX_HTTP_HEAD
        || ngx_http_chat_rt_route_is(path, "/api/messages/:id")
        || ngx_http_chat_rt_route_is(path, "/api/messages/:id/react")
        || ngx_http_chat_rt_route_is(path, "/api/chats/:id/read")
        || ngx_http_chat_rt_route_is(path, "/api/chats/:id/delivered"))
    {
        return;
    }

    /* a new chat: its members' sockets join it */
    if ((ngx_http_chat_rt_route_is(path, "/api/chats/private")
         || ngx_http_chat_rt_route_is(path, "/api/chats/group"))
        && r->method == NGX_HTTP_POST)
    {
        if (!fresh) {
            return;
        }

        chat = json_object_get(answer, "chat");

        if (ngx_http_chat_rt_str_field(chat, "id", &chat_id) != NGX_OK) {
            return;
        }

        data = json_pack("{s:o*}", "chat", ngx_http_chat_rt_chat_shared(chat));

        ngx_http_chat_chat_ids_joined(&me, &chat_id);
        ngx_http_chat_rt_publish_as("user:", &me, 'j', &me, &chat_id,
                                    "chat_created", data);

        if (ngx_http_chat_rt_route_is(path, "/api/chats/private")) {
            v = json_object_get(ctx->body, "userId");
            v = json_pack("[O]", v);
            ngx_http_chat_rt_notify_users(r, v, 'j', &chat_id,
                                          "chat_created", data);
            json_decref(v);

        } else {
            ngx_http_chat_rt_notify_users(r,
                                      json_object_get(ctx->body, "memberIds"),
                                      'j', &chat_id, "chat_created", data);
        }

        json_decref(data);
        return;
    }

    /* my settings of a chat: pushed from the change its store made */
    if (ngx_http_chat_rt_route_is(path, "/api/chats/:id/settings")) {
        return;
    }

    /* group administration: the system message, then who joins or goes */
    if (r->method == NGX_HTTP_GET
        || path->len < sizeof("/api/chats/:id") - 1
        || ngx_strncmp(path->data, "/api/chats/:id",
                       sizeof("/api/chats/:id") - 1) != 0)
    {
        return;
    }

    chat_id = ctx->params[0];
    chat = json_object_get(answer, "chat");

    /* its system message was pushed when it was stored */
    data = json_pack("{s:s%,s:o*}", "chatId", chat_id.data, chat_id.len,
                     "chat", ngx_http_chat_rt_chat_shared(chat));

    if (ngx_http_chat_rt_route_is(path, "/api/chats/:id/members")) {
        /* those added, as stored: not the ids asked, some already in */
        v = json_object_get(json_object_get(json_object_get(answer,
                                                            "message"),
                                            "content"),
                            "userIds");

        if (v == NULL) {
            /* its system message was not stored: the ids asked */
            v = json_object_get(ctx->body, "userIds");
        }

        ngx_http_chat_rt_notify_users(r, v, 'j', &chat_id, "chat_created",
                                      data);

    } else if (ngx_http_chat_rt_route_is(path,
                                         "/api/chats/:id/members/:userId")
               && r->method == NGX_HTTP_DELETE)
    {
        v = json_pack("[s%]", ctx->params[1].data, ctx->params[1].len);
        ngx_http_chat_rt_notify_users(r, v, 'l', &chat_id, "chat_removed",
                                      data);
        json_decref(v);

    } else if (ngx_http_chat_rt_route_is(path, "/api/chats/:id/leave")) {
        ngx_http_chat_rt_publish_as("user:", &me, 'l', &me, &chat_id,
                                    "chat_removed", data);

    } else {
        ngx_http_chat_rt_publish_as("chat:", &chat_id, '-', &me, NULL,
                                    "chat_updated", data);
    }

    json_decref(data);
}


static void
ngx_http_chat_rt_notify_users(ngx_http_request_t *r, json_t *ids,
    u_char flag, ngx_str_t *chat, const char *event, json_t *data)
{
    size_t                i;
    json_t               *v;
    ngx_str_t             id;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (!json_is_array(ids)) {
        return;
    }

    json_array_foreach(ids, i, v) {
        if (!json_is_string(v)) {
            continue;
        }

        id.data = (u_char *) json_string_value(v);
        id.len = json_string_length(v);

        if (flag == 'j') {
            ngx_http_chat_chat_ids_joined(&id, chat);
        }
        ngx_http_chat_rt_publish_as("user:", &id, flag, &ctx->user_id, chat,
                                    event, data);
    }
}
