/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_TEXT_H_INCLUDED_
#define _NGX_HTTP_CHAT_TEXT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Folds valid UTF-8 for case- and accent-insensitive search: ASCII and
 * Latin letters (Latin-1 Supplement, Latin Extended-A) to lowercase
 * without diacritics, Greek and Cyrillic capitals to small letters; other
 * characters are copied.  dst must hold len bytes; returns the end.
 */
u_char *ngx_http_chat_fold(u_char *dst, u_char *src, size_t len);

/* copies src escaping every regex metacharacter; dst holds 2 * len */
u_char *ngx_http_chat_regex_escape(u_char *dst, u_char *src, size_t len);

/*
 * Invisible characters that make a name look like another's: bidi
 * embeddings, overrides and isolates, marks, zero-width spaces and
 * joiners (a joiner is let by where a script or an emoji needs it)
 */
ngx_uint_t ngx_http_chat_has_spoofing(ngx_str_t *s);

/* 24 lowercase hex digits */
ngx_uint_t ngx_http_chat_is_oid(ngx_str_t *s);


#endif /* _NGX_HTTP_CHAT_TEXT_H_INCLUDED_ */
