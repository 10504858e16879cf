/*
 * Copyright (C) ngx_chat_module authors
 *
 * A send's new_message, and the case where it never went out: an insert
 * the store may have kept while its answer was lost (the store restarted
 * under it).  The send failed, so nothing was published; its retry finds
 * the message and would be answered without an event, and members who
 * were not told would learn of it only at their next sync.  So a failed
 * insert notes its tempId in Redis (su:<user>:<tempId>, an hour), and
 * the retry that finds the message stored publishes it when that note
 * was there.  Other retries publish nothing, as before.
 */


#include "ngx_http_chat_op_send_again.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "../store/ngx_http_chat_redis_shards.h"
#include "../core/ngx_http_chat_events.h"


#define NGX_HTTP_CHAT_UNSURE_TTL  "3600"


typedef struct {
    bson_oid_t   user;
    json_t      *message;
} ngx_http_chat_send_again_t;


static void ngx_http_chat_op_send_noted(redisReply *reply, void *data);


ngx_int_t
ngx_http_chat_op_send_publish(const bson_oid_t *user, json_t *message)
{
    char        hex[25];
    json_t     *data;
    ngx_str_t   chat_id, me;

    if (ngx_http_chat_rt_str_field(message, "chatId", &chat_id) != NGX_OK) {
        return NGX_DECLINED;
    }

    bson_oid_to_string(user, hex);
    me.data = (u_char *) hex;
    me.len = 24;

    data = json_pack("{s:O,s:O?}", "message", message,
                     "tempId", json_object_get(message, "tempId"));
    if (data) {
        ngx_http_chat_event_publish("chat:", &chat_id, '-', &me, NULL,
                                    "new_message", data);
        json_decref(data);
    }

    return NGX_OK;
}


static size_t
ngx_http_chat_op_send_unsure_key(u_char *key, const bson_oid_t *user,
    const char *temp_id)
{
    char  hex[25];

    bson_oid_to_string(user, hex);

    return ngx_sprintf(key, "su:%s:%s", hex, temp_id) - key;
}


/* a su: key is on its user's shard */
static ngx_http_chat_redis_t *
ngx_http_chat_op_send_unsure_redis(u_char *key)
{
    return ngx_http_chat_redis_of(key + sizeof("su:") - 1, 24);
}


void
ngx_http_chat_op_send_unsure(const bson_oid_t *user, const char *temp_id)
{
    u_char       key[sizeof("su::") + 24 + NGX_HTTP_CHAT_TEMP_ID_MAX];
    size_t       argvlen[5];
    const char  *argv[5];

    if (temp_id[0] == '\0') {
        return;
    }

    argv[0] = "SET";
    argv[1] = (char *) key;
    argv[2] = "1";
    argv[3] = "EX";
    argv[4] = NGX_HTTP_CHAT_UNSURE_TTL;

    argvlen[0] = 3;
    argvlen[1] = ngx_http_chat_op_send_unsure_key(key, user, temp_id);
    argvlen[2] = 1;
    argvlen[3] = 2;
    argvlen[4] = sizeof(NGX_HTTP_CHAT_UNSURE_TTL) - 1;

    if (ngx_http_chat_redis_command_argv(ngx_http_chat_op_send_unsure_redis(
                                             key),
                                         NULL, NULL, 5, argv, argvlen)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: a send of unknown outcome was not noted");
    }
}


void
ngx_http_chat_op_send_again(const bson_oid_t *user, const char *temp_id,
    json_t *message)
{
    u_char                       key[sizeof("su::") + 24
                                     + NGX_HTTP_CHAT_TEMP_ID_MAX];
    size_t                       argvlen[2];
    const char                  *argv[2];
    ngx_http_chat_send_again_t  *a;

    if (temp_id[0] == '\0' || message == NULL) {
        return;
    }

    a = ngx_alloc(sizeof(ngx_http_chat_send_again_t), ngx_cycle->log);
    if (a == NULL) {
        return;
    }

    bson_oid_copy(user, &a->user);
    a->message = json_incref(message);

    argv[0] = "DEL";
    argv[1] = (char *) key;

    argvlen[0] = 3;
    argvlen[1] = ngx_http_chat_op_send_unsure_key(key, user, temp_id);

    if (ngx_http_chat_redis_command_argv(ngx_http_chat_op_send_unsure_redis(
                                             key),
                                         ngx_http_chat_op_send_noted, a,
                                         2, argv, argvlen)
        != NGX_OK)
    {
        json_decref(a->message);
        ngx_free(a);
    }
}


static void
ngx_http_chat_op_send_noted(redisReply *reply, void *data)
{
    ngx_http_chat_send_again_t  *a = data;

    /* the note was there (and is gone): this retry publishes, once */
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        (void) ngx_http_chat_op_send_publish(&a->user, a->message);
    }

    json_decref(a->message);
    ngx_free(a);
}
