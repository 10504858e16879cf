/*
 * Copyright (C) ngx_chat_module authors
 *
 * The user routes: my profile and privacy settings, other people's
 * profiles as their settings allow, search, contacts and address-book
 * sync, blocking.
 */


#include "../core/ngx_http_chat_async.h"
#include "../auth/ngx_http_chat_auth.h"
#include "../auth/ngx_http_chat_phone.h"
#include "../store/ngx_http_chat_users.h"
#include "../store/ngx_http_chat_people.h"
#include "../util/ngx_http_chat_text.h"
#include "../ops/ngx_http_chat_op_people.h"
#include "../ops/ngx_http_chat_op_sync.h"
#include "../ops/ngx_http_chat_op_lookup.h"
#include "ngx_http_chat_users.h"
#include "ngx_http_chat_wait.h"


#define NGX_HTTP_CHAT_SEARCH_PER_MINUTE  30


static ngx_int_t ngx_http_chat_people_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);


/* a write of mine waits as every operation (ngx_http_chat_wait.h) */

static ngx_http_chat_store_wait_t *
ngx_http_chat_users_wait(ngx_http_request_t *r, ngx_uint_t kind,
    bson_oid_t *me)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (!ngx_http_chat_is_oid(&ctx->user_id)) {
        return NULL;
    }

    bson_oid_init_from_string_unsafe(me, (char *) ctx->user_id.data);

    return ngx_http_chat_user_wait(r, kind);
}


/* complete-profile and PUT /api/users/profile */

static ngx_int_t
ngx_http_chat_profile_write(ngx_http_request_t *r, ngx_uint_t need_name)
{
    ngx_int_t                    rc;
    bson_oid_t                   me;
    const char                  *field, *err;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *w;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    w = ngx_http_chat_users_wait(r, NGX_HTTP_CHAT_OP_TELL_PROFILE, &me);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_op_profile(&me, ctx->body, need_name,
                                  ngx_http_chat_store_answered, w,
                                  ngx_http_chat_store_op(w), &field, &err);

    return ngx_http_chat_store_started(r, w, rc, field, err, NULL);
}


/* POST /api/auth/complete-profile {name, bio?, avatar?, username?} */

ngx_int_t
ngx_http_chat_complete_profile(ngx_http_request_t *r)
{
    return ngx_http_chat_profile_write(r, 1);
}


/* PUT /api/users/profile: any of the fields, and the privacy settings */

ngx_int_t
ngx_http_chat_profile_put(ngx_http_request_t *r)
{
    return ngx_http_chat_profile_write(r, 0);
}


/* DELETE /api/users/contacts/:id, POST and DELETE /api/users/:id/block */

static ngx_int_t
ngx_http_chat_relation_write(ngx_http_request_t *r, ngx_uint_t what)
{
    ngx_int_t                    rc;
    bson_oid_t                   me, target;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *w;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    w = ngx_http_chat_users_wait(r, NGX_HTTP_CHAT_OP_TELL_RELATION, &me);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_http_chat_is_oid(&ctx->params[0])) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such user");
    }

    bson_oid_init_from_string_unsafe(&target, (char *) ctx->params[0].data);

    rc = ngx_http_chat_op_relation(&me, &target, what,
                                   ngx_http_chat_store_answered, w,
                                   ngx_http_chat_store_op(w));

    return ngx_http_chat_store_started(r, w, rc, NULL, NULL, NULL);
}


static ngx_int_t
ngx_http_chat_people_arg(ngx_http_request_t *r,
    ngx_http_chat_people_arg_t *arg, ngx_str_t *target)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    ngx_memzero(arg, sizeof(ngx_http_chat_people_arg_t));

    if (!ngx_http_chat_is_oid(&ctx->user_id)) {
        return NGX_ERROR;
    }

    bson_oid_init_from_string_unsafe(&arg->viewer, (char *) ctx->user_id.data);

    if (target) {
        if (!ngx_http_chat_is_oid(target)) {
            return NGX_DECLINED;
        }

        bson_oid_init_from_string_unsafe(&arg->target, (char *) target->data);
        arg->has_target = 1;
    }

    return NGX_OK;
}


/* sends t->result, or the fitting error */

static ngx_int_t
ngx_http_chat_people_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    json_t  *json;

    if (t->rc == NGX_DECLINED) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such user");
    }

    if (t->rc != NGX_OK || t->result == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: user query failed in mongo: %s",
                      t->error.message);
        return ngx_http_chat_send_unavailable(r);
    }

    json = t->result;
    t->result = NULL;

    /* who is online is Redis's, not the documents' */
    return ngx_http_chat_send_json_online(r, NGX_HTTP_OK, json);
}


/* the routes that take just the caller and maybe the :id of a user */

static ngx_int_t
ngx_http_chat_people_simple(ngx_http_request_t *r,
    ngx_http_chat_mongo_run_pt run, ngx_uint_t with_target,
    ngx_http_chat_mongo_next_pt next)
{
    ngx_int_t                    rc;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_people_arg_t   arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    rc = ngx_http_chat_people_arg(r, &arg,
                                  with_target ? &ctx->params[0] : NULL);

    if (rc == NGX_DECLINED) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such user");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_mongo_request(r, run, next, &arg, sizeof(arg));
}


ngx_int_t
ngx_http_chat_profile_get(ngx_http_request_t *r)
{
    return ngx_http_chat_people_simple(r, ngx_http_chat_people_self_run, 0,
                                       ngx_http_chat_people_done);
}


/*
 * GET /api/users/:id: ids are nearly sequential, so a user's views are
 * limited (chat_user_view_limit, a counter in Redis) lest they be walked
 */

static ngx_int_t ngx_http_chat_user_get_allowed(ngx_http_request_t *r,
    redisReply *reply);


ngx_int_t
ngx_http_chat_user_get(ngx_http_request_t *r)
{
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    return ngx_http_chat_rate_limit(r, "view", &cmcf->user_view_limit,
                                    ngx_http_chat_user_get_allowed);
}


static ngx_int_t
ngx_http_chat_user_get_allowed(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t  rc;

    rc = ngx_http_chat_rate_over(r, reply);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_chat_people_simple(r, ngx_http_chat_people_view_run, 1,
                                       ngx_http_chat_people_done);
}


ngx_int_t
ngx_http_chat_contacts_list(ngx_http_request_t *r)
{
    return ngx_http_chat_people_simple(r, ngx_http_chat_contacts_list_run, 0,
                                       ngx_http_chat_people_done);
}


ngx_int_t
ngx_http_chat_contacts_delete(ngx_http_request_t *r)
{
    return ngx_http_chat_relation_write(r, NGX_HTTP_CHAT_OP_CONTACT_DELETE);
}


ngx_int_t
ngx_http_chat_block(ngx_http_request_t *r)
{
    return ngx_http_chat_relation_write(r, NGX_HTTP_CHAT_OP_BLOCK);
}


ngx_int_t
ngx_http_chat_unblock(ngx_http_request_t *r)
{
    return ngx_http_chat_relation_write(r, NGX_HTTP_CHAT_OP_UNBLOCK);
}


ngx_int_t
ngx_http_chat_blocked_list(ngx_http_request_t *r)
{
    return ngx_http_chat_people_simple(r, ngx_http_chat_blocks_list_run, 0,
                                       ngx_http_chat_people_done);
}


/* a phone number as typed; national numbers need countryCode */

static ngx_int_t
ngx_http_chat_people_phone(ngx_str_t *in, ngx_str_t *country, char *out)
{
    ngx_http_chat_phone_t  phone;

    if (ngx_http_chat_phone_normalize((char *) in->data, in->len,
                                      country ? (char *) country->data : NULL,
                                      country ? country->len : 0, &phone)
        != NGX_HTTP_CHAT_PHONE_OK)
    {
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) out, (u_char *) phone.e164, 24);

    return NGX_OK;
}


/*
 * POST /api/users/add-contact {userId | phone, countryCode?, name?}: a
 * number costs the day's lookup budget first (ngx_http_chat_op_lookup.h)
 */

static ngx_int_t ngx_http_chat_contacts_counted(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_contacts_add_start(ngx_http_request_t *r);


ngx_int_t
ngx_http_chat_contacts_add(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    key, args[3];
    bson_oid_t                   me;
    const char                  *field, *err;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_people_arg_t  *arg;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    arg = ngx_palloc(r->pool, sizeof(ngx_http_chat_people_arg_t));
    if (arg == NULL || !ngx_http_chat_is_oid(&ctx->user_id)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    bson_oid_init_from_string_unsafe(&me, (char *) ctx->user_id.data);

    rc = ngx_http_chat_op_contact_input(&me, ctx->body,
                                        ngx_http_chat_people_phone, arg,
                                        &field, &err);
    if (rc != NGX_OK) {
        /* a refusal: nothing waits */
        return ngx_http_chat_store_started(r, NULL, rc, field, err, NULL);
    }

    ctx->state = arg;

    if (arg->phone[0] == '\0') {
        return ngx_http_chat_contacts_add_start(r);
    }

    if (ngx_http_chat_op_lookup_one(r->pool, &me, arg->phone, &key, args)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* nothing is stored yet: a client that leaves only spent the lookup */
    return ngx_http_chat_redis_eval(r, ngx_http_chat_op_lookup_script, 1,
                                    &key, 3, args,
                                    ngx_http_chat_contacts_counted);
}


static ngx_int_t
ngx_http_chat_contacts_counted(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t  rc;

    rc = ngx_http_chat_rate_over(r, reply);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_chat_contacts_add_start(r);
}


static ngx_int_t
ngx_http_chat_contacts_add_start(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    bson_oid_t                   me;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_store_wait_t  *w;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    w = ngx_http_chat_users_wait(r, NGX_HTTP_CHAT_OP_TELL_USER, &me);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_op_contact_add(ctx->state,
                                      ngx_http_chat_store_answered, w,
                                      ngx_http_chat_store_op(w));

    return ngx_http_chat_store_started(r, w, rc, NULL, NULL, NULL);
}


/*
 * GET /api/users/search?q=&cursor=&limit=: a phone number (exact, any
 * format that normalises; national ones with &countryCode=), or a prefix
 * of a name or username
 */

static ngx_int_t ngx_http_chat_search_allowed(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_chat_search_counted(ngx_http_request_t *r,
    redisReply *reply);


ngx_int_t
ngx_http_chat_search(ngx_http_request_t *r)
{
    ngx_http_chat_rate_t  rate;

    /* a per-user counter in Redis: 429 past the limit in a minute */
    rate.count = NGX_HTTP_CHAT_SEARCH_PER_MINUTE;
    rate.window = 60;

    return ngx_http_chat_rate_limit(r, "search", &rate,
                                    ngx_http_chat_search_allowed);
}


static ngx_int_t
ngx_http_chat_search_allowed(ngx_http_request_t *r, redisReply *reply)
{
    u_char                      *p, *folded, *last;
    ngx_int_t                    rc, n;
    ngx_str_t                    q, cursor, limit, country, key, args[3];
    ngx_uint_t                   digits;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_people_arg_t   arg, *saved;

    rc = ngx_http_chat_rate_over(r, reply);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_arg(r, (u_char *) "q", 1, &q) != NGX_OK || q.len == 0) {
        return ngx_http_chat_send_invalid(r, "q", "is required");
    }

    /*
     * The query string is still %-encoded, and a bare "+" in it means a
     * space (a "+" of a phone number comes as %2B)
     */
    p = ngx_pnalloc(r->pool, 2 * q.len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    folded = p + q.len + 1;
    ngx_memcpy(folded, q.data, q.len);

    for (last = folded; last < folded + q.len; last++) {
        if (*last == '+') {
            *last = ' ';
        }
    }

    last = p;
    ngx_unescape_uri(&last, &folded, q.len, NGX_UNESCAPE_URI);
    q.data = p;
    q.len = last - p;

    if (q.len > 64 || ngx_utf8_length(q.data, q.len) == (size_t) NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "q",
                                          "must be valid UTF-8, at most 64 "
                                          "bytes");
    }

    rc = ngx_http_chat_people_arg(r, &arg, NULL);
    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    arg.limit = 20;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &limit) == NGX_OK) {
        n = ngx_atoi(limit.data, limit.len);

        if (n < 1 || n > 50) {
            return ngx_http_chat_send_invalid(r, "limit",
                                              "must be between 1 and 50");
        }

        arg.limit = (ngx_uint_t) n;
    }

    if (ngx_http_arg(r, (u_char *) "cursor", 6, &cursor) == NGX_OK) {
        if (!ngx_http_chat_is_oid(&cursor)) {
            return ngx_http_chat_send_invalid(r, "cursor", "is not valid");
        }

        bson_oid_init_from_string_unsafe(&arg.cursor, (char *) cursor.data);
        arg.has_cursor = 1;
    }

    /* mostly digits: a phone number */
    digits = 0;

    for (p = q.data; p < q.data + q.len; p++) {
        if (*p >= '0' && *p <= '9') {
            digits++;
        }
    }

    if (digits >= 6 && digits * 2 >= q.len) {
        if (ngx_http_arg(r, (u_char *) "countryCode", 11, &country)
            != NGX_OK)
        {
            country.data = NULL;
        }

        if (ngx_http_chat_people_phone(&q, country.data ? &country : NULL,
                                       arg.phone)
            != NGX_OK)
        {
            /* a number nobody can have: nobody has it */
            return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                           json_pack("{s:[]}", "items"));
        }

        arg.mode = NGX_HTTP_CHAT_PEOPLE_PHONE;

        /* the number costs the day's lookup budget first */
        saved = ngx_palloc(r->pool, sizeof(ngx_http_chat_people_arg_t));
        if (saved == NULL
            || ngx_http_chat_op_lookup_one(r->pool, &arg.viewer, arg.phone,
                                           &key, args)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *saved = arg;

        ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);
        ctx->state = saved;

        return ngx_http_chat_redis_eval(r, ngx_http_chat_op_lookup_script, 1,
                                        &key, 3, args,
                                        ngx_http_chat_search_counted);

    } else {
        /* "^" + the folded query with every metacharacter escaped */
        folded = ngx_pnalloc(r->pool, q.len);
        if (folded == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        last = ngx_http_chat_fold(folded, q.data, q.len);

        arg.query[0] = '^';
        p = ngx_http_chat_regex_escape((u_char *) arg.query + 1, folded,
                                       last - folded);
        *p = '\0';

        arg.mode = NGX_HTTP_CHAT_PEOPLE_NAME;
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_people_search_run,
                                       ngx_http_chat_people_done,
                                       &arg, sizeof(arg));
}


static ngx_int_t
ngx_http_chat_search_counted(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t             rc;
    ngx_http_chat_ctx_t  *ctx;

    rc = ngx_http_chat_rate_over(r, reply);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    return ngx_http_chat_mongo_request(r, ngx_http_chat_people_search_run,
                                       ngx_http_chat_people_done,
                                       ctx->state,
                                       sizeof(ngx_http_chat_people_arg_t));
}


/*
 * POST /api/users/contacts/sync {phones: [...], countryCode?}: which of
 * the address book's numbers have an account (up to 5,000 a call), an
 * operation (ops/ngx_http_chat_op_sync.h)
 */

static void ngx_http_chat_sync_detach(void *op);
static void ngx_http_chat_sync_answered(void *data, ngx_int_t rc,
    json_t *answer, const char *error);
static ngx_int_t ngx_http_chat_sync_tell(ngx_http_request_t *r,
    ngx_int_t rc, json_t *answer, const char *error);


ngx_int_t
ngx_http_chat_contacts_sync(ngx_http_request_t *r)
{
    ngx_int_t              rc;
    bson_oid_t             me;
    const char            *field, *err;
    ngx_http_chat_ctx_t   *ctx;
    ngx_http_chat_wait_t  *w;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (!ngx_http_chat_is_oid(&ctx->user_id)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    bson_oid_init_from_string_unsafe(&me, (char *) ctx->user_id.data);

    w = ngx_http_chat_wait(r, ngx_http_chat_sync_detach);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_chat_op_sync(&me, ctx->body, ngx_http_chat_people_phone,
                               ngx_http_chat_sync_answered, w,
                               (ngx_http_chat_op_sync_t **) &w->op,
                               &field, &err);

    switch (rc) {

    case NGX_OK:
        return ngx_http_chat_wait_started(r, w);

    case NGX_DECLINED:
        return ngx_http_chat_send_invalid(r, field, err);

    default:
        return ngx_http_chat_send_unavailable(r);
    }
}


static void
ngx_http_chat_sync_detach(void *op)
{
    ngx_http_chat_op_sync_detach(op);
}


static void
ngx_http_chat_sync_answered(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_request_t  *r;

    r = ngx_http_chat_wait_over(data);

    ngx_http_chat_wait_end(r, ngx_http_chat_sync_tell(r, rc, answer, error));
}


/* the answer of a sync's outcome; takes answer */

static ngx_int_t
ngx_http_chat_sync_tell(ngx_http_request_t *r, ngx_int_t rc, json_t *answer,
    const char *error)
{
    u_char      *p;
    ngx_int_t    ret;
    ngx_str_t    v;
    const char  *field, *message;

    switch (rc) {

    case NGX_OK:
        return ngx_http_chat_send_json_online(r, NGX_HTTP_OK, answer);

    case NGX_BUSY:
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            json_decref(answer);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        v.data = p;
        v.len = ngx_sprintf(p, "%L", (int64_t) json_integer_value(
                                json_object_get(answer, "retryAfter")))
                - p;
        json_decref(answer);

        if (ngx_http_chat_add_header(r, "Retry-After", &v) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_chat_send_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                        "rate_limited",
                                        "too many requests, try again later");

    case NGX_DECLINED:
        field = json_string_value(json_object_get(answer, "field"));
        message = json_string_value(json_object_get(answer, "message"));

        if (field == NULL || message == NULL) {
            json_decref(answer);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ret = ngx_http_chat_send_invalid(r, field, message);
        json_decref(answer);
        return ret;

    case NGX_ABORT:
        json_decref(answer);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;

    default:
        json_decref(answer);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: contact sync failed: %s", error);
        return ngx_http_chat_send_unavailable(r);
    }
}
