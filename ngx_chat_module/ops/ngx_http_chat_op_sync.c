/*
 * Copyright (C) ngx_chat_module authors
 *
 * Address-book sync: the counter, the parses in a thread, the lookup
 * budget, the query, each step owned by the operation, never by a
 * request.
 */


#include "ngx_http_chat_op_sync.h"
#include "ngx_http_chat_op_lookup.h"
#include "../store/ngx_http_chat_people.h"
#include "../store/ngx_http_chat_redis_shards.h"
#include "../store/ngx_http_chat_threads.h"


/* after the input struct: count slots of a length byte and 64 bytes */
#define NGX_HTTP_CHAT_SYNC_SLOT      65


/* the numbers as typed, copied for the thread that parses them */
typedef struct {
    bson_oid_t                  viewer;
    ngx_http_chat_op_phone_pt   phone;
    ngx_uint_t                  count;
    size_t                      country_len;
    char                        country[8];
} ngx_http_chat_sync_in_t;


struct ngx_http_chat_op_sync_s {
    ngx_http_chat_op_done_pt    done;     /* NULL once nobody waits */
    void                       *data;
    const char                 *country_err;  /* told once counted */
    size_t                      size;         /* of in */
    ngx_http_chat_sync_in_t    *in;           /* after the struct */
    ngx_http_chat_sync_arg_t   *arg;          /* parsed, while counted */
};


static void ngx_http_chat_op_sync_counted(redisReply *reply, void *data);
static void ngx_http_chat_op_sync_parse(ngx_http_chat_thread_t *t);
static void ngx_http_chat_op_sync_free(ngx_http_chat_thread_t *t);
static void ngx_http_chat_op_sync_parsed(ngx_http_chat_thread_t *t);
static void ngx_http_chat_op_sync_budget(void *data, ngx_int_t rc,
    time_t retry, const char *error);
static void ngx_http_chat_op_sync_found(void *data, ngx_int_t rc,
    json_t *answer, const char *error);
static void ngx_http_chat_op_sync_finish(ngx_http_chat_op_sync_t *op,
    ngx_int_t rc, json_t *answer, const char *error);


/* a per-user counter in Redis: its TTL past limit in window seconds */

static const char  ngx_http_chat_op_sync_limit[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end "
    "if n > tonumber(ARGV[1]) then return redis.call('TTL', KEYS[1]) end "
    "return 0";


ngx_int_t
ngx_http_chat_op_sync(const bson_oid_t *user, json_t *body,
    ngx_http_chat_op_phone_pt phone, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_sync_t **out, const char **field,
    const char **err)
{
    char                      hex[25];
    u_char                    key[sizeof("rl:sync:") + 24], *slot;
    ngx_http_chat_redis_t    *rds;
    size_t                    i, n, size, argvlen[6];
    json_t                   *phones, *v;
    ngx_str_t                 country;
    const char               *argv[6];
    ngx_http_chat_op_sync_t  *op;
    ngx_http_chat_sync_in_t  *in;

    *field = "phones";
    phones = json_object_get(body, "phones");

    if (phones == NULL) {
        *err = "is required";
        return NGX_DECLINED;
    }

    if (!json_is_array(phones)) {
        *err = "must be an array";
        return NGX_DECLINED;
    }

    if (json_array_size(phones) > NGX_HTTP_CHAT_SYNC_MAX) {
        *err = "has more than 5000 numbers";
        return NGX_DECLINED;
    }

    n = json_array_size(phones);
    size = sizeof(ngx_http_chat_sync_in_t) + n * NGX_HTTP_CHAT_SYNC_SLOT;

    op = ngx_calloc(sizeof(ngx_http_chat_op_sync_t) + size, ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    in = (ngx_http_chat_sync_in_t *) (op + 1);
    op->in = in;
    in->viewer = *user;
    in->phone = phone;

    /* a bad countryCode is told after the counter, as it always was */
    op->country_err = ngx_http_chat_json_string(body, "countryCode", 0, 8,
                                                &country);

    if (op->country_err == NULL && country.data) {
        in->country_len = country.len;
        ngx_memcpy(in->country, country.data, country.len);
    }

    slot = (u_char *) (in + 1);

    /* numbers that are no strings are simply not matched */
    for (i = 0; i < n; i++) {
        v = json_array_get(phones, i);

        if (!json_is_string(v) || json_string_length(v) > 64) {
            continue;
        }

        slot[0] = (u_char) json_string_length(v);
        ngx_memcpy(slot + 1, json_string_value(v), slot[0]);

        slot += NGX_HTTP_CHAT_SYNC_SLOT;
        in->count++;
    }

    op->size = sizeof(ngx_http_chat_sync_in_t)
               + in->count * NGX_HTTP_CHAT_SYNC_SLOT;

    bson_oid_to_string(user, hex);

    argv[0] = "EVAL";
    argv[1] = ngx_http_chat_op_sync_limit;
    argv[2] = "1";
    argv[3] = (char *) key;
    argv[4] = "20";             /* a user's syncs an hour */
    argv[5] = "3600";

    argvlen[0] = 4;
    argvlen[1] = sizeof(ngx_http_chat_op_sync_limit) - 1;
    argvlen[2] = 1;
    argvlen[3] = ngx_sprintf(key, "rl:sync:%s", hex) - key;
    argvlen[4] = 2;
    argvlen[5] = 4;

    op->done = done;
    op->data = data;

    /* the user's budget is on the user's shard */
    rds = ngx_http_chat_redis_of((u_char *) hex, 24);

    if (ngx_http_chat_redis_command_argv(rds, ngx_http_chat_op_sync_counted,
                                         op, 6, argv, argvlen)
        != NGX_OK)
    {
        if (!ngx_http_chat_redis_is_connected(rds)) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "chat: redis is not connected");
        }

        ngx_free(op);
        return NGX_ERROR;
    }

    *out = op;

    ngx_http_chat_work_begin();

    return NGX_OK;
}


void
ngx_http_chat_op_sync_detach(ngx_http_chat_op_sync_t *op)
{
    op->done = NULL;
    op->data = NULL;
}


static void
ngx_http_chat_op_sync_counted(redisReply *reply, void *data)
{
    ngx_http_chat_op_sync_t  *op = data;

    json_t                  *answer;
    ngx_http_chat_thread_t  *t;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_chat_op_sync_finish(op, NGX_ERROR, NULL,
                                     reply ? reply->str : "connection lost");
        return;
    }

    if (reply->type != REDIS_REPLY_INTEGER) {
        ngx_http_chat_op_sync_finish(op, NGX_ABORT, NULL, NULL);
        return;
    }

    if (reply->integer != 0) {
        answer = json_pack("{s:I}", "retryAfter",
                           (json_int_t) (reply->integer > 0
                                         ? reply->integer : 1));

        ngx_http_chat_op_sync_finish(op, answer ? NGX_BUSY : NGX_ABORT,
                                     answer, NULL);
        return;
    }

    if (op->country_err) {
        answer = json_pack("{s:s, s:s}", "field", "countryCode",
                           "message", op->country_err);

        ngx_http_chat_op_sync_finish(op, answer ? NGX_DECLINED : NGX_ABORT,
                                     answer, NULL);
        return;
    }

    if (op->in->count == 0) {
        ngx_http_chat_op_sync_finish(op, NGX_OK,
                                     json_pack("{s:[]}", "items"), NULL);
        return;
    }

    if (op->done == NULL) {
        /* counted; what follows changes nothing and nobody waits */
        ngx_http_chat_op_sync_finish(op, NGX_OK, NULL, NULL);
        return;
    }

    t = ngx_http_chat_thread_create(ngx_cycle->log,
                                    ngx_http_chat_op_sync_parse,
                                    ngx_http_chat_op_sync_parsed, op,
                                    op->in, op->size);

    if (t == NULL || ngx_http_chat_thread_post(t) != NGX_OK) {
        ngx_http_chat_op_sync_finish(op, NGX_ABORT, NULL, NULL);
    }
}


static void
ngx_http_chat_op_sync_free(ngx_http_chat_thread_t *t)
{
    if (t->result) {
        ngx_free(t->result);
        t->result = NULL;
    }
}


/* in a pool thread: libphonenumber is safe to call from any thread */

static void
ngx_http_chat_op_sync_parse(ngx_http_chat_thread_t *t)
{
    ngx_http_chat_sync_in_t  *in = t->arg;

    char                      *out, *p;
    u_char                    *slot, *hash;
    ngx_str_t                  phone, country;
    ngx_uint_t                 i;
    ngx_http_chat_sync_arg_t  *arg;

    t->cleanup = ngx_http_chat_op_sync_free;

    /* the numbers parsed, then their hashes for the lookup budget */
    arg = ngx_alloc(sizeof(ngx_http_chat_sync_arg_t)
                    + in->count * (NGX_HTTP_CHAT_SYNC_OUT
                                   + NGX_HTTP_CHAT_LOOKUP_HASH), t->log);
    if (arg == NULL) {
        return;
    }

    t->result = arg;
    arg->viewer = in->viewer;
    arg->count = 0;

    country.data = (u_char *) in->country;
    country.len = in->country_len;

    out = (char *) (arg + 1);
    slot = (u_char *) (in + 1);

    /* numbers that do not parse are simply not matched */
    for (i = 0; i < in->count; i++, slot += NGX_HTTP_CHAT_SYNC_SLOT) {
        phone.data = slot + 1;
        phone.len = slot[0];

        p = out + arg->count * NGX_HTTP_CHAT_SYNC_OUT;

        if (in->phone(&phone, country.len ? &country : NULL, p) == NGX_OK) {
            /* and as it was sent, to be told back beside its user */
            ngx_memcpy(p + NGX_HTTP_CHAT_SYNC_E164, phone.data, phone.len);
            p[NGX_HTTP_CHAT_SYNC_E164 + phone.len] = '\0';
            arg->count++;
        }
    }

    /* thousands of HMACs: here, not on the event loop */
    hash = (u_char *) out + in->count * NGX_HTTP_CHAT_SYNC_OUT;

    for (i = 0; i < arg->count; i++, hash += NGX_HTTP_CHAT_LOOKUP_HASH) {
        if (ngx_http_chat_op_lookup_hash(&in->viewer,
                                         out + i * NGX_HTTP_CHAT_SYNC_OUT,
                                         hash)
            != NGX_OK)
        {
            return;
        }
    }

    t->rc = NGX_OK;
}


static void
ngx_http_chat_op_sync_parsed(ngx_http_chat_thread_t *t)
{
    ngx_http_chat_op_sync_t   *op = t->data;
    ngx_http_chat_sync_arg_t  *arg = t->result;

    if (t->rc != NGX_OK || arg == NULL) {
        ngx_http_chat_op_sync_finish(op, NGX_ABORT, NULL, NULL);
        return;
    }

    if (arg->count == 0) {
        ngx_http_chat_op_sync_finish(op, NGX_OK,
                                     json_pack("{s:[]}", "items"), NULL);
        return;
    }

    if (op->done == NULL) {
        ngx_http_chat_op_sync_finish(op, NGX_OK, NULL, NULL);
        return;
    }

    /*
     * The numbers that parse cost the day's lookup budget, shared with
     * add-contact and search (ngx_http_chat_op_lookup.h): a sync past it
     * is refused whole.  arg is the operation's until the end.
     */
    t->result = NULL;
    op->arg = arg;

    if (ngx_http_chat_op_lookup(&arg->viewer,
                                (u_char *) (arg + 1)
                                + op->in->count * NGX_HTTP_CHAT_SYNC_OUT,
                                arg->count, ngx_http_chat_op_sync_budget, op)
        != NGX_OK)
    {
        ngx_http_chat_op_sync_finish(op, NGX_ERROR, NULL,
                                     "redis is not available");
    }
}


static void
ngx_http_chat_op_sync_budget(void *data, ngx_int_t rc, time_t retry,
    const char *error)
{
    ngx_http_chat_op_sync_t  *op = data;

    json_t                    *answer;
    ngx_http_chat_sync_arg_t  *arg;
    ngx_http_chat_op_store_t  *store;

    if (rc == NGX_BUSY) {
        answer = json_pack("{s:I}", "retryAfter", (json_int_t) retry);

        ngx_http_chat_op_sync_finish(op, answer ? NGX_BUSY : NGX_ABORT,
                                     answer, NULL);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_chat_op_sync_finish(op, NGX_ERROR, NULL, error);
        return;
    }

    if (op->done == NULL) {
        /* counted; the query changes nothing and nobody waits */
        ngx_http_chat_op_sync_finish(op, NGX_OK, NULL, NULL);
        return;
    }

    arg = op->arg;

    /* the store's copy of arg; the query answers to op whoever waits */
    if (ngx_http_chat_op_store(ngx_http_chat_contacts_sync_run, NULL, arg,
                               sizeof(ngx_http_chat_sync_arg_t)
                               + arg->count * NGX_HTTP_CHAT_SYNC_OUT,
                               ngx_http_chat_op_sync_found, op, &store)
        != NGX_OK)
    {
        ngx_http_chat_op_sync_finish(op, NGX_ERROR, NULL,
                                     "mongo is not available");
    }
}


static void
ngx_http_chat_op_sync_found(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_op_sync_t  *op = data;

    if (rc != NGX_OK || answer == NULL) {
        json_decref(answer);
        answer = NULL;
        rc = NGX_ERROR;
    }

    ngx_http_chat_op_sync_finish(op, rc, answer, error);
}


static void
ngx_http_chat_op_sync_finish(ngx_http_chat_op_sync_t *op, ngx_int_t rc,
    json_t *answer, const char *error)
{
    ngx_http_chat_work_end();

    if (op->done) {
        op->done(op->data, rc, answer, error);

    } else {
        json_decref(answer);
    }

    if (op->arg) {
        ngx_free(op->arg);
    }

    ngx_free(op);
}
