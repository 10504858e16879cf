/*
 * Copyright (C) ngx_chat_module authors
 *
 * Group administration in MongoDB: members added and removed, admins
 * promoted and demoted, leaving, and the group's info and permissions.
 *
 * FerretDB loses concurrent updates of one document, and a membership is
 * written by its member (markers, settings), a chat by every sender (its
 * activity), so neither holds what admins change: an admin is a document
 * of its own in "admins", and each field of a group's info is a document
 * of its own in "groupinfo", both under an _id made of the chat's id and
 * the user's id or the field's name.  Promotion is an insert, demotion a
 * delete, an edit an upsert of one field: none rewrites a shared document.
 */


#include "ngx_http_chat_chats_store_int.h"


static ngx_int_t ngx_http_chat_group_events(mongoc_database_t *db,
    ngx_http_chat_group_arg_t *a, json_t *answer, json_t *system,
    bson_error_t *error);


static const char  *ngx_http_chat_group_flags[] = {
    "onlyAdminsCanSend", "onlyAdminsCanEditInfo", NULL
};


json_t *
ngx_http_chat_group_error(const char *code, const char *message)
{
    return json_pack("{s:s,s:s}", "code", code, "message", message);
}


/*
 * A group's avatar by media id: an upload of the member's own.  Another
 * user's media is as unknown as none (it confirms nothing): NGX_DECLINED
 * with *why {code, message, details}.
 */

ngx_int_t
ngx_http_chat_group_own_media(mongoc_database_t *db, const bson_oid_t *user,
    const char *id, json_t **why, bson_error_t *error)
{
    bson_t      filter;
    ngx_int_t   rc;
    bson_oid_t  media;

    if (!bson_oid_is_valid(id, strlen(id))) {
        return NGX_OK;      /* a URL, checked as the request was read */
    }

    bson_oid_init_from_string(&media, id);
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &media);
    BSON_APPEND_OID(&filter, "owner", user);
    rc = ngx_http_chat_chats_exists(db, "media", &filter, error);
    bson_destroy(&filter);

    if (rc != NGX_DECLINED) {
        return rc == NGX_OK ? NGX_OK : NGX_ERROR;
    }

    *why = ngx_http_chat_group_error("unknown_media",
                                     "avatar is none of your uploads");
    if (*why == NULL
        || json_object_set_new(*why, "details",
                               json_pack("{s:s}", "field", "avatar"))
           != 0)
    {
        return NGX_ERROR;
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_chat_group_is_admin(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, bson_error_t *error)
{
    char       key[NGX_HTTP_CHAT_KEY_LEN + 1];
    bson_t     filter;
    ngx_int_t  rc;

    ngx_http_chat_chats_key(key, chat, user, NULL);

    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "_id", key);
    rc = ngx_http_chat_chats_exists(db, "admins", &filter, error);
    bson_destroy(&filter);

    return rc;
}


/* makes user an admin of chat (on), or not: idempotent */

ngx_int_t
ngx_http_chat_group_set_admin(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, ngx_uint_t on, bson_error_t *error)
{
    char                  key[NGX_HTTP_CHAT_KEY_LEN + 1];
    bson_t                doc;
    ngx_int_t             rc;
    mongoc_collection_t  *admins;

    ngx_http_chat_chats_key(key, chat, user, NULL);

    bson_init(&doc);
    BSON_APPEND_UTF8(&doc, "_id", key);

    admins = mongoc_database_get_collection(db, "admins");

    if (on) {
        BSON_APPEND_OID(&doc, "chatId", chat);
        BSON_APPEND_OID(&doc, "userId", user);
        BSON_APPEND_DATE_TIME(&doc, "since", ngx_http_chat_chats_now());

        rc = (mongoc_collection_insert_one(admins, &doc, NULL, NULL, error)
              || ngx_http_chat_chats_is_dup(error, NULL))
             ? NGX_OK : NGX_ERROR;

    } else {
        rc = mongoc_collection_delete_one(admins, &doc, NULL, NULL, error)
             ? NGX_OK : NGX_ERROR;
    }

    mongoc_collection_destroy(admins);
    bson_destroy(&doc);

    return rc;
}


/* the admins of chat, oldest first, as an array of ids */

json_t *
ngx_http_chat_group_admins(mongoc_database_t *db, const bson_oid_t *chat,
    bson_error_t *error)
{
    json_t               *ids;
    bson_t                filter, opts, sort;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);
    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "since", 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);

    coll = mongoc_database_get_collection(db, "admins");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);

    ids = json_array();

    while (ids && mongoc_cursor_next(cursor, &d)) {
        if (bson_iter_init_find(&it, d, "userId") && BSON_ITER_HOLDS_OID(&it)
            && json_array_append_new(ids,
                            ngx_http_chat_chats_oid_json(bson_iter_oid(&it)))
               != 0)
        {
            json_decref(ids);
            ids = NULL;
        }
    }

    if (mongoc_cursor_error(cursor, error)) {
        json_decref(ids);
        ids = NULL;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    return ids;
}


/*
 * Sets the group's info on the chat's JSON: the fields edited since its
 * creation, and both permissions (false unless set)
 */

ngx_int_t
ngx_http_chat_group_info_json(mongoc_database_t *db, const bson_oid_t *chat,
    json_t *c, bson_error_t *error)
{
    ngx_int_t             rc;
    ngx_uint_t            i;
    bson_t                filter;
    bson_iter_t           k, v;
    const char           *key;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    for (i = 0; ngx_http_chat_group_flags[i]; i++) {
        json_object_set_new(c, ngx_http_chat_group_flags[i], json_false());
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);

    coll = mongoc_database_get_collection(db, "groupinfo");
    cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    bson_destroy(&filter);

    while (mongoc_cursor_next(cursor, &d)) {
        if (!bson_iter_init_find(&k, d, "key") || !BSON_ITER_HOLDS_UTF8(&k)
            || !bson_iter_init_find(&v, d, "value"))
        {
            continue;
        }

        key = bson_iter_utf8(&k, NULL);

        if (BSON_ITER_HOLDS_UTF8(&v)) {
            json_object_set_new(c, key, json_string(bson_iter_utf8(&v, NULL)));

        } else if (BSON_ITER_HOLDS_BOOL(&v)) {
            json_object_set_new(c, key, json_boolean(bson_iter_bool(&v)));

        } else {
            json_object_del(c, key);
        }
    }

    rc = mongoc_cursor_error(cursor, error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    return rc;
}


/* NGX_OK when a permission of chat is on, NGX_DECLINED, NGX_ERROR */

static ngx_int_t
ngx_http_chat_group_flag(mongoc_database_t *db, const bson_oid_t *chat,
    const char *flag, bson_error_t *error)
{
    char         key[NGX_HTTP_CHAT_KEY_LEN + 1];
    bson_t       filter, doc;
    ngx_int_t    rc;
    bson_iter_t  it;

    ngx_http_chat_chats_key(key, chat, NULL, flag);

    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "_id", key);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "groupinfo", &filter, NULL, &doc,
                                      error);

    if (rc == NGX_OK
        && !(bson_iter_init_find(&it, &doc, "value")
             && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it)))
    {
        rc = NGX_DECLINED;
    }

    bson_destroy(&doc);
    bson_destroy(&filter);

    return rc;
}


/*
 * May user send in chat: NGX_OK, or NGX_BUSY with *why when only admins
 * may and user is not one; NGX_ERROR
 */

ngx_int_t
ngx_http_chat_group_may_send(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, json_t **why, bson_error_t *error)
{
    ngx_int_t  rc;

    rc = ngx_http_chat_group_flag(db, chat, "onlyAdminsCanSend", error);

    if (rc == NGX_OK) {
        rc = ngx_http_chat_group_is_admin(db, chat, user, error);

        if (rc == NGX_DECLINED) {
            *why = ngx_http_chat_group_error("only_admins_can_send",
                                             "only admins can send messages "
                                             "in this group");
            return *why ? NGX_BUSY : NGX_ERROR;
        }
    }

    return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


/*
 * May adder put user in a group: NGX_OK; NGX_BUSY when one blocked the
 * other; NGX_DECLINED when user's privacy setting "groups" does not let
 * adder (nobody, or contacts and adder is not one of theirs); NGX_ERROR
 */

ngx_int_t
ngx_http_chat_group_may_add(mongoc_database_t *db, const bson_oid_t *adder,
    const bson_oid_t *user, bson_error_t *error)
{
    bson_t        filter, doc;
    ngx_int_t     rc;
    bson_iter_t   it, rule_it;
    const char   *rule;

    rc = ngx_http_chat_chats_blocked(db, adder, user, error);

    if (rc != NGX_DECLINED) {
        return rc == NGX_OK ? NGX_BUSY : NGX_ERROR;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", user);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "users", &filter, NULL, &doc,
                                      error);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        bson_destroy(&doc);
        return rc;
    }

    rule = "everyone";

    if (bson_iter_init(&it, &doc)
        && bson_iter_find_descendant(&it, "privacy.groups", &rule_it)
        && BSON_ITER_HOLDS_UTF8(&rule_it))
    {
        rule = bson_iter_utf8(&rule_it, NULL);
    }

    if (ngx_strcmp(rule, "nobody") == 0) {
        rc = NGX_DECLINED;

    } else if (ngx_strcmp(rule, "contacts") == 0) {
        /* "contacts": adder is in user's contacts */
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "owner", user);
        BSON_APPEND_OID(&filter, "contact", adder);
        rc = ngx_http_chat_chats_exists(db, "contacts", &filter, error);
        bson_destroy(&filter);

    } else {
        rc = NGX_OK;
    }

    bson_destroy(&doc);

    return rc;
}


/*
 * The ids that adder may not put in a group: NGX_OK when there are none,
 * NGX_BUSY with *why {code, message, details: {blocked?, privacy?}}
 */

ngx_int_t
ngx_http_chat_group_check_adds(mongoc_database_t *db,
    const bson_oid_t *adder, const bson_oid_t *ids, ngx_uint_t n,
    json_t **why, bson_error_t *error)
{
    json_t      *blocked, *privacy, *details;
    ngx_int_t    rc;
    ngx_uint_t   i;

    blocked = json_array();
    privacy = json_array();

    if (blocked == NULL || privacy == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        rc = ngx_http_chat_group_may_add(db, adder, &ids[i], error);

        if (rc == NGX_ERROR) {
            goto failed;
        }

        if (rc != NGX_OK
            && json_array_append_new(rc == NGX_BUSY ? blocked : privacy,
                                     ngx_http_chat_chats_oid_json(&ids[i]))
               != 0)
        {
            goto failed;
        }
    }

    if (json_array_size(blocked) == 0 && json_array_size(privacy) == 0) {
        json_decref(blocked);
        json_decref(privacy);
        return NGX_OK;
    }

    details = json_object();
    *why = ngx_http_chat_group_error("cannot_add",
                                     "some users cannot be added to a "
                                     "group by you");
    if (details == NULL || *why == NULL) {
        json_decref(details);
        json_decref(*why);
        *why = NULL;
        goto failed;
    }

    if (json_array_size(blocked)) {
        json_object_set(details, "blocked", blocked);
    }

    if (json_array_size(privacy)) {
        json_object_set(details, "privacy", privacy);
    }

    json_decref(blocked);
    json_decref(privacy);
    json_object_set_new(*why, "details", details);

    return NGX_BUSY;

failed:

    json_decref(blocked);
    json_decref(privacy);

    if (error->message[0] == '\0') {
        bson_set_error(error, 0, 0, "out of memory");
    }

    return NGX_ERROR;
}


/* ids that are no user: NGX_OK when none, NGX_ABORT with *unknown */

ngx_int_t
ngx_http_chat_group_unknown_users(mongoc_database_t *db,
    const bson_oid_t *ids, ngx_uint_t n, json_t **unknown,
    bson_error_t *error)
{
    char                  key[16];
    u_char               *found;
    bson_t                filter, in, arr, opts, proj;
    ngx_int_t             rc;
    ngx_uint_t            i, j, nfound;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *users;

    found = ngx_calloc(n ? n : 1, ngx_cycle->log);
    if (found == NULL) {
        bson_set_error(error, 0, 0, "out of memory");
        return NGX_ERROR;
    }

    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);

    for (i = 0; i < n; i++) {
        ngx_sprintf((u_char *) key, "%ui%Z", i);
        BSON_APPEND_OID(&arr, key, &ids[i]);
    }

    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 1);
    bson_append_document_end(&opts, &proj);

    users = mongoc_database_get_collection(db, "users");
    cursor = mongoc_collection_find_with_opts(users, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);

    nfound = 0;

    while (mongoc_cursor_next(cursor, &d)) {
        if (!bson_iter_init_find(&it, d, "_id") || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        for (j = 0; j < n; j++) {
            if (!found[j] && bson_oid_equal(bson_iter_oid(&it), &ids[j])) {
                found[j] = 1;
                nfound++;
                break;
            }
        }
    }

    rc = mongoc_cursor_error(cursor, error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(users);

    if (rc == NGX_OK && nfound != n) {
        *unknown = json_array();
        rc = *unknown ? NGX_ABORT : NGX_ERROR;

        for (j = 0; *unknown && j < n; j++) {
            if (!found[j]) {
                json_array_append_new(*unknown,
                                      ngx_http_chat_chats_oid_json(&ids[j]));
            }
        }

        if (rc == NGX_ERROR) {
            bson_set_error(error, 0, 0, "out of memory");
        }
    }

    ngx_free(found);

    return rc;
}


/* deletes a membership, and the admin role first */

static ngx_int_t
ngx_http_chat_group_drop(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, bson_error_t *error)
{
    bson_t                filter;
    ngx_int_t             rc;
    mongoc_collection_t  *members;

    if (ngx_http_chat_group_set_admin(db, chat, user, 0, error) != NGX_OK) {
        return NGX_ERROR;
    }

    bson_init(&filter);
    ngx_http_chat_chats_member_id(&filter, chat, user);

    members = mongoc_database_get_collection(db, "members");
    rc = mongoc_collection_delete_one(members, &filter, NULL, NULL, error)
         ? NGX_OK : NGX_ERROR;
    mongoc_collection_destroy(members);
    bson_destroy(&filter);

    return rc;
}


/* how many admins of chat are members, but not except (may be NULL) */

static int64_t
ngx_http_chat_group_count_admins(mongoc_database_t *db,
    const bson_oid_t *chat, const bson_oid_t *except, bson_error_t *error)
{
    char                  key[16];
    json_t               *admins, *v;
    size_t                i;
    bson_t                filter, in, arr;
    int64_t               n;
    bson_oid_t            oid;
    mongoc_collection_t  *members;

    admins = ngx_http_chat_group_admins(db, chat, error);
    if (admins == NULL) {
        return -1;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "userId", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);

    n = 0;

    json_array_foreach(admins, i, v) {
        bson_oid_init_from_string(&oid, json_string_value(v));

        if (except == NULL || !bson_oid_equal(&oid, except)) {
            ngx_sprintf((u_char *) key, "%ui%Z", n++);
            BSON_APPEND_OID(&arr, key, &oid);
        }
    }

    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);
    json_decref(admins);

    if (n) {
        members = mongoc_database_get_collection(db, "members");
        n = mongoc_collection_count_documents(members, &filter, NULL, NULL,
                                              NULL, error);
        mongoc_collection_destroy(members);
    }

    bson_destroy(&filter);

    return n;
}


/*
 * After an admin left: when no admin is left among the members, the
 * longest-standing member becomes one (*promoted, else unchanged).  Every
 * leaver checks after its own delete, so the last of several admins
 * leaving at once sees none left.
 */

static ngx_int_t
ngx_http_chat_group_keep_admin(mongoc_database_t *db, const bson_oid_t *chat,
    bson_oid_t *promoted, ngx_uint_t *done, bson_error_t *error)
{
    bson_t       filter, sort, doc;
    int64_t      n;
    ngx_int_t    rc;
    bson_iter_t  it;

    *done = 0;

    n = ngx_http_chat_group_count_admins(db, chat, NULL, error);

    if (n != 0) {
        return n < 0 ? NGX_ERROR : NGX_OK;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);
    bson_init(&sort);
    BSON_APPEND_INT32(&sort, "joinedAt", 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "members", &filter, &sort, &doc,
                                      error);
    bson_destroy(&sort);
    bson_destroy(&filter);

    if (rc == NGX_OK && bson_iter_init_find(&it, &doc, "userId")
        && BSON_ITER_HOLDS_OID(&it))
    {
        /* nobody left: the group stays, inert */
        bson_oid_copy(bson_iter_oid(&it), promoted);
        rc = ngx_http_chat_group_set_admin(db, chat, promoted, 1, error);
        *done = (rc == NGX_OK);
    }

    bson_destroy(&doc);

    return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


/* upserts one field of a group's info; value NULL removes it */

static ngx_int_t
ngx_http_chat_group_info_set(mongoc_database_t *db,
    ngx_http_chat_group_arg_t *a, const char *field, json_t *value,
    int64_t now, bson_error_t *error)
{
    char                  key[NGX_HTTP_CHAT_KEY_LEN + 1];
    bson_t                filter, update, set, opts;
    ngx_int_t             rc;
    mongoc_collection_t  *coll;

    ngx_http_chat_chats_key(key, &a->chat, NULL, field);

    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "_id", key);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_OID(&set, "chatId", &a->chat);
    BSON_APPEND_UTF8(&set, "key", field);

    if (json_is_string(value)) {
        BSON_APPEND_UTF8(&set, "value", json_string_value(value));

    } else if (json_is_boolean(value)) {
        BSON_APPEND_BOOL(&set, "value", json_is_true(value));

    } else {
        BSON_APPEND_NULL(&set, "value");
    }

    BSON_APPEND_OID(&set, "updatedBy", &a->user);
    BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
    bson_append_document_end(&update, &set);

    bson_init(&opts);
    BSON_APPEND_BOOL(&opts, "upsert", true);

    coll = mongoc_database_get_collection(db, "groupinfo");

    rc = mongoc_collection_update_one(coll, &filter, &update, &opts, NULL,
                                      error)
         ? NGX_OK : NGX_ERROR;

    /* two first edits of one field at once: the other one inserted it */
    if (rc == NGX_ERROR && ngx_http_chat_chats_is_dup(error, NULL)) {
        rc = mongoc_collection_update_one(coll, &filter, &update, NULL, NULL,
                                          error)
             ? NGX_OK : NGX_ERROR;
    }

    mongoc_collection_destroy(coll);
    bson_destroy(&opts);
    bson_destroy(&update);
    bson_destroy(&filter);

    return rc;
}


/* {action, actorId, userIds?}: the content of a system message */

static json_t *
ngx_http_chat_group_system(const char *action, const bson_oid_t *actor,
    const bson_oid_t *user)
{
    json_t  *s;

    s = json_pack("{s:s,s:o}", "action", action,
                  "actorId", ngx_http_chat_chats_oid_json(actor));

    if (s && user) {
        json_object_set_new(s, "userIds",
                            json_pack("[o]",
                                      ngx_http_chat_chats_oid_json(user)));
    }

    return s;
}


/*
 * Takes out of changes the fields that hold that value already (a field
 * not set is null, a permission not set false)
 */

static ngx_int_t
ngx_http_chat_group_unchanged(mongoc_database_t *db, const bson_oid_t *chat,
    json_t *changes, bson_error_t *error)
{
    json_t       *info, *v, *now;
    bson_t        filter, doc;
    ngx_int_t     rc;
    bson_iter_t   it;
    const char   *key;
    void         *tmp;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", chat);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "chats", &filter, NULL, &doc,
                                      error);
    bson_destroy(&filter);

    info = (rc == NGX_OK) ? json_object() : NULL;

    if (info == NULL) {
        bson_destroy(&doc);

        if (rc != NGX_ERROR) {
            bson_set_error(error, 0, 0, rc == NGX_OK ? "out of memory"
                                                     : "the chat vanished");
        }

        return NGX_ERROR;
    }

    /* as created, then as edited since */
    if (bson_iter_init(&it, &doc)) {
        while (bson_iter_next(&it)) {
            key = bson_iter_key(&it);

            if (BSON_ITER_HOLDS_UTF8(&it) && json_object_get(changes, key)) {
                json_object_set_new(info, key,
                                    json_string(bson_iter_utf8(&it, NULL)));
            }
        }
    }

    bson_destroy(&doc);

    if (ngx_http_chat_group_info_json(db, chat, info, error) != NGX_OK) {
        json_decref(info);
        return NGX_ERROR;
    }

    json_object_foreach_safe(changes, tmp, key, v) {
        now = json_object_get(info, key);

        if (json_equal(v, now ? now : json_null())) {
            json_object_del(changes, key);
        }
    }

    json_decref(info);

    return NGX_OK;
}


/* PUT /api/chats/:id: the fields asked, as they were checked */

static ngx_int_t
ngx_http_chat_group_update(mongoc_database_t *db,
    ngx_http_chat_group_arg_t *a, ngx_uint_t admin, json_t **system,
    json_t **why, bson_error_t *error)
{
    json_t      *changes, *v;
    int64_t      now;
    ngx_int_t    rc;
    const char  *key;

    if ((a->set_only_send || a->set_only_edit) && !admin) {
        *why = ngx_http_chat_group_error("not_admin",
                                         "only admins can change who may "
                                         "send and edit");
        return NGX_BUSY;
    }

    if (a->set_name || a->set_description || a->set_avatar) {
        rc = admin ? NGX_DECLINED
                   : ngx_http_chat_group_flag(db, &a->chat,
                                              "onlyAdminsCanEditInfo", error);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            *why = ngx_http_chat_group_error("only_admins_can_edit_info",
                                             "only admins can edit this "
                                             "group's info");
            return NGX_BUSY;
        }
    }

    if (a->set_avatar && a->avatar[0]) {
        rc = ngx_http_chat_group_own_media(db, &a->user, a->avatar, why,
                                           error);
        if (rc != NGX_OK) {
            return rc == NGX_DECLINED ? NGX_ABORT : NGX_ERROR;
        }
    }

    changes = json_object();
    if (changes == NULL) {
        return NGX_ERROR;
    }

    if (a->set_name) {
        json_object_set_new(changes, "name", json_string(a->name));
    }

    if (a->set_description) {
        json_object_set_new(changes, "description",
                            a->description[0] ? json_string(a->description)
                                              : json_null());
    }

    if (a->set_avatar) {
        json_object_set_new(changes, "avatar",
                            a->avatar[0] ? json_string(a->avatar)
                                         : json_null());
    }

    if (a->set_only_send) {
        json_object_set_new(changes, "onlyAdminsCanSend",
                            json_boolean(a->only_send));
    }

    if (a->set_only_edit) {
        json_object_set_new(changes, "onlyAdminsCanEditInfo",
                            json_boolean(a->only_edit));
    }

    /* what is set already is no change: no write, message or event */
    if (ngx_http_chat_group_unchanged(db, &a->chat, changes, error)
        != NGX_OK)
    {
        json_decref(changes);
        return NGX_ERROR;
    }

    if (json_object_size(changes) == 0) {
        json_decref(changes);
        return NGX_OK;
    }

    now = ngx_http_chat_chats_now();

    json_object_foreach(changes, key, v) {
        if (ngx_http_chat_group_info_set(db, a, key, v, now, error)
            != NGX_OK)
        {
            json_decref(changes);
            return NGX_ERROR;
        }
    }

    *system = ngx_http_chat_group_system("group_updated", &a->user, NULL);

    if (*system == NULL) {
        json_decref(changes);
        return NGX_ERROR;
    }

    /* json_object_set_new() takes changes, also when it fails */
    if (json_object_set_new(*system, "changes", changes) != 0) {
        json_decref(*system);
        *system = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* POST /api/chats/:id/members: the ids after the argument */

static ngx_int_t
ngx_http_chat_group_add(mongoc_database_t *db, ngx_http_chat_group_arg_t *a,
    json_t **system, json_t **why, bson_error_t *error)
{
    json_t               *unknown, *added;
    bson_t                filter;
    int64_t               count, floor, now;
    ngx_int_t             rc;
    ngx_uint_t            i, n;
    bson_oid_t           *ids, *fresh;
    mongoc_collection_t  *members;

    ids = (bson_oid_t *) (a + 1);

    rc = ngx_http_chat_group_unknown_users(db, ids, a->nusers, &unknown,
                                           error);
    if (rc == NGX_ABORT) {
        *why = ngx_http_chat_group_error("invalid_value",
                                         "a value does not refer to what "
                                         "it must");
        if (*why == NULL) {
            json_decref(unknown);
            return NGX_ERROR;
        }

        json_object_set_new(*why, "details",
                            json_pack("{s:s,s:o}", "field", "userIds",
                                      "unknown", unknown));
        return NGX_ABORT;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    /* who is not in yet: those are moved to the front */
    fresh = ids;
    n = 0;

    for (i = 0; i < a->nusers; i++) {
        rc = ngx_http_chat_chats_is_member(db, &a->chat, &ids[i], error);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            fresh[n++] = ids[i];
        }
    }

    if (n == 0) {
        return NGX_OK;
    }

    rc = ngx_http_chat_group_check_adds(db, &a->user, fresh, n, why, error);
    if (rc != NGX_OK) {
        return rc;
    }

    members = mongoc_database_get_collection(db, "members");

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &a->chat);
    count = mongoc_collection_count_documents(members, &filter, NULL, NULL,
                                              NULL, error);
    bson_destroy(&filter);

    if (count < 0
        || ngx_http_chat_msg_floor(db, &a->chat, &floor, error) != NGX_OK)
    {
        mongoc_collection_destroy(members);
        return NGX_ERROR;
    }

    if ((ngx_uint_t) count + n > a->max_size) {
        mongoc_collection_destroy(members);

        *why = ngx_http_chat_group_error("group_too_large",
                                         "the group would have too many "
                                         "members");
        if (*why == NULL) {
            return NGX_ERROR;
        }

        json_object_set_new(*why, "details",
                            json_pack("{s:s,s:I}", "field", "userIds",
                                      "max", (json_int_t) a->max_size));
        return NGX_ABORT;
    }

    /* new members start read up to now: the history is theirs to page */
    now = ngx_http_chat_chats_now();
    added = json_array();
    rc = added ? NGX_OK : NGX_ERROR;

    for (i = 0; rc == NGX_OK && i < n; i++) {
        rc = ngx_http_chat_chats_add_member(db, members, &a->chat, &fresh[i],
                                            NULL, now, floor, error);

        if (rc == NGX_OK
            && json_array_append_new(added,
                                     ngx_http_chat_chats_oid_json(&fresh[i]))
               != 0)
        {
            rc = NGX_ERROR;
        }
    }

    mongoc_collection_destroy(members);

    if (rc == NGX_OK) {
        *system = ngx_http_chat_group_system("member_added", &a->user, NULL);

        if (*system == NULL
            || json_object_set(*system, "userIds", added) != 0)
        {
            rc = NGX_ERROR;
        }
    }

    json_decref(added);

    return rc;
}


void
ngx_http_chat_group_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_group_arg_t *a = t->arg;

    json_t      *system, *why, *answer, *content;
    bson_t       filter, chat;
    int64_t      n;
    ngx_int_t    rc;
    ngx_uint_t   admin, target_admin, done;
    bson_oid_t   promoted;

    system = NULL;
    why = NULL;

    rc = ngx_http_chat_chats_is_member(db, &a->chat, &a->user, &t->error);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    if (a->op == NGX_HTTP_CHAT_GROUP_GET) {
        ngx_http_chat_chats_answer(t, NGX_DONE,
                                   ngx_http_chat_chat_answer(db, &a->chat,
                                                             &a->user,
                                                             &t->error));
        return;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->chat);
    BSON_APPEND_UTF8(&filter, "type", "group");
    bson_init(&chat);

    rc = ngx_http_chat_mongo_find_one(db, "chats", &filter, NULL, &chat,
                                      &t->error);
    bson_destroy(&chat);
    bson_destroy(&filter);

    if (rc == NGX_DECLINED) {
        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   ngx_http_chat_group_error("not_a_group",
                                          "this is a private chat, not a "
                                          "group"));
        return;
    }

    if (rc == NGX_OK) {
        rc = ngx_http_chat_group_is_admin(db, &a->chat, &a->user, &t->error);
    }

    if (rc == NGX_ERROR) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    admin = (rc == NGX_OK);

    if (!admin
        && (a->op == NGX_HTTP_CHAT_GROUP_ADD
            || a->op == NGX_HTTP_CHAT_GROUP_REMOVE
            || a->op == NGX_HTTP_CHAT_GROUP_ROLE))
    {
        ngx_http_chat_chats_answer(t, NGX_BUSY,
                                   ngx_http_chat_group_error("not_admin",
                                          "only admins can manage the "
                                          "members"));
        return;
    }

    if (a->op == NGX_HTTP_CHAT_GROUP_REMOVE
        || a->op == NGX_HTTP_CHAT_GROUP_ROLE)
    {
        rc = ngx_http_chat_chats_is_member(db, &a->chat, &a->target,
                                           &t->error);
        if (rc == NGX_OK) {
            rc = ngx_http_chat_group_is_admin(db, &a->chat, &a->target,
                                              &t->error);
            target_admin = (rc == NGX_OK);
            rc = (rc == NGX_ERROR) ? NGX_ERROR : NGX_OK;
        }

        if (rc != NGX_OK) {
            ngx_http_chat_chats_answer(t, rc, NULL);
            return;
        }

    } else {
        target_admin = 0;
    }

    switch (a->op) {

    case NGX_HTTP_CHAT_GROUP_UPDATE:
        rc = ngx_http_chat_group_update(db, a, admin, &system, &why,
                                        &t->error);
        break;

    case NGX_HTTP_CHAT_GROUP_ADD:
        rc = ngx_http_chat_group_add(db, a, &system, &why, &t->error);
        break;

    case NGX_HTTP_CHAT_GROUP_REMOVE:
        if (bson_oid_equal(&a->target, &a->user)) {
            why = ngx_http_chat_group_error("use_leave",
                                            "to remove yourself, leave the "
                                            "group");
            rc = NGX_ABORT;
            break;
        }

        rc = ngx_http_chat_group_drop(db, &a->chat, &a->target, &t->error);

        if (rc == NGX_OK) {
            system = ngx_http_chat_group_system("member_removed", &a->user,
                                                &a->target);
            rc = system ? NGX_OK : NGX_ERROR;
        }

        break;

    case NGX_HTTP_CHAT_GROUP_ROLE:
        if (a->admin == target_admin) {
            rc = NGX_OK;
            break;
        }

        if (!a->admin) {
            /* a group keeps an admin */
            n = ngx_http_chat_group_count_admins(db, &a->chat, &a->target,
                                                 &t->error);
            if (n < 0) {
                rc = NGX_ERROR;
                break;
            }

            if (n == 0) {
                why = ngx_http_chat_group_error("last_admin",
                                                "the group needs another "
                                                "admin first");
                rc = NGX_ABORT;
                break;
            }
        }

        rc = ngx_http_chat_group_set_admin(db, &a->chat, &a->target,
                                           a->admin, &t->error);

        if (rc == NGX_OK) {
            system = ngx_http_chat_group_system(a->admin ? "admin_promoted"
                                                         : "admin_demoted",
                                                &a->user, &a->target);
            rc = system ? NGX_OK : NGX_ERROR;
        }

        break;

    default: /* NGX_HTTP_CHAT_GROUP_LEAVE */

        rc = ngx_http_chat_group_drop(db, &a->chat, &a->user, &t->error);
        done = 0;

        if (rc == NGX_OK && admin) {
            rc = ngx_http_chat_group_keep_admin(db, &a->chat, &promoted,
                                                &done, &t->error);
        }

        if (rc == NGX_OK) {
            system = ngx_http_chat_group_system("member_left", &a->user,
                                                &a->user);

            if (system && done) {
                json_object_set_new(system, "promotedIds",
                                json_pack("[o]",
                                    ngx_http_chat_chats_oid_json(&promoted)));
            }

            rc = system ? NGX_OK : NGX_ERROR;
        }

        if (rc == NGX_OK) {
            answer = json_pack("{s:b}", "success", 1);

            if (answer
                && (ngx_http_chat_group_events(db, a, answer, system,
                                               &t->error)
                    != NGX_OK
                    || json_object_set(answer, "system", system) != 0))
            {
                json_decref(answer);
                answer = NULL;
            }

            json_decref(system);
            ngx_http_chat_chats_answer(t, NGX_DONE, answer);
            return;
        }

        break;
    }

    if (rc != NGX_OK) {
        json_decref(system);

        if (rc == NGX_ERROR) {
            json_decref(why);
            why = NULL;
        }

        ngx_http_chat_chats_answer(t, rc, why);
        return;
    }

    answer = ngx_http_chat_chat_answer(db, &a->chat, &a->user, &t->error);

    if (answer && system) {
        if (ngx_http_chat_group_events(db, a, answer, system, &t->error)
            != NGX_OK)
        {
            json_decref(answer);
            answer = NULL;
        }
    }

    if (answer && system) {
        content = system;
        system = NULL;

        if (json_object_set_new(answer, "system", content) != 0) {
            json_decref(answer);
            answer = NULL;
        }
    }

    json_decref(system);
    ngx_http_chat_chats_answer(t, NGX_DONE, answer);
}


/*
 * What a change that was made (its system message) causes, from what it
 * made: the chat to those added (chat_created, their sockets join it), to
 * the one removed or who left (chat_removed, theirs leave it), or to all
 * members (chat_updated), each time as every member sees it
 */

static ngx_int_t
ngx_http_chat_group_events(mongoc_database_t *db,
    ngx_http_chat_group_arg_t *a, json_t *answer, json_t *system,
    bson_error_t *error)
{
    size_t       i;
    json_t      *shared, *v;
    ngx_int_t    rc;
    bson_oid_t   oid;

    shared = ngx_http_chat_chat_shared(db, &a->chat, error);
    if (shared == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_OK;

    switch (a->op) {

    case NGX_HTTP_CHAT_GROUP_ADD:

        /* those added as stored: not the ids asked, some already in */
        json_array_foreach(json_object_get(system, "userIds"), i, v) {
            if (!json_is_string(v)
                || !bson_oid_is_valid(json_string_value(v),
                                      json_string_length(v)))
            {
                continue;
            }

            bson_oid_init_from_string(&oid, json_string_value(v));

            rc = ngx_http_chat_chat_event(answer, "chat_created", &a->chat,
                                          &oid, &a->user, shared);
            if (rc != NGX_OK) {
                break;
            }
        }

        break;

    case NGX_HTTP_CHAT_GROUP_REMOVE:
        rc = ngx_http_chat_chat_event(answer, "chat_removed", &a->chat,
                                      &a->target, &a->user, shared);
        break;

    case NGX_HTTP_CHAT_GROUP_LEAVE:
        rc = ngx_http_chat_chat_event(answer, "chat_removed", &a->chat,
                                      &a->user, &a->user, shared);
        break;

    default: /* UPDATE, ROLE */
        rc = ngx_http_chat_chat_event(answer, "chat_updated", &a->chat, NULL,
                                      &a->user, shared);
        break;
    }

    json_decref(shared);

    if (rc != NGX_OK && error->message[0] == '\0') {
        bson_set_error(error, 0, 0, "out of memory");
    }

    return rc;
}
