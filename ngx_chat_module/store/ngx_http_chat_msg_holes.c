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
 *
 * The read notes its gaps (numbers it skipped: messages hidden from this
 * reader, holes, or messages stored after the read), then one query
 * tells which hold a document, and whether the read left it out.  A gap
 * beyond what one read looks at (NGX_HTTP_CHAT_HOLES_MAX gaps,
 * NGX_HTTP_CHAT_HOLES_SPAN numbers) stops what it says it covered there.
 */


#include "ngx_http_chat_chats_store_int.h"


#define NGX_HTTP_CHAT_HOLE_YOUNG   10000   /* ms: past a send's longest */


void
ngx_http_chat_msg_holes_init(ngx_http_chat_msg_holes_t *h, int64_t after)
{
    ngx_memzero(h, sizeof(ngx_http_chat_msg_holes_t));

    h->next = after + 1;
    h->through = -1;
    h->cut = -1;
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


void
ngx_http_chat_msg_holes_see(ngx_http_chat_msg_holes_t *h, const bson_t *doc)
{
    int64_t                   seq;
    bson_iter_t               it;
    ngx_http_chat_msg_gap_t  *g;

    if (!bson_iter_init_find(&it, doc, "seq") || !BSON_ITER_HOLDS_NUMBER(&it))
    {
        return;
    }

    seq = bson_iter_as_int64(&it);

    if (seq > h->next && h->cut < 0) {
        if (h->ngaps == NGX_HTTP_CHAT_HOLES_MAX
            || h->numbers + (seq - h->next) > NGX_HTTP_CHAT_HOLES_SPAN)
        {
            /* not looked at: the read covers what is below it only */
            h->cut = h->next - 1;

        } else {
            g = &h->gaps[h->ngaps++];
            g->from = h->next;
            g->to = seq - 1;
            g->created = ngx_http_chat_msg_holes_created(doc);
            h->numbers += seq - h->next;
        }
    }

    h->next = ngx_max(h->next, seq + 1);
}


/* is id among the ids the read left out ({_id: {$nin: [...]}}) */
static ngx_uint_t
ngx_http_chat_msg_holes_hidden(const bson_t *read, const bson_oid_t *id)
{
    bson_iter_t  it, nin;

    if (!bson_iter_init(&it, read)
        || !bson_iter_find_descendant(&it, "_id.$nin", &nin)
        || !BSON_ITER_HOLDS_ARRAY(&nin)
        || !bson_iter_recurse(&nin, &it))
    {
        return 0;
    }

    while (bson_iter_next(&it)) {
        if (BSON_ITER_HOLDS_OID(&it) && bson_oid_equal(bson_iter_oid(&it), id))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Which numbers of the gaps hold a document: a bit each in held for one
 * the read left out (hidden from this reader), in late for one it would
 * have read (it came after the read).
 */
static ngx_int_t
ngx_http_chat_msg_holes_held(mongoc_collection_t *messages,
    const bson_oid_t *chat, const bson_t *read, ngx_http_chat_msg_holes_t *h,
    uint64_t *held, uint64_t *late, bson_error_t *error)
{
    char              buf[16];
    bson_t            filter, seq, in, opts, proj;
    int64_t           n, at;
    uint32_t          k;
    ngx_int_t         rc;
    ngx_uint_t        i, j, mine;
    const char       *key;
    bson_iter_t       it;
    const bson_t     *d;
    mongoc_cursor_t  *cursor;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &seq);
    BSON_APPEND_ARRAY_BEGIN(&seq, "$in", &in);

    k = 0;

    for (i = 0; i < h->ngaps; i++) {
        for (n = h->gaps[i].from; n <= h->gaps[i].to; n++) {
            bson_uint32_to_string(k++, &key, buf, sizeof(buf));
            bson_append_int64(&in, key, -1, n);
        }
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

    ngx_memzero(held, NGX_HTTP_CHAT_HOLES_SPAN / 8);
    ngx_memzero(late, NGX_HTTP_CHAT_HOLES_SPAN / 8);

    while (mongoc_cursor_next(cursor, &d)) {
        if (!bson_iter_init_find(&it, d, "seq")
            || !BSON_ITER_HOLDS_NUMBER(&it))
        {
            continue;
        }

        n = bson_iter_as_int64(&it);

        mine = !(bson_iter_init_find(&it, d, "_id")
                 && BSON_ITER_HOLDS_OID(&it)
                 && ngx_http_chat_msg_holes_hidden(read, bson_iter_oid(&it)));

        /* its place among the gaps' numbers */
        for (i = 0, at = 0; i < h->ngaps; i++) {
            if (n >= h->gaps[i].from && n <= h->gaps[i].to) {
                j = (ngx_uint_t) (at + n - h->gaps[i].from);

                if (mine) {
                    late[j / 64] |= (uint64_t) 1 << (j % 64);

                } else {
                    held[j / 64] |= (uint64_t) 1 << (j % 64);
                }

                break;
            }

            at += h->gaps[i].to - h->gaps[i].from + 1;
        }
    }

    rc = mongoc_cursor_error(cursor, error) ? NGX_ERROR : NGX_OK;
    mongoc_cursor_destroy(cursor);

    return rc;
}


ngx_int_t
ngx_http_chat_msg_holes_settle(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_t *read, ngx_http_chat_msg_holes_t *h, ngx_log_t *log,
    bson_error_t *error)
{
    int64_t               n, now;
    uint64_t              held[NGX_HTTP_CHAT_HOLES_SPAN / 64],
                          late[NGX_HTTP_CHAT_HOLES_SPAN / 64];
    ngx_int_t             rc;
    ngx_uint_t            i, j, filled;
    mongoc_collection_t  *messages;

    h->through = h->cut;

    if (h->ngaps == 0) {
        return NGX_OK;
    }

    messages = mongoc_database_get_collection(db, "messages");

    rc = ngx_http_chat_msg_holes_held(messages, chat, read, h, held, late,
                                      error);
    if (rc != NGX_OK) {
        mongoc_collection_destroy(messages);
        return rc;
    }

    now = ngx_http_chat_chats_now();
    filled = 0;
    j = 0;

    for (i = 0; i < h->ngaps; i++) {
        for (n = h->gaps[i].from; n <= h->gaps[i].to; n++, j++) {
            if (held[j / 64] & ((uint64_t) 1 << (j % 64))) {
                continue;       /* hidden from this reader */
            }

            if (late[j / 64] & ((uint64_t) 1 << (j % 64))) {
                /* stored after the read: up to below it only */
                h->through = n - 1;
                goto done;
            }

            if (now - h->gaps[i].created < NGX_HTTP_CHAT_HOLE_YOUNG) {
                /* young: on its way, perhaps */
                h->through = n - 1;
                goto done;
            }

            /* a late insert at n that loses to it takes another number */
            rc = ngx_http_chat_msg_tombstone_insert(messages, chat, n, now,
                                                    error);

            if (rc == NGX_ERROR) {
                ngx_log_error(NGX_LOG_ERR, log, 0,
                              "chat: cannot fill the hole at seq %L: %s",
                              n, error->message);
            }

            if (rc != NGX_OK) {
                /* what came meanwhile was not read: up to below it only */
                h->through = n - 1;
                goto done;
            }

            filled++;
        }
    }

done:

    if (filled) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "chat: %ui numbers held no message, tombstones written "
                      "(the lowest read after seq %L)", filled,
                      h->gaps[0].from - 1);
    }

    mongoc_collection_destroy(messages);

    return NGX_OK;
}
