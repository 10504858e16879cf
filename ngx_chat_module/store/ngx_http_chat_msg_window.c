/*
 * Copyright (C) ngx_chat_module authors
 *
 * A chat's last message by windows of sequence numbers:
 * {chatId, seq: {$in: [...]}} is a search of the (chatId, seq) index
 * (README, "Building"), where {chatId} alone reads all the chat's
 * messages.  Numbers are gap-free (a number taken without a message gets
 * a tombstone), and the chat's lastSeq is near the last one.
 */


#include "ngx_http_chat_chats_store_int.h"


#define NGX_HTTP_CHAT_WINDOW      64      /* numbers a search asks for */
#define NGX_HTTP_CHAT_WINDOW_UP   16      /* windows up from lastSeq */


static ngx_int_t ngx_http_chat_msg_last_near(mongoc_database_t *db,
    const bson_t *filter, int64_t last_seq, bson_t *msg,
    bson_error_t *error);


/* filter plus seq: {$in: [from .. to]} */
static void
ngx_http_chat_msg_window_filter(bson_t *out, const bson_t *filter,
    int64_t from, int64_t to)
{
    char         buf[16];
    bson_t       seq, in;
    int64_t      n;
    uint32_t     i;
    const char  *key;

    bson_copy_to(filter, out);

    BSON_APPEND_DOCUMENT_BEGIN(out, "seq", &seq);
    BSON_APPEND_ARRAY_BEGIN(&seq, "$in", &in);

    for (n = from, i = 0; n <= to; n++, i++) {
        bson_uint32_to_string(i, &key, buf, sizeof(buf));
        bson_append_int64(&in, key, -1, n);
    }

    bson_append_array_end(&seq, &in);
    bson_append_document_end(out, &seq);
}


/*
 * The last message matching filter ({chatId, ...}) at or near last_seq,
 * which may be behind (its update may have lost to another): windows up
 * from it while their top number holds one.  NGX_DECLINED when there is
 * none down to 1; NGX_AGAIN when the windows cannot tell (a scan can).
 */
static ngx_int_t
ngx_http_chat_msg_last_near(mongoc_database_t *db, const bson_t *filter,
    int64_t last_seq, bson_t *msg, bson_error_t *error)
{
    bson_t      f, sort;
    int64_t     lo, hi;
    ngx_int_t   rc;
    ngx_uint_t  i;

    if (last_seq <= 0) {
        return NGX_AGAIN;
    }

    lo = ngx_max(1, last_seq - NGX_HTTP_CHAT_WINDOW / 2 + 1);
    hi = last_seq + NGX_HTTP_CHAT_WINDOW / 2;

    bson_init(&sort);
    BSON_APPEND_INT32(&sort, "seq", -1);

    for (i = 0; i < NGX_HTTP_CHAT_WINDOW_UP; i++) {
        ngx_http_chat_msg_window_filter(&f, filter, lo, hi);

        /* what an earlier window found goes: find_one copies over it */
        bson_destroy(msg);
        bson_init(msg);

        rc = ngx_http_chat_mongo_find_one(db, "messages", &f, &sort, msg,
                                          error);
        bson_destroy(&f);

        if (rc == NGX_OK && ngx_http_chat_chats_int(msg, "seq") == hi) {
            /* more may follow */
            lo = hi;
            hi = lo + NGX_HTTP_CHAT_WINDOW - 1;
            continue;
        }

        bson_destroy(&sort);

        if (rc == NGX_DECLINED && lo > 1) {
            /* all hidden from me, or none: farther down, a scan knows */
            return NGX_AGAIN;
        }

        return rc;
    }

    bson_destroy(&sort);

    return NGX_AGAIN;
}


/* the windows near last_seq, else a scan of the chat, newest first */
ngx_int_t
ngx_http_chat_msg_last(mongoc_database_t *db, const bson_t *filter,
    int64_t last_seq, bson_t *msg, bson_error_t *error)
{
    bson_t     sort;
    ngx_int_t  rc;

    rc = ngx_http_chat_msg_last_near(db, filter, last_seq, msg, error);

    if (rc != NGX_AGAIN) {
        return rc;
    }

    bson_init(&sort);
    BSON_APPEND_INT32(&sort, "seq", -1);
    bson_destroy(msg);
    bson_init(msg);

    rc = ngx_http_chat_mongo_find_one(db, "messages", filter, &sort, msg,
                                      error);
    bson_destroy(&sort);

    return rc;
}


/*
 * A read or delivery marker's bound: want itself when it holds a
 * document of the chat (a message or a tombstone; what a client marks is
 * what it was shown), else the chat's last number by the windows near
 * its lastSeq, else by a scan.  Each is a search of the (chatId, seq)
 * index; {chatId} sorted alone reads the whole chat on FerretDB.
 */
ngx_int_t
ngx_http_chat_msg_bound(mongoc_database_t *db, const bson_oid_t *chat,
    int64_t want, int64_t *bound, bson_error_t *error)
{
    bson_t     filter, f, doc;
    int64_t    last_seq;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", chat);
    bson_init(&doc);

    if (want > 0) {
        ngx_http_chat_msg_window_filter(&f, &filter, want, want);
        rc = ngx_http_chat_mongo_find_one(db, "messages", &f, NULL, &doc,
                                          error);
        bson_destroy(&f);

        if (rc != NGX_DECLINED) {
            *bound = want;
            goto done;
        }
    }

    rc = ngx_http_chat_msg_last_seq(db, chat, &last_seq, error);

    if (rc == NGX_OK) {
        rc = ngx_http_chat_msg_last(db, &filter, last_seq, &doc, error);
        *bound = (rc == NGX_OK) ? ngx_http_chat_chats_int(&doc, "seq") : 0;
    }

done:

    bson_destroy(&doc);
    bson_destroy(&filter);

    return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


/* the chat's lastSeq, 0 when it has none (or no such chat) */
ngx_int_t
ngx_http_chat_msg_last_seq(mongoc_database_t *db, const bson_oid_t *chat,
    int64_t *last_seq, bson_error_t *error)
{
    bson_t     filter, doc;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", chat);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "chats", &filter, NULL, &doc,
                                      error);

    *last_seq = (rc == NGX_OK) ? ngx_http_chat_chats_int(&doc, "lastSeq") : 0;

    bson_destroy(&doc);
    bson_destroy(&filter);

    return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
}
