-- The simulator's /ari/api-docs (luari.sim.apidocs, from luari's operation
-- table and luari.sim.models) against the documents a real Asterisk
-- 22.10.1 served (ari-samples/api-docs): the same resources, operations
-- (method, path, nickname, response class), parameters (kind, type,
-- required, multiple, default, allowed values) and models (properties,
-- types, required, allowed values, sub-types). Descriptions, `since` and
-- key order are left out: swagger clients do not read them.

local json = require "luari.json"
local cjson = require "cjson"
local apidocs = require "luari.sim.apidocs"

local function project_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  return src:match("^(.*)/tests/spec/[^/]*$") or "."
end

-- The captures: $LUARI_SAMPLES, else shared/ari-samples beside the project.
local function samples_dir()
  local candidates = { project_root() .. "/../shared/ari-samples" }
  local env = os.getenv("LUARI_SAMPLES")
  if env and env ~= "" then
    table.insert(candidates, 1, env)
  end
  for _, dir in ipairs(candidates) do
    local f = io.open(dir .. "/api-docs/resources.json")
    if f then
      f:close()
      return dir
    end
  end
  error("reference captures not found: set LUARI_SAMPLES to the ari-samples directory", 0)
end

local function captured(name)
  local f = assert(io.open(samples_dir() .. "/api-docs/" .. name .. ".json"))
  local doc = cjson.decode(f:read("*a"))
  f:close()
  return doc
end

-- As a client sees it: through JSON.
local function generated(name)
  return cjson.decode(json.encode(apidocs.document(name, "http://127.0.0.1:8088/ari")))
end

local RESOURCES = { "asterisk", "endpoints", "channels", "bridges", "recordings", "sounds", "playbacks",
  "deviceStates", "mailboxes", "events", "applications" }

local function allowed(v)
  if v == nil then
    return "-"
  end
  if v.valueType == "RANGE" then
    return string.format("RANGE %s..%s", tostring(v.min), tostring(v.max))
  end
  return "LIST " .. table.concat(v.values or {}, "|")
end

-- "channels POST /channels/{channelId}/play ..." -> one comparable line per
-- operation and per parameter.
local function operation_lines(doc, resource)
  local out = {}
  for _, api in ipairs(doc.apis) do
    for _, op in ipairs(api.operations) do
      local key = string.format("%s %s %s", resource, op.httpMethod, api.path)
      out[key] = string.format("nickname=%s responseClass=%s upgrade=%s", op.nickname, op.responseClass,
        tostring(op.upgrade))
      for _, p in ipairs(op.parameters or {}) do
        local path = p.paramType == "path"
        out[key .. " param " .. p.name] = string.format("%s %s required=%s multiple=%s default=%s allowed=%s",
          p.paramType, p.dataType, tostring(path or p.required == true),
          tostring(not path and p.allowMultiple == true), tostring(p.defaultValue), allowed(p.allowableValues))
      end
    end
  end
  return out
end

local function model_lines(doc, resource)
  local out = {}
  for name, m in pairs(doc.models or {}) do
    local subtypes = {}
    for _, s in ipairs(m.subTypes or {}) do
      subtypes[#subtypes + 1] = s
    end
    table.sort(subtypes)
    out[resource .. " model " .. name] = string.format("id=%s discriminator=%s subTypes=%s", tostring(m.id),
      tostring(m.discriminator), table.concat(subtypes, ","))
    for pname, p in pairs(m.properties or {}) do
      out[resource .. " model " .. name .. "." .. pname] = string.format("%s required=%s allowed=%s", p.type,
        tostring(p.required == true), allowed(p.allowableValues))
    end
  end
  return out
end

-- Differences between two { key = line } tables, as sorted strings.
local function differences(want, have)
  local out = {}
  for k, v in pairs(want) do
    if have[k] == nil then
      out[#out + 1] = "missing: " .. k .. " (" .. v .. ")"
    elseif have[k] ~= v then
      out[#out + 1] = "differs: " .. k .. ": Asterisk " .. v .. " / luari " .. have[k]
    end
  end
  for k, v in pairs(have) do
    if want[k] == nil then
      out[#out + 1] = "extra: " .. k .. " (" .. v .. ")"
    end
  end
  table.sort(out)
  return out
end

-- Where luari's operation table follows the ARI reference it was written
-- from and Asterisk 22.10.1 already has more. Each line must still be a
-- difference: one that goes away must leave this list too.
local KNOWN = {
  "differs: channels POST /channels/externalMedia param connection_type: Asterisk query string required=false"
    .. " multiple=false default=client allowed=LIST client|server / luari query string required=false"
    .. " multiple=false default=client allowed=LIST client",
  "differs: channels POST /channels/externalMedia param encapsulation: Asterisk query string required=false"
    .. " multiple=false default=rtp allowed=LIST rtp|audiosocket|none / luari query string required=false"
    .. " multiple=false default=rtp allowed=LIST rtp|audiosocket",
  "differs: channels POST /channels/externalMedia param external_host: Asterisk query string required=false"
    .. " multiple=false default=nil allowed=- / luari query string required=true multiple=false default=nil allowed=-",
  "differs: channels POST /channels/externalMedia param transport: Asterisk query string required=false"
    .. " multiple=false default=udp allowed=LIST udp|tcp|websocket / luari query string required=false"
    .. " multiple=false default=udp allowed=LIST udp|tcp",
  "missing: channels POST /channels/externalMedia param transport_data (query string required=false"
    .. " multiple=false default=nil allowed=-)",
  "missing: channels POST /channels/{channelId}/variable param report_events (query boolean required=false"
    .. " multiple=false default=false allowed=-)",
}

describe("the simulator's api-docs", function()
  it("list the resources Asterisk lists, in its order", function()
    local want, have = captured("resources"), generated("resources")
    assert.are.equal(want.apiVersion, have.apiVersion)
    assert.are.equal(want.swaggerVersion, have.swaggerVersion)
    assert.are.equal(want.basePath, have.basePath)
    assert.are.same(want.apis, have.apis)
  end)

  it("describe every resource's header as Asterisk does", function()
    for _, name in ipairs(RESOURCES) do
      local want, have = captured(name), generated(name)
      for _, k in ipairs({ "apiVersion", "swaggerVersion", "basePath", "resourcePath" }) do
        assert.are.equal(want[k], have[k], name .. " " .. k)
      end
    end
  end)

  it("have the same operations and parameters (except the known ones)", function()
    local want, have = {}, {}
    for _, name in ipairs(RESOURCES) do
      for k, v in pairs(operation_lines(captured(name), name)) do
        want[k] = v
      end
      for k, v in pairs(operation_lines(generated(name), name)) do
        have[k] = v
      end
    end
    assert.are.same(KNOWN, differences(want, have))
  end)

  it("have the same models, property for property", function()
    for _, name in ipairs(RESOURCES) do
      assert.are.same({}, differences(model_lines(captured(name), name), model_lines(generated(name), name)))
    end
  end)

  it("notice a difference (the comparison itself can fail)", function()
    local doc = captured("playbacks")
    local changed = cjson.decode(cjson.encode(doc))
    changed.models.Playback.properties.state.required = false
    changed.apis[1].operations[1].nickname = "fetch"
    local d = differences(model_lines(doc, "p"), model_lines(changed, "p"))
    assert.are.equal(1, #d)
    assert.are.equal(1, #differences(operation_lines(doc, "p"), operation_lines(changed, "p")))
  end)

  it("give each event type the simulator sends a model (ari-client throws without one)", function()
    local events = apidocs.document("events").models
    for _, t in ipairs({ "StasisStart", "StasisEnd", "ChannelStateChange", "ChannelDtmfReceived", "Dial",
      "ChannelVarset", "ChannelDialplan", "ChannelHangupRequest", "ChannelDestroyed", "PlaybackStarted",
      "PlaybackContinuing", "PlaybackFinished", "RecordingStarted", "RecordingFinished", "RecordingFailed",
      "ChannelCallerId", "ChannelConnectedLine", "ChannelEnteredBridge", "ChannelLeftBridge",
      "BridgeDestroyed", "ApplicationMoveFailed", "ApplicationReplaced", "ChannelUserevent", "RESTResponse" }) do
      assert.is_table(events[t], t)
    end
    assert.are.equal("Channel", events.StasisStart.properties.channel.type)
    assert.are.equal("Playback", events.PlaybackFinished.properties.playback.type)
  end)
end)
