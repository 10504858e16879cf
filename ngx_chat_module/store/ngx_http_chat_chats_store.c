/*
 * Copyright (C) ngx_chat_module authors
 *
 * Chats and memberships in MongoDB, run in the thread pool.
 * FerretDB loses concurrent updates of one document, so shared state is
 * never read-modified-written: a private chat is claimed by an insert
 * under the unique pairKey, a membership is one document, and a message
 * is one insert under the unique (chatId, seq) and (senderId, tempId)
 * indexes.  Unread counts and previews are read from the messages
 * themselves; the chat's updatedAt is kept current on a best-effort basis.
 */


#include "ngx_http_chat_chats_store_int.h"
#include "ngx_http_chat_list_facts.h"


static json_t *ngx_http_chat_chat_find_json(mongoc_database_t *db,
    const bson_oid_t *id, const bson_oid_t *user, bson_error_t *error);


/* a membership: NGX_OK with the document in out, NGX_DECLINED, NGX_ERROR */

ngx_int_t
ngx_http_chat_chats_member(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, bson_t *out, bson_error_t *error)
{
    bson_t     filter;
    ngx_int_t  rc;

    bson_init(&filter);
    ngx_http_chat_chats_member_id(&filter, chat, user);

    rc = ngx_http_chat_mongo_find_one(db, "members", &filter, NULL, out,
                                      error);
    bson_destroy(&filter);

    return rc;
}


/* NGX_OK when user is a member of chat, NGX_DECLINED, NGX_ERROR */

ngx_int_t
ngx_http_chat_chats_is_member(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user, bson_error_t *error)
{
    bson_t     doc;
    ngx_int_t  rc;

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, chat, user, &doc, error);
    bson_destroy(&doc);

    return rc;
}


/*
 * Inserts a membership, its markers at seq; one that exists already is
 * fine.  Roles are not in it: admins are documents of their own.  It
 * says the chat's type, and in a private chat who the other is (peer), so
 * that a send reads no more than the membership to know whom to check.
 */

ngx_int_t
ngx_http_chat_chats_add_member(mongoc_database_t *db,
    mongoc_collection_t *members, const bson_oid_t *chat,
    const bson_oid_t *user, const bson_oid_t *peer, int64_t now, int64_t seq,
    bson_error_t *error)
{
    bson_t     doc;
    ngx_int_t  rc;

    bson_init(&doc);
    ngx_http_chat_chats_member_id(&doc, chat, user);
    BSON_APPEND_OID(&doc, "chatId", chat);
    BSON_APPEND_OID(&doc, "userId", user);
    BSON_APPEND_UTF8(&doc, "type", peer ? "private" : "group");

    if (peer) {
        BSON_APPEND_OID(&doc, "peerId", peer);
    }

    BSON_APPEND_DATE_TIME(&doc, "joinedAt", now);
    BSON_APPEND_INT64(&doc, "readSeq", seq);
    BSON_APPEND_INT64(&doc, "deliveredSeq", seq);

    rc = NGX_OK;

    if (mongoc_collection_insert_one(members, &doc, NULL, NULL, error)) {
        /* a new member: the chat list's facts of theirs start here */
        ngx_http_chat_list_facts_mark(db, chat, user);

    } else if (!ngx_http_chat_chats_is_dup(error, NULL)) {
        rc = NGX_ERROR;
    }

    bson_destroy(&doc);

    return rc;
}


/* {muted, mutedUntil?, archived, pinned} of a membership */

json_t *
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


/* user is among the admins (an array of ids, or NULL) */

static ngx_uint_t
ngx_http_chat_chat_is_admin(json_t *admins, const bson_oid_t *user)
{
    char     id[25];
    size_t   i;
    json_t  *v;

    bson_oid_to_string(user, id);

    json_array_foreach(admins, i, v) {
        if (ngx_strcmp(json_string_value(v), id) == 0) {
            return 1;
        }
    }

    return 0;
}


/* a chat document's own fields as the API shows them */

json_t *
ngx_http_chat_chat_base_json(const bson_t *chat, const bson_oid_t *chat_id)
{
    json_t       *c;
    const char   *key;
    bson_iter_t   it;

    c = json_object();
    if (c == NULL || !bson_iter_init(&it, chat)) {
        json_decref(c);
        return NULL;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (ngx_strcmp(key, "_id") == 0) {
            json_object_set_new(c, "id",
                                ngx_http_chat_chats_oid_json(chat_id));

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

    return c;
}


/*
 * A chat as the API shows it to user: its fields, my role, the members'
 * count and up to member_limit of their ids (0: all), the last message
 * and my unread count (messages of others after my readSeq), as how says
 * (ngx_http_chat_chats_store_int.h: EXACT without the count, BARE with
 * neither, whose readers take them from the chat list's model).  With user
 * NULL, the chat as every member sees it (what an event to many carries):
 * no role, settings or unread count, and the last message whoever hid it.
 */

json_t *
ngx_http_chat_chat_json(mongoc_database_t *db, const bson_t *chat,
    const bson_oid_t *user, ngx_uint_t member_limit, ngx_uint_t how,
    bson_error_t *error)
{
    json_t               *c, *ids, *last, *admins, *items;
    int64_t               count, read_seq;
    bson_t                filter, opts, sort, me, msg;
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

    c = ngx_http_chat_chat_base_json(chat, &chat_id);
    if (c == NULL) {
        return NULL;
    }

    /* a group's info edited since, its permissions and admins */
    admins = NULL;

    if (ngx_http_chat_msg_is(chat, "type", "group")) {
        admins = ngx_http_chat_group_admins(db, &chat_id, error);

        if (admins == NULL
            || ngx_http_chat_group_info_json(db, &chat_id, c, error)
               != NGX_OK)
        {
            json_decref(admins);
            json_decref(c);
            return NULL;
        }

        json_object_set(c, "admins", admins);
    }

    /* my membership */
    bson_init(&me);
    rc = user ? ngx_http_chat_chats_member(db, &chat_id, user, &me, error)
              : NGX_DECLINED;

    if (rc == NGX_ERROR) {
        bson_destroy(&me);
        json_decref(admins);
        json_decref(c);
        return NULL;
    }

    read_seq = 0;

    if (rc == NGX_OK) {
        read_seq = ngx_http_chat_chats_int(&me, "readSeq");

        json_object_set_new(c, "settings",
                            ngx_http_chat_chat_settings_json(&me,
                                              ngx_http_chat_chats_now()));

        json_object_set_new(c, "role",
                            json_string(ngx_http_chat_chat_is_admin(admins,
                                                                    user)
                                        ? "admin" : "member"));
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
    items = member_limit ? NULL : json_array();
    cursor = NULL;

    if (count >= 0 && ids && (member_limit || items)) {
        cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);

        while (mongoc_cursor_next(cursor, &doc)) {
            if (!bson_iter_init_find(&it, doc, "userId")
                || !BSON_ITER_HOLDS_OID(&it))
            {
                continue;
            }

            json_array_append_new(ids,
                            ngx_http_chat_chats_oid_json(bson_iter_oid(&it)));

            if (items) {
                /* the whole list: each with their role */
                json_array_append_new(items,
                    json_pack("{s:o,s:s,s:o}",
                              "userId",
                              ngx_http_chat_chats_oid_json(bson_iter_oid(&it)),
                              "role",
                              ngx_http_chat_chat_is_admin(admins,
                                                          bson_iter_oid(&it))
                              ? "admin" : "member",
                              "joinedAt",
                              ngx_http_chat_json_time(
                                  ngx_http_chat_msg_time(doc, "joinedAt"))));
            }
        }
    }

    bson_destroy(&opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    json_decref(admins);

    if (count < 0 || ids == NULL || (member_limit == 0 && items == NULL)
        || (cursor && mongoc_cursor_error(cursor, error)))
    {
        if (cursor) {
            mongoc_cursor_destroy(cursor);
        }

        json_decref(ids);
        json_decref(items);
        json_decref(c);
        return NULL;
    }

    mongoc_cursor_destroy(cursor);

    json_object_set_new(c, "members", json_pack("{s:I,s:o}", "count",
                                                 (json_int_t) count,
                                                 "ids", ids));

    if (items) {
        json_object_set_new(json_object_get(c, "members"), "items", items);
    }

    if (how == NGX_HTTP_CHAT_CHAT_BARE) {
        /* no read of the messages: the read model tells both */
        return c;
    }

    /* the last message, but not one I deleted for me */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &chat_id);

    if (user
        && ngx_http_chat_msg_hidden_nin(db, &chat_id, user, &filter, error)
           != NGX_OK)
    {
        bson_destroy(&filter);
        json_decref(c);
        return NULL;
    }

    /* near the chat's lastSeq by the (chatId, seq) index, else by scan */
    bson_init(&msg);
    rc = ngx_http_chat_msg_last(db, &filter,
                                ngx_http_chat_chats_int(chat, "lastSeq"),
                                &msg, error);

    if (rc == NGX_ERROR) {
        bson_destroy(&msg);
        bson_destroy(&filter);
        json_decref(c);
        return NULL;
    }

    if (rc == NGX_OK) {
        last = ngx_http_chat_msg_json(&msg, 0);
        json_object_set_new(c, "lastMessage", last ? last : json_null());
    }

    bson_destroy(&msg);
    bson_destroy(&filter);

    /* the unread and the mentions, exactly, as the chat list counts */
    if (user && how == NGX_HTTP_CHAT_CHAT_COUNTED
        && ngx_http_chat_chat_counts(db, chat, &chat_id, user, read_seq, c,
                                     error)
           != NGX_OK)
    {
        json_decref(c);
        return NULL;
    }

    return c;
}


/* {"chat": {...}} of chat id for user */

json_t *
ngx_http_chat_chat_answer(mongoc_database_t *db, const bson_oid_t *id,
    const bson_oid_t *user, bson_error_t *error)
{
    json_t  *c;

    c = ngx_http_chat_chat_find_json(db, id, user, error);

    if (c == NULL) {
        return NULL;
    }

    return json_pack("{s:o}", "chat", c);
}


json_t *
ngx_http_chat_chat_shared(mongoc_database_t *db, const bson_oid_t *id,
    bson_error_t *error)
{
    return ngx_http_chat_chat_find_json(db, id, NULL, error);
}


ngx_int_t
ngx_http_chat_chat_event(json_t *answer, const char *event,
    const bson_oid_t *chat, const bson_oid_t *user, const bson_oid_t *actor,
    json_t *shared)
{
    json_t  *data;
    u_char   flag;

    if (ngx_strcmp(event, "chat_created") == 0) {
        data = json_pack("{s:O}", "chat", shared);
        flag = 'j';

    } else {
        data = json_pack("{s:o,s:O}",
                         "chatId", ngx_http_chat_chats_oid_json(chat),
                         "chat", shared);
        flag = 'l';
    }

    if (user == NULL) {
        /* changed for all: on the chat's channel */
        return ngx_http_chat_chats_event(answer, "chat:", chat, '-', actor,
                                         NULL, event, data);
    }

    return ngx_http_chat_chats_event(answer, "user:", user, flag, actor, chat,
                                     event, data);
}


/* chat id as user sees it (NULL: as every member does), all members */

static json_t *
ngx_http_chat_chat_find_json(mongoc_database_t *db, const bson_oid_t *id,
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

    c = ngx_http_chat_chat_json(db, &doc, user, 0, NGX_HTTP_CHAT_CHAT_COUNTED,
                                error);
    bson_destroy(&doc);

    return c;
}


/* POST /api/chats/private: find or create the pair's chat */

/* NGX_OK when one of the two blocked the other, NGX_DECLINED if not */
ngx_int_t
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
ngx_int_t
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
    json_t               *answer, *shared;
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
        ngx_http_chat_list_facts_mark(db, &chat, NULL);

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
    if (ngx_http_chat_chats_add_member(db, members, &chat, &a->user, &a->other,
                                       now, 0, &t->error)
        != NGX_OK
        || ngx_http_chat_chats_add_member(db, members, &chat, &a->other,
                                          &a->user, now, 0, &t->error)
           != NGX_OK)
    {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        goto done;
    }

    answer = ngx_http_chat_chat_answer(db, &chat, &a->user, &t->error);

    /* made now (not found): both learn of it, their sockets join it */
    if (answer && created) {
        shared = ngx_http_chat_chat_shared(db, &chat, &t->error);

        if (shared == NULL
            || ngx_http_chat_chat_event(answer, "chat_created", &chat,
                                        &a->user, &a->user, shared)
               != NGX_OK
            || ngx_http_chat_chat_event(answer, "chat_created", &chat,
                                        &a->other, &a->user, shared)
               != NGX_OK)
        {
            json_decref(answer);
            answer = NULL;
        }

        json_decref(shared);
    }

    ngx_http_chat_chats_answer(t, created ? NGX_OK : NGX_DONE, answer);
    goto done;

failed:

    bson_destroy(&doc);
    ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);

done:

    mongoc_collection_destroy(chats);
    mongoc_collection_destroy(members);
}


/*
 * POST /api/chats/group: the members must exist and let the creator add
 * them (blocks, privacy); the creator is admin
 */

void
ngx_http_chat_chat_group_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_chats_arg_t *a = t->arg;

    json_t               *unknown, *why, *answer, *shared;
    bson_t                doc;
    int64_t               now;
    ngx_int_t             rc;
    ngx_uint_t            i;
    bson_oid_t           *ids;
    mongoc_collection_t  *chats, *members;

    ids = (bson_oid_t *) (a + 1);

    /* unknown ids are named back */
    rc = ngx_http_chat_group_unknown_users(db, ids, a->nmembers, &unknown,
                                           &t->error);
    if (rc == NGX_ABORT) {
        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   json_pack("{s:s,s:o}", "field",
                                             "memberIds", "unknown",
                                             unknown));
        return;
    }

    why = NULL;

    if (rc == NGX_OK) {
        rc = ngx_http_chat_group_check_adds(db, &a->user, ids, a->nmembers,
                                            &why, &t->error);
    }

    /* the avatar by media id: the creator's own upload, as on an update */
    if (rc == NGX_OK && a->has_avatar) {
        rc = ngx_http_chat_group_own_media(db, &a->user, a->avatar, &why,
                                           &t->error);
        if (rc == NGX_DECLINED) {
            rc = json_object_set_new(why, "status",
                                     json_integer(422)) == 0
                 ? NGX_BUSY : NGX_ERROR;
        }
    }

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, why);
        return;
    }

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
    ngx_http_chat_list_facts_mark(db, &a->chat, NULL);

    if (ngx_http_chat_group_set_admin(db, &a->chat, &a->user, 1, &t->error)
        != NGX_OK
        || ngx_http_chat_chats_add_member(db, members, &a->chat, &a->user, NULL,
                                          now, 0, &t->error)
           != NGX_OK)
    {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        goto done;
    }

    for (i = 0; i < a->nmembers; i++) {
        if (ngx_http_chat_chats_add_member(db, members, &a->chat, &ids[i], NULL,
                                           now, 0, &t->error)
            != NGX_OK)
        {
            ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
            goto done;
        }
    }

    answer = ngx_http_chat_chat_answer(db, &a->chat, &a->user, &t->error);
    shared = answer ? ngx_http_chat_chat_shared(db, &a->chat, &t->error)
                    : NULL;

    /* every member learns of it, the creator too: their sockets join it */
    rc = shared ? ngx_http_chat_chat_event(answer, "chat_created", &a->chat,
                                           &a->user, &a->user, shared)
                : NGX_ERROR;

    for (i = 0; rc == NGX_OK && i < a->nmembers; i++) {
        rc = ngx_http_chat_chat_event(answer, "chat_created", &a->chat,
                                      &ids[i], &a->user, shared);
    }

    json_decref(shared);

    if (rc != NGX_OK) {
        json_decref(answer);
        answer = NULL;
    }

    ngx_http_chat_chats_answer(t, NGX_OK, answer);

done:

    mongoc_collection_destroy(chats);
    mongoc_collection_destroy(members);
}


/*
 * GET /api/chats/ids: the ids of all my chats and nothing else (what a
 * socket subscribes to), from the userId index of the memberships
 */

void
ngx_http_chat_chat_ids_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_chats_arg_t *a = t->arg;

    char              oid[25];
    json_t           *items, *answer;
    bson_t            opts, proj;
    bson_iter_t       it;
    const bson_t     *doc;
    mongoc_cursor_t  *cursor;

    items = json_array();
    if (items == NULL) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "chatId", 1);
    bson_append_document_end(&opts, &proj);

    cursor = ngx_http_chat_chats_memberships(db, &a->user, &opts);

    while (mongoc_cursor_next(cursor, &doc)) {
        if (bson_iter_init_find(&it, doc, "chatId")
            && BSON_ITER_HOLDS_OID(&it))
        {
            bson_oid_to_string(bson_iter_oid(&it), oid);
            json_array_append_new(items, json_string(oid));
        }
    }

    if (mongoc_cursor_error(cursor, &t->error)) {
        json_decref(items);
        items = NULL;
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);

    if (items == NULL) {
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    answer = json_pack("{s:o}", "items", items);
    ngx_http_chat_chats_answer(t, answer ? NGX_DONE : NGX_ERROR, answer);
}


/* PUT /api/chats/:id/settings: my membership, written by me only */

void
ngx_http_chat_chat_settings_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    json_t     *s, *before, *data;
    bson_t      doc, filter, update, set, unset;
    int64_t     now;
    ngx_int_t   rc;

    /* the settings as they were: an event only when they change */
    now = ngx_http_chat_chats_now();
    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc, &t->error);
    before = (rc == NGX_OK) ? ngx_http_chat_chat_settings_json(&doc, now)
                            : NULL;
    bson_destroy(&doc);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    bson_init(&filter);
    ngx_http_chat_chats_member_id(&filter, &a->chat, &a->user);

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

    rc = ngx_http_chat_chats_update_one(db, "members", &filter, &update,
                                        &t->error);
    bson_destroy(&update);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        json_decref(before);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &a->chat, &a->user, &doc, &t->error);

    s = NULL;

    if (rc == NGX_OK) {
        s = ngx_http_chat_chat_settings_json(&doc, now);
        s = s ? json_pack("{s:o}", "settings", s) : NULL;
    }

    bson_destroy(&doc);

    /* my other devices learn what changed; nothing when nothing did */
    if (s && !json_equal(before, json_object_get(s, "settings"))) {
        data = json_pack("{s:o,s:O}",
                         "chatId", ngx_http_chat_chats_oid_json(&a->chat),
                         "settings", json_object_get(s, "settings"));

        if (ngx_http_chat_chats_event(s, "user:", &a->user, '-', &a->user,
                                      NULL, "chat_settings_updated", data)
            != NGX_OK)
        {
            json_decref(s);
            s = NULL;
            rc = NGX_ERROR;
        }
    }

    json_decref(before);

    ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_DONE : rc, s);
}
