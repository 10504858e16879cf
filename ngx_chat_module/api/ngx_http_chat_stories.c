/*
 * Copyright (C) ngx_chat_module authors
 *
 * The story routes: writes wait on their operation (ops/), reads run one
 * store step for the request.
 */


#include "../core/ngx_http_chat_async.h"
#include "../store/ngx_http_chat_stories_store.h"
#include "../util/ngx_http_chat_text.h"
#include "../ops/ngx_http_chat_op_story.h"
#include "ngx_http_chat_stories.h"
#include "ngx_http_chat_chats_int.h"
#include "ngx_http_chat_wait.h"


#define NGX_HTTP_CHAT_STORY_FEED_LIMIT  20

/* a new story: the writes but this one name a story by the route's :id */
#define NGX_HTTP_CHAT_STORY_CREATE  ((ngx_uint_t) -1)


/* a write: the story's operation, waited for */

static ngx_int_t
ngx_http_chat_stories_write(ngx_http_request_t *r, ngx_uint_t what)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, id;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *w;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ngx_http_chat_chats_me(r, &me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (what != NGX_HTTP_CHAT_STORY_CREATE
        && ngx_http_chat_chats_param(r, &id) != NGX_OK)
    {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such story");
    }

    w = ngx_http_chat_store_wait(r, ngx_http_chat_op_story_tell);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (what == NGX_HTTP_CHAT_STORY_CREATE) {
        rc = ngx_http_chat_op_story_create(&me, ctx->body,
                                           ngx_http_chat_store_answered, w,
                                           ngx_http_chat_store_op(w),
                                           &refused);

    } else {
        rc = ngx_http_chat_op_story(&me, &id, what, ctx->body,
                                    ngx_http_chat_store_answered, w,
                                    ngx_http_chat_store_op(w), &refused);
    }

    return ngx_http_chat_op_started(r, w, rc, &refused);
}


/*
 * Posting, reacting and viewing are counted per user first (the limits
 * of chat_story_*_limit); unreacting and deleting are not, as they only
 * take back.
 */

static ngx_int_t
ngx_http_chat_stories_counted(ngx_http_request_t *r, redisReply *reply,
    ngx_uint_t what)
{
    ngx_int_t  rc;

    rc = ngx_http_chat_rate_over(r, reply);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_chat_stories_write(r, what);
}


static ngx_int_t
ngx_http_chat_stories_post_counted(ngx_http_request_t *r, redisReply *reply)
{
    return ngx_http_chat_stories_counted(r, reply,
                                         NGX_HTTP_CHAT_STORY_CREATE);
}


static ngx_int_t
ngx_http_chat_stories_view_counted(ngx_http_request_t *r, redisReply *reply)
{
    return ngx_http_chat_stories_counted(r, reply,
                                         NGX_HTTP_CHAT_OP_STORY_VIEW);
}


static ngx_int_t
ngx_http_chat_stories_react_counted(ngx_http_request_t *r,
    redisReply *reply)
{
    return ngx_http_chat_stories_counted(r, reply,
                                         NGX_HTTP_CHAT_OP_STORY_REACT);
}


ngx_int_t
ngx_http_chat_stories_create(ngx_http_request_t *r)
{
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    return ngx_http_chat_rate_limit(r, "story", &cmcf->story_post_limit,
                                    ngx_http_chat_stories_post_counted);
}


ngx_int_t
ngx_http_chat_stories_delete(ngx_http_request_t *r)
{
    return ngx_http_chat_stories_write(r, NGX_HTTP_CHAT_OP_STORY_DELETE);
}


ngx_int_t
ngx_http_chat_stories_view(ngx_http_request_t *r)
{
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    return ngx_http_chat_rate_limit(r, "storyview", &cmcf->story_view_limit,
                                    ngx_http_chat_stories_view_counted);
}


ngx_int_t
ngx_http_chat_stories_react(ngx_http_request_t *r)
{
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    return ngx_http_chat_rate_limit(r, "storyreact",
                                    &cmcf->story_react_limit,
                                    ngx_http_chat_stories_react_counted);
}


ngx_int_t
ngx_http_chat_stories_unreact(ngx_http_request_t *r)
{
    return ngx_http_chat_stories_write(r, NGX_HTTP_CHAT_OP_STORY_UNREACT);
}


/* a read's answer: t->result, or the fitting error */

static ngx_int_t
ngx_http_chat_stories_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    json_t  *json;

    if (t->rc == NGX_DECLINED) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such story");
    }

    if (t->rc != NGX_OK || t->result == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: story query failed in mongo: %s",
                      t->error.message);
        return ngx_http_chat_send_unavailable(r);
    }

    json = t->result;
    t->result = NULL;

    return ngx_http_chat_send_json(r, NGX_HTTP_OK, json);
}


static ngx_int_t
ngx_http_chat_stories_read(ngx_http_request_t *r,
    ngx_http_chat_mongo_run_pt run, ngx_uint_t with_id)
{
    ngx_http_chat_story_arg_t  *arg;

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_story_arg_t));
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (with_id && ngx_http_chat_chats_param(r, &arg->id) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        with_id == 2 ? "no such user"
                                                     : "no such story");
    }

    arg->limit = NGX_HTTP_CHAT_STORY_FEED_LIMIT;

    return ngx_http_chat_mongo_request(r, run, ngx_http_chat_stories_done,
                                       arg,
                                       sizeof(ngx_http_chat_story_arg_t));
}


ngx_int_t
ngx_http_chat_stories_get(ngx_http_request_t *r)
{
    return ngx_http_chat_stories_read(r, ngx_http_chat_story_get_run, 1);
}


ngx_int_t
ngx_http_chat_stories_mine(ngx_http_request_t *r)
{
    return ngx_http_chat_stories_read(r, ngx_http_chat_story_mine_run, 0);
}


ngx_int_t
ngx_http_chat_stories_of_user(ngx_http_request_t *r)
{
    return ngx_http_chat_stories_read(r, ngx_http_chat_story_user_run, 2);
}


ngx_int_t
ngx_http_chat_stories_views(ngx_http_request_t *r)
{
    return ngx_http_chat_stories_read(r, ngx_http_chat_story_views_run, 1);
}


/* a whole decimal number of a query argument within [min, max] */

static ngx_int_t
ngx_http_chat_stories_num(ngx_http_request_t *r, const char *name,
    ngx_int_t min, ngx_int_t max, ngx_uint_t *out)
{
    ngx_int_t  n;
    ngx_str_t  v;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) != NGX_OK
        || v.len == 0)
    {
        return NGX_DECLINED;
    }

    n = (v.len <= 9) ? ngx_atoi(v.data, v.len) : NGX_ERROR;

    if (n == NGX_ERROR || n < min || n > max) {
        return NGX_ERROR;
    }

    *out = (ngx_uint_t) n;

    return NGX_OK;
}


/* GET /api/stories?cursor=&limit=: a page of authors */

ngx_int_t
ngx_http_chat_stories_feed(ngx_http_request_t *r)
{
    ngx_http_chat_story_arg_t  *arg;

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_story_arg_t));
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->me) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    arg->limit = NGX_HTTP_CHAT_STORY_FEED_LIMIT;

    if (ngx_http_chat_stories_num(r, "limit", 1,
                                  NGX_HTTP_CHAT_STORY_FEED_MAX, &arg->limit)
        == NGX_ERROR)
    {
        return ngx_http_chat_send_invalid(r, "limit",
                                          "must be between 1 and 50");
    }

    /* the cursor: the authors of the pages before, opaque to clients */
    if (ngx_http_chat_stories_num(r, "cursor", 1, 100000, &arg->offset)
        == NGX_ERROR)
    {
        return ngx_http_chat_send_invalid(r, "cursor", "is not valid");
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_story_feed_run,
                                       ngx_http_chat_stories_done, arg,
                                       sizeof(ngx_http_chat_story_arg_t));
}
