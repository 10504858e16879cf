/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_TURN_H_INCLUDED_
#define _NGX_HTTP_CHAT_TURN_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/* ngx_http_chat_turn.c: GET /api/calls/turn-credentials */
ngx_int_t ngx_http_chat_turn_credentials(ngx_http_request_t *r);

/* ngx_http_chat_turn_conf.c: the chat_turn_* and chat_stun_* directives */
char *ngx_http_chat_turn_set_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_chat_turn_set_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_chat_turn_set_uris(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_chat_turn_init_conf(ngx_conf_t *cf,
    ngx_http_chat_main_conf_t *cmcf);


#endif /* _NGX_HTTP_CHAT_TURN_H_INCLUDED_ */
