/*
 * Copyright (C) ngx_chat_module authors
 *
 * Whom a committed message or call is pushed to (ngx_http_chat_op_push.h):
 * one MongoDB task reads the recipients' devices (the members, their
 * mutes, blocks and preview settings, in four queries whatever the
 * chat's size), one Redis script (one per shard that holds some of the
 * users' presence) tells which of them have a live socket on any
 * instance (presence:s:<user> exists), and the others' devices
 * get a push through the worker's queue (services/ngx_http_chat_push.c).
 */


#include "ngx_http_chat_op_push.h"
#include "ngx_http_chat_op.h"
#include "../services/ngx_http_chat_push.h"
#include "../store/ngx_http_chat_devices_store.h"
#include "../store/ngx_http_chat_redis.h"
#include "../store/ngx_http_chat_redis_shards.h"
#include "../store/ngx_http_chat_push_members.h"
#include "../util/ngx_http_chat_text.h"
#include "../core/ngx_http_chat_events.h"


#define NGX_HTTP_CHAT_PUSH_PREVIEW  100     /* characters of a preview */


typedef struct {
    json_t      *data;        /* what every device gets: ids */
    json_t      *devices;     /* the plan's answer */
    json_t      *mentions;    /* those a mute does not stop, or NULL */
    u_char      *preview;     /* heap, or NULL */
    size_t       preview_len;
    char         chat[25];
    char         sender[25];
    char         gen[32];     /* the members' cache's, at a miss */
    ngx_uint_t   urgent;
    ngx_uint_t   online_too;  /* an incoming call rings every device */
    ngx_uint_t   told;        /* the recipients are known offline */
    ngx_uint_t   filled;
    ngx_uint_t   asked;       /* presence answers to come, and one */
    u_char      *online;      /* a flag a device, or NULL */
    ngx_http_chat_push_plan_arg_t  plan;
} ngx_http_chat_op_push_t;


/* one shard's presence read: its devices' places in op->devices */
typedef struct {
    ngx_http_chat_op_push_t  *op;
    ngx_uint_t               *device;
    size_t                    n;
} ngx_http_chat_op_push_ask_t;


static void ngx_http_chat_op_push_call_event(ngx_str_t *user,
    const char *event, json_t *data);
static void ngx_http_chat_op_push_start(ngx_http_chat_op_push_t *op);
static void ngx_http_chat_op_push_cached(redisReply *reply, void *data);
static void ngx_http_chat_op_push_members(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_op_push_plan(ngx_http_chat_op_push_t *op);
static void ngx_http_chat_op_push_planned(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_op_push_ask(ngx_http_chat_op_push_t *op,
    ngx_uint_t shard, ngx_uint_t *at, size_t count);
static const char *ngx_http_chat_op_push_user(json_t *device);
static void ngx_http_chat_op_push_presence(redisReply *reply, void *data);
static void ngx_http_chat_op_push_answered(ngx_http_chat_op_push_t *op);
static void ngx_http_chat_op_push_out(ngx_http_chat_op_push_t *op,
    u_char *online);
static void ngx_http_chat_op_push_free(ngx_http_chat_op_push_t *op);
static void ngx_http_chat_op_push_gone(ngx_str_t *token, ngx_uint_t voip);
static void ngx_http_chat_op_push_forgot(ngx_http_chat_mongo_task_t *t);


/* one EXISTS a user: one round trip a shard for the whole message */
static const char  ngx_http_chat_op_push_online_lua[] =
    "local r = {} "
    "for i, k in ipairs(KEYS) do r[i] = redis.call('EXISTS', k) end "
    "return r";


static ngx_flag_t  ngx_http_chat_op_push_mention_muted;


void
ngx_http_chat_op_push_init(ngx_http_chat_main_conf_t *cmcf)
{
    ngx_http_chat_op_push_mention_muted = cmcf->push_mention_muted;
    ngx_http_chat_push_gone = ngx_http_chat_op_push_gone;
    ngx_http_chat_events.pushed = ngx_http_chat_op_push_call_event;
}


/*
 * A committed call event to its callee: incoming_call rings their
 * devices, call_missed tells them (ngx_http_chat_push_call())
 */
static void
ngx_http_chat_op_push_call_event(ngx_str_t *user, const char *event,
    json_t *data)
{
    json_t      *call;
    ngx_str_t    caller, chat, id;
    ngx_uint_t   missed;

    if (ngx_strcmp(event, "incoming_call") == 0) {
        missed = 0;

    } else if (ngx_strcmp(event, "call_missed") == 0) {
        missed = 1;

    } else {
        return;
    }

    call = json_object_get(data, "call");

    if (user->len != 24
        || ngx_http_chat_rt_str_field(call, "callerId", &caller) != NGX_OK
        || ngx_http_chat_rt_str_field(call, "id", &id) != NGX_OK)
    {
        return;
    }

    /* a call to a user with no chat yet collapses by itself */
    if (ngx_http_chat_rt_str_field(call, "chatId", &chat) != NGX_OK) {
        chat = id;
    }

    ngx_http_chat_push_call(user, &caller, &chat, &id, missed);
}


static ngx_int_t
ngx_http_chat_op_push_oid(json_t *v, bson_oid_t *oid)
{
    ngx_str_t  s;

    if (!json_is_string(v)) {
        return NGX_ERROR;
    }

    s.data = (u_char *) json_string_value(v);
    s.len = json_string_length(v);

    if (!ngx_http_chat_is_oid(&s)) {
        return NGX_ERROR;
    }

    bson_oid_init_from_string_unsafe(oid, (char *) s.data);

    return NGX_OK;
}


void
ngx_http_chat_op_push_message(json_t *message)
{
    size_t                          i, len;
    u_char                         *p, *last;
    json_t                         *v, *text;
    const char                     *type;
    ngx_http_chat_op_push_t        *op;
    ngx_http_chat_push_plan_arg_t  *a;

    if (!ngx_http_chat_push_enabled()) {
        return;
    }

    type = json_string_value(json_object_get(message, "type"));

    /* a call's message: its call was pushed already (rung, missed) */
    if (type == NULL || ngx_strcmp(type, "system") == 0
        || ngx_strcmp(type, "call") == 0
        || !json_is_string(json_object_get(message, "id")))
    {
        return;
    }

    op = ngx_calloc(sizeof(ngx_http_chat_op_push_t), ngx_cycle->log);
    if (op == NULL) {
        return;
    }

    a = &op->plan;

    if (ngx_http_chat_op_push_oid(json_object_get(message, "chatId"),
                                  &a->chat) != NGX_OK
        || ngx_http_chat_op_push_oid(json_object_get(message, "senderId"),
                                     &a->sender) != NGX_OK)
    {
        ngx_free(op);
        return;
    }

    a->mention_muted = ngx_http_chat_op_push_mention_muted;

    json_array_foreach(json_object_get(message, "mentions"), i, v) {
        if (a->nmentions < 50
            && ngx_http_chat_op_push_oid(v, &a->mentions[a->nmentions])
               == NGX_OK)
        {
            a->nmentions++;
        }
    }

    if (a->mention_muted && json_array_size(json_object_get(message,
                                                            "mentions")))
    {
        op->mentions = json_incref(json_object_get(message, "mentions"));
    }

    ngx_memcpy(op->sender, json_string_value(json_object_get(message,
                                                             "senderId")),
               24);

    /* ids only: no text reaches the provider unless a setting allows it */
    op->data = json_pack("{s:s,s:O,s:O,s:O,s:s}",
                         "kind", "message",
                         "chatId", json_object_get(message, "chatId"),
                         "messageId", json_object_get(message, "id"),
                         "senderId", json_object_get(message, "senderId"),
                         "type", type);
    if (op->data == NULL) {
        ngx_free(op);
        return;
    }

    ngx_memcpy(op->chat, json_string_value(json_object_get(message,
                                                           "chatId")), 24);

    text = json_object_get(json_object_get(message, "content"), "text");

    if (ngx_strcmp(type, "text") == 0 && json_is_string(text)) {
        p = (u_char *) json_string_value(text);
        last = p + json_string_length(text);

        /* whole characters: the preview is valid UTF-8 */
        for (i = 0; i < NGX_HTTP_CHAT_PUSH_PREVIEW && p < last; i++) {
            if (*p < 0x80) {
                p++;

            } else if (ngx_utf8_decode(&p, last - p) > 0x10ffff) {
                break;
            }
        }

        len = p - (u_char *) json_string_value(text);

        op->preview = ngx_alloc(len + 1, ngx_cycle->log);
        if (op->preview) {
            ngx_memcpy(op->preview, json_string_value(text), len);
            op->preview_len = len;
        }
    }

    ngx_http_chat_op_push_start(op);
}


void
ngx_http_chat_push_call(ngx_str_t *callee, ngx_str_t *caller,
    ngx_str_t *chat, ngx_str_t *call_id, ngx_uint_t missed)
{
    ngx_http_chat_op_push_t        *op;
    ngx_http_chat_push_plan_arg_t  *a;

    if (!ngx_http_chat_push_enabled()
        || !ngx_http_chat_is_oid(callee) || !ngx_http_chat_is_oid(caller)
        || !ngx_http_chat_is_oid(chat) || call_id->len == 0
        || call_id->len > 64)
    {
        return;
    }

    op = ngx_calloc(sizeof(ngx_http_chat_op_push_t), ngx_cycle->log);
    if (op == NULL) {
        return;
    }

    a = &op->plan;

    bson_oid_init_from_string_unsafe(&a->chat, (char *) chat->data);
    bson_oid_init_from_string_unsafe(&a->sender, (char *) caller->data);
    bson_oid_init_from_string_unsafe(&a->ids[0], (char *) callee->data);
    a->nids = 1;
    a->given = 1;

    op->data = json_pack("{s:s,s:s%,s:s%,s:s%,s:s}",
                         "kind", missed ? "missed_call" : "call",
                         "chatId", chat->data, chat->len,
                         "callId", call_id->data, call_id->len,
                         "senderId", caller->data, caller->len,
                         "type", "call");
    if (op->data == NULL) {
        ngx_free(op);
        return;
    }

    ngx_memcpy(op->chat, chat->data, 24);
    op->urgent = !missed;
    op->online_too = !missed;

    /* one callee: the plan, then their presence (a missed call) */
    ngx_http_chat_op_push_plan(op);
}


/*
 * A message: the members' cache in Redis tells whom to push (with their
 * presence); on a miss, MongoDB's members fill it; without Redis, the
 * plan reads the members itself and every device is pushed.
 */

static void
ngx_http_chat_op_push_start(ngx_http_chat_op_push_t *op)
{
    if (ngx_http_chat_push_members_read(op->chat, op->sender, op->mentions,
                                        ngx_http_chat_op_push_cached, op)
        != NGX_OK)
    {
        ngx_http_chat_op_push_plan(op);
    }
}


static void
ngx_http_chat_op_push_cached(redisReply *reply, void *data)
{
    ngx_http_chat_op_push_t *op = data;

    size_t                       i;
    redisReply                  *e;
    ngx_str_t                    s;
    ngx_http_chat_mongo_task_t  *t;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements == 0
        || reply->element[0]->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_chat_op_push_plan(op);
        return;
    }

    if (reply->element[0]->integer == 1) {
        op->plan.given = 1;
        op->plan.nids = 0;

        for (i = 1; i < reply->elements; i++) {
            e = reply->element[i];

            if (e->type != REDIS_REPLY_STRING) {
                continue;
            }

            s.data = (u_char *) e->str;
            s.len = e->len;

            if (ngx_http_chat_is_oid(&s)
                && op->plan.nids < NGX_HTTP_CHAT_PUSH_MEMBERS_MAX)
            {
                bson_oid_init_from_string_unsafe(
                    &op->plan.ids[op->plan.nids++], e->str);
            }
        }

        if (op->plan.nids == 0) {
            ngx_http_chat_op_push_free(op);
            return;
        }

        /* the cache's script read presence already, without shards */
        op->told = (ngx_http_chat_redis_shards_n() == 0);
        ngx_http_chat_op_push_plan(op);
        return;
    }

    /* a miss: its generation, then the members from MongoDB */
    if (op->filled || reply->elements < 2
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[1]->len >= sizeof(op->gen))
    {
        ngx_http_chat_op_push_plan(op);
        return;
    }

    ngx_memcpy(op->gen, reply->element[1]->str, reply->element[1]->len);
    op->gen[reply->element[1]->len] = '\0';

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_devices_members_run,
                                            ngx_http_chat_op_push_members,
                                            op, &op->plan, sizeof(op->plan));
    if (t == NULL) {
        ngx_http_chat_op_push_free(op);
        return;
    }

    t->cleanup = ngx_http_chat_devices_plan_cleanup;

    if (ngx_http_chat_mongo_post(t) != NGX_OK) {
        ngx_http_chat_op_push_free(op);
    }
}


static void
ngx_http_chat_op_push_members(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_op_push_t *op = t->data;

    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat push: the members' read failed in mongo: %s",
                      t->error.message);
        ngx_http_chat_op_push_free(op);
        return;
    }

    op->filled = 1;

    if (ngx_http_chat_push_members_fill(op->chat, op->gen, t->result,
                                        op->sender, op->mentions,
                                        ngx_http_chat_op_push_cached, op)
        != NGX_OK)
    {
        ngx_http_chat_op_push_plan(op);
    }
}


static void
ngx_http_chat_op_push_plan(ngx_http_chat_op_push_t *op)
{
    ngx_http_chat_mongo_task_t  *t;

    /* a worker's exit: Redis's pending replies come back empty, no more */
    if (ngx_http_chat_ops_exited) {
        ngx_http_chat_op_push_free(op);
        return;
    }

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_devices_plan_run,
                                            ngx_http_chat_op_push_planned,
                                            op, &op->plan, sizeof(op->plan));
    if (t == NULL) {
        ngx_http_chat_op_push_free(op);
        return;
    }

    t->cleanup = ngx_http_chat_devices_plan_cleanup;

    if (ngx_http_chat_mongo_post(t) != NGX_OK) {
        /* the task is freed, op is not */
        ngx_http_chat_op_push_free(op);
    }
}


static void
ngx_http_chat_op_push_planned(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_op_push_t *op = t->data;

    size_t       i, n, count[NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1];
    json_t      *d;
    ngx_uint_t   shard, *at;
    const char  *user;

    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat push: the recipients' read failed in mongo: %s",
                      t->error.message);
        ngx_http_chat_op_push_free(op);
        return;
    }

    op->devices = t->result;
    t->result = NULL;

    n = json_array_size(op->devices);

    if (n == 0) {
        ngx_http_chat_op_push_free(op);
        return;
    }

    if (op->told || op->online_too || ngx_http_chat_redis_main == NULL) {
        ngx_http_chat_op_push_out(op, NULL);
        return;
    }

    /* a flag a device: 1 when its user has a live socket */
    op->online = ngx_calloc(n, ngx_cycle->log);
    at = ngx_alloc(n * sizeof(ngx_uint_t), ngx_cycle->log);

    if (op->online == NULL || at == NULL) {
        if (at) {
            ngx_free(at);
        }

        ngx_http_chat_op_push_out(op, NULL);
        return;
    }

    /* each device's user's shard, once */
    ngx_memzero(count, sizeof(count));

    json_array_foreach(op->devices, i, d) {
        user = ngx_http_chat_op_push_user(d);
        at[i] = ngx_http_chat_redis_shard_of((u_char *) user, 24);
        count[at[i]]++;
    }

    /* one script per shard that holds some of the users' presence */
    op->asked = 1;

    for (shard = 0; shard <= ngx_http_chat_redis_shards_n(); shard++) {
        if (count[shard]) {
            ngx_http_chat_op_push_ask(op, shard, at, count[shard]);
        }
    }

    ngx_free(at);
    ngx_http_chat_op_push_answered(op);
}


/* a device's user id, 24 characters whatever the plan gave */
static const char *
ngx_http_chat_op_push_user(json_t *device)
{
    const char  *user;

    user = json_string_value(json_object_get(device, "userId"));

    if (user == NULL || ngx_strlen(user) != 24) {
        return "000000000000000000000000";
    }

    return user;
}


/*
 * EVAL script k key..., a key per device of a user on the shard (at: each
 * device's; count of them here; a user's repeat is cheap): k's digits
 * and its NUL, then the keys
 */
static void
ngx_http_chat_op_push_ask(ngx_http_chat_op_push_t *op, ngx_uint_t shard,
    ngx_uint_t *at, size_t count)
{
    u_char                       *keys, *digits;
    size_t                        i, n, k, *lens;
    json_t                       *d;
    const char                  **argv, *user;
    ngx_http_chat_op_push_ask_t  *ask;

    n = count;

    ask = ngx_alloc(sizeof(ngx_http_chat_op_push_ask_t)
                    + n * sizeof(ngx_uint_t)
                    + (n + 3) * (sizeof(char *) + sizeof(size_t))
                    + NGX_SIZE_T_LEN + 1
                    + n * (sizeof("presence:s:") - 1 + 24), ngx_cycle->log);
    if (ask == NULL) {
        /* presence unknown: a push too many beats a push missed */
        return;
    }

    ask->op = op;
    ask->device = (ngx_uint_t *) (ask + 1);
    argv = (const char **) (ask->device + n);
    lens = (size_t *) (argv + n + 3);
    digits = (u_char *) (lens + n + 3);
    keys = digits + NGX_SIZE_T_LEN + 1;

    k = 3;

    json_array_foreach(op->devices, i, d) {
        if (at[i] != shard) {
            continue;
        }

        user = ngx_http_chat_op_push_user(d);

        ask->device[k - 3] = i;
        argv[k] = (const char *) keys;
        lens[k] = ngx_sprintf(keys, "presence:s:%s", user) - keys;
        keys += lens[k];
        k++;
    }

    ask->n = k - 3;

    if (ask->n == 0) {
        ngx_free(ask);
        return;
    }

    argv[0] = "EVAL";
    lens[0] = 4;
    argv[1] = ngx_http_chat_op_push_online_lua;
    lens[1] = sizeof(ngx_http_chat_op_push_online_lua) - 1;
    argv[2] = (const char *) digits;
    lens[2] = ngx_sprintf(digits, "%uz", ask->n) - digits;

    /* hiredis copies the command */
    if (ngx_http_chat_redis_command_argv(ngx_http_chat_redis_shard(shard),
                                         ngx_http_chat_op_push_presence,
                                         ask, (int) k, argv, lens)
        != NGX_OK)
    {
        ngx_free(ask);
        return;
    }

    op->asked++;
}


static void
ngx_http_chat_op_push_presence(redisReply *reply, void *data)
{
    ngx_http_chat_op_push_ask_t *ask = data;

    size_t                    i;
    ngx_http_chat_op_push_t  *op;

    op = ask->op;

    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY
        && reply->elements == ask->n)
    {
        for (i = 0; i < ask->n; i++) {
            if (reply->element[i]->type == REDIS_REPLY_INTEGER
                && reply->element[i]->integer == 1)
            {
                op->online[ask->device[i]] = 1;
            }
        }
    }

    ngx_free(ask);
    ngx_http_chat_op_push_answered(op);
}


/* every shard asked has answered: the pushes go */
static void
ngx_http_chat_op_push_answered(ngx_http_chat_op_push_t *op)
{
    if (--op->asked == 0) {
        ngx_http_chat_op_push_out(op, op->online);
    }
}


/* each device of a user with no live socket (online NULL: every one) */

static void
ngx_http_chat_op_push_out(ngx_http_chat_op_push_t *op, u_char *online)
{
    size_t                     i;
    json_t                    *d;
    ngx_str_t                  platform, voip;
    ngx_http_chat_push_msg_t   m;

    json_array_foreach(op->devices, i, d) {
        if (online && online[i]) {
            continue;
        }

        if (ngx_http_chat_rt_str_field(d, "token", &m.token) != NGX_OK) {
            continue;
        }

        m.apns = 0;
        m.voip = 0;
        ngx_str_null(&m.topic);

        /* iOS through APNs when it is configured, else through FCM */
        if (ngx_http_chat_push_apns_enabled()
            && ngx_http_chat_rt_str_field(d, "platform", &platform) == NGX_OK
            && platform.len == 3 && ngx_strncmp(platform.data, "ios", 3) == 0
            && ngx_http_chat_rt_str_field(d, "bundleId", &m.topic) == NGX_OK)
        {
            m.apns = 1;

            /* an incoming call wakes the app through its VoIP token */
            if (op->urgent
                && ngx_http_chat_rt_str_field(d, "voipToken", &voip)
                   == NGX_OK)
            {
                m.token = voip;
                m.voip = 1;
            }
        }

        m.collapse.data = (u_char *) op->chat;
        m.collapse.len = 24;
        m.urgent = op->urgent;
        m.data = op->data;
        m.preview.len = 0;
        m.preview.data = NULL;

        if (op->preview && json_is_true(json_object_get(d, "preview"))) {
            m.preview.data = op->preview;
            m.preview.len = op->preview_len;
        }

        (void) ngx_http_chat_push_send(&m);
    }

    ngx_http_chat_op_push_free(op);
}


static void
ngx_http_chat_op_push_free(ngx_http_chat_op_push_t *op)
{
    json_decref(op->data);
    json_decref(op->devices);
    json_decref(op->mentions);

    if (op->online) {
        ngx_free(op->online);
    }

    if (op->preview) {
        ngx_free(op->preview);
    }

    ngx_free(op);
}


/* the provider no longer knows the token: its device goes */

static void
ngx_http_chat_op_push_gone(ngx_str_t *token, ngx_uint_t voip)
{
    ngx_http_chat_mongo_task_t  *t;
    ngx_http_chat_device_arg_t  *a;

    if (token->len == 0 || token->len > NGX_HTTP_CHAT_DEVICE_TOKEN_MAX) {
        return;
    }

    a = ngx_calloc(sizeof(ngx_http_chat_device_arg_t), ngx_cycle->log);
    if (a == NULL) {
        return;
    }

    /* a VoIP token refused leaves the device, without it */
    ngx_memcpy(voip ? a->voip : a->token, token->data, token->len);

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_devices_forget_run,
                                            ngx_http_chat_op_push_forgot,
                                            NULL, a, sizeof(*a));
    ngx_free(a);

    if (t == NULL) {
        return;
    }

    (void) ngx_http_chat_mongo_post(t);
}


static void
ngx_http_chat_op_push_forgot(ngx_http_chat_mongo_task_t *t)
{
    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat push: a gone token's device not deleted: %s",
                      t->error.message);
    }
}
