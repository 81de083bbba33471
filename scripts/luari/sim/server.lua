-- The simulated Asterisk's network face: ARI REST and the events
-- WebSocket over luari.simserver (C: libmicrohttpd + wslay), in front of
-- the channel model (luari.sim.model). Also serves /ari/api-docs, REST over
-- the WebSocket (RESTRequest), and /sim/... to drive simulated callers.

local json = require "luari.json"
local loop = require "luari.loop"
local simserver = require "luari.simserver"
local Load = require "luari.sim.load"
local dtmf = require "luari.sim.dtmf"
local Model = require "luari.sim.model"
local RealClock = require "luari.sim.realclock"
local router = require "luari.sim.model.router"
local U = require "luari.sim.model.util"

local Server = {}
Server.__index = Server

local SERVER_HEADER = "Asterisk/22.10.1"
local JSON_TYPE = "application/json"
local REALM = 'Basic realm="Asterisk REST Interface"'

local REASONS = {
  [101] = "Switching Protocols", [200] = "OK", [201] = "Created", [204] = "No Content",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [409] = "Conflict", [412] = "Precondition Failed",
  [422] = "Unprocessable Entity", [500] = "Internal Server Error", [501] = "Not Implemented",
  [503] = "Service Unavailable",
}

-- --- helpers ------------------------------------------------------------------

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

local function b64decode(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  s = s:gsub("[^%w%+/=]", "")
  return (s:gsub(".", function(c)
    if c == "=" then
      return ""
    end
    local v = alphabet:find(c, 1, true) - 1
    local bits = ""
    for i = 5, 0, -1 do
      bits = bits .. (math.floor(v / 2 ^ i) % 2)
    end
    return bits
  end):gsub("%d%d%d?%d?%d?%d?%d?%d?", function(bits)
    if #bits ~= 8 then
      return ""
    end
    return string.char(tonumber(bits, 2))
  end))
end

-- "/ari/channels/a%2Fb/play" -> "/channels/a/b/play" with segments decoded
local function decode_path(raw)
  local path = raw:match("^[^?]*")
  local out = {}
  if not path:find("%", 1, true) and not path:find("//", 1, true) and path:sub(-1) ~= "/" then
    -- Nothing to decode (most requests): the path is already the answer.
    for seg in path:gmatch("[^/]+") do
      out[#out + 1] = seg
    end
    return path:sub(1, 1) == "/" and path or "/" .. path, out
  end
  for seg in path:gmatch("[^/]+") do
    out[#out + 1] = unescape(seg)
  end
  return "/" .. table.concat(out, "/"), out
end

-- JSON as Asterisk writes it: cjson escapes every "/" as "\/", Asterisk
-- (jansson) does not. Only an escaped slash has a backslash right before
-- "/" (a literal backslash is written "\\"), so dropping that one is exact.
local function encode(v)
  return (json.encode(v):gsub("\\/", "/"))
end

-- "OPTIONS,GET,POST": res_ari's Allow header for a path, methods in
-- Asterisk's order (GET, POST, HEAD, PUT, DELETE).
local function allow_header(path)
  local list = { "OPTIONS" }
  for _, m in ipairs({ "GET", "POST", "HEAD", "PUT", "DELETE" }) do
    if router.match(m, path) then
      list[#list + 1] = m
    end
  end
  return table.concat(list, ",")
end

local JSON_HEADERS = { Server = SERVER_HEADER, ["Cache-Control"] = "no-cache, no-store", ["Content-Type"] = JSON_TYPE }
local PLAIN_HEADERS = { Server = SERVER_HEADER, ["Cache-Control"] = "no-cache, no-store" }

local function header_list(extra, content_type)
  -- The common cases are the same every time: no table to build.
  if extra == nil and (content_type == nil or content_type == JSON_TYPE) then
    return content_type and JSON_HEADERS or PLAIN_HEADERS
  end
  local h = { Server = SERVER_HEADER, ["Cache-Control"] = "no-cache, no-store" }
  if content_type then
    h["Content-Type"] = content_type
  end
  for k, v in pairs(extra or {}) do
    h[k] = v
  end
  return h
end

-- --- the server --------------------------------------------------------------

function Server.new(opts)
  local self = setmetatable({
    user = opts.user,
    password = opts.password,
    conns = {},        -- conn -> { apps = {...} }
    app_conn = {},     -- app name -> conn
    pending_ws = {},   -- tag -> { apps, subscribe_all }
    next_tag = 0,
    journal = opts.journal and { first = 1, last = 0 } or nil, -- entries at first..last
    journal_limit = opts.journal_limit or 100000,
    apidocs = opts.apidocs,
    write_timeout = opts.write_timeout,
    idle_timeout = opts.idle_timeout,
    log = opts.log or function() end,
  }, Server)
  self.clock = opts.clock or RealClock.new(opts.speed or 1)
  self.model = Model.new({
    clock = self.clock,
    emit = function(app, event)
      self:emit(app, event)
    end,
    sounds = opts.sounds,
    sound_default = opts.sound_default,
    notice = function(message)
      self.log("info", "sim-server: " .. message)
    end,
  })
  self.load = Load.new(self)
  return self
end

function Server:listen(host, port)
  local srv, err = simserver.listen({
    host = host,
    port = port,
    write_timeout = self.write_timeout,
    idle_timeout = self.idle_timeout,
    on_request = function(req)
      self:on_request(req)
    end,
    on_ws_open = function(conn)
      self:on_ws_open(conn)
    end,
    on_ws_message = function(conn, text)
      self:on_ws_message(conn, text)
    end,
    on_ws_close = function(conn)
      self:on_ws_close(conn)
    end,
  })
  if not srv then
    return nil, err
  end
  self.srv = srv
  return srv:port()
end

function Server:close()
  if self.srv then
    self.srv:close()
    self.srv = nil
  end
end

-- --- events out -------------------------------------------------------------------

function Server:emit(app, event)
  self.load:on_event(event)
  local conn = self.app_conn[app]
  if conn then
    conn:send(encode(event))
  end
end

-- --- authentication ------------------------------------------------------------------

-- As res_ari: a Basic Authorization header decides when there is one,
-- api_key only when there is none.
function Server:authorized(header, api_key)
  if not self.user then
    return true
  end
  local expected = self.user .. ":" .. (self.password or "")
  -- Every request of a client carries the same header: decode it once.
  if header ~= nil and header == self.auth_ok then
    return true
  end
  local b64 = header and header:match("^%s*[Bb]asic%s+(%S+)")
  if b64 == nil then
    return api_key == expected
  end
  local ok = b64decode(b64) == expected
  if ok then
    self.auth_ok = header
  end
  return ok
end

local function unauthorized()
  return 401, { ["WWW-Authenticate"] = REALM }, { message = "Authentication required" }
end

-- --- REST ---------------------------------------------------------------------------

-- One journal entry; `websocket` marks a RESTRequest that came over the
-- events WebSocket.
function Server:record(method, raw_path, args, body, websocket)
  local j = self.journal
  if not j then
    return
  end
  while j.first <= j.last and j.last - j.first + 1 >= self.journal_limit do
    j[j.first] = nil -- the oldest goes (in constant time: long soaks keep 100,000)
    j.first = j.first + 1
  end
  local kept = {}
  for i, pair in ipairs(args) do
    -- The journal is for reading back; credentials stay out of it.
    kept[i] = pair[1] == "api_key" and { pair[1], "(hidden)" } or pair
  end
  j.last = j.last + 1
  j[j.last] = { method = method, path = raw_path, args = json.array(kept), body = body ~= "" and body or nil,
    websocket = websocket }
end

-- The journal's entries, oldest first (empty without --journal).
function Server:journal_entries()
  local j, out = self.journal, {}
  if j then
    for i = j.first, j.last do
      out[#out + 1] = j[i]
    end
  end
  return out
end

-- Answers one ARI request: status, extra headers, body table or nil, and
-- the reason phrase Asterisk would send (HTTP cannot carry a custom one
-- here, RESTResponse can). `segments`: the path's segments, each decoded
-- (one may hold a "/", sent as %2F), for the model.
function Server:ari_request(method, path, query, body, host, segments)
  if path:match("^/api%-docs/") and self.apidocs then
    if method ~= "GET" then
      return 405, nil, { message = "Unsupported method" }, "Method Not Allowed"
    end
    local doc = self.apidocs(path:match("^/api%-docs/([%w_]+)%.json$"), "http://" .. (host or "127.0.0.1:8088") .. "/ari")
    if doc then
      return 200, nil, doc, "OK"
    end
    return 404, nil, { message = "Resource not found" }, "Not Found"
  end
  if method == "OPTIONS" then
    -- res_ari answers OPTIONS itself: the methods of a known path (CORS
    -- preflights get no more than that here).
    local op, status = router.match("GET", path)
    if op or status == 405 then
      return 204, { Allow = allow_header(path) }, nil, "No Content"
    end
    return 404, nil, { message = "Resource not found" }, "Not Found"
  end
  local status, reason, rbody, headers = self.model:request(method, segments or path, query, body)
  if status == 405 then
    headers = headers or {}
    headers.Allow = allow_header(path)
  end
  return status, headers, rbody, reason
end

local HTML_400 = '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n'
  .. "<title>400 Bad Request</title>\r\n</head><body>\r\n<h1>Bad Request</h1>\r\n"
  .. "<p>HTTP request is missing param: [app]</p>\r\n<hr />\r\n<address>" .. SERVER_HEADER
  .. "</address>\r\n</body></html>\r\n"

function Server:websocket_request(req, query)
  local apps = query.app
  if not apps or apps == "" then
    req:respond(400, header_list(nil, "text/html"), HTML_400)
    return
  end
  self.next_tag = self.next_tag + 1
  local list = {}
  for a in apps:gmatch("[^,]+") do
    list[#list + 1] = a
  end
  self.pending_ws[self.next_tag] = { apps = list, subscribe_all = U.truthy(query.subscribeAll) }
  req:respond(101, {}, nil, self.next_tag)
end

-- The fields of a query string or a form body: into `query` (the first of
-- a name wins) and, in order, into `ordered`.
local function form_fields(text, query, ordered)
  for k, v in text:gmatch("([^&=]+)=([^&]*)") do
    k, v = unescape((k:gsub("%+", " "))), unescape((v:gsub("%+", " ")))
    if query[k] == nil then -- the first one wins
      query[k] = v
    end
    ordered[#ordered + 1] = { k, v }
  end
end

-- The body as res_ari reads it: form fields join the parameters (a query
-- parameter given in both wins); JSON is read only when the request says it
-- is JSON; any other body is not read at all.
local function request_body(content_type, body, query)
  if body == "" then
    return body
  end
  local ctype = content_type and content_type:match("^%s*([^;%s]+)")
  ctype = ctype and ctype:lower()
  if ctype == "application/json" then
    return body
  end
  if ctype == "application/x-www-form-urlencoded" then
    form_fields(body, query, {}) -- (after the query's own: those win)
  end
  return ""
end

function Server:on_request(req)
  local now = req:received()
  local method, raw = req:method(), req:path()
  local query, ordered = req:args()
  local body = req:body()
  local path, segments = decode_path(raw)
  if path:match("^/sim/") or path == "/sim" then
    return self:control(req, method, path, query, body)
  end
  self:record(method, raw, ordered, body)
  local ari_path = path:match("^/ari(/.*)$")
  if not ari_path then
    return self:respond(req, 404, nil, { message = "Resource not found" })
  end
  body = request_body(req:header("Content-Type"), body, query)
  if not self:authorized(req:header("Authorization"), query.api_key) then
    self.load:on_response(method, raw, 401)
    return self:respond(req, unauthorized())
  end
  query.api_key = nil
  local raw_path = raw:match("^[^?]*")
  if raw_path:sub(-1) == "/" then
    -- res_ari does not guess: it names the URL to use instead.
    return self:respond(req, 404, nil,
      { message = "ARI URLs do not end with a slash. Try " .. raw_path:sub(1, -2) })
  end
  if ari_path == "/events" and req:is_upgrade() then
    return self:websocket_request(req, query)
  end
  local ari_segments = { unpack(segments, 2) }
  self.load:on_request(method, ari_segments, now)
  local ok, status, headers, rbody = pcall(self.ari_request, self, method, ari_path, query, body,
    req:header("Host"), ari_segments)
  if not ok then
    -- The path only: the query may hold api_key=user:password.
    self.log("error", "sim-server: " .. method .. " " .. raw:match("^[^?]*") .. ": " .. tostring(status))
    status, headers, rbody = 500, nil, { message = "Internal error in the simulator" }
  end
  self.load:on_response(method, raw, status)
  self:respond(req, status, headers, rbody)
end

-- A string body goes out as it is (a stored recording's audio), unless it
-- is the marker of an empty JSON array.
local function body_text(body)
  if body == nil then
    return ""
  end
  if type(body) == "string" and not json.is_empty_array(body) then
    return body
  end
  return encode(body)
end

function Server:respond(req, status, headers, body)
  local text = body_text(body)
  local ctype = body ~= nil and (headers and headers["Content-Type"] or JSON_TYPE) or nil
  req:respond(status, header_list(headers, ctype), text)
end

-- --- WebSockets ------------------------------------------------------------------------

function Server:on_ws_open(conn)
  local info = self.pending_ws[conn:tag()]
  self.pending_ws[conn:tag()] = nil
  if not info then
    conn:close(1011)
    return
  end
  self.conns[conn] = info
  for _, app in ipairs(info.apps) do
    local old = self.app_conn[app]
    if old and old ~= conn then
      old:send(encode({ type = "ApplicationReplaced", timestamp = self.model:timestamp(),
        application = app, asterisk_id = self.model.asterisk_id }))
      local old_info = self.conns[old]
      if old_info then
        old_info.replaced = old_info.replaced or {}
        old_info.replaced[app] = true
      end
    end
    self.app_conn[app] = conn
    self.model:app_connected(app, { subscribeAll = info.subscribe_all })
  end
end

function Server:on_ws_close(conn)
  local info = self.conns[conn]
  self.conns[conn] = nil
  if not info then
    return
  end
  for _, app in ipairs(info.apps) do
    if self.app_conn[app] == conn then
      self.app_conn[app] = nil
      self.model:app_disconnected(app)
    end
  end
end

-- REST over the WebSocket (Asterisk 22): RESTRequest in, RESTResponse out.
-- As Asterisk's res/ari/ari_websocket_requests.c: the ids are echoed (""
-- when absent), a request it cannot parse gets a 400 with the reason, a
-- query may sit in the uri or in query_strings, and a message_body needs
-- its content_type (JSON, or a form whose fields join the query).

-- The request's parts, or nil and the message of a 400.
local function parse_rest_request(msg)
  if type(msg.type) ~= "string" or msg.type == "" then
    return nil, "No 'type' property."
  elseif msg.type ~= "RESTRequest" then
    return nil, "Unknown request type."
  elseif type(msg.uri) ~= "string" or msg.uri == "" then
    return nil, "Empty or missing 'uri' property."
  end
  local r = { query = {}, ordered = {} }
  r.path, r.qs = msg.uri:match("^([^?]*)%??(.*)$")
  form_fields(r.qs, r.query, r.ordered)
  local method = msg.method
  if not (method == "GET" or method == "POST" or method == "PUT" or method == "DELETE") then
    return nil, "Unknown or missing 'method' property.", r.path
  end
  r.method = method
  if type(msg.query_strings) == "table" then
    for _, q in ipairs(msg.query_strings) do
      if type(q) ~= "table" or type(q.name) ~= "string" then
        return nil, "Unable to parse 'query_strings' array.", r.path
      end
      local v = tostring(q.value or "")
      if r.query[q.name] == nil then
        r.query[q.name] = v
      end
      r.ordered[#r.ordered + 1] = { q.name, v }
    end
  end
  local body = type(msg.message_body) == "string" and msg.message_body or ""
  if body ~= "" then
    local ctype = msg.content_type
    if type(ctype) ~= "string" or ctype == "" then
      return nil, "No 'content_type' for 'message_body'.", r.path
    elseif ctype == "application/x-www-form-urlencoded" then
      form_fields(body, r.query, r.ordered)
    elseif ctype == "application/json" then
      if json.decode(body) == nil then
        return nil, "Unable to parse 'message_body' as 'application/json'.", r.path
      end
      r.body = body
    else
      return nil, "Unknown content type.", r.path
    end
  end
  return r
end

function Server:on_ws_message(conn, text)
  local now = loop.now()
  local msg = json.decode(text)
  local info = self.conns[conn]
  if type(msg) ~= "table" or not info then
    return -- Asterisk logs it and answers nothing
  end
  local reply = {
    type = "RESTResponse",
    transaction_id = type(msg.transaction_id) == "string" and msg.transaction_id or "",
    request_id = type(msg.request_id) == "string" and msg.request_id or "",
    application = info.apps[1],
    asterisk_id = self.model.asterisk_id,
  }
  local r, bad, path = parse_rest_request(msg)
  if not r then
    reply.status_code, reply.reason_phrase, reply.uri = 400, "Bad request", path or ""
    reply.content_type = JSON_TYPE
    reply.message_body = encode({ message = bad })
  else
    self:record(r.method, "/ari/" .. r.path, r.ordered, r.body or "", true)
    local rest_path, rest_segments = decode_path("/" .. r.path)
    self.load:on_request(r.method, rest_segments, now)
    local called, status, _, rbody, reason = pcall(self.ari_request, self, r.method, rest_path, r.query, r.body,
      nil, rest_segments)
    if not called then
      self.log("error", "sim-server: WebSocket " .. r.method .. " " .. r.path .. ": " .. tostring(status))
      status, rbody, reason = 500, { message = "Internal error in the simulator" }, nil
    end
    self.load:on_response(r.method, "/ari/" .. r.path, status)
    reply.status_code, reply.reason_phrase, reply.uri = status, reason or REASONS[status] or "", r.path
    if rbody ~= nil then
      reply.content_type = JSON_TYPE
      reply.message_body = body_text(rbody)
    end
  end
  reply.timestamp = self.model:timestamp()
  conn:send(encode(reply))
end

-- --- /sim: driving the simulated callers ----------------------------------------------------

function Server:schedule_caller(id, opts)
  local model, clock = self.model, self.clock
  local schedule, err = dtmf.parse(opts.dtmf)
  if not schedule then
    return nil, err
  end
  for _, item in ipairs(schedule) do
    clock:after(item.at, function()
      for i = 1, #item.digits do
        clock:after((i - 1) * 0.25, function()
          model:caller_dtmf(id, item.digits:sub(i, i), 100)
        end)
      end
    end)
  end
  if opts.hangup_at then
    clock:after(tonumber(opts.hangup_at) or 0, function()
      model:caller_hangup(id)
    end)
  end
  return true
end

function Server:control(req, method, path, query, body)
  if not self:authorized(req:header("Authorization"), query.api_key) then
    return self:respond(req, unauthorized())
  end
  local data = body ~= "" and json.decode(body) or {}
  if type(data) ~= "table" then
    return self:respond(req, 400, nil, { message = "the body must be a JSON object" })
  end
  for k, v in pairs(query) do
    if data[k] == nil then
      data[k] = v
    end
  end
  local ok, status, rbody = pcall(self.control_request, self, method, path, data)
  if not ok then
    return self:respond(req, 500, nil, { message = tostring(status) })
  end
  self:respond(req, status, nil, rbody)
end

local function split_args(v)
  if type(v) == "table" then
    return v
  end
  local out = {}
  for a in tostring(v or ""):gmatch("[^,]+") do
    out[#out + 1] = a
  end
  return out
end

function Server:control_request(method, path, data)
  if method == "POST" and path == "/sim/calls" then
    local app = data.app or "luari"
    if not self.model:app_is_connected(app) then
      return 409, { message = "no WebSocket is connected for application " .. tostring(app)
        .. ": Asterisk's Stasis() would refuse the call" }
    end
    local id = self.model:incoming({
      app = app,
      args = split_args(data.args),
      caller = { number = data.caller or data.number or "", name = data.caller_name or data.name or "" },
      exten = data.exten,
      context = data.context,
      id = data.id,
      endpoint = data.endpoint,
    })
    if data.audio then
      self.model:caller_audio(id, data.audio)
    end
    local ok, err = self:schedule_caller(id, data)
    if not ok then
      return 400, { message = err }
    end
    return 200, { id = id }
  end
  local id, action = path:match("^/sim/calls/([^/]+)/(%a+)$")
  if method == "POST" and action == "dtmf" then
    local digits = tostring(data.digits or data.dtmf or "")
    for i = 1, #digits do
      self.clock:after((i - 1) * 0.25, function()
        self.model:caller_dtmf(id, digits:sub(i, i), tonumber(data.duration) or 100)
      end)
    end
    return 204, nil
  elseif method == "POST" and action == "hangup" then
    self.model:caller_hangup(id, tonumber(data.cause))
    return 204, nil
  elseif method == "POST" and action == "audio" then
    self.model:caller_audio(id, data.kind or data.audio)
    return 204, nil
  end
  if method == "POST" and path == "/sim/drop" then
    -- Fault injection: every events WebSocket ends at once, without a close frame.
    local n = 0
    for conn in pairs(self.conns) do
      conn:close(0)
      n = n + 1
    end
    return 200, { dropped = n }
  end
  if method == "POST" and path == "/sim/flood" then
    -- Fault and load injection: `count` events of about `size` bytes for a
    -- channel, sent at once.
    local count, size = tonumber(data.count) or 1000, tonumber(data.size) or 500
    local ch = self.model:channel(data.channel or "")
    if not ch then
      return 404, { message = "Channel not found" }
    end
    local padding = string.rep("x", math.max(size - 300, 0))
    for i = 1, count do
      self:emit(data.app or "luari", {
        type = "ChannelVarset", timestamp = self.model:timestamp(), variable = "FLOOD",
        value = tostring(i) .. padding, channel = ch, asterisk_id = self.model.asterisk_id,
        application = data.app or "luari",
      })
    end
    return 200, { sent = count }
  end
  if method == "POST" and path == "/sim/load" then
    -- Load generation: `count` callers at `rate` a second, on the simulator's own loop.
    local rate, count = tonumber(data.rate), tonumber(data.count)
    if not rate or rate <= 0 or not count or count < 1 or count ~= math.floor(count) then
      return 400, { message = "rate (calls a second, > 0) and count (an integer >= 1) are required" }
    end
    if data.dtmf then
      local ok, err = dtmf.parse(data.dtmf)
      if not ok then
        return 400, { message = err }
      end
    end
    return 200, self.load:start({
      rate = rate, count = count, app = data.app or "luari", args = split_args(data.args),
      caller = data.caller, dtmf = data.dtmf, hangup_at = data.hangup_at, audio = data.audio,
    })
  elseif method == "POST" and path == "/sim/load/dtmf" then
    local digits, rate = tostring(data.digits or ""), tonumber(data.rate) or 1000
    if not digits:match(dtmf.DIGITS) or rate <= 0 then
      return 400, { message = "digits (DTMF keys) and rate (calls a second, > 0) are required" }
    end
    return 200, self.load:press(digits, rate)
  elseif method == "GET" and path == "/sim/stats" then
    local stats = self.load:stats(data.counts == "1" or data.counts == true)
    stats.channels = self.model:stats().channels
    stats.error_list = json.array(stats.error_list)
    return 200, stats
  elseif method == "DELETE" and path == "/sim/stats" then
    self.load:reset()
    return 204, nil
  end
  if method == "GET" and path == "/sim/requests" then
    return 200, json.array(self:journal_entries())
  elseif method == "DELETE" and path == "/sim/requests" then
    if self.journal then
      self.journal = { first = 1, last = 0 }
    end
    return 204, nil
  elseif method == "GET" and path:match("^/sim/channels/") then
    local ch = self.model:channel(path:match("^/sim/channels/(.+)$"))
    if not ch then
      return 404, { message = "Channel not found" }
    end
    return 200, ch
  end
  return 404, { message = "no such control resource" }
end

return Server
