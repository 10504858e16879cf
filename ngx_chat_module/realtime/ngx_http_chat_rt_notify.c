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


static void ngx_http_chat_rt_notify_users(ngx_http_request_t *r,
    json_t *ids, u_char flag, ngx_str_t *chat, const char *event,
    json_t *data);


#define ngx_http_chat_rt_route_is(path, s)                                   \
    ((path)->len == sizeof(s) - 1                                            \
     && ngx_strncmp((path)->data, s, sizeof(s) - 1) == 0)


/* fresh: the route made something new (not an idempotent replay) */
void
ngx_http_chat_rt_notify(ngx_http_request_t *r, json_t *answer,
    ngx_uint_t fresh)
{
    json_t               *message, *data, *chat, *v;
    ngx_str_t            *path, chat_id, me, arg;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    path = ngx_http_chat_event_route_path(r);

    if (ctx == NULL || path == NULL || answer == NULL) {
        return;
    }

    me = ctx->user_id;
    message = json_object_get(answer, "message");

    /*
     * A message stored (sent, forwarded, a system message) is pushed by
     * the send operation that stored it (ops/ngx_http_chat_op_send.c).
     */
    if (ngx_http_chat_rt_route_is(path, "/api/messages")
        || ngx_http_chat_rt_route_is(path, "/api/messages/:id/forward"))
    {
        return;
    }

    /* a message edited, deleted, reacted to */
    if (ngx_http_chat_rt_route_is(path, "/api/messages/:id")
        || ngx_http_chat_rt_route_is(path, "/api/messages/:id/react"))
    {
        if (ngx_http_chat_rt_str_field(message, "chatId", &chat_id) != NGX_OK) {
            return;
        }

        if (r->method == NGX_HTTP_DELETE
            && (ngx_http_arg(r, (u_char *) "forEveryone", 11, &arg) != NGX_OK
                || arg.len != 4 || ngx_strncmp(arg.data, "true", 4) != 0))
        {
            return;     /* deleted for me: my business only */
        }

        data = json_pack("{s:O}", "message", message);
        ngx_http_chat_rt_publish_as("chat:", &chat_id, '-', &me, NULL,
                                    r->method == NGX_HTTP_PUT
                                    ? "message_edited"
                                    : r->method == NGX_HTTP_DELETE
                                      ? "message_deleted"
                                      : "message_reaction",
                                    data);
        json_decref(data);
        return;
    }

    if (ngx_http_chat_rt_route_is(path, "/api/chats/:id/read")
        || ngx_http_chat_rt_route_is(path, "/api/chats/:id/delivered"))
    {
        chat_id = ctx->params[0];

        data = json_pack("{s:s%,s:s%,s:s,s:O*}",
                         "chatId", chat_id.data, chat_id.len,
                         "userId", me.data, me.len,
                         "status", path->data[path->len - 1] == 'd'
                                   && path->data[path->len - 2] == 'a'
                                   ? "read" : "delivered",
                         "upToSeq", json_object_get(ctx->body, "upToSeq"));

        /* the reader's other devices learn it too: read is synced */
        ngx_http_chat_rt_publish_as("chat:", &chat_id, '-', &me, NULL,
                                    "message_status_update", data);
        json_decref(data);
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

        data = json_pack("{s:O}", "chat", chat);

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

    /* my settings of a chat (mute, archive, pin): to my other devices */
    if (ngx_http_chat_rt_route_is(path, "/api/chats/:id/settings")) {
        chat_id = ctx->params[0];
        data = json_pack("{s:s%,s:O}", "chatId", chat_id.data, chat_id.len,
                         "settings", answer);
        ngx_http_chat_rt_publish_as("user:", &me, '-', &me, NULL,
                                    "chat_settings_updated", data);
        json_decref(data);
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
    data = json_pack("{s:O*}", "chat", chat);

    if (ngx_http_chat_rt_route_is(path, "/api/chats/:id/members")) {
        ngx_http_chat_rt_notify_users(r, json_object_get(ctx->body, "userIds"),
                                      'j', &chat_id, "chat_created", data);

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
