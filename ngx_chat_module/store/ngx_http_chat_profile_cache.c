/*
 * Copyright (C) ngx_chat_module authors
 *
 * A user's own profile in Redis, for the sockets' sign-in: "up:{<user>}",
 * the JSON GET /api/users/profile answers, packed (_profile_pack.c), for
 * a day; "upg:{<user>}", the generation that every stored change of the
 * profile (its fields, its privacy, its avatar) bumps as it deletes
 * "up:".  A sign-in reads both with one MGET.  A miss is read from
 * MongoDB and stored only if the generation did not move meanwhile, so a
 * read that crossed a change never stores what it saw before.  Both keys
 * are on the user's shard (chat_redis when there are none), where the
 * drops that must arrive wait for that shard's connection.
 */


#include "ngx_http_chat_profile_cache.h"
#include "ngx_http_chat_profile_pack.h"
#include "ngx_http_chat_redis_shards.h"
#include "../util/ngx_http_chat_text.h"


#define NGX_HTTP_CHAT_PROFILE_TTL      "86400"
#define NGX_HTTP_CHAT_PROFILE_GEN_TTL  "172800"
#define NGX_HTTP_CHAT_PROFILE_KEYS     (sizeof("up:{}") + sizeof("upg:{}")   \
                                        + 48)


typedef struct {
    ngx_http_chat_profile_got_pt   got;
    void                          *data;
} ngx_http_chat_profile_get_t;


/* ARGV: the generation read, the JSON */
static const char  ngx_http_chat_profile_store[] =
    "if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[2], 'EX', "
        NGX_HTTP_CHAT_PROFILE_TTL ") "
    "return 1";

static const char  ngx_http_chat_profile_changed[] =
    "redis.call('INCR', KEYS[2]) "
    "redis.call('EXPIRE', KEYS[2], " NGX_HTTP_CHAT_PROFILE_GEN_TTL ") "
    "return redis.call('DEL', KEYS[1])";


static void ngx_http_chat_profile_cached(redisReply *reply, void *data);
static ngx_uint_t ngx_http_chat_profile_argv(const char **argv,
    size_t *argvlen, const char *script, size_t len, u_char *buf,
    ngx_str_t *user);


ngx_int_t
ngx_http_chat_profile_cache_get(ngx_str_t *user,
    ngx_http_chat_profile_got_pt got, void *data)
{
    u_char                        buf[NGX_HTTP_CHAT_PROFILE_KEYS];
    size_t                        argvlen[5], mlen[3];
    ngx_uint_t                    shard;
    const char                   *argv[5], *mget[3];
    ngx_http_chat_redis_t        *rds;
    ngx_http_chat_profile_get_t  *g;

    if (!ngx_http_chat_is_oid(user)) {
        return NGX_DECLINED;
    }

    /*
     * the generation and the profile, as one MGET: read together, as a
     * script would, without running one (a sign-in's hot path)
     */
    shard = ngx_http_chat_profile_argv(argv, argvlen, NULL, 0, buf, user);

    mget[0] = "MGET";
    mlen[0] = 4;
    mget[1] = argv[4];                      /* upg:{user} */
    mlen[1] = argvlen[4];
    mget[2] = argv[3];                      /* up:{user} */
    mlen[2] = argvlen[3];

    rds = ngx_http_chat_redis_shard(shard);

    if (!ngx_http_chat_redis_is_connected(rds)) {
        return NGX_DECLINED;
    }

    g = ngx_alloc(sizeof(ngx_http_chat_profile_get_t), ngx_cycle->log);
    if (g == NULL) {
        return NGX_ERROR;
    }

    g->got = got;
    g->data = data;

    /* hiredis copies the command before this returns */
    if (ngx_http_chat_redis_command_argv(rds, ngx_http_chat_profile_cached,
                                         g, 3, mget, mlen)
        != NGX_OK)
    {
        ngx_free(g);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_chat_profile_cached(redisReply *reply, void *data)
{
    ngx_http_chat_profile_get_t *g = data;

    ngx_str_t    json, gen, value;
    ngx_int_t    rc;
    redisReply  *e;

    ngx_str_null(&json);
    ngx_str_null(&gen);
    rc = NGX_ERROR;

    /* {generation, value} of MGET, either nil: no generation is "0" */
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && (reply->element[0]->type == REDIS_REPLY_NIL
            || (reply->element[0]->type == REDIS_REPLY_STRING
                && reply->element[0]->len
                && reply->element[0]->len <= NGX_HTTP_CHAT_PROFILE_GEN_MAX)))
    {
        if (reply->element[0]->type == REDIS_REPLY_NIL) {
            ngx_str_set(&gen, "0");

        } else {
            gen.data = (u_char *) reply->element[0]->str;
            gen.len = reply->element[0]->len;
        }

        rc = NGX_DECLINED;
        e = reply->element[1];

        if (e->type == REDIS_REPLY_STRING && e->len) {
            value.data = (u_char *) e->str;
            value.len = e->len;

            /* one that cannot be read is a miss: read and stored again */
            if (ngx_http_chat_profile_unpack(&value, &json) == NGX_OK) {
                rc = NGX_OK;
            }
        }
    }

    g->got(g->data, rc, &json, &gen);
    ngx_free(g);
}


void
ngx_http_chat_profile_cache_fill(ngx_str_t *user, ngx_str_t *gen,
    ngx_str_t *json)
{
    u_char       buf[NGX_HTTP_CHAT_PROFILE_KEYS];
    size_t       argvlen[7];
    ngx_str_t    value;
    ngx_uint_t   shard;
    const char  *argv[7];

    if (!ngx_http_chat_is_oid(user) || gen->len == 0) {
        return;
    }

    shard = ngx_http_chat_profile_argv(argv, argvlen,
                                       ngx_http_chat_profile_store,
                                       sizeof(ngx_http_chat_profile_store)
                                       - 1, buf, user);
    argv[5] = (char *) gen->data;
    argvlen[5] = gen->len;

    /* packed, else (too large) the JSON itself */
    if (ngx_http_chat_profile_pack(json, &value) == NGX_OK) {
        json = &value;
    }

    argv[6] = (char *) json->data;
    argvlen[6] = json->len;

    /* best effort: a fill lost costs one more read, nothing else */
    (void) ngx_http_chat_redis_command_argv(ngx_http_chat_redis_shard(shard),
                                            NULL, NULL, 7, argv, argvlen);
}


/*
 * A drop that does not reach Redis would leave the old profile there for
 * a day: while the connection is down, the next sign-in reads MongoDB
 * anyway (got() says NGX_ERROR), and the drop is sent again once the
 * connection is back.
 */

typedef struct {
    ngx_http_chat_redis_retry_item_t   item;     /* first: it is freed */
    u_char                             user[24];
} ngx_http_chat_profile_drop_t;


static ngx_int_t ngx_http_chat_profile_send_drop(
    ngx_http_chat_redis_retry_item_t *item);


/* a queue per shard, each on its shard's connection */
static ngx_http_chat_redis_retry_t
    ngx_http_chat_profile_drops[NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1];


void
ngx_http_chat_profile_cache_drop(ngx_str_t *user)
{
    (void) ngx_http_chat_profile_cache_drop_then(user, NULL, NULL);
}


ngx_int_t
ngx_http_chat_profile_cache_drop_then(ngx_str_t *user,
    ngx_http_chat_redis_retry_settled_pt settled, void *ctx)
{
    u_char                         id[24];
    ngx_http_chat_redis_retry_t   *rt;
    ngx_http_chat_profile_drop_t  *d;

    if (!ngx_http_chat_is_oid(user)) {
        return NGX_ERROR;
    }

    d = ngx_alloc(sizeof(ngx_http_chat_profile_drop_t), ngx_cycle->log);
    if (d == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(d->user, user->data, 24);

    ngx_strlow(id, user->data, 24);
    rt = ngx_http_chat_redis_retry_of(ngx_http_chat_profile_drops, id, 24,
                                      ngx_http_chat_profile_send_drop,
                                      "profile changes",
                                      "a sign-in may show its old profile "
                                      "for up to " NGX_HTTP_CHAT_PROFILE_TTL
                                      " s");

    ngx_http_chat_redis_retry_send_then(rt, &d->item, settled, ctx);

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_profile_send_drop(ngx_http_chat_redis_retry_item_t *item)
{
    ngx_http_chat_profile_drop_t *d = (ngx_http_chat_profile_drop_t *) item;

    u_char       buf[NGX_HTTP_CHAT_PROFILE_KEYS];
    size_t       argvlen[5];
    ngx_str_t    user;
    const char  *argv[5];

    user.data = d->user;
    user.len = 24;

    (void) ngx_http_chat_profile_argv(argv, argvlen,
                                      ngx_http_chat_profile_changed,
                                      sizeof(ngx_http_chat_profile_changed)
                                      - 1, buf, &user);

    return ngx_http_chat_redis_command_argv(
                               ngx_http_chat_redis_shard(item->retry->shard),
                               ngx_http_chat_redis_retry_reply, item, 5, argv,
                               argvlen);
}


/*
 * EVAL script 2 up:{<user>} upg:{<user>}: the first 5 of argv (the keys
 * alone in argv[3] and argv[4] when script is NULL); buf holds the keys;
 * the user's shard
 */

static ngx_uint_t
ngx_http_chat_profile_argv(const char **argv, size_t *argvlen,
    const char *script, size_t len, u_char *buf, ngx_str_t *user)
{
    u_char  id[24], *p;

    ngx_strlow(id, user->data, 24);

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = script;
    argvlen[1] = len;
    argv[2] = "2";
    argvlen[2] = 1;

    p = ngx_sprintf(buf, "up:{%*s}", (size_t) 24, id);
    argv[3] = (char *) buf;
    argvlen[3] = p - buf;

    argv[4] = (char *) p;
    argvlen[4] = ngx_sprintf(p, "upg:{%*s}", (size_t) 24, id) - p;

    return ngx_http_chat_redis_shard_of(id, 24);
}
