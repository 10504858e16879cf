/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_PROFILE_PACK_H_INCLUDED_
#define _NGX_HTTP_CHAT_PROFILE_PACK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * A cached profile as Redis keeps it: one byte, 0x01, then the JSON
 * deflated (raw) against a dictionary of what every profile repeats
 * (its keys, the privacy rules), about a quarter of the JSON's size.
 * Redis holds one for every signed-in user, which makes it most of the
 * memory a user costs there.  A value that begins with '{' is the JSON
 * itself (what an older build stored), read as it is.
 *
 * Both give out a buffer of the worker's, valid until the next call.
 */

/* NGX_DECLINED: too large to pack, store the JSON itself */
ngx_int_t ngx_http_chat_profile_pack(ngx_str_t *json, ngx_str_t *out);
/* NGX_DECLINED: not a profile of ours (read it as a miss) */
ngx_int_t ngx_http_chat_profile_unpack(ngx_str_t *value, ngx_str_t *json);


#endif /* _NGX_HTTP_CHAT_PROFILE_PACK_H_INCLUDED_ */
