/*
 * Copyright (C) ngx_chat_module authors
 *
 * The ids of the chats a user is in, which every socket reads when it
 * signs in.  FerretDB finds a user's memberships only by reading
 * everybody's, so Redis keeps them: "uh:{<user>}", exactly the chats they
 * are in (a hash's fields), "" (so that none is not a miss) and the
 * generation it is current at, kept by the hooks of the
 * changes once stored (store/ngx_http_chat_chat_ids_store.c: a join adds,
 * a removal or a leave takes out), and answered as it is: a sign-in with
 * the hash in Redis reads nothing from MongoDB.  A hash that is missing
 * (expired after a day, an older user, Redis emptied, dropped by two
 * changes that crossed) is read from MongoDB and stored only if no
 * change bumped the generation "ucg:{<user>}" meanwhile.  Both are on the
 * user's Redis shard.
 */


#include "ngx_http_chat_op_chat_ids.h"
#include "ngx_http_chat_op_store.h"
#include "../util/ngx_http_chat_text.h"
#include "../store/ngx_http_chat_redis.h"
#include "../store/ngx_http_chat_redis_shards.h"
#include "../store/ngx_http_chat_chats_store.h"
#include "../store/ngx_http_chat_chat_ids_store.h"


#define NGX_HTTP_CHAT_IDS_GEN_MAX  32


struct ngx_http_chat_op_chat_ids_s {
    ngx_http_chat_op_done_pt     done;     /* NULL once nobody waits */
    void                        *data;
    ngx_http_chat_op_store_t    *store;    /* the MongoDB step running */
    u_char                       user[24];
    u_char                       gen[NGX_HTTP_CHAT_IDS_GEN_MAX];
    size_t                       gen_len;
    unsigned                     has_gen:1;  /* Redis answered */
    unsigned                     replies:2;  /* Redis's to come */
    unsigned                     gen_lost:1; /* the generation's read */
};


/*
 * A read is two plain commands, not a script (a script costs Redis about
 * ten times as much): GET ucg:, then HGETALL uh:, pipelined to the user's
 * shard, whose replies come in that order.  A hash whose 'g' is the
 * generation read before it is current when it is read: a change after
 * that GET has raised the generation and written its own 'g' or dropped
 * the hash, and a fill writes only the generation it finds.
 */

/* ARGV: the generation read, "", the ids */
static const char  ngx_http_chat_ids_fill[] =
    "if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end "
    "redis.call('DEL', KEYS[1]) "
    "for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], '') end "
    "redis.call('HSET', KEYS[1], 'g', ARGV[1]) "
    "redis.call('EXPIRE', KEYS[1], " NGX_HTTP_CHAT_IDS_TTL ") "
    "return 1";


static void ngx_http_chat_ids_gen(redisReply *reply, void *data);
static void ngx_http_chat_ids_cached(redisReply *reply, void *data);
static ngx_int_t ngx_http_chat_ids_hit(ngx_http_chat_op_chat_ids_t *op,
    redisReply *set);
static ngx_int_t ngx_http_chat_ids_load(ngx_http_chat_op_chat_ids_t *op);
static void ngx_http_chat_ids_loaded(void *data, ngx_int_t rc,
    json_t *answer, const char *error);
static void ngx_http_chat_ids_finish(ngx_http_chat_op_chat_ids_t *op,
    ngx_int_t rc, json_t *answer, const char *error);
static void ngx_http_chat_ids_script(const char *script, size_t len,
    ngx_str_t *user, ngx_str_t *gen, json_t *ids);


ngx_int_t
ngx_http_chat_op_chat_ids(ngx_str_t *user, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_chat_ids_t **out)
{
    u_char                        buf[NGX_HTTP_CHAT_IDS_KEYS];
    size_t                        argvlen[2];
    ngx_int_t                     rc;
    ngx_str_t                     u, keys[2];
    const char                   *argv[2];
    ngx_http_chat_redis_t        *rds;
    ngx_http_chat_op_chat_ids_t  *op;

    if (!ngx_http_chat_is_oid(user)) {
        return NGX_ERROR;
    }

    op = ngx_calloc(sizeof(ngx_http_chat_op_chat_ids_t), ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->done = done;
    op->data = data;
    ngx_memcpy(op->user, user->data, 24);

    *out = op;

    u.data = op->user;
    u.len = 24;
    rds = ngx_http_chat_redis_shard(ngx_http_chat_chat_ids_keys(buf, &u,
                                                                keys));

    if (!ngx_http_chat_redis_is_connected(rds)) {
        if (ngx_http_chat_ids_load(op) != NGX_OK) {
            ngx_free(op);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    /* hiredis copies a command before this returns */

    argv[0] = "GET";
    argvlen[0] = sizeof("GET") - 1;
    argv[1] = (char *) keys[1].data;
    argvlen[1] = keys[1].len;

    if (ngx_http_chat_redis_command_argv(rds, ngx_http_chat_ids_gen, op, 2,
                                         argv, argvlen)
        != NGX_OK)
    {
        ngx_free(op);
        return NGX_ERROR;
    }

    op->replies = 1;

    argv[0] = "HGETALL";
    argvlen[0] = sizeof("HGETALL") - 1;
    argv[1] = (char *) keys[0].data;
    argvlen[1] = keys[0].len;

    rc = ngx_http_chat_redis_command_argv(rds, ngx_http_chat_ids_cached, op,
                                          2, argv, argvlen);
    if (rc != NGX_OK) {
        /* the generation's reply frees it */
        return NGX_ERROR;
    }

    op->replies = 2;

    return NGX_OK;
}


void
ngx_http_chat_op_chat_ids_detach(ngx_http_chat_op_chat_ids_t *op)
{
    /* the step running answers still, and frees op */
    op->done = NULL;
    op->data = NULL;
}


static void
ngx_http_chat_ids_gen(redisReply *reply, void *data)
{
    ngx_http_chat_op_chat_ids_t  *op = data;

    if (--op->replies == 0) {
        /* the hash's read could not be sent: nobody waits */
        ngx_free(op);
        return;
    }

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        op->gen_lost = 1;
        return;
    }

    if (reply->type == REDIS_REPLY_NIL) {
        op->gen[0] = '0';
        op->gen_len = 1;
        op->has_gen = 1;

    } else if (reply->type == REDIS_REPLY_STRING
               && reply->len <= NGX_HTTP_CHAT_IDS_GEN_MAX)
    {
        ngx_memcpy(op->gen, reply->str, reply->len);
        op->gen_len = reply->len;
        op->has_gen = 1;
    }

    /* else not ours to read: MongoDB answers, nothing is stored */
}


static void
ngx_http_chat_ids_cached(redisReply *reply, void *data)
{
    ngx_http_chat_op_chat_ids_t  *op = data;

    size_t       i;
    redisReply  *f, *v;

    op->replies = 0;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR || op->gen_lost) {
        ngx_http_chat_ids_finish(op, NGX_ERROR, NULL,
                                 (reply && reply->type == REDIS_REPLY_ERROR)
                                 ? reply->str : "redis connection lost");
        return;
    }

    if (op->has_gen && reply->type == REDIS_REPLY_ARRAY) {

        /* field, value, ...: the hit is a 'g' that is the generation */
        for (i = 0; i + 1 < reply->elements; i += 2) {
            f = reply->element[i];
            v = reply->element[i + 1];

            if (f->type == REDIS_REPLY_STRING && f->len == 1
                && f->str[0] == 'g')
            {
                if (v->type == REDIS_REPLY_STRING
                    && v->len == op->gen_len
                    && ngx_memcmp(v->str, op->gen, v->len) == 0)
                {
                    if (ngx_http_chat_ids_hit(op, reply) != NGX_OK) {
                        ngx_http_chat_ids_finish(op, NGX_ERROR, NULL,
                                                 "out of memory");
                    }

                    return;
                }

                break;
            }
        }
    }

    if (ngx_http_chat_ids_load(op) != NGX_OK) {
        ngx_http_chat_ids_finish(op, NGX_ERROR, NULL,
                                 "mongo is not available");
    }
}


/* the hash is exact: answered as it is, never before the caller returned */

static ngx_int_t
ngx_http_chat_ids_hit(ngx_http_chat_op_chat_ids_t *op, redisReply *set)
{
    size_t       i;
    json_t      *items, *answer;
    redisReply  *e;

    items = json_array();
    if (items == NULL) {
        return NGX_ERROR;
    }

    /* HGETALL's fields: every other element */
    for (i = 0; i < set->elements; i += 2) {
        e = set->element[i];

        /* "" and 'g' mark the hash; anything else not an id was never ours */
        if (e->type == REDIS_REPLY_STRING && e->len == 24
            && bson_oid_is_valid(e->str, 24)
            && json_array_append_new(items, json_stringn(e->str, 24)) != 0)
        {
            json_decref(items);
            return NGX_ERROR;
        }
    }

    answer = json_pack("{s:o}", "items", items);
    if (answer == NULL) {
        return NGX_ERROR;
    }

    /* a Redis reply comes after the caller returned: answer now */
    ngx_http_chat_ids_finish(op, NGX_DONE, answer, NULL);

    return NGX_OK;
}


/* all memberships read from MongoDB */

static ngx_int_t
ngx_http_chat_ids_load(ngx_http_chat_op_chat_ids_t *op)
{
    ngx_int_t                  rc;
    ngx_http_chat_chats_arg_t  arg;

    ngx_memzero(&arg, sizeof(ngx_http_chat_chats_arg_t));
    bson_oid_init_from_string_unsafe(&arg.user, (char *) op->user);

    /* the operation copies arg */
    rc = ngx_http_chat_op_store(ngx_http_chat_chat_ids_run, NULL, &arg,
                                sizeof(ngx_http_chat_chats_arg_t),
                                ngx_http_chat_ids_loaded, op, &op->store);

    return rc;
}


static void
ngx_http_chat_ids_loaded(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_op_chat_ids_t  *op = data;

    ngx_str_t   user, gen;

    op->store = NULL;

    if (rc != NGX_DONE || answer == NULL) {
        json_decref(answer);
        ngx_http_chat_ids_finish(op, NGX_ERROR, NULL,
                                 error ? error : "no answer");
        return;
    }

    user.data = op->user;
    user.len = 24;
    gen.data = op->gen;
    gen.len = op->gen_len;

    if (op->has_gen) {
        ngx_http_chat_ids_script(ngx_http_chat_ids_fill,
                                 sizeof(ngx_http_chat_ids_fill) - 1,
                                 &user, &gen,
                                 json_object_get(answer, "items"));
    }

    ngx_http_chat_ids_finish(op, NGX_DONE, answer, NULL);
}


static void
ngx_http_chat_ids_finish(ngx_http_chat_op_chat_ids_t *op, ngx_int_t rc,
    json_t *answer, const char *error)
{
    if (op->done) {
        op->done(op->data, rc, answer, error);

    } else {
        json_decref(answer);
    }

    ngx_free(op);
}


/*
 * EVAL script 2 uh:{<user>} ucg:{<user>} gen "" ids..., best effort: what is
 * not stored is read from MongoDB again
 */

static void
ngx_http_chat_ids_script(const char *script, size_t len, ngx_str_t *user,
    ngx_str_t *gen, json_t *ids)
{
    u_char        buf[NGX_HTTP_CHAT_IDS_KEYS];
    size_t        i, n, *argvlen;
    json_t       *v;
    ngx_uint_t    shard;
    const char  **argv;

    n = json_array_size(ids) + 7;

    argv = ngx_alloc(n * (sizeof(char *) + sizeof(size_t)), ngx_cycle->log);
    if (argv == NULL) {
        return;
    }

    argvlen = (size_t *) (argv + n);

    shard = ngx_http_chat_chat_ids_argv(argv, argvlen, script, len, buf,
                                        user);
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
    (void) ngx_http_chat_redis_command_argv(ngx_http_chat_redis_shard(shard),
                                            NULL, NULL, (int) n, argv,
                                            argvlen);
    ngx_free(argv);
}
