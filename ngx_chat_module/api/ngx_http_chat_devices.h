/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_DEVICES_API_H_INCLUDED_
#define _NGX_HTTP_CHAT_DEVICES_API_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/* PUT /api/devices, DELETE /api/devices: the session's push device */
ngx_int_t ngx_http_chat_devices_put(ngx_http_request_t *r);
ngx_int_t ngx_http_chat_devices_delete(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CHAT_DEVICES_API_H_INCLUDED_ */
