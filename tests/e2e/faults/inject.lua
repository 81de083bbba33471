-- A `luari sim-server --script` that adds fault injection to the simulator:
--   POST /sim/fault/ws   {kind = ...}  bad input on every events WebSocket:
--     malformed | untyped | unknown_channel | utf8 | binary | oversized (size) | midframe
--   POST /sim/fault/ws-refuse {seconds}: events WebSocket upgrades get 503 meanwhile
--   POST /sim/fault/lose-stasis-start {count}: the next `count` (default 1)
--     StasisStart events are not sent (lost on the way)
--   POST /sim/fault/ws-slam {seconds}: events WebSockets are accepted, then
--     closed (1011) at once, meanwhile; GET /sim/fault/ws-slam counts them
--   POST /sim/fault/rest {match = "/ari/...", method, status, message, delay, truncate, count}
--     the next `count` (default 1) REST requests whose path contains `match`
--     get `status` (without being done), or are answered `delay` seconds
--     late, or have their body cut after `truncate` bytes. Requests over
--     the events WebSocket (RESTRequest) take `status` and `delay` too.

local json = require "luari.json"
local loop = require "luari.loop"

local function ws_fault(server, data)
  local kind = data.kind
  local n = 0
  for conn in pairs(server.conns) do
    n = n + 1
    if kind == "malformed" then
      conn:send('{"type": "StasisStart", "channel": {"id": ')
    elseif kind == "untyped" then
      conn:send('[1, 2, 3]')
    elseif kind == "unknown_channel" then
      conn:send(json.encode({ type = "ChannelDtmfReceived", digit = "5", duration_ms = 100,
        channel = { id = "no-such-channel", name = "PJSIP/ghost", state = "Up" },
        application = "luari", timestamp = server.model:timestamp() }))
    elseif kind == "utf8" then
      conn:send('{"type": "ChannelVarset", "variable": "X", "value": "\255\254"}')
    elseif kind == "binary" then
      conn:send_binary("\0\1\2\3")
    elseif kind == "oversized" then
      conn:send('{"type": "ChannelVarset", "value": "' .. string.rep("x", tonumber(data.size) or 2000000) .. '"}')
    elseif kind == "midframe" then
      -- A text frame header announcing 100 bytes, 10 of them, then the end.
      conn:send_raw("\129\100" .. "0123456789")
      conn:close(0)
    else
      return 400, { message = "unknown ws fault " .. tostring(kind) }
    end
  end
  return 200, { sockets = n }
end

-- A request object that answers with its body cut after n bytes.
local function truncating(req, n)
  return setmetatable({}, {
    __index = function(_, k)
      if k == "respond" then
        return function(_, status, headers, body)
          return req:respond(status, headers, body, nil, n)
        end
      end
      return function(_, ...)
        return req[k](req, ...)
      end
    end,
  })
end

return function(server)
  local rules = {}
  local refuse_until, slam_until, slammed = 0, 0, 0
  local lose_stasis_start = 0
  local emit = server.emit
  server.emit = function(self, app, event)
    if event.type == "StasisStart" and lose_stasis_start > 0 then
      lose_stasis_start = lose_stasis_start - 1
      return
    end
    return emit(self, app, event)
  end
  local on_ws_open = server.on_ws_open
  server.on_ws_open = function(self, conn)
    on_ws_open(self, conn)
    if loop.now() < slam_until then
      slammed = slammed + 1
      conn:close(1011)
    end
  end
  local websocket_request = server.websocket_request
  server.websocket_request = function(self, req, query)
    if loop.now() < refuse_until then
      req:respond(503, { ["Content-Type"] = "application/json" }, json.encode({ message = "Service Unavailable" }))
      return
    end
    return websocket_request(self, req, query)
  end
  local control = server.control_request
  server.control_request = function(self, method, path, data)
    if method == "POST" and path == "/sim/fault/ws" then
      return ws_fault(self, data)
    elseif method == "POST" and path == "/sim/fault/ws-refuse" then
      refuse_until = loop.now() + (tonumber(data.seconds) or 1)
      return 200, { refusing = tonumber(data.seconds) or 1 }
    elseif method == "POST" and path == "/sim/fault/lose-stasis-start" then
      lose_stasis_start = tonumber(data.count) or 1
      return 200, { losing = lose_stasis_start }
    elseif method == "POST" and path == "/sim/fault/ws-slam" then
      slam_until, slammed = loop.now() + (tonumber(data.seconds) or 1), 0
      return 200, { slamming = tonumber(data.seconds) or 1 }
    elseif method == "GET" and path == "/sim/fault/ws-slam" then
      return 200, { slammed = slammed }
    elseif method == "POST" and path == "/sim/fault/rest" then
      rules[#rules + 1] = data
      return 200, { rules = #rules }
    end
    return control(self, method, path, data)
  end
  -- The first rule for this request, used up by one more match.
  -- over_ws: only rules that apply there (status, delay).
  local function take_rule(path, method, over_ws)
    for i, rule in ipairs(rules) do
      if path:find(rule.match, 1, true) and (rule.method == nil or rule.method == method)
        and (not over_ws or rule.status or rule.delay) then
        rule.count = (rule.count or 1) - 1
        if rule.count <= 0 then
          table.remove(rules, i)
        end
        return rule
      end
    end
  end
  local on_ws_message = server.on_ws_message
  server.on_ws_message = function(self, conn, text)
    local ok, msg = pcall(json.decode, text)
    local rule = ok and type(msg) == "table" and type(msg.uri) == "string" and type(msg.method) == "string"
      and take_rule("/ari/" .. msg.uri, msg.method, true)
    if not rule then
      return on_ws_message(self, conn, text)
    end
    if rule.delay then
      loop.timer(rule.delay, function()
        on_ws_message(self, conn, text)
      end)
      return
    end
    conn:send(json.encode({ type = "RESTResponse", transaction_id = msg.transaction_id or "",
      request_id = msg.request_id or "", status_code = rule.status, reason_phrase = "Injected",
      uri = msg.uri:match("^[^?]*"), content_type = "application/json",
      message_body = json.encode({ message = rule.message or "Internal Server Error" }),
      timestamp = self.model:timestamp(), asterisk_id = self.model.asterisk_id, application = "luari" }))
  end
  local on_request = server.on_request
  server.on_request = function(self, req)
    local path, method = req:path(), req:method()
    local rule = take_rule(path, method)
    if not rule then
      return on_request(self, req)
    end
    if rule.status then
      req:respond(rule.status, { ["Content-Type"] = "application/json" },
        json.encode({ message = rule.message or "Internal Server Error" }))
    elseif rule.delay then
      loop.timer(rule.delay, function()
        on_request(self, req)
      end)
    elseif rule.truncate then
      on_request(self, truncating(req, rule.truncate))
    end
  end
end
