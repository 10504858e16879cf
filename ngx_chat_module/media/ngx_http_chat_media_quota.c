/*
 * Copyright (C) ngx_chat_module authors
 *
 * A user's upload bytes per UTC day, across workers and instances: a
 * counter in Redis, uq:<user>:<day>, that lives until the day is over.
 * An upload that would pass the quota is not counted, and is refused
 * until the next day.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_chat_media_int.h"


#define NGX_HTTP_CHAT_DAY  86400


/* 0: counted; else the seconds until the day is over (nothing counted) */
static const char  ngx_http_chat_media_quota_script[] =
    "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "if n == tonumber(ARGV[1]) then "
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]) + 3600) end "
    "if n > tonumber(ARGV[2]) then "
    "redis.call('DECRBY', KEYS[1], ARGV[1]) "
    "return tonumber(ARGV[3]) end "
    "return 0";

/* the same, counting nothing: a declared length checked before the body */
static const char  ngx_http_chat_media_quota_peek[] =
    "local n = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if n + tonumber(ARGV[1]) > tonumber(ARGV[2]) then "
    "return tonumber(ARGV[3]) end "
    "return 0";


static ngx_int_t ngx_http_chat_media_quota_eval(ngx_http_request_t *r,
    const char *script, off_t size, ngx_http_chat_redis_next_pt next);


ngx_int_t
ngx_http_chat_media_quota(ngx_http_request_t *r, off_t size,
    ngx_http_chat_redis_next_pt next)
{
    return ngx_http_chat_media_quota_eval(r, ngx_http_chat_media_quota_script,
                                          size, next);
}


ngx_int_t
ngx_http_chat_media_quota_check(ngx_http_request_t *r, off_t size,
    ngx_http_chat_redis_next_pt next)
{
    return ngx_http_chat_media_quota_eval(r, ngx_http_chat_media_quota_peek,
                                          size, next);
}


static ngx_int_t
ngx_http_chat_media_quota_eval(ngx_http_request_t *r, const char *script,
    off_t size, ngx_http_chat_redis_next_pt next)
{
    time_t                            now, left;
    ngx_str_t                         key, args[3];
    ngx_http_chat_ctx_t              *ctx;
    ngx_http_chat_media_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (mmcf->daily_bytes == 0 || ctx == NULL || ctx->user_id.len == 0) {
        return NGX_DECLINED;
    }

    /*
     * Without Redis the quota cannot be counted: uploads go on rather
     * than stop (the per-file limits still hold); the next upload with
     * Redis back counts again.
     */
    if (!ngx_http_chat_redis_is_connected(ngx_http_chat_redis_main)) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "chat: redis is not connected, "
                      "an upload is not counted");
        return NGX_DECLINED;
    }

    now = ngx_time();
    left = NGX_HTTP_CHAT_DAY - now % NGX_HTTP_CHAT_DAY;

    key.data = ngx_pnalloc(r->pool, sizeof("uq:{}:") + ctx->user_id.len
                                    + NGX_TIME_T_LEN);
    if (key.data == NULL
        || ngx_http_chat_str_num(r->pool, &args[0], size) != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[1], mmcf->daily_bytes)
           != NGX_OK
        || ngx_http_chat_str_num(r->pool, &args[2], left) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* tagged: on the user's Redis shard */
    key.len = ngx_sprintf(key.data, "uq:{%V}:%T", &ctx->user_id,
                          now / NGX_HTTP_CHAT_DAY)
              - key.data;

    return ngx_http_chat_redis_eval(r, script, 1, &key, 3, args, next);
}
