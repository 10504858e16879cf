/*
 * Copyright (C) ngx_chat_module authors
 *
 * What an event reads (the socket's user at sign-in, its chats, a chat, a
 * page of messages, a user), read as the REST route reads it: the same
 * store step with the socket's user for viewer, on nobody's request (an
 * operation, ops/), and told as that route answers: status and JSON.
 * What a read needs of the session is copied into its argument first, so
 * a socket that goes only loses the answer.
 *
 * The reads of resyncs are paced: at most NGX_HTTP_CHAT_RT_PACED of them
 * are in the thread pool per worker, the others wait here in order.  A
 * fault tells every socket to resync at once, and a thousand reads ahead
 * of them in the pool's queue would hold up every send and request
 * behind the store's answers to all of them; paced, a send waits for a
 * few reads, and the resync takes as long as the store needs anyway.
 * A waiting read answers every later one that asks the same, and the
 * reads of a socket that goes leave the queue at once.
 */


#include "ngx_http_chat_rt.h"
#include "../auth/ngx_http_chat_auth.h"
#include "../store/ngx_http_chat_people.h"
#include "../store/ngx_http_chat_presence_read.h"
#include "../ops/ngx_http_chat_op_store.h"
#include "../ops/ngx_http_chat_op_chat_ids.h"
#include "../ops/ngx_http_chat_op_self.h"
#include "../util/ngx_http_chat_metrics.h"


typedef struct ngx_http_chat_rt_paced_s  ngx_http_chat_rt_paced_t;


typedef struct {
    ngx_http_chat_rt_session_t  *session;   /* NULL once it left */
    ngx_http_chat_rt_done_pt     done;
    void                        *data;
    const char                  *not_found; /* the 404's message, or NULL */
    ngx_queue_t                  queue;     /* in the session's reads */
    u_char                       sid[NGX_HTTP_CHAT_RT_ID_LEN];
    u_char                       uid[NGX_HTTP_CHAT_RT_ID_LEN];
    json_t                      *answer;    /* a hook's: what it lets by */
    ngx_str_t                    text;      /* a sign-in's profile, as JSON */
    ngx_str_t                   *text_out;  /* given it when it ends */
    unsigned                     signin:1;
    unsigned                     online:1;  /* users shown: Redis's */

    /* a paced read's: the read that answers it, and its place there */
    ngx_http_chat_rt_paced_t    *paced;
    ngx_queue_t                  link;
} ngx_http_chat_rt_read_t;


/*
 * One read of the store for the paced reads that ask the same (the same
 * step, user, chat and sequence number: a user's devices resyncing after
 * a reload ask alike), answered to each of them.  Only a read that waits
 * takes more readers: one that runs may have begun before they asked.
 */
struct ngx_http_chat_rt_paced_s {
    ngx_rbtree_node_t            node;      /* key: a hash of run and arg */
    ngx_queue_t                  wait;      /* in the queue, waiting */
    ngx_queue_t                  readers;   /* ngx_http_chat_rt_read_t */
    ngx_uint_t                   n;         /* of them */
    unsigned                     running:1;
    ngx_http_chat_mongo_run_pt   run;
    size_t                       size;
    u_char                       arg[1];    /* size bytes */
};


#define NGX_HTTP_CHAT_RT_PACED      8       /* in flight per worker */


static ngx_queue_t        ngx_http_chat_rt_paced_waiting;
static ngx_rbtree_t       ngx_http_chat_rt_paced_tree;
static ngx_rbtree_node_t  ngx_http_chat_rt_paced_sentinel;
static ngx_queue_t        ngx_http_chat_rt_paced_gone;   /* readers to end */
static ngx_uint_t         ngx_http_chat_rt_paced_n;
static ngx_event_t        ngx_http_chat_rt_paced_ev;
static ngx_connection_t   ngx_http_chat_rt_paced_dummy;   /* the log */


static ngx_http_chat_rt_read_t *ngx_http_chat_rt_read_new(
    ngx_http_chat_rt_session_t *s, ngx_http_chat_rt_done_pt done,
    void *data);
static ngx_int_t ngx_http_chat_rt_read_start(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    const char *not_found, ngx_uint_t online, ngx_http_chat_rt_done_pt done,
    void *data);
static void ngx_http_chat_rt_read_checked(void *data, ngx_int_t rc);
static void ngx_http_chat_rt_read_refused(ngx_http_chat_rt_read_t *rd,
    ngx_uint_t status, const char *code, const char *message);
static void ngx_http_chat_rt_read_answered(void *data, ngx_int_t rc,
    json_t *answer, const char *error);
static void ngx_http_chat_rt_read_end(ngx_http_chat_rt_read_t *rd,
    ngx_uint_t status, json_t *answer);
static void ngx_http_chat_rt_read_online(void *data);
static void ngx_http_chat_rt_read_hooked(void *data, ngx_int_t rc,
    u_char *content, size_t len, const char *reason);
static ngx_http_chat_rt_paced_t *ngx_http_chat_rt_paced_find(
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    ngx_rbtree_key_t key);
static ngx_int_t ngx_http_chat_rt_paced_start(ngx_http_chat_rt_paced_t *p);
static void ngx_http_chat_rt_paced_answered(void *data, ngx_int_t rc,
    json_t *answer, const char *error);
static void ngx_http_chat_rt_paced_unwait(ngx_http_chat_rt_paced_t *p);
static void ngx_http_chat_rt_paced_fail(ngx_http_chat_rt_paced_t *p);
static void ngx_http_chat_rt_paced_next(ngx_event_t *ev);


ngx_int_t
ngx_http_chat_rt_read_store(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    const char *not_found, ngx_http_chat_rt_done_pt done, void *data)
{
    return ngx_http_chat_rt_read_start(s, run, arg, size, not_found, 0, done,
                                       data);
}


static ngx_int_t
ngx_http_chat_rt_read_start(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    const char *not_found, ngx_uint_t online, ngx_http_chat_rt_done_pt done,
    void *data)
{
    ngx_http_chat_rt_read_t   *rd;
    ngx_http_chat_op_store_t  *op;

    rd = ngx_http_chat_rt_read_new(s, done, data);
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->not_found = not_found;
    rd->online = online ? 1 : 0;

    /* the operation copies arg; it never answers before this returns */
    if (ngx_http_chat_op_store(run, NULL, arg, size,
                               ngx_http_chat_rt_read_answered, rd, &op)
        != NGX_OK)
    {
        ngx_queue_remove(&rd->queue);
        ngx_free(rd);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* arg must be zeroed before it is filled: it is compared whole */
ngx_int_t
ngx_http_chat_rt_read_store_paced(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    const char *not_found, ngx_http_chat_rt_done_pt done, void *data)
{
    ngx_rbtree_key_t           key;
    ngx_http_chat_rt_read_t   *rd;
    ngx_http_chat_rt_paced_t  *p;

    if (ngx_http_chat_rt_paced_waiting.next == NULL) {
        ngx_queue_init(&ngx_http_chat_rt_paced_waiting);
        ngx_queue_init(&ngx_http_chat_rt_paced_gone);
        ngx_rbtree_init(&ngx_http_chat_rt_paced_tree,
                        &ngx_http_chat_rt_paced_sentinel,
                        ngx_rbtree_insert_value);
        ngx_http_chat_rt_paced_ev.handler = ngx_http_chat_rt_paced_next;
        ngx_http_chat_rt_paced_ev.log = ngx_cycle->log;
        ngx_http_chat_rt_paced_dummy.fd = (ngx_socket_t) -1;
        ngx_http_chat_rt_paced_ev.data = &ngx_http_chat_rt_paced_dummy;
    }

    rd = ngx_http_chat_rt_read_new(s, done, data);
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->not_found = not_found;

    key = ngx_murmur_hash2(arg, size) ^ (ngx_rbtree_key_t) (uintptr_t) run;

    p = ngx_http_chat_rt_paced_find(run, arg, size, key);

    if (p) {
        /* the same read waits already: it answers this one too */
        rd->paced = p;
        ngx_queue_insert_tail(&p->readers, &rd->link);
        p->n++;
        ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_RESYNC_SHARED);
        return NGX_OK;
    }

    p = ngx_alloc(offsetof(ngx_http_chat_rt_paced_t, arg) + size,
                  ngx_cycle->log);
    if (p == NULL) {
        ngx_queue_remove(&rd->queue);
        ngx_free(rd);
        return NGX_ERROR;
    }

    ngx_memzero(p, offsetof(ngx_http_chat_rt_paced_t, arg));
    ngx_memcpy(p->arg, arg, size);
    p->run = run;
    p->size = size;
    p->node.key = key;
    ngx_queue_init(&p->readers);
    ngx_queue_insert_tail(&p->readers, &rd->link);
    p->n = 1;
    rd->paced = p;

    if (ngx_http_chat_rt_paced_n < NGX_HTTP_CHAT_RT_PACED
        && ngx_queue_empty(&ngx_http_chat_rt_paced_waiting))
    {
        if (ngx_http_chat_rt_paced_start(p) != NGX_OK) {
            ngx_queue_remove(&rd->queue);
            ngx_free(rd);
            ngx_free(p);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    /* its turn comes when a read in flight ends */
    ngx_rbtree_insert(&ngx_http_chat_rt_paced_tree, &p->node);
    ngx_queue_insert_tail(&ngx_http_chat_rt_paced_waiting, &p->wait);
    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_RESYNC_WAITING);

    return NGX_OK;
}


static ngx_http_chat_rt_paced_t *
ngx_http_chat_rt_paced_find(ngx_http_chat_mongo_run_pt run, void *arg,
    size_t size, ngx_rbtree_key_t key)
{
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_chat_rt_paced_t  *p;

    node = ngx_http_chat_rt_paced_tree.root;
    sentinel = ngx_http_chat_rt_paced_tree.sentinel;

    /* equal keys go right of each other (ngx_rbtree_insert_value) */
    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        p = (ngx_http_chat_rt_paced_t *) node;

        if (p->run == run && p->size == size
            && ngx_memcmp(p->arg, arg, size) == 0)
        {
            return p;
        }

        node = node->right;
    }

    return NULL;
}


static ngx_int_t
ngx_http_chat_rt_paced_start(ngx_http_chat_rt_paced_t *p)
{
    ngx_http_chat_op_store_t  *op;

    /* the operation copies arg; it never answers before this returns */
    if (ngx_http_chat_op_store(p->run, NULL, p->arg, p->size,
                               ngx_http_chat_rt_paced_answered, p, &op)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p->running = 1;
    ngx_http_chat_rt_paced_n++;
    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_RESYNC_RUNNING);

    return NGX_OK;
}


/* the read's outcome, told to each of its readers (answer is given) */
static void
ngx_http_chat_rt_paced_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_rt_paced_t *p = data;

    ngx_queue_t              *q;
    ngx_http_chat_rt_read_t  *rd;

    ngx_http_chat_rt_paced_n--;
    ngx_http_chat_metric_dec(NGX_HTTP_CHAT_M_RESYNC_RUNNING);

    if (!ngx_queue_empty(&ngx_http_chat_rt_paced_waiting)
        && !ngx_http_chat_rt_paced_ev.posted)
    {
        ngx_post_event(&ngx_http_chat_rt_paced_ev, &ngx_posted_events);
    }

    /* the readers only read the answer: each holds a reference */
    while (!ngx_queue_empty(&p->readers)) {
        q = ngx_queue_head(&p->readers);
        rd = ngx_queue_data(q, ngx_http_chat_rt_read_t, link);
        ngx_queue_remove(q);
        rd->paced = NULL;

        ngx_http_chat_rt_read_answered(rd, rc, json_incref(answer), error);
    }

    json_decref(answer);
    ngx_free(p);
}


/* a waiting read leaves the queue: to run, or for nobody */
static void
ngx_http_chat_rt_paced_unwait(ngx_http_chat_rt_paced_t *p)
{
    ngx_queue_remove(&p->wait);
    ngx_rbtree_delete(&ngx_http_chat_rt_paced_tree, &p->node);
    ngx_http_chat_metric_dec(NGX_HTTP_CHAT_M_RESYNC_WAITING);

    if (p->n > 1) {
        ngx_http_chat_metric_add(NGX_HTTP_CHAT_M_RESYNC_SHARED,
                                 -(ngx_atomic_int_t) (p->n - 1));
    }
}


/* a read that cannot run: its readers end unread, each told */
static void
ngx_http_chat_rt_paced_fail(ngx_http_chat_rt_paced_t *p)
{
    ngx_queue_t              *q;
    ngx_http_chat_rt_read_t  *rd;

    while (!ngx_queue_empty(&p->readers)) {
        q = ngx_queue_head(&p->readers);
        rd = ngx_queue_data(q, ngx_http_chat_rt_read_t, link);
        ngx_queue_remove(q);
        rd->paced = NULL;
        ngx_http_chat_rt_read_end(rd, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
    }

    ngx_free(p);
}


/*
 * A paced read ended, or readers left: those that left end unread, then
 * the next reads start, in order, while there is room (a posted event,
 * so that a read's end never runs another's inside its own callback).
 */
static void
ngx_http_chat_rt_paced_next(ngx_event_t *ev)
{
    ngx_queue_t               *q;
    ngx_http_chat_rt_read_t   *rd;
    ngx_http_chat_rt_paced_t  *p;

    while (!ngx_queue_empty(&ngx_http_chat_rt_paced_gone)) {
        q = ngx_queue_head(&ngx_http_chat_rt_paced_gone);
        rd = ngx_queue_data(q, ngx_http_chat_rt_read_t, link);
        ngx_queue_remove(q);
        ngx_http_chat_rt_read_end(rd, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
    }

    while (!ngx_queue_empty(&ngx_http_chat_rt_paced_waiting)
           && ngx_http_chat_rt_paced_n < NGX_HTTP_CHAT_RT_PACED)
    {
        q = ngx_queue_head(&ngx_http_chat_rt_paced_waiting);
        p = ngx_queue_data(q, ngx_http_chat_rt_paced_t, wait);

        ngx_http_chat_rt_paced_unwait(p);

        if (ngx_http_chat_rt_paced_start(p) != NGX_OK) {
            ngx_http_chat_rt_paced_fail(p);
        }
    }
}


/* the worker goes: the reads that wait end unread, each told */
void
ngx_http_chat_rt_paced_exit(void)
{
    ngx_queue_t               *q;
    ngx_http_chat_rt_read_t   *rd;
    ngx_http_chat_rt_paced_t  *p;

    if (ngx_http_chat_rt_paced_waiting.next == NULL) {
        return;
    }

    if (ngx_http_chat_rt_paced_ev.posted) {
        ngx_delete_posted_event(&ngx_http_chat_rt_paced_ev);
    }

    while (!ngx_queue_empty(&ngx_http_chat_rt_paced_gone)) {
        q = ngx_queue_head(&ngx_http_chat_rt_paced_gone);
        rd = ngx_queue_data(q, ngx_http_chat_rt_read_t, link);
        ngx_queue_remove(q);
        rd->done(NULL, rd->data, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
        ngx_free(rd);
    }

    while (!ngx_queue_empty(&ngx_http_chat_rt_paced_waiting)) {
        q = ngx_queue_head(&ngx_http_chat_rt_paced_waiting);
        p = ngx_queue_data(q, ngx_http_chat_rt_paced_t, wait);
        ngx_http_chat_rt_paced_unwait(p);

        while (!ngx_queue_empty(&p->readers)) {
            q = ngx_queue_head(&p->readers);
            rd = ngx_queue_data(q, ngx_http_chat_rt_read_t, link);
            ngx_queue_remove(q);

            if (rd->session != NULL) {
                ngx_queue_remove(&rd->queue);
                rd->session = NULL;
            }

            rd->done(NULL, rd->data, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
            ngx_free(rd);
        }

        ngx_free(p);
    }
}


ngx_int_t
ngx_http_chat_rt_read_chat_ids(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_done_pt done, void *data)
{
    ngx_str_t                     user;
    ngx_http_chat_rt_read_t      *rd;
    ngx_http_chat_op_chat_ids_t  *op;

    rd = ngx_http_chat_rt_read_new(s, done, data);
    if (rd == NULL) {
        return NGX_ERROR;
    }

    user.data = s->user;
    user.len = NGX_HTTP_CHAT_RT_ID_LEN;

    if (ngx_http_chat_op_chat_ids(&user, ngx_http_chat_rt_read_answered, rd,
                                  &op)
        != NGX_OK)
    {
        ngx_queue_remove(&rd->queue);
        ngx_free(rd);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_rt_read_signin(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_claims_t *claims, ngx_str_t *text,
    ngx_http_chat_rt_done_pt done, void *data)
{
    ngx_int_t                 rc;
    ngx_str_t                 sid, uid, jti;
    ngx_http_chat_rt_read_t  *rd;

    rd = ngx_http_chat_rt_read_new(s, done, data);
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->signin = 1;
    rd->text_out = text;
    rd->not_found = "no such user";
    ngx_memcpy(rd->sid, claims->sid, NGX_HTTP_CHAT_RT_ID_LEN);
    ngx_memcpy(rd->uid, claims->sub, NGX_HTTP_CHAT_RT_ID_LEN);

    sid.data = rd->sid;
    sid.len = NGX_HTTP_CHAT_RT_ID_LEN;
    uid.data = rd->uid;
    uid.len = NGX_HTTP_CHAT_RT_ID_LEN;
    jti.data = claims->jti;
    jti.len = claims->jti_len;

    /* the gate's check: the session, and the token on its own */
    rc = ngx_http_chat_session_check(&sid, &uid, jti.len ? &jti : NULL,
                                     ngx_http_chat_rt_read_checked, rd);

    if (rc != NGX_OK) {
        ngx_queue_remove(&rd->queue);
        ngx_free(rd);

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_WARN, s->ws->connection->log, 0,
                          "chat: redis is not connected, access not checked");
        }

        return rc;
    }

    return NGX_OK;
}


/*
 * The site's hook on a socket's sign-in (lua-compat), once its token and
 * session are checked: the sign-in's answer (owned) comes back with 200
 * when the hook lets the socket in, else 403 sign_in_refused or 503
 * signin_hook_failed.  NGX_DECLINED: no hook, the answer is the caller's.
 */
ngx_int_t
ngx_http_chat_rt_read_hook(ngx_http_chat_rt_session_t *s, u_char *uid,
    json_t *answer, ngx_http_chat_rt_done_pt done, void *data)
{
    char                     *what;
    json_t                   *info;
    ngx_str_t                *addr;
    ngx_int_t                 rc;
    ngx_http_chat_rt_read_t  *rd;

    if (ngx_http_chat_events.socket_signin == NULL) {
        return NGX_DECLINED;
    }

    addr = &s->ws->connection->addr_text;

    /* the id the site may publish to (chat.publish_socket) */
    if (ngx_http_chat_rt_join_sock(s) != NGX_OK) {
        return NGX_ERROR;
    }

    info = json_pack("{s:s%,s:s%,s:s%,s:s,s:s,s:s%}",
                     "userId", uid, (size_t) NGX_HTTP_CHAT_RT_ID_LEN,
                     "sessionId", s->session_id.data, s->session_id.len,
                     "socketId", s->sock, (size_t) NGX_HTTP_CHAT_RT_ID_LEN,
                     "codec", s->sio ? "socketio" : "websocket",
                     "transport", s->gauge == 2 ? "polling" : "websocket",
                     "address", addr->data ? (char *) addr->data : "",
                     addr->data ? addr->len : 0);
    if (info == NULL) {
        return NGX_ERROR;
    }

    what = json_dumps(info, JSON_COMPACT);
    json_decref(info);

    if (what == NULL) {
        return NGX_ERROR;
    }

    rd = ngx_http_chat_rt_read_new(s, done, data);
    if (rd == NULL) {
        free(what);
        return NGX_ERROR;
    }

    rd->answer = answer;

    rc = ngx_http_chat_event_socket_signin((u_char *) what, ngx_strlen(what),
                                           ngx_http_chat_rt_read_hooked, rd);
    free(what);

    if (rc != NGX_OK) {
        /* the hook cannot run: the socket is not let in */
        ngx_http_chat_rt_read_hooked(rd, NGX_ERROR, NULL, 0,
                                     "the socket hook is not running");
    }

    return NGX_OK;
}


static void
ngx_http_chat_rt_read_hooked(void *data, ngx_int_t rc, u_char *content,
    size_t len, const char *reason)
{
    ngx_http_chat_rt_read_t  *rd = data;

    json_t  *answer;

    answer = rd->answer;
    rd->answer = NULL;

    if (rc == NGX_OK) {
        ngx_http_chat_rt_read_end(rd, NGX_HTTP_OK, answer);
        return;
    }

    json_decref(answer);

    ngx_http_chat_rt_read_refused(rd, rc == NGX_BUSY ? NGX_HTTP_FORBIDDEN
                                      : NGX_HTTP_SERVICE_UNAVAILABLE,
                                  rc == NGX_BUSY ? "sign_in_refused"
                                                 : "signin_hook_failed",
                                  reason);
}


ngx_int_t
ngx_http_chat_rt_read_user(ngx_http_chat_rt_session_t *s, ngx_str_t *uid,
    ngx_uint_t online, ngx_http_chat_rt_done_pt done, void *data)
{
    ngx_http_chat_people_arg_t  arg;

    if (!ngx_http_chat_is_oid(uid)) {
        return NGX_ERROR;
    }

    ngx_memzero(&arg, sizeof(ngx_http_chat_people_arg_t));
    ngx_http_chat_rt_me(s, &arg.viewer);
    bson_oid_init_from_string_unsafe(&arg.target, (char *) uid->data);
    arg.has_target = 1;

    return ngx_http_chat_rt_read_start(s, ngx_http_chat_people_view_run, &arg,
                                       sizeof(ngx_http_chat_people_arg_t),
                                       "no such user", online, done, data);
}


static ngx_http_chat_rt_read_t *
ngx_http_chat_rt_read_new(ngx_http_chat_rt_session_t *s,
    ngx_http_chat_rt_done_pt done, void *data)
{
    ngx_http_chat_rt_read_t  *rd;

    rd = ngx_calloc(sizeof(ngx_http_chat_rt_read_t), ngx_cycle->log);
    if (rd == NULL) {
        return NULL;
    }

    rd->session = s;
    rd->done = done;
    rd->data = data;
    ngx_queue_insert_tail(&s->reads, &rd->queue);

    return rd;
}


/* the session stands: the user's profile, as its owner sees it */
static void
ngx_http_chat_rt_read_checked(void *data, ngx_int_t rc)
{
    ngx_http_chat_rt_read_t  *rd = data;

    ngx_str_t  uid;

    if (rd->session == NULL) {
        ngx_http_chat_rt_read_end(rd, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_chat_rt_read_refused(rd, NGX_HTTP_UNAUTHORIZED,
                                      "invalid_token",
                                      "the token was revoked");
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_chat_rt_read_refused(rd, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "service_unavailable",
                                      "a back end is unavailable, "
                                      "try again shortly");
        return;
    }

    uid.data = rd->uid;
    uid.len = NGX_HTTP_CHAT_RT_ID_LEN;

    /* Redis first: a warm sign-in reads nothing from MongoDB */
    if (ngx_http_chat_op_self(&uid, rd->text_out ? &rd->text : NULL,
                              ngx_http_chat_rt_read_answered, rd)
        != NGX_OK)
    {
        ngx_http_chat_rt_read_refused(rd, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "service_unavailable",
                                      "a back end is unavailable, "
                                      "try again shortly");
    }
}


static void
ngx_http_chat_rt_read_refused(ngx_http_chat_rt_read_t *rd,
    ngx_uint_t status, const char *code, const char *message)
{
    ngx_http_chat_rt_read_end(rd, status,
                              json_pack("{s:{s:s,s:s}}", "error",
                                        "code", code, "message", message));
}


/* the store's outcome told as the REST route tells it */
static void
ngx_http_chat_rt_read_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_rt_read_t  *rd = data;

    ngx_http_chat_op_told_t  told;

    ngx_http_chat_op_tell(rc, answer, 0, &told);

    if (told.answer == NULL) {
        if (told.status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "chat: a read for a socket failed: %s",
                          error ? error : "no answer");

        } else if (told.status == NGX_HTTP_NOT_FOUND && rd->not_found) {
            told.message = rd->not_found;
        }

        told.answer = ngx_http_chat_op_envelope(&told);
        json_decref(told.details);
        json_decref(told.keep);

    } else if (rd->online && told.status == NGX_HTTP_OK
               && ngx_http_chat_online_read(told.answer,
                                            ngx_http_chat_rt_read_online, rd,
                                            NULL)
                  == NGX_OK)
    {
        /* the users it shows are online as Redis says: then it ends */
        rd->answer = told.answer;
        return;
    }

    ngx_http_chat_rt_read_end(rd, told.status, told.answer);
}


static void
ngx_http_chat_rt_read_online(void *data)
{
    ngx_http_chat_rt_read_t  *rd = data;

    json_t  *answer;

    answer = rd->answer;
    rd->answer = NULL;

    ngx_http_chat_rt_read_end(rd, NGX_HTTP_OK, answer);
}


static void
ngx_http_chat_rt_read_end(ngx_http_chat_rt_read_t *rd, ngx_uint_t status,
    json_t *answer)
{
    ngx_http_chat_rt_session_t  *s;

    s = rd->session;

    if (s) {
        ngx_queue_remove(&rd->queue);

        /* the gate accepted the token: the socket's session is known */
        if (rd->signin && status == NGX_HTTP_OK
            && s->session_id.data == NULL)
        {
            s->session_id.data = ngx_alloc(NGX_HTTP_CHAT_RT_ID_LEN,
                                           ngx_cycle->log);
            if (s->session_id.data) {
                ngx_memcpy(s->session_id.data, rd->sid,
                           NGX_HTTP_CHAT_RT_ID_LEN);
                s->session_id.len = NGX_HTTP_CHAT_RT_ID_LEN;
            }
        }
    }

    /* the profile's text, as it was read, goes with the answer */
    if (rd->text_out) {
        *rd->text_out = rd->text;
    }

    /* without a session: done() frees its data and the answer */
    rd->done(s, rd->data, status, answer);

    ngx_free(rd);
}


/* the session goes: its reads finish without it */
void
ngx_http_chat_rt_reads_detach(ngx_http_chat_rt_session_t *s)
{
    ngx_queue_t               *q;
    ngx_http_chat_rt_read_t   *rd;
    ngx_http_chat_rt_paced_t  *p;

    while (!ngx_queue_empty(&s->reads)) {
        q = ngx_queue_head(&s->reads);
        rd = ngx_queue_data(q, ngx_http_chat_rt_read_t, queue);
        ngx_queue_remove(q);
        rd->session = NULL;

        p = rd->paced;

        if (p == NULL || p->running) {
            continue;
        }

        /*
         * A paced read still waiting: this reader leaves it now (ended
         * from the posted event, outside the session's teardown), and a
         * read nobody waits for any more leaves the queue.
         */
        ngx_queue_remove(&rd->link);
        rd->paced = NULL;
        ngx_queue_insert_tail(&ngx_http_chat_rt_paced_gone, &rd->link);

        if (p->n > 1) {
            p->n--;
            ngx_http_chat_metric_dec(NGX_HTTP_CHAT_M_RESYNC_SHARED);

        } else {
            ngx_http_chat_rt_paced_unwait(p);
            ngx_free(p);
        }

        if (!ngx_http_chat_rt_paced_ev.posted) {
            ngx_post_event(&ngx_http_chat_rt_paced_ev, &ngx_posted_events);
        }
    }
}


/* the session's user as an ObjectId, for the store's arguments */
void
ngx_http_chat_rt_me(ngx_http_chat_rt_session_t *s, bson_oid_t *me)
{
    bson_oid_init_from_string_unsafe(me, (char *) s->user);
}


/* what the floors below ask of realtime, through core's event interface */
void
ngx_http_chat_rt_register(ngx_http_chat_events_t *events)
{
    events->publish = ngx_http_chat_rt_publish_as;
}
