-- The simulated Asterisk's channel model: one model for both faces of the
-- simulator (in-process on a virtual clock, and `luari sim-server` behind
-- its HTTP/WebSocket front end). It answers ARI REST requests and emits ARI
-- events the way Asterisk 22.10.1 does, field for field.
--
-- This file owns the model object: its state, the clock and event plumbing,
-- request routing, the application registry and the simulated caller.
-- The behaviour lives in luari/sim/model/*.lua.
--
-- Events are queued while the model works and handed to `emit` once a
-- request, timer or caller action is complete, so a face that reacts to an
-- event by calling the model again always finds it consistent. What
-- Asterisk does on its own threads after replying (dialing, starting a
-- playback) runs on the next clock turn, after the reply.
--
-- Events go to the applications subscribed to what they are about, whether
-- or not a WebSocket is connected for them (the in-process face has none);
-- the network face sends them to the sockets it has. Only /move and
-- GET /applications look at which apps are connected.

local json = require "luari.json"
local U = require "luari.sim.model.util"
local lib = require "luari.sim.model.lib"
local router = require "luari.sim.model.router"
local sounds = require "luari.sim.model.sounds"

require "luari.sim.model.channels"
require "luari.sim.model.dialplan"
require "luari.sim.model.calls"
local handler_tables = {
  require "luari.sim.model.channel_ops",
  require "luari.sim.model.variables",
  require("luari.sim.model.playbacks").handlers,
  require("luari.sim.model.recordings").handlers,
  require("luari.sim.model.bridges").handlers,
  require "luari.sim.model.resources",
}

local HANDLERS = {}
for _, t in ipairs(handler_tables) do
  for k, fn in pairs(t) do
    if type(k) == "string" and k:find(".", 1, true) then
      HANDLERS[k] = fn
    end
  end
end

local Model = {}
Model.__index = Model

Model.load_sounds_tsv = sounds.load_tsv

-- opts: clock, emit, epoch, asterisk_id, sounds, sound_default (seconds,
-- or false: a sound not in the tables is missing, as on Asterisk);
-- dialplan_app (the app the dialplan's [ivr] context hands calls to;
-- default: the one application connected, or "luari" when there are
-- none or several); strict (raise errors from the model instead of
-- answering 500; for tests); notice (function(message): things a user
-- should know about what the simulator assumed).
function Model.new(opts)
  assert(type(opts) == "table", "Model.new: opts must be a table")
  assert(opts.clock, "Model.new: clock is required")
  assert(type(opts.emit) == "function", "Model.new: emit must be a function")
  local m = setmetatable({
    clock = opts.clock, emit_fn = opts.emit,
    epoch = opts.epoch or os.time(),
    asterisk_id = opts.asterisk_id or "02:fc:00:00:00:01",
    sound_overrides = opts.sounds or {},
    sound_default = opts.sound_default == nil and sounds.DEFAULT_LENGTH or opts.sound_default,
    strict = opts.strict,
    notice = opts.notice,
    assumed_sounds = {},
    fixed_dialplan_app = opts.dialplan_app,
    channels = {}, channel_count = 0, apps = {}, all_apps = {},
    bridges = {}, playbacks = {}, live = {}, stored = {}, globals = {},
    device_states = {}, mailboxes = {},
    uid_seq = 0, unreal_seq = 0, snoop_seq = 0, rtp_seq = 0, uuid_seq = 0, tech_seq = {},
    outbox = {}, out_head = 1, out_tail = 0, flushing = false,
  }, Model)
  m.startup_time = m:ts()
  return m
end

-- Wall-clock seconds now.
function Model:wall()
  return self.epoch + self.clock:now()
end

-- Now, formatted like Asterisk: 2026-11-27T14:43:31.338+0000.
function Model:ts()
  local ms = math.floor(self:wall() * 1000 + 0.5)
  if ms ~= self.ts_ms then
    self.ts_ms, self.ts_str = ms, U.format_time(ms / 1000)
  end
  return self.ts_str
end

Model.timestamp = Model.ts

-- A UUID-shaped id for playbacks and bridges, unique within this model.
function Model:uuid()
  self.uuid_seq = self.uuid_seq + 1
  local n = self.uuid_seq
  return string.format("%08x-%04x-4%03x-a%03x-%012x",
    math.floor(self.epoch) % 0x100000000, n % 0x10000, math.floor(n / 0x10000) % 0x1000, n % 0x1000, n)
end

-- A sound not in the tables played for the default length: said once per
-- name, since a typo in a prompt plays here and fails on Asterisk.
function Model:assumed_sound(name)
  if self.assumed_sounds[name] then
    return
  end
  self.assumed_sounds[name] = true
  if self.notice then
    self.notice(string.format("sound:%s is not a sound the simulator knows: it plays for the default %.2f s"
      .. " (Asterisk fails a sound file it does not have; --sound-default missing does too)",
      name, self.sound_default))
  end
end

function Model:queue_event(app, ev)
  local tail = self.out_tail + 1
  self.out_tail = tail
  self.outbox[tail] = { app, ev }
end

local function drain(m)
  while m.out_head <= m.out_tail do
    local i = m.out_head
    local item = m.outbox[i]
    m.outbox[i] = nil
    m.out_head = i + 1
    m.emit_fn(item[1], item[2])
  end
end

-- Hands queued events to `emit`, in order. Events that `emit` causes (the
-- face calls the model back) join the same queue. An `emit` that fails
-- loses that one event (it is kept in last_error), not the others; in
-- strict mode the error is raised.
function Model:flush()
  if self.flushing then
    return
  end
  self.flushing = true
  while self.out_head <= self.out_tail do
    local ok, err = pcall(drain, self)
    if not ok then
      self.last_error = err
      if self.strict then
        self.flushing = false
        error(err, 0)
      end
    end
  end
  self.flushing = false
  self.out_head, self.out_tail = 1, 0
end

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Runs fn as one unit of model work: an error is kept in last_error (and
-- raised in strict mode), queued events go out afterwards. Returns what
-- pcall(fn, ...) returns.
function Model:guard(fn, ...)
  local results = pack(pcall(fn, ...))
  if not results[1] then
    self.last_error = results[2]
    if self.strict then
      self:flush()
      error(results[2], 0)
    end
  end
  self:flush()
  return unpack(results, 1, results.n)
end

-- Runs fn after `delay` seconds; the timer belongs to `owner` (a channel
-- or nil) and dies with it. Returns a slot for Model:cancel().
function Model:after(owner, delay, fn)
  local slot = { fn = fn, owner = owner }
  local m = self
  slot.handle = self.clock:after(delay, function()
    local f = slot.fn
    if not f then
      return
    end
    slot.fn = nil
    if slot.owner then
      slot.owner.timers[slot] = nil
      slot.owner = nil
    end
    m:guard(f)
  end)
  if owner then
    owner.timers[slot] = true
  end
  return slot
end

function Model.cancel(_, slot)
  if slot and slot.fn then
    slot.fn = nil
    slot.handle:cancel()
    if slot.owner then
      slot.owner.timers[slot] = nil
      slot.owner = nil
    end
  end
end

function Model:app_record(name)
  local rec = self.apps[name]
  if not rec then
    rec = {
      name = name, connected = false, channels = {}, bridges = {}, endpoints = {},
      devices = {}, events_allowed = {}, events_disallowed = {},
    }
    self.apps[name] = rec
  end
  return rec
end

-- A WebSocket for `app` opened. opts.subscribeAll: the app hears every
-- channel and bridge. Returns true when it replaced a connected one (the
-- face then sends ApplicationReplaced to the old socket).
function Model:app_connected(app, opts)
  local rec = self:app_record(app)
  local replaced = rec.connected
  rec.connected = true
  local all = opts and U.truthy(opts.subscribeAll) or false
  if all ~= (rec.subscribe_all or false) then
    rec.subscribe_all = all
    self:rebuild_all_apps()
  end
  return replaced
end

function Model:app_disconnected(app)
  local rec = self.apps[app]
  if rec then
    rec.connected = false
    if rec.subscribe_all then
      rec.subscribe_all = false
      self:rebuild_all_apps()
    end
  end
end

-- The application the [ivr] context's Stasis() names.
function Model:dialplan_app()
  if self.fixed_dialplan_app then
    return self.fixed_dialplan_app
  end
  local only
  for name, rec in pairs(self.apps) do
    if rec.connected then
      if only then
        return "luari"
      end
      only = name
    end
  end
  return only or "luari"
end

function Model:app_is_connected(app)
  local rec = self.apps[app]
  return rec ~= nil and rec.connected
end

function Model:rebuild_all_apps()
  local list = {}
  for name, rec in pairs(self.apps) do
    if rec.subscribe_all then
      list[#list + 1] = name
    end
  end
  table.sort(list)
  self.all_apps = list
end

-- A JSON body field becomes an argument the way ARI reads it.
local function body_value(v)
  local t = type(v)
  if t == "string" then
    return v
  elseif t == "number" then
    return v == math.floor(v) and string.format("%d", v) or tostring(v)
  elseif t == "boolean" then
    return v and "true" or "false"
  elseif t == "table" and #v > 0 then
    local parts = {}
    for i, item in ipairs(v) do
      parts[i] = body_value(item) or ""
    end
    return table.concat(parts, ",")
  end
  return nil
end

-- Query parameters, overridden by the fields of a JSON body object.
local function merge_args(query, body)
  local args = {}
  for k, v in pairs(query or {}) do
    args[k] = v
  end
  if type(body) == "table" then
    for k, v in pairs(body) do
      if k ~= "variables" then
        args[k] = body_value(v)
      end
    end
  end
  return args
end

local function parse_body(body_string)
  if body_string == nil or not body_string:find("%S") then
    return nil
  end
  local body = json.decode(body_string)
  if body == nil then
    return nil, false
  end
  if body == json.null then
    return nil
  end
  return body
end

function Model:dispatch(method, path, query, body_string)
  local body, parsed = parse_body(body_string)
  if parsed == false then
    return U.fail(400, "Error parsing request body")
  end
  local op, params, message = router.match(method, path)
  if not op then
    return U.fail(params, message)
  end
  local handler = HANDLERS[op[1] .. "." .. op[2]]
  if not handler then
    return U.fail(501, "Not implemented")
  end
  local vars
  if type(body) == "table" and body.variables ~= json.null then
    vars = body.variables
  end
  local req = { params = params, args = merge_args(query, body), body = body, vars = vars }
  return handler(self, req)
end

-- One ARI REST request. `path` is relative to /ari: the array of its
-- segments, each percent-decoded (a segment may hold a "/"), or a string
-- of segments that hold none. `query` maps names to decoded strings,
-- `body_string` is the raw body or nil. Returns status, reason, body (a table to JSON-encode; a
-- string for GET /recordings/stored/{name}/file, sent as is), headers.
function Model:request(method, path, query, body_string)
  local ok, status, reason, body, headers = self:guard(self.dispatch, self, method, path, query, body_string)
  if not ok then
    return 500, "Internal Server Error", { message = "Internal Server Error" }
  end
  return status, reason, body, headers
end

-- The simulated caller: a call that enters Stasis from the dialplan.
-- o: app, args, caller = { number, name } (or a number string), exten,
-- context, priority, id, endpoint ("PJSIP/alice"), state ("Ring").
-- Returns the channel id.
function Model:incoming(o)
  local ok, id = self:guard(lib.calls.incoming, self, o)
  if not ok then
    error(id, 2)
  end
  return id
end

local function live_channel(m, id)
  local ch = m.channels[id]
  if ch and not ch.hanging then
    return ch
  end
end

-- The caller presses a key: ChannelDtmfReceived at the end of the tone.
function Model:caller_dtmf(id, digit, duration_ms)
  local ch = live_channel(self, id)
  if not ch then
    return nil, "no such channel"
  end
  self:guard(function()
    for d in tostring(digit):gmatch("[%dA-Da-d%*#]") do
      lib.dialplan.receive_digit(self, ch, d:upper(), duration_ms or 100)
    end
  end)
  return true
end

-- The caller hangs up (cause 16 unless given).
function Model:caller_hangup(id, cause)
  local ch = live_channel(self, id)
  if not ch then
    return nil, "no such channel"
  end
  self:guard(function()
    if ch.half == 2 and ch.peer then
      lib.channels.far_hangup(self, ch, cause or 16, nil)
    else
      lib.channels.hangup(self, ch, cause or 16, "far")
    end
  end)
  return true
end

local AUDIO = { speech = true, silence = true, tone = true, none = true }

-- What the caller sends: "speech" (the default), "silence", "tone", "none".
function Model:caller_audio(id, kind)
  local ch = live_channel(self, id)
  if not ch then
    return nil, "no such channel"
  end
  kind = kind or "speech"
  assert(AUDIO[kind], "caller_audio: kind must be speech, silence, tone or none")
  self:guard(lib.channels.set_media, self, ch, kind)
  return true
end

-- The channel as ARI shows it, or nil.
function Model:channel(id)
  local ch = self.channels[id]
  return ch and lib.channels.snapshot(ch) or nil
end

-- Counts for tests and tools: live channels, bridges, playbacks, live
-- recordings, pending timers of channels.
function Model:stats()
  local timers = 0
  for _, ch in pairs(self.channels) do
    for _ in pairs(ch.timers) do
      timers = timers + 1
    end
  end
  local function count(t)
    local n = 0
    for _ in pairs(t) do
      n = n + 1
    end
    return n
  end
  return {
    channels = self.channel_count, bridges = count(self.bridges),
    playbacks = count(self.playbacks), recordings = count(self.live), timers = timers,
  }
end

return Model
