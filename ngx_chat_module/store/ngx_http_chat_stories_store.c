/*
 * Copyright (C) ngx_chat_module authors
 *
 * Stories and their views in MongoDB: who may see a story is decided
 * here, per story, with the relations of profiles (ngx_http_chat_people.h)
 * loaded once per read, whatever the number of authors.
 */


#include "ngx_http_chat_stories_store.h"
#include "ngx_http_chat_people.h"
#include "ngx_http_chat_users.h"


#define NGX_HTTP_CHAT_STORY_AUTHORS_MAX  1000   /* contacts the feed reads */
#define NGX_HTTP_CHAT_STORY_READ_MAX     5000   /* stories a read keeps */
#define NGX_HTTP_CHAT_STORY_IN_MAX       1000   /* values of one $in */


const char  *ngx_http_chat_story_modes[4] = {
    "everyone", "contacts", "contacts_except", "only"
};


static int64_t
ngx_http_chat_story_now(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


static void
ngx_http_chat_story_cleanup(ngx_http_chat_mongo_task_t *t)
{
    if (t->result) {
        json_decref((json_t *) t->result);
        t->result = NULL;
    }
}


static void
ngx_http_chat_story_answer(ngx_http_chat_mongo_task_t *t, ngx_int_t rc,
    json_t *json)
{
    t->cleanup = ngx_http_chat_story_cleanup;
    t->result = json;
    t->rc = json ? rc : NGX_ERROR;
}


/* "<storyId>:<viewerId>", the _id of a view */

static void
ngx_http_chat_story_view_key(const bson_oid_t *story,
    const bson_oid_t *viewer, char *key)
{
    bson_oid_to_string(story, key);
    key[24] = ':';
    bson_oid_to_string(viewer, key + 25);
}


static ngx_uint_t
ngx_http_chat_story_oid(const bson_t *doc, const char *key, bson_oid_t *out)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_OID(&it)) {
        bson_oid_copy(bson_iter_oid(&it), out);
        return 1;
    }

    return 0;
}


static void
ngx_http_chat_story_live(bson_t *filter)
{
    bson_t  gt;

    BSON_APPEND_DOCUMENT_BEGIN(filter, "expiresAt", &gt);
    BSON_APPEND_DATE_TIME(&gt, "$gt", ngx_http_chat_story_now());
    bson_append_document_end(filter, &gt);
}


/* the privacy of a story: its mode, and whether me is in its list */

static ngx_uint_t
ngx_http_chat_story_privacy(const bson_t *doc, const bson_oid_t *me,
    ngx_uint_t *listed)
{
    ngx_uint_t    i, mode;
    const char   *s;
    bson_iter_t   it, sub, arr;

    mode = NGX_HTTP_CHAT_STORY_ONLY;    /* unreadable: the narrowest */
    *listed = 0;

    if (!bson_iter_init_find(&it, doc, "privacy")
        || !BSON_ITER_HOLDS_DOCUMENT(&it)
        || !bson_iter_recurse(&it, &sub))
    {
        return mode;
    }

    while (bson_iter_next(&sub)) {
        if (ngx_strcmp(bson_iter_key(&sub), "mode") == 0
            && BSON_ITER_HOLDS_UTF8(&sub))
        {
            s = bson_iter_utf8(&sub, NULL);

            for (i = 0; i < 4; i++) {
                if (ngx_strcmp(s, ngx_http_chat_story_modes[i]) == 0) {
                    mode = i;
                }
            }

        } else if (ngx_strcmp(bson_iter_key(&sub), "userIds") == 0
                   && BSON_ITER_HOLDS_ARRAY(&sub)
                   && bson_iter_recurse(&sub, &arr))
        {
            while (bson_iter_next(&arr)) {
                if (BSON_ITER_HOLDS_OID(&arr)
                    && bson_oid_equal(bson_iter_oid(&arr), me))
                {
                    *listed = 1;
                }
            }
        }
    }

    return mode;
}


/*
 * May me see this story?  rel holds me's relations with its author: a
 * block either way hides everything; "contacts" are the author's
 * contacts, as on WhatsApp.
 */

static ngx_uint_t
ngx_http_chat_story_visible(const bson_t *doc, const bson_oid_t *me,
    ngx_http_chat_rel_t *rel)
{
    ngx_uint_t  listed, contact;
    bson_oid_t  author;

    if (!ngx_http_chat_story_oid(doc, "authorId", &author)) {
        return 0;
    }

    if (bson_oid_equal(&author, me)) {
        return 1;
    }

    if (ngx_http_chat_oidset_has(&rel->blockers, &author)
        || ngx_http_chat_oidset_has(&rel->blocked, &author))
    {
        return 0;
    }

    contact = ngx_http_chat_oidset_has(&rel->they_have_me, &author);

    switch (ngx_http_chat_story_privacy(doc, me, &listed)) {

    case NGX_HTTP_CHAT_STORY_EVERYONE:
        return 1;

    case NGX_HTTP_CHAT_STORY_CONTACTS:
        return contact;

    case NGX_HTTP_CHAT_STORY_CONTACTS_EXCEPT:
        return contact && !listed;

    default:
        return listed;
    }
}


/* the public form of a story; own: the author's, with its privacy */

static json_t *
ngx_http_chat_story_json(const bson_t *doc, ngx_uint_t own)
{
    char          oid[25];
    json_t       *s, *ids;
    const char   *key;
    bson_iter_t   it, sub, arr;

    s = json_object();
    if (s == NULL || !bson_iter_init(&it, doc)) {
        return s;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (BSON_ITER_HOLDS_OID(&it)
            && (ngx_strcmp(key, "_id") == 0
                || ngx_strcmp(key, "authorId") == 0
                || ngx_strcmp(key, "mediaId") == 0))
        {
            bson_oid_to_string(bson_iter_oid(&it), oid);
            json_object_set_new(s, key[0] == '_' ? "id" : key,
                                json_string(oid));

        } else if (BSON_ITER_HOLDS_UTF8(&it)
                   && ngx_strcmp(key, "mime") != 0)
        {
            json_object_set_new(s, key,
                                json_string(bson_iter_utf8(&it, NULL)));

        } else if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
            json_object_set_new(s, key,
                            ngx_http_chat_json_time(bson_iter_date_time(&it)));

        } else if (own && ngx_strcmp(key, "privacy") == 0
                   && BSON_ITER_HOLDS_DOCUMENT(&it)
                   && bson_iter_recurse(&it, &sub))
        {
            ids = json_array();

            while (bson_iter_next(&sub)) {
                if (BSON_ITER_HOLDS_UTF8(&sub)) {
                    json_object_set_new(s, "privacy",
                                        json_pack("{s:s}", "mode",
                                                  bson_iter_utf8(&sub, NULL)));

                } else if (BSON_ITER_HOLDS_ARRAY(&sub)
                           && bson_iter_recurse(&sub, &arr))
                {
                    while (bson_iter_next(&arr)) {
                        if (BSON_ITER_HOLDS_OID(&arr)) {
                            bson_oid_to_string(bson_iter_oid(&arr), oid);
                            json_array_append_new(ids, json_string(oid));
                        }
                    }
                }
            }

            if (json_object_get(s, "privacy")) {
                json_object_set(json_object_get(s, "privacy"), "userIds",
                                ids);
            }

            json_decref(ids);
        }
    }

    return s;
}


/* the live story a->id into doc: NGX_OK, NGX_DECLINED, NGX_ERROR */

static ngx_int_t
ngx_http_chat_story_find(mongoc_database_t *db, const bson_oid_t *id,
    bson_t *doc, bson_error_t *error)
{
    bson_t     filter;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", id);
    ngx_http_chat_story_live(&filter);

    rc = ngx_http_chat_mongo_find_one(db, "stories", &filter, NULL, doc,
                                      error);
    bson_destroy(&filter);

    return rc;
}


/* the live story me may see, into doc (initialised by the caller) */

static ngx_int_t
ngx_http_chat_story_load(mongoc_database_t *db, const bson_oid_t *me,
    const bson_oid_t *id, bson_t *doc, bson_oid_t *author,
    bson_error_t *error)
{
    ngx_int_t            rc;
    ngx_uint_t           ok;
    ngx_http_chat_rel_t  rel;

    rc = ngx_http_chat_story_find(db, id, doc, error);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!ngx_http_chat_story_oid(doc, "authorId", author)) {
        return NGX_DECLINED;
    }

    if (bson_oid_equal(author, me)) {
        return NGX_OK;
    }

    if (ngx_http_chat_rel_load(db, me, author, 1, &rel, error) != NGX_OK) {
        return NGX_ERROR;
    }

    ok = ngx_http_chat_story_visible(doc, me, &rel);
    ngx_http_chat_rel_free(&rel);

    return ok ? NGX_OK : NGX_DECLINED;
}


/* POST /api/stories */

void
ngx_http_chat_story_create_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    char                  buf[16];
    bson_t                doc, filter, media, privacy, ids;
    int64_t               now;
    ngx_int_t             rc;
    ngx_uint_t            i;
    bson_oid_t            id;
    const char           *k, *mime;
    bson_iter_t           it;
    mongoc_collection_t  *c;

    bson_init(&doc);

    if (a->has_media) {
        /* the type must be what the upload was detected as */
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "_id", &a->media);
        bson_init(&media);

        rc = ngx_http_chat_mongo_find_one(db, "media", &filter, NULL, &media,
                                          &t->error);
        bson_destroy(&filter);

        if (rc == NGX_ERROR) {
            bson_destroy(&media);
            bson_destroy(&doc);
            t->rc = NGX_ERROR;
            return;
        }

        mime = (rc == NGX_OK && bson_iter_init_find(&it, &media, "mime")
                && BSON_ITER_HOLDS_UTF8(&it))
               ? bson_iter_utf8(&it, NULL) : NULL;

        if (mime == NULL
            || ngx_strncmp(mime, a->type, ngx_strlen(a->type)) != 0
            || mime[ngx_strlen(a->type)] != '/')
        {
            bson_destroy(&media);
            bson_destroy(&doc);
            ngx_http_chat_story_answer(t, NGX_ABORT,
                json_pack("{s:s,s:s}", "field", "mediaId", "reason",
                          mime ? "the media is not of this type"
                               : "no such media"));
            return;
        }

        BSON_APPEND_UTF8(&doc, "mime", mime);
        bson_destroy(&media);
    }

    now = ngx_http_chat_story_now();
    bson_oid_init(&id, NULL);

    BSON_APPEND_OID(&doc, "_id", &id);
    BSON_APPEND_OID(&doc, "authorId", &a->me);
    BSON_APPEND_UTF8(&doc, "type", a->type);

    if (a->has_media) {
        BSON_APPEND_OID(&doc, "mediaId", &a->media);

    } else {
        BSON_APPEND_UTF8(&doc, "text", a->text);

        if (a->color[0]) {
            BSON_APPEND_UTF8(&doc, "backgroundColor", a->color);
        }

        if (a->font[0]) {
            BSON_APPEND_UTF8(&doc, "font", a->font);
        }
    }

    if (a->caption[0]) {
        BSON_APPEND_UTF8(&doc, "caption", a->caption);
    }

    BSON_APPEND_DOCUMENT_BEGIN(&doc, "privacy", &privacy);
    BSON_APPEND_UTF8(&privacy, "mode", ngx_http_chat_story_modes[a->mode]);
    BSON_APPEND_ARRAY_BEGIN(&privacy, "userIds", &ids);

    for (i = 0; i < a->nids; i++) {
        bson_uint32_to_string((uint32_t) i, &k, buf, sizeof(buf));
        BSON_APPEND_OID(&ids, k, &a->ids[i]);
    }

    bson_append_array_end(&privacy, &ids);
    bson_append_document_end(&doc, &privacy);

    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
    BSON_APPEND_DATE_TIME(&doc, "expiresAt", now + a->lifetime);

    c = mongoc_database_get_collection(db, "stories");

    if (!mongoc_collection_insert_one(c, &doc, NULL, NULL, &t->error)) {
        mongoc_collection_destroy(c);
        bson_destroy(&doc);
        t->rc = NGX_ERROR;
        return;
    }

    mongoc_collection_destroy(c);

    ngx_http_chat_story_answer(t, NGX_OK,
                               json_pack("{s:o}", "story",
                                         ngx_http_chat_story_json(&doc, 1)));
    bson_destroy(&doc);
}


/* DELETE /api/stories/:id: the author's, live or not */

void
ngx_http_chat_story_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    char                  oid[25];
    bson_t                filter, reply;
    bson_iter_t           it;
    mongoc_collection_t  *c;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->id);
    BSON_APPEND_OID(&filter, "authorId", &a->me);

    c = mongoc_database_get_collection(db, "stories");

    if (!mongoc_collection_delete_one(c, &filter, NULL, &reply, &t->error)) {
        bson_destroy(&reply);
        bson_destroy(&filter);
        mongoc_collection_destroy(c);
        t->rc = NGX_ERROR;
        return;
    }

    bson_destroy(&filter);
    mongoc_collection_destroy(c);

    if (!bson_iter_init_find(&it, &reply, "deletedCount")
        || bson_iter_as_int64(&it) == 0)
    {
        bson_destroy(&reply);
        t->rc = NGX_DECLINED;
        return;
    }

    bson_destroy(&reply);

    /* its views go with it; a failure leaves views of nothing */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "storyId", &a->id);
    c = mongoc_database_get_collection(db, "storyviews");

    if (!mongoc_collection_delete_many(c, &filter, NULL, NULL, &t->error)) {
        ngx_log_error(NGX_LOG_WARN, t->log, 0,
                      "chat: views of a deleted story left: %s",
                      t->error.message);
    }

    bson_destroy(&filter);
    mongoc_collection_destroy(c);

    bson_oid_to_string(&a->id, oid);
    ngx_http_chat_story_answer(t, NGX_OK,
                               json_pack("{s:s,s:b}", "id", oid,
                                         "deleted", 1));
}


/* the view of a->me of a story, as a JSON object */

static json_t *
ngx_http_chat_story_view_json(const bson_t *doc)
{
    char          oid[25];
    json_t       *v;
    const char   *key;
    bson_iter_t   it;

    v = json_object();
    if (v == NULL || !bson_iter_init(&it, doc)) {
        return v;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (BSON_ITER_HOLDS_OID(&it) && ngx_strcmp(key, "authorId") != 0) {
            bson_oid_to_string(bson_iter_oid(&it), oid);
            json_object_set_new(v, ngx_strcmp(key, "viewerId") == 0
                                   ? "userId" : key, json_string(oid));

        } else if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
            json_object_set_new(v, key,
                            ngx_http_chat_json_time(bson_iter_date_time(&it)));

        } else if (BSON_ITER_HOLDS_UTF8(&it) && ngx_strcmp(key, "_id") != 0) {
            json_object_set_new(v, ngx_strcmp(key, "emoji") == 0
                                   ? "reaction" : key,
                                json_string(bson_iter_utf8(&it, NULL)));
        }
    }

    return v;
}


/* POST /api/stories/:id/view: one per viewer, the first one's time */

void
ngx_http_chat_story_view_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    char                  key[50];
    bson_t                story, doc, filter, found;
    ngx_int_t             rc;
    bson_oid_t            author;
    mongoc_collection_t  *c;

    bson_init(&story);
    rc = ngx_http_chat_story_load(db, &a->me, &a->id, &story, &author,
                                  &t->error);
    bson_destroy(&story);

    if (rc != NGX_OK) {
        t->rc = rc;
        return;
    }

    if (bson_oid_equal(&author, &a->me)) {
        /* the author's own look is no view */
        ngx_http_chat_story_answer(t, NGX_DONE,
                                   json_pack("{s:n}", "view"));
        return;
    }

    ngx_http_chat_story_view_key(&a->id, &a->me, key);

    bson_init(&doc);
    BSON_APPEND_UTF8(&doc, "_id", key);
    BSON_APPEND_OID(&doc, "storyId", &a->id);
    BSON_APPEND_OID(&doc, "authorId", &author);
    BSON_APPEND_OID(&doc, "viewerId", &a->me);
    BSON_APPEND_DATE_TIME(&doc, "viewedAt", ngx_http_chat_story_now());

    c = mongoc_database_get_collection(db, "storyviews");
    rc = NGX_OK;

    if (!mongoc_collection_insert_one(c, &doc, NULL, NULL, &t->error)) {
        if (t->error.code != 11000
            && ngx_strstr(t->error.message, "UNIQUE constraint failed")
               == NULL)
        {
            mongoc_collection_destroy(c);
            bson_destroy(&doc);
            t->rc = NGX_ERROR;
            return;
        }

        /* viewed before (or just now, concurrently): that view stands */
        bson_init(&filter);
        BSON_APPEND_UTF8(&filter, "_id", key);
        bson_init(&found);

        rc = ngx_http_chat_mongo_find_one(db, "storyviews", &filter, NULL,
                                          &found, &t->error);
        bson_destroy(&filter);

        if (rc != NGX_OK) {
            bson_destroy(&found);
            mongoc_collection_destroy(c);
            bson_destroy(&doc);
            t->rc = NGX_ERROR;
            return;
        }

        bson_destroy(&doc);
        bson_steal(&doc, &found);
        rc = NGX_DONE;
    }

    mongoc_collection_destroy(c);

    ngx_http_chat_story_answer(t, rc,
                               json_pack("{s:o}", "view",
                                         ngx_http_chat_story_view_json(&doc)));
    bson_destroy(&doc);
}


/* POST and DELETE /api/stories/:id/react: one emoji per viewer */

void
ngx_http_chat_story_react_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    char                  key[50], sid[25], uid[25];
    bson_t                story, filter, update, set, soi, unset, opts;
    int64_t               now;
    ngx_int_t             rc;
    ngx_uint_t            tries;
    bson_oid_t            author;
    mongoc_collection_t  *c;

    bson_init(&story);
    rc = ngx_http_chat_story_load(db, &a->me, &a->id, &story, &author,
                                  &t->error);
    bson_destroy(&story);

    if (rc != NGX_OK) {
        t->rc = rc;
        return;
    }

    if (bson_oid_equal(&author, &a->me)) {
        ngx_http_chat_story_answer(t, NGX_BUSY,
            json_pack("{s:s,s:s}", "code", "own_story",
                      "message", "you cannot react to your own story"));
        return;
    }

    ngx_http_chat_story_view_key(&a->id, &a->me, key);
    now = ngx_http_chat_story_now();

    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "_id", key);
    bson_init(&update);
    bson_init(&opts);

    if (a->emoji[0]) {
        /* a reaction is a view too */
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
        BSON_APPEND_UTF8(&set, "emoji", a->emoji);
        BSON_APPEND_DATE_TIME(&set, "reactedAt", now);
        bson_append_document_end(&update, &set);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$setOnInsert", &soi);
        BSON_APPEND_OID(&soi, "storyId", &a->id);
        BSON_APPEND_OID(&soi, "authorId", &author);
        BSON_APPEND_OID(&soi, "viewerId", &a->me);
        BSON_APPEND_DATE_TIME(&soi, "viewedAt", now);
        bson_append_document_end(&update, &soi);
        BSON_APPEND_BOOL(&opts, "upsert", true);

    } else {
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
        BSON_APPEND_UTF8(&unset, "emoji", "");
        BSON_APPEND_UTF8(&unset, "reactedAt", "");
        bson_append_document_end(&update, &unset);
    }

    c = mongoc_database_get_collection(db, "storyviews");
    rc = NGX_ERROR;

    /* two upserts at once: the loser finds the winner's document */
    for (tries = 0; tries < 2 && rc == NGX_ERROR; tries++) {
        if (mongoc_collection_update_one(c, &filter, &update, &opts, NULL,
                                         &t->error))
        {
            rc = NGX_OK;

        } else if (t->error.code != 11000
                   && ngx_strstr(t->error.message,
                                 "UNIQUE constraint failed") == NULL)
        {
            break;
        }
    }

    mongoc_collection_destroy(c);
    bson_destroy(&opts);
    bson_destroy(&update);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        t->rc = NGX_ERROR;
        return;
    }

    bson_oid_to_string(&a->id, sid);
    bson_oid_to_string(&a->me, uid);

    ngx_http_chat_story_answer(t, NGX_DONE,
        json_pack("{s:{s:s,s:s,s:s?}}", "reaction", "storyId", sid,
                  "userId", uid, "emoji", a->emoji[0] ? a->emoji : NULL));
}


/* GET /api/stories/:id */

void
ngx_http_chat_story_get_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    char        key[50];
    bson_t      doc, filter, view;
    json_t     *s;
    ngx_int_t   rc;
    bson_oid_t  author;

    bson_init(&doc);
    rc = ngx_http_chat_story_load(db, &a->me, &a->id, &doc, &author,
                                  &t->error);

    if (rc != NGX_OK) {
        bson_destroy(&doc);
        t->rc = rc;
        return;
    }

    s = ngx_http_chat_story_json(&doc, bson_oid_equal(&author, &a->me));
    bson_destroy(&doc);

    if (s && !bson_oid_equal(&author, &a->me)) {
        ngx_http_chat_story_view_key(&a->id, &a->me, key);
        bson_init(&filter);
        BSON_APPEND_UTF8(&filter, "_id", key);
        bson_init(&view);

        rc = ngx_http_chat_mongo_find_one(db, "storyviews", &filter, NULL,
                                          &view, &t->error);
        bson_destroy(&filter);
        bson_destroy(&view);

        if (rc == NGX_ERROR) {
            json_decref(s);
            t->rc = NGX_ERROR;
            return;
        }

        json_object_set_new(s, "seen", json_boolean(rc == NGX_OK));
    }

    ngx_http_chat_story_answer(t, NGX_OK, json_pack("{s:o*}", "story", s));
}


/*
 * The views of me of the stories whose ids are in docs: seen[i] is set
 * for each one viewed (by _id, $in at most 1,000 at a time).
 */

static ngx_int_t
ngx_http_chat_story_seen(mongoc_database_t *db, const bson_oid_t *me,
    bson_t **docs, size_t n, u_char *seen, bson_error_t *error)
{
    char                  key[50], buf[16];
    size_t                i, j, end;
    bson_t                filter, in, arr;
    bson_oid_t            id;
    bson_iter_t           it;
    const char           *k;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    c = mongoc_database_get_collection(db, "storyviews");

    for (i = 0; i < n; i = end) {
        end = ngx_min(n, i + NGX_HTTP_CHAT_STORY_IN_MAX);

        bson_init(&filter);
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);

        for (j = i; j < end; j++) {
            (void) ngx_http_chat_story_oid(docs[j], "_id", &id);
            ngx_http_chat_story_view_key(&id, me, key);
            bson_uint32_to_string((uint32_t) (j - i), &k, buf, sizeof(buf));
            BSON_APPEND_UTF8(&arr, k, key);
        }

        bson_append_array_end(&in, &arr);
        bson_append_document_end(&filter, &in);

        cursor = mongoc_collection_find_with_opts(c, &filter, NULL, NULL);

        while (mongoc_cursor_next(cursor, &doc)) {
            if (!ngx_http_chat_story_oid(doc, "storyId", &id)) {
                continue;
            }

            for (j = i; j < end; j++) {
                if (bson_iter_init_find(&it, docs[j], "_id")
                    && BSON_ITER_HOLDS_OID(&it)
                    && bson_oid_equal(bson_iter_oid(&it), &id))
                {
                    seen[j] = 1;
                }
            }
        }

        bson_destroy(&filter);

        if (mongoc_cursor_error(cursor, error)) {
            mongoc_cursor_destroy(cursor);
            mongoc_collection_destroy(c);
            return NGX_ERROR;
        }

        mongoc_cursor_destroy(cursor);
    }

    mongoc_collection_destroy(c);

    return NGX_OK;
}


/*
 * The live stories of the authors in ids (of n), oldest first, that me
 * may see (all of them when all is set): copies in *out, their number
 * returned, or -1 on an error.
 */

static ssize_t
ngx_http_chat_story_read(mongoc_database_t *db, const bson_oid_t *me,
    bson_oid_t *ids, size_t n, ngx_uint_t all, bson_t ***out,
    bson_error_t *error)
{
    char                  buf[16];
    size_t                i, cap, got;
    bson_t                filter, in, arr, opts, sort;
    bson_t              **docs, **nd;
    const char           *k;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;
    ngx_http_chat_rel_t   rel;

    *out = NULL;

    ngx_memzero(&rel, sizeof(ngx_http_chat_rel_t));

    if (!all && ngx_http_chat_rel_load(db, me, ids, n, &rel, error)
                != NGX_OK)
    {
        return -1;
    }

    bson_init(&filter);

    if (n == 1) {
        BSON_APPEND_OID(&filter, "authorId", &ids[0]);

    } else {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "authorId", &in);
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);

        for (i = 0; i < n; i++) {
            bson_uint32_to_string((uint32_t) i, &k, buf, sizeof(buf));
            BSON_APPEND_OID(&arr, k, &ids[i]);
        }

        bson_append_array_end(&in, &arr);
        bson_append_document_end(&filter, &in);
    }

    ngx_http_chat_story_live(&filter);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "createdAt", 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", NGX_HTTP_CHAT_STORY_READ_MAX);

    c = mongoc_database_get_collection(db, "stories");
    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    got = 0;
    cap = 16;
    docs = ngx_alloc(cap * sizeof(bson_t *), ngx_cycle->log);

    while (docs && mongoc_cursor_next(cursor, &doc)) {
        if (!all && !ngx_http_chat_story_visible(doc, me, &rel)) {
            continue;
        }

        if (got == cap) {
            cap *= 2;
            nd = realloc(docs, cap * sizeof(bson_t *));
            if (nd == NULL) {
                break;
            }

            docs = nd;
        }

        docs[got++] = bson_copy(doc);
    }

    ngx_http_chat_rel_free(&rel);
    bson_destroy(&opts);
    bson_destroy(&filter);

    if (docs == NULL || mongoc_cursor_error(cursor, error)) {
        for (i = 0; docs && i < got; i++) {
            bson_destroy(docs[i]);
        }

        if (docs) {
            ngx_free(docs);
        }

        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(c);
        return -1;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);

    *out = docs;

    return (ssize_t) got;
}


static void
ngx_http_chat_story_docs_free(bson_t **docs, size_t n)
{
    size_t  i;

    if (docs == NULL) {
        return;
    }

    for (i = 0; i < n; i++) {
        bson_destroy(docs[i]);
    }

    ngx_free(docs);
}


/* the number of views of a story (its index on storyId) */

static int64_t
ngx_http_chat_story_count(mongoc_database_t *db, const bson_t *story,
    bson_error_t *error)
{
    bson_t                filter;
    int64_t               n;
    bson_oid_t            id;
    mongoc_collection_t  *c;

    if (!ngx_http_chat_story_oid(story, "_id", &id)) {
        return 0;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "storyId", &id);

    c = mongoc_database_get_collection(db, "storyviews");
    n = mongoc_collection_count_documents(c, &filter, NULL, NULL, NULL,
                                          error);
    mongoc_collection_destroy(c);
    bson_destroy(&filter);

    return n;
}


/* GET /api/stories/mine: my live stories with their view counts */

void
ngx_http_chat_story_mine_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    size_t    i;
    json_t   *items, *s;
    ssize_t   n;
    bson_t  **docs;
    int64_t   views;

    n = ngx_http_chat_story_read(db, &a->me, &a->me, 1, 1, &docs,
                                 &t->error);
    if (n < 0) {
        t->rc = NGX_ERROR;
        return;
    }

    items = json_array();

    for (i = 0; items && i < (size_t) n; i++) {
        views = ngx_http_chat_story_count(db, docs[i], &t->error);
        if (views < 0) {
            json_decref(items);
            items = NULL;
            break;
        }

        s = ngx_http_chat_story_json(docs[i], 1);
        if (s) {
            json_object_set_new(s, "viewCount", json_integer(views));
            json_array_append_new(items, s);
        }
    }

    ngx_http_chat_story_docs_free(docs, n);

    if (items == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    ngx_http_chat_story_answer(t, NGX_OK, json_pack("{s:o}", "items", items));
}


/* the stories of docs as the viewer sees them, with seen per story */

static json_t *
ngx_http_chat_story_items(mongoc_database_t *db, const bson_oid_t *me,
    bson_t **docs, size_t n, ngx_uint_t *unseen, bson_error_t *error)
{
    size_t   i;
    json_t  *items, *s;
    u_char  *seen;

    seen = ngx_calloc(n + 1, ngx_cycle->log);
    if (seen == NULL) {
        return NULL;
    }

    if (ngx_http_chat_story_seen(db, me, docs, n, seen, error) != NGX_OK) {
        ngx_free(seen);
        return NULL;
    }

    items = json_array();
    *unseen = 0;

    for (i = 0; items && i < n; i++) {
        s = ngx_http_chat_story_json(docs[i], 0);
        if (s) {
            json_object_set_new(s, "seen", json_boolean(seen[i]));
            json_array_append_new(items, s);
        }

        *unseen += !seen[i];
    }

    ngx_free(seen);

    return items;
}


/* GET /api/users/:id/stories: that user's live stories I may see */

void
ngx_http_chat_story_user_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    json_t      *items;
    ssize_t      n;
    bson_t     **docs;
    ngx_uint_t   unseen;

    n = ngx_http_chat_story_read(db, &a->me, &a->id, 1, 0, &docs, &t->error);
    if (n < 0) {
        t->rc = NGX_ERROR;
        return;
    }

    items = ngx_http_chat_story_items(db, &a->me, docs, n, &unseen,
                                      &t->error);
    ngx_http_chat_story_docs_free(docs, n);

    if (items == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    ngx_http_chat_story_answer(t, NGX_OK, json_pack("{s:o}", "items", items));
}


/* authors with unseen stories first, then the latest story first */

static int
ngx_http_chat_story_author_cmp(const void *one, const void *two)
{
    json_t  *a = *(json_t **) one;
    json_t  *b = *(json_t **) two;

    int          ua, ub;
    const char  *la, *lb;

    ua = json_is_true(json_object_get(a, "hasUnseen"));
    ub = json_is_true(json_object_get(b, "hasUnseen"));

    if (ua != ub) {
        return ub - ua;
    }

    la = json_string_value(json_object_get(a, "lastStoryAt"));
    lb = json_string_value(json_object_get(b, "lastStoryAt"));

    if (la && lb && ngx_strcmp(la, lb) != 0) {
        return -ngx_strcmp(la, lb);
    }

    return ngx_strcmp(
        json_string_value(json_object_get(json_object_get(a, "user"), "id")),
        json_string_value(json_object_get(json_object_get(b, "user"), "id")));
}


/* names of the users of a page: {id: {id, name}} */

static ngx_int_t
ngx_http_chat_story_names(mongoc_database_t *db, json_t **groups, size_t n,
    bson_error_t *error)
{
    char                  buf[16], oid[25];
    size_t                i;
    bson_t                filter, in, arr, opts, proj;
    json_t               *user;
    bson_oid_t            id;
    bson_iter_t           it;
    const char           *k, *s;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    if (n == 0) {
        return NGX_OK;
    }

    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);

    for (i = 0; i < n; i++) {
        s = json_string_value(json_object_get(
                                json_object_get(groups[i], "user"), "id"));
        bson_oid_init_from_string(&id, s);
        bson_uint32_to_string((uint32_t) i, &k, buf, sizeof(buf));
        BSON_APPEND_OID(&arr, k, &id);
    }

    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "name", 1);
    bson_append_document_end(&opts, &proj);

    c = mongoc_database_get_collection(db, "users");
    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    while (mongoc_cursor_next(cursor, &doc)) {
        if (!ngx_http_chat_story_oid(doc, "_id", &id)
            || !bson_iter_init_find(&it, doc, "name")
            || !BSON_ITER_HOLDS_UTF8(&it))
        {
            continue;
        }

        bson_oid_to_string(&id, oid);

        for (i = 0; i < n; i++) {
            user = json_object_get(groups[i], "user");

            if (ngx_strcmp(json_string_value(json_object_get(user, "id")),
                           oid) == 0)
            {
                json_object_set_new(user, "name",
                                    json_string(bson_iter_utf8(&it, NULL)));
            }
        }
    }

    bson_destroy(&opts);
    bson_destroy(&filter);

    if (mongoc_cursor_error(cursor, error)) {
        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(c);
        return NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);

    return NGX_OK;
}


/* my contacts (owner me), at most NGX_HTTP_CHAT_STORY_AUTHORS_MAX */

static ssize_t
ngx_http_chat_story_contacts(mongoc_database_t *db, const bson_oid_t *me,
    bson_oid_t *ids, bson_error_t *error)
{
    size_t                n;
    bson_t                filter, opts;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "owner", me);
    bson_init(&opts);
    BSON_APPEND_INT64(&opts, "limit", NGX_HTTP_CHAT_STORY_AUTHORS_MAX);

    c = mongoc_database_get_collection(db, "contacts");
    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    n = 0;

    while (n < NGX_HTTP_CHAT_STORY_AUTHORS_MAX
           && mongoc_cursor_next(cursor, &doc))
    {
        if (ngx_http_chat_story_oid(doc, "contact", &ids[n])) {
            n++;
        }
    }

    bson_destroy(&opts);
    bson_destroy(&filter);

    if (mongoc_cursor_error(cursor, error)) {
        n = (size_t) -1;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);

    return (ssize_t) n;
}


/*
 * GET /api/stories: the stories of my contacts that I may see, grouped
 * by author, a page of authors from a->offset
 */

void
ngx_http_chat_story_feed_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    char         oid[25], next[32];
    size_t       i, j, m, ngroups, first;
    json_t      *items, *stories, **groups;
    ssize_t      n, total;
    bson_t     **docs, **run;
    bson_oid_t  *ids, author, other;
    ngx_uint_t   unseen;

    ids = ngx_alloc(NGX_HTTP_CHAT_STORY_AUTHORS_MAX * sizeof(bson_oid_t),
                    t->log);
    if (ids == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    n = ngx_http_chat_story_contacts(db, &a->me, ids, &t->error);

    docs = NULL;
    total = 0;

    if (n > 0) {
        total = ngx_http_chat_story_read(db, &a->me, ids, n, 0, &docs,
                                         &t->error);
    }

    ngx_free(ids);

    if (n < 0 || total < 0) {
        t->rc = NGX_ERROR;
        return;
    }

    groups = ngx_alloc((total + 1) * sizeof(json_t *), t->log);
    run = ngx_alloc((total + 1) * sizeof(bson_t *), t->log);

    if (groups == NULL || run == NULL) {
        if (groups) {
            ngx_free(groups);
        }

        if (run) {
            ngx_free(run);
        }

        ngx_http_chat_story_docs_free(docs, total);
        t->rc = NGX_ERROR;
        return;
    }

    /* the stories come oldest first: each author's run, in order */
    ngroups = 0;

    for (i = 0; i < (size_t) total; i++) {
        (void) ngx_http_chat_story_oid(docs[i], "authorId", &author);

        for (j = 0; j < ngroups; j++) {
            bson_oid_init_from_string(&other, json_string_value(
                json_object_get(json_object_get(groups[j], "user"), "id")));

            if (bson_oid_equal(&other, &author)) {
                break;
            }
        }

        if (j == ngroups) {
            bson_oid_to_string(&author, oid);
            groups[ngroups++] = json_pack("{s:{s:s},s:[]}", "user", "id", oid,
                                          "stories");
            if (groups[j] == NULL) {
                ngroups--;
            }
        }
    }

    /* each author's stories, with seen, and when the last was posted */
    for (j = 0; j < ngroups; j++) {
        bson_oid_init_from_string(&author, json_string_value(
            json_object_get(json_object_get(groups[j], "user"), "id")));

        m = 0;

        for (i = 0; i < (size_t) total; i++) {
            (void) ngx_http_chat_story_oid(docs[i], "authorId", &other);

            if (bson_oid_equal(&other, &author)) {
                run[m++] = docs[i];
            }
        }

        stories = ngx_http_chat_story_items(db, &a->me, run, m, &unseen,
                                            &t->error);
        if (stories == NULL) {
            break;
        }

        json_object_set_new(groups[j], "stories", stories);
        json_object_set_new(groups[j], "hasUnseen", json_boolean(unseen));
        json_object_set(groups[j], "lastStoryAt",
                        json_object_get(json_array_get(stories,
                                            json_array_size(stories) - 1),
                                        "createdAt"));
    }

    ngx_free(run);
    ngx_http_chat_story_docs_free(docs, total);

    if (j < ngroups) {
        for (i = 0; i < ngroups; i++) {
            json_decref(groups[i]);
        }

        ngx_free(groups);
        t->rc = NGX_ERROR;
        return;
    }

    qsort(groups, ngroups, sizeof(json_t *), ngx_http_chat_story_author_cmp);

    items = json_array();
    first = ngx_min(a->offset, ngroups);
    j = ngx_min(ngroups, first + a->limit);

    if (items == NULL
        || ngx_http_chat_story_names(db, groups + first, j - first,
                                     &t->error) != NGX_OK)
    {
        json_decref(items);
        items = NULL;
    }

    for (i = 0; i < ngroups; i++) {
        if (items && i >= first && i < j) {
            json_array_append(items, groups[i]);
        }

        json_decref(groups[i]);
    }

    ngx_free(groups);

    if (items == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    if (j < ngroups) {
        ngx_snprintf((u_char *) next, sizeof(next), "%uz%Z", j);
        ngx_http_chat_story_answer(t, NGX_OK,
                                   json_pack("{s:o,s:s}", "items", items,
                                             "nextCursor", next));
        return;
    }

    ngx_http_chat_story_answer(t, NGX_OK, json_pack("{s:o}", "items", items));
}


/* GET /api/stories/:id/views: the author's only */

void
ngx_http_chat_story_views_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    size_t                n, i, cap;
    bson_t                story, filter, opts, sort;
    bson_t              **docs, **nd;
    json_t               *items, *v;
    ngx_int_t             rc;
    bson_oid_t            author, *ids;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;
    ngx_http_chat_rel_t   rel;

    bson_init(&story);
    rc = ngx_http_chat_story_find(db, &a->id, &story, &t->error);

    if (rc == NGX_OK
        && (!ngx_http_chat_story_oid(&story, "authorId", &author)
            || !bson_oid_equal(&author, &a->me)))
    {
        rc = NGX_DECLINED;
    }

    bson_destroy(&story);

    if (rc != NGX_OK) {
        t->rc = rc;
        return;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "storyId", &a->id);
    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "viewedAt", -1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", NGX_HTTP_CHAT_STORY_AUTHORS_MAX);

    c = mongoc_database_get_collection(db, "storyviews");
    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    n = 0;
    cap = 16;
    docs = ngx_alloc(cap * sizeof(bson_t *), t->log);

    while (docs && mongoc_cursor_next(cursor, &doc)) {
        if (n == cap) {
            cap *= 2;
            nd = realloc(docs, cap * sizeof(bson_t *));
            if (nd == NULL) {
                break;
            }

            docs = nd;
        }

        docs[n++] = bson_copy(doc);
    }

    bson_destroy(&opts);
    bson_destroy(&filter);

    rc = (docs == NULL || mongoc_cursor_error(cursor, &t->error))
         ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);

    ids = (rc == NGX_OK) ? ngx_alloc((n + 1) * sizeof(bson_oid_t), t->log)
                         : NULL;

    for (i = 0; ids && i < n; i++) {
        (void) ngx_http_chat_story_oid(docs[i], "viewerId", &ids[i]);
    }

    items = NULL;

    /* a block either way hides the view, past ones too */
    if (ids
        && ngx_http_chat_rel_load(db, &a->me, ids, n, &rel, &t->error)
           == NGX_OK)
    {
        items = json_array();

        for (i = 0; items && i < n; i++) {
            if (ngx_http_chat_oidset_has(&rel.blockers, &ids[i])
                || ngx_http_chat_oidset_has(&rel.blocked, &ids[i]))
            {
                continue;
            }

            v = ngx_http_chat_story_view_json(docs[i]);
            if (v) {
                json_object_del(v, "storyId");
                json_array_append_new(items, v);
            }
        }

        ngx_http_chat_rel_free(&rel);
    }

    if (ids) {
        ngx_free(ids);
    }

    ngx_http_chat_story_docs_free(docs, n);

    if (items == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    ngx_http_chat_story_answer(t, NGX_OK,
                               json_pack("{s:o}", "items", items));
}
