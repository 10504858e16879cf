/*
 * Copyright (C) ngx_chat_module authors
 *
 * What a rebuild of the chat list reads of one chat for one member
 * (ngx_http_chat_list_sets.h): the chat's top, its voids, my own, hidden
 * and mentioning numbers, from the facts MongoDB keeps (one read of
 * "listx", and once, for a chat or member from before the facts, the
 * messages), the window's messages, and what rebuilds the Redis keys.
 */


#include "ngx_http_chat_chats_store_int.h"
#include "ngx_http_chat_list_sets.h"
#include "ngx_http_chat_list_facts.h"
#include "ngx_http_chat_list_model.h"


static json_t *ngx_http_chat_list_seqs(mongoc_database_t *db,
    const char *coll_name, const bson_t *filter, const char *field,
    bson_error_t *error);
static ngx_uint_t ngx_http_chat_list_has(json_t *seqs, int64_t seq);
static ngx_int_t ngx_http_chat_list_window(mongoc_database_t *db,
    const bson_oid_t *chat_id, const bson_oid_t *user,
    ngx_http_chat_list_sets_t *sets, bson_error_t *error);
static json_t *ngx_http_chat_list_seqs_of(mongoc_database_t *db,
    const bson_oid_t *chat_id, json_t *ids, int64_t lo, bson_error_t *error);
static ngx_int_t ngx_http_chat_list_facts_of_seqs(ngx_array_t *facts,
    const char *chat, const char *user, u_char kind, json_t *seqs);
static ngx_int_t ngx_http_chat_list_migrate(mongoc_database_t *db,
    const bson_oid_t *chat_id, const bson_oid_t *user, const char *chat,
    const char *me, ngx_uint_t chat_built, ngx_http_chat_list_sets_t *sets,
    bson_error_t *error);
static int ngx_http_chat_list_cmp(const void *one, const void *two);
static size_t ngx_http_chat_list_distinct(int64_t *s, size_t n);


/* the seq (or field) of each document of coll matching filter */

static json_t *
ngx_http_chat_list_seqs(mongoc_database_t *db, const char *coll_name,
    const bson_t *filter, const char *field, bson_error_t *error)
{
    json_t               *out;
    bson_t                opts, sub;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    out = json_array();
    if (out == NULL) {
        return NULL;
    }

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, field, 1);
    bson_append_document_end(&opts, &sub);

    coll = mongoc_database_get_collection(db, coll_name);
    cursor = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
    bson_destroy(&opts);

    while (mongoc_cursor_next(cursor, &d)) {
        if (!bson_iter_init_find(&it, d, field)) {
            continue;
        }

        if (BSON_ITER_HOLDS_OID(&it)) {
            json_array_append_new(out,
                            ngx_http_chat_chats_oid_json(bson_iter_oid(&it)));

        } else {
            json_array_append_new(out,
                                  json_integer(bson_iter_as_int64(&it)));
        }
    }

    if (mongoc_cursor_error(cursor, error)) {
        json_decref(out);
        out = NULL;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    return out;
}


/* the seqs of the messages of chat whose ids are in ids, above lo */

static json_t *
ngx_http_chat_list_seqs_of(mongoc_database_t *db, const bson_oid_t *chat_id,
    json_t *ids, int64_t lo, bson_error_t *error)
{
    char        key[16];
    json_t     *v, *m;
    size_t      i;
    bson_t      filter, sub, arr;
    bson_oid_t  id;

    if (json_array_size(ids) == 0) {
        return json_array();
    }

    /* _id first: FerretDB searches the index of the first field it can */
    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &arr);

    json_array_foreach(ids, i, m) {
        if (bson_oid_is_valid(json_string_value(m), 24)) {
            bson_oid_init_from_string(&id, json_string_value(m));
            ngx_sprintf((u_char *) key, "%uz%Z", i);
            BSON_APPEND_OID(&arr, key, &id);
        }
    }

    bson_append_array_end(&sub, &arr);
    bson_append_document_end(&filter, &sub);
    BSON_APPEND_OID(&filter, "chatId", chat_id);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);
    BSON_APPEND_INT64(&sub, "$gt", lo);
    bson_append_document_end(&filter, &sub);

    v = ngx_http_chat_list_seqs(db, "messages", &filter, "seq", error);
    bson_destroy(&filter);

    return v;
}


/* the facts of json array seqs, of kind, to insert */

static ngx_int_t
ngx_http_chat_list_facts_of_seqs(ngx_array_t *facts, const char *chat,
    const char *user, u_char kind, json_t *seqs)
{
    size_t                      i;
    json_t                     *v;
    ngx_http_chat_list_fact_t  *f;

    json_array_foreach(seqs, i, v) {
        f = ngx_array_push(facts);
        if (f == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(f, sizeof(ngx_http_chat_list_fact_t));
        ngx_cpystrn((u_char *) f->chat, (u_char *) chat, sizeof(f->chat));

        if (user) {
            ngx_cpystrn((u_char *) f->user, (u_char *) user,
                        sizeof(f->user));
        }

        f->kind = kind;
        f->seq = v ? json_integer_value(v) : 0;
    }

    return NGX_OK;
}


/*
 * A set not marked complete (a chat, or a member, from before the facts
 * were kept): read once from the messages, stored as facts and marked.
 * What a hook adds meanwhile is a fact of its own: nothing is lost.
 */

static ngx_int_t
ngx_http_chat_list_migrate(mongoc_database_t *db, const bson_oid_t *chat_id,
    const bson_oid_t *user, const char *chat, const char *me,
    ngx_uint_t chat_built, ngx_http_chat_list_sets_t *sets,
    bson_error_t *error)
{
    json_t       *v, *ids, *one;
    bson_t        filter, sub, arr;
    ngx_int_t     rc;
    ngx_pool_t   *pool;
    ngx_array_t   facts;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        bson_set_error(error, 0, 0, "no memory");
        return NGX_ERROR;
    }

    if (ngx_array_init(&facts, pool, 64, sizeof(ngx_http_chat_list_fact_t))
        != NGX_OK)
    {
        goto nomem;
    }

    one = json_pack("[n]");
    if (one == NULL) {
        goto nomem;
    }

    if (!chat_built) {
        /* the numbers that count for nobody */
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "chatId", chat_id);
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "type", &sub);
        BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &arr);
        BSON_APPEND_UTF8(&arr, "0", "tombstone");
        BSON_APPEND_UTF8(&arr, "1", "deleted");
        bson_append_array_end(&sub, &arr);
        bson_append_document_end(&filter, &sub);

        v = ngx_http_chat_list_seqs(db, "messages", &filter, "seq", error);
        bson_destroy(&filter);

        if (v == NULL) {
            goto failed;
        }

        rc = ngx_http_chat_list_facts_of_seqs(&facts, chat, NULL, 'v', v);
        json_array_extend(sets->voids, v);
        json_decref(v);

        if (rc != NGX_OK
            || ngx_http_chat_list_facts_of_seqs(&facts, chat, NULL, 'b',
                                                one)
               != NGX_OK)
        {
            goto nomem_json;
        }
    }

    if (me) {
        /* mine after my readSeq: senderId first, the index of my sends */
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "senderId", user);
        BSON_APPEND_OID(&filter, "chatId", chat_id);
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);
        BSON_APPEND_INT64(&sub, "$gt", sets->read_seq);
        bson_append_document_end(&filter, &sub);

        v = ngx_http_chat_list_seqs(db, "messages", &filter, "seq", error);
        bson_destroy(&filter);

        if (v == NULL) {
            goto failed;
        }

        rc = ngx_http_chat_list_facts_of_seqs(&facts, chat, me, 'o', v);
        json_array_extend(sets->own, v);
        json_decref(v);

        if (rc != NGX_OK) {
            goto nomem_json;
        }

        /* deleted for me: their ids, then their numbers */
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "userId", user);
        BSON_APPEND_OID(&filter, "chatId", chat_id);

        ids = ngx_http_chat_list_seqs(db, "hidden", &filter, "messageId",
                                      error);
        bson_destroy(&filter);

        v = ids ? ngx_http_chat_list_seqs_of(db, chat_id, ids,
                                             sets->read_seq, error)
                : NULL;
        json_decref(ids);

        if (v == NULL) {
            goto failed;
        }

        rc = ngx_http_chat_list_facts_of_seqs(&facts, chat, me, 'h', v);
        json_array_extend(sets->hidden, v);
        json_decref(v);

        if (rc != NGX_OK
            || ngx_http_chat_list_facts_of_seqs(&facts, chat, me, 'b', one)
               != NGX_OK)
        {
            goto nomem_json;
        }
    }

    json_decref(one);

    rc = ngx_http_chat_list_facts_insert(db, facts.elts, facts.nelts,
                                         error);
    ngx_destroy_pool(pool);

    return rc;

nomem_json:

    json_decref(one);

nomem:

    bson_set_error(error, 0, 0, "no memory");
    ngx_destroy_pool(pool);

    return NGX_ERROR;

failed:

    json_decref(one);
    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


/*
 * The chat's top and the three sets for user, from the facts: one read
 * of "listx" by its "of" index, whatever the backlog (and once, for a
 * chat or a member from before the facts, a read of the messages)
 */

ngx_int_t
ngx_http_chat_list_sets(mongoc_database_t *db, const bson_t *chat,
    const bson_oid_t *chat_id, const bson_oid_t *user,
    ngx_http_chat_list_sets_t *sets, ngx_http_chat_list_fact_t *facts,
    ngx_uint_t nfacts, bson_error_t *error)
{
    char         cid[25], me[25];
    bson_t       filter, sub, msg;
    json_t      *to, *four[4];
    ngx_int_t    rc;
    ngx_uint_t   chat_built, user_built, stale, i;

    sets->voids = json_array();
    sets->own = json_array();
    sets->hidden = json_array();
    sets->mentions = json_array();
    sets->msgs = json_array();
    sets->top = 0;

    if (sets->voids == NULL || sets->own == NULL || sets->hidden == NULL
        || sets->mentions == NULL || sets->msgs == NULL)
    {
        goto failed;
    }

    /* the highest number that holds a message */
    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat_id);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "type", &sub);
    BSON_APPEND_UTF8(&sub, "$ne", "tombstone");
    bson_append_document_end(&filter, &sub);

    bson_init(&msg);
    rc = ngx_http_chat_msg_last(db, &filter,
                                ngx_http_chat_chats_int(chat, "lastSeq"),
                                &msg, error);

    sets->top = (rc == NGX_OK) ? ngx_http_chat_chats_int(&msg, "seq") : 0;
    bson_destroy(&msg);
    bson_destroy(&filter);

    if (rc == NGX_ERROR) {
        goto failed;
    }

    bson_oid_to_string(chat_id, cid);
    bson_oid_to_string(user, me);

    four[0] = sets->voids;
    four[1] = sets->own;
    four[2] = sets->hidden;
    four[3] = sets->mentions;

    if (ngx_http_chat_list_facts_read(db, cid, me, sets->read_seq, four,
                                      &chat_built, &user_built, &stale,
                                      error)
        != NGX_OK)
    {
        goto failed;
    }

    /* what this worker's hooks had not stored when the page was read */
    for (i = 0; i < nfacts; i++) {
        if (ngx_strcmp(facts[i].chat, cid) != 0) {
            continue;
        }

        to = (facts[i].kind == 'v') ? sets->voids
             : (facts[i].seq <= sets->read_seq) ? NULL
             : (facts[i].kind == 'o') ? sets->own
             : (facts[i].kind == 'h') ? sets->hidden
             : (facts[i].kind == 'm') ? sets->mentions : NULL;

        if (to) {
            json_array_append_new(to, json_integer(facts[i].seq));
        }
    }

    if ((!chat_built || !user_built)
        && ngx_http_chat_list_migrate(db, chat_id, user, cid,
                                      user_built ? NULL : me, chat_built,
                                      sets, error)
           != NGX_OK)
    {
        goto failed;
    }

    /*
     * the window's messages, and from them what facts still on their way
     * from a hook may not tell yet (a message just sent, just deleted)
     */
    if (ngx_http_chat_list_window(db, chat_id, user, sets, error) != NGX_OK) {
        goto failed;
    }

    /* what I read since a trim was missed: its facts go now */
    if (stale
        && ngx_http_chat_list_facts_trim(db, cid, me, sets->read_seq, error)
           != NGX_OK)
    {
        goto failed;
    }

    return NGX_OK;

failed:

    json_decref(sets->voids);
    json_decref(sets->own);
    json_decref(sets->hidden);
    json_decref(sets->mentions);
    json_decref(sets->msgs);
    sets->voids = NULL;
    sets->own = NULL;
    sets->hidden = NULL;
    sets->mentions = NULL;
    sets->msgs = NULL;

    if (error->message[0] == '\0') {
        bson_set_error(error, 0, 0, "no memory");
    }

    return NGX_ERROR;
}


static int
ngx_http_chat_list_cmp(const void *one, const void *two)
{
    int64_t  a = *(const int64_t *) one, b = *(const int64_t *) two;

    return (a > b) - (a < b);
}


/* how many distinct numbers s holds (sorted here) */
static size_t
ngx_http_chat_list_distinct(int64_t *s, size_t n)
{
    size_t  i, d;

    ngx_qsort(s, n, sizeof(int64_t), ngx_http_chat_list_cmp);

    for (i = 0, d = 0; i < n; i++) {
        if (i == 0 || s[i] != s[i - 1]) {
            d++;
        }
    }

    return d;
}


/*
 * The numbers after my readSeq up to top, less those that count for
 * nobody and those that do not count for me, each once: what the read
 * script counts in Redis
 */

int64_t
ngx_http_chat_list_unread(ngx_http_chat_list_sets_t *sets)
{
    size_t     i, n, k, d;
    json_t    *all[3], *v;
    int64_t   *s, seq, count;

    if (sets->top <= sets->read_seq) {
        return 0;
    }

    all[0] = sets->voids;
    all[1] = sets->own;
    all[2] = sets->hidden;

    n = json_array_size(all[0]) + json_array_size(all[1])
        + json_array_size(all[2]);

    s = ngx_alloc((n + 1) * sizeof(int64_t), ngx_cycle->log);
    if (s == NULL) {
        /* counted as unread: an upper bound rather than no answer */
        return sets->top - sets->read_seq;
    }

    n = 0;

    for (k = 0; k < 3; k++) {
        json_array_foreach(all[k], i, v) {
            seq = json_integer_value(v);

            if (seq > sets->read_seq && seq <= sets->top) {
                s[n++] = seq;
            }
        }
    }

    d = ngx_http_chat_list_distinct(s, n);
    ngx_free(s);

    count = sets->top - sets->read_seq - (int64_t) d;

    return count < 0 ? 0 : count;
}


/*
 * The messages after my readSeq up to top that mention me, each once,
 * less those that count for nobody or that I deleted for me
 */

int64_t
ngx_http_chat_list_mentioned(ngx_http_chat_list_sets_t *sets)
{
    size_t     i, n, d;
    json_t    *v;
    int64_t   *s, seq, count;

    n = json_array_size(sets->mentions);

    if (n == 0 || sets->top <= sets->read_seq) {
        return 0;
    }

    s = ngx_alloc(n * sizeof(int64_t), ngx_cycle->log);
    if (s == NULL) {
        return (int64_t) n;
    }

    d = 0;

    json_array_foreach(sets->mentions, i, v) {
        seq = json_integer_value(v);

        if (seq > sets->read_seq && seq <= sets->top
            && !ngx_http_chat_list_has(sets->voids, seq)
            && !ngx_http_chat_list_has(sets->hidden, seq))
        {
            s[d++] = seq;
        }
    }

    count = (int64_t) ngx_http_chat_list_distinct(s, d);
    ngx_free(s);

    return count;
}


static ngx_uint_t
ngx_http_chat_list_has(json_t *seqs, int64_t seq)
{
    size_t   i;
    json_t  *v;

    json_array_foreach(seqs, i, v) {
        if (json_integer_value(v) == seq) {
            return 1;
        }
    }

    return 0;
}


/*
 * The messages of the last NGX_HTTP_CHAT_LIST_WINDOW numbers, by their
 * numbers; those that are mine or count for nobody, and those I deleted
 * for me (whose facts a read may have trimmed: the last message is told
 * by them), added to the sets
 */

static ngx_int_t
ngx_http_chat_list_window(mongoc_database_t *db, const bson_oid_t *chat_id,
    const bson_oid_t *user, ngx_http_chat_list_sets_t *sets,
    bson_error_t *error)
{
    char                 *s, key[16];
    json_t               *ids, *v, *m;
    size_t                i;
    bson_t                filter, sub, arr;
    int64_t               seq, lo;
    ngx_int_t             rc;
    bson_oid_t            id;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    if (sets->top <= 0) {
        /* no number holds a message: an empty $in reads the whole chat */
        return NGX_OK;
    }

    lo = ngx_max(0, sets->top - NGX_HTTP_CHAT_LIST_WINDOW);

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat_id);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &arr);

    for (seq = lo + 1, i = 0; seq <= sets->top; seq++, i++) {
        ngx_sprintf((u_char *) key, "%uz%Z", i);
        BSON_APPEND_INT64(&arr, key, seq);
    }

    bson_append_array_end(&sub, &arr);
    bson_append_document_end(&filter, &sub);

    ids = json_array();
    coll = mongoc_database_get_collection(db, "messages");
    cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    bson_destroy(&filter);

    while (ids && mongoc_cursor_next(cursor, &d)) {
        seq = ngx_http_chat_chats_int(d, "seq");

        if (ngx_http_chat_msg_is(d, "type", "tombstone")
            || ngx_http_chat_msg_is(d, "type", "deleted"))
        {
            json_array_append_new(sets->voids, json_integer(seq));
        }

        if (ngx_http_chat_msg_is(d, "type", "tombstone")) {
            continue;
        }

        if (seq > sets->read_seq && ngx_http_chat_msg_sent_by(d, user)) {
            json_array_append_new(sets->own, json_integer(seq));
        }

        if (seq > sets->read_seq
            && ngx_http_chat_msg_mentions(d, user))
        {
            json_array_append_new(sets->mentions, json_integer(seq));
        }

        if (bson_iter_init_find(&it, d, "_id") && BSON_ITER_HOLDS_OID(&it)) {
            json_array_append_new(ids,
                            ngx_http_chat_chats_oid_json(bson_iter_oid(&it)));
        }

        m = ngx_http_chat_msg_json(d, 0);
        s = m ? json_dumps(m, JSON_COMPACT) : NULL;
        json_decref(m);

        if (s == NULL) {
            continue;
        }

        json_array_append_new(sets->msgs,
                              json_pack("[I,s]", (json_int_t) seq, s));
        free(s);
    }

    rc = (ids == NULL || mongoc_cursor_error(cursor, error))
         ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    if (rc != NGX_OK || json_array_size(ids) == 0) {
        json_decref(ids);
        return rc;
    }

    /* which of them I deleted for me: by the (messageId, userId) index */
    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "messageId", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &arr);

    json_array_foreach(ids, i, m) {
        bson_oid_init_from_string(&id, json_string_value(m));
        ngx_sprintf((u_char *) key, "%uz%Z", i);
        BSON_APPEND_OID(&arr, key, &id);
    }

    bson_append_array_end(&sub, &arr);
    bson_append_document_end(&filter, &sub);
    BSON_APPEND_OID(&filter, "userId", user);

    v = ngx_http_chat_list_seqs(db, "hidden", &filter, "messageId", error);
    bson_destroy(&filter);

    m = v ? ngx_http_chat_list_seqs_of(db, chat_id, v, lo, error) : NULL;
    json_decref(v);
    json_decref(ids);

    if (m == NULL) {
        return NGX_ERROR;
    }

    json_array_extend(sets->hidden, m);
    json_decref(m);

    return NGX_OK;
}


/*
 * What rebuilds a chat's keys: {chatId, top, sum, msgs: [[seq, json]],
 * voids, own, hidden, mentions}
 */

json_t *
ngx_http_chat_list_fill_json(mongoc_database_t *db, const bson_t *chat,
    const bson_oid_t *chat_id, ngx_http_chat_list_sets_t *sets,
    bson_error_t *error)
{
    char    *s;
    json_t  *shared, *fill;

    /* no last message: what changes with every message is not kept here */
    shared = ngx_http_chat_chat_json(db, chat, NULL, 3,
                                     NGX_HTTP_CHAT_CHAT_BARE, error);
    if (shared == NULL) {
        return NULL;
    }

    /* what changes with every message is not the summary's */
    json_object_del(shared, "lastMessage");
    json_object_del(shared, "updatedAt");

    s = json_dumps(shared, JSON_COMPACT);
    json_decref(shared);

    if (s == NULL) {
        return NULL;
    }

    fill = json_pack("{s:o,s:s,s:I,s:O,s:O,s:O,s:O,s:O}", "chatId",
                     ngx_http_chat_chats_oid_json(chat_id), "sum", s,
                     "top", (json_int_t) sets->top, "voids", sets->voids,
                     "own", sets->own, "hidden", sets->hidden,
                     "mentions", sets->mentions, "msgs", sets->msgs);
    free(s);

    return fill;
}


void
ngx_http_chat_list_sets_free(ngx_http_chat_list_sets_t *sets)
{
    json_decref(sets->voids);
    json_decref(sets->own);
    json_decref(sets->hidden);
    json_decref(sets->mentions);
    json_decref(sets->msgs);
}


ngx_int_t
ngx_http_chat_chat_counts(mongoc_database_t *db, const bson_t *chat,
    const bson_oid_t *chat_id, const bson_oid_t *user, int64_t read_seq,
    json_t *c, bson_error_t *error)
{
    ngx_http_chat_list_sets_t  sets;

    sets.read_seq = read_seq;

    if (ngx_http_chat_list_sets(db, chat, chat_id, user, &sets, NULL, 0,
                                error)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_object_set_new(c, "unreadCount",
                        json_integer(ngx_http_chat_list_unread(&sets)));
    json_object_set_new(c, "unreadMentions",
                        json_integer(ngx_http_chat_list_mentioned(&sets)));
    ngx_http_chat_list_sets_free(&sets);

    return NGX_OK;
}
