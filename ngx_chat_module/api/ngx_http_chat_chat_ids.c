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
#include "ngx_http_chat_chats.h"


#define NGX_HTTP_CHAT_IDS_TTL      "86400"
#define NGX_HTTP_CHAT_IDS_GEN_TTL  "172800"
#define NGX_HTTP_CHAT_IDS_KEYS     (sizeof("uc:") + sizeof("ucg:") + 2 * 24)


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

/* ARGV: the chat joined */
static const char  ngx_http_chat_ids_join[] =
    "redis.call('INCR', KEYS[2]) "
    "redis.call('EXPIRE', KEYS[2], " NGX_HTTP_CHAT_IDS_GEN_TTL ") "
    "if redis.call('EXISTS', KEYS[1]) == 1 then "
    "  return redis.call('SADD', KEYS[1], ARGV[1]) "
    "end "
    "return 0";

/* a new user is in no chat */
static const char  ngx_http_chat_ids_new[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
    "redis.call('SADD', KEYS[1], '') "
    "return redis.call('EXPIRE', KEYS[1], " NGX_HTTP_CHAT_IDS_TTL ")";


static ngx_int_t ngx_http_chat_ids_cached(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_ids_load(ngx_http_request_t *r,
    redisReply *set);
static ngx_int_t ngx_http_chat_ids_loaded(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_ids_script(const char *script, size_t len,
    ngx_str_t *user, ngx_str_t *gen, json_t *ids);


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


/* EVAL script 2 uc:<user> ucg:<user>: the first 5 of argv; buf holds keys */

static void
ngx_http_chat_ids_argv(const char **argv, size_t *argvlen, const char *script,
    size_t len, u_char *buf, ngx_str_t *user)
{
    ngx_str_t  keys[2];

    ngx_http_chat_ids_keys(buf, user, keys);

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = script;
    argvlen[1] = len;
    argv[2] = "2";
    argvlen[2] = 1;
    argv[3] = (char *) keys[0].data;
    argvlen[3] = keys[0].len;
    argv[4] = (char *) keys[1].data;
    argvlen[4] = keys[1].len;
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
        return ngx_http_chat_ids_load(r, NULL);
    }

    buf = ngx_pnalloc(r->pool, NGX_HTTP_CHAT_IDS_KEYS);
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

    ngx_http_chat_ids_argv(argv, argvlen, script, len, buf, user);
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


/*
 * user joined chat: a candidate from now on.  A join that does not reach
 * Redis would leave the user's sockets out of that chat until the set
 * expires, so it waits in the worker for the connection (a new worker's
 * first one, or the next after an outage) and is sent again when the
 * connection is lost before its reply.  Only a worker that dies with some
 * in waiting loses them.
 */

#define NGX_HTTP_CHAT_IDS_WAITING_MAX  100000


typedef struct {
    ngx_queue_t   queue;
    u_char        user[24];
    u_char        chat[24];
} ngx_http_chat_ids_join_t;


static ngx_queue_t  ngx_http_chat_ids_waiting;
static ngx_uint_t   ngx_http_chat_ids_nwaiting;
static ngx_uint_t   ngx_http_chat_ids_hooked;


static void ngx_http_chat_ids_send_join(ngx_http_chat_ids_join_t *j);
static void ngx_http_chat_ids_joined_reply(redisReply *reply, void *data);
static void ngx_http_chat_ids_connected(void *data);


void
ngx_http_chat_chat_ids_joined(ngx_str_t *user, ngx_str_t *chat)
{
    ngx_http_chat_ids_join_t  *j;

    if (!ngx_http_chat_is_oid(user) || !ngx_http_chat_is_oid(chat)) {
        return;
    }

    if (!ngx_http_chat_ids_hooked) {
        ngx_queue_init(&ngx_http_chat_ids_waiting);
        ngx_http_chat_redis_on_connect(ngx_http_chat_redis_main,
                                       ngx_http_chat_ids_connected, NULL);
        ngx_http_chat_ids_hooked = 1;
    }

    j = ngx_alloc(sizeof(ngx_http_chat_ids_join_t), ngx_cycle->log);
    if (j == NULL) {
        return;
    }

    ngx_memcpy(j->user, user->data, 24);
    ngx_memcpy(j->chat, chat->data, 24);

    ngx_http_chat_ids_send_join(j);
}


static void
ngx_http_chat_ids_send_join(ngx_http_chat_ids_join_t *j)
{
    u_char       buf[NGX_HTTP_CHAT_IDS_KEYS];
    ngx_str_t    user;
    const char  *argv[6];
    size_t       argvlen[6];

    user.data = j->user;
    user.len = 24;

    ngx_http_chat_ids_argv(argv, argvlen, ngx_http_chat_ids_join,
                           sizeof(ngx_http_chat_ids_join) - 1, buf, &user);
    argv[5] = (char *) j->chat;
    argvlen[5] = 24;

    if (ngx_http_chat_redis_command_argv(ngx_http_chat_redis_main,
                                         ngx_http_chat_ids_joined_reply, j,
                                         6, argv, argvlen)
        == NGX_OK)
    {
        return;
    }

    if (ngx_http_chat_ids_nwaiting == NGX_HTTP_CHAT_IDS_WAITING_MAX) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: too many joins wait for Redis, the chat list "
                      "of %*s may miss a chat for up to "
                      NGX_HTTP_CHAT_IDS_TTL " s", (size_t) 24, j->user);
        ngx_free(j);
        return;
    }

    ngx_queue_insert_tail(&ngx_http_chat_ids_waiting, &j->queue);
    ngx_http_chat_ids_nwaiting++;
}


static void
ngx_http_chat_ids_joined_reply(redisReply *reply, void *data)
{
    ngx_http_chat_ids_join_t  *j = data;

    if (reply == NULL && !ngx_exiting && !ngx_terminate && !ngx_quit
        && ngx_http_chat_ids_nwaiting < NGX_HTTP_CHAT_IDS_WAITING_MAX)
    {
        /* the connection went with it: again once it is back */
        ngx_queue_insert_tail(&ngx_http_chat_ids_waiting, &j->queue);
        ngx_http_chat_ids_nwaiting++;
        return;
    }

    ngx_free(j);
}


static void
ngx_http_chat_ids_connected(void *data)
{
    ngx_queue_t                q;
    ngx_http_chat_ids_join_t  *j;

    if (ngx_queue_empty(&ngx_http_chat_ids_waiting)) {
        return;
    }

    /* what fails again is queued anew */
    ngx_queue_init(&q);
    ngx_queue_add(&q, &ngx_http_chat_ids_waiting);
    ngx_queue_init(&ngx_http_chat_ids_waiting);
    ngx_http_chat_ids_nwaiting = 0;

    while (!ngx_queue_empty(&q)) {
        j = ngx_queue_data(ngx_queue_head(&q), ngx_http_chat_ids_join_t,
                           queue);
        ngx_queue_remove(&j->queue);
        ngx_http_chat_ids_send_join(j);
    }
}


/*
 * a user made just now is in no chat: no reading for them in MongoDB.
 * Best effort: without the set their first sign-in reads MongoDB.
 */

void
ngx_http_chat_chat_ids_new_user(ngx_str_t *user)
{
    u_char       buf[NGX_HTTP_CHAT_IDS_KEYS];
    const char  *argv[5];
    size_t       argvlen[5];

    if (!ngx_http_chat_is_oid(user)) {
        return;
    }

    ngx_http_chat_ids_argv(argv, argvlen, ngx_http_chat_ids_new,
                           sizeof(ngx_http_chat_ids_new) - 1, buf, user);

    ngx_http_chat_redis_forget(5, argv, argvlen);
}
