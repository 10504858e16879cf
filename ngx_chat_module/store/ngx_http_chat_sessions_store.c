/*
 * Copyright (C) ngx_chat_module authors
 *
 * The session document is the record of a session: its user, the hash of
 * its live refresh token (cur), the hashes rotated away (used, the newest
 * last, bounded), its idle end (expiresAt) and its revocation.  Redis
 * only caches what the access check needs of it.
 *
 * A rotation is one update conditional on the presented hash being still
 * the live one and the session not revoked: of two refreshes with the
 * same token one matches, the other finds its token among the used ones
 * and revokes the session.  The update sets cur, used and the times only,
 * never "revoked", so that a revocation is never undone by a rotation.
 *
 * A revocation already in the record answers as it did the first time
 * (a removal of the user's own session, a rotated-away token): a retry
 * after a failed cache write must reach the cache step again.
 *
 * That holds on MongoDB.  FerretDB finds the document and writes it back
 * whole in two steps, so two conditional updates may both match, and a
 * rotation may write back a document read before a revocation.  So every
 * write of a session document but its insert (a rotation, a revocation)
 * holds the session's lock: a document in "sessionLocks" under the
 * session's id, inserted (the unique _id makes one holder) and deleted.
 * A lock older than NGX_HTTP_CHAT_SESSION_LOCK_STALE (its holder died) is
 * taken over.
 */


#include "ngx_http_chat_users.h"
#include "ngx_http_chat_devices_store.h"


#define NGX_HTTP_CHAT_SESSION_LOCK_WAIT   5       /* ms between tries */
#define NGX_HTTP_CHAT_SESSION_LOCK_TRIES  400     /* 2 s */
#define NGX_HTTP_CHAT_SESSION_LOCK_STALE  10000   /* ms */


static int64_t
ngx_http_chat_sessions_now(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


static ngx_uint_t
ngx_http_chat_sessions_is_dup(bson_error_t *error)
{
    return error->code == 11000
           || ngx_strstr(error->message, "duplicate key") != NULL
           || ngx_strstr(error->message, "UNIQUE constraint failed") != NULL;
}


/*
 * In a thread: NGX_OK with the session's lock held, NGX_DECLINED when it
 * stayed held by another for all the tries, NGX_ERROR.
 */
static ngx_int_t
ngx_http_chat_sessions_lock(mongoc_database_t *db, const bson_oid_t *sid,
    bson_error_t *error)
{
    bson_t                doc, filter, held;
    int64_t               at;
    ngx_int_t             rc;
    ngx_uint_t            i;
    bson_iter_t           it;
    mongoc_collection_t  *locks;

    locks = mongoc_database_get_collection(db, "sessionLocks");
    rc = NGX_DECLINED;

    for (i = 0; i < NGX_HTTP_CHAT_SESSION_LOCK_TRIES; i++) {
        bson_init(&doc);
        BSON_APPEND_OID(&doc, "_id", sid);
        BSON_APPEND_DATE_TIME(&doc, "at", ngx_http_chat_sessions_now());

        if (mongoc_collection_insert_one(locks, &doc, NULL, NULL, error)) {
            bson_destroy(&doc);
            rc = NGX_OK;
            break;
        }

        bson_destroy(&doc);

        if (!ngx_http_chat_sessions_is_dup(error)) {
            rc = NGX_ERROR;
            break;
        }

        /* held: by a live holder, or by one that died holding it */

        bson_init(&filter);
        BSON_APPEND_OID(&filter, "_id", sid);
        bson_init(&held);

        if (ngx_http_chat_mongo_find_one(db, "sessionLocks", &filter, NULL,
                                         &held, error)
            == NGX_OK
            && bson_iter_init_find(&it, &held, "at")
            && BSON_ITER_HOLDS_DATE_TIME(&it))
        {
            at = bson_iter_date_time(&it);

            if (at + NGX_HTTP_CHAT_SESSION_LOCK_STALE
                < ngx_http_chat_sessions_now())
            {
                BSON_APPEND_DATE_TIME(&filter, "at", at);
                (void) mongoc_collection_delete_one(locks, &filter, NULL,
                                                    NULL, NULL);
                bson_destroy(&held);
                bson_destroy(&filter);
                continue;
            }
        }

        bson_destroy(&held);
        bson_destroy(&filter);

        ngx_msleep(NGX_HTTP_CHAT_SESSION_LOCK_WAIT);
    }

    mongoc_collection_destroy(locks);

    return rc;
}


static void
ngx_http_chat_sessions_unlock(mongoc_database_t *db, const bson_oid_t *sid)
{
    bson_t                filter;
    mongoc_collection_t  *locks;

    locks = mongoc_database_get_collection(db, "sessionLocks");

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", sid);

    /* a lock left behind is taken over once stale */
    (void) mongoc_collection_delete_one(locks, &filter, NULL, NULL, NULL);

    bson_destroy(&filter);
    mongoc_collection_destroy(locks);
}


/* in a thread, the lock held: marks sid revoked; NGX_OK or NGX_ERROR */

static ngx_int_t
ngx_http_chat_sessions_revoke_id(mongoc_collection_t *sessions,
    const bson_oid_t *sid, bson_error_t *error)
{
    bson_t     filter, update, set;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", sid);
    BSON_APPEND_BOOL(&filter, "revoked", false);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_BOOL(&set, "revoked", true);
    BSON_APPEND_DATE_TIME(&set, "revokedAt", ngx_http_chat_sessions_now());
    bson_append_document_end(&update, &set);

    rc = mongoc_collection_update_one(sessions, &filter, &update, NULL, NULL,
                                      error)
         ? NGX_OK : NGX_ERROR;

    bson_destroy(&update);
    bson_destroy(&filter);

    return rc;
}


static void
ngx_http_chat_sessions_status(ngx_http_chat_mongo_task_t *t,
    const char *status, const bson_oid_t *uid)
{
    bson_destroy(&t->reply);
    bson_init(&t->reply);
    BSON_APPEND_UTF8(&t->reply, "status", status);

    if (uid) {
        BSON_APPEND_OID(&t->reply, "userId", uid);
    }

    t->rc = NGX_OK;
}


void
ngx_http_chat_sessions_get_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_user_arg_t *a = t->arg;

    bson_t       filter, doc;
    ngx_int_t    rc;
    bson_iter_t  it;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->session_id);

    bson_init(&doc);
    rc = ngx_http_chat_mongo_find_one(db, "sessions", &filter, NULL, &doc,
                                      &t->error);
    bson_destroy(&filter);

    if (rc == NGX_OK) {
        bson_destroy(&t->reply);
        bson_init(&t->reply);

        if (bson_iter_init_find(&it, &doc, "userId")
            && BSON_ITER_HOLDS_OID(&it))
        {
            BSON_APPEND_OID(&t->reply, "userId", bson_iter_oid(&it));
        }

        BSON_APPEND_BOOL(&t->reply, "revoked",
                         bson_iter_init_find(&it, &doc, "revoked")
                         && bson_iter_as_bool(&it));

        if (bson_iter_init_find(&it, &doc, "expiresAt")
            && BSON_ITER_HOLDS_DATE_TIME(&it))
        {
            BSON_APPEND_DATE_TIME(&t->reply, "expiresAt",
                                  bson_iter_date_time(&it));
        }
    }

    bson_destroy(&doc);

    t->rc = rc;
}


void
ngx_http_chat_sessions_rotate_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_rotate_arg_t *a = t->arg;

    char                  key[16];
    bson_t                filter, doc, update, set, list, reply;
    int64_t               now;
    uint32_t              i, n, skip;
    ngx_int_t             rc;
    bson_oid_t            uid;
    bson_iter_t           it, used;
    const char           *k, *cur;
    ngx_uint_t            reused;
    mongoc_collection_t  *sessions;

    rc = ngx_http_chat_sessions_lock(db, &a->session_id, &t->error);

    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            bson_set_error(&t->error, 0, 0, "the session stays locked");
        }

        t->rc = NGX_ERROR;
        return;
    }

    sessions = mongoc_database_get_collection(db, "sessions");
    now = ngx_http_chat_sessions_now();

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->session_id);

    bson_init(&doc);
    rc = ngx_http_chat_mongo_find_one(db, "sessions", &filter, NULL, &doc,
                                      &t->error);
    bson_destroy(&filter);

    if (rc == NGX_ERROR) {
        t->rc = NGX_ERROR;
        goto done;
    }

    if (rc == NGX_DECLINED
        || !bson_iter_init_find(&it, &doc, "userId")
        || !BSON_ITER_HOLDS_OID(&it))
    {
        ngx_http_chat_sessions_status(t, "invalid", NULL);
        goto done;
    }

    bson_oid_copy(bson_iter_oid(&it), &uid);

    cur = NULL;

    if (bson_iter_init_find(&it, &doc, "cur") && BSON_ITER_HOLDS_UTF8(&it)) {
        cur = bson_iter_utf8(&it, NULL);
    }

    /* the hashes rotated away: the presented one among them is a reuse */

    reused = 0;
    n = 0;

    if (bson_iter_init_find(&it, &doc, "used") && BSON_ITER_HOLDS_ARRAY(&it)
        && bson_iter_recurse(&it, &used))
    {
        while (bson_iter_next(&used)) {
            if (BSON_ITER_HOLDS_UTF8(&used)) {
                n++;

                if (ngx_strcmp(bson_iter_utf8(&used, NULL), a->presented)
                    == 0)
                {
                    reused = 1;
                }
            }
        }
    }

    if (bson_iter_init_find(&it, &doc, "revoked") && bson_iter_as_bool(&it))
    {
        /*
         * A rotated-away token of a revoked session: the same answer as
         * the reuse that revoked it (the retry of one whose cache step
         * failed), so that the cache and the sockets are told again.
         */
        ngx_http_chat_sessions_status(t, reused ? "reuse" : "revoked", &uid);

        /* its push device goes with it, again on a retry */
        if (ngx_http_chat_devices_drop_session(db, &a->session_id,
                                               &t->error)
            != NGX_OK)
        {
            t->rc = NGX_ERROR;
        }

        goto done;
    }

    if (bson_iter_init_find(&it, &doc, "expiresAt")
        && BSON_ITER_HOLDS_DATE_TIME(&it)
        && bson_iter_date_time(&it) <= now)
    {
        ngx_http_chat_sessions_status(t, "invalid", &uid);
        goto done;
    }

    if (cur == NULL || ngx_strcmp(cur, a->presented) != 0) {

        if (!reused) {
            ngx_http_chat_sessions_status(t, "invalid", &uid);
            goto done;
        }

        /* a rotated-away token came back: assume it was stolen */
        if (ngx_http_chat_sessions_revoke_id(sessions, &a->session_id,
                                             &t->error)
            != NGX_OK
            || ngx_http_chat_devices_drop_session(db, &a->session_id,
                                                  &t->error)
               != NGX_OK)
        {
            t->rc = NGX_ERROR;
            goto done;
        }

        ngx_http_chat_sessions_status(t, "reuse", &uid);
        goto done;
    }

    /* used + the presented hash, the oldest dropped past the bound */

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_UTF8(&set, "cur", a->next);
    BSON_APPEND_DATE_TIME(&set, "lastUsedAt", now);
    BSON_APPEND_DATE_TIME(&set, "expiresAt", now + a->ttl);
    BSON_APPEND_ARRAY_BEGIN(&set, "used", &list);

    skip = (n + 1 > NGX_HTTP_CHAT_SESSION_USED)
           ? n + 1 - NGX_HTTP_CHAT_SESSION_USED : 0;
    i = 0;

    if (bson_iter_init_find(&it, &doc, "used") && BSON_ITER_HOLDS_ARRAY(&it)
        && bson_iter_recurse(&it, &used))
    {
        while (bson_iter_next(&used)) {
            if (!BSON_ITER_HOLDS_UTF8(&used)) {
                continue;
            }

            if (skip) {
                skip--;
                continue;
            }

            bson_uint32_to_string(i++, &k, key, sizeof(key));
            BSON_APPEND_UTF8(&list, k, bson_iter_utf8(&used, NULL));
        }
    }

    bson_uint32_to_string(i, &k, key, sizeof(key));
    BSON_APPEND_UTF8(&list, k, a->presented);

    bson_append_array_end(&set, &list);
    bson_append_document_end(&update, &set);

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->session_id);
    BSON_APPEND_UTF8(&filter, "cur", a->presented);
    BSON_APPEND_BOOL(&filter, "revoked", false);

    if (!mongoc_collection_update_one(sessions, &filter, &update, NULL,
                                      &reply, &t->error))
    {
        t->rc = NGX_ERROR;

    } else if (bson_iter_init_find(&it, &reply, "matchedCount")
               && bson_iter_as_int64(&it) == 1)
    {
        ngx_http_chat_sessions_status(t, "ok", &uid);

    } else if (ngx_http_chat_sessions_revoke_id(sessions, &a->session_id,
                                                &t->error)
               != NGX_OK
               || ngx_http_chat_devices_drop_session(db, &a->session_id,
                                                     &t->error)
                  != NGX_OK)
    {
        t->rc = NGX_ERROR;

    } else {
        /* another refresh with this very token won the update */
        ngx_http_chat_sessions_status(t, "reuse", &uid);
    }

    bson_destroy(&reply);
    bson_destroy(&filter);
    bson_destroy(&update);

done:

    bson_destroy(&doc);
    mongoc_collection_destroy(sessions);
    ngx_http_chat_sessions_unlock(db, &a->session_id);
}


/* in a thread: NGX_OK the user's session is revoked, NGX_DECLINED, NGX_ERROR */

static ngx_int_t
ngx_http_chat_sessions_revoked_of(mongoc_database_t *db,
    ngx_http_chat_user_arg_t *a, bson_error_t *error)
{
    bson_t     filter, doc;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->session_id);
    BSON_APPEND_OID(&filter, "userId", &a->user_id);
    BSON_APPEND_BOOL(&filter, "revoked", true);

    bson_init(&doc);
    rc = ngx_http_chat_mongo_find_one(db, "sessions", &filter, NULL, &doc,
                                      error);
    bson_destroy(&doc);
    bson_destroy(&filter);

    return rc;
}


void
ngx_http_chat_sessions_revoke_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_user_arg_t *a = t->arg;

    bson_t                filter, update, set, reply;
    ngx_int_t             locked;
    bson_iter_t           it;
    bson_error_t          error;
    mongoc_collection_t  *sessions;

    /* a revocation goes through even past a lock that stays held */
    locked = ngx_http_chat_sessions_lock(db, &a->session_id, &error);

    if (locked == NGX_ERROR) {
        t->error = error;
        t->rc = NGX_ERROR;
        return;
    }

    sessions = mongoc_database_get_collection(db, "sessions");

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->session_id);
    BSON_APPEND_OID(&filter, "userId", &a->user_id);
    BSON_APPEND_BOOL(&filter, "revoked", false);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_BOOL(&set, "revoked", true);
    BSON_APPEND_DATE_TIME(&set, "revokedAt", ngx_http_chat_sessions_now());
    bson_append_document_end(&update, &set);

    if (!mongoc_collection_update_one(sessions, &filter, &update, NULL,
                                      &reply, &t->error))
    {
        t->rc = NGX_ERROR;

    } else if (bson_iter_init_find(&it, &reply, "matchedCount")
               && bson_iter_as_int64(&it) == 1)
    {
        t->rc = NGX_OK;

    } else {
        /*
         * Already revoked, by an attempt whose cache step failed (the
         * client got 503 and retries): the same success, so that the
         * cache and the sockets are told again.  Not the user's session,
         * or none: NGX_DECLINED.
         */
        t->rc = ngx_http_chat_sessions_revoked_of(db, a, &t->error);
    }

    bson_destroy(&reply);
    bson_destroy(&update);
    bson_destroy(&filter);
    mongoc_collection_destroy(sessions);

    /* a revoked session's push device goes with it (again on a retry) */
    if (t->rc == NGX_OK
        && ngx_http_chat_devices_drop_session(db, &a->session_id, &t->error)
           != NGX_OK)
    {
        t->rc = NGX_ERROR;
    }

    if (locked == NGX_OK) {
        ngx_http_chat_sessions_unlock(db, &a->session_id);
    }
}
