/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_INPUT_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_INPUT_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"
#include <bson/bson.h>


/* each: NULL when fine, or what is wrong (a phrase after the field) */

/* an id of obj; *found: it was there */
const char *ngx_http_chat_input_oid(json_t *obj, const char *name,
    ngx_uint_t required, bson_oid_t *oid, ngx_uint_t *found);
/* a string of at most max characters without control characters (but \n
 * and \t when multiline) */
const char *ngx_http_chat_input_text(json_t *obj, const char *name,
    ngx_uint_t required, size_t max, ngx_uint_t multiline, ngx_str_t *out);
/* the ids of an array (its size checked by the caller), none twice, and
 * not me when me is given */
const char *ngx_http_chat_input_oids(json_t *ids, bson_oid_t *oids,
    const bson_oid_t *me);
/* an optional boolean: NGX_OK, NGX_DECLINED absent, NGX_ERROR not one */
ngx_int_t ngx_http_chat_input_bool(json_t *obj, const char *name,
    ngx_uint_t *out);
ngx_uint_t ngx_http_chat_input_controls(ngx_str_t *s, ngx_uint_t multiline);
/* the content of a message of type, rebuilt with only the fields that
 * type has: a new reference, or NULL with *field and *err (*err NULL: no
 * memory); in may be the seed's form with the type inside ({type: "text",
 * text}), which sets type when its data is NULL */
json_t *ngx_http_chat_input_content(ngx_str_t *type, json_t *in,
    const char **field, const char **err);

#define NGX_HTTP_CHAT_MENTIONS_MAX    50     /* users a message mentions */
#define NGX_HTTP_CHAT_MENTIONS_MAX_S  "50"

/* a message's optional "mentions" into out (up to
 * NGX_HTTP_CHAT_MENTIONS_MAX, each once, not me): NULL, or what is wrong */
const char *ngx_http_chat_input_mentions(const bson_oid_t *me, json_t *body,
    bson_oid_t *out, ngx_uint_t *n);


#endif /* _NGX_HTTP_CHAT_OP_INPUT_H_INCLUDED_ */
