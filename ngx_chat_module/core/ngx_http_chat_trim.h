/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_TRIM_H_INCLUDED_
#define _NGX_HTTP_CHAT_TRIM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * A worker gives back the memory it freed after a busy time: every
 * "every" (0: never) it looks at what the C library holds free, and
 * past a few megabytes returns it to the system (chat_memory_trim)
 */
void ngx_http_chat_trim_init_process(ngx_cycle_t *cycle, ngx_msec_t every);
void ngx_http_chat_trim_exit_process(void);


#endif /* _NGX_HTTP_CHAT_TRIM_H_INCLUDED_ */
