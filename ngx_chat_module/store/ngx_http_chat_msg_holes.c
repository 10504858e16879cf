/*
 * Copyright (C) ngx_chat_module authors
 *
 * Numbers with no document, met by a reader paging forward (a socket's
 * sync, ?after=).  A number is taken in Redis before its message is
 * stored, so a young hole is most likely a message on its way (an insert
 * behind others in the pool, or one the store kept while its answer was
 * lost): the reader says it read through the number below it only.  An
 * old hole is a number whose send died with its worker: it is filled
 * with tombstones, so that this reader and every later one go past it.
 */


#include "ngx_http_chat_chats_store_int.h"


#define NGX_HTTP_CHAT_HOLE_YOUNG   10000   /* ms: past a send's longest */
#define NGX_HTTP_CHAT_HOLE_CHECKS  4       /* gaps looked at per read */
#define NGX_HTTP_CHAT_HOLE_SPAN    64      /* numbers looked at per gap */


void
ngx_http_chat_msg_holes_init(ngx_http_chat_msg_holes_t *h, int64_t after)
{
    h->next = after + 1;
    h->through = -1;
    h->checks = 0;
}


static int64_t
ngx_http_chat_msg_holes_created(const bson_t *doc)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, "createdAt")
        && BSON_ITER_HOLDS_DATE_TIME(&it))
    {
        return bson_iter_date_time(&it);
    }

    return 0;
}


/*
 * Which of from .. to hold a document (any: a message hidden from this
 * reader, a tombstone): a bit each in held.
 */
static ngx_int_t
ngx_http_chat_msg_holes_held(mongoc_collection_t *messages,
    const bson_oid_t *chat, int64_t from, int64_t to, uint64_t *held,
    bson_error_t *error)
{
    char              buf[16];
    bson_t            filter, seq, in, opts, proj;
    int64_t           n;
    uint32_t          i;
    ngx_int_t         rc;
    const char       *key;
    bson_iter_t       it;
    const bson_t     *d;
    mongoc_cursor_t  *cursor;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &seq);
    BSON_APPEND_ARRAY_BEGIN(&seq, "$in", &in);

    for (n = from, i = 0; n <= to; n++, i++) {
        bson_uint32_to_string(i, &key, buf, sizeof(buf));
        bson_append_int64(&in, key, -1, n);
    }

    bson_append_array_end(&seq, &in);
    bson_append_document_end(&filter, &seq);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "seq", 1);
    bson_append_document_end(&opts, &proj);

    cursor = mongoc_collection_find_with_opts(messages, &filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&filter);

    *held = 0;

    while (mongoc_cursor_next(cursor, &d)) {
        if (bson_iter_init_find(&it, d, "seq") && BSON_ITER_HOLDS_NUMBER(&it)) {
            n = bson_iter_as_int64(&it);

            if (n >= from && n <= to) {
                *held |= (uint64_t) 1 << (n - from);
            }
        }
    }

    rc = mongoc_cursor_error(cursor, error) ? NGX_ERROR : NGX_OK;
    mongoc_cursor_destroy(cursor);

    return rc;
}


/* a tombstone at each number of from .. to not in held */
static void
ngx_http_chat_msg_holes_fill(mongoc_collection_t *messages,
    const bson_oid_t *chat, int64_t from, int64_t to, uint64_t held,
    int64_t now, ngx_log_t *log)
{
    bson_t        doc;
    int64_t       n;
    bson_oid_t    id;
    bson_error_t  error;

    for (n = from; n <= to; n++) {
        if (held & ((uint64_t) 1 << (n - from))) {
            continue;
        }

        bson_oid_init(&id, NULL);

        bson_init(&doc);
        BSON_APPEND_OID(&doc, "_id", &id);
        BSON_APPEND_OID(&doc, "chatId", chat);
        BSON_APPEND_INT64(&doc, "seq", n);
        BSON_APPEND_UTF8(&doc, "type", "tombstone");
        BSON_APPEND_DATE_TIME(&doc, "createdAt", now);

        /* a late insert at n lost to it takes another number */
        if (!mongoc_collection_insert_one(messages, &doc, NULL, NULL, &error)
            && !ngx_http_chat_chats_is_dup(&error, NULL))
        {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "chat: cannot fill the hole at seq %L: %s",
                          n, error.message);
        }

        bson_destroy(&doc);
    }

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "chat: seq %L to %L held no message: tombstones", from, to);
}


ngx_int_t
ngx_http_chat_msg_holes_see(mongoc_database_t *db, const bson_oid_t *chat,
    ngx_http_chat_msg_holes_t *h, const bson_t *doc, ngx_log_t *log,
    bson_error_t *error)
{
    int64_t               seq, start, from, to, now;
    uint64_t              held, all;
    ngx_int_t             rc;
    bson_iter_t           it;
    mongoc_collection_t  *messages;

    if (!bson_iter_init_find(&it, doc, "seq") || !BSON_ITER_HOLDS_NUMBER(&it))
    {
        return NGX_OK;
    }

    seq = bson_iter_as_int64(&it);

    if (h->through >= 0 || seq <= h->next) {
        h->next = ngx_max(h->next, seq + 1);
        return NGX_OK;
    }

    start = h->next;
    h->next = seq + 1;

    if (h->checks++ == NGX_HTTP_CHAT_HOLE_CHECKS) {
        return NGX_OK;
    }

    /* the gap's last numbers: the young ones are there */
    to = seq - 1;
    from = ngx_max(start, to - NGX_HTTP_CHAT_HOLE_SPAN + 1);

    messages = mongoc_database_get_collection(db, "messages");

    rc = ngx_http_chat_msg_holes_held(messages, chat, from, to, &held, error);

    all = (to - from + 1 == 64) ? ~(uint64_t) 0
                                : ((uint64_t) 1 << (to - from + 1)) - 1;

    if (rc == NGX_OK && held != all) {
        now = ngx_http_chat_chats_now();

        if (now - ngx_http_chat_msg_holes_created(doc)
            < NGX_HTTP_CHAT_HOLE_YOUNG)
        {
            /* the lowest empty number: read through the one below it */
            for (seq = from; held & ((uint64_t) 1 << (seq - from)); seq++) {
                /* void */
            }

            h->through = (from > start) ? start - 1 : seq - 1;

        } else {
            ngx_http_chat_msg_holes_fill(messages, chat, from, to, held, now,
                                         log);
        }
    }

    mongoc_collection_destroy(messages);

    return rc;
}
