/*
 * Copyright (C) ngx_chat_module authors
 *
 * The chat list's facts kept bounded (ngx_http_chat_list_compact.h).  A
 * rebuild counts only the numbers after a member's readSeq, so a fact at
 * or below it is never read for anything: a member's own, hidden and
 * mention facts go as their readSeq passes them (a read's trim), and two
 * more cases are settled here.  A sender who never reads, in a chat
 * where nobody else posts, would keep one fact per message sent: their
 * readSeq is moved over their own numbers (and voids, and what they
 * deleted for them) once in a while, which passes no message of anyone
 * else, so no unread count changes and no receipt is owed.  A chat's
 * voids (tombstones, deleted for everyone) would be kept for its life:
 * those at or below every member's readSeq count for nobody's unread and
 * are deleted when a rebuild finds many of them.
 */


#include "ngx_http_chat_chats_store_int.h"
#include "ngx_http_chat_list_compact.h"
#include "ngx_http_chat_list_facts.h"


static int ngx_http_chat_list_compact_cmp(const void *one, const void *two);
static ngx_int_t ngx_http_chat_list_compact_seqs(mongoc_database_t *db,
    const char *chat, const char *mine, int64_t lo, int64_t hi,
    ngx_array_t *seqs, bson_error_t *error);


static int
ngx_http_chat_list_compact_cmp(const void *one, const void *two)
{
    int64_t  a = *(const int64_t *) one, b = *(const int64_t *) two;

    return (a > b) - (a < b);
}


/*
 * The numbers in (lo, hi] that count nothing for the member: the chat's
 * voids and the member's own and hidden numbers, from one read of the
 * "of" index (mentions are others' messages: not among them)
 */

static ngx_int_t
ngx_http_chat_list_compact_seqs(mongoc_database_t *db, const char *chat,
    const char *mine, int64_t lo, int64_t hi, ngx_array_t *seqs,
    bson_error_t *error)
{
    bson_t               *filter;
    int64_t              *p, seq;
    ngx_int_t             rc;
    const char           *k;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    filter = BCON_NEW("of", "{", "$in", "[", BCON_UTF8(chat),
                      BCON_UTF8(mine), "]", "}",
                      "seq", "{", "$gt", BCON_INT64(lo),
                                  "$lte", BCON_INT64(hi), "}");

    coll = mongoc_database_get_collection(db, NGX_HTTP_CHAT_LIST_FACTS);
    cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    bson_destroy(filter);

    rc = NGX_OK;

    while (mongoc_cursor_next(cursor, &d)) {
        k = (bson_iter_init_find(&it, d, "k") && BSON_ITER_HOLDS_UTF8(&it))
            ? bson_iter_utf8(&it, NULL) : "";
        seq = (bson_iter_init_find(&it, d, "seq")
               && BSON_ITER_HOLDS_NUMBER(&it))
              ? bson_iter_as_int64(&it) : 0;

        if ((k[0] != 'v' && k[0] != 'o' && k[0] != 'h') || k[1] != '\0'
            || seq <= lo || seq > hi)
        {
            continue;
        }

        p = ngx_array_push(seqs);
        if (p == NULL) {
            bson_set_error(error, 0, 0, "no memory");
            rc = NGX_ERROR;
            break;
        }

        *p = seq;
    }

    if (rc == NGX_OK && mongoc_cursor_error(cursor, error)) {
        rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    return rc;
}


ngx_int_t
ngx_http_chat_list_settle(mongoc_database_t *db, const char *chat,
    const char *user, int64_t upto, bson_error_t *error)
{
    char          mine[64];
    bson_t        doc, filter, update, sub;
    int64_t       read_seq, to, *s;
    ngx_int_t     rc;
    ngx_uint_t    i;
    bson_oid_t    cid, uid;
    ngx_pool_t   *pool;
    ngx_array_t   seqs;

    if (!bson_oid_is_valid(chat, ngx_strlen(chat))
        || !bson_oid_is_valid(user, ngx_strlen(user)))
    {
        return NGX_OK;
    }

    bson_oid_init_from_string(&cid, chat);
    bson_oid_init_from_string(&uid, user);

    bson_init(&doc);
    rc = ngx_http_chat_chats_member(db, &cid, &uid, &doc, error);
    read_seq = (rc == NGX_OK) ? ngx_http_chat_chats_int(&doc, "readSeq") : 0;
    bson_destroy(&doc);

    if (rc != NGX_OK) {
        /* no longer a member: nothing of theirs to settle */
        return rc == NGX_DECLINED ? NGX_OK : NGX_ERROR;
    }

    if (read_seq >= upto) {
        return NGX_OK;
    }

    /*
     * The number right after readSeq is another's message (the common
     * case in a busy group whose member sends and does not read): no
     * settle can pass it, and the sets above it, which grow until the
     * member reads, are not read for nothing
     */
    rc = ngx_http_chat_list_facts_skips(db, chat, user, read_seq + 1, error);

    if (rc != NGX_OK) {
        return rc == NGX_DECLINED ? NGX_OK : NGX_ERROR;
    }

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        bson_set_error(error, 0, 0, "no memory");
        return NGX_ERROR;
    }

    if (ngx_array_init(&seqs, pool, 128, sizeof(int64_t)) != NGX_OK) {
        ngx_destroy_pool(pool);
        bson_set_error(error, 0, 0, "no memory");
        return NGX_ERROR;
    }

    ngx_sprintf((u_char *) mine, "%s:%s%Z", chat, user);

    if (ngx_http_chat_list_compact_seqs(db, chat, mine, read_seq, upto,
                                        &seqs, error)
        != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    /*
     * As far as the numbers run on without a gap: a number with no fact
     * (another's message, or one whose fact is still on its way) stops
     * it, so that a missing fact can only make this do less
     */
    s = seqs.elts;
    ngx_qsort(s, seqs.nelts, sizeof(int64_t), ngx_http_chat_list_compact_cmp);

    to = read_seq;

    for (i = 0; i < seqs.nelts; i++) {
        if (s[i] <= to) {
            continue;
        }

        if (s[i] != to + 1) {
            break;
        }

        to = s[i];
    }

    ngx_destroy_pool(pool);

    if (to == read_seq) {
        return NGX_OK;
    }

    /* as a read moves it ($max: never back), reading being delivery */
    bson_init(&filter);
    ngx_http_chat_chats_member_id(&filter, &cid, &uid);

    bson_init(&update);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$max", &sub);
    BSON_APPEND_INT64(&sub, "readSeq", to);
    BSON_APPEND_INT64(&sub, "deliveredSeq", to);
    bson_append_document_end(&update, &sub);

    rc = ngx_http_chat_chats_update_one(db, "members", &filter, &update,
                                        error);
    bson_destroy(&update);
    bson_destroy(&filter);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "chat: settled %s's readSeq of %s at %L", user, chat, to);

    /* what a read trims: the facts of mine up to it */
    return ngx_http_chat_list_facts_trim(db, chat, user, to, error);
}


void
ngx_http_chat_list_sweep(mongoc_database_t *db, const bson_oid_t *chat_id,
    json_t *voids, int64_t read_seq)
{
    char                  chat[25];
    bson_t               *filter, opts;
    size_t                i;
    json_t               *v;
    int64_t               low, seq;
    ngx_uint_t            n, members;
    bson_error_t          error;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    n = 0;

    json_array_foreach(voids, i, v) {
        seq = json_integer_value(v);

        if (seq > 0 && seq <= read_seq) {
            n++;
        }
    }

    if (n < NGX_HTTP_CHAT_LIST_SWEEP) {
        return;
    }

    /* the lowest readSeq of the chat's members (chatId_1_userId_1) */
    filter = BCON_NEW("chatId", BCON_OID(chat_id));
    bson_init(&opts);
    BCON_APPEND(&opts, "projection", "{", "readSeq", BCON_INT32(1), "}");

    coll = mongoc_database_get_collection(db, "members");
    cursor = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(filter);

    low = INT64_MAX;
    members = 0;

    while (mongoc_cursor_next(cursor, &d)) {
        low = ngx_min(low, ngx_http_chat_chats_int(d, "readSeq"));
        members++;
    }

    error.message[0] = '\0';

    if (mongoc_cursor_error(cursor, &error)) {
        members = 0;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    bson_oid_to_string(chat_id, chat);

    if (members == 0 || low <= 0) {
        if (error.message[0]) {
            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "chat: the voids of %s were not swept: %s",
                          chat, error.message);
        }

        return;
    }

    /* the chat's voids (its mark, seq 0, stays): none counts for anyone */
    filter = BCON_NEW("of", BCON_UTF8(chat),
                      "seq", "{", "$gt", BCON_INT64(0),
                                  "$lte", BCON_INT64(low), "}");

    coll = mongoc_database_get_collection(db, NGX_HTTP_CHAT_LIST_FACTS);

    if (!mongoc_collection_delete_many(coll, filter, NULL, NULL, &error)) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "chat: the voids of %s were not swept: %s",
                      chat, error.message);
    }

    mongoc_collection_destroy(coll);
    bson_destroy(filter);
}
