/*
 * Copyright (C) ngx_chat_module authors
 *
 * The push device of the current session: registered (or moved here
 * from the session that held its token) and unregistered.
 */


#include "../core/ngx_http_chat_async.h"
#include "../core/ngx_http_chat_wait.h"
#include "../store/ngx_http_chat_devices_store.h"
#include "../util/ngx_http_chat_text.h"
#include "ngx_http_chat_devices.h"


static ngx_int_t ngx_http_chat_devices_put_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);
static ngx_int_t ngx_http_chat_devices_delete_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t);


/* a token as the providers make them: printable ASCII, no spaces */

static ngx_uint_t
ngx_http_chat_devices_token_ok(ngx_str_t *s)
{
    size_t  i;

    if (s->len == 0 || s->len > NGX_HTTP_CHAT_DEVICE_TOKEN_MAX) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] <= 0x20 || s->data[i] >= 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* a bundle id or package name: letters, digits, '.', '-', '_' */

static ngx_uint_t
ngx_http_chat_devices_bundle_ok(ngx_str_t *s)
{
    size_t  i;
    u_char  c;

    if (s->len == 0 || s->len > NGX_HTTP_CHAT_DEVICE_BUNDLE_MAX) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
        {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_chat_devices_ids(ngx_http_request_t *r,
    ngx_http_chat_device_arg_t *a)
{
    ngx_http_chat_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (!ngx_http_chat_is_oid(&ctx->user_id)
        || !ngx_http_chat_is_oid(&ctx->session_id))
    {
        return NGX_ERROR;
    }

    bson_oid_init_from_string_unsafe(&a->user, (char *) ctx->user_id.data);
    bson_oid_init_from_string_unsafe(&a->session,
                                     (char *) ctx->session_id.data);

    return NGX_OK;
}


ngx_int_t
ngx_http_chat_devices_put(ngx_http_request_t *r)
{
    ngx_str_t                    platform, token, voip, bundle;
    const char                  *problem;
    ngx_http_chat_ctx_t         *ctx;
    ngx_http_chat_device_arg_t  *a;

    ctx = ngx_http_get_module_ctx(r, ngx_http_chat_module);

    if (!json_is_object(ctx->body)) {
        return ngx_http_chat_send_invalid(r, "body", "must be an object");
    }

    problem = ngx_http_chat_json_string(ctx->body, "platform", 1, 16,
                                        &platform);
    if (problem) {
        return ngx_http_chat_send_invalid(r, "platform", problem);
    }

    problem = ngx_http_chat_json_string(ctx->body, "token", 1,
                                        NGX_HTTP_CHAT_DEVICE_TOKEN_MAX,
                                        &token);
    if (problem) {
        return ngx_http_chat_send_invalid(r, "token", problem);
    }

    problem = ngx_http_chat_json_string(ctx->body, "bundleId", 1,
                                        NGX_HTTP_CHAT_DEVICE_BUNDLE_MAX,
                                        &bundle);
    if (problem) {
        return ngx_http_chat_send_invalid(r, "bundleId", problem);
    }

    problem = ngx_http_chat_json_string(ctx->body, "voipToken", 0,
                                        NGX_HTTP_CHAT_DEVICE_TOKEN_MAX,
                                        &voip);
    if (problem) {
        return ngx_http_chat_send_invalid(r, "voipToken", problem);
    }

    if (!ngx_http_chat_devices_token_ok(&token)) {
        return ngx_http_chat_send_invalid(r, "token",
                                          "must be printable ASCII");
    }

    if (voip.data && !ngx_http_chat_devices_token_ok(&voip)) {
        return ngx_http_chat_send_invalid(r, "voipToken",
                                          "must be printable ASCII");
    }

    if (!ngx_http_chat_devices_bundle_ok(&bundle)) {
        return ngx_http_chat_send_invalid(r, "bundleId",
                                          "must be a bundle id");
    }

    if (!(platform.len == 7 && ngx_strncmp(platform.data, "android", 7) == 0)
        && !(platform.len == 3 && ngx_strncmp(platform.data, "ios", 3) == 0)
        && !(platform.len == 3 && ngx_strncmp(platform.data, "web", 3) == 0))
    {
        return ngx_http_chat_send_error_details(r,
                   NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY, "unsupported_platform",
                   "platform must be android, ios or web",
                   json_pack("{s:s}", "field", "platform"));
    }

    if (voip.data && platform.data[0] != 'i') {
        return ngx_http_chat_send_error_details(r,
                   NGX_HTTP_CHAT_UNPROCESSABLE_ENTITY, "voip_ios_only",
                   "a VoIP token is for ios only",
                   json_pack("{s:s}", "field", "voipToken"));
    }

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_device_arg_t));
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_devices_ids(r, a) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(a->platform, platform.data, platform.len);
    ngx_memcpy(a->token, token.data, token.len);
    ngx_memcpy(a->bundle, bundle.data, bundle.len);

    if (voip.data) {
        ngx_memcpy(a->voip, voip.data, voip.len);
    }

    return ngx_http_chat_mongo_request(r, ngx_http_chat_devices_register_run,
                                       ngx_http_chat_devices_put_done, a,
                                       sizeof(ngx_http_chat_device_arg_t));
}


static ngx_int_t
ngx_http_chat_devices_put_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    json_t                      *device;
    ngx_http_chat_device_arg_t  *a = t->arg;

    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: device registration failed in mongo: %s",
                      t->error.message);
        return ngx_http_chat_send_retry(r);
    }

    device = json_pack("{s:s,s:s,s:s}", "platform", a->platform,
                       "token", a->token, "bundleId", a->bundle);
    if (device == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (a->voip[0]) {
        json_object_set_new(device, "voipToken", json_string(a->voip));
    }

    return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                   json_pack("{s:o}", "device", device));
}


ngx_int_t
ngx_http_chat_devices_delete(ngx_http_request_t *r)
{
    ngx_http_chat_device_arg_t  *a;

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_chat_device_arg_t));
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_chat_devices_ids(r, a) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_chat_mongo_request(r,
                                       ngx_http_chat_devices_unregister_run,
                                       ngx_http_chat_devices_delete_done, a,
                                       sizeof(ngx_http_chat_device_arg_t));
}


static ngx_int_t
ngx_http_chat_devices_delete_done(ngx_http_request_t *r,
    ngx_http_chat_mongo_task_t *t)
{
    if (t->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: device removal failed in mongo: %s",
                      t->error.message);
        return ngx_http_chat_send_retry(r);
    }

    return ngx_http_chat_send_json(r, NGX_HTTP_OK,
                                   json_pack("{s:b}", "success", 1));
}
