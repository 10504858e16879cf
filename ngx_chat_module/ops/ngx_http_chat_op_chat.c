/*
 * Copyright (C) ngx_chat_module authors
 *
 * Making a chat and my settings of one as operations: the checks of what
 * the user sent, then one store step owned by the operation, never by a
 * request.
 */


#include "ngx_http_chat_op_chat.h"
#include "ngx_http_chat_op_input.h"
#include "ngx_http_chat_op_user.h"
#include "ngx_http_chat_op_send.h"
#include "../util/ngx_http_chat_text.h"
#include "../store/ngx_http_chat_chats_store.h"


static int64_t ngx_http_chat_parse_time(ngx_str_t *s);
static ngx_http_chat_mongo_run_pt ngx_http_chat_op_chat_made(void *arg,
    ngx_int_t *rc, json_t *answer);


ngx_int_t
ngx_http_chat_op_chat_private(const bson_oid_t *user, json_t *body,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused)
{
    ngx_int_t                   rc;
    ngx_uint_t                  found;
    const char                 *err;
    ngx_http_chat_chats_arg_t  *arg;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));

    arg = ngx_calloc(sizeof(ngx_http_chat_chats_arg_t), ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    arg->user = *user;

    if ((err = ngx_http_chat_input_oid(body, "userId", 1, &arg->other,
                                       &found)))
    {
        ngx_free(arg);
        return ngx_http_chat_op_invalid(refused, "userId", err);
    }

    if (bson_oid_equal(&arg->user, &arg->other)) {
        ngx_free(arg);
        refused->field = "invalid_value";
        refused->err = "userId is you: a private chat needs someone else";
        return NGX_ABORT;
    }

    bson_oid_init(&arg->chat, NULL);

    rc = ngx_http_chat_op_store(ngx_http_chat_chat_private_run,
                                ngx_http_chat_op_chat_made, arg,
                                sizeof(ngx_http_chat_chats_arg_t), done, data,
                                out);
    ngx_free(arg);

    return rc;
}


ngx_int_t
ngx_http_chat_op_chat_group(const bson_oid_t *user, json_t *body,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused)
{
    size_t                      n, size;
    json_t                     *ids;
    ngx_int_t                   rc;
    ngx_str_t                   name, description, avatar;
    bson_oid_t                 *oids;
    const char                 *err;
    ngx_http_chat_chats_arg_t  *arg;
    ngx_http_chat_main_conf_t  *cmcf;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);
    if (cmcf == NULL) {
        return NGX_ERROR;
    }

    if ((err = ngx_http_chat_input_text(body, "name", 1, 100, 0, &name))) {
        return ngx_http_chat_op_invalid(refused, "name", err);
    }

    if ((err = ngx_http_chat_input_text(body, "description", 0, 500, 1,
                                        &description)))
    {
        return ngx_http_chat_op_invalid(refused, "description", err);
    }

    if (ngx_http_chat_has_spoofing(&name)) {
        return ngx_http_chat_op_invalid(refused, "name",
                                        "has invisible or text-direction "
                                        "characters");
    }

    if (description.data && ngx_http_chat_has_spoofing(&description)) {
        return ngx_http_chat_op_invalid(refused, "description",
                                        "has invisible or text-direction "
                                        "characters");
    }

    if ((err = ngx_http_chat_input_text(body, "avatar", 0, 512, 0, &avatar)))
    {
        return ngx_http_chat_op_invalid(refused, "avatar", err);
    }

    /* an upload of mine (the store checks it), or a host the site trusts */
    if (avatar.data && avatar.len
        && !ngx_http_chat_is_oid(&avatar)
        && !ngx_http_chat_op_avatar_host(&avatar))
    {
        return ngx_http_chat_op_invalid(refused, "avatar",
                                        "must be a media id of yours or an "
                                        "https URL of a host this server "
                                        "allows (chat_avatar_url_host)");
    }

    ids = json_object_get(body, "memberIds");

    if (ids == NULL || json_is_null(ids)) {
        return ngx_http_chat_op_invalid(refused, "memberIds", "is required");
    }

    if (!json_is_array(ids)) {
        return ngx_http_chat_op_invalid(refused, "memberIds",
                                        "must be an array");
    }

    n = json_array_size(ids);

    if (n + 1 > cmcf->group_max_size) {
        refused->field = "group_too_large";
        refused->err = "the group would have too many members";
        /* the largest group, creator included */
        refused->details = json_pack("{s:s,s:I}", "field", "memberIds",
                                     "max",
                                     (json_int_t) cmcf->group_max_size);
        return NGX_ABORT;
    }

    size = sizeof(ngx_http_chat_chats_arg_t) + n * sizeof(bson_oid_t);

    arg = ngx_calloc(size, ngx_cycle->log);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    oids = (bson_oid_t *) (arg + 1);

    if ((err = ngx_http_chat_input_oids(ids, oids, user))) {
        ngx_free(arg);
        return ngx_http_chat_op_invalid(refused, "memberIds", err);
    }

    arg->user = *user;
    arg->nmembers = n;
    bson_oid_init(&arg->chat, NULL);
    ngx_memcpy(arg->name, name.data, name.len);

    if (description.data) {
        arg->has_description = 1;
        ngx_memcpy(arg->description, description.data, description.len);
    }

    if (avatar.data) {
        arg->has_avatar = 1;
        ngx_memcpy(arg->avatar, avatar.data, avatar.len);
    }

    rc = ngx_http_chat_op_store(ngx_http_chat_chat_group_run,
                                ngx_http_chat_op_chat_made, arg, size,
                                done, data, out);
    ngx_free(arg);

    return rc;
}


/* after the store's step: a chat made now (NGX_OK, not found) is new */

static ngx_http_chat_mongo_run_pt
ngx_http_chat_op_chat_made(void *arg, ngx_int_t *rc, json_t *answer)
{
    ngx_http_chat_chats_arg_t *a = arg;

    if (*rc == NGX_OK) {
        ngx_http_chat_op_send_new_chat(&a->chat);
    }

    return NULL;
}


ngx_int_t
ngx_http_chat_op_chat_settings(const bson_oid_t *user, const bson_oid_t *chat,
    json_t *body, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, ngx_http_chat_op_refused_t *refused)
{
    int64_t                  until, now;
    ngx_int_t                rc;
    ngx_str_t                s;
    ngx_uint_t               b, any;
    const char              *err;
    struct timeval           tv;
    ngx_http_chat_msg_arg_t  arg;

    ngx_memzero(refused, sizeof(ngx_http_chat_op_refused_t));
    ngx_memzero(&arg, sizeof(ngx_http_chat_msg_arg_t));

    arg.user = *user;
    arg.chat = *chat;
    any = 0;

    rc = ngx_http_chat_input_bool(body, "muted", &b);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_op_invalid(refused, "muted", "must be a boolean");
    }

    if (rc == NGX_OK) {
        any = 1;
        arg.set_mute = b;
        arg.mute_forever = b;
        arg.unmute = !b;
    }

    if ((err = ngx_http_chat_json_string(body, "mutedUntil", 0, 24, &s))) {
        return ngx_http_chat_op_invalid(refused, "mutedUntil", err);
    }

    if (s.data) {
        if (rc == NGX_OK) {
            return ngx_http_chat_op_invalid(refused, "mutedUntil",
                                            "must not come with muted");
        }

        until = ngx_http_chat_parse_time(&s);

        ngx_gettimeofday(&tv);
        now = (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;

        if (until < 0) {
            return ngx_http_chat_op_invalid(refused, "mutedUntil",
                                            "must be a UTC time like "
                                            "2030-01-31T08:00:00Z");
        }

        if (until <= now || until - now > (int64_t) 10 * 366 * 86400000) {
            return ngx_http_chat_op_invalid(refused, "mutedUntil",
                                            "must be in the next 10 years");
        }

        any = 1;
        arg.set_mute = 1;
        arg.before = until;
    }

    rc = ngx_http_chat_input_bool(body, "archived", &b);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_op_invalid(refused, "archived",
                                        "must be a boolean");
    }

    if (rc == NGX_OK) {
        any = 1;
        arg.set_archived = 1;
        arg.archived = b;
    }

    rc = ngx_http_chat_input_bool(body, "pinned", &b);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_op_invalid(refused, "pinned", "must be a boolean");
    }

    if (rc == NGX_OK) {
        any = 1;
        arg.set_pinned = 1;
        arg.pinned = b;
    }

    if (!any) {
        return ngx_http_chat_op_invalid(refused, "settings",
                                        "need muted, mutedUntil, archived or "
                                        "pinned");
    }

    return ngx_http_chat_op_store(ngx_http_chat_chat_settings_run, NULL, &arg,
                                  sizeof(ngx_http_chat_msg_arg_t), done, data,
                                  out);
}


/* "YYYY-MM-DDTHH:MM:SS[.mmm]Z" as ms since the epoch, or -1 */

static int64_t
ngx_http_chat_parse_time(ngx_str_t *s)
{
    u_char     *p;
    time_t      sec;
    ngx_int_t   ms;
    ngx_uint_t  i;
    struct tm   tm, check;

    p = s->data;

    if (!(s->len == 20 || s->len == 24) || p[s->len - 1] != 'Z'
        || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':'
        || p[16] != ':' || (s->len == 24 && p[19] != '.'))
    {
        return -1;
    }

    for (i = 0; i < s->len - 1; i++) {
        if (i == 4 || i == 7 || i == 10 || i == 13 || i == 16 || i == 19) {
            continue;
        }

        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
    }

    ngx_memzero(&tm, sizeof(struct tm));
    tm.tm_year = ngx_atoi(p, 4) - 1900;
    tm.tm_mon = ngx_atoi(p + 5, 2) - 1;
    tm.tm_mday = ngx_atoi(p + 8, 2);
    tm.tm_hour = ngx_atoi(p + 11, 2);
    tm.tm_min = ngx_atoi(p + 14, 2);
    tm.tm_sec = ngx_atoi(p + 17, 2);
    ms = (s->len == 24) ? ngx_atoi(p + 20, 3) : 0;

    check = tm;
    sec = timegm(&tm);

    /* timegm() normalises: 2026-02-30 would pass as March */
    if (sec == (time_t) -1 || tm.tm_mday != check.tm_mday
        || tm.tm_mon != check.tm_mon || tm.tm_hour != check.tm_hour
        || tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec)
    {
        return -1;
    }

    return (int64_t) sec * 1000 + ms;
}
