/*
 * Copyright (C) ngx_chat_module authors
 *
 * The echo location (chat_ws_echo, off unless configured): every message
 * comes back as it came.  It exists so that a conformance suite can drive
 * the very frame code the chat endpoint uses.
 */


#include "ngx_http_chat_ws.h"


static ngx_int_t ngx_http_chat_ws_echo_open(ngx_http_chat_ws_t *ws);
static void ngx_http_chat_ws_echo_message(ngx_http_chat_ws_t *ws,
    ngx_uint_t opcode, u_char *data, size_t len);
static void ngx_http_chat_ws_echo_close(ngx_http_chat_ws_t *ws);


ngx_http_chat_ws_app_t  ngx_http_chat_ws_echo_app = {
    ngx_http_chat_ws_echo_open,
    ngx_http_chat_ws_echo_message,
    ngx_http_chat_ws_echo_close
};


static ngx_int_t
ngx_http_chat_ws_echo_open(ngx_http_chat_ws_t *ws)
{
    return NGX_OK;
}


static void
ngx_http_chat_ws_echo_message(ngx_http_chat_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len)
{
    (void) ngx_http_chat_ws_send(ws, opcode, data, len);
}


static void
ngx_http_chat_ws_echo_close(ngx_http_chat_ws_t *ws)
{
}
