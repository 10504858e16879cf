/*
 * Copyright (C) ngx_chat_module authors
 *
 * Stories and their views in MongoDB, the writes and what every step
 * shares: who may see a story is decided here, per story, with the
 * relations of profiles (ngx_http_chat_people.h) loaded once per step,
 * whatever the number of authors.  The reads: _stories_read.c.
 */


#include "ngx_http_chat_stories_store_int.h"
#include "ngx_http_chat_chats_store_int.h"


const char  *ngx_http_chat_story_modes[4] = {
    "everyone", "contacts", "contacts_except", "only"
};


int64_t
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


void
ngx_http_chat_story_answer(ngx_http_chat_mongo_task_t *t, ngx_int_t rc,
    json_t *json)
{
    t->cleanup = ngx_http_chat_story_cleanup;
    t->result = json;
    t->rc = json ? rc : NGX_ERROR;
}


/* "<storyId>:<viewerId>", the _id of a view */

void
ngx_http_chat_story_view_key(const bson_oid_t *story,
    const bson_oid_t *viewer, char *key)
{
    bson_oid_to_string(story, key);
    key[24] = ':';
    bson_oid_to_string(viewer, key + 25);
}


json_t *
ngx_http_chat_story_oid_json(const bson_oid_t *oid)
{
    char  s[25];

    bson_oid_to_string(oid, s);

    return json_string(s);
}


ngx_uint_t
ngx_http_chat_story_oid(const bson_t *doc, const char *key, bson_oid_t *out)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_OID(&it)) {
        bson_oid_copy(bson_iter_oid(&it), out);
        return 1;
    }

    return 0;
}


void
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

ngx_uint_t
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

json_t *
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

ngx_int_t
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

ngx_int_t
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


/*
 * Who gets story_created: those who have the author as a contact (whose
 * feed it is in), at most NGX_HTTP_CHAT_STORY_AUTHORS_MAX, that the
 * story's privacy lets see it; the events go into answer.
 */

static ngx_int_t
ngx_http_chat_story_created(mongoc_database_t *db,
    ngx_http_chat_story_arg_t *a, json_t *answer, json_t *story,
    bson_error_t *error)
{
    size_t                n, i, j;
    bson_t                filter, opts;
    bson_oid_t           *ids;
    ngx_int_t             rc;
    ngx_uint_t            listed, contact, ok;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;
    ngx_http_chat_rel_t   rel;

    ids = ngx_alloc(NGX_HTTP_CHAT_STORY_AUTHORS_MAX * sizeof(bson_oid_t),
                    ngx_cycle->log);
    if (ids == NULL) {
        return NGX_ERROR;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "contact", &a->me);
    bson_init(&opts);
    BSON_APPEND_INT64(&opts, "limit", NGX_HTTP_CHAT_STORY_AUTHORS_MAX);

    c = mongoc_database_get_collection(db, "contacts");
    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    n = 0;

    while (n < NGX_HTTP_CHAT_STORY_AUTHORS_MAX
           && mongoc_cursor_next(cursor, &doc))
    {
        if (ngx_http_chat_story_oid(doc, "owner", &ids[n])) {
            n++;
        }
    }

    rc = mongoc_cursor_error(cursor, error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);
    bson_destroy(&opts);
    bson_destroy(&filter);

    /* the relations seen from the author: "mine" are the author's contacts */
    if (rc != NGX_OK
        || ngx_http_chat_rel_load(db, &a->me, ids, n, &rel, error) != NGX_OK)
    {
        ngx_free(ids);
        return NGX_ERROR;
    }

    for (i = 0; i < n && rc == NGX_OK; i++) {
        if (ngx_http_chat_oidset_has(&rel.blockers, &ids[i])
            || ngx_http_chat_oidset_has(&rel.blocked, &ids[i]))
        {
            continue;
        }

        contact = ngx_http_chat_oidset_has(&rel.mine, &ids[i]);
        listed = 0;

        for (j = 0; j < a->nids; j++) {
            if (bson_oid_equal(&a->ids[j], &ids[i])) {
                listed = 1;
            }
        }

        switch (a->mode) {

        case NGX_HTTP_CHAT_STORY_EVERYONE:
            ok = 1;
            break;

        case NGX_HTTP_CHAT_STORY_CONTACTS:
            ok = contact;
            break;

        case NGX_HTTP_CHAT_STORY_CONTACTS_EXCEPT:
            ok = contact && !listed;
            break;

        default:
            ok = listed;
            break;
        }

        if (ok) {
            rc = ngx_http_chat_chats_event(answer, "user:", &ids[i], '-',
                                           &a->me, NULL, "story_created",
                                           json_pack("{s:O}", "story",
                                                     story));
        }
    }

    ngx_http_chat_rel_free(&rel);
    ngx_free(ids);

    return rc;
}


/* POST /api/stories */

void
ngx_http_chat_story_create_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    char                  buf[16];
    bson_t                doc, filter, media, privacy, ids;
    json_t               *answer, *story;
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

    answer = json_pack("{s:o}", "story", ngx_http_chat_story_json(&doc, 1));
    story = ngx_http_chat_story_json(&doc, 0);
    bson_destroy(&doc);

    /* stored: a failure to tell is logged, the story stands */
    if (answer && story
        && ngx_http_chat_story_created(db, a, answer, story, &t->error)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, t->log, 0,
                      "chat: story_created not sent: %s", t->error.message);
    }

    json_decref(story);
    ngx_http_chat_story_answer(t, NGX_OK, answer);
}


/* DELETE /api/stories/:id: the author's, live or not */

void
ngx_http_chat_story_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    char                  oid[25];
    bson_t                filter, reply, opts;
    json_t               *answer;
    bson_oid_t            viewer;
    bson_iter_t           it;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
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

    bson_oid_to_string(&a->id, oid);
    answer = json_pack("{s:s,s:b}", "id", oid, "deleted", 1);

    /* those who saw it are told, then its views go with it */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "storyId", &a->id);
    c = mongoc_database_get_collection(db, "storyviews");

    bson_init(&opts);
    BSON_APPEND_INT64(&opts, "limit", NGX_HTTP_CHAT_STORY_AUTHORS_MAX);
    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    while (answer && mongoc_cursor_next(cursor, &doc)) {
        if (ngx_http_chat_story_oid(doc, "viewerId", &viewer)) {
            (void) ngx_http_chat_chats_event(answer, "user:", &viewer, '-',
                                             &a->me, NULL, "story_deleted",
                                             json_pack("{s:s,s:o}",
                                                 "storyId", oid, "userId",
                                                 ngx_http_chat_story_oid_json(
                                                     &a->me)));
        }
    }

    if (mongoc_cursor_error(cursor, &t->error)) {
        ngx_log_error(NGX_LOG_WARN, t->log, 0,
                      "chat: story_deleted not sent: %s", t->error.message);
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);

    if (!mongoc_collection_delete_many(c, &filter, NULL, NULL, &t->error)) {
        ngx_log_error(NGX_LOG_WARN, t->log, 0,
                      "chat: views of a deleted story left: %s",
                      t->error.message);
    }

    bson_destroy(&filter);
    mongoc_collection_destroy(c);

    ngx_http_chat_story_answer(t, NGX_OK, answer);
}


/* the view of a->me of a story, as a JSON object */

json_t *
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
    json_t               *answer;
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

    answer = json_pack("{s:o}", "view", ngx_http_chat_story_view_json(&doc));
    bson_destroy(&doc);

    /* the first view only, to the author's sockets */
    if (answer && rc == NGX_OK) {
        (void) ngx_http_chat_chats_event(answer, "user:", &author, '-',
                                         &a->me, NULL, "story_viewed",
                                         json_deep_copy(json_object_get(
                                             answer, "view")));
    }

    ngx_http_chat_story_answer(t, rc, answer);
}


/* POST and DELETE /api/stories/:id/react: one emoji per viewer */

void
ngx_http_chat_story_react_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_story_arg_t *a = t->arg;

    char                  key[50], sid[25], uid[25];
    json_t               *answer;
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

    answer = json_pack("{s:{s:s,s:s,s:s?}}", "reaction", "storyId", sid,
                       "userId", uid, "emoji",
                       a->emoji[0] ? a->emoji : NULL);

    if (answer) {
        (void) ngx_http_chat_chats_event(answer, "user:", &author, '-',
                                         &a->me, NULL, "story_reacted",
                                         json_pack("{s:s,s:s,s:s?}",
                                                   "storyId", sid,
                                                   "userId", uid, "emoji",
                                                   a->emoji[0] ? a->emoji
                                                               : NULL));
    }

    ngx_http_chat_story_answer(t, NGX_DONE, answer);
}
