-- A custom sign-in rule, in two places:
--
-- hook(opts): the chat's sign-in hook (chat_lua_signin_hook on), called
-- once a code was right and before the session is made: numbers outside
-- opts.prefixes, or a device named in opts.banned_devices, are refused
-- (403 sign_in_refused with the reason).
--
--   init_worker_by_lua_block {
--       local chat = require "resty.chat"
--       chat.set_signin_hook(require("signin_rule").hook({
--           prefixes = { "+1628" }, banned_devices = { "emulator" } }))
--       chat.start()
--   }
--
-- check(prefixes): the same prefixes in the access phase of the sign-in
-- routes, so that a refused number never gets a code (no SMS paid for).
--
--   location /api/auth/ {
--       access_by_lua_block {
--           require("signin_rule").check({ "+1628" })
--       }
--       chat_api;
--   }

local cjson = require "cjson.safe"

local _M = {}


local function allowed(phone, prefixes)
    if type(phone) ~= "string" then
        return false
    end

    for _, p in ipairs(prefixes) do
        if phone:sub(1, #p) == p then
            return true
        end
    end

    return false
end


function _M.hook(opts)
    local banned = {}
    for _, d in ipairs(opts.banned_devices or {}) do
        banned[d] = true
    end

    return function(req)
        if opts.prefixes and not allowed(req.phone, opts.prefixes) then
            return false, "this number may not sign in here"
        end

        if banned[req.device] then
            return false, "this device may not sign in"
        end

        return true
    end
end


function _M.check(prefixes)
    local uri = ngx.var.uri
    if uri ~= "/api/auth/send-otp" and uri ~= "/api/auth/verify-otp" then
        return
    end

    ngx.req.read_body()
    local body = cjson.decode(ngx.req.get_body_data() or "")

    if type(body) == "table" and allowed(body.phone, prefixes) then
        return
    end

    ngx.status = 403
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode({ error = {
        code = "sign_in_refused",
        message = "this number may not sign in here",
    } }))

    return ngx.exit(403)
end


return _M
