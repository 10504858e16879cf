/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_REST_RATE_H_INCLUDED_
#define _NGX_HTTP_CHAT_REST_RATE_H_INCLUDED_


#include "ngx_http_chat_core.h"


/*
 * REST rate limits (chat_rest_rate): token buckets in one shared-memory
 * zone of the instance, keyed by route group and user (or address), and
 * one per address for every route.
 */

/* "auth", "read", ...: the group's name, NULL past the last */
const char *ngx_http_chat_rest_group_name(ngx_uint_t group);

/* group's default bucket */
void ngx_http_chat_rest_rate_default(ngx_uint_t group,
    ngx_http_chat_ws_rate_t *rate);

/* chat_rest_rate_zone: the zone's init, the zone kept across a reload */
ngx_int_t ngx_http_chat_rest_rate_init_zone(ngx_shm_zone_t *zone,
    void *data);

/*
 * Takes a token of the route group's bucket of user (NULL: of the
 * client's address) and of the address's bucket; adds the RateLimit-*
 * headers.  NGX_DECLINED: the route runs; else the rc of the 429 answer
 * sent.
 */
ngx_int_t ngx_http_chat_rest_rate_check(ngx_http_request_t *r,
    ngx_uint_t group, ngx_str_t *user);


#endif /* _NGX_HTTP_CHAT_REST_RATE_H_INCLUDED_ */
