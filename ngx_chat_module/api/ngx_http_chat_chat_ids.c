/*
 * Copyright (C) ngx_chat_module authors
 *
 * GET /api/chats/ids: the ids of the chats a user is in, which every
 * socket reads when it signs in.  FerretDB finds a user's memberships only
 * by reading everybody's, so Redis keeps candidates: "uc:<user>", a set
 * of the chats they joined and "" (so that none is not a miss).  A new
 * user starts with the empty set, a join adds to it, and each read checks
 * the candidates one membership _id at a time, dropping those left: a
 * join's addition arriving after a later leave costs a lookup, never a
 * chat that is not the user's.  A set that is missing (expired after a
 * day, an older user, Redis emptied) is read from MongoDB and stored only
 * if no join bumped the generation "ucg:<user>" meanwhile; a drop is
 * made on the same condition.
 */


#include "../core/ngx_http_chat_async.h"
#include "../auth/ngx_http_chat_auth.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "../store/ngx_http_chat_chat_ids_store.h"
#include "ngx_http_chat_chats.h"


/* {generation, members} on a hit, {generation} on a miss */
static const char  ngx_http_chat_ids_read[] =
    "local g = redis.call('GET', KEYS[2]) or '0' "
    "if redis.call('EXISTS', KEYS[1]) == 1 then "
    "  return {g, redis.call('SMEMBERS', KEYS[1])} "
    "end "
    "return {g}";

/* ARGV: the generation read, "", the ids */
static const char  ngx_http_chat_ids_fill[] =
    "if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end "
    "redis.call('DEL', KEYS[1]) "
    "for i = 2, #ARGV, 1000 do "
    "  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV))) "
    "end "
    "redis.call('EXPIRE', KEYS[1], " NGX_HTTP_CHAT_IDS_TTL ") "
    "return 1";

/* ARGV: the generation read, the ids that are not the user's */
static const char  ngx_http_chat_ids_prune[] =
    "if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end "
    "for i = 2, #ARGV, 1000 do "
    "  redis.call('SREM', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV))) "
    "end "
    "return 1";


static ngx_int_t ngx_http_chat_ids_cached(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_ids_load(ngx_http_request_t *r,
    redisReply *set);
static ngx_int_t ngx_http_chat_ids_loaded(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_ids_script(const char *script, size_t len,
    ngx_str_t *user, ngx_str_t *gen, json_t *ids);




ngx_int_t
ngx_http_chat_chats_ids(ngx_http_request_t *r)
{
    u_char               *buf;
    ngx_str_t             keys[2];
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (!ngx_http_chat_is_oid(&ctx->user_id)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_http_chat_redis_is_connected(ngx_http_chat_redis_main)) {
        return ngx_http_chat_ids_load(r, NULL);
    }

    buf = ngx_pnalloc(r->pool, NGX_HTTP_CHAT_IDS_KEYS);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_chat_chat_ids_keys(buf, &ctx->user_id, keys);

    return ngx_http_chat_redis_eval(r, ngx_http_chat_ids_read, 2, keys, 0,
                                    NULL, ngx_http_chat_ids_cached);
}


static ngx_int_t
ngx_http_chat_ids_cached(ngx_http_request_t *r, redisReply *reply)
{
    ngx_str_t            *gen;
    redisReply           *g;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_STRING
        || (reply->elements > 1
            && reply->element[1]->type != REDIS_REPLY_ARRAY))
    {
        /* not ours to read: MongoDB answers, nothing is stored */
        return ngx_http_chat_ids_load(r, NULL);
    }

    g = reply->element[0];

    gen = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (gen == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gen->len = g->len;
    gen->data = ngx_pnalloc(r->pool, g->len + 1);
    if (gen->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(gen->data, g->str, g->len);
    ctx->state = gen;

    return ngx_http_chat_ids_load(r, reply->elements > 1 ? reply->element[1]
                                                         : NULL);
}


/* the candidates checked, or (set NULL) all memberships read */

static ngx_int_t
ngx_http_chat_ids_load(ngx_http_request_t *r, redisReply *set)
{
    size_t                      i, n, size;
    bson_oid_t                 *ids;
    redisReply                 *e;
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_chats_arg_t  *arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    n = set ? set->elements : 0;
    size = sizeof(ngx_http_chat_chats_arg_t) + n * sizeof(bson_oid_t);

    arg = ngx_pcalloc(r->pool, size);
    if (arg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    bson_oid_init_from_string_unsafe(&arg->user, (char *) ctx->user_id.data);
    ids = (bson_oid_t *) (arg + 1);

    for (i = 0; i < n; i++) {
        e = set->element[i];

        /* "" marks the set; anything else not an id was never ours */
        if (e->type == REDIS_REPLY_STRING && e->len == 24
            && bson_oid_is_valid(e->str, 24))
        {
            bson_oid_init_from_string(&ids[arg->nmembers++], e->str);
        }
    }

    return ngx_http_chat_mongo_request(r, set ? ngx_http_chat_chat_ids_check_run
                                              : ngx_http_chat_chat_ids_run,
                                       ngx_http_chat_ids_loaded, arg, size);
}


static ngx_int_t
ngx_http_chat_ids_loaded(ngx_http_request_t *r, ngx_http_chat_mongo_task_t *t)
{
    json_t               *answer, *stale;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    answer = t->result;
    t->result = NULL;

    if (t->rc != NGX_DONE || answer == NULL) {
        json_decref(answer);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: cannot read a user's chats: %s",
                      t->error.message);
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "a back end is unavailable, "
                                        "try again shortly");
    }

    stale = json_object_get(answer, "stale");

    if (ctx->state && stale == NULL) {
        ngx_http_chat_ids_script(ngx_http_chat_ids_fill,
                                 sizeof(ngx_http_chat_ids_fill) - 1,
                                 &ctx->user_id, ctx->state,
                                 json_object_get(answer, "items"));

    } else if (ctx->state && json_array_size(stale)) {
        ngx_http_chat_ids_script(ngx_http_chat_ids_prune,
                                 sizeof(ngx_http_chat_ids_prune) - 1,
                                 &ctx->user_id, ctx->state, stale);
    }

    json_object_del(answer, "stale");

    return ngx_http_chat_send_json(r, NGX_HTTP_OK, answer);
}


/*
 * EVAL script 2 uc:<user> ucg:<user> gen "" ids..., best effort: what is
 * not stored is read from MongoDB again, what is not dropped checked again
 */

static void
ngx_http_chat_ids_script(const char *script, size_t len, ngx_str_t *user,
    ngx_str_t *gen, json_t *ids)
{
    u_char        buf[NGX_HTTP_CHAT_IDS_KEYS];
    size_t        i, n, *argvlen;
    json_t       *v;
    const char  **argv;

    n = json_array_size(ids) + 7;

    argv = ngx_alloc(n * (sizeof(char *) + sizeof(size_t)), ngx_cycle->log);
    if (argv == NULL) {
        return;
    }

    argvlen = (size_t *) (argv + n);

    ngx_http_chat_chat_ids_argv(argv, argvlen, script, len, buf, user);
    argv[5] = (char *) gen->data;
    argvlen[5] = gen->len;
    argv[6] = "";
    argvlen[6] = 0;

    n = 7;

    json_array_foreach(ids, i, v) {
        argv[n] = json_string_value(v);
        argvlen[n++] = json_string_length(v);
    }

    /* hiredis copies the command before this returns */
    ngx_http_chat_redis_forget((int) n, argv, argvlen);
    ngx_free(argv);
}
