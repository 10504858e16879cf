/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_CONF_H_INCLUDED_
#define _NGX_HTTP_CHAT_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * The module's main configuration: data only, on the lowest floor, so
 * that every folder reads its own settings (the thread pool and MongoDB
 * in store/, the SMS provider in services/).  ngx_http_chat_module.c
 * creates, fills and validates it.
 */

#define NGX_HTTP_CHAT_SMS_LOG     0
#define NGX_HTTP_CHAT_SMS_TWILIO  1


/* the longest X-Request-Id kept from a proxy in front */
#define NGX_HTTP_CHAT_REQUEST_ID_MAX  128


/*
 * What the workers of an instance share, in the module's shared memory
 * zone: words written with atomics, never locked, but for conns.
 */
typedef struct {
    ngx_atomic_t               send_generation;  /* who may send changed */
    void                      *metrics;  /* ngx_http_chat_metrics_zone_t */
    void                      *conns;    /* sockets per address, locked
                                            (realtime/_rt_conn.c) */
} ngx_http_chat_shared_t;


/* a rate limit: count actions per window seconds (NGX_CONF_UNSET: unset) */
typedef struct {
    ngx_int_t                  count;
    time_t                     window;
} ngx_http_chat_rate_t;


/* a token bucket kept in Redis (GCRA): chat_send_rate */
typedef struct {
    ngx_uint_t                 rate;    /* per 1000 s; 0 off */
    ngx_uint_t                 burst;   /* at once */
} ngx_http_chat_budget_t;


/* chat_redis_shards: at most so many servers */
#define NGX_HTTP_CHAT_REDIS_SHARDS_MAX  32


/* a Redis server of chat_redis_shards */
typedef struct {
    ngx_str_t                  host;    /* numeric, NUL-terminated */
    in_port_t                  port;
    ngx_str_t                  name;    /* as written: its hashing seed */
} ngx_http_chat_redis_addr_t;


typedef struct {
    ngx_str_t                  redis_host;
    in_port_t                  redis_port;
    ngx_array_t               *redis_shards;  /* ngx_http_chat_redis_addr_t */
    ngx_msec_t                 redis_connect_timeout;
    ngx_msec_t                 redis_backoff_max;
    ngx_msec_t                 redis_command_timeout;
    size_t                     redis_output_buffer;

    ngx_str_t                  mongo_uri;
    ngx_str_t                  mongo_db;
    ngx_uint_t                 mongo_pool_size;

    ngx_str_t                  thread_pool_name;
    ngx_thread_pool_t         *thread_pool;

    ngx_str_t                  jwt_alg;
    ngx_str_t                  jwt_secret;
    ngx_str_t                  jwt_private_key;
    ngx_str_t                  jwt_public_key;
    ngx_str_t                  jwt_issuer;
    ngx_str_t                  jwt_audience;
    time_t                     jwt_ttl;
    time_t                     jwt_leeway;
    time_t                     refresh_ttl;

    time_t                     otp_ttl;
    ngx_str_t                  otp_secret;      /* HMAC key of OTP hashes */
    ngx_uint_t                 otp_daily_limit; /* sends per number a day */
    ngx_uint_t                 otp_ip_limit;    /* sends per IP per window */
    ngx_uint_t                 otp_country_limit;
    time_t                     otp_window;
    time_t                     otp_resend_delay;

    ngx_uint_t                 sms_provider;    /* NGX_HTTP_CHAT_SMS_* */
    ngx_str_t                  twilio_base_url;
    ngx_str_t                  twilio_account_sid;
    ngx_str_t                  twilio_auth_token;
    ngx_str_t                  twilio_from;
    ngx_str_t                  twilio_whatsapp_from;   /* "": no WhatsApp */
    ngx_str_t                  twilio_whatsapp_content_sid;

    ngx_msec_t                 upstream_timeout;

    /* push: FCM's service account (its fields), base URL; the queue */
    ngx_str_t                  push_fcm_project;
    ngx_str_t                  push_fcm_email;
    ngx_str_t                  push_fcm_key;
    ngx_str_t                  push_fcm_token_uri;
    ngx_str_t                  push_fcm_base_url;
    /* push: APNs' provider key (PEM), its id, the team; URL, CA file */
    ngx_str_t                  push_apns_key;
    ngx_str_t                  push_apns_key_id;
    ngx_str_t                  push_apns_team_id;
    ngx_str_t                  push_apns_base_url;
    ngx_str_t                  push_apns_ca_file;
    ngx_uint_t                 push_queue;      /* a worker's pushes */
    ngx_uint_t                 push_retries;    /* after the first try */
    ngx_flag_t                 push_mention_muted; /* mentions pass mutes */

    ngx_uint_t                 group_max_size;  /* members, creator too */
    ngx_uint_t                 send_max_pending; /* a worker's, 0: any */
    ngx_msec_t                 send_max_wait;   /* the sends' time, 0: any */
    /* a user's sends across workers and instances (Redis) */
    ngx_http_chat_budget_t     send_budget;
    time_t                     edit_window;     /* a sender may edit */
    time_t                     delete_window;   /* deleted for everyone */
    time_t                     story_lifetime;  /* a story is seen so long */
    /* a user's story writes: so many per window seconds (Redis counters) */
    ngx_http_chat_rate_t       story_post_limit;
    ngx_http_chat_rate_t       story_react_limit;
    ngx_http_chat_rate_t       story_view_limit;
    ngx_msec_t                 story_sweep_interval; /* 0: no sweeper */
    ngx_msec_t                 call_ring_timeout; /* then it is missed */
    ngx_msec_t                 call_grace;      /* a device gone, then out */
    ngx_uint_t                 call_max_participants; /* the caller too */

    /* TURN REST API credentials (api/ngx_http_chat_turn.c) */
    ngx_str_t                  turn_secret;     /* coturn's auth secret */
    ngx_array_t               *turn_uris;       /* ngx_str_t turn:, turns: */
    ngx_array_t               *stun_uris;       /* ngx_str_t stun:, stuns: */
    time_t                     turn_ttl;        /* credentials live so long */
    ngx_http_chat_rate_t       turn_limit;      /* credentials per user */

    ngx_uint_t                 search_scan;     /* numbers a search reads */
    /* distinct numbers a user may look up a day (sync, add, search) */
    ngx_uint_t                 lookup_daily_numbers;
    ngx_http_chat_rate_t       user_view_limit; /* GET /api/users/:id */
    ngx_flag_t                 search_text_index; /* MongoDB's $text */

    /* the hosts of https avatar URLs a profile may name (ngx_str_t) */
    ngx_array_t               *avatar_hosts;

    /* readiness checks of external HTTP dependencies: ngx_str_t URLs */
    ngx_array_t               *ready_checks;

    /* a worker silent this long is dead: its users go offline */
    ngx_msec_t                 presence_ttl;
    /* every user online is visited once in this time (activeAt) */
    ngx_msec_t                 active_walk;
    ngx_msec_t                 memory_trim;

    ngx_flag_t                 enabled;  /* some location uses the module */

    /* what the workers of this instance share (ngx_http_chat_module.c) */
    ngx_shm_zone_t            *shm;
    /* the REST rate buckets (chat_rest_rate_zone) */
    ngx_shm_zone_t            *rest_rate_shm;
    size_t                     rest_rate_zone_size;
    ngx_flag_t                 realtime; /* some location has chat_ws */
} ngx_http_chat_main_conf_t;


#endif /* _NGX_HTTP_CHAT_CONF_H_INCLUDED_ */
