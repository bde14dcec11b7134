-- An engine script in the shape of the original tutorial's first entry.lua (written for these
-- tests): each text frame is queued as the JSON text of { frame = <frame>, uid = <context uid> },
-- with no handshake or close events and no event names; after an auth frame the connection
-- waits for the context value uid.

require("prettyprint")
local websocket = require("protocols/websocket")

local topic = "chat"

function init()
    mix.queue.new(topic, 100)
end

function on_connect(conn)
end

function on_close(err, conn)
end

function protocol_input(buf, conn)
    return websocket.input(buf, conn, "/chat")
end

function protocol_decode(str, conn)
    return websocket.decode(conn)
end

function protocol_encode(str, conn)
    return websocket.encode(str)
end

function on_message(data, conn)
    if data["type"] ~= "text" then
        return
    end
    -- Pushed as text, as the tutorial did: the consumer must decode the string.
    local text, err = mix.json_encode({ frame = data, uid = conn:context()["uid"] })
    if err then
        mix.log(mix.DEBUG, "json_encode error: " .. err)
        return
    end
    local request, err = mix.json_decode(data["data"])
    if err then
        mix.log(mix.DEBUG, "json_decode error: " .. err)
        return
    end
    local _, err = mix.queue.push(topic, text)
    if err then
        mix.log(mix.DEBUG, "queue push error: " .. err)
        return
    end
    if request["op"] == "auth" then
        conn:wait_context_value("uid")
    end
end
