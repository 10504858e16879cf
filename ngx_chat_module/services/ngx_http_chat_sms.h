/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_SMS_H_INCLUDED_
#define _NGX_HTTP_CHAT_SMS_H_INCLUDED_


#include "../util/ngx_http_chat_conf.h"
#include <jansson.h>


/*
 * SMS delivery behind a provider interface: "twilio" (the Messages REST
 * API over libcurl, asynchronous) or "log" (development: the message goes
 * to the error log at "notice").
 */

typedef enum {
    NGX_HTTP_CHAT_SMS_SENT = 0,
    NGX_HTTP_CHAT_SMS_REJECTED,     /* provider refused it (4xx): 502 */
    NGX_HTTP_CHAT_SMS_UNAVAILABLE   /* provider down, 5xx, timeout: 503 */
} ngx_http_chat_sms_status_e;


/* how a one-time code travels: both through the same provider */
typedef enum {
    NGX_HTTP_CHAT_SMS_CHANNEL_SMS = 0,
    NGX_HTTP_CHAT_SMS_CHANNEL_WHATSAPP  /* "whatsapp:" addresses */
} ngx_http_chat_sms_channel_e;


typedef struct ngx_http_chat_sms_s  ngx_http_chat_sms_t;

/* called once, on the event loop, unless the send was cancelled */
typedef void (*ngx_http_chat_sms_done_pt)(ngx_http_chat_sms_t *sms,
    ngx_http_chat_sms_status_e status, void *data);


/*
 * Sends body to the E.164 number to, by SMS or WhatsApp (the caller
 * checked that chat_twilio_whatsapp_from is set).  code, when not NULL,
 * is the template's variable (digits only): a WhatsApp send with a
 * content template sends it instead of body.  Returns a handle, or NULL
 * when the send could not even start (done() is then not called).  The
 * "log" provider calls done() from a posted event, never from inside
 * this call.
 */
ngx_http_chat_sms_t *ngx_http_chat_sms_send(ngx_http_chat_main_conf_t *cmcf,
    ngx_log_t *log, ngx_http_chat_sms_channel_e channel, ngx_str_t *to,
    ngx_str_t *body, ngx_str_t *code, ngx_http_chat_sms_done_pt done,
    void *data);

/* the owner is going away: done() will not be called */
void ngx_http_chat_sms_cancel(ngx_http_chat_sms_t *sms);
/* a worker's exit: the sends still in flight cancelled */
void ngx_http_chat_sms_exit_process(void);


#endif /* _NGX_HTTP_CHAT_SMS_H_INCLUDED_ */
