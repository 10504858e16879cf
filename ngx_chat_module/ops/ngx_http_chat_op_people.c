/*
 * Copyright (C) ngx_chat_module authors
 *
 * My contacts and blocks as operations: the checks of what I sent, then
 * one store step owned by the operation, never by a request.
 */


#include "ngx_http_chat_op_people.h"
#include "ngx_http_chat_send_cache.h"
#include "../store/ngx_http_chat_people.h"
#include "../util/ngx_http_chat_text.h"


static ngx_http_chat_mongo_run_pt ngx_http_chat_op_blocked(void *arg,
    ngx_int_t *rc, json_t *answer);


ngx_int_t
ngx_http_chat_op_contact_input(const bson_oid_t *user, json_t *body,
    ngx_http_chat_op_phone_pt phone_e164, ngx_http_chat_people_arg_t *arg,
    const char **field, const char **err)
{
    ngx_str_t  uid, phone, country, name;

    *field = "userId";
    if ((*err = ngx_http_chat_json_string(body, "userId", 0, 24, &uid))) {
        return NGX_DECLINED;
    }

    *field = "phone";
    if ((*err = ngx_http_chat_json_string(body, "phone", 0, 64, &phone))) {
        return NGX_DECLINED;
    }

    *field = "countryCode";
    if ((*err = ngx_http_chat_json_string(body, "countryCode", 0, 8,
                                          &country)))
    {
        return NGX_DECLINED;
    }

    *field = "name";
    if ((*err = ngx_http_chat_json_string(body, "name", 0, 64, &name))) {
        return NGX_DECLINED;
    }

    if (name.data && ngx_http_chat_has_controls(&name, 0)) {
        *err = "has control characters";
        return NGX_DECLINED;
    }

    if ((uid.data == NULL) == (phone.data == NULL)) {
        *field = "userId";
        *err = "or phone is required, not both";
        return NGX_DECLINED;
    }

    ngx_memzero(arg, sizeof(ngx_http_chat_people_arg_t));
    arg->viewer = *user;

    if (uid.data) {
        if (!ngx_http_chat_is_oid(&uid)) {
            return NGX_BUSY;
        }

        bson_oid_init_from_string_unsafe(&arg->target, (char *) uid.data);
        arg->has_target = 1;
    }

    /* one number: parsed here, a few microseconds */
    if (phone.data
        && phone_e164(&phone, country.data ? &country : NULL, arg->phone)
           != NGX_OK)
    {
        *field = "invalid_phone";
        *err = "the phone number is not valid";
        return NGX_ABORT;
    }

    if (name.data) {
        ngx_memcpy(arg->name, name.data, name.len);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_op_contact_add(ngx_http_chat_people_arg_t *arg,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out)
{
    return ngx_http_chat_op_store(ngx_http_chat_contacts_add_run, NULL, arg,
                                  sizeof(ngx_http_chat_people_arg_t), done,
                                  data, out);
}


ngx_int_t
ngx_http_chat_op_relation(const bson_oid_t *user, const bson_oid_t *target,
    ngx_uint_t what, ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out)
{
    ngx_http_chat_mongo_run_pt      run;
    ngx_http_chat_op_store_next_pt  next;
    ngx_http_chat_people_arg_t      arg;

    ngx_memzero(&arg, sizeof(ngx_http_chat_people_arg_t));
    arg.viewer = *user;
    arg.target = *target;
    arg.has_target = 1;

    next = NULL;

    switch (what) {

    case NGX_HTTP_CHAT_OP_BLOCK:
        /* no sender of this worker goes on on what it knew */
        ngx_http_chat_send_cache_clear();

        run = ngx_http_chat_blocks_add_run;
        next = ngx_http_chat_op_blocked;
        break;

    case NGX_HTTP_CHAT_OP_UNBLOCK:
        /* an unblock only widens who may send: nothing remembered is wrong */
        run = ngx_http_chat_blocks_delete_run;
        break;

    default: /* NGX_HTTP_CHAT_OP_CONTACT_DELETE */
        run = ngx_http_chat_contacts_delete_run;
        break;
    }

    return ngx_http_chat_op_store(run, next, &arg,
                                  sizeof(ngx_http_chat_people_arg_t), done,
                                  data, out);
}


/*
 * The block is stored, whoever waits: a send checked meanwhile may have
 * remembered the sender as allowed; it must not be.  Presence needs
 * nothing: each presence event is checked for each subscriber as it comes.
 */

static ngx_http_chat_mongo_run_pt
ngx_http_chat_op_blocked(void *arg, ngx_int_t *rc, json_t *answer)
{
    ngx_http_chat_send_cache_clear();

    return NULL;
}
