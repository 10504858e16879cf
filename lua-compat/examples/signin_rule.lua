-- A custom sign-in rule: only phone numbers of the allowed prefixes may
-- sign in.  It runs in the access phase of the sign-in routes, before the
-- chat's own handler, so a refused number never gets a code.
--
--   location /api/auth/ {
--       access_by_lua_block {
--           require("signin_rule").check({ "+1628" })
--       }
--       chat_api;
--   }

local cjson = require "cjson.safe"

local _M = {}


function _M.check(prefixes)
    local uri = ngx.var.uri
    if uri ~= "/api/auth/send-otp" and uri ~= "/api/auth/verify-otp" then
        return
    end

    ngx.req.read_body()
    local body = cjson.decode(ngx.req.get_body_data() or "")
    local phone = type(body) == "table" and body.phone

    if type(phone) == "string" then
        for _, p in ipairs(prefixes) do
            if phone:sub(1, #p) == p then
                return
            end
        end
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
