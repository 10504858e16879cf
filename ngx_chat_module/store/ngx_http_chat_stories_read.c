/*
 * Copyright (C) ngx_chat_module authors
 *
 * The reads of stories: one, mine, a user's, the feed, a story's viewers;
 * each leaves out what expired and what the viewer may not see.
 */


#include "ngx_http_chat_stories_store_int.h"
#include "ngx_http_chat_highlights_store.h"


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

    /* expired, or not mine to see, but in a highlight I may see */
    if (rc == NGX_DECLINED) {
        bson_reinit(&doc);
        rc = ngx_http_chat_highlight_story(db, &a->me, &a->id, &doc,
                                           &author, &t->error);
    }

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

    ngx_http_chat_story_answer(t, NGX_OK,
                               s ? json_pack("{s:o}", "story", s) : NULL);
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


static void
ngx_http_chat_story_feed_free(json_t **groups, size_t n, bson_oid_t *authors,
    u_char *seen)
{
    size_t  i;

    if (groups) {
        for (i = 0; i < n; i++) {
            json_decref(groups[i]);
        }

        ngx_free(groups);
    }

    if (authors) {
        ngx_free(authors);
    }

    if (seen) {
        ngx_free(seen);
    }
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

    char         next[32];
    u_char      *seen;
    size_t       i, j, ngroups, first;
    json_t      *items, *st, **groups;
    ssize_t      n, total;
    bson_t     **docs;
    bson_oid_t  *ids, *authors, author;

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
    authors = ngx_alloc((total + 1) * sizeof(bson_oid_t), t->log);
    seen = ngx_calloc(total + 1, t->log);

    /* which I have seen: by _id, $in at most 1,000 at a time */
    if (groups == NULL || authors == NULL || seen == NULL
        || ngx_http_chat_story_seen(db, &a->me, docs, total, seen, &t->error)
           != NGX_OK)
    {
        ngx_http_chat_story_feed_free(groups, 0, authors, seen);
        ngx_http_chat_story_docs_free(docs, total);
        t->rc = NGX_ERROR;
        return;
    }

    /* the stories come oldest first: each author's in order */
    ngroups = 0;

    for (i = 0; i < (size_t) total; i++) {
        (void) ngx_http_chat_story_oid(docs[i], "authorId", &author);

        for (j = 0; j < ngroups; j++) {
            if (bson_oid_equal(&authors[j], &author)) {
                break;
            }
        }

        if (j == ngroups) {
            groups[j] = json_pack("{s:{s:o},s:[],s:b}", "user", "id",
                                  ngx_http_chat_story_oid_json(&author),
                                  "stories", "hasUnseen", 0);
            if (groups[j] == NULL) {
                break;
            }

            bson_oid_copy(&author, &authors[j]);
            ngroups++;
        }

        st = ngx_http_chat_story_json(docs[i], 0);
        if (st == NULL) {
            break;
        }

        json_object_set_new(st, "seen", json_boolean(seen[i]));
        json_object_set(groups[j], "lastStoryAt",
                        json_object_get(st, "createdAt"));
        json_array_append_new(json_object_get(groups[j], "stories"), st);

        if (!seen[i]) {
            json_object_set_new(groups[j], "hasUnseen", json_true());
        }
    }

    ngx_http_chat_story_docs_free(docs, total);

    if (i < (size_t) total) {
        ngx_http_chat_story_feed_free(groups, ngroups, authors, seen);
        t->rc = NGX_ERROR;
        return;
    }

    ngx_free(authors);
    ngx_free(seen);

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
