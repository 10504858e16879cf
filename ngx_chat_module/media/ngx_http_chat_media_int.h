/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_MEDIA_INT_H_INCLUDED_
#define _NGX_HTTP_CHAT_MEDIA_INT_H_INCLUDED_


#include "ngx_http_chat_media.h"
#include "../core/ngx_http_chat_async.h"


/* what the media files share between themselves, not with the others */

#define NGX_HTTP_CHAT_MEDIA_LOCAL       0
#define NGX_HTTP_CHAT_MEDIA_CLOUDINARY  1

#define NGX_HTTP_CHAT_MEDIA_IMAGE       0
#define NGX_HTTP_CHAT_MEDIA_VIDEO       1
#define NGX_HTTP_CHAT_MEDIA_AUDIO       2
#define NGX_HTTP_CHAT_MEDIA_DOCUMENT    3
#define NGX_HTTP_CHAT_MEDIA_NONE        4

#define NGX_HTTP_CHAT_MEDIA_PATH        1024
#define NGX_HTTP_CHAT_MEDIA_MIME        128
#define NGX_HTTP_CHAT_MEDIA_HEAD        8192
#define NGX_HTTP_CHAT_MEDIA_BOUNDARY    72

/* errors of the thread steps */
#define NGX_HTTP_CHAT_MEDIA_OK          0
#define NGX_HTTP_CHAT_MEDIA_EIO         1
#define NGX_HTTP_CHAT_MEDIA_EMULTIPART  2
#define NGX_HTTP_CHAT_MEDIA_EEMPTY      3
#define NGX_HTTP_CHAT_MEDIA_EMAGIC      4


typedef struct {
    size_t                     max[4];      /* by NGX_HTTP_CHAT_MEDIA_* */
    ngx_uint_t                 storage;
    ngx_str_t                  root;
    ngx_str_t                  url_prefix;
    ngx_str_t                  url_secret;
    time_t                     url_ttl;
    ngx_str_t                  cloudinary_base_url;
    ngx_str_t                  cloudinary_cloud_name;
    ngx_str_t                  cloudinary_api_key;
    ngx_str_t                  cloudinary_api_secret;
    off_t                      daily_bytes;  /* a user's a UTC day, 0 any */
} ngx_http_chat_media_main_conf_t;


/*
 * A user's upload bytes today (chat_upload_daily_bytes), counted in
 * Redis: NGX_DECLINED when nothing is counted (no quota, or Redis away:
 * uploads go on), else as ngx_http_chat_redis_eval(); next() gets a
 * reply for ngx_http_chat_rate_over().
 */
ngx_int_t ngx_http_chat_media_quota(ngx_http_request_t *r, off_t size,
    ngx_http_chat_redis_next_pt next);
/* the same without counting: would size bytes more pass the quota? */
ngx_int_t ngx_http_chat_media_quota_check(ngx_http_request_t *r,
    off_t size, ngx_http_chat_redis_next_pt next);


/* a media document, as the thread steps return it */
typedef struct {
    ngx_uint_t                 found;
    char                       id[25];
    char                       hash[65];
    char                       mime[NGX_HTTP_CHAT_MEDIA_MIME];
    int64_t                    size;
    int32_t                    width;
    int32_t                    height;
    ngx_uint_t                 storage;
    char                       location[NGX_HTTP_CHAT_MEDIA_PATH];
    int64_t                    created_at;
    /*
     * not found for this owner, but another owner's document holds these
     * bytes: only its storage and location are kept, never its id or time
     */
    ngx_uint_t                 shared;
} ngx_http_chat_media_doc_t;


/* the dedup lookup: these bytes among this owner's uploads, else anybody's */
typedef struct {
    char                       hash[65];
    char                       owner[25];
} ngx_http_chat_media_lookup_arg_t;


/*
 * The prepare step, in a thread without a Mongo client: multipart, hash,
 * head, dimensions, type; then the dedup lookup, a Mongo task of its own
 */
typedef struct {
    char                       body_path[NGX_HTTP_CHAT_MEDIA_PATH];
    off_t                      body_size;
    char                       boundary[NGX_HTTP_CHAT_MEDIA_BOUNDARY + 1];
} ngx_http_chat_media_prepare_arg_t;

typedef struct {
    ngx_uint_t                 error;
    char                       data_path[NGX_HTTP_CHAT_MEDIA_PATH];
    ngx_uint_t                 part_created;  /* data_path is ours */
    off_t                      data_size;
    char                       declared[NGX_HTTP_CHAT_MEDIA_MIME];
    char                       hash[65];
    u_char                     head[NGX_HTTP_CHAT_MEDIA_HEAD];
    size_t                     head_len;
    int32_t                    width;
    int32_t                    height;
    char                       mime[NGX_HTTP_CHAT_MEDIA_MIME]; /* libmagic's */
} ngx_http_chat_media_prepare_t;


/*
 * The save step: store the file locally (in a thread without a Mongo
 * client), then insert the document (a Mongo task)
 */
typedef struct {
    char                       data_path[NGX_HTTP_CHAT_MEDIA_PATH];
    char                       root[NGX_HTTP_CHAT_MEDIA_PATH];
    char                       owner[25];
    ngx_http_chat_media_doc_t  doc;
} ngx_http_chat_media_save_arg_t;


/* the avatar step and the download lookup */
typedef struct {
    char                       user_id[25];
    char                       media_id[25];
} ngx_http_chat_media_ids_arg_t;


extern ngx_module_t  ngx_http_chat_media_module;


/* ngx_http_chat_media_multipart.c, in a thread */
ngx_uint_t ngx_http_chat_media_multipart(ngx_fd_t fd, off_t size,
    const char *boundary, off_t *start, off_t *end, char *type,
    size_t type_size, ngx_log_t *log);
/* ... and on the event loop, from the request's Content-Type */
ngx_int_t ngx_http_chat_media_boundary(ngx_str_t *type, char *boundary);

/* ngx_http_chat_media_root.c: a configured root made at start */
ngx_int_t ngx_http_chat_media_root_path(ngx_conf_t *cf, ngx_str_t *root);
/* in the master: a subdirectory the workers cannot write fails the start */
ngx_int_t ngx_http_chat_media_root_check(ngx_cycle_t *cycle,
    ngx_str_t *root);

/* ngx_http_chat_media_sniff.c */
ngx_uint_t ngx_http_chat_media_family(const char *mime);
ngx_uint_t ngx_http_chat_media_declared_family(ngx_str_t *type);
void ngx_http_chat_media_dimensions(ngx_fd_t fd, off_t size,
    const u_char *head, size_t len, int32_t *width, int32_t *height);
/* in a pool thread: libmagic's type of the head, one magic_t a thread */
ngx_int_t ngx_http_chat_media_sniff(const u_char *head, size_t len,
    char *mime, size_t size, ngx_log_t *log);
/* on the event loop at start: the magic database loads */
ngx_int_t ngx_http_chat_media_sniff_check(ngx_log_t *log);

/* ngx_http_chat_media_store.c, thread steps */
void ngx_http_chat_media_prepare_run(ngx_http_chat_thread_t *t);
void ngx_http_chat_media_lookup_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_media_store_run(ngx_http_chat_thread_t *t);
void ngx_http_chat_media_save_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_media_avatar_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_media_find_run(ngx_http_chat_mongo_task_t *t,
    mongoc_client_t *client, mongoc_database_t *db);
void ngx_http_chat_media_ensure_index(void);

/* ngx_http_chat_media_cloudinary.c */
ngx_int_t ngx_http_chat_media_cloudinary_upload(ngx_http_request_t *r,
    const char *path, ngx_int_t (*next)(ngx_http_request_t *r,
    ngx_str_t *secure_url));

/* ngx_http_chat_media_download.c */
ngx_int_t ngx_http_chat_media_sign(ngx_http_request_t *r, ngx_str_t *id,
    time_t exp, ngx_str_t *url);
char *ngx_http_chat_media_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_CHAT_MEDIA_INT_H_INCLUDED_ */
