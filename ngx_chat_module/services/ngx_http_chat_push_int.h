/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_PUSH_INT_H_INCLUDED_
#define _NGX_HTTP_CHAT_PUSH_INT_H_INCLUDED_


#include "ngx_http_chat_push.h"
#include "ngx_http_chat_curl.h"


/*
 * What the queue (ngx_http_chat_push.c) and the FCM client
 * (ngx_http_chat_push_fcm.c) share: one queued push.
 */

typedef struct ngx_http_chat_push_s  ngx_http_chat_push_t;

struct ngx_http_chat_push_s {
    ngx_http_chat_push_provider_e   provider;
    char                           *token;      /* heap, NUL-terminated */
    char                           *body;       /* the request body */
    ngx_uint_t                      voip;
    ngx_uint_t                      urgent;
    char                           *topic;      /* APNs: heap */
    char                            collapse[25];   /* APNs, "" none */
    time_t                          expiration; /* APNs: 0 now or never */
    ngx_uint_t                      attempts;
    ngx_event_t                     retry;      /* the backoff's timer */
    ngx_http_chat_curl_req_t       *curl;       /* while in flight */
    ngx_queue_t                     queue;      /* every push */
    ngx_queue_t                     wait;       /* for an access token */
    unsigned                        waiting:1;
};


/* an attempt's outcome, told by the provider's client */
typedef enum {
    NGX_HTTP_CHAT_PUSH_OK = 0,
    NGX_HTTP_CHAT_PUSH_AGAIN,          /* 429, 5xx, no answer */
    NGX_HTTP_CHAT_PUSH_INVALID,        /* the token is gone */
    NGX_HTTP_CHAT_PUSH_REFUSED         /* another 4xx */
} ngx_http_chat_push_outcome_e;


extern ngx_http_chat_main_conf_t  *ngx_http_chat_push_conf;


/* the queue: an attempt ended; retry_after in seconds, 0 none given */
void ngx_http_chat_push_attempted(ngx_http_chat_push_t *p,
    ngx_http_chat_push_outcome_e outcome, ngx_uint_t retry_after);

/* FCM: the request body of m, heap; NULL on no memory */
char *ngx_http_chat_push_fcm_body(ngx_http_chat_push_msg_t *m);
/* FCM: one attempt of p (after an access token, if none is fresh) */
void ngx_http_chat_push_fcm_start(ngx_http_chat_push_t *p);
/* FCM: p leaves (cancelled at exit): out of the access token's wait */
void ngx_http_chat_push_fcm_forget(ngx_http_chat_push_t *p);
void ngx_http_chat_push_fcm_exit(void);

/* APNs: the request body of m, heap; one attempt of p; the exit */
char *ngx_http_chat_push_apns_body(ngx_http_chat_push_msg_t *m);
void ngx_http_chat_push_apns_start(ngx_http_chat_push_t *p);
void ngx_http_chat_push_apns_exit(void);


#endif /* _NGX_HTTP_CHAT_PUSH_INT_H_INCLUDED_ */
