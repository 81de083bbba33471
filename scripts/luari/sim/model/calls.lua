-- How channels come to be: originate (into an app or the dialplan),
-- create + dial, externalMedia, snoop, and the simulated caller whose call
-- enters Stasis from the dialplan. Checks run in the order res_ari runs
-- them, so a request with several faults gets Asterisk's answer.

local U = require "luari.sim.model.util"
local lib = require "luari.sim.model.lib"

local K = {}
lib.calls = K

-- Channel technologies the simulated Asterisk has (lower case -> name).
local TECHS = {
  ["local"] = "Local", pjsip = "PJSIP", sip = "SIP", iax2 = "IAX2",
  dahdi = "DAHDI", motif = "Motif", console = "Console",
  unicastrtp = "UnicastRTP", audiosocket = "AudioSocket", websocket = "WebSocket",
}

local function C()
  return lib.channels
end

-- "Local/1000@wait" -> "Local", "1000@wait"; nil when tech or resource is empty.
local function split_endpoint(endpoint)
  local tech, resource = endpoint:match("^([^/]*)/(.*)$")
  if U.empty(tech) or U.empty(resource) then
    return nil
  end
  return tech, resource
end

-- "1000@wait/n" -> "1000", "wait"
local function local_target(resource)
  local dest = resource:match("^([^/]*)")
  local exten, context = dest:match("^([^@]*)@(.*)$")
  if not exten then
    exten, context = dest, "default"
  end
  return exten, context
end

local function seq_name(m, tech, resource)
  local n = m.tech_seq[tech] or 0
  m.tech_seq[tech] = n + 1
  local device = resource:match("@(.+)$") or resource
  return string.format("%s/%s-%s", tech, device, U.hex8(n))
end

-- Checks the `variables` body field; returns nil or an error reply.
local function check_vars(vars)
  if vars == nil then
    return nil
  end
  if type(vars) ~= "table" then
    return { U.fail(400, "Only string values in the 'variables' object allowed") }
  end
  for _, v in pairs(vars) do
    if type(v) ~= "string" then
      return { U.fail(400, "Only string values in the 'variables' object allowed") }
    end
  end
  return nil
end

local function check_formats(formats)
  for _, f in ipairs(U.split_nonempty(formats)) do
    if not U.CODECS[f] then
      return { U.fail(400, string.format("Provided format (%s) was not found", f)) }
    end
  end
  return nil
end

local CALLERID_FIELDS = { name = "name", num = "number", number = "number" }

-- Variables given at originate/create: functions change the channel,
-- the rest become channel variables. Returns the plain names, sorted.
local function apply_vars(m, ch, vars, emit)
  local names = {}
  for _, name in ipairs(U.sorted_keys(vars or {})) do
    local value = vars[name]
    local fn, arg = name:match("^(%u+)%((.-)%)$")
    if fn == "CALLERID" and CALLERID_FIELDS[arg] then
      ch["caller_" .. CALLERID_FIELDS[arg]] = value
    elseif fn == "CALLERID" and arg == "all" then
      ch.caller_name, ch.caller_number = C().parse_callerid(value)
    elseif fn == "CONNECTEDLINE" and CALLERID_FIELDS[arg] then
      ch["connected_" .. CALLERID_FIELDS[arg]] = value
    elseif not fn then
      if emit then
        C().varset(m, ch, name, value)
      else
        ch.vars[name] = value
      end
      names[#names + 1] = name
    end
  end
  return names
end

-- Allocates the channel(s) for an endpoint: the two halves of a Local
-- channel or one channel. Returns near, far; or nil, nil, reply.
local function alloc(m, tech, resource, ids, t)
  if tech == "Local" then
    local seq = m.unreal_seq
    m.unreal_seq = seq + 1
    local exten, context = local_target(resource)
    local base = string.format("Local/%s@%s-%s", exten, context, U.hex8(seq))
    local near_id = C().alloc_id(m, ids.near)
    if not near_id then
      return nil, nil, { U.fail(409, "Channel with given unique ID already exists") }
    end
    local near = C().new(m, {
      id = near_id, name = base .. ";1", tech = "Local", kind = t.kind,
      context = context, exten = exten, app_name = t.app_name, app_data = t.app_data,
      rest_app_name = t.app_name, rest_app_data = t.app_data,
    })
    local far_wanted = ids.far or (not U.empty(ids.near) and (ids.near .. ";2")) or nil
    local far_id = C().alloc_id(m, far_wanted)
    if not far_id then
      C().discard(m, near)
      return nil, nil, { U.fail(409, "Channel with given unique ID already exists") }
    end
    local far = C().new(m, {
      id = far_id, name = base .. ";2", tech = "Local", kind = "far",
      context = context, exten = exten,
    })
    near.half, far.half = 1, 2
    near.peer, far.peer = far, near
    near.local_seq = seq
    near.dialstring = exten .. "@" .. context
    return near, far
  end
  local id = C().alloc_id(m, ids.near)
  if not id then
    return nil, nil, { U.fail(409, "Channel with given unique ID already exists") }
  end
  local ch = C().new(m, {
    id = id, name = t.name or seq_name(m, tech, resource), tech = tech, kind = t.kind,
    app_name = t.app_name, app_data = t.app_data,
    rest_app_name = t.app_name, rest_app_data = t.app_data,
  })
  ch.dialstring = t.dialstring or resource
  return ch
end

-- A second dial of a created Local channel whose far half is gone.
local function new_far(m, near)
  local far = C().new(m, {
    id = C().alloc_id(m, nil), name = near.name:gsub(";1$", ";2"), tech = "Local",
    kind = "far", context = near.context, exten = near.exten,
  })
  far.half, near.peer, far.peer = 2, far, near
  return far
end

-- Calls the far end of `near` (it rings, answers or refuses), reporting
-- through h.answered(), h.ringing(), h.failed(status, cause),
-- h.unreachable().
function K.call(m, near, h)
  local far = near.peer
  if near.tech ~= "Local" then
    return h.answered()
  end
  if not far then
    far = new_far(m, near)
  end
  if not lib.dialplan.exists(far.context) then
    return h.unreachable()
  end
  -- What the Local core hands to the far half when it calls it.
  far.caller_name, far.caller_number = near.connected_name, near.connected_number
  far.connected_name, far.connected_number = near.caller_name, near.caller_number
  far.state = "Ring"
  far.dialer = h
  lib.dialplan.run(m, far, far.context, far.exten, 1)
end

local function start_timeout(m, ch, seconds, fn)
  if seconds then
    ch.dial_timer = m:after(ch, seconds, fn)
  end
end

local function stop_timeout(m, ch)
  if ch.dial_timer then
    m:cancel(ch.dial_timer)
    ch.dial_timer = nil
  end
end

-- The dialing half of an originate, once the reply has gone out.
local function originate_dial(m, near, o)
  local far = near.peer
  if far then
    far.state = "Ring"
    for _, name in ipairs(o.var_names) do
      C().varset(m, far, name, near.vars[name])
    end
    -- The Local core swaps the parties: the far half's caller is the near
    -- half's connected line and the other way round.
    far.caller_name, far.caller_number = near.connected_name, near.connected_number
    far.connected_name, far.connected_number = near.caller_name, near.caller_number
    if far.caller_name ~= "" or far.caller_number ~= "" then
      C().callerid_event(m, far)
    end
    if far.connected_name ~= "" or far.connected_number ~= "" then
      C().emit(m, far, "ChannelConnectedLine")
    end
  end
  if far and not lib.dialplan.exists(far.context) then
    return C().hangup(m, near, 16, "quiet")
  end
  C().dial_event(m, near, "", near.dialstring)
  start_timeout(m, near, o.timeout, function()
    C().hangup(m, near, 19, "quiet")
  end)
  K.call(m, near, {
    answered = function()
      stop_timeout(m, near)
      C().set_state(m, near, "Up")
      C().dial_event(m, near, "ANSWER", near.dialstring)
      if o.app then
        C().enter_stasis(m, near, o.app, o.app_args)
      else
        lib.dialplan.run(m, near, o.context, o.exten, o.priority)
      end
    end,
    ringing = function()
      C().set_state(m, near, "Ringing")
      C().dial_event(m, near, "RINGING", near.dialstring)
    end,
    failed = function(status, cause)
      stop_timeout(m, near)
      C().dial_event(m, near, status, near.dialstring)
      C().hangup(m, near, 0, "quiet", cause)
    end,
    unreachable = function()
      stop_timeout(m, near)
      C().hangup(m, near, 16, "quiet")
    end,
  })
end

-- Parses the originate arguments; returns o or nil, reply.
local function originate_args(m, a)
  if U.empty(a.endpoint) then
    return nil, { U.fail(400, "Endpoint must be specified") }
  end
  if not U.empty(a.originator) and not U.empty(a.formats) then
    return nil, { U.fail(400, "Originator and formats can't both be specified") }
  end
  local tech, resource = split_endpoint(a.endpoint)
  if not tech then
    return nil, { U.fail(400, "Invalid endpoint specified") }
  end
  local o = { tech = tech, resource = resource }
  if not U.empty(a.app) then
    o.app, o.app_args = a.app, a.appArgs
  elseif not U.empty(a.extension) then
    o.context = U.empty(a.context) and "default" or a.context
    o.exten = a.extension
    if not U.empty(a.label) then
      local p = U.scan_int(a.label)
      if not p then
        return nil, { U.fail(404, "Requested label can not be found") }
      elseif p == 0 then
        return nil, { U.fail(400, "Requested priority is illegal") }
      end
      o.priority = p
    else
      local p = U.int(a.priority, 0)
      o.priority = p ~= 0 and p or 1
    end
  else
    return nil, { U.fail(400, "Application or extension must be specified") }
  end
  local timeout = U.int(a.timeout, 30)
  o.timeout = timeout > 0 and timeout or (timeout ~= -1 and 30 or nil)
  local err = check_formats(a.formats)
  if err then
    return nil, err
  end
  if not U.empty(a.originator) and not m.channels[a.originator] then
    return nil, { U.fail(400, "Provided originator channel was not found") }
  end
  return o
end

-- POST /channels and POST /channels/{channelId}.
function K.originate(m, req, path_id)
  local a = req.args
  local err = check_vars(req.vars)
  if err then
    return unpack(err)
  end
  local o, reply = originate_args(m, a)
  if not o then
    return unpack(reply)
  end
  local tech = TECHS[o.tech:lower()]
  if not tech then
    return U.alloc_failed()
  end
  local near, far, fail = alloc(m, tech, o.resource, { near = path_id or a.channelId, far = a.otherChannelId }, {
    kind = "originated", app_name = "AppDial2", app_data = "(Outgoing Line)",
  })
  if not near then
    return unpack(fail)
  end
  if not U.empty(a.callerId) then
    local name, number = C().parse_callerid(a.callerId)
    near.caller_name, near.caller_number = name, number
    near.connected_name, near.connected_number = name, number
  end
  o.var_names = apply_vars(m, near, req.vars, false)
  if o.app then
    C().subscribe(m, near, o.app, "explicit")
    if far then
      C().subscribe(m, far, o.app, "explicit")
    end
  end
  local body = C().snapshot(near)
  m:after(near, 0, function()
    originate_dial(m, near, o)
  end)
  return U.ok(body)
end

-- POST /channels/create: the channel enters Stasis at once, still Down.
function K.create(m, req)
  local a = req.args
  local err = check_vars(req.vars)
  if err then
    return unpack(err)
  end
  if not U.empty(a.originator) and not U.empty(a.formats) then
    return U.fail(400, "Originator and formats can't both be specified")
  end
  if U.empty(a.endpoint) then
    return U.fail(400, "Endpoint must be specified")
  end
  local tech_name, resource = split_endpoint(a.endpoint)
  if not tech_name then
    return U.fail(400, "Invalid endpoint specified")
  end
  local originator = not U.empty(a.originator) and m.channels[a.originator] or nil
  if not originator then
    err = check_formats(a.formats)
    if err then
      return unpack(err)
    end
  end
  local tech = TECHS[tech_name:lower()]
  if not tech then
    return U.alloc_failed()
  end
  local near, _, fail = alloc(m, tech, resource, { near = a.channelId, far = a.otherChannelId }, { kind = "created" })
  if not near then
    return unpack(fail)
  end
  local app = not U.empty(a.app) and a.app or nil
  if app then
    C().subscribe(m, near, app, "explicit")
    if originator then
      C().subscribe(m, originator, app, "explicit")
    end
  end
  local body = C().snapshot(near)
  m:after(near, 0, function()
    apply_vars(m, near, req.vars, true)
    if not app then
      -- Stasis() without an application fails at once.
      return C().hangup(m, near, 16, "quiet")
    end
    local data = U.empty(a.appArgs) and app or (app .. "," .. a.appArgs)
    C().dialplan_step(m, near, near.priority, "Stasis", data)
    C().enter_stasis(m, near, app, a.appArgs)
  end)
  return U.ok(body)
end

-- POST /channels/{channelId}/dial (validated by the caller).
function K.dial(m, near, timeout)
  m:after(near, 0, function()
    if near.tech == "Local" and not lib.dialplan.exists(near.context) then
      -- The Local core finds no such extension: the call fails before Dial.
      return C().hangup(m, near, 16, "quiet")
    end
    C().dial_event(m, near, "", near.dialstring)
    start_timeout(m, near, timeout, function()
      C().hangup(m, near, 19, "app")
    end)
    K.call(m, near, {
      answered = function()
        stop_timeout(m, near)
        C().set_state(m, near, "Up")
        C().dial_event(m, near, "ANSWER", "")
      end,
      ringing = function()
        C().set_state(m, near, "Ringing")
        C().dial_event(m, near, "RINGING", "")
      end,
      failed = function(status, cause)
        stop_timeout(m, near)
        C().dial_event(m, near, status, "")
        local far = near.peer
        if far then
          far.hanging = true
          C().destroy(m, far, cause)
        end
      end,
      unreachable = function()
        stop_timeout(m, near)
        C().hangup(m, near, 16, "quiet")
      end,
    })
  end)
end

local function externalmedia_check(a)
  if U.empty(a.app) then
    return U.fail(400, "app cannot be empty")
  end
  if U.empty(a.external_host) then
    return U.fail(400, "external_host cannot be empty")
  end
  if not a.external_host:match("^.+:%d+$") then
    return U.fail(400, "external_host must be <host>:<port> for all transports other than websocket")
  end
  if U.empty(a.format) then
    return U.fail(400, "format cannot be empty")
  end
  local encapsulation = U.empty(a.encapsulation) and "rtp" or a.encapsulation:lower()
  local transport = U.empty(a.transport) and "udp" or a.transport:lower()
  if encapsulation == "rtp" and transport ~= "udp" then
    return U.fail(400, "transport must be 'udp' for rtp encapsulation")
  end
  if encapsulation ~= "rtp" then
    return U.fail(501, "The encapsulation and/or transport is not supported")
  end
  if not U.CODECS[a.format] then
    return U.fail(500, "An internal error prevented this request from being handled")
  end
end

-- POST /channels/externalMedia (RTP over UDP).
function K.external_media(m, req)
  local a = req.args
  local err = check_vars(req.vars)
  if err then
    return unpack(err)
  end
  local status, reason, body = externalmedia_check(a)
  if status then
    return status, reason, body
  end
  m.rtp_seq = m.rtp_seq + 1
  local name = string.format("UnicastRTP/%s-0x7f%010x", a.external_host, 0x5d001a0a0 + m.rtp_seq * 0x60)
  local ch, _, fail = alloc(m, "UnicastRTP", a.external_host, { near = a.channelId }, {
    kind = "external", name = name, app_name = "AppDial2", app_data = "(Outgoing Line)",
    dialstring = string.format("%s/c(%s)", a.external_host, a.format),
  })
  if not ch then
    return unpack(fail)
  end
  apply_vars(m, ch, req.vars, false)
  ch.vars.UNICASTRTP_LOCAL_ADDRESS = "127.0.0.1"
  ch.vars.UNICASTRTP_LOCAL_PORT = tostring(10000 + 2 * (m.rtp_seq % 5000))
  C().subscribe(m, ch, a.app, "explicit")
  body = C().snapshot(ch)
  body.channelvars = U.copy(ch.vars)
  m:after(ch, 0, function()
    C().dial_event(m, ch, "", ch.dialstring)
    C().set_state(m, ch, "Up")
    C().dial_event(m, ch, "ANSWER", ch.dialstring)
    C().enter_stasis(m, ch, a.app, a.data)
  end)
  return U.ok(body)
end

local SNOOP_DIRECTIONS = { none = true, both = true, out = true, ["in"] = true }

-- POST /channels/{channelId}/snoop and .../snoop/{snoopId}
function K.snoop(m, req, snoop_id)
  local a = req.args
  local spy = U.empty(a.spy) and "none" or a.spy
  local whisper = U.empty(a.whisper) and "none" or a.whisper
  if not SNOOP_DIRECTIONS[spy] then
    return U.fail(400, "Invalid direction specified for spy")
  end
  if not SNOOP_DIRECTIONS[whisper] then
    return U.fail(400, "Invalid direction specified for whisper")
  end
  if spy == "none" and whisper == "none" then
    return U.fail(400, "Direction must be specified for at least spy or whisper")
  end
  if U.empty(a.app) then
    return U.fail(400, "Application name is required")
  end
  local target = m.channels[req.params.channelId]
  if not target then
    return U.fail(404, "Provided channel was not found", "Channel Not Found")
  end
  local id = C().alloc_id(m, snoop_id or a.snoopId)
  if not id then
    return U.fail(500, "Snoop channel could not be created", "Internal error")
  end
  local n = m.snoop_seq
  m.snoop_seq = n + 1
  local snoop = C().new(m, {
    id = id, name = string.format("Snoop/%s-%s", target.id, U.hex8(n)), tech = "Snoop",
    kind = "snoop", state = "Up", media = target.media == "none" and "none" or "speech",
  })
  snoop.snoop_target = target
  target.snoops = target.snoops or {}
  target.snoops[snoop] = true
  local body = C().snapshot(snoop)
  m:after(snoop, 0, function()
    C().enter_stasis(m, snoop, a.app, a.appArgs)
  end)
  return U.ok(body)
end

-- The simulated caller: a call that enters Stasis(app, args...) from the
-- dialplan, unanswered (state Ring). See Model:incoming().
function K.incoming(m, o)
  assert(type(o) == "table" and not U.empty(o.app), "incoming: app is required")
  local id = C().alloc_id(m, o.id)
  assert(id, "incoming: channel id already exists")
  local endpoint = o.endpoint or "PJSIP/sim"
  local tech, resource = split_endpoint(endpoint)
  assert(tech, "incoming: endpoint must be TECH/RESOURCE")
  tech = TECHS[tech:lower()] or tech
  local ch = C().new(m, {
    id = id, name = seq_name(m, tech, resource), tech = tech, kind = "incoming",
    state = o.state or "Ring", context = o.context or "default", exten = o.exten or "s",
    priority = o.priority or 1, media = "speech",
  })
  local caller = o.caller
  if type(caller) == "string" then
    caller = { number = caller }
  end
  ch.caller_name = caller and caller.name or ""
  ch.caller_number = caller and caller.number or ""
  local args = {}
  for i, v in ipairs(o.args or {}) do
    args[i] = tostring(v)
  end
  ch.app_name = "Stasis"
  ch.app_data = #args == 0 and o.app or (o.app .. "," .. table.concat(args, ","))
  -- Not subscribed yet: nobody sees STASISSTATUS being cleared, nor
  -- the variables the dialplan set before Stasis().
  C().varset(m, ch, "STASISSTATUS", "")
  for name, value in pairs(o.variables or {}) do
    C().varset(m, ch, tostring(name), tostring(value))
  end
  if C().stasis_refused(m, ch, o.app) then
    return id
  end
  C().start_stasis(m, ch, o.app, args)
  ch.stasis_pending = true
  return id
end

K.TECHS = TECHS

return K
