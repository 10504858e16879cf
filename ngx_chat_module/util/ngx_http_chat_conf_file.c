/*
 * Copyright (C) ngx_chat_module authors
 *
 * Files that directives name (keys, secrets), read once at configuration.
 */


#include "ngx_http_chat_conf_file.h"


ngx_int_t
ngx_http_chat_conf_read_file(ngx_conf_t *cf, ngx_command_t *cmd, size_t max,
    ngx_str_t *out)
{
    u_char           *p;
    size_t            len;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t        *value, name;
    ngx_file_info_t   fi;

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" cannot open \"%V\"", &cmd->name, &name);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) == 0 || ngx_file_size(&fi) > (off_t) max)
    {
        ngx_close_file(fd);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" file \"%V\" is empty or larger than "
                           "%uz bytes", &cmd->name, &name, max);
        return NGX_ERROR;
    }

    len = (size_t) ngx_file_size(&fi);

    p = ngx_pnalloc(cf->pool, len + 1);
    if (p == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, p, len);
    ngx_close_file(fd);

    if (n != (ssize_t) len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" cannot read \"%V\"", &cmd->name, &name);
        return NGX_ERROR;
    }

    p[len] = '\0';
    out->data = p;
    out->len = len;

    return NGX_OK;
}
