/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_PRESENCE_READ_H_INCLUDED_
#define _NGX_HTTP_CHAT_PRESENCE_READ_H_INCLUDED_


#include <jansson.h>
#include <ngx_config.h>
#include <ngx_core.h>


typedef struct ngx_http_chat_online_s  ngx_http_chat_online_t;

typedef void (*ngx_http_chat_online_pt)(void *data);


/*
 * Sets the "online" of each user's view in answer (an object with "id"
 * and "online", answer's own or one in an array among its values) from
 * Redis, then done(data), never before this returns; answer is held till
 * then.  NGX_DECLINED: nothing to read or Redis away (done is not
 * called, the views stay as they were).
 */
ngx_int_t ngx_http_chat_online_read(json_t *answer,
    ngx_http_chat_online_pt done, void *data, ngx_http_chat_online_t **out);

/* done is not called; the reads still come and free what they hold */
void ngx_http_chat_online_cancel(ngx_http_chat_online_t *on);


#endif /* _NGX_HTTP_CHAT_PRESENCE_READ_H_INCLUDED_ */
