/*
 * Copyright (C) ngx_chat_module authors
 *
 * The push queue of a worker (ngx_http_chat_push.h): a bounded number of
 * pushes in flight or waiting to be retried, their retries, and the
 * counts by provider and result.
 */


#include "ngx_http_chat_push_int.h"
#include "../util/ngx_http_chat_metrics.h"


#define NGX_HTTP_CHAT_PUSH_BACKOFF      1000     /* ms, doubled each time */
#define NGX_HTTP_CHAT_PUSH_BACKOFF_MAX  60000
#define NGX_HTTP_CHAT_PUSH_AFTER_MAX    600      /* s of a Retry-After */


static void ngx_http_chat_push_counted(ngx_uint_t provider,
    ngx_uint_t result);
static void ngx_http_chat_push_free(ngx_http_chat_push_t *p);
static void ngx_http_chat_push_retry_handler(ngx_event_t *ev);


ngx_http_chat_push_gone_pt   ngx_http_chat_push_gone;
ngx_http_chat_main_conf_t   *ngx_http_chat_push_conf;

static ngx_queue_t   ngx_http_chat_push_all;
static ngx_uint_t    ngx_http_chat_push_n;
static ngx_uint_t    ngx_http_chat_push_counts[NGX_HTTP_CHAT_PUSH_PROVIDERS]
                                              [NGX_HTTP_CHAT_PUSH_RESULTS];


ngx_int_t
ngx_http_chat_push_init_process(ngx_cycle_t *cycle,
    ngx_http_chat_main_conf_t *cmcf)
{
    ngx_http_chat_push_conf = cmcf;
    ngx_queue_init(&ngx_http_chat_push_all);
    ngx_http_chat_push_n = 0;

    return NGX_OK;
}


ngx_uint_t
ngx_http_chat_push_enabled(void)
{
    return ngx_http_chat_push_conf
           && (ngx_http_chat_push_conf->push_fcm_project.len
               || ngx_http_chat_push_conf->push_apns_key.len);
}


ngx_uint_t
ngx_http_chat_push_apns_enabled(void)
{
    return ngx_http_chat_push_conf
           && ngx_http_chat_push_conf->push_apns_key.len;
}


/* one attempt, by the provider's client */

static void
ngx_http_chat_push_start(ngx_http_chat_push_t *p)
{
    if (p->provider == NGX_HTTP_CHAT_PUSH_APNS) {
        ngx_http_chat_push_apns_start(p);

    } else {
        ngx_http_chat_push_fcm_start(p);
    }
}


/* this worker's count, and the instance's metric (util's shared slots) */
static void
ngx_http_chat_push_counted(ngx_uint_t provider, ngx_uint_t result)
{
    ngx_http_chat_push_counts[provider][result]++;
    ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_PUSH_FCM_SENT
                             + provider * NGX_HTTP_CHAT_PUSH_RESULTS
                             + result);
}


ngx_uint_t
ngx_http_chat_push_count(ngx_http_chat_push_provider_e provider,
    ngx_http_chat_push_result_e result)
{
    if (provider >= NGX_HTTP_CHAT_PUSH_PROVIDERS
        || result >= NGX_HTTP_CHAT_PUSH_RESULTS)
    {
        return 0;
    }

    return ngx_http_chat_push_counts[provider][result];
}


ngx_int_t
ngx_http_chat_push_send(ngx_http_chat_push_msg_t *m)
{
    ngx_http_chat_push_t           *p;
    ngx_http_chat_push_provider_e   provider;

    if (!ngx_http_chat_push_enabled() || ngx_exiting || ngx_terminate) {
        return NGX_DECLINED;
    }

    provider = m->apns ? NGX_HTTP_CHAT_PUSH_APNS : NGX_HTTP_CHAT_PUSH_FCM;

    if (provider == NGX_HTTP_CHAT_PUSH_FCM
        && ngx_http_chat_push_conf->push_fcm_project.len == 0)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_chat_push_n >= ngx_http_chat_push_conf->push_queue) {
        ngx_http_chat_push_counted(provider, NGX_HTTP_CHAT_PUSH_DROPPED);
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat push: the queue is full (%ui), a push dropped",
                      ngx_http_chat_push_n);
        return NGX_DECLINED;
    }

    p = ngx_calloc(sizeof(ngx_http_chat_push_t), ngx_cycle->log);
    if (p == NULL) {
        return NGX_DECLINED;
    }

    p->provider = provider;
    p->voip = m->voip;
    p->urgent = m->urgent;

    p->token = ngx_alloc(m->token.len + 1, ngx_cycle->log);
    if (p->token == NULL) {
        ngx_free(p);
        return NGX_DECLINED;
    }

    *ngx_cpymem(p->token, m->token.data, m->token.len) = '\0';

    if (provider == NGX_HTTP_CHAT_PUSH_APNS) {
        p->topic = ngx_alloc(m->topic.len + sizeof(".voip"), ngx_cycle->log);
        if (p->topic == NULL) {
            ngx_free(p->token);
            ngx_free(p);
            return NGX_DECLINED;
        }

        /* a VoIP push goes to the app's ".voip" topic */
        *ngx_cpymem(ngx_cpymem(p->topic, m->topic.data, m->topic.len),
                    m->voip ? ".voip" : "", m->voip ? 5 : 0) = '\0';

        if (m->collapse.len == 24 && !m->voip) {
            ngx_memcpy(p->collapse, m->collapse.data, 24);
        }

        /* an incoming call now or never; anything else within a day */
        p->expiration = m->urgent ? 0 : ngx_time() + 86400;

        p->body = ngx_http_chat_push_apns_body(m);

    } else {
        p->body = ngx_http_chat_push_fcm_body(m);
    }

    if (p->body == NULL) {
        if (p->topic) {
            ngx_free(p->topic);
        }

        ngx_free(p->token);
        ngx_free(p);
        return NGX_DECLINED;
    }

    p->retry.handler = ngx_http_chat_push_retry_handler;
    p->retry.data = p;
    p->retry.log = ngx_cycle->log;
    p->retry.cancelable = 1;

    ngx_queue_insert_tail(&ngx_http_chat_push_all, &p->queue);
    ngx_http_chat_push_n++;

    ngx_http_chat_push_start(p);

    return NGX_OK;
}


/*
 * An attempt ended.  Past the retries, or refused, the push is dropped;
 * a token the provider no longer knows is handed up to be deleted.
 */

void
ngx_http_chat_push_attempted(ngx_http_chat_push_t *p,
    ngx_http_chat_push_outcome_e outcome, ngx_uint_t retry_after)
{
    ngx_str_t   token;
    ngx_msec_t  delay;


    switch (outcome) {

    case NGX_HTTP_CHAT_PUSH_OK:
        ngx_http_chat_push_counted(p->provider, NGX_HTTP_CHAT_PUSH_SENT);
        break;

    case NGX_HTTP_CHAT_PUSH_INVALID:
        ngx_http_chat_push_counted(p->provider, NGX_HTTP_CHAT_PUSH_GONE);

        if (ngx_http_chat_push_gone) {
            token.data = (u_char *) p->token;
            token.len = ngx_strlen(p->token);
            ngx_http_chat_push_gone(&token, p->voip);
        }

        break;

    case NGX_HTTP_CHAT_PUSH_AGAIN:
        ngx_http_chat_push_counted(p->provider, NGX_HTTP_CHAT_PUSH_RETRIED);

        if (p->attempts <= ngx_http_chat_push_conf->push_retries
            && !ngx_exiting && !ngx_terminate)
        {
            if (retry_after) {
                delay = ngx_min(retry_after, NGX_HTTP_CHAT_PUSH_AFTER_MAX)
                        * 1000;

            } else {
                delay = NGX_HTTP_CHAT_PUSH_BACKOFF << (p->attempts - 1);
                delay = ngx_min(delay, NGX_HTTP_CHAT_PUSH_BACKOFF_MAX);
            }

            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "chat push: attempt %ui failed, again in %M ms",
                          p->attempts, delay);

            ngx_add_timer(&p->retry, delay);
            return;
        }

        ngx_http_chat_push_counted(p->provider, NGX_HTTP_CHAT_PUSH_FAILED);
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat push: given up after %ui attempts", p->attempts);
        break;

    default: /* NGX_HTTP_CHAT_PUSH_REFUSED */
        ngx_http_chat_push_counted(p->provider, NGX_HTTP_CHAT_PUSH_FAILED);
    }

    ngx_http_chat_push_free(p);
}


static void
ngx_http_chat_push_retry_handler(ngx_event_t *ev)
{
    ngx_http_chat_push_t  *p = ev->data;

    if (ngx_exiting || ngx_terminate) {
        ngx_http_chat_push_free(p);
        return;
    }

    ngx_http_chat_push_start(p);
}


static void
ngx_http_chat_push_free(ngx_http_chat_push_t *p)
{
    if (p->retry.timer_set) {
        ngx_del_timer(&p->retry);
    }

    if (p->curl) {
        ngx_http_chat_curl_cancel(p->curl);
        p->curl = NULL;
    }

    ngx_http_chat_push_fcm_forget(p);

    ngx_queue_remove(&p->queue);
    ngx_http_chat_push_n--;

    if (p->topic) {
        ngx_free(p->topic);
    }

    ngx_free(p->body);
    ngx_free(p->token);
    ngx_free(p);
}


/* the pushes still queued go with the worker */

void
ngx_http_chat_push_exit_process(void)
{
    ngx_queue_t  *q;

    if (ngx_http_chat_push_all.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_chat_push_all)) {
        q = ngx_queue_head(&ngx_http_chat_push_all);
        ngx_http_chat_push_free(ngx_queue_data(q, ngx_http_chat_push_t,
                                               queue));
    }

    ngx_http_chat_push_fcm_exit();
    ngx_http_chat_push_apns_exit();
}
