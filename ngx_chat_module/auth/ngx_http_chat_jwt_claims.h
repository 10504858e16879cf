/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_JWT_CLAIMS_H_INCLUDED_
#define _NGX_HTTP_CHAT_JWT_CLAIMS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


#define NGX_HTTP_CHAT_JWT_CLAIMS_MAX  16


typedef enum {
    NGX_HTTP_CHAT_JWT_NONE = 0,     /* absent */
    NGX_HTTP_CHAT_JWT_STRING,
    NGX_HTTP_CHAT_JWT_INTEGER,
    NGX_HTTP_CHAT_JWT_REAL,
    NGX_HTTP_CHAT_JWT_ARRAY,        /* in json only */
    NGX_HTTP_CHAT_JWT_OTHER         /* true, false, null, an object */
} ngx_http_chat_jwt_type_e;


typedef struct {
    ngx_http_chat_jwt_type_e   type;
    ngx_str_t                  str;
    int64_t                    num;
    double                     real;
    json_t                    *json;    /* an array */
} ngx_http_chat_jwt_value_t;


typedef struct {
    ngx_str_t                  key;
    ngx_http_chat_jwt_value_t  value;
} ngx_http_chat_jwt_claim_t;


/*
 * A token's claims: a flat object of short ASCII strings and integers
 * (every token we issue) read in place, anything else by jansson
 */
typedef struct {
    json_t                     *json;
    ngx_uint_t                  n;
    ngx_http_chat_jwt_claim_t   flat[NGX_HTTP_CHAT_JWT_CLAIMS_MAX];
} ngx_http_chat_jwt_claims_t;


/* NGX_OK, or NGX_DECLINED: not a JSON object (duplicate names refused) */
ngx_int_t ngx_http_chat_jwt_claims_parse(u_char *p, size_t len,
    ngx_http_chat_jwt_claims_t *claims);
void ngx_http_chat_jwt_claims_get(ngx_http_chat_jwt_claims_t *claims,
    const char *name, ngx_http_chat_jwt_value_t *v);
void ngx_http_chat_jwt_claims_free(ngx_http_chat_jwt_claims_t *claims);


#endif /* _NGX_HTTP_CHAT_JWT_CLAIMS_H_INCLUDED_ */
