/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_MEDIA_H_INCLUDED_
#define _NGX_HTTP_CHAT_MEDIA_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/*
 * Media: uploads streamed to a temporary file, checked by size and by
 * their real type (libmagic), stored under their content hash on local
 * disk or Cloudinary, and served back through signed, expiring URLs.
 * Its directives belong to ngx_http_chat_media_module.
 */

extern ngx_module_t  ngx_http_chat_media_module;


/*
 * Route handlers, called by the API router after the access-token gate
 * with ctx->user_id set and the request body NOT read yet: they read it
 * themselves (raw body or multipart/form-data).
 */
ngx_int_t ngx_http_chat_media_upload(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_media_upload_avatar(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_MEDIA_H_INCLUDED_ */
