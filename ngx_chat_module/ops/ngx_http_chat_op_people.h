/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_PEOPLE_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_PEOPLE_H_INCLUDED_


#include "ngx_http_chat_op_user.h"
#include "../store/ngx_http_chat_people.h"


/*
 * My contacts and blocks as operations, returning and answering as the
 * profile's (ngx_http_chat_op_user.h).  A block changes who may send
 * where: the worker's send cache is cleared when it starts and again once
 * it is stored, whoever waits; presence is narrowed by the check each
 * presence event gets per subscriber when it arrives.
 */

/*
 * A phone number as typed into E.164 (24 bytes with the NUL): NGX_OK or
 * NGX_ERROR.  Given by the caller: libphonenumber's interface is on this
 * floor (auth/).  Safe in any thread.
 */
typedef ngx_int_t (*ngx_http_chat_op_phone_pt)(ngx_str_t *in,
    ngx_str_t *country, char *out);


/*
 * body {userId | phone, countryCode?, name?} checked into arg, the phone
 * in E.164 (arg->phone[0] is 0 without one): NGX_OK, or a refusal as the
 * starts'.  A number costs the day's lookup budget
 * (ngx_http_chat_op_lookup.h) before the contact is added: the caller
 * counts it, then starts the add.
 */
ngx_int_t ngx_http_chat_op_contact_input(const bson_oid_t *user,
    json_t *body, ngx_http_chat_op_phone_pt phone,
    ngx_http_chat_people_arg_t *arg, const char **field, const char **err);
/* the contact of arg (checked above) added: answers the contact */
ngx_int_t ngx_http_chat_op_contact_add(ngx_http_chat_people_arg_t *arg,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out);

/* the relation of user to target: remove a contact, block, unblock */
#define NGX_HTTP_CHAT_OP_CONTACT_DELETE  0
#define NGX_HTTP_CHAT_OP_BLOCK           1
#define NGX_HTTP_CHAT_OP_UNBLOCK         2

ngx_int_t ngx_http_chat_op_relation(const bson_oid_t *user,
    const bson_oid_t *target, ngx_uint_t what,
    ngx_http_chat_op_done_pt done, void *data,
    ngx_http_chat_op_store_t **out);


#endif /* _NGX_HTTP_CHAT_OP_PEOPLE_H_INCLUDED_ */
