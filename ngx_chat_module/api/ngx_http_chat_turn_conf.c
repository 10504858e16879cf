/*
 * Copyright (C) ngx_chat_module authors
 *
 * The directives of TURN credentials: coturn's shared secret (inline or
 * from a file read at configuration, so that nginx.conf need not hold it),
 * the TURN and STUN URIs handed to clients, the credentials' lifetime.
 */


#include "ngx_http_chat_turn.h"
#include "../util/ngx_http_chat_conf_file.h"


/* a secret longer than this is a wrong file, not a key */
#define NGX_HTTP_CHAT_TURN_SECRET_MAX  4096


static char *ngx_http_chat_turn_secret_is(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *secret);


char *
ngx_http_chat_turn_set_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_main_conf_t *cmcf = conf;

    ngx_str_t  *value;

    if (cmcf->turn_secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_chat_turn_secret_is(cf, cmd, &value[1]) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    cmcf->turn_secret = value[1];

    return NGX_CONF_OK;
}


char *
ngx_http_chat_turn_set_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_chat_main_conf_t *cmcf = conf;

    u_char     *p;
    size_t      len;
    ngx_str_t   secret;

    if (cmcf->turn_secret.data) {
        return "is duplicate";
    }

    if (ngx_http_chat_conf_read_file(cf, cmd, NGX_HTTP_CHAT_TURN_SECRET_MAX,
                                     &secret)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    p = secret.data;
    len = secret.len;

    /* the line end an editor or `echo` leaves is not part of the secret */
    while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'
                   || p[len - 1] == ' ' || p[len - 1] == '\t'))
    {
        len--;
    }

    p[len] = '\0';
    secret.data = p;
    secret.len = len;

    if (ngx_http_chat_turn_secret_is(cf, cmd, &secret) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    cmcf->turn_secret = secret;

    return NGX_CONF_OK;
}


/*
 * coturn reads static-auth-secret as one word of its configuration: a
 * secret with a space or a control character could not be the same there.
 */

static char *
ngx_http_chat_turn_secret_is(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *secret)
{
    size_t  i;

    if (secret->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" secret is empty", &cmd->name);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < secret->len; i++) {
        if (secret->data[i] <= ' ' || secret->data[i] == 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" secret has a space or a control "
                               "character", &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* chat_turn_uris turn:... turns:...; chat_stun_uris stun:... stuns:...; */

char *
ngx_http_chat_turn_set_uris(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char  *p = conf;

    size_t         len;
    ngx_str_t     *value, *uri;
    ngx_uint_t     i, stun;
    ngx_array_t  **uris;

    uris = (ngx_array_t **) (p + cmd->offset);
    stun = (cmd->offset == offsetof(ngx_http_chat_main_conf_t, stun_uris));

    if (*uris == NULL) {
        *uris = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (*uris == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (stun) {
            len = ngx_strncmp(value[i].data, "stun:", 5) == 0 ? 5
                  : ngx_strncmp(value[i].data, "stuns:", 6) == 0 ? 6 : 0;

        } else {
            len = ngx_strncmp(value[i].data, "turn:", 5) == 0 ? 5
                  : ngx_strncmp(value[i].data, "turns:", 6) == 0 ? 6 : 0;
        }

        /* RFC 7064/7065 URIs: a scheme, a host, no spaces */
        if (len == 0 || value[i].len == len
            || ngx_strlchr(value[i].data, value[i].data + value[i].len, '"'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\" is not a %s URI",
                               &cmd->name, &value[i],
                               stun ? "stun: or stuns:" : "turn: or turns:");
            return NGX_CONF_ERROR;
        }

        uri = ngx_array_push(*uris);
        if (uri == NULL) {
            return NGX_CONF_ERROR;
        }

        *uri = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * Defaults, and a secret without TURN URIs or URIs without a secret
 * refused: either is half a configuration that would answer credentials
 * nobody can use, or URIs nobody can log in to.
 */

char *
ngx_http_chat_turn_init_conf(ngx_conf_t *cf, ngx_http_chat_main_conf_t *cmcf)
{
    /*
     * A day, as the TURN REST API draft suggests: coturn checks the
     * expiry on every Refresh of an allocation too, so a call lasts at
     * most as long as the credentials its ICE agent started with; a leak
     * is still bounded to a day.
     */
    ngx_conf_init_value(cmcf->turn_ttl, 24 * 60 * 60);

    if (cmcf->turn_limit.count == NGX_CONF_UNSET) {
        /* a client asks once per call: 100 calls an hour is a lot */
        cmcf->turn_limit.count = 100;
        cmcf->turn_limit.window = 60 * 60;
    }

    if (cmcf->turn_ttl < 60 || cmcf->turn_ttl > 7 * 24 * 60 * 60) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_turn_ttl\" must be between 1m and 7d");
        return NGX_CONF_ERROR;
    }

    if (cmcf->turn_secret.len && cmcf->turn_uris == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_turn_secret\" needs \"chat_turn_uris\"");
        return NGX_CONF_ERROR;
    }

    if (cmcf->turn_uris && cmcf->turn_secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_turn_uris\" needs \"chat_turn_secret\" "
                           "or \"chat_turn_secret_file\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
