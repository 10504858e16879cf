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
 *
 * Create it in init_process (the event module must be initialized) and
 * destroy it in exit_process.  It connects at once and keeps reconnecting
 * (100ms doubling up to backoff_max) until destroyed; connect_timeout 0
 * disables the connect timer.  host should be an IP address: a name is
 * resolved synchronously by hiredis.  create() returns NULL only when out
 * of memory; being unable to connect is not an error.
 */

typedef struct ngx_http_chat_redis_s  ngx_http_chat_redis_t;

/* this worker's command connection (ngx_http_chat_module.c makes it) */
extern ngx_http_chat_redis_t  *ngx_http_chat_redis_main;


/*
 * Called exactly once per command that was accepted (NGX_OK): with the
 * reply, REDIS_REPLY_ERROR replies included, or with reply == NULL when the
 * connection was lost or the object destroyed (also from exit_process)
 * before the reply arrived, the command timeout included.  The reply is
 * freed by hiredis after the callback returns.  The handler may be NULL.
 *
 * EVAL of a script runs as EVALSHA: a worker computes the SHA1 of each
 * distinct script once and sends SCRIPT LOAD before its first use; a
 * NOSCRIPT reply (SCRIPT FLUSH, a restarted Redis) loads it again and
 * sends the command again, once, before the handler sees a reply.
 */
typedef void (*ngx_http_chat_redis_reply_pt)(redisReply *reply, void *data);


ngx_http_chat_redis_t *ngx_http_chat_redis_create(ngx_cycle_t *cycle,
    ngx_str_t *host, in_port_t port, ngx_msec_t connect_timeout,
    ngx_msec_t backoff_max);
void ngx_http_chat_redis_destroy(ngx_http_chat_redis_t *rds);

/*
 * Bounds of a command connection (not of a subscriber, which may be idle
 * for ever): when the oldest command has waited command_timeout for its
 * reply the connection is dropped, which completes every pending command
 * with NULL, and it reconnects with the backoff; while the commands
 * waiting for a reply hold output_max bytes or more, new commands are
 * refused with NGX_DECLINED.  0 turns either off (the default).
 */
void ngx_http_chat_redis_set_limits(ngx_http_chat_redis_t *rds,
    ngx_msec_t command_timeout, size_t output_max);
ngx_uint_t ngx_http_chat_redis_is_connected(ngx_http_chat_redis_t *rds);

/*
 * NGX_OK: queued, the handler will be called.  NGX_DECLINED: not connected
 * right now, or too many bytes of commands wait for replies (see
 * set_limits), the handler is NOT called.  NGX_ERROR: bad command or no
 * memory, the handler is NOT called.  Commands with more or fewer than one
 * reply ([PS]SUBSCRIBE, [PS]UNSUBSCRIBE, MONITOR) are rejected.
 */
ngx_int_t ngx_http_chat_redis_command(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, const char *fmt, ...);
ngx_int_t ngx_http_chat_redis_command_argv(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen);


/*
 * Pub/sub on a connection used for nothing else.  handler gets every
 * reply of the subscription: ["subscribe", ch, n], ["message", ch, data],
 * ["unsubscribe", ch, n], and NULL when the connection is lost (the
 * channels are gone with it: subscribe again from the connect handler).
 */
typedef void (*ngx_http_chat_redis_connect_pt)(void *data);

/* adds handler(data) to what every (re)connect calls, in this order */
#define NGX_HTTP_CHAT_REDIS_HOOKS  8

void ngx_http_chat_redis_on_connect(ngx_http_chat_redis_t *rds,
    ngx_http_chat_redis_connect_pt handler, void *data);
ngx_int_t ngx_http_chat_redis_subscribe(ngx_http_chat_redis_t *rds,
    ngx_uint_t subscribe, ngx_str_t *channel,
    ngx_http_chat_redis_reply_pt handler, void *data);


#endif /* _NGX_HTTP_CHAT_REDIS_H_INCLUDED_ */
