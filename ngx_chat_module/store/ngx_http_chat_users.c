/*
 * Copyright (C) ngx_chat_module authors
 *
 * Users and sessions in MongoDB.  FerretDB loses concurrent updates of one
 * document, so nothing here read-modify-writes shared state: a user is
 * created by an insert guarded by the unique phone index, and sessions are
 * one document each (ngx_http_chat_sessions_store.c rotates their tokens).
 */


#include "ngx_http_chat_users.h"


#define NGX_HTTP_CHAT_DUPLICATE_KEY  11000


const char  *ngx_http_chat_privacy_keys[NGX_HTTP_CHAT_PRIVACY_N] = {
    "lastSeen", "online", "profilePhoto", "about", "readReceipts", "groups",
    "phone"
};


/*
 * MongoDB reports a unique index violation as error 11000; FerretDB 1.24
 * on SQLite does so for inserts, but for updates it passes SQLite's own
 * "UNIQUE constraint failed" up as an internal error.
 */
static ngx_uint_t
ngx_http_chat_is_duplicate(bson_error_t *error)
{
    return error->code == NGX_HTTP_CHAT_DUPLICATE_KEY
           || ngx_strstr(error->message, "UNIQUE constraint failed") != NULL;
}


static int64_t
ngx_http_chat_now_ms(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


static ngx_int_t
ngx_http_chat_doc_oid(const bson_t *doc, const char *key, bson_oid_t *oid)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_OID(&it)) {
        bson_oid_copy(bson_iter_oid(&it), oid);
        return NGX_OK;
    }

    return NGX_ERROR;
}


void
ngx_http_chat_users_login_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_login_arg_t *a = t->arg;

    int64_t               now;
    bson_t                filter, doc, user, session, used;
    ngx_int_t             rc;
    bson_oid_t            uid;
    ngx_uint_t            is_new, tries;
    mongoc_collection_t  *users, *sessions;

    users = mongoc_database_get_collection(db, "users");
    sessions = mongoc_database_get_collection(db, "sessions");
    now = ngx_http_chat_now_ms();

    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "phone", a->phone);

    is_new = 0;
    rc = NGX_ERROR;

    /* find, or insert; a concurrent first sign-in loses the insert race */
    for (tries = 0; tries < 2; tries++) {
        bson_init(&user);
        rc = ngx_http_chat_mongo_find_one(db, "users", &filter, NULL, &user,
                                      &t->error);

        if (rc != NGX_DECLINED) {
            break;
        }

        bson_destroy(&user);

        bson_init(&doc);
        BSON_APPEND_OID(&doc, "_id", &a->user_id);
        BSON_APPEND_UTF8(&doc, "phone", a->phone);
        BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
        BSON_APPEND_DATE_TIME(&doc, "updatedAt", now);

        if (mongoc_collection_insert_one(users, &doc, NULL, NULL, &t->error))
        {
            bson_init(&user);
            bson_copy_to(&doc, &user);
            bson_destroy(&doc);
            is_new = 1;
            rc = NGX_OK;
            break;
        }

        bson_destroy(&doc);

        if (!ngx_http_chat_is_duplicate(&t->error)) {
            rc = NGX_ERROR;
            bson_init(&user);
            break;
        }
    }

    bson_destroy(&filter);

    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            bson_set_error(&t->error, 0, 0, "user vanished after insert");
        }

        bson_destroy(&user);
        t->rc = NGX_ERROR;
        goto done;
    }

    if (ngx_http_chat_doc_oid(&user, "_id", &uid) != NGX_OK) {
        bson_set_error(&t->error, 0, 0, "user without an ObjectId");
        bson_destroy(&user);
        t->rc = NGX_ERROR;
        goto done;
    }

    bson_init(&session);
    BSON_APPEND_OID(&session, "_id", &a->session_id);
    BSON_APPEND_OID(&session, "userId", &uid);
    BSON_APPEND_UTF8(&session, "device", a->device);
    BSON_APPEND_UTF8(&session, "ip", a->ip);
    BSON_APPEND_DATE_TIME(&session, "createdAt", now);
    BSON_APPEND_DATE_TIME(&session, "lastUsedAt", now);
    BSON_APPEND_DATE_TIME(&session, "expiresAt", a->expires_at);
    BSON_APPEND_UTF8(&session, "cur", a->cur);
    BSON_APPEND_ARRAY_BEGIN(&session, "used", &used);
    bson_append_array_end(&session, &used);
    BSON_APPEND_BOOL(&session, "revoked", false);

    if (!mongoc_collection_insert_one(sessions, &session, NULL, NULL,
                                      &t->error))
    {
        bson_destroy(&session);
        bson_destroy(&user);
        t->rc = NGX_ERROR;
        goto done;
    }

    bson_destroy(&session);

    bson_destroy(&t->reply);
    bson_init(&t->reply);
    BSON_APPEND_DOCUMENT(&t->reply, "user", &user);
    BSON_APPEND_BOOL(&t->reply, "isNew", is_new);
    bson_destroy(&user);

    t->rc = NGX_OK;

done:

    mongoc_collection_destroy(users);
    mongoc_collection_destroy(sessions);
}


/* whether a user has a->phone: NGX_OK, or NGX_DECLINED (the sign-up) */
void
ngx_http_chat_users_known_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_login_arg_t *a = t->arg;

    bson_t  filter, user;

    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "phone", a->phone);
    bson_init(&user);
    t->rc = ngx_http_chat_mongo_find_one(db, "users", &filter, NULL, &user,
                                         &t->error);
    bson_destroy(&user);
    bson_destroy(&filter);
}


void
ngx_http_chat_users_update_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_user_arg_t *a = t->arg;

    char                  key[32];
    bson_t                filter, update, set, user;
    ngx_int_t             rc;
    bson_oid_t            media;
    ngx_uint_t            i;
    mongoc_collection_t  *users;

    /* an avatar by media id: an upload of mine, else nothing changes */
    if (a->avatar && a->avatar_media) {
        bson_init(&filter);
        bson_oid_init_from_string(&media, a->avatar_v);
        BSON_APPEND_OID(&filter, "_id", &media);
        BSON_APPEND_OID(&filter, "owner", &a->user_id);
        bson_init(&user);
        rc = ngx_http_chat_mongo_find_one(db, "media", &filter, NULL, &user,
                                          &t->error);
        bson_destroy(&user);
        bson_destroy(&filter);

        if (rc != NGX_OK) {
            t->rc = (rc == NGX_DECLINED) ? NGX_ABORT : NGX_ERROR;
            return;
        }
    }

    users = mongoc_database_get_collection(db, "users");

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->user_id);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);

    if (a->name) {
        BSON_APPEND_UTF8(&set, "name", a->name_v);
        BSON_APPEND_UTF8(&set, "searchName", a->search_name);
    }

    for (i = 0; i < NGX_HTTP_CHAT_PRIVACY_N; i++) {
        if (a->privacy[i][0]) {
            ngx_snprintf((u_char *) key, sizeof(key), "privacy.%s%Z",
                         ngx_http_chat_privacy_keys[i]);
            BSON_APPEND_UTF8(&set, key, a->privacy[i]);
        }
    }

    if (a->searchable >= 0) {
        BSON_APPEND_BOOL(&set, "searchable", a->searchable);
    }

    if (a->push_preview >= 0) {
        BSON_APPEND_BOOL(&set, "notifications.preview", a->push_preview);
    }

    if (a->bio) {
        BSON_APPEND_UTF8(&set, "bio", a->bio_v);
    }

    if (a->avatar) {
        BSON_APPEND_UTF8(&set, "avatar", a->avatar_v);
    }

    if (a->username) {
        BSON_APPEND_UTF8(&set, "username", a->username_v);
        BSON_APPEND_UTF8(&set, "usernameLower", a->username_lower);
    }

    BSON_APPEND_DATE_TIME(&set, "updatedAt", ngx_http_chat_now_ms());
    bson_append_document_end(&update, &set);

    if (!mongoc_collection_update_one(users, &filter, &update, NULL, NULL,
                                      &t->error))
    {
        t->rc = ngx_http_chat_is_duplicate(&t->error) ? NGX_DECLINED
                                                       : NGX_ERROR;
        goto done;
    }

    bson_init(&user);
    rc = ngx_http_chat_mongo_find_one(db, "users", &filter, NULL, &user,
                                      &t->error);

    if (rc == NGX_OK) {
        bson_destroy(&t->reply);
        bson_init(&t->reply);
        BSON_APPEND_DOCUMENT(&t->reply, "user", &user);
    }

    bson_destroy(&user);
    t->rc = (rc == NGX_OK) ? NGX_OK : NGX_ERROR;

done:

    bson_destroy(&update);
    bson_destroy(&filter);
    mongoc_collection_destroy(users);
}


void
ngx_http_chat_sessions_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_user_arg_t *a = t->arg;

    char                  key[16];
    bson_t                filter, opts, sort, items, gt;
    uint32_t              i;
    const char           *k;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *sessions;

    sessions = mongoc_database_get_collection(db, "sessions");

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "userId", &a->user_id);
    BSON_APPEND_BOOL(&filter, "revoked", false);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "expiresAt", &gt);
    BSON_APPEND_DATE_TIME(&gt, "$gt", ngx_http_chat_now_ms());
    bson_append_document_end(&filter, &gt);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "createdAt", -1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", 200);

    cursor = mongoc_collection_find_with_opts(sessions, &filter, &opts, NULL);

    bson_destroy(&t->reply);
    bson_init(&t->reply);
    BSON_APPEND_ARRAY_BEGIN(&t->reply, "items", &items);

    for (i = 0; mongoc_cursor_next(cursor, &doc); i++) {
        bson_uint32_to_string(i, &k, key, sizeof(key));
        BSON_APPEND_DOCUMENT(&items, k, doc);
    }

    bson_append_array_end(&t->reply, &items);

    t->rc = mongoc_cursor_error(cursor, &t->error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(sessions);
}


/* one index per createIndexes command: FerretDB mishandles several */

static const struct {
    const char  *collection;
    const char  *name;
    const char  *field;
    const char  *field2;
    ngx_uint_t   unique;
} ngx_http_chat_indexes[] = {
    { "users", "phone_1", "phone", NULL, 1 },
    { "users", "usernameLower_1", "usernameLower", NULL, 1 },
    /* search by name: an anchored regex is a range of this index */
    { "users", "searchName_1", "searchName", NULL, 0 },
    { "sessions", "userId_1", "userId", NULL, 0 },
    { "contacts", "owner_1_contact_1", "owner", "contact", 1 },
    { "contacts", "contact_1", "contact", NULL, 0 },
    { "blocks", "owner_1_blocked_1", "owner", "blocked", 1 },
    { "blocks", "blocked_1", "blocked", NULL, 0 },
    { "chats", "pairKey_1", "pairKey", NULL, 1 },
    { "members", "chatId_1_userId_1", "chatId", "userId", 1 },
    { "members", "userId_1", "userId", NULL, 0 },
    { "messages", "chatId_1_seq_1", "chatId", "seq", 1 },
    { "messages", "senderId_1_tempId_1", "senderId", "tempId", 1 },
    { "messages", "chatId_1", "chatId", NULL, 0 },
    { "hidden", "messageId_1_userId_1", "messageId", "userId", 1 },
    { "hidden", "userId_1_chatId_1", "userId", "chatId", 0 },
    { "reactions", "messageId_1_userId_1", "messageId", "userId", 1 },
    { "admins", "chatId_1", "chatId", NULL, 0 },
    { "groupinfo", "chatId_1", "chatId", NULL, 0 },
    /* the chat list's facts of a chat or a member (list_facts.h) */
    { "listx", "of_1", "of", NULL, 0 },
    /* the feed: the live stories of a set of authors, by $in */
    { "stories", "authorId_1", "authorId", NULL, 0 },
    /* a story's viewers; a view's _id is "<storyId>:<viewerId>" */
    { "storyviews", "storyId_1", "storyId", NULL, 0 },
    /* the sweeper: expired stories, oldest first */
    { "stories", "expiresAt_1", "expiresAt", NULL, 0 },
    /* a user's highlights; the highlights that hold a story */
    { "highlights", "ownerId_1", "ownerId", NULL, 0 },
    { "highlights", "storyIds_1", "storyIds", NULL, 0 },
    /* a user's calls: the history, and the live ones of a callee */
    { "calls", "members_1", "members", NULL, 0 },
    { "callfeedback", "callId_1", "callId", NULL, 0 },
    /* push: a message's members' devices; a session's device */
    { "devices", "userId_1", "userId", NULL, 0 },
    { "devices", "sessionId_1", "sessionId", NULL, 0 },
    { "devices", "voipToken_1", "voipToken", NULL, 0 },
    { NULL, NULL, NULL, NULL, 0 }
};


static void
ngx_http_chat_indexes_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    bson_t        cmd, indexes, index, key, reply;
    ngx_uint_t    i;
    bson_error_t  error;

    t->rc = NGX_OK;

    for (i = 0; ngx_http_chat_indexes[i].collection; i++) {
        bson_init(&cmd);
        BSON_APPEND_UTF8(&cmd, "createIndexes",
                         ngx_http_chat_indexes[i].collection);
        BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
        BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
        BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);
        BSON_APPEND_INT32(&key, ngx_http_chat_indexes[i].field, 1);

        if (ngx_http_chat_indexes[i].field2) {
            BSON_APPEND_INT32(&key, ngx_http_chat_indexes[i].field2, 1);
        }

        bson_append_document_end(&index, &key);
        BSON_APPEND_UTF8(&index, "name", ngx_http_chat_indexes[i].name);

        if (ngx_http_chat_indexes[i].unique) {
            BSON_APPEND_BOOL(&index, "unique", true);

            /*
             * users without a username must not collide on MongoDB;
             * FerretDB ignores "sparse" but never indexes missing fields
             */
            BSON_APPEND_BOOL(&index, "sparse", true);
        }

        bson_append_document_end(&indexes, &index);
        bson_append_array_end(&cmd, &indexes);

        if (!mongoc_database_write_command_with_opts(db, &cmd, NULL, &reply,
                                                     &error))
        {
            ngx_log_error(NGX_LOG_ERR, t->log, 0,
                          "chat: cannot create index %s.%s: %s",
                          ngx_http_chat_indexes[i].collection,
                          ngx_http_chat_indexes[i].name, error.message);
            t->rc = NGX_ERROR;
        }

        bson_destroy(&reply);
        bson_destroy(&cmd);
    }
}


void
ngx_http_chat_users_ensure_indexes(void)
{
    ngx_http_chat_mongo_task_t  *t;

    t = ngx_http_chat_mongo_task_create(ngx_cycle->log,
                                        ngx_http_chat_indexes_run, NULL,
                                        NULL);
    if (t) {
        (void) ngx_http_chat_mongo_post(t);
    }
}


json_t *
ngx_http_chat_json_time(int64_t ms)
{
    char        buf[32];
    time_t      sec;
    ngx_tm_t    tm;

    sec = (time_t) (ms / 1000);
    ngx_gmtime(sec, &tm);

    ngx_snprintf((u_char *) buf, sizeof(buf),
                 "%4d-%02d-%02dT%02d:%02d:%02d.%03dZ%Z",
                 tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                 tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                 (int) (ms % 1000));

    return json_string(buf);
}


json_t *
ngx_http_chat_user_json(const bson_t *doc)
{
    char          oid[25];
    json_t       *user;
    const char   *key;
    bson_iter_t   it;

    user = json_object();
    if (user == NULL || !bson_iter_init(&it, doc)) {
        return user;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (ngx_strcmp(key, "_id") == 0 && BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_to_string(bson_iter_oid(&it), oid);
            json_object_set_new(user, "id", json_string(oid));

        } else if (BSON_ITER_HOLDS_UTF8(&it)
                   && (ngx_strcmp(key, "phone") == 0
                       || ngx_strcmp(key, "name") == 0
                       || ngx_strcmp(key, "username") == 0
                       || ngx_strcmp(key, "bio") == 0
                       || ngx_strcmp(key, "avatar") == 0))
        {
            json_object_set_new(user, key,
                                json_string(bson_iter_utf8(&it, NULL)));

        } else if (BSON_ITER_HOLDS_DATE_TIME(&it)
                   && (ngx_strcmp(key, "createdAt") == 0
                       || ngx_strcmp(key, "updatedAt") == 0))
        {
            json_object_set_new(user, key,
                            ngx_http_chat_json_time(bson_iter_date_time(&it)));
        }
    }

    return user;
}
