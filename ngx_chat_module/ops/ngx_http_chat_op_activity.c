/*
 * Copyright (C) ngx_chat_module authors
 *
 * The chats' activity after their messages are stored, coalesced: a
 * table of pending chats, flushed as one MongoDB task at a time, and
 * each chat written at most once a second.
 */


#include "ngx_http_chat_op_activity.h"
#include "../store/ngx_http_chat_mongo.h"


/*
 * Flushes start at most this often: a burst to a chat costs one update a
 * window, a message after a quiet window is flushed at once.
 */
#define NGX_HTTP_CHAT_ACTIVITY_WINDOW  20

/*
 * A chat written less than this ago waits for the rest of it: a busy
 * chat, already near the top of its members' lists, costs the store one
 * update a second, not one a message (FerretDB's updates are a find and
 * a rewrite each); a chat quiet that long moves up at once.
 */
#define NGX_HTTP_CHAT_ACTIVITY_CHAT  1000

/* a failed flush is tried again after this, not at once */
#define NGX_HTTP_CHAT_ACTIVITY_RETRY  100
#define NGX_HTTP_CHAT_ACTIVITY_TRIES  2
#define NGX_HTTP_CHAT_ACTIVITY_POSTS  10      /* a second of tries */


/* a chat pending, or written within NGX_HTTP_CHAT_ACTIVITY_CHAT */
typedef struct {
    ngx_str_node_t              sn;        /* the chat id's bytes, hashed */
    ngx_http_chat_activity_t    act;
    ngx_msec_t                  written;   /* its last flush posted */
    unsigned                    pending:1;
    unsigned                    seen:1;    /* written is set */
} ngx_http_chat_activity_node_t;


static ngx_msec_t ngx_http_chat_op_activity_put(
    ngx_http_chat_activity_t *act);
static void ngx_http_chat_op_activity_next(void);
static void ngx_http_chat_op_activity_flush(void);
static void ngx_http_chat_op_activity_arm(ngx_msec_t delay,
    ngx_uint_t paced);
static void ngx_http_chat_op_activity_flushed(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_op_activity_timer(ngx_event_t *ev);
static void ngx_http_chat_op_activity_release(void);
static void ngx_http_chat_op_activity_drop(void);
static void ngx_http_chat_op_activity_hold(void);
static ngx_msec_t ngx_http_chat_op_activity_wait(
    ngx_http_chat_activity_node_t *an);
static void ngx_http_chat_op_activity_prune(void);


static ngx_rbtree_t       ngx_http_chat_activity_tree;
static ngx_rbtree_node_t  ngx_http_chat_activity_sentinel;
static ngx_uint_t         ngx_http_chat_activity_n;        /* pending */
static ngx_uint_t         ngx_http_chat_activity_flushing;
static ngx_uint_t         ngx_http_chat_activity_held;     /* the worker */
static ngx_uint_t         ngx_http_chat_activity_posts;    /* failed */
static ngx_uint_t         ngx_http_chat_activity_paced;    /* the timer */
static ngx_msec_t         ngx_http_chat_activity_last;     /* a flush */
static ngx_event_t        ngx_http_chat_activity_ev;
static ngx_connection_t   ngx_http_chat_activity_dummy;    /* timer's log */


void
ngx_http_chat_op_activity_add(const bson_oid_t *chat, int64_t seq)
{
    ngx_msec_t                 wait;
    ngx_msec_int_t             left;
    ngx_time_t                *tp;
    ngx_http_chat_activity_t   act;

    tp = ngx_timeofday();

    ngx_memzero(&act, sizeof(ngx_http_chat_activity_t));
    bson_oid_copy(chat, &act.chat);
    act.seq = seq;
    act.ms = (int64_t) tp->sec * 1000 + tp->msec;

    wait = ngx_http_chat_op_activity_put(&act);

    if (ngx_http_chat_activity_flushing) {
        return;
    }

    if (ngx_http_chat_activity_ev.timer_set) {
        if (!ngx_http_chat_activity_paced
            || wait == NGX_TIMER_INFINITE)
        {
            return;
        }

        /* the timer waits for busy chats: this one may be due sooner */
        left = (ngx_msec_int_t) (ngx_http_chat_activity_ev.timer.key
                                 - ngx_current_msec);

        if ((ngx_msec_int_t) wait >= left) {
            return;
        }

        ngx_del_timer(&ngx_http_chat_activity_ev);

        if (wait) {
            ngx_http_chat_op_activity_arm(wait, 1);
            return;
        }
    }

    ngx_http_chat_op_activity_next();
}


/*
 * Idle, at once, so that a lone message moves its chat up at once;
 * within the window of the last flush, at its end.
 */

static void
ngx_http_chat_op_activity_next(void)
{
    ngx_msec_t  elapsed;

    elapsed = ngx_current_msec - ngx_http_chat_activity_last;

    if (ngx_http_chat_activity_n == 0
        || elapsed >= NGX_HTTP_CHAT_ACTIVITY_WINDOW)
    {
        ngx_http_chat_op_activity_flush();
        return;
    }

    ngx_http_chat_op_activity_arm(NGX_HTTP_CHAT_ACTIVITY_WINDOW - elapsed, 0);
}


/* paced: the timer only waits for chats written a moment ago */

static void
ngx_http_chat_op_activity_arm(ngx_msec_t delay, ngx_uint_t paced)
{
    if (ngx_http_chat_activity_ev.timer_set) {
        return;
    }

    ngx_http_chat_activity_paced = paced;

    ngx_http_chat_activity_dummy.fd = (ngx_socket_t) -1;
    ngx_http_chat_activity_ev.data = &ngx_http_chat_activity_dummy;
    ngx_http_chat_activity_ev.handler = ngx_http_chat_op_activity_timer;
    ngx_http_chat_activity_ev.log = ngx_cycle->log;
    ngx_add_timer(&ngx_http_chat_activity_ev, delay);
}


/*
 * into the table: the highest seq and the latest time of each chat; the
 * ms until it may be written (0: now), NGX_TIMER_INFINITE when nothing
 * about when changed
 */

static ngx_msec_t
ngx_http_chat_op_activity_put(ngx_http_chat_activity_t *act)
{
    uint32_t                        hash;
    ngx_str_t                       id;
    ngx_http_chat_activity_node_t  *an;

    if (ngx_http_chat_activity_tree.root == NULL) {
        ngx_rbtree_init(&ngx_http_chat_activity_tree,
                        &ngx_http_chat_activity_sentinel,
                        ngx_str_rbtree_insert_value);
    }

    id.data = act->chat.bytes;
    id.len = sizeof(act->chat.bytes);
    hash = ngx_crc32_short(id.data, id.len);

    an = (ngx_http_chat_activity_node_t *)
         ngx_str_rbtree_lookup(&ngx_http_chat_activity_tree, &id, hash);

    if (an) {
        if (!an->pending) {
            /* written a moment ago: pending again */
            an->act = *act;
            an->act.failed = 0;
            an->pending = 1;
            ngx_http_chat_activity_n++;
            ngx_http_chat_op_activity_hold();
            return ngx_http_chat_op_activity_wait(an);
        }

        an->act.seq = ngx_max(an->act.seq, act->seq);
        an->act.ms = ngx_max(an->act.ms, act->ms);
        an->act.tries = ngx_max(an->act.tries, act->tries);
        return NGX_TIMER_INFINITE;
    }

    an = ngx_alloc(sizeof(ngx_http_chat_activity_node_t), ngx_cycle->log);
    if (an == NULL) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: a chat's activity was not stored (no memory)");
        return NGX_TIMER_INFINITE;
    }

    an->act = *act;
    an->act.failed = 0;
    an->pending = 1;
    an->seen = 0;
    an->written = 0;

    /* the id's bytes are the node's own, and never change */
    an->sn.node.key = hash;
    an->sn.str.data = an->act.chat.bytes;
    an->sn.str.len = sizeof(an->act.chat.bytes);
    ngx_rbtree_insert(&ngx_http_chat_activity_tree, &an->sn.node);
    ngx_http_chat_activity_n++;
    ngx_http_chat_op_activity_hold();

    return 0;
}


static void
ngx_http_chat_op_activity_hold(void)
{
    if (!ngx_http_chat_activity_held) {
        /* an exiting worker stays until it is stored */
        ngx_http_chat_activity_held = 1;
        ngx_http_chat_work_begin();
    }
}


/* 0: the chat's activity may be written now, else the ms to wait */
static ngx_msec_t
ngx_http_chat_op_activity_wait(ngx_http_chat_activity_node_t *an)
{
    ngx_msec_t  elapsed;

    if (!an->seen || an->act.tries || ngx_exiting) {
        /* never written here, a retry (its own pace), or the last ones */
        return 0;
    }

    elapsed = ngx_current_msec - an->written;

    return (elapsed >= NGX_HTTP_CHAT_ACTIVITY_CHAT)
           ? 0 : NGX_HTTP_CHAT_ACTIVITY_CHAT - elapsed;
}


/*
 * The chats due as one task, on failure to post again later; those
 * written a moment ago wait for their second, those idle that long go
 */

static void
ngx_http_chat_op_activity_flush(void)
{
    size_t                          size;
    ngx_msec_t                      wait, soonest;
    ngx_uint_t                      i;
    ngx_rbtree_node_t              *node;
    ngx_http_chat_activity_t       *act;
    ngx_http_chat_mongo_task_t     *t;
    ngx_http_chat_activity_arg_t   *a;
    ngx_http_chat_activity_node_t  *an;

    if (ngx_http_chat_activity_n == 0) {
        ngx_http_chat_op_activity_prune();
        ngx_http_chat_op_activity_release();
        return;
    }

    size = sizeof(ngx_http_chat_activity_arg_t)
           + ngx_http_chat_activity_n * sizeof(ngx_http_chat_activity_t);

    a = ngx_alloc(size, ngx_cycle->log);
    if (a == NULL) {
        goto later;
    }

    act = (ngx_http_chat_activity_t *) (a + 1);
    i = 0;
    soonest = NGX_HTTP_CHAT_ACTIVITY_CHAT;

    for (node = ngx_rbtree_min(ngx_http_chat_activity_tree.root,
                               ngx_http_chat_activity_tree.sentinel);
         node;
         node = ngx_rbtree_next(&ngx_http_chat_activity_tree, node))
    {
        an = (ngx_http_chat_activity_node_t *) node;

        if (!an->pending) {
            continue;
        }

        wait = ngx_http_chat_op_activity_wait(an);

        if (wait) {
            soonest = ngx_min(soonest, wait);
            continue;
        }

        act[i++] = an->act;
    }

    if (i == 0) {
        /* every chat pending was written a moment ago */
        ngx_free(a);
        ngx_http_chat_op_activity_arm(soonest, 1);
        return;
    }

    a->n = i;
    size = sizeof(ngx_http_chat_activity_arg_t)
           + i * sizeof(ngx_http_chat_activity_t);

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_chat_activity_run,
                                            ngx_http_chat_op_activity_flushed,
                                            NULL, a, size);
    ngx_free(a);

    /* on NGX_ERROR the task is freed */
    if (t == NULL || ngx_http_chat_mongo_post(t) != NGX_OK) {
        goto later;
    }

    /* posted: those chats wait for their next message, or go idle */
    ngx_http_chat_op_activity_prune();

    for (node = ngx_rbtree_min(ngx_http_chat_activity_tree.root,
                               ngx_http_chat_activity_tree.sentinel);
         node;
         node = ngx_rbtree_next(&ngx_http_chat_activity_tree, node))
    {
        an = (ngx_http_chat_activity_node_t *) node;

        if (!an->pending || ngx_http_chat_op_activity_wait(an)) {
            continue;
        }

        an->pending = 0;
        an->seen = 1;
        an->written = ngx_current_msec;
        ngx_http_chat_activity_n--;
    }

    ngx_http_chat_activity_flushing = 1;
    ngx_http_chat_activity_last = ngx_current_msec;
    ngx_http_chat_activity_posts = 0;

    return;

later:

    if (++ngx_http_chat_activity_posts > NGX_HTTP_CHAT_ACTIVITY_POSTS) {
        /* no end of tries: an exiting worker would never exit */
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: the activity of %ui chats was not stored: "
                      "cannot post it", ngx_http_chat_activity_n);
        ngx_http_chat_activity_posts = 0;
        ngx_http_chat_op_activity_drop();
        ngx_http_chat_op_activity_release();
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "chat: the chats' activity waits: cannot post it");

    ngx_http_chat_op_activity_arm(NGX_HTTP_CHAT_ACTIVITY_RETRY, 0);
}


/* the chats idle for their second leave the table */

static void
ngx_http_chat_op_activity_prune(void)
{
    ngx_rbtree_node_t              *node, *next;
    ngx_http_chat_activity_node_t  *an;

    if (ngx_http_chat_activity_tree.root == NULL
        || ngx_http_chat_activity_tree.root
           == ngx_http_chat_activity_tree.sentinel)
    {
        return;
    }

    for (node = ngx_rbtree_min(ngx_http_chat_activity_tree.root,
                               ngx_http_chat_activity_tree.sentinel);
         node;
         node = next)
    {
        next = ngx_rbtree_next(&ngx_http_chat_activity_tree, node);
        an = (ngx_http_chat_activity_node_t *) node;

        if (!an->pending
            && ngx_current_msec - an->written >= NGX_HTTP_CHAT_ACTIVITY_CHAT)
        {
            ngx_rbtree_delete(&ngx_http_chat_activity_tree, node);
            ngx_free(an);
        }
    }
}


/*
 * A flush ended: what failed goes back to the table once (its $max makes
 * a late second write harmless), and what came meanwhile is flushed now.
 */

static void
ngx_http_chat_op_activity_flushed(ngx_http_chat_mongo_task_t *t)
{
    char                           id[25];
    ngx_uint_t                     i, failed;
    ngx_http_chat_activity_t      *act;
    ngx_http_chat_activity_arg_t  *a;

    ngx_http_chat_activity_flushing = 0;

    a = t->arg;
    act = (ngx_http_chat_activity_t *) (a + 1);
    failed = 0;

    for (i = 0; i < a->n; i++) {
        if (!act[i].failed) {
            continue;
        }

        if (++act[i].tries < NGX_HTTP_CHAT_ACTIVITY_TRIES
            && !ngx_http_chat_ops_exited)
        {
            ngx_http_chat_op_activity_put(&act[i]);
            failed++;
            continue;
        }

        bson_oid_to_string(&act[i].chat, id);
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: the activity of chat %s (seq %L) was not "
                      "stored after %ui tries", id, act[i].seq,
                      act[i].tries);
    }

    if (failed) {
        /* MongoDB failed just now: not again at once */
        ngx_http_chat_op_activity_arm(NGX_HTTP_CHAT_ACTIVITY_RETRY, 0);
        return;
    }

    if (!ngx_http_chat_activity_ev.timer_set) {
        ngx_http_chat_op_activity_next();
    }
}


static void
ngx_http_chat_op_activity_timer(ngx_event_t *ev)
{
    if (!ngx_http_chat_activity_flushing) {
        ngx_http_chat_op_activity_flush();
    }
}


/* nothing pending and nothing in flight: the worker may exit */

static void
ngx_http_chat_op_activity_release(void)
{
    if (ngx_http_chat_activity_held
        && ngx_http_chat_activity_n == 0
        && !ngx_http_chat_activity_flushing
        && !ngx_http_chat_activity_ev.timer_set)
    {
        ngx_http_chat_activity_held = 0;
        ngx_http_chat_work_end();
    }
}


void
ngx_http_chat_op_activity_exit_process(void)
{
    if (ngx_http_chat_activity_n) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: the activity of %ui chats was not stored "
                      "when the worker exited", ngx_http_chat_activity_n);
    }

    ngx_http_chat_op_activity_drop();
}


static void
ngx_http_chat_op_activity_drop(void)
{
    ngx_rbtree_node_t  *node;

    if (ngx_http_chat_activity_tree.root == NULL) {
        return;
    }

    while (ngx_http_chat_activity_tree.root
           != ngx_http_chat_activity_tree.sentinel)
    {
        node = ngx_rbtree_min(ngx_http_chat_activity_tree.root,
                              ngx_http_chat_activity_tree.sentinel);
        ngx_rbtree_delete(&ngx_http_chat_activity_tree, node);
        ngx_free(node);
    }

    ngx_http_chat_activity_n = 0;
}
