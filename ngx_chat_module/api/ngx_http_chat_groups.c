/*
 * Copyright (C) ngx_chat_module authors
 *
 * Group administration: each change is an operation (ops/), which runs
 * its steps (the store's change, its system message, the events) to
 * their end whoever waits; the routes only adapt it.
 */


#include "ngx_http_chat_chats_int.h"
#include "../ops/ngx_http_chat_op_group.h"


/*
 * The caller, the chat :id and, when member, the member :userId of a
 * group change: NGX_OK, or the route's answer (a 404 when one is not an
 * id)
 */

static ngx_int_t
ngx_http_chat_group_ids(ngx_http_request_t *r, bson_oid_t *me,
    bson_oid_t *chat, bson_oid_t *member, ngx_int_t *rc)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (ngx_http_chat_chats_me(r, me) != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    if (ngx_http_chat_chats_param(r, chat) != NGX_OK) {
        *rc = ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                       "no such chat");
        return NGX_ERROR;
    }

    if (member == NULL) {
        return NGX_OK;
    }

    if (ctx->nparams < 2 || !ngx_http_chat_is_oid(&ctx->params[1])) {
        *rc = ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                       "no such member");
        return NGX_ERROR;
    }

    bson_oid_init_from_string_unsafe(member, (char *) ctx->params[1].data);

    return NGX_OK;
}


/*
 * PUT /api/chats/:id {name?, description?, avatar?, onlyAdminsCanSend?,
 * onlyAdminsCanEditInfo?}: description and avatar are removed by null
 * (or ""); avatar is a media id
 */

ngx_int_t
ngx_http_chat_chats_update(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_group_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_group_ids(r, &me, &chat, NULL, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_group_update(&me, &chat, ctx->body,
                                       ngx_http_chat_store_answered, st,
                                       ngx_http_chat_store_op(st), &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}


/* POST /api/chats/:id/members {userIds} */

ngx_int_t
ngx_http_chat_members_add(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_group_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_group_ids(r, &me, &chat, NULL, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_group_add(&me, &chat,
                                    json_object_get(ctx->body, "userIds"),
                                    ngx_http_chat_store_answered, st,
                                    ngx_http_chat_store_op(st), &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}


/* DELETE /api/chats/:id/members/:userId */

ngx_int_t
ngx_http_chat_members_remove(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat, member;
    ngx_http_chat_store_wait_t  *st;

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_group_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_group_ids(r, &me, &chat, &member, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_group_remove(&me, &chat, &member,
                                       ngx_http_chat_store_answered, st,
                                       ngx_http_chat_store_op(st));

    return ngx_http_chat_store_started(r, st, rc, NULL, NULL, NULL);
}


/* PUT /api/chats/:id/members/:userId/role {role: "admin" | "member"} */

ngx_int_t
ngx_http_chat_members_role(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat, member;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *st;
    ngx_http_chat_op_refused_t   refused;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_group_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_group_ids(r, &me, &chat, &member, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_group_role(&me, &chat, &member,
                                     json_object_get(ctx->body, "role"),
                                     ngx_http_chat_store_answered, st,
                                     ngx_http_chat_store_op(st), &refused);

    return ngx_http_chat_op_started(r, st, rc, &refused);
}


/* POST /api/chats/:id/leave */

ngx_int_t
ngx_http_chat_chats_leave(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, chat;
    ngx_http_chat_store_wait_t  *st;

    st = ngx_http_chat_store_wait(r, ngx_http_chat_op_group_tell);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_group_ids(r, &me, &chat, NULL, &rc) != NGX_OK) {
        return rc;
    }

    rc = ngx_http_chat_op_group_leave(&me, &chat,
                                      ngx_http_chat_store_answered, st,
                                      ngx_http_chat_store_op(st));

    return ngx_http_chat_store_started(r, st, rc, NULL, NULL, NULL);
}
