/*
 * Copyright (C) ngx_chat_module authors
 *
 * glibc keeps what a process frees for its next allocations: in its main
 * heap, and in an arena of each thread that allocated (the Mongo pool's
 * threads).  After a burst (a resync of every socket, a backlog of
 * sends) a worker back at rest would hold its peak for good, and free
 * chunks below the top of a heap are never given back by free() alone.
 * malloc_trim() returns every whole free page of every arena; it walks
 * the free lists, so it runs on a timer, and only when what is free is
 * worth it.
 */


#include "ngx_http_chat_trim.h"

#include <ngx_event.h>

#if (NGX_LINUX && defined __GLIBC__)
#include <malloc.h>
/* mallinfo2() since glibc 2.33; before it, no trim */
#if (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#define NGX_HTTP_CHAT_TRIM  1
#endif
#endif


/*
 * Free bytes held below which a trim is not worth its walk, and how much
 * more must be free than after the last trim (what it gave back still
 * counts as free there, until it is used again)
 */
#define NGX_HTTP_CHAT_TRIM_MIN   (4 * 1024 * 1024)
#define NGX_HTTP_CHAT_TRIM_MORE  (1024 * 1024)


#ifdef NGX_HTTP_CHAT_TRIM

static void ngx_http_chat_trim(ngx_event_t *ev);

static ngx_event_t       ngx_http_chat_trim_ev;
static ngx_connection_t  ngx_http_chat_trim_dummy;   /* the timer's log */
static ngx_msec_t        ngx_http_chat_trim_every;
static size_t            ngx_http_chat_trim_last;     /* free after it */

#endif


void
ngx_http_chat_trim_init_process(ngx_cycle_t *cycle, ngx_msec_t every)
{
#ifdef NGX_HTTP_CHAT_TRIM

    if (every == 0) {
        return;
    }

    ngx_http_chat_trim_every = every;
    ngx_http_chat_trim_dummy.fd = (ngx_socket_t) -1;
    ngx_http_chat_trim_ev.handler = ngx_http_chat_trim;
    ngx_http_chat_trim_ev.data = &ngx_http_chat_trim_dummy;
    ngx_http_chat_trim_ev.log = cycle->log;

    /* an exiting worker waits for no trim */
    ngx_http_chat_trim_ev.cancelable = 1;

    ngx_add_timer(&ngx_http_chat_trim_ev, every);

#endif
}


void
ngx_http_chat_trim_exit_process(void)
{
#ifdef NGX_HTTP_CHAT_TRIM

    if (ngx_http_chat_trim_ev.timer_set) {
        ngx_del_timer(&ngx_http_chat_trim_ev);
    }

#endif
}


#ifdef NGX_HTTP_CHAT_TRIM

static void
ngx_http_chat_trim(ngx_event_t *ev)
{
    size_t            held;
    struct mallinfo2  mi;

    /* every arena's free chunks, the top's included */
    mi = mallinfo2();
    held = mi.fordblks;

    if (held < ngx_http_chat_trim_last) {
        /* some was used again: what is freed next counts from here */
        ngx_http_chat_trim_last = held;
    }

    if (held >= NGX_HTTP_CHAT_TRIM_MIN
        && held >= ngx_http_chat_trim_last + NGX_HTTP_CHAT_TRIM_MORE)
    {
        (void) malloc_trim(0);

        ngx_http_chat_trim_last = mallinfo2().fordblks;

        ngx_log_debug2(NGX_LOG_DEBUG_CORE, ev->log, 0,
                       "chat trim: %uz bytes free, %uz after",
                       held, ngx_http_chat_trim_last);
    }

    ngx_add_timer(ev, ngx_http_chat_trim_every);
}

#endif
