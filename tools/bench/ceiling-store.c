/*
 * Copyright (C) ngx_chat_module authors
 *
 * The store ceiling of tools/bench: what the MongoDB-protocol server
 * itself does for the queries behind our hottest routes, with no NGINX
 * and no Python in the way.  A plain libmongoc loop on N threads (a
 * client pool, one client a thread) against a fresh database runs, one
 * after the other, each for the given duration:
 *
 *   insert     a 300-byte message into "messages", which has the
 *              module's indexes: unique (chatId, seq), unique
 *              (senderId, tempId), and chatId
 *   find       one message by _id
 *   page       20 messages of a chat by chatId, newest seq first
 *   two-finds  what a chat-list page costs at best: 20 membership rows
 *              of a user by userId, then their chats by _id $in
 *
 * and prints one JSON object: per phase operations, ops/s, p50 and p99
 * latency in ms, errors, and with --pid the store process's CPU-seconds
 * (utime + stime from /proc) per 1,000 operations.
 *
 *   ceiling-store --uri mongodb://127.0.0.1:PORT/ [--db NAME]
 *                 [--threads 8] [--duration 10] [--pid PID]
 *                 [--chats 200] [--users 200] [--batch 10]
 *                 [--paced 500]
 *
 * then insert-batch: --batch messages a command (insert_many,
 * unordered), what the module's group commit of several senders'
 * messages costs the store, counted a message each; and last,
 * insert-paced: the same single inserts by one thread at --paced R a
 * second (the bench's fan-out stores 500 messages a second), whose
 * latency is what a message's commit costs at that rate at best.
 */


#define _GNU_SOURCE
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define CS_MAX_THREADS      64
#define CS_MAX_IDS          (4 * 1024 * 1024)
#define CS_MSG_BYTES        300
#define CS_PAGE             20
#define CS_MAX_BATCH        64

#define CS_INSERT           0
#define CS_FIND             1
#define CS_PAGE_Q           2
#define CS_TWO_FINDS        3
#define CS_INSERT_BATCH     4
#define CS_INSERT_PACED     5
#define CS_PHASES           6


typedef struct {
    uint32_t   *lat;            /* µs */
    size_t      n;
    size_t      cap;
    uint64_t    errors;
    uint64_t    rnd;
} cs_thread_stats_t;


typedef struct {
    int                  id;
    int                  phase;
    cs_thread_stats_t    st;
    pthread_t            tid;
} cs_thread_t;


static const char          *cs_phase_names[CS_PHASES] = {
    "insert", "find", "page", "two_finds", "insert_batch", "insert_paced"
};

static mongoc_client_pool_t *cs_pool;
static const char          *cs_db = "bench_ceiling";
static int                  cs_threads = 8;
static int                  cs_batch = 10;  /* messages a batch insert */
static double               cs_paced = 500; /* inserts a second, paced */
static double               cs_duration = 10;
static int                  cs_pid;
static uint32_t             cs_nchats = 200;
static uint32_t             cs_nusers = 200;
static bson_oid_t          *cs_chats;
static bson_oid_t          *cs_users;
static bson_oid_t          *cs_ids;         /* inserted messages */
static volatile uint64_t    cs_next;        /* insert counter */
static volatile uint64_t    cs_nids;
static volatile int         cs_stop;
static char                 cs_content[CS_MSG_BYTES];


static uint64_t
cs_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static uint32_t
cs_random(cs_thread_stats_t *st)
{
    st->rnd ^= st->rnd << 13;
    st->rnd ^= st->rnd >> 7;
    st->rnd ^= st->rnd << 17;

    return (uint32_t) (st->rnd >> 11);
}


static void
cs_record(cs_thread_stats_t *st, uint64_t us)
{
    uint32_t  *p;

    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 65536;
        p = realloc(st->lat, st->cap * sizeof(uint32_t));
        if (p == NULL) {
            fprintf(stderr, "ceiling-store: realloc() failed\n");
            exit(2);
        }
        st->lat = p;
    }

    st->lat[st->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t) us;
}


static double
cs_store_cpu(void)
{
    int    i;
    char   path[64], buf[2048], *p;
    FILE  *f;
    long   ut, stt;

    if (cs_pid <= 0) {
        return 0;
    }

    snprintf(path, sizeof(path), "/proc/%d/stat", cs_pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    if (fgets(buf, sizeof(buf), f) == NULL) {
        fclose(f);
        return 0;
    }
    fclose(f);

    /* fields 14 and 15 after the ")" that ends the command's name */
    p = strrchr(buf, ')');
    if (p == NULL) {
        return 0;
    }
    for (i = 0; i < 11 && p; i++) {
        p = strchr(p + 1, ' ');
    }
    if (p == NULL || sscanf(p + 1, "%*s %ld %ld", &ut, &stt) != 2) {
        return 0;
    }

    return (double) (ut + stt) / sysconf(_SC_CLK_TCK);
}


static void
cs_message(bson_t *doc, bson_oid_t *oid, cs_thread_t *t)
{
    char      temp[32];
    uint64_t  k;

    k = __atomic_fetch_add(&cs_next, 1, __ATOMIC_RELAXED);
    snprintf(temp, sizeof(temp), "t%llu", (unsigned long long) k);

    bson_oid_init(oid, NULL);
    bson_init(doc);
    BSON_APPEND_OID(doc, "_id", oid);
    BSON_APPEND_OID(doc, "chatId", &cs_chats[k % cs_nchats]);
    BSON_APPEND_INT64(doc, "seq", (int64_t) (k / cs_nchats) + 1);
    BSON_APPEND_OID(doc, "senderId", &cs_users[t->id % cs_nusers]);
    BSON_APPEND_UTF8(doc, "tempId", temp);
    BSON_APPEND_UTF8(doc, "type", "text");
    BSON_APPEND_UTF8(doc, "content", cs_content);
    BSON_APPEND_DATE_TIME(doc, "createdAt", (int64_t) time(NULL) * 1000);
}


/* one insert command of n messages (insert_many, unordered, when more
 * than one, as a group commit of several senders' messages would) */
static int
cs_insert(mongoc_collection_t *coll, cs_thread_t *t, int n)
{
    int            i;
    bool           ok;
    bson_t         docs[CS_MAX_BATCH], opts;
    uint64_t       k;
    bson_oid_t     oid[CS_MAX_BATCH];
    bson_error_t   error;
    const bson_t  *p[CS_MAX_BATCH];

    for (i = 0; i < n; i++) {
        cs_message(&docs[i], &oid[i], t);
        p[i] = &docs[i];
    }

    if (n == 1) {
        ok = mongoc_collection_insert_one(coll, &docs[0], NULL, NULL,
                                          &error);

    } else {
        bson_init(&opts);
        BSON_APPEND_BOOL(&opts, "ordered", false);
        ok = mongoc_collection_insert_many(coll, p, n, &opts, NULL, &error);
        bson_destroy(&opts);
    }

    for (i = 0; i < n; i++) {
        bson_destroy(&docs[i]);
    }

    if (!ok) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        k = __atomic_fetch_add(&cs_nids, 1, __ATOMIC_RELAXED);
        if (k < CS_MAX_IDS) {
            cs_ids[k] = oid[i];
        }
    }

    return 0;
}


/* drains a cursor: the documents must cross the wire to count */
static int
cs_drain(mongoc_cursor_t *cursor, bson_oid_t *ids, int *nids,
    const char *field)
{
    int            n = 0;
    bson_iter_t    it;
    bson_error_t   error;
    const bson_t  *d;

    while (mongoc_cursor_next(cursor, &d)) {
        if (ids && bson_iter_init_find(&it, d, field)
            && BSON_ITER_HOLDS_OID(&it))
        {
            bson_oid_copy(bson_iter_oid(&it), &ids[(*nids)++]);
        }
        n++;
    }

    if (mongoc_cursor_error(cursor, &error)) {
        n = -1;
    }

    mongoc_cursor_destroy(cursor);

    return n;
}


static int
cs_find(mongoc_collection_t *coll, cs_thread_t *t)
{
    int               n;
    bson_t            filter;
    uint64_t          have;
    mongoc_cursor_t  *cursor;

    have = cs_nids < CS_MAX_IDS ? cs_nids : CS_MAX_IDS;
    if (have == 0) {
        return -1;
    }

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", &cs_ids[cs_random(&t->st) % have]);
    cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    n = cs_drain(cursor, NULL, NULL, NULL);
    bson_destroy(&filter);

    return n == 1 ? 0 : -1;
}


static int
cs_page(mongoc_collection_t *coll, cs_thread_t *t)
{
    int               n;
    bson_t            filter, opts, sort;
    mongoc_cursor_t  *cursor;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "chatId",
                    &cs_chats[cs_random(&t->st) % cs_nchats]);
    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "seq", -1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", CS_PAGE);

    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    n = cs_drain(cursor, NULL, NULL, NULL);
    bson_destroy(&filter);
    bson_destroy(&opts);

    return n > 0 ? 0 : -1;
}


static int
cs_two_finds(mongoc_collection_t *members, mongoc_collection_t *chats,
    cs_thread_t *t)
{
    int               i, n, nids = 0;
    char              key[16];
    bson_t            filter, opts, in, arr;
    bson_oid_t        ids[CS_PAGE];
    mongoc_cursor_t  *cursor;

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "userId",
                    &cs_users[cs_random(&t->st) % cs_nusers]);
    bson_init(&opts);
    BSON_APPEND_INT64(&opts, "limit", CS_PAGE);

    cursor = mongoc_collection_find_with_opts(members, &filter, &opts, NULL);
    n = cs_drain(cursor, ids, &nids, "chatId");
    bson_destroy(&filter);
    bson_destroy(&opts);

    if (n != CS_PAGE || nids != CS_PAGE) {
        return -1;
    }

    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    for (i = 0; i < nids; i++) {
        snprintf(key, sizeof(key), "%d", i);
        BSON_APPEND_OID(&arr, key, &ids[i]);
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);

    cursor = mongoc_collection_find_with_opts(chats, &filter, NULL, NULL);
    n = cs_drain(cursor, NULL, NULL, NULL);
    bson_destroy(&filter);

    return n == CS_PAGE ? 0 : -1;
}


static void *
cs_thread(void *arg)
{
    int                   rc;
    uint64_t              t0, next;
    cs_thread_t          *t = arg;
    mongoc_client_t      *client;
    mongoc_collection_t  *messages, *members, *chats;

    client = mongoc_client_pool_pop(cs_pool);
    messages = mongoc_client_get_collection(client, cs_db, "messages");
    members = mongoc_client_get_collection(client, cs_db, "members");
    chats = mongoc_client_get_collection(client, cs_db, "chats");

    next = cs_now_us();

    /* paced: one thread alone, at its rate */
    while (!cs_stop && (t->phase != CS_INSERT_PACED || t->id == 0)) {
        if (t->phase == CS_INSERT_PACED) {
            next += (uint64_t) (1e6 / cs_paced);
            t0 = cs_now_us();

            if (next > t0) {
                usleep((useconds_t) (next - t0));
            }
        }

        t0 = cs_now_us();

        switch (t->phase) {
        case CS_INSERT:
        case CS_INSERT_PACED:
            rc = cs_insert(messages, t, 1);
            break;
        case CS_INSERT_BATCH:
            rc = cs_insert(messages, t, cs_batch);
            break;
        case CS_FIND:
            rc = cs_find(messages, t);
            break;
        case CS_PAGE_Q:
            rc = cs_page(messages, t);
            break;
        default:
            rc = cs_two_finds(members, chats, t);
            break;
        }

        if (rc == -1) {
            t->st.errors++;
            continue;
        }

        cs_record(&t->st, cs_now_us() - t0);

        /* a message stored counts once, whatever its command's size */
        for (rc = 1; t->phase == CS_INSERT_BATCH && rc < cs_batch; rc++) {
            cs_record(&t->st, cs_now_us() - t0);
        }
    }

    mongoc_collection_destroy(messages);
    mongoc_collection_destroy(members);
    mongoc_collection_destroy(chats);
    mongoc_client_pool_push(cs_pool, client);

    return NULL;
}


static int
cs_cmp(const void *a, const void *b)
{
    uint32_t  x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}


static void
cs_phase(int phase, cs_thread_t *ts, int last)
{
    int        i;
    size_t     n = 0, j = 0;
    double     cpu0, cpu1, secs;
    uint32_t  *all;
    uint64_t   t0, t1, errors = 0;

    cs_stop = 0;
    cpu0 = cs_store_cpu();
    t0 = cs_now_us();

    for (i = 0; i < cs_threads; i++) {
        memset(&ts[i].st, 0, sizeof(cs_thread_stats_t));
        ts[i].st.rnd = 0x9e3779b97f4a7c15ULL * (i + 1) + phase;
        ts[i].phase = phase;
        if (pthread_create(&ts[i].tid, NULL, cs_thread, &ts[i]) != 0) {
            fprintf(stderr, "ceiling-store: pthread_create() failed\n");
            exit(2);
        }
    }

    usleep((useconds_t) (cs_duration * 1e6));
    cs_stop = 1;

    for (i = 0; i < cs_threads; i++) {
        pthread_join(ts[i].tid, NULL);
    }

    t1 = cs_now_us();
    cpu1 = cs_store_cpu();
    secs = (t1 - t0) / 1e6;

    for (i = 0; i < cs_threads; i++) {
        n += ts[i].st.n;
        errors += ts[i].st.errors;
    }

    all = malloc((n ? n : 1) * sizeof(uint32_t));
    if (all == NULL) {
        exit(2);
    }
    for (i = 0; i < cs_threads; i++) {
        memcpy(all + j, ts[i].st.lat, ts[i].st.n * sizeof(uint32_t));
        j += ts[i].st.n;
        free(ts[i].st.lat);
    }
    qsort(all, n, sizeof(uint32_t), cs_cmp);

    printf("  \"%s\": {\"ops\": %zu, \"seconds\": %.3f, "
           "\"ops_per_s\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
           "\"errors\": %llu, \"store_cpu_s_per_1000\": ",
           cs_phase_names[phase], n, secs, n / secs,
           n ? all[n / 2] / 1000.0 : 0.0,
           n ? all[n * 99 / 100] / 1000.0 : 0.0,
           (unsigned long long) errors);

    if (cs_pid > 0 && n) {
        printf("%.4f}%s\n", (cpu1 - cpu0) / n * 1000, last ? "" : ",");

    } else {
        printf("null}%s\n", last ? "" : ",");
    }

    fflush(stdout);
    free(all);
}


static int
cs_command(mongoc_client_t *client, bson_t *cmd, const char *what)
{
    bool          ok;
    bson_t        reply;
    bson_error_t  error;

    ok = mongoc_client_command_simple(client, cs_db, cmd, NULL, &reply,
                                      &error);
    bson_destroy(&reply);
    bson_destroy(cmd);

    if (!ok) {
        fprintf(stderr, "ceiling-store: %s: %s\n", what, error.message);
        return -1;
    }

    return 0;
}


/* one index per createIndexes command: FerretDB mishandles several */
static int
cs_index(mongoc_client_t *client, const char *coll, const char *name,
    const char *f1, const char *f2, int unique)
{
    bson_t  cmd, indexes, index, key;

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "createIndexes", coll);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);
    BSON_APPEND_INT32(&key, f1, 1);
    if (f2) {
        BSON_APPEND_INT32(&key, f2, 1);
    }
    bson_append_document_end(&index, &key);
    BSON_APPEND_UTF8(&index, "name", name);
    if (unique) {
        BSON_APPEND_BOOL(&index, "unique", true);
    }
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(&cmd, &indexes);

    return cs_command(client, &cmd, name);
}


/* a fresh database: the module's indexes, chats and memberships */
static int
cs_setup(void)
{
    int                   rc = -1;
    uint32_t              i, k;
    bson_t                cmd, doc;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_database_t    *db;
    mongoc_collection_t  *chats = NULL, *members = NULL;
    mongoc_bulk_operation_t  *bulk;

    client = mongoc_client_pool_pop(cs_pool);

    db = mongoc_client_get_database(client, cs_db);
    if (!mongoc_database_drop(db, &error)
        && error.code != 26)        /* NamespaceNotFound */
    {
        fprintf(stderr, "ceiling-store: dropDatabase: %s\n", error.message);
    }
    mongoc_database_destroy(db);

    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "create", "messages");
    (void) cs_command(client, &cmd, "create");

    if (cs_index(client, "messages", "chatId_1_seq_1", "chatId", "seq", 1)
        || cs_index(client, "messages", "senderId_1_tempId_1", "senderId",
                    "tempId", 1)
        || cs_index(client, "messages", "chatId_1", "chatId", NULL, 0)
        || cs_index(client, "members", "chatId_1_userId_1", "chatId",
                    "userId", 1)
        || cs_index(client, "members", "userId_1", "userId", NULL, 0))
    {
        goto done;
    }

    chats = mongoc_client_get_collection(client, cs_db, "chats");
    bulk = mongoc_collection_create_bulk_operation_with_opts(chats, NULL);
    for (i = 0; i < cs_nchats; i++) {
        bson_init(&doc);
        BSON_APPEND_OID(&doc, "_id", &cs_chats[i]);
        BSON_APPEND_UTF8(&doc, "type", "group");
        BSON_APPEND_UTF8(&doc, "name", "a bench group of the ceiling");
        BSON_APPEND_INT64(&doc, "lastSeq", 0);
        BSON_APPEND_DATE_TIME(&doc, "createdAt",
                              (int64_t) time(NULL) * 1000);
        mongoc_bulk_operation_insert(bulk, &doc);
        bson_destroy(&doc);
    }
    if (!mongoc_bulk_operation_execute(bulk, NULL, &error)) {
        fprintf(stderr, "ceiling-store: chats: %s\n", error.message);
        mongoc_bulk_operation_destroy(bulk);
        goto done;
    }
    mongoc_bulk_operation_destroy(bulk);

    /* user u is in chats u*20 .. u*20+19 (mod the chats) */
    members = mongoc_client_get_collection(client, cs_db, "members");
    bulk = mongoc_collection_create_bulk_operation_with_opts(members, NULL);
    for (i = 0; i < cs_nusers; i++) {
        for (k = 0; k < CS_PAGE; k++) {
            bson_init(&doc);
            BSON_APPEND_OID(&doc, "chatId",
                            &cs_chats[(i * CS_PAGE + k) % cs_nchats]);
            BSON_APPEND_OID(&doc, "userId", &cs_users[i]);
            BSON_APPEND_UTF8(&doc, "role", "member");
            BSON_APPEND_INT64(&doc, "lastReadSeq", 0);
            BSON_APPEND_DATE_TIME(&doc, "joinedAt",
                                  (int64_t) time(NULL) * 1000);
            mongoc_bulk_operation_insert(bulk, &doc);
            bson_destroy(&doc);
        }
    }
    if (!mongoc_bulk_operation_execute(bulk, NULL, &error)) {
        fprintf(stderr, "ceiling-store: members: %s\n", error.message);
        mongoc_bulk_operation_destroy(bulk);
        goto done;
    }
    mongoc_bulk_operation_destroy(bulk);

    rc = 0;

done:

    if (chats) {
        mongoc_collection_destroy(chats);
    }
    if (members) {
        mongoc_collection_destroy(members);
    }
    mongoc_client_pool_push(cs_pool, client);

    return rc;
}


/* the content that makes a message's BSON CS_MSG_BYTES long */
static void
cs_make_content(void)
{
    size_t      len;
    bson_t      doc;
    bson_oid_t  oid;

    bson_oid_init(&oid, NULL);
    bson_init(&doc);
    BSON_APPEND_OID(&doc, "_id", &oid);
    BSON_APPEND_OID(&doc, "chatId", &oid);
    BSON_APPEND_INT64(&doc, "seq", 1);
    BSON_APPEND_OID(&doc, "senderId", &oid);
    BSON_APPEND_UTF8(&doc, "tempId", "t1000000");
    BSON_APPEND_UTF8(&doc, "type", "text");
    BSON_APPEND_UTF8(&doc, "content", "");
    BSON_APPEND_DATE_TIME(&doc, "createdAt", 0);
    len = doc.len;
    bson_destroy(&doc);

    len = len < CS_MSG_BYTES ? CS_MSG_BYTES - len : 1;
    memset(cs_content, 'x', len);
    cs_content[len] = '\0';
}


/* FerretDB has no endSessions: libmongoc's warning about it is noise */
static void
cs_log(mongoc_log_level_t level, const char *domain, const char *message,
    void *data)
{
    if (strstr(message, "endSessions") == NULL) {
        mongoc_log_default_handler(level, domain, message, data);
    }
}


static void
cs_usage(void)
{
    fprintf(stderr,
        "usage: ceiling-store --uri URI [--db NAME] [--threads N]\n"
        "         [--duration S] [--pid STORE_PID] [--chats N] "
        "[--users N]\n"
        "         [--batch N] [--paced R]\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    int                i;
    uint32_t           k;
    const char        *uri_s = NULL;
    cs_thread_t       *ts;
    bson_error_t       error;
    mongoc_uri_t      *uri;

    for (i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            cs_usage();
        }
        if (strcmp(argv[i], "--uri") == 0) {
            uri_s = argv[++i];
        } else if (strcmp(argv[i], "--db") == 0) {
            cs_db = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0) {
            cs_threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--duration") == 0) {
            cs_duration = atof(argv[++i]);
        } else if (strcmp(argv[i], "--pid") == 0) {
            cs_pid = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--chats") == 0) {
            cs_nchats = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--users") == 0) {
            cs_nusers = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--batch") == 0) {
            cs_batch = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--paced") == 0) {
            cs_paced = atof(argv[++i]);
        } else {
            cs_usage();
        }
    }

    if (uri_s == NULL || cs_threads < 1 || cs_threads > CS_MAX_THREADS
        || cs_duration <= 0 || cs_nchats < CS_PAGE || cs_nusers < 1
        || cs_batch < 1 || cs_batch > CS_MAX_BATCH || cs_paced <= 0)
    {
        cs_usage();
    }

    mongoc_init();
    mongoc_log_set_handler(cs_log, NULL);

    uri = mongoc_uri_new_with_error(uri_s, &error);
    if (uri == NULL) {
        fprintf(stderr, "ceiling-store: %s\n", error.message);
        return 2;
    }

    cs_pool = mongoc_client_pool_new(uri);
    if (cs_pool == NULL) {
        fprintf(stderr, "ceiling-store: mongoc_client_pool_new() failed\n");
        return 2;
    }
    mongoc_client_pool_max_size(cs_pool, cs_threads + 1);

    cs_chats = calloc(cs_nchats, sizeof(bson_oid_t));
    cs_users = calloc(cs_nusers, sizeof(bson_oid_t));
    cs_ids = calloc(CS_MAX_IDS, sizeof(bson_oid_t));
    ts = calloc(cs_threads, sizeof(cs_thread_t));
    if (cs_chats == NULL || cs_users == NULL || cs_ids == NULL
        || ts == NULL)
    {
        fprintf(stderr, "ceiling-store: calloc() failed\n");
        return 2;
    }

    for (k = 0; k < cs_nchats; k++) {
        bson_oid_init(&cs_chats[k], NULL);
    }
    for (k = 0; k < cs_nusers; k++) {
        bson_oid_init(&cs_users[k], NULL);
    }
    for (i = 0; i < cs_threads; i++) {
        ts[i].id = i;
    }

    cs_make_content();

    if (cs_setup() != 0) {
        return 1;
    }

    printf("{\n  \"threads\": %d, \"duration\": %.1f, \"chats\": %u, "
           "\"users\": %u, \"message_bytes\": %d, \"batch\": %d, "
           "\"paced\": %.1f,\n",
           cs_threads, cs_duration, cs_nchats, cs_nusers, CS_MSG_BYTES,
           cs_batch, cs_paced);

    for (i = 0; i < CS_PHASES; i++) {
        cs_phase(i, ts, i == CS_PHASES - 1);
    }

    printf("}\n");

    mongoc_client_pool_destroy(cs_pool);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();

    return 0;
}
