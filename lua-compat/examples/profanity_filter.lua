-- A message filter: words on the list are starred out (the message is
-- stored rewritten), a link to a blocked host refuses the message.
--
--   init_worker_by_lua_block {
--       local chat = require "resty.chat"
--       local profanity = require "profanity_filter"
--       chat.set_message_filter(profanity.filter)
--       chat.start()
--   }
--   chat_lua_message_filter on;      (http{}, with the chat's directives)

local _M = {
    words = { "darn", "heck" },
    blocked_hosts = { "evil.example" },
}


function _M.filter(msg)
    local content = msg.content
    if msg.type ~= "text" or type(content) ~= "table"
       or type(content.text) ~= "string"
    then
        return true
    end

    local text = content.text

    for _, host in ipairs(_M.blocked_hosts) do
        if text:lower():find("://" .. host, 1, true) then
            return false, "links to " .. host .. " are not allowed"
        end
    end

    local changed = false
    for _, word in ipairs(_M.words) do
        local from, to = ngx.re.find(text, [[\b]] .. word .. [[\b]], "ijo")
        while from do
            text = text:sub(1, from - 1) .. ("*"):rep(to - from + 1)
                   .. text:sub(to + 1)
            changed = true
            from, to = ngx.re.find(text, [[\b]] .. word .. [[\b]], "ijo")
        end
    end

    if changed then
        return text
    end

    return true
end


return _M
