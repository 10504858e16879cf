/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_EVENTS_H_INCLUDED_
#define _NGX_HTTP_CHAT_EVENTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>


/*
 * The event interface: what crosses the floors upwards goes through this
 * table.  The folders above core fill their slots at configuration
 * (ngx_http_chat_module.c calls ngx_http_chat_rt_register()); the others
 * call the functions below, which do nothing while a slot is empty.
 */

/*
 * A message filter's verdict: NGX_OK accepted (content, when not NULL, the
 * content rewritten, as JSON), NGX_BUSY rejected (reason for the sender),
 * NGX_ERROR it failed or did not answer in time (reason says which).
 */
typedef void (*ngx_http_chat_filter_done_pt)(void *data, ngx_int_t rc,
    u_char *content, size_t len, const char *reason);

typedef struct {
    /* realtime: an event on a channel ("user:", "chat:"), every instance */
    void         (*publish)(const char *kind, ngx_str_t *id, u_char flag,
                            ngx_str_t *origin, ngx_str_t *chat,
                            const char *event, json_t *data);

    /*
     * lua: a message a user sends, before it is stored (user and chat 24
     * hex, content its JSON): NGX_DECLINED no filter, NGX_OK done() will
     * be called once, never before this returns; NGX_ERROR the filter
     * cannot run now
     */
    ngx_int_t    (*filter)(u_char *user, u_char *chat, const char *type,
                           u_char *content, size_t len,
                           ngx_http_chat_filter_done_pt done, void *data);

    /*
     * lua: a sign-in (phone E.164, device name) whose code was right,
     * before its session is made: as filter (NGX_OK accepted, NGX_BUSY
     * refused, NGX_ERROR failed); *handle for cancel(), when the request
     * goes first (done() is then never called)
     */
    ngx_int_t    (*signin)(ngx_str_t *phone, ngx_str_t *device,
                           ngx_http_chat_filter_done_pt done, void *data,
                           void **handle);
    void         (*cancel)(void *handle);

    /*
     * lua: a socket's sign-in, its token and session checked; what (a
     * JSON object: userId, sessionId, socketId, codec, transport,
     * address) is copied: as filter, never canceled (the verdict or the
     * deadline always comes)
     */
    ngx_int_t    (*socket_signin)(u_char *what, size_t len,
                                  ngx_http_chat_filter_done_pt done,
                                  void *data);

    /* lua: a committed event, for subscribers (webhooks) */
    void         (*committed)(const char *kind, ngx_str_t *id,
                              const char *event, json_t *data);

    /* push: a committed event to a user ("user:" id), a call rung or
     * missed among them */
    void         (*pushed)(ngx_str_t *user, const char *event,
                           json_t *data);
} ngx_http_chat_events_t;


extern ngx_http_chat_events_t  ngx_http_chat_events;


void ngx_http_chat_event_publish(const char *kind, ngx_str_t *id,
    u_char flag, ngx_str_t *origin, ngx_str_t *chat, const char *event,
    json_t *data);
ngx_int_t ngx_http_chat_event_filter(u_char *user, u_char *chat,
    const char *type, u_char *content, size_t len,
    ngx_http_chat_filter_done_pt done, void *data);

ngx_int_t ngx_http_chat_event_signin(ngx_str_t *phone, ngx_str_t *device,
    ngx_http_chat_filter_done_pt done, void *data, void **handle);
void ngx_http_chat_event_cancel(void *handle);
ngx_int_t ngx_http_chat_event_socket_signin(u_char *what, size_t len,
    ngx_http_chat_filter_done_pt done, void *data);

/*
 * the events a store's run() said its commit caused ("$events" in its
 * answer), published and taken out of the answer; a user who joined a
 * chat ('j') has it added to their chat ids
 */
void ngx_http_chat_event_publish_committed(json_t *answer);
/*
 * those a stored change took out of a chat ('l' in its "$events") out of
 * their chat ids, at once; the events stay for their publishing
 */
void ngx_http_chat_event_left_committed(json_t *answer);
/* a string field of a JSON object, borrowed: NGX_OK or NGX_DECLINED */
ngx_int_t ngx_http_chat_rt_str_field(json_t *obj, const char *name,
    ngx_str_t *out);


#endif /* _NGX_HTTP_CHAT_EVENTS_H_INCLUDED_ */
