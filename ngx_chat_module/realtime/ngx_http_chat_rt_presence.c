/*
 * Copyright (C) ngx_chat_module authors
 *
 * Presence: a user is online while any of their sockets, on any worker
 * of any instance, is authenticated.  A Redis counter per user finds the
 * first socket and the last one; those two moments are written to the
 * user's document (online, lastSeenAt) and published on "pres:<id>".
 * Each event reaches a subscriber only as the user's privacy settings
 * and blocks let that subscriber see it at that moment (the view
 * GET /api/users/:id gives them, read again for the event).
 */


#include "ngx_http_chat_rt.h"
#include "../store/ngx_http_chat_redis.h"
#include "../store/ngx_http_chat_mongo.h"
#include "../store/ngx_http_chat_users.h"


typedef struct {
    bson_oid_t                   user;
    int64_t                      at;        /* ms */
    ngx_uint_t                   online;
    u_char                       id[NGX_HTTP_CHAT_RT_ID_LEN];
} ngx_http_chat_rt_presence_t;


static void ngx_http_chat_rt_presence_counted(redisReply *reply, void *data);
static void ngx_http_chat_rt_presence_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
static void ngx_http_chat_rt_presence_stored(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_rt_presence_seen(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);


/* a socket of the user authenticated (online 1) or went (online 0) */
void
ngx_http_chat_rt_presence(u_char *user, ngx_uint_t online)
{
    u_char                        key[sizeof("online:") - 1
                                      + NGX_HTTP_CHAT_RT_ID_LEN];
    ngx_http_chat_rt_presence_t  *p;

    p = ngx_calloc(sizeof(ngx_http_chat_rt_presence_t), ngx_cycle->log);
    if (p == NULL) {
        return;
    }

    ngx_memcpy(p->id, user, NGX_HTTP_CHAT_RT_ID_LEN);
    p->online = online;

    ngx_memcpy(ngx_cpymem(key, "online:", sizeof("online:") - 1), user,
               NGX_HTTP_CHAT_RT_ID_LEN);

    if (ngx_http_chat_redis_command(ngx_http_chat_redis_main,
                                    ngx_http_chat_rt_presence_counted, p,
                                    online ? "INCR %b" : "DECR %b",
                                    key, sizeof(key))
        != NGX_OK)
    {
        ngx_free(p);
    }
}


static void
ngx_http_chat_rt_presence_counted(redisReply *reply, void *data)
{
    ngx_http_chat_rt_presence_t  *p;
    ngx_http_chat_mongo_task_t   *t;

    p = data;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER
        || reply->integer != (p->online ? 1 : 0))
    {
        /* another socket of the user is still (or already) there */
        ngx_free(p);
        return;
    }

    p->at = (int64_t) ngx_time() * 1000
            + (int64_t) (ngx_current_msec % 1000);

    if (!bson_oid_is_valid((const char *) p->id, NGX_HTTP_CHAT_RT_ID_LEN)) {
        ngx_free(p);
        return;
    }

    bson_oid_init_from_string(&p->user, (const char *) p->id);

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_rt_presence_run,
                                            ngx_http_chat_rt_presence_stored,
                                            NULL, p, sizeof(*p));
    ngx_free(p);

    if (t == NULL) {
        return;
    }

    (void) ngx_http_chat_mongo_post(t);
}


static void
ngx_http_chat_rt_presence_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    bson_t                        filter, update, set;
    mongoc_collection_t          *coll;
    ngx_http_chat_rt_presence_t  *p;

    p = t->arg;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &p->user);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_BOOL(&set, "online", p->online ? true : false);

    if (!p->online) {
        BSON_APPEND_DATE_TIME(&set, "lastSeenAt", p->at);
    }

    bson_append_document_end(&update, &set);

    coll = mongoc_database_get_collection(db, "users");

    t->rc = mongoc_collection_update_one(coll, &filter, &update, NULL, NULL,
                                         &t->error)
            ? NGX_OK : NGX_ERROR;

    mongoc_collection_destroy(coll);
    bson_destroy(&update);
    bson_destroy(&filter);
}


/* stored first: a subscriber that asks GET /api/users/:id agrees */
static void
ngx_http_chat_rt_presence_stored(ngx_http_chat_mongo_task_t *t)
{
    json_t                       *data;
    ngx_str_t                     id;
    ngx_http_chat_rt_presence_t  *p;

    p = t->arg;

    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat ws: presence not stored: %s", t->error.message);
    }

    id.data = p->id;
    id.len = NGX_HTTP_CHAT_RT_ID_LEN;

    if (p->online) {
        data = json_pack("{s:s%}", "userId", id.data, id.len);

    } else {
        data = json_pack("{s:s%,s:o}", "userId", id.data, id.len,
                         "lastSeen", ngx_http_chat_json_time(p->at));
    }

    ngx_http_chat_rt_publish_as("pres:", &id, '-', &id, NULL,
                                p->online ? "user_online" : "user_offline",
                                data);
    json_decref(data);
}


/*
 * A presence event for one subscriber: the user as this subscriber may
 * see them now decides whether it goes, and with which lastSeen.
 */
void
ngx_http_chat_rt_presence_deliver(ngx_http_chat_rt_session_t *s,
    u_char *json, size_t len)
{
    json_t       *env, *event;
    ngx_str_t     uid;
    json_error_t  err;

    if (!s->authenticated || s->ws->close_sent || s->ws->destroy) {
        return;
    }

    env = json_loadb((const char *) json, len, 0, &err);
    event = json_object_get(env, "event");

    if (!json_is_string(event)
        || ngx_http_chat_rt_str_field(json_object_get(env, "data"),
                                      "userId", &uid)
           != NGX_OK
        || uid.len != NGX_HTTP_CHAT_RT_ID_LEN)
    {
        json_decref(env);
        return;
    }

    /* the event's name goes with the read; env is freed by the answer */
    if (ngx_http_chat_rt_read_user(s, &uid, ngx_http_chat_rt_presence_seen,
                                   env)
        != NGX_OK)
    {
        json_decref(env);
    }
}


static void
ngx_http_chat_rt_presence_seen(ngx_http_chat_rt_session_t *s, void *data,
    ngx_uint_t status, json_t *answer)
{
    json_t      *env, *user, *out, *last;
    const char  *event;

    env = data;
    user = json_object_get(answer, "user");

    if (s == NULL || status != 200 || json_object_get(user, "online") == NULL
        || s->ws->close_sent || s->ws->destroy)
    {
        /* blocked, or their online status hidden from this subscriber */
        json_decref(answer);
        json_decref(env);
        return;
    }

    event = json_string_value(json_object_get(env, "event"));

    out = json_pack("{s:O}", "userId",
                    json_object_get(json_object_get(env, "data"), "userId"));

    if (out && ngx_strcmp(event, "user_offline") == 0) {
        /* the exact time only where the lastSeen setting allows it */
        last = json_object_get(user, "lastSeen");

        if (last) {
            json_object_set(out, "lastSeen", last);
        }
    }

    if (out) {
        ngx_http_chat_rt_emit(s, event, out, NULL);
    }

    json_decref(answer);
    json_decref(env);
}
