/*
 * Copyright (C) ngx_chat_module authors
 *
 * Work in flight keeps an exiting worker: a timer while there is any.
 */


#include "ngx_http_chat_work.h"
#include "../store/ngx_http_chat_mongo.h"
#include "../store/ngx_http_chat_threads.h"


static void ngx_http_chat_work_tick(ngx_event_t *ev);


static ngx_uint_t        ngx_http_chat_work;
static ngx_event_t       ngx_http_chat_work_ev;
static ngx_connection_t  ngx_http_chat_work_dummy;    /* for the timer's log */


void
ngx_http_chat_work_begin(void)
{
    ngx_http_chat_work++;

    if (!ngx_http_chat_work_ev.timer_set) {
        ngx_http_chat_work_dummy.fd = (ngx_socket_t) -1;
        ngx_http_chat_work_ev.data = &ngx_http_chat_work_dummy;
        ngx_http_chat_work_ev.handler = ngx_http_chat_work_tick;
        ngx_http_chat_work_ev.log = ngx_cycle->log;
        ngx_add_timer(&ngx_http_chat_work_ev, 1000);
    }
}


void
ngx_http_chat_work_end(void)
{
    ngx_http_chat_work--;
}


/* it outlives the last work by up to a second: what it published leaves */
static void
ngx_http_chat_work_tick(ngx_event_t *ev)
{
    if (ngx_http_chat_work || ngx_http_chat_mongo_busy()
        || ngx_http_chat_thread_busy())
    {
        ngx_add_timer(ev, 1000);
    }
}
