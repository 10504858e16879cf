/*
 * Copyright (C) ngx_chat_module authors
 *
 * GET /api/calls/turn-credentials: time-limited TURN credentials in the
 * form of the TURN REST API (coturn's use-auth-secret): the username is
 * "<expiry unix time>:<userId>", the password base64(HMAC-SHA1(secret,
 * username)).  coturn checks both with the same secret and refuses the
 * username once its time has passed; nothing is stored here.
 */


#include "../core/ngx_http_chat_async.h"
#include "ngx_http_chat_turn.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>


static ngx_int_t ngx_http_chat_turn_counted(ngx_http_request_t *r,
    redisReply *reply);
static json_t *ngx_http_chat_turn_answer(ngx_http_request_t *r,
    ngx_http_chat_main_conf_t *cmcf);
static json_t *ngx_http_chat_turn_strings(ngx_array_t *a);
static json_t *ngx_http_chat_turn_stun_servers(ngx_http_chat_main_conf_t *cmcf);


ngx_int_t
ngx_http_chat_turn_credentials(ngx_http_request_t *r)
{
    json_t                     *details;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    /*
     * No TURN here is a state of the deployment, not a failure to retry:
     * 404 with its own code, and the STUN servers a client falls back to.
     */
    if (cmcf->turn_uris == NULL) {
        details = json_pack("{s:o}", "iceServers",
                            ngx_http_chat_turn_stun_servers(cmcf));
        if (details == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_chat_send_error_details(r, NGX_HTTP_NOT_FOUND,
                   "turn_not_configured",
                   "this server has no TURN relay; use the STUN servers",
                   details);
    }

    return ngx_http_chat_rate_limit(r, "turn", &cmcf->turn_limit,
                                    ngx_http_chat_turn_counted);
}


static ngx_int_t
ngx_http_chat_turn_counted(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t                   rc;
    ngx_http_chat_main_conf_t  *cmcf;

    rc = ngx_http_chat_rate_over(r, reply);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_chat_module);

    return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                   ngx_http_chat_turn_answer(r, cmcf));
}


/*
 * {"username","password","ttl","expiresAt","uris":[...],"iceServers":[...]}:
 * iceServers is an RTCConfiguration's, usable by a browser as it is.
 */

static json_t *
ngx_http_chat_turn_answer(ngx_http_request_t *r,
    ngx_http_chat_main_conf_t *cmcf)
{
    u_char               *p, md[EVP_MAX_MD_SIZE];
    time_t                expiry;
    json_t               *json, *servers, *turn;
    ngx_tm_t              tm;
    ngx_str_t             user, mac, pass, at;
    unsigned int          md_len;
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    expiry = ngx_time() + cmcf->turn_ttl;

    user.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 1 + ctx->user_id.len);
    at.data = ngx_pnalloc(r->pool, sizeof("YYYY-MM-DDTHH:MM:SSZ") - 1);
    pass.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(
                                         EVP_MAX_MD_SIZE));
    if (user.data == NULL || at.data == NULL || pass.data == NULL) {
        return NULL;
    }

    user.len = ngx_sprintf(user.data, "%T:%V", expiry, &ctx->user_id)
               - user.data;

    if (HMAC(EVP_sha1(), cmcf->turn_secret.data, (int) cmcf->turn_secret.len,
             user.data, user.len, md, &md_len)
        == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat turn: HMAC-SHA1 failed");
        return NULL;
    }

    mac.data = md;
    mac.len = md_len;
    ngx_encode_base64(&pass, &mac);

    ngx_gmtime(expiry, &tm);
    p = ngx_sprintf(at.data, "%4d-%02d-%02dT%02d:%02d:%02dZ",
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                    tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
    at.len = p - at.data;

    servers = ngx_http_chat_turn_stun_servers(cmcf);
    if (servers == NULL) {
        return NULL;
    }

    /* the TURN entry first: the one that makes the call work at all */
    turn = json_pack("{s:o,s:s%,s:s%}",
                     "urls", ngx_http_chat_turn_strings(cmcf->turn_uris),
                     "username", user.data, user.len,
                     "credential", pass.data, pass.len);
    if (turn == NULL || json_array_insert_new(servers, 0, turn) != 0) {
        json_decref(servers);
        return NULL;
    }

    json = json_pack("{s:s%,s:s%,s:I,s:s%,s:o,s:o}",
                     "username", user.data, user.len,
                     "password", pass.data, pass.len,
                     "ttl", (json_int_t) cmcf->turn_ttl,
                     "expiresAt", at.data, at.len,
                     "uris", ngx_http_chat_turn_strings(cmcf->turn_uris),
                     "iceServers", servers);

    return json;
}


/* [{"urls":[stun...]}], or [] without chat_stun_uris */

static json_t *
ngx_http_chat_turn_stun_servers(ngx_http_chat_main_conf_t *cmcf)
{
    json_t  *servers, *stun;

    servers = json_array();
    if (servers == NULL || cmcf->stun_uris == NULL) {
        return servers;
    }

    stun = json_pack("{s:o}", "urls",
                     ngx_http_chat_turn_strings(cmcf->stun_uris));
    if (stun == NULL || json_array_append_new(servers, stun) != 0) {
        json_decref(servers);
        return NULL;
    }

    return servers;
}


static json_t *
ngx_http_chat_turn_strings(ngx_array_t *a)
{
    json_t      *list;
    ngx_str_t   *s;
    ngx_uint_t   i;

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    s = a->elts;

    for (i = 0; i < a->nelts; i++) {
        if (json_array_append_new(list,
                                  json_stringn((char *) s[i].data, s[i].len))
            != 0)
        {
            json_decref(list);
            return NULL;
        }
    }

    return list;
}
