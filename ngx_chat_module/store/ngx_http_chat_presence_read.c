/*
 * Copyright (C) ngx_chat_module authors
 *
 * Who is online, and when they were last seen, for the views of users
 * that REST and the sockets show.  A user is online while a live worker
 * counts a socket of theirs (presence:s:<user>, or presence:u:<user> of
 * a build before the hashes; realtime/ngx_http_chat_rt_presence.c), and
 * was last seen when they last went offline (at in presence:h:<user>):
 * both read from Redis as the view is answered, one script a shard for
 * all the users of a page.  The users' documents keep when each was last
 * seen (lastSeenAt, behind Redis by a batch), not whether they are online,
 * so that a socket's sign-in writes nothing to MongoDB
 * (realtime/ngx_http_chat_rt_presence_store.c).
 *
 * Every shard is asked, chat_redis included: during a change of the
 * shard list, or from a build without shards, a user may be counted on a
 * server that is not their shard now.
 */


#include "ngx_http_chat_presence_read.h"
#include "ngx_http_chat_redis_shards.h"
#include "ngx_http_chat_users.h"


typedef struct {
    json_t                   *view;
    ngx_uint_t                online;    /* a shard counts them */
    int64_t                   at;        /* ms: the latest going offline */
} ngx_http_chat_online_view_t;


struct ngx_http_chat_online_s {
    ngx_http_chat_online_pt       done;      /* NULL once cancelled */
    void                         *data;
    json_t                       *answer;    /* a reference held */
    ngx_uint_t                    waiting;   /* shards to answer */
    ngx_uint_t                    n;
    ngx_uint_t                    max;
    ngx_http_chat_online_view_t  *view;      /* n */
};


/*
 * ARGV: user ids; for each {counted, the time they last went offline}.
 * A key of another type (not ours) reads as nothing, for that user alone.
 */
static const char  ngx_http_chat_online_script[] =
    "local r = {} "
    "for i = 1, #ARGV do local u = ARGV[i] "
    "  r[2 * i - 1] = redis.call('EXISTS', 'presence:s:' .. u, "
    "                            'presence:u:' .. u) "
    "  local at = redis.pcall('HGET', 'presence:h:' .. u, 'at') "
    "  r[2 * i] = type(at) == 'string' and tonumber(at) or 0 "
    "end "
    "return r";


static ngx_uint_t ngx_http_chat_online_views(ngx_http_chat_online_t *on,
    json_t *answer);
static ngx_uint_t ngx_http_chat_online_add(ngx_http_chat_online_t *on,
    json_t *v);
static void ngx_http_chat_online_got(redisReply *reply, void *data);
static void ngx_http_chat_online_apply(ngx_http_chat_online_t *on);
static void ngx_http_chat_online_strip(json_t *answer);
static void ngx_http_chat_online_strip_one(json_t *v);


ngx_int_t
ngx_http_chat_online_read(json_t *answer, ngx_http_chat_online_pt done,
    void *data, ngx_http_chat_online_t **out)
{
    size_t                  *argvlen;
    ngx_uint_t               s, shards, k, count;
    const char             **argv;
    ngx_http_chat_redis_t   *rds;
    ngx_http_chat_online_t  *on;

    /* most answers show nobody: counted first, nothing allocated */
    count = ngx_http_chat_online_views(NULL, answer);

    if (count == 0) {
        return NGX_DECLINED;
    }

    /* every one, however long the list (a sync shows up to 5,000) */
    on = ngx_calloc(sizeof(ngx_http_chat_online_t)
                    + count * sizeof(ngx_http_chat_online_view_t),
                    ngx_cycle->log);
    argv = ngx_alloc((count + 3) * (sizeof(char *) + sizeof(size_t)),
                     ngx_cycle->log);

    if (on == NULL || argv == NULL) {
        goto declined;
    }

    on->max = count;
    on->view = (ngx_http_chat_online_view_t *) (on + 1);

    (void) ngx_http_chat_online_views(on, answer);

    argvlen = (size_t *) (argv + count + 3);

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_chat_online_script;
    argvlen[1] = sizeof(ngx_http_chat_online_script) - 1;
    argv[2] = "0";
    argvlen[2] = 1;

    for (k = 0; k < on->n; k++) {
        argv[3 + k] = json_string_value(json_object_get(on->view[k].view,
                                                        "id"));
        argvlen[3 + k] = 24;
    }

    on->done = done;
    on->data = data;
    on->answer = json_incref(answer);

    /* every shard: whoever counts them, wherever */
    shards = ngx_http_chat_redis_shards_n();

    for (s = 0; s <= shards; s++) {
        rds = ngx_http_chat_redis_shard(s);

        /* a shard away answers nothing: the others tell */
        if (rds == NULL || !ngx_http_chat_redis_is_connected(rds)) {
            continue;
        }

        /* hiredis copies the command before this returns */
        if (ngx_http_chat_redis_command_argv(rds, ngx_http_chat_online_got,
                                             on, (int) on->n + 3, argv,
                                             argvlen)
            == NGX_OK)
        {
            on->waiting++;
        }
    }

    ngx_free(argv);
    argv = NULL;

    if (on->waiting) {
        if (out) {
            *out = on;
        }

        return NGX_OK;
    }

    json_decref(on->answer);

declined:

    /* Redis away: the views as the documents have them */
    ngx_http_chat_online_strip(answer);

    if (argv) {
        ngx_free(argv);
    }

    if (on) {
        ngx_free(on);
    }

    return NGX_DECLINED;
}


/* the views: answer's own, its values', its arrays'; NULL on: counted */
static ngx_uint_t
ngx_http_chat_online_views(ngx_http_chat_online_t *on, json_t *answer)
{
    size_t       i;
    json_t      *v, *e;
    ngx_uint_t   n;
    const char  *key;

    n = ngx_http_chat_online_add(on, answer);

    json_object_foreach(answer, key, v) {
        if (json_is_array(v)) {
            json_array_foreach(v, i, e) {
                n += ngx_http_chat_online_add(on, e);
            }

        } else {
            n += ngx_http_chat_online_add(on, v);
        }
    }

    return n;
}


static ngx_uint_t
ngx_http_chat_online_add(ngx_http_chat_online_t *on, json_t *v)
{
    json_t  *id;

    /* a view that shows online status or when last seen to this viewer */
    if (!json_is_boolean(json_object_get(v, "online"))
        && json_object_get(v, "lastSeen") == NULL)
    {
        return 0;
    }

    id = json_object_get(v, "id");

    if (!json_is_string(id) || json_string_length(id) != 24) {
        return 0;
    }

    if (on && on->n < on->max) {
        on->view[on->n++].view = v;
    }

    return 1;
}


static void
ngx_http_chat_online_got(redisReply *reply, void *data)
{
    ngx_http_chat_online_t *on = data;

    ngx_uint_t                    k;
    redisReply                  **e;
    ngx_http_chat_online_view_t  *ov;

    /* a read that failed tells nothing: the others do */
    if (on->done && reply && reply->type == REDIS_REPLY_ARRAY
        && reply->elements == 2 * on->n)
    {
        for (k = 0; k < on->n; k++) {
            e = &reply->element[2 * k];
            ov = &on->view[k];

            if (e[0]->type == REDIS_REPLY_INTEGER && e[0]->integer > 0) {
                ov->online = 1;
            }

            if (e[1]->type == REDIS_REPLY_INTEGER && e[1]->integer > ov->at)
            {
                ov->at = e[1]->integer;
            }
        }
    }

    if (--on->waiting) {
        return;
    }

    if (on->done) {
        ngx_http_chat_online_apply(on);
        on->done(on->data);
    }

    json_decref(on->answer);
    ngx_free(on);
}


static void
ngx_http_chat_online_apply(ngx_http_chat_online_t *on)
{
    json_t                       *seen;
    ngx_uint_t                    k;
    ngx_http_chat_online_view_t  *ov;

    for (k = 0; k < on->n; k++) {
        ov = &on->view[k];

        if (json_is_boolean(json_object_get(ov->view, "online"))) {
            json_object_set_new(ov->view, "online",
                                json_boolean(ov->online));
        }

        seen = json_object_get(ov->view, "lastSeen");

        /* Redis's is the latest: the document follows it by a batch */
        if (seen && !ov->online && ov->at > 0) {
            json_object_set_new(ov->view, "lastSeen",
                                ngx_http_chat_json_time(ov->at));
        }
    }

    ngx_http_chat_online_strip(on->answer);
}


/* a lastSeen nobody knows is left out, as if never seen */
static void
ngx_http_chat_online_strip(json_t *answer)
{
    size_t       i;
    json_t      *v, *e;
    const char  *key;

    ngx_http_chat_online_strip_one(answer);

    json_object_foreach(answer, key, v) {
        if (json_is_array(v)) {
            json_array_foreach(v, i, e) {
                ngx_http_chat_online_strip_one(e);
            }

        } else {
            ngx_http_chat_online_strip_one(v);
        }
    }
}


static void
ngx_http_chat_online_strip_one(json_t *v)
{
    if (json_is_null(json_object_get(v, "lastSeen"))) {
        json_object_del(v, "lastSeen");
    }
}


void
ngx_http_chat_online_cancel(ngx_http_chat_online_t *on)
{
    on->done = NULL;
    on->data = NULL;
}
