/*
 * Copyright (C) ngx_chat_module authors
 *
 * Fan-out through Redis pub/sub.  An event is published once, on the
 * channel of its chat ("chat:<id>") or of its user ("user:<id>"); every
 * worker subscribes, with one subscription each, to the channels of its
 * own sockets, and delivers a message to all of them from one frame
 * encoded once and shared.
 *
 * A published message is a 49-byte header and the JSON event: a flag,
 * the user who caused it, and for 'j'/'l' the chat its user's sockets
 * now join or leave:
 *
 *     '-'  deliver to all       'x'  not to the user's own sockets
 *     'j'  join chat, deliver   'l'  deliver, then leave chat
 *     'r'  to the sockets of one session (in the chat slot), then close
 *     's'  to the sockets of one session only (lua-compat's publish)
 *     'o'  not to the one socket named in the chat slot (its "sock:" id)
 *
 * A socket in a call has a channel of its own, "sock:<id>", for what
 * goes to one device only (the media's signalling).
 */


#include "ngx_http_chat_rt.h"
#include "ngx_http_chat_sio.h"
#include "../store/ngx_http_chat_redis.h"
#include "../store/ngx_http_chat_redis_shards.h"
#include "../util/ngx_http_chat_metrics.h"


#define NGX_HTTP_CHAT_RT_HEADER  (1 + 2 * NGX_HTTP_CHAT_RT_ID_LEN)
#define NGX_HTTP_CHAT_RT_NAME    (sizeof("chat:") - 1                       \
                                  + NGX_HTTP_CHAT_RT_ID_LEN)


typedef struct {
    ngx_rbtree_node_t            node;      /* key: crc32 of the name */
    ngx_queue_t                  links;
    ngx_uint_t                   count;
    ngx_uint_t                   shard;     /* whose subscriber */
    size_t                       len;
    u_char                       name[NGX_HTTP_CHAT_RT_NAME];
} ngx_http_chat_rt_channel_t;


struct ngx_http_chat_rt_link_s {
    ngx_queue_t                  in_channel;
    ngx_queue_t                  in_session;
    ngx_http_chat_rt_session_t  *session;
    ngx_http_chat_rt_channel_t  *channel;
    ngx_http_chat_rt_wake_pt     wake;      /* a waiter, not a session */
    void                        *data;
};


static ngx_http_chat_rt_channel_t *ngx_http_chat_rt_channel(u_char *name,
    size_t len, ngx_uint_t create);
static ngx_int_t ngx_http_chat_rt_link(ngx_http_chat_rt_session_t *s,
    const char *kind, u_char *id);
static void ngx_http_chat_rt_unlink(ngx_http_chat_rt_link_t *link);
static void ngx_http_chat_rt_release(ngx_http_chat_rt_channel_t *ch);
static void ngx_http_chat_rt_relay(ngx_http_chat_rt_channel_t *ch,
    u_char *msg, size_t len);
static void ngx_http_chat_rt_subscribed(void *data);
static void ngx_http_chat_rt_resubscribe(ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, ngx_uint_t shard, ngx_uint_t barriers);
static ngx_uint_t ngx_http_chat_rt_shard(u_char *name, size_t len);
static void ngx_http_chat_rt_message(redisReply *reply, void *data);
static void ngx_http_chat_rt_deliver(ngx_http_chat_rt_channel_t *ch,
    u_char *msg, size_t len);
static void ngx_http_chat_rt_delivered(u_char *json, size_t len,
    ngx_uint_t n);
static ngx_inline void ngx_http_chat_rt_prefetch(ngx_queue_t *q,
    ngx_queue_t *end);
static int64_t ngx_http_chat_rt_now_ms(void);
static void ngx_http_chat_rt_deliver_presence(ngx_http_chat_rt_channel_t *ch,
    u_char *msg, size_t len);
static void ngx_http_chat_rt_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_chat_rt_collect(ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, ngx_array_t *out);


/* a subscriber per Redis shard: [0] chat_redis's */
static ngx_http_chat_redis_t  *ngx_http_chat_rt_subs[
                                   NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1];
static ngx_uint_t              ngx_http_chat_rt_nsubs;
static ngx_rbtree_t            ngx_http_chat_rt_channels;
static ngx_rbtree_node_t       ngx_http_chat_rt_sentinel;


ngx_int_t
ngx_http_chat_rt_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chat_module);

    ngx_rbtree_init(&ngx_http_chat_rt_channels, &ngx_http_chat_rt_sentinel,
                    ngx_http_chat_rt_insert);

    if (cmcf == NULL || !cmcf->realtime) {
        return NGX_OK;
    }

    /* connections of their own: a subscribed one takes no other command */
    for (i = 0; i <= ngx_http_chat_redis_shards_n(); i++) {
        ngx_http_chat_rt_subs[i] = ngx_http_chat_redis_shard_connect(cycle,
                                                                     i);
        if (ngx_http_chat_rt_subs[i] == NULL) {
            return NGX_ERROR;
        }

        ngx_http_chat_rt_nsubs = i + 1;

        ngx_http_chat_redis_on_connect(ngx_http_chat_rt_subs[i],
                                       ngx_http_chat_rt_subscribed,
                                       (void *) (uintptr_t) i);
    }

    return NGX_OK;
}


void
ngx_http_chat_rt_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_http_chat_rt_nsubs; i++) {
        ngx_http_chat_redis_destroy(ngx_http_chat_rt_subs[i]);
        ngx_http_chat_rt_subs[i] = NULL;
    }

    ngx_http_chat_rt_nsubs = 0;

    ngx_http_chat_rt_paced_exit();
}


/*
 * After every (re)connect of a shard's subscriber: the channels there
 * that the sockets here need, the barriers ("eiob:", chat_redis's only)
 * last, whose confirmations say that the others are live; then the
 * sockets hear that what was published meanwhile may have been lost to
 * them (every socket: one may have a chat there).
 */
static void
ngx_http_chat_rt_subscribed(void *data)
{
    ngx_uint_t  shard;

    shard = (uintptr_t) data;

    if (ngx_http_chat_rt_channels.root != &ngx_http_chat_rt_sentinel) {
        ngx_http_chat_rt_resubscribe(ngx_http_chat_rt_channels.root,
                                     &ngx_http_chat_rt_sentinel, shard, 0);
        ngx_http_chat_rt_resubscribe(ngx_http_chat_rt_channels.root,
                                     &ngx_http_chat_rt_sentinel, shard, 1);

        ngx_http_chat_rt_access_reconnected();
    }
}


/* the shard of a channel: chats, users, sockets and presence are spread */
static ngx_uint_t
ngx_http_chat_rt_shard(u_char *name, size_t len)
{
    if (len != 5 + NGX_HTTP_CHAT_RT_ID_LEN
        || !(ngx_strncmp(name, "chat:", 5) == 0
             || ngx_strncmp(name, "user:", 5) == 0
             || ngx_strncmp(name, "sock:", 5) == 0
             || ngx_strncmp(name, "pres:", 5) == 0))
    {
        return 0;
    }

    return ngx_http_chat_redis_shard_of(name + 5, NGX_HTTP_CHAT_RT_ID_LEN);
}


/* the signed-in sessions here: each is on its user's channel, once */
ngx_int_t
ngx_http_chat_rt_sessions(ngx_array_t *out)
{
    if (ngx_http_chat_rt_channels.root == &ngx_http_chat_rt_sentinel) {
        return NGX_OK;
    }

    return ngx_http_chat_rt_collect(ngx_http_chat_rt_channels.root,
                                    &ngx_http_chat_rt_sentinel, out);
}


static ngx_int_t
ngx_http_chat_rt_collect(ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel,
    ngx_array_t *out)
{
    ngx_queue_t                  *q;
    ngx_http_chat_rt_link_t      *link;
    ngx_http_chat_rt_channel_t   *ch;
    ngx_http_chat_rt_session_t  **sp;

    if (node->left != sentinel
        && ngx_http_chat_rt_collect(node->left, sentinel, out) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ch = (ngx_http_chat_rt_channel_t *) node;

    if (ngx_strncmp(ch->name, "user:", 5) == 0) {
        for (q = ngx_queue_head(&ch->links);
             q != ngx_queue_sentinel(&ch->links);
             q = ngx_queue_next(q))
        {
            link = ngx_queue_data(q, ngx_http_chat_rt_link_t, in_channel);

            if (link->session == NULL || !link->session->authenticated) {
                continue;
            }

            sp = ngx_array_push(out);
            if (sp == NULL) {
                return NGX_ERROR;
            }

            *sp = link->session;
        }
    }

    if (node->right != sentinel) {
        return ngx_http_chat_rt_collect(node->right, sentinel, out);
    }

    return NGX_OK;
}


/*
 * The chats a session's user is a member of, read again: it leaves the
 * chat channels not among ids and joins those it missed.
 */
void
ngx_http_chat_rt_keep_chats(ngx_http_chat_rt_session_t *s, json_t *ids)
{
    size_t                    i;
    json_t                   *v;
    ngx_str_t                 chat_id;
    ngx_uint_t                found;
    ngx_queue_t              *q, *next;
    ngx_http_chat_rt_link_t  *link;

    if (!json_is_array(ids)) {
        return;
    }

    for (q = ngx_queue_head(&s->chats);
         q != ngx_queue_sentinel(&s->chats);
         q = next)
    {
        next = ngx_queue_next(q);
        link = ngx_queue_data(q, ngx_http_chat_rt_link_t, in_session);

        if (ngx_strncmp(link->channel->name, "chat:", 5) != 0) {
            continue;
        }

        found = 0;

        json_array_foreach(ids, i, v) {
            if (json_is_string(v)
                && json_string_length(v) == NGX_HTTP_CHAT_RT_ID_LEN
                && ngx_strncmp(json_string_value(v), link->channel->name + 5,
                               NGX_HTTP_CHAT_RT_ID_LEN)
                   == 0)
            {
                found = 1;
                break;
            }
        }

        if (!found) {
            ngx_http_chat_rt_unlink(link);
        }
    }

    json_array_foreach(ids, i, v) {
        if (json_is_string(v)) {
            chat_id.data = (u_char *) json_string_value(v);
            chat_id.len = json_string_length(v);
            (void) ngx_http_chat_rt_join_chat(s, &chat_id);
        }
    }
}


static void
ngx_http_chat_rt_resubscribe(ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, ngx_uint_t shard, ngx_uint_t barriers)
{
    ngx_str_t                    name;
    ngx_http_chat_rt_channel_t  *ch;

    if (node->left != sentinel) {
        ngx_http_chat_rt_resubscribe(node->left, sentinel, shard, barriers);
    }

    ch = (ngx_http_chat_rt_channel_t *) node;
    name.data = ch->name;
    name.len = ch->len;

    if (ch->shard == shard
        && (ngx_strncmp(ch->name, "eiob:", 5) == 0) == barriers)
    {
        (void) ngx_http_chat_redis_subscribe(ngx_http_chat_rt_subs[shard], 1,
                                             &name, ngx_http_chat_rt_message,
                                             NULL);
    }

    if (node->right != sentinel) {
        ngx_http_chat_rt_resubscribe(node->right, sentinel, shard, barriers);
    }
}


ngx_int_t
ngx_http_chat_rt_join_user(ngx_http_chat_rt_session_t *s)
{
    return ngx_http_chat_rt_link(s, "user:", s->user);
}


/*
 * The socket's own channel, joined when it first takes part in a call:
 * idle sockets pay nothing for it
 */
ngx_int_t
ngx_http_chat_rt_join_sock(ngx_http_chat_rt_session_t *s)
{
    char        hex[25];
    bson_oid_t  oid;

    if (s->sock[0] == '\0') {
        bson_oid_init(&oid, NULL);
        bson_oid_to_string(&oid, hex);
        ngx_memcpy(s->sock, hex, NGX_HTTP_CHAT_RT_ID_LEN);
    }

    return ngx_http_chat_rt_link(s, "sock:", s->sock);
}


ngx_int_t
ngx_http_chat_rt_join_chat(ngx_http_chat_rt_session_t *s, ngx_str_t *chat_id)
{
    if (chat_id->len != NGX_HTTP_CHAT_RT_ID_LEN) {
        return NGX_DECLINED;
    }

    return ngx_http_chat_rt_link(s, "chat:", chat_id->data);
}


void
ngx_http_chat_rt_leave_chat(ngx_http_chat_rt_session_t *s, ngx_str_t *chat_id)
{
    ngx_queue_t              *q;
    ngx_http_chat_rt_link_t  *link;

    if (chat_id->len != NGX_HTTP_CHAT_RT_ID_LEN) {
        return;
    }

    for (q = ngx_queue_head(&s->chats);
         q != ngx_queue_sentinel(&s->chats);
         q = ngx_queue_next(q))
    {
        link = ngx_queue_data(q, ngx_http_chat_rt_link_t, in_session);

        if (link->channel->name[0] == 'c'
            && ngx_strncmp(link->channel->name + 5, chat_id->data,
                           NGX_HTTP_CHAT_RT_ID_LEN) == 0)
        {
            ngx_http_chat_rt_unlink(link);
            return;
        }
    }
}


ngx_int_t
ngx_http_chat_rt_join_presence(ngx_http_chat_rt_session_t *s,
    ngx_str_t *user_id)
{
    if (user_id->len != NGX_HTTP_CHAT_RT_ID_LEN) {
        return NGX_DECLINED;
    }

    return ngx_http_chat_rt_link(s, "pres:", user_id->data);
}


ngx_uint_t
ngx_http_chat_rt_in_chat(ngx_http_chat_rt_session_t *s, ngx_str_t *chat_id)
{
    ngx_queue_t              *q;
    ngx_http_chat_rt_link_t  *link;

    for (q = ngx_queue_head(&s->chats);
         q != ngx_queue_sentinel(&s->chats);
         q = ngx_queue_next(q))
    {
        link = ngx_queue_data(q, ngx_http_chat_rt_link_t, in_session);

        if (link->channel->name[0] == 'c'
            && chat_id->len == NGX_HTTP_CHAT_RT_ID_LEN
            && ngx_strncmp(link->channel->name + 5, chat_id->data,
                           NGX_HTTP_CHAT_RT_ID_LEN) == 0)
        {
            return 1;
        }
    }

    return 0;
}


void
ngx_http_chat_rt_leave_all(ngx_http_chat_rt_session_t *s)
{
    ngx_queue_t              *q;
    ngx_http_chat_rt_link_t  *link;

    while (!ngx_queue_empty(&s->chats)) {
        q = ngx_queue_head(&s->chats);
        link = ngx_queue_data(q, ngx_http_chat_rt_link_t, in_session);
        ngx_http_chat_rt_unlink(link);
    }
}


static ngx_int_t
ngx_http_chat_rt_link(ngx_http_chat_rt_session_t *s, const char *kind,
    u_char *id)
{
    u_char                       name[NGX_HTTP_CHAT_RT_NAME];
    size_t                       len;
    ngx_str_t                    channel;
    ngx_queue_t                 *q;
    ngx_http_chat_rt_link_t     *link;
    ngx_http_chat_rt_channel_t  *ch;

    len = ngx_cpymem(ngx_cpymem(name, kind, 5), id, NGX_HTTP_CHAT_RT_ID_LEN)
          - name;

    ch = ngx_http_chat_rt_channel(name, len, 1);
    if (ch == NULL) {
        return NGX_ERROR;
    }

    for (q = ngx_queue_head(&s->chats);
         q != ngx_queue_sentinel(&s->chats);
         q = ngx_queue_next(q))
    {
        link = ngx_queue_data(q, ngx_http_chat_rt_link_t, in_session);

        if (link->channel == ch) {
            return NGX_OK;
        }
    }

    link = ngx_alloc(sizeof(ngx_http_chat_rt_link_t), ngx_cycle->log);
    if (link == NULL) {
        if (ch->count == 0) {
            ngx_rbtree_delete(&ngx_http_chat_rt_channels, &ch->node);
            ngx_free(ch);
        }

        return NGX_ERROR;
    }

    link->session = s;
    link->channel = ch;
    link->wake = NULL;
    link->data = NULL;
    ngx_queue_insert_tail(&ch->links, &link->in_channel);
    ngx_queue_insert_tail(&s->chats, &link->in_session);

    if (ch->count++ == 0) {
        channel.data = ch->name;
        channel.len = ch->len;

        /* not connected: the connect handler subscribes to everything */
        (void) ngx_http_chat_redis_subscribe(
                                   ngx_http_chat_rt_subs[ch->shard], 1,
                                   &channel, ngx_http_chat_rt_message, NULL);
    }

    return NGX_OK;
}


static void
ngx_http_chat_rt_unlink(ngx_http_chat_rt_link_t *link)
{
    ngx_http_chat_rt_channel_t  *ch;

    ch = link->channel;

    ngx_queue_remove(&link->in_channel);
    ngx_queue_remove(&link->in_session);
    ngx_free(link);

    ngx_http_chat_rt_release(ch);
}


/* the last link (or the hold of a delivery) gone: unsubscribe */
static void
ngx_http_chat_rt_release(ngx_http_chat_rt_channel_t *ch)
{
    ngx_str_t  channel;

    if (--ch->count) {
        return;
    }

    channel.data = ch->name;
    channel.len = ch->len;

    (void) ngx_http_chat_redis_subscribe(ngx_http_chat_rt_subs[ch->shard], 0,
                                         &channel, ngx_http_chat_rt_message,
                                         NULL);

    ngx_rbtree_delete(&ngx_http_chat_rt_channels, &ch->node);
    ngx_free(ch);
}


static ngx_http_chat_rt_channel_t *
ngx_http_chat_rt_channel(u_char *name, size_t len, ngx_uint_t create)
{
    uint32_t                     hash;
    ngx_int_t                    rc;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_chat_rt_channel_t  *ch;

    hash = ngx_crc32_short(name, len);

    node = ngx_http_chat_rt_channels.root;
    sentinel = ngx_http_chat_rt_channels.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        ch = (ngx_http_chat_rt_channel_t *) node;

        rc = ngx_memn2cmp(name, ch->name, len, ch->len);

        if (rc == 0) {
            return ch;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    if (!create || len > NGX_HTTP_CHAT_RT_NAME) {
        return NULL;
    }

    ch = ngx_calloc(sizeof(ngx_http_chat_rt_channel_t), ngx_cycle->log);
    if (ch == NULL) {
        return NULL;
    }

    ch->node.key = hash;
    ch->shard = ngx_http_chat_rt_shard(name, len);
    ch->len = len;
    ngx_memcpy(ch->name, name, len);
    ngx_queue_init(&ch->links);

    ngx_rbtree_insert(&ngx_http_chat_rt_channels, &ch->node);

    return ch;
}


static void
ngx_http_chat_rt_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t          **p;
    ngx_http_chat_rt_channel_t  *a, *b;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            a = (ngx_http_chat_rt_channel_t *) node;
            b = (ngx_http_chat_rt_channel_t *) temp;

            p = (ngx_memn2cmp(a->name, b->name, a->len, b->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* every reply of every subscription: only "message" carries an event */
static void
ngx_http_chat_rt_message(redisReply *reply, void *data)
{
    redisReply                  *kind, *name, *payload;
    ngx_http_chat_rt_channel_t  *ch;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3)
    {
        return;
    }

    kind = reply->element[0];
    name = reply->element[1];
    payload = reply->element[2];

    if (kind->type == REDIS_REPLY_STRING && kind->len == 9
        && ngx_strncmp(kind->str, "subscribe", 9) == 0
        && name->type == REDIS_REPLY_STRING && name->len > 5
        && (ngx_strncmp(name->str, "eiob:", 5) == 0
            || ngx_strncmp(name->str, "eiow:", 5) == 0))
    {
        /*
         * a barrier: every subscription asked before it is live; a
         * polling GET's wake-up: what was queued before it is looked for
         * again (ngx_http_chat_sio_poll.c)
         */
        ch = ngx_http_chat_rt_channel((u_char *) name->str, name->len, 0);
        if (ch) {
            ngx_http_chat_rt_relay(ch, (u_char *) "", 0);
        }

        return;
    }

    if (kind->type != REDIS_REPLY_STRING || kind->len != 7
        || ngx_strncmp(kind->str, "message", 7) != 0
        || name->type != REDIS_REPLY_STRING
        || payload->type != REDIS_REPLY_STRING)
    {
        return;
    }

    if (payload->len <= NGX_HTTP_CHAT_RT_HEADER
        && !(name->len > 3 && ngx_strncmp(name->str, "eio", 3) == 0))
    {
        return;
    }

    ch = ngx_http_chat_rt_channel((u_char *) name->str, name->len, 0);
    if (ch == NULL) {
        return;     /* the last socket left while the message flew */
    }

    if (ngx_strncmp(ch->name, "eio", 3) == 0) {
        ngx_http_chat_rt_relay(ch, (u_char *) payload->str, payload->len);
        return;
    }

    ngx_http_chat_rt_deliver(ch, (u_char *) payload->str, payload->len);
}


static void
ngx_http_chat_rt_deliver(ngx_http_chat_rt_channel_t *ch, u_char *msg,
    size_t len)
{
    u_char                      *origin, *chat;
    ngx_str_t                    chat_id;
    ngx_uint_t                   delivered, ahead;
    ngx_queue_t                 *q, *next;
    ngx_http_chat_rt_link_t     *link;
    ngx_http_chat_ws_buf_t      *buf, *sio_buf, *b;
    ngx_http_chat_rt_session_t  *s;

    if (ngx_strncmp(ch->name, "pres:", 5) == 0) {
        ngx_http_chat_rt_deliver_presence(ch, msg, len);
        return;
    }

    origin = msg + 1;
    sio_buf = NULL;
    delivered = 0;
    chat = msg + 1 + NGX_HTTP_CHAT_RT_ID_LEN;

    chat_id.data = chat;
    chat_id.len = NGX_HTTP_CHAT_RT_ID_LEN;

    /* encoded once, shared by every socket here */
    buf = ngx_http_chat_ws_frame(NGX_HTTP_CHAT_WS_TEXT, 0,
                                 msg + NGX_HTTP_CHAT_RT_HEADER,
                                 len - NGX_HTTP_CHAT_RT_HEADER);
    if (buf == NULL) {
        return;
    }

    buf->refs = 1;

    /* held: sockets that fail or leave cannot free it under the loop */
    ch->count++;

    /* joins, leaves and revocations change links: no reading ahead */
    ahead = (msg[0] != 'j' && msg[0] != 'l' && msg[0] != 'r');

    for (q = ngx_queue_head(&ch->links);
         q != ngx_queue_sentinel(&ch->links);
         q = next)
    {
        next = ngx_queue_next(q);
        link = ngx_queue_data(q, ngx_http_chat_rt_link_t, in_channel);
        s = link->session;

        if (ahead) {
            ngx_http_chat_rt_prefetch(next, ngx_queue_sentinel(&ch->links));
        }

        if (msg[0] == 'x'
            && ngx_strncmp(s->user, origin, NGX_HTTP_CHAT_RT_ID_LEN) == 0)
        {
            continue;
        }

        if (msg[0] == 'o'
            && ngx_strncmp(s->sock, chat, NGX_HTTP_CHAT_RT_ID_LEN) == 0)
        {
            continue;
        }

        if (msg[0] == 's'
            && (s->session_id.len != chat_id.len
                || ngx_strncmp(s->session_id.data, chat_id.data,
                               chat_id.len) != 0))
        {
            continue;
        }

        if (msg[0] == 'j' && ngx_http_chat_rt_join_chat(s, &chat_id)
                             == NGX_ERROR)
        {
            continue;
        }

        if (msg[0] == 'l') {
            /* after this socket's link, the chat's links may change */
            ngx_http_chat_rt_leave_chat(s, &chat_id);
        }

        /* a Socket.IO socket: the same event as an EVENT packet */
        b = buf;

        if (s->sio) {
            if (sio_buf == NULL) {
                sio_buf = ngx_http_chat_sio_frame(
                              msg + NGX_HTTP_CHAT_RT_HEADER,
                              len - NGX_HTTP_CHAT_RT_HEADER);
                if (sio_buf == NULL) {
                    continue;
                }

                sio_buf->refs = 1;
            }

            b = sio_buf;
        }

        if (msg[0] == 'r') {
            /* a revoked session: only its own sockets hear it, and go */
            if (s->session_id.len != chat_id.len
                || ngx_strncmp(s->session_id.data, chat_id.data,
                               chat_id.len) != 0)
            {
                continue;
            }

            if (ngx_http_chat_ws_send_buf(s->ws, b) == NGX_OK) {
                ngx_http_chat_rt_revoked(s, NGX_HTTP_CHAT_WS_POLICY,
                                         "session revoked");
            }

            continue;
        }

        if (s->sio && s->sio->left) {
            /* a Socket.IO socket out of its namespace hears nothing */
            continue;
        }

        if (s->sio && s->sio->holding) {
            /* an upgrade's WebSocket: after what the polling one queued */
            (void) ngx_http_chat_sio_hold_frame(s, b);
            continue;
        }

        /*
         * A socket that fails here is closed: its free is posted.  The
         * sends of a message go in one call (ngx_http_chat_ws_batch.c),
         * unless joins or leaves run beside them and might write too.
         */
        if ((ahead ? ngx_http_chat_ws_batch_add(s->ws, b)
                   : ngx_http_chat_ws_send_buf(s->ws, b))
            == NGX_OK)
        {
            delivered++;
        }
    }

    ngx_http_chat_ws_batch_flush();

    if (delivered) {
        ngx_http_chat_rt_delivered(msg + NGX_HTTP_CHAT_RT_HEADER,
                                   len - NGX_HTTP_CHAT_RT_HEADER, delivered);
    }

    ngx_http_chat_ws_buf_release(buf);

    if (sio_buf) {
        ngx_http_chat_ws_buf_release(sio_buf);
    }
    ngx_http_chat_rt_release(ch);
}


/*
 * A write to a socket reads its link, session, WebSocket, connection and
 * write event, five cache misses in a row at thousands of sockets.  While
 * one socket's send() runs, the next sockets' are fetched, each a level
 * further down the chain than the one after it: every pointer read here
 * is in a line fetched one write before.  q is the link after the one
 * being written to; no link after it goes while a write runs (a failed
 * socket's free is posted).
 */
static ngx_inline void
ngx_http_chat_rt_prefetch(ngx_queue_t *q, ngx_queue_t *end)
{
    ngx_uint_t                   k;
    ngx_connection_t            *c;
    ngx_http_chat_rt_link_t     *link;
    ngx_http_chat_rt_session_t  *s;

    for (k = 0; k < 4 && q != end; k++, q = ngx_queue_next(q)) {
        link = ngx_queue_data(q, ngx_http_chat_rt_link_t, in_channel);
        s = link->session;

        if (s == NULL) {
            continue;
        }

        switch (k) {

        case 0:
            c = s->ws->connection;
            ngx_http_chat_prefetch(c->write);
            break;

        case 1:
            c = s->ws->connection;
            ngx_http_chat_prefetch(c);
            ngx_http_chat_prefetch(&c->sent);
            break;

        case 2:
            ngx_http_chat_prefetch(s->ws);
            ngx_http_chat_prefetch(&s->ws->queued);
            break;

        default: /* 3 */
            ngx_http_chat_prefetch(s);
            break;
        }
    }

    if (q != end) {
        ngx_http_chat_prefetch(q);
    }
}


/*
 * For the metrics: n writes of an event; a new message's time from its
 * commit (its createdAt, written by the store) to these writes, once per
 * write
 */
static void
ngx_http_chat_rt_delivered(u_char *json, size_t len, ngx_uint_t n)
{
    u_char   *p, *last;
    int64_t   at;

    static u_char  event[] = "\"event\":\"new_message\"";
    static u_char  created[] = "\"createdAt\":\"";

    ngx_http_chat_metric_add(NGX_HTTP_CHAT_M_DELIVERIES, n);

    if (ngx_http_chat_metrics == NULL
        || ngx_strlcasestrn(json, json + ngx_min(len, 64), event,
                            sizeof(event) - 2) == NULL)
    {
        return;
    }

    last = json + len;
    p = ngx_strlcasestrn(json, last, created, sizeof(created) - 2);

    if (p == NULL) {
        return;
    }

    p += sizeof(created) - 1;
    at = ngx_http_chat_metric_iso_ms(p, last - p);

    if (at > 0) {
        ngx_http_chat_metric_observe_n(
                         &ngx_http_chat_metrics->h[NGX_HTTP_CHAT_H_DELIVERY],
                         (ngx_msec_int_t) (ngx_http_chat_rt_now_ms() - at), n);
    }
}


/*
 * A presence event: each subscriber is let in again, as it is now (a
 * block or a privacy setting made after the subscription counts).
 */
static void
ngx_http_chat_rt_deliver_presence(ngx_http_chat_rt_channel_t *ch,
    u_char *msg, size_t len)
{
    ngx_queue_t                 *q, *next;
    ngx_http_chat_rt_link_t     *link;
    ngx_http_chat_rt_session_t  *s;

    ch->count++;

    for (q = ngx_queue_head(&ch->links);
         q != ngx_queue_sentinel(&ch->links);
         q = next)
    {
        next = ngx_queue_next(q);
        link = ngx_queue_data(q, ngx_http_chat_rt_link_t, in_channel);
        s = link->session;

        if (s == NULL) {
            continue;
        }

        ngx_http_chat_rt_presence_deliver(s, msg + NGX_HTTP_CHAT_RT_HEADER,
                                          len - NGX_HTTP_CHAT_RT_HEADER);
    }

    ngx_http_chat_rt_release(ch);
}


/*
 * Socket.IO polling (ngx_http_chat_sio_poll.c): "eioi:<sid>" carries what
 * a client posted to the worker that holds its session, "eiow:<sid>"
 * wakes the requests waiting for what the session has to say.
 */
static void
ngx_http_chat_rt_relay(ngx_http_chat_rt_channel_t *ch, u_char *msg,
    size_t len)
{
    ngx_queue_t              *q, *next;
    ngx_http_chat_rt_link_t  *link;

    ch->count++;

    for (q = ngx_queue_head(&ch->links);
         q != ngx_queue_sentinel(&ch->links);
         q = next)
    {
        next = ngx_queue_next(q);
        link = ngx_queue_data(q, ngx_http_chat_rt_link_t, in_channel);

        if (link->wake) {
            link->wake(link->data, msg, len);

        } else if (link->session) {
            ngx_http_chat_sio_relayed(link->session, msg, len);
        }
    }

    ngx_http_chat_rt_release(ch);
}


/* a waiter on kind:id (a held polling request); NULL when out of memory */
ngx_http_chat_rt_link_t *
ngx_http_chat_rt_wait(const char *kind, u_char *id,
    ngx_http_chat_rt_wake_pt wake, void *data)
{
    u_char                       name[NGX_HTTP_CHAT_RT_NAME];
    size_t                       len;
    ngx_str_t                    channel;
    ngx_http_chat_rt_link_t     *link;
    ngx_http_chat_rt_channel_t  *ch;

    len = ngx_cpymem(ngx_cpymem(name, kind, 5), id, NGX_HTTP_CHAT_RT_ID_LEN)
          - name;

    ch = ngx_http_chat_rt_channel(name, len, 1);
    if (ch == NULL) {
        return NULL;
    }

    link = ngx_calloc(sizeof(ngx_http_chat_rt_link_t), ngx_cycle->log);
    if (link == NULL) {
        if (ch->count == 0) {
            ngx_rbtree_delete(&ngx_http_chat_rt_channels, &ch->node);
            ngx_free(ch);
        }

        return NULL;
    }

    link->channel = ch;
    link->wake = wake;
    link->data = data;
    ngx_queue_init(&link->in_session);
    ngx_queue_insert_tail(&ch->links, &link->in_channel);

    if (ch->count++ == 0) {
        channel.data = ch->name;
        channel.len = ch->len;

        (void) ngx_http_chat_redis_subscribe(
                                   ngx_http_chat_rt_subs[ch->shard], 1,
                                   &channel, ngx_http_chat_rt_message, NULL);
    }

    return link;
}


void
ngx_http_chat_rt_unwait(ngx_http_chat_rt_link_t *link)
{
    ngx_http_chat_rt_unlink(link);
}


/* the session holding a Socket.IO polling transport hears its client */
ngx_int_t
ngx_http_chat_rt_join_relay(ngx_http_chat_rt_session_t *s, u_char *sid)
{
    return ngx_http_chat_rt_link(s, "eioi:", sid);
}


/* PUBLISH channel message, raw; NGX_DECLINED when Redis is away */
ngx_int_t
ngx_http_chat_rt_publish_raw(const char *kind, u_char *id, u_char *msg,
    size_t len)
{
    u_char       name[NGX_HTTP_CHAT_RT_NAME];
    const char  *argv[3];
    size_t       argvlen[3];

    argv[0] = "PUBLISH";
    argvlen[0] = 7;
    argv[1] = (const char *) name;
    argvlen[1] = ngx_cpymem(ngx_cpymem(name, kind, 5), id,
                            NGX_HTTP_CHAT_RT_ID_LEN) - name;
    argv[2] = (const char *) msg;
    argvlen[2] = len;

    return ngx_http_chat_redis_command_argv(
                  ngx_http_chat_redis_shard(ngx_http_chat_rt_shard(name,
                                                                argvlen[1])),
                  NULL, NULL, 3, argv, argvlen);
}


/*
 * Publishes {"event", "data"} on kind:id.  Best effort: when Redis is
 * away the event is lost for the sockets, which resync from MongoDB.
 */
void
ngx_http_chat_rt_publish(const char *kind, ngx_str_t *id, const char *event,
    json_t *data)
{
    ngx_http_chat_rt_publish_as(kind, id, '-', NULL, NULL, event, data);
}


void
ngx_http_chat_rt_publish_as(const char *kind, ngx_str_t *id, u_char flag,
    ngx_str_t *origin, ngx_str_t *chat, const char *event, json_t *data)
{
    u_char                 *p, name[NGX_HTTP_CHAT_RT_NAME];
    char                   *json;
    size_t                  len, jlen, nlen;
    json_t                 *env;
    const char             *argv[3];
    size_t                  argvlen[3];
    ngx_http_chat_redis_t  *rds;

    if (id->len != NGX_HTTP_CHAT_RT_ID_LEN) {
        return;
    }

    nlen = ngx_cpymem(ngx_cpymem(name, kind, 5), id->data,
                      NGX_HTTP_CHAT_RT_ID_LEN) - name;
    rds = ngx_http_chat_redis_shard(ngx_http_chat_rt_shard(name, nlen));

    if (!ngx_http_chat_redis_is_connected(rds)) {
        return;
    }

    env = json_pack("{s:s,s:O}", "event", event, "data", data);
    if (env == NULL) {
        return;
    }

    json = json_dumps(env, JSON_COMPACT);
    json_decref(env);

    if (json == NULL) {
        return;
    }

    jlen = ngx_strlen(json);
    len = NGX_HTTP_CHAT_RT_HEADER + jlen;

    p = ngx_alloc(len, ngx_cycle->log);
    if (p == NULL) {
        free(json);
        return;
    }

    p[0] = flag;
    ngx_memset(p + 1, '-', 2 * NGX_HTTP_CHAT_RT_ID_LEN);

    if (origin && origin->len == NGX_HTTP_CHAT_RT_ID_LEN) {
        ngx_memcpy(p + 1, origin->data, NGX_HTTP_CHAT_RT_ID_LEN);
    }

    if (chat && chat->len == NGX_HTTP_CHAT_RT_ID_LEN) {
        ngx_memcpy(p + 1 + NGX_HTTP_CHAT_RT_ID_LEN, chat->data,
                   NGX_HTTP_CHAT_RT_ID_LEN);
    }

    ngx_memcpy(p + NGX_HTTP_CHAT_RT_HEADER, json, jlen);
    free(json);

    argv[0] = "PUBLISH";
    argvlen[0] = 7;
    argv[1] = (const char *) name;
    argvlen[1] = nlen;
    argv[2] = (const char *) p;
    argvlen[2] = len;

    (void) ngx_http_chat_redis_command_argv(rds, NULL, NULL, 3, argv,
                                            argvlen);
    ngx_free(p);
}


static int64_t
ngx_http_chat_rt_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}
