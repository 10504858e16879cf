/*
 * Copyright (C) ngx_chat_module authors
 */


#ifndef _NGX_HTTP_CHAT_OP_PUSH_H_INCLUDED_
#define _NGX_HTTP_CHAT_OP_PUSH_H_INCLUDED_


#include "../util/ngx_http_chat_conf.h"
#include <jansson.h>


/*
 * Push notifications, a commit hook: whom a committed message (or call)
 * is pushed to, and what they get.  Nothing here waits for anybody: the
 * reads and the sends run after the commit, whether the sender is still
 * connected or not.
 */

/* a worker's start: the directives, and the provider's token cleanup */
void ngx_http_chat_op_push_init(ngx_http_chat_main_conf_t *cmcf);

/*
 * After a message's commit (the message as stored, as its new_message
 * event carries it): each member but the sender with a device and no
 * live socket on any instance, unless the chat is muted for them (a
 * mention passes the mute with chat_push_mention_muted on) or they
 * blocked the sender.  Normal priority, collapsed per chat.
 */
void ngx_http_chat_op_push_message(json_t *message);

/*
 * For the calls (issue of calls): an incoming call (missed == 0:
 * urgent, to every device of the callee whether or not a socket of
 * theirs is live, as the phone must ring) or a missed call (missed == 1:
 * normal priority, to a callee with no live socket).  Blocks are
 * honoured as for messages.  All ids are 24 hex digits; call_id is the
 * caller's own (up to 64 characters).  Called for each committed
 * incoming_call and call_missed event to a callee (the events' pushed
 * slot, set by ngx_http_chat_op_push_init()).
 */
void ngx_http_chat_push_call(ngx_str_t *callee, ngx_str_t *caller,
    ngx_str_t *chat, ngx_str_t *call_id, ngx_uint_t missed);


#endif /* _NGX_HTTP_CHAT_OP_PUSH_H_INCLUDED_ */
