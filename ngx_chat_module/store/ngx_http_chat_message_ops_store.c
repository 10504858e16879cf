/*
 * Copyright (C) ngx_chat_module authors
 *
 * Operations on a stored message: edits, deletes (for me and for
 * everyone) and reactions, each written so that no two users write one
 * document.
 */


#include "ngx_http_chat_chats_store_int.h"


/*
 * [{emoji, count, mine}] of a message, in the order each emoji was first
 * used; reactions are one document per user
 */

static json_t *
ngx_http_chat_msg_reactions(mongoc_database_t *db, const bson_oid_t *id,
    const bson_oid_t *user, bson_error_t *error)
{
    json_t               *items, *item, *v;
    size_t                i;
    bson_t                filter, opts, sort;
    bson_iter_t           it, u;
    const char           *emoji;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "messageId", id);
    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "createdAt", 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);

    coll = mongoc_database_get_collection(db, "reactions");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);

    items = json_array();

    while (items && mongoc_cursor_next(cursor, &d)) {
        if (!bson_iter_init_find(&it, d, "emoji") || !BSON_ITER_HOLDS_UTF8(&it)
            || !bson_iter_init_find(&u, d, "userId")
            || !BSON_ITER_HOLDS_OID(&u))
        {
            continue;
        }

        emoji = bson_iter_utf8(&it, NULL);
        item = NULL;

        for (i = 0; i < json_array_size(items); i++) {
            v = json_array_get(items, i);

            if (ngx_strcmp(json_string_value(json_object_get(v, "emoji")),
                           emoji)
                == 0)
            {
                item = v;
                break;
            }
        }

        if (item == NULL) {
            item = json_pack("{s:s,s:i,s:b}", "emoji", emoji, "count", 0,
                             "mine", 0);

            if (item == NULL || json_array_append_new(items, item) != 0) {
                json_decref(items);
                items = NULL;
                break;
            }
        }

        json_object_set_new(item, "count",
                   json_integer(json_integer_value(json_object_get(item,
                                                                   "count"))
                                + 1));

        if (bson_oid_equal(bson_iter_oid(&u), user)) {
            json_object_set_new(item, "mine", json_true());
        }
    }

    if (mongoc_cursor_error(cursor, error)) {
        json_decref(items);
        items = NULL;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    return items;
}


/* {"message"} with its reactions */

json_t *
ngx_http_chat_msg_answer_reactions(mongoc_database_t *db, const bson_t *doc,
    const bson_oid_t *id, const bson_oid_t *user, bson_error_t *error)
{
    json_t  *answer, *reactions;

    reactions = ngx_http_chat_msg_reactions(db, id, user, error);
    if (reactions == NULL) {
        return NULL;
    }

    answer = ngx_http_chat_msg_answer(doc);

    if (answer == NULL) {
        json_decref(reactions);
        return NULL;
    }

    /* json_object_set_new() takes reactions, also when it fails */
    if (json_object_set_new(json_object_get(answer, "message"), "reactions",
                            reactions)
        != 0)
    {
        json_decref(answer);
        return NULL;
    }

    return answer;
}


/* {message} of the answer, as stored, to the chat */

static ngx_int_t
ngx_http_chat_msg_event(json_t *answer, ngx_http_chat_msg_arg_t *a,
    const char *event)
{
    json_t  *message;

    message = json_object_get(answer, "message");

    return ngx_http_chat_chats_event(answer, "chat:", &a->chat, '-',
                                     &a->user, NULL, event,
                                     json_pack("{s:O}", "message", message));
}


/*
 * PUT /api/messages/:id: the sender, alone, edits a text message within
 * the window; the version replaced goes to "edits" with its own time
 * (createdAt for the original).  Only the sender writes their message.
 */

void
ngx_http_chat_msg_edit_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t       *answer;
    bson_t        doc, filter, update, sub, old;
    int64_t       now, at;
    ngx_int_t     rc;
    bson_iter_t   it;
    const char   *prev;
    uint32_t      len;

    bson_init(&doc);
    rc = ngx_http_chat_msg_mine_to_see(db, a, &doc, &t->error);

    if (rc != NGX_OK) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    if (!ngx_http_chat_msg_sent_by(&doc, &a->user)) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, NGX_BUSY, NULL);
        return;
    }

    now = ngx_http_chat_chats_now();

    if (!ngx_http_chat_msg_is(&doc, "type", "text")
        || !bson_iter_init_find(&it, &doc, "content")
        || !BSON_ITER_HOLDS_UTF8(&it))
    {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   json_pack("{s:s,s:s}", "code", "not_text",
                                             "message", "only a text message "
                                             "can be edited"));
        return;
    }

    if (ngx_http_chat_msg_time(&doc, "createdAt") + a->window < now) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   json_pack("{s:s,s:s}", "code",
                                             "edit_window_passed", "message",
                                             "the time to edit this message "
                                             "has passed"));
        return;
    }

    prev = bson_iter_utf8(&it, &len);
    at = ngx_http_chat_msg_time(&doc, "editedAt");

    if (at == 0) {
        at = ngx_http_chat_msg_time(&doc, "createdAt");
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->id);
    BSON_APPEND_OID(&filter, "senderId", &a->user);
    BSON_APPEND_UTF8(&filter, "type", "text");

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &sub);
    bson_append_utf8(&sub, "content", -1, (char *) (a + 1), a->content_len);
    BSON_APPEND_BOOL(&sub, "edited", true);
    BSON_APPEND_DATE_TIME(&sub, "editedAt", now);
    bson_append_document_end(&update, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$push", &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&sub, "edits", &old);
    bson_append_utf8(&old, "content", -1, prev, len);
    BSON_APPEND_DATE_TIME(&old, "editedAt", at);
    bson_append_document_end(&sub, &old);
    bson_append_document_end(&update, &sub);

    rc = ngx_http_chat_chats_update_one(db, "messages", &filter, &update,
                                        &t->error);
    bson_destroy(&update);
    bson_destroy(&filter);
    bson_destroy(&doc);

    if (rc == NGX_OK) {
        /* as it is now: deleted for everyone meanwhile is not text */
        bson_init(&doc);
        rc = ngx_http_chat_msg_mine_to_see(db, a, &doc, &t->error);

        if (rc == NGX_OK && !ngx_http_chat_msg_is(&doc, "type", "text")) {
            rc = NGX_DECLINED;
        }

        answer = (rc == NGX_OK) ? ngx_http_chat_msg_answer(&doc) : NULL;
        bson_destroy(&doc);

        if (answer) {
            (void) ngx_http_chat_msg_event(answer, a, "message_edited");
        }

        ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_DONE : rc, answer);
        return;
    }

    ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
}


/*
 * DELETE /api/messages/:id: for me, a document of its own in "hidden"
 * (members do not write one shared array); for everyone, a tombstone of
 * type "deleted" at the same seq, without its content
 */

void
ngx_http_chat_msg_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t               *answer;
    bson_t                doc, filter, update, sub;
    int64_t               now, seq;
    ngx_int_t             rc, changed;
    bson_oid_t            id;
    mongoc_collection_t  *coll;

    bson_init(&doc);
    rc = ngx_http_chat_msg_mine_to_see(db, a, &doc, &t->error);

    /* deleted for me again: fine; for everyone: I no longer see it */
    if (rc == NGX_OK && a->everyone) {
        rc = ngx_http_chat_msg_hidden(db, &a->id, &a->user, &t->error);
    }

    if (rc != NGX_OK) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    now = ngx_http_chat_chats_now();

    if (!a->everyone) {
        seq = ngx_http_chat_chats_int(&doc, "seq");
        bson_destroy(&doc);
        bson_oid_init(&id, NULL);

        bson_init(&doc);
        BSON_APPEND_OID(&doc, "_id", &id);
        BSON_APPEND_OID(&doc, "messageId", &a->id);
        BSON_APPEND_OID(&doc, "chatId", &a->chat);
        BSON_APPEND_OID(&doc, "userId", &a->user);
        BSON_APPEND_DATE_TIME(&doc, "createdAt", now);

        coll = mongoc_database_get_collection(db, "hidden");

        rc = (mongoc_collection_insert_one(coll, &doc, NULL, NULL, &t->error)
              || ngx_http_chat_chats_is_dup(&t->error, NULL))
             ? NGX_DONE : NGX_ERROR;

        mongoc_collection_destroy(coll);
        bson_destroy(&doc);

        answer = NULL;

        if (rc == NGX_DONE) {
            answer = json_pack("{s:b}", "success", 1);

            /* the list's read model: my unread and last message */
            if (answer) {
                (void) json_object_set_new(answer, NGX_HTTP_CHAT_LIST_KEY,
                                           json_pack("[{s:o,s:o,s:I}]",
                                 "chatId", ngx_http_chat_chats_oid_json(
                                                                 &a->chat),
                                 "userId", ngx_http_chat_chats_oid_json(
                                                                 &a->user),
                                 "seq", (json_int_t) seq));
            }
        }

        ngx_http_chat_chats_answer(t, rc, answer);
        return;
    }

    if (ngx_http_chat_msg_is(&doc, "type", "deleted")) {
        /* deleted for everyone already: the same answer again */
        ngx_http_chat_chats_answer(t, NGX_DONE,
                                   ngx_http_chat_msg_answer(&doc));
        bson_destroy(&doc);
        return;
    }

    if (!ngx_http_chat_msg_sent_by(&doc, &a->user)) {
        /* a group's admin; a private chat has none */
        rc = ngx_http_chat_group_is_admin(db, &a->chat, &a->user, &t->error);

        if (rc == NGX_DECLINED) {
            rc = NGX_BUSY;
        }

        if (rc != NGX_OK) {
            bson_destroy(&doc);
            ngx_http_chat_chats_answer(t, rc, NULL);
            return;
        }
    }

    if (ngx_http_chat_msg_time(&doc, "createdAt") + a->window < now) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   json_pack("{s:s,s:s}", "code",
                                             "delete_window_passed",
                                             "message", "the time to delete "
                                             "this message for everyone has "
                                             "passed"));
        return;
    }

    bson_destroy(&doc);

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->id);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "type", &sub);
    BSON_APPEND_UTF8(&sub, "$ne", "deleted");
    bson_append_document_end(&filter, &sub);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &sub);
    BSON_APPEND_UTF8(&sub, "type", "deleted");
    BSON_APPEND_DATE_TIME(&sub, "deletedAt", now);
    BSON_APPEND_OID(&sub, "deletedBy", &a->user);
    bson_append_document_end(&update, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &sub);
    BSON_APPEND_UTF8(&sub, "content", "");
    BSON_APPEND_UTF8(&sub, "edits", "");
    BSON_APPEND_UTF8(&sub, "edited", "");
    BSON_APPEND_UTF8(&sub, "editedAt", "");
    bson_append_document_end(&update, &sub);

    /* a concurrent delete may have come first: then it told everyone */
    changed = ngx_http_chat_chats_update_changed(db, "messages", &filter,
                                                 &update, &t->error);
    bson_destroy(&update);
    bson_destroy(&filter);

    if (changed == NGX_ERROR) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    bson_init(&doc);
    rc = ngx_http_chat_msg_mine_to_see(db, a, &doc, &t->error);

    answer = (rc == NGX_OK) ? ngx_http_chat_msg_answer(&doc) : NULL;
    bson_destroy(&doc);

    if (answer && changed == NGX_OK) {
        (void) ngx_http_chat_msg_event(answer, a, "message_deleted");
    }

    ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_DONE : rc, answer);
}


/*
 * POST /api/messages/:id/react: one reaction document per (message,
 * user), written by that user only: inserted, changed, or removed when
 * the same emoji comes again
 */

void
ngx_http_chat_msg_react_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    char                 *emoji;
    json_t               *answer, *message, *reactions, *r;
    size_t                i;
    bson_t                doc, mine, filter, update, sub;
    ngx_int_t             rc;
    ngx_uint_t            tries, removed;
    bson_oid_t            id;
    mongoc_collection_t  *coll;

    emoji = (char *) (a + 1);

    bson_init(&doc);
    rc = ngx_http_chat_msg_mine_to_see(db, a, &doc, &t->error);

    if (rc == NGX_OK) {
        rc = ngx_http_chat_msg_hidden(db, &a->id, &a->user, &t->error);
    }

    if (rc != NGX_OK) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    if (ngx_http_chat_msg_is(&doc, "type", "deleted")) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   json_pack("{s:s,s:s}", "code",
                                             "message_deleted", "message",
                                             "the message was deleted"));
        return;
    }

    coll = mongoc_database_get_collection(db, "reactions");
    removed = 0;

    for (tries = 0; tries < 3; tries++) {
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "messageId", &a->id);
        BSON_APPEND_OID(&filter, "userId", &a->user);
        bson_init(&mine);

        rc = ngx_http_chat_mongo_find_one(db, "reactions", &filter, NULL,
                                          &mine, &t->error);

        if (rc == NGX_OK && ngx_http_chat_msg_is(&mine, "emoji", emoji)) {
            /* the same again: removed */
            rc = mongoc_collection_delete_one(coll, &filter, NULL, NULL,
                                              &t->error)
                 ? NGX_OK : NGX_ERROR;
            removed = 1;

        } else if (rc == NGX_OK) {
            bson_init(&update);
            BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &sub);
            BSON_APPEND_UTF8(&sub, "emoji", emoji);
            BSON_APPEND_DATE_TIME(&sub, "createdAt",
                                  ngx_http_chat_chats_now());
            bson_append_document_end(&update, &sub);

            rc = mongoc_collection_update_one(coll, &filter, &update, NULL,
                                              NULL, &t->error)
                 ? NGX_OK : NGX_ERROR;

            bson_destroy(&update);

        } else if (rc == NGX_DECLINED) {
            bson_oid_init(&id, NULL);
            bson_init(&update);
            BSON_APPEND_OID(&update, "_id", &id);
            BSON_APPEND_OID(&update, "messageId", &a->id);
            BSON_APPEND_OID(&update, "chatId", &a->chat);
            BSON_APPEND_OID(&update, "userId", &a->user);
            BSON_APPEND_UTF8(&update, "emoji", emoji);
            BSON_APPEND_DATE_TIME(&update, "createdAt",
                                  ngx_http_chat_chats_now());

            if (mongoc_collection_insert_one(coll, &update, NULL, NULL,
                                             &t->error))
            {
                rc = NGX_OK;

            } else {
                /* my own concurrent request stored one: look again */
                rc = ngx_http_chat_chats_is_dup(&t->error, NULL)
                     ? NGX_AGAIN : NGX_ERROR;
            }

            bson_destroy(&update);
        }

        bson_destroy(&mine);
        bson_destroy(&filter);

        if (rc != NGX_AGAIN) {
            break;
        }
    }

    mongoc_collection_destroy(coll);

    if (rc != NGX_OK) {
        if (rc == NGX_AGAIN) {
            bson_set_error(&t->error, 0, 0, "a reaction kept changing");
        }

        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    answer = ngx_http_chat_msg_answer_reactions(db, &doc, &a->id, &a->user,
                                                &t->error);
    bson_destroy(&doc);

    /*
     * To the chat: what is the same for every member, so the counts
     * without "mine", and who reacted with what (null: removed)
     */
    message = json_deep_copy(json_object_get(answer, "message"));
    reactions = json_object_get(message, "reactions");

    json_array_foreach(reactions, i, r) {
        json_object_del(r, "mine");
    }

    if (message) {
        (void) ngx_http_chat_chats_event(answer, "chat:", &a->chat, '-',
                                         &a->user, NULL, "message_reaction",
                                         json_pack("{s:o,s:o,s:s?}",
                                                   "message", message,
                                                   "userId",
                                           ngx_http_chat_chats_oid_json(
                                                                 &a->user),
                                                   "emoji",
                                                   removed ? NULL : emoji));
    }

    ngx_http_chat_chats_answer(t, NGX_DONE, answer);
}
