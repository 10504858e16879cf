/*
 * Copyright (C) ngx_chat_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>

#include "ngx_http_chat_media_int.h"
#include "../store/ngx_http_chat_users.h"
#include "../store/ngx_http_chat_profile_cache.h"
#include "../util/ngx_http_chat_metrics.h"


/* the state of one upload, in r->pool */
typedef struct {
    ngx_uint_t                       avatar;
    ngx_str_t                        declared;  /* request Content-Type */
    char                             boundary[NGX_HTTP_CHAT_MEDIA_BOUNDARY
                                              + 1];
    ngx_str_t                        data_path;
    ngx_uint_t                       family;
    ngx_http_chat_media_doc_t        doc;
    ngx_http_chat_media_save_arg_t  *save;
    ngx_http_chat_media_prepare_arg_t *prepare;
} ngx_http_chat_media_upload_t;


static ngx_int_t ngx_http_chat_media_start(ngx_http_request_t *r,
    ngx_uint_t avatar);
static ngx_int_t ngx_http_chat_media_checked(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_media_read(ngx_http_request_t *r);
static void ngx_http_chat_media_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_chat_media_counted(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_media_prepared(ngx_http_request_t *r,
    ngx_http_chat_thread_t *t);
static ngx_int_t ngx_http_chat_media_looked_up(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_media_save(ngx_http_request_t *r,
    ngx_str_t *location);
static ngx_int_t ngx_http_chat_media_filed(ngx_http_request_t *r,
    ngx_http_chat_thread_t *t);
static ngx_int_t ngx_http_chat_media_saved(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_media_stored(ngx_http_request_t *r);
static ngx_int_t ngx_http_chat_media_avatar_set(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_media_answer(ngx_http_request_t *r,
    ngx_uint_t with_user);
static ngx_int_t ngx_http_chat_media_unavailable(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static void *ngx_http_chat_media_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_chat_media_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_http_chat_media_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_chat_media_init_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_chat_media_storages[] = {
    { ngx_string("local"), NGX_HTTP_CHAT_MEDIA_LOCAL },
    { ngx_string("cloudinary"), NGX_HTTP_CHAT_MEDIA_CLOUDINARY },
    { ngx_null_string, 0 }
};


#define ngx_http_chat_media_main_slot(name, slot, field, post)               \
    { ngx_string(name),                                                      \
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,                                     \
      slot,                                                                  \
      NGX_HTTP_MAIN_CONF_OFFSET,                                             \
      offsetof(ngx_http_chat_media_main_conf_t, field),                      \
      post }


static ngx_command_t  ngx_http_chat_media_commands[] = {

    { ngx_string("chat_media"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_chat_media_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    ngx_http_chat_media_main_slot("chat_media_max_image",
        ngx_conf_set_size_slot, max[NGX_HTTP_CHAT_MEDIA_IMAGE], NULL),
    ngx_http_chat_media_main_slot("chat_media_max_video",
        ngx_conf_set_size_slot, max[NGX_HTTP_CHAT_MEDIA_VIDEO], NULL),
    ngx_http_chat_media_main_slot("chat_media_max_audio",
        ngx_conf_set_size_slot, max[NGX_HTTP_CHAT_MEDIA_AUDIO], NULL),
    ngx_http_chat_media_main_slot("chat_media_max_document",
        ngx_conf_set_size_slot, max[NGX_HTTP_CHAT_MEDIA_DOCUMENT], NULL),
    ngx_http_chat_media_main_slot("chat_media_storage",
        ngx_conf_set_enum_slot, storage, &ngx_http_chat_media_storages),
    ngx_http_chat_media_main_slot("chat_media_root",
        ngx_conf_set_str_slot, root, NULL),
    ngx_http_chat_media_main_slot("chat_media_url_prefix",
        ngx_conf_set_str_slot, url_prefix, NULL),
    ngx_http_chat_media_main_slot("chat_media_url_secret",
        ngx_conf_set_str_slot, url_secret, NULL),
    ngx_http_chat_media_main_slot("chat_media_url_ttl",
        ngx_conf_set_sec_slot, url_ttl, NULL),
    ngx_http_chat_media_main_slot("chat_upload_daily_bytes",
        ngx_conf_set_off_slot, daily_bytes, NULL),
    ngx_http_chat_media_main_slot("chat_cloudinary_base_url",
        ngx_conf_set_str_slot, cloudinary_base_url, NULL),
    ngx_http_chat_media_main_slot("chat_cloudinary_cloud_name",
        ngx_conf_set_str_slot, cloudinary_cloud_name, NULL),
    ngx_http_chat_media_main_slot("chat_cloudinary_api_key",
        ngx_conf_set_str_slot, cloudinary_api_key, NULL),
    ngx_http_chat_media_main_slot("chat_cloudinary_api_secret",
        ngx_conf_set_str_slot, cloudinary_api_secret, NULL),

    ngx_null_command
};


static ngx_http_module_t  ngx_http_chat_media_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_chat_media_create_main_conf,  /* create main configuration */
    ngx_http_chat_media_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_chat_media_module = {
    NGX_MODULE_V1,
    &ngx_http_chat_media_module_ctx,       /* module context */
    ngx_http_chat_media_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_chat_media_init_module,       /* init module */
    ngx_http_chat_media_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_chat_media_create_main_conf(ngx_conf_t *cf)
{
    ngx_uint_t                        i;
    ngx_http_chat_media_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_chat_media_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    for (i = 0; i < 4; i++) {
        mmcf->max[i] = NGX_CONF_UNSET_SIZE;
    }

    mmcf->storage = NGX_CONF_UNSET_UINT;
    mmcf->url_ttl = NGX_CONF_UNSET;
    mmcf->daily_bytes = NGX_CONF_UNSET;

    return mmcf;
}


static char *
ngx_http_chat_media_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_chat_media_main_conf_t  *mmcf = conf;

    u_char      *p;
    ngx_uint_t   configured;

    ngx_conf_init_size_value(mmcf->max[NGX_HTTP_CHAT_MEDIA_IMAGE],
                             10 * 1024 * 1024);
    ngx_conf_init_size_value(mmcf->max[NGX_HTTP_CHAT_MEDIA_VIDEO],
                             100 * 1024 * 1024);
    ngx_conf_init_size_value(mmcf->max[NGX_HTTP_CHAT_MEDIA_AUDIO],
                             20 * 1024 * 1024);
    ngx_conf_init_size_value(mmcf->max[NGX_HTTP_CHAT_MEDIA_DOCUMENT],
                             50 * 1024 * 1024);
    ngx_conf_init_uint_value(mmcf->storage, NGX_HTTP_CHAT_MEDIA_LOCAL);
    ngx_conf_init_value(mmcf->url_ttl, 3600);
    /* twenty of the largest videos a day */
    if (mmcf->daily_bytes == NGX_CONF_UNSET) {
        mmcf->daily_bytes = (off_t) 2 * 1024 * 1024 * 1024;
    }

    configured = (mmcf->root.len != 0);

    if (!configured) {
        ngx_str_set(&mmcf->root, "media");
    }

    if (ngx_conf_full_name(cf->cycle, &mmcf->root, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    while (mmcf->root.len > 1 && mmcf->root.data[mmcf->root.len - 1] == '/')
    {
        mmcf->root.len--;
    }

    if (mmcf->root.len > NGX_HTTP_CHAT_MEDIA_PATH - 100) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_media_root\" is too long");
        return NGX_CONF_ERROR;
    }

    /*
     * NGINX makes a configured root at start and, when the master runs as
     * root, gives it to the workers' user, as it does its temporary paths
     */
    if (mmcf->storage == NGX_HTTP_CHAT_MEDIA_LOCAL && configured
        && ngx_http_chat_media_root_path(cf, &mmcf->root) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (mmcf->url_prefix.len == 0) {
        ngx_str_set(&mmcf->url_prefix, "/media/");
    }

    if (mmcf->cloudinary_base_url.len == 0) {
        ngx_str_set(&mmcf->cloudinary_base_url, "https://api.cloudinary.com");
    }

    if (mmcf->storage == NGX_HTTP_CHAT_MEDIA_CLOUDINARY
        && (mmcf->cloudinary_cloud_name.len == 0
            || mmcf->cloudinary_api_key.len == 0
            || mmcf->cloudinary_api_secret.len == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_media_storage cloudinary\" requires "
                           "\"chat_cloudinary_cloud_name\", "
                           "\"chat_cloudinary_api_key\" and "
                           "\"chat_cloudinary_api_secret\"");
        return NGX_CONF_ERROR;
    }

    if (mmcf->url_secret.len == 0) {
        /* random at start: all workers agree, not across restarts */
        p = ngx_pnalloc(cf->pool, 32);
        if (p == NULL || RAND_bytes(p, 32) != 1) {
            return NGX_CONF_ERROR;
        }

        mmcf->url_secret.data = p;
        mmcf->url_secret.len = 32;

    } else if (mmcf->url_secret.len < 32) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_media_url_secret\" of at least 32 bytes "
                           "is required");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* in the master, the configuration read and the paths made */

static ngx_int_t
ngx_http_chat_media_init_module(ngx_cycle_t *cycle)
{
    ngx_http_chat_main_conf_t        *cmcf;
    ngx_http_chat_media_main_conf_t  *mmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_chat_module);
    if (cmcf == NULL || !cmcf->enabled) {
        return NGX_OK;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_chat_media_module);

    if (mmcf->storage != NGX_HTTP_CHAT_MEDIA_LOCAL) {
        return NGX_OK;
    }

    return ngx_http_chat_media_root_check(cycle, &mmcf->root);
}


static ngx_int_t
ngx_http_chat_media_init_process(ngx_cycle_t *cycle)
{
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

    /* fail now rather than on each upload; the threads open their own */
    if (ngx_http_chat_media_sniff_check(cycle->log) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_chat_media_ensure_index();

    return NGX_OK;
}



ngx_int_t
ngx_http_chat_media_upload(ngx_http_request_t *r)
{
    return ngx_http_chat_media_start(r, 0);
}


ngx_int_t
ngx_http_chat_media_upload_avatar(ngx_http_request_t *r)
{
    return ngx_http_chat_media_start(r, 1);
}


static ngx_int_t
ngx_http_chat_media_too_large(ngx_http_request_t *r)
{
    return ngx_http_chat_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "payload_too_large",
                                    "the file is too large");
}


static ngx_int_t
ngx_http_chat_media_start(ngx_http_request_t *r, ngx_uint_t avatar)
{
    size_t                            max;
    ngx_int_t                         rc;
    ngx_uint_t                        i;
    ngx_http_chat_ctx_t              *ctx;
    ngx_http_chat_media_upload_t     *up;
    ngx_http_chat_media_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    up = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_media_upload_t));
    if (up == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    up->avatar = avatar;
    ctx->state = up;

    if (r->headers_in.content_type) {
        up->declared = r->headers_in.content_type->value;

        if (up->declared.len >= 19
            && ngx_strncasecmp(up->declared.data,
                               (u_char *) "multipart/form-data", 19) == 0)
        {
            if (ngx_http_chat_media_boundary(&up->declared, up->boundary)
                != NGX_OK)
            {
                r->keepalive = 0;
                (void) ngx_http_chat_discard_body(r);
                return ngx_http_chat_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                "invalid_multipart",
                                                "the multipart boundary is "
                                                "missing or invalid");
            }
        }
    }

    max = 0;

    for (i = 0; i < 4; i++) {
        if (avatar && i != NGX_HTTP_CHAT_MEDIA_IMAGE) {
            continue;
        }

        max = ngx_max(max, mmcf->max[i]);
    }

    if (r->headers_in.content_length_n > (off_t) max
                                         + (up->boundary[0] ? 16384 : 0))
    {
        r->keepalive = 0;
        r->lingering_close = 1;
        return ngx_http_chat_media_too_large(r);
    }

    /*
     * A declared length is checked against the user's bytes today before
     * the body is read: past the quota, the client is told at once (one
     * that waits for 100 Continue sends nothing)
     */
    if (r->headers_in.content_length_n > 0) {
        rc = ngx_http_chat_media_quota_check(r,
                                             r->headers_in.content_length_n,
                                             ngx_http_chat_media_checked);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_chat_media_read(r);
}


static ngx_int_t
ngx_http_chat_media_checked(ngx_http_request_t *r, redisReply *reply)
{
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer != 0) {
        ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_UPLOAD_QUOTA);

        /* the body is not read: the connection goes after the answer */
        r->keepalive = 0;
        r->lingering_close = 1;
        return ngx_http_chat_rate_over(r, reply);
    }

    return ngx_http_chat_media_read(r);
}


static ngx_int_t
ngx_http_chat_media_read(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    r->request_body_in_file_only = 1;
    r->request_body_in_persistent_file = 1;
    r->request_body_in_clean_file = 1;
    r->request_body_file_log_level = 0;

    rc = ngx_http_read_client_request_body(r, ngx_http_chat_media_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        r->keepalive = 0;
        r->lingering_close = 1;

        if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
            return ngx_http_chat_media_too_large(r);
        }

        if (rc == NGX_HTTP_BAD_REQUEST) {
            return ngx_http_chat_send_error(r, rc, "bad_request",
                                            "the request body is malformed");
        }

        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_chat_media_body(ngx_http_request_t *r)
{
    off_t                               size;
    size_t                              max;
    ngx_int_t                           rc;
    ngx_uint_t                          i;
    ngx_chain_t                        *cl;
    ngx_temp_file_t                    *tf;
    ngx_http_chat_ctx_t                *ctx;
    ngx_http_chat_media_upload_t       *up;
    ngx_http_chat_media_main_conf_t    *mmcf;
    ngx_http_chat_media_prepare_arg_t  *arg;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    up = ctx->state;

    size = 0;
    tf = r->request_body ? r->request_body->temp_file : NULL;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            size += ngx_buf_size(cl->buf);
        }
    }

    if (tf == NULL || size == 0) {
        ngx_http_finalize_request(r,
            ngx_http_chat_send_error(r, NGX_HTTP_BAD_REQUEST, "empty_body",
                                     "the request has no file"));
        return;
    }

    max = 0;

    for (i = 0; i < 4; i++) {
        max = ngx_max(max, mmcf->max[i]);
    }

    /* a chunked body: its size is known only now */
    if (size > (off_t) max + (up->boundary[0] ? 16384 : 0)) {
        ngx_http_finalize_request(r, ngx_http_chat_media_too_large(r));
        return;
    }

    if (tf->file.name.len >= NGX_HTTP_CHAT_MEDIA_PATH - 8) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_media_prepare_arg_t));
    if (arg == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(arg->body_path, tf->file.name.data, tf->file.name.len);
    arg->body_size = size;
    ngx_memcpy(arg->boundary, up->boundary, sizeof(up->boundary));
    up->prepare = arg;

    /*
     * The user's bytes today, counted before anything is stored: a
     * refused body is only the temporary file, removed with the request
     */
    rc = ngx_http_chat_media_quota(r, size, ngx_http_chat_media_counted);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_chat_thread_request(r, ngx_http_chat_media_prepare_run,
                                          ngx_http_chat_media_prepared, arg,
                                          sizeof(*arg));
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_chat_media_counted(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t                      rc;
    ngx_http_chat_ctx_t           *ctx;
    ngx_http_chat_media_upload_t  *up;

    /* over the quota: 429 with Retry-After until the day is over */
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer != 0) {
        ngx_http_chat_metric_inc(NGX_HTTP_CHAT_M_UPLOAD_QUOTA);
    }

    rc = ngx_http_chat_rate_over(r, reply);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    up = ctx->state;

    return ngx_http_chat_thread_request(r, ngx_http_chat_media_prepare_run,
                                        ngx_http_chat_media_prepared,
                                        up->prepare, sizeof(*up->prepare));
}


static void
ngx_http_chat_media_unlink(void *data)
{
    ngx_str_t  *path = data;

    (void) ngx_delete_file(path->data);
}


static ngx_int_t
ngx_http_chat_media_prepared(ngx_http_request_t *r,
    ngx_http_chat_thread_t *t)
{
    size_t                            len;
    ngx_str_t                         declared;
    ngx_uint_t                        family, claimed;
    const char                       *mime;
    ngx_pool_cleanup_t               *cln;
    ngx_http_chat_ctx_t              *ctx;
    ngx_http_chat_media_upload_t     *up;
    ngx_http_chat_media_prepare_t    *res;
    ngx_http_chat_media_main_conf_t  *mmcf;
    ngx_http_chat_media_lookup_arg_t  lookup;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    up = ctx->state;
    res = t->result;

    if (res == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(res->data_path);

    up->data_path.data = ngx_pnalloc(r->pool, len + 1);
    if (up->data_path.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(up->data_path.data, res->data_path, len + 1);
    up->data_path.len = len;

    if (res->part_created) {
        /* the request owns the part file from now on */
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_chat_media_unlink;
        cln->data = &up->data_path;
        res->part_created = 0;
    }

    switch (res->error) {

    case NGX_HTTP_CHAT_MEDIA_OK:
        break;

    case NGX_HTTP_CHAT_MEDIA_EMULTIPART:
        return ngx_http_chat_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_multipart",
                                        "the multipart body is malformed, "
                                        "truncated, or has no \"file\" part");

    case NGX_HTTP_CHAT_MEDIA_EEMPTY:
        return ngx_http_chat_send_error(r, NGX_HTTP_BAD_REQUEST, "empty_body",
                                        "the file is empty");

    default:
        /* the thread logged why */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mime = res->mime;
    family = ngx_http_chat_media_family(mime);

    if (family == NGX_HTTP_CHAT_MEDIA_NONE
        || (up->avatar && family != NGX_HTTP_CHAT_MEDIA_IMAGE))
    {
        return ngx_http_chat_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        "unsupported_media_type",
                                        up->avatar
                                        ? "an avatar must be a JPEG, PNG, "
                                          "GIF or WebP image"
                                        : "this type of file is not "
                                          "accepted");
    }

    /* what the client claims must not contradict what the bytes are */
    if (up->boundary[0]) {
        declared.data = (u_char *) res->declared;
        declared.len = ngx_strlen(res->declared);

    } else {
        declared = up->declared;
    }

    claimed = ngx_http_chat_media_declared_family(&declared);

    if (claimed != NGX_HTTP_CHAT_MEDIA_NONE && claimed != family
        && !((claimed == NGX_HTTP_CHAT_MEDIA_AUDIO
              || claimed == NGX_HTTP_CHAT_MEDIA_VIDEO)
             && (family == NGX_HTTP_CHAT_MEDIA_AUDIO
                 || family == NGX_HTTP_CHAT_MEDIA_VIDEO)))
    {
        return ngx_http_chat_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        "unsupported_media_type",
                                        "the file's content does not match "
                                        "its declared type");
    }

    if (res->data_size > (off_t) mmcf->max[family]) {
        return ngx_http_chat_media_too_large(r);
    }

    up->family = family;
    up->doc.size = res->data_size;
    up->doc.storage = mmcf->storage;
    ngx_cpystrn((u_char *) up->doc.hash, (u_char *) res->hash,
                sizeof(up->doc.hash));
    ngx_cpystrn((u_char *) up->doc.mime, (u_char *) mime,
                sizeof(up->doc.mime));

    if (family == NGX_HTTP_CHAT_MEDIA_IMAGE && res->width > 0) {
        up->doc.width = res->width;
        up->doc.height = res->height;
    }

    if (ctx->user_id.len != 24) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&lookup, sizeof(lookup));
    ngx_memcpy(lookup.hash, up->doc.hash, sizeof(lookup.hash));
    ngx_memcpy(lookup.owner, ctx->user_id.data, 24);

    /* the same bytes may be stored already, by this user or another */
    return ngx_http_chat_mongo_request(r, ngx_http_chat_media_lookup_run,
                                       ngx_http_chat_media_looked_up,
                                       &lookup, sizeof(lookup));
}


static ngx_int_t
ngx_http_chat_media_looked_up(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    ngx_str_t                         location;
    ngx_http_chat_ctx_t              *ctx;
    ngx_http_chat_media_doc_t        *existing;
    ngx_http_chat_media_upload_t     *up;
    ngx_http_chat_media_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    up = ctx->state;
    existing = t->result;

    if (t->rc != NGX_OK || existing == NULL) {
        return ngx_http_chat_media_unavailable(r, t);
    }

    if (existing->found) {
        /* this user's own upload of these bytes: their id, again */
        up->doc = *existing;
        return ngx_http_chat_media_stored(r);
    }

    /*
     * Another user's bytes get a document of this user's own, answered as
     * any first upload is (201, a new id and time).  Locally the store
     * step runs all the same (the link finds the file there), so the
     * answer takes no less time; a Cloudinary copy is reused as it is.
     */
    if (existing->shared
        && existing->storage == NGX_HTTP_CHAT_MEDIA_CLOUDINARY
        && mmcf->storage == NGX_HTTP_CHAT_MEDIA_CLOUDINARY)
    {
        location.data = (u_char *) existing->location;
        location.len = ngx_strlen(existing->location);

        if (location.len) {
            return ngx_http_chat_media_save(r, &location);
        }
    }

    if (mmcf->storage == NGX_HTTP_CHAT_MEDIA_CLOUDINARY) {
        return ngx_http_chat_media_cloudinary_upload(r,
                                              (char *) up->data_path.data,
                                              ngx_http_chat_media_save);
    }

    return ngx_http_chat_media_save(r, NULL);
}


/* stores the file (locally) and inserts its document */

static ngx_int_t
ngx_http_chat_media_save(ngx_http_request_t *r, ngx_str_t *location)
{
    ngx_http_chat_ctx_t              *ctx;
    ngx_http_chat_media_upload_t     *up;
    ngx_http_chat_media_save_arg_t   *arg;
    ngx_http_chat_media_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    up = ctx->state;

    if (ctx->user_id.len != 24) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_media_save_arg_t));
    if (arg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(arg->data_path, up->data_path.data, up->data_path.len);
    ngx_memcpy(arg->root, mmcf->root.data, mmcf->root.len);
    ngx_memcpy(arg->owner, ctx->user_id.data, 24);
    arg->doc = up->doc;

    if (location) {
        if (location->len >= sizeof(arg->doc.location)) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(arg->doc.location, location->data, location->len);
        arg->doc.storage = NGX_HTTP_CHAT_MEDIA_CLOUDINARY;

    } else {
        (void) ngx_snprintf((u_char *) arg->doc.location,
                            sizeof(arg->doc.location) - 1, "%*s/%s%Z",
                            (size_t) 2, up->doc.hash, up->doc.hash);
        arg->doc.storage = NGX_HTTP_CHAT_MEDIA_LOCAL;
    }

    up->save = arg;

    if (location) {
        return ngx_http_chat_mongo_request(r, ngx_http_chat_media_save_run,
                                           ngx_http_chat_media_saved, arg,
                                           sizeof(*arg));
    }

    /* the file first, in a thread without a Mongo client */
    return ngx_http_chat_thread_request(r, ngx_http_chat_media_store_run,
                                        ngx_http_chat_media_filed, arg,
                                        sizeof(*arg));
}


static ngx_int_t
ngx_http_chat_media_filed(ngx_http_request_t *r, ngx_http_chat_thread_t *t)
{
    ngx_http_chat_ctx_t           *ctx;
    ngx_http_chat_media_upload_t  *up;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    up = ctx->state;

    if (t->rc != NGX_OK) {
        /* the thread logged why */
        return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "service_unavailable",
                                        "the file cannot be stored now, "
                                        "try again shortly");
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_media_save_run,
                                       ngx_http_chat_media_saved, up->save,
                                       sizeof(ngx_http_chat_media_save_arg_t));
}


static ngx_int_t
ngx_http_chat_media_saved(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_ctx_t           *ctx;
    ngx_http_chat_media_upload_t  *up;

    if (t->rc != NGX_OK || t->result == NULL) {
        return ngx_http_chat_media_unavailable(r, t);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    up = ctx->state;
    up->doc = *(ngx_http_chat_media_doc_t *) t->result;

    return ngx_http_chat_media_stored(r);
}


/* the media document exists: answer, or first set the avatar */

static ngx_int_t
ngx_http_chat_media_stored(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t            *ctx;
    ngx_http_chat_media_upload_t   *up;
    ngx_http_chat_media_ids_arg_t   arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    up = ctx->state;

    if (!up->avatar) {
        return ngx_http_chat_media_answer(r, 0);
    }

    ngx_memzero(&arg, sizeof(arg));
    ngx_memcpy(arg.user_id, ctx->user_id.data,
               ngx_min(ctx->user_id.len, 24));
    ngx_memcpy(arg.media_id, up->doc.id, 24);

    return ngx_http_chat_mongo_request(r, ngx_http_chat_media_avatar_run,
                                       ngx_http_chat_media_avatar_set, &arg,
                                       sizeof(arg));
}


static ngx_int_t
ngx_http_chat_media_avatar_set(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    ngx_http_chat_media_ids_arg_t  *arg = t->arg;

    ngx_str_t  id;

    /* the cached profile of the sign-in shows the avatar it had */
    id.data = (u_char *) arg->user_id;
    id.len = 24;
    ngx_http_chat_profile_cache_drop(&id);

    if (t->rc != NGX_OK) {
        return ngx_http_chat_media_unavailable(r, t);
    }

    return ngx_http_chat_media_answer(r, 1);
}


static ngx_int_t
ngx_http_chat_media_answer(ngx_http_request_t *r, ngx_uint_t with_user)
{
    json_t                           *root, *media, *user;
    ngx_str_t                         id, url;
    ngx_http_chat_ctx_t              *ctx;
    ngx_http_chat_media_upload_t     *up;
    ngx_http_chat_media_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_media_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    up = ctx->state;

    id.data = (u_char *) up->doc.id;
    id.len = 24;

    if (up->doc.storage == NGX_HTTP_CHAT_MEDIA_CLOUDINARY) {
        url.data = (u_char *) up->doc.location;
        url.len = ngx_strlen(up->doc.location);

    } else if (ngx_http_chat_media_sign(r, &id, ngx_time() + mmcf->url_ttl,
                                        &url)
               != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    root = json_object();
    media = json_object();

    if (root == NULL || media == NULL) {
        json_decref(root);
        json_decref(media);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_object_set_new(root, "media", media);
    json_object_set_new(media, "id", json_string(up->doc.id));
    json_object_set_new(media, "url", json_stringn((char *) url.data,
                                                   url.len));
    json_object_set_new(media, "size", json_integer(up->doc.size));
    json_object_set_new(media, "mimeType", json_string(up->doc.mime));

    if (up->doc.width > 0) {
        json_object_set_new(media, "width", json_integer(up->doc.width));
        json_object_set_new(media, "height", json_integer(up->doc.height));
    }

    json_object_set_new(media, "createdAt",
                        ngx_http_chat_json_time(up->doc.created_at));

    if (with_user) {
        user = json_object();
        if (user == NULL) {
            json_decref(root);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        json_object_set_new(root, "user", user);
        json_object_set_new(user, "id",
                            json_stringn((char *) ctx->user_id.data,
                                         ctx->user_id.len));
        json_object_set_new(user, "avatar", json_string(up->doc.id));
    }

    return ngx_http_chat_send_json(r, up->doc.found ? NGX_HTTP_OK
                                                    : NGX_HTTP_CREATED, root);
}


static ngx_int_t
ngx_http_chat_media_unavailable(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "chat: media step failed: %s", t->error.message);

    return ngx_http_chat_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "service_unavailable",
                                    "a back end is unavailable, "
                                    "try again shortly");
}
