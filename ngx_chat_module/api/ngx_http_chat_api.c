/*
 * Copyright (C) ngx_chat_module authors
 *
 * The REST API: the seed's routes, matched segment by segment, with the
 * checks every route shares applied before its handler runs.
 */


#include "ngx_http_chat_api.h"
#include "../auth/ngx_http_chat_auth.h"
#include "../media/ngx_http_chat_media.h"
#include "../ops/ngx_http_chat_op.h"
#include "ngx_http_chat_users.h"
#include "ngx_http_chat_chats.h"
#include "ngx_http_chat_stories.h"
#include "ngx_http_chat_turn.h"
#include "ngx_http_chat_calls.h"
#include "ngx_http_chat_devices.h"
#include "../ops/ngx_http_chat_send_cache.h"
#include "../core/ngx_http_chat_rest_rate.h"


#define NGX_HTTP_CHAT_JSON_BODY  0x01
#define NGX_HTTP_CHAT_PUBLIC     0x02    /* no access token needed */
#define NGX_HTTP_CHAT_RAW_BODY   0x04    /* the handler reads the body */
#define NGX_HTTP_CHAT_ACCESS     0x08    /* changes who may send where */


typedef struct {
    ngx_uint_t                 method;
    ngx_str_t                  path;       /* ":name" matches one segment */
    ngx_uint_t                 flags;
    ngx_uint_t                 group;      /* its rate: chat_rest_rate */
    ngx_int_t                (*handler)(ngx_http_request_t *r);
} ngx_http_chat_route_t;


static ngx_int_t ngx_http_chat_api_authorized(ngx_http_request_t *r);
static ngx_int_t ngx_http_chat_work_hold(ngx_http_request_t *r);
static void ngx_http_chat_work_release(void *data);
static ngx_uint_t ngx_http_chat_route_match(ngx_str_t *pattern,
    ngx_str_t *uri, ngx_http_chat_ctx_t *ctx);


/* the seed's REST contract, every route of it served */
static ngx_http_chat_route_t  ngx_http_chat_routes[] = {

    { NGX_HTTP_POST, ngx_string("/api/auth/send-otp"),
      NGX_HTTP_CHAT_JSON_BODY|NGX_HTTP_CHAT_PUBLIC,
      NGX_HTTP_CHAT_REST_AUTH, ngx_http_chat_send_otp },
    { NGX_HTTP_POST, ngx_string("/api/auth/verify-otp"),
      NGX_HTTP_CHAT_JSON_BODY|NGX_HTTP_CHAT_PUBLIC,
      NGX_HTTP_CHAT_REST_AUTH, ngx_http_chat_verify_otp },
    { NGX_HTTP_POST, ngx_string("/api/auth/complete-profile"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_complete_profile },
    { NGX_HTTP_POST, ngx_string("/api/auth/refresh-token"),
      NGX_HTTP_CHAT_JSON_BODY|NGX_HTTP_CHAT_PUBLIC,
      NGX_HTTP_CHAT_REST_AUTH, ngx_http_chat_refresh_token },
    { NGX_HTTP_POST, ngx_string("/api/auth/logout"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_logout },
    { NGX_HTTP_GET, ngx_string("/api/auth/sessions"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_sessions_list },
    { NGX_HTTP_DELETE, ngx_string("/api/auth/sessions/:id"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_sessions_delete },
    { NGX_HTTP_PUT, ngx_string("/api/devices"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_devices_put },
    { NGX_HTTP_DELETE, ngx_string("/api/devices"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_devices_delete },

    { NGX_HTTP_GET, ngx_string("/api/users/profile"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_profile_get },
    { NGX_HTTP_PUT, ngx_string("/api/users/profile"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_profile_put },
    { NGX_HTTP_POST, ngx_string("/api/users/upload-avatar"),
      NGX_HTTP_CHAT_RAW_BODY,
      NGX_HTTP_CHAT_REST_UPLOAD, ngx_http_chat_media_upload_avatar },
    { NGX_HTTP_GET, ngx_string("/api/users/search"),
      0,
      NGX_HTTP_CHAT_REST_SEARCH, ngx_http_chat_search },
    { NGX_HTTP_POST, ngx_string("/api/users/add-contact"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_contacts_add },
    { NGX_HTTP_GET, ngx_string("/api/users/contacts"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_contacts_list },
    { NGX_HTTP_POST, ngx_string("/api/users/contacts/sync"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_contacts_sync },
    { NGX_HTTP_DELETE, ngx_string("/api/users/contacts/:id"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_contacts_delete },
    { NGX_HTTP_GET, ngx_string("/api/users/blocked"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_blocked_list },
    { NGX_HTTP_POST, ngx_string("/api/users/:id/block"),
      NGX_HTTP_CHAT_ACCESS,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_block },
    { NGX_HTTP_DELETE, ngx_string("/api/users/:id/block"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_unblock },
    { NGX_HTTP_GET, ngx_string("/api/users/:id/stories"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_stories_of_user },
    { NGX_HTTP_GET, ngx_string("/api/users/:id/highlights"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_highlights_of_user },
    /* after every fixed /api/users/ path: ":id" matches any segment */
    { NGX_HTTP_GET, ngx_string("/api/users/:id"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_user_get },

    { NGX_HTTP_POST, ngx_string("/api/media"),
      NGX_HTTP_CHAT_RAW_BODY,
      NGX_HTTP_CHAT_REST_UPLOAD, ngx_http_chat_media_upload },

    { NGX_HTTP_GET, ngx_string("/api/chats"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_chats_list },
    /* before /api/chats/:id, which would take "ids" for an id */
    { NGX_HTTP_GET, ngx_string("/api/chats/ids"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_chats_ids },
    { NGX_HTTP_POST, ngx_string("/api/chats/private"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_chats_private },
    { NGX_HTTP_POST, ngx_string("/api/chats/group"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_GROUP, ngx_http_chat_chats_group },
    { NGX_HTTP_GET, ngx_string("/api/chats/:id/messages"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_messages_list },
    { NGX_HTTP_GET, ngx_string("/api/chats/:id/messages/search"),
      0,
      NGX_HTTP_CHAT_REST_SEARCH, ngx_http_chat_chats_search },
    { NGX_HTTP_POST, ngx_string("/api/chats/:id/read"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_chats_read },
    { NGX_HTTP_POST, ngx_string("/api/chats/:id/delivered"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_chats_delivered },
    { NGX_HTTP_PUT, ngx_string("/api/chats/:id/settings"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_chats_settings },
    /* group administration (the seed has no paths for it) */
    { NGX_HTTP_GET, ngx_string("/api/chats/:id"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_chats_get },
    { NGX_HTTP_PUT, ngx_string("/api/chats/:id"),
      NGX_HTTP_CHAT_JSON_BODY | NGX_HTTP_CHAT_ACCESS,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_chats_update },
    { NGX_HTTP_POST, ngx_string("/api/chats/:id/members"),
      NGX_HTTP_CHAT_JSON_BODY | NGX_HTTP_CHAT_ACCESS,
      NGX_HTTP_CHAT_REST_GROUP, ngx_http_chat_members_add },
    { NGX_HTTP_DELETE, ngx_string("/api/chats/:id/members/:userId"),
      NGX_HTTP_CHAT_ACCESS,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_members_remove },
    { NGX_HTTP_PUT, ngx_string("/api/chats/:id/members/:userId/role"),
      NGX_HTTP_CHAT_JSON_BODY | NGX_HTTP_CHAT_ACCESS,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_members_role },
    { NGX_HTTP_POST, ngx_string("/api/chats/:id/leave"),
      NGX_HTTP_CHAT_ACCESS,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_chats_leave },

    { NGX_HTTP_POST, ngx_string("/api/messages"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_SEND, ngx_http_chat_messages_send },
    /* before /api/messages/:id */
    { NGX_HTTP_GET, ngx_string("/api/messages/search"),
      0,
      NGX_HTTP_CHAT_REST_SEARCH, ngx_http_chat_messages_search_all },
    { NGX_HTTP_GET, ngx_string("/api/messages/:id"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_messages_get },
    { NGX_HTTP_GET, ngx_string("/api/messages/:id/receipts"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_messages_receipts },
    { NGX_HTTP_PUT, ngx_string("/api/messages/:id"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_SEND, ngx_http_chat_messages_edit },
    { NGX_HTTP_DELETE, ngx_string("/api/messages/:id"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_messages_delete },
    { NGX_HTTP_POST, ngx_string("/api/messages/:id/forward"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_SEND, ngx_http_chat_messages_forward },
    { NGX_HTTP_POST, ngx_string("/api/messages/:id/react"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_messages_react },

    { NGX_HTTP_GET, ngx_string("/api/stories"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_stories_feed },
    { NGX_HTTP_POST, ngx_string("/api/stories"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_stories_create },
    /* before /api/stories/:id */
    { NGX_HTTP_POST, ngx_string("/api/stories/highlights"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_highlights_create },
    { NGX_HTTP_PUT, ngx_string("/api/stories/highlights/:id"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_highlights_update },
    { NGX_HTTP_DELETE, ngx_string("/api/stories/highlights/:id"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_highlights_delete },
    { NGX_HTTP_GET, ngx_string("/api/stories/mine"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_stories_mine },
    { NGX_HTTP_GET, ngx_string("/api/stories/:id"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_stories_get },
    { NGX_HTTP_DELETE, ngx_string("/api/stories/:id"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_stories_delete },
    { NGX_HTTP_POST, ngx_string("/api/stories/:id/view"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_stories_view },
    { NGX_HTTP_GET, ngx_string("/api/stories/:id/views"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_stories_views },
    { NGX_HTTP_POST, ngx_string("/api/stories/:id/react"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_stories_react },
    { NGX_HTTP_DELETE, ngx_string("/api/stories/:id/react"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_stories_unreact },

    { NGX_HTTP_GET, ngx_string("/api/calls/turn-credentials"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_turn_credentials },
    { NGX_HTTP_GET, ngx_string("/api/calls/history"),
      0,
      NGX_HTTP_CHAT_REST_READ, ngx_http_chat_calls_history },
    { NGX_HTTP_POST, ngx_string("/api/calls/initiate"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_calls_initiate },
    { NGX_HTTP_PUT, ngx_string("/api/calls/:id/end"),
      0,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_calls_end },
    { NGX_HTTP_POST, ngx_string("/api/calls/:id/feedback"),
      NGX_HTTP_CHAT_JSON_BODY,
      NGX_HTTP_CHAT_REST_WRITE, ngx_http_chat_calls_feedback },

    { 0, ngx_null_string, 0, 0, NULL }
};


ngx_uint_t
ngx_http_chat_api_routes(void)
{
    return sizeof(ngx_http_chat_routes) / sizeof(ngx_http_chat_route_t) - 1;
}


void
ngx_http_chat_api_route_name(ngx_uint_t i, ngx_str_t *method,
    ngx_str_t *path)
{
    ngx_http_chat_route_t  *rt;

    rt = &ngx_http_chat_routes[i];
    *path = rt->path;

    switch (rt->method) {

    case NGX_HTTP_GET:
        ngx_str_set(method, "GET");
        break;

    case NGX_HTTP_POST:
        ngx_str_set(method, "POST");
        break;

    case NGX_HTTP_PUT:
        ngx_str_set(method, "PUT");
        break;

    case NGX_HTTP_PATCH:
        ngx_str_set(method, "PATCH");
        break;

    case NGX_HTTP_DELETE:
        ngx_str_set(method, "DELETE");
        break;

    default:
        ngx_str_set(method, "OTHER");
    }
}


ngx_int_t
ngx_http_chat_api_route_index(ngx_http_request_t *r)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ctx == NULL || ctx->route == NULL) {
        return -1;
    }

    return (ngx_http_chat_route_t *) ctx->route - ngx_http_chat_routes;
}


/* $chat_route: the pattern of the route matched, "/api/messages/:id" */

ngx_int_t
ngx_http_chat_api_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_int_t  i;
    ngx_str_t  method, path;

    i = ngx_http_chat_api_route_index(r);

    if (i < 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_chat_api_route_name(i, &method, &path);

    v->len = path.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = path.data;

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_api_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_uint_t              allowed, method;
    ngx_http_chat_ctx_t    *ctx;
    ngx_http_chat_route_t  *rt, *found;

    ctx = ngx_http_chat_prepare(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r != r->main) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such API route");
    }

    /* HEAD is answered as GET without a body */
    method = (r->method == NGX_HTTP_HEAD) ? NGX_HTTP_GET : r->method;

    allowed = 0;
    found = NULL;

    /* every method of the path for Allow, and the route for this one */
    for (rt = ngx_http_chat_routes; rt->path.len; rt++) {
        ctx->nparams = 0;

        if (!ngx_http_chat_route_match(&rt->path, &r->uri, ctx)) {
            continue;
        }

        allowed |= rt->method;

        if (found == NULL && rt->method == method) {
            found = rt;
        }
    }

    if (allowed == 0) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such API route");
    }

    if (found == NULL) {
        if (r->method == NGX_HTTP_OPTIONS) {
            return ngx_http_chat_send_preflight(r, allowed);
        }

        return ngx_http_chat_send_method_not_allowed(r, allowed);
    }

    /* the parameters of the route found, not of the last one tried */
    ctx->nparams = 0;
    (void) ngx_http_chat_route_match(&found->path, &r->uri, ctx);

    ctx->route = found;

    /* held from here: its session check is a Redis step already */
    if (ngx_http_chat_work_hold(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!(found->flags & NGX_HTTP_CHAT_PUBLIC)) {
        return ngx_http_chat_authenticate(r, ngx_http_chat_api_authorized);
    }

    /* a public route's bucket is its caller's address */
    rc = ngx_http_chat_rest_rate_check(r, found->group, NULL);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_chat_api_authorized(r);
}


/* the caller may use the route: read its body, then run it */

static ngx_int_t
ngx_http_chat_api_authorized(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_chat_ctx_t    *ctx;
    ngx_http_chat_route_t  *found;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
    found = ctx->route;

    /* the user is known: its bucket of the route's group */
    if (!(found->flags & NGX_HTTP_CHAT_PUBLIC)) {
        rc = ngx_http_chat_rest_rate_check(r, found->group, &ctx->user_id);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    if (found->flags & NGX_HTTP_CHAT_ACCESS) {
        /* no sender of this worker goes on on what it knew */
        ngx_http_chat_send_cache_clear();
    }

    if (found->flags & NGX_HTTP_CHAT_JSON_BODY) {
        return ngx_http_chat_read_json_body(r, found->handler);
    }

    if (found->flags & NGX_HTTP_CHAT_RAW_BODY) {
        return found->handler(r);
    }

    rc = ngx_http_chat_discard_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return found->handler(r);
}


/*
 * A request, a read as much as a write, keeps an exiting worker until it
 * is over (ops/): a worker that went away under a read would fail its
 * Redis or MongoDB step, and the client would see a 503 for a reload.
 */

static ngx_int_t
ngx_http_chat_work_hold(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_chat_work_release;
    cln->data = NULL;

    ngx_http_chat_work_begin();

    return NGX_OK;
}


static void
ngx_http_chat_work_release(void *data)
{
    ngx_http_chat_work_end();
}


/* "/api/chats/:id/messages" against the URI; saves ":id" values */

static ngx_uint_t
ngx_http_chat_route_match(ngx_str_t *pattern, ngx_str_t *uri,
    ngx_http_chat_ctx_t *ctx)
{
    u_char  *p, *pe, *u, *ue, *s;

    p = pattern->data;
    pe = p + pattern->len;
    u = uri->data;
    ue = u + uri->len;

    /* a trailing slash is the same route */
    if (ue - u > 1 && ue[-1] == '/') {
        ue--;
    }

    while (p < pe && u < ue) {

        if (*p == ':') {
            while (p < pe && *p != '/') {
                p++;
            }

            s = u;

            while (u < ue && *u != '/') {
                u++;
            }

            if (u == s || ctx->nparams == NGX_HTTP_CHAT_MAX_PARAMS) {
                return 0;
            }

            ctx->params[ctx->nparams].data = s;
            ctx->params[ctx->nparams].len = u - s;
            ctx->nparams++;

            continue;
        }

        if (*p != *u) {
            return 0;
        }

        p++;
        u++;
    }

    return p == pe && u == ue;
}

