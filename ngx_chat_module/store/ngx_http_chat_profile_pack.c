/*
 * Copyright (C) ngx_chat_module authors
 *
 * A cached profile packed for Redis (ngx_http_chat_profile_pack.h).  One
 * deflate and one inflate stream per worker, reset for each value: a
 * small window (1 KB, the dictionary and a profile fit) and a small hash
 * keep the reset cheap, as a sign-in unpacks one and a cold one packs
 * one.
 */


#include <zlib.h>

#include "ngx_http_chat_profile_pack.h"


#define NGX_HTTP_CHAT_PROFILE_PACKED   0x01
#define NGX_HTTP_CHAT_PROFILE_WBITS    10
#define NGX_HTTP_CHAT_PROFILE_MEMLEVEL 2
#define NGX_HTTP_CHAT_PROFILE_MAX      4096


/*
 * What profiles repeat, the likeliest last (the nearest matches cost
 * least).  Part of the stored format: a change needs another first byte.
 */
static const u_char  ngx_http_chat_profile_dict[] =
    "\"username\":\"\",\"bio\":\"\",\"avatar\":\"https://\",\"name\":\""
    "nobody\",\"contacts\",\"everyone\",\"preview\":true}}}"
    "{\"user\":{\"id\":\"\",\"phone\":\"+1\",\"createdAt\":\"20\","
    "\"updatedAt\":\"20T00:00:00.000Z\",\"privacy\":{\"lastSeen\":"
    "\"everyone\",\"online\":\"everyone\",\"profilePhoto\":\"everyone\","
    "\"about\":\"everyone\",\"readReceipts\":\"everyone\",\"groups\":"
    "\"everyone\",\"phone\":\"contacts\",\"searchable\":true},"
    "\"notifications\":{\"preview\":false}}}";


static z_stream    ngx_http_chat_profile_dz;
static z_stream    ngx_http_chat_profile_iz;
static ngx_uint_t  ngx_http_chat_profile_dz_ready;
static ngx_uint_t  ngx_http_chat_profile_iz_ready;
static u_char      ngx_http_chat_profile_buf[NGX_HTTP_CHAT_PROFILE_MAX + 64];


ngx_int_t
ngx_http_chat_profile_pack(ngx_str_t *json, ngx_str_t *out)
{
    int        rc;
    z_stream  *zs;

    if (json->len == 0 || json->len > NGX_HTTP_CHAT_PROFILE_MAX) {
        return NGX_DECLINED;
    }

    zs = &ngx_http_chat_profile_dz;

    if (!ngx_http_chat_profile_dz_ready) {
        if (deflateInit2(zs, Z_BEST_COMPRESSION, Z_DEFLATED,
                         -NGX_HTTP_CHAT_PROFILE_WBITS,
                         NGX_HTTP_CHAT_PROFILE_MEMLEVEL, Z_DEFAULT_STRATEGY)
            != Z_OK)
        {
            return NGX_DECLINED;
        }

        ngx_http_chat_profile_dz_ready = 1;

    } else if (deflateReset(zs) != Z_OK) {
        return NGX_DECLINED;
    }

    if (deflateSetDictionary(zs, ngx_http_chat_profile_dict,
                             sizeof(ngx_http_chat_profile_dict) - 1)
        != Z_OK)
    {
        return NGX_DECLINED;
    }

    ngx_http_chat_profile_buf[0] = NGX_HTTP_CHAT_PROFILE_PACKED;

    zs->next_in = json->data;
    zs->avail_in = json->len;
    zs->next_out = ngx_http_chat_profile_buf + 1;
    zs->avail_out = sizeof(ngx_http_chat_profile_buf) - 1;

    rc = deflate(zs, Z_FINISH);

    if (rc != Z_STREAM_END) {
        return NGX_DECLINED;
    }

    out->data = ngx_http_chat_profile_buf;
    out->len = sizeof(ngx_http_chat_profile_buf) - zs->avail_out;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_profile_unpack(ngx_str_t *value, ngx_str_t *json)
{
    int        rc;
    z_stream  *zs;

    if (value->len && value->data[0] == '{') {
        *json = *value;
        return NGX_OK;
    }

    if (value->len < 2 || value->data[0] != NGX_HTTP_CHAT_PROFILE_PACKED) {
        return NGX_DECLINED;
    }

    zs = &ngx_http_chat_profile_iz;

    if (!ngx_http_chat_profile_iz_ready) {
        if (inflateInit2(zs, -NGX_HTTP_CHAT_PROFILE_WBITS) != Z_OK) {
            return NGX_DECLINED;
        }

        ngx_http_chat_profile_iz_ready = 1;

    } else if (inflateReset(zs) != Z_OK) {
        return NGX_DECLINED;
    }

    if (inflateSetDictionary(zs, ngx_http_chat_profile_dict,
                             sizeof(ngx_http_chat_profile_dict) - 1)
        != Z_OK)
    {
        return NGX_DECLINED;
    }

    zs->next_in = value->data + 1;
    zs->avail_in = value->len - 1;
    zs->next_out = ngx_http_chat_profile_buf;
    zs->avail_out = NGX_HTTP_CHAT_PROFILE_MAX;

    rc = inflate(zs, Z_FINISH);

    if (rc != Z_STREAM_END || zs->avail_in != 0) {
        return NGX_DECLINED;
    }

    json->data = ngx_http_chat_profile_buf;
    json->len = NGX_HTTP_CHAT_PROFILE_MAX - zs->avail_out;

    return NGX_OK;
}
