/*
 * Copyright (C) ngx_chat_module authors
 *
 * Chats, memberships and messages in MongoDB, run in the thread pool.
 * FerretDB loses concurrent updates of one document, so shared state is
 * never read-modified-written: a private chat is claimed by an insert
 * under the unique pairKey, a membership is one document, and a message
 * is one insert under the unique (chatId, seq) and (senderId, tempId)
 * indexes.  Unread counts and previews are read from the messages
 * themselves; the chat's updatedAt is kept current on a best-effort basis.
 */


#include "ngx_http_chat_chats_store.h"
#include "ngx_http_chat_users.h"


#define NGX_HTTP_CHAT_CHATS_DUP  11000


static ngx_uint_t
ngx_http_chat_chats_is_dup(bson_error_t *error, const char *index)
{
    if (error->code != NGX_HTTP_CHAT_CHATS_DUP
        && ngx_strstr(error->message, "UNIQUE constraint failed") == NULL)
    {
        return 0;
    }

    /* MongoDB names the index; FerretDB's SQLite message may not */
    return index == NULL || ngx_strstr(error->message, index) != NULL;
}


static int64_t
ngx_http_chat_chats_now(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


static void
ngx_http_chat_chats_cleanup(ngx_http_chat_mongo_task_t *t)
{
    if (t->result) {
        json_decref((json_t *) t->result);
        t->result = NULL;
    }
}


static void
ngx_http_chat_chats_answer(ngx_http_chat_mongo_task_t *t, ngx_int_t rc,
    json_t *json)
{
    t->cleanup = ngx_http_chat_chats_cleanup;
    t->result = json;
    t->rc = (json || rc == NGX_DECLINED || rc == NGX_BUSY) ? rc : NGX_ERROR;

    if (json == NULL && t->rc == NGX_ERROR && t->error.message[0] == '\0') {
        bson_set_error(&t->error, 0, 0, "out of memory");
    }
}


static json_t *
ngx_http_chat_chats_oid_json(const bson_oid_t *oid)
{
    char  buf[25];

    bson_oid_to_string(oid, buf);

    return json_string(buf);
}


static ngx_int_t
ngx_http_chat_chats_exists(mongoc_database_t *db, const char *coll,
    const bson_t *filter, bson_error_t *error)
{
    bson_t     doc;
    ngx_int_t  rc;

    bson_init(&doc);
    rc = ngx_http_chat_mongo_find_one(db, coll, filter, NULL, &doc, error);
    bson_destroy(&doc);

    return rc;
}


static int64_t
ngx_http_chat_chats_int(const bson_t *doc, const char *key)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it)) {
        return bson_iter_as_int64(&it);
    }

    return 0;
}


/* a membership: NGX_OK with the document in out, NGX_DECLINED, NGX_ERROR */

static ngx_int_t
ngx_http_chat_chats_member(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, bson_t *out, bson_error_t *error)
{
    bson_t     filter;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);
    BSON_APPEND_OID(&filter, "userId", user);

    rc = ngx_http_chat_mongo_find_one(db, "members", &filter, NULL, out,
                                      error);
    bson_destroy(&filter);

    return rc;
}


/* inserts a membership; one that exists already is fine */

static ngx_int_t
ngx_http_chat_chats_add_member(mongoc_collection_t *members,
    const bson_oid_t *chat, const bson_oid_t *user, const char *role,
    int64_t now, bson_error_t *error)
{
    bson_t      doc;
    ngx_int_t   rc;
    bson_oid_t  id;

    bson_oid_init(&id, NULL);

    bson_init(&doc);
    BSON_APPEND_OID(&doc, "_id", &id);
    BSON_APPEND_OID(&doc, "chatId", chat);
    BSON_APPEND_OID(&doc, "userId", user);
    BSON_APPEND_UTF8(&doc, "role", role);
    BSON_APPEND_DATE_TIME(&doc, "joinedAt", now);
    BSON_APPEND_INT64(&doc, "readSeq", 0);
    BSON_APPEND_INT64(&doc, "deliveredSeq", 0);

    rc = NGX_OK;

    if (!mongoc_collection_insert_one(members, &doc, NULL, NULL, error)
        && !ngx_http_chat_chats_is_dup(error, NULL))
    {
        rc = NGX_ERROR;
    }

    bson_destroy(&doc);

    return rc;
}


/* a BSON value of a stored message's content as JSON */

static json_t *
ngx_http_chat_chats_value_json(bson_iter_t *it)
{
    json_t       *obj;
    bson_iter_t   child;

    if (BSON_ITER_HOLDS_UTF8(it)) {
        return json_string(bson_iter_utf8(it, NULL));
    }

    if (BSON_ITER_HOLDS_DOUBLE(it)) {
        return json_real(bson_iter_double(it));
    }

    if (BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it)) {
        return json_integer(bson_iter_as_int64(it));
    }

    if (BSON_ITER_HOLDS_BOOL(it)) {
        return json_boolean(bson_iter_bool(it));
    }

    if (BSON_ITER_HOLDS_DATE_TIME(it)) {
        return ngx_http_chat_json_time(bson_iter_date_time(it));
    }

    if (BSON_ITER_HOLDS_OID(it)) {
        return ngx_http_chat_chats_oid_json(bson_iter_oid(it));
    }

    if (BSON_ITER_HOLDS_ARRAY(it) && bson_iter_recurse(it, &child)) {
        obj = json_array();
        if (obj == NULL) {
            return NULL;
        }

        while (bson_iter_next(&child)) {
            if (json_array_append_new(obj,
                                      ngx_http_chat_chats_value_json(&child))
                != 0)
            {
                json_decref(obj);
                return NULL;
            }
        }

        return obj;
    }

    if (BSON_ITER_HOLDS_DOCUMENT(it) && bson_iter_recurse(it, &child)) {
        obj = json_object();
        if (obj == NULL) {
            return NULL;
        }

        while (bson_iter_next(&child)) {
            if (json_object_set_new(obj, bson_iter_key(&child),
                                    ngx_http_chat_chats_value_json(&child))
                != 0)
            {
                json_decref(obj);
                return NULL;
            }
        }

        return obj;
    }

    return json_null();
}


/* appends a JSON value made by the handler (strings, numbers, objects) */

static void
ngx_http_chat_chats_append_json(bson_t *b, const char *key, json_t *v)
{
    bson_t       child;
    json_t      *m;
    const char  *k;

    switch (json_typeof(v)) {

    case JSON_STRING:
        bson_append_utf8(b, key, -1, json_string_value(v),
                         json_string_length(v));
        break;

    case JSON_REAL:
        BSON_APPEND_DOUBLE(b, key, json_real_value(v));
        break;

    case JSON_INTEGER:
        BSON_APPEND_INT64(b, key, json_integer_value(v));
        break;

    case JSON_OBJECT:
        BSON_APPEND_DOCUMENT_BEGIN(b, key, &child);

        json_object_foreach(v, k, m) {
            ngx_http_chat_chats_append_json(&child, k, m);
        }

        bson_append_document_end(b, &child);
        break;

    default:
        BSON_APPEND_NULL(b, key);
    }
}


/* a message document as the API shows it; full: with its edit history */

static json_t *
ngx_http_chat_msg_json(const bson_t *doc, ngx_uint_t full)
{
    json_t       *m;
    const char   *key;
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
                   || (ngx_strcmp(key, "edited") == 0
                       && BSON_ITER_HOLDS_BOOL(&it))
                   || (full && ngx_strcmp(key, "edits") == 0))
        {
            json_object_set_new(m, key, ngx_http_chat_chats_value_json(&it));
        }
    }

    return m;
}


/* {muted, mutedUntil?, archived, pinned} of a membership */

static json_t *
ngx_http_chat_chat_settings_json(const bson_t *member, int64_t now)
{
    json_t       *s;
    int64_t       until;
    bson_iter_t   it;
    ngx_uint_t    forever, archived, pinned;

    until = 0;
    forever = 0;
    archived = 0;
    pinned = 0;

    if (bson_iter_init_find(&it, member, "mutedUntil")
        && BSON_ITER_HOLDS_DATE_TIME(&it))
    {
        until = bson_iter_date_time(&it);
    }

    if (bson_iter_init_find(&it, member, "mutedForever")
        && BSON_ITER_HOLDS_BOOL(&it))
    {
        forever = bson_iter_bool(&it);
    }

    if (bson_iter_init_find(&it, member, "archived")
        && BSON_ITER_HOLDS_BOOL(&it))
    {
        archived = bson_iter_bool(&it);
    }

    if (bson_iter_init_find(&it, member, "pinned")
        && BSON_ITER_HOLDS_BOOL(&it))
    {
        pinned = bson_iter_bool(&it);
    }

    s = json_pack("{s:b}", "muted", forever || until > now);
    if (s == NULL) {
        return NULL;
    }

    if (!forever && until > now) {
        json_object_set_new(s, "mutedUntil", ngx_http_chat_json_time(until));
    }

    json_object_set_new(s, "archived", json_boolean(archived));
    json_object_set_new(s, "pinned", json_boolean(pinned));

    return s;
}


/*
 * Appends _id: {$nin: [...]} of the messages of chat that user deleted
 * for themselves ("hidden", one document each), if any
 */

static ngx_int_t
ngx_http_chat_msg_hidden_nin(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, bson_t *filter, bson_error_t *error)
{
    char                  key[16];
    bson_t                f, opts, sub, nin, arr;
    ngx_uint_t            i;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    bson_init(&f);
    BSON_APPEND_OID(&f, "userId", user);
    BSON_APPEND_OID(&f, "chatId", chat);
    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, "messageId", 1);
    bson_append_document_end(&opts, &sub);

    coll = mongoc_database_get_collection(db, "hidden");
    cursor = mongoc_collection_find_with_opts(coll, &f, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&f);

    bson_init(&arr);
    i = 0;

    while (mongoc_cursor_next(cursor, &d)) {
        if (bson_iter_init_find(&it, d, "messageId")
            && BSON_ITER_HOLDS_OID(&it))
        {
            ngx_sprintf((u_char *) key, "%ui%Z", i++);
            BSON_APPEND_OID(&arr, key, bson_iter_oid(&it));
        }
    }

    if (mongoc_cursor_error(cursor, error)) {
        bson_destroy(&arr);
        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(coll);
        return NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    if (i) {
        BSON_APPEND_DOCUMENT_BEGIN(filter, "_id", &nin);
        BSON_APPEND_ARRAY(&nin, "$nin", &arr);
        bson_append_document_end(filter, &nin);
    }

    bson_destroy(&arr);

    return NGX_OK;
}


/*
 * A chat as the API shows it to user: its fields, my role, the members'
 * count and up to member_limit of their ids (0: all), the last message
 * and my unread count (messages of others after my readSeq).
 */

static json_t *
ngx_http_chat_chat_json(mongoc_database_t *db, const bson_t *chat,
    const bson_oid_t *user, ngx_uint_t member_limit, bson_error_t *error)
{
    json_t               *c, *ids, *last;
    int64_t               count, read_seq;
    bson_t                filter, opts, sort, me, msg, ne;
    const char           *key;
    bson_iter_t           it;
    ngx_int_t             rc;
    bson_oid_t            chat_id;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    if (!bson_iter_init_find(&it, chat, "_id") || !BSON_ITER_HOLDS_OID(&it))
    {
        bson_set_error(error, 0, 0, "a chat without an ObjectId");
        return NULL;
    }

    bson_oid_copy(bson_iter_oid(&it), &chat_id);

    c = json_object();
    if (c == NULL || !bson_iter_init(&it, chat)) {
        json_decref(c);
        return NULL;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (ngx_strcmp(key, "_id") == 0) {
            json_object_set_new(c, "id",
                                ngx_http_chat_chats_oid_json(&chat_id));

        } else if (ngx_strcmp(key, "createdBy") == 0
                   && BSON_ITER_HOLDS_OID(&it))
        {
            json_object_set_new(c, key,
                            ngx_http_chat_chats_oid_json(bson_iter_oid(&it)));

        } else if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
            json_object_set_new(c, key,
                            ngx_http_chat_json_time(bson_iter_date_time(&it)));

        } else if (BSON_ITER_HOLDS_UTF8(&it)
                   && (ngx_strcmp(key, "type") == 0
                       || ngx_strcmp(key, "name") == 0
                       || ngx_strcmp(key, "description") == 0
                       || ngx_strcmp(key, "avatar") == 0))
        {
            json_object_set_new(c, key,
                                json_string(bson_iter_utf8(&it, NULL)));
        }
    }

    /* my membership */
    bson_init(&me);
    rc = ngx_http_chat_chats_member(db, &chat_id, user, &me, error);

    if (rc == NGX_ERROR) {
        bson_destroy(&me);
        json_decref(c);
        return NULL;
    }

    read_seq = 0;

    if (rc == NGX_OK) {
        read_seq = ngx_http_chat_chats_int(&me, "readSeq");

        json_object_set_new(c, "settings",
                            ngx_http_chat_chat_settings_json(&me,
                                              ngx_http_chat_chats_now()));

        if (bson_iter_init_find(&it, &me, "role")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            json_object_set_new(c, "role",
                                json_string(bson_iter_utf8(&it, NULL)));
        }
    }

    bson_destroy(&me);

    /* the members: a count and some ids */
    coll = mongoc_database_get_collection(db, "members");

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &chat_id);

    count = mongoc_collection_count_documents(coll, &filter, NULL, NULL,
                                              NULL, error);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "joinedAt", 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);

    if (member_limit) {
        BSON_APPEND_INT64(&opts, "limit", member_limit);
    }

    ids = json_array();
    cursor = NULL;

    if (count >= 0 && ids) {
        cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);

        while (mongoc_cursor_next(cursor, &doc)) {
            if (bson_iter_init_find(&it, doc, "userId")
                && BSON_ITER_HOLDS_OID(&it))
            {
                json_array_append_new(ids,
                            ngx_http_chat_chats_oid_json(bson_iter_oid(&it)));
            }
        }
    }

    bson_destroy(&opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);

    if (count < 0 || ids == NULL
        || (cursor && mongoc_cursor_error(cursor, error)))
    {
        if (cursor) {
            mongoc_cursor_destroy(cursor);
        }

        json_decref(ids);
        json_decref(c);
        return NULL;
    }

    mongoc_cursor_destroy(cursor);

    json_object_set_new(c, "members", json_pack("{s:I,s:o}", "count",
                                                 (json_int_t) count,
                                                 "ids", ids));

    /* the last message, but not one I deleted for me */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &chat_id);

    if (ngx_http_chat_msg_hidden_nin(db, &chat_id, user, &filter, error)
        != NGX_OK)
    {
        bson_destroy(&filter);
        json_decref(c);
        return NULL;
    }

    bson_init(&sort);
    BSON_APPEND_INT32(&sort, "seq", -1);
    bson_init(&msg);

    rc = ngx_http_chat_mongo_find_one(db, "messages", &filter, &sort, &msg,
                                      error);
    bson_destroy(&sort);

    if (rc == NGX_ERROR) {
        bson_destroy(&msg);
        bson_destroy(&filter);
        json_decref(c);
        return NULL;
    }

    count = 0;

    if (rc == NGX_OK) {
        last = ngx_http_chat_msg_json(&msg, 0);
        json_object_set_new(c, "lastMessage", last ? last : json_null());

        if (ngx_http_chat_chats_int(&msg, "seq") > read_seq) {
            /* the unread: others' messages after my read marker */
            BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sort);
            BSON_APPEND_INT64(&sort, "$gt", read_seq);
            bson_append_document_end(&filter, &sort);
            BSON_APPEND_DOCUMENT_BEGIN(&filter, "senderId", &ne);
            BSON_APPEND_OID(&ne, "$ne", user);
            bson_append_document_end(&filter, &ne);
            BSON_APPEND_DOCUMENT_BEGIN(&filter, "type", &ne);
            BSON_APPEND_UTF8(&ne, "$ne", "tombstone");
            bson_append_document_end(&filter, &ne);

            coll = mongoc_database_get_collection(db, "messages");
            count = mongoc_collection_count_documents(coll, &filter, NULL,
                                                      NULL, NULL, error);
            mongoc_collection_destroy(coll);
        }
    }

    bson_destroy(&msg);
    bson_destroy(&filter);

    if (count < 0) {
        json_decref(c);
        return NULL;
    }

    json_object_set_new(c, "unreadCount", json_integer(count));

    return c;
}


/* {"chat": {...}} of chat id for user */

static json_t *
ngx_http_chat_chat_answer(mongoc_database_t *db, const bson_oid_t *id,
    const bson_oid_t *user, bson_error_t *error)
{
    json_t     *c;
    bson_t      filter, doc;
    ngx_int_t   rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", id);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "chats", &filter, NULL, &doc,
                                      error);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            bson_set_error(error, 0, 0, "the chat vanished");
        }

        bson_destroy(&doc);
        return NULL;
    }

    c = ngx_http_chat_chat_json(db, &doc, user, 0, error);
    bson_destroy(&doc);

    if (c == NULL) {
        return NULL;
    }

    return json_pack("{s:o}", "chat", c);
}


/* POST /api/chats/private: find or create the pair's chat */

/* NGX_OK when one of the two blocked the other, NGX_DECLINED if not */
static ngx_int_t
ngx_http_chat_chats_blocked(mongoc_database_t *db, const bson_oid_t *x,
    const bson_oid_t *y, bson_error_t *error)
{
    bson_t     filter, or, c1, c2;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &or);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &c1);
    BSON_APPEND_OID(&c1, "owner", x);
    BSON_APPEND_OID(&c1, "blocked", y);
    bson_append_document_end(&or, &c1);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &c2);
    BSON_APPEND_OID(&c2, "owner", y);
    BSON_APPEND_OID(&c2, "blocked", x);
    bson_append_document_end(&or, &c2);
    bson_append_array_end(&filter, &or);

    rc = ngx_http_chat_chats_exists(db, "blocks", &filter, error);
    bson_destroy(&filter);

    return rc;
}


/*
 * In a private chat, the other member; NGX_DECLINED in a group.  The
 * pairKey holds both ids, so no member query is needed.
 */
static ngx_int_t
ngx_http_chat_chats_private_peer(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_oid_t *user, bson_oid_t *peer,
    bson_error_t *error)
{
    char          me[25];
    bson_t        filter, doc;
    ngx_int_t     rc;
    bson_iter_t   it;
    const char   *pair;
    uint32_t      len;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", chat);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "chats", &filter, NULL, &doc,
                                      error);
    bson_destroy(&filter);

    if (rc == NGX_OK) {
        rc = NGX_DECLINED;

        if (bson_iter_init_find(&it, &doc, "pairKey")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            pair = bson_iter_utf8(&it, &len);
            bson_oid_to_string(user, me);

            if (len == 49 && pair[24] == ':') {
                pair = ngx_strncmp(pair, me, 24) == 0 ? pair + 25 : pair;

                if (bson_oid_is_valid(pair, 24)) {
                    bson_oid_init_from_string(peer, pair);
                    rc = NGX_OK;
                }
            }
        }
    }

    bson_destroy(&doc);

    return rc;
}


void
ngx_http_chat_chat_private_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_chats_arg_t *a = t->arg;

    char                  pair[2 * 24 + 2], x[25], y[25];
    bson_t                filter, doc;
    int64_t               now;
    ngx_int_t             rc, created;
    bson_oid_t            chat;
    bson_iter_t           it;
    mongoc_collection_t  *chats, *members;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->other);
    rc = ngx_http_chat_chats_exists(db, "users", &filter, &t->error);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    rc = ngx_http_chat_chats_blocked(db, &a->user, &a->other, &t->error);

    if (rc != NGX_DECLINED) {
        ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_BUSY : NGX_ERROR,
                                   NULL);
        return;
    }

    bson_oid_to_string(&a->user, x);
    bson_oid_to_string(&a->other, y);
    ngx_sprintf((u_char *) pair, "%s:%s%Z", ngx_strcmp(x, y) < 0 ? x : y,
                ngx_strcmp(x, y) < 0 ? y : x);

    chats = mongoc_database_get_collection(db, "chats");
    members = mongoc_database_get_collection(db, "members");
    now = ngx_http_chat_chats_now();
    created = 0;

    bson_init(&doc);
    BSON_APPEND_OID(&doc, "_id", &a->chat);
    BSON_APPEND_UTF8(&doc, "type", "private");
    BSON_APPEND_UTF8(&doc, "pairKey", pair);
    BSON_APPEND_OID(&doc, "createdBy", &a->user);
    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
    BSON_APPEND_DATE_TIME(&doc, "updatedAt", now);

    if (mongoc_collection_insert_one(chats, &doc, NULL, NULL, &t->error)) {
        bson_oid_copy(&a->chat, &chat);
        created = 1;

    } else if (ngx_http_chat_chats_is_dup(&t->error, NULL)) {
        bson_destroy(&doc);
        bson_init(&doc);
        bson_init(&filter);
        BSON_APPEND_UTF8(&filter, "pairKey", pair);

        rc = ngx_http_chat_mongo_find_one(db, "chats", &filter, NULL, &doc,
                                          &t->error);
        bson_destroy(&filter);

        if (rc != NGX_OK || !bson_iter_init_find(&it, &doc, "_id")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            if (rc == NGX_DECLINED) {
                bson_set_error(&t->error, 0, 0, "no chat of a taken pairKey");
            }

            goto failed;
        }

        bson_oid_copy(bson_iter_oid(&it), &chat);

    } else {
        goto failed;
    }

    bson_destroy(&doc);

    /* both memberships, also when an earlier call stopped before them */
    if (ngx_http_chat_chats_add_member(members, &chat, &a->user, "member",
                                       now, &t->error)
        != NGX_OK
        || ngx_http_chat_chats_add_member(members, &chat, &a->other, "member",
                                          now, &t->error)
           != NGX_OK)
    {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        goto done;
    }

    ngx_http_chat_chats_answer(t, created ? NGX_OK : NGX_DONE,
                               ngx_http_chat_chat_answer(db, &chat, &a->user,
                                                         &t->error));
    goto done;

failed:

    bson_destroy(&doc);
    ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);

done:

    mongoc_collection_destroy(chats);
    mongoc_collection_destroy(members);
}


/* POST /api/chats/group: the members must exist; the creator is admin */

void
ngx_http_chat_chat_group_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_chats_arg_t *a = t->arg;

    char                  key[16];
    json_t               *unknown;
    bson_t                filter, in, opts, proj, doc;
    int64_t               now;
    ngx_uint_t            i, j, found;
    bson_oid_t           *ids;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *users, *chats, *members;

    /* the ids come twice: a copy to mark, and the list to insert */
    ids = (bson_oid_t *) (a + 1);

    /* which of the ids are users: unknown ones are named back */
    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &proj);

    for (i = 0; i < a->nmembers; i++) {
        ngx_sprintf((u_char *) key, "%ui%Z", i);
        BSON_APPEND_OID(&proj, key, &ids[i]);
    }

    bson_append_array_end(&in, &proj);
    bson_append_document_end(&filter, &in);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 1);
    bson_append_document_end(&opts, &proj);

    users = mongoc_database_get_collection(db, "users");
    cursor = mongoc_collection_find_with_opts(users, &filter, &opts, NULL);

    /* a found id is marked by zeroing it in the copy */
    found = 0;

    while (mongoc_cursor_next(cursor, &d)) {
        if (!bson_iter_init_find(&it, d, "_id") || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        for (j = 0; j < a->nmembers; j++) {
            if (bson_oid_equal(bson_iter_oid(&it), &ids[j])) {
                ngx_memzero(&ids[j], sizeof(bson_oid_t));
                found++;
                break;
            }
        }
    }

    bson_destroy(&opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(users);

    if (mongoc_cursor_error(cursor, &t->error)) {
        mongoc_cursor_destroy(cursor);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    mongoc_cursor_destroy(cursor);

    if (found != a->nmembers) {
        /* the unknown ones are those still set in the copy */
        unknown = json_array();

        for (j = 0; unknown && j < a->nmembers; j++) {
            for (i = 0; i < sizeof(bson_oid_t); i++) {
                if (ids[j].bytes[i]) {
                    json_array_append_new(unknown,
                                   ngx_http_chat_chats_oid_json(&ids[j]));
                    break;
                }
            }
        }

        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   unknown
                                   ? json_pack("{s:s,s:o}", "field",
                                               "memberIds", "unknown", unknown)
                                   : NULL);
        return;
    }

    /* the ids again, as they came (the copy was zeroed) */
    ids = (bson_oid_t *) ((u_char *) (a + 1)
                          + a->nmembers * sizeof(bson_oid_t));

    now = ngx_http_chat_chats_now();
    chats = mongoc_database_get_collection(db, "chats");
    members = mongoc_database_get_collection(db, "members");

    bson_init(&doc);
    BSON_APPEND_OID(&doc, "_id", &a->chat);
    BSON_APPEND_UTF8(&doc, "type", "group");
    BSON_APPEND_UTF8(&doc, "name", a->name);

    if (a->has_description) {
        BSON_APPEND_UTF8(&doc, "description", a->description);
    }

    if (a->has_avatar) {
        BSON_APPEND_UTF8(&doc, "avatar", a->avatar);
    }

    BSON_APPEND_OID(&doc, "createdBy", &a->user);
    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
    BSON_APPEND_DATE_TIME(&doc, "updatedAt", now);

    if (!mongoc_collection_insert_one(chats, &doc, NULL, NULL, &t->error)) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        goto done;
    }

    bson_destroy(&doc);

    if (ngx_http_chat_chats_add_member(members, &a->chat, &a->user, "admin",
                                       now, &t->error)
        != NGX_OK)
    {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        goto done;
    }

    for (i = 0; i < a->nmembers; i++) {
        if (ngx_http_chat_chats_add_member(members, &a->chat, &ids[i],
                                           "member", now, &t->error)
            != NGX_OK)
        {
            ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
            goto done;
        }
    }

    ngx_http_chat_chats_answer(t, NGX_OK,
                               ngx_http_chat_chat_answer(db, &a->chat,
                                                         &a->user,
                                                         &t->error));

done:

    mongoc_collection_destroy(chats);
    mongoc_collection_destroy(members);
}


/*
 * GET /api/chats: my chats by updatedAt, newest first; the cursor is
 * the last one's (updatedAt, _id)
 */

void
ngx_http_chat_chat_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_chats_arg_t *a = t->arg;

    char                  key[16], oid[25], next[64];
    json_t               *items, *c, *answer;
    bson_t                filter, opts, sub, arr, c1, c2, lt;
    int64_t               ms;
    ngx_uint_t            n, i;
    bson_oid_t            last;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    /* my chat ids */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "userId", &a->user);
    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, "chatId", 1);
    bson_append_document_end(&opts, &sub);

    coll = mongoc_database_get_collection(db, "members");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);

    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &arr);

    i = 0;

    while (mongoc_cursor_next(cursor, &d)) {
        if (bson_iter_init_find(&it, d, "chatId")
            && BSON_ITER_HOLDS_OID(&it))
        {
            ngx_sprintf((u_char *) key, "%ui%Z", i++);
            BSON_APPEND_OID(&arr, key, bson_iter_oid(&it));
        }
    }

    bson_append_array_end(&sub, &arr);
    bson_append_document_end(&filter, &sub);

    if (mongoc_cursor_error(cursor, &t->error)) {
        mongoc_cursor_destroy(cursor);
        bson_destroy(&filter);
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

        c = ngx_http_chat_chat_json(db, d, &a->user, 3, &t->error);
        if (c == NULL) {
            goto failed;
        }

        json_array_append_new(items, c);
        n++;

        if (bson_iter_init_find(&it, d, "_id") && BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_copy(bson_iter_oid(&it), &last);
        }

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

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    ngx_http_chat_chats_answer(t, NGX_OK, answer);
    return;

failed:

    json_decref(items);
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
}


/* the message of (senderId, tempId), if it was stored */

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


static json_t *
ngx_http_chat_msg_answer(const bson_t *doc)
{
    json_t  *m;

    m = ngx_http_chat_msg_json(doc, 1);
    if (m == NULL) {
        return NULL;
    }

    return json_pack("{s:o}", "message", m);
}


/* NGX_OK, or NGX_BUSY when a block closes a private chat, NGX_ERROR */

static ngx_int_t
ngx_http_chat_msg_open(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, bson_error_t *error)
{
    ngx_int_t   rc;
    bson_oid_t  peer;

    rc = ngx_http_chat_chats_private_peer(db, chat, user, &peer, error);

    if (rc == NGX_OK) {
        rc = ngx_http_chat_chats_blocked(db, user, &peer, error);
        return rc == NGX_OK ? NGX_BUSY : rc == NGX_DECLINED ? NGX_OK : rc;
    }

    return rc == NGX_DECLINED ? NGX_OK : rc;
}


void
ngx_http_chat_msg_prepare_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    bson_t       doc, filter;
    ngx_int_t    rc;
    bson_iter_t  it;

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc, &t->error);
    bson_destroy(&doc);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    /* nobody sends to someone they blocked, or who blocked them */
    rc = ngx_http_chat_msg_open(db, &a->chat, &a->user, &t->error);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    /* sent before: the same message again */
    bson_init(&doc);
    rc = ngx_http_chat_msg_by_temp(db, a, &doc, &t->error);

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


static ngx_int_t
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


void
ngx_http_chat_msg_floor_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    int64_t  floor;

    if (ngx_http_chat_msg_floor(db, &a->chat, &floor, &t->error) != NGX_OK) {
        t->rc = NGX_ERROR;
        return;
    }

    bson_destroy(&t->reply);
    bson_init(&t->reply);
    BSON_APPEND_INT64(&t->reply, "floor", floor);
    t->rc = NGX_OK;
}


/* a number that was taken but holds no message: readers skip it */

static void
ngx_http_chat_msg_tombstone(mongoc_collection_t *messages,
    ngx_http_chat_msg_arg_t *a, int64_t now, ngx_log_t *log)
{
    bson_t        doc;
    bson_oid_t    id;
    bson_error_t  error;

    bson_oid_init(&id, NULL);

    bson_init(&doc);
    BSON_APPEND_OID(&doc, "_id", &id);
    BSON_APPEND_OID(&doc, "chatId", &a->chat);
    BSON_APPEND_INT64(&doc, "seq", a->seq);
    BSON_APPEND_UTF8(&doc, "type", "tombstone");
    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);

    if (!mongoc_collection_insert_one(messages, &doc, NULL, NULL, &error)
        && !ngx_http_chat_chats_is_dup(&error, NULL))
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "chat: cannot store a tombstone at seq %L: %s",
                      a->seq, error.message);
    }

    bson_destroy(&doc);
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


void
ngx_http_chat_msg_insert_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t               *content;
    bson_t                doc, filter, update, set, stored;
    int64_t               now, floor;
    ngx_int_t             rc;
    json_error_t          jerr;
    mongoc_collection_t  *messages, *chats;

    content = json_loadb((char *) (a + 1), a->content_len, JSON_DECODE_ANY,
                         &jerr);
    if (content == NULL) {
        bson_set_error(&t->error, 0, 0, "content: %s", jerr.text);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    now = ngx_http_chat_chats_now();
    messages = mongoc_database_get_collection(db, "messages");

    bson_init(&doc);
    BSON_APPEND_OID(&doc, "_id", &a->id);
    BSON_APPEND_OID(&doc, "chatId", &a->chat);
    BSON_APPEND_INT64(&doc, "seq", a->seq);
    BSON_APPEND_OID(&doc, "senderId", &a->user);
    BSON_APPEND_UTF8(&doc, "tempId", a->temp_id);
    BSON_APPEND_UTF8(&doc, "type", a->type);
    ngx_http_chat_chats_append_json(&doc, "content", content);

    if (a->has_reply) {
        BSON_APPEND_OID(&doc, "replyTo", &a->reply_to);
    }

    if (a->forwarded) {
        BSON_APPEND_DOCUMENT_BEGIN(&doc, "forwardedFrom", &set);
        BSON_APPEND_OID(&set, "messageId", &a->fwd_id);
        BSON_APPEND_OID(&set, "chatId", &a->fwd_chat);
        bson_append_document_end(&doc, &set);
    }

    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
    json_decref(content);

    if (mongoc_collection_insert_one(messages, &doc, NULL, NULL, &t->error)) {
        ngx_http_chat_chats_answer(t, NGX_OK, ngx_http_chat_msg_answer(&doc));
        bson_destroy(&doc);

        /* best effort: the chat moves up in its members' lists */
        chats = mongoc_database_get_collection(db, "chats");
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "_id", &a->chat);
        bson_init(&update);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$max", &set);
        BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
        BSON_APPEND_INT64(&set, "lastSeq", a->seq);
        bson_append_document_end(&update, &set);

        if (!mongoc_collection_update_one(chats, &filter, &update, NULL, NULL,
                                          &t->error))
        {
            ngx_log_error(NGX_LOG_WARN, t->log, 0,
                          "chat: cannot update a chat's activity: %s",
                          t->error.message);
        }

        bson_destroy(&update);
        bson_destroy(&filter);
        mongoc_collection_destroy(chats);
        mongoc_collection_destroy(messages);
        return;
    }

    bson_destroy(&doc);

    if (ngx_http_chat_chats_is_dup(&t->error, NULL)) {

        /* the same tempId stored meanwhile: that one, and a tombstone */
        bson_init(&stored);
        rc = ngx_http_chat_msg_by_temp(db, a, &stored, &t->error);

        if (rc == NGX_OK) {
            ngx_http_chat_msg_tombstone(messages, a, now, t->log);
            ngx_http_chat_chats_answer(t, NGX_DONE,
                                       ngx_http_chat_msg_answer(&stored));
            bson_destroy(&stored);
            mongoc_collection_destroy(messages);
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
            mongoc_collection_destroy(messages);
            return;
        }
    }

    ngx_http_chat_msg_tombstone(messages, a, now, t->log);
    mongoc_collection_destroy(messages);
    ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
}


/* GET /api/chats/:id/messages: by seq, before (newest first) or after */

void
ngx_http_chat_msg_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t               *items, *m;
    bson_t                filter, opts, sub, doc;
    ngx_int_t             rc;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc, &t->error);
    bson_destroy(&doc);

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
    bson_destroy(&filter);

    items = json_array();

    while (items && mongoc_cursor_next(cursor, &d)) {
        m = ngx_http_chat_msg_json(d, 0);

        if (m == NULL || json_array_append_new(items, m) != 0) {
            json_decref(items);
            items = NULL;
        }
    }

    if (mongoc_cursor_error(cursor, &t->error)) {
        json_decref(items);
        items = NULL;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    ngx_http_chat_chats_answer(t, NGX_OK,
                               items ? json_pack("{s:o}", "items", items)
                                     : NULL);
}


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

static json_t *
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


/* NGX_OK when user did not delete message id for themselves */

static ngx_int_t
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

    bson_t       filter, doc, me;
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
            bson_init(&me);
            rc = ngx_http_chat_chats_member(db, bson_iter_oid(&it), &a->user,
                                            &me, &t->error);
            bson_destroy(&me);

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
 * Moves one marker of a membership forward: only a document whose marker
 * is behind matches, so a marker never goes back, and its time is that
 * of its latest move.  A membership is written by its own member only.
 */

static ngx_int_t
ngx_http_chat_msg_marker_move(mongoc_collection_t *members,
    ngx_http_chat_msg_arg_t *a, const char *seq_key, const char *at_key,
    int64_t now, bson_error_t *error)
{
    bson_t     filter, update, sub;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &a->chat);
    BSON_APPEND_OID(&filter, "userId", &a->user);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, seq_key, &sub);
    BSON_APPEND_INT64(&sub, "$lt", a->seq);
    bson_append_document_end(&filter, &sub);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &sub);
    BSON_APPEND_INT64(&sub, seq_key, a->seq);
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


/* POST /api/chats/:id/read and /delivered: reading is also delivery */

void
ngx_http_chat_msg_marker_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t               *m;
    bson_t                doc;
    int64_t               now, floor;
    ngx_int_t             rc;
    mongoc_collection_t  *members;

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc, &t->error);
    bson_destroy(&doc);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    /* no marker past the chat's last message */
    if (ngx_http_chat_msg_floor(db, &a->chat, &floor, &t->error) != NGX_OK) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    if (a->seq > floor) {
        a->seq = floor;
    }

    now = ngx_http_chat_chats_now();
    members = mongoc_database_get_collection(db, "members");
    rc = NGX_OK;

    if (a->seq > 0) {
        if (a->read) {
            rc = ngx_http_chat_msg_marker_move(members, a, "readSeq",
                                               "readAt", now, &t->error);
        }

        if (rc == NGX_OK) {
            rc = ngx_http_chat_msg_marker_move(members, a, "deliveredSeq",
                                               "deliveredAt", now,
                                               &t->error);
        }
    }

    mongoc_collection_destroy(members);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc, &t->error);

    m = NULL;

    if (rc == NGX_OK) {
        m = ngx_http_chat_msg_markers_json(&doc);
    }

    bson_destroy(&doc);

    /* NGX_DONE: answered 200, nothing was created */
    ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_DONE : rc, m);
}


/*
 * A message of a chat I am in, for an operation on it: NGX_OK with the
 * document, NGX_DECLINED (none, a number without a message, or not a
 * member), NGX_ERROR
 */

static ngx_int_t
ngx_http_chat_msg_mine_to_see(mongoc_database_t *db,
    ngx_http_chat_msg_arg_t *a, bson_t *doc, bson_error_t *error)
{
    bson_t       filter, me;
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

    bson_init(&me);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &me, error);
    bson_destroy(&me);

    return rc;
}


static ngx_uint_t
ngx_http_chat_msg_is(const bson_t *doc, const char *key, const char *value)
{
    bson_iter_t  it;

    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)
           && ngx_strcmp(bson_iter_utf8(&it, NULL), value) == 0;
}


static ngx_uint_t
ngx_http_chat_msg_sent_by(const bson_t *doc, const bson_oid_t *user)
{
    bson_iter_t  it;

    return bson_iter_init_find(&it, doc, "senderId")
           && BSON_ITER_HOLDS_OID(&it)
           && bson_oid_equal(bson_iter_oid(&it), user);
}


static int64_t
ngx_http_chat_msg_time(const bson_t *doc, const char *key)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DATE_TIME(&it))
    {
        return bson_iter_date_time(&it);
    }

    return 0;
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

    bson_t                doc, filter, update, sub, old;
    int64_t               now, at;
    ngx_int_t             rc;
    bson_iter_t           it;
    const char           *prev;
    uint32_t              len;
    mongoc_collection_t  *messages;

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

    messages = mongoc_database_get_collection(db, "messages");

    rc = mongoc_collection_update_one(messages, &filter, &update, NULL, NULL,
                                      &t->error)
         ? NGX_OK : NGX_ERROR;

    mongoc_collection_destroy(messages);
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

        ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_DONE : rc,
                                   rc == NGX_OK
                                   ? ngx_http_chat_msg_answer(&doc) : NULL);
        bson_destroy(&doc);
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

    bson_t                doc, me, filter, update, sub;
    int64_t               now;
    ngx_int_t             rc;
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

        ngx_http_chat_chats_answer(t, rc,
                                   rc == NGX_DONE
                                   ? json_pack("{s:b}", "success", 1) : NULL);
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
        bson_init(&me);
        rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &me,
                                        &t->error);

        if (rc == NGX_OK && !ngx_http_chat_msg_is(&me, "role", "admin")) {
            rc = NGX_BUSY;
        }

        bson_destroy(&me);

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

    coll = mongoc_database_get_collection(db, "messages");

    rc = mongoc_collection_update_one(coll, &filter, &update, NULL, NULL,
                                      &t->error)
         ? NGX_OK : NGX_ERROR;

    mongoc_collection_destroy(coll);
    bson_destroy(&update);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    bson_init(&doc);
    rc = ngx_http_chat_msg_mine_to_see(db, a, &doc, &t->error);

    ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_DONE : rc,
                               rc == NGX_OK ? ngx_http_chat_msg_answer(&doc)
                                            : NULL);
    bson_destroy(&doc);
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
    bson_t                doc, mine, filter, update, sub;
    ngx_int_t             rc;
    ngx_uint_t            tries;
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

    ngx_http_chat_chats_answer(t, NGX_DONE,
                               ngx_http_chat_msg_answer_reactions(db, &doc,
                                                &a->id, &a->user, &t->error));
    bson_destroy(&doc);
}


/* POST /api/messages/:id/forward: the message, and where it may go */

void
ngx_http_chat_msg_forward_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t       *answer;
    bson_t        doc, me;
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

    if (rc == NGX_OK && ngx_http_chat_msg_is(&doc, "type", "deleted")) {
        rc = NGX_DECLINED;
    }

    for (i = 0; rc == NGX_OK && i < a->limit; i++) {
        bson_init(&me);
        rc = ngx_http_chat_chats_member(db, &chats[i], &a->user, &me,
                                        &t->error);
        bson_destroy(&me);

        if (rc == NGX_OK) {
            rc = ngx_http_chat_msg_open(db, &chats[i], &a->user, &t->error);
        }
    }

    if (rc != NGX_OK) {
        bson_destroy(&doc);
        ngx_http_chat_chats_answer(t, rc, NULL);
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
        bson_init(&doc);
        rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc,
                                        &t->error);
        bson_destroy(&doc);

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


/* PUT /api/chats/:id/settings: my membership, written by me only */

void
ngx_http_chat_chat_settings_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t               *s;
    bson_t                doc, filter, update, set, unset;
    ngx_int_t             rc;
    mongoc_collection_t  *members;

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc, &t->error);
    bson_destroy(&doc);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &a->chat);
    BSON_APPEND_OID(&filter, "userId", &a->user);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);

    if (a->set_mute && a->mute_forever) {
        BSON_APPEND_BOOL(&set, "mutedForever", true);

    } else if (a->set_mute) {
        BSON_APPEND_DATE_TIME(&set, "mutedUntil", a->before);
        BSON_APPEND_BOOL(&set, "mutedForever", false);

    } else if (a->unmute) {
        BSON_APPEND_BOOL(&set, "mutedForever", false);
    }

    if (a->set_archived) {
        BSON_APPEND_BOOL(&set, "archived", a->archived);
    }

    if (a->set_pinned) {
        BSON_APPEND_BOOL(&set, "pinned", a->pinned);
    }

    bson_append_document_end(&update, &set);

    if (a->unmute || (a->set_mute && a->mute_forever)) {
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
        BSON_APPEND_UTF8(&unset, "mutedUntil", "");
        bson_append_document_end(&update, &unset);
    }

    members = mongoc_database_get_collection(db, "members");

    rc = mongoc_collection_update_one(members, &filter, &update, NULL, NULL,
                                      &t->error)
         ? NGX_OK : NGX_ERROR;

    mongoc_collection_destroy(members);
    bson_destroy(&update);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc, &t->error);

    s = NULL;

    if (rc == NGX_OK) {
        s = ngx_http_chat_chat_settings_json(&doc, ngx_http_chat_chats_now());
        s = s ? json_pack("{s:o}", "settings", s) : NULL;
    }

    bson_destroy(&doc);

    ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_DONE : rc, s);
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
    bson_t                filter, opts, sub, doc, me;
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
        bson_init(&me);
        rc = ngx_http_chat_chats_member(db, &chat, &a->user, &me, &t->error);
        bson_destroy(&me);
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
