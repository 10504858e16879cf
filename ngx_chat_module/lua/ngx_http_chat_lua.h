/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_LUA_H_INCLUDED_
#define _NGX_HTTP_CHAT_LUA_H_INCLUDED_


#include "../core/ngx_http_chat_core.h"


/*
 * lua-compat: what lua-nginx-module's Lua code (lua-compat's resty.chat)
 * calls through LuaJIT's FFI.  Plain C: the module needs no Lua header and
 * runs as before when no Lua module is loaded.  NGINX loads dynamic
 * modules with RTLD_GLOBAL, so ffi.C finds these symbols; a static build
 * has them in the binary.
 */


/* lua-nginx-module's ngx_http_lua_ffi_sema_post(), handed over by Lua */
typedef int (*ngx_http_chat_ffi_post_pt)(void *sem, int n);


#define NGX_HTTP_CHAT_LUA_JOB_FILTER  1
#define NGX_HTTP_CHAT_LUA_JOB_EVENT   2
#define NGX_HTTP_CHAT_LUA_JOB_SIGNIN  3
#define NGX_HTTP_CHAT_LUA_JOB_SOCKET  4


/* a job as Lua reads it (resty.chat declares the same struct) */
typedef struct {
    double         id;
    int            kind;        /* NGX_HTTP_CHAT_LUA_JOB_* */
    const char    *user;        /* a filter: the sender; an event: kind;
                                   a sign-in: the phone */
    const char    *chat;        /* a filter: the chat; an event: its id */
    const char    *type;        /* a filter: the type; an event: its name */
    const char    *json;        /* the content, the event's payload, or
                                   a sign-in's device (not JSON), a
                                   socket's sign-in (JSON) */
    size_t         len;
} ngx_http_chat_ffi_job_t;


int ngx_http_chat_ffi_hooks_attach(void *sem, ngx_http_chat_ffi_post_pt post);
int ngx_http_chat_ffi_hook_next(ngx_http_chat_ffi_job_t *out);
int ngx_http_chat_ffi_hook_done(double id, int verdict, const char *text,
    size_t len);


#endif /* _NGX_HTTP_CHAT_LUA_H_INCLUDED_ */
