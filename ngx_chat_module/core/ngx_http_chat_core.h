/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_CORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "../util/ngx_http_chat_conf.h"
#include "../util/ngx_http_chat_json.h"
#include "../ws/ngx_http_chat_ws.h"
#include "ngx_http_chat_events.h"


/*
 * The core floor: what every handler shares, whatever folder it is in.
 * The location configuration, the per-request context, the answers and
 * the error envelope, body reading, finalizing (ngx_http_chat_http.c);
 * the Redis and MongoDB steps of a request (ngx_http_chat_async.h); the
 * event interface to the floors above (ngx_http_chat_events.h).
 */


#define NGX_HTTP_CHAT_VERSION  "0.1.0"


typedef enum {
    NGX_HTTP_CHAT_HANDLER_NONE = 0,
    NGX_HTTP_CHAT_HANDLER_API,
    NGX_HTTP_CHAT_HANDLER_WS,
    NGX_HTTP_CHAT_HANDLER_WS_ECHO,
    NGX_HTTP_CHAT_HANDLER_SOCKETIO,
    NGX_HTTP_CHAT_HANDLER_HEALTHZ,
    NGX_HTTP_CHAT_HANDLER_READYZ,
    NGX_HTTP_CHAT_HANDLER_METRICS,
    NGX_HTTP_CHAT_HANDLER_STATS
} ngx_http_chat_handler_e;


/* statuses NGINX has no name for */
#define NGX_HTTP_CHAT_GONE                  410
#define NGX_HTTP_CHAT_UPGRADE_REQUIRED      426
#define NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY  422


/*
 * The REST routes' rate groups (core/ngx_http_chat_rest_rate.c): each route
 * of api/ is in one; "address" is every route's, per client address.
 */
typedef enum {
    NGX_HTTP_CHAT_REST_AUTH = 0,    /* public sign-in routes, per address */
    NGX_HTTP_CHAT_REST_READ,        /* GETs */
    NGX_HTTP_CHAT_REST_WRITE,       /* changes */
    NGX_HTTP_CHAT_REST_SEND,        /* message sends, edits, forwards */
    NGX_HTTP_CHAT_REST_SEARCH,      /* message and user search */
    NGX_HTTP_CHAT_REST_GROUP,       /* group creation, member adds */
    NGX_HTTP_CHAT_REST_UPLOAD,      /* media uploads */
    NGX_HTTP_CHAT_REST_ADDRESS,     /* every route, per address */
    NGX_HTTP_CHAT_REST_NGROUPS
} ngx_http_chat_rest_group_e;


typedef struct {
    ngx_http_chat_handler_e    handler;
    size_t                     max_body_size;
    ngx_array_t               *cors_origins;   /* ngx_str_t, "*" allowed */
    ngx_flag_t                 security_headers;
    time_t                     hsts_max_age;
    ngx_http_chat_ws_conf_t    ws;             /* chat_ws, chat_ws_echo */

    /* chat_socketio: polling sessions not signed in, in all, per address */
    ngx_int_t                  sio_max_unauth;
    ngx_int_t                  sio_max_unauth_addr;
    ngx_flag_t                 sio_upgrade_any_addr;

    /* chat_rest_rate: a token bucket per group (close unused) */
    ngx_http_chat_ws_rate_t    rest_rate[NGX_HTTP_CHAT_REST_NGROUPS];
} ngx_http_chat_loc_conf_t;


#define NGX_HTTP_CHAT_MAX_PARAMS  4


/* per-request context */
typedef struct {
    ngx_str_t                  request_id;
    json_t                    *body;          /* parsed JSON request body */
    ngx_str_t                  params[NGX_HTTP_CHAT_MAX_PARAMS]; /* :id */
    ngx_uint_t                 nparams;
    void                      *route;
    ngx_int_t                (*body_handler)(ngx_http_request_t *r);

    /* the caller, once its access token was accepted */
    ngx_str_t                  user_id;
    ngx_str_t                  session_id;
    ngx_str_t                  jti;
    time_t                     token_exp;

    void                      *state;         /* the handler's own */

    /* what a WebSocket app takes over from an earlier transport */
    ngx_str_t                  ws_resume;

    /* the time waited on back ends, for $chat_store_time */
    ngx_msec_t                 store_start;
    ngx_msec_t                 store_time;
    ngx_uint_t                 store_waits;   /* steps pending */
} ngx_http_chat_ctx_t;


extern ngx_module_t  ngx_http_chat_module;


/*
 * ngx_http_chat_http.c: the behaviour common to every route.  The send
 * functions return what a content handler returns; after a body was read,
 * pass it to ngx_http_finalize_request().
 */
ngx_http_chat_ctx_t *ngx_http_chat_prepare(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_add_header(ngx_http_request_t *r, const char *key,
    ngx_str_t *value);
ngx_int_t ngx_http_chat_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json);
void ngx_http_chat_finalize(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_http_chat_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message);
ngx_int_t ngx_http_chat_send_error_details(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message,
    json_t *details);
ngx_int_t ngx_http_chat_send_invalid(ngx_http_request_t *r,
    const char *field, const char *problem);
ngx_int_t ngx_http_chat_send_method_not_allowed(ngx_http_request_t *r,
    ngx_uint_t allowed);
ngx_int_t ngx_http_chat_send_preflight(ngx_http_request_t *r,
    ngx_uint_t allowed);
ngx_int_t ngx_http_chat_read_json_body(ngx_http_request_t *r,
    ngx_int_t (*handler)(ngx_http_request_t *r));
ngx_int_t ngx_http_chat_discard_body(ngx_http_request_t *r);
/* a parsed body (NULL if invalid) to ctx->body, then the body handler */
ngx_int_t ngx_http_chat_body_json(ngx_http_request_t *r, json_t *json);
/* ngx_http_chat_body_file.c: a spilled body, read and parsed in a thread */
ngx_int_t ngx_http_chat_body_file_json(ngx_http_request_t *r, off_t total);
ngx_str_t *ngx_http_chat_task_id(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_request_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/*
 * ngx_http_chat_log_vars.c: a step on a back end begins and ends (the
 * time $chat_store_time shows), and the variables of the access log
 */
void ngx_http_chat_store_begin(ngx_http_request_t *r);
void ngx_http_chat_store_end(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_store_time_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_chat_user_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_CHAT_CORE_H_INCLUDED_ */
