/*
 * Copyright (C) ngx_chat_module authors
 *
 * Messages in MongoDB: sending (membership checks, the highest stored seq,
 * the insert at a number taken in Redis, tombstones), paging, reading one,
 * and the checks before a forward.  A message is one insert under the
 * unique (chatId, seq) and (senderId, tempId) indexes.
 */


#include "ngx_http_chat_chats_store_int.h"
#include "../util/ngx_http_chat_metrics.h"


/*
 * The content of a message of type as clients see it, an object with the
 * type inside, as the seed sends it: {type: "text", text}, {type, mediaId,
 * caption?}, {type: "location", latitude, longitude, name?}, {type:
 * "system", action, actorId, ...}.  The stored content does not change:
 * a text's string, {lat, lng, name?}, the other fields as they are.
 * Takes content; NULL on no memory.
 */

static json_t *
ngx_http_chat_msg_content_json(const char *type, json_t *content)
{
    json_t      *out, *v;
    const char  *key, *name;

    if (content == NULL) {
        return NULL;
    }

    if (json_is_string(content)) {
        /* a text's string (or, never written, another type's) */
        out = json_pack("{s:s,s:O}", "type", type, "text", content);
        json_decref(content);
        return out;
    }

    if (!json_is_object(content)) {
        return content;
    }

    out = json_pack("{s:s}", "type", type);
    if (out == NULL) {
        json_decref(content);
        return NULL;
    }

    json_object_foreach(content, key, v) {
        if (ngx_strcmp(key, "type") == 0) {
            continue;
        }

        /* not key: json_object_foreach() goes on from it */
        name = key;

        if (ngx_strcmp(type, "location") == 0) {
            if (ngx_strcmp(key, "lat") == 0) {
                name = "latitude";

            } else if (ngx_strcmp(key, "lng") == 0) {
                name = "longitude";
            }
        }

        if (json_object_set(out, name, v) != 0) {
            json_decref(out);
            json_decref(content);
            return NULL;
        }
    }

    json_decref(content);

    return out;
}


/* the contents of an edit history ([{content, editedAt}]), as above */

static ngx_int_t
ngx_http_chat_msg_edits_json(const char *type, json_t *edits)
{
    json_t  *e, *c;
    size_t   i;

    json_array_foreach(edits, i, e) {
        c = json_object_get(e, "content");

        if (c == NULL) {
            continue;
        }

        c = ngx_http_chat_msg_content_json(type, json_incref(c));

        if (c == NULL || json_object_set_new(e, "content", c) != 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a message document as the API shows it; full: with its edit history */

json_t *
ngx_http_chat_msg_json(const bson_t *doc, ngx_uint_t full)
{
    json_t       *m, *c;
    const char   *key, *type;
    bson_iter_t   it;

    m = json_object();
    if (m == NULL || !bson_iter_init(&it, doc)) {
        json_decref(m);
        return NULL;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (ngx_strcmp(key, "_id") == 0 && BSON_ITER_HOLDS_OID(&it)) {
            json_object_set_new(m, "id",
                            ngx_http_chat_chats_oid_json(bson_iter_oid(&it)));

        } else if (BSON_ITER_HOLDS_OID(&it)) {
            json_object_set_new(m, key,
                            ngx_http_chat_chats_oid_json(bson_iter_oid(&it)));

        } else if (ngx_strcmp(key, "seq") == 0) {
            json_object_set_new(m, key, json_integer(bson_iter_as_int64(&it)));

        } else if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
            json_object_set_new(m, key,
                            ngx_http_chat_json_time(bson_iter_date_time(&it)));

        } else if (ngx_strcmp(key, "tempId") == 0
                   || ngx_strcmp(key, "type") == 0
                   || ngx_strcmp(key, "content") == 0
                   || ngx_strcmp(key, "forwardedFrom") == 0
                   || ngx_strcmp(key, "mentions") == 0
                   || (ngx_strcmp(key, "edited") == 0
                       && BSON_ITER_HOLDS_BOOL(&it))
                   || (full && ngx_strcmp(key, "edits") == 0))
        {
            json_object_set_new(m, key, ngx_http_chat_chats_value_json(&it));
        }
    }

    type = json_string_value(json_object_get(m, "type"));
    c = json_object_get(m, "content");

    if (type != NULL && c != NULL) {
        c = ngx_http_chat_msg_content_json(type, json_incref(c));

        if (c == NULL || json_object_set_new(m, "content", c) != 0
            || ngx_http_chat_msg_edits_json(type, json_object_get(m, "edits"))
               != NGX_OK)
        {
            json_decref(m);
            return NULL;
        }
    }

    return m;
}


/*
 * Appends _id: {$nin: [...]} of the messages of chat (of any chat: NULL)
 * that user deleted for themselves ("hidden", one document each), if any
 */

ngx_int_t
ngx_http_chat_msg_hidden_nin(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, bson_t *filter, bson_error_t *error)
{
    return ngx_http_chat_chats_ids_filter(db, "hidden", user, chat,
                                          "messageId", filter, "_id", "$nin",
                                          error);
}


/*
 * The message of (senderId, tempId), if it was stored: a retry, the rare
 * path.  The unique (senderId, tempId) index is the arbiter; FerretDB
 * narrows this filter by the sender (the first field of that index), so
 * it reads the sender's messages, not the collection's.  Messages stored
 * when a pointer in "tempids" was written too have their tempId as well:
 * that collection is no longer read or written.
 */

static ngx_int_t
ngx_http_chat_msg_by_temp(mongoc_database_t *db, ngx_http_chat_msg_arg_t *a,
    bson_t *out, bson_error_t *error)
{
    bson_t     filter;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "senderId", &a->user);
    BSON_APPEND_UTF8(&filter, "tempId", a->temp_id);

    rc = ngx_http_chat_mongo_find_one(db, "messages", &filter, NULL, out,
                                      error);

    bson_destroy(&filter);

    return rc;
}


json_t *
ngx_http_chat_msg_answer(const bson_t *doc)
{
    json_t  *m;

    m = ngx_http_chat_msg_json(doc, 1);
    if (m == NULL) {
        return NULL;
    }

    return json_pack("{s:o}", "message", m);
}


/*
 * NGX_OK, or NGX_BUSY when a block closes a private chat, NGX_ERROR.  The
 * membership says whether the chat is private and with whom; one written
 * before it said so sends to the chat's document.
 */

static ngx_int_t
ngx_http_chat_msg_open(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, const bson_t *member, bson_error_t *error)
{
    ngx_int_t    rc;
    bson_oid_t   peer;
    bson_iter_t  it;

    if (ngx_http_chat_msg_is(member, "type", "group")) {
        return NGX_OK;
    }

    if (bson_iter_init_find(&it, member, "peerId")
        && BSON_ITER_HOLDS_OID(&it))
    {
        bson_oid_copy(bson_iter_oid(&it), &peer);
        rc = NGX_OK;

    } else {
        rc = ngx_http_chat_chats_private_peer(db, chat, user, &peer, error);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_chat_chats_blocked(db, user, &peer, error);
        return rc == NGX_OK ? NGX_BUSY : rc == NGX_DECLINED ? NGX_OK : rc;
    }

    return rc == NGX_DECLINED ? NGX_OK : rc;
}


/*
 * May user send in chat: NGX_OK; NGX_DECLINED when not a member; NGX_BUSY
 * when a block closes a private chat, or (with *why) only admins may send
 * in the group; NGX_ERROR
 */

static ngx_int_t
ngx_http_chat_msg_may_send(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, json_t **why, bson_error_t *error)
{
    bson_t     member;
    ngx_int_t  rc;

    bson_init(&member);
    rc = ngx_http_chat_chats_member(db, chat, user, &member, error);

    /* nobody sends to someone they blocked, or who blocked them */
    if (rc == NGX_OK) {
        rc = ngx_http_chat_msg_open(db, chat, user, &member, error);
    }

    /* nor, in a group where only admins may, as a member */
    if (rc == NGX_OK && !ngx_http_chat_msg_is(&member, "type", "private")) {
        rc = ngx_http_chat_group_may_send(db, chat, user, why, error);
    }

    bson_destroy(&member);

    return rc;
}


void
ngx_http_chat_msg_prepare_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t      *why;
    bson_t       doc, filter;
    ngx_int_t    rc;
    bson_iter_t  it;

    why = NULL;
    rc = a->allowed ? NGX_OK
                    : ngx_http_chat_msg_may_send(db, &a->chat, &a->user, &why,
                                                 &t->error);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, why);
        return;
    }

    /* sent before (a retry Redis noted, or a forward): the same again */
    bson_init(&doc);
    rc = a->lookup ? ngx_http_chat_msg_by_temp(db, a, &doc, &t->error)
                   : NGX_DECLINED;

    if (rc != NGX_DECLINED) {
        if (rc == NGX_OK
            && bson_iter_init_find(&it, &doc, "chatId")
            && BSON_ITER_HOLDS_OID(&it)
            && !bson_oid_equal(bson_iter_oid(&it), &a->chat))
        {
            /* the tempId was used in another chat */
            ngx_http_chat_chats_answer(t, NGX_ABORT,
                                       json_pack("{s:s}", "field", "tempId"));

        } else {
            ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_DONE : rc,
                                       rc == NGX_OK
                                       ? ngx_http_chat_msg_answer(&doc)
                                       : NULL);
        }

        bson_destroy(&doc);
        return;
    }

    bson_destroy(&doc);

    if (a->has_reply) {
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "_id", &a->reply_to);
        BSON_APPEND_OID(&filter, "chatId", &a->chat);
        rc = ngx_http_chat_chats_exists(db, "messages", &filter, &t->error);
        bson_destroy(&filter);

        if (rc != NGX_OK) {
            ngx_http_chat_chats_answer(t, rc == NGX_DECLINED ? NGX_ABORT : rc,
                                       rc == NGX_DECLINED
                                       ? json_pack("{s:s}", "field",
                                                   "replyTo")
                                       : NULL);
            return;
        }
    }

    ngx_http_chat_chats_answer(t, NGX_OK, json_object());
}


ngx_int_t
ngx_http_chat_msg_floor(mongoc_database_t *db, const bson_oid_t *chat,
    int64_t *floor, bson_error_t *error)
{
    bson_t     filter, sort, doc;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);
    bson_init(&sort);
    BSON_APPEND_INT32(&sort, "seq", -1);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "messages", &filter, &sort, &doc,
                                      error);

    *floor = (rc == NGX_OK) ? ngx_http_chat_chats_int(&doc, "seq") : 0;

    bson_destroy(&doc);
    bson_destroy(&sort);
    bson_destroy(&filter);

    return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


/*
 * A send's floor once Redis lost the chat's counter: the chat's last
 * number by the windows near its lastSeq (a search of the index; the
 * exact floor reads the whole chat on FerretDB).  Below the truth only
 * when a number never stored sits on a window's top: the send that takes
 * a number already stored then reads the exact floor and takes the next.
 */
void
ngx_http_chat_msg_floor_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    int64_t  floor;

    if (ngx_http_chat_msg_bound(db, &a->chat, 0, &floor, &t->error)
        != NGX_OK)
    {
        t->rc = NGX_ERROR;
        return;
    }

    bson_destroy(&t->reply);
    bson_init(&t->reply);
    BSON_APPEND_INT64(&t->reply, "floor", floor);
    t->rc = NGX_OK;
}


/*
 * A number that was taken but holds no message: readers skip it.  NGX_OK,
 * NGX_DECLINED when the number holds a document already, NGX_ERROR.
 */

ngx_int_t
ngx_http_chat_msg_tombstone_insert(mongoc_collection_t *messages,
    const bson_oid_t *chat, int64_t seq, int64_t now, bson_error_t *error)
{
    bson_t      doc;
    ngx_int_t   rc;
    bson_oid_t  id;

    bson_oid_init(&id, NULL);

    bson_init(&doc);
    BSON_APPEND_OID(&doc, "_id", &id);
    BSON_APPEND_OID(&doc, "chatId", chat);
    BSON_APPEND_INT64(&doc, "seq", seq);
    BSON_APPEND_UTF8(&doc, "type", "tombstone");
    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);

    rc = mongoc_collection_insert_one(messages, &doc, NULL, NULL, error)
         ? NGX_OK
         : ngx_http_chat_chats_is_dup(error, NULL) ? NGX_DECLINED : NGX_ERROR;

    bson_destroy(&doc);

    return rc;
}


static void
ngx_http_chat_msg_tombstone(mongoc_collection_t *messages,
    ngx_http_chat_msg_arg_t *a, int64_t now, ngx_log_t *log)
{
    bson_error_t  error;

    if (ngx_http_chat_msg_tombstone_insert(messages, &a->chat, a->seq, now,
                                           &error)
        == NGX_ERROR)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "chat: cannot store a tombstone at seq %L: %s",
                      a->seq, error.message);
    }
}


/* a tombstone alone, for a number whose request went away */

void
ngx_http_chat_msg_tombstone_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    mongoc_collection_t  *messages;

    messages = mongoc_database_get_collection(db, "messages");
    ngx_http_chat_msg_tombstone(messages, a, ngx_http_chat_chats_now(),
                                t->log);
    mongoc_collection_destroy(messages);

    t->rc = NGX_OK;
}


/* mentions: [userId, ...], the oids after the content's NUL */
static void
ngx_http_chat_msg_append_mentions(bson_t *doc, ngx_http_chat_msg_arg_t *a)
{
    char               key[16];
    bson_t             arr;
    ngx_uint_t         i;
    const bson_oid_t  *m;

    m = (const bson_oid_t *) ((u_char *) (a + 1) + a->content_len + 1);

    BSON_APPEND_ARRAY_BEGIN(doc, "mentions", &arr);

    for (i = 0; i < a->nmentions; i++) {
        ngx_sprintf((u_char *) key, "%ui%Z", i);
        BSON_APPEND_OID(&arr, key, &m[i]);
    }

    bson_append_array_end(doc, &arr);
}


/* the message as stored; NGX_ERROR (answered) if its content is bad */

static ngx_int_t
ngx_http_chat_msg_doc(ngx_http_chat_mongo_task_t *t, bson_t *doc,
    int64_t now)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t        *content;
    bson_t         set;
    json_error_t   jerr;

    content = json_loadb((char *) (a + 1), a->content_len, JSON_DECODE_ANY,
                         &jerr);
    if (content == NULL) {
        bson_set_error(&t->error, 0, 0, "content: %s", jerr.text);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return NGX_ERROR;
    }

    bson_init(doc);
    BSON_APPEND_OID(doc, "_id", &a->id);
    BSON_APPEND_OID(doc, "chatId", &a->chat);
    BSON_APPEND_INT64(doc, "seq", a->seq);
    BSON_APPEND_OID(doc, "senderId", &a->user);
    BSON_APPEND_UTF8(doc, "tempId", a->temp_id);
    BSON_APPEND_UTF8(doc, "type", a->type);
    ngx_http_chat_chats_append_json(doc, "content", content);

    if (a->has_reply) {
        BSON_APPEND_OID(doc, "replyTo", &a->reply_to);
    }

    if (a->nmentions) {
        ngx_http_chat_msg_append_mentions(doc, a);
    }

    if (a->forwarded) {
        BSON_APPEND_DOCUMENT_BEGIN(doc, "forwardedFrom", &set);
        BSON_APPEND_OID(&set, "messageId", &a->fwd_id);
        BSON_APPEND_OID(&set, "chatId", &a->fwd_chat);
        bson_append_document_end(doc, &set);
    }

    BSON_APPEND_DATE_TIME(doc, "createdAt", now);
    json_decref(content);

    return NGX_OK;
}


/* an insert that failed (t->error): why, and the answer */

static void
ngx_http_chat_msg_insert_failed(ngx_http_chat_mongo_task_t *t,
    mongoc_database_t *db, mongoc_collection_t *messages, int64_t now)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    bson_t       stored;
    int64_t      floor;
    ngx_int_t    rc;
    bson_iter_t  it;

    if (ngx_http_chat_chats_is_dup(&t->error, NULL)) {

        /* the same tempId stored meanwhile: that one, and a tombstone */
        bson_init(&stored);
        rc = ngx_http_chat_msg_by_temp(db, a, &stored, &t->error);

        if (rc == NGX_OK
            && bson_iter_init_find(&it, &stored, "_id")
            && BSON_ITER_HOLDS_OID(&it)
            && bson_oid_equal(bson_iter_oid(&it), &a->id))
        {
            /* this very message, kept by an insert whose reply was lost */
            ngx_http_chat_chats_answer(t, NGX_OK,
                                       ngx_http_chat_msg_answer(&stored));
            bson_destroy(&stored);
            return;
        }

        if (rc == NGX_OK) {
            ngx_http_chat_msg_tombstone(messages, a, now, t->log);

            if (bson_iter_init_find(&it, &stored, "chatId")
                && BSON_ITER_HOLDS_OID(&it)
                && !bson_oid_equal(bson_iter_oid(&it), &a->chat))
            {
                /* the tempId was used in another chat */
                ngx_http_chat_chats_answer(t, NGX_ABORT,
                                           json_pack("{s:s}", "field",
                                                     "tempId"));

            } else {
                ngx_http_chat_chats_answer(t, NGX_DONE,
                                           ngx_http_chat_msg_answer(&stored));
            }

            bson_destroy(&stored);
            return;
        }

        bson_destroy(&stored);

        /* the number was taken: Redis was behind the stored messages */
        if (rc == NGX_DECLINED
            && ngx_http_chat_msg_floor(db, &a->chat, &floor, &t->error)
               == NGX_OK)
        {
            bson_destroy(&t->reply);
            bson_init(&t->reply);
            BSON_APPEND_INT64(&t->reply, "floor", floor);
            t->rc = NGX_AGAIN;
            return;
        }
    }

    ngx_http_chat_msg_tombstone(messages, a, now, t->log);
    ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
}


void
ngx_http_chat_msg_insert_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    bson_t                doc;
    int64_t               now;
    mongoc_collection_t  *messages;

    now = ngx_http_chat_chats_now();

    if (ngx_http_chat_msg_doc(t, &doc, now) != NGX_OK) {
        return;
    }

    messages = mongoc_database_get_collection(db, "messages");

    if (mongoc_collection_insert_one(messages, &doc, NULL, NULL, &t->error)) {
        /* published now; the chat's activity comes after */
        ngx_http_chat_chats_answer(t, NGX_OK, ngx_http_chat_msg_answer(&doc));

    } else {
        ngx_http_chat_msg_insert_failed(t, db, messages, now);
    }

    bson_destroy(&doc);
    mongoc_collection_destroy(messages);
}


/*
 * Messages of several senders in one insert, unordered: those the store
 * refused one by one (writeErrors: a tempId or number already stored) go
 * again alone, the way to tell why, and so do all the rest if the reply
 * cannot be read (a message finds itself if it was kept); if the command
 * as a whole failed, whether any was kept is unknown, and each is answered
 * as an insert of its own that failed so.
 */

static void
ngx_http_chat_msg_insert_batch_run(ngx_http_chat_mongo_task_t **tasks,
    ngx_uint_t n, mongoc_client_t *client, mongoc_database_t *db)
{
    bool                  ok;
    bson_t                doc[NGX_HTTP_CHAT_MONGO_BATCH_MAX], reply, opts;
    int64_t               now;
    uint32_t              len;
    ngx_uint_t            i, k, nd, alone;
    bson_iter_t           it, e, f;
    bson_error_t          error;
    const bson_t         *docs[NGX_HTTP_CHAT_MONGO_BATCH_MAX];
    const uint8_t        *data;
    mongoc_collection_t  *messages;
    ngx_http_chat_mongo_task_t  *in[NGX_HTTP_CHAT_MONGO_BATCH_MAX];

    if (n == 1) {
        ngx_http_chat_msg_insert_run(tasks[0], client, db);
        return;
    }

    now = ngx_http_chat_chats_now();
    nd = 0;

    for (i = 0; i < n && nd < NGX_HTTP_CHAT_MONGO_BATCH_MAX; i++) {
        if (ngx_http_chat_msg_doc(tasks[i], &doc[nd], now) == NGX_OK) {
            in[nd] = tasks[i];
            docs[nd] = &doc[nd];
            nd++;
        }
    }

    if (nd == 0) {
        return;
    }

    messages = mongoc_database_get_collection(db, "messages");

    bson_init(&opts);
    BSON_APPEND_BOOL(&opts, "ordered", false);

    ok = mongoc_collection_insert_many(messages, docs, nd, &opts, &reply,
                                       &error);
    bson_destroy(&opts);

    alone = 0;

    if (!ok && bson_iter_init_find(&it, &reply, "writeErrors")
        && BSON_ITER_HOLDS_ARRAY(&it)
        && !bson_has_field(&reply, "writeConcernErrors")
        && bson_iter_recurse(&it, &e))
    {
        ok = 1;

        while (bson_iter_next(&e)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&e)) {
                alone = 1;
                break;
            }

            bson_iter_document(&e, &len, &data);

            if (!bson_iter_init_from_data(&f, data, len)
                || !bson_iter_find(&f, "index")
                || !BSON_ITER_HOLDS_INT(&f)
                || bson_iter_as_int64(&f) < 0
                || (ngx_uint_t) bson_iter_as_int64(&f) >= nd)
            {
                alone = 1;
                break;
            }

            k = (ngx_uint_t) bson_iter_as_int64(&f);

            if (in[k] != NULL) {
                /* alone again: the single insert tells why */
                ngx_http_chat_msg_insert_run(in[k], client, db);
                in[k] = NULL;
            }
        }
    }

    for (i = 0; i < nd; i++) {
        if (in[i] == NULL) {
            continue;
        }

        if (alone) {
            /* a reply not understood: each alone finds itself if kept */
            ngx_http_chat_msg_insert_run(in[i], client, db);

        } else if (ok) {
            ngx_http_chat_chats_answer(in[i], NGX_OK,
                                       ngx_http_chat_msg_answer(&doc[i]));

        } else {
            in[i]->error = error;
            ngx_http_chat_msg_tombstone(messages, in[i]->arg, now,
                                        in[i]->log);
            ngx_http_chat_chats_answer(in[i], NGX_ERROR, NULL);
        }
    }

    for (i = 0; i < nd; i++) {
        bson_destroy(&doc[i]);
    }

    bson_destroy(&reply);
    mongoc_collection_destroy(messages);
}


/* a message whose batch could not be posted: its number left empty */

static void
ngx_http_chat_msg_insert_unrun(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    ngx_http_chat_mongo_task_t  *ts;

    ts = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                             ngx_http_chat_msg_tombstone_run,
                                             NULL, NULL, a,
                                             sizeof(ngx_http_chat_msg_arg_t));

    if (ts == NULL || ngx_http_chat_mongo_post(ts) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat: seq %L left without a tombstone", a->seq);
    }
}


/*
 * A worker's message inserts: two commands in the store at most, the
 * messages that come meanwhile go together in the next
 */
static ngx_http_chat_mongo_batch_t  ngx_http_chat_msg_inserts = {
    ngx_http_chat_msg_insert_batch_run,
    ngx_http_chat_msg_insert_unrun,
    NGX_HTTP_CHAT_MONGO_BATCH_MAX,
    2,
    NGX_HTTP_CHAT_M_MSG_INSERTS,
    { NULL, NULL }, 0, 0
};


ngx_int_t
ngx_http_chat_msg_insert_post(ngx_http_chat_mongo_task_t *t)
{
    return ngx_http_chat_mongo_batch_post(&ngx_http_chat_msg_inserts, t);
}


/*
 * After messages are stored and on their way: their chats move up in
 * their members' lists, one update a chat for all the messages a worker
 * stored in it since its last flush.  $max, so that flushes of several
 * workers in any order leave the highest.  One that fails is marked for
 * its owner on the event loop.
 */

void
ngx_http_chat_chat_activity_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_activity_arg_t *a = t->arg;

    bson_t                     filter, update, set;
    ngx_uint_t                 i;
    bson_error_t               error;
    mongoc_collection_t       *chats;
    ngx_http_chat_activity_t  *act;

    act = (ngx_http_chat_activity_t *) (a + 1);
    chats = mongoc_database_get_collection(db, "chats");

    for (i = 0; i < a->n; i++) {
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "_id", &act[i].chat);
        bson_init(&update);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$max", &set);
        BSON_APPEND_DATE_TIME(&set, "updatedAt", act[i].ms);
        BSON_APPEND_INT64(&set, "lastSeq", act[i].seq);
        bson_append_document_end(&update, &set);

        if (!mongoc_collection_update_one(chats, &filter, &update, NULL, NULL,
                                          &error))
        {
            ngx_log_error(NGX_LOG_WARN, t->log, 0,
                          "chat: cannot update a chat's activity: %s",
                          error.message);
            act[i].failed = 1;
        }

        bson_destroy(&update);
        bson_destroy(&filter);
    }

    mongoc_collection_destroy(chats);

    t->rc = NGX_OK;
}


/* GET /api/chats/:id/messages: by seq, before (newest first) or after */

void
ngx_http_chat_msg_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t                     *items, *m, *answer;
    bson_t                      filter, opts, sub;
    ngx_int_t                   rc;
    ngx_uint_t                  forward;
    const bson_t               *d;
    mongoc_cursor_t            *cursor;
    mongoc_collection_t        *coll;
    ngx_http_chat_msg_holes_t   holes;

    rc = ngx_http_chat_chats_is_member(db, &a->chat, &a->user, &t->error);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &a->chat);

    if (ngx_http_chat_msg_hidden_nin(db, &a->chat, &a->user, &filter,
                                     &t->error)
        != NGX_OK)
    {
        bson_destroy(&filter);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    if (a->has_before || a->has_after) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);

        if (a->has_before) {
            BSON_APPEND_INT64(&sub, "$lt", a->before);
        }

        if (a->has_after) {
            BSON_APPEND_INT64(&sub, "$gt", a->after);
        }

        bson_append_document_end(&filter, &sub);
    }

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);
    BSON_APPEND_INT32(&sub, "seq", (a->has_after && !a->has_before) ? 1 : -1);
    bson_append_document_end(&opts, &sub);
    BSON_APPEND_INT64(&opts, "limit", a->limit);

    coll = mongoc_database_get_collection(db, "messages");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    bson_destroy(&opts);

    items = json_array();

    /* paging forward (a sync): what it read through, past its holes */
    forward = a->has_after && !a->has_before;
    ngx_http_chat_msg_holes_init(&holes, a->after);

    while (items && mongoc_cursor_next(cursor, &d)) {
        m = ngx_http_chat_msg_json(d, 0);

        if (m == NULL || json_array_append_new(items, m) != 0) {
            json_decref(items);
            items = NULL;
            break;
        }

        if (forward) {
            ngx_http_chat_msg_holes_see(&holes, d);
        }
    }

    if (mongoc_cursor_error(cursor, &t->error)) {
        json_decref(items);
        items = NULL;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    if (items && forward
        && ngx_http_chat_msg_holes_settle(db, &a->chat, &filter, &holes,
                                          t->log, &t->error)
           != NGX_OK)
    {
        json_decref(items);
        items = NULL;
    }

    bson_destroy(&filter);

    answer = NULL;

    if (items) {
        answer = holes.through >= 0
                 ? json_pack("{s:o,s:I}", "items", items,
                             "through", (json_int_t) holes.through)
                 : json_pack("{s:o}", "items", items);
    }

    ngx_http_chat_chats_answer(t, NGX_OK, answer);
}


/* NGX_OK when user did not delete message id for themselves */

ngx_int_t
ngx_http_chat_msg_hidden(mongoc_database_t *db, const bson_oid_t *id,
    const bson_oid_t *user, bson_error_t *error)
{
    bson_t     filter;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "messageId", id);
    BSON_APPEND_OID(&filter, "userId", user);

    rc = ngx_http_chat_chats_exists(db, "hidden", &filter, error);
    bson_destroy(&filter);

    return rc == NGX_OK ? NGX_DECLINED
                        : rc == NGX_DECLINED ? NGX_OK : NGX_ERROR;
}


/* GET /api/messages/:id: members of its chat only */

void
ngx_http_chat_msg_get_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    bson_t       filter, doc;
    ngx_int_t    rc;
    bson_iter_t  it;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->id);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "messages", &filter, NULL, &doc,
                                      &t->error);
    bson_destroy(&filter);

    if (rc == NGX_OK) {
        if (bson_iter_init_find(&it, &doc, "chatId")
            && BSON_ITER_HOLDS_OID(&it))
        {
            rc = ngx_http_chat_chats_is_member(db, bson_iter_oid(&it),
                                               &a->user, &t->error);

            if (rc == NGX_OK) {
                rc = ngx_http_chat_msg_hidden(db, &a->id, &a->user,
                                              &t->error);
            }

        } else {
            rc = NGX_DECLINED;
        }
    }

    ngx_http_chat_chats_answer(t, rc,
                               rc == NGX_OK
                               ? ngx_http_chat_msg_answer_reactions(db, &doc,
                                                &a->id, &a->user, &t->error)
                               : NULL);
    bson_destroy(&doc);
}


/*
 * A message of a chat I am in, for an operation on it: NGX_OK with the
 * document, NGX_DECLINED (none, a number without a message, or not a
 * member), NGX_ERROR
 */

ngx_int_t
ngx_http_chat_msg_mine_to_see(mongoc_database_t *db,
    ngx_http_chat_msg_arg_t *a, bson_t *doc, bson_error_t *error)
{
    bson_t       filter;
    ngx_int_t    rc;
    bson_iter_t  it;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->id);

    rc = ngx_http_chat_mongo_find_one(db, "messages", &filter, NULL, doc,
                                      error);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        return rc;
    }

    if (!bson_iter_init_find(&it, doc, "chatId") || !BSON_ITER_HOLDS_OID(&it))
    {
        return NGX_DECLINED;
    }

    bson_oid_copy(bson_iter_oid(&it), &a->chat);

    if (!bson_iter_init_find(&it, doc, "type") || !BSON_ITER_HOLDS_UTF8(&it)
        || ngx_strcmp(bson_iter_utf8(&it, NULL), "tombstone") == 0)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_chat_chats_is_member(db, &a->chat, &a->user, error);

    return rc;
}


/* POST /api/messages/:id/forward: the message, and where it may go */

void
ngx_http_chat_msg_forward_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t       *answer, *why;
    bson_t        doc;
    ngx_int_t     rc;
    ngx_uint_t    i;
    bson_oid_t   *chats;
    bson_iter_t   it;

    chats = (bson_oid_t *) (a + 1);

    bson_init(&doc);
    rc = ngx_http_chat_msg_mine_to_see(db, a, &doc, &t->error);

    if (rc == NGX_OK) {
        rc = ngx_http_chat_msg_hidden(db, &a->id, &a->user, &t->error);
    }

    /* a system message is the server's: nobody sends one */
    if (rc == NGX_OK && (ngx_http_chat_msg_is(&doc, "type", "deleted")
                         || ngx_http_chat_msg_is(&doc, "type", "system")))
    {
        rc = NGX_DECLINED;
    }

    why = NULL;

    for (i = 0; rc == NGX_OK && i < a->limit; i++) {
        rc = ngx_http_chat_msg_may_send(db, &chats[i], &a->user, &why,
                                        &t->error);
    }

    if (rc != NGX_OK) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, rc, why);
        return;
    }

    answer = json_pack("{s:o}", "chatId",
                       ngx_http_chat_chats_oid_json(&a->chat));

    if (answer && bson_iter_init_find(&it, &doc, "type")) {
        json_object_set_new(answer, "type",
                            ngx_http_chat_chats_value_json(&it));
    }

    if (answer && bson_iter_init_find(&it, &doc, "content")) {
        json_object_set_new(answer, "content",
                            ngx_http_chat_chats_value_json(&it));
    }

    bson_destroy(&doc);
    ngx_http_chat_chats_answer(t, NGX_OK, answer);
}
