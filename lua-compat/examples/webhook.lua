-- A webhook on new messages: after each message is stored, its event is
-- POSTed as JSON to a URL (plain HTTP, from a cosocket: this runs in a
-- timer, where ngx.location.capture is not available).
--
--   chat_lua_events new_message;      (http{})
--   init_worker_by_lua_block {
--       local chat = require "resty.chat"
--       require("webhook").start("http://127.0.0.1:8080/hook")
--       chat.start()
--   }

local chat = require "resty.chat"
local cjson = require "cjson.safe"

local _M = {}


local function post(url, body)
    local host, port, path = url:match("^http://([^:/]+):?(%d*)(/?.*)$")
    if not host then
        return nil, "not an http:// URL: " .. url
    end

    local sock = ngx.socket.tcp()
    sock:settimeout(5000)

    local ok, err = sock:connect(host, tonumber(port) or 80)
    if not ok then
        return nil, err
    end

    local req = "POST " .. (path ~= "" and path or "/") .. " HTTP/1.1\r\n"
                .. "Host: " .. host .. "\r\n"
                .. "Content-Type: application/json\r\n"
                .. "Content-Length: " .. #body .. "\r\n"
                .. "Connection: close\r\n\r\n" .. body

    ok, err = sock:send(req)
    if not ok then
        sock:close()
        return nil, err
    end

    local status = sock:receive("*l")
    sock:close()

    return status
end


function _M.start(url)
    chat.subscribe("new_message", function(ev)
        local message = ev.data and ev.data.message or {}
        local body = cjson.encode({
            event = ev.event,
            chatId = ev.id,
            messageId = message.id,
            senderId = message.senderId,
            content = message.content,
        })

        local status, err = post(url, body)
        if not status then
            ngx.log(ngx.WARN, "webhook ", url, ": ", err)
        end
    end)
end


return _M
