/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_PUSH_H_INCLUDED_
#define _NGX_HTTP_CHAT_PUSH_H_INCLUDED_


#include "../util/ngx_http_chat_conf.h"
#include <jansson.h>


/*
 * Push notifications to one device over FCM HTTP v1 (libcurl multi on the
 * event loop).  A send is queued in the worker (a bounded queue: past
 * chat_push_queue a send is dropped and counted), never waits for
 * anything, and is retried on 429 and 5xx after Retry-After or a backoff.
 * A token the provider says is gone is handed to ngx_http_chat_push_gone
 * (set by the operations floor, which deletes the device).
 */

typedef enum {
    NGX_HTTP_CHAT_PUSH_FCM = 0,
    NGX_HTTP_CHAT_PUSH_APNS,
    NGX_HTTP_CHAT_PUSH_PROVIDERS
} ngx_http_chat_push_provider_e;

typedef enum {
    NGX_HTTP_CHAT_PUSH_SENT = 0,       /* the provider took it */
    NGX_HTTP_CHAT_PUSH_RETRIED,        /* an attempt answered 429 or 5xx */
    NGX_HTTP_CHAT_PUSH_GONE,           /* token unregistered or invalid */
    NGX_HTTP_CHAT_PUSH_FAILED,         /* refused, or retries exhausted */
    NGX_HTTP_CHAT_PUSH_DROPPED,        /* the queue was full */
    NGX_HTTP_CHAT_PUSH_RESULTS
} ngx_http_chat_push_result_e;


typedef struct {
    ngx_str_t     token;
    ngx_str_t     collapse;      /* the chat id: one notification a chat */
    ngx_uint_t    urgent;        /* calls: high priority */
    ngx_uint_t    apns;          /* an iOS device, APNs configured */
    ngx_uint_t    voip;          /* APNs: a VoIP push to the VoIP token */
    ngx_str_t     topic;         /* APNs: the app's bundle id */
    json_t       *data;          /* an object of strings, borrowed */
    ngx_str_t     preview;       /* the text shown, or empty: ids only */
} ngx_http_chat_push_msg_t;


typedef void (*ngx_http_chat_push_gone_pt)(ngx_str_t *token,
    ngx_uint_t voip);

extern ngx_http_chat_push_gone_pt  ngx_http_chat_push_gone;


/* a worker's start and exit */
ngx_int_t ngx_http_chat_push_init_process(ngx_cycle_t *cycle,
    ngx_http_chat_main_conf_t *cmcf);
void ngx_http_chat_push_exit_process(void);

/* whether some provider is configured; whether APNs is */
ngx_uint_t ngx_http_chat_push_enabled(void);
ngx_uint_t ngx_http_chat_push_apns_enabled(void);

/* NGX_OK queued; NGX_DECLINED dropped (queue full, or no provider) */
ngx_int_t ngx_http_chat_push_send(ngx_http_chat_push_msg_t *m);

/*
 * The pushes of this worker by provider and result since it started,
 * for the metrics of the operating issue
 */
ngx_uint_t ngx_http_chat_push_count(ngx_http_chat_push_provider_e provider,
    ngx_http_chat_push_result_e result);

/* chat_push_fcm_service_account file;: read and checked at configuration */
char *ngx_http_chat_push_fcm_account(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* chat_push_apns_key file key_id team_id;: the provider key, read */
char *ngx_http_chat_push_apns_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_CHAT_PUSH_H_INCLUDED_ */
