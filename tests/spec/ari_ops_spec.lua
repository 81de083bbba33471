-- luari.ari operation by operation: the operation table against the ARI
-- Channels reference, and for every Channels operation and the playbacks,
-- recordings, bridges and asterisk.getInfo functions that flows use: what
-- goes out (method, path, query, body), what a success returns, and how
-- each documented error status comes back.

local ari = require "luari.ari"
local ops = require "luari.ari_ops"
local Clock = require "luari.sim.clock"
local Runtime = require "luari.runtime"

-- --- the reference ------------------------------------------------------------

local function project_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  return src:match("^(.*)/tests/spec/[^/]*$") or "."
end

-- $LUARI_REFERENCE, else shared/reference beside the project; never skipped.
local function read_reference()
  local env = os.getenv("LUARI_REFERENCE")
  local candidates
  if env and env ~= "" then
    candidates = { env }
  else
    candidates = { project_root() .. "/../shared/reference/ari-channels.txt",
      "/work/shared/reference/ari-channels.txt" }
  end
  for _, path in ipairs(candidates) do
    local f = io.open(path, "r")
    if f then
      local text = f:read("*a")
      f:close()
      return text
    end
  end
  error("the ARI Channels reference (ari-channels.txt) was not found; tried: "
    .. table.concat(candidates, ", ") .. ". Set LUARI_REFERENCE to its path.", 0)
end

local PARA = "\194\182" -- the pilcrow that ends headings in the reference

-- Parses the reference into { nickname = op } and the nicknames in order.
-- op: method, path, returns, path_params, params (query then body, in
-- order: name, type, required, body, default, values, min, max, multiple,
-- exclusive_with), errors ({ status, reason }).
local function parse_reference(text)
  local ops_by_name, order, returns = {}, {}, {}
  local op, section, param
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    local method, path, model = line:match("^(%u+) | (/%S*) | ([^|]-) |")
    local nickname = line:match("^(%w+)" .. PARA .. "$")
    if method then
      returns[method .. " " .. path] = model
    elseif nickname and #order == 0 and next(returns) == nil then
      -- the page title
    elseif nickname then
      op = { nickname = nickname, params = {}, errors = {}, path_params = {} }
      ops_by_name[nickname] = op
      order[#order + 1] = nickname
      section, param = nil, nil
    elseif op then
      local m, p = line:match("^(%u+) (/%S-)" .. PARA .. "$")
      local heading = line:match("^(.-)" .. PARA .. "$")
      if m then
        op.method, op.path = m, p
      elseif heading then
        section, param = heading, nil
      elseif section == "Path parameters" then
        for name, type_ in line:gmatch("%* ([%w_]+): (%w+) %- ") do
          op.path_params[#op.path_params + 1] = { name = name, type = type_ }
        end
      elseif section == "Error Responses" then
        local status, reason = line:match("^%- (%d%d%d) %- (.*)$")
        if status then
          op.errors[#op.errors + 1] = { tonumber(status), reason }
        end
      elseif section == "Query parameters" or section == "Body parameter" then
        local default = line:match("^%- Default: (.*)$")
        local values = line:match("^%- Allowed values: (.*)$")
        local min, max = line:match("^%- Allowed range: Min: (%S+); Max: (%S+)$")
        if default then
          param.default = default
        elseif values then
          param.values = {}
          for v in values:gmatch("[^,%s]+") do
            param.values[#param.values + 1] = v
          end
        elseif min then
          param.min, param.max = tonumber(min), tonumber(max)
        elseif line:match("^%- Allows comma separated values%.$") then
          param.multiple = true
        else
          local name, type_, desc = line:match("^%- ([%w_]+): (%w+) %- (.*)$")
          if name then
            param = { name = name, type = type_, required = desc:match("^%(required%)") ~= nil,
              body = section == "Body parameter", exclusive_with = {} }
            local list = desc:match("Mutually exclusive with (.-)%.")
            for other in (list or ""):gmatch("'([%w_]+)'") do
              param.exclusive_with[#param.exclusive_with + 1] = other
            end
            op.params[#op.params + 1] = param
          end
        end
      end
    end
  end
  for _, o in pairs(ops_by_name) do
    o.returns = returns[o.method .. " " .. o.path]
  end
  return ops_by_name, order
end

local REFERENCE, REFERENCE_ORDER = parse_reference(read_reference())

local CHANNELS = { "list", "originate", "create", "get", "originateWithId", "hangup", "continueInDialplan",
  "move", "redirect", "answer", "ring", "ringStop", "sendDTMF", "mute", "unmute", "hold", "unhold",
  "startMoh", "stopMoh", "startSilence", "stopSilence", "play", "playWithId", "record", "getChannelVar",
  "setChannelVar", "snoopChannel", "snoopChannelWithId", "dial", "rtpstatistics", "externalMedia" }

-- Where the table knowingly words an error differently: typos in the reference.
local REASON_TYPOS = { ["bridged with other hcannels"] = "bridged with other channels" }

local function entry(resource, nickname)
  for _, e in ipairs(ops) do
    if e[1] == resource and e[2] == nickname then
      return e
    end
  end
end

-- "a|b" pairs, each once, from the reference's "Mutually exclusive with"
-- notes (only between parameters the operation has) or the table's rules.
local function pair(a, b)
  return a < b and (a .. "|" .. b) or (b .. "|" .. a)
end

local function reference_exclusive(op)
  local has, out = {}, {}
  for _, p in ipairs(op.params) do
    has[p.name] = true
  end
  for _, p in ipairs(op.params) do
    for _, other in ipairs(p.exclusive_with) do
      if has[other] then
        out[pair(p.name, other)] = true
      end
    end
  end
  return out
end

local function table_exclusive(e)
  local out = {}
  for _, rule in ipairs(e.exclusive or {}) do
    for _, other in ipairs(rule[2]) do
      out[pair(rule[1], other)] = true
    end
  end
  return out
end

describe("the operation table against the ARI Channels reference", function()
  it("the reference has the 31 Channels operations, in the order API.md lists them", function()
    assert.are.same(CHANNELS, REFERENCE_ORDER)
  end)

  for _, nickname in ipairs(CHANNELS) do
    it("channels." .. nickname .. ": method, path, return model, parameters, errors", function()
      local ref = REFERENCE[nickname]
      assert.is_table(ref, "not in the reference: " .. nickname)
      local e = entry("channels", nickname)
      assert.is_table(e, "not in the table: " .. nickname)
      assert.are.equal(ref.method, e[3])
      assert.are.equal(ref.path, e[4])
      assert.are.equal(ref.returns, e.returns)

      local path_params = {}
      for name in e[4]:gmatch("{([^}]+)}") do
        path_params[#path_params + 1] = name
      end
      local ref_path = {}
      for i, p in ipairs(ref.path_params) do
        ref_path[i] = p.name
        assert.are.equal("string", p.type)
      end
      assert.are.same(ref_path, path_params)

      -- Parameters: the same names in the same order (the query goes out in
      -- table order), each described the same way.
      local function shape(name, p)
        return {
          name = name, type = p.type, required = p.required or false, body = p.body or false,
          default = p.default ~= nil and tostring(p.default) or nil, values = p.values,
          min = p.min, max = p.max, multiple = p.multiple or false,
        }
      end
      local ref_params, table_params = {}, {}
      for _, p in ipairs(ref.params) do
        ref_params[#ref_params + 1] = shape(p.name, p)
      end
      for _, p in ipairs(e.params or {}) do
        table_params[#table_params + 1] = shape(p[1], { type = p[2], required = p.required, body = p.body,
          default = p.default, values = p.values, min = p.min, max = p.max, multiple = p.multiple })
      end
      local function by_kind(list, body)
        local out = {}
        for _, p in ipairs(list) do
          if p.body == body then
            out[#out + 1] = p
          end
        end
        return out
      end
      assert.are.same(by_kind(ref_params, false), by_kind(table_params, false))
      assert.are.same(by_kind(ref_params, true), by_kind(table_params, true))

      assert.are.same(reference_exclusive(ref), table_exclusive(e))

      local ref_errors = {}
      for i, err in ipairs(ref.errors) do
        local reason = err[2]
        for typo, fixed in pairs(REASON_TYPOS) do
          reason = reason:gsub(typo, fixed)
        end
        ref_errors[i] = { err[1], reason }
      end
      assert.are.same(ref_errors, e.errors or {})
    end)
  end

  it("corrects only typos the reference still has", function()
    local text = read_reference()
    for typo in pairs(REASON_TYPOS) do
      assert.truthy(text:find(typo, 1, true), "the reference no longer says '" .. typo .. "'")
    end
  end)
end)

-- --- a runtime whose backend records requests and answers from a script ---------

local function fake(replies)
  local clock = Clock.new()
  local sent = {}
  local backend = {
    request = function(method, segments, query, body, timeout, cb)
      sent[#sent + 1] = { method = method, segments = segments, query = query, body = body }
      local r = table.remove(replies, 1) or { 204 }
      local h = clock:after(0, function() cb(r[1], r[2], r[3], r[4], r[5]) end)
      return { cancel = function() h:cancel() end }
    end,
    timer = function(s, fn)
      local h = clock:after(s, fn)
      return { stop = function() h:cancel() end }
    end,
    now = function() return clock:now() end,
    log = function() end,
  }
  local rt = Runtime.new(backend)
  local claimed = {}
  -- `as_flow`: run as a flow's thread, so that luari picks and claims ids.
  local function run(fn, as_flow)
    local out
    if as_flow then
      rt.claim = function(_, kind, id) claimed[#claimed + 1] = kind .. ":" .. id end
    end
    rt:spawn(function()
      if as_flow then
        rt.running.call = {}
      end
      out = { fn() }
    end)
    clock:run()
    return out
  end
  return run, sent, claimed
end

local unpack = unpack or table.unpack

local function call_op(resource, nickname, args)
  return ari[resource][nickname](unpack(args))
end

-- --- every operation: request, success, documented errors ---------------------------

local CHANNEL = { id = "c1", name = "PJSIP/100-00000001", state = "Up" }
local PLAYBACK = { id = "pb-1", media_uri = "sound:hello-world", target_uri = "channel:c1", state = "queued" }
local LIVE = { name = "r1", format = "wav", state = "queued", target_uri = "channel:c1" }
local STORED = { name = "r2", format = "wav" }
local BRIDGE = { id = "br-1", technology = "simple_bridge", bridge_type = "mixing", channels = {} }

-- Each case: the call (args), what must go out (method, segments, query,
-- body), the success reply Asterisk sends and what the caller gets back.
-- `minimal`: the same operation with only its path and required parameters;
-- nothing else may go out. For the operations outside Channels,
-- `returns` and `errors` are those the ARI documentation gives.
local CASES = {
  -- channels
  { "channels", "list", {}, "GET", { "channels" }, {}, nil, reply = { 200, { CHANNEL } } },
  { "channels", "originate",
    { { endpoint = "PJSIP/100", app = "luari", appArgs = "a,b c", callerId = '"Ann" <+15551234>', timeout = 45,
      channelId = "ch-1", otherChannelId = "ch-1-peer", originator = "orig-1", formats = "ulaw,slin16",
      variables = { ["CALLERID(name)"] = "Ann", N = 7 } } },
    "POST", { "channels" },
    { "endpoint", "PJSIP/100", "app", "luari", "appArgs", "a,b c", "callerId", '"Ann" <+15551234>', "timeout", "45",
      "channelId", "ch-1", "otherChannelId", "ch-1-peer", "originator", "orig-1", "formats", "ulaw,slin16" },
    { variables = { ["CALLERID(name)"] = "Ann", N = "7" } },
    reply = { 200, CHANNEL },
    minimal = { { { endpoint = "PJSIP/100" } }, { "endpoint", "PJSIP/100" } } },
  { "channels", "originate",
    { { endpoint = "Local/1000@ivr", extension = "1000", context = "ivr", priority = 2, label = "start" } },
    "POST", { "channels" },
    { "endpoint", "Local/1000@ivr", "extension", "1000", "context", "ivr", "priority", "2", "label", "start" }, nil,
    reply = { 200, CHANNEL }, variant = "into the dialplan" },
  { "channels", "create",
    { { endpoint = "PJSIP/100", app = "luari", appArgs = "x", channelId = "c2", otherChannelId = "c2-peer",
      originator = "c1", formats = "ulaw", variables = { A = "1" } } },
    "POST", { "channels", "create" },
    { "endpoint", "PJSIP/100", "app", "luari", "appArgs", "x", "channelId", "c2", "otherChannelId", "c2-peer",
      "originator", "c1", "formats", "ulaw" },
    { variables = { A = "1" } },
    reply = { 200, CHANNEL },
    minimal = { { { endpoint = "PJSIP/100", app = "luari" } }, { "endpoint", "PJSIP/100", "app", "luari" } } },
  { "channels", "get", { "c1" }, "GET", { "channels", "c1" }, {}, nil, reply = { 200, CHANNEL } },
  { "channels", "originateWithId",
    { "chosen", { endpoint = "PJSIP/100", app = "luari", appArgs = "1", callerId = "100", timeout = -1,
      otherChannelId = "chosen-2", originator = "c1", formats = "alaw", variables = { B = "2" } } },
    "POST", { "channels", "chosen" },
    { "endpoint", "PJSIP/100", "app", "luari", "appArgs", "1", "callerId", "100", "timeout", "-1",
      "otherChannelId", "chosen-2", "originator", "c1", "formats", "alaw" },
    { variables = { B = "2" } },
    reply = { 200, CHANNEL },
    minimal = { { "chosen", { endpoint = "PJSIP/100" } }, { "endpoint", "PJSIP/100" } } },
  { "channels", "hangup", { "c1", { reason = "busy" } }, "DELETE", { "channels", "c1" }, { "reason", "busy" }, nil,
    minimal = { { "c1" }, {} } },
  { "channels", "hangup", { "c1", { reason_code = "21" } }, "DELETE", { "channels", "c1" }, { "reason_code", "21" },
    nil, variant = "with a reason code" },
  { "channels", "continueInDialplan",
    { "c1", { context = "after-stasis", extension = "s", priority = 3, label = "here" } },
    "POST", { "channels", "c1", "continue" },
    { "context", "after-stasis", "extension", "s", "priority", "3", "label", "here" }, nil,
    minimal = { { "c1" }, {} } },
  { "channels", "move", { "c1", { app = "other", appArgs = "x,y" } }, "POST", { "channels", "c1", "move" },
    { "app", "other", "appArgs", "x,y" }, nil,
    minimal = { { "c1", { app = "other" } }, { "app", "other" } } },
  { "channels", "redirect", { "c1", { endpoint = "PJSIP/200" } }, "POST", { "channels", "c1", "redirect" },
    { "endpoint", "PJSIP/200" }, nil },
  { "channels", "answer", { "c1" }, "POST", { "channels", "c1", "answer" }, {}, nil },
  { "channels", "ring", { "c1" }, "POST", { "channels", "c1", "ring" }, {}, nil },
  { "channels", "ringStop", { "c1" }, "DELETE", { "channels", "c1", "ring" }, {}, nil },
  { "channels", "sendDTMF", { "c1", { dtmf = "12#*", before = 10, between = 200, duration = 150, after = 20 } },
    "POST", { "channels", "c1", "dtmf" },
    { "dtmf", "12#*", "before", "10", "between", "200", "duration", "150", "after", "20" }, nil,
    minimal = { { "c1" }, {} } },
  { "channels", "mute", { "c1", { direction = "in" } }, "POST", { "channels", "c1", "mute" }, { "direction", "in" },
    nil, minimal = { { "c1" }, { "direction", "both" } } },
  { "channels", "unmute", { "c1", { direction = "out" } }, "DELETE", { "channels", "c1", "mute" },
    { "direction", "out" }, nil, minimal = { { "c1" }, { "direction", "both" } } },
  { "channels", "hold", { "c1" }, "POST", { "channels", "c1", "hold" }, {}, nil },
  { "channels", "unhold", { "c1" }, "DELETE", { "channels", "c1", "hold" }, {}, nil },
  { "channels", "startMoh", { "c1", { mohClass = "jazz" } }, "POST", { "channels", "c1", "moh" },
    { "mohClass", "jazz" }, nil, minimal = { { "c1" }, {} } },
  { "channels", "stopMoh", { "c1" }, "DELETE", { "channels", "c1", "moh" }, {}, nil },
  { "channels", "startSilence", { "c1" }, "POST", { "channels", "c1", "silence" }, {}, nil },
  { "channels", "stopSilence", { "c1" }, "DELETE", { "channels", "c1", "silence" }, {}, nil },
  { "channels", "play",
    { "c1", { media = { "sound:hello-world", "digits:42" }, lang = "fr", offsetms = 500, skipms = 1000,
      playbackId = "pb-1" } },
    "POST", { "channels", "c1", "play" },
    { "media", { "sound:hello-world", "digits:42" }, "lang", "fr", "offsetms", "500", "skipms", "1000",
      "playbackId", "pb-1" }, nil,
    reply = { 201, PLAYBACK },
    minimal = { { "c1", { media = "sound:beep" } }, { "media", "sound:beep" } } },
  { "channels", "playWithId", { "c1", "pb-2", { media = "sound:beep", lang = "en", offsetms = 0, skipms = 3000 } },
    "POST", { "channels", "c1", "play", "pb-2" },
    { "media", "sound:beep", "lang", "en", "offsetms", "0", "skipms", "3000" }, nil,
    reply = { 201, PLAYBACK },
    minimal = { { "c1", "pb-2", { media = "sound:beep" } }, { "media", "sound:beep" } } },
  { "channels", "record",
    { "c1", { name = "vm/msg 1", format = "wav", maxDurationSeconds = 60, maxSilenceSeconds = 5,
      ifExists = "overwrite", beep = true, terminateOn = "#" } },
    "POST", { "channels", "c1", "record" },
    { "name", "vm/msg 1", "format", "wav", "maxDurationSeconds", "60", "maxSilenceSeconds", "5",
      "ifExists", "overwrite", "beep", "true", "terminateOn", "#" }, nil,
    reply = { 201, LIVE },
    minimal = { { "c1", { name = "r1", format = "wav" } }, { "name", "r1", "format", "wav" } } },
  { "channels", "getChannelVar", { "c1", { variable = "CALLERID(num)" } }, "GET", { "channels", "c1", "variable" },
    { "variable", "CALLERID(num)" }, nil, reply = { 200, { value = "100" } } },
  { "channels", "setChannelVar", { "c1", { variable = "X", value = "1 2" } }, "POST",
    { "channels", "c1", "variable" }, { "variable", "X", "value", "1 2" }, nil,
    minimal = { { "c1", { variable = "X" } }, { "variable", "X" } } },
  { "channels", "snoopChannel",
    { "c1", { spy = "both", whisper = "out", app = "luari", appArgs = "s", snoopId = "snoop-1" } },
    "POST", { "channels", "c1", "snoop" },
    { "spy", "both", "whisper", "out", "app", "luari", "appArgs", "s", "snoopId", "snoop-1" }, nil,
    reply = { 200, CHANNEL },
    minimal = { { "c1", { app = "luari" } }, { "app", "luari" } } },
  { "channels", "snoopChannelWithId", { "c1", "snoop-2", { spy = "in", whisper = "none", app = "luari", appArgs = "t" } },
    "POST", { "channels", "c1", "snoop", "snoop-2" },
    { "spy", "in", "whisper", "none", "app", "luari", "appArgs", "t" }, nil,
    reply = { 200, CHANNEL },
    minimal = { { "c1", "snoop-2", { app = "luari" } }, { "app", "luari" } } },
  { "channels", "dial", { "c1", { caller = "c0", timeout = 20 } }, "POST", { "channels", "c1", "dial" },
    { "caller", "c0", "timeout", "20" }, nil, minimal = { { "c1" }, {} } },
  { "channels", "rtpstatistics", { "c1" }, "GET", { "channels", "c1", "rtp_statistics" }, {}, nil,
    reply = { 200, { txcount = 10, rxcount = 9, channel_uniqueid = "c1" } } },
  { "channels", "externalMedia",
    { { channelId = "em-1", app = "luari", external_host = "127.0.0.1:40000", encapsulation = "rtp",
      transport = "udp", connection_type = "client", format = "ulaw", direction = "both", data = "d",
      variables = { V = "1" } } },
    "POST", { "channels", "externalMedia" },
    { "channelId", "em-1", "app", "luari", "external_host", "127.0.0.1:40000", "encapsulation", "rtp",
      "transport", "udp", "connection_type", "client", "format", "ulaw", "direction", "both", "data", "d" },
    { variables = { V = "1" } },
    reply = { 200, CHANNEL },
    minimal = { { { app = "luari", external_host = "127.0.0.1:40000", format = "ulaw" } },
      { "app", "luari", "external_host", "127.0.0.1:40000", "format", "ulaw" } } },

  -- playbacks
  { "playbacks", "get", { "pb-1" }, "GET", { "playbacks", "pb-1" }, {}, nil, reply = { 200, PLAYBACK },
    returns = "Playback", errors = { 404 } },
  { "playbacks", "stop", { "pb-1" }, "DELETE", { "playbacks", "pb-1" }, {}, nil,
    returns = "void", errors = { 404 } },
  { "playbacks", "control", { "pb-1", { operation = "pause" } }, "POST", { "playbacks", "pb-1", "control" },
    { "operation", "pause" }, nil, returns = "void", errors = { 400, 404, 409 } },

  -- recordings
  { "recordings", "getLive", { "r1" }, "GET", { "recordings", "live", "r1" }, {}, nil, reply = { 200, LIVE },
    returns = "LiveRecording", errors = { 404 } },
  { "recordings", "stop", { "r1" }, "POST", { "recordings", "live", "r1", "stop" }, {}, nil,
    returns = "void", errors = { 404 } },
  { "recordings", "pause", { "r1" }, "POST", { "recordings", "live", "r1", "pause" }, {}, nil,
    returns = "void", errors = { 404, 409 } },
  { "recordings", "unpause", { "r1" }, "DELETE", { "recordings", "live", "r1", "pause" }, {}, nil,
    returns = "void", errors = { 404, 409 } },
  { "recordings", "mute", { "r1" }, "POST", { "recordings", "live", "r1", "mute" }, {}, nil,
    returns = "void", errors = { 404, 409 } },
  { "recordings", "unmute", { "r1" }, "DELETE", { "recordings", "live", "r1", "mute" }, {}, nil,
    returns = "void", errors = { 404, 409 } },
  { "recordings", "cancel", { "r1" }, "DELETE", { "recordings", "live", "r1" }, {}, nil,
    returns = "void", errors = { 404 } },
  { "recordings", "getStored", { "r2" }, "GET", { "recordings", "stored", "r2" }, {}, nil, reply = { 200, STORED },
    returns = "StoredRecording", errors = { 404 } },
  { "recordings", "deleteStored", { "r2" }, "DELETE", { "recordings", "stored", "r2" }, {}, nil,
    returns = "void", errors = { 404 } },
  { "recordings", "copyStored", { "r2", { destinationRecordingName = "r3" } }, "POST",
    { "recordings", "stored", "r2", "copy" }, { "destinationRecordingName", "r3" }, nil,
    reply = { 200, { name = "r3", format = "wav" } }, returns = "StoredRecording", errors = { 404, 409 } },

  -- bridges
  { "bridges", "list", {}, "GET", { "bridges" }, {}, nil, reply = { 200, { BRIDGE } },
    returns = "List[Bridge]", errors = {} },
  { "bridges", "create", { { type = "mixing,dtmf_events", bridgeId = "br-1", name = "conf" } }, "POST", { "bridges" },
    { "type", "mixing,dtmf_events", "bridgeId", "br-1", "name", "conf" }, nil, reply = { 200, BRIDGE },
    returns = "Bridge", errors = { 409 }, minimal = { {}, {} } },
  { "bridges", "get", { "br-1" }, "GET", { "bridges", "br-1" }, {}, nil, reply = { 200, BRIDGE },
    returns = "Bridge", errors = { 404 } },
  { "bridges", "destroy", { "br-1" }, "DELETE", { "bridges", "br-1" }, {}, nil,
    returns = "void", errors = { 404 } },
  { "bridges", "addChannel",
    { "br-1", { channel = { "c1", "c2" }, role = "participant", absorbDTMF = true, mute = false,
      inhibitConnectedLineUpdates = true } },
    "POST", { "bridges", "br-1", "addChannel" },
    { "channel", { "c1", "c2" }, "role", "participant", "absorbDTMF", "true", "mute", "false",
      "inhibitConnectedLineUpdates", "true" }, nil,
    returns = "void", errors = { 400, 404, 409, 422 },
    minimal = { { "br-1", { channel = "c1" } }, { "channel", "c1" } } },
  { "bridges", "removeChannel", { "br-1", { channel = "c1" } }, "POST", { "bridges", "br-1", "removeChannel" },
    { "channel", "c1" }, nil, returns = "void", errors = { 400, 404, 409, 422 } },
  { "bridges", "play",
    { "br-1", { media = "sound:beep", announcer_format = "ulaw", lang = "en", offsetms = 0, skipms = 500,
      playbackId = "pb-b" } },
    "POST", { "bridges", "br-1", "play" },
    { "media", "sound:beep", "announcer_format", "ulaw", "lang", "en", "offsetms", "0", "skipms", "500",
      "playbackId", "pb-b" }, nil,
    reply = { 201, PLAYBACK }, returns = "Playback", errors = { 404, 409, 422 },
    minimal = { { "br-1", { media = "sound:beep" } }, { "media", "sound:beep" } } },

  -- asterisk
  { "asterisk", "getInfo", { { only = { "build", "status" } } }, "GET", { "asterisk", "info" },
    { "only", { "build", "status" } }, nil,
    reply = { 200, { build = { os = "Linux" }, status = { startup_time = "2026-11-27T14:43:31.338+0000" } } },
    returns = "AsteriskInfo", errors = {}, minimal = { {}, {} } },
}

-- What API.md promises: the Channels operations, playbacks (get, stop,
-- control), recordings (live and stored), bridges and asterisk.getInfo.
local PROMISED = {
  playbacks = { "get", "stop", "control" },
  recordings = { "getLive", "stop", "pause", "unpause", "mute", "unmute", "cancel", "getStored",
    "deleteStored", "copyStored" },
  bridges = { "list", "create", "get", "destroy", "addChannel", "removeChannel", "play" },
  asterisk = { "getInfo" },
}
PROMISED.channels = CHANNELS

local CODES = { [400] = "bad_request", [401] = "bad_request", [403] = "bad_request", [404] = "not_found",
  [409] = "conflict", [412] = "precondition", [422] = "unprocessable" }

local function case_name(c)
  return c[1] .. "." .. c[2] .. (c.variant and (" (" .. c.variant .. ")") or "")
end

-- The return model and the documented errors of an operation: the
-- reference for Channels, the case itself for the rest.
local function documented(c)
  if c[1] == "channels" then
    local ref = REFERENCE[c[2]]
    local statuses, reasons = {}, {}
    for i, e in ipairs(ref.errors) do
      statuses[i], reasons[i] = e[1], e[2]
    end
    return ref.returns, statuses, reasons
  end
  local e = entry(c[1], c[2])
  local reasons = {}
  for i, err in ipairs(e.errors or {}) do
    reasons[i] = err[2]
  end
  return c.returns, c.errors, reasons
end

describe("every operation flows need", function()
  it("has a case here for each operation API.md promises", function()
    local have = {}
    for _, c in ipairs(CASES) do
      have[c[1] .. "." .. c[2]] = true
    end
    local n = 0
    for resource, names in pairs(PROMISED) do
      for _, name in ipairs(names) do
        n = n + 1
        assert.is_true(have[resource .. "." .. name], resource .. "." .. name)
        assert.is_function(ari[resource][name], resource .. "." .. name)
      end
    end
    assert.are.equal(31 + 3 + 10 + 7 + 1, n)
  end)

  for _, c in ipairs(CASES) do
    if c[1] ~= "channels" then
      it(case_name(c) .. ": the table documents the same return model and errors", function()
        local e = entry(c[1], c[2])
        assert.are.equal(c.returns, e.returns)
        local statuses = {}
        for i, err in ipairs(e.errors or {}) do
          statuses[i] = err[1]
        end
        assert.are.same(c.errors, statuses)
      end)
    end
  end

  for _, c in ipairs(CASES) do
    local resource, nickname, args, method, segments, query, body = c[1], c[2], c[3], c[4], c[5], c[6], c[7]

    it(case_name(c) .. ": sends " .. method .. " /" .. table.concat(segments, "/")
      .. " with exactly the parameters given, and returns what the reply says", function()
      local returns = documented(c)
      local void = returns == "void"
      local reply = c.reply or { 204 }
      assert.are.equal(void, reply[1] == 204, "the case's reply does not fit the return model " .. returns)
      local run, sent = fake({ reply })
      local out = run(function() return call_op(resource, nickname, args) end)
      assert.are.equal(1, #sent)
      assert.are.equal(method, sent[1].method)
      assert.are.same(segments, sent[1].segments)
      assert.are.same(query, sent[1].query)
      assert.are.same(body, sent[1].body)
      if void then
        assert.is_true(out[1])
      else
        assert.is_table(out[1])
        assert.are.same(reply[2], out[1])
      end
      assert.is_nil(out[2])
      -- describe() says the same without sending
      local m, segs, q, b = ari.describe(resource, nickname, unpack(args))
      assert.are.same({ method, segments, query }, { m, segs, q })
      assert.are.same(body, b)
    end)

    if c.minimal and not c.variant then
      it(case_name(c) .. ": with only its required parameters sends only those", function()
        local run, sent = fake({ c.reply or { 204 } })
        run(function() return call_op(resource, nickname, c.minimal[1]) end)
        assert.are.same(c.minimal[2], sent[1].query)
        assert.is_nil(sent[1].body)
      end)
    end

    if not c.variant then
      local _, statuses, reasons = documented(c)
      for i, status in ipairs(statuses) do
        local reason = reasons[i]
        it(case_name(c) .. ": " .. status .. " (" .. reason .. ") is nil, err " .. CODES[status], function()
          local run = fake({ { status, { message = reason }, nil, nil, "Whatever" } })
          local out = run(function() return call_op(resource, nickname, args) end)
          assert.is_nil(out[1])
          local err = out[2]
          assert.is_true(ari.is_error(err))
          assert.are.same({ status = status, code = CODES[status], message = reason, op = nickname },
            { status = err.status, code = err.code, message = err.message, op = err.op })
          assert.are.equal(nickname .. ": " .. status .. " " .. reason, tostring(err))
        end)
      end
    end
  end
end)

-- --- what luari adds from a flow ------------------------------------------------------

describe("called from a flow", function()
  local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

  -- Operations that create a channel or bridge: the parameter that names
  -- it, where it goes in the query (its place in the reference), and what
  -- luari claims for the flow ("ID" stands for the id luari picked).
  local PICKS = {
    ["channels.originate"] = { param = "channelId", query = { "endpoint", "PJSIP/100", "channelId", "ID" },
      claims = { "channel:ID", "channel:ID;2" } },
    ["channels.create"] = { param = "channelId", query = { "endpoint", "PJSIP/100", "app", "luari", "channelId", "ID" },
      claims = { "channel:ID", "channel:ID;2" } },
    ["channels.externalMedia"] = { param = "channelId", query = { "channelId", "ID", "app", "luari",
      "external_host", "127.0.0.1:40000", "format", "ulaw" }, claims = { "channel:ID" } },
    ["channels.snoopChannel"] = { param = "snoopId", query = { "app", "luari", "snoopId", "ID" },
      claims = { "channel:ID" } },
    ["bridges.create"] = { param = "bridgeId", query = { "bridgeId", "ID" }, claims = { "bridge:ID" } },
  }
  -- Operations whose path names what they create: claimed, nothing picked.
  local CLAIMS_GIVEN = {
    ["channels.originateWithId"] = { "channel:chosen", "channel:chosen;2" },
    ["channels.snoopChannelWithId"] = { "channel:snoop-2" },
  }

  for _, c in ipairs(CASES) do
    local key = c[1] .. "." .. c[2]
    if not c.variant then
      local args = c.minimal and c.minimal[1] or c[3]
      local expected = c.minimal and c.minimal[2] or c[6]
      local pick = PICKS[key]
      local title = pick and (": sends what the flow gave and the " .. pick.param .. " luari picks")
        or ": sends only what the flow gave"
      it(case_name(c) .. title, function()
        local run, sent, claimed = fake({ c.reply or { 204 } })
        run(function() return call_op(c[1], c[2], args) end, true)
        assert.are.equal(1, #sent)
        local query = sent[1].query
        if pick then
          local id
          for i = 1, #query - 1, 2 do
            if query[i] == pick.param then
              id = query[i + 1]
            end
          end
          assert.is_string(id, pick.param .. " was not sent")
          assert.truthy(id:match(UUID), id)
          local want, claims = {}, {}
          for i, v in ipairs(pick.query) do
            want[i] = v == "ID" and id or v
          end
          for i, v in ipairs(pick.claims) do
            claims[i] = v:gsub("ID", id)
          end
          assert.are.same(want, query)
          assert.are.same(claims, claimed)
        else
          assert.are.same(expected, query)
          assert.are.same(CLAIMS_GIVEN[key] or {}, claimed)
        end
        assert.is_nil(sent[1].body)
      end)
    end
  end

  it("keeps the ids the flow gave and picks nothing", function()
    local run, sent, claimed = fake({ { 200, CHANNEL }, { 200, CHANNEL }, { 200, BRIDGE } })
    run(function()
      ari.channels.originate({ endpoint = "PJSIP/100", channelId = "mine", otherChannelId = "mine-2" })
      ari.channels.snoopChannel("c1", { app = "luari", spy = "in", snoopId = "spy-1" })
      ari.bridges.create({ bridgeId = "br-9" })
    end, true)
    assert.are.same({ "endpoint", "PJSIP/100", "channelId", "mine", "otherChannelId", "mine-2" }, sent[1].query)
    assert.are.same({ "spy", "in", "app", "luari", "snoopId", "spy-1" }, sent[2].query)
    assert.are.same({ "bridgeId", "br-9" }, sent[3].query)
    assert.are.same({ "channel:mine", "channel:mine-2", "channel:spy-1", "bridge:br-9" }, claimed)
  end)
end)

-- --- through the in-process simulator ------------------------------------------------

describe("luari.ari against the in-process simulator", function()
  local World = require "luari.sim.world"

  local function in_world(fn)
    local world = World.new({ quiet_logs = true })
    local out
    world.rt:spawn(function() out = { fn() } end)
    world:run(function() return out ~= nil end)
    return out
  end

  it("sends a path argument holding a slash as one segment, as ARI reads it", function()
    local out = in_world(function()
      local _, missing = ari.channels.get("PJSIP/100")
      local ch = ari.channels.originate({ endpoint = "Local/1000@wait", app = "luari", channelId = "a/b" })
      local got = ari.channels.get("a/b")
      return missing, ch, got
    end)
    assert.are.same({ 404, "not_found", "Channel not found" }, { out[1].status, out[1].code, out[1].message })
    assert.are.equal("a/b", out[2].id)
    assert.are.equal("a/b", out[3].id)
  end)
end)
