/*
 * Copyright (C) ngx_chat_module authors
 *
 * Text folding for search, and regex escaping so that no user text ever
 * becomes a query operator.
 */


#include "ngx_http_chat_text.h"


/* U+00C0..U+00FF; '.' keeps the character (the signs x and /) */
static const char  ngx_http_chat_latin1[] =
    "aaaaaaaceeeeiiiidnooooo.ouuuuyts"
    "aaaaaaaceeeeiiiidnooooo.ouuuuyty";

/* U+0100..U+017F */
static const char  ngx_http_chat_latin_a[] =
    "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiiiiijjkkklllllll"
    "lllnnnnnnnnnoooooooorrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs";


u_char *
ngx_http_chat_fold(u_char *dst, u_char *src, size_t len)
{
    u_char    *last, c;
    uint32_t   cp;

    last = src + len;

    while (src < last) {
        c = *src;

        if (c < 0x80) {
            *dst++ = (c >= 'A' && c <= 'Z') ? (u_char) (c | 0x20) : c;
            src++;
            continue;
        }

        if ((c & 0xe0) == 0xc0 && src + 1 < last) {
            cp = ((uint32_t) (c & 0x1f) << 6) | (src[1] & 0x3f);

            if (cp >= 0xc0 && cp <= 0xff
                && ngx_http_chat_latin1[cp - 0xc0] != '.')
            {
                *dst++ = (u_char) ngx_http_chat_latin1[cp - 0xc0];
                src += 2;
                continue;
            }

            if (cp >= 0x100 && cp <= 0x17f) {
                *dst++ = (u_char) ngx_http_chat_latin_a[cp - 0x100];
                src += 2;
                continue;
            }

            /* Greek and Cyrillic capitals: small letters are 0x20 on */
            if ((cp >= 0x391 && cp <= 0x3a9) || (cp >= 0x410 && cp <= 0x42f))
            {
                cp += 0x20;

            } else if (cp >= 0x400 && cp <= 0x40f) {
                cp += 0x50;
            }

            *dst++ = (u_char) (0xc0 | (cp >> 6));
            *dst++ = (u_char) (0x80 | (cp & 0x3f));
            src += 2;
            continue;
        }

        *dst++ = *src++;
    }

    return dst;
}


u_char *
ngx_http_chat_regex_escape(u_char *dst, u_char *src, size_t len)
{
    while (len--) {
        if (ngx_strchr("\\^$.|?*+()[]{}-/", *src) != NULL && *src != '\0') {
            *dst++ = '\\';
        }

        *dst++ = *src++;
    }

    return dst;
}


/* an ObjectId in hex, as MongoDB writes it: 24 digits, lowercase */

/* the code point at p (valid UTF-8, as jansson checked it), and its end */
static uint32_t
ngx_http_chat_utf8_next(u_char **p, u_char *last)
{
    u_char    c;
    uint32_t  u;
    size_t    n, i;

    c = *(*p)++;

    if (c < 0x80) {
        return c;
    }

    n = (c >= 0xf0) ? 3 : (c >= 0xe0) ? 2 : 1;
    u = c & (0x3f >> n);

    for (i = 0; i < n && *p < last; i++) {
        u = (u << 6) | (*(*p)++ & 0x3f);
    }

    return u;
}


/*
 * ZWNJ and ZWJ join letters of scripts that need them (Arabic, Syriac,
 * the Indic scripts, Myanmar: RFC 5892's CONTEXTJ, simplified) and ZWJ
 * builds emoji sequences: after anything else they only hide
 */
static ngx_uint_t
ngx_http_chat_joiner_needed(uint32_t joiner, uint32_t prev)
{
    if ((prev >= 0x0600 && prev <= 0x08ff)
        || (prev >= 0x0900 && prev <= 0x0dff)
        || (prev >= 0x1000 && prev <= 0x109f))
    {
        return 1;
    }

    return joiner == 0x200d
           && (prev >= 0x1f000 || (prev >= 0x2600 && prev <= 0x27bf)
               || prev == 0xfe0f);
}


ngx_uint_t
ngx_http_chat_has_spoofing(ngx_str_t *s)
{
    u_char    *p, *last;
    uint32_t   u, prev;

    p = s->data;
    last = p + s->len;
    prev = 0;

    while (p < last) {
        u = ngx_http_chat_utf8_next(&p, last);

        if (u == 0x061c || u == 0x200b || u == 0x200e || u == 0x200f
            || (u >= 0x202a && u <= 0x202e)
            || (u >= 0x2060 && u <= 0x2069)
            || u == 0xfeff)
        {
            return 1;
        }

        if ((u == 0x200c || u == 0x200d)
            && (p == last || !ngx_http_chat_joiner_needed(u, prev)))
        {
            return 1;
        }

        prev = u;
    }

    return 0;
}


ngx_uint_t
ngx_http_chat_is_oid(ngx_str_t *s)
{
    ngx_uint_t  i;

    if (s->len != 24) {
        return 0;
    }

    for (i = 0; i < 24; i++) {
        if (!((s->data[i] >= '0' && s->data[i] <= '9')
              || (s->data[i] >= 'a' && s->data[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}
