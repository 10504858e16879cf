/*
 * Copyright (C) ngx_chat_module authors
 *
 * The setup every target shares (ngx_http_chat_fuzz.h).
 */


#include "ngx_http_chat_fuzz.h"


static ngx_log_t        ngx_http_chat_fuzz_log;
static ngx_open_file_t  ngx_http_chat_fuzz_log_file;
static ngx_cycle_t      ngx_http_chat_fuzz_cycle;


/*
 * An alert or worse is what must not happen whatever a client sends: it
 * stops the run as a crash does, with the message.
 */
static void
ngx_http_chat_fuzz_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf,
    size_t len)
{
    if (level <= NGX_LOG_ALERT) {
        (void) fprintf(stderr, "fuzz: logged at level %u: %.*s\n",
                       (unsigned) level, (int) len, buf);
        abort();
    }
}


ngx_log_t *
ngx_http_chat_fuzz_init(void)
{
    ngx_fd_t  fd;

    if (ngx_http_chat_fuzz_log.file) {
        return &ngx_http_chat_fuzz_log;
    }

    ngx_pagesize = getpagesize();
    ngx_cacheline_size = NGX_CPU_CACHE_LINE;

    for (ngx_pagesize_shift = 0; (ngx_uint_t) (1 << ngx_pagesize_shift)
                                 < ngx_pagesize; ngx_pagesize_shift++)
    {
        /* void */
    }

    ngx_time_init();

    /* the messages are formatted (a bad format shows), then dropped */
    fd = open("/dev/null", O_WRONLY);
    if (fd == NGX_INVALID_FILE) {
        fd = ngx_stderr;
    }

    ngx_http_chat_fuzz_log_file.fd = fd;
    ngx_http_chat_fuzz_log.file = &ngx_http_chat_fuzz_log_file;
    ngx_http_chat_fuzz_log.log_level = NGX_LOG_DEBUG_ALL;
    ngx_http_chat_fuzz_log.writer = ngx_http_chat_fuzz_writer;

    /* the messages go to the writer only, not to stderr too */
    ngx_use_stderr = 0;

    /* what logs where no log is at hand (ngx_cycle->log) */
    ngx_http_chat_fuzz_cycle.log = &ngx_http_chat_fuzz_log;
    ngx_cycle = &ngx_http_chat_fuzz_cycle;

    ngx_event_timer_init(&ngx_http_chat_fuzz_log);
    ngx_queue_init(&ngx_posted_events);
    ngx_queue_init(&ngx_posted_next_events);

    return &ngx_http_chat_fuzz_log;
}


void
ngx_http_chat_fuzz_line(u_char **p, u_char *last, ngx_str_t *line)
{
    u_char  *q;

    q = *p;
    line->data = q;

    while (q < last && *q != '\n') {
        q++;
    }

    line->len = q - line->data;

    *p = (q < last) ? q + 1 : q;
}


void
ngx_http_chat_fuzz_run_posted(void)
{
    ngx_event_t  *ev;
    ngx_queue_t  *q;

    while (!ngx_queue_empty(&ngx_posted_events)) {
        q = ngx_queue_head(&ngx_posted_events);
        ev = ngx_queue_data(q, ngx_event_t, queue);

        ngx_delete_posted_event(ev);

        ev->handler(ev);
    }
}
