/*
 * Copyright (C) ngx_chat_module authors
 *
 * My own profile for a socket's sign-in, Redis first
 * (store/ngx_http_chat_profile_cache.c): a hit reads nothing from
 * MongoDB; a miss (a first sign-in, a day gone, a change of the profile,
 * Redis emptied or away) runs the store step of GET /api/users/profile
 * and stores its answer, unless a change came meanwhile.  The changes
 * (ngx_http_chat_op_user.c, an avatar uploaded) drop the cached profile
 * once stored.
 */


#include "ngx_http_chat_op_self.h"
#include "ngx_http_chat_op_store.h"
#include "../util/ngx_http_chat_text.h"
#include "../store/ngx_http_chat_people.h"
#include "../store/ngx_http_chat_profile_cache.h"


typedef struct {
    ngx_http_chat_op_done_pt   done;
    void                      *data;
    ngx_str_t                 *text;       /* the caller's, or NULL */
    u_char                     user[24];
    u_char                     gen[NGX_HTTP_CHAT_PROFILE_GEN_MAX];
    size_t                     gen_len;
} ngx_http_chat_op_self_t;


static void ngx_http_chat_op_self_cached(void *data, ngx_int_t rc,
    ngx_str_t *json, ngx_str_t *gen);
static ngx_int_t ngx_http_chat_op_self_load(ngx_http_chat_op_self_t *op);
static void ngx_http_chat_op_self_loaded(void *data, ngx_int_t rc,
    json_t *answer, const char *error);


ngx_int_t
ngx_http_chat_op_self(ngx_str_t *user, ngx_str_t *text,
    ngx_http_chat_op_done_pt done, void *data)
{
    ngx_int_t                 rc;
    ngx_str_t                 u;
    ngx_http_chat_op_self_t  *op;

    if (!ngx_http_chat_is_oid(user)) {
        return NGX_ERROR;
    }

    op = ngx_calloc(sizeof(ngx_http_chat_op_self_t), ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->done = done;
    op->data = data;
    op->text = text;
    ngx_memcpy(op->user, user->data, 24);

    u.data = op->user;
    u.len = 24;

    rc = ngx_http_chat_profile_cache_get(&u, ngx_http_chat_op_self_cached,
                                         op);
    if (rc == NGX_OK) {
        return NGX_OK;
    }

    /* Redis is away: MongoDB answers, nothing is stored */
    if (ngx_http_chat_op_self_load(op) != NGX_OK) {
        ngx_free(op);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_chat_op_self_cached(void *data, ngx_int_t rc, ngx_str_t *json,
    ngx_str_t *gen)
{
    ngx_http_chat_op_self_t *op = data;

    json_t  *answer;

    if (rc == NGX_OK) {
        answer = json_loadb((char *) json->data, json->len, 0, NULL);

        if (json_is_object(json_object_get(answer, "user"))) {

            if (op->text) {
                op->text->data = ngx_alloc(json->len, ngx_cycle->log);

                if (op->text->data) {
                    ngx_memcpy(op->text->data, json->data, json->len);
                    op->text->len = json->len;
                }
            }

            op->done(op->data, NGX_OK, answer, NULL);
            ngx_free(op);
            return;
        }

        /* not ours to read: MongoDB answers, and it is stored again */
        json_decref(answer);
    }

    if (rc != NGX_ERROR) {
        ngx_memcpy(op->gen, gen->data, gen->len);
        op->gen_len = gen->len;
    }

    if (ngx_http_chat_op_self_load(op) != NGX_OK) {
        op->done(op->data, NGX_ERROR, NULL, "mongo is not available");
        ngx_free(op);
    }
}


static ngx_int_t
ngx_http_chat_op_self_load(ngx_http_chat_op_self_t *op)
{
    ngx_http_chat_op_store_t    *st;
    ngx_http_chat_people_arg_t   arg;

    ngx_memzero(&arg, sizeof(ngx_http_chat_people_arg_t));
    bson_oid_init_from_string_unsafe(&arg.viewer, (char *) op->user);

    /* the operation copies arg; a storm of sign-ins reads in batches */
    return ngx_http_chat_op_store_batched(ngx_http_chat_people_self_post,
                                          ngx_http_chat_people_self_run,
                                          &arg,
                                          sizeof(ngx_http_chat_people_arg_t),
                                          ngx_http_chat_op_self_loaded, op,
                                          &st);
}


static void
ngx_http_chat_op_self_loaded(void *data, ngx_int_t rc, json_t *answer,
    const char *error)
{
    ngx_http_chat_op_self_t *op = data;

    char       *dump;
    ngx_str_t   user, gen, json;

    if (rc == NGX_OK && answer && op->gen_len) {
        dump = json_dumps(answer, JSON_COMPACT);

        if (dump) {
            user.data = op->user;
            user.len = 24;
            gen.data = op->gen;
            gen.len = op->gen_len;
            json.data = (u_char *) dump;
            json.len = ngx_strlen(dump);

            ngx_http_chat_profile_cache_fill(&user, &gen, &json);

            if (op->text) {
                /* jansson's malloc(): the caller's ngx_free() frees it */
                op->text->data = json.data;
                op->text->len = json.len;

            } else {
                free(dump);
            }
        }
    }

    op->done(op->data, rc, answer, error);
    ngx_free(op);
}
