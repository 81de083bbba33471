-- The call object: one per call, handed to the flow. It keeps the latest
-- channel snapshot, an ordered inbox of the call's events, and the state
-- (in the application, hung up, or left it). Every method that waits goes
-- through Call:_wait, so a hangup cuts any wait short with nil, "hangup"
-- and nothing afterwards touches Asterisk.
--
-- This file holds the core and the one-line ARI operations; the IVR
-- methods (play, prompt, record, dial, ...) add themselves from
-- luari.call_media and luari.call_dial.

local ari = require "luari.ari"
local Runtime = require "luari.runtime"

local Call = {}
Call.__index = Call

-- Events kept for wait_event beyond this many are dropped oldest first,
-- with a warning: a flow that never reads its inbox must not grow forever.
Call.INBOX_LIMIT = 1000

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
    _inbox = {},
    _event_waiters = {},
    _listeners = {},
    _waiting = {},
    _hangup_handlers = {},
    _threads = {},
  }, Call)
  return call
end

-- --- state ----------------------------------------------------------------

function Call:is_up()
  return self._state == "up"
end

-- nil when the call can still be used, else the reason word.
function Call:_gone()
  if self._state == "up" then
    return nil
  end
  return self._state == "left" and "left" or "hangup"
end

local function run_hangup_handlers(call)
  local handlers = call._hangup_handlers
  call._hangup_handlers = {}
  for _, fn in ipairs(handlers) do
    call._app:spawn_for(call, fn, "on_hangup", call)
  end
end

-- Every wait of this call returns nil, reason at once.
function Call:_interrupt_waits(reason)
  local rt = self._rt
  for th in pairs(self._waiting) do
    rt:interrupt(th, nil, reason)
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
  self:_interrupt_waits(reason)
  if state == "hungup" then
    run_hangup_handlers(self)
  end
  self._app:call_state_changed(self)
end

-- --- events -----------------------------------------------------------------

local function inbox_push(call, ev)
  local inbox = call._inbox
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

-- Called by the dispatcher for each event of this call, in order.
function Call:_deliver(ev)
  local ch = ev.channel
  local mine = type(ch) == "table" and ch.id == self.id
  if mine then
    self.channel = ch
  end
  local listeners = self._listeners
  for i = #listeners, 1, -1 do
    local l = listeners[i]
    if l(ev) then
      table.remove(listeners, i)
    end
  end
  local t = ev.type
  if mine then
    if t == "ChannelHangupRequest" or t == "ChannelDestroyed" then
      self:_set_state("hungup")
    elseif t == "StasisEnd" then
      self:_set_state("left")
    end
  end
  for th, types in pairs(self._event_waiters) do
    if matches(types, ev) then
      self._event_waiters[th] = nil
      self._rt:interrupt(th, ev)
      return
    end
  end
  inbox_push(self, ev)
end

-- fn(ev) sees every later event of the call; it returns true to stop.
function Call:_listen(fn)
  local listeners = self._listeners
  listeners[#listeners + 1] = fn
  return function()
    for i = #listeners, 1, -1 do
      if listeners[i] == fn then
        table.remove(listeners, i)
      end
    end
  end
end

-- --- waiting ----------------------------------------------------------------

-- Like Runtime:await, but returns nil, "hangup" (or "left") at once when the
-- call is gone, and is woken with it when the call goes away meanwhile.
function Call:_wait(start, timeout)
  local gone = self:_gone()
  if gone then
    return nil, gone
  end
  local rt, th = Runtime.current("call method")
  self._waiting[th] = true
  local a, b, c, d, e = rt:await(start, timeout)
  self._waiting[th] = nil
  return a, b, c, d, e
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
  self._event_waiters[th] = set or false
  local ev, why = self:_wait(function()
    return function()
      self._event_waiters[th] = nil
    end
  end, timeout)
  self._event_waiters[th] = nil
  return ev, why
end

function Call:on_hangup(fn)
  if type(fn) ~= "function" then
    error("call:on_hangup: expects a function", 2)
  end
  if self._state == "hungup" then
    self._app:spawn_for(self, fn, "on_hangup", self)
  else
    self._hangup_handlers[#self._hangup_handlers + 1] = fn
  end
end

function Call:sleep(seconds)
  if type(seconds) ~= "number" or seconds < 0 then
    error("call:sleep: seconds must be a number >= 0", 2)
  end
  local backend = self._rt.backend
  return self:_wait(function(wake)
    local t = backend.timer(seconds, function()
      wake(true)
    end)
    return function()
      t:stop()
    end
  end)
end

-- --- ARI operations on this call's channel --------------------------------------

-- Runs an ARI operation on this channel; ARI errors become nil, code, err.
-- The request itself is not cut short by a hangup (its own events, such as
-- the StasisEnd of a continue, often arrive before its reply); a failure
-- once the call is gone reads as nil, "hangup".
function Call:_op(fn, ...)
  local gone = self:_gone()
  if gone then
    return nil, gone
  end
  local ok, err = fn(self.id, ...)
  gone = self:_gone()
  if ok == nil and gone then
    return nil, gone
  end
  if ok == nil then
    return nil, err and err.code or "failed", err
  end
  return ok
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
  local ok, why, err = self:_op(ari.channels.hangup, { reason = reason })
  if ok then
    self:_set_state("hungup")
  end
  return ok, why, err
end

function Call:get_var(name)
  if type(name) ~= "string" then
    error("call:get_var: name must be a string", 2)
  end
  local res, why, err = self:_op(ari.channels.getChannelVar, { variable = name })
  if not res then
    return nil, why, err
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
  if ok then
    self:_set_state("left")
  end
  return ok, why, err
end

function Call:move(app, args)
  if type(app) ~= "string" then
    error("call:move: app must be a string", 2)
  end
  return self:_op(ari.channels.move, { app = app, appArgs = args })
end

function Call:redirect(endpoint)
  if type(endpoint) ~= "string" then
    error("call:redirect: endpoint must be a string", 2)
  end
  return self:_op(ari.channels.redirect, { endpoint = endpoint })
end

function Call:send_dtmf(digits, opts)
  if type(digits) ~= "string" then
    error("call:send_dtmf: digits must be a string", 2)
  end
  opts = opts or {}
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
return Call
