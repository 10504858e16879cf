/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_REDIS_H_INCLUDED_
#define _NGX_HTTP_CHAT_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>


/*
 * One hiredis async connection driven by the NGINX event loop, with
 * automatic reconnect and exponential backoff.  A worker owns one for
 * commands and (later) one for SUBSCRIBE.
 */

typedef struct ngx_http_chat_redis_s  ngx_http_chat_redis_t;

/*
 * Called exactly once per command: with the reply, or with reply == NULL
 * when the command failed (not connected, connection lost, timeout).
 * The reply is freed by hiredis after the callback returns.
 */
typedef void (*ngx_http_chat_redis_reply_pt)(redisReply *reply, void *data);


ngx_http_chat_redis_t *ngx_http_chat_redis_create(ngx_cycle_t *cycle,
    ngx_str_t *host, in_port_t port, ngx_msec_t connect_timeout,
    ngx_msec_t backoff_max);
void ngx_http_chat_redis_destroy(ngx_http_chat_redis_t *rds);
ngx_uint_t ngx_http_chat_redis_is_connected(ngx_http_chat_redis_t *rds);
ngx_int_t ngx_http_chat_redis_command(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, const char *fmt, ...);
ngx_int_t ngx_http_chat_redis_command_argv(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen);


#endif /* _NGX_HTTP_CHAT_REDIS_H_INCLUDED_ */
