/*
 * Copyright (C) ngx_chat_module authors
 *
 * Calls in MongoDB: the call record is the truth of a call's state, seen
 * by every worker.  A change reads the call, decides in C, and writes the
 * whole record back under its version (a compare and set), so that of two
 * devices accepting at once, or a cancel racing an accept, one wins and
 * only the winner tells; the loser reads the call again and answers as it
 * now stands.
 */


#include "ngx_http_chat_calls_store.h"
#include "../util/ngx_http_chat_metrics.h"
#include "ngx_http_chat_chats_store_int.h"


#define NGX_HTTP_CHAT_CALL_TRIES     5
/* a ringing call whose timer was lost (its worker died) reads as missed */
#define NGX_HTTP_CHAT_CALL_SLACK     5000


typedef struct {
    bson_oid_t    user;
    char          sock[25];
    char          state[12];   /* caller ringing accepted rejected busy ... */
    int64_t       at;
} ngx_http_chat_call_peer_t;


typedef struct {
    bson_oid_t    id;
    bson_oid_t    chat;
    bson_oid_t    caller;
    bson_oid_t    ended_by;
    unsigned      has_chat:1;
    unsigned      has_ended_by:1;
    unsigned      group:1;
    unsigned      live:1;
    unsigned      was_live:1;      /* as loaded: its end is counted once */
    unsigned      video:1;
    char          status[12];
    char          reason[16];
    int64_t       started;
    int64_t       ring_until;
    int64_t       answered;
    int64_t       ended;
    int64_t       v;
    ngx_uint_t    npeers;
    ngx_http_chat_call_peer_t  peers[NGX_HTTP_CHAT_CALL_PEERS_MAX];
} ngx_http_chat_call_t;


static void ngx_http_chat_call_count_end(ngx_http_chat_call_t *c);
static int64_t ngx_http_chat_call_duration(ngx_http_chat_call_t *c);


static void
ngx_http_chat_call_copy(char *dst, size_t size, const char *src)
{
    size_t  n;

    n = ngx_strlen(src);
    n = (n < size - 1) ? n : size - 1;
    ngx_memcpy(dst, src, n);
    dst[n] = '\0';
}


static ngx_uint_t
ngx_http_chat_call_is(const char *s, const char *v)
{
    return ngx_strcmp(s, v) == 0;
}


static ngx_http_chat_call_peer_t *
ngx_http_chat_call_peer(ngx_http_chat_call_t *c, const bson_oid_t *user)
{
    ngx_uint_t  i;

    for (i = 0; i < c->npeers; i++) {
        if (bson_oid_equal(&c->peers[i].user, user)) {
            return &c->peers[i];
        }
    }

    return NULL;
}


/* a peer in the call now: the caller, or a callee who accepted */

static ngx_uint_t
ngx_http_chat_call_in(ngx_http_chat_call_peer_t *p)
{
    return ngx_http_chat_call_is(p->state, "caller")
           || ngx_http_chat_call_is(p->state, "accepted");
}


static void
ngx_http_chat_call_parse_peers(bson_iter_t *arr, ngx_http_chat_call_t *c)
{
    const char                 *key;
    bson_iter_t                 sub;
    ngx_http_chat_call_peer_t  *p;

    while (bson_iter_next(arr) && c->npeers < NGX_HTTP_CHAT_CALL_PEERS_MAX) {
        if (!BSON_ITER_HOLDS_DOCUMENT(arr) || !bson_iter_recurse(arr, &sub)) {
            continue;
        }

        p = &c->peers[c->npeers];
        ngx_memzero(p, sizeof(ngx_http_chat_call_peer_t));

        while (bson_iter_next(&sub)) {
            key = bson_iter_key(&sub);

            if (ngx_strcmp(key, "userId") == 0 && BSON_ITER_HOLDS_OID(&sub)) {
                bson_oid_copy(bson_iter_oid(&sub), &p->user);

            } else if (ngx_strcmp(key, "sock") == 0
                       && BSON_ITER_HOLDS_UTF8(&sub))
            {
                ngx_http_chat_call_copy(p->sock, sizeof(p->sock),
                                        bson_iter_utf8(&sub, NULL));

            } else if (ngx_strcmp(key, "state") == 0
                       && BSON_ITER_HOLDS_UTF8(&sub))
            {
                ngx_http_chat_call_copy(p->state, sizeof(p->state),
                                        bson_iter_utf8(&sub, NULL));

            } else if (ngx_strcmp(key, "at") == 0
                       && BSON_ITER_HOLDS_DATE_TIME(&sub))
            {
                p->at = bson_iter_date_time(&sub);
            }
        }

        c->npeers++;
    }
}


static void
ngx_http_chat_call_parse(const bson_t *doc, ngx_http_chat_call_t *c)
{
    const char   *key;
    bson_iter_t   it, arr;

    ngx_memzero(c, sizeof(ngx_http_chat_call_t));

    if (!bson_iter_init(&it, doc)) {
        return;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (BSON_ITER_HOLDS_OID(&it)) {
            if (ngx_strcmp(key, "_id") == 0) {
                bson_oid_copy(bson_iter_oid(&it), &c->id);

            } else if (ngx_strcmp(key, "chatId") == 0) {
                bson_oid_copy(bson_iter_oid(&it), &c->chat);
                c->has_chat = 1;

            } else if (ngx_strcmp(key, "callerId") == 0) {
                bson_oid_copy(bson_iter_oid(&it), &c->caller);

            } else if (ngx_strcmp(key, "endedBy") == 0) {
                bson_oid_copy(bson_iter_oid(&it), &c->ended_by);
                c->has_ended_by = 1;
            }

        } else if (BSON_ITER_HOLDS_UTF8(&it)) {
            if (ngx_strcmp(key, "status") == 0) {
                ngx_http_chat_call_copy(c->status, sizeof(c->status),
                                        bson_iter_utf8(&it, NULL));

            } else if (ngx_strcmp(key, "reason") == 0) {
                ngx_http_chat_call_copy(c->reason, sizeof(c->reason),
                                        bson_iter_utf8(&it, NULL));

            } else if (ngx_strcmp(key, "type") == 0) {
                c->video = ngx_http_chat_call_is(bson_iter_utf8(&it, NULL),
                                                 "video");
            }

        } else if (BSON_ITER_HOLDS_BOOL(&it)) {
            if (ngx_strcmp(key, "live") == 0) {
                c->live = bson_iter_bool(&it);

            } else if (ngx_strcmp(key, "group") == 0) {
                c->group = bson_iter_bool(&it);
            }

        } else if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
            if (ngx_strcmp(key, "startedAt") == 0) {
                c->started = bson_iter_date_time(&it);

            } else if (ngx_strcmp(key, "ringUntil") == 0) {
                c->ring_until = bson_iter_date_time(&it);

            } else if (ngx_strcmp(key, "answeredAt") == 0) {
                c->answered = bson_iter_date_time(&it);

            } else if (ngx_strcmp(key, "endedAt") == 0) {
                c->ended = bson_iter_date_time(&it);
            }

        } else if (ngx_strcmp(key, "v") == 0 && BSON_ITER_HOLDS_NUMBER(&it)) {
            c->v = bson_iter_as_int64(&it);

        } else if (ngx_strcmp(key, "peers") == 0 && BSON_ITER_HOLDS_ARRAY(&it)
                   && bson_iter_recurse(&it, &arr))
        {
            ngx_http_chat_call_parse_peers(&arr, c);
        }
    }
}


/* the whole record, version v */

static void
ngx_http_chat_call_bson(ngx_http_chat_call_t *c, bson_t *doc)
{
    char                        buf[16];
    bson_t                      arr, sub;
    ngx_uint_t                  i;
    const char                 *k;
    ngx_http_chat_call_peer_t  *p;

    BSON_APPEND_OID(doc, "_id", &c->id);

    if (c->has_chat) {
        BSON_APPEND_OID(doc, "chatId", &c->chat);
    }

    BSON_APPEND_UTF8(doc, "type", c->video ? "video" : "audio");
    BSON_APPEND_BOOL(doc, "group", c->group);
    BSON_APPEND_OID(doc, "callerId", &c->caller);

    BSON_APPEND_ARRAY_BEGIN(doc, "members", &arr);

    for (i = 0; i < c->npeers; i++) {
        bson_uint32_to_string((uint32_t) i, &k, buf, sizeof(buf));
        BSON_APPEND_OID(&arr, k, &c->peers[i].user);
    }

    bson_append_array_end(doc, &arr);

    BSON_APPEND_ARRAY_BEGIN(doc, "peers", &arr);

    for (i = 0; i < c->npeers; i++) {
        p = &c->peers[i];
        bson_uint32_to_string((uint32_t) i, &k, buf, sizeof(buf));
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &sub);
        BSON_APPEND_OID(&sub, "userId", &p->user);
        BSON_APPEND_UTF8(&sub, "state", p->state);
        BSON_APPEND_UTF8(&sub, "sock", p->sock);

        if (p->at) {
            BSON_APPEND_DATE_TIME(&sub, "at", p->at);
        }

        bson_append_document_end(&arr, &sub);
    }

    bson_append_array_end(doc, &arr);

    BSON_APPEND_UTF8(doc, "status", c->status);
    BSON_APPEND_BOOL(doc, "live", c->live);
    BSON_APPEND_DATE_TIME(doc, "startedAt", c->started);
    BSON_APPEND_DATE_TIME(doc, "ringUntil", c->ring_until);

    if (c->answered) {
        BSON_APPEND_DATE_TIME(doc, "answeredAt", c->answered);
    }

    if (c->ended) {
        BSON_APPEND_DATE_TIME(doc, "endedAt", c->ended);
    }

    if (c->has_ended_by) {
        BSON_APPEND_OID(doc, "endedBy", &c->ended_by);
    }

    if (c->reason[0]) {
        BSON_APPEND_UTF8(doc, "reason", c->reason);
    }

    BSON_APPEND_INT64(doc, "v", c->v);
}


/* NGX_OK, NGX_DECLINED, NGX_ERROR */

static ngx_int_t
ngx_http_chat_call_load(mongoc_database_t *db, const bson_oid_t *id,
    ngx_http_chat_call_t *c, bson_error_t *error)
{
    bson_t     filter, doc;
    ngx_int_t  rc;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", id);
    bson_init(&doc);

    rc = ngx_http_chat_mongo_find_one(db, "calls", &filter, NULL, &doc,
                                      error);
    if (rc == NGX_OK) {
        ngx_http_chat_call_parse(&doc, c);
        c->was_live = c->live;
    }

    bson_destroy(&doc);
    bson_destroy(&filter);

    return rc;
}


/* the token of version v of call id in "callversions", one at a time */

static ngx_int_t
ngx_http_chat_call_token(mongoc_database_t *db, const bson_oid_t *id,
    int64_t v, ngx_uint_t take, bson_error_t *error)
{
    char                  key[64], oid[25];
    bson_t                doc;
    ngx_int_t             rc;
    mongoc_collection_t  *coll;

    bson_oid_to_string(id, oid);
    ngx_sprintf((u_char *) key, "%s:%L%Z", oid, v);

    bson_init(&doc);
    BSON_APPEND_UTF8(&doc, "_id", key);
    coll = mongoc_database_get_collection(db, "callversions");

    if (take) {
        rc = mongoc_collection_insert_one(coll, &doc, NULL, NULL, error)
             ? NGX_OK
             : ngx_http_chat_chats_is_dup(error, NULL) ? NGX_AGAIN
                                                       : NGX_ERROR;

    } else {
        /* best effort: a token left over only takes room */
        rc = mongoc_collection_delete_one(coll, &doc, NULL, NULL, error)
             ? NGX_OK : NGX_ERROR;
    }

    mongoc_collection_destroy(coll);
    bson_destroy(&doc);

    return rc;
}


/*
 * Writes c over version c->v: NGX_OK (c->v is the new one), NGX_AGAIN
 * when another change came first, NGX_ERROR.  The filter on v is the
 * compare and set on MongoDB; FerretDB runs an update as a find, then a
 * rewrite, not atomically, so a writer first takes the next version's
 * token (a unique _id: one insert wins on both) and only its holder
 * writes.  The token before it is dropped once the call moved on.
 */

static ngx_int_t
ngx_http_chat_call_save(mongoc_database_t *db, ngx_http_chat_call_t *c,
    bson_error_t *error)
{
    bson_t                filter, doc, reply;
    ngx_int_t             rc;
    bson_error_t          ignored;
    mongoc_collection_t  *coll;

    rc = ngx_http_chat_call_token(db, &c->id, c->v + 1, 1, error);
    if (rc != NGX_OK) {
        return rc;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &c->id);
    BSON_APPEND_INT64(&filter, "v", c->v);

    c->v++;
    bson_init(&doc);
    ngx_http_chat_call_bson(c, &doc);

    coll = mongoc_database_get_collection(db, "calls");

    rc = mongoc_collection_replace_one(coll, &filter, &doc, NULL, &reply,
                                       error)
         ? NGX_OK : NGX_ERROR;

    if (rc == NGX_OK && ngx_http_chat_chats_int(&reply, "matchedCount") == 0)
    {
        rc = NGX_AGAIN;
    }

    if (rc != NGX_OK) {
        /* not written: the token must not hold the call back */
        (void) ngx_http_chat_call_token(db, &c->id, c->v, 0, &ignored);
        c->v--;

    } else if (c->v > 1) {
        (void) ngx_http_chat_call_token(db, &c->id, c->v - 1, 0, &ignored);
    }

    if (rc == NGX_OK && c->was_live && !c->live) {
        /* the one write that ended it: counted for the metrics */
        c->was_live = 0;
        ngx_http_chat_call_count_end(c);
    }

    bson_destroy(&reply);
    mongoc_collection_destroy(coll);
    bson_destroy(&doc);
    bson_destroy(&filter);

    return rc;
}


/* in a thread: a call ended, by its status (atomic adds, any thread) */

static void
ngx_http_chat_call_count_end(ngx_http_chat_call_t *c)
{
    ngx_uint_t  i;

    static const char  *statuses[] = {
        "answered", "missed", "rejected", "cancelled", "busy", "failed",
        NULL
    };

    for (i = 0; statuses[i]; i++) {
        if (ngx_http_chat_call_is(c->status, statuses[i])) {
            ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_CALLS_ANSWERED + i);
            break;
        }
    }

    if (i == 0) {
        ngx_http_chat_metric_add(NGX_HTTP_CHAT_M_CALL_SECONDS,
                                 ngx_http_chat_call_duration(c));
    }
}


/* a ringing call past its time whose timer was lost reads as missed */

static void
ngx_http_chat_call_settle(ngx_http_chat_call_t *c, int64_t now)
{
    ngx_uint_t  i;

    if (c->live && ngx_http_chat_call_is(c->status, "ringing")
        && now > c->ring_until + NGX_HTTP_CHAT_CALL_SLACK)
    {
        c->live = 0;
        c->ended = c->ring_until;
        ngx_memcpy(c->status, "missed", sizeof("missed"));

        for (i = 0; i < c->npeers; i++) {
            if (ngx_http_chat_call_is(c->peers[i].state, "ringing")) {
                ngx_memcpy(c->peers[i].state, "missed", sizeof("missed"));
            }
        }
    }
}


static int64_t
ngx_http_chat_call_duration(ngx_http_chat_call_t *c)
{
    if (c->answered && c->ended > c->answered) {
        return (c->ended - c->answered + 500) / 1000;
    }

    return 0;
}


/* a call as clients see it; viewer: with its direction for them */

static json_t *
ngx_http_chat_call_json(ngx_http_chat_call_t *c, const bson_oid_t *viewer)
{
    json_t                     *j, *ps, *p;
    ngx_uint_t                  i;

    ps = json_array();
    if (ps == NULL) {
        return NULL;
    }

    for (i = 0; i < c->npeers; i++) {
        p = json_pack("{s:o,s:s}",
                      "userId",
                      ngx_http_chat_chats_oid_json(&c->peers[i].user),
                      "state", c->peers[i].state);

        if (p == NULL || json_array_append_new(ps, p) != 0) {
            json_decref(ps);
            return NULL;
        }
    }

    j = json_pack("{s:o,s:o,s:s,s:b,s:o,s:o,s:s,s:o,s:I}",
                  "id", ngx_http_chat_chats_oid_json(&c->id),
                  "chatId", c->has_chat
                            ? ngx_http_chat_chats_oid_json(&c->chat)
                            : json_null(),
                  "type", c->video ? "video" : "audio",
                  "isGroup", (int) c->group,
                  "callerId", ngx_http_chat_chats_oid_json(&c->caller),
                  "participants", ps,
                  "status", c->status,
                  "startedAt", ngx_http_chat_json_time(c->started),
                  "duration", (json_int_t) ngx_http_chat_call_duration(c));
    if (j == NULL) {
        return NULL;
    }

    json_object_set_new(j, "answeredAt", c->answered
                        ? ngx_http_chat_json_time(c->answered) : json_null());
    json_object_set_new(j, "endedAt", c->ended
                        ? ngx_http_chat_json_time(c->ended) : json_null());

    if (c->has_ended_by) {
        json_object_set_new(j, "endedBy",
                            ngx_http_chat_chats_oid_json(&c->ended_by));
    }

    if (c->reason[0]) {
        json_object_set_new(j, "reason", json_string(c->reason));
    }

    if (viewer) {
        json_object_set_new(j, "direction",
                            json_string(bson_oid_equal(viewer, &c->caller)
                                        ? "outgoing" : "incoming"));
    }

    return j;
}


/*
 * An event to every peer's sockets (user channels) but except's;
 * data is taken
 */

static ngx_int_t
ngx_http_chat_call_tell(json_t *answer, ngx_http_chat_call_t *c,
    const char *event, json_t *data, const bson_oid_t *except,
    const bson_oid_t *origin)
{
    ngx_int_t   rc;
    ngx_uint_t  i;

    if (data == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_OK;

    for (i = 0; i < c->npeers && rc == NGX_OK; i++) {
        if (except && bson_oid_equal(except, &c->peers[i].user)) {
            continue;
        }

        rc = ngx_http_chat_chats_event(answer, "user:", &c->peers[i].user,
                                       '-', origin, NULL, event,
                                       json_incref(data));
    }

    json_decref(data);

    return rc;
}


/* the peers in the call now */

static ngx_uint_t
ngx_http_chat_call_count_in(ngx_http_chat_call_t *c)
{
    ngx_uint_t  i, n;

    for (i = 0, n = 0; i < c->npeers; i++) {
        n += ngx_http_chat_call_in(&c->peers[i]);
    }

    return n;
}


/*
 * Who is in a group's call, to the group's members (its chat channel):
 * call_participants {callId, chatId, participants}
 */

static ngx_int_t
ngx_http_chat_call_roster(json_t *answer, ngx_http_chat_call_t *c)
{
    json_t  *j, *d;

    if (!c->group || !c->has_chat) {
        return NGX_OK;
    }

    j = ngx_http_chat_call_json(c, NULL);
    if (j == NULL) {
        return NGX_ERROR;
    }

    d = json_pack("{s:o,s:o,s:O,s:O}",
                  "callId", ngx_http_chat_chats_oid_json(&c->id),
                  "chatId", ngx_http_chat_chats_oid_json(&c->chat),
                  "participants", json_object_get(j, "participants"),
                  "status", json_object_get(j, "status"));
    json_decref(j);

    return ngx_http_chat_chats_event(answer, "chat:", &c->chat, '-', NULL,
                                     NULL, "call_participants", d);
}


static json_t *
ngx_http_chat_call_ended_data(ngx_http_chat_call_t *c)
{
    json_t  *d;

    d = json_pack("{s:o,s:s,s:I}",
                  "callId", ngx_http_chat_chats_oid_json(&c->id),
                  "status", c->status,
                  "duration", (json_int_t) ngx_http_chat_call_duration(c));
    if (d == NULL) {
        return NULL;
    }

    json_object_set_new(d, "endedBy", c->has_ended_by
                        ? ngx_http_chat_chats_oid_json(&c->ended_by)
                        : json_null());

    if (c->reason[0]) {
        json_object_set_new(d, "reason", json_string(c->reason));
    }

    return d;
}


static json_t *
ngx_http_chat_call_id_data(ngx_http_chat_call_t *c, const bson_oid_t *user)
{
    json_t  *d;

    d = json_pack("{s:o}", "callId", ngx_http_chat_chats_oid_json(&c->id));

    if (d && user) {
        json_object_set_new(d, "userId", ngx_http_chat_chats_oid_json(user));
    }

    return d;
}


static void
ngx_http_chat_call_refuse(ngx_http_chat_mongo_task_t *t, const char *code,
    const char *message)
{
    ngx_http_chat_chats_answer(t, NGX_BUSY,
                               json_pack("{s:s,s:s}", "code", code,
                                         "message", message));
}


static void
ngx_http_chat_call_end_now(ngx_http_chat_call_t *c, const char *status,
    const bson_oid_t *by, int64_t now)
{
    c->live = 0;
    c->ended = now;
    ngx_http_chat_call_copy(c->status, sizeof(c->status), status);

    if (by) {
        bson_oid_copy(by, &c->ended_by);
        c->has_ended_by = 1;
    }
}


/* the callees of a call started by me, into c; NGX_ABORT: none to call */

static ngx_int_t
ngx_http_chat_call_callees(mongoc_database_t *db, ngx_http_chat_call_arg_t *a,
    ngx_http_chat_call_t *c, ngx_http_chat_mongo_task_t *t)
{
    char                  me[25], other[25], pair[2 * 24 + 2];
    bson_t                filter, doc;
    ngx_int_t             rc;
    bson_oid_t            user;
    bson_iter_t           it;
    const bson_t         *m;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;

    if (a->has_target) {
        bson_init(&filter);
        BSON_APPEND_OID(&filter, "_id", &a->target);
        rc = ngx_http_chat_chats_exists(db, "users", &filter, &t->error);
        bson_destroy(&filter);

        if (rc != NGX_OK) {
            return rc;
        }

        bson_oid_copy(&a->target, &c->peers[1].user);
        c->npeers = 2;

        /* the pair's private chat, if they have one, for the call's record */
        bson_oid_to_string(&a->me, me);
        bson_oid_to_string(&a->target, other);
        ngx_sprintf((u_char *) pair, "%s:%s%Z",
                    ngx_strcmp(me, other) < 0 ? me : other,
                    ngx_strcmp(me, other) < 0 ? other : me);

        bson_init(&filter);
        BSON_APPEND_UTF8(&filter, "pairKey", pair);
        bson_init(&doc);

        rc = ngx_http_chat_mongo_find_one(db, "chats", &filter, NULL, &doc,
                                          &t->error);
        if (rc == NGX_OK && bson_iter_init_find(&it, &doc, "_id")
            && BSON_ITER_HOLDS_OID(&it))
        {
            bson_oid_copy(bson_iter_oid(&it), &c->chat);
            c->has_chat = 1;
        }

        bson_destroy(&doc);
        bson_destroy(&filter);

        return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
    }

    /* a chat: only its members call in it */
    rc = ngx_http_chat_chats_is_member(db, &a->chat, &a->me, &t->error);
    if (rc != NGX_OK) {
        return rc;
    }

    bson_oid_copy(&a->chat, &c->chat);
    c->has_chat = 1;

    rc = ngx_http_chat_chats_private_peer(db, &a->chat, &a->me, &user,
                                          &t->error);
    if (rc == NGX_OK) {
        bson_oid_copy(&user, &c->peers[1].user);
        c->npeers = 2;
        return NGX_OK;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    c->group = 1;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId", &a->chat);

    coll = mongoc_database_get_collection(db, "members");
    cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);

    while (mongoc_cursor_next(cursor, &m)) {
        if (!bson_iter_init_find(&it, m, "userId")
            || !BSON_ITER_HOLDS_OID(&it)
            || bson_oid_equal(bson_iter_oid(&it), &a->me))
        {
            continue;
        }

        if (c->npeers >= a->max_peers
            || c->npeers >= NGX_HTTP_CHAT_CALL_PEERS_MAX)
        {
            c->npeers = NGX_HTTP_CHAT_CALL_PEERS_MAX + 1;
            break;
        }

        bson_oid_copy(bson_iter_oid(&it), &c->peers[c->npeers++].user);
    }

    rc = mongoc_cursor_error(cursor, &t->error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    bson_destroy(&filter);

    if (rc == NGX_OK && c->npeers > NGX_HTTP_CHAT_CALL_PEERS_MAX) {
        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   json_pack("{s:s,s:s}", "field", "chatId",
                                             "reason", "the group has more "
                                             "members than a call may "
                                             "have"));
        return NGX_ABORT;
    }

    return rc;
}


/*
 * The loser of a glare, o, cancelled: when its own thread (or an accept)
 * wrote it meanwhile, it is read again and cancelled if it still rings,
 * so that a glare never leaves both calls ringing.  Only the write that
 * cancelled it tells.
 */

static ngx_int_t
ngx_http_chat_call_glare(mongoc_database_t *db, ngx_http_chat_call_t *o,
    json_t *answer, int64_t now, bson_error_t *error)
{
    ngx_int_t   rc;
    ngx_uint_t  n;

    for (n = 0; n < NGX_HTTP_CHAT_CALL_TRIES; n++) {
        if (n) {
            ngx_msleep(5 * n);     /* a pool thread: the other write ends */

            rc = ngx_http_chat_call_load(db, &o->id, o, error);
            if (rc != NGX_OK) {
                return rc == NGX_DECLINED ? NGX_OK : NGX_ERROR;
            }

            ngx_http_chat_call_settle(o, now);

            if (!o->live || !ngx_http_chat_call_is(o->status, "ringing")) {
                return NGX_OK;  /* over, or answered: not a glare now */
            }
        }

        ngx_http_chat_call_end_now(o, "cancelled", NULL, now);
        ngx_memcpy(o->reason, "glare", sizeof("glare"));

        rc = ngx_http_chat_call_save(db, o, error);

        if (rc == NGX_OK) {
            return ngx_http_chat_call_tell(answer, o, "call_cancelled",
                       json_pack("{s:o,s:s}", "callId",
                                 ngx_http_chat_chats_oid_json(&o->id),
                                 "reason", "glare"),
                       NULL, NULL);
        }

        if (rc != NGX_AGAIN) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * After the insert, the other live calls of the callees: glare (the
 * callee calls me too: the call with the smaller id wins, the other is
 * cancelled, whichever thread sees it first) and busy (a callee in
 * another call answered, or ringing and older than mine).  Both threads
 * of a glare reach the same verdict.
 */

static ngx_int_t
ngx_http_chat_call_conflicts(mongoc_database_t *db, ngx_http_chat_call_t *c,
    json_t *answer, ngx_uint_t *lost, bson_error_t *error)
{
    bson_t                      filter, elem, in, ne, opts;
    int64_t                     now;
    ngx_int_t                   rc;
    ngx_uint_t                  i, n;
    const bson_t               *doc;
    mongoc_cursor_t            *cursor;
    mongoc_collection_t        *coll;
    ngx_http_chat_call_t       *o;
    ngx_http_chat_call_peer_t  *p;
    char                        buf[16];
    const char                 *k;

    *lost = 0;

    o = ngx_alloc(sizeof(ngx_http_chat_call_t), ngx_cycle->log);
    if (o == NULL) {
        bson_set_error(error, 0, 0, "no memory");
        return NGX_ERROR;
    }

    /*
     * {$elemMatch: {$in}}: FerretDB's search on an indexed field matches
     * scalars only, never an array's elements; both it and MongoDB (on
     * the multikey index) answer this alike
     */
    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "members", &elem);
    BSON_APPEND_DOCUMENT_BEGIN(&elem, "$elemMatch", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ne);

    for (i = 1, n = 0; i < c->npeers; i++) {
        bson_uint32_to_string((uint32_t) n++, &k, buf, sizeof(buf));
        BSON_APPEND_OID(&ne, k, &c->peers[i].user);
    }

    bson_append_array_end(&in, &ne);
    bson_append_document_end(&elem, &in);
    bson_append_document_end(&filter, &elem);
    BSON_APPEND_BOOL(&filter, "live", 1);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &ne);
    BSON_APPEND_OID(&ne, "$ne", &c->id);
    bson_append_document_end(&filter, &ne);

    bson_init(&opts);
    BSON_APPEND_INT64(&opts, "limit", 100);

    coll = mongoc_database_get_collection(db, "calls");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    now = ngx_http_chat_chats_now();
    rc = NGX_OK;

    while (rc == NGX_OK && mongoc_cursor_next(cursor, &doc)) {
        ngx_http_chat_call_parse(doc, o);
        ngx_http_chat_call_settle(o, now);

        if (!o->live) {
            continue;
        }

        if (!c->group && !o->group
            && bson_oid_equal(&o->caller, &c->peers[1].user)
            && ngx_http_chat_call_peer(o, &c->caller)
            && ngx_http_chat_call_is(o->status, "ringing"))
        {
            /* glare */
            if (bson_oid_compare(&c->id, &o->id) > 0) {
                *lost = 1;
                continue;
            }

            rc = ngx_http_chat_call_glare(db, o, answer, now, error);
            continue;
        }

        for (i = 1; i < c->npeers; i++) {
            p = ngx_http_chat_call_peer(o, &c->peers[i].user);

            if (p == NULL
                || !(ngx_http_chat_call_in(p)
                     || ngx_http_chat_call_is(p->state, "ringing")))
            {
                continue;
            }

            if (ngx_http_chat_call_is(o->status, "answered")
                || bson_oid_compare(&o->id, &c->id) < 0)
            {
                ngx_memcpy(c->peers[i].state, "busy", sizeof("busy"));
            }
        }
    }

    if (rc == NGX_OK && mongoc_cursor_error(cursor, error)) {
        rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    bson_destroy(&opts);
    bson_destroy(&filter);
    ngx_free(o);

    return rc;
}


/*
 * Is me in another live call already (calling, or answered)?  NGX_OK,
 * NGX_DECLINED, NGX_ERROR.  Ringing for me is no bar: I may call back
 * (glare), or call someone else while another call rings.
 */

static ngx_int_t
ngx_http_chat_call_engaged(mongoc_database_t *db, const bson_oid_t *me,
    bson_error_t *error)
{
    bson_t                      filter, elem, in, arr;
    int64_t                     now;
    ngx_int_t                   rc;
    const bson_t               *doc;
    mongoc_cursor_t            *cursor;
    mongoc_collection_t        *coll;
    ngx_http_chat_call_t       *o;
    ngx_http_chat_call_peer_t  *p;

    o = ngx_alloc(sizeof(ngx_http_chat_call_t), ngx_cycle->log);
    if (o == NULL) {
        bson_set_error(error, 0, 0, "no memory");
        return NGX_ERROR;
    }

    /* {$elemMatch: {$in: [me]}}, as the conflicts' query says why */
    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "members", &elem);
    BSON_APPEND_DOCUMENT_BEGIN(&elem, "$elemMatch", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    BSON_APPEND_OID(&arr, "0", me);
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&elem, &in);
    bson_append_document_end(&filter, &elem);
    BSON_APPEND_BOOL(&filter, "live", 1);

    coll = mongoc_database_get_collection(db, "calls");
    cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    now = ngx_http_chat_chats_now();
    rc = NGX_DECLINED;

    while (rc == NGX_DECLINED && mongoc_cursor_next(cursor, &doc)) {
        ngx_http_chat_call_parse(doc, o);
        ngx_http_chat_call_settle(o, now);

        p = ngx_http_chat_call_peer(o, me);

        if (o->live && p && ngx_http_chat_call_in(p)) {
            rc = NGX_OK;
        }
    }

    if (mongoc_cursor_error(cursor, error)) {
        rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    bson_destroy(&filter);
    ngx_free(o);

    return rc;
}


/* POST /api/calls/initiate, call_initiate */

void
ngx_http_chat_call_initiate_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_call_arg_t *a = t->arg;

    json_t                *answer;
    bson_t                 doc;
    int64_t                now;
    ngx_int_t              rc;
    ngx_uint_t             i, ringing, lost;
    ngx_http_chat_call_t  *c;
    mongoc_collection_t   *coll;

    c = ngx_calloc(sizeof(ngx_http_chat_call_t), ngx_cycle->log);
    if (c == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    c->npeers = 1;
    bson_oid_copy(&a->me, &c->peers[0].user);

    rc = ngx_http_chat_call_callees(db, a, c, t);

    if (rc != NGX_OK) {
        if (rc != NGX_ABORT) {
            ngx_http_chat_chats_answer(t, rc, NULL);
        }

        ngx_free(c);
        return;
    }

    if (c->npeers < 2) {
        ngx_free(c);
        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   json_pack("{s:s,s:s}", "field", "chatId",
                                             "reason", "nobody to call"));
        return;
    }

    /* no call across a block, either way: a group leaves them out */
    for (i = 1; i < c->npeers; i++) {
        rc = ngx_http_chat_chats_blocked(db, &a->me, &c->peers[i].user,
                                         &t->error);
        if (rc == NGX_ERROR) {
            ngx_free(c);
            t->rc = NGX_ERROR;
            return;
        }

        if (rc == NGX_OK) {
            if (!c->group) {
                ngx_free(c);
                ngx_http_chat_call_refuse(t, "blocked",
                                          "one of you blocked the other");
                return;
            }

            c->peers[i] = c->peers[--c->npeers];
            i--;
        }
    }

    if (c->npeers < 2) {
        ngx_free(c);
        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   json_pack("{s:s,s:s}", "field", "chatId",
                                             "reason", "nobody to call"));
        return;
    }

    rc = ngx_http_chat_call_engaged(db, &a->me, &t->error);

    if (rc != NGX_DECLINED) {
        ngx_free(c);

        if (rc == NGX_OK) {
            ngx_http_chat_call_refuse(t, "in_another_call",
                                      "end your call before you start "
                                      "another");
            return;
        }

        t->rc = NGX_ERROR;
        return;
    }

    now = ngx_http_chat_chats_now();

    bson_oid_copy(&a->id, &c->id);
    bson_oid_copy(&a->me, &c->caller);
    c->video = a->video;
    c->live = 1;
    c->started = now;
    c->ring_until = now + a->ring;
    ngx_memcpy(c->status, "ringing", sizeof("ringing"));
    ngx_memcpy(c->peers[0].state, "caller", sizeof("caller"));
    ngx_http_chat_call_copy(c->peers[0].sock, sizeof(c->peers[0].sock),
                            a->sock);
    c->peers[0].at = now;

    for (i = 1; i < c->npeers; i++) {
        ngx_memcpy(c->peers[i].state, "ringing", sizeof("ringing"));
        c->peers[i].sock[0] = '\0';
        c->peers[i].at = 0;
    }

    bson_init(&doc);
    ngx_http_chat_call_bson(c, &doc);
    coll = mongoc_database_get_collection(db, "calls");
    c->was_live = c->live;

    if (!mongoc_collection_insert_one(coll, &doc, NULL, NULL, &t->error)) {
        mongoc_collection_destroy(coll);
        bson_destroy(&doc);
        ngx_free(c);
        t->rc = NGX_ERROR;
        return;
    }

    mongoc_collection_destroy(coll);
    bson_destroy(&doc);

    answer = json_object();

    if (answer == NULL
        || ngx_http_chat_call_conflicts(db, c, answer, &lost, &t->error)
           != NGX_OK)
    {
        json_decref(answer);
        ngx_free(c);
        t->rc = NGX_ERROR;
        return;
    }

    ringing = 0;

    for (i = 1; i < c->npeers; i++) {
        ringing += ngx_http_chat_call_is(c->peers[i].state, "ringing");
    }

    if (lost) {
        ngx_http_chat_call_end_now(c, "cancelled", NULL, now);
        ngx_memcpy(c->reason, "glare", sizeof("glare"));

    } else if (ringing == 0) {
        ngx_http_chat_call_end_now(c, "busy", NULL, now);
    }

    rc = ngx_http_chat_call_save(db, c, &t->error);

    if (rc == NGX_AGAIN) {
        /* the other side of a glare cancelled it and told so */
        rc = ngx_http_chat_call_load(db, &c->id, c, &t->error);

        if (rc == NGX_OK) {
            json_object_set_new(answer, "call",
                                ngx_http_chat_call_json(c, &a->me));
        }

        ngx_free(c);
        ngx_http_chat_chats_answer(t, rc == NGX_OK ? NGX_OK : NGX_ERROR,
                                   answer);
        return;
    }

    if (rc != NGX_OK) {
        json_decref(answer);
        ngx_free(c);
        t->rc = NGX_ERROR;
        return;
    }

    if (json_object_set_new(answer, "call",
                            ngx_http_chat_call_json(c, &a->me))
        != 0)
    {
        json_decref(answer);
        ngx_free(c);
        t->rc = NGX_ERROR;
        return;
    }

    rc = NGX_OK;

    for (i = 1; i < c->npeers && rc == NGX_OK; i++) {
        if (ngx_http_chat_call_is(c->peers[i].state, "busy")) {
            rc = ngx_http_chat_chats_event(answer, "user:", &a->me, '-',
                     &a->me, NULL, "call_busy",
                     ngx_http_chat_call_id_data(c, &c->peers[i].user));

        } else if (c->live) {
            rc = ngx_http_chat_chats_event(answer, "user:",
                     &c->peers[i].user, '-', &a->me, NULL, "incoming_call",
                     json_pack("{s:o}", "call",
                               ngx_http_chat_call_json(c,
                                                   &c->peers[i].user)));
        }
    }

    if (rc == NGX_OK && c->live) {
        rc = ngx_http_chat_call_roster(answer, c);
    }

    if (rc == NGX_OK && lost) {
        rc = ngx_http_chat_chats_event(answer, "user:", &a->me, '-', &a->me,
                 NULL, "call_cancelled",
                 json_pack("{s:o,s:s}", "callId",
                           ngx_http_chat_chats_oid_json(&c->id),
                           "reason", "glare"));
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, t->log, 0,
                      "chat: a call's events were not all sent");
    }

    ngx_free(c);
    ngx_http_chat_chats_answer(t, NGX_OK, answer);
}


/* the content of the call's message in its chat, and its chat */

static ngx_int_t
ngx_http_chat_call_system(json_t *answer, ngx_http_chat_call_t *c)
{
    json_t  *sys;

    if (!c->has_chat) {
        return NGX_OK;
    }

    sys = json_pack("{s:o,s:s,s:s,s:o,s:I,s:o}",
                    "callId", ngx_http_chat_chats_oid_json(&c->id),
                    "callType", c->video ? "video" : "audio",
                    "status", c->status,
                    "callerId", ngx_http_chat_chats_oid_json(&c->caller),
                    "duration", (json_int_t) ngx_http_chat_call_duration(c),
                    "chatId", ngx_http_chat_chats_oid_json(&c->chat));

    if (sys == NULL || json_object_set_new(answer, "system", sys) != 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t ngx_http_chat_call_act_on(mongoc_database_t *db,
    ngx_http_chat_call_arg_t *a, ngx_http_chat_call_t *c,
    ngx_http_chat_call_peer_t *p, json_t *answer,
    ngx_http_chat_mongo_task_t *t, int64_t now);


/* one change: NGX_OK told, NGX_DONE nothing to do, NGX_AGAIN try again */

static ngx_int_t
ngx_http_chat_call_act(mongoc_database_t *db, ngx_http_chat_call_arg_t *a,
    ngx_http_chat_call_t *c, json_t *answer, ngx_http_chat_mongo_task_t *t)
{
    int64_t                     now;
    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_http_chat_call_peer_t  *p;

    rc = ngx_http_chat_call_load(db, &a->id, c, &t->error);
    if (rc != NGX_OK) {
        return rc;
    }

    now = ngx_http_chat_chats_now();
    p = ngx_http_chat_call_peer(c, &a->me);

    if (a->what == NGX_HTTP_CHAT_CALL_TIMEOUT) {
        if (!c->live || !ngx_http_chat_call_is(c->status, "ringing")) {
            return NGX_DONE;
        }

        ngx_http_chat_call_end_now(c, "missed", NULL, now);

        for (i = 0; i < c->npeers; i++) {
            if (ngx_http_chat_call_is(c->peers[i].state, "ringing")) {
                ngx_memcpy(c->peers[i].state, "missed", sizeof("missed"));
            }
        }

        rc = ngx_http_chat_call_save(db, c, &t->error);
        if (rc != NGX_OK) {
            return rc;
        }

        for (i = 0; i < c->npeers && rc == NGX_OK; i++) {
            if (ngx_http_chat_call_is(c->peers[i].state, "missed")) {
                rc = ngx_http_chat_chats_event(answer, "user:",
                         &c->peers[i].user, '-', &c->caller, NULL,
                         "call_missed",
                         json_pack("{s:o}", "call",
                                   ngx_http_chat_call_json(c,
                                                   &c->peers[i].user)));
            }
        }

        if (rc == NGX_OK) {
            rc = ngx_http_chat_chats_event(answer, "user:", &c->caller, '-',
                                           &c->caller, NULL, "call_ended",
                                           ngx_http_chat_call_ended_data(c));
        }

        if (rc == NGX_OK) {
            rc = ngx_http_chat_call_roster(answer, c);
        }

        if (rc == NGX_OK) {
            rc = ngx_http_chat_call_system(answer, c);
        }

        return rc;
    }

    if (p == NULL && a->what == NGX_HTTP_CHAT_CALL_JOIN && c->group
        && c->has_chat)
    {
        /* a member of the group now (added after the call started) */
        rc = ngx_http_chat_chats_is_member(db, &c->chat, &a->me, &t->error);
        if (rc != NGX_OK) {
            return rc;
        }

        if (c->npeers == NGX_HTTP_CHAT_CALL_PEERS_MAX) {
            ngx_http_chat_call_refuse(t, "call_full",
                                      "the call has as many people as it "
                                      "may");
            return NGX_BUSY;
        }

        p = &c->peers[c->npeers++];
        ngx_memzero(p, sizeof(ngx_http_chat_call_peer_t));
        bson_oid_copy(&a->me, &p->user);
        ngx_memcpy(p->state, "left", sizeof("left"));
    }

    if (p == NULL) {
        /* a stranger learns nothing of the call */
        return NGX_DECLINED;
    }

    ngx_http_chat_call_settle(c, now);

    if (a->what == NGX_HTTP_CHAT_CALL_DROP) {
        if (!c->live || ngx_strcmp(p->sock, a->sock) != 0) {
            return NGX_DONE;    /* over, or the user is back on another */
        }

        if (c->group && c->answered && ngx_http_chat_call_in(p)
            && ngx_http_chat_call_count_in(c) > 2)
        {
            /* the others go on without that user */
            ngx_memcpy(p->state, "left", sizeof("left"));
            p->sock[0] = '\0';
            p->at = now;

            rc = ngx_http_chat_call_save(db, c, &t->error);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_chat_call_roster(answer, c);
        }

        ngx_http_chat_call_end_now(c, c->answered ? c->status : "failed",
                                   &a->me, now);
        ngx_memcpy(c->reason, "dropped", sizeof("dropped"));
        ngx_memcpy(p->state, "left", sizeof("left"));

        rc = ngx_http_chat_call_save(db, c, &t->error);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_chat_call_tell(answer, c, "call_ended",
                                     ngx_http_chat_call_ended_data(c),
                                     NULL, &a->me);

        return rc == NGX_OK ? ngx_http_chat_call_roster(answer, c) : rc;
    }

    return ngx_http_chat_call_act_on(db, a, c, p, answer, t, now);
}


/* a change of the call c, loaded, by me (p) */

static ngx_int_t
ngx_http_chat_call_act_on(mongoc_database_t *db, ngx_http_chat_call_arg_t *a,
    ngx_http_chat_call_t *c, ngx_http_chat_call_peer_t *p, json_t *answer,
    ngx_http_chat_mongo_task_t *t, int64_t now)
{
    json_t                     *data, *payload;
    ngx_int_t                   rc;
    ngx_uint_t                  i, open;
    bson_oid_t                  sock;
    ngx_http_chat_call_peer_t  *q;

    if (!c->live) {
        ngx_http_chat_call_refuse(t, "call_ended", "the call is over");
        return NGX_BUSY;
    }

    switch (a->what) {

    case NGX_HTTP_CHAT_CALL_JOIN:
        if (!c->group) {
            ngx_http_chat_call_refuse(t, "not_a_group_call",
                                      "only a group's call is joined");
            return NGX_BUSY;
        }

        if (ngx_http_chat_call_in(p)) {
            /* in already: this socket is the user's device now */
            if (a->sock[0] && ngx_strcmp(p->sock, a->sock) != 0) {
                ngx_http_chat_call_copy(p->sock, sizeof(p->sock), a->sock);
                return ngx_http_chat_call_save(db, c, &t->error);
            }

            return NGX_OK;
        }

        if (ngx_http_chat_call_count_in(c) >= a->max_peers) {
            ngx_http_chat_call_refuse(t, "call_full",
                                      "the call has as many people as it "
                                      "may");
            return NGX_BUSY;
        }

        a->what = NGX_HTTP_CHAT_CALL_ACCEPT;
        ngx_memcpy(p->state, "ringing", sizeof("ringing"));
        return ngx_http_chat_call_act_on(db, a, c, p, answer, t, now);

    case NGX_HTTP_CHAT_CALL_LEAVE:
        if (!ngx_http_chat_call_in(p)) {
            ngx_http_chat_call_refuse(t, "not_in_call",
                                      "you are not in the call");
            return NGX_BUSY;
        }

        if (!c->group || !c->answered
            || ngx_http_chat_call_count_in(c) <= 2)
        {
            /* the last two, or one to one: leaving is the end */
            a->what = NGX_HTTP_CHAT_CALL_END;
            return ngx_http_chat_call_act_on(db, a, c, p, answer, t, now);
        }

        ngx_memcpy(p->state, "left", sizeof("left"));
        p->sock[0] = '\0';
        p->at = now;

        rc = ngx_http_chat_call_save(db, c, &t->error);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_chat_call_roster(answer, c);

    case NGX_HTTP_CHAT_CALL_END:
        if (ngx_http_chat_call_is(c->status, "ringing")) {
            a->what = (p == &c->peers[0]) ? NGX_HTTP_CHAT_CALL_CANCEL
                                          : NGX_HTTP_CHAT_CALL_REJECT;
            return ngx_http_chat_call_act_on(db, a, c, p, answer, t, now);
        }

        ngx_http_chat_call_end_now(c, c->status, &a->me, now);
        ngx_memcpy(p->state, "left", sizeof("left"));

        rc = ngx_http_chat_call_save(db, c, &t->error);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_chat_call_tell(answer, c, "call_ended",
                                     ngx_http_chat_call_ended_data(c),
                                     NULL, &a->me);

        return rc == NGX_OK ? ngx_http_chat_call_roster(answer, c) : rc;

    case NGX_HTTP_CHAT_CALL_CANCEL:
        if (p != &c->peers[0]) {
            ngx_http_chat_call_refuse(t, "not_caller",
                                      "only the caller cancels a call");
            return NGX_BUSY;
        }

        if (!ngx_http_chat_call_is(c->status, "ringing")) {
            ngx_http_chat_call_refuse(t, "call_not_ringing",
                                      "the call was answered: end it");
            return NGX_BUSY;
        }

        ngx_http_chat_call_end_now(c, "cancelled", &a->me, now);

        rc = ngx_http_chat_call_save(db, c, &t->error);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_chat_call_tell(answer, c, "call_cancelled",
                                     ngx_http_chat_call_id_data(c, NULL),
                                     NULL, &a->me);

        return rc == NGX_OK ? ngx_http_chat_call_roster(answer, c) : rc;

    case NGX_HTTP_CHAT_CALL_ACCEPT:
    case NGX_HTTP_CHAT_CALL_REJECT:
        if (!ngx_http_chat_call_is(p->state, "ringing")) {
            ngx_http_chat_call_refuse(t, "call_not_ringing",
                                      "the call is not ringing for you");
            return NGX_BUSY;
        }

        if (a->what == NGX_HTTP_CHAT_CALL_REJECT) {
            ngx_memcpy(p->state, "rejected", sizeof("rejected"));
            p->at = now;

            /* over when nobody is left to answer and nobody answered */
            open = 0;

            for (i = 1; i < c->npeers; i++) {
                q = &c->peers[i];
                open += ngx_http_chat_call_is(q->state, "ringing")
                        || ngx_http_chat_call_is(q->state, "accepted");
            }

            if (open == 0) {
                ngx_http_chat_call_end_now(c, "rejected", &a->me, now);
            }

            rc = ngx_http_chat_call_save(db, c, &t->error);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_chat_call_tell(answer, c, "call_rejected",
                                           ngx_http_chat_call_id_data(c,
                                                                  &a->me),
                                           NULL, &a->me);
        }

        ngx_memcpy(p->state, "accepted", sizeof("accepted"));
        ngx_http_chat_call_copy(p->sock, sizeof(p->sock), a->sock);
        p->at = now;

        if (!c->answered) {
            c->answered = now;
            ngx_memcpy(c->status, "answered", sizeof("answered"));
        }

        rc = ngx_http_chat_call_save(db, c, &t->error);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_chat_call_tell(answer, c, "call_accepted",
                                     ngx_http_chat_call_id_data(c, &a->me),
                                     &a->me, &a->me);

        /* my other devices stop ringing */
        if (rc == NGX_OK && a->sock[0]) {
            bson_oid_init_from_string(&sock, a->sock);
            rc = ngx_http_chat_chats_event(answer, "user:", &a->me, 'o',
                     &a->me, &sock, "call_answered_elsewhere",
                     ngx_http_chat_call_id_data(c, NULL));
        }

        return rc == NGX_OK ? ngx_http_chat_call_roster(answer, c) : rc;

    default: /* NGX_HTTP_CHAT_CALL_SIGNAL */
        break;
    }

    if (!ngx_http_chat_call_in(p)) {
        ngx_http_chat_call_refuse(t, "not_answered",
                                  "answer the call before signalling");
        return NGX_BUSY;
    }

    q = ngx_http_chat_call_peer(c, &a->target);

    if (q == NULL || q == p) {
        ngx_http_chat_chats_answer(t, NGX_ABORT,
                                   json_pack("{s:s,s:s}", "field", "to",
                                             "reason", "is not another "
                                             "participant of the call"));
        return NGX_ABORT;
    }

    if (!ngx_http_chat_call_in(q) || q->sock[0] == '\0') {
        ngx_http_chat_call_refuse(t, "not_connected",
                                  "that participant has no device in the "
                                  "call");
        return NGX_BUSY;
    }

    /* the device that signals is the user's device in the call */
    if (a->sock[0] && ngx_strcmp(p->sock, a->sock) != 0) {
        ngx_http_chat_call_copy(p->sock, sizeof(p->sock), a->sock);

        rc = ngx_http_chat_call_save(db, c, &t->error);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    payload = json_loadb((char *) (a + 1), a->payload_len, 0, NULL);
    data = json_pack("{s:o,s:o}", "callId",
                     ngx_http_chat_chats_oid_json(&c->id),
                     "from", ngx_http_chat_chats_oid_json(&a->me));

    if (payload == NULL || data == NULL
        || json_object_update(data, payload) != 0)
    {
        json_decref(payload);
        json_decref(data);
        return NGX_ERROR;
    }

    json_decref(payload);
    bson_oid_init_from_string(&sock, q->sock);

    return ngx_http_chat_chats_event(answer, "sock:", &sock, '-', &a->me,
                                     NULL, a->event, data);
}


/* accept, reject, cancel, end, signal, timeout, drop */

void
ngx_http_chat_call_act_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_call_arg_t *a = t->arg;

    json_t                *answer;
    ngx_int_t              rc;
    ngx_uint_t             n;
    ngx_http_chat_call_t  *c;

    c = ngx_alloc(sizeof(ngx_http_chat_call_t), ngx_cycle->log);
    if (c == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    answer = NULL;
    rc = NGX_AGAIN;

    for (n = 0; rc == NGX_AGAIN && n < NGX_HTTP_CHAT_CALL_TRIES; n++) {
        json_decref(answer);

        if (n) {
            /* a pool thread, not the event loop: let the other write end */
            ngx_msleep(5 * n);
        }

        answer = json_object();
        if (answer == NULL) {
            rc = NGX_ERROR;
            break;
        }

        rc = ngx_http_chat_call_act(db, a, c, answer, t);
    }

    if (rc == NGX_BUSY || rc == NGX_ABORT) {
        /* answered by the refusal */
        json_decref(answer);
        ngx_free(c);
        return;
    }

    if (rc == NGX_AGAIN) {
        bson_set_error(&t->error, 0, 0, "the call changed too often");
        rc = NGX_ERROR;
    }

    if (rc == NGX_OK || rc == NGX_DONE) {
        if (a->what == NGX_HTTP_CHAT_CALL_SIGNAL) {
            json_object_set_new(answer, "callId",
                                ngx_http_chat_chats_oid_json(&c->id));

        } else {
            json_object_set_new(answer, "call",
                                ngx_http_chat_call_json(c, &a->me));
        }

        ngx_free(c);
        ngx_http_chat_chats_answer(t, rc, answer);
        return;
    }

    json_decref(answer);
    ngx_free(c);
    ngx_http_chat_chats_answer(t, rc, NULL);
}


/* GET /api/calls/history */

void
ngx_http_chat_call_history_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_call_arg_t *a = t->arg;

    json_t                *answer, *items, *j;
    bson_t                 filter, opts, sort, elem, in, arr;
    int64_t                now, last_ms;
    ngx_uint_t             n;
    bson_oid_t             last;
    const bson_t          *doc;
    mongoc_cursor_t       *cursor;
    mongoc_collection_t   *coll;
    ngx_http_chat_call_t  *c;

    c = ngx_alloc(sizeof(ngx_http_chat_call_t), ngx_cycle->log);
    items = json_array();

    if (c == NULL || items == NULL) {
        if (c) {
            ngx_free(c);
        }

        json_decref(items);
        t->rc = NGX_ERROR;
        return;
    }

    /* {$elemMatch: {$in: [me]}}, as the conflicts' query says why */
    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "members", &elem);
    BSON_APPEND_DOCUMENT_BEGIN(&elem, "$elemMatch", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    BSON_APPEND_OID(&arr, "0", &a->me);
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&elem, &in);
    bson_append_document_end(&filter, &elem);

    if (a->has_cursor) {
        ngx_http_chat_chats_after_cursor(&filter, "startedAt", a->cursor_ms,
                                         &a->cursor);
    }

    /* by startedAt: ids made by two workers in one second are unordered */
    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "startedAt", -1);
    BSON_APPEND_INT32(&sort, "_id", -1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", (int64_t) a->limit + 1);

    coll = mongoc_database_get_collection(db, "calls");
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    now = ngx_http_chat_chats_now();
    n = 0;
    last_ms = 0;

    while (mongoc_cursor_next(cursor, &doc)) {
        if (n++ == a->limit) {
            break;
        }

        ngx_http_chat_call_parse(doc, c);
        ngx_http_chat_call_settle(c, now);
        bson_oid_copy(&c->id, &last);
        last_ms = c->started;

        j = ngx_http_chat_call_json(c, &a->me);

        if (j == NULL || json_array_append_new(items, j) != 0) {
            break;
        }
    }

    t->rc = mongoc_cursor_error(cursor, &t->error) ? NGX_ERROR : NGX_OK;

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    bson_destroy(&opts);
    bson_destroy(&filter);
    ngx_free(c);

    if (t->rc != NGX_OK) {
        json_decref(items);
        return;
    }

    answer = json_pack("{s:o}", "items", items);

    if (answer && n > a->limit) {
        ngx_http_chat_chats_next_cursor(answer, last_ms, &last);
    }

    ngx_http_chat_chats_answer(t, NGX_OK, answer);
}


/* POST /api/calls/:id/feedback: {rating} and the JSON after the arg */

/* in a thread: the metrics' slots take atomic adds from any thread */
static void
ngx_http_chat_call_feedback_count(json_t *body)
{
    json_t     *stats, *v;
    json_int_t  rating;

    rating = json_integer_value(json_object_get(body, "rating"));

    if (rating >= 1 && rating <= 5) {
        ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_FEEDBACK_1 + rating - 1);
    }

    stats = json_object_get(body, "stats");

    if (ngx_http_chat_metrics == NULL || stats == NULL) {
        return;
    }

    v = json_object_get(stats, "rttMs");

    if (json_is_number(v)) {
        ngx_http_chat_metric_observe(
                         &ngx_http_chat_metrics->h[NGX_HTTP_CHAT_H_CALL_RTT],
                         (ngx_msec_int_t) json_number_value(v));
    }

    v = json_object_get(stats, "packetLoss");

    if (json_is_number(v)) {
        /* a fraction, in the histogram's thousandths */
        ngx_http_chat_metric_observe(
                        &ngx_http_chat_metrics->h[NGX_HTTP_CHAT_H_CALL_LOSS],
                        (ngx_msec_int_t) (json_number_value(v) * 1000));
    }
}


void
ngx_http_chat_call_feedback_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    ngx_http_chat_call_arg_t *a = t->arg;

    char                   key[NGX_HTTP_CHAT_KEY_LEN + 1];
    json_t                *body, *fb, *v;
    bson_t                 filter, doc, opts, reply;
    int64_t                now;
    ngx_int_t              rc;
    mongoc_collection_t   *coll;
    ngx_http_chat_call_t  *c;

    c = ngx_alloc(sizeof(ngx_http_chat_call_t), ngx_cycle->log);
    if (c == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    rc = ngx_http_chat_call_load(db, &a->id, c, &t->error);

    if (rc == NGX_OK && ngx_http_chat_call_peer(c, &a->me) == NULL) {
        rc = NGX_DECLINED;
    }

    ngx_free(c);

    if (rc != NGX_OK) {
        ngx_http_chat_chats_answer(t, rc, NULL);
        return;
    }

    body = json_loadb((char *) (a + 1), a->payload_len, 0, NULL);
    if (body == NULL) {
        t->rc = NGX_ERROR;
        return;
    }

    now = ngx_http_chat_chats_now();
    ngx_http_chat_chats_key(key, &a->id, &a->me, NULL);

    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "_id", key);

    bson_init(&doc);
    BSON_APPEND_UTF8(&doc, "_id", key);
    BSON_APPEND_OID(&doc, "callId", &a->id);
    BSON_APPEND_OID(&doc, "userId", &a->me);

    v = json_object_get(body, "rating");
    BSON_APPEND_INT32(&doc, "rating", (int32_t) json_integer_value(v));

    ngx_http_chat_chats_append_json(&doc, "issues",
                                    json_object_get(body, "issues"));

    if (json_object_get(body, "stats")) {
        ngx_http_chat_chats_append_json(&doc, "stats",
                                        json_object_get(body, "stats"));
    }

    BSON_APPEND_DATE_TIME(&doc, "createdAt", now);

    bson_init(&opts);
    BSON_APPEND_BOOL(&opts, "upsert", 1);

    coll = mongoc_database_get_collection(db, "callfeedback");

    rc = mongoc_collection_replace_one(coll, &filter, &doc, &opts, &reply,
                                       &t->error)
         ? NGX_OK : NGX_ERROR;

    if (rc == NGX_OK && ngx_http_chat_chats_int(&reply, "upsertedCount") == 0)
    {
        rc = NGX_DONE;
    }

    if (rc == NGX_OK) {
        /* a participant's first feedback (a replacement is not counted) */
        ngx_http_chat_call_feedback_count(body);
    }

    bson_destroy(&reply);
    mongoc_collection_destroy(coll);
    bson_destroy(&opts);
    bson_destroy(&doc);
    bson_destroy(&filter);

    if (rc == NGX_ERROR) {
        json_decref(body);
        t->rc = NGX_ERROR;
        return;
    }

    fb = json_pack("{s:o,s:o,s:O,s:O,s:o}",
                   "callId", ngx_http_chat_chats_oid_json(&a->id),
                   "userId", ngx_http_chat_chats_oid_json(&a->me),
                   "rating", json_object_get(body, "rating"),
                   "issues", json_object_get(body, "issues"),
                   "createdAt", ngx_http_chat_json_time(now));

    if (fb && json_object_get(body, "stats")) {
        json_object_set(fb, "stats", json_object_get(body, "stats"));
    }

    json_decref(body);

    ngx_http_chat_chats_answer(t, rc, fb ? json_pack("{s:o}", "feedback", fb)
                                         : NULL);
}
