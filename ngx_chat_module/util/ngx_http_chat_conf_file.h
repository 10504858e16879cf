/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CONF_FILE_H_INCLUDED_
#define _NGX_HTTP_CHAT_CONF_FILE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Reads the file a directive names (its first argument, relative to the
 * prefix) at configuration time, so that workers never touch the disk:
 * out gets its bytes, NUL-terminated, from cf's pool.  A file missing,
 * empty or larger than max stops the start with a message naming it.
 */
ngx_int_t ngx_http_chat_conf_read_file(ngx_conf_t *cf, ngx_command_t *cmd,
    size_t max, ngx_str_t *out);


#endif /* _NGX_HTTP_CHAT_CONF_FILE_H_INCLUDED_ */
