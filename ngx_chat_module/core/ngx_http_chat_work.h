/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_WORK_H_INCLUDED_
#define _NGX_HTTP_CHAT_WORK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Work in flight (an operation, a REST write) keeps an exiting worker (a
 * reload, a graceful stop) until it is over, what it left to MongoDB
 * included: NGINX waits only for timers, and work waiting on MongoDB or
 * Redis has none of its own.  Here, below the operations of every domain
 * (ops/, auth/), so that each can hold the worker.
 */
void ngx_http_chat_work_begin(void);
void ngx_http_chat_work_end(void);


#endif /* _NGX_HTTP_CHAT_WORK_H_INCLUDED_ */
