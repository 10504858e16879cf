/*
 * Copyright (C) ngx_chat_module authors
 *
 * Search: the messages of a chat, or of all my chats, holding a text.
 */


#include "ngx_http_chat_chats_int.h"
#include "../ops/ngx_http_chat_op_input.h"


/* s is UTF-8 with no code point above U+10FFFF */

static ngx_uint_t
ngx_http_chat_utf8_valid(ngx_str_t *s)
{
    u_char  *p, *last;

    p = s->data;
    last = s->data + s->len;

    while (p < last) {
        if (*p < 0x80) {
            p++;

        } else if (ngx_utf8_decode(&p, last - p) > 0x10ffff) {
            return 0;
        }
    }

    return 1;
}


/*
 * GET /api/chats/:id/messages/search?q=&before=&cursor=&limit= and
 * GET /api/messages/search?q=&cursor=&limit=: q becomes a regex with
 * every metacharacter escaped
 */

static ngx_int_t
ngx_http_chat_messages_search(ngx_http_request_t *r, ngx_uint_t all)
{
    u_char                   *end;
    int64_t                   n;
    ngx_int_t                 rc;
    ngx_str_t                 q, id;
    ngx_http_chat_msg_arg_t  *arg;

    if (ngx_http_arg(r, (u_char *) "q", 1, &q) != NGX_OK || q.len == 0) {
        return ngx_http_chat_send_invalid(r, "q", "is required");
    }

    /* a + in a query string is a space */
    for (end = q.data; end < q.data + q.len; end++) {
        if (*end == '+') {
            *end = ' ';
        }
    }

    id.data = ngx_pnalloc(r->pool, q.len);
    if (id.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    end = id.data;
    ngx_unescape_uri(&end, &q.data, q.len, 0);
    q.data = id.data;
    q.len = end - id.data;

    if (q.len == 0 || !ngx_http_chat_utf8_valid(&q)
        || ngx_utf8_length(q.data, q.len) > 100
        || ngx_http_chat_input_controls(&q, 0))
    {
        return ngx_http_chat_send_invalid(r, "q",
                                          "must be 1 to 100 characters of "
                                          "UTF-8, no control characters");
    }

    arg = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_msg_arg_t)
                               + 2 * q.len + 1);
    if (arg == NULL || ngx_http_chat_chats_me(r, &arg->user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    end = ngx_http_chat_regex_escape((u_char *) (arg + 1), q.data, q.len);
    arg->content_len = end - (u_char *) (arg + 1);
    arg->all = all;

    if (!all && ngx_http_chat_chats_param(r, &arg->chat) != NGX_OK) {
        return ngx_http_chat_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such chat");
    }

    arg->limit = NGX_HTTP_CHAT_CHATS_LIMIT;

    rc = ngx_http_chat_chats_arg_num(r, "limit", 1, 50, &n);
    if (rc == NGX_ERROR) {
        return ngx_http_chat_send_invalid(r, "limit",
                                          "must be between 1 and 50");
    }

    if (rc == NGX_OK) {
        arg->limit = (ngx_uint_t) n;
    }

    if (!all) {
        rc = ngx_http_chat_chats_arg_num(r, "before", 1, NGX_MAX_OFF_T_VALUE,
                                         &arg->before);
        if (rc == NGX_DECLINED) {
            rc = ngx_http_chat_chats_arg_num(r, "cursor", 1,
                                             NGX_MAX_OFF_T_VALUE,
                                             &arg->before);
        }

        if (rc == NGX_ERROR) {
            return ngx_http_chat_send_invalid(r, "before",
                                              "must be a positive number");
        }

        arg->has_before = (rc == NGX_OK);

    } else {
        /* "<createdAt ms>.<id>" */
        rc = ngx_http_chat_cursor_arg(r, &arg->cursor_ms, &arg->cursor_id);

        if (rc == NGX_ERROR) {
            return ngx_http_chat_send_invalid(r, "cursor", "is not valid");
        }

        arg->has_cursor = (rc == NGX_OK);
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_msg_search_run,
                                       ngx_http_chat_chats_done, arg,
                                       sizeof(ngx_http_chat_msg_arg_t)
                                       + 2 * q.len + 1);
}


ngx_int_t
ngx_http_chat_chats_search(ngx_http_request_t *r)
{
    return ngx_http_chat_messages_search(r, 0);
}


ngx_int_t
ngx_http_chat_messages_search_all(ngx_http_request_t *r)
{
    return ngx_http_chat_messages_search(r, 1);
}
