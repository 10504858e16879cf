/*
 * Copyright (C) ngx_chat_module authors
 *
 * libFuzzer target: a JSON request body, parsed as the REST handlers
 * parse it, through the member checks the operations make of it: ids
 * (chatId, replyTo, memberIds), text (name, about), booleans, mentions,
 * and a message's content rebuilt for its type.
 *
 * sources: ngx_chat_module/ops/ngx_http_chat_op_input.c
 * sources: ngx_chat_module/util/ngx_http_chat_json.c
 * sources: ngx_chat_module/util/ngx_http_chat_text.c
 * libs: -ljansson -lbson-1.0
 *
 * The input: the body.
 */


#include "ngx_http_chat_fuzz.h"
#include "ops/ngx_http_chat_op_input.h"


#define NGX_HTTP_CHAT_FUZZ_IDS_MAX  256


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t       *body, *ids, *content;
    ngx_str_t     type, text;
    ngx_uint_t    found, flag, n;
    bson_oid_t    me, oid, oids[NGX_HTTP_CHAT_FUZZ_IDS_MAX];
    bson_oid_t    mentions[NGX_HTTP_CHAT_MENTIONS_MAX];
    const char   *field, *err;
    json_error_t  jerr;

    (void) ngx_http_chat_fuzz_init();

    body = json_loadb((const char *) data, size,
                      NGX_HTTP_CHAT_JSON_BODY_FLAGS, &jerr);
    if (body == NULL) {
        return 0;
    }

    bson_oid_init_from_string(&me, "65a1b2c3d4e5f60718293a4b");

    (void) ngx_http_chat_input_oid(body, "chatId", 1, &oid, &found);
    (void) ngx_http_chat_input_oid(body, "replyTo", 0, &oid, &found);
    (void) ngx_http_chat_input_text(body, "name", 1, 100, 0, &text);
    (void) ngx_http_chat_input_text(body, "about", 0, 500, 1, &text);
    (void) ngx_http_chat_input_bool(body, "muted", &flag);
    (void) ngx_http_chat_input_mentions(&me, body, mentions, &n);

    /* the caller checks the array's size first */
    ids = json_object_get(body, "memberIds");
    if (json_is_array(ids)
        && json_array_size(ids) <= NGX_HTTP_CHAT_FUZZ_IDS_MAX)
    {
        (void) ngx_http_chat_input_oids(ids, oids, &me);
        (void) ngx_http_chat_input_oids(ids, oids, NULL);
    }

    /* a message: its type beside its content, or inside it (the seed's) */
    if (ngx_http_chat_json_string(body, "type", 0, 15, &type) == NULL) {
        field = NULL;
        err = NULL;

        content = ngx_http_chat_input_content(&type,
                                              json_object_get(body,
                                                              "content"),
                                              &field, &err);
        if (content) {
            /* what is stored: it must encode */
            if (json_dumpb(content, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY)
                == 0)
            {
                abort();
            }

            json_decref(content);

        } else if (err == NULL || field == NULL) {
            /* no memory is the one failure without a sentence */
            abort();
        }
    }

    json_decref(body);

    return 0;
}
