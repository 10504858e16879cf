/*
 * Copyright (C) ngx_chat_module authors
 *
 * What the libFuzzer targets share: the NGINX globals a worker sets up
 * before it parses anything (time, page size, timers, posted events), a
 * log that goes nowhere, and an input cut into the parts a target needs.
 */


#ifndef _NGX_HTTP_CHAT_FUZZ_H_INCLUDED_
#define _NGX_HTTP_CHAT_FUZZ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>


/* once per process; returns the log the targets hand to our code */
ngx_log_t *ngx_http_chat_fuzz_init(void);

/*
 * The next part of an input, up to a line feed (not included) or its
 * end: a target takes its header lines, then the rest as the payload.
 */
void ngx_http_chat_fuzz_line(u_char **p, u_char *last, ngx_str_t *line);

/* runs the posted events, as the worker's loop does after a read */
void ngx_http_chat_fuzz_run_posted(void);


#endif /* _NGX_HTTP_CHAT_FUZZ_H_INCLUDED_ */
