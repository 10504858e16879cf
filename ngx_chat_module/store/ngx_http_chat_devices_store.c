/*
 * Copyright (C) ngx_chat_module authors
 *
 * Push devices in MongoDB (ngx_http_chat_devices_store.h), and the
 * reads that tell whom a message is pushed to.
 */


#include "ngx_http_chat_devices_store.h"
#include <jansson.h>


static int64_t
ngx_http_chat_devices_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}


void
ngx_http_chat_devices_register_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_device_arg_t *a = t->arg;

    bson_t                filter, ne, doc, opts;
    mongoc_collection_t  *devices;

    devices = mongoc_database_get_collection(db, "devices");

    /* the session's earlier device, if it was another token */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "sessionId", &a->session);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &ne);
    BSON_APPEND_UTF8(&ne, "$ne", a->token);
    bson_append_document_end(&filter, &ne);

    t->rc = mongoc_collection_delete_many(devices, &filter, NULL, NULL,
                                          &t->error)
            ? NGX_OK : NGX_ERROR;
    bson_destroy(&filter);

    if (t->rc == NGX_OK && a->voip[0]) {
        /* a VoIP token moves with its device too */
        bson_init(&filter);
        BSON_APPEND_UTF8(&filter, "voipToken", a->voip);
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &ne);
        BSON_APPEND_UTF8(&ne, "$ne", a->token);
        bson_append_document_end(&filter, &ne);

        t->rc = mongoc_collection_delete_many(devices, &filter, NULL, NULL,
                                              &t->error)
                ? NGX_OK : NGX_ERROR;
        bson_destroy(&filter);
    }

    if (t->rc == NGX_OK) {
        /* the token's document, whoever held it: the newest session's */
        bson_init(&filter);
        BSON_APPEND_UTF8(&filter, "_id", a->token);

        bson_init(&doc);
        BSON_APPEND_OID(&doc, "userId", &a->user);
        BSON_APPEND_OID(&doc, "sessionId", &a->session);
        BSON_APPEND_UTF8(&doc, "platform", a->platform);
        BSON_APPEND_UTF8(&doc, "bundleId", a->bundle);

        if (a->voip[0]) {
            BSON_APPEND_UTF8(&doc, "voipToken", a->voip);
        }

        BSON_APPEND_DATE_TIME(&doc, "updatedAt", ngx_http_chat_devices_now());

        bson_init(&opts);
        BSON_APPEND_BOOL(&opts, "upsert", true);

        t->rc = mongoc_collection_replace_one(devices, &filter, &doc, &opts,
                                              NULL, &t->error)
                ? NGX_OK : NGX_ERROR;

        bson_destroy(&opts);
        bson_destroy(&doc);
        bson_destroy(&filter);
    }

    mongoc_collection_destroy(devices);
}


void
ngx_http_chat_devices_unregister_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_device_arg_t *a = t->arg;

    t->rc = ngx_http_chat_devices_drop_session(db, &a->session, &t->error);
}


ngx_int_t
ngx_http_chat_devices_drop_session(mongoc_database_t *db,
    const bson_oid_t *session, bson_error_t *error)
{
    bson_t                filter;
    ngx_int_t             rc;
    mongoc_collection_t  *devices;

    devices = mongoc_database_get_collection(db, "devices");

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "sessionId", session);

    rc = mongoc_collection_delete_many(devices, &filter, NULL, NULL, error)
         ? NGX_OK : NGX_ERROR;

    bson_destroy(&filter);
    mongoc_collection_destroy(devices);

    return rc;
}


/*
 * A provider said the token is no more: its document goes.  A VoIP
 * token refused leaves the device, without its VoIP token.
 */

void
ngx_http_chat_devices_forget_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_device_arg_t *a = t->arg;

    bson_t                filter, update, unset;
    mongoc_collection_t  *devices;

    devices = mongoc_database_get_collection(db, "devices");

    bson_init(&filter);

    if (a->voip[0]) {
        BSON_APPEND_UTF8(&filter, "voipToken", a->voip);

        bson_init(&update);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
        BSON_APPEND_UTF8(&unset, "voipToken", "");
        bson_append_document_end(&update, &unset);

        t->rc = mongoc_collection_update_many(devices, &filter, &update,
                                              NULL, NULL, &t->error)
                ? NGX_OK : NGX_ERROR;
        bson_destroy(&update);

    } else {
        BSON_APPEND_UTF8(&filter, "_id", a->token);

        t->rc = mongoc_collection_delete_one(devices, &filter, NULL, NULL,
                                             &t->error)
                ? NGX_OK : NGX_ERROR;
    }

    bson_destroy(&filter);
    mongoc_collection_destroy(devices);
}


/* in a thread: the ids of field in coll's documents matching filter */

static ngx_uint_t
ngx_http_chat_devices_ids(mongoc_database_t *db, const char *coll,
    bson_t *filter, const char *field, bson_oid_t *out, ngx_uint_t max,
    bson_error_t *error, ngx_int_t *rc)
{
    bson_t                opts, proj;
    ngx_uint_t            n;
    bson_iter_t           it;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    c = mongoc_database_get_collection(db, coll);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, field, 1);
    bson_append_document_end(&opts, &proj);
    BSON_APPEND_INT64(&opts, "limit", (int64_t) max);

    cursor = mongoc_collection_find_with_opts(c, filter, &opts, NULL);

    n = 0;

    while (n < max && mongoc_cursor_next(cursor, &doc)) {
        if (bson_iter_init_find(&it, doc, field) && BSON_ITER_HOLDS_OID(&it))
        {
            bson_oid_copy(bson_iter_oid(&it), &out[n++]);
        }
    }

    *rc = mongoc_cursor_error(cursor, error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    mongoc_collection_destroy(c);

    return n;
}


static ngx_uint_t
ngx_http_chat_devices_has(bson_oid_t *set, ngx_uint_t n, const bson_oid_t *id)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (bson_oid_equal(&set[i], id)) {
            return 1;
        }
    }

    return 0;
}


/* {field: {$in: ids}} appended to filter */

static void
ngx_http_chat_devices_in(bson_t *filter, const char *field, bson_oid_t *ids,
    ngx_uint_t n)
{
    char         key[16];
    bson_t       in, arr;
    const char  *k;
    ngx_uint_t   i;

    BSON_APPEND_DOCUMENT_BEGIN(filter, field, &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);

    for (i = 0; i < n; i++) {
        bson_uint32_to_string((uint32_t) i, &k, key, sizeof(key));
        BSON_APPEND_OID(&arr, k, &ids[i]);
    }

    bson_append_array_end(&in, &arr);
    bson_append_document_end(filter, &in);
}


/*
 * Reads, in this order: the members who may be pushed (not the sender,
 * not muted now, or mentioned when a mention passes a mute), those of
 * them with a device, and of these the ones who blocked the sender and
 * those whose setting allows a preview.  Each read is one query whatever
 * the chat's size; the devices' query is the one that narrows.
 */

void
ngx_http_chat_devices_plan_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_push_plan_arg_t *a = t->arg;

    char                  oid[25];
    bson_t                filter, ne, opts, proj;
    json_t               *out, *item;
    int64_t               now, until;
    ngx_int_t             rc;
    ngx_uint_t            n, nb, np, muted;
    bson_oid_t           *ids, *blocked, *preview, uid;
    bson_iter_t           it;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    t->rc = NGX_ERROR;

    ids = malloc(3 * NGX_HTTP_CHAT_PUSH_MEMBERS_MAX * sizeof(bson_oid_t));
    if (ids == NULL) {
        bson_set_error(&t->error, 0, 0, "no memory");
        return;
    }

    blocked = ids + NGX_HTTP_CHAT_PUSH_MEMBERS_MAX;
    preview = blocked + NGX_HTTP_CHAT_PUSH_MEMBERS_MAX;

    out = json_array();
    if (out == NULL) {
        bson_set_error(&t->error, 0, 0, "no memory");
        free(ids);
        return;
    }

    now = ngx_http_chat_devices_now();
    n = 0;
    rc = NGX_OK;

    if (a->given) {
        for (n = 0; n < a->nids && n < NGX_HTTP_CHAT_PUSH_MEMBERS_MAX; n++) {
            bson_oid_copy(&a->ids[n], &ids[n]);
        }

        if (n == 0) {
            goto done;
        }

        goto blocks;
    }

    /* the members, with their mutes */
    c = mongoc_database_get_collection(db, "members");

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &a->chat);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "userId", &ne);
    BSON_APPEND_OID(&ne, "$ne", &a->sender);
    bson_append_document_end(&filter, &ne);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "userId", 1);
    BSON_APPEND_INT32(&proj, "mutedForever", 1);
    BSON_APPEND_INT32(&proj, "mutedUntil", 1);
    bson_append_document_end(&opts, &proj);

    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    while (n < NGX_HTTP_CHAT_PUSH_MEMBERS_MAX
           && mongoc_cursor_next(cursor, &doc))
    {
        if (!bson_iter_init_find(&it, doc, "userId")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        bson_oid_copy(bson_iter_oid(&it), &uid);

        muted = 0;

        if (bson_iter_init_find(&it, doc, "mutedUntil")
            && BSON_ITER_HOLDS_DATE_TIME(&it))
        {
            until = bson_iter_date_time(&it);
            muted = (until > now);
        }

        if (bson_iter_init_find(&it, doc, "mutedForever")
            && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it))
        {
            muted = 1;
        }

        if (muted
            && !(a->mention_muted
                 && ngx_http_chat_devices_has(a->mentions, a->nmentions,
                                              &uid)))
        {
            continue;
        }

        bson_oid_copy(&uid, &ids[n++]);
    }

    rc = mongoc_cursor_error(cursor, &t->error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(c);

    if (rc != NGX_OK || n == 0) {
        goto done;
    }

blocks:

    /* of them, those who blocked the sender */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "blocked", &a->sender);
    ngx_http_chat_devices_in(&filter, "owner", ids, n);

    nb = ngx_http_chat_devices_ids(db, "blocks", &filter, "owner", blocked,
                                   NGX_HTTP_CHAT_PUSH_MEMBERS_MAX,
                                   &t->error, &rc);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        goto done;
    }

    /* of them, those whose setting shows a preview */
    bson_init(&filter);
    BSON_APPEND_BOOL(&filter, "notifications.preview", true);
    ngx_http_chat_devices_in(&filter, "_id", ids, n);

    np = ngx_http_chat_devices_ids(db, "users", &filter, "_id", preview,
                                   NGX_HTTP_CHAT_PUSH_MEMBERS_MAX,
                                   &t->error, &rc);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        goto done;
    }

    /* their devices */
    c = mongoc_database_get_collection(db, "devices");

    bson_init(&filter);
    ngx_http_chat_devices_in(&filter, "userId", ids, n);

    cursor = mongoc_collection_find_with_opts(c, &filter, NULL, NULL);

    while (mongoc_cursor_next(cursor, &doc)) {
        if (!bson_iter_init_find(&it, doc, "userId")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        bson_oid_copy(bson_iter_oid(&it), &uid);

        if (ngx_http_chat_devices_has(blocked, nb, &uid)) {
            continue;
        }

        bson_oid_to_string(&uid, oid);

        item = json_pack("{s:s,s:b}", "userId", oid, "preview",
                         (int) ngx_http_chat_devices_has(preview, np, &uid));
        if (item == NULL) {
            continue;
        }

        if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it))
        {
            json_object_set_new(item, "token",
                                json_string(bson_iter_utf8(&it, NULL)));
        }

        if (bson_iter_init_find(&it, doc, "platform")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            json_object_set_new(item, "platform",
                                json_string(bson_iter_utf8(&it, NULL)));
        }

        if (bson_iter_init_find(&it, doc, "bundleId")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            json_object_set_new(item, "bundleId",
                                json_string(bson_iter_utf8(&it, NULL)));
        }

        if (bson_iter_init_find(&it, doc, "voipToken")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            json_object_set_new(item, "voipToken",
                                json_string(bson_iter_utf8(&it, NULL)));
        }

        json_array_append_new(out, item);
    }

    rc = mongoc_cursor_error(cursor, &t->error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    bson_destroy(&filter);
    mongoc_collection_destroy(c);

done:

    free(ids);

    if (rc != NGX_OK) {
        json_decref(out);
        return;
    }

    t->result = out;
    t->rc = NGX_OK;
}


void
ngx_http_chat_devices_plan_cleanup(ngx_http_chat_mongo_task_t *t)
{
    if (t->result) {
        json_decref(t->result);
        t->result = NULL;
    }
}


void
ngx_http_chat_devices_members_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_push_plan_arg_t *a = t->arg;

    char                  oid[25];
    bson_t                filter, opts, proj;
    json_t               *out;
    int64_t               until;
    ngx_uint_t            n;
    bson_iter_t           it;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    out = json_array();
    if (out == NULL) {
        bson_set_error(&t->error, 0, 0, "no memory");
        t->rc = NGX_ERROR;
        return;
    }

    c = mongoc_database_get_collection(db, "members");

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &a->chat);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "userId", 1);
    BSON_APPEND_INT32(&proj, "mutedForever", 1);
    BSON_APPEND_INT32(&proj, "mutedUntil", 1);
    bson_append_document_end(&opts, &proj);
    BSON_APPEND_INT64(&opts, "limit", NGX_HTTP_CHAT_PUSH_MEMBERS_MAX);

    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    n = 0;

    while (mongoc_cursor_next(cursor, &doc)) {
        if (!bson_iter_init_find(&it, doc, "userId")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        bson_oid_to_string(bson_iter_oid(&it), oid);

        until = 0;

        if (bson_iter_init_find(&it, doc, "mutedUntil")
            && BSON_ITER_HOLDS_DATE_TIME(&it))
        {
            until = bson_iter_date_time(&it);
        }

        if (bson_iter_init_find(&it, doc, "mutedForever")
            && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it))
        {
            until = -1;
        }

        json_array_append_new(out, json_pack("[s,I]", oid,
                                             (json_int_t) until));
        n++;
    }

    t->rc = mongoc_cursor_error(cursor, &t->error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(c);

    if (t->rc != NGX_OK) {
        json_decref(out);
        return;
    }

    t->result = out;
}
