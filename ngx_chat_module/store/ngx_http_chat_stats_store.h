/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_STATS_STORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_STATS_STORE_H_INCLUDED_


#include "ngx_http_chat_mongo.h"


/*
 * The operator's counts of users (chat_stats): every user, those active
 * in the last day, week and 30 days, and those new in the last day;
 * t->reply {total, day, week, month, new}
 */
void ngx_http_chat_stats_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);


#endif /* _NGX_HTTP_CHAT_STATS_STORE_H_INCLUDED_ */
