-- The other ARI resources: /asterisk (info, ping), /applications (list,
-- get, subscriptions), /sounds, /endpoints, /deviceStates, /mailboxes and
-- /events/user. Shapes are those of Asterisk 22.10.1; the simulated server
-- has no endpoints, modules or log channels of its own.

local json = require "luari.json"
local U = require "luari.sim.model.util"
local lib = require "luari.sim.model.lib"

local H = {}

local VERSION = "22.10.1"

local INFO_PARTS = { "build", "system", "config", "status" }

local function info(m)
  return {
    build = {
      os = "Linux", kernel = "6.1.0", machine = "x86_64", options = "OPTIONAL_API",
      date = os.date("!%Y-%m-%d %H:%M:%S UTC", math.floor(m.epoch)), user = "root",
    },
    system = { version = VERSION, entity_id = m.asterisk_id },
    config = { name = "", default_language = "en", setid = { user = "", group = "" } },
    status = { startup_time = m.startup_time, last_reload_time = m.startup_time },
  }
end

H["asterisk.getInfo"] = function(m, req)
  local all = info(m)
  local only = U.split_nonempty(req.args.only)
  if #only == 0 then
    return U.ok(all)
  end
  local out = {}
  for _, part in ipairs(INFO_PARTS) do
    for _, want in ipairs(only) do
      if want == part then
        out[part] = all[part]
      end
    end
  end
  return U.ok(out)
end

H["asterisk.ping"] = function(m)
  return U.ok({ ping = "pong", timestamp = m:ts(), asterisk_id = m.asterisk_id })
end

H["asterisk.listModules"] = function()
  return U.ok(json.array({}))
end

local function no_module()
  return U.fail(404, "Module could not be found in running modules")
end

H["asterisk.getModule"] = no_module
H["asterisk.loadModule"] = function()
  return U.fail(409, "Module could not be loaded")
end
H["asterisk.unloadModule"] = no_module
H["asterisk.reloadModule"] = no_module

H["asterisk.listLogChannels"] = function()
  return U.ok(json.array({}))
end

local function no_log_channel()
  return U.fail(404, "Log channel does not exist")
end

H["asterisk.addLog"] = function()
  return U.fail(400, "Log channel could not be added")
end
H["asterisk.deleteLog"] = no_log_channel
H["asterisk.rotateLog"] = no_log_channel

local function no_config()
  return U.fail(404, "Object not found")
end

H["asterisk.getObject"] = no_config
H["asterisk.deleteObject"] = no_config
H["asterisk.updateObject"] = function()
  return U.fail(400, "Could not find configuration object")
end

-- The Application JSON: what the app is subscribed to.
function H.app_json(rec)
  local channel_ids, bridge_ids
  if rec.subscribe_all then
    channel_ids = { "__AST_CHANNEL_ALL_TOPIC" }
    bridge_ids = { "__AST_BRIDGE_ALL_TOPIC" }
  else
    channel_ids = U.sorted_keys(rec.channels)
    bridge_ids = U.sorted_keys(rec.bridges)
  end
  return {
    name = rec.name,
    channel_ids = json.array(channel_ids),
    bridge_ids = json.array(bridge_ids),
    endpoint_ids = json.array(rec.subscribe_all and { "__AST_ENDPOINT_ALL_TOPIC" } or U.sorted_keys(rec.endpoints)),
    device_names = json.array(rec.subscribe_all and { "__AST_DEVICE_STATE_ALL_TOPIC" } or U.sorted_keys(rec.devices)),
    events_allowed = json.array(U.copy(rec.events_allowed)),
    events_disallowed = json.array(U.copy(rec.events_disallowed)),
  }
end

local function connected_app(m, name)
  local rec = m.apps[name]
  if rec and rec.connected then
    return rec
  end
end

H["applications.list"] = function(m)
  local out = {}
  for _, name in ipairs(U.sorted_keys(m.apps)) do
    if m.apps[name].connected then
      out[#out + 1] = H.app_json(m.apps[name])
    end
  end
  return U.ok(json.array(out))
end

H["applications.get"] = function(m, req)
  local rec = connected_app(m, req.params.applicationName)
  if not rec then
    return U.fail(404, "Application not found")
  end
  return U.ok(H.app_json(rec))
end

-- Applies one event source ("channel:ID", "bridge:ID", "endpoint:T/R",
-- "deviceState:NAME"); returns nil or status, message.
local function apply_source(m, rec, source, on)
  local scheme, id = source:match("^(%a+):(.*)$")
  if scheme == "channel" then
    local ch = m.channels[id]
    if not ch then
      return 422, "Event source does not exist"
    end
    if on then
      lib.channels.subscribe(m, ch, rec.name, "explicit")
    elseif not lib.channels.unsubscribe(m, ch, rec.name, "explicit") then
      return 422, "Event source was not subscribed to"
    end
  elseif scheme == "bridge" then
    local b = m.bridges[id]
    if not b then
      return 422, "Event source does not exist"
    end
    if not on and (b.subs[rec.name] or 0) <= 0 then
      return 422, "Event source was not subscribed to"
    end
    lib.bridges.subscribe(m, b, rec.name, on and 1 or -1)
  elseif scheme == "endpoint" or scheme == "deviceState" then
    local set = scheme == "endpoint" and rec.endpoints or rec.devices
    if not on and not set[id] then
      return 422, "Event source was not subscribed to"
    end
    set[id] = on or nil
  else
    return 400, "Invalid event source URI scheme"
  end
end

local function subscription(on)
  return function(m, req)
    local sources = U.split_nonempty(req.args.eventSource)
    if #sources == 0 then
      return U.fail(400, "Missing parameter eventSource")
    end
    local rec = connected_app(m, req.params.applicationName)
    if not rec then
      return U.fail(404, "Application not found")
    end
    for _, source in ipairs(sources) do
      local status, message = apply_source(m, rec, source, on)
      if status then
        return U.fail(status, message)
      end
    end
    return U.ok(H.app_json(rec))
  end
end

H["applications.subscribe"] = subscription(true)
H["applications.unsubscribe"] = subscription(false)

H["applications.filter"] = function(m, req)
  local rec = connected_app(m, req.params.applicationName)
  if not rec then
    return U.fail(404, "Application not found")
  end
  local filter = type(req.body) == "table" and req.body or {}
  local function types(list)
    local out = {}
    for _, item in ipairs(type(list) == "table" and list or {}) do
      if type(item) == "table" and type(item.type) == "string" then
        out[#out + 1] = { type = item.type }
      end
    end
    return out
  end
  rec.events_allowed = types(filter.allowed)
  rec.events_disallowed = types(filter.disallowed)
  return U.ok(H.app_json(rec))
end

local function sound_json(name)
  return {
    id = name,
    formats = json.array({ { language = "en", format = "gsm" }, { language = "en", format = "slin" } }),
  }
end

H["sounds.list"] = function(m)
  local out = {}
  for _, name in ipairs(lib.sounds.known_names(m)) do
    out[#out + 1] = sound_json(name)
  end
  return U.ok(json.array(out))
end

H["sounds.get"] = function(m, req)
  local name = req.params.soundId
  if not lib.sounds.exists(m, name) then
    return U.fail(404, "Sound not found")
  end
  return U.ok(sound_json(name))
end

H["endpoints.list"] = function()
  return U.ok(json.array({}))
end

H["endpoints.listByTech"] = function(_, req)
  return U.fail(404, "No Endpoints found - invalid tech " .. req.params.tech)
end

H["endpoints.get"] = function()
  return U.fail(404, "Endpoint not found")
end

local function no_endpoint()
  return U.fail(404, "Endpoint not found")
end

H["endpoints.sendMessage"] = no_endpoint
H["endpoints.sendMessageToEndpoint"] = no_endpoint
H["endpoints.refer"] = no_endpoint
H["endpoints.referToEndpoint"] = no_endpoint

H["deviceStates.list"] = function(m)
  local out = {}
  for _, name in ipairs(U.sorted_keys(m.device_states)) do
    out[#out + 1] = { name = name, state = m.device_states[name] }
  end
  return U.ok(json.array(out))
end

H["deviceStates.get"] = function(m, req)
  local name = req.params.deviceName
  return U.ok({ name = name, state = m.device_states[name] or "UNKNOWN" })
end

H["deviceStates.update"] = function(m, req)
  local name = req.params.deviceName
  if not name:match("^Stasis:") then
    return U.fail(409, "Uncontrolled device specified")
  end
  if U.empty(req.args.deviceState) then
    return U.fail(400, "Missing deviceState")
  end
  m.device_states[name] = req.args.deviceState
  return U.no_content()
end

H["deviceStates.delete"] = function(m, req)
  local name = req.params.deviceName
  if not name:match("^Stasis:") then
    return U.fail(409, "Uncontrolled device specified")
  end
  if not m.device_states[name] then
    return U.fail(404, "Device name is missing")
  end
  m.device_states[name] = nil
  return U.no_content()
end

H["mailboxes.list"] = function(m)
  local out = {}
  for _, name in ipairs(U.sorted_keys(m.mailboxes)) do
    out[#out + 1] = U.copy(m.mailboxes[name])
  end
  return U.ok(json.array(out))
end

H["mailboxes.get"] = function(m, req)
  local box = m.mailboxes[req.params.mailboxName]
  if not box then
    return U.fail(404, "Mailbox not found")
  end
  return U.ok(U.copy(box))
end

H["mailboxes.update"] = function(m, req)
  local name = req.params.mailboxName
  m.mailboxes[name] = {
    name = name,
    old_messages = U.int(req.args.oldMessages, 0),
    new_messages = U.int(req.args.newMessages, 0),
  }
  return U.no_content()
end

H["mailboxes.delete"] = function(m, req)
  if not m.mailboxes[req.params.mailboxName] then
    return U.fail(404, "Mailbox not found")
  end
  m.mailboxes[req.params.mailboxName] = nil
  return U.no_content()
end

-- POST /events/user/{eventName}: a ChannelUserevent for the application.
H["events.userEvent"] = function(m, req)
  local app = req.args.application
  if U.empty(app) then
    return U.fail(400, "Missing parameter application")
  end
  if not connected_app(m, app) then
    return U.fail(404, "Application not found")
  end
  local ev = lib.channels.event(m, "ChannelUserevent")
  ev.eventname = req.params.eventName
  ev.userevent = type(req.vars) == "table" and U.copy(req.vars) or {}
  for _, source in ipairs(U.split_nonempty(req.args.source)) do
    local scheme, id = source:match("^(%a+):(.*)$")
    if scheme == "channel" and m.channels[id] then
      ev.channel = lib.channels.snapshot(m.channels[id])
    elseif scheme == "bridge" and m.bridges[id] then
      ev.bridge = lib.bridges.to_json(m.bridges[id])
    else
      return U.fail(422, "Event source not found")
    end
  end
  lib.channels.deliver(m, { app }, ev)
  return U.no_content()
end

H["events.eventWebsocket"] = function()
  -- The network face upgrades /events itself; a plain GET is refused.
  return U.fail(400, "Request must be a WebSocket upgrade")
end

H["events.claimChannel"] = function()
  return U.fail(404, "Channel not found")
end

return H
