-- The dispatcher: turns ARI events into calls. A StasisStart for a channel
-- nobody owns (or one coming back to the application) starts the flow its
-- first Stasis argument names, in a new coroutine; every other event goes,
-- in order, to the call that owns the channel (or bridge) it concerns. A
-- flow's error is logged with its traceback and hangs up that call only.
-- When a flow ends, its call and the channels it created are hung up,
-- except those it sent on (continue, move).
--
-- The same dispatcher serves `luari run` (events from the WebSocket) and
-- the in-process simulator (events from the model).

local ari = require "luari.ari"
local Call = require "luari.call"
local router = require "luari.router"
local Runtime = require "luari.runtime"
local util = require "luari.util"

local id_of = router.id_of

local App = {}
App.__index = App

-- A finished call's channels and bridges stay owned for this long, so late
-- events are not reported as unknown. A call that made nothing (no dial,
-- no bridge) leaves a tombstone that ignores them, not itself: at a
-- thousand calls a second that would keep 30,000 finished calls in memory,
-- all of which every garbage collection goes through again. A call with
-- channels or bridges of its own stays, as their last events still matter
-- to it (the peer that leaves the bridge, the bridge that goes).
local TOMBSTONE_SECONDS = 30
local TOMBSTONE = { tombstone = true }
function TOMBSTONE._deliver() end

function App.new(opts)
  local app = setmetatable({
    rt = opts.rt,
    generation = opts.generation,
    default_flow = opts.default_flow,
    apps = {},
    calls = {},          -- channel id -> call, for calls whose flow runs
    channel_owner = {},  -- channel id -> call
    bridge_owner = {},   -- bridge id -> call
    accepting = true,
    hangup_grace = opts.hangup_grace or 10,
    on_call_end = opts.on_call_end,
    metrics = opts.metrics,
    stats = { events = 0, unrouted = 0, calls = 0, active = 0, flow_errors = 0 },
  }, App)
  for _, name in ipairs(opts.apps or { "luari" }) do
    app.apps[name] = true
  end
  local rt = app.rt
  rt.claim = function(th, kind, id, other_half)
    app:claim(th.call, kind, id, other_half)
  end
  rt.on_error = function(th, err, trace)
    app:thread_failed(th, err, trace)
  end
  rt.on_finish = function(th)
    app:thread_finished(th)
  end
  return app
end

-- --- logging ----------------------------------------------------------------

function App:log(level, message, fields)
  self.rt:log(level, message, fields)
end

function App:log_call(call, level, message)
  self.rt:log(level, message, { call = call.id, flow = call.flow })
end

-- --- ownership -------------------------------------------------------------

-- other_half: a Local channel's ;2 half, hung up with its ;1 half.
function App:claim(call, kind, id, other_half)
  if not call then
    return
  end
  if kind == "bridge" then
    self.bridge_owner[id] = call
  else
    self.channel_owner[id] = call
  end
  call._owned = call._owned or {}
  call._owned[#call._owned + 1] = { kind = kind, id = id, other_half = other_half or nil }
end

-- A thread that belongs to `call` (the flow, luari.spawn, on_hangup
-- handlers). It is the call's before it runs: it may end at once.
function App:spawn_for(call, fn, name, ...)
  local th = self.rt:thread(fn, { call = call, name = name })
  call:_own("_threads")[th] = true
  if name == "flow" then
    call._main = th
  elseif name == "on_hangup" and call._ended then
    -- (the flow woke at the hangup and returned before its handlers began)
    self:bound_handler(call, th)
  end
  return self.rt:start(th, ...)
end

-- An on_hangup handler runs on after the flow ended, for --hangup-grace
-- at most, as a flow runs on after its caller hung up.
function App:bound_handler(call, th)
  if not self.hangup_grace then
    return
  end
  self.rt.backend.timer(self.hangup_grace, function()
    if not th.done then
      self:log_call(call, "warn", string.format("on_hangup handler still running %gs after the flow ended: stopped",
        self.hangup_grace))
      self.rt:kill(th, "call ended")
    end
  end)
end

-- A thread that belongs to no call, for luari's own housekeeping.
function App:spawn_system(fn, ...)
  return self.rt:spawn(fn, { name = Runtime.SYSTEM }, ...)
end

-- --- events -----------------------------------------------------------------

-- The labels of luari_events_total, one table per event type: not a new
-- one for every event.
local event_labels = setmetatable({}, { __index = function(t, type_name)
  local labels = { type = type_name }
  t[type_name] = labels
  return labels
end })

local function count(app, ev)
  local stats = app.stats
  stats.events = stats.events + 1
  if app.metrics then
    app.metrics:inc("luari_events_total", event_labels[type(ev.type) == "string" and ev.type or "?"])
  end
end

-- The labels of the per-flow series, one table per flow name (weak: a
-- name no call uses any more does not stay).
local flow_labels = setmetatable({}, { __mode = "v", __index = function(t, flow)
  local labels = { flow = flow }
  t[flow] = labels
  return labels
end })

-- Calls by flow for /metrics: delta +1 when one starts, -1 when it ends.
local function count_call(app, call, delta, failed)
  local m = app.metrics
  if not m then
    return
  end
  local labels = call.flow ~= nil and flow_labels[call.flow] or {}
  if delta > 0 then
    m:inc("luari_calls_total", labels)
  end
  m:inc("luari_calls_active", labels, delta)
  if failed then
    m:inc("luari_flow_errors_total", labels)
  end
end

local function forget(app, ev)
  local owners, id
  if ev.type == "ChannelDestroyed" then
    owners, id = app.channel_owner, id_of(ev.channel)
  elseif ev.type == "BridgeDestroyed" then
    owners, id = app.bridge_owner, id_of(ev.bridge)
  end
  if id then
    owners[id] = nil
  end
end

-- Filled by router.keys for each event; nothing reads them once the
-- event has been delivered.
local event_channels, event_bridges = {}, {}

-- Channel `id` of `call` (its own, or one the flow created) was sent on
-- by the flow (continue, move): it left the application and lives on.
local function sent_on(call, id)
  local c = call.id == id and call or call._children and call._children[id]
  return c ~= nil and c._state == "left"
end

-- A StasisStart for a channel a call owns is that call's (a channel the
-- flow created, entering the application, even after the flow ended),
-- unless the channel comes back: the flow sent it on before the dialplan
-- sent it here again. Then it is a new call, routed by its arguments as
-- any other. (Only a call's own channel is left to a tombstone.)
local function comes_back(owner, id)
  return owner == TOMBSTONE or sent_on(owner, id)
end

function App:on_event(ev)
  count(self, ev)
  if ev.type == "StasisStart" then
    local id = type(ev.channel) == "table" and ev.channel.id
    local owner = id and self.channel_owner[id]
    if owner and not comes_back(owner, id) then
      owner:_deliver(ev)
    else
      self:start_call(ev)
    end
    return
  end
  local channels, bridges = router.keys(ev, event_channels, event_bridges)
  local first, others
  for _, id in ipairs(channels) do
    local call = self.channel_owner[id]
    if call and call ~= first then
      if not first then
        first = call
      else
        others = others or {}
        others[call] = true
      end
    end
  end
  for _, id in ipairs(bridges) do
    local call = self.bridge_owner[id]
    if call and call ~= first then
      if not first then
        first = call
      else
        others = others or {}
        others[call] = true
      end
    end
  end
  if first then
    first:_deliver(ev)
    if others then
      for call in pairs(others) do
        call:_deliver(ev)
      end
    end
  elseif ev.type ~= "ApplicationReplaced" then
    self.stats.unrouted = self.stats.unrouted + 1
    if self.metrics then
      self.metrics:inc("luari_events_unrouted_total")
    end
    self:log("debug", string.format("event %s for %s: no call owns it", tostring(ev.type),
      channels[1] or bridges[1] or "nothing"))
  end
  forget(self, ev)
  if ev.type == "ApplicationReplaced" then
    self:log("warn", "another client connected with application " .. tostring(ev.application)
      .. ": Asterisk now sends its calls there")
  end
end

-- --- calls --------------------------------------------------------------------

-- luari's own hang-ups are tried again after a failure that may pass (no
-- reply, a broken connection, a 5xx), these many seconds apart: a caller
-- must not be left in Stasis with no flow because one request failed.
local HANGUP_RETRIES = { 1, 2, 4 }
local PASSING = { timeout = true, conn_lost = true, server_error = true }

-- Hangs up channel `id` from a thread of luari's own (`why` for the log).
function App:hang_up(id, why)
  self:spawn_system(function()
    local ok, err = ari.channels.hangup(id)
    for _, seconds in ipairs(HANGUP_RETRIES) do
      if ok or not PASSING[err.code] then
        break
      end
      self:log("debug", string.format("hanging up %s (%s) failed (%s): trying again in %g s", id, why,
        tostring(err), seconds))
      self.rt:sleep(seconds)
      ok, err = ari.channels.hangup(id)
    end
    if not ok and err.code ~= "not_found" then
      self:log("warn", string.format("could not hang up %s (%s): %s", id, why, tostring(err)))
    end
  end)
end

local function stasis_args(ev)
  local args = type(ev.args) == "table" and ev.args or {}
  local rest = {}
  for i = 2, #args do
    rest[#rest + 1] = args[i]
  end
  return args[1], rest
end

function App:start_call(ev)
  local ch = ev.channel
  if not id_of(ch) then
    self:log("error", "StasisStart without a channel id: ignored")
    return
  end
  if not self.apps[ev.application] then
    self:log("debug", "StasisStart for application " .. tostring(ev.application) .. " ignored")
    return
  end
  if not self.accepting then
    self:log("warn", "shutting down: hanging up new call " .. ch.id)
    self:hang_up(ch.id, "shutting down")
    return
  end
  local name, rest = stasis_args(ev)
  local gen = self.generation
  local fn, flow_name = gen:get(name, self.default_flow)
  if not fn then
    self:log("error", string.format("unknown flow '%s' for channel %s (flows: %s): hanging up",
      tostring(flow_name or name or "(default)"), ch.id, util.name_list(gen:names())), { call = ch.id })
    self:hang_up(ch.id, "unknown flow")
    return
  end
  local call = Call.new(self, ch, ev.application, rest, flow_name)
  call._generation = gen
  self.calls[ch.id] = call
  self.channel_owner[ch.id] = call
  self.stats.calls = self.stats.calls + 1
  self.stats.active = self.stats.active + 1
  count_call(self, call, 1)
  gen.active = (gen.active or 0) + 1
  self:spawn_for(call, fn, "flow", call, unpack(rest))
end

function App:call_state_changed(call)
  if call._state == "hungup" and not call._ended and self.hangup_grace then
    -- A flow that ignores the hangup and never returns is cut off.
    call._grace = self.rt.backend.timer(self.hangup_grace, function()
      if not call._ended then
        self:log_call(call, "warn", string.format("flow still running %gs after hangup: stopped",
          self.hangup_grace))
        self:end_call(call)
      end
    end)
  end
end

function App:thread_failed(th, err, trace)
  local call = th.call
  if not call then
    self:log("error", "luari thread failed: " .. tostring(trace or err))
    return
  end
  if th == call._main then
    self.stats.flow_errors = self.stats.flow_errors + 1
    call._failed = tostring(err)
    self:log_call(call, "error", "flow failed: " .. tostring(trace or err))
    self:end_call(call)
  else
    call:_drop("_threads", th)
    self:log_call(call, "error", string.format("%s thread failed: %s", th.name or "spawned",
      tostring(trace or err)))
  end
end

function App:thread_finished(th)
  local call = th.call
  if not call then
    return
  end
  call:_drop("_threads", th)
  if th == call._main then
    self:end_call(call)
  end
end

-- The flow is over: hang up what is left, stop the call's threads, and
-- let late events for its channels land quietly.
function App:end_call(call)
  if call._ended then
    return
  end
  call._ended = true
  if call._grace then
    call._grace:stop()
    call._grace = nil
  end
  for th in pairs(call._threads) do
    -- on_hangup handlers run to their end: the caller's hangup started
    -- them, not the flow's end.
    if th.name == "on_hangup" then
      self:bound_handler(call, th)
    else
      self.rt:kill(th, "call ended")
    end
  end
  call._threads = nil
  call:_interrupt_waits("hangup")
  if call._state == "up" then
    -- The flow hangs up, not the caller: on_hangup handlers will not run
    -- (when the caller hung up, they are being started right now).
    call._hangup_handlers = nil
    self:hang_up(call.id, "flow ended")
  end
  local sent = call._hangups_sent or {}
  for _, owned in ipairs(call._owned or {}) do
    if owned.kind == "channel" and self.channel_owner[owned.id] == call and owned.id ~= call.id
      and not owned.other_half and not sent[owned.id] and not sent_on(call, owned.id) then
      local child = call._children and call._children[owned.id]
      if child then
        child._hangup_handlers = nil -- luari hangs it up, not the far end
      end
      self:hang_up(owned.id, "flow ended")
    end
  end
  call._state = call._state == "up" and "hungup" or call._state
  if self.calls[call.id] == call then -- not a new call of the same channel, back in Stasis
    self.calls[call.id] = nil
  end
  self.stats.active = self.stats.active - 1
  count_call(self, call, -1, call._failed ~= nil)
  local gen = call._generation
  gen.active = (gen.active or 1) - 1
  if gen.active == 0 and gen ~= self.generation and self.on_generation_idle then
    -- The last call on a replaced generation: nothing runs its code now.
    self.on_generation_idle(gen)
  end
  -- The call lingers a while for late events; its generation and its
  -- killed threads need not.
  call._generation = nil
  call._waiting = nil
  if self.on_call_end then
    self.on_call_end(call)
  end
  self:bury(call)
end

-- The call's channel goes to the tombstone for a while (or the call stays,
-- see TOMBSTONE_SECONDS).
function App:bury(call)
  if call._owned or call._children then
    self.rt.backend.timer(TOMBSTONE_SECONDS, function()
      self:forget_call(call)
    end)
    return
  end
  local channels = self.channel_owner
  call._inbox = nil
  call._listeners = nil
  if channels[call.id] ~= call then
    return
  end
  channels[call.id] = TOMBSTONE
  local id = call.id
  self.rt.backend.timer(TOMBSTONE_SECONDS, function()
    if channels[id] == TOMBSTONE then
      channels[id] = nil
    end
  end)
end

function App:forget_call(call)
  if self.channel_owner[call.id] == call then
    self.channel_owner[call.id] = nil
  end
  for _, owned in ipairs(call._owned or {}) do
    local map = owned.kind == "bridge" and self.bridge_owner or self.channel_owner
    if map[owned.id] == call then
      map[owned.id] = nil
    end
  end
  call._owned = nil
  call._inbox = nil
  call._listeners = nil
end

-- After the events WebSocket comes back: events may have been lost while it
-- was down, so ask Asterisk about every live call and the channels it made
-- (dial, originate, snoop). A channel that is gone ends as a hangup; one
-- that left the application as "left"; for the others, operations in
-- progress check what happened meanwhile (Call:_on_resync). A check that
-- fails for another reason is tried again.
--
-- Each channel's outcome is logged at debug; once every check is done, one
-- line sums them up: after an Asterisk restart with thousands of calls,
-- one line, not thousands.
local RESYNC_TRIES = 3

local function resync_summary(app, round)
  if round.hungup > 0 then
    app:log("info", string.format("resync: %d channel(s) hung up while events were down", round.hungup))
  end
  if round.left > 0 then
    app:log("info", string.format("resync: %d channel(s) left the application while events were down", round.left))
  end
  if round.failed > 0 then
    app:log("warn", string.format("resync: cannot check %d channel(s) (the first: %s); their calls go on",
      round.failed, round.first_error))
  end
end

local function check_channel(app, call, tries)
  local ch, err = ari.channels.get(call.id)
  if call._state ~= "up" then
    return
  end
  if ch then
    call.channel = ch
    if type(ch.dialplan) == "table" and ch.dialplan.app_name ~= "Stasis" then
      app:log_call(call, "debug", "resync: the channel left the application while events were down")
      call:_set_state("left")
      return "left"
    end
    call:_run_resyncs()
  elseif err.code == "not_found" then
    app:log_call(call, "debug", "resync: the channel hung up while events were down")
    call:_set_state("hungup")
    return "hungup"
  elseif tries > 1 then
    app.rt:sleep(1)
    return check_channel(app, call, tries - 1)
  else
    local why = string.format("%s, %d tries", tostring(err), RESYNC_TRIES)
    app:log_call(call, "debug", "resync: cannot check the channel: " .. why)
    return "failed", why
  end
end

local function count_check(app, round, call)
  local ok, outcome, why = pcall(check_channel, app, call, RESYNC_TRIES)
  if not ok then
    app:log_call(call, "error", "resync: the check failed: " .. tostring(outcome))
    outcome, why = "failed", tostring(outcome)
  end
  if outcome then
    round[outcome] = round[outcome] + 1
    round.first_error = round.first_error or why
  end
  round.pending = round.pending - 1
  if round.pending == 0 then
    resync_summary(app, round)
  end
end

-- The application and arguments of a channel in Stasis, from its
-- dialplan snapshot ("Stasis", "luari,sales,vip"), or nil.
local function stasis_of(ch)
  local dp = type(ch) == "table" and ch.dialplan
  if type(dp) ~= "table" or dp.app_name ~= "Stasis" or type(dp.app_data) ~= "string" then
    return nil
  end
  local fields = util.split_commas(dp.app_data)
  return table.remove(fields, 1), fields
end

-- Channels in one of luari's applications that nothing of luari's owns:
-- their StasisStart was lost (on its way when the connection broke, or in
-- a message over --max-event-size). Each becomes the call its StasisStart
-- would have made; a StasisStart that still comes finds it there.
local function adopt_strays(app)
  local list, err = ari.channels.list()
  if type(list) ~= "table" then
    app:log("warn", "resync: cannot list the channels to find calls whose StasisStart was lost: "
      .. tostring(err))
    return
  end
  local ids = {}
  for _, ch in ipairs(list) do
    local name, args = stasis_of(ch)
    local id = id_of(ch)
    if id and name and app.apps[name] and not app.channel_owner[id] then
      ids[#ids + 1] = id
      app:on_event({ type = "StasisStart", application = name, args = args, channel = ch,
        timestamp = ch.creationtime })
    end
  end
  if #ids > 0 then
    app:log("warn", string.format("resync: %d channel(s) in the application whose StasisStart was lost (%s):"
      .. " their flows run now", #ids, util.name_list(ids)))
  end
end

-- Returns the number of calls being checked.
function App:resync()
  local n, checks = 0, {}
  for _, call in pairs(self.calls) do
    if call._state == "up" then
      n = n + 1
      checks[#checks + 1] = call
      for _, child in pairs(call._children or {}) do
        if child._state == "up" then
          checks[#checks + 1] = child
        end
      end
    end
  end
  if n > 0 then
    self:log("info", string.format("reconnected: checking %d live call(s) with Asterisk", n))
  end
  local round = { pending = #checks, hungup = 0, left = 0, failed = 0 }
  for _, call in ipairs(checks) do
    self:spawn_system(count_check, self, round, call)
  end
  self:spawn_system(adopt_strays, self)
  return n
end

return App
