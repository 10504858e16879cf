/*
 * Copyright (C) ngx_chat_module authors
 *
 * Users as others see them.  Every listing is filtered in four queries per
 * page, whatever its size: who of them has the viewer as a contact, who
 * blocked the viewer, whom the viewer has as contacts, whom the viewer
 * blocked; the answers are sorted id sets searched by bisection.
 */


#include "ngx_http_chat_people.h"
#include "ngx_http_chat_mongo_batch.h"
#include "ngx_http_chat_users.h"


#define NGX_HTTP_CHAT_DUP  11000


/* WhatsApp's defaults: everything to everyone but the number */
static const char  *ngx_http_chat_privacy_defaults[NGX_HTTP_CHAT_PRIVACY_N] = {
    "everyone", "everyone", "everyone", "everyone", "everyone", "everyone",
    "contacts"
};


static int
ngx_http_chat_oid_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(bson_oid_t));
}


ngx_uint_t
ngx_http_chat_oidset_has(ngx_http_chat_oidset_t *set, const bson_oid_t *oid)
{
    return set->n
           && bsearch(oid, set->ids, set->n, sizeof(bson_oid_t),
                      ngx_http_chat_oid_cmp) != NULL;
}


static void
ngx_http_chat_oidset_free(ngx_http_chat_oidset_t *set)
{
    if (set->ids) {
        ngx_free(set->ids);
    }

    set->ids = NULL;
    set->n = 0;
}


void
ngx_http_chat_rel_free(ngx_http_chat_rel_t *rel)
{
    ngx_http_chat_oidset_free(&rel->they_have_me);
    ngx_http_chat_oidset_free(&rel->blockers);
    ngx_http_chat_oidset_free(&rel->mine);
    ngx_http_chat_oidset_free(&rel->blocked);
}


static void
ngx_http_chat_append_oids(bson_t *b, const char *key, bson_oid_t *ids,
    size_t n)
{
    char         buf[16];
    bson_t       arr;
    size_t       i;
    const char  *k;

    BSON_APPEND_ARRAY_BEGIN(b, key, &arr);

    for (i = 0; i < n; i++) {
        bson_uint32_to_string((uint32_t) i, &k, buf, sizeof(buf));
        BSON_APPEND_OID(&arr, k, &ids[i]);
    }

    bson_append_array_end(b, &arr);
}


/*
 * The ids of field "pick" in coll's documents where "fixed" is viewer and
 * "among" is one of ids, sorted.
 */
static ngx_int_t
ngx_http_chat_oidset_load(mongoc_database_t *db, const char *coll,
    const char *fixed, const bson_oid_t *viewer, const char *among,
    bson_oid_t *ids, size_t n, const char *pick, ngx_http_chat_oidset_t *set,
    bson_error_t *error)
{
    bson_t                filter, in, opts, proj;
    bson_iter_t           it;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    set->ids = NULL;
    set->n = 0;

    if (n == 0) {
        return NGX_OK;
    }

    set->ids = ngx_alloc(n * sizeof(bson_oid_t), ngx_cycle->log);
    if (set->ids == NULL) {
        return NGX_ERROR;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, fixed, viewer);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, among, &in);
    ngx_http_chat_append_oids(&in, "$in", ids, n);
    bson_append_document_end(&filter, &in);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, pick, 1);
    bson_append_document_end(&opts, &proj);

    c = mongoc_database_get_collection(db, coll);
    cursor = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);

    while (set->n < n && mongoc_cursor_next(cursor, &doc)) {
        if (bson_iter_init_find(&it, doc, pick) && BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_copy(bson_iter_oid(&it), &set->ids[set->n++]);
        }
    }

    if (mongoc_cursor_error(cursor, error)) {
        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(c);
        bson_destroy(&opts);
        bson_destroy(&filter);
        ngx_http_chat_oidset_free(set);
        return NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);
    bson_destroy(&opts);
    bson_destroy(&filter);

    qsort(set->ids, set->n, sizeof(bson_oid_t), ngx_http_chat_oid_cmp);

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_rel_load(mongoc_database_t *db, const bson_oid_t *viewer,
    bson_oid_t *ids, size_t n, ngx_http_chat_rel_t *rel, bson_error_t *error)
{
    ngx_memzero(rel, sizeof(ngx_http_chat_rel_t));

    if (ngx_http_chat_oidset_load(db, "contacts", "contact", viewer, "owner",
                                  ids, n, "owner", &rel->they_have_me, error)
        != NGX_OK
        || ngx_http_chat_oidset_load(db, "blocks", "blocked", viewer, "owner",
                                     ids, n, "owner", &rel->blockers, error)
           != NGX_OK
        || ngx_http_chat_oidset_load(db, "contacts", "owner", viewer,
                                     "contact", ids, n, "contact",
                                     &rel->mine, error)
           != NGX_OK
        || ngx_http_chat_oidset_load(db, "blocks", "owner", viewer,
                                     "blocked", ids, n, "blocked",
                                     &rel->blocked, error)
           != NGX_OK)
    {
        ngx_http_chat_rel_free(rel);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static const char *
ngx_http_chat_privacy_rule(const bson_t *doc, ngx_uint_t i)
{
    bson_iter_t  it, sub;

    if (bson_iter_init_find(&it, doc, "privacy")
        && BSON_ITER_HOLDS_DOCUMENT(&it)
        && bson_iter_recurse(&it, &sub)
        && bson_iter_find(&sub, ngx_http_chat_privacy_keys[i])
        && BSON_ITER_HOLDS_UTF8(&sub))
    {
        return bson_iter_utf8(&sub, NULL);
    }

    return ngx_http_chat_privacy_defaults[i];
}


static ngx_uint_t
ngx_http_chat_privacy_allows(const bson_t *doc, ngx_uint_t i,
    ngx_uint_t they_have_me)
{
    const char  *rule;

    rule = ngx_http_chat_privacy_rule(doc, i);

    return ngx_strcmp(rule, "everyone") == 0
           || (they_have_me && ngx_strcmp(rule, "contacts") == 0);
}


/* one user as the viewer sees them */
static json_t *
ngx_http_chat_view(const bson_t *doc, ngx_http_chat_rel_t *rel)
{
    char          oidstr[25];
    json_t       *v;
    bson_oid_t    id;
    bson_iter_t   it;
    ngx_uint_t    they_have_me, blocker;
    const char   *s;

    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it)) {
        return NULL;
    }

    bson_oid_copy(bson_iter_oid(&it), &id);
    bson_oid_to_string(&id, oidstr);

    v = json_pack("{s:s}", "id", oidstr);
    if (v == NULL) {
        return NULL;
    }

    blocker = ngx_http_chat_oidset_has(&rel->blockers, &id);
    they_have_me = !blocker
                   && ngx_http_chat_oidset_has(&rel->they_have_me, &id);

#define ngx_http_chat_view_str(key)                                           \
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) {    \
        s = bson_iter_utf8(&it, NULL);                                        \
        json_object_set_new(v, key, json_string(s));                          \
    }

    ngx_http_chat_view_str("name");
    ngx_http_chat_view_str("username");

    /* someone who blocked the viewer shows a name and nothing more */
    if (!blocker) {
        if (ngx_http_chat_privacy_allows(doc, 2, they_have_me)) {
            ngx_http_chat_view_str("avatar");
        }

        if (ngx_http_chat_privacy_allows(doc, 3, they_have_me)) {
            ngx_http_chat_view_str("bio");
        }

        if (ngx_http_chat_privacy_allows(doc, 6, they_have_me)) {
            ngx_http_chat_view_str("phone");
        }

        /* online now: kept by the realtime endpoint */
        if (ngx_http_chat_privacy_allows(doc, 1, they_have_me)) {
            json_object_set_new(v, "online",
                                json_boolean(bson_iter_init_find(&it, doc,
                                                                 "online")
                                             && BSON_ITER_HOLDS_BOOL(&it)
                                             && bson_iter_bool(&it)));
        }

        /*
         * null when the document has none yet: Redis may know it
         * (ngx_http_chat_presence_read.c, which drops a null left)
         */
        if (ngx_http_chat_privacy_allows(doc, 0, they_have_me)) {
            json_object_set_new(v, "lastSeen",
                (bson_iter_init_find(&it, doc, "lastSeenAt")
                 && BSON_ITER_HOLDS_DATE_TIME(&it))
                ? ngx_http_chat_json_time(bson_iter_date_time(&it))
                : json_null());
        }
    }

#undef ngx_http_chat_view_str

    json_object_set_new(v, "isContact",
                        json_boolean(ngx_http_chat_oidset_has(&rel->mine,
                                                              &id)));
    json_object_set_new(v, "isBlocked",
                        json_boolean(ngx_http_chat_oidset_has(&rel->blocked,
                                                              &id)));

    return v;
}


static void
ngx_http_chat_people_cleanup(ngx_http_chat_mongo_task_t *t)
{
    if (t->result) {
        json_decref((json_t *) t->result);
        t->result = NULL;
    }
}


static void
ngx_http_chat_people_answer(ngx_http_chat_mongo_task_t *t, json_t *json)
{
    t->cleanup = ngx_http_chat_people_cleanup;
    t->result = json;
    t->rc = json ? NGX_OK : NGX_ERROR;
}


typedef void (*ngx_http_chat_view_each_pt)(const bson_t *doc, json_t *item,
    void *ctx);

static json_t *ngx_http_chat_views_each(mongoc_database_t *db,
    const bson_oid_t *viewer, const bson_t *filter, const bson_t *opts,
    ngx_uint_t skip_blockers, ngx_http_chat_view_each_pt each, void *ctx,
    bson_error_t *error);
static int ngx_http_chat_sync_cmp(const void *one, const void *two);
static void ngx_http_chat_sync_sent(const bson_t *doc, json_t *item,
    void *ctx);


/*
 * Runs filter on users (with opts) and returns the views as an array,
 * leaving out those who blocked the viewer when skip_blockers is set.
 */
static json_t *
ngx_http_chat_views(mongoc_database_t *db, const bson_oid_t *viewer,
    const bson_t *filter, const bson_t *opts, ngx_uint_t skip_blockers,
    bson_error_t *error)
{
    return ngx_http_chat_views_each(db, viewer, filter, opts, skip_blockers,
                                    NULL, NULL, error);
}


/* the same, each view shown to each() with its document before it goes */
static json_t *
ngx_http_chat_views_each(mongoc_database_t *db, const bson_oid_t *viewer,
    const bson_t *filter, const bson_t *opts, ngx_uint_t skip_blockers,
    ngx_http_chat_view_each_pt each, void *ctx, bson_error_t *error)
{
    size_t                 n, i, cap;
    json_t                *items, *v;
    bson_t               **docs;
    bson_oid_t            *ids, id;
    bson_iter_t            it;
    const bson_t          *doc;
    mongoc_cursor_t       *cursor;
    mongoc_collection_t   *users;
    ngx_http_chat_rel_t    rel;

    users = mongoc_database_get_collection(db, "users");
    cursor = mongoc_collection_find_with_opts(users, filter, opts, NULL);

    n = 0;
    cap = 64;
    docs = ngx_alloc(cap * sizeof(bson_t *), ngx_cycle->log);
    ids = ngx_alloc(cap * sizeof(bson_oid_t), ngx_cycle->log);
    items = NULL;

    if (docs == NULL || ids == NULL) {
        goto done;
    }

    while (mongoc_cursor_next(cursor, &doc)) {
        if (!bson_iter_init_find(&it, doc, "_id")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        if (n == cap) {
            bson_t      **nd;
            bson_oid_t   *ni;

            cap *= 2;
            nd = realloc(docs, cap * sizeof(bson_t *));
            if (nd == NULL) {
                goto done;
            }

            docs = nd;

            ni = realloc(ids, cap * sizeof(bson_oid_t));
            if (ni == NULL) {
                goto done;
            }

            ids = ni;
        }

        bson_oid_copy(bson_iter_oid(&it), &ids[n]);
        docs[n++] = bson_copy(doc);
    }

    if (mongoc_cursor_error(cursor, error)) {
        goto done;
    }

    if (ngx_http_chat_rel_load(db, viewer, ids, n, &rel, error) != NGX_OK) {
        goto done;
    }

    items = json_array();

    for (i = 0; items && i < n; i++) {
        bson_oid_copy(&ids[i], &id);

        if (skip_blockers && ngx_http_chat_oidset_has(&rel.blockers, &id)) {
            continue;
        }

        v = ngx_http_chat_view(docs[i], &rel);
        if (v) {
            if (each) {
                each(docs[i], v, ctx);
            }

            json_array_append_new(items, v);
        }
    }

    ngx_http_chat_rel_free(&rel);

done:

    if (docs) {
        for (i = 0; i < n; i++) {
            bson_destroy(docs[i]);
        }

        ngx_free(docs);
    }

    if (ids) {
        ngx_free(ids);
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(users);

    return items;
}


/* GET /api/users/profile: everything, with the privacy settings */

static void
ngx_http_chat_people_self_answer(ngx_http_chat_mongo_task_t *t,
    const bson_t *doc)
{
    json_t       *user, *privacy;
    ngx_uint_t    i;
    bson_iter_t   it, sub;

    user = ngx_http_chat_user_json(doc);
    privacy = json_object();

    if (user == NULL || privacy == NULL) {
        json_decref(user);
        json_decref(privacy);
        t->rc = NGX_ERROR;
        return;
    }

    for (i = 0; i < NGX_HTTP_CHAT_PRIVACY_N; i++) {
        json_object_set_new(privacy, ngx_http_chat_privacy_keys[i],
                            json_string(ngx_http_chat_privacy_rule(doc, i)));
    }

    json_object_set_new(privacy, "searchable",
                        json_boolean(!(bson_iter_init_find(&it, doc,
                                                           "searchable")
                                       && BSON_ITER_HOLDS_BOOL(&it)
                                       && !bson_iter_bool(&it))));
    json_object_set_new(user, "privacy", privacy);

    /* what a push may carry: a text's preview only when I allow it */
    json_object_set_new(user, "notifications",
        json_pack("{s:b}", "preview",
                  (int) (bson_iter_init(&it, doc)
                         && bson_iter_find_descendant(&it,
                                                      "notifications.preview",
                                                      &sub)
                         && BSON_ITER_HOLDS_BOOL(&sub)
                         && bson_iter_bool(&sub))));

    ngx_http_chat_people_answer(t, json_pack("{s:o}", "user", user));
}


void
ngx_http_chat_people_self_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_people_arg_t *a = t->arg;

    bson_t     filter, doc;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &a->viewer);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "users", &filter, NULL, &doc,
                                      &t->error);
    bson_destroy(&filter);

    if (rc == NGX_OK) {
        ngx_http_chat_people_self_answer(t, &doc);

    } else {
        t->rc = rc;
    }

    bson_destroy(&doc);
}


/*
 * The profiles of many sign-ins at once (a reconnect storm after a
 * deploy, all cold): one find of their _ids, whose cost the store pays
 * once where it would pay it for each (7 times less for 64 here).  A
 * task its answer did not reach (the cursor failed) runs alone after.
 */

static void
ngx_http_chat_people_self_batch_run(ngx_http_chat_mongo_task_t **tasks,
    ngx_uint_t n, mongoc_client_t *client, mongoc_database_t *db)
{
    char                         key[16];
    bson_t                       filter, sub, in;
    ngx_uint_t                   i, answered[NGX_HTTP_CHAT_MONGO_BATCH_MAX];
    const char                  *k;
    bson_iter_t                  it;
    bson_error_t                 error;
    const bson_t                *doc;
    mongoc_cursor_t             *cursor;
    mongoc_collection_t         *users;
    ngx_http_chat_people_arg_t  *a;

    if (n == 1) {
        ngx_http_chat_people_self_run(tasks[0], client, db);
        return;
    }

    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &in);

    for (i = 0; i < n; i++) {
        a = tasks[i]->arg;
        bson_uint32_to_string((uint32_t) i, &k, key, sizeof(key));
        BSON_APPEND_OID(&in, k, &a->viewer);
        answered[i] = 0;
    }

    bson_append_array_end(&sub, &in);
    bson_append_document_end(&filter, &sub);

    users = mongoc_database_get_collection(db, "users");
    cursor = mongoc_collection_find_with_opts(users, &filter, NULL, NULL);
    bson_destroy(&filter);

    while (mongoc_cursor_next(cursor, &doc)) {
        if (!bson_iter_init_find(&it, doc, "_id")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        /* a user may sign in on two sockets at once: each is answered */
        for (i = 0; i < n; i++) {
            a = tasks[i]->arg;

            if (!answered[i] && bson_oid_equal(&a->viewer,
                                               bson_iter_oid(&it)))
            {
                ngx_http_chat_people_self_answer(tasks[i], doc);
                answered[i] = 1;
            }
        }
    }

    if (mongoc_cursor_error(cursor, &error)) {
        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(users);

        for (i = 0; i < n; i++) {
            if (!answered[i]) {
                ngx_http_chat_people_self_run(tasks[i], client, db);
            }
        }

        return;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(users);

    /* no such user: as find_one says it */
    for (i = 0; i < n; i++) {
        if (!answered[i]) {
            tasks[i]->rc = NGX_DECLINED;
        }
    }
}


/*
 * Profiles to read while this worker has a read of them in the store
 * wait, and go together as one (ngx_http_chat_mongo_batch.h): one at a
 * time makes the batches of a storm larger, and the store's cost per
 * profile smaller, than four at a time did
 */
static ngx_http_chat_mongo_batch_t  ngx_http_chat_people_selves = {
    ngx_http_chat_people_self_batch_run,
    NULL,
    NGX_HTTP_CHAT_MONGO_BATCH_MAX,
    1,
    -1,
    { NULL, NULL }, 0, 0
};


ngx_int_t
ngx_http_chat_people_self_post(ngx_http_chat_mongo_task_t *t)
{
    return ngx_http_chat_mongo_batch_post(&ngx_http_chat_people_selves, t);
}


/* one user as the viewer sees them; NULL with *found 0 when absent */
static json_t *
ngx_http_chat_view_one(mongoc_database_t *db, const bson_oid_t *viewer,
    const bson_oid_t *target, ngx_uint_t *found, bson_error_t *error)
{
    bson_t   filter, opts;
    json_t  *items, *user;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", target);
    bson_init(&opts);
    BSON_APPEND_INT64(&opts, "limit", 1);

    items = ngx_http_chat_views(db, viewer, &filter, &opts, 0, error);

    bson_destroy(&opts);
    bson_destroy(&filter);

    *found = items && json_array_size(items);

    if (!*found) {
        json_decref(items);
        return NULL;
    }

    user = json_incref(json_array_get(items, 0));
    json_decref(items);

    return user;
}


/* GET /api/users/:id */

void
ngx_http_chat_people_view_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_people_arg_t *a = t->arg;

    json_t      *user;
    ngx_uint_t   found;

    user = ngx_http_chat_view_one(db, &a->viewer, &a->target, &found,
                                  &t->error);

    if (user == NULL) {
        t->rc = found ? NGX_ERROR : NGX_DECLINED;
        return;
    }

    ngx_http_chat_people_answer(t, json_pack("{s:o}", "user", user));
}


/*
 * GET /api/users/search: an exact phone number, or a prefix of the folded
 * name or of the username; never those who hide from search (for names)
 * or who blocked the viewer; pages by id.
 */

void
ngx_http_chat_people_search_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_people_arg_t *a = t->arg;

    char     oidstr[25];
    bson_t   filter, opts, sort, or, c0, c1, ne, gt, notme;
    json_t  *items, *answer, *last;

    bson_init(&filter);

    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &notme);
    BSON_APPEND_OID(&notme, "$ne", &a->viewer);

    if (a->has_cursor) {
        BSON_APPEND_OID(&notme, "$gt", &a->cursor);
    }

    bson_append_document_end(&filter, &notme);

    if (a->mode == NGX_HTTP_CHAT_PEOPLE_PHONE) {
        BSON_APPEND_UTF8(&filter, "phone", a->phone);

    } else {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "searchable", &ne);
        BSON_APPEND_BOOL(&ne, "$ne", false);
        bson_append_document_end(&filter, &ne);

        BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &or);
        BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &c0);
        BSON_APPEND_DOCUMENT_BEGIN(&c0, "searchName", &gt);
        BSON_APPEND_UTF8(&gt, "$regex", a->query);
        bson_append_document_end(&c0, &gt);
        bson_append_document_end(&or, &c0);
        BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &c1);
        BSON_APPEND_DOCUMENT_BEGIN(&c1, "usernameLower", &gt);
        BSON_APPEND_UTF8(&gt, "$regex", a->query);
        bson_append_document_end(&c1, &gt);
        bson_append_document_end(&or, &c1);
        bson_append_array_end(&filter, &or);
    }

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", (int64_t) a->limit);

    items = ngx_http_chat_views(db, &a->viewer, &filter, &opts, 1, &t->error);

    bson_destroy(&opts);
    bson_destroy(&filter);

    if (items == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    answer = json_pack("{s:o}", "items", items);

    /* a full page may have more after it */
    if (answer && json_array_size(items) == a->limit) {
        last = json_array_get(items, a->limit - 1);
        ngx_cpystrn((u_char *) oidstr,
                    (u_char *) json_string_value(json_object_get(last, "id")),
                    sizeof(oidstr));
        json_object_set_new(answer, "nextCursor", json_string(oidstr));
    }

    ngx_http_chat_people_answer(t, answer);
}


/* insert a relation document; an existing one is fine (idempotent) */
static ngx_int_t
ngx_http_chat_relation_add(mongoc_database_t *db, const char *coll,
    const char *other, const bson_oid_t *owner, const bson_oid_t *target,
    const char *name, bson_error_t *error)
{
    bson_t                doc;
    bson_oid_t            id;
    ngx_int_t             rc;
    struct timeval        tv;
    mongoc_collection_t  *c;

    ngx_gettimeofday(&tv);
    bson_oid_init(&id, NULL);

    bson_init(&doc);
    BSON_APPEND_OID(&doc, "_id", &id);
    BSON_APPEND_OID(&doc, "owner", owner);
    BSON_APPEND_OID(&doc, other, target);

    if (name && name[0]) {
        BSON_APPEND_UTF8(&doc, "name", name);
    }

    BSON_APPEND_DATE_TIME(&doc, "createdAt",
                          (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000);

    c = mongoc_database_get_collection(db, coll);

    rc = NGX_OK;

    if (!mongoc_collection_insert_one(c, &doc, NULL, NULL, error)
        && error->code != NGX_HTTP_CHAT_DUP
        && ngx_strstr(error->message, "UNIQUE constraint failed") == NULL)
    {
        rc = NGX_ERROR;
    }

    mongoc_collection_destroy(c);
    bson_destroy(&doc);

    return rc;
}


static ngx_int_t
ngx_http_chat_relation_delete(mongoc_database_t *db, const char *coll,
    const char *other, const bson_oid_t *owner, const bson_oid_t *target,
    bson_error_t *error)
{
    bson_t                filter, reply;
    ngx_int_t             rc;
    bson_iter_t           it;
    mongoc_collection_t  *c;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "owner", owner);
    BSON_APPEND_OID(&filter, other, target);

    c = mongoc_database_get_collection(db, coll);

    if (!mongoc_collection_delete_one(c, &filter, NULL, &reply, error)) {
        rc = NGX_ERROR;

    } else {
        rc = (bson_iter_init_find(&it, &reply, "deletedCount")
              && bson_iter_as_int64(&it) > 0)
             ? NGX_OK : NGX_DECLINED;
    }

    bson_destroy(&reply);
    mongoc_collection_destroy(c);
    bson_destroy(&filter);

    return rc;
}


/* the target of a contact operation: by id, or by phone number */
static ngx_int_t
ngx_http_chat_people_target(mongoc_database_t *db,
    ngx_http_chat_people_arg_t *a, bson_error_t *error)
{
    bson_t       filter, doc;
    ngx_int_t    rc;
    bson_iter_t  it;

    if (a->has_target) {
        return NGX_OK;
    }

    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "phone", a->phone);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "users", &filter, NULL, &doc, error);

    if (rc == NGX_OK) {
        if (bson_iter_init_find(&it, &doc, "_id")
            && BSON_ITER_HOLDS_OID(&it))
        {
            bson_oid_copy(bson_iter_oid(&it), &a->target);
            a->has_target = 1;

        } else {
            rc = NGX_DECLINED;
        }
    }

    bson_destroy(&doc);
    bson_destroy(&filter);

    return rc;
}


static ngx_int_t
ngx_http_chat_user_exists(mongoc_database_t *db, const bson_oid_t *id,
    bson_error_t *error)
{
    bson_t     filter, doc;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", id);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "users", &filter, NULL, &doc, error);

    bson_destroy(&doc);
    bson_destroy(&filter);

    return rc;
}


void
ngx_http_chat_contacts_add_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_people_arg_t *a = t->arg;

    json_t      *user;
    ngx_int_t    rc;
    ngx_uint_t   found;

    rc = ngx_http_chat_people_target(db, a, &t->error);

    if (rc == NGX_OK) {
        /* a contact is a user, never oneself */
        rc = bson_oid_equal(&a->target, &a->viewer)
             ? NGX_DECLINED
             : ngx_http_chat_user_exists(db, &a->target, &t->error);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_chat_relation_add(db, "contacts", "contact", &a->viewer,
                                        &a->target, a->name, &t->error);
    }

    if (rc != NGX_OK) {
        t->rc = rc;
        return;
    }

    user = ngx_http_chat_view_one(db, &a->viewer, &a->target, &found,
                                  &t->error);
    if (user == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    ngx_http_chat_people_answer(t, json_pack("{s:o}", "contact", user));
}


void
ngx_http_chat_contacts_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_people_arg_t *a = t->arg;

    t->rc = ngx_http_chat_relation_delete(db, "contacts", "contact",
                                          &a->viewer, &a->target, &t->error);
}


/* the ids in field "pick" of coll's documents owned by the viewer */
static json_t *
ngx_http_chat_relation_list(mongoc_database_t *db, const char *coll,
    const char *pick, const bson_oid_t *viewer, bson_error_t *error)
{
    bson_t                filter, in, uf;
    json_t               *items;
    size_t                n, cap;
    bson_oid_t           *ids;
    bson_iter_t           it;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *c;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "owner", viewer);

    c = mongoc_database_get_collection(db, coll);
    cursor = mongoc_collection_find_with_opts(c, &filter, NULL, NULL);

    n = 0;
    cap = 64;
    ids = ngx_alloc(cap * sizeof(bson_oid_t), ngx_cycle->log);
    items = NULL;

    while (ids && mongoc_cursor_next(cursor, &doc)) {
        if (!bson_iter_init_find(&it, doc, pick) || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        if (n == cap) {
            bson_oid_t  *ni;

            cap *= 2;
            ni = realloc(ids, cap * sizeof(bson_oid_t));
            if (ni == NULL) {
                ngx_free(ids);
                ids = NULL;
                break;
            }

            ids = ni;
        }

        bson_oid_copy(bson_iter_oid(&it), &ids[n++]);
    }

    if (ids && !mongoc_cursor_error(cursor, error)) {
        bson_init(&uf);
        BSON_APPEND_DOCUMENT_BEGIN(&uf, "_id", &in);
        ngx_http_chat_append_oids(&in, "$in", ids, n);
        bson_append_document_end(&uf, &in);

        items = n ? ngx_http_chat_views(db, viewer, &uf, NULL, 0, error)
                  : json_array();

        bson_destroy(&uf);
    }

    if (ids) {
        ngx_free(ids);
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(c);
    bson_destroy(&filter);

    return items;
}


void
ngx_http_chat_contacts_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_people_arg_t *a = t->arg;

    json_t  *items;

    items = ngx_http_chat_relation_list(db, "contacts", "contact", &a->viewer,
                                        &t->error);

    ngx_http_chat_people_answer(t, items ? json_pack("{s:o}", "items", items)
                                         : NULL);
}


static int
ngx_http_chat_sync_cmp(const void *one, const void *two)
{
    return ngx_strcmp((const char *) one, (const char *) two);
}


/*
 * A user found by a sync: the numbers the caller sent that are theirs,
 * as sent ("phone" the first, "phones" all), so that the caller can tell
 * which of its address book's entries they are
 */
static void
ngx_http_chat_sync_sent(const bson_t *doc, json_t *item, void *ctx)
{
    ngx_http_chat_sync_arg_t *a = ctx;

    char         *phones, *p;
    json_t       *sent;
    ngx_uint_t    lo, hi, mid;
    const char   *e164;
    bson_iter_t   it;

    if (!bson_iter_init_find(&it, doc, "phone") || !BSON_ITER_HOLDS_UTF8(&it))
    {
        return;
    }

    e164 = bson_iter_utf8(&it, NULL);
    phones = (char *) (a + 1);

    /* the first slot of this E.164 form, then every one after it */
    lo = 0;
    hi = a->count;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (ngx_strcmp(phones + mid * NGX_HTTP_CHAT_SYNC_OUT, e164) < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    sent = json_array();
    if (sent == NULL) {
        return;
    }

    for ( /* void */ ; lo < a->count; lo++) {
        p = phones + lo * NGX_HTTP_CHAT_SYNC_OUT;

        if (ngx_strcmp(p, e164) != 0) {
            break;
        }

        json_array_append_new(sent,
                              json_string(p + NGX_HTTP_CHAT_SYNC_E164));
    }

    if (json_array_size(sent)) {
        json_object_set(item, "phone", json_array_get(sent, 0));
        json_object_set_new(item, "phones", sent);

    } else {
        json_decref(sent);
    }
}


/* POST /api/users/contacts/sync: which of these numbers have an account */

void
ngx_http_chat_contacts_sync_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_sync_arg_t *a = t->arg;

    char         buf[16];
    bson_t       filter, in, arr;
    json_t      *items;
    ngx_uint_t   i;
    char        *phones;
    const char  *k;

    phones = (char *) (a + 1);

    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "phone", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);

    for (i = 0; i < a->count; i++) {
        bson_uint32_to_string((uint32_t) i, &k, buf, sizeof(buf));
        BSON_APPEND_UTF8(&arr, k, phones + i * NGX_HTTP_CHAT_SYNC_OUT);
    }

    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);

    /* by E.164 form, so that each user finds the numbers sent for them */
    ngx_qsort(phones, a->count, NGX_HTTP_CHAT_SYNC_OUT,
              ngx_http_chat_sync_cmp);

    /* those who blocked the viewer are not found: no leak of the block */
    items = ngx_http_chat_views_each(db, &a->viewer, &filter, NULL, 1,
                                     ngx_http_chat_sync_sent, a, &t->error);

    bson_destroy(&filter);

    ngx_http_chat_people_answer(t, items ? json_pack("{s:o}", "items", items)
                                         : NULL);
}


void
ngx_http_chat_blocks_add_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_people_arg_t *a = t->arg;

    ngx_int_t  rc;

    if (bson_oid_equal(&a->target, &a->viewer)) {
        t->rc = NGX_DECLINED;
        return;
    }

    rc = ngx_http_chat_user_exists(db, &a->target, &t->error);

    if (rc == NGX_OK) {
        rc = ngx_http_chat_relation_add(db, "blocks", "blocked", &a->viewer,
                                        &a->target, NULL, &t->error);
    }

    t->rc = rc;
}


void
ngx_http_chat_blocks_delete_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_people_arg_t *a = t->arg;

    t->rc = ngx_http_chat_relation_delete(db, "blocks", "blocked", &a->viewer,
                                          &a->target, &t->error);
}


void
ngx_http_chat_blocks_list_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_people_arg_t *a = t->arg;

    json_t  *items;

    items = ngx_http_chat_relation_list(db, "blocks", "blocked", &a->viewer,
                                        &t->error);

    ngx_http_chat_people_answer(t, items ? json_pack("{s:o}", "items", items)
                                         : NULL);
}
