-- Chat entry script for a CONNMIX engine node that queues browser events on Redis instead of the
-- engine's memory queue, for chat-consumer --source redis-stream (the default here) or
-- --source redis-list.
--
-- The events are those of entry.lua ({event = "handshake" | "message" | "close", ...}) with two
-- more fields, because a consumer that reads Redis cannot tell which connection an entry is for:
--   node      = this node's id as the center lists it (server option `node_id`)
--   client_id = conn:client_id()
--
-- Server options (connmix.yaml, `servers[].options`; connmix-mock: --server-option NAME=VALUE):
--   node_id      this node's id, as the center lists it (the mock sets it itself)
--   redis_queue  `stream` (XADD, read by a consumer group: at least once) or `list`
--                (LPUSH, read with BRPOP: at most once, as the tutorial's Redis example)
--   redis_key    the stream or list key; must match chat-consumer --queue (default `chat`)
-- Redis connection: `redis` named `chat` (connmix.yaml `redis:`; connmix-mock: --redis chat=URL).

local websocket = require("protocols/websocket")

local CHAT_PATH = "/chat"
local AUTH_OP = "auth"
local AUTH_KEY = "uid"
-- A stream keeps about this many entries; consumers acknowledge long before.
local STREAM_MAXLEN = "100000"

local function option(name, default)
    local value = mix.server.option(name)
    if value == nil or value == "" then
        return default
    end
    return value
end

local NODE_ID = option("node_id", "")
local MODE = option("redis_queue", "stream")
local KEY = option("redis_key", "chat")

-- Queues a value on Redis; a failure closes the connection rather than silently dropping what
-- the browser sent.
local function enqueue(conn, value)
    value["node"] = NODE_ID
    value["client_id"] = conn:client_id()
    local text, err = mix.json_encode(value)
    if err then
        mix.log(mix.ERROR, "cannot encode a chat event: " .. err)
        conn:close()
        return false
    end
    local redis, rerr = mix.redis.connection("chat")
    if rerr then
        mix.log(mix.ERROR, "no redis connection `chat`, closing connection: " .. rerr)
        conn:close()
        return false
    end
    local _, cerr
    if MODE == "list" then
        _, cerr = redis:command("LPUSH", KEY, text)
    else
        _, cerr = redis:command("XADD", KEY, "MAXLEN", "~", STREAM_MAXLEN, "*", "data", text)
    end
    if cerr then
        mix.log(mix.ERROR, "chat event push to redis failed, closing connection: " .. cerr)
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
        -- Hold this connection's next frames until a consumer has answered the login.
        conn:wait_context_value(AUTH_KEY)
    end
end
