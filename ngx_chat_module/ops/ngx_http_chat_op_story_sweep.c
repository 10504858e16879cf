/*
 * Copyright (C) ngx_chat_module authors
 *
 * The sweeper of expired stories: a timer on one worker and one MongoDB
 * task at a time (store/ngx_http_chat_highlights_store.c does the work).
 * Reads already leave expired stories out; this only frees the store.
 */


#include "../store/ngx_http_chat_highlights_store.h"
#include "ngx_http_chat_op_story_sweep.h"


/* a full batch: the backlog goes on soon, not a whole interval later */
#define NGX_HTTP_CHAT_SWEEP_AGAIN  100


static void ngx_http_chat_op_story_sweep_timer(ngx_event_t *ev);
static void ngx_http_chat_op_story_swept(ngx_http_chat_mongo_task_t *t);
static void ngx_http_chat_op_story_sweep_arm(ngx_msec_t delay);


static ngx_msec_t        ngx_http_chat_sweep_interval;
static ngx_event_t       ngx_http_chat_sweep_ev;
static ngx_connection_t  ngx_http_chat_sweep_dummy;     /* timer's log */


ngx_int_t
ngx_http_chat_op_story_sweep_init(ngx_cycle_t *cycle,
    ngx_http_chat_main_conf_t *cmcf)
{
    /* one sweeper an instance is enough: worker 0's */
    if (ngx_worker != 0 || cmcf->story_sweep_interval == 0) {
        return NGX_OK;
    }

    ngx_http_chat_sweep_interval = cmcf->story_sweep_interval;
    ngx_http_chat_op_story_sweep_arm(ngx_http_chat_sweep_interval);

    return NGX_OK;
}


static void
ngx_http_chat_op_story_sweep_arm(ngx_msec_t delay)
{
    if (ngx_exiting || ngx_quit || ngx_terminate
        || ngx_http_chat_sweep_ev.timer_set)
    {
        return;
    }

    ngx_http_chat_sweep_dummy.fd = (ngx_socket_t) -1;
    ngx_http_chat_sweep_ev.data = &ngx_http_chat_sweep_dummy;
    ngx_http_chat_sweep_ev.handler = ngx_http_chat_op_story_sweep_timer;
    ngx_http_chat_sweep_ev.log = ngx_cycle->log;
    ngx_http_chat_sweep_ev.cancelable = 1;
    ngx_add_timer(&ngx_http_chat_sweep_ev, delay);
}


static void
ngx_http_chat_op_story_sweep_timer(ngx_event_t *ev)
{
    ngx_http_chat_mongo_task_t  *t;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    t = ngx_http_chat_mongo_task_create(ngx_cycle->log,
                                        ngx_http_chat_story_sweep_run,
                                        ngx_http_chat_op_story_swept, NULL);

    /* on NGX_ERROR the task is freed: the next tick tries again */
    if (t == NULL || ngx_http_chat_mongo_post(t) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: the story sweeper waits: cannot post it");
        ngx_http_chat_op_story_sweep_arm(ngx_http_chat_sweep_interval);
    }
}


static void
ngx_http_chat_op_story_swept(ngx_http_chat_mongo_task_t *t)
{
    if (t->rc < 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: the story sweeper failed in mongo: %s",
                      t->error.message);

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "chat: the story sweeper removed %i stories", t->rc);
    }

    ngx_http_chat_op_story_sweep_arm(
        t->rc >= NGX_HTTP_CHAT_STORY_SWEEP_BATCH
        ? NGX_HTTP_CHAT_SWEEP_AGAIN : ngx_http_chat_sweep_interval);
}
