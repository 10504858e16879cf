/*
 * Copyright (C) ngx_chat_module authors
 *
 * The Redis shards of the channels (ngx_http_chat_redis_shards.h).
 */


#include "ngx_http_chat_redis_shards.h"


static ngx_http_chat_main_conf_t  *ngx_http_chat_shards_conf;
static ngx_uint_t                  ngx_http_chat_shards_n;
static uint32_t                    ngx_http_chat_shards_seed[
                                       NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1];
static ngx_http_chat_redis_t      *ngx_http_chat_shards_pub[
                                       NGX_HTTP_CHAT_REDIS_SHARDS_MAX + 1];


ngx_int_t
ngx_http_chat_redis_shards_init_process(ngx_cycle_t *cycle,
    ngx_http_chat_main_conf_t *cmcf)
{
    ngx_uint_t                   i;
    ngx_http_chat_redis_addr_t  *a;

    ngx_http_chat_shards_conf = cmcf;
    ngx_http_chat_shards_n = 0;

    if (cmcf->redis_shards == NULL) {
        return NGX_OK;
    }

    a = cmcf->redis_shards->elts;

    for (i = 0; i < cmcf->redis_shards->nelts; i++) {
        ngx_http_chat_shards_seed[i + 1] =
            ngx_murmur_hash2(a[i].name.data, a[i].name.len);

        ngx_http_chat_shards_pub[i + 1] =
            ngx_http_chat_redis_shard_connect(cycle, i + 1);

        if (ngx_http_chat_shards_pub[i + 1] == NULL) {
            return NGX_ERROR;
        }

        ngx_http_chat_redis_set_limits(ngx_http_chat_shards_pub[i + 1],
                                       cmcf->redis_command_timeout,
                                       cmcf->redis_output_buffer);
        ngx_http_chat_shards_n = i + 1;
    }

    return NGX_OK;
}


void
ngx_http_chat_redis_shards_exit_process(void)
{
    ngx_uint_t  i;

    for (i = 1; i <= ngx_http_chat_shards_n; i++) {
        ngx_http_chat_redis_destroy(ngx_http_chat_shards_pub[i]);
        ngx_http_chat_shards_pub[i] = NULL;
    }

    ngx_http_chat_shards_n = 0;
}


ngx_uint_t
ngx_http_chat_redis_shards_n(void)
{
    return ngx_http_chat_shards_n;
}


/*
 * Rendezvous hashing: the shard whose score for the id is the highest,
 * the score a non-linear mix (MurmurHash3's finalizer) of the id's hash
 * and the shard's
 */

ngx_uint_t
ngx_http_chat_redis_shard_of(u_char *id, size_t len)
{
    uint32_t    h, x, best;
    ngx_uint_t  i, shard;

    if (ngx_http_chat_shards_n == 0) {
        return 0;
    }

    h = ngx_murmur_hash2(id, len);
    best = 0;
    shard = 1;

    for (i = 1; i <= ngx_http_chat_shards_n; i++) {
        x = h ^ ngx_http_chat_shards_seed[i];
        x ^= x >> 16;
        x *= 0x85ebca6b;
        x ^= x >> 13;
        x *= 0xc2b2ae35;
        x ^= x >> 16;

        if (x > best) {
            best = x;
            shard = i;
        }
    }

    return shard;
}


ngx_http_chat_redis_t *
ngx_http_chat_redis_of(u_char *id, size_t len)
{
    return ngx_http_chat_redis_shard(ngx_http_chat_redis_shard_of(id, len));
}


ngx_http_chat_redis_t *
ngx_http_chat_redis_shard(ngx_uint_t i)
{
    if (i == 0 || i > ngx_http_chat_shards_n) {
        return ngx_http_chat_redis_main;
    }

    return ngx_http_chat_shards_pub[i];
}


ngx_http_chat_redis_t *
ngx_http_chat_redis_shard_connect(ngx_cycle_t *cycle, ngx_uint_t i)
{
    ngx_http_chat_main_conf_t   *cmcf;
    ngx_http_chat_redis_addr_t  *a;

    cmcf = ngx_http_chat_shards_conf;

    if (i == 0 || cmcf->redis_shards == NULL
        || i > cmcf->redis_shards->nelts)
    {
        return ngx_http_chat_redis_create(cycle, &cmcf->redis_host,
                                          cmcf->redis_port,
                                          cmcf->redis_connect_timeout,
                                          cmcf->redis_backoff_max);
    }

    a = cmcf->redis_shards->elts;

    return ngx_http_chat_redis_create(cycle, &a[i - 1].host, a[i - 1].port,
                                      cmcf->redis_connect_timeout,
                                      cmcf->redis_backoff_max);
}


ngx_http_chat_redis_t *
ngx_http_chat_redis_keyed(int argc, const char **argv, const size_t *argvlen)
{
    u_char     *k, *open, *close, *tag;
    size_t      len, tlen;
    ngx_int_t   nkeys;
    ngx_uint_t  i;

    if (ngx_http_chat_shards_n == 0 || argc < 4
        || !((argvlen[0] == 4
              && ngx_strncasecmp((u_char *) argv[0], (u_char *) "EVAL", 4)
                 == 0)
             || (argvlen[0] == 7
                 && ngx_strncasecmp((u_char *) argv[0],
                                    (u_char *) "EVALSHA", 7) == 0)))
    {
        return ngx_http_chat_redis_main;
    }

    nkeys = ngx_atoi((u_char *) argv[2], argvlen[2]);

    if (nkeys <= 0 || nkeys > argc - 3) {
        return ngx_http_chat_redis_main;
    }

    tag = NULL;
    tlen = 0;

    for (i = 0; i < (ngx_uint_t) nkeys; i++) {
        k = (u_char *) argv[3 + i];
        len = argvlen[3 + i];

        open = ngx_strlchr(k, k + len, '{');
        close = open ? ngx_strlchr(open + 1, k + len, '}') : NULL;

        if (close == NULL || close == open + 1) {
            return ngx_http_chat_redis_main;
        }

        if (tag == NULL) {
            tag = open + 1;
            tlen = close - tag;

        } else if ((size_t) (close - open - 1) != tlen
                   || ngx_strncmp(open + 1, tag, tlen) != 0)
        {
            return ngx_http_chat_redis_main;
        }
    }

    return ngx_http_chat_shards_pub[ngx_http_chat_redis_shard_of(tag, tlen)];
}
