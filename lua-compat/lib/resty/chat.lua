-- resty.chat: ngx_chat_module from lua-nginx-module, over LuaJIT's FFI.
--
-- The functions are the module's own (ngx_http_chat_ffi_*, in
-- ngx_chat_module/lua/): NGINX loads dynamic modules with RTLD_GLOBAL, so
-- ffi.C finds them.  A call that needs MongoDB or Redis starts the
-- operation and waits on an ngx.semaphore that its answer posts: the
-- coroutine yields, the worker goes on.  Usable wherever ngx.semaphore
-- waits: content_by_lua*, access_by_lua*, rewrite_by_lua*, ngx.timer.
--
-- Hooks are a registry in this module, run by a loop that start() begins
-- in init_worker_by_lua*; the module's directives (chat_lua_message_filter,
-- chat_lua_events) say which hooks the chat asks for.

local ffi = require "ffi"
local cjson = require "cjson.safe"
local semaphore = require "ngx.semaphore"

local C = ffi.C
local ffi_string = ffi.string
local ngx = ngx

ffi.cdef[[
typedef int (*ngx_http_chat_ffi_post_pt)(void *sem, int n);

typedef struct {
    double         id;
    int            kind;
    const char    *user;
    const char    *chat;
    const char    *type;
    const char    *json;
    size_t         len;
} ngx_http_chat_ffi_job_t;

int ngx_http_chat_ffi_publish(const char *kind, const char *id,
    size_t id_len, const char *event, const char *data, size_t len);
int ngx_http_chat_ffi_publish_socket(const char *sock, const char *event,
    const char *data, size_t len);
int ngx_http_chat_ffi_publish_session(const char *user,
    const char *session, const char *event, const char *data, size_t len);
int ngx_http_chat_ffi_check_token(const char *token, size_t len,
    char *user, char *session, const char **reason);
void *ngx_http_chat_ffi_check_session(const char *token, size_t len,
    char *user, char *session, void *sem, ngx_http_chat_ffi_post_pt post,
    const char **err);
void *ngx_http_chat_ffi_send(const char *user, const char *body, size_t len,
    void *sem, ngx_http_chat_ffi_post_pt post, const char **err);
void *ngx_http_chat_ffi_send_system(const char *chat, const char *actor,
    const char *content, size_t len, void *sem,
    ngx_http_chat_ffi_post_pt post, const char **err);
void *ngx_http_chat_ffi_chat(const char *user, const char *chat, void *sem,
    ngx_http_chat_ffi_post_pt post, const char **err);
void *ngx_http_chat_ffi_presence(const char *user, void *sem,
    ngx_http_chat_ffi_post_pt post, int *here, const char **err);
int ngx_http_chat_ffi_call_status(void *call);
const char *ngx_http_chat_ffi_call_answer(void *call, size_t *len);
void ngx_http_chat_ffi_call_free(void *call);

int ngx_http_chat_ffi_hooks_attach(void *sem, ngx_http_chat_ffi_post_pt post);
int ngx_http_chat_ffi_hook_next(ngx_http_chat_ffi_job_t *out);
int ngx_http_chat_ffi_hook_done(double id, int verdict, const char *text,
    size_t len);

int ngx_http_lua_ffi_sema_post(void *sem, int n);
]]

local _M = { _VERSION = "0.1" }

-- lua-nginx-module's post, as a plain function pointer for the module
local post = ffi.cast("ngx_http_chat_ffi_post_pt",
                      C.ngx_http_lua_ffi_sema_post)

local JOB_FILTER = 1
local JOB_EVENT = 2
local JOB_SIGNIN = 3
local JOB_SOCKET = 4

local errp = ffi.new("const char *[1]")
local herep = ffi.new("int[1]")
local lenp = ffi.new("size_t[1]")

_M.send_timeout = 10    -- seconds a send waits for its answer


local function encode(data)
    if type(data) == "string" then
        return data
    end
    return cjson.encode(data)
end


local function publish(kind, id, event, data)
    if type(id) ~= "string" or type(event) ~= "string" then
        return nil, "id and event must be strings"
    end

    local json = encode(data)
    if not json then
        return nil, "data cannot be encoded as JSON"
    end

    local rc
    if kind == "socket" then
        rc = C.ngx_http_chat_ffi_publish_socket(id, event, json, #json)
    else
        rc = C.ngx_http_chat_ffi_publish(kind, id, #id, event, json, #json)
    end

    if rc ~= 0 then
        return nil, "invalid id or data"
    end

    return true
end


-- an event {event, data} to every socket of a user, on every instance
function _M.publish_user(user_id, event, data)
    return publish("user", user_id, event, data)
end


-- an event to every socket of every member of a chat
function _M.publish_chat(chat_id, event, data)
    return publish("chat", chat_id, event, data)
end


-- an event to the sockets of one session of a user (one device's
-- sign-in; check_token gives a token's session)
function _M.publish_session(user_id, session_id, event, data)
    if type(user_id) ~= "string" or type(session_id) ~= "string"
       or type(event) ~= "string"
    then
        return nil, "ids and event must be strings"
    end

    local json = encode(data)
    if not json then
        return nil, "data cannot be encoded as JSON"
    end

    if C.ngx_http_chat_ffi_publish_session(user_id, session_id, event, json,
                                           #json) ~= 0
    then
        return nil, "invalid id or data"
    end

    return true
end


-- an event to one socket, by the socketId its sign-in hook was given
-- (chat_lua_socket_hook on), on whichever instance holds it
function _M.publish_socket(socket_id, event, data)
    return publish("socket", socket_id, event, data)
end


-- an access token as the REST gate checks it: {user, session} or nil, why
function _M.check_token(token)
    if type(token) ~= "string" then
        return nil, "no token"
    end

    local user = ffi.new("char[25]")
    local session = ffi.new("char[25]")

    if C.ngx_http_chat_ffi_check_token(token, #token, user, session, errp)
       ~= 0
    then
        return nil, ffi_string(errp[0])
    end

    return { user = ffi_string(user, 24), session = ffi_string(session, 24) }
end


-- A call the module started: waits on its semaphore (the coroutine
-- yields), then status, answer (a table)
local function wait_call(call, sema)
    -- freed when Lua lets it go; its finalizer keeps the semaphore
    -- alive till then, so the module never posts a freed one
    call = ffi.gc(call, function(c)
        C.ngx_http_chat_ffi_call_free(c)
        local _ = sema
    end)

    local ok, err = sema:wait(_M.send_timeout)
    if not ok then
        return nil, err
    end

    local status = C.ngx_http_chat_ffi_call_status(call)
    local p = C.ngx_http_chat_ffi_call_answer(call, lenp)
    local answer = p ~= nil and cjson.decode(ffi_string(p, lenp[0])) or nil

    return status, answer
end


local function refused(status)
    return status, { error = { code = "invalid_request",
                               message = ffi_string(errp[0]) } }
end


-- An access token checked as the REST gate checks it in full: the token,
-- then its session (and the token) not revoked, from Redis or MongoDB.
-- {user, session}, or nil, reason ("revoked", "unavailable", or why the
-- token itself is refused).  Yields.
function _M.check_session(token)
    if type(token) ~= "string" then
        return nil, "no token"
    end

    local user = ffi.new("char[25]")
    local session = ffi.new("char[25]")
    local sema = semaphore.new(0)

    local call = C.ngx_http_chat_ffi_check_session(token, #token, user,
                                                   session, sema.sem, post,
                                                   errp)
    if call == nil then
        return nil, ffi_string(errp[0])
    end

    local status = wait_call(call, sema)

    if status == 200 then
        return { user = ffi_string(user, 24),
                 session = ffi_string(session, 24) }
    end

    return nil, status == 401 and "revoked" or "unavailable"
end


-- A message {chatId, tempId, type?, content} sent as user_id, as
-- POST /api/messages sends it: status, answer (a table, REST's body).
-- Yields until the message is stored or refused.
function _M.send(user_id, message)
    local body = encode(message)
    if not body then
        return nil, "the message cannot be encoded as JSON"
    end

    local sema = semaphore.new(0)

    local call = C.ngx_http_chat_ffi_send(user_id, body, #body, sema.sem,
                                          post, errp)
    if call == nil then
        return refused(400)
    end

    return wait_call(call, sema)
end


-- A system message in a chat, content {action = "...", ...} (as the
-- group notices), on behalf of actor_id, a member (a bot, a moderator):
-- status, answer as send's.  Not filtered.
function _M.send_system(chat_id, actor_id, content)
    local body = encode(content)
    if not body or type(chat_id) ~= "string"
       or type(actor_id) ~= "string"
    then
        return 400, { error = { code = "invalid_request",
                                message = "chat id, actor id, content" } }
    end

    local sema = semaphore.new(0)

    local call = C.ngx_http_chat_ffi_send_system(chat_id, actor_id, body,
                                                 #body, sema.sem, post, errp)
    if call == nil then
        return refused(400)
    end

    return wait_call(call, sema)
end


-- A chat as its member user_id reads it (GET /api/chats/:id): status,
-- answer ({chat} with its members and their roles; 404 not a member)
function _M.get_chat(user_id, chat_id)
    if type(user_id) ~= "string" or type(chat_id) ~= "string" then
        return 400, { error = { code = "invalid_request",
                                message = "user id and chat id" } }
    end

    local sema = semaphore.new(0)

    local call = C.ngx_http_chat_ffi_chat(user_id, chat_id, sema.sem, post,
                                          errp)
    if call == nil then
        return refused(400)
    end

    return wait_call(call, sema)
end


-- the members of a chat as its member user_id sees them:
-- { [memberId] = role }, or nil, status, answer
function _M.members(user_id, chat_id)
    local status, answer = _M.get_chat(user_id, chat_id)
    if status ~= 200 then
        return nil, status, answer
    end

    -- chat.members is {count, ids, items = [{userId, role, joinedAt}]}
    local members = answer.chat.members or {}
    local admins = {}
    for _, id in ipairs(answer.chat.admins or {}) do
        admins[id] = true
    end

    local roles = {}
    for _, m in ipairs(members.items or {}) do
        roles[m.userId] = m.role
    end
    for _, id in ipairs(members.ids or {}) do
        roles[id] = roles[id] or (admins[id] and "admin" or "member")
    end

    return roles
end


-- member_id's role in the chat ("admin", "member"), or nil when not one
function _M.role(user_id, chat_id, member_id)
    local roles, status, answer = _M.members(user_id, chat_id)
    if not roles then
        return nil, status, answer
    end
    return roles[member_id]
end


-- Is user_id online: {online, workers, sockets, here} (workers: the live
-- workers of every instance counting a socket of theirs; sockets: their
-- sockets there, each worker's count written within 100 ms of a change;
-- here: their sockets in this worker, exact), or nil, err
function _M.presence(user_id)
    if type(user_id) ~= "string" then
        return nil, "invalid user id"
    end

    local sema = semaphore.new(0)

    local call = C.ngx_http_chat_ffi_presence(user_id, sema.sem, post,
                                              herep, errp)
    if call == nil then
        return nil, ffi_string(errp[0])
    end

    local here = herep[0]

    local status, answer = wait_call(call, sema)
    if status ~= 200 then
        return nil, "redis is not available"
    end

    return { online = answer.workers > 0, workers = answer.workers,
             sockets = answer.sockets, here = here }
end


-- hooks --------------------------------------------------------------

local filter
local signin_hook
local socket_hook
local subscribers = {}


-- fn(msg) with msg {userId, chatId, type, content} (content as the seed
-- sends it: a text is {type = "text", text}): nil or true accepts,
-- false, reason rejects (the sender reads reason), a string rewrites the
-- content's text; an error fails the send (503 filter_failed)
function _M.set_message_filter(fn)
    filter = fn
end


-- fn(req) with req {phone (E.164), device} for each sign-in whose code
-- was right, before its session is made (chat_lua_signin_hook on): nil or
-- true lets it in, false, reason refuses it (403 sign_in_refused with
-- reason); an error or no answer within chat_lua_hook_timeout answers
-- 503 signin_hook_failed
function _M.set_signin_hook(fn)
    signin_hook = fn
end


-- fn(sock) with sock {userId, sessionId, socketId, codec = "websocket" |
-- "socketio", transport = "websocket" | "polling", address} for each
-- socket that signs in, its token and session checked, before it is let
-- in (chat_lua_socket_hook on): nil or true lets it in, false, reason
-- refuses it (authentication_error with reason; the socket may try
-- again until its sign-in timeout); an error or no answer within
-- chat_lua_hook_timeout refuses it too
function _M.set_socket_hook(fn)
    socket_hook = fn
end


-- fn(ev) with ev {kind = "chat"|"user", id, event, data}, after the
-- commit, for the events chat_lua_events names
function _M.subscribe(event, fn)
    local list = subscribers[event]
    if not list then
        list = {}
        subscribers[event] = list
    end
    list[#list + 1] = fn
end


local function run_filter(premature, id, fn, msg, may_rewrite)
    if premature then
        return
    end

    local verdict, text = 0, ""

    local ok, res, reason = pcall(fn, msg)

    if not ok then
        verdict, text = 3, tostring(res)

    elseif res == false then
        verdict, text = 1, reason and tostring(reason) or ""

    elseif type(res) == "string" and may_rewrite then
        verdict, text = 2, res
    end

    C.ngx_http_chat_ffi_hook_done(id, verdict, text, #text)
end


local function run_event(premature, ev)
    if premature then
        return
    end

    for _, fn in ipairs(subscribers[ev.event] or {}) do
        local ok, err = pcall(fn, ev)
        if not ok then
            ngx.log(ngx.ERR, "resty.chat: subscriber of ", ev.event,
                    " failed: ", err)
        end
    end

    for _, fn in ipairs(subscribers["*"] or {}) do
        local ok, err = pcall(fn, ev)
        if not ok then
            ngx.log(ngx.ERR, "resty.chat: subscriber failed: ", err)
        end
    end
end


local function take(job)
    local id = job.id

    if job.kind == JOB_FILTER then
        local msg = {
            userId = ffi_string(job.user),
            chatId = ffi_string(job.chat),
            type = ffi_string(job.type),
            content = cjson.decode(ffi_string(job.json, job.len)),
        }

        -- a text is stored as its string: the filter sees the seed's form
        if type(msg.content) == "string" then
            msg.content = { type = msg.type, text = msg.content }
        end

        if not filter then
            C.ngx_http_chat_ffi_hook_done(id, 0, "", 0)
            return
        end

        local ok, err = ngx.timer.at(0, run_filter, id, filter, msg, true)
        if not ok then
            local why = "no timer: " .. tostring(err)
            C.ngx_http_chat_ffi_hook_done(id, 3, why, #why)
        end

    elseif job.kind == JOB_SIGNIN then
        local req = {
            phone = ffi_string(job.user),
            device = ffi_string(job.json, job.len),
        }

        if not signin_hook then
            C.ngx_http_chat_ffi_hook_done(id, 0, "", 0)
            return
        end

        local ok, err = ngx.timer.at(0, run_filter, id, signin_hook, req,
                                     false)
        if not ok then
            local why = "no timer: " .. tostring(err)
            C.ngx_http_chat_ffi_hook_done(id, 3, why, #why)
        end

    elseif job.kind == JOB_SOCKET then
        if not socket_hook then
            C.ngx_http_chat_ffi_hook_done(id, 0, "", 0)
            return
        end

        local sock = cjson.decode(ffi_string(job.json, job.len))

        local ok, err = ngx.timer.at(0, run_filter, id, socket_hook, sock,
                                     false)
        if not ok then
            local why = "no timer: " .. tostring(err)
            C.ngx_http_chat_ffi_hook_done(id, 3, why, #why)
        end

    elseif job.kind == JOB_EVENT then
        local ev = {
            kind = ffi_string(job.user),
            id = ffi_string(job.chat),
            event = ffi_string(job.type),
            data = cjson.decode(ffi_string(job.json, job.len)),
        }

        local ok, err = ngx.timer.at(0, run_event, ev)
        if not ok then
            ngx.log(ngx.ERR, "resty.chat: event ", ev.event, " lost: ", err)
        end
    end
end


local function run_loop(sema, job)
    while not ngx.worker.exiting() do
        sema:wait(1)

        while C.ngx_http_chat_ffi_hook_next(job) == 1 do
            take(job)
        end
    end
end


local function loop(premature)
    if premature then
        return
    end

    local sema = semaphore.new(0)
    local job = ffi.new("ngx_http_chat_ffi_job_t")

    C.ngx_http_chat_ffi_hooks_attach(sema.sem, post)

    -- whatever happens, the module forgets the semaphore before Lua
    -- may free it
    local ok, err = pcall(run_loop, sema, job)

    C.ngx_http_chat_ffi_hooks_attach(nil, nil)

    if not ok then
        ngx.log(ngx.ERR, "resty.chat: the hook loop failed: ", err)
    end
end


-- in init_worker_by_lua*: runs the hooks of this worker
function _M.start()
    local ok, err = ngx.timer.at(0, loop)
    if not ok then
        return nil, err
    end
    return true
end


return _M

