/*
 * Copyright (C) ngx_chat_module authors
 *
 * What a worker remembers for a second about sending: that user may send
 * in chat (a member, not blocked, allowed by the group's permissions), so
 * that a sender's next messages read only whether their tempId was sent
 * before.  A direct-mapped table: a collision forgets, and nothing is
 * allocated.
 *
 * An operation that changes who may send (group administration, blocks)
 * clears the table when it starts and again once it is stored: it bumps
 * the instance's generation in shared memory, and an entry of an older
 * generation is worth nothing on any worker of this instance.  Other
 * instances learn it when their entries expire, at most a second later.
 * A check that began before such a clear proves nothing after it: what it
 * found is not remembered (the generation it began in is gone).
 */


#include "ngx_http_chat_send_cache.h"


#define NGX_HTTP_CHAT_SEND_SLOTS   8192
#define NGX_HTTP_CHAT_SEND_TTL     1000


typedef struct {
    bson_oid_t   chat;
    bson_oid_t   user;
    ngx_msec_t   expires;
    ngx_uint_t   generation;
    ngx_uint_t   valid;
} ngx_http_chat_send_slot_t;


static ngx_http_chat_send_slot_t  ngx_http_chat_send_slots[
                                      NGX_HTTP_CHAT_SEND_SLOTS];
static ngx_uint_t                 ngx_http_chat_send_generation;
static ngx_atomic_t              *ngx_http_chat_send_shared;


static ngx_uint_t
ngx_http_chat_send_slot(const bson_oid_t *chat, const bson_oid_t *user,
    ngx_uint_t n)
{
    uint32_t  h;

    h = ngx_murmur_hash2((u_char *) chat->bytes, 12)
        ^ ngx_murmur_hash2((u_char *) user->bytes, 12) * 31;

    return h % n;
}


ngx_uint_t
ngx_http_chat_send_cache_hit(const bson_oid_t *chat, const bson_oid_t *user)
{
    ngx_http_chat_send_slot_t  *s;

    s = &ngx_http_chat_send_slots[ngx_http_chat_send_slot(chat, user,
                                                NGX_HTTP_CHAT_SEND_SLOTS)];

    return s->valid
           && s->generation == ngx_http_chat_send_cache_generation()
           && (ngx_msec_int_t) (s->expires - ngx_current_msec) > 0
           && bson_oid_equal(&s->chat, chat)
           && bson_oid_equal(&s->user, user);
}


ngx_uint_t
ngx_http_chat_send_cache_generation(void)
{
    if (ngx_http_chat_send_shared) {
        return *ngx_http_chat_send_shared;
    }

    return ngx_http_chat_send_generation;
}


void
ngx_http_chat_send_cache_share(ngx_atomic_t *generation)
{
    ngx_http_chat_send_shared = generation;
}


void
ngx_http_chat_send_cache_put(const bson_oid_t *chat, const bson_oid_t *user,
    ngx_uint_t generation)
{
    ngx_http_chat_send_slot_t  *s;

    if (generation != ngx_http_chat_send_cache_generation()) {
        return;
    }

    s = &ngx_http_chat_send_slots[ngx_http_chat_send_slot(chat, user,
                                                NGX_HTTP_CHAT_SEND_SLOTS)];

    bson_oid_copy(chat, &s->chat);
    bson_oid_copy(user, &s->user);
    s->expires = ngx_current_msec + NGX_HTTP_CHAT_SEND_TTL;
    s->generation = generation;
    s->valid = 1;
}


void
ngx_http_chat_send_cache_clear(void)
{
    ngx_memzero(ngx_http_chat_send_slots, sizeof(ngx_http_chat_send_slots));
    ngx_http_chat_send_generation++;

    if (ngx_http_chat_send_shared) {
        (void) ngx_atomic_fetch_add(ngx_http_chat_send_shared, 1);
    }
}
