/*
 * Copyright (C) ngx_chat_module authors
 *
 * GET /api/chats in MongoDB: a page is two reads (my memberships, then
 * the page of chats), the rest comes from the read model in Redis
 * (ngx_http_chat_list_model.c); a chat Redis misses is read here as
 * before, its unread count exactly, with what rebuilds its keys.
 */


#include "ngx_http_chat_chats_store_int.h"
#include "ngx_http_chat_list_model.h"


static json_t *ngx_http_chat_list_seqs(mongoc_database_t *db,
    const char *coll_name, const bson_t *filter, const char *field,
    bson_error_t *error);
static json_t *ngx_http_chat_list_fill_json(mongoc_database_t *db,
    const bson_t *chat, const bson_oid_t *chat_id, const bson_oid_t *user,
    int64_t read_seq, bson_error_t *error);


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
    ngx_http_chat_list_miss_t  *miss;

    miss = (ngx_http_chat_list_miss_t *) (a + 1);

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

        row = (rc == NGX_OK)
              ? ngx_http_chat_chat_json(db, &doc, &a->user, 3, 1, &t->error)
              : NULL;

        if (row == NULL) {
            bson_destroy(&doc);
            goto failed;
        }

        bson_oid_to_string(&miss[i].chat, oid);
        json_object_set_new(rows, oid, row);

        if (miss[i].gen[0]) {
            fill = ngx_http_chat_list_fill_json(db, &doc, &miss[i].chat,
                                                &a->user, miss[i].read_seq,
                                                &t->error);
            if (fill == NULL) {
                bson_destroy(&doc);
                goto failed;
            }

            json_object_set_new(fill, "gen", json_string(miss[i].gen));
            json_array_append_new(fills, fill);
        }

        bson_destroy(&doc);
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


/* the seq (or field) of each document of coll matching filter */

static json_t *
ngx_http_chat_list_seqs(mongoc_database_t *db, const char *coll_name,
    const bson_t *filter, const char *field, bson_error_t *error)
{
    json_t               *out;
    bson_t                opts, sub;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    out = json_array();
    if (out == NULL) {
        return NULL;
    }

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, field, 1);
    bson_append_document_end(&opts, &sub);

    coll = mongoc_database_get_collection(db, coll_name);
    cursor = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
    bson_destroy(&opts);

    while (mongoc_cursor_next(cursor, &d)) {
        if (!bson_iter_init_find(&it, d, field)) {
            continue;
        }

        if (BSON_ITER_HOLDS_OID(&it)) {
            json_array_append_new(out,
                            ngx_http_chat_chats_oid_json(bson_iter_oid(&it)));

        } else {
            json_array_append_new(out,
                                  json_integer(bson_iter_as_int64(&it)));
        }
    }

    if (mongoc_cursor_error(cursor, error)) {
        json_decref(out);
        out = NULL;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    return out;
}


/*
 * What rebuilds a chat's keys: {chatId, top, sum, msgs: [[seq, json]],
 * voids, own, hidden}; own and hidden from above min(readSeq, top - W)
 */

static json_t *
ngx_http_chat_list_fill_json(mongoc_database_t *db, const bson_t *chat,
    const bson_oid_t *chat_id, const bson_oid_t *user, int64_t read_seq,
    bson_error_t *error)
{
    char                 *s, key[16];
    json_t               *shared, *fill, *msgs, *ids, *v, *m;
    size_t                i;
    bson_t                filter, sub, arr, msg, sort;
    int64_t               top, lo;
    ngx_int_t             rc;
    bson_oid_t            id;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    shared = ngx_http_chat_chat_json(db, chat, NULL, 3, 0, error);
    if (shared == NULL) {
        return NULL;
    }

    /* what changes with every message is not the summary's */
    json_object_del(shared, "lastMessage");
    json_object_del(shared, "updatedAt");

    s = json_dumps(shared, JSON_COMPACT);
    json_decref(shared);

    if (s == NULL) {
        return NULL;
    }

    fill = json_pack("{s:o,s:s}", "chatId",
                     ngx_http_chat_chats_oid_json(chat_id), "sum", s);
    free(s);

    if (fill == NULL) {
        return NULL;
    }

    /* the highest number that holds a message */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat_id);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "type", &sub);
    BSON_APPEND_UTF8(&sub, "$ne", "tombstone");
    bson_append_document_end(&filter, &sub);

    bson_init(&msg);
    rc = ngx_http_chat_msg_last_near(db, &filter,
                                     ngx_http_chat_chats_int(chat, "lastSeq"),
                                     &msg, error);

    if (rc == NGX_AGAIN) {
        bson_init(&sort);
        BSON_APPEND_INT32(&sort, "seq", -1);
        bson_destroy(&msg);
        bson_init(&msg);
        rc = ngx_http_chat_mongo_find_one(db, "messages", &filter, &sort,
                                          &msg, error);
        bson_destroy(&sort);
    }

    top = (rc == NGX_OK) ? ngx_http_chat_chats_int(&msg, "seq") : 0;
    bson_destroy(&msg);

    if (rc == NGX_ERROR) {
        bson_destroy(&filter);
        json_decref(fill);
        return NULL;
    }

    json_object_set_new(fill, "top", json_integer(top));

    /* the messages of the window below it */
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);
    BSON_APPEND_INT64(&sub, "$gt", top - NGX_HTTP_CHAT_LIST_WINDOW);
    bson_append_document_end(&filter, &sub);

    msgs = json_array();
    coll = mongoc_database_get_collection(db, "messages");
    cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    bson_destroy(&filter);

    while (msgs && mongoc_cursor_next(cursor, &d)) {
        m = ngx_http_chat_msg_json(d, 0);
        s = m ? json_dumps(m, JSON_COMPACT) : NULL;
        json_decref(m);

        if (s == NULL) {
            continue;
        }

        json_array_append_new(msgs,
                              json_pack("[I,s]", (json_int_t)
                                        ngx_http_chat_chats_int(d, "seq"),
                                        s));
        free(s);
    }

    if (msgs == NULL || mongoc_cursor_error(cursor, error)) {
        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(coll);
        json_decref(msgs);
        json_decref(fill);
        return NULL;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    json_object_set_new(fill, "msgs", msgs);

    /* the numbers that count for nobody */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat_id);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "type", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &arr);
    BSON_APPEND_UTF8(&arr, "0", "tombstone");
    BSON_APPEND_UTF8(&arr, "1", "deleted");
    bson_append_array_end(&sub, &arr);
    bson_append_document_end(&filter, &sub);

    v = ngx_http_chat_list_seqs(db, "messages", &filter, "seq", error);
    bson_destroy(&filter);

    if (v == NULL) {
        json_decref(fill);
        return NULL;
    }

    json_object_set_new(fill, "voids", v);

    /* mine after lo */
    lo = ngx_min(read_seq, top - NGX_HTTP_CHAT_LIST_WINDOW);
    lo = ngx_max(lo, 0);

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat_id);
    BSON_APPEND_OID(&filter, "senderId", user);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);
    BSON_APPEND_INT64(&sub, "$gt", lo);
    bson_append_document_end(&filter, &sub);

    v = ngx_http_chat_list_seqs(db, "messages", &filter, "seq", error);
    bson_destroy(&filter);

    if (v == NULL) {
        json_decref(fill);
        return NULL;
    }

    json_object_set_new(fill, "own", v);

    /* hidden by me: their ids, then their numbers */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat_id);
    BSON_APPEND_OID(&filter, "userId", user);

    ids = ngx_http_chat_list_seqs(db, "hidden", &filter, "messageId", error);
    bson_destroy(&filter);

    if (ids == NULL) {
        json_decref(fill);
        return NULL;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat_id);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &arr);

    json_array_foreach(ids, i, m) {
        if (bson_oid_is_valid(json_string_value(m), 24)) {
            bson_oid_init_from_string(&id, json_string_value(m));
            ngx_sprintf((u_char *) key, "%uz%Z", i);
            BSON_APPEND_OID(&arr, key, &id);
        }
    }

    bson_append_array_end(&sub, &arr);
    bson_append_document_end(&filter, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);
    BSON_APPEND_INT64(&sub, "$gt", lo);
    bson_append_document_end(&filter, &sub);

    v = json_array_size(ids)
        ? ngx_http_chat_list_seqs(db, "messages", &filter, "seq", error)
        : json_array();
    bson_destroy(&filter);
    json_decref(ids);

    if (v == NULL) {
        json_decref(fill);
        return NULL;
    }

    json_object_set_new(fill, "hidden", v);

    return fill;
}
