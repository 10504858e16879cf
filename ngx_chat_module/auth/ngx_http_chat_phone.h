/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_PHONE_H_INCLUDED_
#define _NGX_HTTP_CHAT_PHONE_H_INCLUDED_


#include <stddef.h>


/*
 * Phone numbers through libphonenumber, behind a plain C interface (the
 * implementation is C++, ngx_http_chat_phone.cpp).  Safe to call from any
 * thread; the library's metadata is loaded on first use.
 */

#define NGX_HTTP_CHAT_PHONE_OK           0
#define NGX_HTTP_CHAT_PHONE_INVALID     -1   /* cannot parse, bad length */
#define NGX_HTTP_CHAT_PHONE_NOT_MOBILE  -2   /* valid, but cannot get SMS */
#define NGX_HTTP_CHAT_PHONE_BAD_COUNTRY -3   /* unknown country hint */


/*
 * Filled on NGX_HTTP_CHAT_PHONE_OK; on failure only error is set (the
 * strings are empty, calling_code 0).
 */
typedef struct {
    char         e164[24];      /* "+14155550100", NUL-terminated */
    char         region[4];     /* "US", NUL-terminated; "001" non-geo */
    int          calling_code;  /* 1 */
    const char  *error;         /* a static English sentence on failure */
} ngx_http_chat_phone_t;


/*
 * input: what the user typed, in any format ("+1 415-555-0100",
 * "(415) 555 0100", "004915123456789"), at most 64 bytes, without control
 * characters.  country: optional hint for numbers without "+": an ISO 3166
 * region ("US", "de") or a calling code ("+1", "1", "49": its main
 * region); NULL or empty means the input must be international, and an
 * international prefix such as "00" is understood only with a hint (that
 * region's own prefix).  An unknown hint is BAD_COUNTRY even when the
 * input has its "+".  Accepts numbers that can receive SMS: mobile,
 * fixed-line-or-mobile (regions such as US where the two cannot be told
 * apart), pager and personal numbers; refuses fixed lines, toll-free,
 * premium, shared-cost, VoIP, UAN and voicemail numbers (NOT_MOBILE), and
 * numbers with an extension (INVALID).  region is libphonenumber's region
 * of the number, not the hint: where a range is shared it is the main
 * region of the calling code (an Aland Islands mobile gives "FI").
 */
int ngx_http_chat_phone_normalize(const char *input, size_t len,
    const char *country, size_t country_len, ngx_http_chat_phone_t *out);

/* loads the metadata now, so that the first request does not pay for it */
void ngx_http_chat_phone_init(void);


#endif /* _NGX_HTTP_CHAT_PHONE_H_INCLUDED_ */
