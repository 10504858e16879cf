/*
 * Copyright (C) ngx_chat_module authors
 *
 * GET /api/chats in MongoDB: a page is two reads (my memberships, then
 * the page of chats), the rest comes from the read model in Redis
 * (ngx_http_chat_list_model.c); a chat Redis misses is read here as
 * before, its unread count exactly from the sets MongoDB keeps for the
 * model (ngx_http_chat_list_sets.c), with what rebuilds its keys: a few
 * small reads whatever the chat's backlog.
 */


#include "ngx_http_chat_chats_store_int.h"
#include "ngx_http_chat_list_model.h"
#include "ngx_http_chat_list_sets.h"
#include "ngx_http_chat_list_compact.h"


/*
 * {items: [chat's own fields, readSeq, settings], nextCursor?}: my
 * memberships (their chats, readSeq, settings), then the page of chats by
 * updatedAt, newest first; the cursor is the last one's (updatedAt, _id)
 */

void
ngx_http_chat_chat_page_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_chats_arg_t *a = t->arg;

    char                  key[16], oid[25], next[64];
    json_t               *items, *c, *answer, *mine, *m;
    bson_t                filter, opts, sub, arr, c1, c2, lt;
    int64_t               ms, now;
    ngx_uint_t            n, i;
    bson_oid_t            last, chat;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    /* my memberships, by chat id */
    mine = json_object();
    if (mine == NULL) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    now = ngx_http_chat_chats_now();

    cursor = ngx_http_chat_chats_memberships(db, &a->user, NULL);

    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &arr);

    i = 0;

    while (mongoc_cursor_next(cursor, &d)) {
        if (!bson_iter_init_find(&it, d, "chatId")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        bson_oid_copy(bson_iter_oid(&it), &chat);
        bson_oid_to_string(&chat, oid);

        ngx_sprintf((u_char *) key, "%ui%Z", i++);
        BSON_APPEND_OID(&arr, key, &chat);

        m = json_pack("{s:I,s:o}", "readSeq",
                      (json_int_t) ngx_http_chat_chats_int(d, "readSeq"),
                      "settings",
                      ngx_http_chat_chat_settings_json(d, now));

        if (m == NULL || json_object_set_new(mine, oid, m) != 0) {
            bson_set_error(&t->error, 0, 0, "no memory");
            break;
        }
    }

    bson_append_array_end(&sub, &arr);
    bson_append_document_end(&filter, &sub);

    if (mongoc_cursor_error(cursor, &t->error)
        || json_object_size(mine) != i)
    {
        mongoc_cursor_destroy(cursor);
        bson_destroy(&filter);
        json_decref(mine);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    mongoc_cursor_destroy(cursor);

    if (a->has_cursor) {
        BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &arr);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &c1);
        BSON_APPEND_DOCUMENT_BEGIN(&c1, "updatedAt", &lt);
        BSON_APPEND_DATE_TIME(&lt, "$lt", a->cursor_ms);
        bson_append_document_end(&c1, &lt);
        bson_append_document_end(&arr, &c1);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, "1", &c2);
        BSON_APPEND_DATE_TIME(&c2, "updatedAt", a->cursor_ms);
        BSON_APPEND_DOCUMENT_BEGIN(&c2, "_id", &lt);
        BSON_APPEND_OID(&lt, "$lt", &a->cursor_id);
        bson_append_document_end(&c2, &lt);
        bson_append_document_end(&arr, &c2);
        bson_append_array_end(&filter, &arr);
    }

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);
    BSON_APPEND_INT32(&sub, "updatedAt", -1);
    BSON_APPEND_INT32(&sub, "_id", -1);
    bson_append_document_end(&opts, &sub);
    BSON_APPEND_INT64(&opts, "limit", a->limit + 1);

    items = json_array();
    answer = NULL;
    n = 0;
    ms = 0;

    coll = mongoc_database_get_collection(db, "chats");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);

    while (items && mongoc_cursor_next(cursor, &d)) {
        if (n == a->limit) {
            n++;
            break;
        }

        if (!bson_iter_init_find(&it, d, "_id") || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        bson_oid_copy(bson_iter_oid(&it), &last);
        bson_oid_to_string(&last, oid);

        c = ngx_http_chat_chat_base_json(d, &last);
        m = json_object_get(mine, oid);

        if (c == NULL || m == NULL || json_object_update(c, m) != 0) {
            json_decref(c);
            goto failed;
        }

        json_array_append_new(items, c);
        n++;

        if (bson_iter_init_find(&it, d, "updatedAt")
            && BSON_ITER_HOLDS_DATE_TIME(&it))
        {
            ms = bson_iter_date_time(&it);
        }
    }

    if (items == NULL || mongoc_cursor_error(cursor, &t->error)) {
        goto failed;
    }

    answer = json_pack("{s:o}", "items", items);
    items = NULL;

    if (answer && n > a->limit) {
        bson_oid_to_string(&last, oid);
        ngx_sprintf((u_char *) next, "%L.%s%Z", ms, oid);
        json_object_set_new(answer, "nextCursor", json_string(next));
    }

    json_decref(mine);
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    ngx_http_chat_chats_answer(t, NGX_OK, answer);
    return;

failed:

    json_decref(mine);
    json_decref(items);
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
}


/*
 * {rows: {chatId: the chat as before, its unread count exact}, fills:
 * [what rebuilds its keys, for those Redis gave a generation]}
 */

void
ngx_http_chat_chat_rebuild_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_list_arg_t *a = t->arg;

    char                        oid[25];
    json_t                     *rows, *fills, *row, *fill;
    bson_t                      filter, doc;
    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_http_chat_list_sets_t   sets;
    ngx_http_chat_list_miss_t  *miss;
    ngx_http_chat_list_fact_t  *facts;

    miss = (ngx_http_chat_list_miss_t *) (a + 1);
    facts = (ngx_http_chat_list_fact_t *) (miss + a->n);

    rows = json_object();
    fills = json_array();

    for (i = 0; rows && fills && i < a->n; i++) {
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "_id", &miss[i].chat);
        bson_init(&doc);

        rc = ngx_http_chat_mongo_find_one(db, "chats", &filter, NULL, &doc,
                                          &t->error);
        bson_destroy(&filter);

        if (rc == NGX_DECLINED) {
            /* gone since the page was read: left out */
            bson_destroy(&doc);
            continue;
        }

        /* the row without its unread count, counted below */
        row = (rc == NGX_OK)
              ? ngx_http_chat_chat_json(db, &doc, &a->user, 3,
                                        NGX_HTTP_CHAT_CHAT_EXACT, &t->error)
              : NULL;

        if (row == NULL) {
            bson_destroy(&doc);
            goto failed;
        }

        sets.read_seq = miss[i].read_seq;

        if (ngx_http_chat_list_sets(db, &doc, &miss[i].chat, &a->user,
                                    &sets, facts, a->nfacts, &t->error)
            != NGX_OK)
        {
            json_decref(row);
            bson_destroy(&doc);
            goto failed;
        }

        json_object_set_new(row, "unreadCount",
                            json_integer(ngx_http_chat_list_unread(&sets)));
        json_object_set_new(row, "unreadMentions",
                            json_integer(ngx_http_chat_list_mentioned(&sets)));

        bson_oid_to_string(&miss[i].chat, oid);
        json_object_set_new(rows, oid, row);

        /* many voids read for nothing: those below everyone's go */
        ngx_http_chat_list_sweep(db, &miss[i].chat, sets.voids,
                                 sets.read_seq);

        fill = NULL;

        if (miss[i].gen[0]) {
            fill = ngx_http_chat_list_fill_json(db, &doc, &miss[i].chat,
                                                &sets, &t->error);
        }

        ngx_http_chat_list_sets_free(&sets);
        bson_destroy(&doc);

        if (miss[i].gen[0]) {
            if (fill == NULL) {
                goto failed;
            }

            json_object_set_new(fill, "gen", json_string(miss[i].gen));
            json_array_append_new(fills, fill);
        }
    }

    if (rows == NULL || fills == NULL) {
        goto failed;
    }

    ngx_http_chat_chats_answer(t, NGX_OK,
                               json_pack("{s:o,s:o}", "rows", rows,
                                         "fills", fills));
    return;

failed:

    json_decref(rows);
    json_decref(fills);
    ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
}


/*
 * GET /api/chats/:id: my membership (NGX_DECLINED: not a member), then
 * the chat with every member, without its last message and my unread
 * count (read from the chat list's model): NGX_DONE with {chat, readSeq}
 */

void
ngx_http_chat_chat_get_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_group_arg_t *a = t->arg;

    json_t     *c, *answer;
    bson_t      filter, doc;
    int64_t     read_seq;
    ngx_int_t   rc;

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc, &t->error);
    read_seq = (rc == NGX_OK) ? ngx_http_chat_chats_int(&doc, "readSeq") : 0;
    bson_destroy(&doc);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->chat);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "chats", &filter, NULL, &doc,
                                      &t->error);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    c = ngx_http_chat_chat_json(db, &doc, &a->user, 0,
                                NGX_HTTP_CHAT_CHAT_BARE, &t->error);
    bson_destroy(&doc);

    if (c == NULL) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    answer = json_pack("{s:o,s:I}", "chat", c, "readSeq",
                       (json_int_t) read_seq);

    ngx_http_chat_chats_answer(t, answer ? NGX_DONE : NGX_ERROR, answer);
}
