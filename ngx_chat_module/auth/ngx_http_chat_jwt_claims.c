/*
 * Copyright (C) ngx_chat_module authors
 *
 * A token's claims.  Every token we issue is a flat object of a few
 * ASCII strings and integers; those are read in place, with no
 * allocation (jansson's decode was about 2% of a worker's CPU in a storm
 * of sign-ins).  The reader accepts only what it is sure of: anything
 * else (an escape, a byte outside printable ASCII, a real, an array, an
 * object, more than NGX_HTTP_CHAT_JWT_CLAIMS_MAX names, a name twice, a
 * number of more than 18 digits or with a leading zero) goes to jansson,
 * which decides as before.
 */


#include "ngx_http_chat_jwt_claims.h"


static ngx_int_t ngx_http_chat_jwt_flat(u_char *p, u_char *last,
    ngx_http_chat_jwt_claims_t *claims);
static u_char *ngx_http_chat_jwt_flat_string(u_char *p, u_char *last,
    ngx_str_t *s);
static u_char *ngx_http_chat_jwt_flat_value(u_char *p, u_char *last,
    ngx_http_chat_jwt_value_t *v);
static u_char *ngx_http_chat_jwt_ws(u_char *p, u_char *last);


ngx_int_t
ngx_http_chat_jwt_claims_parse(u_char *p, size_t len,
    ngx_http_chat_jwt_claims_t *claims)
{
    json_t  *j;

    claims->json = NULL;
    claims->n = 0;

    if (ngx_http_chat_jwt_flat(p, p + len, claims) == NGX_OK) {
        return NGX_OK;
    }

    claims->n = 0;

    j = json_loadb((const char *) p, len, JSON_REJECT_DUPLICATES, NULL);
    if (j == NULL) {
        return NGX_DECLINED;
    }

    if (!json_is_object(j)) {
        json_decref(j);
        return NGX_DECLINED;
    }

    claims->json = j;

    return NGX_OK;
}


void
ngx_http_chat_jwt_claims_get(ngx_http_chat_jwt_claims_t *claims,
    const char *name, ngx_http_chat_jwt_value_t *v)
{
    size_t       len;
    json_t      *j;
    ngx_uint_t   i;

    ngx_memzero(v, sizeof(ngx_http_chat_jwt_value_t));

    if (claims->json == NULL) {
        len = ngx_strlen(name);

        for (i = 0; i < claims->n; i++) {
            if (claims->flat[i].key.len == len
                && ngx_memcmp(claims->flat[i].key.data, name, len) == 0)
            {
                *v = claims->flat[i].value;
                return;
            }
        }

        return;
    }

    j = json_object_get(claims->json, name);

    if (j == NULL) {
        return;
    }

    if (json_is_string(j)) {
        v->type = NGX_HTTP_CHAT_JWT_STRING;
        v->str.data = (u_char *) json_string_value(j);
        v->str.len = json_string_length(j);

    } else if (json_is_integer(j)) {
        v->type = NGX_HTTP_CHAT_JWT_INTEGER;
        v->num = json_integer_value(j);

    } else if (json_is_real(j)) {
        v->type = NGX_HTTP_CHAT_JWT_REAL;
        v->real = json_real_value(j);

    } else if (json_is_array(j)) {
        v->type = NGX_HTTP_CHAT_JWT_ARRAY;
        v->json = j;

    } else {
        v->type = NGX_HTTP_CHAT_JWT_OTHER;
    }
}


void
ngx_http_chat_jwt_claims_free(ngx_http_chat_jwt_claims_t *claims)
{
    json_decref(claims->json);
    claims->json = NULL;
    claims->n = 0;
}


/* {"name": value, ...}, whitespace around; NGX_DECLINED: ask jansson */

static ngx_int_t
ngx_http_chat_jwt_flat(u_char *p, u_char *last,
    ngx_http_chat_jwt_claims_t *claims)
{
    ngx_uint_t                  i;
    ngx_http_chat_jwt_claim_t  *c;

    p = ngx_http_chat_jwt_ws(p, last);

    if (p == last || *p++ != '{') {
        return NGX_DECLINED;
    }

    p = ngx_http_chat_jwt_ws(p, last);

    if (p < last && *p == '}') {
        p++;
        goto done;
    }

    for ( ;; ) {
        if (claims->n == NGX_HTTP_CHAT_JWT_CLAIMS_MAX) {
            return NGX_DECLINED;
        }

        c = &claims->flat[claims->n];

        p = ngx_http_chat_jwt_flat_string(p, last, &c->key);
        if (p == NULL) {
            return NGX_DECLINED;
        }

        for (i = 0; i < claims->n; i++) {
            if (claims->flat[i].key.len == c->key.len
                && ngx_memcmp(claims->flat[i].key.data, c->key.data,
                              c->key.len)
                   == 0)
            {
                return NGX_DECLINED;
            }
        }

        p = ngx_http_chat_jwt_ws(p, last);

        if (p == last || *p++ != ':') {
            return NGX_DECLINED;
        }

        p = ngx_http_chat_jwt_ws(p, last);

        p = ngx_http_chat_jwt_flat_value(p, last, &c->value);
        if (p == NULL) {
            return NGX_DECLINED;
        }

        claims->n++;

        p = ngx_http_chat_jwt_ws(p, last);

        if (p == last) {
            return NGX_DECLINED;
        }

        if (*p == '}') {
            p++;
            break;
        }

        if (*p++ != ',') {
            return NGX_DECLINED;
        }

        p = ngx_http_chat_jwt_ws(p, last);
    }

done:

    return (ngx_http_chat_jwt_ws(p, last) == last) ? NGX_OK : NGX_DECLINED;
}


/* "..." of printable ASCII, no escape: past its quote, or NULL */

static u_char *
ngx_http_chat_jwt_flat_string(u_char *p, u_char *last, ngx_str_t *s)
{
    if (p == last || *p++ != '"') {
        return NULL;
    }

    s->data = p;

    while (p < last) {
        if (*p == '"') {
            s->len = p - s->data;
            return p + 1;
        }

        if (*p < 0x20 || *p > 0x7e || *p == '\\') {
            return NULL;
        }

        p++;
    }

    return NULL;
}


static u_char *
ngx_http_chat_jwt_flat_value(u_char *p, u_char *last,
    ngx_http_chat_jwt_value_t *v)
{
    u_char      *start;
    int64_t      n;
    ngx_uint_t   neg;

    ngx_memzero(v, sizeof(ngx_http_chat_jwt_value_t));

    if (p == last) {
        return NULL;
    }

    if (*p == '"') {
        v->type = NGX_HTTP_CHAT_JWT_STRING;
        return ngx_http_chat_jwt_flat_string(p, last, &v->str);
    }

    if (last - p >= 4
        && (ngx_strncmp(p, "true", 4) == 0 || ngx_strncmp(p, "null", 4) == 0))
    {
        v->type = NGX_HTTP_CHAT_JWT_OTHER;
        return p + 4;
    }

    if (last - p >= 5 && ngx_strncmp(p, "false", 5) == 0) {
        v->type = NGX_HTTP_CHAT_JWT_OTHER;
        return p + 5;
    }

    neg = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }

    start = p;
    n = 0;

    while (p < last && *p >= '0' && *p <= '9') {
        if (p - start == 18) {
            return NULL;
        }

        n = n * 10 + (*p++ - '0');
    }

    if (p == start
        || (*start == '0' && p - start > 1)
        || (p < last && (*p == '.' || *p == 'e' || *p == 'E')))
    {
        return NULL;
    }

    v->type = NGX_HTTP_CHAT_JWT_INTEGER;
    v->num = neg ? -n : n;

    return p;
}


static u_char *
ngx_http_chat_jwt_ws(u_char *p, u_char *last)
{
    while (p < last
           && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    {
        p++;
    }

    return p;
}
