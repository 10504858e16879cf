/*
 * Copyright (C) ngx_chat_module authors
 *
 * REST rate limits per route group (chat_rest_rate), per instance:
 *   - a route's group has a bucket per user, or per client address for
 *     the public sign-in routes ("auth"); every route also takes a token
 *     of its address's bucket ("address");
 *   - the buckets count as limit_req's do: the excess in thousandths of a
 *     request, drained at the rate since the last request taken; a
 *     request over a bucket's burst is answered 429 and takes nothing;
 *   - they live in one shared-memory zone (chat_rest_rate_zone), an
 *     rbtree by key with an LRU queue: drained buckets go first when a
 *     new one needs room, the least recently used if none is drained.
 * Cluster-wide limits are Redis counters elsewhere (core/async.c).
 */


#include "ngx_http_chat_rest_rate.h"
#include "../util/ngx_http_chat_metrics.h"


#define NGX_HTTP_CHAT_REST_KEY_LEN  64    /* group, kind, user or address */


typedef struct {
    ngx_rbtree_node_t            node;        /* key: the key's crc32 */
    ngx_queue_t                  queue;       /* LRU, most recent first */
    ngx_msec_t                   last;        /* 0: never taken */
    ngx_msec_t                   idle_at;     /* drained by then */
    ngx_uint_t                   excess;      /* thousandths of a request */
    u_short                      len;
    u_char                       key[1];
} ngx_http_chat_rest_node_t;


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;
} ngx_http_chat_rest_sh_t;


/* one bucket a request takes from */
typedef struct {
    ngx_uint_t                   group;
    ngx_http_chat_ws_rate_t     *rate;
    ngx_http_chat_rest_node_t   *node;        /* NULL: no room, not held */
    u_char                       key[NGX_HTTP_CHAT_REST_KEY_LEN];
    size_t                       len;
    uint32_t                     hash;
    int64_t                      excess;      /* after this request */
    ngx_msec_t                   wait;        /* 0: a token taken */
} ngx_http_chat_rest_take_t;


static void ngx_http_chat_rest_key(ngx_http_chat_rest_take_t *t,
    ngx_uint_t group, u_char kind, ngx_str_t *id);
static ngx_http_chat_rest_node_t *ngx_http_chat_rest_node(
    ngx_slab_pool_t *shpool, ngx_http_chat_rest_sh_t *sh,
    ngx_http_chat_rest_take_t *t, ngx_http_chat_rest_node_t *keep);
static void ngx_http_chat_rest_count(ngx_http_chat_rest_take_t *t);
static void ngx_http_chat_rest_expire(ngx_slab_pool_t *shpool,
    ngx_http_chat_rest_sh_t *sh, ngx_uint_t force,
    ngx_http_chat_rest_node_t *keep);
static void ngx_http_chat_rest_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static int64_t ngx_http_chat_rest_left(ngx_http_chat_rest_take_t *t);
static ngx_int_t ngx_http_chat_rest_headers(ngx_http_request_t *r,
    ngx_http_chat_rest_take_t *t);


static const char  *ngx_http_chat_rest_groups[] = {
    "auth", "read", "write", "send", "search", "group", "upload", "address",
    NULL
};


/*
 * Defaults that a client opening the app (its chats, a page of each,
 * profile, contacts) or sending an album stays far below, and that stop
 * floods: per second (rate in requests per 1000 s) and at once.
 */
static ngx_http_chat_ws_rate_t  ngx_http_chat_rest_defaults[] = {
    { 5000, 50, 0 },        /* auth: 5r/s burst=50, per address */
    { 50000, 500, 0 },      /* read: 50r/s burst=500 */
    { 20000, 200, 0 },      /* write: 20r/s burst=200 */
    { 20000, 300, 0 },      /* send: 20r/s burst=300 */
    { 2000, 30, 0 },        /* search: 2r/s burst=30 */
    { 500, 20, 0 },         /* group: 30r/m burst=20 */
    { 2000, 30, 0 },        /* upload: 2r/s burst=30 */
    { 200000, 2000, 0 }     /* address: 200r/s burst=2000 */
};


const char *
ngx_http_chat_rest_group_name(ngx_uint_t group)
{
    if (group >= NGX_HTTP_CHAT_REST_NGROUPS) {
        return NULL;
    }

    return ngx_http_chat_rest_groups[group];
}


void
ngx_http_chat_rest_rate_default(ngx_uint_t group,
    ngx_http_chat_ws_rate_t *rate)
{
    *rate = ngx_http_chat_rest_defaults[group];
}


ngx_int_t
ngx_http_chat_rest_rate_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t          *shpool;
    ngx_http_chat_rest_sh_t  *sh;

    if (data) {
        /* a reload of the same size: the buckets go on */
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_chat_rest_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_http_chat_rest_insert_value);
    ngx_queue_init(&sh->queue);

    shpool->data = sh;
    zone->data = sh;

    shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_rest_rate_check(ngx_http_request_t *r, ngx_uint_t group,
    ngx_str_t *user)
{
    u_char                      *p;
    ngx_str_t                    v;
    ngx_uint_t                   i, n, refused;
    ngx_slab_pool_t             *shpool;
    ngx_http_chat_rest_sh_t     *sh;
    ngx_http_chat_loc_conf_t    *lcf;
    ngx_http_chat_main_conf_t   *cmcf;
    ngx_http_chat_rest_node_t   *nd;
    ngx_http_chat_rest_take_t    t[2];

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);

    if (cmcf->rest_rate_shm == NULL || group >= NGX_HTTP_CHAT_REST_NGROUPS) {
        return NGX_DECLINED;
    }

    n = 0;

    if (lcf->rest_rate[group].rate) {
        t[n].rate = &lcf->rest_rate[group];

        if (user && user->len) {
            ngx_http_chat_rest_key(&t[n], group, 'u', user);

        } else {
            ngx_http_chat_rest_key(&t[n], group, 'a',
                                   &r->connection->addr_text);
        }

        n++;
    }

    if (group != NGX_HTTP_CHAT_REST_ADDRESS
        && lcf->rest_rate[NGX_HTTP_CHAT_REST_ADDRESS].rate)
    {
        t[n].rate = &lcf->rest_rate[NGX_HTTP_CHAT_REST_ADDRESS];
        ngx_http_chat_rest_key(&t[n], NGX_HTTP_CHAT_REST_ADDRESS, 'a',
                               &r->connection->addr_text);
        n++;
    }

    if (n == 0) {
        return NGX_DECLINED;
    }

    shpool = (ngx_slab_pool_t *) cmcf->rest_rate_shm->shm.addr;
    sh = cmcf->rest_rate_shm->data;

    refused = n;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < n; i++) {
        t[i].node = ngx_http_chat_rest_node(shpool, sh, &t[i],
                                            i ? t[0].node : NULL);
        ngx_http_chat_rest_count(&t[i]);

        if (t[i].wait && refused == n) {
            refused = i;
        }
    }

    if (refused == n) {
        for (i = 0; i < n; i++) {
            nd = t[i].node;

            if (nd == NULL) {
                continue;
            }

            nd->excess = (ngx_uint_t) t[i].excess;
            nd->last = ngx_current_msec ? ngx_current_msec : 1;
            nd->idle_at = ngx_current_msec
                          + (ngx_msec_t) (t[i].excess * 1000
                                          / t[i].rate->rate);
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    /* the headers tell of the refusing bucket, else of the fuller one */
    i = refused;

    if (i == n) {
        i = (n == 2 && ngx_http_chat_rest_left(&t[1])
                       < ngx_http_chat_rest_left(&t[0]))
            ? 1 : 0;
    }

    if (ngx_http_chat_rest_headers(r, &t[i]) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (refused == n) {
        return NGX_DECLINED;
    }

    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_REST_REFUSED + t[refused].group);

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v.data = p;
    v.len = ngx_sprintf(p, "%M", (t[refused].wait + 999) / 1000) - p;

    if (ngx_http_chat_add_header(r, "Retry-After", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_error_details(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                            "rate_limited",
                                            "too many requests, try again "
                                            "later",
                                            json_pack("{s:I}", "retryAfter",
                                                (json_int_t)
                                                ((t[refused].wait + 999)
                                                 / 1000)));
}


/* the bucket's key: group, 'u' or 'a', then the id (cut at the room) */
static void
ngx_http_chat_rest_key(ngx_http_chat_rest_take_t *t, ngx_uint_t group,
    u_char kind, ngx_str_t *id)
{
    size_t  len;

    len = ngx_min(id->len, NGX_HTTP_CHAT_REST_KEY_LEN - 2);

    t->group = group;
    t->key[0] = (u_char) group;
    t->key[1] = kind;
    ngx_memcpy(t->key + 2, id->data, len);
    t->len = len + 2;
    t->hash = ngx_crc32_short(t->key, t->len);
    t->node = NULL;
    t->excess = 0;
    t->wait = 0;
}


/* the key's bucket, found or made (under the lock); keep is not evicted */
static ngx_http_chat_rest_node_t *
ngx_http_chat_rest_node(ngx_slab_pool_t *shpool, ngx_http_chat_rest_sh_t *sh,
    ngx_http_chat_rest_take_t *t, ngx_http_chat_rest_node_t *keep)
{
    size_t                      size;
    ngx_uint_t                  tries;
    ngx_rbtree_node_t          *node, *sentinel;
    ngx_http_chat_rest_node_t  *nd;

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {

        if (t->hash != node->key) {
            node = (t->hash < node->key) ? node->left : node->right;
            continue;
        }

        nd = (ngx_http_chat_rest_node_t *) node;

        if (nd->len == t->len && ngx_memcmp(nd->key, t->key, t->len) == 0) {
            ngx_queue_remove(&nd->queue);
            ngx_queue_insert_head(&sh->queue, &nd->queue);
            return nd;
        }

        node = (ngx_memn2cmp(t->key, nd->key, t->len, nd->len) < 0)
               ? node->left : node->right;
    }

    /* room: first what has drained, then the least recently used */
    ngx_http_chat_rest_expire(shpool, sh, 0, keep);

    size = offsetof(ngx_http_chat_rest_node_t, key) + t->len;

    for (tries = 0; tries < 4; tries++) {
        nd = ngx_slab_alloc_locked(shpool, size);

        if (nd) {
            break;
        }

        ngx_http_chat_rest_expire(shpool, sh, 1, keep);
    }

    if (nd == NULL) {
        /* the zone is too small even for this one: not limited */
        return NULL;
    }

    nd->node.key = t->hash;
    nd->len = (u_short) t->len;
    ngx_memcpy(nd->key, t->key, t->len);
    nd->last = 0;
    nd->idle_at = 0;
    nd->excess = 0;

    ngx_rbtree_insert(&sh->rbtree, &nd->node);
    ngx_queue_insert_head(&sh->queue, &nd->queue);

    return nd;
}


/* the bucket's excess after one more request, or the wait for a token */
static void
ngx_http_chat_rest_count(ngx_http_chat_rest_take_t *t)
{
    int64_t         excess, cap;
    ngx_msec_int_t  ms;

    excess = 0;

    if (t->node && t->node->last) {
        ms = (ngx_msec_int_t) (ngx_current_msec - t->node->last);

        if (ms < 0) {
            ms = 0;
        }

        excess = (int64_t) t->node->excess
                 - (int64_t) t->rate->rate * ms / 1000;

        if (excess < 0) {
            excess = 0;
        }
    }

    cap = (int64_t) t->rate->burst * 1000;

    if (excess + 1000 > cap) {
        t->wait = (ngx_msec_t) (((excess + 1000 - cap) * 1000
                                 + t->rate->rate - 1) / t->rate->rate);
        t->excess = excess;
        return;
    }

    t->wait = 0;
    t->excess = excess + 1000;
}


/* drained buckets from the LRU end, two at most; force: one anyway */
static void
ngx_http_chat_rest_expire(ngx_slab_pool_t *shpool,
    ngx_http_chat_rest_sh_t *sh, ngx_uint_t force,
    ngx_http_chat_rest_node_t *keep)
{
    ngx_uint_t                  n;
    ngx_queue_t                *q;
    ngx_http_chat_rest_node_t  *nd;

    for (n = 0; n < 2; n++) {

        if (ngx_queue_empty(&sh->queue)) {
            return;
        }

        q = ngx_queue_last(&sh->queue);
        nd = ngx_queue_data(q, ngx_http_chat_rest_node_t, queue);

        if (nd == keep) {
            return;
        }

        if (!force
            && (ngx_msec_int_t) (ngx_current_msec - nd->idle_at) < 0)
        {
            return;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&sh->rbtree, &nd->node);
        ngx_slab_free_locked(shpool, nd);

        if (force) {
            return;
        }
    }
}


static void
ngx_http_chat_rest_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t          **p;
    ngx_http_chat_rest_node_t   *a, *b;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            a = (ngx_http_chat_rest_node_t *) node;
            b = (ngx_http_chat_rest_node_t *) temp;

            p = (ngx_memn2cmp(a->key, b->key, a->len, b->len) < 0)
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


/* requests that may come at once now */
static int64_t
ngx_http_chat_rest_left(ngx_http_chat_rest_take_t *t)
{
    if (t->wait) {
        return 0;
    }

    return ((int64_t) t->rate->burst * 1000 - t->excess) / 1000;
}


/*
 * RateLimit-Limit (the burst), RateLimit-Remaining (requests that may
 * come at once now), RateLimit-Reset (seconds until the bucket is full
 * again), as the IETF httpapi draft's separate fields (draft -03..-06)
 */
static ngx_int_t
ngx_http_chat_rest_headers(ngx_http_request_t *r,
    ngx_http_chat_rest_take_t *t)
{
    u_char     *p;
    ngx_str_t   v;

    p = ngx_pnalloc(r->pool, 3 * NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v.data = p;
    v.len = ngx_sprintf(p, "%ui", t->rate->burst) - p;

    if (ngx_http_chat_add_header(r, "RateLimit-Limit", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    p += v.len;

    v.data = p;
    v.len = ngx_sprintf(p, "%L", ngx_http_chat_rest_left(t)) - p;

    if (ngx_http_chat_add_header(r, "RateLimit-Remaining", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    p += v.len;

    v.data = p;
    v.len = ngx_sprintf(p, "%L", (t->excess + (int64_t) t->rate->rate - 1)
                                 / (int64_t) t->rate->rate) - p;

    return ngx_http_chat_add_header(r, "RateLimit-Reset", &v);
}
