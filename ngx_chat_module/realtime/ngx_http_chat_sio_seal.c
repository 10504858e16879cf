/*
 * Copyright (C) ngx_chat_module authors
 *
 * The access token an Engine.IO session signed in with is kept in Redis
 * for the worker that takes its upgrade, which signs in with it again.
 * It is kept sealed: AES-256-GCM under a key derived from the JWT secret
 * (HMAC-SHA256 of a fixed label), bound to the session's id, so that
 * what Redis holds (a dump, a replica, a MONITOR) is no bearer token, and
 * a sealed token of one session opens no other.
 */


#include "ngx_http_chat_sio.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>


#define NGX_HTTP_CHAT_SEAL_IV   12
#define NGX_HTTP_CHAT_SEAL_TAG  16
#define NGX_HTTP_CHAT_SEAL_KEY  32


static ngx_int_t
ngx_http_chat_sio_seal_key(ngx_str_t *secret, u_char *key)
{
    unsigned int  len;

    len = NGX_HTTP_CHAT_SEAL_KEY;

    if (HMAC(EVP_sha256(), secret->data, (int) secret->len,
             (u_char *) "ngx_chat eio token", 18, key, &len)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* out: NGX_HTTP_CHAT_SIO_SEALED_MAX bytes */
ngx_int_t
ngx_http_chat_sio_seal(ngx_str_t *secret, u_char *sid, ngx_str_t *in,
    ngx_str_t *out)
{
    int              n, len;
    u_char           key[NGX_HTTP_CHAT_SEAL_KEY];
    u_char           raw[NGX_HTTP_CHAT_SEAL_IV + NGX_HTTP_CHAT_SEAL_TAG
                         + NGX_HTTP_CHAT_SIO_TOKEN_MAX];
    ngx_int_t        rc;
    ngx_str_t        src, dst;
    EVP_CIPHER_CTX  *ctx;

    if (in->len > NGX_HTTP_CHAT_SIO_TOKEN_MAX
        || ngx_http_chat_sio_seal_key(secret, key) != NGX_OK
        || RAND_bytes(raw, NGX_HTTP_CHAT_SEAL_IV) != 1)
    {
        return NGX_ERROR;
    }

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) == 1
        && EVP_EncryptUpdate(ctx, NULL, &n, sid, NGX_HTTP_CHAT_SIO_ID_LEN)
           == 1
        && EVP_EncryptUpdate(ctx, raw + NGX_HTTP_CHAT_SEAL_IV
                                  + NGX_HTTP_CHAT_SEAL_TAG,
                             &len, in->data, (int) in->len)
           == 1
        && EVP_EncryptFinal_ex(ctx, raw + NGX_HTTP_CHAT_SEAL_IV
                                    + NGX_HTTP_CHAT_SEAL_TAG + len, &n)
           == 1
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
                               NGX_HTTP_CHAT_SEAL_TAG,
                               raw + NGX_HTTP_CHAT_SEAL_IV)
           == 1)
    {
        src.data = raw;
        src.len = NGX_HTTP_CHAT_SEAL_IV + NGX_HTTP_CHAT_SEAL_TAG + len + n;
        dst = *out;
        ngx_encode_base64url(&dst, &src);
        out->len = dst.len;
        rc = NGX_OK;
    }

    EVP_CIPHER_CTX_free(ctx);
    ngx_explicit_memzero(key, sizeof(key));

    return rc;
}


/* out: at least in->len bytes; NGX_DECLINED: not sealed by us for sid */
ngx_int_t
ngx_http_chat_sio_unseal(ngx_str_t *secret, u_char *sid, ngx_str_t *in,
    ngx_str_t *out)
{
    int              n, len;
    u_char           key[NGX_HTTP_CHAT_SEAL_KEY];
    u_char           raw[NGX_HTTP_CHAT_SEAL_IV + NGX_HTTP_CHAT_SEAL_TAG
                         + NGX_HTTP_CHAT_SIO_TOKEN_MAX];
    ngx_int_t        rc;
    ngx_str_t        dst;
    EVP_CIPHER_CTX  *ctx;

    if (in->len > ngx_base64_encoded_length(sizeof(raw))) {
        return NGX_DECLINED;
    }

    dst.data = raw;

    if (ngx_decode_base64url(&dst, in) != NGX_OK
        || dst.len <= NGX_HTTP_CHAT_SEAL_IV + NGX_HTTP_CHAT_SEAL_TAG)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_chat_sio_seal_key(secret, key) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        ngx_explicit_memzero(key, sizeof(key));
        return NGX_ERROR;
    }

    rc = NGX_DECLINED;
    len = (int) (dst.len - NGX_HTTP_CHAT_SEAL_IV - NGX_HTTP_CHAT_SEAL_TAG);

    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) == 1
        && EVP_DecryptUpdate(ctx, NULL, &n, sid, NGX_HTTP_CHAT_SIO_ID_LEN)
           == 1
        && EVP_DecryptUpdate(ctx, out->data, &n,
                             raw + NGX_HTTP_CHAT_SEAL_IV
                             + NGX_HTTP_CHAT_SEAL_TAG, len)
           == 1
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
                               NGX_HTTP_CHAT_SEAL_TAG,
                               raw + NGX_HTTP_CHAT_SEAL_IV)
           == 1
        && EVP_DecryptFinal_ex(ctx, out->data + n, &len) == 1)
    {
        out->len = n + len;
        rc = NGX_OK;
    }

    EVP_CIPHER_CTX_free(ctx);
    ngx_explicit_memzero(key, sizeof(key));

    return rc;
}


/* signs s in with a token that was kept sealed */
void
ngx_http_chat_sio_start_sealed(ngx_http_chat_rt_session_t *s,
    ngx_str_t *sealed)
{
    u_char                      buf[NGX_HTTP_CHAT_SIO_SEALED_MAX];
    ngx_str_t                   tok;
    ngx_http_chat_main_conf_t  *cmcf;

    cmcf = s->main_conf[ngx_http_chat_module.ctx_index];
    tok.data = buf;

    if (ngx_http_chat_sio_unseal(&cmcf->jwt_secret, s->sio->eio_sid, sealed,
                                 &tok)
        != NGX_OK)
    {
        /* no token of ours: refused as any bad token */
        ngx_log_error(NGX_LOG_INFO, s->ws->connection->log, 0,
                      "chat socket.io: a kept token does not open");
        tok = *sealed;
    }

    ngx_http_chat_rt_start_auth(s, &tok, NULL);

    ngx_explicit_memzero(buf, sizeof(buf));
}
