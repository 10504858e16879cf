/*
 * Copyright (C) ngx_chat_module authors
 *
 * GET /api/chats as a read model (README, "Chats and messages"): the
 * page from MongoDB in two reads, each chat's row from Redis, and the
 * chats Redis missed read from MongoDB and their keys rebuilt under the
 * generation Redis gave.  GET /api/chats/:id is a page of one chat:
 * the chat with every member from MongoDB, its last message and my
 * unread count from the same script (and the same rebuild), so that they
 * are exactly those of its row.
 */


#include "ngx_http_chat_op_chat_list.h"
#include "ngx_http_chat_op_store.h"
#include "../store/ngx_http_chat_redis.h"
#include "../store/ngx_http_chat_list_model.h"
#include "../store/ngx_http_chat_list_facts.h"


struct ngx_http_chat_op_chat_list_s {
    ngx_http_chat_op_done_pt     done;     /* NULL once nobody waits */
    void                        *data;
    ngx_http_chat_op_store_t    *store;    /* the MongoDB step running */
    json_t                      *page;     /* {items, nextCursor?} */
    json_t                      *chat;     /* one chat: its answer */
    char                       (*gen)[32]; /* per item: a miss's, or "" */
    char                         user[25];
};


static void ngx_http_chat_list_paged(void *data, ngx_int_t rc,
    json_t *answer, const char *error);
static void ngx_http_chat_list_got(void *data, ngx_int_t rc,
    json_t *answer, const char *error);
static void ngx_http_chat_list_row_read(void *data, size_t i,
    redisReply *r);
static void ngx_http_chat_list_modelled(void *data);
static ngx_int_t ngx_http_chat_list_start(const bson_oid_t *user,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    ngx_http_chat_op_done_pt step, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_chat_list_t **out);
static void ngx_http_chat_list_rebuilt(void *data, ngx_int_t rc,
    json_t *answer, const char *error);
static ngx_int_t ngx_http_chat_list_row(ngx_http_chat_op_chat_list_t *op,
    json_t *item, redisReply *r);
static void ngx_http_chat_list_finish(ngx_http_chat_op_chat_list_t *op,
    ngx_int_t rc, const char *error);


ngx_int_t
ngx_http_chat_op_chat_list(ngx_http_chat_chats_arg_t *arg,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_chat_list_t **out)
{
    return ngx_http_chat_list_start(&arg->user, ngx_http_chat_chat_page_run,
                                    arg, sizeof(ngx_http_chat_chats_arg_t),
                                    ngx_http_chat_list_paged, done, data,
                                    out);
}


ngx_int_t
ngx_http_chat_op_chat_get(ngx_http_chat_group_arg_t *arg,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_chat_list_t **out)
{
    return ngx_http_chat_list_start(&arg->user, ngx_http_chat_chat_get_run,
                                    arg, sizeof(ngx_http_chat_group_arg_t),
                                    ngx_http_chat_list_got, done, data, out);
}


/* a page of my chats or one chat: the store's step first, then Redis */

static ngx_int_t
ngx_http_chat_list_start(const bson_oid_t *user,
    ngx_http_chat_mongo_run_pt run, void *arg, size_t size,
    ngx_http_chat_op_done_pt step, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_chat_list_t **out)
{
    ngx_http_chat_op_chat_list_t  *op;

    op = ngx_calloc(sizeof(ngx_http_chat_op_chat_list_t), ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->done = done;
    op->data = data;
    bson_oid_to_string(user, op->user);

    /* the operation copies arg */
    if (ngx_http_chat_op_store(run, NULL, arg, size, step, op, &op->store)
        != NGX_OK)
    {
        ngx_free(op);
        return NGX_ERROR;
    }

    *out = op;

    return NGX_OK;
}


void
ngx_http_chat_op_chat_list_detach(ngx_http_chat_op_chat_list_t *op)
{
    /* the step running answers still, and frees op */
    op->done = NULL;
    op->data = NULL;
}


static void
ngx_http_chat_list_paged(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_op_chat_list_t  *op = data;

    size_t     n;
    ngx_int_t  r;

    op->store = NULL;
    op->page = answer;

    if (rc != NGX_OK || answer == NULL) {
        ngx_http_chat_list_finish(op, NGX_ERROR, error ? error : "no answer");
        return;
    }

    n = json_array_size(json_object_get(answer, "items"));

    if (n == 0) {
        ngx_http_chat_list_finish(op, NGX_OK, NULL);
        return;
    }

    op->gen = ngx_calloc(n * sizeof(op->gen[0]), ngx_cycle->log);
    if (op->gen == NULL) {
        ngx_http_chat_list_finish(op, NGX_ERROR, "no memory");
        return;
    }

    r = ngx_http_chat_list_model_read(json_object_get(answer, "items"),
                                      op->user, ngx_http_chat_list_row_read,
                                      ngx_http_chat_list_modelled, op);

    if (r == NGX_OK) {
        return;
    }

    if (r == NGX_ERROR) {
        ngx_http_chat_list_finish(op, NGX_ERROR, "no memory");
        return;
    }

    /* Redis is away: every chat is read from MongoDB, nothing kept */
    ngx_http_chat_list_modelled(op);
}


/* the chat from MongoDB: then its row, as a page of one */

static void
ngx_http_chat_list_got(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_op_chat_list_t  *op = data;

    json_t  *page;

    op->store = NULL;

    if (rc != NGX_DONE || answer == NULL) {
        /* not a member (NGX_DECLINED), or a failure: told as it is */
        if (op->done) {
            op->done(op->data, rc == NGX_DONE ? NGX_ERROR : rc, NULL,
                     error ? error : "no answer");
        }

        json_decref(answer);
        ngx_free(op);
        return;
    }

    op->chat = json_incref(json_object_get(answer, "chat"));

    page = json_pack("{s:[{s:O,s:O}]}", "items",
                     "id", json_object_get(op->chat, "id"),
                     "readSeq", json_object_get(answer, "readSeq"));
    json_decref(answer);

    if (op->chat == NULL || page == NULL) {
        json_decref(page);
        ngx_http_chat_list_finish(op, NGX_ERROR, "no memory");
        return;
    }

    ngx_http_chat_list_paged(op, NGX_OK, page, NULL);
}


/*
 * A row from Redis: a hit becomes the item's row at once (its readSeq
 * goes), a miss keeps the generation to rebuild it under
 */

static void
ngx_http_chat_list_row_read(void *data, size_t i, redisReply *r)
{
    ngx_http_chat_op_chat_list_t  *op = data;

    json_t      *item;
    redisReply  *g;

    item = json_array_get(json_object_get(op->page, "items"), i);

    if (item == NULL || ngx_http_chat_list_row(op, item, r) == NGX_OK) {
        return;
    }

    g = (r->type == REDIS_REPLY_ARRAY && r->elements >= 1)
        ? r->element[0] : NULL;

    if (g && g->type == REDIS_REPLY_STRING && g->len < sizeof(op->gen[i])) {
        ngx_memcpy(op->gen[i], g->str, g->len);
        op->gen[i][g->len] = '\0';
    }
}


/*
 * Every shard answered: the items still without a row (still with their
 * readSeq) are read from MongoDB, with the generation Redis gave
 */

static void
ngx_http_chat_list_modelled(void *data)
{
    ngx_http_chat_op_chat_list_t  *op = data;

    char                        chat[25];
    size_t                      i, n, nmiss, size, nfacts, k;
    json_t                     *items, *item;
    const char                 *id;
    ngx_int_t                   rc;
    ngx_http_chat_list_arg_t   *arg, *full;
    ngx_http_chat_list_miss_t  *miss;
    ngx_http_chat_list_fact_t  *facts;

    if (op->done == NULL) {
        /* nobody waits: nothing more to read */
        ngx_http_chat_list_finish(op, NGX_OK, NULL);
        return;
    }

    items = json_object_get(op->page, "items");
    n = json_array_size(items);

    size = sizeof(ngx_http_chat_list_arg_t)
           + n * sizeof(ngx_http_chat_list_miss_t);

    arg = ngx_calloc(size, ngx_cycle->log);
    if (arg == NULL) {
        ngx_http_chat_list_finish(op, NGX_ERROR, "no memory");
        return;
    }

    bson_oid_init_from_string(&arg->user, op->user);
    miss = (ngx_http_chat_list_miss_t *) (arg + 1);
    nmiss = 0;

    for (i = 0; i < n; i++) {
        item = json_array_get(items, i);

        if (json_object_get(item, "readSeq") == NULL) {
            /* a row from Redis */
            continue;
        }

        id = json_string_value(json_object_get(item, "id"));
        if (id == NULL || !bson_oid_is_valid(id, 24)) {
            continue;
        }

        bson_oid_init_from_string(&miss[nmiss].chat, id);
        miss[nmiss].read_seq =
                        json_integer_value(json_object_get(item, "readSeq"));

        if (op->gen) {
            ngx_memcpy(miss[nmiss].gen, op->gen[i], sizeof(miss[nmiss].gen));
        }

        nmiss++;
    }

    if (nmiss == 0) {
        ngx_free(arg);
        ngx_http_chat_list_finish(op, NGX_OK, NULL);
        return;
    }

    arg->n = nmiss;
    size = sizeof(ngx_http_chat_list_arg_t)
           + nmiss * sizeof(ngx_http_chat_list_miss_t);

    /*
     * what this worker's hooks have not stored yet goes with the misses:
     * the rebuild's count must not miss a change made a moment ago
     */
    nfacts = 0;

    for (i = 0; i < nmiss; i++) {
        bson_oid_to_string(&miss[i].chat, chat);
        nfacts += ngx_http_chat_list_facts_pending(chat, op->user, NULL, 0);
    }

    full = ngx_alloc(size + nfacts * sizeof(ngx_http_chat_list_fact_t),
                     ngx_cycle->log);
    if (full == NULL) {
        ngx_free(arg);
        ngx_http_chat_list_finish(op, NGX_ERROR, "no memory");
        return;
    }

    ngx_memcpy(full, arg, size);
    ngx_free(arg);
    miss = (ngx_http_chat_list_miss_t *) (full + 1);

    facts = (ngx_http_chat_list_fact_t *) ((u_char *) full + size);
    k = 0;

    for (i = 0; i < nmiss; i++) {
        bson_oid_to_string(&miss[i].chat, chat);
        k += ngx_http_chat_list_facts_pending(chat, op->user, facts + k,
                                              nfacts - k);
    }

    full->nfacts = nfacts;

    /* the operation copies arg */
    rc = ngx_http_chat_op_store(ngx_http_chat_chat_rebuild_run, NULL, full,
                                size + nfacts
                                       * sizeof(ngx_http_chat_list_fact_t),
                                ngx_http_chat_list_rebuilt, op, &op->store);
    ngx_free(full);

    if (rc != NGX_OK) {
        ngx_http_chat_list_finish(op, NGX_ERROR, "mongo is not available");
    }
}


/* item (its own fields, readSeq, settings) made a row from Redis's hit */

static ngx_int_t
ngx_http_chat_list_row(ngx_http_chat_op_chat_list_t *op, json_t *item,
    redisReply *r)
{
    size_t        i;
    json_t       *sum, *last, *admins, *v;
    const char   *role;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5
        || r->element[1]->type != REDIS_REPLY_STRING
        || r->element[2]->type != REDIS_REPLY_STRING
        || r->element[3]->type != REDIS_REPLY_INTEGER
        || r->element[4]->type != REDIS_REPLY_INTEGER)
    {
        return NGX_DECLINED;
    }

    sum = json_loadb(r->element[1]->str, r->element[1]->len, 0, NULL);
    if (!json_is_object(sum)) {
        json_decref(sum);
        return NGX_DECLINED;
    }

    last = NULL;

    if (r->element[2]->len) {
        last = json_loadb(r->element[2]->str, r->element[2]->len, 0, NULL);
        if (!json_is_object(last)) {
            json_decref(last);
            json_decref(sum);
            return NGX_DECLINED;
        }
    }

    role = "member";
    admins = json_object_get(sum, "admins");

    json_array_foreach(admins, i, v) {
        if (ngx_strcmp(json_string_value(v), op->user) == 0) {
            role = "admin";
            break;
        }
    }

    if (json_object_update(item, sum) != 0
        || json_object_set_new(item, "role", json_string(role)) != 0
        || json_object_set_new(item, "unreadCount",
                               json_integer(r->element[3]->integer)) != 0
        || json_object_set_new(item, "unreadMentions",
                               json_integer(r->element[4]->integer)) != 0
        || (last && json_object_set_new(item, "lastMessage", last) != 0))
    {
        json_decref(sum);
        return NGX_DECLINED;
    }

    json_decref(sum);
    json_object_del(item, "readSeq");

    return NGX_OK;
}


static void
ngx_http_chat_list_rebuilt(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_op_chat_list_t  *op = data;

    size_t       i;
    json_t      *rows, *items, *item, *row, *fill;
    const char  *id;

    op->store = NULL;

    if (rc != NGX_OK || answer == NULL) {
        json_decref(answer);
        ngx_http_chat_list_finish(op, NGX_ERROR, error ? error : "no answer");
        return;
    }

    /* the keys rebuilt, unless a change came meanwhile (best effort) */
    json_array_foreach(json_object_get(answer, "fills"), i, fill) {
        ngx_http_chat_list_model_fill(fill, op->user);
    }

    rows = json_object_get(answer, "rows");
    items = json_object_get(op->page, "items");

    for (i = 0; i < json_array_size(items); /* void */) {
        item = json_array_get(items, i);

        if (json_object_get(item, "readSeq") == NULL) {
            i++;
            continue;
        }

        id = json_string_value(json_object_get(item, "id"));
        row = id ? json_object_get(rows, id) : NULL;

        if (row == NULL) {
            /* no longer a chat */
            json_array_remove(items, i);
            continue;
        }

        json_array_set(items, i, row);
        i++;
    }

    json_decref(answer);

    ngx_http_chat_list_finish(op, NGX_OK, NULL);
}


static void
ngx_http_chat_list_finish(ngx_http_chat_op_chat_list_t *op, ngx_int_t rc,
    const char *error)
{
    json_t  *page, *row, *v;

    page = op->page;
    op->page = NULL;

    if (op->chat) {
        /* one chat: the row's last message and unread count, exactly */
        row = (rc == NGX_OK)
              ? json_array_get(json_object_get(page, "items"), 0) : NULL;

        if (rc == NGX_OK && row == NULL) {
            /* it was no longer a chat when its row was read */
            rc = NGX_DECLINED;
            error = "the chat vanished";
        }

        json_object_del(op->chat, "lastMessage");
        json_object_del(op->chat, "unreadCount");
        json_object_del(op->chat, "unreadMentions");

        v = row ? json_object_get(row, "lastMessage") : NULL;

        if (row
            && ((v && json_object_set(op->chat, "lastMessage", v) != 0)
                || json_object_set(op->chat, "unreadCount",
                                   json_object_get(row, "unreadCount"))
                   != 0
                || json_object_set(op->chat, "unreadMentions",
                                   json_object_get(row, "unreadMentions"))
                   != 0))
        {
            rc = NGX_ERROR;
            error = "no memory";
        }

        json_decref(page);
        page = NULL;

        if (rc == NGX_OK) {
            page = json_pack("{s:O}", "chat", op->chat);

            if (page == NULL) {
                rc = NGX_ERROR;
                error = "no memory";
            }
        }

        json_decref(op->chat);
        op->chat = NULL;

        /* a read: told as the store's NGX_DONE */
        if (rc == NGX_OK) {
            rc = NGX_DONE;
        }
    }

    if (op->done) {
        op->done(op->data, rc, (rc == NGX_OK || rc == NGX_DONE) ? page : NULL,
                 error);

        if (rc != NGX_OK && rc != NGX_DONE) {
            json_decref(page);
        }

    } else {
        json_decref(page);
    }

    if (op->gen) {
        ngx_free(op->gen);
    }

    ngx_free(op);
}
