/*
 * Copyright (C) ngx_chat_module authors
 *
 * Stories as operations: what a client sent is checked here, on the event
 * loop; what it refers to (a media, a story I may see) in the store step.
 */


#include "ngx_http_chat_op_story.h"
#include "ngx_http_chat_op_input.h"
#include "ngx_http_chat_op_message.h"
#include "../store/ngx_http_chat_stories_store.h"
#include "../util/ngx_http_chat_text.h"


static ngx_http_chat_main_conf_t *
ngx_http_chat_op_story_conf(void)
{
    return ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);
}


/* body.privacy: {mode, userIds?}; absent is everyone */

static ngx_int_t
ngx_http_chat_op_story_privacy(const bson_oid_t *me, json_t *body,
    ngx_http_chat_story_arg_t *arg, ngx_http_chat_op_refused_t *refused)
{
    json_t      *p, *ids;
    ngx_str_t    mode;
    ngx_uint_t   i;
    const char  *err;

    arg->mode = NGX_HTTP_CHAT_STORY_EVERYONE;

    p = json_object_get(body, "privacy");

    if (p == NULL || json_is_null(p)) {
        return NGX_OK;
    }

    if (!json_is_object(p)) {
        return ngx_http_chat_op_invalid(refused, "privacy",
                                        "must be an object");
    }

    if ((err = ngx_http_chat_json_string(p, "mode", 1, 32, &mode))) {
        return ngx_http_chat_op_invalid(refused, "privacy.mode", err);
    }

    for (i = 0; i < 4; i++) {
        if (mode.len == ngx_strlen(ngx_http_chat_story_modes[i])
            && ngx_strncmp(mode.data, ngx_http_chat_story_modes[i], mode.len)
               == 0)
        {
            break;
        }
    }

    if (i == 4) {
        return ngx_http_chat_op_invalid(refused, "privacy.mode",
                                        "must be everyone, contacts, "
                                        "contacts_except or only");
    }

    arg->mode = i;

    ids = json_object_get(p, "userIds");

    if (i == NGX_HTTP_CHAT_STORY_EVERYONE
        || i == NGX_HTTP_CHAT_STORY_CONTACTS)
    {
        if (ids && !json_is_null(ids)
            && !(json_is_array(ids) && json_array_size(ids) == 0))
        {
            return ngx_http_chat_op_invalid(refused, "privacy.userIds",
                                            "is only for contacts_except "
                                            "and only");
        }

        return NGX_OK;
    }

    if (!json_is_array(ids)) {
        return ngx_http_chat_op_invalid(refused, "privacy.userIds",
                                        "must be an array of user ids");
    }

    if (json_array_size(ids) > NGX_HTTP_CHAT_STORY_IDS_MAX
        || (i == NGX_HTTP_CHAT_STORY_ONLY && json_array_size(ids) == 0))
    {
        return ngx_http_chat_op_invalid(refused, "privacy.userIds",
                                        "must hold 1 to 256 ids (0 to 256 "
                                        "for contacts_except)");
    }

    if ((err = ngx_http_chat_input_oids(ids, arg->ids, me))) {
        return ngx_http_chat_op_invalid(refused, "privacy.userIds", err);
    }

    arg->nids = json_array_size(ids);

    return NGX_OK;
}


/* "#rrggbb" */

static ngx_uint_t
ngx_http_chat_op_story_color(ngx_str_t *s)
{
    ngx_uint_t  i;

    if (s->len != 7 || s->data[0] != '#') {
        return 0;
    }

    for (i = 1; i < 7; i++) {
        if (ngx_hextoi(&s->data[i], 1) == NGX_ERROR) {
            return 0;
        }
    }

    return 1;
}


/* a font's name: letters, digits, '-', '_' and spaces */

static ngx_uint_t
ngx_http_chat_op_story_font(ngx_str_t *s)
{
    u_char  *p;

    for (p = s->data; p < s->data + s->len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9')
              || *p == '-' || *p == '_' || *p == ' '))
        {
            return 0;
        }
    }

    return s->len > 0;
}


ngx_int_t
ngx_http_chat_op_story_create(const bson_oid_t *me, json_t *body,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused)
{
    ngx_int_t                   rc;
    ngx_str_t                   type, text, color, font, caption, media;
    ngx_uint_t                  textual;
    const char                 *err;
    ngx_http_chat_story_arg_t  *arg;
    ngx_http_chat_main_conf_t  *cmcf;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));

    if (!json_is_object(body)) {
        return ngx_http_chat_op_invalid(refused, "body", "must be an object");
    }

    if ((err = ngx_http_chat_json_string(body, "type", 1, 8, &type))) {
        return ngx_http_chat_op_invalid(refused, "type", err);
    }

    textual = (type.len == 4 && ngx_strncmp(type.data, "text", 4) == 0);

    if (!textual
        && !(type.len == 5 && ngx_strncmp(type.data, "image", 5) == 0)
        && !(type.len == 5 && ngx_strncmp(type.data, "video", 5) == 0))
    {
        return ngx_http_chat_op_invalid(refused, "type",
                                        "must be text, image or video");
    }

    if ((err = ngx_http_chat_input_text(body, "text", textual,
                                        NGX_HTTP_CHAT_STORY_TEXT_MAX, 1,
                                        &text)))
    {
        return ngx_http_chat_op_invalid(refused, "text", err);
    }

    if ((err = ngx_http_chat_json_string(body, "backgroundColor", 0, 7,
                                         &color)))
    {
        return ngx_http_chat_op_invalid(refused, "backgroundColor", err);
    }

    if (color.data && !ngx_http_chat_op_story_color(&color)) {
        return ngx_http_chat_op_invalid(refused, "backgroundColor",
                                        "must be a colour as #rrggbb");
    }

    if ((err = ngx_http_chat_json_string(body, "font", 0, 32, &font))) {
        return ngx_http_chat_op_invalid(refused, "font", err);
    }

    if (font.data && !ngx_http_chat_op_story_font(&font)) {
        return ngx_http_chat_op_invalid(refused, "font",
                                        "must be a name of letters, digits, "
                                        "'-', '_' and spaces");
    }

    if ((err = ngx_http_chat_json_string(body, "mediaId", !textual, 24,
                                         &media)))
    {
        return ngx_http_chat_op_invalid(refused, "mediaId", err);
    }

    if ((err = ngx_http_chat_input_text(body, "caption", 0,
                                        NGX_HTTP_CHAT_STORY_CAPTION_MAX, 1,
                                        &caption)))
    {
        return ngx_http_chat_op_invalid(refused, "caption", err);
    }

    if (textual && media.data) {
        return ngx_http_chat_op_invalid(refused, "mediaId",
                                        "is not for a text story");
    }

    if (!textual && text.data) {
        return ngx_http_chat_op_invalid(refused, "text",
                                        "is only for a text story (a caption "
                                        "goes with media)");
    }

    if (!textual && (color.data || font.data)) {
        return ngx_http_chat_op_invalid(refused,
                                        color.data ? "backgroundColor"
                                                   : "font",
                                        "is only for a text story");
    }

    if (media.data && !ngx_http_chat_is_oid(&media)) {
        return ngx_http_chat_op_invalid(refused, "mediaId",
                                        "must be an id of 24 hexadecimal "
                                        "digits");
    }

    cmcf = ngx_http_chat_op_story_conf();

    arg = ngx_calloc(sizeof(ngx_http_chat_story_arg_t), ngx_cycle->log);
    if (arg == NULL || cmcf == NULL) {
        if (arg) {
            ngx_free(arg);
        }

        return NGX_ERROR;
    }

    rc = ngx_http_chat_op_story_privacy(me, body, arg, refused);
    if (rc != NGX_OK) {
        ngx_free(arg);
        return rc;
    }

    arg->me = *me;
    arg->lifetime = (int64_t) cmcf->story_lifetime * 1000;
    ngx_memcpy(arg->type, type.data, type.len);

    if (textual) {
        ngx_memcpy(arg->text, text.data, text.len);

        if (color.data) {
            ngx_memcpy(arg->color, color.data, color.len);
        }

        if (font.data) {
            ngx_memcpy(arg->font, font.data, font.len);
        }

    } else {
        bson_oid_init_from_string_unsafe(&arg->media, (char *) media.data);
        arg->has_media = 1;
    }

    if (caption.data) {
        ngx_memcpy(arg->caption, caption.data, caption.len);
    }

    rc = ngx_http_chat_op_store(ngx_http_chat_story_create_run, NULL, arg,
                                sizeof(ngx_http_chat_story_arg_t), done, data,
                                out);
    ngx_free(arg);

    return rc;
}


ngx_int_t
ngx_http_chat_op_story(const bson_oid_t *me, const bson_oid_t *id,
    ngx_uint_t what, json_t *body, ngx_http_chat_op_done_pt done,
    void *data, ngx_http_chat_op_store_t **out,
    ngx_http_chat_op_refused_t *refused)
{
    ngx_int_t                    rc;
    ngx_str_t                    e;
    const char                  *err;
    ngx_http_chat_mongo_run_pt   run;
    ngx_http_chat_story_arg_t   *arg;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));
    ngx_str_null(&e);

    switch (what) {

    case NGX_HTTP_CHAT_OP_STORY_DELETE:
        run = ngx_http_chat_story_delete_run;
        break;

    case NGX_HTTP_CHAT_OP_STORY_VIEW:
        run = ngx_http_chat_story_view_run;
        break;

    case NGX_HTTP_CHAT_OP_STORY_REACT:
        if (!json_is_object(body)) {
            return ngx_http_chat_op_invalid(refused, "body",
                                            "must be an object");
        }

        if ((err = ngx_http_chat_json_string(body, "emoji", 1, 8, &e))) {
            return ngx_http_chat_op_invalid(refused, "emoji", err);
        }

        if (e.len > 8 * 4 || !ngx_http_chat_emoji_valid(&e)) {
            refused->field = "invalid_emoji";
            refused->err = "emoji must be 1 to 8 code points of one emoji";
            return NGX_ABORT;
        }

        /* fall through */

    default: /* NGX_HTTP_CHAT_OP_STORY_UNREACT */
        run = ngx_http_chat_story_react_run;
        break;
    }

    arg = ngx_calloc(sizeof(ngx_http_chat_story_arg_t), ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    arg->me = *me;
    arg->id = *id;

    if (e.len) {
        ngx_memcpy(arg->emoji, e.data, e.len);
    }

    rc = ngx_http_chat_op_store(run, NULL, arg,
                                sizeof(ngx_http_chat_story_arg_t), done, data,
                                out);
    ngx_free(arg);

    return rc;
}


void
ngx_http_chat_op_story_tell(ngx_int_t rc, json_t *answer, ngx_uint_t created,
    ngx_http_chat_op_told_t *told)
{
    ngx_http_chat_op_tell(rc, answer, created, told);

    if (rc == NGX_DECLINED) {
        told->message = "no such story";
    }
}
