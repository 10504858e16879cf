/*
 * Copyright (C) ngx_chat_module authors
 *
 * The members' cache of pushes in Redis (ngx_http_chat_push_members.h).
 */


#include "ngx_http_chat_push_members.h"
#include "ngx_http_chat_redis_shards.h"


/* the cache lives 10 minutes: a drop lost with Redis's connection ages */
#define NGX_HTTP_CHAT_PUSH_M_TTL   "600"
#define NGX_HTTP_CHAT_PUSH_G_TTL   "1200"


/*
 * ARGV from i: sender, now, live (1: presence is here), mentions...; m a
 * table user -> until
 */
#define NGX_HTTP_CHAT_PUSH_M_PICK                                            \
    "local function pick(m, i) "                                             \
    "  local sender, now = ARGV[i], tonumber(ARGV[i + 1]) "                  \
    "  local live = ARGV[i + 2] == '1' "                                     \
    "  local men = {} "                                                      \
    "  for j = i + 3, #ARGV do men[ARGV[j]] = true end "                     \
    "  local out = {1} "                                                     \
    "  for u, t in pairs(m) do "                                             \
    "    t = tonumber(t) "                                                   \
    "    if u ~= sender and (t == 0 or (t > 0 and t <= now) or men[u]) "     \
    "       and not (live "                                                  \
    "                and redis.call('EXISTS', 'presence:s:' .. u) == 1) "    \
    "    then "                                                              \
    "      out[#out + 1] = u "                                               \
    "    end "                                                               \
    "  end "                                                                 \
    "  return out "                                                          \
    "end "

/* KEYS pushm pushg; ARGV sender now live mentions... */
static const char  ngx_http_chat_push_m_read[] =
    NGX_HTTP_CHAT_PUSH_M_PICK
    "if redis.call('EXISTS', KEYS[1]) == 0 then "
    "  return {0, redis.call('GET', KEYS[2]) or '0'} "
    "end "
    "local h = redis.call('HGETALL', KEYS[1]) "
    "local m = {} "
    "for i = 1, #h, 2 do m[h[i]] = h[i + 1] end "
    "return pick(m, 1)";

/*
 * KEYS pushm pushg; ARGV gen n (user until)*n sender now live
 * mentions...
 */
static const char  ngx_http_chat_push_m_fill[] =
    NGX_HTTP_CHAT_PUSH_M_PICK
    "local n = tonumber(ARGV[2]) "
    "local m = {} "
    "for i = 3, 2 + 2 * n, 2 do m[ARGV[i]] = ARGV[i + 1] end "
    "if (redis.call('GET', KEYS[2]) or '0') == ARGV[1] and n > 0 then "
    "  redis.call('DEL', KEYS[1]) "
    "  for u, t in pairs(m) do redis.call('HSET', KEYS[1], u, t) end "
    "  redis.call('EXPIRE', KEYS[1], " NGX_HTTP_CHAT_PUSH_M_TTL ") "
    "end "
    "return pick(m, 3 + 2 * n)";

/* KEYS pushm pushg */
static const char  ngx_http_chat_push_m_drop[] =
    "redis.call('INCR', KEYS[2]) "
    "redis.call('EXPIRE', KEYS[2], " NGX_HTTP_CHAT_PUSH_G_TTL ") "
    "return redis.call('DEL', KEYS[1])";


typedef struct {
    const char   **argv;
    size_t        *lens;
    ngx_uint_t     n;
    ngx_uint_t     max;
    u_char        *buf;          /* numbers and keys, written in turn */
} ngx_http_chat_push_m_args_t;


static ngx_int_t
ngx_http_chat_push_m_init(ngx_http_chat_push_m_args_t *a, ngx_uint_t max)
{
    a->argv = ngx_alloc(max * (sizeof(char *) + sizeof(size_t))
                        + 4 * NGX_INT64_LEN + 2 * 64, ngx_cycle->log);
    if (a->argv == NULL) {
        return NGX_ERROR;
    }

    a->lens = (size_t *) (a->argv + max);
    a->buf = (u_char *) (a->lens + max);
    a->n = 0;
    a->max = max;

    return NGX_OK;
}


static void
ngx_http_chat_push_m_add(ngx_http_chat_push_m_args_t *a, const char *s,
    size_t len)
{
    if (a->n < a->max) {
        a->argv[a->n] = s;
        a->lens[a->n] = len;
        a->n++;
    }
}


/* a formatted argument, in the arguments' own buffer */
static void
ngx_http_chat_push_m_addf(ngx_http_chat_push_m_args_t *a, const char *fmt,
    ...)
{
    u_char   *last;
    va_list   args;

    va_start(args, fmt);
    last = ngx_vslprintf(a->buf, a->buf + 64, fmt, args);
    va_end(args);

    ngx_http_chat_push_m_add(a, (const char *) a->buf, last - a->buf);
    a->buf = last;
}


static void
ngx_http_chat_push_m_head(ngx_http_chat_push_m_args_t *a, const char *lua,
    size_t len, const char *chat)
{
    ngx_http_chat_push_m_add(a, "EVAL", 4);
    ngx_http_chat_push_m_add(a, lua, len);
    ngx_http_chat_push_m_add(a, "2", 1);
    ngx_http_chat_push_m_addf(a, "pushm:%s", chat);
    ngx_http_chat_push_m_addf(a, "pushg:%s", chat);
}


static void
ngx_http_chat_push_m_tail(ngx_http_chat_push_m_args_t *a,
    const char *sender, json_t *mentions)
{
    size_t       i;
    json_t      *v;
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    ngx_http_chat_push_m_add(a, sender, ngx_strlen(sender));
    ngx_http_chat_push_m_addf(a, "%T%03M", tp->sec, tp->msec);

    /* the users' presence is on the chat's server only without shards */
    ngx_http_chat_push_m_add(a, ngx_http_chat_redis_shards_n() ? "0" : "1",
                             1);

    json_array_foreach(mentions, i, v) {
        if (json_is_string(v)) {
            ngx_http_chat_push_m_add(a, json_string_value(v),
                                     json_string_length(v));
        }
    }
}


ngx_int_t
ngx_http_chat_push_members_read(const char *chat, const char *sender,
    json_t *mentions, ngx_http_chat_redis_reply_pt handler, void *data)
{
    ngx_int_t                     rc;
    ngx_http_chat_push_m_args_t   a;

    if (ngx_http_chat_redis_main == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_chat_push_m_init(&a, 8 + json_array_size(mentions))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_chat_push_m_head(&a, ngx_http_chat_push_m_read,
                              sizeof(ngx_http_chat_push_m_read) - 1, chat);
    ngx_http_chat_push_m_tail(&a, sender, mentions);

    rc = ngx_http_chat_redis_command_argv(
             ngx_http_chat_redis_of((u_char *) chat, 24), handler, data,
             (int) a.n, a.argv, a.lens);
    ngx_free(a.argv);

    return rc;
}


ngx_int_t
ngx_http_chat_push_members_fill(const char *chat, const char *gen,
    json_t *members, const char *sender, json_t *mentions,
    ngx_http_chat_redis_reply_pt handler, void *data)
{
    u_char                       *nums, *p;
    size_t                        i, n;
    json_t                       *m;
    ngx_int_t                     rc;
    const char                   *u;
    ngx_http_chat_push_m_args_t   a;

    if (ngx_http_chat_redis_main == NULL) {
        return NGX_DECLINED;
    }

    n = json_array_size(members);

    /* the mute ends, as text */
    nums = ngx_alloc(n * (NGX_INT64_LEN + 1) + 1, ngx_cycle->log);
    if (nums == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_chat_push_m_init(&a, 10 + 2 * n + json_array_size(mentions))
        != NGX_OK)
    {
        ngx_free(nums);
        return NGX_ERROR;
    }

    ngx_http_chat_push_m_head(&a, ngx_http_chat_push_m_fill,
                              sizeof(ngx_http_chat_push_m_fill) - 1, chat);
    ngx_http_chat_push_m_add(&a, gen, ngx_strlen(gen));
    ngx_http_chat_push_m_addf(&a, "%uz", n);

    p = nums;

    json_array_foreach(members, i, m) {
        u = json_string_value(json_array_get(m, 0));

        ngx_http_chat_push_m_add(&a, u ? u : "-", u ? ngx_strlen(u) : 1);
        ngx_http_chat_push_m_add(&a, (const char *) p, 0);
        a.lens[a.n - 1] = ngx_sprintf(p, "%L",
                              (int64_t) json_integer_value(
                                  json_array_get(m, 1)))
                          - p;
        p += a.lens[a.n - 1];
    }

    ngx_http_chat_push_m_tail(&a, sender, mentions);

    rc = ngx_http_chat_redis_command_argv(
             ngx_http_chat_redis_of((u_char *) chat, 24), handler, data,
             (int) a.n, a.argv, a.lens);
    ngx_free(a.argv);
    ngx_free(nums);

    return rc;
}


static void
ngx_http_chat_push_m_dropped(redisReply *reply, void *data)
{
    /* nothing waits: a drop lost ages out with the cache's ttl */
}


void
ngx_http_chat_push_members_event(const char *event, json_t *data)
{
    const char                   *chat;
    ngx_http_chat_push_m_args_t   a;

    if (ngx_strcmp(event, "chat_settings_updated") != 0
        && ngx_strcmp(event, "chat_updated") != 0
        && ngx_strcmp(event, "chat_removed") != 0
        && ngx_strcmp(event, "chat_created") != 0)
    {
        return;
    }

    chat = json_string_value(json_object_get(data, "chatId"));

    if (chat == NULL) {
        chat = json_string_value(json_object_get(json_object_get(data,
                                                                 "chat"),
                                                 "id"));
    }

    if (chat == NULL || ngx_strlen(chat) != 24
        || ngx_http_chat_redis_main == NULL)
    {
        return;
    }

    if (ngx_http_chat_push_m_init(&a, 6) != NGX_OK) {
        return;
    }

    ngx_http_chat_push_m_head(&a, ngx_http_chat_push_m_drop,
                              sizeof(ngx_http_chat_push_m_drop) - 1, chat);

    (void) ngx_http_chat_redis_command_argv(
               ngx_http_chat_redis_of((u_char *) chat, 24),
               ngx_http_chat_push_m_dropped, NULL, (int) a.n, a.argv, a.lens);
    ngx_free(a.argv);
}
