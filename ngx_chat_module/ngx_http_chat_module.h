/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_MODULE_H_INCLUDED_
#define _NGX_HTTP_CHAT_MODULE_H_INCLUDED_


/*
 * The top floor: ngx_http_chat_module.c (directives and wiring) is the one
 * file that includes every folder.  The others include the floors below
 * them, core/ngx_http_chat_core.h for what every handler shares.
 */

#include "core/ngx_http_chat_core.h"


#endif /* _NGX_HTTP_CHAT_MODULE_H_INCLUDED_ */
