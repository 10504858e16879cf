/*
 * Copyright (C) ngx_chat_module authors
 *
 * Highlights: a user's stories kept past their lifetime, in named sets,
 * seen by whom each set's privacy allows; and the sweeper of expired
 * stories that are in none.
 */


#include "ngx_http_chat_highlights_store.h"
#include "ngx_http_chat_stories_store_int.h"


static const char  *ngx_http_chat_highlight_privacies[] = {
    "everyone", "contacts"
};


/* may me see a highlight of owner with this privacy: 1, 0, or -1 */

static ngx_int_t
ngx_http_chat_highlight_visible(mongoc_database_t *db, const bson_oid_t *me,
    const bson_oid_t *owner, ngx_uint_t privacy, bson_error_t *error)
{
    ngx_int_t            ok;
    bson_oid_t           who;
    ngx_http_chat_rel_t  rel;

    if (bson_oid_equal(me, owner)) {
        return 1;
    }

    who = *owner;

    if (ngx_http_chat_rel_load(db, me, &who, 1, &rel, error) != NGX_OK) {
        return -1;
    }

    /* a block either way hides them, as it hides the stories */
    ok = !ngx_http_chat_oidset_has(&rel.blockers, owner)
         && !ngx_http_chat_oidset_has(&rel.blocked, owner)
         && (privacy == NGX_HTTP_CHAT_HIGHLIGHT_EVERYONE
             || ngx_http_chat_oidset_has(&rel.they_have_me, owner));

    ngx_http_chat_rel_free(&rel);

    return ok;
}


static ngx_uint_t
ngx_http_chat_highlight_privacy(const bson_t *doc)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, "privacy")
        && BSON_ITER_HOLDS_UTF8(&it)
        && ngx_strcmp(bson_iter_utf8(&it, NULL), "contacts") == 0)
    {
        return NGX_HTTP_CHAT_HIGHLIGHT_CONTACTS;
    }

    return NGX_HTTP_CHAT_HIGHLIGHT_EVERYONE;
}


/* the storyIds of a highlight into ids (NGX_HTTP_CHAT_HIGHLIGHT_..._MAX) */

static size_t
ngx_http_chat_highlight_ids(const bson_t *doc, bson_oid_t *ids)
{
    size_t       n;
    bson_iter_t  it, arr;

    n = 0;

    if (bson_iter_init_find(&it, doc, "storyIds")
        && BSON_ITER_HOLDS_ARRAY(&it)
        && bson_iter_recurse(&it, &arr))
    {
        while (bson_iter_next(&arr)
               && n < NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX)
        {
            if (BSON_ITER_HOLDS_OID(&arr)) {
                bson_oid_copy(bson_iter_oid(&arr), &ids[n++]);
            }
        }
    }

    return n;
}


static ngx_uint_t
ngx_http_chat_highlight_has(bson_oid_t *ids, size_t n, const bson_oid_t *id)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (bson_oid_equal(&ids[i], id)) {
            return 1;
        }
    }

    return 0;
}


/*
 * key: {$in: ids}; for storyIds, {$elemMatch: {$in: ids}}: FerretDB's
 * search on an indexed field matches scalars only, never an array's
 * elements, and $elemMatch is what both it and MongoDB (on the multikey
 * index) answer alike.
 */

static void
ngx_http_chat_highlight_in(bson_t *filter, const char *key, bson_oid_t *ids,
    size_t n)
{
    char     k[16];
    size_t   i;
    bson_t   in, arr, elem;
    bson_t  *parent;

    parent = filter;

    if (ngx_strcmp(key, "storyIds") == 0) {
        BSON_APPEND_DOCUMENT_BEGIN(filter, key, &elem);
        BSON_APPEND_DOCUMENT_BEGIN(&elem, "$elemMatch", &in);
        parent = &elem;

    } else {
        BSON_APPEND_DOCUMENT_BEGIN(filter, key, &in);
    }

    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);

    for (i = 0; i < n; i++) {
        ngx_sprintf((u_char *) k, "%uz%Z", i);
        BSON_APPEND_OID(&arr, k, &ids[i]);
    }

    bson_append_array_end(&in, &arr);
    bson_append_document_end(parent, &in);

    if (parent != filter) {
        bson_append_document_end(filter, &elem);
    }
}


/* are all n ids stories of me (live or expired): 1, 0, -1 */

static ngx_int_t
ngx_http_chat_highlight_mine(mongoc_database_t *db, const bson_oid_t *me,
    bson_oid_t *ids, size_t n, bson_error_t *error)
{
    bson_t                filter;
    int64_t               count;
    mongoc_collection_t  *c;

    if (n == 0) {
        return 1;
    }

    bson_init(&filter);
    ngx_http_chat_highlight_in(&filter, "_id", ids, n);
    BSON_APPEND_OID(&filter, "authorId", me);

    c = mongoc_database_get_collection(db, "stories");
    count = mongoc_collection_count_documents(c, &filter, NULL, NULL, NULL,
                                              error);
    mongoc_collection_destroy(c);
    bson_destroy(&filter);

    if (count < 0) {
        return -1;
    }

    return count == (int64_t) n;
}


/*
 * kept: true on stories now in a highlight; of the others, those in no
 * highlight lose it, so the sweeper takes them at their expiry.
 */

static ngx_int_t
ngx_http_chat_highlight_keep(mongoc_database_t *db, bson_oid_t *ids,
    size_t n, ngx_uint_t kept, bson_error_t *error)
{
    size_t                i;
    bson_t                filter, update, set;
    int64_t               count;
    ngx_int_t             rc;
    mongoc_collection_t  *c, *h;

    if (n == 0) {
        return NGX_OK;
    }

    rc = NGX_OK;
    c = mongoc_database_get_collection(db, "stories");
    h = mongoc_database_get_collection(db, "highlights");

    if (kept) {
        bson_init(&filter);
        ngx_http_chat_highlight_in(&filter, "_id", ids, n);
        bson_init(&update);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
        BSON_APPEND_BOOL(&set, "kept", true);
        bson_append_document_end(&update, &set);

        if (!mongoc_collection_update_many(c, &filter, &update, NULL, NULL,
                                           error))
        {
            rc = NGX_ERROR;
        }

        bson_destroy(&filter);
        bson_destroy(&update);
        goto done;
    }

    for (i = 0; i < n; i++) {
        bson_init(&filter);
        ngx_http_chat_highlight_in(&filter, "storyIds", &ids[i], 1);
        count = mongoc_collection_count_documents(h, &filter, NULL, NULL,
                                                  NULL, error);
        bson_destroy(&filter);

        if (count < 0) {
            rc = NGX_ERROR;
            break;
        }

        if (count > 0) {
            continue;
        }

        bson_init(&filter);
        BSON_APPEND_OID(&filter, "_id", &ids[i]);
        bson_init(&update);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &set);
        BSON_APPEND_UTF8(&set, "kept", "");
        bson_append_document_end(&update, &set);

        if (!mongoc_collection_update_one(c, &filter, &update, NULL, NULL,
                                          error))
        {
            rc = NGX_ERROR;
        }

        bson_destroy(&filter);
        bson_destroy(&update);

        if (rc != NGX_OK) {
            break;
        }
    }

done:

    mongoc_collection_destroy(c);
    mongoc_collection_destroy(h);

    return rc;
}


/* a highlight as clients see it, with its stories, oldest first */

static json_t *
ngx_http_chat_highlight_json(mongoc_database_t *db, const bson_t *doc,
    ngx_uint_t own, bson_error_t *error)
{
    size_t                n;
    ngx_uint_t            bad;
    bson_t                filter, opts, sort;
    json_t               *h, *stories, *ids, *s;
    bson_oid_t            owner, cover;
    bson_oid_t            list[NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX];
    bson_iter_t           it;
    const bson_t         *sd;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    if (!ngx_http_chat_story_oid(doc, "ownerId", &owner)) {
        return NULL;
    }

    n = ngx_http_chat_highlight_ids(doc, list);

    h = json_object();
    stories = json_array();
    ids = json_array();

    if (h == NULL || stories == NULL || ids == NULL) {
        goto failed;
    }

    if (n) {
        bson_init(&filter);
        ngx_http_chat_highlight_in(&filter, "_id", list, n);
        BSON_APPEND_OID(&filter, "authorId", &owner);
        bson_init(&opts);
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
        BSON_APPEND_INT32(&sort, "createdAt", 1);
        bson_append_document_end(&opts, &sort);

        c = mongoc_database_get_collection(db, "stories");
        cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

        while (mongoc_cursor_next(cursor, &sd)) {
            s = ngx_http_chat_story_json(sd, own);
            if (s == NULL || json_array_append_new(stories, s) != 0) {
                break;
            }

            s = json_object_get(s, "id");
            if (s) {
                json_array_append(ids, s);
            }
        }

        bad = mongoc_cursor_error(cursor, error);

        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(c);
        bson_destroy(&filter);
        bson_destroy(&opts);

        if (bad) {
            goto failed;
        }
    }

    if (ngx_http_chat_story_oid(doc, "_id", &cover)) {
        json_object_set_new(h, "id", ngx_http_chat_story_oid_json(&cover));
    }

    json_object_set_new(h, "userId", ngx_http_chat_story_oid_json(&owner));

    if (bson_iter_init_find(&it, doc, "title") && BSON_ITER_HOLDS_UTF8(&it)) {
        json_object_set_new(h, "title",
                            json_string(bson_iter_utf8(&it, NULL)));
    }

    /* a cover that left, or never was, falls back to the first story */
    if (ngx_http_chat_story_oid(doc, "cover", &cover)
        && ngx_http_chat_highlight_has(list, n, &cover))
    {
        json_object_set_new(h, "cover", ngx_http_chat_story_oid_json(&cover));

    } else if (json_array_size(ids)) {
        json_object_set(h, "cover", json_array_get(ids, 0));
    }

    if (own) {
        json_object_set_new(h, "privacy", json_string(
            ngx_http_chat_highlight_privacies[
                ngx_http_chat_highlight_privacy(doc)]));
    }

    if (bson_iter_init_find(&it, doc, "createdAt")
        && BSON_ITER_HOLDS_DATE_TIME(&it))
    {
        json_object_set_new(h, "createdAt",
                        ngx_http_chat_json_time(bson_iter_date_time(&it)));
    }

    if (bson_iter_init_find(&it, doc, "updatedAt")
        && BSON_ITER_HOLDS_DATE_TIME(&it))
    {
        json_object_set_new(h, "updatedAt",
                        ngx_http_chat_json_time(bson_iter_date_time(&it)));
    }

    json_object_set_new(h, "storyIds", ids);
    json_object_set_new(h, "stories", stories);

    return h;

failed:

    json_decref(h);
    json_decref(stories);
    json_decref(ids);

    return NULL;
}


static void
ngx_http_chat_highlight_refuse(ngx_http_chat_mongo_task_t *t,
    const char *field, const char *reason)
{
    ngx_http_chat_story_answer(t, NGX_ABORT,
                               json_pack("{s:s,s:s}", "field", field,
                                         "reason", reason));
}


static void
ngx_http_chat_highlight_answer(ngx_http_chat_mongo_task_t *t,
    mongoc_database_t *db, const bson_t *doc, ngx_int_t rc)
{
    json_t  *h;

    h = ngx_http_chat_highlight_json(db, doc, 1, &t->error);

    ngx_http_chat_story_answer(t, rc,
                               h ? json_pack("{s:o}", "highlight", h)
                                 : NULL);
}


/* POST /api/stories/highlights */

void
ngx_http_chat_highlight_create_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_highlight_arg_t *a = t->arg;

    char                  k[16];
    size_t                i;
    bson_t                doc, arr;
    int64_t               now, count;
    ngx_int_t             rc;
    bson_oid_t            id;
    mongoc_collection_t  *c;

    rc = ngx_http_chat_highlight_mine(db, &a->me, a->add, a->nadd,
                                      &t->error);
    if (rc != 1) {
        if (rc == 0) {
            ngx_http_chat_highlight_refuse(t, "storyIds",
                                           "holds a story that is not "
                                           "yours");
        } else {
            t->rc = NGX_ERROR;
        }
        return;
    }

    if (a->has_cover
        && !ngx_http_chat_highlight_has(a->add, a->nadd, &a->cover))
    {
        ngx_http_chat_highlight_refuse(t, "cover",
                                       "is not one of the storyIds");
        return;
    }

    c = mongoc_database_get_collection(db, "highlights");

    bson_init(&doc);
    BSON_APPEND_OID(&doc, "ownerId", &a->me);
    count = mongoc_collection_count_documents(c, &doc, NULL, NULL, NULL,
                                              &t->error);

    if (count < 0 || count >= NGX_HTTP_CHAT_HIGHLIGHTS_MAX) {
        mongoc_collection_destroy(c);
        bson_destroy(&doc);

        if (count < 0) {
            t->rc = NGX_ERROR;
        } else {
            ngx_http_chat_highlight_refuse(t, "title",
                                           "you have 100 highlights "
                                           "already");
        }
        return;
    }

    bson_reinit(&doc);
    now = ngx_http_chat_story_now();
    bson_oid_init(&id, NULL);

    BSON_APPEND_OID(&doc, "_id", &id);
    BSON_APPEND_OID(&doc, "ownerId", &a->me);
    BSON_APPEND_UTF8(&doc, "title", a->title);
    BSON_APPEND_ARRAY_BEGIN(&doc, "storyIds", &arr);

    for (i = 0; i < a->nadd; i++) {
        ngx_sprintf((u_char *) k, "%uz%Z", i);
        BSON_APPEND_OID(&arr, k, &a->add[i]);
    }

    bson_append_array_end(&doc, &arr);

    if (a->has_cover) {
        BSON_APPEND_OID(&doc, "cover", &a->cover);
    }

    BSON_APPEND_UTF8(&doc, "privacy",
                     ngx_http_chat_highlight_privacies[a->privacy]);
    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
    BSON_APPEND_DATE_TIME(&doc, "updatedAt", now);

    if (!mongoc_collection_insert_one(c, &doc, NULL, NULL, &t->error)
        || ngx_http_chat_highlight_keep(db, a->add, a->nadd, 1, &t->error)
           != NGX_OK)
    {
        mongoc_collection_destroy(c);
        bson_destroy(&doc);
        t->rc = NGX_ERROR;
        return;
    }

    mongoc_collection_destroy(c);

    ngx_http_chat_highlight_answer(t, db, &doc, NGX_OK);
    bson_destroy(&doc);
}


/* PATCH /api/stories/highlights/:id: the last write wins */

void
ngx_http_chat_highlight_update_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_highlight_arg_t *a = t->arg;

    char                  k[16];
    size_t                i, n, m, nleft;
    bson_t                filter, doc, update, set, arr, unset;
    ngx_int_t             rc;
    bson_oid_t            old[NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX];
    bson_oid_t            now_in[NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX * 2];
    bson_oid_t            left[NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX];
    bson_oid_t            cover;
    mongoc_collection_t  *c;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->id);
    BSON_APPEND_OID(&filter, "ownerId", &a->me);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "highlights", &filter, NULL, &doc,
                                      &t->error);
    if (rc != NGX_OK) {
        bson_destroy(&filter);
        bson_destroy(&doc);
        t->rc = rc;
        return;
    }

    rc = ngx_http_chat_highlight_mine(db, &a->me, a->add, a->nadd,
                                      &t->error);
    if (rc != 1) {
        bson_destroy(&filter);
        bson_destroy(&doc);

        if (rc == 0) {
            ngx_http_chat_highlight_refuse(t, "addStoryIds",
                                           "holds a story that is not "
                                           "yours");
        } else {
            t->rc = NGX_ERROR;
        }
        return;
    }

    n = ngx_http_chat_highlight_ids(&doc, old);
    m = 0;
    nleft = 0;

    for (i = 0; i < n; i++) {
        if (ngx_http_chat_highlight_has(a->remove, a->nremove, &old[i])) {
            left[nleft++] = old[i];

        } else {
            now_in[m++] = old[i];
        }
    }

    for (i = 0; i < a->nadd; i++) {
        if (!ngx_http_chat_highlight_has(now_in, m, &a->add[i])) {
            now_in[m++] = a->add[i];
        }
    }

    if (m > NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX || m == 0) {
        bson_destroy(&filter);
        bson_destroy(&doc);
        ngx_http_chat_highlight_refuse(t, m ? "addStoryIds"
                                            : "removeStoryIds",
                                       m ? "would make more than 100 "
                                           "stories"
                                         : "would leave the highlight "
                                           "empty (delete it instead)");
        return;
    }

    if (a->has_cover && !ngx_http_chat_highlight_has(now_in, m, &a->cover)) {
        bson_destroy(&filter);
        bson_destroy(&doc);
        ngx_http_chat_highlight_refuse(t, "cover",
                                       "is not one of the highlight's "
                                       "stories");
        return;
    }

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);

    if (a->has_title) {
        BSON_APPEND_UTF8(&set, "title", a->title);
    }

    if (a->has_privacy) {
        BSON_APPEND_UTF8(&set, "privacy",
                         ngx_http_chat_highlight_privacies[a->privacy]);
    }

    if (a->has_cover) {
        BSON_APPEND_OID(&set, "cover", &a->cover);
    }

    BSON_APPEND_ARRAY_BEGIN(&set, "storyIds", &arr);

    for (i = 0; i < m; i++) {
        ngx_sprintf((u_char *) k, "%uz%Z", i);
        BSON_APPEND_OID(&arr, k, &now_in[i]);
    }

    bson_append_array_end(&set, &arr);
    BSON_APPEND_DATE_TIME(&set, "updatedAt", ngx_http_chat_story_now());
    bson_append_document_end(&update, &set);

    /* a cover removed with its story goes too */
    if (!a->has_cover && ngx_http_chat_story_oid(&doc, "cover", &cover)
        && !ngx_http_chat_highlight_has(now_in, m, &cover))
    {
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
        BSON_APPEND_UTF8(&unset, "cover", "");
        bson_append_document_end(&update, &unset);
    }

    c = mongoc_database_get_collection(db, "highlights");

    if (!mongoc_collection_update_one(c, &filter, &update, NULL, NULL,
                                      &t->error)
        || ngx_http_chat_highlight_keep(db, a->add, a->nadd, 1, &t->error)
           != NGX_OK
        || ngx_http_chat_highlight_keep(db, left, nleft, 0, &t->error)
           != NGX_OK)
    {
        rc = NGX_ERROR;
    }

    bson_destroy(&update);
    bson_reinit(&doc);

    if (rc != NGX_ERROR) {
        rc = ngx_http_chat_mongo_find_one(db, "highlights", &filter, NULL,
                                          &doc, &t->error);
    }

    mongoc_collection_destroy(c);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        bson_destroy(&doc);
        t->rc = rc;
        return;
    }

    ngx_http_chat_highlight_answer(t, db, &doc, NGX_OK);
    bson_destroy(&doc);
}


/* DELETE /api/stories/highlights/:id */

void
ngx_http_chat_highlight_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_highlight_arg_t *a = t->arg;

    size_t                n;
    bson_t                filter, doc, reply;
    ngx_int_t             rc;
    bson_oid_t            ids[NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX];
    bson_iter_t           it;
    mongoc_collection_t  *c;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->id);
    BSON_APPEND_OID(&filter, "ownerId", &a->me);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "highlights", &filter, NULL, &doc,
                                      &t->error);
    if (rc != NGX_OK) {
        bson_destroy(&filter);
        bson_destroy(&doc);
        t->rc = rc;
        return;
    }

    n = ngx_http_chat_highlight_ids(&doc, ids);
    bson_destroy(&doc);

    c = mongoc_database_get_collection(db, "highlights");

    if (!mongoc_collection_delete_one(c, &filter, NULL, &reply, &t->error)) {
        rc = NGX_ERROR;

    } else if (!bson_iter_init_find(&it, &reply, "deletedCount")
               || bson_iter_as_int64(&it) == 0)
    {
        rc = NGX_DECLINED;

    } else {
        rc = ngx_http_chat_highlight_keep(db, ids, n, 0, &t->error);
    }

    bson_destroy(&reply);
    bson_destroy(&filter);
    mongoc_collection_destroy(c);

    if (rc != NGX_OK) {
        t->rc = rc;
        return;
    }

    ngx_http_chat_story_answer(t, NGX_OK,
                               json_pack("{s:o,s:b}", "id",
                                         ngx_http_chat_story_oid_json(&a->id),
                                         "deleted", 1));
}


/* GET /api/users/:id/highlights: newest first */

void
ngx_http_chat_highlight_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_highlight_arg_t *a = t->arg;

    bson_t                filter, opts, sort;
    json_t               *items, *h;
    ngx_int_t             all, contacts;
    ngx_uint_t            own;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    own = bson_oid_equal(&a->me, &a->id);

    /* what each privacy lets me see: one read of our relations */
    all = ngx_http_chat_highlight_visible(db, &a->me, &a->id,
                                          NGX_HTTP_CHAT_HIGHLIGHT_EVERYONE,
                                          &t->error);
    contacts = ngx_http_chat_highlight_visible(db, &a->me, &a->id,
                                       NGX_HTTP_CHAT_HIGHLIGHT_CONTACTS,
                                       &t->error);

    if (all < 0 || contacts < 0) {
        t->rc = NGX_ERROR;
        return;
    }

    items = json_array();
    if (items == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    if (!all) {
        ngx_http_chat_story_answer(t, NGX_OK,
                                   json_pack("{s:o}", "items", items));
        return;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "ownerId", &a->id);

    if (!contacts) {
        BSON_APPEND_UTF8(&filter, "privacy", "everyone");
    }

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "createdAt", -1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", NGX_HTTP_CHAT_HIGHLIGHTS_MAX);

    c = mongoc_database_get_collection(db, "highlights");
    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    while (mongoc_cursor_next(cursor, &doc)) {
        h = ngx_http_chat_highlight_json(db, doc, own, &t->error);
        if (h == NULL || json_array_append_new(items, h) != 0) {
            json_decref(items);
            items = NULL;
            break;
        }
    }

    if (items && mongoc_cursor_error(cursor, &t->error)) {
        json_decref(items);
        items = NULL;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);
    bson_destroy(&filter);
    bson_destroy(&opts);

    ngx_http_chat_story_answer(t, NGX_OK,
                               items ? json_pack("{s:o}", "items", items)
                                     : NULL);
}


ngx_int_t
ngx_http_chat_highlight_story(mongoc_database_t *db, const bson_oid_t *me,
    const bson_oid_t *id, bson_t *doc, bson_oid_t *author,
    bson_error_t *error)
{
    bson_t                filter, opts;
    ngx_int_t             rc, ok;
    bson_oid_t            owner;
    const bson_t         *h;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    bson_init(&filter);
    ngx_http_chat_highlight_in(&filter, "storyIds", (bson_oid_t *) id, 1);
    bson_init(&opts);
    BSON_APPEND_INT64(&opts, "limit", 20);

    c = mongoc_database_get_collection(db, "highlights");
    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    rc = NGX_DECLINED;

    while (rc == NGX_DECLINED && mongoc_cursor_next(cursor, &h)) {
        if (!ngx_http_chat_story_oid(h, "ownerId", &owner)) {
            continue;
        }

        ok = ngx_http_chat_highlight_visible(db, me, &owner,
                                         ngx_http_chat_highlight_privacy(h),
                                         error);
        if (ok < 0) {
            rc = NGX_ERROR;

        } else if (ok) {
            rc = NGX_OK;
        }
    }

    if (rc != NGX_ERROR && mongoc_cursor_error(cursor, error)) {
        rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);
    bson_destroy(&opts);

    if (rc != NGX_OK) {
        bson_destroy(&filter);
        return rc;
    }

    /* the story itself, whatever its expiry, of the highlight's owner */
    bson_reinit(&filter);
    BSON_APPEND_OID(&filter, "_id", id);
    BSON_APPEND_OID(&filter, "authorId", &owner);

    rc = ngx_http_chat_mongo_find_one(db, "stories", &filter, NULL, doc,
                                      error);
    bson_destroy(&filter);

    if (rc == NGX_OK) {
        *author = owner;
    }

    return rc;
}


/*
 * The sweeper: expired stories not kept by a highlight, oldest first, at
 * most NGX_HTTP_CHAT_STORY_SWEEP_BATCH a run, with their views.  A story
 * found in a highlight (added as it expired) is marked kept instead.
 * t->result: NULL; t->rc the count removed (>= 0) or NGX_ERROR.
 */

void
ngx_http_chat_story_sweep_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    size_t                n, i, nk;
    bson_t                filter, opts, sort, lte, ne, proj;
    bson_oid_t           *ids, *kept;
    bson_iter_t           it, sub;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c, *h, *v;

    ids = ngx_alloc(2 * NGX_HTTP_CHAT_STORY_SWEEP_BATCH * sizeof(bson_oid_t),
                    ngx_cycle->log);
    if (ids == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    kept = ids + NGX_HTTP_CHAT_STORY_SWEEP_BATCH;

    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "expiresAt", &lte);
    BSON_APPEND_DATE_TIME(&lte, "$lte", ngx_http_chat_story_now());
    bson_append_document_end(&filter, &lte);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "kept", &ne);
    BSON_APPEND_BOOL(&ne, "$ne", true);
    bson_append_document_end(&filter, &ne);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "expiresAt", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 1);
    bson_append_document_end(&opts, &proj);
    BSON_APPEND_INT64(&opts, "limit", NGX_HTTP_CHAT_STORY_SWEEP_BATCH);

    c = mongoc_database_get_collection(db, "stories");
    h = mongoc_database_get_collection(db, "highlights");
    v = mongoc_database_get_collection(db, "storyviews");

    n = 0;
    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    while (n < NGX_HTTP_CHAT_STORY_SWEEP_BATCH
           && mongoc_cursor_next(cursor, &doc))
    {
        if (ngx_http_chat_story_oid(doc, "_id", &ids[n])) {
            n++;
        }
    }

    t->rc = mongoc_cursor_error(cursor, &t->error) ? NGX_ERROR : NGX_OK;
    mongoc_cursor_destroy(cursor);
    bson_destroy(&filter);
    bson_destroy(&opts);

    if (t->rc != NGX_OK || n == 0) {
        goto done;
    }

    /* those a highlight holds stay, marked so the next sweeps skip them */
    bson_init(&filter);
    ngx_http_chat_highlight_in(&filter, "storyIds", ids, n);
    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "storyIds", 1);
    bson_append_document_end(&opts, &proj);

    nk = 0;
    cursor = mongoc_collection_find_with_opts(h, &filter, &opts, NULL);

    while (mongoc_cursor_next(cursor, &doc)) {
        if (!bson_iter_init_find(&it, doc, "storyIds")
            || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &sub))
        {
            continue;
        }

        while (bson_iter_next(&sub)) {
            if (!BSON_ITER_HOLDS_OID(&sub)) {
                continue;
            }

            for (i = 0; i < n; i++) {
                if (bson_oid_equal(bson_iter_oid(&sub), &ids[i])) {
                    kept[nk++] = ids[i];
                    ids[i] = ids[--n];
                    break;
                }
            }
        }
    }

    if (mongoc_cursor_error(cursor, &t->error)) {
        t->rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(&filter);
    bson_destroy(&opts);

    if (t->rc != NGX_OK
        || ngx_http_chat_highlight_keep(db, kept, nk, 1, &t->error)
           != NGX_OK)
    {
        t->rc = NGX_ERROR;
        goto done;
    }

    if (n == 0) {
        goto done;
    }

    /* the views first: a story is never gone while its views stay */
    bson_init(&filter);
    ngx_http_chat_highlight_in(&filter, "storyId", ids, n);

    if (!mongoc_collection_delete_many(v, &filter, NULL, NULL, &t->error)) {
        t->rc = NGX_ERROR;
    }

    bson_reinit(&filter);
    ngx_http_chat_highlight_in(&filter, "_id", ids, n);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "kept", &ne);
    BSON_APPEND_BOOL(&ne, "$ne", true);
    bson_append_document_end(&filter, &ne);

    if (t->rc == NGX_OK
        && !mongoc_collection_delete_many(c, &filter, NULL, NULL, &t->error))
    {
        t->rc = NGX_ERROR;
    }

    bson_destroy(&filter);

    if (t->rc == NGX_OK) {
        t->rc = (ngx_int_t) n;
    }

done:

    mongoc_collection_destroy(c);
    mongoc_collection_destroy(h);
    mongoc_collection_destroy(v);
    ngx_free(ids);
}
