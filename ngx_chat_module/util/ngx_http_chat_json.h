/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_JSON_H_INCLUDED_
#define _NGX_HTTP_CHAT_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


/*
 * the flags a request body is parsed with: jansson checks UTF-8 and
 * refuses \u0000 unless told otherwise
 */
#define NGX_HTTP_CHAT_JSON_BODY_FLAGS  JSON_REJECT_DUPLICATES


/*
 * a string member of obj: NULL when fine (out->data NULL when an optional
 * member is absent or null), or what is wrong with it
 */
const char *ngx_http_chat_json_string(json_t *obj, const char *name,
    ngx_uint_t required, size_t max, ngx_str_t *out);

/* C0 and C1 control characters and DEL (but \n when allow_newline) */
ngx_uint_t ngx_http_chat_has_controls(ngx_str_t *s, ngx_uint_t allow_newline);


#endif /* _NGX_HTTP_CHAT_JSON_H_INCLUDED_ */
