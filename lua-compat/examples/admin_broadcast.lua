-- An admin broadcast endpoint: POST {userIds?, chatIds?, text} with the
-- admin secret in X-Admin-Secret; every socket of those users and chats
-- gets the event "announcement" {text, at}.
--
--   location = /admin/broadcast {
--       content_by_lua_block {
--           require("admin_broadcast").handle("the-admin-secret")
--       }
--   }

local chat = require "resty.chat"
local cjson = require "cjson.safe"

local _M = {}


local function answer(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(body))
    return ngx.exit(status)
end


function _M.handle(secret)
    if ngx.req.get_method() ~= "POST" then
        return answer(405, { error = { code = "method_not_allowed",
                                       message = "POST only" } })
    end

    if ngx.var.http_x_admin_secret ~= secret then
        return answer(403, { error = { code = "forbidden",
                                       message = "not an admin" } })
    end

    ngx.req.read_body()
    local body = cjson.decode(ngx.req.get_body_data() or "")

    if type(body) ~= "table" or type(body.text) ~= "string" then
        return answer(400, { error = { code = "invalid_request",
                                       message = "text is required" } })
    end

    local data = { text = body.text, at = ngx.utctime() }
    local sent = 0

    for _, id in ipairs(body.userIds or {}) do
        if chat.publish_user(id, "announcement", data) then
            sent = sent + 1
        end
    end

    for _, id in ipairs(body.chatIds or {}) do
        if chat.publish_chat(id, "announcement", data) then
            sent = sent + 1
        end
    end

    return answer(200, { published = sent })
end


return _M
