/*
 * Copyright (C) ngx_chat_module authors
 *
 * Search of text messages in one chat or in all of mine: the query is a
 * regex the handler escaped, matched case-insensitively.
 */


#include "ngx_http_chat_chats_store_int.h"


/*
 * GET /api/chats/:id/messages/search, GET /api/messages/search: text
 * messages only (not deleted, not tombstones), none I deleted for me;
 * by seq in one chat, by (createdAt, _id) across chats
 */

void
ngx_http_chat_msg_search_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    char                  key[16], oid[25], next[64];
    json_t               *items, *m, *answer;
    bson_t                filter, opts, sub, arr, c1, c2, doc;
    int64_t               ms, seq;
    ngx_int_t             rc;
    ngx_uint_t            n, i;
    bson_oid_t            last;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    bson_init(&filter);

    if (!a->all) {
        rc = ngx_http_chat_chats_is_member(db, &a->chat, &a->user, &t->error);

        if (rc == NGX_OK) {
            BSON_APPEND_OID(&filter, "chatId", &a->chat);
            rc = ngx_http_chat_msg_hidden_nin(db, &a->chat, &a->user,
                                              &filter, &t->error);
        }

        if (rc != NGX_OK) {
            bson_destroy(&filter);
            ngx_http_chat_chats_answer(t, rc, NULL);
            return;
        }

    } else {
        /* my chats, and what I deleted for me in any of them */
        for (i = 0; i < 2; i++) {
            bson_init(&doc);
            BSON_APPEND_OID(&doc, "userId", &a->user);
            bson_init(&opts);
            BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
            BSON_APPEND_INT32(&sub, i == 0 ? "chatId" : "messageId", 1);
            bson_append_document_end(&opts, &sub);

            coll = mongoc_database_get_collection(db, i == 0 ? "members"
                                                             : "hidden");
            cursor = mongoc_collection_find_with_opts(coll, &doc, &opts,
                                                      NULL);
            bson_destroy(&opts);
            bson_destroy(&doc);

            BSON_APPEND_DOCUMENT_BEGIN(&filter, i == 0 ? "chatId" : "_id",
                                       &sub);
            BSON_APPEND_ARRAY_BEGIN(&sub, i == 0 ? "$in" : "$nin", &arr);
            n = 0;

            while (mongoc_cursor_next(cursor, &d)) {
                if (bson_iter_init_find(&it, d,
                                        i == 0 ? "chatId" : "messageId")
                    && BSON_ITER_HOLDS_OID(&it))
                {
                    ngx_sprintf((u_char *) key, "%ui%Z", n++);
                    BSON_APPEND_OID(&arr, key, bson_iter_oid(&it));
                }
            }

            bson_append_array_end(&sub, &arr);
            bson_append_document_end(&filter, &sub);

            rc = mongoc_cursor_error(cursor, &t->error) ? NGX_ERROR : NGX_OK;
            mongoc_cursor_destroy(cursor);
            mongoc_collection_destroy(coll);

            if (rc != NGX_OK) {
                bson_destroy(&filter);
                ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
                return;
            }
        }
    }

    BSON_APPEND_UTF8(&filter, "type", "text");
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "content", &sub);
    bson_append_utf8(&sub, "$regex", -1, (char *) (a + 1), a->content_len);
    BSON_APPEND_UTF8(&sub, "$options", "i");
    bson_append_document_end(&filter, &sub);

    if (!a->all && a->has_before) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);
        BSON_APPEND_INT64(&sub, "$lt", a->before);
        bson_append_document_end(&filter, &sub);
    }

    if (a->all && a->has_cursor) {
        BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &arr);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &c1);
        BSON_APPEND_DOCUMENT_BEGIN(&c1, "createdAt", &sub);
        BSON_APPEND_DATE_TIME(&sub, "$lt", a->cursor_ms);
        bson_append_document_end(&c1, &sub);
        bson_append_document_end(&arr, &c1);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, "1", &c2);
        BSON_APPEND_DATE_TIME(&c2, "createdAt", a->cursor_ms);
        BSON_APPEND_DOCUMENT_BEGIN(&c2, "_id", &sub);
        BSON_APPEND_OID(&sub, "$lt", &a->cursor_id);
        bson_append_document_end(&c2, &sub);
        bson_append_document_end(&arr, &c2);
        bson_append_array_end(&filter, &arr);
    }

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);

    if (a->all) {
        BSON_APPEND_INT32(&sub, "createdAt", -1);
        BSON_APPEND_INT32(&sub, "_id", -1);

    } else {
        BSON_APPEND_INT32(&sub, "seq", -1);
    }

    bson_append_document_end(&opts, &sub);
    BSON_APPEND_INT64(&opts, "limit", a->limit + 1);

    coll = mongoc_database_get_collection(db, "messages");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);

    items = json_array();
    n = 0;
    ms = 0;
    seq = 0;

    while (items && mongoc_cursor_next(cursor, &d)) {
        if (n == a->limit) {
            n++;
            break;
        }

        m = ngx_http_chat_msg_json(d, 0);

        if (m == NULL || json_array_append_new(items, m) != 0) {
            json_decref(items);
            items = NULL;
            break;
        }

        n++;
        seq = ngx_http_chat_chats_int(d, "seq");
        ms = ngx_http_chat_msg_time(d, "createdAt");

        if (bson_iter_init_find(&it, d, "_id") && BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_copy(bson_iter_oid(&it), &last);
        }
    }

    if (mongoc_cursor_error(cursor, &t->error)) {
        json_decref(items);
        items = NULL;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    answer = items ? json_pack("{s:o}", "items", items) : NULL;

    if (answer && n > a->limit) {
        if (a->all) {
            bson_oid_to_string(&last, oid);
            ngx_sprintf((u_char *) next, "%L.%s%Z", ms, oid);

        } else {
            ngx_sprintf((u_char *) next, "%L%Z", seq);
        }

        json_object_set_new(answer, "nextCursor", json_string(next));
    }

    ngx_http_chat_chats_answer(t, NGX_OK, answer);
}
