/*
 * Copyright (C) ngx_chat_module authors
 *
 * What every chat route shares: the request id, the JSON error envelope,
 * security and CORS headers, method and content type checks, and reading
 * a bounded JSON body.
 */


#include "ngx_http_chat_core.h"
#include <openssl/rand.h>


static ngx_int_t ngx_http_chat_request_id(ngx_http_request_t *r,
    ngx_str_t *id);
static u_char *ngx_http_chat_log_error(ngx_http_request_t *r,
    ngx_http_request_t *sr, u_char *buf, size_t len);
static ngx_table_elt_t *ngx_http_chat_find_header(ngx_http_request_t *r,
    const char *name, size_t len);
static ngx_int_t ngx_http_chat_set_headers(ngx_http_request_t *r);
static ngx_str_t *ngx_http_chat_cors_match(ngx_http_request_t *r);
static ngx_int_t ngx_http_chat_methods(ngx_http_request_t *r,
    ngx_uint_t allowed, ngx_str_t *out);
static void ngx_http_chat_body_handler(ngx_http_request_t *r);
static void ngx_http_chat_json_cleanup(void *data);


static ngx_str_t  ngx_http_chat_json_type =
    ngx_string("application/json; charset=utf-8");

/* NGINX's own request log handler, which ours appends to */
static ngx_http_log_handler_pt  ngx_http_chat_log_handler_next;


ngx_http_chat_ctx_t *
ngx_http_chat_prepare(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    if (ngx_http_chat_request_id(r, &ctx->request_id) != NGX_OK) {
        return NULL;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_chat_module);

    /*
     * Every error log line of this request names its id.  After an
     * internal redirect the context is new but the handler is still ours:
     * never wrap it twice.
     */
    if (r->log_handler != ngx_http_chat_log_error) {
        ngx_http_chat_log_handler_next = r->log_handler;
        r->log_handler = ngx_http_chat_log_error;
    }

    return ctx;
}


/*
 * A well-formed X-Request-Id from a proxy in front is kept, so that one id
 * follows the request through every tier; otherwise we make a random one.
 */

static ngx_int_t
ngx_http_chat_request_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char           *p, rnd[16];
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    h = ngx_http_chat_find_header(r, "X-Request-Id",
                                  sizeof("X-Request-Id") - 1);

    if (h && h->value.len && h->value.len <= NGX_HTTP_CHAT_REQUEST_ID_MAX) {
        for (i = 0; i < h->value.len; i++) {
            p = &h->value.data[i];

            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')
                  || (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_'
                  || *p == '.' || *p == ':'))
            {
                break;
            }
        }

        if (i == h->value.len) {
            *id = h->value;
            return NGX_OK;
        }
    }

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: RAND_bytes() failed");
        return NGX_ERROR;
    }

    id->data = ngx_pnalloc(r->pool, 2 * sizeof(rnd));
    if (id->data == NULL) {
        return NGX_ERROR;
    }

    id->len = ngx_hex_dump(id->data, rnd, sizeof(rnd)) - id->data;

    return NGX_OK;
}


static u_char *
ngx_http_chat_log_error(ngx_http_request_t *r, ngx_http_request_t *sr,
    u_char *buf, size_t len)
{
    u_char               *p;
    ngx_http_chat_ctx_t  *ctx;

    p = buf;

    if (ngx_http_chat_log_handler_next) {
        p = ngx_http_chat_log_handler_next(r, sr, buf, len);
        len -= p - buf;
    }

    /* the context is gone after a redirect to another location */
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    if (ctx == NULL) {
        return p;
    }

    return ngx_snprintf(p, len, ", request_id: \"%V\"", &ctx->request_id);
}


ngx_int_t
ngx_http_chat_request_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ctx->request_id.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = ctx->request_id.data;

    return NGX_OK;
}


/* for the log lines of the tasks a request posts (store/) */
ngx_str_t *
ngx_http_chat_task_id(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    return ctx ? &ctx->request_id : NULL;
}


static ngx_table_elt_t *
ngx_http_chat_find_header(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


ngx_int_t
ngx_http_chat_add_header(ngx_http_request_t *r, const char *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.len = ngx_strlen(key);
    h->key.data = (u_char *) key;
    h->value = *value;

    return NGX_OK;
}


typedef struct {
    const char                *key;
    ngx_str_t                  value;
} ngx_http_chat_header_t;


/* answers carry tokens and private data: never cached by anybody */
static ngx_http_chat_header_t  ngx_http_chat_always_headers[] = {
    { "Cache-Control", ngx_string("no-store") },
    { NULL, ngx_null_string }
};


static ngx_http_chat_header_t  ngx_http_chat_security_headers[] = {
    { "X-Content-Type-Options", ngx_string("nosniff") },
    { "X-Frame-Options", ngx_string("DENY") },
    { "Referrer-Policy", ngx_string("no-referrer") },
    { "Content-Security-Policy",
      ngx_string("default-src 'none'; frame-ancestors 'none'") },
    { NULL, ngx_null_string }
};


static ngx_http_chat_header_t  ngx_http_chat_cors_headers[] = {
    { "Access-Control-Expose-Headers",
      ngx_string("X-Request-Id, Retry-After, RateLimit-Limit, "
                 "RateLimit-Remaining, RateLimit-Reset") },
    { NULL, ngx_null_string }
};


static ngx_http_chat_header_t  ngx_http_chat_vary_headers[] = {
    { "Vary", ngx_string("Origin") },
    { NULL, ngx_null_string }
};


static ngx_http_chat_header_t  ngx_http_chat_preflight_headers[] = {
    { "Access-Control-Allow-Headers",
      ngx_string("Authorization, Content-Type, X-Request-Id") },
    { "Access-Control-Max-Age", ngx_string("600") },
    { NULL, ngx_null_string }
};


static ngx_int_t
ngx_http_chat_add_headers(ngx_http_request_t *r, ngx_http_chat_header_t *h)
{
    for ( /* void */ ; h->key; h++) {
        if (ngx_http_chat_add_header(r, h->key, &h->value) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_set_headers(ngx_http_request_t *r)
{
    ngx_str_t                 *origin;
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ctx && ngx_http_chat_add_header(r, "X-Request-Id", &ctx->request_id)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_chat_add_headers(r, ngx_http_chat_always_headers) != NGX_OK) {
        return NGX_ERROR;
    }

    if (clcf->security_headers) {
        if (ngx_http_chat_add_headers(r, ngx_http_chat_security_headers)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

#if (NGX_HTTP_SSL)
        if (r->connection->ssl && clcf->hsts_max_age > 0) {
            u_char     *p;
            ngx_str_t   v;

            p = ngx_pnalloc(r->pool, sizeof("max-age=; includeSubDomains")
                                     + NGX_TIME_T_LEN);
            if (p == NULL) {
                return NGX_ERROR;
            }

            v.data = p;
            v.len = ngx_sprintf(p, "max-age=%T; includeSubDomains",
                                clcf->hsts_max_age) - p;

            if (ngx_http_chat_add_header(r, "Strict-Transport-Security", &v)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
#endif
    }

    origin = ngx_http_chat_cors_match(r);

    if (origin) {
        if (ngx_http_chat_add_header(r, "Access-Control-Allow-Origin", origin)
            != NGX_OK
            || ngx_http_chat_add_headers(r, ngx_http_chat_cors_headers)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (clcf->cors_origins
        && ngx_http_chat_add_headers(r, ngx_http_chat_vary_headers) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* returns the Access-Control-Allow-Origin value, or NULL */

static ngx_str_t *
ngx_http_chat_cors_match(ngx_http_request_t *r)
{
    ngx_str_t                 *o;
    ngx_uint_t                 i;
    ngx_table_elt_t           *h;
    ngx_http_chat_loc_conf_t  *clcf;

    static ngx_str_t  ngx_http_chat_any_origin = ngx_string("*");

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);

    if (clcf->cors_origins == NULL) {
        return NULL;
    }

    h = ngx_http_chat_find_header(r, "Origin", sizeof("Origin") - 1);
    if (h == NULL) {
        return NULL;
    }

    o = clcf->cors_origins->elts;

    for (i = 0; i < clcf->cors_origins->nelts; i++) {
        if (o[i].len == 1 && o[i].data[0] == '*') {
            return &ngx_http_chat_any_origin;
        }

        if (o[i].len == h->value.len
            && ngx_strncasecmp(o[i].data, h->value.data, o[i].len) == 0)
        {
            return &h->value;
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_chat_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json)
{
    size_t        len;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = json_dumpb(json, NULL, 0, JSON_COMPACT);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        json_decref(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last += json_dumpb(json, (char *) b->pos, len, JSON_COMPACT);
    *b->last++ = '\n';
    json_decref(json);

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    if (ngx_http_chat_set_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_type = ngx_http_chat_json_type;
    r->headers_out.content_type_len = ngx_http_chat_json_type.len;
    r->headers_out.content_length_n = b->last - b->pos;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_chat_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    return ngx_http_chat_send_error_details(r, status, code, message, NULL);
}


/* details, if any, is stolen */

ngx_int_t
ngx_http_chat_send_error_details(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message, json_t *details)
{
    json_t  *json;

    /*
     * The body, if any, is not ours to read any more; a client waiting
     * for "100 Continue" must not be told to send it.
     */
    r->expect_tested = 1;

    if (status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        /* not worth reading: answer, then close once the client stops */
        r->keepalive = 0;
        r->lingering_close = 1;

    } else if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    /* the callers log the causes of the 5xx they send */

    json = json_pack("{s:{s:s,s:s}}", "error", "code", code,
                     "message", message);

    if (details) {
        if (json) {
            json_object_set_new(json_object_get(json, "error"), "details",
                                details);

        } else {
            json_decref(details);
        }
    }

    return ngx_http_chat_send_json(r, status, json);
}


static ngx_int_t
ngx_http_chat_methods(ngx_http_request_t *r, ngx_uint_t allowed,
    ngx_str_t *out)
{
    u_char      *p;
    ngx_uint_t   i;

    static struct {
        ngx_uint_t   method;
        ngx_str_t    name;
    } ngx_http_chat_method_names[] = {
        { NGX_HTTP_GET, ngx_string("GET, HEAD, ") },
        { NGX_HTTP_POST, ngx_string("POST, ") },
        { NGX_HTTP_PUT, ngx_string("PUT, ") },
        { NGX_HTTP_PATCH, ngx_string("PATCH, ") },
        { NGX_HTTP_DELETE, ngx_string("DELETE, ") },
    };

    p = ngx_pnalloc(r->pool, sizeof("GET, HEAD, POST, PUT, PATCH, DELETE, "
                                    "OPTIONS"));
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    for (i = 0;
         i < sizeof(ngx_http_chat_method_names)
             / sizeof(ngx_http_chat_method_names[0]);
         i++)
    {
        if (allowed & ngx_http_chat_method_names[i].method) {
            p = ngx_cpymem(p, ngx_http_chat_method_names[i].name.data,
                           ngx_http_chat_method_names[i].name.len);
        }
    }

    p = ngx_cpymem(p, "OPTIONS", sizeof("OPTIONS") - 1);
    out->len = p - out->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_send_method_not_allowed(ngx_http_request_t *r,
    ngx_uint_t allowed)
{
    ngx_str_t  methods;

    if (ngx_http_chat_methods(r, allowed, &methods) != NGX_OK
        || ngx_http_chat_add_header(r, "Allow", &methods) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                    "method_not_allowed",
                                    "this method is not allowed here");
}


/* OPTIONS: a CORS preflight when it comes from an allowed origin */

ngx_int_t
ngx_http_chat_send_preflight(ngx_http_request_t *r, ngx_uint_t allowed)
{
    ngx_str_t         methods;
    ngx_table_elt_t  *h;

    h = ngx_http_chat_find_header(r, "Access-Control-Request-Method",
                                  sizeof("Access-Control-Request-Method") - 1);

    if (h && ngx_http_chat_find_header(r, "Origin", sizeof("Origin") - 1)
        && ngx_http_chat_cors_match(r) == NULL)
    {
        return ngx_http_chat_send_error(r, NGX_HTTP_FORBIDDEN,
                                        "cors_origin_denied",
                                        "this origin may not use the API");
    }

    r->expect_tested = 1;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    if (ngx_http_chat_methods(r, allowed, &methods) != NGX_OK
        || ngx_http_chat_add_header(r, "Allow", &methods) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (h) {
        if (ngx_http_chat_add_header(r, "Access-Control-Allow-Methods",
                                     &methods) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_chat_add_headers(r, ngx_http_chat_preflight_headers)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_chat_set_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


ngx_int_t
ngx_http_chat_discard_body(ngx_http_request_t *r)
{
    r->expect_tested = 1;

    return ngx_http_discard_request_body(r);
}


/*
 * Checks the content type and size, then reads the body and parses it as
 * a JSON object into ctx->body before calling handler.
 */

ngx_int_t
ngx_http_chat_read_json_body(ngx_http_request_t *r,
    ngx_int_t (*handler)(ngx_http_request_t *r))
{
    u_char                    *p, *last;
    ngx_int_t                  rc;
    ngx_str_t                 *type;
    ngx_http_chat_ctx_t       *ctx;
    ngx_http_chat_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (r->headers_in.content_type == NULL) {
        return ngx_http_chat_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        "unsupported_media_type",
                                        "the body must be application/json");
    }

    /* "application/json", optionally followed by parameters */
    type = &r->headers_in.content_type->value;
    p = type->data;
    last = p + type->len;

    if (type->len < sizeof("application/json") - 1
        || ngx_strncasecmp(p, (u_char *) "application/json",
                           sizeof("application/json") - 1) != 0
        || (p + sizeof("application/json") - 1 != last
            && p[sizeof("application/json") - 1] != ';'
            && p[sizeof("application/json") - 1] != ' '))
    {
        return ngx_http_chat_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        "unsupported_media_type",
                                        "the body must be application/json");
    }

    if (r->headers_in.content_length_n > (off_t) clcf->max_body_size) {
        return ngx_http_chat_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "payload_too_large",
                                        "the request body is too large");
    }

    ctx->body_handler = handler;

    rc = ngx_http_read_client_request_body(r, ngx_http_chat_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        /*
         * The rest of a malformed or oversized body is still on the
         * connection: it must never be read as the next request.
         */
        r->keepalive = 0;
        r->lingering_close = 1;

        if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
            return ngx_http_chat_send_error(r, rc, "payload_too_large",
                                            "the request body is too large");
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
ngx_http_chat_body_handler(ngx_http_request_t *r)
{
    off_t                      total;
    u_char                    *buf, *p;
    json_t                    *json;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    json_error_t               err;
    ngx_http_chat_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_chat_module);

    total = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            total += ngx_buf_size(cl->buf);
        }
    }

    if (total > (off_t) clcf->max_body_size) {
        ngx_http_finalize_request(r,
            ngx_http_chat_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "payload_too_large",
                                     "the request body is too large"));
        return;
    }

    if (total == 0) {
        ngx_http_finalize_request(r,
            ngx_http_chat_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid_json",
                                     "the request body is empty"));
        return;
    }

    /* a body NGINX spilled to its file is read and parsed in a thread */
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->in_file) {
            ngx_http_finalize_request(r,
                                      ngx_http_chat_body_file_json(r, total));
            return;
        }
    }

    buf = ngx_pnalloc(r->pool, (size_t) total);
    if (buf == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = buf;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    /* jansson checks UTF-8 and refuses \u0000 unless told otherwise */
    json = json_loadb((const char *) buf, p - buf,
                      NGX_HTTP_CHAT_JSON_BODY_FLAGS, &err);

    ngx_http_finalize_request(r, ngx_http_chat_body_json(r, json));
}


/* the parsed body (or NULL) to ctx->body, then the route's handler */

ngx_int_t
ngx_http_chat_body_json(ngx_http_request_t *r, json_t *json)
{
    ngx_pool_cleanup_t   *cln;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (json == NULL || !json_is_object(json)) {
        if (json) {
            json_decref(json);
        }

        return ngx_http_chat_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_json",
                                        json ? "the body must be a JSON "
                                               "object"
                                             : "the body is not valid JSON");
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        json_decref(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_chat_json_cleanup;
    cln->data = json;
    ctx->body = json;

    return ctx->body_handler(r);
}


static void
ngx_http_chat_json_cleanup(void *data)
{
    json_decref((json_t *) data);
}


ngx_int_t
ngx_http_chat_send_invalid(ngx_http_request_t *r, const char *field,
    const char *problem)
{
    u_char  *msg, *p;
    size_t   len;

    len = ngx_strlen(field) + ngx_strlen(problem) + 2;

    msg = ngx_pnalloc(r->pool, len);
    if (msg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(msg, "%s %s", field, problem);
    *p = '\0';

    return ngx_http_chat_send_error_details(r, NGX_HTTP_BAD_REQUEST,
                                            "invalid_request", (char *) msg,
                                            json_pack("{s:s}", "field",
                                                      field));
}


/* the end of an async step of an HTTP request */
void
ngx_http_chat_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_finalize_request(r, rc);
}
