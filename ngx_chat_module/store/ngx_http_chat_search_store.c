/*
 * Copyright (C) ngx_chat_module authors
 *
 * Search of text messages in one chat or in all of mine.  Without a text
 * index (FerretDB) a request reads at most a bounded window of sequence
 * numbers, newest first, by searches of the (chatId, seq) index, and
 * answers the matches found there with a cursor that resumes the scan;
 * with one (MongoDB, chat_search_text_index on) it asks $text.
 */


#include "ngx_http_chat_chats_store_int.h"
#include "ngx_http_chat_search_store.h"


/*
 * numbers one search of the index asks for (FerretDB pushes down up to
 * 1,000): each costs FerretDB about 70 us here, whether it asks for 100
 * or 500 at a time
 */
#define NGX_HTTP_CHAT_SEARCH_WINDOW  500
/* numbers above the chat's lastSeq read too: a lost $max lags behind */
#define NGX_HTTP_CHAT_SEARCH_ABOVE   64


static ngx_uint_t           ngx_http_chat_search_scan = 500;
static ngx_flag_t           ngx_http_chat_search_text = 0;
static volatile ngx_uint_t  ngx_http_chat_search_indexed;


void
ngx_http_chat_search_conf(ngx_uint_t scan, ngx_flag_t text)
{
    ngx_http_chat_search_scan = scan;
    ngx_http_chat_search_text = text;
}


/* the query as the user wrote it: the handler escaped every metacharacter */

static size_t
ngx_http_chat_search_unescape(u_char *dst, u_char *src, size_t len)
{
    u_char  *p, *last;

    p = dst;
    last = src + len;

    while (src < last) {
        if (*src == '\\' && src + 1 < last) {
            src++;
        }

        *p++ = *src++;
    }

    return p - dst;
}


/*
 * Appends $text: {$search: "\"q\""}, a phrase (quotes in q become
 * spaces), after creating the text index on content once per process:
 * createIndexes is idempotent, so two threads doing it at once is fine.
 * MongoDB's text index folds case and diacritics itself.
 */

static ngx_int_t
ngx_http_chat_search_phrase(mongoc_database_t *db, ngx_http_chat_msg_arg_t *a,
    bson_t *filter, bson_error_t *error)
{
    u_char   *q;
    size_t    i, n;
    bson_t    cmd, indexes, index, key, sub;
    ngx_int_t  rc;

    if (!ngx_http_chat_search_indexed) {
        bson_init(&cmd);
        BSON_APPEND_UTF8(&cmd, "createIndexes", "messages");
        BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
        BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
        BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);
        BSON_APPEND_UTF8(&key, "content", "text");
        bson_append_document_end(&index, &key);
        BSON_APPEND_UTF8(&index, "name", "content_text");
        BSON_APPEND_UTF8(&index, "default_language", "none");
        bson_append_document_end(&indexes, &index);
        bson_append_array_end(&cmd, &indexes);

        rc = mongoc_database_write_command_with_opts(db, &cmd, NULL, NULL,
                                                     error)
             ? NGX_OK : NGX_ERROR;
        bson_destroy(&cmd);

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_chat_search_indexed = 1;
    }

    q = malloc(a->content_len + 2);
    if (q == NULL) {
        bson_set_error(error, MONGOC_ERROR_CLIENT, 0, "no memory");
        return NGX_ERROR;
    }

    q[0] = '"';
    n = ngx_http_chat_search_unescape(q + 1, (u_char *) (a + 1),
                                      a->content_len);

    for (i = 1; i <= n; i++) {
        if (q[i] == '"') {
            q[i] = ' ';
        }
    }

    q[n + 1] = '"';

    BSON_APPEND_DOCUMENT_BEGIN(filter, "$text", &sub);
    bson_append_utf8(&sub, "$search", -1, (char *) q, (int) n + 2);
    bson_append_document_end(filter, &sub);

    free(q);

    return NGX_OK;
}


/*
 * With a text index: text messages only (not deleted, not tombstones),
 * none I deleted for me; by seq in one chat, by (createdAt, _id) across
 * chats, as MongoDB's sort over what $text found
 */

static void
ngx_http_chat_search_text_run(ngx_http_chat_mongo_task_t *t,
    mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    char                  next[64];
    json_t               *items, *m, *answer;
    bson_t                filter, opts, sub;
    int64_t               ms, seq;
    ngx_int_t             rc;
    ngx_uint_t            n;
    bson_oid_t            last;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    bson_init(&filter);

    if (!a->all) {
        rc = ngx_http_chat_chats_is_member(db, &a->chat, &a->user, &t->error);

        if (rc == NGX_OK) {
            BSON_APPEND_OID(&filter, "chatId", &a->chat);
            rc = ngx_http_chat_msg_hidden_nin(db, &a->chat, &a->user,
                                              &filter, &t->error);
        }

        if (rc != NGX_OK) {
            bson_destroy(&filter);
            ngx_http_chat_chats_answer(t, rc, NULL);
            return;
        }

    } else if (ngx_http_chat_chats_ids_filter(db, "members", &a->user, NULL,
                                              "chatId", &filter, "chatId",
                                              "$in", &t->error)
               != NGX_OK
               || ngx_http_chat_msg_hidden_nin(db, NULL, &a->user, &filter,
                                               &t->error)
                  != NGX_OK)
    {
        /* my chats, and what I deleted for me in any of them */
        bson_destroy(&filter);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    BSON_APPEND_UTF8(&filter, "type", "text");

    if (ngx_http_chat_search_phrase(db, a, &filter, &t->error) != NGX_OK) {
        bson_destroy(&filter);
        ngx_http_chat_chats_answer(t, NGX_ERROR, NULL);
        return;
    }

    if (!a->all && a->has_before) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);
        BSON_APPEND_INT64(&sub, "$lt", a->before);
        bson_append_document_end(&filter, &sub);
    }

    if (a->all && a->has_cursor) {
        ngx_http_chat_chats_after_cursor(&filter, "createdAt", a->cursor_ms,
                                         &a->cursor_id);
    }

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);

    if (a->all) {
        BSON_APPEND_INT32(&sub, "createdAt", -1);
        BSON_APPEND_INT32(&sub, "_id", -1);

    } else {
        BSON_APPEND_INT32(&sub, "seq", -1);
    }

    bson_append_document_end(&opts, &sub);
    BSON_APPEND_INT64(&opts, "limit", a->limit + 1);

    coll = mongoc_database_get_collection(db, "messages");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);

    items = json_array();
    n = 0;
    ms = 0;
    seq = 0;

    while (items && mongoc_cursor_next(cursor, &d)) {
        if (n == a->limit) {
            n++;
            break;
        }

        m = ngx_http_chat_msg_json(d, 0);

        if (m == NULL || json_array_append_new(items, m) != 0) {
            json_decref(items);
            items = NULL;
            break;
        }

        n++;
        seq = ngx_http_chat_chats_int(d, "seq");
        ms = ngx_http_chat_msg_time(d, "createdAt");

        if (bson_iter_init_find(&it, d, "_id") && BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_copy(bson_iter_oid(&it), &last);
        }
    }

    if (mongoc_cursor_error(cursor, &t->error)) {
        json_decref(items);
        items = NULL;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    answer = items ? json_pack("{s:o}", "items", items) : NULL;

    if (answer && n > a->limit) {
        if (a->all) {
            ngx_http_chat_chats_next_cursor(answer, ms, &last);

        } else {
            ngx_sprintf((u_char *) next, "%L%Z", seq);
            json_object_set_new(answer, "nextCursor", json_string(next));
        }
    }

    ngx_http_chat_chats_answer(t, NGX_OK, answer);
}


/* what a scan request is doing */

typedef struct {
    bson_t             rest;     /* type, content, _id: {$nin} */
    json_t            *items;
    ngx_uint_t         want;     /* items still to find */
    ngx_uint_t         budget;   /* numbers still to read */
    int64_t            next;     /* resume below this seq, 0: finished */
    int64_t            low;      /* the lowest number read */
    const bson_oid_t  *chat;     /* ... in this chat */
    unsigned           full:1;   /* the page has its limit */
} ngx_http_chat_search_scan_t;


/*
 * The matches among numbers hi down to lo of a chat: {chatId, seq: {$in}}
 * first, which FerretDB searches in the (chatId, seq) index; the rest of
 * the filter it applies to what that finds
 */

static ngx_int_t
ngx_http_chat_search_window(mongoc_database_t *db, const bson_oid_t *chat,
    int64_t hi, int64_t lo, ngx_http_chat_search_scan_t *s,
    bson_error_t *error)
{
    char                  buf[16];
    json_t               *m;
    bson_t                filter, opts, sub, in;
    int64_t               n, seq;
    uint32_t              i;
    ngx_int_t             rc;
    const char           *key;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &in);

    for (n = hi, i = 0; n >= lo; n--, i++) {
        bson_uint32_to_string(i, &key, buf, sizeof(buf));
        bson_append_int64(&in, key, -1, n);
    }

    bson_append_array_end(&sub, &in);
    bson_append_document_end(&filter, &sub);
    bson_concat(&filter, &s->rest);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);
    BSON_APPEND_INT32(&sub, "seq", -1);
    bson_append_document_end(&opts, &sub);
    BSON_APPEND_INT64(&opts, "limit", (int64_t) s->want + 1);

    coll = mongoc_database_get_collection(db, "messages");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);

    rc = NGX_OK;

    while (mongoc_cursor_next(cursor, &d)) {
        seq = ngx_http_chat_chats_int(d, "seq");

        if (s->want == 0) {
            /* one more than the page: resume below the page's last */
            s->full = 1;
            break;
        }

        m = ngx_http_chat_msg_json(d, 0);

        if (m == NULL || json_array_append_new(s->items, m) != 0) {
            bson_set_error(error, MONGOC_ERROR_CLIENT, 0, "no memory");
            rc = NGX_ERROR;
            break;
        }

        s->want--;
        s->next = seq;
    }

    if (rc == NGX_OK && mongoc_cursor_error(cursor, error)) {
        rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    return rc;
}


/*
 * One chat from below seq before (0: from its top) while the budget
 * lasts: NGX_OK when the chat is done, NGX_AGAIN when the page is full
 * or the budget spent (s->next says where to resume)
 */

static ngx_int_t
ngx_http_chat_search_chat(mongoc_database_t *db, const bson_oid_t *chat,
    int64_t before, ngx_http_chat_search_scan_t *s, bson_error_t *error)
{
    int64_t  hi, lo, top;

    if (ngx_http_chat_msg_last_seq(db, chat, &top, error) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a cursor from above the top (an older format's time) starts there */
    hi = top + NGX_HTTP_CHAT_SEARCH_ABOVE;

    if (before > 0 && before - 1 < hi) {
        hi = before - 1;
    }

    s->chat = chat;

    while (hi >= 1) {
        if (s->budget == 0) {
            s->next = hi + 1;
            return NGX_AGAIN;
        }

        lo = hi - (int64_t) ngx_min(s->budget, NGX_HTTP_CHAT_SEARCH_WINDOW)
             + 1;
        lo = ngx_max(lo, 1);

        if (ngx_http_chat_search_window(db, chat, hi, lo, s, error)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        s->budget -= hi - lo + 1;
        s->low = lo;

        if (s->full) {
            return NGX_AGAIN;
        }

        hi = lo - 1;
    }

    return NGX_OK;
}


/* descending ObjectIds, for qsort */

static int
ngx_http_chat_search_oid_cmp(const void *x, const void *y)
{
    return bson_oid_compare((const bson_oid_t *) y, (const bson_oid_t *) x);
}


/*
 * my chats' ids, newest chat first (an ObjectId starts with its time), so
 * that a cursor's place among them never moves; *n of them in *ids
 */

static ngx_int_t
ngx_http_chat_search_my_chats(mongoc_database_t *db, const bson_oid_t *user,
    bson_oid_t **ids, size_t *n, bson_error_t *error)
{
    void                 *p;
    size_t                size;
    bson_t                filter, opts, sub;
    ngx_int_t             rc;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "userId", user);
    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, "chatId", 1);
    bson_append_document_end(&opts, &sub);

    coll = mongoc_database_get_collection(db, "members");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);

    *ids = NULL;
    *n = 0;
    size = 0;
    rc = NGX_OK;

    while (mongoc_cursor_next(cursor, &d)) {
        if (!bson_iter_init_find(&it, d, "chatId")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        if (*n == size) {
            size = size ? 2 * size : 64;
            p = realloc(*ids, size * sizeof(bson_oid_t));

            if (p == NULL) {
                bson_set_error(error, MONGOC_ERROR_CLIENT, 0, "no memory");
                rc = NGX_ERROR;
                break;
            }

            *ids = p;
        }

        bson_oid_copy(bson_iter_oid(&it), &(*ids)[(*n)++]);
    }

    if (rc == NGX_OK && mongoc_cursor_error(cursor, error)) {
        rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    if (rc != NGX_OK) {
        free(*ids);
        *ids = NULL;
        return NGX_ERROR;
    }

    if (*n > 1) {
        qsort(*ids, *n, sizeof(bson_oid_t), ngx_http_chat_search_oid_cmp);
    }

    return NGX_OK;
}


/*
 * Without a text index: one chat by seq from before (or its top), all of
 * mine one chat after the other from the cursor's "<seq>.<chatId>" (seq 0:
 * that chat from its top), until the page is full or the request has read
 * chat_search_scan numbers; the answer's nextCursor resumes there, with
 * "scanned" when the page stopped short at that bound
 */

static void
ngx_http_chat_search_scan_run(ngx_http_chat_mongo_task_t *t,
    mongoc_database_t *db)
{
    ngx_http_chat_msg_arg_t *a = t->arg;

    char                          next[64], oid[25];
    json_t                       *answer, *scanned;
    bson_t                        sub;
    size_t                        n, i;
    int64_t                       before;
    ngx_int_t                     rc;
    bson_oid_t                   *ids, *at;
    ngx_http_chat_search_scan_t   s;

    ngx_memzero(&s, sizeof(ngx_http_chat_search_scan_t));
    bson_init(&s.rest);
    ids = NULL;
    n = 0;
    at = NULL;

    if (!a->all) {
        rc = ngx_http_chat_chats_is_member(db, &a->chat, &a->user, &t->error);

        if (rc == NGX_OK) {
            rc = ngx_http_chat_msg_hidden_nin(db, &a->chat, &a->user,
                                              &s.rest, &t->error);
        }

    } else {
        rc = ngx_http_chat_search_my_chats(db, &a->user, &ids, &n, &t->error);

        if (rc == NGX_OK) {
            rc = ngx_http_chat_msg_hidden_nin(db, NULL, &a->user, &s.rest,
                                              &t->error);
        }
    }

    if (rc != NGX_OK) {
        free(ids);
        bson_destroy(&s.rest);
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    BSON_APPEND_UTF8(&s.rest, "type", "text");
    BSON_APPEND_DOCUMENT_BEGIN(&s.rest, "content", &sub);
    bson_append_utf8(&sub, "$regex", -1, (char *) (a + 1), a->content_len);
    BSON_APPEND_UTF8(&sub, "$options", "i");
    bson_append_document_end(&s.rest, &sub);

    s.items = json_array();
    s.want = a->limit;
    s.budget = ngx_http_chat_search_scan;
    rc = (s.items == NULL) ? NGX_ERROR : NGX_OK;

    if (rc == NGX_OK && !a->all) {
        rc = ngx_http_chat_search_chat(db, &a->chat,
                                       a->has_before ? a->before : 0, &s,
                                       &t->error);
        at = &a->chat;

    } else if (rc == NGX_OK) {
        for (i = 0; i < n; i++) {
            before = 0;

            if (a->has_cursor) {
                /* chats newer than the cursor's are done */
                if (bson_oid_compare(&ids[i], &a->cursor_id) > 0) {
                    continue;
                }

                if (bson_oid_equal(&ids[i], &a->cursor_id)) {
                    before = a->cursor_ms;
                }
            }

            at = &ids[i];
            rc = ngx_http_chat_search_chat(db, at, before, &s, &t->error);

            if (rc != NGX_OK) {
                break;
            }

            if (s.budget == 0 && i + 1 < n) {
                /* the next chat, from its top */
                at = &ids[i + 1];
                s.next = 0;
                rc = NGX_AGAIN;
                break;
            }
        }
    }

    answer = NULL;

    if (rc != NGX_ERROR) {
        answer = json_pack("{s:O}", "items", s.items);
    }

    if (answer && rc == NGX_AGAIN) {
        if (a->all) {
            bson_oid_to_string(at, oid);
            ngx_sprintf((u_char *) next, "%L.%s%Z", s.next, oid);

        } else {
            ngx_sprintf((u_char *) next, "%L%Z", s.next);
        }

        json_object_set_new(answer, "nextCursor", json_string(next));

        if (!s.full) {
            scanned = json_pack("{s:I}", "toSeq", (json_int_t) s.low);

            if (scanned && a->all && s.chat) {
                json_object_set_new(scanned, "chatId",
                                    ngx_http_chat_chats_oid_json(s.chat));
            }

            if (scanned == NULL
                || json_object_set_new(answer, "scanned", scanned) != 0)
            {
                json_decref(answer);
                answer = NULL;
            }
        }
    }

    json_decref(s.items);
    free(ids);
    bson_destroy(&s.rest);

    ngx_http_chat_chats_answer(t, answer ? NGX_OK : NGX_ERROR, answer);
}


/*
 * GET /api/chats/:id/messages/search, GET /api/messages/search: text
 * messages containing the query, case-insensitively, none I deleted for
 * me
 */

void
ngx_http_chat_msg_search_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    if (ngx_http_chat_search_text) {
        ngx_http_chat_search_text_run(t, db);

    } else {
        ngx_http_chat_search_scan_run(t, db);
    }
}
