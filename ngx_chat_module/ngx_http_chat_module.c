/*
 * Copyright (C) ngx_chat_module authors
 *
 * Directives, configuration create/merge/validation, and the per-worker
 * start and stop of the module's I/O back ends.
 */


#include "ngx_http_chat_module.h"
#include "api/ngx_http_chat_api.h"
#include "api/ngx_http_chat_turn.h"
#include "api/ngx_http_chat_metrics_page.h"
#include "api/ngx_http_chat_stats.h"
#include "core/ngx_http_chat_rest_rate.h"
#include "core/ngx_http_chat_trim.h"
#include "util/ngx_http_chat_conf_file.h"
#include "util/ngx_http_chat_metrics.h"
#include "store/ngx_http_chat_mongo.h"
#include "store/ngx_http_chat_redis.h"
#include "store/ngx_http_chat_redis_shards.h"
#include "store/ngx_http_chat_threads.h"
#include "services/ngx_http_chat_curl.h"
#include "services/ngx_http_chat_sms.h"
#include "services/ngx_http_chat_push.h"
#include "ops/ngx_http_chat_op_push.h"
#include "store/ngx_http_chat_users.h"
#include "store/ngx_http_chat_search_store.h"
#include "auth/ngx_http_chat_phone.h"
#include "auth/ngx_http_chat_jwt.h"
#include "auth/ngx_http_chat_session_op.h"
#include "realtime/ngx_http_chat_rt.h"
#include "ops/ngx_http_chat_op_send.h"
#include "ops/ngx_http_chat_send_cache.h"
#include "ops/ngx_http_chat_op_story_sweep.h"
#include "ops/ngx_http_chat_op_call.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>


/* the threads of the "chat" pool when no thread_pool directive sizes it */
#define NGX_HTTP_CHAT_THREADS  "32"


extern ngx_module_t  ngx_thread_pool_module;


static ngx_int_t ngx_http_chat_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_chat_init(ngx_conf_t *cf);
static void *ngx_http_chat_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_chat_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_http_chat_derive_otp_secret(ngx_conf_t *cf,
    ngx_http_chat_main_conf_t *cmcf);
static void *ngx_http_chat_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_chat_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_chat_set_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_redis_shards(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_redis_addr(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *addr, ngx_str_t *host, in_port_t *port);
static char *ngx_http_chat_mongo_uri(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_jwt_algorithm(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_avatar_url_host(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_chat_ready_check(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_num_off(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_ws_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_rate_parse(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t n, ngx_http_chat_ws_rate_t *rate, ngx_uint_t with_close);
static char *ngx_http_chat_rest_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_ws_protocols(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_cors_origin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_check_whatsapp_from(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_chat_check_content_sid(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_chat_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_set_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_send_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_chat_init_rate(ngx_http_chat_rate_t *rate,
    ngx_int_t count, time_t window);
static ngx_int_t ngx_http_chat_declare_thread_pool(ngx_conf_t *cf,
    ngx_str_t *name);
static ngx_int_t ngx_http_chat_init_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_chat_shm_init(ngx_shm_zone_t *zone, void *data);
static void ngx_http_chat_exit_process(ngx_cycle_t *cycle);


ngx_http_chat_redis_t  *ngx_http_chat_redis_main;


static char *ngx_http_chat_check_bounds(ngx_conf_t *cf, void *post,
    void *data);


/* like ngx_conf_check_num_bounds(), but the message names the directive */
static ngx_conf_num_bounds_t  ngx_http_chat_pool_size_bounds = {
    ngx_http_chat_check_bounds, 1, 1024
};

static ngx_conf_num_bounds_t  ngx_http_chat_group_max_size_bounds = {
    ngx_http_chat_check_bounds, 2, 100000
};

static ngx_conf_num_bounds_t  ngx_http_chat_call_max_bounds = {
    ngx_http_chat_check_bounds, 2, 32          /* a call's peers at most */
};

static ngx_conf_num_bounds_t  ngx_http_chat_search_scan_bounds = {
    ngx_http_chat_check_bounds, 100, 1000000
};

static ngx_conf_num_bounds_t  ngx_http_chat_limit_bounds = {
    ngx_http_chat_check_bounds, 1, 1000000
};


static ngx_conf_post_t  ngx_http_chat_whatsapp_from_post = {
    ngx_http_chat_check_whatsapp_from
};

static ngx_conf_post_t  ngx_http_chat_content_sid_post = {
    ngx_http_chat_check_content_sid
};

static ngx_conf_enum_t  ngx_http_chat_sms_providers[] = {
    { ngx_string("log"), NGX_HTTP_CHAT_SMS_LOG },
    { ngx_string("twilio"), NGX_HTTP_CHAT_SMS_TWILIO },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_chat_commands[] = {

    { ngx_string("chat_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_chat_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CHAT_HANDLER_API,
      NULL },

    { ngx_string("chat_healthz"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_chat_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CHAT_HANDLER_HEALTHZ,
      NULL },

    { ngx_string("chat_readyz"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_chat_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CHAT_HANDLER_READYZ,
      NULL },

    { ngx_string("chat_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_chat_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CHAT_HANDLER_METRICS,
      NULL },

    { ngx_string("chat_stats"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_chat_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CHAT_HANDLER_STATS,
      NULL },

    { ngx_string("chat_ws"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_chat_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CHAT_HANDLER_WS,
      NULL },

    { ngx_string("chat_socketio"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_chat_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CHAT_HANDLER_SOCKETIO,
      NULL },

    { ngx_string("chat_socketio_max_unauthenticated"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, sio_max_unauth),
      NULL },

    { ngx_string("chat_socketio_max_unauthenticated_per_address"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, sio_max_unauth_addr),
      NULL },

    { ngx_string("chat_socketio_upgrade_from_any_address"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, sio_upgrade_any_addr),
      NULL },

    { ngx_string("chat_ws_echo"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_chat_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CHAT_HANDLER_WS_ECHO,
      NULL },

    { ngx_string("chat_ws_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.max_message),
      NULL },

    { ngx_string("chat_ws_max_queue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.max_queue),
      NULL },

    { ngx_string("chat_ws_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.ping_interval),
      NULL },

    { ngx_string("chat_ws_pong_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.pong_timeout),
      NULL },

    { ngx_string("chat_ws_auth_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.auth_timeout),
      NULL },

    { ngx_string("chat_ws_deflate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.deflate),
      NULL },

    { ngx_string("chat_ws_deflate_context_takeover"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.deflate_takeover),
      NULL },

    { ngx_string("chat_ws_event_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_chat_ws_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.event_rate),
      NULL },

    { ngx_string("chat_ws_send_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_chat_ws_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.send_rate),
      NULL },

    { ngx_string("chat_ws_unauth_per_address"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_num_off,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.unauth_per_addr),
      NULL },

    { ngx_string("chat_ws_conn_per_address"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_num_off,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, ws.conn_per_addr),
      NULL },

    { ngx_string("chat_rest_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE23,
      ngx_http_chat_rest_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_rest_rate_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, rest_rate_zone_size),
      NULL },

    { ngx_string("chat_ws_protocols"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_chat_ws_protocols,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_redis_shards"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_chat_redis_shards,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, redis_connect_timeout),
      NULL },

    { ngx_string("chat_redis_backoff_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, redis_backoff_max),
      NULL },

    { ngx_string("chat_redis_command_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, redis_command_timeout),
      NULL },

    { ngx_string("chat_redis_output_buffer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, redis_output_buffer),
      NULL },

    { ngx_string("chat_presence_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, presence_ttl),
      NULL },

    { ngx_string("chat_active_walk"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, active_walk),
      NULL },

    { ngx_string("chat_memory_trim"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, memory_trim),
      NULL },

    { ngx_string("chat_mongo_uri"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_mongo_uri,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_mongo_database"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, mongo_db),
      NULL },

    { ngx_string("chat_mongo_pool_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, mongo_pool_size),
      &ngx_http_chat_pool_size_bounds },

    { ngx_string("chat_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("chat_jwt_algorithm"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_jwt_algorithm,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, jwt_alg),
      NULL },

    { ngx_string("chat_jwt_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, jwt_secret),
      NULL },

    { ngx_string("chat_jwt_private_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_key_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, jwt_private_key),
      NULL },

    { ngx_string("chat_jwt_public_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_key_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, jwt_public_key),
      NULL },

    { ngx_string("chat_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, jwt_issuer),
      NULL },

    { ngx_string("chat_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, jwt_audience),
      NULL },

    { ngx_string("chat_jwt_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, jwt_ttl),
      NULL },

    { ngx_string("chat_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, jwt_leeway),
      NULL },

    { ngx_string("chat_refresh_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, refresh_ttl),
      NULL },

    { ngx_string("chat_otp_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, otp_ttl),
      NULL },

    { ngx_string("chat_otp_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, otp_secret),
      NULL },

    { ngx_string("chat_otp_daily_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, otp_daily_limit),
      &ngx_http_chat_limit_bounds },

    { ngx_string("chat_otp_ip_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, otp_ip_limit),
      &ngx_http_chat_limit_bounds },

    { ngx_string("chat_otp_country_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, otp_country_limit),
      &ngx_http_chat_limit_bounds },

    { ngx_string("chat_otp_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, otp_window),
      NULL },

    { ngx_string("chat_otp_resend_delay"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, otp_resend_delay),
      NULL },

    { ngx_string("chat_sms_provider"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_enum,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, sms_provider),
      &ngx_http_chat_sms_providers },

    { ngx_string("chat_twilio_base_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, twilio_base_url),
      NULL },

    { ngx_string("chat_twilio_account_sid"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, twilio_account_sid),
      NULL },

    { ngx_string("chat_twilio_auth_token"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, twilio_auth_token),
      NULL },

    { ngx_string("chat_twilio_from"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, twilio_from),
      NULL },

    { ngx_string("chat_twilio_whatsapp_from"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, twilio_whatsapp_from),
      &ngx_http_chat_whatsapp_from_post },

    { ngx_string("chat_twilio_whatsapp_content_sid"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, twilio_whatsapp_content_sid),
      &ngx_http_chat_content_sid_post },

    { ngx_string("chat_push_fcm_service_account"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_push_fcm_account,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_push_fcm_base_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, push_fcm_base_url),
      NULL },

    { ngx_string("chat_push_apns_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_chat_push_apns_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_push_apns_base_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, push_apns_base_url),
      NULL },

    { ngx_string("chat_push_apns_ca_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, push_apns_ca_file),
      NULL },

    { ngx_string("chat_push_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, push_queue),
      NULL },

    { ngx_string("chat_push_retries"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, push_retries),
      NULL },

    { ngx_string("chat_push_mention_muted"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, push_mention_muted),
      NULL },

    { ngx_string("chat_upstream_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, upstream_timeout),
      NULL },

    { ngx_string("chat_group_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, group_max_size),
      &ngx_http_chat_group_max_size_bounds },

    { ngx_string("chat_send_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_chat_send_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, send_budget),
      NULL },

    { ngx_string("chat_send_max_pending"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, send_max_pending),
      NULL },

    { ngx_string("chat_send_max_wait"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, send_max_wait),
      NULL },

    { ngx_string("chat_edit_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, edit_window),
      NULL },

    { ngx_string("chat_story_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, story_lifetime),
      NULL },

    { ngx_string("chat_story_post_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_chat_set_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, story_post_limit),
      NULL },

    { ngx_string("chat_story_react_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_chat_set_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, story_react_limit),
      NULL },

    { ngx_string("chat_story_view_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_chat_set_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, story_view_limit),
      NULL },

    { ngx_string("chat_story_sweep_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, story_sweep_interval),
      NULL },

    { ngx_string("chat_turn_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_turn_set_secret,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_turn_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_turn_set_secret_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_turn_uris"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_chat_turn_set_uris,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, turn_uris),
      NULL },

    { ngx_string("chat_stun_uris"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_chat_turn_set_uris,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, stun_uris),
      NULL },

    { ngx_string("chat_turn_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, turn_ttl),
      NULL },

    { ngx_string("chat_turn_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_chat_set_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, turn_limit),
      NULL },
    { ngx_string("chat_call_ring_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, call_ring_timeout),
      NULL },

    { ngx_string("chat_call_grace"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, call_grace),
      NULL },

    { ngx_string("chat_call_max_participants"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, call_max_participants),
      &ngx_http_chat_call_max_bounds },

    { ngx_string("chat_search_scan"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, search_scan),
      &ngx_http_chat_search_scan_bounds },

    { ngx_string("chat_lookup_daily_numbers"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, lookup_daily_numbers),
      &ngx_http_chat_limit_bounds },

    { ngx_string("chat_user_view_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_chat_set_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, user_view_limit),
      NULL },

    { ngx_string("chat_search_text_index"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, search_text_index),
      NULL },

    { ngx_string("chat_delete_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_main_conf_t, delete_window),
      NULL },

    { ngx_string("chat_avatar_url_host"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_avatar_url_host,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_ready_check"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_ready_check,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, max_body_size),
      NULL },

    { ngx_string("chat_cors_origin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_chat_cors_origin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_security_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, security_headers),
      NULL },

    { ngx_string("chat_hsts_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_chat_loc_conf_t, hsts_max_age),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_chat_module_ctx = {
    ngx_http_chat_add_variables,           /* preconfiguration */
    ngx_http_chat_init,                    /* postconfiguration */

    ngx_http_chat_create_main_conf,        /* create main configuration */
    ngx_http_chat_init_main_conf,          /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_chat_create_loc_conf,         /* create location configuration */
    ngx_http_chat_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_chat_module = {
    NGX_MODULE_V1,
    &ngx_http_chat_module_ctx,             /* module context */
    ngx_http_chat_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_chat_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_chat_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_chat_vars[] = {

    { ngx_string("chat_request_id"), NULL,
      ngx_http_chat_request_id_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("chat_user_id"), NULL,
      ngx_http_chat_user_id_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("chat_route"), NULL,
      ngx_http_chat_api_route_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("chat_store_time"), NULL,
      ngx_http_chat_store_time_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_chat_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_chat_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* the floors above core register what crosses upwards */
static ngx_int_t
ngx_http_chat_init(ngx_conf_t *cf)
{
    static ngx_str_t  name = ngx_string("ngx_chat_module");
    static ngx_str_t  rest_name = ngx_string("ngx_chat_rest_rate");

    ngx_http_handler_pt        *h;
    ngx_http_chat_main_conf_t  *cmcf;
    ngx_http_core_main_conf_t  *hcmcf;

    ngx_http_chat_rt_register(&ngx_http_chat_events);
    ngx_http_chat_task_request_id = ngx_http_chat_task_id;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_chat_module);

    if (!cmcf->enabled) {
        return NGX_OK;
    }

    /*
     * what the workers of this instance share: a few counters, and the
     * sockets per address (about 100 bytes an address with sockets)
     */
    cmcf->shm = ngx_shared_memory_add(cf, &name,
                                      8 * ngx_pagesize
                                      + NGX_HTTP_CHAT_CONN_ZONE
                                      + ngx_align(
                                          sizeof(ngx_http_chat_metrics_zone_t),
                                          ngx_pagesize),
                                      &ngx_http_chat_module);
    if (cmcf->shm == NULL) {
        return NGX_ERROR;
    }

    cmcf->shm->init = ngx_http_chat_shm_init;
    cmcf->shm->noreuse = 0;

    /* the REST rate buckets (chat_rest_rate); 0: none kept */
    if (cmcf->rest_rate_zone_size) {
        cmcf->rest_rate_shm = ngx_shared_memory_add(cf, &rest_name,
                                  cmcf->rest_rate_zone_size,
                                  &ngx_http_chat_module);
        if (cmcf->rest_rate_shm == NULL) {
            return NGX_ERROR;
        }

        cmcf->rest_rate_shm->init = ngx_http_chat_rest_rate_init_zone;
        cmcf->rest_rate_shm->noreuse = 0;
    }

    /* REST answers counted for the metrics, once they are logged */
    hcmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&hcmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_chat_metrics_log;

    return NGX_OK;
}


/* the shared counters, kept across a reload (data: the old zone's) */

static ngx_int_t
ngx_http_chat_shm_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t         *shpool;
    ngx_http_chat_shared_t  *shared;

    if (data) {
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    shared = ngx_slab_calloc(shpool, sizeof(ngx_http_chat_shared_t));
    if (shared == NULL) {
        return NGX_ERROR;
    }

    shared->metrics = ngx_slab_calloc(shpool,
                                      sizeof(ngx_http_chat_metrics_zone_t));
    if (shared->metrics == NULL) {
        return NGX_ERROR;
    }

    shared->conns = ngx_http_chat_rt_conn_zone(shpool);
    if (shared->conns == NULL) {
        return NGX_ERROR;
    }

    shpool->data = shared;
    zone->data = shared;

    return NGX_OK;
}


static void *
ngx_http_chat_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_chat_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cmcf->redis_host = { 0, NULL };
     *     cmcf->mongo_uri = { 0, NULL };
     *     cmcf->thread_pool = NULL;
     *     cmcf->jwt_* = { 0, NULL };
     *     cmcf->ready_checks = NULL;
     *     cmcf->enabled = 0;
     */

    cmcf->redis_port = 0;
    cmcf->redis_connect_timeout = NGX_CONF_UNSET_MSEC;
    cmcf->redis_backoff_max = NGX_CONF_UNSET_MSEC;
    cmcf->redis_command_timeout = NGX_CONF_UNSET_MSEC;
    cmcf->redis_output_buffer = NGX_CONF_UNSET_SIZE;
    cmcf->rest_rate_zone_size = NGX_CONF_UNSET_SIZE;
    cmcf->presence_ttl = NGX_CONF_UNSET_MSEC;
    cmcf->active_walk = NGX_CONF_UNSET_MSEC;
    cmcf->memory_trim = NGX_CONF_UNSET_MSEC;
    cmcf->mongo_pool_size = NGX_CONF_UNSET_UINT;
    cmcf->upstream_timeout = NGX_CONF_UNSET_MSEC;
    cmcf->group_max_size = NGX_CONF_UNSET_UINT;
    cmcf->send_max_pending = NGX_CONF_UNSET_UINT;
    cmcf->send_max_wait = NGX_CONF_UNSET_MSEC;
    cmcf->send_budget.rate = NGX_CONF_UNSET_UINT;
    cmcf->edit_window = NGX_CONF_UNSET;
    cmcf->story_lifetime = NGX_CONF_UNSET;
    cmcf->story_post_limit.count = NGX_CONF_UNSET;
    cmcf->story_react_limit.count = NGX_CONF_UNSET;
    cmcf->story_view_limit.count = NGX_CONF_UNSET;
    cmcf->story_sweep_interval = NGX_CONF_UNSET_MSEC;
    cmcf->turn_ttl = NGX_CONF_UNSET;
    cmcf->turn_limit.count = NGX_CONF_UNSET;
    cmcf->call_ring_timeout = NGX_CONF_UNSET_MSEC;
    cmcf->call_grace = NGX_CONF_UNSET_MSEC;
    cmcf->call_max_participants = NGX_CONF_UNSET_UINT;
    cmcf->search_scan = NGX_CONF_UNSET_UINT;
    cmcf->lookup_daily_numbers = NGX_CONF_UNSET_UINT;
    cmcf->user_view_limit.count = NGX_CONF_UNSET;
    cmcf->search_text_index = NGX_CONF_UNSET;
    cmcf->delete_window = NGX_CONF_UNSET;
    cmcf->jwt_ttl = NGX_CONF_UNSET;
    cmcf->jwt_leeway = NGX_CONF_UNSET;
    cmcf->refresh_ttl = NGX_CONF_UNSET;
    cmcf->otp_ttl = NGX_CONF_UNSET;
    cmcf->otp_daily_limit = NGX_CONF_UNSET_UINT;
    cmcf->otp_ip_limit = NGX_CONF_UNSET_UINT;
    cmcf->otp_country_limit = NGX_CONF_UNSET_UINT;
    cmcf->otp_window = NGX_CONF_UNSET;
    cmcf->otp_resend_delay = NGX_CONF_UNSET;
    cmcf->sms_provider = NGX_CONF_UNSET_UINT;
    cmcf->push_queue = NGX_CONF_UNSET_UINT;
    cmcf->push_retries = NGX_CONF_UNSET_UINT;
    cmcf->push_mention_muted = NGX_CONF_UNSET;

    return cmcf;
}


static char *
ngx_http_chat_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_chat_main_conf_t *cmcf = conf;

    ngx_conf_init_msec_value(cmcf->redis_connect_timeout, 2000);
    ngx_conf_init_msec_value(cmcf->redis_backoff_max, 5000);
    ngx_conf_init_msec_value(cmcf->redis_command_timeout, 3000);
    ngx_conf_init_size_value(cmcf->redis_output_buffer, 16 * 1024 * 1024);
    ngx_conf_init_msec_value(cmcf->presence_ttl, 10000);
    ngx_conf_init_msec_value(cmcf->active_walk, 600000);
    ngx_conf_init_msec_value(cmcf->memory_trim, 30000);

    /* about 100 bytes a bucket: 40,000 users and addresses at once */
    ngx_conf_init_size_value(cmcf->rest_rate_zone_size, 4 * 1024 * 1024);

    if (cmcf->rest_rate_zone_size
        && cmcf->rest_rate_zone_size < 8 * ngx_pagesize)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_rest_rate_zone\" must be 0 or at "
                           "least %uz", 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    if (cmcf->presence_ttl < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_presence_ttl\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (cmcf->active_walk < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_active_walk\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_uint_value(cmcf->mongo_pool_size, 16);
    ngx_conf_init_msec_value(cmcf->upstream_timeout, 10000);
    ngx_conf_init_uint_value(cmcf->group_max_size, 256);
    ngx_conf_init_uint_value(cmcf->send_max_pending, 1000);
    ngx_conf_init_msec_value(cmcf->send_max_wait, 1000);

    /*
     * 10 a second, 200 at once: a client flushing the outbox it filled
     * offline, a forward to 10 chats, a fast bot; not a flood
     */
    if (cmcf->send_budget.rate == NGX_CONF_UNSET_UINT) {
        cmcf->send_budget.rate = 10 * 1000;
        cmcf->send_budget.burst = 200;
    }
    ngx_conf_init_value(cmcf->edit_window, 15 * 60);
    ngx_conf_init_value(cmcf->story_lifetime, 24 * 60 * 60);
    ngx_http_chat_init_rate(&cmcf->story_post_limit, 30, 60 * 60);
    ngx_http_chat_init_rate(&cmcf->story_react_limit, 300, 60 * 60);
    ngx_http_chat_init_rate(&cmcf->story_view_limit, 3000, 60 * 60);
    ngx_conf_init_msec_value(cmcf->story_sweep_interval, 60 * 1000);

    if (ngx_http_chat_turn_init_conf(cf, cmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(cmcf->call_ring_timeout, 45 * 1000);
    ngx_conf_init_msec_value(cmcf->call_grace, 10 * 1000);
    ngx_conf_init_uint_value(cmcf->call_max_participants, 8);
    ngx_conf_init_uint_value(cmcf->search_scan, 500);
    /* twice the largest sync (5,000): a whole address book fits, twice */
    ngx_conf_init_uint_value(cmcf->lookup_daily_numbers, 10000);
    ngx_http_chat_init_rate(&cmcf->user_view_limit, 300, 60);
    ngx_conf_init_value(cmcf->search_text_index, 0);
    ngx_conf_init_value(cmcf->delete_window, 48 * 60 * 60);
    ngx_conf_init_value(cmcf->jwt_ttl, 15 * 60);
    ngx_conf_init_value(cmcf->jwt_leeway, 30);
    ngx_conf_init_value(cmcf->refresh_ttl, 30 * 24 * 60 * 60);
    ngx_conf_init_value(cmcf->otp_ttl, 5 * 60);
    ngx_conf_init_uint_value(cmcf->otp_daily_limit, 10);
    ngx_conf_init_uint_value(cmcf->otp_ip_limit, 20);
    ngx_conf_init_uint_value(cmcf->otp_country_limit, 1000);
    ngx_conf_init_value(cmcf->otp_window, 60 * 60);
    ngx_conf_init_value(cmcf->otp_resend_delay, 30);
    ngx_conf_init_uint_value(cmcf->sms_provider, NGX_HTTP_CHAT_SMS_LOG);

    ngx_conf_init_uint_value(cmcf->push_queue, 1024);
    ngx_conf_init_uint_value(cmcf->push_retries, 3);
    ngx_conf_init_value(cmcf->push_mention_muted, 1);

    if (cmcf->push_apns_base_url.len == 0) {
        ngx_str_set(&cmcf->push_apns_base_url, "https://api.push.apple.com");
    }

    if (cmcf->push_apns_ca_file.len
        && ngx_conf_full_name(cf->cycle, &cmcf->push_apns_ca_file, 1)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (cmcf->push_fcm_base_url.len == 0) {
        ngx_str_set(&cmcf->push_fcm_base_url, "https://fcm.googleapis.com");
    }

    if (cmcf->twilio_base_url.len == 0) {
        ngx_str_set(&cmcf->twilio_base_url, "https://api.twilio.com");
    }

    if (cmcf->mongo_db.len == 0) {
        ngx_str_set(&cmcf->mongo_db, "chat");
    }

    if (cmcf->jwt_alg.len == 0) {
        ngx_str_set(&cmcf->jwt_alg, "HS256");
    }

    /* tokens always name who made them and for whom */
    if (cmcf->jwt_issuer.len == 0) {
        ngx_str_set(&cmcf->jwt_issuer, "ngx_chat_module");
    }

    if (cmcf->jwt_audience.len == 0) {
        ngx_str_set(&cmcf->jwt_audience, "chat");
    }

    if (!cmcf->enabled) {
        return NGX_CONF_OK;
    }

    if (cmcf->sms_provider == NGX_HTTP_CHAT_SMS_LOG) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"chat_sms_provider log\" writes one-time codes "
                           "to the error log: for development only");
    }

    if (cmcf->redis_host.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_redis\" is required when a location uses "
                           "the chat module");
        return NGX_CONF_ERROR;
    }

    if (cmcf->mongo_uri.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_mongo_uri\" is required when a location "
                           "uses the chat module");
        return NGX_CONF_ERROR;
    }

    if (cmcf->jwt_alg.data[0] == 'H') {
        if (cmcf->jwt_secret.len < 32) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"chat_jwt_secret\" of at least 32 bytes is "
                               "required for \"chat_jwt_algorithm %V\"",
                               &cmcf->jwt_alg);
            return NGX_CONF_ERROR;
        }

    } else if (cmcf->jwt_private_key.len == 0
               || cmcf->jwt_public_key.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_jwt_private_key\" and "
                           "\"chat_jwt_public_key\" are required for "
                           "\"chat_jwt_algorithm %V\"", &cmcf->jwt_alg);
        return NGX_CONF_ERROR;
    }

    if (cmcf->otp_ttl < 5 * 60 || cmcf->otp_ttl > 10 * 60) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_otp_ttl\" must be between 5m and 10m");
        return NGX_CONF_ERROR;
    }

    if (cmcf->jwt_ttl < 60 || cmcf->jwt_ttl > 24 * 60 * 60) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_jwt_ttl\" must be between 1m and 1d");
        return NGX_CONF_ERROR;
    }

    if (cmcf->sms_provider == NGX_HTTP_CHAT_SMS_TWILIO
        && (cmcf->twilio_account_sid.len == 0
            || cmcf->twilio_auth_token.len == 0
            || cmcf->twilio_from.len == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_sms_provider twilio\" requires "
                           "\"chat_twilio_account_sid\", "
                           "\"chat_twilio_auth_token\" and "
                           "\"chat_twilio_from\"");
        return NGX_CONF_ERROR;
    }

    if (cmcf->twilio_whatsapp_content_sid.len
        && cmcf->twilio_whatsapp_from.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_twilio_whatsapp_content_sid\" requires "
                           "\"chat_twilio_whatsapp_from\"");
        return NGX_CONF_ERROR;
    }

    /* a key that cannot sign or verify fails here, not on every request */
    if (ngx_http_chat_jwt_check_keys(cf, cmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /*
     * The OTP hash key: its own secret, or one derived from the JWT key
     * material, so that every worker and instance agrees on it.
     */
    if (cmcf->otp_secret.len == 0) {
        if (ngx_http_chat_derive_otp_secret(cf, cmcf) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

    } else if (cmcf->otp_secret.len < 32) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_otp_secret\" must be at least 32 bytes");
        return NGX_CONF_ERROR;
    }

    /*
     * The module's own pool, "chat", not NGINX's "default" that "aio
     * threads" shares: declared here unless a thread_pool directive did;
     * any other name must be defined, which ngx_thread_pool checks.
     */
    if (cmcf->thread_pool_name.len == 0) {
        ngx_str_set(&cmcf->thread_pool_name, "chat");

        if (ngx_thread_pool_get(cf->cycle, &cmcf->thread_pool_name) == NULL
            && ngx_http_chat_declare_thread_pool(cf, &cmcf->thread_pool_name)
               != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    cmcf->thread_pool = ngx_thread_pool_add(cf, &cmcf->thread_pool_name);
    if (cmcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * As if "thread_pool chat threads=32 max_queue=65536;" was written before
 * http{}: ngx_thread_pool_module's own directive handler declares it.  A
 * thread_pool directive for the same name after http{} is then a
 * duplicate: size the pool before http{}.
 */

static ngx_int_t
ngx_http_chat_declare_thread_pool(ngx_conf_t *cf, ngx_str_t *name)
{
    char           *rv;
    void           *conf;
    ngx_str_t      *value;
    ngx_conf_t      pcf;
    ngx_array_t     args;
    ngx_command_t  *cmd;

    for (cmd = ngx_thread_pool_module.commands; cmd->name.len; cmd++) {
        if (ngx_strcmp(cmd->name.data, "thread_pool") == 0) {
            break;
        }
    }

    if (cmd->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "chat: no \"thread_pool\" directive in this "
                           "NGINX");
        return NGX_ERROR;
    }

    if (ngx_array_init(&args, cf->temp_pool, 4, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    value = ngx_array_push_n(&args, 4);
    if (value == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&value[0], "thread_pool");
    value[1] = *name;
    ngx_str_set(&value[2], "threads=" NGX_HTTP_CHAT_THREADS);
    ngx_str_set(&value[3], "max_queue=65536");

    pcf = *cf;
    pcf.args = &args;

    conf = ((void **) cf->cycle->conf_ctx)[ngx_thread_pool_module.index];

    rv = cmd->set(&pcf, cmd, conf);

    if (rv != NGX_CONF_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "chat: cannot declare thread pool \"%V\": %s",
                           name, rv == NGX_CONF_ERROR ? "error" : rv);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_derive_otp_secret(ngx_conf_t *cf,
    ngx_http_chat_main_conf_t *cmcf)
{
    u_char        *key;
    size_t         keylen;
    unsigned int   len;

    if (cmcf->jwt_alg.data[0] == 'H') {
        key = cmcf->jwt_secret.data;
        keylen = cmcf->jwt_secret.len;

    } else {
        key = cmcf->jwt_private_key.data;
        keylen = cmcf->jwt_private_key.len;
    }

    cmcf->otp_secret.data = ngx_pnalloc(cf->pool, EVP_MAX_MD_SIZE);
    if (cmcf->otp_secret.data == NULL) {
        return NGX_ERROR;
    }

    if (HMAC(EVP_sha256(), key, (int) keylen, (u_char *) "chat otp",
             sizeof("chat otp") - 1, cmcf->otp_secret.data, &len)
        == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "HMAC() failed");
        return NGX_ERROR;
    }

    cmcf->otp_secret.len = len;

    return NGX_OK;
}


static void *
ngx_http_chat_create_loc_conf(ngx_conf_t *cf)
{
    ngx_uint_t                 i;
    ngx_http_chat_loc_conf_t  *clcf;

    clcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_chat_loc_conf_t));
    if (clcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     clcf->handler = NGX_HTTP_CHAT_HANDLER_NONE;
     */

    clcf->max_body_size = NGX_CONF_UNSET_SIZE;
    clcf->cors_origins = NGX_CONF_UNSET_PTR;
    clcf->security_headers = NGX_CONF_UNSET;
    clcf->hsts_max_age = NGX_CONF_UNSET;
    clcf->ws.max_message = NGX_CONF_UNSET_SIZE;
    clcf->ws.max_queue = NGX_CONF_UNSET_SIZE;
    clcf->ws.ping_interval = NGX_CONF_UNSET_MSEC;
    clcf->ws.pong_timeout = NGX_CONF_UNSET_MSEC;
    clcf->ws.auth_timeout = NGX_CONF_UNSET_MSEC;
    clcf->ws.unauth_per_addr = NGX_CONF_UNSET_UINT;
    clcf->ws.conn_per_addr = NGX_CONF_UNSET_UINT;
    clcf->ws.deflate = NGX_CONF_UNSET;
    clcf->ws.deflate_takeover = NGX_CONF_UNSET;
    clcf->ws.protocols = NGX_CONF_UNSET_PTR;
    clcf->ws.event_rate.rate = NGX_CONF_UNSET_UINT;
    clcf->ws.send_rate.rate = NGX_CONF_UNSET_UINT;

    for (i = 0; i < NGX_HTTP_CHAT_REST_NGROUPS; i++) {
        clcf->rest_rate[i].rate = NGX_CONF_UNSET_UINT;
    }

    clcf->sio_max_unauth = NGX_CONF_UNSET;
    clcf->sio_max_unauth_addr = NGX_CONF_UNSET;
    clcf->sio_upgrade_any_addr = NGX_CONF_UNSET;

    return clcf;
}


static char *
ngx_http_chat_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_chat_loc_conf_t *prev = parent;
    ngx_http_chat_loc_conf_t *conf = child;

    ngx_uint_t  i;

    /* an address book of 5,000 numbers is about 100 KB of JSON */
    ngx_conf_merge_size_value(conf->max_body_size, prev->max_body_size,
                              512 * 1024);
    ngx_conf_merge_ptr_value(conf->cors_origins, prev->cors_origins, NULL);
    ngx_conf_merge_value(conf->security_headers, prev->security_headers, 1);
    ngx_conf_merge_value(conf->hsts_max_age, prev->hsts_max_age,
                         180 * 24 * 60 * 60);

    /* a text message is at most 4096 characters: 64k is ample */
    ngx_conf_merge_size_value(conf->ws.max_message, prev->ws.max_message,
                              64 * 1024);
    ngx_conf_merge_size_value(conf->ws.max_queue, prev->ws.max_queue,
                              1024 * 1024);
    ngx_conf_merge_msec_value(conf->ws.ping_interval, prev->ws.ping_interval,
                              30000);
    ngx_conf_merge_msec_value(conf->ws.pong_timeout, prev->ws.pong_timeout,
                              10000);
    ngx_conf_merge_msec_value(conf->ws.auth_timeout, prev->ws.auth_timeout,
                              10000);
    ngx_conf_merge_value(conf->ws.deflate, prev->ws.deflate, 0);
    ngx_conf_merge_value(conf->ws.deflate_takeover,
                         prev->ws.deflate_takeover, 0);
    ngx_conf_merge_ptr_value(conf->ws.protocols, prev->ws.protocols, NULL);

    /*
     * Far above a real client's pace (typing is sent at most once a
     * second, markers and sync pages come in short runs): 30r/s with 120
     * at once for every event, 360 refusals in 10 s close the socket;
     * 5r/s with 50 at once (an album, a forward) for a user's sends.
     */
    if (conf->ws.event_rate.rate == NGX_CONF_UNSET_UINT) {
        if (prev->ws.event_rate.rate == NGX_CONF_UNSET_UINT) {
            conf->ws.event_rate.rate = 30000;
            conf->ws.event_rate.burst = 120;
            conf->ws.event_rate.close = 360;

        } else {
            conf->ws.event_rate = prev->ws.event_rate;
        }
    }

    if (conf->ws.send_rate.rate == NGX_CONF_UNSET_UINT) {
        if (prev->ws.send_rate.rate == NGX_CONF_UNSET_UINT) {
            conf->ws.send_rate.rate = 5000;
            conf->ws.send_rate.burst = 50;

        } else {
            conf->ws.send_rate = prev->ws.send_rate;
        }
    }

    /*
     * sockets of one address (0: no limit): far more than one person
     * opens, and room for an office or a carrier's NAT signed in
     */
    ngx_conf_merge_uint_value(conf->ws.unauth_per_addr,
                              prev->ws.unauth_per_addr, 32);
    ngx_conf_merge_uint_value(conf->ws.conn_per_addr,
                              prev->ws.conn_per_addr, 256);

    /* REST route groups: core/ngx_http_chat_rest_rate.c has defaults */
    for (i = 0; i < NGX_HTTP_CHAT_REST_NGROUPS; i++) {
        if (conf->rest_rate[i].rate != NGX_CONF_UNSET_UINT) {
            continue;
        }

        if (prev->rest_rate[i].rate != NGX_CONF_UNSET_UINT) {
            conf->rest_rate[i] = prev->rest_rate[i];

        } else {
            ngx_http_chat_rest_rate_default(i, &conf->rest_rate[i]);
        }
    }

    /* 0: no bound */
    ngx_conf_merge_value(conf->sio_max_unauth, prev->sio_max_unauth, 10000);
    ngx_conf_merge_value(conf->sio_max_unauth_addr, prev->sio_max_unauth_addr,
                         100);
    ngx_conf_merge_value(conf->sio_upgrade_any_addr,
                         prev->sio_upgrade_any_addr, 0);

    if (conf->ws.ping_interval == 0 || conf->ws.pong_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_ws_ping_interval\" and "
                           "\"chat_ws_pong_timeout\" must be positive");
        return NGX_CONF_ERROR;
    }

    if (conf->ws.max_message == 0 || conf->ws.max_queue == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_ws_max_message_size\" and "
                           "\"chat_ws_max_queue\" must be positive");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_chat_set_handler(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_loc_conf_t *clcf = conf;

    ngx_http_core_loc_conf_t   *hlcf;
    ngx_http_chat_main_conf_t  *cmcf;

    if (clcf->handler != NGX_HTTP_CHAT_HANDLER_NONE) {
        return "conflicts with another chat handler in this location";
    }

    clcf->handler = (ngx_http_chat_handler_e) cmd->offset;

    hlcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    switch (clcf->handler) {

    case NGX_HTTP_CHAT_HANDLER_API:
        hlcf->handler = ngx_http_chat_api_handler;
        break;

    case NGX_HTTP_CHAT_HANDLER_HEALTHZ:
        hlcf->handler = ngx_http_chat_healthz_handler;
        break;

    case NGX_HTTP_CHAT_HANDLER_WS:
        hlcf->handler = ngx_http_chat_ws_handler;
        clcf->ws.app = &ngx_http_chat_rt_app;
        cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_chat_module);
        cmcf->realtime = 1;
        break;

    case NGX_HTTP_CHAT_HANDLER_SOCKETIO:
        hlcf->handler = ngx_http_chat_sio_handler;
        clcf->ws.app = &ngx_http_chat_sio_app;
        cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_chat_module);
        cmcf->realtime = 1;
        break;

    case NGX_HTTP_CHAT_HANDLER_WS_ECHO:
        hlcf->handler = ngx_http_chat_ws_handler;
        clcf->ws.app = &ngx_http_chat_ws_echo_app;
        return NGX_CONF_OK;

    case NGX_HTTP_CHAT_HANDLER_READYZ:
        hlcf->handler = ngx_http_chat_readyz_handler;
        break;

    case NGX_HTTP_CHAT_HANDLER_METRICS:
        hlcf->handler = ngx_http_chat_metrics_handler;
        break;

    case NGX_HTTP_CHAT_HANDLER_STATS:
        hlcf->handler = ngx_http_chat_stats_handler;
        break;

    default:
        return "has an unknown handler";
    }

    /* only routes that reach the back ends need them configured */
    if (clcf->handler != NGX_HTTP_CHAT_HANDLER_HEALTHZ) {
        cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_chat_module);
        cmcf->enabled = 1;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_chat_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_main_conf_t *cmcf = conf;

    ngx_str_t  *value;

    if (cmcf->redis_host.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_http_chat_redis_addr(cf, cmd, &value[1], &cmcf->redis_host,
                                    &cmcf->redis_port);
}


/* chat_redis_shards host:port ...: the servers of the sharded channels */

static char *
ngx_http_chat_redis_shards(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_main_conf_t *cmcf = conf;

    char                        *rv;
    ngx_str_t                   *value;
    ngx_uint_t                   i, j;
    ngx_http_chat_redis_addr_t  *a, *addrs;

    if (cmcf->redis_shards) {
        return "is duplicate";
    }

    if (cf->args->nelts - 1 > NGX_HTTP_CHAT_REDIS_SHARDS_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "at most %d servers in \"%V\"",
                           NGX_HTTP_CHAT_REDIS_SHARDS_MAX, &cmd->name);
        return NGX_CONF_ERROR;
    }

    cmcf->redis_shards = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                          sizeof(ngx_http_chat_redis_addr_t));
    if (cmcf->redis_shards == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        a = ngx_array_push(cmcf->redis_shards);
        if (a == NULL) {
            return NGX_CONF_ERROR;
        }

        rv = ngx_http_chat_redis_addr(cf, cmd, &value[i], &a->host, &a->port);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        a->name = value[i];

        addrs = cmcf->redis_shards->elts;

        for (j = 0; j + 1 < cmcf->redis_shards->nelts; j++) {
            if (addrs[j].name.len == a->name.len
                && ngx_strncmp(addrs[j].name.data, a->name.data,
                               a->name.len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" is twice in \"%V\"",
                                   &a->name, &cmd->name);
                return NGX_CONF_ERROR;
            }
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_chat_redis_addr(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *addr,
    ngx_str_t *host, in_port_t *port)
{
    ngx_url_t  u;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *addr;
    u.default_port = 6379;

    /*
     * Resolved here, once: hiredis would resolve a name with a blocking
     * getaddrinfo() in the worker at every reconnect.
     */
    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in \"%V\": %s",
                           addr, &cmd->name,
                           u.err ? u.err : "cannot parse");
        return NGX_CONF_ERROR;
    }

    if (u.host.len == 0 || u.uri.len || u.family == AF_UNIX
        || u.naddrs == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in \"%V\": "
                           "expected host:port", addr, &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* hiredis wants a NUL-terminated numeric host */
    host->data = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (host->data == NULL) {
        return NGX_CONF_ERROR;
    }

    host->len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                              host->data, NGX_SOCKADDR_STRLEN, 0);
    host->data[host->len] = '\0';
    *port = u.port;

    return NGX_CONF_OK;
}


static char *
ngx_http_chat_mongo_uri(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_main_conf_t *cmcf = conf;

    ngx_str_t  *value;
    u_char      err[NGX_MAX_ERROR_STR];

    if (cmcf->mongo_uri.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_chat_mongo_check_uri(&value[1], err, sizeof(err))
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URI in \"%V\": %s", &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    cmcf->mongo_uri = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_chat_jwt_algorithm(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    static const char  *ngx_http_chat_jwt_algs[] = {
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
        "ES256", "ES384", "ES512", NULL
    };

    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 0; ngx_http_chat_jwt_algs[i]; i++) {
        if (value[1].len == 5
            && ngx_strncmp(value[1].data, ngx_http_chat_jwt_algs[i], 5)
               == 0)
        {
            return ngx_conf_set_str_slot(cf, cmd, conf);
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\": expected one of "
                       "HS256, HS384, HS512, RS256, RS384, RS512, ES256, "
                       "ES384, ES512", &value[1], &cmd->name);

    return NGX_CONF_ERROR;
}


/* "count window": a rate limit, 1-1000000 actions per 1s-1d */

static char *
ngx_http_chat_set_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char  *p = conf;

    time_t                 window;
    ngx_int_t              count;
    ngx_str_t             *value;
    ngx_http_chat_rate_t  *rate;

    rate = (ngx_http_chat_rate_t *) (p + cmd->offset);

    if (rate->count != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    count = ngx_atoi(value[1].data, value[1].len);
    if (count == NGX_ERROR || count < 1 || count > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" count \"%V\" must be 1-1000000",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    window = ngx_parse_time(&value[2], 1);
    if (window == (time_t) NGX_ERROR || window < 1 || window > 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" window \"%V\" must be 1s-1d",
                           &cmd->name, &value[2]);
        return NGX_CONF_ERROR;
    }

    rate->count = count;
    rate->window = window;

    return NGX_CONF_OK;
}


static void
ngx_http_chat_init_rate(ngx_http_chat_rate_t *rate, ngx_int_t count,
    time_t window)
{
    if (rate->count == NGX_CONF_UNSET) {
        rate->count = count;
        rate->window = window;
    }
}


/* reads a PEM key file at configuration time, so workers never touch disk */

static char *
ngx_http_chat_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char  *p = conf;

    ngx_str_t  *key, *value;

    key = (ngx_str_t *) (p + cmd->offset);

    if (key->data) {
        return "is duplicate";
    }

    if (ngx_http_chat_conf_read_file(cf, cmd, 64 * 1024, key) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_strstr(key->data, "-----BEGIN ") == NULL) {
        value = cf->args->elts;
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" key file \"%V\" is not a PEM file",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* chat_avatar_url_host cdn.example.com; (repeated: one host each) */

static char *
ngx_http_chat_avatar_url_host(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_chat_main_conf_t *cmcf = conf;

    u_char     *p;
    ngx_str_t  *value, *host;

    value = cf->args->elts;

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '.' || *p == '-' || *p == ':'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid host \"%V\" in \"%V\": expected "
                               "a lowercase host name, no scheme or path",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    if (value[1].len == 0) {
        return "takes a host name";
    }

    if (cmcf->avatar_hosts == NULL) {
        cmcf->avatar_hosts = ngx_array_create(cf->pool, 2,
                                              sizeof(ngx_str_t));
        if (cmcf->avatar_hosts == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    host = ngx_array_push(cmcf->avatar_hosts);
    if (host == NULL) {
        return NGX_CONF_ERROR;
    }

    *host = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_chat_ready_check(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_main_conf_t *cmcf = conf;

    ngx_str_t  *value, *url;

    value = cf->args->elts;

    if (ngx_strncasecmp(value[1].data, (u_char *) "http://", 7) != 0
        && ngx_strncasecmp(value[1].data, (u_char *) "https://", 8) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\" in \"%V\": expected http:// "
                           "or https://", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (cmcf->ready_checks == NULL) {
        cmcf->ready_checks = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (cmcf->ready_checks == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    url = ngx_array_push(cmcf->ready_checks);
    if (url == NULL) {
        return NGX_CONF_ERROR;
    }

    /* libcurl wants a NUL-terminated URL; config strings are */
    *url = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_chat_cors_origin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_loc_conf_t *clcf = conf;

    ngx_str_t  *value, *origin;

    value = cf->args->elts;

    if (!(value[1].len == 1 && value[1].data[0] == '*')
        && ngx_strncasecmp(value[1].data, (u_char *) "http://", 7) != 0
        && ngx_strncasecmp(value[1].data, (u_char *) "https://", 8) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid origin \"%V\" in \"%V\": expected \"*\" "
                           "or scheme://host[:port]", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (clcf->cors_origins == NGX_CONF_UNSET_PTR) {
        clcf->cors_origins = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (clcf->cors_origins == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    origin = ngx_array_push(clcf->cors_origins);
    if (origin == NULL) {
        return NGX_CONF_ERROR;
    }

    *origin = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_chat_check_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    ngx_int_t              *np = data;

    ngx_str_t  *value;

    if (*np >= bounds->low && *np <= bounds->high) {
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\": must be between "
                       "%i and %i", &value[1], &value[0], bounds->low,
                       bounds->high);

    return NGX_CONF_ERROR;
}


/* like ngx_conf_set_enum_slot(), but the message names the directive */

/* "HX" or "MG" and 32 hex digits: Twilio's content and service SIDs */

static ngx_int_t
ngx_http_chat_is_sid(ngx_str_t *v, const char *prefix)
{
    size_t  i;
    u_char  c;

    if (v->len != 34 || ngx_strncmp(v->data, prefix, 2) != 0) {
        return 0;
    }

    for (i = 2; i < v->len; i++) {
        c = (u_char) (v->data[i] | 0x20);

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


/*
 * The WhatsApp sender: an E.164 number that Twilio enabled for WhatsApp
 * (sent as "whatsapp:+..."), or a Messaging Service SID whose sender pool
 * holds one.  A typo here would only show as refused sends at run time.
 */

static char *
ngx_http_chat_check_whatsapp_from(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *v = data;

    size_t  i;

    if (ngx_http_chat_is_sid(v, "MG")) {
        return NGX_CONF_OK;
    }

    if (v->len < 3 || v->len > 16 || v->data[0] != '+'
        || v->data[1] == '0')
    {
        goto invalid;
    }

    for (i = 1; i < v->len; i++) {
        if (v->data[i] < '0' || v->data[i] > '9') {
            goto invalid;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"chat_twilio_whatsapp_from\" must be an E.164 "
                       "number (\"+14155550100\", without \"whatsapp:\") "
                       "or a Messaging Service SID (\"MG\" and 32 hex "
                       "digits), not \"%V\"", v);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_chat_check_content_sid(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *v = data;

    if (ngx_http_chat_is_sid(v, "HX")) {
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"chat_twilio_whatsapp_content_sid\" must be a "
                       "Content Template SID (\"HX\" and 32 hex digits), "
                       "not \"%V\"", v);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_chat_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t        *value;
    ngx_uint_t        i;
    ngx_conf_enum_t  *e;

    value = cf->args->elts;
    e = cmd->post;

    for (i = 0; e[i].name.len; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcasecmp(e[i].name.data, value[1].data) == 0)
        {
            return ngx_conf_set_enum_slot(cf, cmd, conf);
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\": expected \"%V\" "
                       "or \"%V\"", &value[1], &cmd->name, &e[0].name,
                       &e[1].name);

    return NGX_CONF_ERROR;
}


/* a number, or "off" for 0 (a limit that is off) */
static char *
ngx_http_chat_num_off(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t  *np;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *np = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\": a number "
                           "or \"off\"", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    *np = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_chat_init_process(ngx_cycle_t *cycle)
{
    ngx_http_chat_shared_t     *shared;
    ngx_http_chat_main_conf_t  *cmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chat_module);
    if (cmcf == NULL || !cmcf->enabled) {
        return NGX_OK;
    }

    if (ngx_http_chat_threads_init_process(cycle, cmcf->thread_pool)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    shared = cmcf->shm->data;
    ngx_http_chat_send_cache_share(&shared->send_generation);
    ngx_http_chat_metrics_attach(shared->metrics, cycle->log);
    ngx_http_chat_rt_conn_attach(cmcf->shm, shared->conns);

    if (ngx_http_chat_mongo_init_process(cycle, cmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_chat_search_conf(cmcf->search_scan, cmcf->search_text_index);

    /* idempotent; every worker asks, the first one does the work */
    ngx_http_chat_users_ensure_indexes();

    /* libphonenumber parses its metadata once, not on a first request */
    ngx_http_chat_phone_init();

    if (ngx_http_chat_curl_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_chat_redis_main = ngx_http_chat_redis_create(cycle,
                                   &cmcf->redis_host, cmcf->redis_port,
                                   cmcf->redis_connect_timeout,
                                   cmcf->redis_backoff_max);
    if (ngx_http_chat_redis_main == NULL) {
        return NGX_ERROR;
    }

    ngx_http_chat_redis_set_limits(ngx_http_chat_redis_main,
                                   cmcf->redis_command_timeout,
                                   cmcf->redis_output_buffer);

    if (ngx_http_chat_redis_shards_init_process(cycle, cmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_chat_push_init_process(cycle, cmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_chat_op_push_init(cmcf);
    ngx_http_chat_trim_init_process(cycle, cmcf->memory_trim);

    if (ngx_http_chat_op_story_sweep_init(cycle, cmcf) != NGX_OK
        || ngx_http_chat_rt_init_process(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_chat_rt_presence_init_process(cycle);
}


static void
ngx_http_chat_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chat_module);
    if (cmcf == NULL || !cmcf->enabled) {
        return;
    }

    /* from here on, what fails as Redis and MongoDB go starts nothing */
    ngx_http_chat_ops_exited = 1;

    ngx_http_chat_trim_exit_process();
    ngx_http_chat_rt_presence_exit_process(cycle);
    ngx_http_chat_rt_exit_process(cycle);

    ngx_http_chat_redis_shards_exit_process();

    if (ngx_http_chat_redis_main) {
        ngx_http_chat_redis_destroy(ngx_http_chat_redis_main);
        ngx_http_chat_redis_main = NULL;
    }

    ngx_http_chat_sms_exit_process();
    ngx_http_chat_push_exit_process();
    ngx_http_chat_curl_exit_process(cycle);
    ngx_http_chat_mongo_exit_process(cycle);
    ngx_http_chat_threads_exit_process(cycle);
    ngx_http_chat_ops_exit_process();
    ngx_http_chat_session_op_exit_process();
    ngx_http_chat_metrics_detach();
    ngx_http_chat_rt_conn_detach();
    ngx_http_chat_op_call_exit_process();
}


static char *
ngx_http_chat_ws_protocols(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_loc_conf_t *clcf = conf;

    ngx_str_t   *value, *s;
    ngx_uint_t   i;

    if (clcf->ws.protocols != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    clcf->ws.protocols = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                          sizeof(ngx_str_t));
    if (clcf->ws.protocols == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        s = ngx_array_push(clcf->ws.protocols);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * chat_ws_event_rate off | RATE [burst=N] [close=N];
 * chat_ws_send_rate off | RATE [burst=N];
 * RATE as limit_req's: Nr/s or Nr/m
 */
static char *
ngx_http_chat_ws_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t                *value;
    ngx_http_chat_ws_rate_t  *rate;

    rate = (ngx_http_chat_ws_rate_t *) (p + cmd->offset);

    if (rate->rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_http_chat_rate_parse(cf, &value[1], cf->args->nelts - 1, rate,
                                    cmd->offset
                                    == offsetof(ngx_http_chat_loc_conf_t,
                                                ws.event_rate));
}


/*
 * chat_rest_rate GROUP off | RATE [burst=N];
 * GROUP: auth read write send search group upload address
 */
static char *
ngx_http_chat_rest_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_loc_conf_t *clcf = conf;

    const char               *name;
    ngx_str_t                *value;
    ngx_uint_t                i;
    ngx_http_chat_ws_rate_t  *rate;

    value = cf->args->elts;

    for (i = 0; (name = ngx_http_chat_rest_group_name(i)); i++) {
        if (ngx_strlen(name) == value[1].len
            && ngx_strncmp(name, value[1].data, value[1].len) == 0)
        {
            break;
        }
    }

    if (name == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown route group \"%V\" (auth, read, write, "
                           "send, search, group, upload, address)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    rate = &clcf->rest_rate[i];

    if (rate->rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    return ngx_http_chat_rate_parse(cf, &value[2], cf->args->nelts - 2, rate,
                                    0);
}


/* RATE as limit_req's: Nr/s or Nr/m; value[0..n-1]: off or the rate... */
static char *
ngx_http_chat_rate_parse(ngx_conf_t *cf, ngx_str_t *value, ngx_uint_t n,
    ngx_http_chat_ws_rate_t *rate, ngx_uint_t with_close)
{
    u_char      *last;
    size_t       len;
    ngx_int_t    num, scale;
    ngx_uint_t   i;

    if (ngx_strcmp(value[0].data, "off") == 0) {
        if (n > 1) {
            return "takes nothing after \"off\"";
        }

        rate->rate = 0;
        rate->burst = 0;
        rate->close = 0;
        return NGX_CONF_OK;
    }

    len = value[0].len;
    last = value[0].data + len;
    scale = 1;

    if (len > 3 && ngx_strncmp(last - 3, "r/s", 3) == 0) {
        len -= 3;

    } else if (len > 3 && ngx_strncmp(last - 3, "r/m", 3) == 0) {
        len -= 3;
        scale = 60;

    } else {
        return "has an invalid rate (Nr/s or Nr/m)";
    }

    num = ngx_atoi(value[0].data, len);
    if (num <= 0) {
        return "has an invalid rate (Nr/s or Nr/m)";
    }

    rate->rate = (ngx_uint_t) num * 1000 / scale;
    if (rate->rate == 0) {
        rate->rate = 1;
    }

    /* by default, one second's worth at once, at least one */
    rate->burst = rate->rate >= 1000 ? rate->rate / 1000 : 1;
    rate->close = with_close ? 3 * rate->burst : 0;

    for (i = 1; i < n; i++) {

        if (ngx_strncmp(value[i].data, "burst=", 6) == 0) {
            num = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (num <= 0) {
                return "has an invalid \"burst=\"";
            }

            rate->burst = num;
            continue;
        }

        if (ngx_strncmp(value[i].data, "close=", 6) == 0 && with_close) {
            num = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (num < 0) {
                return "has an invalid \"close=\"";
            }

            rate->close = num;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * chat_send_rate off | RATE [burst=N];
 * RATE as limit_req's: Nr/s or Nr/m; a user's sends, all of them
 */
static char *
ngx_http_chat_send_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    char                    *rv;
    ngx_http_chat_budget_t  *budget;
    ngx_http_chat_ws_rate_t  rate;

    budget = (ngx_http_chat_budget_t *) (p + cmd->offset);

    if (budget->rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    rv = ngx_http_chat_rate_parse(cf, (ngx_str_t *) cf->args->elts + 1,
                                  cf->args->nelts - 1, &rate, 0);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    budget->rate = rate.rate;
    budget->burst = rate.burst;

    return NGX_CONF_OK;
}
