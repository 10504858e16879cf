/*
 * Copyright (C) ngx_chat_module authors
 *
 * The lookup budget: distinct numbers a user looks up a day, counted in
 * Redis as short keyed hashes.
 */


#include "ngx_http_chat_op_lookup.h"
#include "../store/ngx_http_chat_redis_shards.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>


#define NGX_HTTP_CHAT_LOOKUP_KEY  (sizeof("lk::") + 24 + NGX_INT64_LEN)
#define NGX_HTTP_CHAT_DAY         86400


typedef struct {
    ngx_http_chat_op_lookup_pt   done;
    void                        *data;
    time_t                       left;
} ngx_http_chat_lookup_t;


static void ngx_http_chat_op_lookup_counted(redisReply *reply, void *data);


/*
 * KEYS: the day's set.  ARGV: the cap, the seconds left in the day, the
 * hashes.  The new distinct hashes are added only if all fit: a sync is
 * refused whole, never half looked up.  Returns 0, or the set's TTL.
 */

const char  ngx_http_chat_op_lookup_script[] =
    "local seen, new = {}, {} "
    "for i = 3, #ARGV do "
    "  local h = ARGV[i] "
    "  if not seen[h] then "
    "    seen[h] = true "
    "    if redis.call('SISMEMBER', KEYS[1], h) == 0 then "
    "      new[#new + 1] = h "
    "    end "
    "  end "
    "end "
    "if #new == 0 then return 0 end "
    "if redis.call('SCARD', KEYS[1]) + #new > tonumber(ARGV[1]) then "
    "  local t = redis.call('TTL', KEYS[1]) "
    "  if t < 1 then t = tonumber(ARGV[2]) end "
    "  return t "
    "end "
    "for i = 1, #new, 500 do "
    "  redis.call('SADD', KEYS[1], unpack(new, i, math.min(i + 499, #new))) "
    "end "
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) "
    "return 0";


static ngx_http_chat_main_conf_t *
ngx_http_chat_op_lookup_conf(void)
{
    return ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_chat_module);
}


/* lk:<user>:<UTC day number> into key; *left: seconds to the day's end */

static size_t
ngx_http_chat_op_lookup_key(const bson_oid_t *user, u_char *key,
    time_t *left)
{
    char    hex[25];
    time_t  now;

    now = ngx_time();
    *left = NGX_HTTP_CHAT_DAY - now % NGX_HTTP_CHAT_DAY;

    bson_oid_to_string(user, hex);

    return ngx_sprintf(key, "lk:%s:%T", hex, now / NGX_HTTP_CHAT_DAY) - key;
}


/*
 * HMAC-SHA256(the OTP secret, "<user>:<E.164>"), its first 8 bytes in
 * hex: the set tells nobody which numbers were looked up, nor matches
 * another user's set.  The configuration is only read: any thread.
 */

ngx_int_t
ngx_http_chat_op_lookup_hash(const bson_oid_t *user, const char *e164,
    u_char *out)
{
    char                        hex[25];
    u_char                      msg[25 + 32], md[EVP_MAX_MD_SIZE], *p;
    unsigned int                mdlen;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_chat_op_lookup_conf();

    bson_oid_to_string(user, hex);
    p = ngx_snprintf(msg, sizeof(msg), "%s:%s", hex, e164);

    if (cmcf == NULL
        || HMAC(EVP_sha256(), cmcf->otp_secret.data,
                (int) cmcf->otp_secret.len, msg, p - msg, md, &mdlen)
           == NULL)
    {
        return NGX_ERROR;
    }

    ngx_hex_dump(out, md, NGX_HTTP_CHAT_LOOKUP_HASH / 2);

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_op_lookup_one(ngx_pool_t *pool, const bson_oid_t *user,
    const char *e164, ngx_str_t *key, ngx_str_t *args)
{
    time_t                      left;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_chat_op_lookup_conf();

    key->data = ngx_pnalloc(pool, NGX_HTTP_CHAT_LOOKUP_KEY);
    args[0].data = ngx_pnalloc(pool, 2 * NGX_INT64_LEN
                                     + NGX_HTTP_CHAT_LOOKUP_HASH);

    if (cmcf == NULL || key->data == NULL || args[0].data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_http_chat_op_lookup_key(user, key->data, &left);

    args[0].len = ngx_sprintf(args[0].data, "%ui", cmcf->lookup_daily_numbers)
                  - args[0].data;

    args[1].data = args[0].data + NGX_INT64_LEN;
    args[1].len = ngx_sprintf(args[1].data, "%T", left) - args[1].data;

    args[2].data = args[1].data + NGX_INT64_LEN;
    args[2].len = NGX_HTTP_CHAT_LOOKUP_HASH;

    return ngx_http_chat_op_lookup_hash(user, e164, args[2].data);
}


ngx_int_t
ngx_http_chat_op_lookup(const bson_oid_t *user, const u_char *hashes,
    ngx_uint_t n, ngx_http_chat_op_lookup_pt done, void *data)
{
    u_char                      key[NGX_HTTP_CHAT_LOOKUP_KEY];
    u_char                      cap[NGX_INT64_LEN], ttl[NGX_INT64_LEN];
    size_t                     *argvlen;
    ngx_int_t                   rc;
    ngx_uint_t                  i, argc;
    const char                **argv;
    ngx_http_chat_lookup_t     *lk;
    ngx_http_chat_redis_t      *rds;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_chat_op_lookup_conf();
    if (cmcf == NULL) {
        return NGX_ERROR;
    }

    argc = 6 + n;

    /* one allocation for the command; hiredis copies it before return */
    argv = ngx_alloc(argc * (sizeof(char *) + sizeof(size_t)),
                     ngx_cycle->log);
    if (argv == NULL) {
        return NGX_ERROR;
    }

    argvlen = (size_t *) (argv + argc);

    lk = ngx_alloc(sizeof(ngx_http_chat_lookup_t), ngx_cycle->log);
    if (lk == NULL) {
        ngx_free(argv);
        return NGX_ERROR;
    }

    lk->done = done;
    lk->data = data;

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_chat_op_lookup_script;
    argvlen[1] = sizeof(ngx_http_chat_op_lookup_script) - 1;
    argv[2] = "1";
    argvlen[2] = 1;
    argv[3] = (char *) key;
    argvlen[3] = ngx_http_chat_op_lookup_key(user, key, &lk->left);
    argv[4] = (char *) cap;
    argvlen[4] = ngx_sprintf(cap, "%ui", cmcf->lookup_daily_numbers) - cap;
    argv[5] = (char *) ttl;
    argvlen[5] = ngx_sprintf(ttl, "%T", lk->left) - ttl;

    for (i = 0; i < n; i++) {
        argv[6 + i] = (char *) hashes + i * NGX_HTTP_CHAT_LOOKUP_HASH;
        argvlen[6 + i] = NGX_HTTP_CHAT_LOOKUP_HASH;
    }

    /* lk:<user>:<day> is on the user's shard */
    rds = ngx_http_chat_redis_of(key + sizeof("lk:") - 1, 24);

    rc = ngx_http_chat_redis_command_argv(rds,
                                          ngx_http_chat_op_lookup_counted, lk,
                                          (int) argc, argv, argvlen);
    ngx_free(argv);

    if (rc != NGX_OK) {
        if (!ngx_http_chat_redis_is_connected(rds)) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "chat: redis is not connected");
        }

        ngx_free(lk);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_chat_op_lookup_counted(redisReply *reply, void *data)
{
    ngx_http_chat_lookup_t  *lk = data;

    void                        *arg;
    time_t                       left;
    ngx_http_chat_op_lookup_pt   done;

    done = lk->done;
    arg = lk->data;
    left = lk->left;

    ngx_free(lk);

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        done(arg, NGX_ERROR, 0, reply ? reply->str : "connection lost");
        return;
    }

    if (reply->type != REDIS_REPLY_INTEGER) {
        done(arg, NGX_ERROR, 0, "unexpected reply");
        return;
    }

    if (reply->integer != 0) {
        done(arg, NGX_BUSY, reply->integer > 0 ? (time_t) reply->integer
                                               : left, NULL);
        return;
    }

    done(arg, NGX_OK, 0, NULL);
}
