/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_USER_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_USER_H_INCLUDED_


#include "ngx_http_chat_op_store.h"
#include <bson/bson.h>


/*
 * The users' own writes, transport-neutral: my profile and privacy
 * settings here, my contacts and blocks in ngx_http_chat_op_people.h.
 * Each takes the user and plain arguments, checks them, and starts its
 * store steps as an operation (ngx_http_chat_op_store.h): what its commit
 * causes follows whoever waits, its outcome goes to done(), told by
 * ngx_http_chat_op_user_tell().
 *
 * Each returns NGX_OK (started: done() will be called, detach it with
 * ngx_http_chat_op_store_detach()), NGX_ERROR (it could not start, done()
 * is not called), or, with nothing started, a refusal of the input:
 * NGX_DECLINED, *field and *err say what is wrong (400 invalid_request);
 * NGX_ABORT, a value refused, *field its code and *err the message (422);
 * NGX_BUSY, the user it names is nobody (404 not_found "no such user").
 */

/*
 * my profile from body {name, bio, avatar, username, privacy}: name
 * required by complete-profile (need_name); answers my whole profile
 */
ngx_int_t ngx_http_chat_op_profile(const bson_oid_t *user, json_t *body,
    ngx_uint_t need_name, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out, const char **field, const char **err);

/* the outcome of an operation above, as told on every transport */
#define NGX_HTTP_CHAT_OP_TELL_PROFILE   0   /* the profile answered */
#define NGX_HTTP_CHAT_OP_TELL_USER      1   /* a user answered */
#define NGX_HTTP_CHAT_OP_TELL_RELATION  2   /* {"success": true} */

/* an https URL whose host is one of chat_avatar_url_host's */
ngx_uint_t ngx_http_chat_op_avatar_host(ngx_str_t *url);
void ngx_http_chat_op_user_tell(ngx_uint_t kind, ngx_int_t rc,
    json_t *answer, ngx_http_chat_op_told_t *told);


#endif /* _NGX_HTTP_CHAT_OP_USER_H_INCLUDED_ */
