/*
 * Copyright (C) ngx_chat_module authors
 *
 * Storing a message on nobody's behalf: the checks, a number from Redis,
 * the insert, and what follows its commit.  Steps are Mongo tasks and
 * Redis commands owned by the operation, never by a request, so no
 * requester that leaves can stop it half-way.
 */


#include "ngx_http_chat_op_send.h"
#include "ngx_http_chat_send_cache.h"
#include "ngx_http_chat_op_input.h"
#include "ngx_http_chat_op_store.h"
#include "ngx_http_chat_op_activity.h"
#include "ngx_http_chat_op_push.h"
#include "ngx_http_chat_op_send_again.h"
#include "../store/ngx_http_chat_mongo.h"
#include "../store/ngx_http_chat_redis.h"
#include "../store/ngx_http_chat_redis_shards.h"
#include "../store/ngx_http_chat_list_model.h"
#include "../core/ngx_http_chat_events.h"
#include "../util/ngx_http_chat_metrics.h"


#define NGX_HTTP_CHAT_SEQ_TRIES     5
#define NGX_HTTP_CHAT_SEQ_GATE_TTL  "60"


struct ngx_http_chat_op_send_s {
    ngx_http_chat_op_done_pt    done;       /* NULL once nobody waits */
    void                       *data;
    ngx_queue_t                 queue;      /* in the worker's live ops */
    ngx_msec_t                  started;
    ngx_uint_t                  flags;
    ngx_uint_t                  tries;
    ngx_uint_t                  generation; /* of the sender table */
    size_t                      size;
    int64_t                     floor;      /* for the number, after */
    ngx_http_chat_msg_arg_t    *arg;        /* after the struct */
    unsigned                    gate:1;     /* Redis first, if it knows */
    unsigned                    charged:1;  /* took its send budget */
};


static ngx_int_t ngx_http_chat_op_send_begin(ngx_http_chat_op_send_t *op);
static void ngx_http_chat_op_send_filtered(void *data, ngx_int_t rc,
    u_char *content, size_t len, const char *reason);


static ngx_int_t ngx_http_chat_op_send_check(ngx_http_chat_op_send_t *op);
static void ngx_http_chat_op_send_checked(ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_op_send_seq(ngx_http_chat_op_send_t *op,
    int64_t floor);
static void ngx_http_chat_op_send_numbered(redisReply *reply, void *data);
static void ngx_http_chat_op_send_budgeted(redisReply *reply, void *data);
static ngx_uint_t ngx_http_chat_op_send_ended(ngx_http_chat_op_send_t *op,
    redisReply *reply);
static void ngx_http_chat_op_send_floored(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_op_send_stored(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_op_send_committed(ngx_http_chat_op_send_t *op,
    json_t *answer);
static void ngx_http_chat_op_send_void(ngx_http_chat_op_send_t *op);
static void ngx_http_chat_op_send_tombstone(const bson_oid_t *chat,
    int64_t seq);
static void ngx_http_chat_op_send_finish(ngx_http_chat_op_send_t *op,
    ngx_int_t rc, json_t *answer, const char *error);
static ngx_int_t ngx_http_chat_op_send_task(ngx_http_chat_op_send_t *op,
    ngx_http_chat_mongo_run_pt run, ngx_http_chat_mongo_done_pt done,
    ngx_int_t (*post)(ngx_http_chat_mongo_task_t *t));


/*
 * The user's send budget (chat_send_rate), in the same script as the
 * number when the user's shard is the chat's (always, with no shards),
 * so it costs no round trip of its own: GCRA over the key
 * rl:send:{<user>} (KEYS[#KEYS]), which holds the time, in microseconds
 * of Redis' clock, at which the user's bucket is full again (every
 * instance reads the same clock).  ARGV[#ARGV-1] is the time a send
 * costs (0: no budget), ARGV[#ARGV] the burst's.  Over it: {seconds until
 * a send fits}, and nothing else is done.  It runs only once a number
 * would be taken (no -1, no -2 first), so a send is charged once.  On
 * another shard than the chat's it runs alone, before the number.
 */
#define NGX_HTTP_CHAT_SEND_BUDGET_LUA                                         \
    "local bt = tonumber(ARGV[#ARGV - 1]) "                                   \
    "if bt > 0 then "                                                         \
    "local tm = redis.call('TIME') "                                          \
    "local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2]) "                \
    "local tat = tonumber(redis.call('GET', KEYS[#KEYS]) or '0') "            \
    "if tat < now then tat = now end "                                        \
    "tat = tat + bt "                                                         \
    "local over = tat - now - tonumber(ARGV[#ARGV]) "                         \
    "if over > 0 then return {math.ceil(over / 1000000)} end "                \
    "redis.call('SET', KEYS[#KEYS], string.format('%.0f', tat), 'PX', "       \
    "math.ceil((tat - now) / 1000) + 1000) "                                  \
    "end "


/* the budget alone, on the user's shard: 0 when the send fits */
static const char  ngx_http_chat_send_budget_script[] =
    NGX_HTTP_CHAT_SEND_BUDGET_LUA
    "return 0";

/*
 * The next number of a chat, seq:{<chat>} on the chat's shard.  A
 * missing counter (a new chat, or Redis lost it) is set from the highest
 * stored seq first, which the caller passes as ARGV[1] once it asked
 * MongoDB (-1: not asked yet).
 */
static const char  ngx_http_chat_seq_script[] =
    "local c = tonumber(redis.call('GET', KEYS[1]) or '-1') "
    "local f = tonumber(ARGV[1]) "
    "if c < 0 and f < 0 then return -1 end "
    NGX_HTTP_CHAT_SEND_BUDGET_LUA
    "if f > c then redis.call('SET', KEYS[1], f) end "
    "return redis.call('INCR', KEYS[1])";

/*
 * The same for a message with a tempId (KEYS[2], st:{<chat>}:<user>:
 * <tempId>, on the chat's shard too), which it notes for
 * ARGV[2] seconds.  With ARGV[3] "1", -2 when the tempId took a number
 * within that time: then the store says whether it is a retry.
 */
static const char  ngx_http_chat_seq_gate_script[] =
    "if ARGV[3] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then "
    "return -2 end "
    "local c = tonumber(redis.call('GET', KEYS[1]) or '-1') "
    "local f = tonumber(ARGV[1]) "
    "if c < 0 and f < 0 then return -1 end "
    NGX_HTTP_CHAT_SEND_BUDGET_LUA
    "if f > c then redis.call('SET', KEYS[1], f) end "
    "redis.call('SET', KEYS[2], '1', 'EX', ARGV[2]) "
    "return redis.call('INCR', KEYS[1])";


static ngx_queue_t  ngx_http_chat_ops_live;
static ngx_uint_t   ngx_http_chat_ops_live_n;

/*
 * The pace at which the worker's sends end (the store's, as they see
 * it): ends a second, counted over windows of a second at least, each
 * window averaged with the pace before it.  chat_send_max_wait refuses
 * a send when more are in flight than that pace ends in that time, the
 * oldest has waited an eighth of it already (a burst at a fast store is
 * let in; a cold worker, its pace unknown, lets in what comes in that
 * eighth), and a few are in flight (one slow send is no queue).
 */
#define NGX_HTTP_CHAT_OP_SEND_QUEUE  16
static ngx_uint_t   ngx_http_chat_ops_pace;
static ngx_uint_t   ngx_http_chat_ops_ended;   /* in this window */
static ngx_msec_t   ngx_http_chat_ops_window;  /* its start */


static void
ngx_http_chat_op_send_pace(void)
{
    ngx_msec_t  elapsed;

    elapsed = ngx_current_msec - ngx_http_chat_ops_window;

    if (elapsed < 1000) {
        return;
    }

    ngx_http_chat_ops_pace = (ngx_http_chat_ops_pace
                              + ngx_http_chat_ops_ended * 1000 / elapsed)
                             / 2;
    ngx_http_chat_ops_ended = 0;
    ngx_http_chat_ops_window = ngx_current_msec;
}


/* the queue of sends is longer than the store ends in max_wait */
static ngx_uint_t
ngx_http_chat_op_send_late(ngx_msec_t max_wait)
{
    ngx_queue_t              *q;
    ngx_http_chat_op_send_t  *oldest;

    if (max_wait == 0
        || ngx_http_chat_ops_live_n < NGX_HTTP_CHAT_OP_SEND_QUEUE)
    {
        return 0;
    }

    ngx_http_chat_op_send_pace();

    if (ngx_http_chat_ops_live_n
        <= ngx_http_chat_ops_pace * max_wait / 1000)
    {
        return 0;
    }

    q = ngx_queue_head(&ngx_http_chat_ops_live);
    oldest = ngx_queue_data(q, ngx_http_chat_op_send_t, queue);

    return ngx_current_msec - oldest->started > max_wait / 8;
}


ngx_int_t
ngx_http_chat_op_send(ngx_http_chat_msg_arg_t *arg, size_t size,
    ngx_uint_t flags, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_send_t **out)
{
    char                        user[25], chat[25];
    ngx_int_t                   rc;
    ngx_http_chat_op_send_t    *op;
    ngx_http_chat_main_conf_t  *cmcf;

    if (ngx_http_chat_ops_exited) {
        return NGX_ERROR;
    }

    if (flags & NGX_HTTP_CHAT_OP_SEND_BOUND) {
        cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_chat_module);

        /*
         * The store is behind: one more send would only wait longer
         * behind the others, and make every later one wait too.  It is
         * refused before it takes a number, so the sender may retry.
         */
        if (cmcf && cmcf->send_max_pending
            && ngx_http_chat_ops_live_n >= cmcf->send_max_pending)
        {
            return NGX_AGAIN;
        }

        /*
         * And by time: the queue is longer than the store drains in the
         * time a client should wait for an answer, whatever its speed.
         */
        if (cmcf && ngx_http_chat_op_send_late(cmcf->send_max_wait)) {
            return NGX_AGAIN;
        }
    }

    op = ngx_alloc(sizeof(ngx_http_chat_op_send_t) + size, ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(op, sizeof(ngx_http_chat_op_send_t));

    op->done = done;
    op->data = data;
    op->flags = flags;
    op->size = size;
    op->arg = (ngx_http_chat_msg_arg_t *) (op + 1);
    ngx_memcpy(op->arg, arg, size);

    /*
     * A tempId Redis does not note (a forward's copy) is looked up by the
     * check; one it notes only when Redis says it took a number lately.
     */
    op->arg->lookup = !(flags & NGX_HTTP_CHAT_OP_SEND_MARK);

    if (ngx_http_chat_ops_live.next == NULL) {
        ngx_queue_init(&ngx_http_chat_ops_live);
    }

    ngx_queue_insert_tail(&ngx_http_chat_ops_live, &op->queue);
    ngx_http_chat_ops_live_n++;
    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_SENDS_IN_FLIGHT);
    op->started = ngx_current_msec;
    ngx_http_chat_work_begin();

    if (flags & NGX_HTTP_CHAT_OP_SEND_FILTER) {
        /*
         * The site's filter (lua-compat) sees the message before any
         * step: a message it rejects takes no number and leaves nothing.
         */
        bson_oid_to_string(&op->arg->user, user);
        bson_oid_to_string(&op->arg->chat, chat);

        rc = ngx_http_chat_event_filter((u_char *) user, (u_char *) chat,
                                        op->arg->type,
                                        (u_char *) (op->arg + 1),
                                        op->arg->content_len,
                                        ngx_http_chat_op_send_filtered, op);
        if (rc == NGX_DECLINED) {
            rc = ngx_http_chat_op_send_begin(op);
        }

    } else {
        rc = ngx_http_chat_op_send_begin(op);
    }

    if (rc != NGX_OK) {
        ngx_queue_remove(&op->queue);
        ngx_http_chat_ops_live_n--;
        ngx_http_chat_metric_dec(NGX_HTTP_CHAT_M_SENDS_IN_FLIGHT);
        ngx_http_chat_work_end();
        ngx_free(op);
        return NGX_ERROR;
    }

    *out = op;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_op_send_message(const bson_oid_t *user, json_t *body,
    ngx_uint_t flags, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_send_t **out, const char **field, const char **err)
{
    size_t                    len, size;
    json_t                   *content;
    u_char                   *p;
    ngx_int_t                 rc;
    ngx_str_t                 temp, type;
    ngx_uint_t                i, found, nmentions;
    bson_oid_t                chat, reply_to;
    bson_oid_t                mentions[NGX_HTTP_CHAT_MENTIONS_MAX];
    ngx_http_chat_msg_arg_t  *arg;

    *field = "chatId";
    if ((*err = ngx_http_chat_input_oid(body, "chatId", 1, &chat, &found))) {
        return NGX_DECLINED;
    }

    *field = "tempId";
    if ((*err = ngx_http_chat_json_string(body, "tempId", 1,
                                          NGX_HTTP_CHAT_TEMP_ID_MAX, &temp)))
    {
        return NGX_DECLINED;
    }

    for (i = 0; i < temp.len; i++) {
        if (!((temp.data[i] >= 'a' && temp.data[i] <= 'z')
              || (temp.data[i] >= 'A' && temp.data[i] <= 'Z')
              || (temp.data[i] >= '0' && temp.data[i] <= '9')
              || temp.data[i] == '_' || temp.data[i] == '-'))
        {
            *err = "must be 1 to 64 of A-Z, a-z, 0-9, \"_\" and \"-\"";
            return NGX_DECLINED;
        }
    }

    /* or inside the content, as the seed sends it */
    *field = "type";
    if ((*err = ngx_http_chat_json_string(body, "type", 0, 15, &type))) {
        return NGX_DECLINED;
    }

    *field = "replyTo";
    if ((*err = ngx_http_chat_input_oid(body, "replyTo", 0, &reply_to,
                                        &found)))
    {
        return NGX_DECLINED;
    }

    *field = "mentions";
    if ((*err = ngx_http_chat_input_mentions(user, body, mentions,
                                             &nmentions)))
    {
        return NGX_DECLINED;
    }

    content = ngx_http_chat_input_content(&type,
                                          json_object_get(body, "content"),
                                          field, err);
    if (content == NULL) {
        return *err ? NGX_DECLINED : NGX_ERROR;
    }

    len = json_dumpb(content, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    size = sizeof(ngx_http_chat_msg_arg_t) + len + 1
           + nmentions * sizeof(bson_oid_t);

    arg = ngx_calloc(size, ngx_cycle->log);

    if (arg == NULL || len == 0) {
        json_decref(content);
        ngx_free(arg);
        return NGX_ERROR;
    }

    arg->content_len = json_dumpb(content, (char *) (arg + 1), len,
                                  JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(content);

    arg->user = *user;
    arg->chat = chat;
    bson_oid_init(&arg->id, NULL);

    if (found) {
        arg->reply_to = reply_to;
        arg->has_reply = 1;
    }

    ngx_memcpy(arg->temp_id, temp.data, temp.len);
    ngx_memcpy(arg->type, type.data, type.len);

    /* the mentioned users after the content and its NUL */
    arg->nmentions = nmentions;
    p = (u_char *) (arg + 1) + arg->content_len + 1;
    ngx_memcpy(p, mentions, nmentions * sizeof(bson_oid_t));

    /* a message a user sends passes the site's filter, if any */
    rc = ngx_http_chat_op_send(arg, size, flags | NGX_HTTP_CHAT_OP_SEND_FILTER,
                               done, data, out);

    ngx_free(arg);

    return rc;
}


/* the steps: the check, or straight to a number */

static ngx_int_t
ngx_http_chat_op_send_begin(ngx_http_chat_op_send_t *op)
{
    ngx_int_t  rc;

    if ((op->flags & NGX_HTTP_CHAT_OP_SEND_CACHE)
        && ngx_http_chat_send_cache_hit(&op->arg->chat, &op->arg->user))
    {
        op->arg->allowed = 1;
    }

    if (!(op->flags & NGX_HTTP_CHAT_OP_SEND_CHECK)) {
        rc = ngx_http_chat_op_send_seq(op, -1);

    } else if (op->arg->allowed && !op->arg->has_reply
               && (op->flags & NGX_HTTP_CHAT_OP_SEND_MARK))
    {
        /*
         * Allowed a moment ago, nothing to check but its tempId: a tempId
         * Redis has not seen lately is not a retry (one that it forgot is
         * still told by the insert's unique index, at the cost of a
         * tombstone), so the store is asked only when Redis has.
         */
        op->gate = 1;
        rc = ngx_http_chat_op_send_seq(op, -1);

    } else {
        /* may the user send, the reply's message, a tempId sent before */
        rc = ngx_http_chat_op_send_check(op);
    }

    return rc;
}


/* the site's filter answered: reject, rewrite, or go on as sent */

static void
ngx_http_chat_op_send_filtered(void *data, ngx_int_t rc, u_char *content,
    size_t len, const char *reason)
{
    ngx_http_chat_op_send_t  *op = data;

    size_t                    mlen, size;
    json_t                   *answer;
    ngx_http_chat_msg_arg_t  *arg;

    if (rc == NGX_BUSY || rc == NGX_ERROR) {
        /* told as a refusal with its own code (ngx_http_chat_op_tell) */
        answer = json_pack("{s:s,s:s,s:i}",
                           "code", rc == NGX_BUSY ? "message_rejected"
                                                  : "filter_failed",
                           "message", reason ? reason : "",
                           "status", rc == NGX_BUSY ? 422 : 503);

        /* error: what a 503 logs */
        ngx_http_chat_op_send_finish(op, NGX_BUSY, answer,
                                     reason ? reason : "the message filter");
        return;
    }

    if (content) {
        /* the rewritten content in place of the one sent, mentions kept */
        mlen = op->arg->nmentions * sizeof(bson_oid_t);
        size = sizeof(ngx_http_chat_msg_arg_t) + len + 1 + mlen;

        arg = ngx_alloc(size, ngx_cycle->log);
        if (arg == NULL) {
            ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL, "no memory");
            return;
        }

        ngx_memcpy(arg, op->arg, sizeof(ngx_http_chat_msg_arg_t));
        ngx_memcpy(arg + 1, content, len);
        ((u_char *) (arg + 1))[len] = '\0';
        ngx_memcpy((u_char *) (arg + 1) + len + 1,
                   (u_char *) (op->arg + 1) + op->arg->content_len + 1,
                   mlen);
        arg->content_len = len;

        op->arg = arg;
        op->size = size;
    }

    if (ngx_http_chat_op_send_begin(op) != NGX_OK) {
        ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL,
                                     "the store is not available");
    }
}


void
ngx_http_chat_op_send_detach(ngx_http_chat_op_send_t *op)
{
    op->done = NULL;
    op->data = NULL;
}


/*
 * post is ngx_http_chat_mongo_post(), or for the insert the messages'
 * group commit: it goes with the worker's others that wait for the store
 */
static ngx_int_t
ngx_http_chat_op_send_task(ngx_http_chat_op_send_t *op,
    ngx_http_chat_mongo_run_pt run, ngx_http_chat_mongo_done_pt done,
    ngx_int_t (*post)(ngx_http_chat_mongo_task_t *t))
{
    ngx_http_chat_mongo_task_t  *t;

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log, run, done, op,
                                            op->arg, op->size);
    if (t == NULL) {
        return NGX_ERROR;
    }

    /* on NGX_ERROR the task is freed */
    return post(t);
}


static ngx_int_t
ngx_http_chat_op_send_check(ngx_http_chat_op_send_t *op)
{
    op->generation = ngx_http_chat_send_cache_generation();

    return ngx_http_chat_op_send_task(op, ngx_http_chat_msg_prepare_run,
                                      ngx_http_chat_op_send_checked,
                                      ngx_http_chat_mongo_post);
}


static void
ngx_http_chat_op_send_checked(ngx_http_chat_mongo_task_t *t)
{
    json_t                   *answer;
    ngx_http_chat_op_send_t  *op;

    op = t->data;

    if (t->rc != NGX_OK) {
        answer = t->result;
        t->result = NULL;

        if (t->rc == NGX_DONE) {
            ngx_http_chat_op_send_again(&op->arg->user, op->arg->temp_id,
                                        json_object_get(answer, "message"));
        }

        ngx_http_chat_op_send_finish(op, t->rc, answer, t->error.message);
        return;
    }

    if ((op->flags & NGX_HTTP_CHAT_OP_SEND_CACHE) && !op->arg->allowed) {
        ngx_http_chat_send_cache_put(&op->arg->chat, &op->arg->user,
                                     op->generation);
    }

    /* checked: a second check (a retry's lookup) asks only for that */
    op->arg->allowed = 1;

    /* its tempId was not looked up: Redis tells whether it may be a retry */
    op->gate = (op->flags & NGX_HTTP_CHAT_OP_SEND_MARK) && !op->arg->lookup;

    if (ngx_http_chat_op_send_seq(op, -1) != NGX_OK) {
        ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL,
                                     "redis is not available");
    }
}


/*
 * Takes the next number of the chat in Redis, on the chat's shard, with
 * the user's budget in the same script when the user's shard is the
 * same, else in a script of its own on the user's shard first.
 */

static ngx_int_t
ngx_http_chat_op_send_seq(ngx_http_chat_op_send_t *op, int64_t floor)
{
    char                        chat[25], user[25];
    u_char                      fl[NGX_INT64_LEN],
                                seq_key[sizeof("seq:{}") + 24],
                                temp_key[sizeof("st:{}::") + 48
                                         + NGX_HTTP_CHAT_TEMP_ID_MAX],
                                rl_key[sizeof("rl:send:{}") + 24],
                                cost[NGX_INT64_LEN], burst[NGX_INT64_LEN];
    size_t                      rl_len, cost_len, burst_len;
    uint64_t                    t, tau;
    ngx_uint_t                  n, mark, shard;
    const char                 *argv[12];
    size_t                      argvlen[12];
    ngx_http_chat_main_conf_t  *cmcf;

    mark = op->flags & NGX_HTTP_CHAT_OP_SEND_MARK;

    bson_oid_to_string(&op->arg->chat, chat);
    bson_oid_to_string(&op->arg->user, user);

    /* the time one send costs in the user's budget, 0: none */
    t = 0;
    tau = 0;

    if ((op->flags & NGX_HTTP_CHAT_OP_SEND_BUDGET) && !op->charged) {
        cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_chat_module);
        if (cmcf && cmcf->send_budget.rate) {
            /* microseconds: the rate is per 1000 s */
            t = (uint64_t) 1000000000 / cmcf->send_budget.rate;
            if (t == 0) {
                t = 1;
            }

            tau = t * cmcf->send_budget.burst;
        }
    }

    shard = ngx_http_chat_redis_shard_of((u_char *) chat, 24);
    rl_len = ngx_sprintf(rl_key, "rl:send:{%s}", user) - rl_key;
    cost_len = ngx_sprintf(cost, "%uL", t) - cost;
    burst_len = ngx_sprintf(burst, "%uL", tau) - burst;

    n = 0;
    argv[n] = "EVAL";
    argvlen[n++] = 4;

    if (t && ngx_http_chat_redis_shard_of((u_char *) user, 24) != shard) {
        op->floor = floor;

        argv[n] = ngx_http_chat_send_budget_script;
        argvlen[n++] = sizeof(ngx_http_chat_send_budget_script) - 1;
        argv[n] = "1";
        argvlen[n++] = 1;
        argv[n] = (char *) rl_key;
        argvlen[n++] = rl_len;
        argv[n] = (char *) cost;
        argvlen[n++] = cost_len;
        argv[n] = (char *) burst;
        argvlen[n++] = burst_len;

        return ngx_http_chat_redis_command_argv(
                   ngx_http_chat_redis_shard(
                       ngx_http_chat_redis_shard_of((u_char *) user, 24)),
                   ngx_http_chat_op_send_budgeted, op, (int) n, argv,
                   argvlen);
    }

    argv[n] = mark ? ngx_http_chat_seq_gate_script : ngx_http_chat_seq_script;
    argvlen[n] = ngx_strlen(argv[n]);
    n++;
    argv[n] = mark ? "3" : "2";
    argvlen[n++] = 1;
    argv[n] = (char *) seq_key;
    argvlen[n++] = ngx_sprintf(seq_key, "seq:{%s}", chat) - seq_key;

    if (mark) {
        argv[n] = (char *) temp_key;
        argvlen[n++] = ngx_sprintf(temp_key, "st:{%s}:%s:%s", chat, user,
                                   op->arg->temp_id)
                       - temp_key;
    }

    argv[n] = (char *) rl_key;
    argvlen[n++] = rl_len;

    argv[n] = (char *) fl;
    argvlen[n++] = ngx_sprintf(fl, "%L", floor) - fl;

    if (mark) {
        argv[n] = NGX_HTTP_CHAT_SEQ_GATE_TTL;
        argvlen[n++] = sizeof(NGX_HTTP_CHAT_SEQ_GATE_TTL) - 1;
        argv[n] = op->gate ? "1" : "0";
        argvlen[n++] = 1;
    }

    argv[n] = (char *) cost;
    argvlen[n++] = cost_len;
    argv[n] = (char *) burst;
    argvlen[n++] = burst_len;

    /* hiredis copies the command before this returns */
    return ngx_http_chat_redis_command_argv(ngx_http_chat_redis_shard(shard),
                                            ngx_http_chat_op_send_numbered,
                                            op, (int) n, argv, argvlen);
}


/* the budget on the user's shard answered: the number, or refused */

static void
ngx_http_chat_op_send_budgeted(redisReply *reply, void *data)
{
    ngx_http_chat_op_send_t  *op = data;

    if (ngx_http_chat_op_send_ended(op, reply)) {
        return;
    }

    /* charged once: a floor or a retry's check after does not again */
    op->charged = 1;

    if (ngx_http_chat_op_send_seq(op, op->floor) != NGX_OK) {
        ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL,
                                     "redis is not available");
    }
}


/*
 * A script's answer that ends the send, 1 when it does: over the user's
 * send budget (no number taken, nothing stored), or no number at all
 */

static ngx_uint_t
ngx_http_chat_op_send_ended(ngx_http_chat_op_send_t *op, redisReply *reply)
{
    json_t  *answer;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 1
        || reply->element[0]->type != REDIS_REPLY_INTEGER)
    {
        if (reply && reply->type == REDIS_REPLY_INTEGER) {
            return 0;
        }

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: redis command failed: %s",
                      reply == NULL ? "connection lost"
                      : reply->type == REDIS_REPLY_ERROR ? reply->str
                      : "not a number");
        ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL,
                                     "redis is not available");
        return 1;
    }

    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_SEND_BUDGET);

    answer = json_pack("{s:s,s:s,s:i,s:I}",
                       "code", "rate_limited",
                       "message", "too many messages, try again later",
                       "status", 429,
                       "retryAfter",
                       (json_int_t) ngx_max(reply->element[0]->integer, 1));

    ngx_http_chat_op_send_finish(op, answer ? NGX_BUSY : NGX_ERROR, answer,
                                 "no memory");
    return 1;
}


static void
ngx_http_chat_op_send_numbered(redisReply *reply, void *data)
{
    ngx_http_chat_op_send_t  *op = data;

    ngx_int_t  rc;

    if (ngx_http_chat_op_send_ended(op, reply)) {
        return;
    }

    if (reply->integer == -2) {
        /* its tempId took a number lately: whether it is stored first */
        op->gate = 0;
        op->arg->lookup = 1;
        rc = ngx_http_chat_op_send_check(op);

    } else if (reply->integer < 0) {
        /* no counter yet: the highest stored number first */
        rc = ngx_http_chat_op_send_task(op, ngx_http_chat_msg_floor_run,
                                        ngx_http_chat_op_send_floored,
                                        ngx_http_chat_mongo_post);

    } else {
        op->arg->seq = reply->integer;
        op->gate = 0;
        op->charged = 1;

        rc = ngx_http_chat_op_send_task(op, ngx_http_chat_msg_insert_run,
                                        ngx_http_chat_op_send_stored,
                                        ngx_http_chat_msg_insert_post);

        if (rc != NGX_OK) {
            /* the insert never ran: the number taken must still be filled */
            ngx_http_chat_op_send_tombstone(&op->arg->chat, op->arg->seq);
        }
    }

    if (rc != NGX_OK) {
        ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL,
                                     "mongo is not available");
    }
}


static int64_t
ngx_http_chat_op_send_reply_floor(ngx_http_chat_mongo_task_t *t)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, &t->reply, "floor")
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        return bson_iter_as_int64(&it);
    }

    return 0;
}


static void
ngx_http_chat_op_send_floored(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_op_send_t  *op;

    op = t->data;

    if (t->rc != NGX_OK) {
        ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL, t->error.message);
        return;
    }

    if (ngx_http_chat_op_send_seq(op, ngx_http_chat_op_send_reply_floor(t))
        != NGX_OK)
    {
        ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL,
                                     "redis is not available");
    }
}


static void
ngx_http_chat_op_send_stored(ngx_http_chat_mongo_task_t *t)
{
    json_t                   *answer;
    ngx_http_chat_op_send_t  *op;

    op = t->data;

    if (t->rc == NGX_AGAIN) {
        /* the number was taken: Redis was behind, catch up and try again */
        if (++op->tries == NGX_HTTP_CHAT_SEQ_TRIES) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "chat: no free sequence number after %ui tries",
                          op->tries);
            ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL,
                                         "no free sequence number");
            return;
        }

        if (ngx_http_chat_op_send_seq(op,
                                      ngx_http_chat_op_send_reply_floor(t))
            != NGX_OK)
        {
            ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL,
                                         "redis is not available");
        }

        return;
    }

    answer = t->result;
    t->result = NULL;

    if (t->rc == NGX_OK) {
        ngx_http_chat_op_send_committed(op, answer);

    } else {
        /* the insert left a tombstone at the number taken */
        ngx_http_chat_op_send_void(op);

        if (t->rc == NGX_DONE) {
            ngx_http_chat_op_send_again(&op->arg->user, op->arg->temp_id,
                                        json_object_get(answer, "message"));

        } else if (t->rc == NGX_ERROR) {
            /* the store may have kept it and lost the answer */
            ngx_http_chat_op_send_unsure(&op->arg->user, op->arg->temp_id);
        }
    }

    ngx_http_chat_op_send_finish(op, t->rc, answer, t->error.message);
}


/*
 * What follows a stored message, whoever waits: the event, from the
 * message as stored, then the chat's activity, coalesced
 * (ngx_http_chat_op_activity.c).
 */

static void
ngx_http_chat_op_send_committed(ngx_http_chat_op_send_t *op, json_t *answer)
{
    json_t  *message;

    message = json_object_get(answer, "message");

    if (ngx_http_chat_op_send_publish(&op->arg->user, message) == NGX_OK) {
        /* the members away get a push, whoever waits for this send */
        ngx_http_chat_op_push_message(message);
    }

    /* coalesced with the chat's other messages of the moment */
    ngx_http_chat_op_activity_add(&op->arg->chat, op->arg->seq);
}


/* the number op took holds a tombstone: it counts for nobody */

static void
ngx_http_chat_op_send_void(ngx_http_chat_op_send_t *op)
{
    char  id[25];

    if (op->arg->seq > 0) {
        bson_oid_to_string(&op->arg->chat, id);
        ngx_http_chat_list_model_void(id, op->arg->seq);
    }
}


void
ngx_http_chat_op_send_new_chat(const bson_oid_t *chat)
{
    char         id[25];
    u_char       key[sizeof("seq:{}") + 24];
    size_t       argvlen[5];
    const char  *argv[5];

    bson_oid_to_string(chat, id);

    argv[0] = "SET";
    argvlen[0] = 3;
    argv[1] = (char *) key;
    argvlen[1] = ngx_sprintf(key, "seq:{%s}", id) - key;
    argv[2] = "0";
    argvlen[2] = 1;
    /* a send that came first set it from the store: it stays */
    argv[3] = "NX";
    argvlen[3] = 2;

    /* not sent (Redis away): the first send reads the store, as before */
    (void) ngx_http_chat_redis_command_argv(
               ngx_http_chat_redis_shard(
                   ngx_http_chat_redis_shard_of((u_char *) id, 24)),
               NULL, NULL, 4, argv, argvlen);
}


/* a number taken and never used: a tombstone, so readers never wait */

static void
ngx_http_chat_op_send_tombstone(const bson_oid_t *chat, int64_t seq)
{
    char                         id[25];
    ngx_http_chat_msg_arg_t      a;
    ngx_http_chat_mongo_task_t  *t;

    ngx_memzero(&a, sizeof(ngx_http_chat_msg_arg_t));
    bson_oid_copy(chat, &a.chat);
    a.seq = seq;

    /* the number holds no message: no unread count counts it */
    bson_oid_to_string(chat, id);
    ngx_http_chat_list_model_void(id, seq);

    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_msg_tombstone_run,
                                            NULL, NULL, &a,
                                            sizeof(ngx_http_chat_msg_arg_t));

    if (t == NULL || ngx_http_chat_mongo_post(t) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: seq %L left without a tombstone", seq);
    }
}


static void
ngx_http_chat_op_send_finish(ngx_http_chat_op_send_t *op, ngx_int_t rc,
    json_t *answer, const char *error)
{
    ngx_queue_remove(&op->queue);
    ngx_http_chat_ops_live_n--;
    ngx_http_chat_metric_dec(NGX_HTTP_CHAT_M_SENDS_IN_FLIGHT);
    ngx_http_chat_work_end();

    ngx_http_chat_op_send_pace();
    ngx_http_chat_ops_ended++;

    if (op->done) {
        op->done(op->data, rc, answer, error);

    } else if (answer) {
        json_decref(answer);
    }

    if (op->arg != (ngx_http_chat_msg_arg_t *) (op + 1)) {
        ngx_free(op->arg);      /* a filter rewrote it */
    }

    ngx_free(op);
}


/*
 * The worker exits: what its graceful exit did not wait for (a stop, or
 * what Redis and MongoDB never answered) is called back with an error
 * and freed.  Sends go first: an operation of the store may wait for one
 * (a forward's copies, a group's system message), and is told by it.
 */

void
ngx_http_chat_ops_exit_process(void)
{
    ngx_uint_t                n;
    ngx_queue_t              *q;
    ngx_http_chat_op_send_t  *op;

    ngx_http_chat_ops_exited = 1;

    n = 0;

    if (ngx_http_chat_ops_live.next) {
        while (!ngx_queue_empty(&ngx_http_chat_ops_live)) {
            q = ngx_queue_head(&ngx_http_chat_ops_live);
            op = ngx_queue_data(q, ngx_http_chat_op_send_t, queue);

            ngx_http_chat_op_send_finish(op, NGX_ERROR, NULL,
                                         "the worker exited before the end");
            n++;
        }
    }

    if (n) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: %ui sends in flight when the worker exited", n);
    }

    ngx_http_chat_op_store_exit_process();
    ngx_http_chat_op_activity_exit_process();
}
