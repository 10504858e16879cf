/*
 * Copyright (C) ngx_chat_module authors
 *
 * GET /api/chats/ids: the ids of the chats a user is in, which every
 * socket reads when it signs in.  FerretDB finds a user's memberships only
 * by reading all of them, so the list is also kept in Redis: "uc:<user>",
 * a set of the ids and "" (so that no chat at all is not a miss), for an
 * hour.  A change of membership bumps the generation "ucg:<user>" and
 * drops the set; a list read from MongoDB is stored only if the
 * generation it started at is still current, so a list read before a
 * change never outlives it.
 */


#include "ngx_http_chat_async.h"
#include "../auth/ngx_http_chat_auth.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "ngx_http_chat_chats.h"


#define NGX_HTTP_CHAT_IDS_TTL      "3600"
#define NGX_HTTP_CHAT_IDS_GEN_TTL  "7200"


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

static const char  ngx_http_chat_ids_drop[] =
    "redis.call('INCR', KEYS[2]) "
    "redis.call('EXPIRE', KEYS[2], " NGX_HTTP_CHAT_IDS_GEN_TTL ") "
    "return redis.call('DEL', KEYS[1])";


static ngx_int_t ngx_http_chat_ids_cached(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_ids_load(ngx_http_request_t *r);
static ngx_int_t ngx_http_chat_ids_loaded(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_ids_store(ngx_str_t *user, ngx_str_t *gen,
    json_t *items);


/* user is an ObjectId: 24 hex digits, in either case from a client */

static void
ngx_http_chat_ids_keys(u_char *buf, ngx_str_t *user, ngx_str_t *keys)
{
    u_char  id[24];

    ngx_strlow(id, user->data, 24);

    keys[0].data = buf;
    keys[0].len = ngx_sprintf(buf, "uc:%*s", (size_t) 24, id) - buf;
    keys[1].data = buf + keys[0].len;
    keys[1].len = ngx_sprintf(keys[1].data, "ucg:%*s", (size_t) 24, id)
                  - keys[1].data;
}


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
        return ngx_http_chat_ids_load(r);
    }

    buf = ngx_pnalloc(r->pool, 2 * sizeof("ucg:") + 2 * 24);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_chat_ids_keys(buf, &ctx->user_id, keys);

    return ngx_http_chat_redis_eval(r, ngx_http_chat_ids_read, 2, keys, 0,
                                    NULL, ngx_http_chat_ids_cached);
}


static ngx_int_t
ngx_http_chat_ids_cached(ngx_http_request_t *r, redisReply *reply)
{
    size_t                i;
    json_t               *items, *answer;
    ngx_str_t            *gen;
    redisReply           *g, *set, *e;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        /* Redis cannot say: MongoDB can */
        return ngx_http_chat_ids_load(r);
    }

    g = reply->element[0];

    if (reply->elements == 1) {
        gen = ngx_palloc(r->pool, sizeof(ngx_str_t));
        if (gen == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        gen->len = g->len;
        gen->data = ngx_pnalloc(r->pool, g->len);
        if (gen->data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(gen->data, g->str, g->len);

        ctx->state = gen;

        return ngx_http_chat_ids_load(r);
    }

    set = reply->element[1];
    items = json_array();

    if (items == NULL || set->type != REDIS_REPLY_ARRAY) {
        json_decref(items);
        return ngx_http_chat_ids_load(r);
    }

    for (i = 0; i < set->elements; i++) {
        e = set->element[i];

        if (e->type != REDIS_REPLY_STRING || e->len == 0) {
            continue;       /* the "" that marks a list */
        }

        if (json_array_append_new(items, json_stringn(e->str, e->len)) != 0) {
            json_decref(items);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    answer = json_pack("{s:o}", "items", items);
    if (answer == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_json(r, NGX_HTTP_OK, answer);
}


static ngx_int_t
ngx_http_chat_ids_load(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t        *ctx;
    ngx_http_chat_chats_arg_t   arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    ngx_memzero(&arg, sizeof(ngx_http_chat_chats_arg_t));
    bson_oid_init_from_string_unsafe(&arg.user, (char *) ctx->user_id.data);

    return ngx_http_chat_mongo_request(r, ngx_http_chat_chat_ids_run,
                                       ngx_http_chat_ids_loaded, &arg,
                                       sizeof(ngx_http_chat_chats_arg_t));
}


static ngx_int_t
ngx_http_chat_ids_loaded(ngx_http_request_t *r, ngx_http_chat_mongo_task_t *t)
{
    json_t               *answer;
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

    if (ctx->state) {
        ngx_http_chat_ids_store(&ctx->user_id, ctx->state,
                                json_object_get(answer, "items"));
    }

    return ngx_http_chat_send_json(r, NGX_HTTP_OK, answer);
}


/* best effort: a list not stored is read from MongoDB again */

static void
ngx_http_chat_ids_store(ngx_str_t *user, ngx_str_t *gen, json_t *items)
{
    u_char        keys_buf[2 * sizeof("ucg:") + 2 * 24], nk[] = "2";
    size_t        i, n, *argvlen;
    json_t       *v;
    ngx_str_t     keys[2];
    const char  **argv;

    n = json_array_size(items);

    argv = ngx_alloc((n + 7) * (sizeof(char *) + sizeof(size_t)),
                     ngx_cycle->log);
    if (argv == NULL) {
        return;
    }

    argvlen = (size_t *) (argv + n + 7);

    ngx_http_chat_ids_keys(keys_buf, user, keys);

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_chat_ids_fill;
    argvlen[1] = sizeof(ngx_http_chat_ids_fill) - 1;
    argv[2] = (char *) nk;
    argvlen[2] = 1;
    argv[3] = (char *) keys[0].data;
    argvlen[3] = keys[0].len;
    argv[4] = (char *) keys[1].data;
    argvlen[4] = keys[1].len;
    argv[5] = (char *) gen->data;
    argvlen[5] = gen->len;
    argv[6] = "";
    argvlen[6] = 0;

    n = 7;

    json_array_foreach(items, i, v) {
        if (json_is_string(v)) {
            argv[n] = json_string_value(v);
            argvlen[n++] = json_string_length(v);
        }
    }

    /* hiredis copies the command before this returns */
    ngx_http_chat_redis_forget((int) n, argv, argvlen);
    ngx_free(argv);
}


/* user joined or left a chat: the next read goes to MongoDB */

void
ngx_http_chat_chat_ids_forget(ngx_str_t *user)
{
    u_char       buf[2 * sizeof("ucg:") + 2 * 24], nk[] = "2";
    ngx_str_t    keys[2];
    const char  *argv[5];
    size_t       argvlen[5];

    if (!ngx_http_chat_is_oid(user)) {
        return;
    }

    ngx_http_chat_ids_keys(buf, user, keys);

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_chat_ids_drop;
    argvlen[1] = sizeof(ngx_http_chat_ids_drop) - 1;
    argv[2] = (char *) nk;
    argvlen[2] = 1;
    argv[3] = (char *) keys[0].data;
    argvlen[3] = keys[0].len;
    argv[4] = (char *) keys[1].data;
    argvlen[4] = keys[1].len;

    if (ngx_http_chat_redis_command_argv(ngx_http_chat_redis_main, NULL, NULL,
                                         5, argv, argvlen)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: the chat list of %V stays in Redis for up to "
                      NGX_HTTP_CHAT_IDS_TTL " s", user);
    }
}
