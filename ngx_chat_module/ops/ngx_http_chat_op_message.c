/*
 * Copyright (C) ngx_chat_module authors
 *
 * Edits, deletes, reactions and markers as operations: the checks of
 * what the user sent, then one store step (two for a marker by message)
 * owned by the operation, never by a request.
 */


#include "ngx_http_chat_op_message.h"
#include "ngx_http_chat_op_input.h"
#include "../store/ngx_http_chat_chats_store.h"


static ngx_uint_t ngx_http_chat_emoji_base(uint32_t c);
static ngx_uint_t ngx_http_chat_emoji_modifier(uint32_t c);

static ngx_http_chat_mongo_run_pt ngx_http_chat_op_marker_found(void *arg,
    ngx_int_t *rc, json_t *answer);


/* the windows of edits and deletes: the worker's configuration */

static ngx_http_chat_main_conf_t *
ngx_http_chat_op_conf(void)
{
    return ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);
}


ngx_int_t
ngx_http_chat_op_edit(const bson_oid_t *user, const bson_oid_t *id,
    json_t *content, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, const char **field, const char **err)
{
    size_t                      size;
    json_t                     *text;
    ngx_int_t                   rc;
    ngx_str_t                   type;
    ngx_http_chat_msg_arg_t    *arg;
    ngx_http_chat_main_conf_t  *cmcf;

    ngx_str_set(&type, "text");

    text = ngx_http_chat_input_content(&type, content, field, err);
    if (text == NULL) {
        return *err ? NGX_DECLINED : NGX_ERROR;
    }

    size = sizeof(ngx_http_chat_msg_arg_t) + json_string_length(text) + 1;

    arg = ngx_calloc(size, ngx_cycle->log);
    if (arg == NULL) {
        json_decref(text);
        return NGX_ERROR;
    }

    arg->content_len = json_string_length(text);
    ngx_memcpy(arg + 1, json_string_value(text), arg->content_len);
    json_decref(text);

    cmcf = ngx_http_chat_op_conf();
    if (cmcf == NULL) {
        ngx_free(arg);
        return NGX_ERROR;
    }

    arg->user = *user;
    arg->id = *id;
    arg->window = (int64_t) cmcf->edit_window * 1000;

    rc = ngx_http_chat_op_store(ngx_http_chat_msg_edit_run, NULL, arg, size,
                                done, data, out);
    ngx_free(arg);

    return rc;
}


ngx_int_t
ngx_http_chat_op_delete(const bson_oid_t *user, const bson_oid_t *id,
    ngx_uint_t everyone, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out)
{
    ngx_http_chat_msg_arg_t     arg;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_chat_op_conf();
    if (cmcf == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&arg, sizeof(ngx_http_chat_msg_arg_t));
    arg.user = *user;
    arg.id = *id;
    arg.everyone = everyone ? 1 : 0;
    arg.window = (int64_t) cmcf->delete_window * 1000;

    return ngx_http_chat_op_store(ngx_http_chat_msg_delete_run, NULL, &arg,
                                  sizeof(ngx_http_chat_msg_arg_t), done,
                                  data, out);
}


ngx_int_t
ngx_http_chat_op_react(const bson_oid_t *user, const bson_oid_t *id,
    json_t *emoji, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, const char **field, const char **err)
{
    u_char                    buf[sizeof(ngx_http_chat_msg_arg_t)
                                  + NGX_HTTP_CHAT_EMOJI_MAX * 4 + 1];
    json_t                   *body;
    ngx_str_t                 e;
    ngx_http_chat_msg_arg_t  *arg;

    *field = "emoji";

    /* the input check reads a field of an object */
    body = json_pack("{s:O*}", "emoji", emoji);
    if (body == NULL) {
        return NGX_ERROR;
    }

    *err = ngx_http_chat_json_string(body, "emoji", 1,
                                     NGX_HTTP_CHAT_EMOJI_MAX * 4, &e);
    if (*err) {
        json_decref(body);
        return NGX_DECLINED;
    }

    /* at most 8 code points of at most 4 bytes each */
    if (e.len > NGX_HTTP_CHAT_EMOJI_MAX * 4
        || !ngx_http_chat_emoji_valid(&e))
    {
        json_decref(body);
        *field = "invalid_emoji";
        *err = "emoji must be 1 to 8 code points of one emoji";
        return NGX_ABORT;
    }

    ngx_memzero(buf, sizeof(buf));
    arg = (ngx_http_chat_msg_arg_t *) buf;

    arg->user = *user;
    arg->id = *id;
    ngx_memcpy(arg + 1, e.data, e.len);
    json_decref(body);

    return ngx_http_chat_op_store(ngx_http_chat_msg_react_run, NULL, arg,
                                  sizeof(ngx_http_chat_msg_arg_t) + e.len + 1,
                                  done, data, out);
}


ngx_int_t
ngx_http_chat_op_marker(const bson_oid_t *user, const bson_oid_t *chat,
    json_t *up_to_seq, ngx_uint_t read, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out, const char **field,
    const char **err)
{
    json_int_t               n;
    ngx_http_chat_msg_arg_t  arg;

    *field = "upToSeq";

    if (up_to_seq == NULL || json_is_null(up_to_seq)) {
        *err = "is required";
        return NGX_DECLINED;
    }

    if (!json_is_integer(up_to_seq)) {
        *err = "must be an integer";
        return NGX_DECLINED;
    }

    n = json_integer_value(up_to_seq);

    if (n < 0 || n > NGX_MAX_OFF_T_VALUE) {
        *err = "must be a number, 0 or more";
        return NGX_DECLINED;
    }

    ngx_memzero(&arg, sizeof(ngx_http_chat_msg_arg_t));
    arg.user = *user;
    arg.chat = *chat;
    arg.seq = n;
    arg.read = read ? 1 : 0;

    return ngx_http_chat_op_store(ngx_http_chat_msg_marker_run, NULL, &arg,
                                  sizeof(ngx_http_chat_msg_arg_t), done,
                                  data, out);
}


ngx_int_t
ngx_http_chat_op_marker_at(const bson_oid_t *user, const bson_oid_t *id,
    ngx_uint_t read, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out)
{
    ngx_http_chat_msg_arg_t  arg;

    ngx_memzero(&arg, sizeof(ngx_http_chat_msg_arg_t));
    arg.user = *user;
    arg.id = *id;
    arg.read = read ? 1 : 0;

    /* the message as I may see it, then the marker up to it */
    return ngx_http_chat_op_store(ngx_http_chat_msg_get_run,
                                  ngx_http_chat_op_marker_found, &arg,
                                  sizeof(ngx_http_chat_msg_arg_t), done,
                                  data, out);
}


static ngx_http_chat_mongo_run_pt
ngx_http_chat_op_marker_found(void *data, ngx_int_t *rc, json_t *answer)
{
    ngx_http_chat_msg_arg_t *arg = data;

    json_t     *message, *seq;
    ngx_str_t   chat;

    if (*rc != NGX_OK && *rc != NGX_DONE) {
        /* not found, not mine to see, a back end down: said as it is */
        return NULL;
    }

    message = json_object_get(answer, "message");
    seq = json_object_get(message, "seq");

    if (!json_is_integer(seq) || json_integer_value(seq) < 0
        || ngx_http_chat_rt_str_field(message, "chatId", &chat) != NGX_OK
        || chat.len != 24
        || !bson_oid_is_valid((const char *) chat.data, chat.len))
    {
        *rc = NGX_ERROR;
        return NULL;
    }

    bson_oid_init_from_string(&arg->chat, (const char *) chat.data);
    arg->seq = json_integer_value(seq);

    return ngx_http_chat_msg_marker_run;
}


void
ngx_http_chat_op_message_tell(ngx_int_t rc, json_t *answer,
    ngx_uint_t created, ngx_http_chat_op_told_t *told)
{
    json_t  *code, *message;

    switch (rc) {

    case NGX_BUSY:
        json_decref(answer);
        ngx_memzero(told, sizeof(ngx_http_chat_op_told_t));
        told->status = NGX_HTTP_FORBIDDEN;
        told->code = "forbidden";
        told->message = "this is not yours to change";
        return;

    case NGX_ABORT:
        code = json_object_get(answer, "code");
        message = json_object_get(answer, "message");

        if (!json_is_string(code) || !json_is_string(message)) {
            break;
        }

        ngx_memzero(told, sizeof(ngx_http_chat_op_told_t));
        told->status = NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY;
        told->code = json_string_value(code);
        told->message = json_string_value(message);
        told->keep = answer;
        return;

    default:
        break;
    }

    ngx_http_chat_op_tell(rc, answer, created, told);
}


/* a code point that is an emoji by itself */

static ngx_uint_t
ngx_http_chat_emoji_base(uint32_t c)
{
    return (c >= 0x1f000 && c <= 0x1faff)
           || (c >= 0x2600 && c <= 0x27bf)
           || (c >= 0x2300 && c <= 0x23ff)
           || (c >= 0x2b00 && c <= 0x2bff)
           || (c >= 0x2190 && c <= 0x21ff)
           || (c >= 0x25a0 && c <= 0x25ff)
           || c == 0x2934 || c == 0x2935
           || c == 0x3030 || c == 0x303d || c == 0x3297 || c == 0x3299
           || c == 0x203c || c == 0x2049 || c == 0x2122 || c == 0x2139
           || c == 0x00a9 || c == 0x00ae;
}


/* a code point that only joins or modifies an emoji */

static ngx_uint_t
ngx_http_chat_emoji_modifier(uint32_t c)
{
    return c == 0x200d                        /* zero width joiner */
           || c == 0xfe0e || c == 0xfe0f      /* variation selectors */
           || c == 0x20e3                     /* combining keycap */
           || (c >= 0xe0020 && c <= 0xe007f); /* tags (flags) */
}


/*
 * 1 to 8 code points, each an emoji or a joiner or modifier, at least
 * one an emoji (skin tones and regional indicators are in U+1F000..)
 */

ngx_uint_t
ngx_http_chat_emoji_valid(ngx_str_t *s)
{
    u_char      *p, *last;
    uint32_t     c;
    ngx_uint_t   n, base;

    p = s->data;
    last = s->data + s->len;
    n = 0;
    base = 0;

    while (p < last) {
        c = (*p < 0x80) ? *p++ : ngx_utf8_decode(&p, last - p);

        if (c > 0x10ffff || ++n > NGX_HTTP_CHAT_EMOJI_MAX) {
            return 0;
        }

        if (ngx_http_chat_emoji_base(c)) {
            base = 1;

        } else if (!ngx_http_chat_emoji_modifier(c)) {
            return 0;
        }
    }

    return base;
}
