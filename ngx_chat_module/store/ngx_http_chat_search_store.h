/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_SEARCH_STORE_H_INCLUDED_
#define _NGX_HTTP_CHAT_SEARCH_STORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Message search's settings, set before the workers start: scan, the
 * sequence numbers one request reads at most (chat_search_scan); text,
 * use the store's text index (chat_search_text_index, MongoDB only).
 */
void ngx_http_chat_search_conf(ngx_uint_t scan, ngx_flag_t text);


#endif /* _NGX_HTTP_CHAT_SEARCH_STORE_H_INCLUDED_ */
