/*
 * Copyright (C) ngx_chat_module authors
 *
 * Helpers shared by the chat and message stores: errors, times, ids, answers,
 * and BSON values as JSON.
 */


#include "ngx_http_chat_chats_store_int.h"


#define NGX_HTTP_CHAT_CHATS_DUP  11000


ngx_uint_t
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


int64_t
ngx_http_chat_chats_now(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


/*
 * "<chat>:<user>" or "<chat>:<field>": the _id of what belongs to a chat
 * and a user (a membership, an admin) or a field (a group's info).  They
 * are found by _id, the one filter FerretDB gives to its SQLite index:
 * any other is a scan of the collection in FerretDB itself.
 */

void
ngx_http_chat_chats_key(char *buf, const bson_oid_t *chat,
    const bson_oid_t *user, const char *field)
{
    char  c[25], u[25];

    bson_oid_to_string(chat, c);

    if (user) {
        bson_oid_to_string(user, u);
        field = u;
    }

    ngx_sprintf((u_char *) buf, "%s:%s%Z", c, field);
}


void
ngx_http_chat_chats_member_id(bson_t *b, const bson_oid_t *chat,
    const bson_oid_t *user)
{
    char  key[NGX_HTTP_CHAT_KEY_LEN + 1];

    ngx_http_chat_chats_key(key, chat, user, NULL);
    BSON_APPEND_UTF8(b, "_id", key);
}


static void
ngx_http_chat_chats_cleanup(ngx_http_chat_mongo_task_t *t)
{
    if (t->result) {
        json_decref((json_t *) t->result);
        t->result = NULL;
    }
}


void
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


ngx_int_t
ngx_http_chat_chats_event(json_t *answer, const char *kind,
    const bson_oid_t *id, u_char flag, const bson_oid_t *origin,
    const bson_oid_t *chat, const char *event, json_t *data)
{
    char     f[2];
    json_t  *events, *e;

    if (answer == NULL || data == NULL) {
        json_decref(data);
        return NGX_ERROR;
    }

    f[0] = (char) flag;
    f[1] = '\0';

    e = json_pack("{s:s,s:o,s:s,s:s,s:o}", "kind", kind,
                  "id", ngx_http_chat_chats_oid_json(id), "flag", f,
                  "event", event, "data", data);
    if (e == NULL) {
        return NGX_ERROR;
    }

    if (origin) {
        json_object_set_new(e, "origin", ngx_http_chat_chats_oid_json(origin));
    }

    if (chat) {
        json_object_set_new(e, "chat", ngx_http_chat_chats_oid_json(chat));
    }

    events = json_object_get(answer, NGX_HTTP_CHAT_EVENTS_KEY);

    if (events == NULL) {
        events = json_array();

        if (json_object_set_new(answer, NGX_HTTP_CHAT_EVENTS_KEY, events)
            != 0)
        {
            json_decref(e);
            return NGX_ERROR;
        }
    }

    return json_array_append_new(events, e) == 0 ? NGX_OK : NGX_ERROR;
}


json_t *
ngx_http_chat_chats_oid_json(const bson_oid_t *oid)
{
    char  buf[25];

    bson_oid_to_string(oid, buf);

    return json_string(buf);
}


ngx_int_t
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


/* one update_one on coll: NGX_OK (also when nothing matched), NGX_ERROR */

ngx_int_t
ngx_http_chat_chats_update_one(mongoc_database_t *db, const char *coll,
    const bson_t *filter, const bson_t *update, bson_error_t *error)
{
    ngx_int_t             rc;
    mongoc_collection_t  *c;

    c = mongoc_database_get_collection(db, coll);

    rc = mongoc_collection_update_one(c, filter, update, NULL, NULL, error)
         ? NGX_OK : NGX_ERROR;

    mongoc_collection_destroy(c);

    return rc;
}


ngx_int_t
ngx_http_chat_chats_update_changed(mongoc_database_t *db, const char *coll,
    const bson_t *filter, const bson_t *update, bson_error_t *error)
{
    bson_t                reply;
    ngx_int_t             rc;
    mongoc_collection_t  *c;

    c = mongoc_database_get_collection(db, coll);

    rc = mongoc_collection_update_one(c, filter, update, NULL, &reply, error)
         ? NGX_OK : NGX_ERROR;

    if (rc == NGX_OK && ngx_http_chat_chats_int(&reply, "matchedCount") == 0)
    {
        rc = NGX_DECLINED;
    }

    bson_destroy(&reply);
    mongoc_collection_destroy(c);

    return rc;
}


int64_t
ngx_http_chat_chats_int(const bson_t *doc, const char *key)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it)) {
        return bson_iter_as_int64(&it);
    }

    return 0;
}


/* a BSON value of a stored message's content as JSON */

json_t *
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

void
ngx_http_chat_chats_append_json(bson_t *b, const char *key, json_t *v)
{
    char         index[24];
    size_t       i;
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

    case JSON_ARRAY:
        BSON_APPEND_ARRAY_BEGIN(b, key, &child);

        json_array_foreach(v, i, m) {
            ngx_sprintf((u_char *) index, "%uz%Z", i);
            ngx_http_chat_chats_append_json(&child, index, m);
        }

        bson_append_array_end(b, &child);
        break;

    case JSON_TRUE:
    case JSON_FALSE:
        BSON_APPEND_BOOL(b, key, json_is_true(v));
        break;

    default:
        BSON_APPEND_NULL(b, key);
    }
}


ngx_uint_t
ngx_http_chat_msg_is(const bson_t *doc, const char *key, const char *value)
{
    bson_iter_t  it;

    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)
           && ngx_strcmp(bson_iter_utf8(&it, NULL), value) == 0;
}


ngx_uint_t
ngx_http_chat_msg_sent_by(const bson_t *doc, const bson_oid_t *user)
{
    bson_iter_t  it;

    return bson_iter_init_find(&it, doc, "senderId")
           && BSON_ITER_HOLDS_OID(&it)
           && bson_oid_equal(bson_iter_oid(&it), user);
}


/* whether the message's mentions name user */

ngx_uint_t
ngx_http_chat_msg_mentions(const bson_t *doc, const bson_oid_t *user)
{
    bson_iter_t  it, child;

    if (!bson_iter_init_find(&it, doc, "mentions")
        || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &child))
    {
        return 0;
    }

    while (bson_iter_next(&child)) {
        if (BSON_ITER_HOLDS_OID(&child)
            && bson_oid_equal(bson_iter_oid(&child), user))
        {
            return 1;
        }
    }

    return 0;
}


int64_t
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
 * Appends key: {op: [...]}, the ids in field of the documents of coll
 * whose userId is user (and chatId chat, when not NULL).  An empty $in
 * is kept (it matches nothing); an empty $nin is left out (it excludes
 * nothing), which spares the store a condition on the common path.
 */

ngx_int_t
ngx_http_chat_chats_ids_filter(mongoc_database_t *db, const char *coll,
    const bson_oid_t *user, const bson_oid_t *chat, const char *field,
    bson_t *filter, const char *key, const char *op, bson_error_t *error)
{
    char                  buf[16];
    bson_t                f, opts, sub, arr;
    ngx_int_t             rc;
    ngx_uint_t            i;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    bson_init(&f);
    BSON_APPEND_OID(&f, "userId", user);

    if (chat) {
        BSON_APPEND_OID(&f, "chatId", chat);
    }

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, field, 1);
    bson_append_document_end(&opts, &sub);

    c = mongoc_database_get_collection(db, coll);
    cursor = mongoc_collection_find_with_opts(c, &f, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&f);

    bson_init(&arr);
    i = 0;

    while (mongoc_cursor_next(cursor, &d)) {
        if (bson_iter_init_find(&it, d, field) && BSON_ITER_HOLDS_OID(&it)) {
            ngx_sprintf((u_char *) buf, "%ui%Z", i++);
            BSON_APPEND_OID(&arr, buf, bson_iter_oid(&it));
        }
    }

    rc = mongoc_cursor_error(cursor, error) ? NGX_ERROR : NGX_OK;
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);

    if (rc == NGX_OK && (i || ngx_strcmp(op, "$nin") != 0)) {
        BSON_APPEND_DOCUMENT_BEGIN(filter, key, &sub);
        BSON_APPEND_ARRAY(&sub, op, &arr);
        bson_append_document_end(filter, &sub);
    }

    bson_destroy(&arr);

    return rc;
}


/*
 * Appends $or: [{field: {$lt: ms}}, {field: ms, _id: {$lt: id}}], what
 * comes after a cursor "<ms>.<id>" in the order (field, _id) descending
 */

void
ngx_http_chat_chats_after_cursor(bson_t *filter, const char *field,
    int64_t ms, const bson_oid_t *id)
{
    bson_t  arr, c1, c2, lt;

    BSON_APPEND_ARRAY_BEGIN(filter, "$or", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &c1);
    BSON_APPEND_DOCUMENT_BEGIN(&c1, field, &lt);
    BSON_APPEND_DATE_TIME(&lt, "$lt", ms);
    bson_append_document_end(&c1, &lt);
    bson_append_document_end(&arr, &c1);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "1", &c2);
    BSON_APPEND_DATE_TIME(&c2, field, ms);
    BSON_APPEND_DOCUMENT_BEGIN(&c2, "_id", &lt);
    BSON_APPEND_OID(&lt, "$lt", id);
    bson_append_document_end(&c2, &lt);
    bson_append_document_end(&arr, &c2);
    bson_append_array_end(filter, &arr);
}


/* answer's nextCursor "<ms>.<id>" of the page's last item */

void
ngx_http_chat_chats_next_cursor(json_t *answer, int64_t ms,
    const bson_oid_t *last)
{
    char  oid[25], next[64];

    bson_oid_to_string(last, oid);
    ngx_sprintf((u_char *) next, "%L.%s%Z", ms, oid);
    json_object_set_new(answer, "nextCursor", json_string(next));
}


mongoc_cursor_t *
ngx_http_chat_chats_memberships(mongoc_database_t *db, const bson_oid_t *user,
    const bson_t *opts)
{
    bson_t                filter;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "userId", user);

    /* the cursor keeps what it needs of both */
    coll = mongoc_database_get_collection(db, "members");
    cursor = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);

    return cursor;
}
