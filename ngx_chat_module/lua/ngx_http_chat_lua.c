/*
 * Copyright (C) ngx_chat_module authors
 *
 * lua-compat's hooks: the site's message filter and event subscriptions,
 * run by Lua code in the same worker.  A hook is a job in the worker's
 * queue; resty.chat's loop (a timer of lua-nginx-module) waits on an
 * ngx.semaphore that a new job posts, takes the jobs and runs each in its
 * own timer, where Lua may yield (cosockets, ngx.sleep).  A filter's
 * verdict comes back through ngx_http_chat_ffi_hook_done(); one that does
 * not come within chat_lua_hook_timeout answers the send with an error.
 * Nothing here waits: the worker never blocks on Lua.
 */


#include "ngx_http_chat_lua.h"
#include "../core/ngx_http_chat_events.h"


#define NGX_HTTP_CHAT_LUA_QUEUE_MAX  10000


typedef struct {
    ngx_flag_t                     message_filter;
    ngx_flag_t                     signin_hook;
    ngx_flag_t                     socket_hook;
    ngx_array_t                   *events;      /* of ngx_str_t */
    ngx_msec_t                     timeout;
} ngx_http_chat_lua_conf_t;


typedef struct {
    ngx_queue_t                    queue;
    ngx_event_t                    timer;       /* a filter's deadline */
    uint64_t                       id;
    int                            kind;
    ngx_http_chat_filter_done_pt   done;
    void                          *data;
    char                           a[32];
    char                           b[32];
    char                           c[64];
    size_t                         len;
    u_char                        *json;        /* after the struct */
    ngx_uint_t                     pending;     /* 1 till Lua takes it */
} ngx_http_chat_lua_job_t;


static void *ngx_http_chat_lua_create_conf(ngx_conf_t *cf);
static char *ngx_http_chat_lua_init_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_http_chat_lua_postconf(ngx_conf_t *cf);
static char *ngx_http_chat_lua_flag(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_chat_lua_events_set(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_chat_lua_filter(u_char *user, u_char *chat,
    const char *type, u_char *content, size_t len,
    ngx_http_chat_filter_done_pt done, void *data);
static void ngx_http_chat_lua_committed(const char *kind, ngx_str_t *id,
    const char *event, json_t *data);
static ngx_int_t ngx_http_chat_lua_signin(ngx_str_t *phone,
    ngx_str_t *device, ngx_http_chat_filter_done_pt done, void *data,
    void **handle);
static void ngx_http_chat_lua_cancel(void *handle);
static ngx_int_t ngx_http_chat_lua_socket_signin(u_char *what, size_t len,
    ngx_http_chat_filter_done_pt done, void *data);
static const char *ngx_http_chat_lua_hook_name(int kind);
static ngx_http_chat_lua_job_t *ngx_http_chat_lua_hook_job(int kind,
    u_char *json, size_t len, ngx_http_chat_filter_done_pt done, void *data);
static void ngx_http_chat_lua_hook_start(ngx_http_chat_lua_job_t *job);
static ngx_http_chat_lua_job_t *ngx_http_chat_lua_job(int kind,
    u_char *json, size_t len);
static void ngx_http_chat_lua_timeout(ngx_event_t *ev);
static void ngx_http_chat_lua_answer(ngx_http_chat_lua_job_t *job,
    ngx_int_t rc, u_char *content, size_t len, const char *reason);


static ngx_command_t  ngx_http_chat_lua_commands[] = {

    { ngx_string("chat_lua_message_filter"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_http_chat_lua_flag,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_lua_conf_t, message_filter),
      NULL },

    { ngx_string("chat_lua_signin_hook"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_http_chat_lua_flag,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_lua_conf_t, signin_hook),
      NULL },

    { ngx_string("chat_lua_socket_hook"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_http_chat_lua_flag,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_lua_conf_t, socket_hook),
      NULL },

    { ngx_string("chat_lua_events"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_chat_lua_events_set,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_lua_hook_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_chat_lua_conf_t, timeout),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_chat_lua_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_chat_lua_postconf,            /* postconfiguration */

    ngx_http_chat_lua_create_conf,         /* create main configuration */
    ngx_http_chat_lua_init_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_chat_lua_module = {
    NGX_MODULE_V1,
    &ngx_http_chat_lua_module_ctx,         /* module context */
    ngx_http_chat_lua_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* the worker's jobs: waiting for Lua, and filters Lua is running */
static ngx_queue_t                 ngx_http_chat_lua_pending;
static ngx_queue_t                 ngx_http_chat_lua_taken;
static ngx_uint_t                  ngx_http_chat_lua_npending;
static uint64_t                    ngx_http_chat_lua_next_id;
static ngx_http_chat_lua_job_t    *ngx_http_chat_lua_given;
static void                       *ngx_http_chat_lua_sem;
static ngx_http_chat_ffi_post_pt   ngx_http_chat_lua_post;


static void *
ngx_http_chat_lua_create_conf(ngx_conf_t *cf)
{
    ngx_http_chat_lua_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_chat_lua_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    lcf->message_filter = NGX_CONF_UNSET;
    lcf->signin_hook = NGX_CONF_UNSET;
    lcf->socket_hook = NGX_CONF_UNSET;
    lcf->timeout = NGX_CONF_UNSET_MSEC;

    return lcf;
}


static char *
ngx_http_chat_lua_init_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_chat_lua_conf_t  *lcf = conf;

    ngx_conf_init_value(lcf->message_filter, 0);
    ngx_conf_init_value(lcf->signin_hook, 0);
    ngx_conf_init_value(lcf->socket_hook, 0);
    ngx_conf_init_msec_value(lcf->timeout, 1000);

    return NGX_CONF_OK;
}


/*
 * A hook runs Lua: without lua-nginx-module loaded (load_module before
 * http{}) it could never run, so the configuration is refused.
 */

static char *
ngx_http_chat_lua_need_lua(ngx_conf_t *cf, ngx_command_t *cmd)
{
    ngx_uint_t  i;

    for (i = 0; cf->cycle->modules[i]; i++) {
        if (ngx_strcmp(cf->cycle->modules[i]->name, "ngx_http_lua_module")
            == 0)
        {
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" needs lua-nginx-module: load "
                       "ngx_http_lua_module (and ndk_http_module) with "
                       "load_module before the http block", &cmd->name);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_chat_lua_flag(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* the flag just set, whichever it is */
    if (*(ngx_flag_t *) ((char *) conf + cmd->offset) == 1) {
        return ngx_http_chat_lua_need_lua(cf, cmd);
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_chat_lua_events_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_chat_lua_conf_t  *lcf = conf;

    ngx_str_t   *value, *e;
    ngx_uint_t   i;

    if (lcf->events) {
        return "is duplicate";
    }

    if (ngx_http_chat_lua_need_lua(cf, cmd) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    lcf->events = ngx_array_create(cf->pool, cf->args->nelts,
                                   sizeof(ngx_str_t));
    if (lcf->events == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0 || value[i].len >= 64) {
            return "takes event names of 1 to 63 characters";
        }

        e = ngx_array_push(lcf->events);
        if (e == NULL) {
            return NGX_CONF_ERROR;
        }

        *e = value[i];
    }

    return NGX_CONF_OK;
}


/* the slots of core's event interface, set or cleared at each start */

static ngx_int_t
ngx_http_chat_lua_postconf(ngx_conf_t *cf)
{
    ngx_http_chat_lua_conf_t  *lcf;

    lcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_chat_lua_module);

    ngx_http_chat_events.filter = lcf->message_filter
                                  ? ngx_http_chat_lua_filter : NULL;
    ngx_http_chat_events.committed = lcf->events
                                     ? ngx_http_chat_lua_committed : NULL;
    ngx_http_chat_events.signin = lcf->signin_hook
                                  ? ngx_http_chat_lua_signin : NULL;
    ngx_http_chat_events.cancel = ngx_http_chat_lua_cancel;
    ngx_http_chat_events.socket_signin = lcf->socket_hook
                                         ? ngx_http_chat_lua_socket_signin
                                         : NULL;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "chat lua: message filter %s",
                   lcf->message_filter ? "on" : "off");

    return NGX_OK;
}


static ngx_http_chat_lua_job_t *
ngx_http_chat_lua_job(int kind, u_char *json, size_t len)
{
    ngx_http_chat_lua_job_t  *job;

    if (ngx_http_chat_lua_sem == NULL
        || ngx_http_chat_lua_npending >= NGX_HTTP_CHAT_LUA_QUEUE_MAX)
    {
        return NULL;
    }

    job = ngx_calloc(sizeof(ngx_http_chat_lua_job_t) + len + 1,
                     ngx_cycle->log);
    if (job == NULL) {
        return NULL;
    }

    job->id = ++ngx_http_chat_lua_next_id;
    job->kind = kind;
    job->len = len;
    job->json = (u_char *) (job + 1);
    ngx_memcpy(job->json, json, len);

    return job;
}


static void
ngx_http_chat_lua_enqueue(ngx_http_chat_lua_job_t *job)
{
    if (ngx_http_chat_lua_pending.next == NULL) {
        ngx_queue_init(&ngx_http_chat_lua_pending);
        ngx_queue_init(&ngx_http_chat_lua_taken);
    }

    ngx_queue_insert_tail(&ngx_http_chat_lua_pending, &job->queue);
    ngx_http_chat_lua_npending++;
    job->pending = 1;

    /* wakes resty.chat's loop, on the next turn of the event loop */
    (void) ngx_http_chat_lua_post(ngx_http_chat_lua_sem, 1);
}


/* a hook's job, its verdict for done(data); NULL: no Lua loop here */

static ngx_http_chat_lua_job_t *
ngx_http_chat_lua_hook_job(int kind, u_char *json, size_t len,
    ngx_http_chat_filter_done_pt done, void *data)
{
    ngx_http_chat_lua_job_t  *job;

    job = ngx_http_chat_lua_job(kind, json, len);
    if (job == NULL) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat lua: the %s is not running "
                      "(resty.chat's start() in init_worker_by_lua)",
                      ngx_http_chat_lua_hook_name(kind));
        return NULL;
    }

    job->done = done;
    job->data = data;

    return job;
}


/*
 * Not cancelable: an exiting worker waits for the verdict or the
 * deadline, so the hook's caller always hears one.
 */
static void
ngx_http_chat_lua_hook_start(ngx_http_chat_lua_job_t *job)
{
    ngx_http_chat_lua_conf_t  *lcf;

    lcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                              ngx_http_chat_lua_module);

    job->timer.handler = ngx_http_chat_lua_timeout;
    job->timer.data = job;
    job->timer.log = ngx_cycle->log;
    ngx_add_timer(&job->timer, lcf->timeout);

    ngx_http_chat_lua_enqueue(job);
}


static ngx_int_t
ngx_http_chat_lua_filter(u_char *user, u_char *chat, const char *type,
    u_char *content, size_t len, ngx_http_chat_filter_done_pt done,
    void *data)
{
    ngx_http_chat_lua_job_t  *job;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "chat lua: message of %s to %s for the filter",
                   user, chat);

    /* no Lua loop in this worker: the filter cannot say yes */
    job = ngx_http_chat_lua_hook_job(NGX_HTTP_CHAT_LUA_JOB_FILTER, content,
                                     len, done, data);
    if (job == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(job->a, user, 24);
    ngx_memcpy(job->b, chat, 24);
    ngx_cpystrn((u_char *) job->c, (u_char *) type, sizeof(job->c));

    ngx_http_chat_lua_hook_start(job);

    return NGX_OK;
}


static ngx_int_t
ngx_http_chat_lua_signin(ngx_str_t *phone, ngx_str_t *device,
    ngx_http_chat_filter_done_pt done, void *data, void **handle)
{
    ngx_http_chat_lua_job_t  *job;

    /* the device's name in the job's text, the phone in its first slot */
    job = ngx_http_chat_lua_hook_job(NGX_HTTP_CHAT_LUA_JOB_SIGNIN,
                                     device->data, device->len, done, data);
    if (job == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) job->a, phone->data,
                ngx_min(sizeof(job->a), phone->len + 1));

    ngx_http_chat_lua_hook_start(job);

    *handle = job;

    return NGX_OK;
}


/*
 * A socket signed in (its token and session checked): the site's hook
 * says whether it may stay.  Not cancelable: the socket's side holds what
 * it needs until the verdict or the deadline, whichever comes first.
 */

static ngx_int_t
ngx_http_chat_lua_socket_signin(u_char *what, size_t len,
    ngx_http_chat_filter_done_pt done, void *data)
{
    ngx_http_chat_lua_job_t  *job;

    job = ngx_http_chat_lua_hook_job(NGX_HTTP_CHAT_LUA_JOB_SOCKET, what, len,
                                     done, data);
    if (job == NULL) {
        return NGX_ERROR;
    }

    ngx_http_chat_lua_hook_start(job);

    return NGX_OK;
}


/* the requester went: the verdict, when it comes, goes to nobody */

static void
ngx_http_chat_lua_cancel(void *handle)
{
    ngx_http_chat_lua_job_t  *job = handle;

    job->done = NULL;
    job->data = NULL;
}


static void
ngx_http_chat_lua_committed(const char *kind, ngx_str_t *id,
    const char *event, json_t *data)
{
    char                      *json;
    size_t                     n;
    ngx_str_t                 *e;
    ngx_uint_t                 i;
    ngx_http_chat_lua_job_t   *job;
    ngx_http_chat_lua_conf_t  *lcf;

    lcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                              ngx_http_chat_lua_module);
    if (lcf == NULL || lcf->events == NULL) {
        return;
    }

    e = lcf->events->elts;
    n = ngx_strlen(event);

    for (i = 0; i < lcf->events->nelts; i++) {
        if ((e[i].len == 1 && e[i].data[0] == '*')
            || (e[i].len == n && ngx_strncmp(e[i].data, event, n) == 0))
        {
            break;
        }
    }

    if (i == lcf->events->nelts || ngx_http_chat_lua_sem == NULL) {
        return;
    }

    json = json_dumps(data, JSON_COMPACT);
    if (json == NULL) {
        return;
    }

    job = ngx_http_chat_lua_job(NGX_HTTP_CHAT_LUA_JOB_EVENT, (u_char *) json,
                                ngx_strlen(json));
    free(json);

    if (job == NULL) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat lua: event \"%s\" not given to Lua", event);
        return;
    }

    /* "chat:" and "user:" without their colon */
    ngx_cpystrn((u_char *) job->a, (u_char *) kind,
                ngx_min(sizeof(job->a), ngx_strlen(kind)));
    ngx_cpystrn((u_char *) job->b, id->data,
                ngx_min(sizeof(job->b), id->len + 1));
    ngx_cpystrn((u_char *) job->c, (u_char *) event, sizeof(job->c));

    ngx_http_chat_lua_enqueue(job);
}


static void
ngx_http_chat_lua_timeout(ngx_event_t *ev)
{
    ngx_http_chat_lua_job_t  *job = ev->data;

    u_char  what[64];

    ngx_sprintf(what, "the %s did not answer in time%Z",
                ngx_http_chat_lua_hook_name(job->kind));

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0, "chat lua: %s", what);

    ngx_http_chat_lua_answer(job, NGX_ERROR, NULL, 0, (char *) what);
}


static const char *
ngx_http_chat_lua_hook_name(int kind)
{
    switch (kind) {

    case NGX_HTTP_CHAT_LUA_JOB_SIGNIN:
        return "sign-in hook";

    case NGX_HTTP_CHAT_LUA_JOB_SOCKET:
        return "socket hook";

    default:
        return "message filter";
    }
}


/* a filter's outcome to its send, once; the job is freed */

static void
ngx_http_chat_lua_answer(ngx_http_chat_lua_job_t *job, ngx_int_t rc,
    u_char *content, size_t len, const char *reason)
{
    if (job->timer.timer_set) {
        ngx_del_timer(&job->timer);
    }

    ngx_queue_remove(&job->queue);

    if (job->kind != NGX_HTTP_CHAT_LUA_JOB_EVENT) {
        /* a job still pending counts till taken */
        ngx_http_chat_lua_npending -= job->pending;
        job->pending = 0;
    }

    if (job->done) {
        job->done(job->data, rc, content, len, reason);
    }

    ngx_free(job);
}


/* resty.chat's loop starts (sem, post) or stops (NULL) in this worker */

int
ngx_http_chat_ffi_hooks_attach(void *sem, ngx_http_chat_ffi_post_pt post)
{
    ngx_http_chat_lua_sem = sem;
    ngx_http_chat_lua_post = post;

    if (sem && ngx_http_chat_lua_pending.next
        && !ngx_queue_empty(&ngx_http_chat_lua_pending))
    {
        (void) post(sem, 1);
    }

    return 0;
}


/*
 * The next job for Lua: 1 and out filled (its strings valid until the
 * next call), or 0.  A filter stays in the worker until its verdict or
 * its deadline; an event is done once given.
 */

int
ngx_http_chat_ffi_hook_next(ngx_http_chat_ffi_job_t *out)
{
    ngx_queue_t              *q;
    ngx_http_chat_lua_job_t  *job;

    if (ngx_http_chat_lua_given) {
        ngx_free(ngx_http_chat_lua_given);
        ngx_http_chat_lua_given = NULL;
    }

    if (ngx_http_chat_lua_pending.next == NULL
        || ngx_queue_empty(&ngx_http_chat_lua_pending))
    {
        return 0;
    }

    q = ngx_queue_head(&ngx_http_chat_lua_pending);
    job = ngx_queue_data(q, ngx_http_chat_lua_job_t, queue);

    ngx_queue_remove(q);
    ngx_http_chat_lua_npending--;
    job->pending = 0;

    if (job->kind != NGX_HTTP_CHAT_LUA_JOB_EVENT) {
        ngx_queue_insert_tail(&ngx_http_chat_lua_taken, q);

    } else {
        ngx_http_chat_lua_given = job;
    }

    out->id = (double) job->id;
    out->kind = job->kind;
    out->user = job->a;
    out->chat = job->b;
    out->type = job->c;
    out->json = (const char *) job->json;
    out->len = job->len;

    return 1;
}


/*
 * A filter's verdict: 0 accept, 1 reject (text: the reason the sender
 * reads), 2 rewrite (text: the new "text" of the content), 3 the filter
 * failed (text: what for the log).  0, or -1 when the job is gone (its
 * deadline passed) or the verdict is not one of those.
 */

int
ngx_http_chat_ffi_hook_done(double id, int verdict, const char *text,
    size_t len)
{
    char                     *dumped;
    json_t                   *content;
    ngx_queue_t              *q;
    json_error_t              err;
    ngx_http_chat_lua_job_t  *job;

    if (ngx_http_chat_lua_taken.next == NULL) {
        return -1;
    }

    for (q = ngx_queue_head(&ngx_http_chat_lua_taken);
         q != ngx_queue_sentinel(&ngx_http_chat_lua_taken);
         q = ngx_queue_next(q))
    {
        job = ngx_queue_data(q, ngx_http_chat_lua_job_t, queue);

        if ((double) job->id == id) {
            goto found;
        }
    }

    return -1;

found:

    switch (verdict) {

    case 0:
        ngx_http_chat_lua_answer(job, NGX_OK, NULL, 0, NULL);
        return 0;

    case 1:
        dumped = ngx_alloc(len + 1, ngx_cycle->log);
        if (dumped == NULL) {
            ngx_http_chat_lua_answer(job, NGX_BUSY, NULL, 0,
                                     "the message was rejected");
            return 0;
        }

        ngx_memcpy(dumped, text, len);
        dumped[len] = '\0';

        ngx_http_chat_lua_answer(job, NGX_BUSY, NULL, 0,
                                 len ? dumped
                                 : job->kind == NGX_HTTP_CHAT_LUA_JOB_FILTER
                                 ? "the message was rejected"
                                 : "this sign-in was refused");
        ngx_free(dumped);
        return 0;

    case 2:
        if (job->kind != NGX_HTTP_CHAT_LUA_JOB_FILTER) {
            return -1;
        }

        content = json_loadb((char *) job->json, job->len,
                             JSON_DECODE_ANY, &err);

        if (json_is_string(content)) {
            /* a text is stored as its string */
            json_decref(content);
            content = json_stringn(text, len);

        } else if (json_is_object(content)
                   && json_object_set_new(content, "text",
                                          json_stringn(text, len))
                      != 0)
        {
            json_decref(content);
            content = NULL;
        }

        if (content == NULL) {
            json_decref(content);
            ngx_http_chat_lua_answer(job, NGX_ERROR, NULL, 0,
                                     "the message filter failed");
            return 0;
        }

        dumped = json_dumps(content, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(content);

        if (dumped == NULL) {
            ngx_http_chat_lua_answer(job, NGX_ERROR, NULL, 0,
                                     "the message filter failed");
            return 0;
        }

        ngx_http_chat_lua_answer(job, NGX_OK, (u_char *) dumped,
                                 ngx_strlen(dumped), NULL);
        free(dumped);
        return 0;

    case 3:
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "chat lua: the %s failed: \"%*s\"",
                      ngx_http_chat_lua_hook_name(job->kind), len, text);
        ngx_http_chat_lua_answer(job, NGX_ERROR, NULL, 0,
                                 job->kind == NGX_HTTP_CHAT_LUA_JOB_SIGNIN
                                 ? "the sign-in hook failed"
                                 : job->kind == NGX_HTTP_CHAT_LUA_JOB_SOCKET
                                 ? "the socket hook failed"
                                 : "the message filter failed");
        return 0;

    default:
        return -1;
    }
}
