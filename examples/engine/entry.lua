-- Chat entry script for a CONNMIX engine node, to use with connmix-rs's chat-consumer.
--
-- It turns every browser event into a value on the memory queue CHAT_TOPIC, which the consumers
-- take with `queue.pop`:
--   connection opened  -> { event = "handshake", headers = <upgrade request headers> }
--   JSON text frame    -> { event = "message", uid = <context uid>, frame = <frame> }
--                         (auth frames also carry the handshake headers)
--   connection closed  -> { event = "close", uid = <context uid> }
-- After an auth frame the connection waits until a consumer sets the context value AUTH_KEY.
-- chat-consumer always sets it: to the user id on success and to 0 on any failure, so no
-- connection is left waiting.

local websocket = require("protocols/websocket")

local CHAT_TOPIC = "chat"   -- must match chat-consumer --queue
local CHAT_PATH = "/chat"   -- the browser connects to ws://<node>:6790/chat
local AUTH_OP = "auth"
local AUTH_KEY = "uid"

-- Queues a value; a full queue (engine.luavm.queue.topicSize) closes the connection rather than
-- silently dropping what the browser sent.
local function enqueue(conn, value)
    local _, err = mix.queue.push(CHAT_TOPIC, value)
    if err then
        mix.log(mix.ERROR, "chat queue push failed, closing connection: " .. err)
        conn:close()
        return false
    end
    return true
end

local function on_handshake(headers, conn)
    conn:set_context_value("headers", headers)
    enqueue(conn, { event = "handshake", headers = headers })
end

function on_connect(conn)
end

function on_close(err, conn)
    enqueue(conn, { event = "close", uid = conn:context()[AUTH_KEY] })
end

function protocol_input(buf, conn)
    return websocket.input(buf, conn, CHAT_PATH, on_handshake)
end

function protocol_decode(str, conn)
    return websocket.decode(conn)
end

function protocol_encode(str, conn)
    return websocket.encode(str)
end

function on_message(frame, conn)
    if frame["type"] ~= "text" then
        return
    end
    -- Frames that are not JSON are dropped here; the consumer never sees them.
    local request, err = mix.json_decode(frame["data"])
    if err then
        mix.log(mix.DEBUG, "dropping a frame that is not JSON: " .. err)
        return
    end

    local context = conn:context()
    local is_auth = request["op"] == AUTH_OP
    local value = { event = "message", uid = context[AUTH_KEY], frame = frame }
    if is_auth then
        value["headers"] = context["headers"]
    end
    if not enqueue(conn, value) then
        return
    end

    if is_auth then
        -- Hold this connection's next frames until the consumer has answered the login, so that
        -- they are queued with the right uid.
        conn:wait_context_value(AUTH_KEY)
    end
end
