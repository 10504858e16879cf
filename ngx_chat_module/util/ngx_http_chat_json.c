/*
 * Copyright (C) ngx_chat_module authors
 *
 * The checks of a request's JSON members that need no request: what the
 * REST handlers, the operations and the fuzz target share.
 */


#include "ngx_http_chat_json.h"


/*
 * A string member of a JSON object: NULL when it is fine (out->data is
 * NULL when an optional member is absent or null), or a sentence saying
 * what is wrong.  Strings from jansson are valid UTF-8 without NUL.
 */

const char *
ngx_http_chat_json_string(json_t *obj, const char *name, ngx_uint_t required,
    size_t max, ngx_str_t *out)
{
    json_t  *v;

    out->len = 0;
    out->data = NULL;

    v = json_object_get(obj, name);

    if (v == NULL || json_is_null(v)) {
        return required ? "is required" : NULL;
    }

    if (!json_is_string(v)) {
        return "must be a string";
    }

    out->len = json_string_length(v);
    out->data = (u_char *) json_string_value(v);

    if (required && out->len == 0) {
        return "must not be empty";
    }

    if (ngx_utf8_length(out->data, out->len) > max) {
        return "is too long";
    }

    return NULL;
}


/* refuses C0 and C1 control characters and DEL in user-visible text */

ngx_uint_t
ngx_http_chat_has_controls(ngx_str_t *s, ngx_uint_t allow_newline)
{
    u_char  *p, *last;

    p = s->data;
    last = p + s->len;

    while (p < last) {
        if (*p < 0x20 || *p == 0x7f) {
            if (!(allow_newline && *p == '\n')) {
                return 1;
            }
        }

        /* U+0080..U+009F are C2 80..C2 9F in UTF-8 */
        if (*p == 0xc2 && p + 1 < last && p[1] >= 0x80 && p[1] <= 0x9f) {
            return 1;
        }

        p++;
    }

    return 0;
}
