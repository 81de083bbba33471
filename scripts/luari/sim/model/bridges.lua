-- Bridges: create, list, get, destroy, add and remove channels, play and
-- record on a bridge, and BRIDGEPEER.
--
-- An application is subscribed to a bridge while one of its Stasis channels
-- is in it (so it hears the bridge's playbacks) and when it subscribes with
-- POST /applications/{app}/subscription; only the latter lasts until the
-- bridge is destroyed, so only then does it see BridgeDestroyed. Playing to
-- a bridge puts an internal Announcer channel into it for the playbacks'
-- time (it shows in BRIDGEPEER, never in "channels").

local json = require "luari.json"
local U = require "luari.sim.model.util"
local lib = require "luari.sim.model.lib"

local B = {}
lib.bridges = B

local H = {}
B.handlers = H

local function C()
  return lib.channels
end

local TYPES = {
  mixing = true, holding = true, dtmf_events = true, proxy_media = true,
  video_sfu = true, video_single = true, sdp_label = true,
}

local function real_members(b)
  local out = {}
  for _, ch in ipairs(b.members) do
    if not ch.internal then
      out[#out + 1] = ch
    end
  end
  return out
end

function B.to_json(b)
  local ids = {}
  for _, ch in ipairs(real_members(b)) do
    ids[#ids + 1] = ch.id
  end
  local technology = "simple_bridge"
  if b.bridge_type == "holding" then
    technology = "holding_bridge"
  elseif #ids > 2 then
    technology = "softmix"
  end
  return {
    id = b.id, technology = technology, bridge_type = b.bridge_type,
    bridge_class = "stasis", creator = "Stasis", name = b.name,
    channels = json.array(ids), creationtime = b.creationtime,
    video_mode = b.bridge_type == "holding" and "none" or "talker",
  }
end

-- count > 0: the app hears the bridge's events.
function B.subscribe(m, b, app, delta)
  if b.subs[app] == nil then
    b.subs[app] = 0
    b.sub_order[#b.sub_order + 1] = app
  end
  b.subs[app] = b.subs[app] + delta
  local rec = m:app_record(app)
  rec.bridges[b.id] = b.subs[app] > 0 or nil
end

local function publish_channel(m, b, ch, type_)
  local apps = C().recipients(m, ch, b)
  if #apps == 0 then
    return
  end
  local ev = C().event(m, type_, ch)
  ev.bridge = B.to_json(b)
  C().deliver(m, apps, ev)
end

-- BRIDGEPEER on every member: the other member's name, or with more than
-- two the others' names, latest first. Not updated below two members.
local function update_peers(m, b)
  if b.bridge_type == "holding" or #b.members < 2 then
    return
  end
  for _, ch in ipairs(b.members) do
    if not ch.internal then
      local names = {}
      for i = #b.members, 1, -1 do
        local other = b.members[i]
        if other ~= ch then
          names[#names + 1] = other.name
        end
      end
      C().varset(m, ch, "BRIDGEPEER", table.concat(names, ","))
    end
  end
end

function B.join(m, b, ch)
  if ch.bridge == b then
    return
  end
  if ch.bridge then
    B.leave(m, ch.bridge, ch)
  end
  b.members[#b.members + 1] = ch
  ch.bridge = b
  if ch.stasis then
    ch.bridge_app = ch.stasis
    B.subscribe(m, b, ch.stasis, 1)
  end
  if not ch.internal then
    publish_channel(m, b, ch, "ChannelEnteredBridge")
  end
  update_peers(m, b)
end

function B.leave(m, b, ch)
  for i, member in ipairs(b.members) do
    if member == ch then
      table.remove(b.members, i)
      break
    end
  end
  ch.bridge = nil
  if not ch.internal then
    if not U.empty(ch.vars.BRIDGEPEER) then
      C().varset(m, ch, "BRIDGEPEER", "")
    end
    publish_channel(m, b, ch, "ChannelLeftBridge")
  end
  if ch.bridge_app then
    B.subscribe(m, b, ch.bridge_app, -1)
    ch.bridge_app = nil
  end
  update_peers(m, b)
end

-- The internal channel (Announcer, Recorder) that plays or records in a
-- bridge; it leaves once it has nothing left to do.
function B.media_channel(m, b, kind)
  local key = kind:lower()
  local ch = b[key]
  if ch then
    return ch
  end
  local seq = m.unreal_seq
  m.unreal_seq = seq + 1
  ch = {
    id = kind .. "/ARI-" .. U.hex8(seq), name = string.format("%s/ARI-%s;2", kind, U.hex8(seq)),
    internal = true, vars = {}, subs = {}, timers = {}, media = "none", state = "Up",
  }
  b[key] = ch
  ch.on_idle = function()
    b[key] = nil
    if ch.bridge then
      B.leave(m, b, ch)
    end
  end
  if kind == "Announcer" then
    B.join(m, b, ch)
  end
  return ch
end

local function find_bridge(m, id)
  local b = m.bridges[id]
  if not b then
    return nil, { U.fail(404, "Bridge not found") }
  end
  return b
end

local function create(m, a, id)
  id = not U.empty(id) and id or m:uuid()
  if m.bridges[id] then
    return U.fail(409, string.format("Bridge with id '%s' already exists", id))
  end
  local bridge_type = "mixing"
  for _, t in ipairs(U.split_nonempty(a.type)) do
    if not TYPES[t] then
      return U.fail(500, "Unable to create bridge", "Internal Error")
    end
    if t == "holding" then
      bridge_type = "holding"
    end
  end
  local b = {
    id = id, bridge_type = bridge_type, name = a.name or "", creationtime = m:ts(),
    members = {}, subs = {}, sub_order = {}, vars = {},
  }
  m.bridges[id] = b
  return U.ok(B.to_json(b))
end

H["bridges.create"] = function(m, req)
  return create(m, req.args, req.args.bridgeId)
end

H["bridges.createWithId"] = function(m, req)
  return create(m, req.args, req.params.bridgeId)
end

H["bridges.list"] = function(m)
  local out = {}
  for _, id in ipairs(U.sorted_keys(m.bridges)) do
    out[#out + 1] = B.to_json(m.bridges[id])
  end
  return U.ok(json.array(out))
end

H["bridges.get"] = function(m, req)
  local b, err = find_bridge(m, req.params.bridgeId)
  if not b then
    return unpack(err)
  end
  return U.ok(B.to_json(b))
end

local function stop_internal(m, ch)
  if ch then
    C().flush_commands(m, ch, "hangup")
    for slot in pairs(ch.timers) do
      m:cancel(slot)
    end
  end
end

function B.destroy(m, b)
  stop_internal(m, b.announcer)
  stop_internal(m, b.recorder)
  b.announcer, b.recorder = nil, nil
  for i = #b.members, 1, -1 do
    local ch = b.members[i]
    if ch then
      B.leave(m, b, ch)
    end
  end
  local apps = C().recipients(m, nil, b)
  if #apps > 0 then
    local ev = C().event(m, "BridgeDestroyed")
    ev.bridge = B.to_json(b)
    C().deliver(m, apps, ev)
  end
  m.bridges[b.id] = nil
  for app in pairs(b.subs) do
    local rec = m.apps[app]
    if rec then
      rec.bridges[b.id] = nil
    end
  end
end

H["bridges.destroy"] = function(m, req)
  local b, err = find_bridge(m, req.params.bridgeId)
  if not b then
    return unpack(err)
  end
  B.destroy(m, b)
  return U.no_content()
end

-- The channels named by `channel`, all in Stasis; nil, reply otherwise.
local function stasis_channels(m, a)
  local ids = U.split_nonempty(a.channel)
  if #ids == 0 then
    return nil, { U.fail(400, "Missing parameter channel") }
  end
  local list = {}
  for _, id in ipairs(ids) do
    local ch = m.channels[id]
    if not ch then
      return nil, { U.fail(400, "Channel not found") }
    end
    if not ch.stasis then
      return nil, { U.fail(422, "Channel not in Stasis application") }
    end
    list[#list + 1] = ch
  end
  return list
end

H["bridges.addChannel"] = function(m, req)
  local b, err = find_bridge(m, req.params.bridgeId)
  if not b then
    return unpack(err)
  end
  local list
  list, err = stasis_channels(m, req.args)
  if not list then
    return unpack(err)
  end
  for _, ch in ipairs(list) do
    if ch.recording then
      return U.fail(409, string.format("Channel %s currently recording", ch.id))
    end
    B.join(m, b, ch)
  end
  return U.no_content()
end

H["bridges.removeChannel"] = function(m, req)
  local b, err = find_bridge(m, req.params.bridgeId)
  if not b then
    return unpack(err)
  end
  local list
  list, err = stasis_channels(m, req.args)
  if not list then
    return unpack(err)
  end
  for _, ch in ipairs(list) do
    if ch.bridge ~= b then
      return U.fail(422, "Channel not in this bridge")
    end
  end
  for _, ch in ipairs(list) do
    B.leave(m, b, ch)
  end
  return U.no_content()
end

local function play(m, req, id)
  local b, err = find_bridge(m, req.params.bridgeId)
  if not b then
    return unpack(err)
  end
  local o
  o, err = lib.playbacks.options(req.args, "en")
  if not o then
    return unpack(err)
  end
  if #o.media == 0 then
    return U.alloc_failed()
  end
  o.id = not U.empty(id) and id or nil
  o.target_uri = "bridge:" .. b.id
  o.bridge = b
  local pb = lib.playbacks.start(m, B.media_channel(m, b, "Announcer"), o)
  return 201, "Created", lib.playbacks.to_json(pb, "queued"), { Location = "/ari/playbacks/" .. pb.id }
end

H["bridges.play"] = function(m, req)
  return play(m, req, req.args.playbackId)
end

H["bridges.playWithId"] = function(m, req)
  return play(m, req, req.params.playbackId)
end

H["bridges.record"] = function(m, req)
  local b, err = find_bridge(m, req.params.bridgeId)
  if not b then
    return unpack(err)
  end
  return lib.recordings.record_bridge(m, b, req.args)
end

H["bridges.startMoh"] = function(m, req)
  local b, err = find_bridge(m, req.params.bridgeId)
  if not b then
    return unpack(err)
  end
  b.moh = true
  return U.no_content()
end

H["bridges.stopMoh"] = function(m, req)
  local b, err = find_bridge(m, req.params.bridgeId)
  if not b then
    return unpack(err)
  end
  if not b.moh then
    return U.fail(409, "Bridge isn't playing music")
  end
  b.moh = nil
  return U.no_content()
end

H["bridges.setVideoSource"] = function(m, req)
  local b, err = find_bridge(m, req.params.bridgeId)
  if not b then
    return unpack(err)
  end
  local ch = m.channels[req.params.channelId]
  if not ch then
    return U.fail(400, "Channel not found")
  end
  if not ch.stasis then
    return U.fail(422, "Channel not in Stasis application")
  end
  if ch.bridge ~= b then
    return U.fail(422, "Channel not in this bridge")
  end
  return U.no_content()
end

H["bridges.clearVideoSource"] = function(m, req)
  local b, err = find_bridge(m, req.params.bridgeId)
  if not b then
    return unpack(err)
  end
  return U.no_content()
end

H["bridges.getBridgeVar"] = function(m, req)
  if U.empty(req.args.variable) then
    return U.fail(400, "Variable name is required")
  end
  local b = m.bridges[req.params.bridgeId]
  if not b then
    return U.fail(404, "Provided bridge was not found", "Bridge Not Found")
  end
  local v = b.vars[req.args.variable]
  if v == nil then
    return U.fail(404, "Provided variable was not found", "Variable Not Found")
  end
  return U.ok({ value = v })
end

H["bridges.setBridgeVar"] = function(m, req)
  if U.empty(req.args.variable) then
    return U.fail(400, "Variable name is required")
  end
  local b = m.bridges[req.params.bridgeId]
  if not b then
    return U.fail(404, "Provided bridge was not found", "Bridge Not Found")
  end
  b.vars[req.args.variable] = req.args.value
  return U.no_content()
end

H["bridges.getBridgeVars"] = function(m, req)
  local names = U.split_nonempty(req.args.variables)
  if #names == 0 then
    return U.fail(400, "The 'variables' field is required")
  end
  local b = m.bridges[req.params.bridgeId]
  if not b then
    return U.fail(404, "Provided bridge was not found", "Bridge Not Found")
  end
  local out = {}
  for _, name in ipairs(names) do
    if b.vars[name] == nil then
      return U.fail(404, "Provided variable was not found", "Variable Not Found")
    end
    out[name] = b.vars[name]
  end
  return U.ok({ variables = out })
end

H["bridges.setBridgeVars"] = function(m, req)
  if req.vars == nil then
    return U.fail(400, "The 'variables' field is required")
  end
  local b = m.bridges[req.params.bridgeId]
  if not b then
    return U.fail(404, "Provided bridge was not found", "Bridge Not Found")
  end
  if type(req.vars) ~= "table" then
    return U.fail(400, "The 'variables' field must be a JSON object")
  end
  for name, value in pairs(req.vars) do
    if type(value) ~= "string" then
      return U.fail(400, "Only string values in the 'variables' object allowed")
    end
    b.vars[name] = value
  end
  return U.no_content()
end

return B
