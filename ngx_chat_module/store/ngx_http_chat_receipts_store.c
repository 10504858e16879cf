/*
 * Copyright (C) ngx_chat_module authors
 *
 * Read and delivered markers of a membership, and the receipts of a message
 * built from them.  A membership is written by its own member only.
 */


#include "ngx_http_chat_chats_store_int.h"


/*
 * Moves one marker of a membership forward when it is behind, so a marker
 * never goes back, and its time is that of its latest move.  The filter
 * is the _id alone (FerretDB searches its index for no other) and $max
 * keeps the marker from going back when two devices of the member move
 * it at once.
 */

static ngx_int_t
ngx_http_chat_msg_marker_move(mongoc_collection_t *members,
    ngx_http_chat_msg_arg_t *a, const bson_t *member, const char *seq_key,
    const char *at_key, int64_t now, bson_error_t *error)
{
    bson_t     filter, update, sub;
    ngx_int_t  rc;

    if (ngx_http_chat_chats_int(member, seq_key) >= a->seq) {
        return NGX_OK;
    }

    bson_init(&filter);
    ngx_http_chat_chats_member_id(&filter, &a->chat, &a->user);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$max", &sub);
    BSON_APPEND_INT64(&sub, seq_key, a->seq);
    bson_append_document_end(&update, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &sub);
    BSON_APPEND_DATE_TIME(&sub, at_key, now);
    bson_append_document_end(&update, &sub);

    rc = mongoc_collection_update_one(members, &filter, &update, NULL, NULL,
                                      error)
         ? NGX_OK : NGX_ERROR;

    bson_destroy(&update);
    bson_destroy(&filter);

    return rc;
}


/* {readSeq, readAt?, deliveredSeq, deliveredAt?} of a membership */

static json_t *
ngx_http_chat_msg_markers_json(const bson_t *member)
{
    json_t       *m;
    bson_iter_t   it;

    m = json_pack("{s:I,s:I}",
                  "readSeq", (json_int_t)
                  ngx_http_chat_chats_int(member, "readSeq"),
                  "deliveredSeq", (json_int_t)
                  ngx_http_chat_chats_int(member, "deliveredSeq"));
    if (m == NULL) {
        return NULL;
    }

    if (bson_iter_init_find(&it, member, "readAt")
        && BSON_ITER_HOLDS_DATE_TIME(&it))
    {
        json_object_set_new(m, "readAt",
                            ngx_http_chat_json_time(bson_iter_date_time(&it)));
    }

    if (bson_iter_init_find(&it, member, "deliveredAt")
        && BSON_ITER_HOLDS_DATE_TIME(&it))
    {
        json_object_set_new(m, "deliveredAt",
                            ngx_http_chat_json_time(bson_iter_date_time(&it)));
    }

    return m;
}


static ngx_int_t ngx_http_chat_msg_receipts_off(mongoc_database_t *db,
    const bson_oid_t *user, bson_error_t *error);


#define NGX_HTTP_CHAT_MARKER_WINDOW  16


/*
 * The id of the last message a marker at seq covers: the message at seq,
 * or the last one below it when seq holds a number without a message (a
 * tombstone); null when there is none in the window.  The filter names
 * its numbers, a search of the (chatId, seq) index.
 */

static json_t *
ngx_http_chat_msg_marker_message(mongoc_database_t *db,
    const bson_oid_t *chat, int64_t seq, bson_error_t *error)
{
    char         buf[16];
    bson_t       filter, sub, in, sort, doc;
    int64_t      n;
    uint32_t     i;
    json_t      *id;
    ngx_int_t    rc;
    bson_iter_t  it;
    const char  *key;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &in);

    for (n = seq, i = 0; n > 0 && i < NGX_HTTP_CHAT_MARKER_WINDOW; n--, i++)
    {
        bson_uint32_to_string(i, &key, buf, sizeof(buf));
        bson_append_int64(&in, key, -1, n);
    }

    bson_append_array_end(&sub, &in);
    bson_append_document_end(&filter, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "type", &sub);
    BSON_APPEND_UTF8(&sub, "$ne", "tombstone");
    bson_append_document_end(&filter, &sub);

    bson_init(&sort);
    BSON_APPEND_INT32(&sort, "seq", -1);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "messages", &filter, &sort, &doc,
                                      error);
    bson_destroy(&sort);
    bson_destroy(&filter);

    id = NULL;

    if (rc == NGX_OK && bson_iter_init_find(&it, &doc, "_id")
        && BSON_ITER_HOLDS_OID(&it))
    {
        id = ngx_http_chat_chats_oid_json(bson_iter_oid(&it));

    } else if (rc != NGX_ERROR) {
        id = json_null();
    }

    bson_destroy(&doc);

    return id;
}


/* message_status_update {messageId, status, userId, chatId, upToSeq} */

static ngx_int_t
ngx_http_chat_msg_marker_event(mongoc_database_t *db, json_t *answer,
    ngx_http_chat_msg_arg_t *a, const char *kind, const bson_oid_t *to,
    u_char flag, const char *status, int64_t seq, bson_error_t *error)
{
    json_t  *mid, *data;

    mid = ngx_http_chat_msg_marker_message(db, &a->chat, seq, error);
    if (mid == NULL) {
        return NGX_ERROR;
    }

    data = json_pack("{s:o,s:s,s:o,s:o,s:I}", "messageId", mid,
                     "status", status,
                     "userId", ngx_http_chat_chats_oid_json(&a->user),
                     "chatId", ngx_http_chat_chats_oid_json(&a->chat),
                     "upToSeq", (json_int_t) seq);

    return ngx_http_chat_chats_event(answer, kind, to, flag, &a->user, NULL,
                                     "message_status_update", data);
}


/*
 * The events of markers that moved, from the markers as stored: read to
 * the chat, or, from a reader who turned read receipts off, read to
 * their own devices only and delivered to the others (as their receipts
 * say); delivered alone when only that moved.  Nothing when none moved.
 */

static ngx_int_t
ngx_http_chat_msg_marker_events(mongoc_database_t *db, json_t *answer,
    ngx_http_chat_msg_arg_t *a, int64_t read0, int64_t delivered0,
    const bson_t *member, bson_error_t *error)
{
    int64_t    read1, delivered1;
    ngx_int_t  rc;

    read1 = ngx_http_chat_chats_int(member, "readSeq");
    delivered1 = ngx_http_chat_chats_int(member, "deliveredSeq");

    if (a->read && read1 > read0) {
        rc = ngx_http_chat_msg_receipts_off(db, &a->user, error);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_chat_msg_marker_event(db, answer, a, "chat:",
                                                  &a->chat, '-', "read",
                                                  read1, error);
        }

        if (ngx_http_chat_msg_marker_event(db, answer, a, "user:", &a->user,
                                           '-', "read", read1, error)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (delivered1 <= delivered0) {
            return NGX_OK;
        }

        return ngx_http_chat_msg_marker_event(db, answer, a, "chat:",
                                              &a->chat, 'x', "delivered",
                                              delivered1, error);
    }

    if (delivered1 > delivered0) {
        return ngx_http_chat_msg_marker_event(db, answer, a, "chat:",
                                              &a->chat, '-', "delivered",
                                              delivered1, error);
    }

    return NGX_OK;
}


/* POST /api/chats/:id/read and /delivered: reading is also delivery */

void
ngx_http_chat_msg_marker_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t               *m;
    bson_t                doc, member;
    int64_t               now, floor, read0, delivered0;
    ngx_int_t             rc;
    mongoc_collection_t  *members;

    bson_init(&member);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &member,
                                    &t->error);

    if (rc != NGX_OK) {
        bson_destroy(&member);
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    /* no marker past the chat's last message */
    if (ngx_http_chat_msg_bound(db, &a->chat, a->seq, &floor, &t->error)
        != NGX_OK)
    {
        bson_destroy(&member);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    if (a->seq > floor) {
        a->seq = floor;
    }

    read0 = ngx_http_chat_chats_int(&member, "readSeq");
    delivered0 = ngx_http_chat_chats_int(&member, "deliveredSeq");

    now = ngx_http_chat_chats_now();
    members = mongoc_database_get_collection(db, "members");
    rc = NGX_OK;

    if (a->seq > 0) {
        if (a->read) {
            rc = ngx_http_chat_msg_marker_move(members, a, &member,
                                               "readSeq", "readAt", now,
                                               &t->error);
        }

        if (rc == NGX_OK) {
            rc = ngx_http_chat_msg_marker_move(members, a, &member,
                                               "deliveredSeq", "deliveredAt",
                                               now, &t->error);
        }
    }

    mongoc_collection_destroy(members);
    bson_destroy(&member);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc, &t->error);

    m = NULL;

    if (rc == NGX_OK) {
        m = ngx_http_chat_msg_markers_json(&doc);

        /* the markers moved: answered even when their event is lost */
        if (m
            && ngx_http_chat_msg_marker_events(db, m, a, read0, delivered0,
                                               &doc, &t->error)
               != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, t->log, 0,
                          "chat: a marker's event was not built: %s",
                          t->error.message);
            json_object_del(m, NGX_HTTP_CHAT_EVENTS_KEY);
            t->error.message[0] = '\0';
        }
    }

    bson_destroy(&doc);

    /* NGX_DONE: answered 200, nothing was created */
    ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_DONE : rc, m);
}


/* NGX_OK when user turned read receipts off, NGX_DECLINED if not */

static ngx_int_t
ngx_http_chat_msg_receipts_off(mongoc_database_t *db, const bson_oid_t *user,
    bson_error_t *error)
{
    bson_t     filter;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", user);
    BSON_APPEND_UTF8(&filter, "privacy.readReceipts", "nobody");

    rc = ngx_http_chat_chats_exists(db, "users", &filter, error);
    bson_destroy(&filter);

    return rc;
}


/*
 * GET /api/messages/:id/receipts: each member but the sender, with the
 * time their delivered and read markers last moved when those passed the
 * message; who turned read receipts off is shown delivered only
 */

void
ngx_http_chat_msg_receipts_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t               *items, *item, *answer;
    bson_t                filter, opts, sub, doc;
    int64_t               seq;
    ngx_int_t             rc;
    ngx_uint_t            n, nread, ndelivered;
    bson_oid_t            chat, sender, user;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->id);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "messages", &filter, NULL, &doc,
                                      &t->error);
    bson_destroy(&filter);

    if (rc == NGX_OK) {
        rc = NGX_DECLINED;

        if (bson_iter_init_find(&it, &doc, "chatId")
            && BSON_ITER_HOLDS_OID(&it))
        {
            bson_oid_copy(bson_iter_oid(&it), &chat);

            if (bson_iter_init_find(&it, &doc, "senderId")
                && BSON_ITER_HOLDS_OID(&it))
            {
                bson_oid_copy(bson_iter_oid(&it), &sender);
                rc = NGX_OK;
            }
        }
    }

    seq = ngx_http_chat_chats_int(&doc, "seq");
    bson_destroy(&doc);

    if (rc == NGX_OK) {
        rc = ngx_http_chat_chats_is_member(db, &chat, &a->user, &t->error);
    }

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &chat);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "userId", &sub);
    BSON_APPEND_OID(&sub, "$ne", &sender);
    bson_append_document_end(&filter, &sub);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);
    BSON_APPEND_INT32(&sub, "joinedAt", 1);
    BSON_APPEND_INT32(&sub, "_id", 1);
    bson_append_document_end(&opts, &sub);

    coll = mongoc_database_get_collection(db, "members");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);

    items = json_array();
    n = 0;
    nread = 0;
    ndelivered = 0;

    while (items && mongoc_cursor_next(cursor, &d)) {
        if (!bson_iter_init_find(&it, d, "userId")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        bson_oid_copy(bson_iter_oid(&it), &user);

        item = json_pack("{s:o}", "userId",
                         ngx_http_chat_chats_oid_json(&user));
        if (item == NULL || json_array_append_new(items, item) != 0) {
            goto failed;
        }

        n++;

        if (ngx_http_chat_chats_int(d, "deliveredSeq") >= seq
            || ngx_http_chat_chats_int(d, "readSeq") >= seq)
        {
            ndelivered++;

            if (bson_iter_init_find(&it, d, "deliveredAt")
                && BSON_ITER_HOLDS_DATE_TIME(&it))
            {
                json_object_set_new(item, "deliveredAt",
                            ngx_http_chat_json_time(bson_iter_date_time(&it)));
            }
        }

        if (ngx_http_chat_chats_int(d, "readSeq") < seq) {
            continue;
        }

        rc = ngx_http_chat_msg_receipts_off(db, &user, &t->error);

        if (rc == NGX_ERROR) {
            goto failed;
        }

        if (rc == NGX_DECLINED) {
            nread++;

            if (bson_iter_init_find(&it, d, "readAt")
                && BSON_ITER_HOLDS_DATE_TIME(&it))
            {
                json_object_set_new(item, "readAt",
                            ngx_http_chat_json_time(bson_iter_date_time(&it)));
            }
        }
    }

    if (items == NULL || mongoc_cursor_error(cursor, &t->error)) {
        goto failed;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    answer = json_pack("{s:o,s:I,s:s,s:o}",
                       "messageId", ngx_http_chat_chats_oid_json(&a->id),
                       "seq", (json_int_t) seq,
                       "status", (n && nread == n) ? "read"
                                 : (n && ndelivered == n) ? "delivered"
                                 : "sent",
                       "receipts", items);

    ngx_http_chat_chats_answer(t, NGX_DONE, answer);
    return;

failed:

    json_decref(items);
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
}
