/*
 * Copyright (C) ngx_chat_module authors
 *
 * The chat list's read model in Redis (ngx_http_chat_list_model.h).
 * Every change is idempotent (a set member added again, a message
 * replaced only by a higher number or by its own new version), so a
 * change that reaches both a rebuild's read of MongoDB and, later, the
 * rebuilt keys does no harm; a change that comes between the rebuild's
 * read and its write bumps the generation, and the write is skipped.
 */


#include "ngx_http_chat_list_model.h"
#include "ngx_http_chat_list_facts.h"
#include "ngx_http_chat_list_compact.h"
#include "ngx_http_chat_redis_shards.h"
#include "../util/ngx_http_chat_text.h"


#define NGX_HTTP_CHAT_LIST_W    "16"
#define NGX_HTTP_CHAT_LIST_TTL  "86400"
#define NGX_HTTP_CHAT_LIST_GTTL "172800"
#define NGX_HTTP_CHAT_LIST_LOST  256     /* changes remembered, a worker */


/*
 * KEYS cl clx clu clg clo; ARGV seq, message JSON or "", "1" when the
 * number counts for nobody, the clu prefix ("o" mine, "h" hidden, ""
 * none), "n" (a new message) or "r" (a new version: only where it is
 * kept).  clo counts the sender's new messages in the chat: 2 every
 * NGX_HTTP_CHAT_LIST_SETTLE of them, time to settle their readSeq
 * (ngx_http_chat_list_compact.h), 1 otherwise
 */
static const char  ngx_http_chat_list_change[] =
    "local W = " NGX_HTTP_CHAT_LIST_W " "
    "local ret = 1 "
    "redis.call('INCR', KEYS[4]) "
    "redis.call('EXPIRE', KEYS[4], " NGX_HTTP_CHAT_LIST_GTTL ") "
    "if ARGV[4] == 'o' and ARGV[5] == 'n' then "
    "  local n = redis.call('INCR', KEYS[5]) "
    "  redis.call('EXPIRE', KEYS[5], " NGX_HTTP_CHAT_LIST_TTL ") "
    "  if n >= " NGX_HTTP_CHAT_LIST_SETTLE_S " then "
    "    redis.call('DEL', KEYS[5]) "
    "    ret = 2 "
    "  end "
    "end "
    "local s = tonumber(ARGV[1]) "
    "if redis.call('EXISTS', KEYS[1]) == 1 "
    "   and redis.call('EXISTS', KEYS[2]) == 1 then "
    "  if ARGV[3] == '1' then redis.call('ZADD', KEYS[2], s, ARGV[1]) end "
    "  local top = tonumber(redis.call('HGET', KEYS[1], 'top') or '0') "
    "  if ARGV[2] ~= '' then "
    "    if ARGV[5] == 'n' then "
    "      if s > top then "
    "        top = s "
    "        redis.call('HSET', KEYS[1], 'top', s) "
    "      end "
    "      if s > top - W then "
    "        redis.call('HSET', KEYS[1], 'm:' .. s, ARGV[2]) "
    "      end "
    "      for _, k in ipairs(redis.call('HKEYS', KEYS[1])) do "
    "        if string.sub(k, 1, 2) == 'm:' "
    "           and tonumber(string.sub(k, 3)) <= top - W then "
    "          redis.call('HDEL', KEYS[1], k) "
    "        end "
    "      end "
    "    elseif redis.call('HEXISTS', KEYS[1], 'm:' .. s) == 1 then "
    "      redis.call('HSET', KEYS[1], 'm:' .. s, ARGV[2]) "
    "    end "
    "  end "
    "end "
    "if ARGV[4] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then "
    "  redis.call('ZADD', KEYS[3], s, ARGV[4] .. s) "
    "end "
    "return ret";

/*
 * KEYS clx or clu, clg; ARGV seq, member: a fact just stored in MongoDB
 * is added again, and the generation bumped, so that a rebuild that read
 * MongoDB before the fact was there is either refused or completed
 */
static const char  ngx_http_chat_list_readd[] =
    "redis.call('INCR', KEYS[2]) "
    "redis.call('EXPIRE', KEYS[2], " NGX_HTTP_CHAT_LIST_GTTL ") "
    "if redis.call('EXISTS', KEYS[1]) == 1 then "
    "  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) "
    "end "
    "return 1";

/* KEYS cl clg: who is in the chat, its admins or its info changed */
static const char  ngx_http_chat_list_stale[] =
    "redis.call('INCR', KEYS[2]) "
    "redis.call('EXPIRE', KEYS[2], " NGX_HTTP_CHAT_LIST_GTTL ") "
    "return redis.call('HDEL', KEYS[1], 'sum')";

/*
 * KEYS cl clx clu clg per chat, ARGV my readSeq per chat.  The last
 * message: the highest number of the window I did not hide that holds
 * one; a number of the window neither kept nor void cannot be told (a
 * miss).  The unread: the numbers after readSeq up to top, less those
 * that count for nobody and those that do not count for me ("o", "h").
 * The unread mentions: the "m" of clu among them (a mention is never
 * my own message: one it shares a number with is hidden).
 */
static const char  ngx_http_chat_list_read[] =
    "local W = " NGX_HTTP_CHAT_LIST_W " "
    "local out = {} "
    "for i = 1, #ARGV do "
    "  local cl, cx, cu = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1] "
    "  local g = redis.call('GET', KEYS[4 * i]) or '0' "
    "  local r = tonumber(ARGV[i]) "
    "  local sum = redis.call('HGET', cl, 'sum') "
    "  out[i] = {g} "
    "  if sum and redis.call('EXISTS', cx) == 1 "
    "     and redis.call('EXISTS', cu) == 1 then "
    "    local top = tonumber(redis.call('HGET', cl, 'top') or '0') "
    "    local last = '' "
    "    local found = (top == 0) "
    "    for s = top, math.max(1, top - W + 1), -1 do "
    "      if not redis.call('ZSCORE', cu, 'h' .. s) then "
    "        local m = redis.call('HGET', cl, 'm:' .. s) "
    "        if m then "
    "          last = m "
    "          found = true "
    "          break "
    "        end "
    "        if not redis.call('ZSCORE', cx, tostring(s)) then break end "
    "      end "
    "    end "
    "    if found then "
    "      local u, mu = 0, 0 "
    "      if top > r then "
    "        u = top - r - redis.call('ZCOUNT', cx, r + 1, top) "
    "        local seen, ment = {}, {} "
    "        local e = redis.call('ZRANGEBYSCORE', cu, r + 1, top, "
    "                             'WITHSCORES') "
    "        for j = 2, #e, 2 do "
    "          local s = e[j] "
    "          if string.sub(e[j - 1], 1, 1) == 'm' then "
    "            ment[s] = true "
    "          elseif not seen[s] then "
    "            seen[s] = true "
    "            if not redis.call('ZSCORE', cx, s) then u = u - 1 end "
    "          end "
    "        end "
    "        for s in pairs(ment) do "
    "          if not seen[s] and not redis.call('ZSCORE', cx, s) then "
    "            mu = mu + 1 "
    "          end "
    "        end "
    "        if u < 0 then u = 0 end "
    "      end "
    "      local lo = math.min(r, top - W) "
    "      if lo >= 1 then redis.call('ZREMRANGEBYSCORE', cu, 1, lo) end "
    "      out[i] = {g, sum, last, u, mu} "
    "    end "
    "  end "
    "end "
    "return out";

/*
 * KEYS cl clx clu clg; ARGV gen, top, sum, n, n pairs (seq, message),
 * m, m voids, then pairs (member, seq) of clu
 */
static const char  ngx_http_chat_list_fill[] =
    "if (redis.call('GET', KEYS[4]) or '0') ~= ARGV[1] then return 0 end "
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) "
    "redis.call('HSET', KEYS[1], 'top', ARGV[2], 'sum', ARGV[3]) "
    "local i = 5 "
    "for j = 1, tonumber(ARGV[4]) do "
    "  redis.call('HSET', KEYS[1], 'm:' .. ARGV[i], ARGV[i + 1]) "
    "  i = i + 2 "
    "end "
    "local n = tonumber(ARGV[i]) "
    "i = i + 1 "
    "redis.call('ZADD', KEYS[2], 0, '') "
    "for j = 1, n do "
    "  redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i]) "
    "  i = i + 1 "
    "end "
    "redis.call('ZADD', KEYS[3], 0, '') "
    "while i < #ARGV do "
    "  redis.call('ZADD', KEYS[3], ARGV[i + 1], ARGV[i]) "
    "  i = i + 2 "
    "end "
    "for k = 1, 3 do "
    "  redis.call('EXPIRE', KEYS[k], " NGX_HTTP_CHAT_LIST_TTL ") "
    "end "
    "return 1";


/*
 * KEYS cl clx clu clg: a change Redis may not have seen (the connection
 * was down or lost before its reply): the keys it touched are dropped,
 * so that the next page rebuilds them
 */
static const char  ngx_http_chat_list_drop[] =
    "redis.call('INCR', KEYS[4]) "
    "redis.call('EXPIRE', KEYS[4], " NGX_HTTP_CHAT_LIST_GTTL ") "
    "return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])";


/* a change, as long as Redis has not answered it */
typedef struct {
    char     chat[25];
    char     user[25];                 /* "-": none */
    int64_t  seq;                      /* a change's, for its answer */
} ngx_http_chat_list_lost_t;


static ngx_http_chat_list_lost_t  ngx_http_chat_list_lost[
                                                 NGX_HTTP_CHAT_LIST_LOST];
static ngx_uint_t                 ngx_http_chat_list_nlost;


static ngx_int_t ngx_http_chat_list_valid(const char *id);
static ngx_http_chat_redis_t *ngx_http_chat_list_redis(const char *chat);
static void ngx_http_chat_list_remember(const char *chat, const char *user);
static void ngx_http_chat_list_answered(redisReply *reply, void *data);
static void ngx_http_chat_list_changed(redisReply *reply, void *data);
static void ngx_http_chat_list_drop_lost(void);
static void ngx_http_chat_list_sum_stale(const char *chat);
static void ngx_http_chat_list_fact_written(
    const ngx_http_chat_list_fact_t *f);
static void ngx_http_chat_list_readd_send(const char *chat,
    const char *user, u_char kind, int64_t seq);
static void ngx_http_chat_list_mentions(const char *chat,
    const char *sender, int64_t seq, json_t *mentions);
static void ngx_http_chat_list_change_send(const char *chat,
    const char *user, int64_t seq, const char *json, ngx_uint_t void_,
    const char *prefix, const char *mode);


static ngx_int_t
ngx_http_chat_list_valid(const char *id)
{
    ngx_str_t  s;

    if (id == NULL) {
        return NGX_DECLINED;
    }

    s.data = (u_char *) id;
    s.len = ngx_strlen(id);

    return ngx_http_chat_is_oid(&s) ? NGX_OK : NGX_DECLINED;
}


/* the connection of a chat's keys: its shard's (chat_redis without) */

static ngx_http_chat_redis_t *
ngx_http_chat_list_redis(const char *chat)
{
    return ngx_http_chat_redis_shard(
               ngx_http_chat_redis_shard_of((u_char *) chat, 24));
}


static void
ngx_http_chat_list_change_send(const char *chat, const char *user,
    int64_t seq, const char *json, ngx_uint_t void_, const char *prefix,
    const char *mode)
{
    ngx_http_chat_redis_t      *rds;
    ngx_http_chat_list_lost_t  *lost;

    ngx_http_chat_list_drop_lost();

    lost = ngx_alloc(sizeof(ngx_http_chat_list_lost_t), ngx_cycle->log);

    if (lost) {
        ngx_cpystrn((u_char *) lost->chat, (u_char *) chat, 25);
        ngx_cpystrn((u_char *) lost->user, (u_char *) (user ? user : "-"),
                    25);
        lost->seq = seq;
    }

    rds = ngx_http_chat_list_redis(chat);

    if (lost == NULL
        || !ngx_http_chat_redis_is_connected(rds)
        || ngx_http_chat_redis_command(rds,
                ngx_http_chat_list_changed, lost,
                "EVAL %s 5 cl:{%s} clx:{%s} clu:{%s}:%s clg:{%s} "
                "clo:{%s}:%s "
                "%lld %s %s %s %s",
                ngx_http_chat_list_change, chat, chat, chat,
                user ? user : "-", chat, chat, user ? user : "-",
                (long long) seq, json, void_ ? "1" : "0", prefix, mode)
           != NGX_OK)
    {
        ngx_free(lost);
        ngx_http_chat_list_remember(chat, user ? user : "-");
    }
}


static void
ngx_http_chat_list_answered(redisReply *reply, void *data)
{
    ngx_http_chat_list_lost_t  *lost = data;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_chat_list_remember(lost->chat, lost->user);
    }

    ngx_free(lost);
}


/*
 * A change answered: when the script says the sender sent enough since
 * their last settle, their readSeq is settled after their facts are
 * stored (a task of the facts' queue, off the send's path)
 */

static void
ngx_http_chat_list_changed(redisReply *reply, void *data)
{
    ngx_http_chat_list_lost_t  *lost = data;

    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 2
        && lost->seq > 0 && ngx_http_chat_list_valid(lost->user) == NGX_OK)
    {
        ngx_http_chat_list_facts_settle(lost->chat, lost->user, lost->seq,
                                        ngx_http_chat_list_settle);
    }

    ngx_http_chat_list_answered(reply, data);
}


/* a change Redis may have missed: its keys go at the next chance */

static void
ngx_http_chat_list_remember(const char *chat, const char *user)
{
    ngx_http_chat_list_lost_t  *l;

    if (ngx_http_chat_list_nlost == NGX_HTTP_CHAT_LIST_LOST) {
        /* wrong until the keys expire (a day), or Redis is flushed */
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: the chat list of %s missed a change", chat);
        return;
    }

    l = &ngx_http_chat_list_lost[ngx_http_chat_list_nlost++];
    ngx_cpystrn((u_char *) l->chat, (u_char *) chat, 25);
    ngx_cpystrn((u_char *) l->user, (u_char *) user, 25);
}


static void
ngx_http_chat_list_drop_lost(void)
{
    ngx_uint_t                  i, n;
    ngx_http_chat_redis_t      *rds;
    ngx_http_chat_list_lost_t  *l, *copy;

    n = ngx_http_chat_list_nlost;

    if (n == 0) {
        return;
    }

    ngx_http_chat_list_nlost = 0;

    for (i = 0; i < n; i++) {
        l = &ngx_http_chat_list_lost[i];
        rds = ngx_http_chat_list_redis(l->chat);

        if (!ngx_http_chat_redis_is_connected(rds)) {
            /* kept (at i or before) for when its shard is back */
            ngx_http_chat_list_remember(l->chat, l->user);
            continue;
        }

        copy = ngx_alloc(sizeof(ngx_http_chat_list_lost_t), ngx_cycle->log);

        if (copy) {
            *copy = *l;
        }

        /* a drop not answered is remembered again */
        if (copy == NULL
            || ngx_http_chat_redis_command(rds,
                           ngx_http_chat_list_answered, copy,
                           "EVAL %s 4 cl:{%s} clx:{%s} clu:{%s}:%s "
                           "clg:{%s}",
                           ngx_http_chat_list_drop, l->chat, l->chat,
                           l->chat, l->user, l->chat)
               != NGX_OK)
        {
            ngx_free(copy);
            ngx_http_chat_list_remember(l->chat, l->user);
        }
    }
}


/* who is in the chat, its admins or its info changed */

static void
ngx_http_chat_list_sum_stale(const char *chat)
{
    ngx_http_chat_redis_t      *rds;
    ngx_http_chat_list_lost_t  *lost;

    ngx_http_chat_list_drop_lost();

    lost = ngx_alloc(sizeof(ngx_http_chat_list_lost_t), ngx_cycle->log);

    if (lost) {
        ngx_cpystrn((u_char *) lost->chat, (u_char *) chat, 25);
        ngx_cpystrn((u_char *) lost->user, (u_char *) "-", 25);
    }

    rds = ngx_http_chat_list_redis(chat);

    if (lost == NULL
        || !ngx_http_chat_redis_is_connected(rds)
        || ngx_http_chat_redis_command(rds,
                                       ngx_http_chat_list_answered, lost,
                                       "EVAL %s 2 cl:{%s} clg:{%s}",
                                       ngx_http_chat_list_stale, chat, chat)
           != NGX_OK)
    {
        ngx_free(lost);
        ngx_http_chat_list_remember(chat, "-");
    }
}


void
ngx_http_chat_list_model_event(const char *event, json_t *data)
{
    char        *json;
    json_t      *m, *copy, *chat;
    const char  *id, *sender, *type;
    json_int_t   seq;
    ngx_uint_t   edited, deleted, void_;

    if (ngx_strcmp(event, "message_status_update") == 0) {
        /* my readSeq moved: my facts up to it count no more */
        id = json_string_value(json_object_get(data, "chatId"));
        sender = json_string_value(json_object_get(data, "userId"));
        type = json_string_value(json_object_get(data, "status"));
        seq = json_integer_value(json_object_get(data, "upToSeq"));

        if (type && ngx_strcmp(type, "read") == 0 && seq > 0
            && ngx_http_chat_list_valid(id) == NGX_OK
            && ngx_http_chat_list_valid(sender) == NGX_OK)
        {
            ngx_http_chat_list_facts_add(id, sender, 't', seq, NULL);
        }

        return;
    }

    if (ngx_strcmp(event, "chat_updated") == 0
        || ngx_strcmp(event, "chat_removed") == 0
        || ngx_strcmp(event, "chat_created") == 0)
    {
        id = json_string_value(json_object_get(data, "chatId"));

        if (id == NULL) {
            chat = json_object_get(data, "chat");
            id = json_string_value(json_object_get(chat, "id"));
        }

        if (ngx_http_chat_list_valid(id) == NGX_OK) {
            ngx_http_chat_list_sum_stale(id);
        }

        return;
    }

    edited = (ngx_strcmp(event, "message_edited") == 0);
    deleted = (ngx_strcmp(event, "message_deleted") == 0);

    if (!edited && !deleted && ngx_strcmp(event, "new_message") != 0) {
        return;
    }

    m = json_object_get(data, "message");
    id = json_string_value(json_object_get(m, "chatId"));
    sender = json_string_value(json_object_get(m, "senderId"));
    type = json_string_value(json_object_get(m, "type"));
    seq = json_integer_value(json_object_get(m, "seq"));

    if (ngx_http_chat_list_valid(id) != NGX_OK || seq <= 0 || type == NULL) {
        return;
    }

    if (sender && ngx_http_chat_list_valid(sender) != NGX_OK) {
        sender = NULL;
    }

    /* the list shows a message without its history and reactions */
    copy = json_copy(m);
    if (copy == NULL) {
        return;
    }

    json_object_del(copy, "edits");
    json_object_del(copy, "reactions");

    json = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);

    if (json == NULL) {
        return;
    }

    void_ = deleted || ngx_strcmp(type, "deleted") == 0;

    /* MongoDB keeps what the sets hold: a rebuild reads it there */
    if (void_) {
        ngx_http_chat_list_facts_add(id, NULL, 'v', seq,
                                     ngx_http_chat_list_fact_written);

    } else if (!edited && sender) {
        ngx_http_chat_list_facts_add(id, sender, 'o', seq,
                                     ngx_http_chat_list_fact_written);
        ngx_http_chat_list_mentions(id, sender, seq,
                                    json_object_get(m, "mentions"));
    }

    ngx_http_chat_list_change_send(id, sender, seq, json, void_,
                                   (edited || deleted || sender == NULL)
                                   ? "" : "o",
                                   (edited || deleted) ? "r" : "n");
    free(json);
}


/*
 * A new message's mentions: each user's "m<seq>" in their set of the
 * chat, as a fact too; a set a user does not have yet (not a member, or
 * not read since a loss) is left to its rebuild, which reads the fact
 */

static void
ngx_http_chat_list_mentions(const char *chat, const char *sender,
    int64_t seq, json_t *mentions)
{
    size_t       i;
    json_t      *v;
    const char  *user;

    json_array_foreach(mentions, i, v) {
        user = json_string_value(v);

        if (ngx_http_chat_list_valid(user) != NGX_OK
            || ngx_strcmp(user, sender) == 0)
        {
            continue;
        }

        ngx_http_chat_list_facts_add(chat, user, 'm', seq,
                                     ngx_http_chat_list_fact_written);
        ngx_http_chat_list_readd_send(chat, user, 'm', seq);
    }
}


void
ngx_http_chat_list_model_hidden(json_t *note)
{
    const char  *chat, *user;
    json_int_t   seq;

    chat = json_string_value(json_object_get(note, "chatId"));
    user = json_string_value(json_object_get(note, "userId"));
    seq = json_integer_value(json_object_get(note, "seq"));

    if (ngx_http_chat_list_valid(chat) != NGX_OK
        || ngx_http_chat_list_valid(user) != NGX_OK || seq <= 0)
    {
        return;
    }

    ngx_http_chat_list_facts_add(chat, user, 'h', seq,
                                 ngx_http_chat_list_fact_written);
    ngx_http_chat_list_change_send(chat, user, seq, "", 0, "h", "r");
}


void
ngx_http_chat_list_model_void(const char *chat, int64_t seq)
{
    if (ngx_http_chat_list_valid(chat) != NGX_OK || seq <= 0) {
        return;
    }

    ngx_http_chat_list_facts_add(chat, NULL, 'v', seq,
                                 ngx_http_chat_list_fact_written);
    ngx_http_chat_list_change_send(chat, NULL, seq, "", 1, "", "r");
}


/* a fact stored in MongoDB: added to its set again (see the script) */

static void
ngx_http_chat_list_fact_written(const ngx_http_chat_list_fact_t *f)
{
    ngx_http_chat_list_readd_send(f->chat, f->user[0] ? f->user : NULL,
                                  f->kind, f->seq);
}


/* "<seq>" added to clx (user NULL), or "<kind><seq>" to user's clu */

static void
ngx_http_chat_list_readd_send(const char *chat, const char *user,
    u_char kind, int64_t seq)
{
    char                        member[32];
    ngx_http_chat_redis_t      *rds;
    ngx_http_chat_list_lost_t  *lost;

    if (user) {
        ngx_sprintf((u_char *) member, "%c%L%Z", kind, seq);

    } else {
        ngx_sprintf((u_char *) member, "%L%Z", seq);
    }

    ngx_http_chat_list_drop_lost();

    lost = ngx_alloc(sizeof(ngx_http_chat_list_lost_t), ngx_cycle->log);

    if (lost) {
        ngx_cpystrn((u_char *) lost->chat, (u_char *) chat, 25);
        ngx_cpystrn((u_char *) lost->user, (u_char *) (user ? user : "-"),
                    25);
    }

    rds = ngx_http_chat_list_redis(chat);

    if (lost == NULL
        || !ngx_http_chat_redis_is_connected(rds)
        || (user
            ? ngx_http_chat_redis_command(rds,
                        ngx_http_chat_list_answered, lost,
                        "EVAL %s 2 clu:{%s}:%s clg:{%s} %lld %s",
                        ngx_http_chat_list_readd, chat, user, chat,
                        (long long) seq, member)
            : ngx_http_chat_redis_command(rds,
                        ngx_http_chat_list_answered, lost,
                        "EVAL %s 2 clx:{%s} clg:{%s} %lld %s",
                        ngx_http_chat_list_readd, chat, chat,
                        (long long) seq, member))
           != NGX_OK)
    {
        ngx_free(lost);
        ngx_http_chat_list_remember(chat, user ? user : "-");
    }
}


/* argv for EVAL script nkeys ..., allocated: keys then args */

static ngx_int_t
ngx_http_chat_list_argv(size_t n, const char ***argv, size_t **argvlen)
{
    *argv = ngx_alloc(n * (sizeof(char *) + sizeof(size_t)), ngx_cycle->log);
    if (*argv == NULL) {
        return NGX_ERROR;
    }

    *argvlen = (size_t *) (*argv + n);

    return NGX_OK;
}


/* a page's read: its parts, one per shard asked, each answered once */
typedef struct {
    ngx_http_chat_list_row_pt    row;
    ngx_http_chat_list_done_pt   done;
    void                        *data;
    ngx_uint_t                   pending;
} ngx_http_chat_list_page_t;

typedef struct {
    ngx_http_chat_list_page_t   *page;
    size_t                       n;
    size_t                       index[1];   /* n: the items it asked */
} ngx_http_chat_list_part_t;


static void ngx_http_chat_list_part_ask(ngx_http_chat_list_page_t *page,
    json_t *items, const char *user, ngx_uint_t shard);
static void ngx_http_chat_list_part_read(redisReply *reply, void *data);


ngx_int_t
ngx_http_chat_list_model_read(json_t *items, const char *user,
    ngx_http_chat_list_row_pt row, ngx_http_chat_list_done_pt done,
    void *data)
{
    size_t                      i, n;
    json_t                     *v;
    ngx_uint_t                  s;
    ngx_http_chat_list_page_t  *page;

    /* what Redis may have missed goes before it is read */
    ngx_http_chat_list_drop_lost();

    n = json_array_size(items);

    if (n == 0 || ngx_http_chat_list_valid(user) != NGX_OK) {
        return NGX_DECLINED;
    }

    json_array_foreach(items, i, v) {
        if (ngx_http_chat_list_valid(json_string_value(
                                    json_object_get(v, "id")))
            != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    page = ngx_alloc(sizeof(ngx_http_chat_list_page_t), ngx_cycle->log);
    if (page == NULL) {
        return NGX_ERROR;
    }

    page->row = row;
    page->done = done;
    page->data = data;

    /* held until every part is asked: no part's answer ends it before */
    page->pending = 1;

    for (s = 0; s <= ngx_http_chat_redis_shards_n(); s++) {
        ngx_http_chat_list_part_ask(page, items, user, s);
    }

    if (--page->pending == 0) {
        /* no shard asked: every chat is read from MongoDB */
        ngx_free(page);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * One EVAL for the items whose chats are on a shard; an item of a shard
 * not asked (away, or no memory) gets no row: it is read from MongoDB
 */

static void
ngx_http_chat_list_part_ask(ngx_http_chat_list_page_t *page, json_t *items,
    const char *user, ngx_uint_t shard)
{
    char                       *keys, *p, nkeys[16];
    size_t                      i, j, n, k, *argvlen, a;
    json_t                     *v;
    const char                 *id, **argv;
    ngx_http_chat_redis_t      *rds;
    ngx_http_chat_list_part_t  *part;

    n = json_array_size(items);
    k = 0;

    json_array_foreach(items, i, v) {
        id = json_string_value(json_object_get(v, "id"));

        if (ngx_http_chat_redis_shard_of((u_char *) id, 24) == shard) {
            k++;
        }
    }

    rds = ngx_http_chat_redis_shard(shard);

    if (k == 0 || !ngx_http_chat_redis_is_connected(rds)) {
        return;
    }

    part = ngx_alloc(sizeof(ngx_http_chat_list_part_t) + k * sizeof(size_t),
                     ngx_cycle->log);
    if (part == NULL) {
        return;
    }

    part->page = page;
    part->n = k;

    /* per chat 4 keys and a readSeq (up to 20 digits) */
    keys = ngx_alloc(k * (4 * 80 + 24), ngx_cycle->log);
    if (keys == NULL) {
        ngx_free(part);
        return;
    }

    if (ngx_http_chat_list_argv(3 + 5 * k, &argv, &argvlen) != NGX_OK) {
        ngx_free(keys);
        ngx_free(part);
        return;
    }

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_chat_list_read;
    argvlen[1] = sizeof(ngx_http_chat_list_read) - 1;
    argv[2] = nkeys;
    argvlen[2] = ngx_sprintf((u_char *) nkeys, "%uz", 4 * k)
                 - (u_char *) nkeys;

    p = keys;
    a = 3;
    j = 0;

    for (i = 0; i < n; i++) {
        id = json_string_value(json_object_get(json_array_get(items, i),
                                               "id"));

        if (ngx_http_chat_redis_shard_of((u_char *) id, 24) != shard) {
            continue;
        }

        part->index[j++] = i;

        argv[a] = p;
        p = (char *) ngx_sprintf((u_char *) p, "cl:{%s}", id);
        argvlen[a] = p - argv[a];
        argv[++a] = p;
        p = (char *) ngx_sprintf((u_char *) p, "clx:{%s}", id);
        argvlen[a] = p - argv[a];
        argv[++a] = p;
        p = (char *) ngx_sprintf((u_char *) p, "clu:{%s}:%s", id, user);
        argvlen[a] = p - argv[a];
        argv[++a] = p;
        p = (char *) ngx_sprintf((u_char *) p, "clg:{%s}", id);
        argvlen[a] = p - argv[a];
        a++;
    }

    for (j = 0; j < k; j++) {
        v = json_array_get(items, part->index[j]);
        argv[a] = p;
        p = (char *) ngx_sprintf((u_char *) p, "%L",
                      (int64_t) json_integer_value(json_object_get(v,
                                                            "readSeq")));
        argvlen[a] = p - argv[a];
        a++;
    }

    /* hiredis copies the command before this returns */
    if (ngx_http_chat_redis_command_argv(rds, ngx_http_chat_list_part_read,
                                         part, (int) a, argv, argvlen)
        == NGX_OK)
    {
        page->pending++;

    } else {
        ngx_free(part);
    }

    ngx_free(argv);
    ngx_free(keys);
}


static void
ngx_http_chat_list_part_read(redisReply *reply, void *data)
{
    ngx_http_chat_list_part_t  *part = data;

    size_t                      i;
    ngx_http_chat_list_page_t  *page;

    page = part->page;

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: the chat list's script failed: %s", reply->str);
    }

    if (reply && reply->type == REDIS_REPLY_ARRAY
        && reply->elements == part->n)
    {
        for (i = 0; i < part->n; i++) {
            page->row(page->data, part->index[i], reply->element[i]);
        }
    }

    ngx_free(part);

    if (--page->pending == 0) {
        page->done(page->data);
        ngx_free(page);
    }
}


void
ngx_http_chat_list_model_fill(json_t *fill, const char *user)
{
    char         *buf, *p;
    size_t        i, n, a, k, *argvlen;
    json_t       *msgs, *voids, *own, *hidden, *mentions, *v;
    const char   *chat, *gen, *sum, **argv;

    chat = json_string_value(json_object_get(fill, "chatId"));
    gen = json_string_value(json_object_get(fill, "gen"));
    sum = json_string_value(json_object_get(fill, "sum"));
    msgs = json_object_get(fill, "msgs");
    voids = json_object_get(fill, "voids");
    own = json_object_get(fill, "own");
    hidden = json_object_get(fill, "hidden");
    mentions = json_object_get(fill, "mentions");

    if (ngx_http_chat_list_valid(chat) != NGX_OK
        || ngx_http_chat_list_valid(user) != NGX_OK
        || gen == NULL || sum == NULL || !json_is_array(msgs)
        || !json_is_array(voids) || !json_is_array(own)
        || !json_is_array(hidden) || !json_is_array(mentions)
        || !ngx_http_chat_redis_is_connected(ngx_http_chat_list_redis(chat)))
    {
        return;
    }

    n = 3 + 4 + 4 + 2 * json_array_size(msgs) + 1 + json_array_size(voids)
        + 2 * json_array_size(own) + 2 * json_array_size(hidden)
        + 2 * json_array_size(mentions);

    /* numbers and keys: 32 bytes each is enough, messages are borrowed */
    buf = ngx_alloc(n * 32 + 4 * 80, ngx_cycle->log);
    if (buf == NULL) {
        return;
    }

    if (ngx_http_chat_list_argv(n, &argv, &argvlen) != NGX_OK) {
        ngx_free(buf);
        return;
    }

    p = buf;
    a = 0;

#define ngx_http_chat_list_put(fmt, ...)                                     \
    argv[a] = p;                                                             \
    p = (char *) ngx_sprintf((u_char *) p, fmt, __VA_ARGS__);                \
    argvlen[a] = p - argv[a];                                                \
    a++

    argv[a] = "EVAL";
    argvlen[a++] = 4;
    argv[a] = ngx_http_chat_list_fill;
    argvlen[a++] = sizeof(ngx_http_chat_list_fill) - 1;
    argv[a] = "4";
    argvlen[a++] = 1;

    ngx_http_chat_list_put("cl:{%s}", chat);
    ngx_http_chat_list_put("clx:{%s}", chat);
    ngx_http_chat_list_put("clu:{%s}:%s", chat, user);
    ngx_http_chat_list_put("clg:{%s}", chat);

    argv[a] = gen;
    argvlen[a++] = ngx_strlen(gen);
    ngx_http_chat_list_put("%L", (int64_t) json_integer_value(
                                      json_object_get(fill, "top")));
    argv[a] = sum;
    argvlen[a++] = ngx_strlen(sum);
    ngx_http_chat_list_put("%uz", json_array_size(msgs));

    /* msgs: [[seq, "json"], ...] */
    json_array_foreach(msgs, i, v) {
        ngx_http_chat_list_put("%L", (int64_t) json_integer_value(
                                          json_array_get(v, 0)));
        argv[a] = json_string_value(json_array_get(v, 1));
        argvlen[a] = argv[a] ? ngx_strlen(argv[a]) : 0;
        if (argv[a] == NULL) {
            argv[a] = "";
        }
        a++;
    }

    ngx_http_chat_list_put("%uz", json_array_size(voids));

    json_array_foreach(voids, i, v) {
        ngx_http_chat_list_put("%L", (int64_t) json_integer_value(v));
    }

    for (k = 0; k < 3; k++) {
        json_array_foreach(k == 0 ? own : k == 1 ? hidden : mentions, i, v) {
            ngx_http_chat_list_put("%s%L", k == 0 ? "o" : k == 1 ? "h" : "m",
                                   (int64_t) json_integer_value(v));
            ngx_http_chat_list_put("%L", (int64_t) json_integer_value(v));
        }
    }

#undef ngx_http_chat_list_put

    /* hiredis copies the command before this returns; best effort */
    (void) ngx_http_chat_redis_command_argv(ngx_http_chat_list_redis(chat),
                                            NULL, NULL, (int) a, argv,
                                            argvlen);

    ngx_free(argv);
    ngx_free(buf);
}
