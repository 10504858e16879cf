/*
 * Copyright (C) ngx_chat_module authors
 *
 * The highlight routes: the checks of what was sent, then one MongoDB
 * task (store/ngx_http_chat_highlights_store.c), which runs to its end
 * whether or not the request is still there.  A highlight's writes have
 * no effects beyond the store (no events), so no operation owns them.
 */


#include "../core/ngx_http_chat_async.h"
#include "../core/ngx_http_chat_wait.h"
#include "../util/ngx_http_chat_text.h"
#include "../store/ngx_http_chat_highlights_store.h"
#include "ngx_http_chat_stories.h"
#include "ngx_http_chat_chats_int.h"


/* an answer: t->result with status, or the fitting error */

static ngx_int_t
ngx_http_chat_highlights_answer(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t, ngx_uint_t status)
{
    json_t      *json, *field, *reason;
    const char  *f;

    json = t->result;

    if (t->rc == NGX_DECLINED) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such highlight");
    }

    if (t->rc == NGX_ABORT && json) {
        field = json_object_get(json, "field");
        reason = json_object_get(json, "reason");
        f = json_string_value(field);

        return ngx_http_chat_send_error_details(r,
                   NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY, "invalid_value",
                   json_string_value(reason),
                   json_pack("{s:s}", "field", f ? f : ""));
    }

    if (t->rc != NGX_OK || json == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: highlight query failed in mongo: %s",
                      t->error.message);
        return ngx_http_chat_send_unavailable(r);
    }

    t->result = NULL;

    return ngx_http_chat_send_json(r, status, json);
}


static ngx_int_t
ngx_http_chat_highlights_created(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    return ngx_http_chat_highlights_answer(r, t, NGX_HTTP_CREATED);
}


static ngx_int_t
ngx_http_chat_highlights_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    return ngx_http_chat_highlights_answer(r, t, NGX_HTTP_OK);
}


/* an array of 0 to 100 distinct story ids: NULL, or what is wrong */

static const char *
ngx_http_chat_highlights_ids(json_t *body, const char *name,
    ngx_uint_t required, bson_oid_t *ids, ngx_uint_t *n)
{
    size_t       i, j;
    json_t      *a, *v;
    ngx_str_t    s;

    *n = 0;
    a = json_object_get(body, name);

    if (a == NULL || json_is_null(a)) {
        return required ? "is required" : NULL;
    }

    if (!json_is_array(a)) {
        return "must be an array of story ids";
    }

    if (required && json_array_size(a) == 0) {
        return "must hold at least one story id";
    }

    if (json_array_size(a) > NGX_HTTP_CHAT_HIGHLIGHT_STORIES_MAX) {
        return "has more than 100 story ids";
    }

    json_array_foreach(a, i, v) {
        if (!json_is_string(v)) {
            return "must be an array of story ids";
        }

        s.data = (u_char *) json_string_value(v);
        s.len = json_string_length(v);

        if (!ngx_http_chat_is_oid(&s)) {
            return "holds a value that is no story id";
        }

        bson_oid_init_from_string_unsafe(&ids[i], (char *) s.data);

        for (j = 0; j < i; j++) {
            if (bson_oid_equal(&ids[j], &ids[i])) {
                return "holds a story id twice";
            }
        }
    }

    *n = json_array_size(a);

    return NULL;
}


/*
 * The fields of a create (all) or an update (update: 1): NGX_DECLINED
 * when they are good, else the rc of the 400 answer sent.
 */

static ngx_int_t
ngx_http_chat_highlights_parse(ngx_http_request_t *r, json_t *body,
    ngx_uint_t update, ngx_http_chat_highlight_arg_t *a)
{
    ngx_str_t    v;
    const char  *err;

    if ((err = ngx_http_chat_json_string(body, "title", !update,
                                         NGX_HTTP_CHAT_HIGHLIGHT_TITLE_MAX,
                                         &v)))
    {
        return ngx_http_chat_send_invalid(r, "title", err);
    }

    if (v.data) {
        if (v.len == 0) {
            return ngx_http_chat_send_invalid(r, "title",
                                              "must not be empty");
        }

        if (ngx_http_chat_has_controls(&v, 0)) {
            return ngx_http_chat_send_invalid(r, "title",
                                              "has control characters");
        }

        ngx_memcpy(a->title, v.data, v.len);
        a->title[v.len] = '\0';
        a->has_title = 1;
    }

    if ((err = ngx_http_chat_json_string(body, "cover", 0, 24, &v))) {
        return ngx_http_chat_send_invalid(r, "cover", err);
    }

    if (v.data) {
        if (!ngx_http_chat_is_oid(&v)) {
            return ngx_http_chat_send_invalid(r, "cover",
                                              "is not a story id");
        }

        bson_oid_init_from_string_unsafe(&a->cover, (char *) v.data);
        a->has_cover = 1;
    }

    if ((err = ngx_http_chat_json_string(body, "privacy", 0, 16, &v))) {
        return ngx_http_chat_send_invalid(r, "privacy", err);
    }

    /* contacts by default: what is kept past a day is shown more narrowly */
    a->privacy = NGX_HTTP_CHAT_HIGHLIGHT_CONTACTS;

    if (v.data) {
        if (v.len == 8 && ngx_strncmp(v.data, "everyone", 8) == 0) {
            a->privacy = NGX_HTTP_CHAT_HIGHLIGHT_EVERYONE;

        } else if (!(v.len == 8 && ngx_strncmp(v.data, "contacts", 8) == 0))
        {
            return ngx_http_chat_send_invalid(r, "privacy",
                                              "must be \"everyone\" or "
                                              "\"contacts\"");
        }

        a->has_privacy = 1;
    }

    if (!update) {
        if ((err = ngx_http_chat_highlights_ids(body, "storyIds", 1, a->add,
                                                &a->nadd)))
        {
            return ngx_http_chat_send_invalid(r, "storyIds", err);
        }

        return NGX_DECLINED;
    }

    if ((err = ngx_http_chat_highlights_ids(body, "addStoryIds", 0, a->add,
                                            &a->nadd)))
    {
        return ngx_http_chat_send_invalid(r, "addStoryIds", err);
    }

    if ((err = ngx_http_chat_highlights_ids(body, "removeStoryIds", 0,
                                            a->remove, &a->nremove)))
    {
        return ngx_http_chat_send_invalid(r, "removeStoryIds", err);
    }

    if (!a->has_title && !a->has_cover && !a->has_privacy && a->nadd == 0
        && a->nremove == 0)
    {
        return ngx_http_chat_send_invalid(r, "title",
                                          "nothing to change: send title, "
                                          "cover, privacy, addStoryIds or "
                                          "removeStoryIds");
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_chat_highlights_start(ngx_http_request_t *r, ngx_uint_t what)
{
    ngx_int_t                       rc;
    ngx_http_chat_ctx_t            *ctx;
    ngx_http_chat_mongo_run_pt      run;
    ngx_http_chat_mongo_next_pt     next;
    ngx_http_chat_highlight_arg_t  *a;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    /* about 2.5 KB: on the pool, copied into the task */
    a = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_highlight_arg_t));
    if (a == NULL || ngx_http_chat_chats_me(r, &a->me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (what != 0 && ngx_http_chat_chats_param(r, &a->id) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        what == 3 ? "no such user"
                                                  : "no such highlight");
    }

    next = ngx_http_chat_highlights_done;

    switch (what) {

    case 0:
        rc = ngx_http_chat_highlights_parse(r, ctx->body, 0, a);
        if (rc != NGX_DECLINED) {
            return rc;
        }

        run = ngx_http_chat_highlight_create_run;
        next = ngx_http_chat_highlights_created;
        break;

    case 1:
        rc = ngx_http_chat_highlights_parse(r, ctx->body, 1, a);
        if (rc != NGX_DECLINED) {
            return rc;
        }

        run = ngx_http_chat_highlight_update_run;
        break;

    case 2:
        run = ngx_http_chat_highlight_delete_run;
        break;

    default:
        run = ngx_http_chat_highlight_list_run;
        break;
    }

    return ngx_http_chat_mongo_request(r, run, next, a,
                                       sizeof(ngx_http_chat_highlight_arg_t));
}


ngx_int_t
ngx_http_chat_highlights_create(ngx_http_request_t *r)
{
    return ngx_http_chat_highlights_start(r, 0);
}


ngx_int_t
ngx_http_chat_highlights_update(ngx_http_request_t *r)
{
    return ngx_http_chat_highlights_start(r, 1);
}


ngx_int_t
ngx_http_chat_highlights_delete(ngx_http_request_t *r)
{
    return ngx_http_chat_highlights_start(r, 2);
}


ngx_int_t
ngx_http_chat_highlights_of_user(ngx_http_request_t *r)
{
    return ngx_http_chat_highlights_start(r, 3);
}
