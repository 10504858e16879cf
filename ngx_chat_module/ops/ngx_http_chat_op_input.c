/*
 * Copyright (C) ngx_chat_module authors
 *
 * The checks of what users send, the same whichever transport brought
 * it: ids, text, and a message's content by its type.
 */


#include "ngx_http_chat_op_input.h"
#include "../util/ngx_http_chat_text.h"


#define NGX_HTTP_CHAT_TEXT_MAX  4096


/* an id from the body: NULL when fine, or what is wrong */

const char *
ngx_http_chat_input_oid(json_t *body, const char *name,
    ngx_uint_t required, bson_oid_t *oid, ngx_uint_t *found)
{
    ngx_str_t    s;
    const char  *err;

    *found = 0;

    if ((err = ngx_http_chat_json_string(body, name, required, 24, &s))) {
        return err;
    }

    if (s.data == NULL) {
        return NULL;
    }

    if (!ngx_http_chat_is_oid(&s)) {
        return "must be an id of 24 hexadecimal digits";
    }

    bson_oid_init_from_string_unsafe(oid, (char *) s.data);
    *found = 1;

    return NULL;
}


/* text a user typed: no control characters, or only \n and \t */

ngx_uint_t
ngx_http_chat_input_controls(ngx_str_t *s, ngx_uint_t multiline)
{
    u_char  *p, *last;

    last = s->data + s->len;

    for (p = s->data; p < last; p++) {
        if ((*p < 0x20 && !(multiline && (*p == '\n' || *p == '\t')))
            || *p == 0x7f
            || (*p == 0xc2 && p + 1 < last && p[1] >= 0x80 && p[1] <= 0x9f))
        {
            return 1;
        }
    }

    return 0;
}


/* an optional string of at most max characters, without controls */

const char *
ngx_http_chat_input_text(json_t *obj, const char *name, ngx_uint_t required,
    size_t max, ngx_uint_t multiline, ngx_str_t *out)
{
    const char  *err;

    if ((err = ngx_http_chat_json_string(obj, name, required, max, out))) {
        return err;
    }

    if (out->data && ngx_http_chat_input_controls(out, multiline)) {
        return "has control characters";
    }

    return NULL;
}


/* a number member of an object, within [min, max] */

static ngx_int_t
ngx_http_chat_input_coord(json_t *obj, const char *name, double min,
    double max, double *out)
{
    json_t  *v;

    v = json_object_get(obj, name);

    if (v == NULL || !json_is_number(v)) {
        return NGX_ERROR;
    }

    *out = json_number_value(v);

    return (*out >= min && *out <= max) ? NGX_OK : NGX_ERROR;
}


/*
 * The type a message's content names inside it, as the seed sends it
 * ({type: "text", text}): it sets an absent type, and must agree with a
 * given one
 */

static const char *
ngx_http_chat_input_inner_type(ngx_str_t *type, json_t *in,
    const char **field)
{
    json_t     *v;
    ngx_str_t   inner;

    v = json_object_get(in, "type");

    if (v == NULL) {
        return NULL;
    }

    *field = "content.type";

    if (!json_is_string(v)) {
        return "must be a string";
    }

    inner.data = (u_char *) json_string_value(v);
    inner.len = json_string_length(v);

    if (type->data == NULL) {
        *type = inner;
        return NULL;
    }

    if (inner.len != type->len
        || ngx_strncmp(inner.data, type->data, type->len) != 0)
    {
        return "must be the message's type";
    }

    return NULL;
}


/*
 * The content of a message of type, checked and rebuilt with only the
 * fields that type has: a new reference, or NULL with *field and *err.
 * The seed's form is the same content with the type inside it; a text's
 * {type: "text", text} becomes the string that is stored.
 */

json_t *
ngx_http_chat_input_content(ngx_str_t *type, json_t *in, const char **field,
    const char **err)
{
    double       lat, lng;
    json_t      *out;
    ngx_str_t    s, name, phone, caption;
    const char  *lat_key, *lng_key;

    if (json_is_object(in)
        && (*err = ngx_http_chat_input_inner_type(type, in, field)))
    {
        return NULL;
    }

    if (type->data == NULL) {
        *field = "type";
        *err = "is required";
        return NULL;
    }

    if (!((type->len == 4 && ngx_strncmp(type->data, "text", 4) == 0)
          || (type->len == 8 && ngx_strncmp(type->data, "location", 8) == 0)
          || (type->len == 7 && ngx_strncmp(type->data, "contact", 7) == 0)
          || (type->len == 5 && ngx_strncmp(type->data, "image", 5) == 0)
          || (type->len == 5 && ngx_strncmp(type->data, "video", 5) == 0)
          || (type->len == 5 && ngx_strncmp(type->data, "audio", 5) == 0)
          || (type->len == 8 && ngx_strncmp(type->data, "document", 8) == 0)))
    {
        *field = "type";
        *err = "must be text, image, video, audio, document, location or "
               "contact";
        return NULL;
    }

    *field = "content";

    if (in == NULL || json_is_null(in)) {
        *err = "is required";
        return NULL;
    }

    if (type->len == 4 && ngx_strncmp(type->data, "text", 4) == 0) {
        /* the seed's {type: "text", text}: the type inside says so */
        if (json_is_object(in) && json_object_get(in, "type")) {
            *field = "content.text";
            in = json_object_get(in, "text");

            if (in == NULL || json_is_null(in)) {
                *err = "is required";
                return NULL;
            }

            if (!json_is_string(in)) {
                *err = "must be a string";
                return NULL;
            }
        }

        if (!json_is_string(in)) {
            *err = "must be a string, or an object {type, text}";
            return NULL;
        }

        s.data = (u_char *) json_string_value(in);
        s.len = json_string_length(in);

        if (s.len == 0 || ngx_utf8_length(s.data, s.len)
                          > NGX_HTTP_CHAT_TEXT_MAX)
        {
            *err = "must be 1 to 4096 characters";
            return NULL;
        }

        if (ngx_http_chat_input_controls(&s, 1)) {
            *err = "has control characters";
            return NULL;
        }

        return json_incref(in);
    }

    if (!json_is_object(in)) {
        *err = "must be an object";
        return NULL;
    }

    if (type->len == 8 && ngx_strncmp(type->data, "location", 8) == 0) {
        /* {lat, lng} or, as messages show it, {latitude, longitude} */
        lat_key = json_object_get(in, "latitude") ? "latitude" : "lat";
        lng_key = json_object_get(in, "longitude") ? "longitude" : "lng";

        if (ngx_http_chat_input_coord(in, lat_key, -90, 90, &lat) != NGX_OK)
        {
            *field = (ngx_strcmp(lat_key, "lat") == 0) ? "content.lat"
                                                       : "content.latitude";
            *err = "must be a number from -90 to 90";
            return NULL;
        }

        if (ngx_http_chat_input_coord(in, lng_key, -180, 180, &lng)
            != NGX_OK)
        {
            *field = (ngx_strcmp(lng_key, "lng") == 0) ? "content.lng"
                                                       : "content.longitude";
            *err = "must be a number from -180 to 180";
            return NULL;
        }

        *field = "content.name";
        if ((*err = ngx_http_chat_input_text(in, "name", 0, 256, 0, &name))) {
            return NULL;
        }

        out = json_pack("{s:f,s:f}", "lat", lat, "lng", lng);

        if (out && name.data) {
            json_object_set_new(out, "name",
                                json_stringn((char *) name.data, name.len));
        }

        return out;
    }

    if (type->len == 7 && ngx_strncmp(type->data, "contact", 7) == 0) {
        *field = "content.name";
        if ((*err = ngx_http_chat_input_text(in, "name", 1, 100, 0, &name))) {
            return NULL;
        }

        *field = "content.phone";
        if ((*err = ngx_http_chat_input_text(in, "phone", 1, 32, 0, &phone)))
        {
            return NULL;
        }

        return json_pack("{s:s%,s:s%}", "name", name.data, name.len,
                         "phone", phone.data, phone.len);
    }

    if ((type->len == 5 && ngx_strncmp(type->data, "image", 5) == 0)
        || (type->len == 5 && ngx_strncmp(type->data, "video", 5) == 0)
        || (type->len == 5 && ngx_strncmp(type->data, "audio", 5) == 0)
        || (type->len == 8 && ngx_strncmp(type->data, "document", 8) == 0))
    {
        *field = "content.mediaId";
        if ((*err = ngx_http_chat_json_string(in, "mediaId", 1, 24, &s))) {
            return NULL;
        }

        if (!ngx_http_chat_is_oid(&s)) {
            *err = "must be an id of 24 hexadecimal digits";
            return NULL;
        }

        *field = "content.caption";
        if ((*err = ngx_http_chat_input_text(in, "caption", 0, 1024, 1,
                                             &caption)))
        {
            return NULL;
        }

        out = json_pack("{s:s%}", "mediaId", s.data, s.len);

        if (out && caption.data) {
            json_object_set_new(out, "caption",
                                json_stringn((char *) caption.data,
                                             caption.len));
        }

        return out;
    }

    *err = NULL;

    return NULL;
}


const char *
ngx_http_chat_input_oids(json_t *ids, bson_oid_t *oids, const bson_oid_t *me)
{
    size_t      i, j;
    json_t     *v;
    ngx_str_t   s;

    json_array_foreach(ids, i, v) {
        if (!json_is_string(v)) {
            return "must hold ids, as strings";
        }

        s.data = (u_char *) json_string_value(v);
        s.len = json_string_length(v);

        if (!ngx_http_chat_is_oid(&s)) {
            return "must hold ids of 24 hexadecimal digits";
        }

        bson_oid_init_from_string_unsafe(&oids[i], (char *) s.data);

        if (me && bson_oid_equal(&oids[i], me)) {
            return "must not hold you: you are in it";
        }

        for (j = 0; j < i; j++) {
            if (bson_oid_equal(&oids[i], &oids[j])) {
                return "must not hold an id twice";
            }
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_chat_input_bool(json_t *obj, const char *name, ngx_uint_t *out)
{
    json_t  *v;

    v = json_object_get(obj, name);

    if (v == NULL || json_is_null(v)) {
        return NGX_DECLINED;
    }

    if (!json_is_boolean(v)) {
        return NGX_ERROR;
    }

    *out = json_is_true(v);

    return NGX_OK;
}


/*
 * mentions: up to NGX_HTTP_CHAT_MENTIONS_MAX user ids, each once; the
 * sender's own is dropped (nobody is told of their own mention)
 */
const char *
ngx_http_chat_input_mentions(const bson_oid_t *user, json_t *body,
    bson_oid_t *out, ngx_uint_t *n)
{
    size_t       i;
    json_t      *v, *list;
    ngx_str_t    s;
    ngx_uint_t   k;
    bson_oid_t   oid;

    *n = 0;
    list = json_object_get(body, "mentions");

    if (list == NULL || json_is_null(list)) {
        return NULL;
    }

    if (!json_is_array(list)
        || json_array_size(list) > NGX_HTTP_CHAT_MENTIONS_MAX)
    {
        return "must be an array of at most " NGX_HTTP_CHAT_MENTIONS_MAX_S
               " user ids";
    }

    json_array_foreach(list, i, v) {
        if (!json_is_string(v)) {
            return "must hold user ids of 24 hexadecimal digits";
        }

        s.data = (u_char *) json_string_value(v);
        s.len = json_string_length(v);

        if (!ngx_http_chat_is_oid(&s)) {
            return "must hold user ids of 24 hexadecimal digits";
        }

        bson_oid_init_from_string_unsafe(&oid, (char *) s.data);

        if (bson_oid_equal(&oid, user)) {
            continue;
        }

        for (k = 0; k < *n; k++) {
            if (bson_oid_equal(&out[k], &oid)) {
                break;
            }
        }

        if (k == *n) {
            out[(*n)++] = oid;
        }
    }

    return NULL;
}

