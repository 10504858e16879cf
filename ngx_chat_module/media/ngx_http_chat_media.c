/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_chat_media.h"


static ngx_command_t  ngx_http_chat_media_commands[] = {
    ngx_null_command
};


static ngx_http_module_t  ngx_http_chat_media_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_chat_media_module = {
    NGX_MODULE_V1,
    &ngx_http_chat_media_module_ctx,       /* module context */
    ngx_http_chat_media_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_int_t
ngx_http_chat_media_upload(ngx_http_request_t *r)
{
    if (ngx_http_chat_discard_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                                    "not_implemented",
                                    "media uploads are not implemented yet");
}


ngx_int_t
ngx_http_chat_media_upload_avatar(ngx_http_request_t *r)
{
    if (ngx_http_chat_discard_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                                    "not_implemented",
                                    "avatar uploads are not implemented yet");
}
