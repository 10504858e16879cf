/*
 * Copyright (C) ngx_chat_module authors
 *
 * Sockets per client address, across the instance's workers
 * (chat_ws_unauth_per_address, chat_ws_conn_per_address):
 *   - a handshake (WebSocket upgrade, Socket.IO polling open) counts its
 *     address, as an IPv4 address or an IPv6 /64, among the sockets not
 *     signed in and among all; over a limit it is refused before the
 *     upgrade, 429 with Retry-After;
 *   - the socket's sign-in takes it off the first count, its end (close,
 *     timeout, error, the worker going) off both;
 *   - the counts live in the module's shared memory, per address and per
 *     worker pid: a worker that exits takes its counts with it, and the
 *     counts of a worker that was killed are dropped the first time they
 *     would refuse someone.
 * A zone that is full counts no more addresses: they are let in.
 */


#include "ngx_http_chat_rt.h"
#include "../util/ngx_http_chat_metrics.h"


#define NGX_HTTP_CHAT_RT_CONN_RETRY  60     /* s: a full address, signed in */


typedef struct ngx_http_chat_rt_use_s  ngx_http_chat_rt_use_t;

/* what one worker counts for an address */
struct ngx_http_chat_rt_use_s {
    ngx_http_chat_rt_use_t      *next;
    ngx_pid_t                    pid;
    ngx_uint_t                   unauth;
    ngx_uint_t                   all;
};


typedef struct {
    ngx_rbtree_node_t            node;        /* key: crc32 of addr */
    ngx_http_chat_rt_use_t      *uses;
    uint8_t                      len;
    u_char                       addr[9];
} ngx_http_chat_rt_addr_t;


typedef struct {
    ngx_rbtree_t                 tree;
    ngx_rbtree_node_t            sentinel;
} ngx_http_chat_rt_conns_t;


static void ngx_http_chat_rt_conn_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_uint_t ngx_http_chat_rt_conn_key(struct sockaddr *sa,
    ngx_http_chat_ws_peer_t *peer);
static ngx_http_chat_rt_addr_t *ngx_http_chat_rt_conn_lookup(
    ngx_http_chat_ws_peer_t *peer, uint32_t hash);
static void ngx_http_chat_rt_conn_sum(ngx_http_chat_rt_addr_t *a,
    ngx_uint_t purge, ngx_uint_t *unauth, ngx_uint_t *all);
static void ngx_http_chat_rt_conn_drop(ngx_http_chat_rt_addr_t *a,
    ngx_http_chat_rt_use_t *use);
static void ngx_http_chat_rt_conn_cleanup(void *data);


static ngx_slab_pool_t           *ngx_http_chat_rt_conn_pool;
static ngx_http_chat_rt_conns_t  *ngx_http_chat_rt_conns;


/* the zone's part, made once when the zone is new (shpool locked or not) */
void *
ngx_http_chat_rt_conn_zone(ngx_slab_pool_t *shpool)
{
    ngx_http_chat_rt_conns_t  *conns;

    conns = ngx_slab_calloc(shpool, sizeof(ngx_http_chat_rt_conns_t));
    if (conns == NULL) {
        return NULL;
    }

    ngx_rbtree_init(&conns->tree, &conns->sentinel,
                    ngx_http_chat_rt_conn_insert);

    return conns;
}


/* a worker starts: the counts are those of the zone */
void
ngx_http_chat_rt_conn_attach(ngx_shm_zone_t *zone, void *conns)
{
    ngx_http_chat_rt_conn_pool = (ngx_slab_pool_t *) zone->shm.addr;
    ngx_http_chat_rt_conns = conns;
}


/* a worker exits: what it still counts goes with it */
void
ngx_http_chat_rt_conn_detach(void)
{
    ngx_rbtree_node_t        *node, *next, *root, *sentinel;
    ngx_http_chat_rt_use_t   *use, *nuse;
    ngx_http_chat_rt_addr_t  *a;

    if (ngx_http_chat_rt_conns == NULL) {
        return;
    }

    ngx_shmtx_lock(&ngx_http_chat_rt_conn_pool->mutex);

    root = ngx_http_chat_rt_conns->tree.root;
    sentinel = ngx_http_chat_rt_conns->tree.sentinel;

    node = (root == sentinel) ? NULL : ngx_rbtree_min(root, sentinel);

    while (node) {
        next = ngx_rbtree_next(&ngx_http_chat_rt_conns->tree, node);
        a = (ngx_http_chat_rt_addr_t *) node;

        for (use = a->uses; use; use = nuse) {
            nuse = use->next;

            if (use->pid == ngx_pid) {
                ngx_http_chat_rt_conn_drop(a, use);
                if (nuse == NULL) {
                    /* a may be gone with its last use */
                    break;
                }
            }
        }

        node = next;
    }

    ngx_shmtx_unlock(&ngx_http_chat_rt_conn_pool->mutex);

    ngx_http_chat_rt_conns = NULL;
}


/*
 * The handshake of r counts its address: NGX_OK, *held is the count
 * (NULL when not counted), released with r's pool unless moved to its
 * socket; NGX_BUSY, a limit is reached, *retry says for how long
 * (seconds); NGX_ERROR, out of memory.  force: counted even over a limit
 * (a session that changes transport).
 */
ngx_int_t
ngx_http_chat_rt_conn_take(ngx_http_request_t *r,
    ngx_http_chat_ws_conf_t *conf, ngx_uint_t force,
    ngx_http_chat_ws_peer_t **held, time_t *retry)
{
    uint32_t                  hash;
    ngx_uint_t                unauth, all;
    ngx_pool_cleanup_t       *cln;
    ngx_http_chat_rt_use_t   *use;
    ngx_http_chat_rt_addr_t  *a;
    ngx_http_chat_ws_peer_t   peer, *p;

    *held = NULL;

    if (ngx_http_chat_rt_conns == NULL
        || (conf->unauth_per_addr == 0 && conf->conn_per_addr == 0)
        || !ngx_http_chat_rt_conn_key(r->connection->sockaddr, &peer))
    {
        return NGX_OK;
    }

    /* what can fail is made first: nothing to undo once counted */
    p = ngx_palloc(r->pool, sizeof(ngx_http_chat_ws_peer_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (p == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    p->len = 0;
    cln->handler = ngx_http_chat_rt_conn_cleanup;
    cln->data = p;

    hash = ngx_crc32_short(peer.addr, peer.len);

    ngx_shmtx_lock(&ngx_http_chat_rt_conn_pool->mutex);

    a = ngx_http_chat_rt_conn_lookup(&peer, hash);

    if (a && !force) {
        ngx_http_chat_rt_conn_sum(a, 0, &unauth, &all);

        if ((conf->unauth_per_addr && unauth >= conf->unauth_per_addr)
            || (conf->conn_per_addr && all >= conf->conn_per_addr))
        {
            /* a worker killed meanwhile counts no more */
            ngx_http_chat_rt_conn_sum(a, 1, &unauth, &all);
            a = ngx_http_chat_rt_conn_lookup(&peer, hash);
        }

        if (conf->unauth_per_addr && unauth >= conf->unauth_per_addr) {
            *retry = (conf->auth_timeout + 999) / 1000;
            goto refused;
        }

        if (conf->conn_per_addr && all >= conf->conn_per_addr) {
            *retry = NGX_HTTP_CHAT_RT_CONN_RETRY;
            goto refused;
        }
    }

    if (a == NULL) {
        a = ngx_slab_calloc_locked(ngx_http_chat_rt_conn_pool,
                                   sizeof(ngx_http_chat_rt_addr_t));
        if (a == NULL) {
            goto full;
        }

        a->node.key = hash;
        a->len = peer.len;
        ngx_memcpy(a->addr, peer.addr, peer.len);
        ngx_rbtree_insert(&ngx_http_chat_rt_conns->tree, &a->node);
    }

    for (use = a->uses; use; use = use->next) {
        if (use->pid == ngx_pid) {
            break;
        }
    }

    if (use == NULL) {
        use = ngx_slab_calloc_locked(ngx_http_chat_rt_conn_pool,
                                     sizeof(ngx_http_chat_rt_use_t));
        if (use == NULL) {
            if (a->uses == NULL) {
                ngx_rbtree_delete(&ngx_http_chat_rt_conns->tree, &a->node);
                ngx_slab_free_locked(ngx_http_chat_rt_conn_pool, a);
            }

            goto full;
        }

        use->pid = ngx_pid;
        use->next = a->uses;
        a->uses = use;
    }

    use->unauth++;
    use->all++;

    ngx_shmtx_unlock(&ngx_http_chat_rt_conn_pool->mutex);

    *p = peer;
    p->unauth = 1;
    *held = p;

    return NGX_OK;

refused:

    ngx_shmtx_unlock(&ngx_http_chat_rt_conn_pool->mutex);

    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_UPGRADES_REFUSED);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "chat ws: too many sockets from this address, "
                  "upgrade refused");

    return NGX_BUSY;

full:

    ngx_shmtx_unlock(&ngx_http_chat_rt_conn_pool->mutex);

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "chat ws: the zone of sockets per address is full, "
                  "an address not counted");

    return NGX_OK;
}


/* the count goes with the socket: the request's pool no longer frees it */
void
ngx_http_chat_rt_conn_move(ngx_http_chat_ws_peer_t *held,
    ngx_http_chat_ws_peer_t *to)
{
    if (held == NULL) {
        to->len = 0;
        return;
    }

    *to = *held;
    held->len = 0;
}


/* the socket signed in: it is off the count of those not signed in */
void
ngx_http_chat_rt_conn_signed_in(ngx_http_chat_ws_peer_t *peer)
{
    uint32_t                  hash;
    ngx_http_chat_rt_use_t   *use;
    ngx_http_chat_rt_addr_t  *a;

    if (peer->len == 0 || !peer->unauth || ngx_http_chat_rt_conns == NULL) {
        return;
    }

    peer->unauth = 0;
    hash = ngx_crc32_short(peer->addr, peer->len);

    ngx_shmtx_lock(&ngx_http_chat_rt_conn_pool->mutex);

    a = ngx_http_chat_rt_conn_lookup(peer, hash);

    for (use = a ? a->uses : NULL; use; use = use->next) {
        if (use->pid == ngx_pid) {
            if (use->unauth) {
                use->unauth--;
            }

            break;
        }
    }

    ngx_shmtx_unlock(&ngx_http_chat_rt_conn_pool->mutex);
}


/* the socket (or the handshake that counted it) is over */
void
ngx_http_chat_rt_conn_release(ngx_http_chat_ws_peer_t *peer)
{
    uint32_t                  hash;
    ngx_http_chat_rt_use_t   *use;
    ngx_http_chat_rt_addr_t  *a;

    if (peer->len == 0) {
        return;
    }

    if (ngx_http_chat_rt_conns == NULL) {
        /* the worker's counts already went (its exit) */
        peer->len = 0;
        return;
    }

    hash = ngx_crc32_short(peer->addr, peer->len);

    ngx_shmtx_lock(&ngx_http_chat_rt_conn_pool->mutex);

    a = ngx_http_chat_rt_conn_lookup(peer, hash);

    for (use = a ? a->uses : NULL; use; use = use->next) {
        if (use->pid != ngx_pid) {
            continue;
        }

        if (peer->unauth && use->unauth) {
            use->unauth--;
        }

        if (use->all) {
            use->all--;
        }

        if (use->all == 0) {
            ngx_http_chat_rt_conn_drop(a, use);
        }

        break;
    }

    ngx_shmtx_unlock(&ngx_http_chat_rt_conn_pool->mutex);

    peer->len = 0;
    peer->unauth = 0;
}


/* 429 with Retry-After and the error envelope: the upgrade is refused */
ngx_int_t
ngx_http_chat_rt_conn_refuse(ngx_http_request_t *r, time_t retry,
    json_t *body)
{
    u_char     *p;
    ngx_str_t   v;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v.data = p;
    v.len = ngx_sprintf(p, "%T", retry > 0 ? retry : 1) - p;

    if (ngx_http_chat_add_header(r, "Retry-After", &v) != NGX_OK) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (body) {
        return ngx_http_chat_send_json(r, NGX_HTTP_TOO_MANY_REQUESTS, body);
    }

    return ngx_http_chat_send_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                    "too_many_connections",
                                    "too many sockets from this address, "
                                    "try again later");
}


static void
ngx_http_chat_rt_conn_cleanup(void *data)
{
    ngx_http_chat_rt_conn_release(data);
}


/* an IPv4 address (v4-mapped too), an IPv6 /64; 0: not counted */
static ngx_uint_t
ngx_http_chat_rt_conn_key(struct sockaddr *sa, ngx_http_chat_ws_peer_t *peer)
{
    u_char               *a;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    ngx_memzero(peer, sizeof(ngx_http_chat_ws_peer_t));

    switch (sa->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) sa;
        peer->addr[0] = 4;
        ngx_memcpy(&peer->addr[1], &sin->sin_addr, 4);
        peer->len = 5;
        return 1;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;
        a = sin6->sin6_addr.s6_addr;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            peer->addr[0] = 4;
            ngx_memcpy(&peer->addr[1], &a[12], 4);
            peer->len = 5;
            return 1;
        }

        /* one subscriber's network: its hosts pick any address in it */
        peer->addr[0] = 6;
        ngx_memcpy(&peer->addr[1], a, 8);
        peer->len = 9;
        return 1;
#endif

    default:
        /* a unix socket: a proxy in front, which limits */
        return 0;
    }
}


static ngx_http_chat_rt_addr_t *
ngx_http_chat_rt_conn_lookup(ngx_http_chat_ws_peer_t *peer, uint32_t hash)
{
    ngx_int_t                 rc;
    ngx_rbtree_node_t        *node, *sentinel;
    ngx_http_chat_rt_addr_t  *a;

    node = ngx_http_chat_rt_conns->tree.root;
    sentinel = ngx_http_chat_rt_conns->tree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        a = (ngx_http_chat_rt_addr_t *) node;

        rc = ngx_memn2cmp(peer->addr, a->addr, peer->len, a->len);

        if (rc == 0) {
            return a;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * The address's counts over the workers; purge: those of workers that
 * are gone are dropped first (a may go with them)
 */
static void
ngx_http_chat_rt_conn_sum(ngx_http_chat_rt_addr_t *a, ngx_uint_t purge,
    ngx_uint_t *unauth, ngx_uint_t *all)
{
    ngx_http_chat_rt_use_t  *use, *next;

    *unauth = 0;
    *all = 0;

    for (use = a->uses; use; use = next) {
        next = use->next;

        if (purge && use->pid != ngx_pid
            && kill(use->pid, 0) == -1 && ngx_errno == NGX_ESRCH)
        {
            ngx_http_chat_rt_conn_drop(a, use);

            if (next == NULL) {
                break;
            }

            continue;
        }

        *unauth += use->unauth;
        *all += use->all;
    }
}


/* use goes from a, and a with its last use (the zone is locked) */
static void
ngx_http_chat_rt_conn_drop(ngx_http_chat_rt_addr_t *a,
    ngx_http_chat_rt_use_t *use)
{
    ngx_http_chat_rt_use_t  **pp;

    for (pp = &a->uses; *pp; pp = &(*pp)->next) {
        if (*pp == use) {
            *pp = use->next;
            break;
        }
    }

    ngx_slab_free_locked(ngx_http_chat_rt_conn_pool, use);

    if (a->uses == NULL) {
        ngx_rbtree_delete(&ngx_http_chat_rt_conns->tree, &a->node);
        ngx_slab_free_locked(ngx_http_chat_rt_conn_pool, a);
    }
}


static void
ngx_http_chat_rt_conn_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t        **p;
    ngx_http_chat_rt_addr_t   *a, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            a = (ngx_http_chat_rt_addr_t *) node;
            t = (ngx_http_chat_rt_addr_t *) temp;

            p = (ngx_memn2cmp(a->addr, t->addr, a->len, t->len) < 0)
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
