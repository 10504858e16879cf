/*
 * Copyright (C) ngx_chat_module authors
 *
 * What an operator counts of the users, from the users' documents: a
 * user is active in a window while a socket of theirs is open (online)
 * or was open within it (lastSeenAt, written as they go offline), the
 * presence the module keeps (ngx_http_chat_rt_presence_store.c).  Counts
 * that no counter can give (distinct users), so not on the metrics page.
 */


#include "ngx_http_chat_stats_store.h"


#define NGX_HTTP_CHAT_DAY_MS  (24 * 60 * 60 * 1000LL)


static int64_t ngx_http_chat_stats_count(mongoc_collection_t *users,
    int64_t since, const char *field, bson_error_t *error);
static int64_t ngx_http_chat_stats_now_ms(void);


void
ngx_http_chat_stats_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db)
{
    bson_t                filter;
    int64_t               now, n[5];
    ngx_uint_t            i;
    mongoc_collection_t  *users;

    static const char  *names[5] = { "total", "day", "week", "month", "new" };

    users = mongoc_database_get_collection(db, "users");
    now = ngx_http_chat_stats_now_ms();

    bson_init(&filter);
    n[0] = mongoc_collection_count_documents(users, &filter, NULL, NULL,
                                             NULL, &t->error);
    bson_destroy(&filter);

    n[1] = ngx_http_chat_stats_count(users, now - NGX_HTTP_CHAT_DAY_MS,
                                     "lastSeenAt", &t->error);
    n[2] = ngx_http_chat_stats_count(users, now - 7 * NGX_HTTP_CHAT_DAY_MS,
                                     "lastSeenAt", &t->error);
    n[3] = ngx_http_chat_stats_count(users, now - 30 * NGX_HTTP_CHAT_DAY_MS,
                                     "lastSeenAt", &t->error);
    n[4] = ngx_http_chat_stats_count(users, now - NGX_HTTP_CHAT_DAY_MS,
                                     "createdAt", &t->error);

    mongoc_collection_destroy(users);

    for (i = 0; i < 5; i++) {
        if (n[i] < 0) {
            t->rc = NGX_ERROR;
            return;
        }
    }

    bson_destroy(&t->reply);
    bson_init(&t->reply);

    for (i = 0; i < 5; i++) {
        BSON_APPEND_INT64(&t->reply, names[i], n[i]);
    }

    t->rc = NGX_OK;
}


/*
 * Users whose field is at or after since; for lastSeenAt, those who came
 * online since as well (activeAt, marked hourly by presence) and those an
 * older build wrote online
 */
static int64_t
ngx_http_chat_stats_count(mongoc_collection_t *users, int64_t since,
    const char *field, bson_error_t *error)
{
    bson_t   filter, or, a, b, c, gte;
    int64_t  n;

    bson_init(&filter);

    if (ngx_strcmp(field, "lastSeenAt") == 0) {
        BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &or);
        BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &a);
        BSON_APPEND_BOOL(&a, "online", true);
        bson_append_document_end(&or, &a);
        BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &b);
        BSON_APPEND_DOCUMENT_BEGIN(&b, field, &gte);
        BSON_APPEND_DATE_TIME(&gte, "$gte", since);
        bson_append_document_end(&b, &gte);
        bson_append_document_end(&or, &b);
        BSON_APPEND_DOCUMENT_BEGIN(&or, "2", &c);
        BSON_APPEND_DOCUMENT_BEGIN(&c, "activeAt", &gte);
        BSON_APPEND_DATE_TIME(&gte, "$gte", since);
        bson_append_document_end(&c, &gte);
        bson_append_document_end(&or, &c);
        bson_append_array_end(&filter, &or);

    } else {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, field, &gte);
        BSON_APPEND_DATE_TIME(&gte, "$gte", since);
        bson_append_document_end(&filter, &gte);
    }

    n = mongoc_collection_count_documents(users, &filter, NULL, NULL, NULL,
                                          error);
    bson_destroy(&filter);

    return n;
}


static int64_t
ngx_http_chat_stats_now_ms(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}
