/*
 * Copyright (C) ngx_chat_module authors
 *
 * My profile and privacy settings as an operation: the checks of what I
 * sent, the update, then my whole profile read back, both steps owned by
 * the operation, never by a request.
 */


#include "ngx_http_chat_op_user.h"
#include "../store/ngx_http_chat_users.h"
#include "../store/ngx_http_chat_people.h"
#include "../store/ngx_http_chat_profile_cache.h"
#include "../util/ngx_http_chat_text.h"


/* the update's argument, then the read's in the same copy */
typedef union {
    ngx_http_chat_user_arg_t     user;
    ngx_http_chat_people_arg_t   people;
} ngx_http_chat_op_profile_arg_t;


static const char *ngx_http_chat_op_profile_check(json_t *body,
    ngx_uint_t need_name, ngx_http_chat_user_arg_t *arg, const char **field);
static const char *ngx_http_chat_op_privacy_check(json_t *privacy,
    ngx_http_chat_user_arg_t *arg, const char **field);
static ngx_http_chat_mongo_run_pt ngx_http_chat_op_profile_saved(void *arg,
    ngx_int_t *rc, json_t *answer);


static void ngx_http_chat_op_profile_dropped(void *ctx);


static const char  *ngx_http_chat_invisible =
    "has invisible or text-direction characters";

static const char  *ngx_http_chat_invalid_username =
    "must be 3 to 32 letters, digits, \"_\" or \".\", starting with a letter";


ngx_int_t
ngx_http_chat_op_profile(const bson_oid_t *user, json_t *body,
    ngx_uint_t need_name, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, const char **field, const char **err)
{
    ngx_int_t                        rc;
    ngx_http_chat_op_profile_arg_t  *arg;

    /* some 5 KB: on the heap, not the stack of the event loop */
    arg = ngx_calloc(sizeof(ngx_http_chat_op_profile_arg_t), ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    *err = ngx_http_chat_op_profile_check(body, need_name, &arg->user, field);
    if (*err) {
        ngx_free(arg);
        return NGX_DECLINED;
    }

    arg->user.user_id = *user;

    rc = ngx_http_chat_op_store(ngx_http_chat_users_update_run,
                                ngx_http_chat_op_profile_saved, arg,
                                sizeof(ngx_http_chat_op_profile_arg_t),
                                done, data, out);
    ngx_free(arg);

    return rc;
}


/* the profile fields of body into arg: NULL, or what is wrong with *field */

static const char *
ngx_http_chat_op_profile_check(json_t *body, ngx_uint_t need_name,
    ngx_http_chat_user_arg_t *arg, const char **field)
{
    u_char      *p;
    json_t      *v;
    ngx_str_t    name, bio, avatar, username;
    ngx_uint_t   i;
    const char  *err;

    *field = "name";
    if ((err = ngx_http_chat_json_string(body, "name", need_name, 64,
                                         &name)))
    {
        return err;
    }

    if (name.data) {
        for (p = name.data; p < name.data + name.len && *p == ' '; p++) {
            /* void */
        }

        if (p == name.data + name.len) {
            return "must not be blank";
        }

        if (ngx_http_chat_has_controls(&name, 0)) {
            return "has control characters";
        }

        if (ngx_http_chat_has_spoofing(&name)) {
            return ngx_http_chat_invisible;
        }
    }

    *field = "bio";
    if ((err = ngx_http_chat_json_string(body, "bio", 0, 500, &bio))) {
        return err;
    }

    if (bio.data && ngx_http_chat_has_controls(&bio, 1)) {
        return "has control characters";
    }

    if (bio.data && ngx_http_chat_has_spoofing(&bio)) {
        return ngx_http_chat_invisible;
    }

    *field = "avatar";
    if ((err = ngx_http_chat_json_string(body, "avatar", 0, 512, &avatar))) {
        return err;
    }

    /* my own upload (the store checks it), or a host the site trusts */
    if (avatar.data && avatar.len && !ngx_http_chat_is_oid(&avatar)) {
        if (ngx_strncmp(avatar.data, "https://", 8) != 0
            && ngx_strncmp(avatar.data, "http://", 7) != 0)
        {
            return "must be a media id or a URL";
        }

        if (!ngx_http_chat_op_avatar_host(&avatar)) {
            return "must be a media id of yours or an https URL of a "
                   "host this server allows (chat_avatar_url_host)";
        }
    }

    if (avatar.data && ngx_http_chat_has_controls(&avatar, 0)) {
        return "has control characters";
    }

    *field = "username";
    if ((err = ngx_http_chat_json_string(body, "username", 0, 32,
                                         &username)))
    {
        return err;
    }

    /* usernames: 3-32 of [A-Za-z0-9_.], starting with a letter */
    if (username.data) {
        if (username.len < 3 || !((username.data[0] | 0x20) >= 'a'
                                  && (username.data[0] | 0x20) <= 'z'))
        {
            return ngx_http_chat_invalid_username;
        }

        for (i = 0; i < username.len; i++) {
            p = &username.data[i];

            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'))
            {
                return ngx_http_chat_invalid_username;
            }
        }
    }

    arg->searchable = -1;

    if ((err = ngx_http_chat_op_privacy_check(json_object_get(body,
                                                              "privacy"),
                                              arg, field)))
    {
        return err;
    }

    /* notifications: {"preview": true} lets a push carry a text's start */
    arg->push_preview = -1;
    *field = "notifications";
    v = json_object_get(body, "notifications");

    if (v && !json_is_null(v)) {
        if (!json_is_object(v)) {
            return "must be an object";
        }

        *field = "notifications";
        v = json_object_get(v, "preview");

        if (v && !json_is_null(v)) {
            if (!json_is_boolean(v)) {
                return "must be true or false";
            }

            arg->push_preview = json_is_true(v);
        }
    }

    if (name.data) {
        arg->name = 1;
        ngx_memcpy(arg->name_v, name.data, name.len);
        ngx_http_chat_fold((u_char *) arg->search_name, name.data, name.len);
    }

    if (bio.data) {
        arg->bio = 1;
        ngx_memcpy(arg->bio_v, bio.data, bio.len);
    }

    if (avatar.data) {
        arg->avatar = 1;
        arg->avatar_media = ngx_http_chat_is_oid(&avatar);
        ngx_memcpy(arg->avatar_v, avatar.data, avatar.len);
    }

    if (username.data) {
        arg->username = 1;
        ngx_memcpy(arg->username_v, username.data, username.len);
        ngx_strlow((u_char *) arg->username_lower, username.data,
                   username.len);
    }

    return NULL;
}


/* privacy: {"lastSeen": "contacts", ..., "searchable": false} */

static const char *
ngx_http_chat_op_privacy_check(json_t *privacy,
    ngx_http_chat_user_arg_t *arg, const char **field)
{
    json_t      *v;
    ngx_str_t    rule;
    ngx_uint_t   i;
    const char  *err;

    *field = "privacy";

    if (privacy == NULL || json_is_null(privacy)) {
        return NULL;
    }

    if (!json_is_object(privacy)) {
        return "must be an object";
    }

    for (i = 0; i < NGX_HTTP_CHAT_PRIVACY_N; i++) {
        *field = ngx_http_chat_privacy_keys[i];

        if ((err = ngx_http_chat_json_string(privacy, *field, 0, 8, &rule))) {
            return err;
        }

        if (rule.data == NULL) {
            continue;
        }

        if (!((rule.len == 8 && ngx_strncmp(rule.data, "everyone", 8) == 0)
              || (rule.len == 8 && ngx_strncmp(rule.data, "contacts", 8) == 0)
              || (rule.len == 6 && ngx_strncmp(rule.data, "nobody", 6) == 0)))
        {
            return "must be \"everyone\", \"contacts\" or \"nobody\"";
        }

        ngx_memcpy(arg->privacy[i], rule.data, rule.len);
    }

    *field = "searchable";
    v = json_object_get(privacy, "searchable");

    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            return "must be true or false";
        }

        arg->searchable = json_is_true(v);
    }

    return NULL;
}


/* stored: my whole profile, as GET /api/users/profile shows it */

static ngx_http_chat_mongo_run_pt
ngx_http_chat_op_profile_saved(void *data, ngx_int_t *rc, json_t *answer)
{
    ngx_http_chat_op_profile_arg_t *arg = data;

    char                       oid[25];
    ngx_str_t                  id;
    bson_oid_t                 user;
    ngx_http_chat_op_store_t  *op;

    /*
     * what the sign-in of a socket shows of me (store/_profile_cache.c)
     * is gone once the change is stored, whoever still waits; the answer
     * waits for it, so that no sign-in after it, on any worker, shows
     * the profile before
     */
    bson_oid_to_string(&arg->user.user_id, oid);
    id.data = (u_char *) oid;
    id.len = 24;
    op = ngx_http_chat_op_store_hold(arg);

    if (ngx_http_chat_profile_cache_drop_then(&id,
                                              ngx_http_chat_op_profile_dropped,
                                              op)
        != NGX_OK)
    {
        ngx_http_chat_op_store_release(op);
    }

    if (*rc == NGX_DECLINED) {
        /* the update's "not done": the username is somebody else's */
        *rc = NGX_BUSY;
        return NULL;
    }

    if (*rc == NGX_ABORT) {
        /* the avatar is none of my uploads: nothing was changed */
        return NULL;
    }

    if (*rc != NGX_OK) {
        return NULL;
    }

    bson_oid_copy(&arg->user.user_id, &user);
    ngx_memzero(arg, sizeof(ngx_http_chat_op_profile_arg_t));
    bson_oid_copy(&user, &arg->people.viewer);

    return ngx_http_chat_people_self_run;
}


static void
ngx_http_chat_op_profile_dropped(void *ctx)
{
    ngx_http_chat_op_store_release(ctx);
}


void
ngx_http_chat_op_user_tell(ngx_uint_t kind, ngx_int_t rc, json_t *answer,
    ngx_http_chat_op_told_t *told)
{
    ngx_memzero(told, sizeof(ngx_http_chat_op_told_t));

    if (rc == NGX_OK && (answer || kind == NGX_HTTP_CHAT_OP_TELL_RELATION)) {
        told->status = NGX_HTTP_OK;

        if (kind != NGX_HTTP_CHAT_OP_TELL_RELATION) {
            told->answer = answer;
            return;
        }

        json_decref(answer);
        told->answer = json_pack("{s:b}", "success", 1);

        if (told->answer == NULL) {
            /* no memory: no code, the transport's own failure */
            told->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return;
    }

    json_decref(answer);

    switch (rc) {

    case NGX_BUSY:
        if (kind == NGX_HTTP_CHAT_OP_TELL_PROFILE) {
            told->status = NGX_HTTP_CONFLICT;
            told->code = "username_taken";
            told->message = "this username is taken";
            return;
        }

        break;

    case NGX_ABORT:
        if (kind == NGX_HTTP_CHAT_OP_TELL_PROFILE) {
            told->status = NGX_HTTP_BAD_REQUEST;
            told->code = "unknown_media";
            told->message = "avatar is none of your uploads";
            told->details = json_pack("{s:s}", "field", "avatar");
            return;
        }

        break;

    case NGX_DECLINED:
        told->status = NGX_HTTP_NOT_FOUND;
        told->code = "not_found";
        told->message = (kind == NGX_HTTP_CHAT_OP_TELL_RELATION)
                        ? "no such contact or block" : "no such user";
        return;

    default:
        break;
    }

    told->status = NGX_HTTP_SERVICE_UNAVAILABLE;
    told->code = "service_unavailable";
    told->message = "a back end is unavailable, try again shortly";
}


/* an https URL whose host is one of chat_avatar_url_host's */

ngx_uint_t
ngx_http_chat_op_avatar_host(ngx_str_t *url)
{
    u_char                     *p, *host, *last;
    ngx_str_t                  *h;
    ngx_uint_t                  i;
    ngx_http_chat_main_conf_t  *cmcf;

    if (url->len <= 8 || ngx_strncmp(url->data, "https://", 8) != 0) {
        return 0;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);
    if (cmcf == NULL || cmcf->avatar_hosts == NULL) {
        return 0;
    }

    host = url->data + 8;
    last = url->data + url->len;

    for (p = host; p < last && *p != '/' && *p != '?' && *p != '#'; p++) {
        if (*p == '@' || *p == '\\') {
            /* user info, or a host a browser reads differently */
            return 0;
        }
    }

    h = cmcf->avatar_hosts->elts;

    for (i = 0; i < cmcf->avatar_hosts->nelts; i++) {
        if (h[i].len == (size_t) (p - host)
            && ngx_strncasecmp(h[i].data, host, h[i].len) == 0)
        {
            return 1;
        }
    }

    return 0;
}
