/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_STORY_SWEEP_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_STORY_SWEEP_H_INCLUDED_


#include "../util/ngx_http_chat_conf.h"


/*
 * The sweeper of expired stories: on worker 0 only, every
 * chat_story_sweep_interval, one MongoDB task removes a bounded batch of
 * expired stories that are in no highlight, with their views.  Its timer
 * is cancelable: an exiting worker does not wait for it.
 */
ngx_int_t ngx_http_chat_op_story_sweep_init(ngx_cycle_t *cycle,
    ngx_http_chat_main_conf_t *cmcf);


#endif /* _NGX_HTTP_CHAT_OP_STORY_SWEEP_H_INCLUDED_ */
