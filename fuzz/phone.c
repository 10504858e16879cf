/*
 * Copyright (C) ngx_chat_module authors
 *
 * libFuzzer target: what a user types as a phone number, and the country
 * hint beside it, through ngx_http_chat_phone_normalize (libphonenumber
 * behind our C interface), as the OTP request takes them.
 *
 * sources: ngx_chat_module/auth/ngx_http_chat_phone.cpp
 * libs: -lphonenumber
 *
 * The input: a line with the country hint (empty: none), then the number.
 */


#include "ngx_http_chat_fuzz.h"
#include "auth/ngx_http_chat_phone.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     rc;
    u_char                 *p, *last, *copy;
    ngx_str_t               country, input;
    ngx_http_chat_phone_t   out;

    (void) ngx_http_chat_fuzz_init();

    /* copies of their own size: ASan sees a read past either end */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    ngx_memcpy(copy, data, size);

    p = copy;
    last = copy + size;

    ngx_http_chat_fuzz_line(&p, last, &country);

    input.data = p;
    input.len = last - p;

    rc = ngx_http_chat_phone_normalize((char *) input.data, input.len,
                                       country.len ? (char *) country.data
                                                   : NULL,
                                       country.len, &out);

    /* what the caller stores and sends the SMS to */
    if (rc == NGX_HTTP_CHAT_PHONE_OK
        && (out.e164[0] != '+' || ngx_strlen(out.e164) >= sizeof(out.e164)
            || ngx_strlen(out.region) >= sizeof(out.region)
            || out.calling_code <= 0))
    {
        abort();
    }

    if (rc != NGX_HTTP_CHAT_PHONE_OK && out.error == NULL) {
        abort();
    }

    free(copy);

    return 0;
}
