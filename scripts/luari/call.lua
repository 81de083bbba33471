-- The call object: one per call, handed to the flow. It keeps the latest
-- channel snapshot, an ordered inbox of the call's events, and the state
-- (in the application, hung up, or left it). Every method that waits goes
-- through Call:_wait, so a hangup cuts any wait short with nil, "hangup"
-- and nothing afterwards touches Asterisk.
--
-- This file holds the core and the one-line ARI operations; the IVR
-- methods (play, prompt, record, dial, ...) add themselves from
-- luari.call_media and luari.call_dial.
--
-- A call may have children: channels the flow created (call:dial,
-- luari.originate, call:snoop) get call objects of their own. Their events
-- reach the flow's call (it owns their channels) and are passed on to
-- them. A child's waits also end when the flow's call goes away, since the
-- flow is over then.

local ari = require "luari.ari"
local args = require "luari.call_args"
local router = require "luari.router"
local Runtime = require "luari.runtime"
local util = require "luari.util"

util.flow_facing()

local Call = {}
Call.__index = Call

-- Events kept for wait_event beyond this many are dropped oldest first,
-- with a warning: a flow that never reads its inbox must not grow forever.
Call.INBOX_LIMIT = 1000

-- Keys the caller pressed that nobody has read yet, at most this many (the
-- oldest go first): type-ahead, not a recording of every key.
Call.DTMF_LIMIT = 64

-- The call's lists and sets (inbox, waiters, listeners, handlers, ...)
-- are made when first written: a call that never uses one reads this
-- shared empty table through the metatable instead. Ten thousand waiting
-- calls are a few megabytes less, and the call's own table stays small.
local NONE = setmetatable({}, {
  __newindex = function()
    error("luari: internal: a call's list was written without Call:_own", 2)
  end,
})
for _, field in ipairs({ "_inbox", "_event_waiters", "_listeners", "_waiting", "_hangup_handlers", "_threads",
  "_digit_waiters", "_cleanups", "_resyncs" }) do
  Call[field] = NONE
end

-- The call's own table in `field`, made now if it has none.
function Call:_own(field)
  local t = rawget(self, field)
  if not t then
    t = {}
    self[field] = t
  end
  return t
end

-- Removes `key` from the call's own table in `field`, if it has one.
function Call:_drop(field, key)
  local t = rawget(self, field)
  if t then
    t[key] = nil
  end
end

function Call.new(app, channel, application, args, flow)
  local call = setmetatable({
    id = channel.id,
    app = application,
    args = args or {},
    channel = channel,
    flow = flow,
    _app = app,
    _rt = app.rt,
    _state = "up",
    _dtmf = "",
    _in_stasis = true,
  }, Call)
  return call
end

-- --- state ----------------------------------------------------------------

function Call:is_up()
  return self._state == "up" and self._in_stasis
end

local function reason_of(state)
  return state == "left" and "left" or "hangup"
end

-- nil when the call can still be used, else the reason word. A child is
-- gone as well once the flow's call is.
function Call:_gone()
  if self._state ~= "up" then
    return reason_of(self._state)
  end
  local root = self._root
  if root and root._state ~= "up" then
    return reason_of(root._state)
  end
  return nil
end

local function run_hangup_handlers(call)
  local handlers = call._hangup_handlers
  call._hangup_handlers = nil
  for _, fn in ipairs(handlers) do
    call._app:spawn_for(call, fn, "on_hangup", call)
  end
end

-- fn() runs once when the call is over for the flow (hung up, left, or
-- the flow ended), so that operations in progress let go of what they
-- hold (listeners, playbacks). Returns a function that unregisters it.
function Call:_on_gone(fn)
  local cleanups = self:_own("_cleanups")
  cleanups[fn] = true
  return function()
    cleanups[fn] = nil
  end
end

-- fn() runs (in a thread of the call) after the events WebSocket came back
-- from a drop, to ask Asterisk what happened to an operation in progress
-- while its events could not arrive. Returns a function that unregisters it.
function Call:_on_resync(fn)
  local resyncs = self:_own("_resyncs")
  resyncs[fn] = true
  return function()
    resyncs[fn] = nil
  end
end

function Call:_run_resyncs()
  for fn in pairs(self._resyncs) do
    self._app:spawn_for(self, fn, "resync")
  end
end

function Call:_run_cleanups()
  local cleanups = self._cleanups
  if next(cleanups) == nil then
    return
  end
  self._cleanups = nil
  for fn in pairs(cleanups) do
    local ok, err = pcall(fn)
    if not ok then
      self._app:log_call(self, "error", "cleanup failed: " .. tostring(err))
    end
  end
end

-- Every wait of this call (and of its children) returns nil, reason at once.
function Call:_interrupt_waits(reason)
  self:_run_cleanups()
  for _, child in pairs(self._children or {}) do
    child:_run_cleanups()
  end
  local rt = self._rt
  for th in pairs(self._waiting) do
    rt:interrupt(th, nil, reason)
  end
end

-- luari.spawn threads end with their call: once the caller has hung up,
-- or the call has left the application, nothing they wait on can work,
-- and a loop that ignored the "hangup" would spin until the instruction
-- budget stopped it. luari.wait on one of them returns nil, reason.
local function stop_spawned(call, reason)
  -- Picked first: a kill wakes luari.wait callers, which may run at once
  -- and change the call's threads.
  local spawned
  for th in pairs(call._threads) do
    if th.name == "spawn" then
      spawned = spawned or {}
      spawned[#spawned + 1] = th
    end
  end
  for i = 1, spawned and #spawned or 0 do
    call:_drop("_threads", spawned[i])
    call._rt:kill(spawned[i], reason)
  end
end

function Call:_set_state(state)
  if self._state ~= "up" then
    if state == "hungup" and self._state == "left" then
      self._state = "hungup"
    end
    return
  end
  self._state = state
  local reason = state == "left" and "left" or "hangup"
  if state == "hungup" then
    -- First, while the flow still waits: what a handler does is done
    -- before the flow sees nil, "hangup" (and its end cannot come first).
    run_hangup_handlers(self)
  end
  stop_spawned(self, reason)
  self:_interrupt_waits(reason)
  self._app:call_state_changed(self)
end

-- --- events -----------------------------------------------------------------

local function inbox_push(call, ev)
  local inbox = call:_own("_inbox")
  inbox[#inbox + 1] = ev
  if #inbox > Call.INBOX_LIMIT then
    local dropped = table.remove(inbox, 1)
    if not call._inbox_warned then
      call._inbox_warned = true
      call._app:log_call(call, "warn", string.format(
        "inbox over %d events (the flow does not read them): dropping the oldest (%s)",
        Call.INBOX_LIMIT, tostring(dropped and dropped.type)))
    end
  end
end

local function matches(types, ev)
  if types == nil then
    return true
  end
  return types[ev.type] == true
end

-- A key the caller pressed goes to the buffer before anything else sees
-- the event, so that listeners and readers woken by it find it there.
local function push_digit(call, digit)
  if type(digit) ~= "string" or digit == "" then
    return
  end
  local buf = call._dtmf .. digit
  if #buf > Call.DTMF_LIMIT then
    buf = buf:sub(-Call.DTMF_LIMIT)
  end
  call._dtmf = buf
end

-- Readers waiting for a key (read_digits) look at the buffer again.
local function wake_digit_waiters(call)
  local waiters = call._digit_waiters
  if next(waiters) == nil then
    return
  end
  call._digit_waiters = nil
  for wake in pairs(waiters) do
    wake(true)
  end
end

-- Listeners are records { fn = fn }; a removed one has fn = nil until the
-- list is compacted. A listener may wake a thread that runs at once and
-- adds or removes listeners, so the list is never edited while it is
-- walked.
local function run_listeners(call, ev)
  local listeners = call._listeners
  local dirty = false
  for i = 1, #listeners do
    local rec = listeners[i]
    local fn = rec.fn
    if fn and fn(ev) then
      rec.fn = nil
    end
    if not rec.fn then
      dirty = true
    end
  end
  if dirty then
    local kept = {}
    for _, rec in ipairs(call._listeners) do
      if rec.fn then
        kept[#kept + 1] = rec
      end
    end
    call._listeners = kept
  end
end

-- Events about a child's channel (or its playbacks, recordings, dials)
-- go on to the child. Returns true when the event is the children's
-- alone (no channel or bridge of this call's own is in it): it is then
-- not this call's to wait_event for.
local function forward_to_children(call, ev)
  local children = call._children
  if not children or next(children) == nil then
    return false
  end
  local ids, bridges = router.keys(ev)
  local theirs = #ids > 0 and #bridges == 0
  local done
  for _, id in ipairs(ids) do
    local child = children[id]
    if not child then
      theirs = false
    elseif child ~= done then
      done = child
      child:_deliver(ev)
    end
  end
  return theirs
end

-- The first wait_event waiting for an event like `ev` gets it. A waiter
-- already woken otherwise (the hangup cut its wait short) does not take it:
-- the event goes on to the next one, or to the inbox.
local function wake_event_waiter(call, ev)
  for th, types in pairs(call._event_waiters) do
    if matches(types, ev) then
      call._event_waiters[th] = nil
      if call._rt:interrupt(th, ev) then
        return true
      end
    end
  end
  return false
end

-- Called by the dispatcher for each event of this call, in order.
function Call:_deliver(ev)
  local ch = ev.channel
  local mine = type(ch) == "table" and ch.id == self.id
  local t = ev.type
  if mine then
    self.channel = ch
    if t == "ChannelDtmfReceived" then
      push_digit(self, ev.digit)
    elseif t == "StasisStart" then
      self._in_stasis = true
    end
  end
  run_listeners(self, ev)
  local taken = false
  if mine then
    if t == "ChannelHangupRequest" or t == "ChannelDestroyed" then
      -- A flow waiting for this very event gets it, not nil, "hangup".
      taken = wake_event_waiter(self, ev)
      self:_set_state("hungup")
    elseif t == "StasisEnd" then
      taken = wake_event_waiter(self, ev)
      self:_set_state("left")
    elseif t == "ChannelDtmfReceived" then
      wake_digit_waiters(self)
    end
  end
  if taken or forward_to_children(self, ev) or wake_event_waiter(self, ev) then
    return
  end
  inbox_push(self, ev)
end

-- fn(ev) sees every later event of the call; it returns true to stop.
-- Returns a function that removes it.
function Call:_listen(fn)
  local rec = { fn = fn }
  local listeners = self:_own("_listeners")
  listeners[#listeners + 1] = rec
  return function()
    rec.fn = nil
  end
end

-- --- waiting ----------------------------------------------------------------

local function done_waiting(call, root, th, ...)
  call:_drop("_waiting", th)
  if root then
    root:_drop("_waiting", th)
  end
  return ...
end

-- Like Runtime:await, but returns nil, "hangup" (or "left") at once when the
-- call is gone, and is woken with it when the call goes away meanwhile.
function Call:_wait(start, timeout)
  local gone = self:_gone()
  if gone then
    return nil, gone
  end
  local rt, th = Runtime.current("call method")
  local root = self._root
  self:_own("_waiting")[th] = true
  if root then
    root:_own("_waiting")[th] = true
  end
  return done_waiting(self, root, th, rt:await(start, timeout))
end

local function type_set(types)
  if types == nil then
    return nil
  end
  if type(types) == "string" then
    return { [types] = true }
  end
  if type(types) ~= "table" then
    error("call:wait_event: types must be a string or an array of event type names", 3)
  end
  local set = {}
  for _, t in ipairs(types) do
    set[t] = true
  end
  return set
end

-- The next event of these types for this call, in order, none lost.
function Call:wait_event(types, timeout)
  if timeout ~= nil and type(timeout) ~= "number" then
    error("call:wait_event: timeout must be a number of seconds", 2)
  end
  local set = type_set(types)
  local inbox = self._inbox
  for i = 1, #inbox do
    if matches(set, inbox[i]) then
      return table.remove(inbox, i)
    end
  end
  local rt, th = Runtime.current("call:wait_event")
  local gone = self:_gone()
  if gone then
    return nil, gone
  end
  self:_own("_event_waiters")[th] = set or false
  local ev, why = self:_wait(function()
    return function()
      self:_drop("_event_waiters", th)
    end
  end, timeout)
  self:_drop("_event_waiters", th)
  return ev, why
end

function Call:on_hangup(fn)
  if type(fn) ~= "function" then
    error("call:on_hangup: expects a function", 2)
  end
  if self._state == "hungup" then
    self._app:spawn_for(self, fn, "on_hangup", self)
  else
    local handlers = self:_own("_hangup_handlers")
    handlers[#handlers + 1] = fn
  end
end

function Call:sleep(seconds)
  if type(seconds) ~= "number" or seconds < 0 then
    error("call:sleep: seconds must be a number >= 0", 2)
  end
  return self:_wait(self._rt:sleep_start(seconds))
end

-- --- ARI operations on this call's channel --------------------------------------

-- nil, reason[, err]: no trailing nil when there is no error table, so a
-- flow that counts results (select("#", ...)) sees what it expects.
function Call._failure(why, err)
  if err == nil then
    return nil, why
  end
  return nil, why, err
end

-- Runs an ARI operation for this call; ARI errors become nil, code, err.
-- The request itself is not cut short by a hangup (its own events, such as
-- the StasisEnd of a continue, often arrive before its reply); a failure
-- once the call is gone reads as nil, "hangup".
function Call:_request(fn, ...)
  local gone = self:_gone()
  if gone then
    ari.check(fn, ...) -- misuse raises all the same
    return nil, gone
  end
  local ok, err = fn(...)
  gone = self:_gone()
  if ok == nil and gone then
    return nil, gone
  end
  if ok == nil then
    return nil, err and err.code or "failed", err
  end
  return ok
end

-- The same, for an operation on this call's channel.
function Call:_op(fn, ...)
  return self:_request(fn, self.id, ...)
end

local function simple(fn)
  return function(self)
    return self:_op(fn)
  end
end

Call.answer = simple(ari.channels.answer)
Call.ring = simple(ari.channels.ring)
Call.ring_stop = simple(ari.channels.ringStop)
Call.hold = simple(ari.channels.hold)
Call.unhold = simple(ari.channels.unhold)
Call.stop_moh = simple(ari.channels.stopMoh)
Call.silence = simple(ari.channels.startSilence)
Call.stop_silence = simple(ari.channels.stopSilence)
Call.rtp_statistics = simple(ari.channels.rtpstatistics)

local function check_direction(method, dir)
  if dir ~= nil and dir ~= "both" and dir ~= "in" and dir ~= "out" then
    error("call:" .. method .. ": direction must be \"both\", \"in\" or \"out\"", 3)
  end
end

function Call:mute(dir)
  check_direction("mute", dir)
  return self:_op(ari.channels.mute, { direction = dir or "both" })
end

function Call:unmute(dir)
  check_direction("unmute", dir)
  return self:_op(ari.channels.unmute, { direction = dir or "both" })
end

function Call:moh(class)
  if class ~= nil and type(class) ~= "string" then
    error("call:moh: class must be a string", 2)
  end
  return self:_op(ari.channels.startMoh, { mohClass = class })
end

function Call:hangup(reason)
  if reason ~= nil and type(reason) ~= "string" then
    error("call:hangup: reason must be a string such as \"normal\" or \"busy\"", 2)
  end
  -- The flow hangs up, not the caller: on_hangup handlers do not run (as
  -- when the flow returns and luari hangs up), also not for the hangup
  -- events that may come before the reply.
  local handlers = self._state == "up" and rawget(self, "_hangup_handlers") or nil
  if handlers then
    ari.check(ari.channels.hangup, self.id, { reason = reason }) -- misuse raises with them in place
    self._hangup_handlers = nil
  end
  local ok, why, err = self:_op(ari.channels.hangup, { reason = reason })
  if not ok then
    if handlers then
      -- It did not happen: the handlers stay, or run if the caller hung up meanwhile.
      for _, fn in ipairs(handlers) do
        self:on_hangup(fn)
      end
    end
    return Call._failure(why, err)
  end
  self._hangup_handlers = nil -- also any registered while the request was out
  self:_set_state("hungup")
  return ok
end

function Call:get_var(name)
  if type(name) ~= "string" then
    error("call:get_var: name must be a string", 2)
  end
  local res, why, err = self:_op(ari.channels.getChannelVar, { variable = name })
  if not res then
    return Call._failure(why, err)
  end
  return res.value
end

function Call:set_var(name, value)
  if type(name) ~= "string" then
    error("call:set_var: name must be a string", 2)
  end
  if value ~= nil and type(value) ~= "string" and type(value) ~= "number" then
    error("call:set_var: value must be a string or a number", 2)
  end
  return self:_op(ari.channels.setChannelVar, { variable = name, value = value })
end

function Call:continue(context, extension, priority, label)
  local ok, why, err = self:_op(ari.channels.continueInDialplan, {
    context = context,
    extension = extension,
    priority = priority,
    label = label,
  })
  if not ok then
    return Call._failure(why, err)
  end
  self:_set_state("left")
  return ok
end

-- Asterisk answers a move with 204 even when no application `app` is
-- connected: the channel stays here, and ApplicationMoveFailed follows
-- (before or just after the reply). A move that happened shows as the
-- StasisEnd. The wait for either after the reply is this long at most.
Call.MOVE_SETTLE = 2

function Call:move(app, args)
  if type(app) ~= "string" then
    error("call:move: app must be a string", 2)
  end
  if type(args) == "table" then
    args = table.concat(args, ",")
  elseif args ~= nil and type(args) ~= "string" then
    error("call:move: args must be a string or an array of strings", 2)
  end
  local outcome, wake
  local unlisten = self:_listen(function(ev)
    local t = ev.type
    if (t == "ApplicationMoveFailed" or t == "StasisEnd") and router.id_of(ev.channel) == self.id then
      outcome = t
      if wake then
        wake(true)
      end
      return true
    end
  end)
  local ok, why, err = self:_op(ari.channels.move, { app = app, appArgs = args })
  if ok and not outcome then
    self:_wait(function(w)
      wake = w
    end, Call.MOVE_SETTLE)
  end
  unlisten()
  if not ok then
    return Call._failure(why, err)
  end
  if outcome == "ApplicationMoveFailed" then
    return nil, "failed", { message = "no application '" .. app .. "' to move the channel to" }
  end
  if outcome == "StasisEnd" then
    self:_set_state("left") -- now, not once the event is done with (it woke us)
  end
  return true
end

function Call:redirect(endpoint)
  if type(endpoint) ~= "string" then
    error("call:redirect: endpoint must be a string", 2)
  end
  return self:_op(ari.channels.redirect, { endpoint = endpoint })
end

local SEND_DTMF_OPTS = args.set({ "before", "between", "duration", "after" })

function Call:send_dtmf(digits, opts)
  local m = "call:send_dtmf"
  args.string(m, "digits", digits)
  opts = args.opts(m, opts, SEND_DTMF_OPTS)
  for name in pairs(SEND_DTMF_OPTS) do
    args.integer(m, "opts." .. name, opts[name], true, 0)
  end
  return self:_op(ari.channels.sendDTMF, {
    dtmf = digits,
    before = opts.before,
    between = opts.between,
    duration = opts.duration,
    after = opts.after,
  })
end

-- The IVR methods live in their own files and add themselves to Call.
package.loaded["luari.call"] = Call
require "luari.call_media"
require "luari.call_dial"
return Call
