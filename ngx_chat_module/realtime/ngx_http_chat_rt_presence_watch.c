/*
 * Copyright (C) ngx_chat_module authors
 *
 * Presence events for the sockets that subscribed (subscribe_presence).
 * Each event reaches a subscriber only as the user's privacy settings
 * and blocks let that subscriber see it at that moment (the view
 * GET /api/users/:id gives them, read again for the event).
 *
 * Those reads answer in any order, and the events of one user may be
 * published by several workers: each carries the version of its
 * transition ("v"), and a socket is never shown a transition older
 * than one it was already shown.  So its last event is the user's state.
 */


#include "ngx_http_chat_rt.h"


typedef struct ngx_http_chat_rt_shown_s  ngx_http_chat_rt_shown_t;

struct ngx_http_chat_rt_shown_s {
    ngx_http_chat_rt_shown_t    *next;
    int64_t                      version;
    u_char                       id[NGX_HTTP_CHAT_RT_ID_LEN];
};


/* what one socket was shown, per user; made at its first event */
typedef struct {
    ngx_rbtree_node_t            node;      /* key: the session's address */
    ngx_http_chat_rt_shown_t    *shown;
} ngx_http_chat_rt_watcher_t;


static void ngx_http_chat_rt_presence_seen(ngx_http_chat_rt_session_t *s,
    void *data, ngx_uint_t status, json_t *answer);
static ngx_uint_t ngx_http_chat_rt_presence_newer(
    ngx_http_chat_rt_session_t *s, ngx_str_t *uid, int64_t version);
static ngx_http_chat_rt_watcher_t *ngx_http_chat_rt_watcher(
    ngx_http_chat_rt_session_t *s, ngx_uint_t create);


static ngx_rbtree_t       ngx_http_chat_rt_watchers;
static ngx_rbtree_node_t  ngx_http_chat_rt_watchers_sentinel;
static ngx_uint_t         ngx_http_chat_rt_watchers_init;


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

    /*
     * The event's name goes with the read; env is freed by the answer.
     * The view says only what this subscriber may see: the state and its
     * time are the event's (no presence read from Redis)
     */
    if (ngx_http_chat_rt_read_user(s, &uid, 0, ngx_http_chat_rt_presence_seen,
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
    json_t      *env, *user, *out, *last, *ev;
    ngx_str_t    uid;
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
    ev = json_object_get(env, "data");

    if (ngx_http_chat_rt_str_field(ev, "userId", &uid) != NGX_OK
        || !ngx_http_chat_rt_presence_newer(s, &uid,
                            json_integer_value(json_object_get(ev, "v"))))
    {
        /* overtaken: a newer state of the user was shown already */
        json_decref(answer);
        json_decref(env);
        return;
    }

    out = json_pack("{s:O}", "userId", json_object_get(ev, "userId"));

    if (out && ngx_strcmp(event, "user_offline") == 0) {
        /*
         * the event's time only where the lastSeen setting allows it (the
         * view has the key, null when the document has no time yet)
         */
        last = json_object_get(ev, "lastSeen");

        if (json_object_get(user, "lastSeen") && json_is_string(last)) {
            json_object_set(out, "lastSeen", last);
        }
    }

    if (out) {
        ngx_http_chat_rt_emit(s, event, out, NULL);
    }

    json_decref(answer);
    json_decref(env);
}


/* 1: show it (and remember it); 0: an older one than already shown */
static ngx_uint_t
ngx_http_chat_rt_presence_newer(ngx_http_chat_rt_session_t *s,
    ngx_str_t *uid, int64_t version)
{
    ngx_http_chat_rt_shown_t    *sh;
    ngx_http_chat_rt_watcher_t  *w;

    if (version <= 0 || uid->len != NGX_HTTP_CHAT_RT_ID_LEN) {
        return 1;
    }

    w = ngx_http_chat_rt_watcher(s, 1);
    if (w == NULL) {
        return 1;
    }

    for (sh = w->shown; sh; sh = sh->next) {
        if (ngx_memcmp(sh->id, uid->data, NGX_HTTP_CHAT_RT_ID_LEN) == 0) {
            break;
        }
    }

    if (sh == NULL) {
        sh = ngx_alloc(sizeof(ngx_http_chat_rt_shown_t), ngx_cycle->log);
        if (sh == NULL) {
            return 1;
        }

        ngx_memcpy(sh->id, uid->data, NGX_HTTP_CHAT_RT_ID_LEN);
        sh->version = 0;
        sh->next = w->shown;
        w->shown = sh;
    }

    if (version <= sh->version) {
        return 0;
    }

    sh->version = version;

    return 1;
}


static ngx_http_chat_rt_watcher_t *
ngx_http_chat_rt_watcher(ngx_http_chat_rt_session_t *s, ngx_uint_t create)
{
    ngx_rbtree_key_t             key;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_chat_rt_watcher_t  *w;

    if (!ngx_http_chat_rt_watchers_init) {
        ngx_rbtree_init(&ngx_http_chat_rt_watchers,
                        &ngx_http_chat_rt_watchers_sentinel,
                        ngx_rbtree_insert_value);
        ngx_http_chat_rt_watchers_init = 1;
    }

    key = (ngx_rbtree_key_t) (uintptr_t) s;
    node = ngx_http_chat_rt_watchers.root;
    sentinel = ngx_http_chat_rt_watchers.sentinel;

    while (node != sentinel) {
        if (key == node->key) {
            return (ngx_http_chat_rt_watcher_t *) node;
        }

        node = (key < node->key) ? node->left : node->right;
    }

    if (!create) {
        return NULL;
    }

    w = ngx_calloc(sizeof(ngx_http_chat_rt_watcher_t), ngx_cycle->log);
    if (w == NULL) {
        return NULL;
    }

    w->node.key = key;
    ngx_rbtree_insert(&ngx_http_chat_rt_watchers, &w->node);

    return w;
}


/* the socket goes: what it was shown goes with it */
void
ngx_http_chat_rt_presence_unwatch(ngx_http_chat_rt_session_t *s)
{
    ngx_http_chat_rt_shown_t    *sh, *next;
    ngx_http_chat_rt_watcher_t  *w;

    if (!ngx_http_chat_rt_watchers_init) {
        return;
    }

    w = ngx_http_chat_rt_watcher(s, 0);
    if (w == NULL) {
        return;
    }

    for (sh = w->shown; sh; sh = next) {
        next = sh->next;
        ngx_free(sh);
    }

    ngx_rbtree_delete(&ngx_http_chat_rt_watchers, &w->node);
    ngx_free(w);
}
