/*
 * Copyright (C) ngx_chat_module authors
 *
 * The chat list's facts in MongoDB (ngx_http_chat_list_facts.h).  Each
 * fact is a document of its own, inserted and never updated: FerretDB
 * loses concurrent updates of one document, and an insert that meets the
 * same fact already stored is told by its _id and changes nothing.  The
 * hooks queue facts in their worker; one task at a time writes the queue
 * in a batch (one insert, and a delete per trim), so that a busy worker
 * pays a write per batch rather than per message.
 */


#include "ngx_http_chat_list_facts.h"


#define NGX_HTTP_CHAT_LIST_BATCH   256
#define NGX_HTTP_CHAT_LIST_RETRY   1000    /* ms after a failed batch */
#define NGX_HTTP_CHAT_LIST_WINDOW  20      /* ms between two batches */


typedef struct {
    ngx_uint_t                  n;
    ngx_http_chat_list_fact_t   f[NGX_HTTP_CHAT_LIST_BATCH];
} ngx_http_chat_list_batch_t;


static void ngx_http_chat_list_facts_flush(void);
static void ngx_http_chat_list_facts_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
static void ngx_http_chat_list_facts_done(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_list_facts_retry(ngx_event_t *ev);
static void ngx_http_chat_list_facts_arm(ngx_event_t *ev, ngx_msec_t delay);
static void ngx_http_chat_list_facts_queue(
    const ngx_http_chat_list_fact_t *f);
static void ngx_http_chat_list_facts_of(char *buf,
    const ngx_http_chat_list_fact_t *f);


static ngx_http_chat_list_fact_t   ngx_http_chat_list_pending[
                                            NGX_HTTP_CHAT_LIST_FACTS_MAX];
static ngx_uint_t                  ngx_http_chat_list_npending;
static ngx_uint_t                  ngx_http_chat_list_writing;
static ngx_http_chat_list_fact_pt  ngx_http_chat_list_written;
/* set on the event loop before a settle is posted, then only read */
static ngx_http_chat_list_settle_pt  ngx_http_chat_list_settler;
static ngx_event_t                 ngx_http_chat_list_retry_ev;
static ngx_event_t                 ngx_http_chat_list_window_ev;
static ngx_msec_t                  ngx_http_chat_list_last;   /* a batch */
static ngx_connection_t            ngx_http_chat_list_dummy;  /* timers' */
/* the batch being written, as a rebuild on this worker must see it */
static ngx_http_chat_list_batch_t  ngx_http_chat_list_inflight;


void
ngx_http_chat_list_facts_add(const char *chat, const char *user,
    u_char kind, int64_t seq, ngx_http_chat_list_fact_pt written)
{
    ngx_http_chat_list_fact_t  f;

    ngx_memzero(&f, sizeof(ngx_http_chat_list_fact_t));
    ngx_cpystrn((u_char *) f.chat, (u_char *) chat, sizeof(f.chat));

    if (user) {
        ngx_cpystrn((u_char *) f.user, (u_char *) user, sizeof(f.user));
    }

    f.kind = kind;
    f.seq = seq;

    if (written) {
        ngx_http_chat_list_written = written;
    }
    ngx_http_chat_list_facts_queue(&f);
    ngx_http_chat_list_facts_flush();
}


void
ngx_http_chat_list_facts_settle(const char *chat, const char *user,
    int64_t upto, ngx_http_chat_list_settle_pt settle)
{
    ngx_http_chat_list_settler = settle;
    ngx_http_chat_list_facts_add(chat, user, 's', upto, NULL);
}


static void
ngx_http_chat_list_facts_queue(const ngx_http_chat_list_fact_t *f)
{
    ngx_uint_t                  i;
    ngx_http_chat_list_fact_t  *p;

    /* a trim or settle waiting for the same set is moved up, not repeated */
    if (f->kind == 't' || f->kind == 's') {
        for (i = 0; i < ngx_http_chat_list_npending; i++) {
            p = &ngx_http_chat_list_pending[i];

            if (p->kind == f->kind && ngx_strcmp(p->chat, f->chat) == 0
                && ngx_strcmp(p->user, f->user) == 0)
            {
                p->seq = ngx_max(p->seq, f->seq);
                return;
            }
        }
    }

    if (ngx_http_chat_list_npending == NGX_HTTP_CHAT_LIST_FACTS_MAX) {
        /* the count may be wrong after the next Redis loss of this chat */
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: the chat list of %s lost a fact", f->chat);
        return;
    }

    ngx_http_chat_list_pending[ngx_http_chat_list_npending++] = *f;
}


ngx_uint_t
ngx_http_chat_list_facts_pending(const char *chat, const char *user,
    ngx_http_chat_list_fact_t *out, ngx_uint_t max)
{
    ngx_uint_t                  i, k, n, total;
    ngx_http_chat_list_fact_t  *f, *all[2];

    all[0] = ngx_http_chat_list_inflight.f;
    all[1] = ngx_http_chat_list_pending;
    total = 0;

    for (k = 0; k < 2; k++) {
        n = k ? ngx_http_chat_list_npending : ngx_http_chat_list_inflight.n;

        for (i = 0; i < n; i++) {
            f = &all[k][i];

            if (f->kind == 't' || f->kind == 's'
                || ngx_strcmp(f->chat, chat) != 0
                || (f->user[0] && ngx_strcmp(f->user, user) != 0))
            {
                continue;
            }

            if (total < max) {
                out[total] = *f;
            }

            total++;
        }
    }

    return total;
}


static void
ngx_http_chat_list_facts_flush(void)
{
    ngx_msec_t                   elapsed;
    ngx_uint_t                   n;
    ngx_http_chat_list_batch_t  *b;
    ngx_http_chat_mongo_task_t  *t;

    if (ngx_http_chat_list_writing || ngx_http_chat_list_npending == 0
        || ngx_http_chat_list_retry_ev.timer_set
        || ngx_http_chat_list_window_ev.timer_set)
    {
        return;
    }

    /*
     * At once after a quiet window; under load, one batch a window at
     * most, so that a burst of sends costs a few inserts, not one each
     */
    elapsed = ngx_current_msec - ngx_http_chat_list_last;

    if (elapsed < NGX_HTTP_CHAT_LIST_WINDOW && !ngx_exiting
        && !ngx_terminate)
    {
        ngx_http_chat_list_facts_arm(&ngx_http_chat_list_window_ev,
                                     NGX_HTTP_CHAT_LIST_WINDOW - elapsed);
        return;
    }

    b = ngx_alloc(sizeof(ngx_http_chat_list_batch_t), ngx_cycle->log);
    if (b == NULL) {
        return;
    }

    n = ngx_min(ngx_http_chat_list_npending, NGX_HTTP_CHAT_LIST_BATCH);
    b->n = n;
    ngx_memcpy(b->f, ngx_http_chat_list_pending,
               n * sizeof(ngx_http_chat_list_fact_t));

    /* the task keeps its own copy */
    t = ngx_http_chat_mongo_task_create_arg(ngx_cycle->log,
                                            ngx_http_chat_list_facts_run,
                                            ngx_http_chat_list_facts_done,
                                            NULL, b,
                                            sizeof(ngx_http_chat_list_batch_t));
    ngx_free(b);

    if (t == NULL || ngx_http_chat_mongo_post(t) != NGX_OK) {
        /* kept: the next fact or the retry posts them */
        return;
    }

    ngx_memcpy(&ngx_http_chat_list_inflight, t->arg,
               sizeof(ngx_http_chat_list_batch_t));

    ngx_http_chat_list_npending -= n;
    ngx_memmove(ngx_http_chat_list_pending, ngx_http_chat_list_pending + n,
                ngx_http_chat_list_npending
                * sizeof(ngx_http_chat_list_fact_t));

    ngx_http_chat_list_writing = 1;
    ngx_http_chat_list_last = ngx_current_msec;
}


static void
ngx_http_chat_list_facts_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_list_batch_t *b = t->arg;

    ngx_uint_t  i;

    t->rc = ngx_http_chat_list_facts_insert(db, b->f, b->n, &t->error);

    /* after the insert: a settle reads the facts stored before it */
    for (i = 0; t->rc == NGX_OK && i < b->n; i++) {
        if (b->f[i].kind == 't') {
            t->rc = ngx_http_chat_list_facts_trim(db, b->f[i].chat,
                                                  b->f[i].user, b->f[i].seq,
                                                  &t->error);

        } else if (b->f[i].kind == 's' && ngx_http_chat_list_settler) {
            t->rc = ngx_http_chat_list_settler(db, b->f[i].chat,
                                               b->f[i].user, b->f[i].seq,
                                               &t->error);
        }
    }
}


static void
ngx_http_chat_list_facts_done(ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_list_batch_t *b = t->arg;

    ngx_uint_t  i;

    ngx_http_chat_list_writing = 0;
    ngx_http_chat_list_inflight.n = 0;

    if (t->rc != NGX_OK) {
        /* the whole batch again (each fact is idempotent), a bit later */
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: the chat list's facts were not stored: %s",
                      t->error.message);

        for (i = 0; i < b->n; i++) {
            ngx_http_chat_list_facts_queue(&b->f[i]);
        }

        if (!ngx_exiting && !ngx_terminate) {
            ngx_http_chat_list_facts_arm(&ngx_http_chat_list_retry_ev,
                                         NGX_HTTP_CHAT_LIST_RETRY);
        }

        return;
    }

    for (i = 0; ngx_http_chat_list_written && i < b->n; i++) {
        if (b->f[i].kind != 't' && b->f[i].kind != 's') {
            ngx_http_chat_list_written(&b->f[i]);
        }
    }

    ngx_http_chat_list_facts_flush();
}


static void
ngx_http_chat_list_facts_retry(ngx_event_t *ev)
{
    ngx_http_chat_list_facts_flush();
}


static void
ngx_http_chat_list_facts_arm(ngx_event_t *ev, ngx_msec_t delay)
{
    if (ev->timer_set) {
        return;
    }

    /* a timer's debug log reads the descriptor of ev->data */
    ngx_http_chat_list_dummy.fd = (ngx_socket_t) -1;
    ev->data = &ngx_http_chat_list_dummy;
    ev->handler = ngx_http_chat_list_facts_retry;
    ev->log = ngx_cycle->log;
    /* a window's batch holds an exiting worker, a retry does not */
    ev->cancelable = (ev == &ngx_http_chat_list_retry_ev);
    ngx_add_timer(ev, delay);
}


/* "<chat>" or "<chat>:<user>" */

static void
ngx_http_chat_list_facts_of(char *buf, const ngx_http_chat_list_fact_t *f)
{
    if (f->user[0]) {
        ngx_sprintf((u_char *) buf, "%s:%s%Z", f->chat, f->user);

    } else {
        ngx_sprintf((u_char *) buf, "%s%Z", f->chat);
    }
}


/* every write error a duplicate _id: the facts were there already */

static ngx_uint_t
ngx_http_chat_list_facts_dups(const bson_t *reply, bson_error_t *error)
{
    bson_iter_t  it, errs, e;
    ngx_uint_t   n;

    if (error->code == 11000
        || ngx_strstr(error->message, "UNIQUE constraint failed"))
    {
        return 1;
    }

    if (!bson_iter_init_find(&it, reply, "writeErrors")
        || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &errs))
    {
        return 0;
    }

    n = 0;

    while (bson_iter_next(&errs)) {
        if (!bson_iter_recurse(&errs, &e) || !bson_iter_find(&e, "code")
            || bson_iter_as_int64(&e) != 11000)
        {
            return 0;
        }

        n++;
    }

    return n > 0;
}


ngx_int_t
ngx_http_chat_list_facts_insert(mongoc_database_t *db,
    const ngx_http_chat_list_fact_t *f, size_t n, bson_error_t *error)
{
    char                  id[80], of[64];
    size_t                i, k;
    bson_t              **docs, opts, reply;
    ngx_int_t             rc;
    mongoc_collection_t  *coll;

    docs = ngx_alloc(n * sizeof(bson_t *) + 1, ngx_cycle->log);
    if (docs == NULL) {
        bson_set_error(error, 0, 0, "no memory");
        return NGX_ERROR;
    }

    for (i = 0, k = 0; i < n; i++) {
        if (f[i].kind == 't' || f[i].kind == 's') {
            continue;
        }

        ngx_http_chat_list_facts_of(of, &f[i]);

        if (f[i].kind == 'b') {
            ngx_sprintf((u_char *) id, "%s:b%Z", of);

        } else {
            ngx_sprintf((u_char *) id, "%s:%c%L%Z", of, f[i].kind,
                        f[i].seq);
        }

        docs[k] = BCON_NEW("_id", BCON_UTF8(id), "of", BCON_UTF8(of),
                           "k", BCON_UTF8(f[i].kind == 'b' ? "b"
                                          : f[i].kind == 'v' ? "v"
                                          : f[i].kind == 'o' ? "o"
                                          : f[i].kind == 'm' ? "m" : "h"),
                           "seq", BCON_INT64(f[i].seq));
        k++;
    }

    rc = NGX_OK;

    if (k) {
        bson_init(&opts);
        BSON_APPEND_BOOL(&opts, "ordered", false);

        coll = mongoc_database_get_collection(db, NGX_HTTP_CHAT_LIST_FACTS);

        if (!mongoc_collection_insert_many(coll, (const bson_t **) docs, k,
                                           &opts, &reply, error)
            && !ngx_http_chat_list_facts_dups(&reply, error))
        {
            rc = NGX_ERROR;
        }

        bson_destroy(&reply);
        bson_destroy(&opts);
        mongoc_collection_destroy(coll);
    }

    for (i = 0; i < k; i++) {
        bson_destroy(docs[i]);
    }

    ngx_free(docs);

    return rc;
}


void
ngx_http_chat_list_facts_mark(mongoc_database_t *db, const bson_oid_t *chat,
    const bson_oid_t *user)
{
    bson_error_t               error;
    ngx_http_chat_list_fact_t  f;

    ngx_memzero(&f, sizeof(ngx_http_chat_list_fact_t));
    bson_oid_to_string(chat, f.chat);

    if (user) {
        bson_oid_to_string(user, f.user);
    }

    f.kind = 'b';

    if (ngx_http_chat_list_facts_insert(db, &f, 1, &error) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "chat: the chat list of %s is not marked: %s",
                      f.chat, error.message);
    }
}


ngx_int_t
ngx_http_chat_list_facts_skips(mongoc_database_t *db, const char *chat,
    const char *user, int64_t seq, bson_error_t *error)
{
    char                  v[64], o[80], h[80];
    bson_t               *filter, *opts;
    ngx_int_t             rc;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    ngx_sprintf((u_char *) v, "%s:v%L%Z", chat, seq);
    ngx_sprintf((u_char *) o, "%s:%s:o%L%Z", chat, user, seq);
    ngx_sprintf((u_char *) h, "%s:%s:h%L%Z", chat, user, seq);

    /* the _id index: the store reads three keys, not the sets */
    filter = BCON_NEW("_id", "{", "$in", "[", BCON_UTF8(v), BCON_UTF8(o),
                      BCON_UTF8(h), "]", "}");
    opts = BCON_NEW("limit", BCON_INT64(1),
                    "projection", "{", "_id", BCON_INT32(1), "}");

    coll = mongoc_database_get_collection(db, NGX_HTTP_CHAT_LIST_FACTS);
    cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    bson_destroy(opts);
    bson_destroy(filter);

    rc = mongoc_cursor_next(cursor, &d) ? NGX_OK : NGX_DECLINED;

    if (rc == NGX_DECLINED && mongoc_cursor_error(cursor, error)) {
        rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    return rc;
}


ngx_int_t
ngx_http_chat_list_facts_trim(mongoc_database_t *db, const char *chat,
    const char *user, int64_t read_seq, bson_error_t *error)
{
    char                  of[64];
    bson_t               *filter;
    ngx_int_t             rc;
    mongoc_collection_t  *coll;

    ngx_sprintf((u_char *) of, "%s:%s%Z", chat, user);

    /* the mark (seq 0) stays */
    filter = BCON_NEW("of", BCON_UTF8(of),
                      "seq", "{", "$gt", BCON_INT64(0),
                                  "$lte", BCON_INT64(read_seq), "}");

    coll = mongoc_database_get_collection(db, NGX_HTTP_CHAT_LIST_FACTS);
    rc = mongoc_collection_delete_many(coll, filter, NULL, NULL, error)
         ? NGX_OK : NGX_ERROR;
    mongoc_collection_destroy(coll);
    bson_destroy(filter);

    return rc;
}


ngx_int_t
ngx_http_chat_list_facts_read(mongoc_database_t *db, const char *chat,
    const char *user, int64_t read_seq, json_t **sets,
    ngx_uint_t *chat_built, ngx_uint_t *user_built, ngx_uint_t *stale,
    bson_error_t *error)
{
    char                  mine[64];
    bson_t               *filter;
    int64_t               seq;
    ngx_int_t             rc;
    const char           *k, *of;
    bson_iter_t           it;
    const bson_t         *d;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    ngx_sprintf((u_char *) mine, "%s:%s%Z", chat, user);

    *chat_built = 0;
    *user_built = 0;
    *stale = 0;

    /* one search of the "of" index, for both sets */
    filter = BCON_NEW("of", "{", "$in", "[", BCON_UTF8(chat),
                      BCON_UTF8(mine), "]", "}");

    coll = mongoc_database_get_collection(db, NGX_HTTP_CHAT_LIST_FACTS);
    cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    bson_destroy(filter);

    while (mongoc_cursor_next(cursor, &d)) {
        k = (bson_iter_init_find(&it, d, "k") && BSON_ITER_HOLDS_UTF8(&it))
            ? bson_iter_utf8(&it, NULL) : "";
        of = (bson_iter_init_find(&it, d, "of") && BSON_ITER_HOLDS_UTF8(&it))
             ? bson_iter_utf8(&it, NULL) : "";
        seq = (bson_iter_init_find(&it, d, "seq")
               && BSON_ITER_HOLDS_NUMBER(&it))
              ? bson_iter_as_int64(&it) : 0;

        if (k[0] == 'b') {
            if (ngx_strcmp(of, chat) == 0) {
                *chat_built = 1;

            } else {
                *user_built = 1;
            }

            continue;
        }

        if (seq <= 0) {
            continue;
        }

        if (k[0] == 'v') {
            json_array_append_new(sets[0], json_integer(seq));
            continue;
        }

        if (seq <= read_seq) {
            /* read since: the next trim takes it */
            *stale = 1;
            continue;
        }

        json_array_append_new(k[0] == 'o' ? sets[1]
                              : k[0] == 'm' ? sets[3] : sets[2],
                              json_integer(seq));
    }

    rc = mongoc_cursor_error(cursor, error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);

    return rc;
}
