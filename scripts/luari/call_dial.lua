-- Calls a flow makes: call:dial (ring someone, bridge on answer),
-- call:bridge, call:snoop, luari.originate with call:wait_answer, and
-- call:wait_hangup.
--
-- Every channel a flow creates belongs to the flow's call (luari.ari picks
-- its id and claims it before the request), so its events reach that call,
-- which hands them to the new channel's own call object (a child, see
-- luari.call). When the flow ends, luari hangs up what it created.
--
-- Bridges made here are two-party bridges: when a member leaves, the
-- bridge is destroyed, so the one left behind is free for the flow again
-- (a channel in a bridge cannot be recorded, for one).

local ari = require "luari.ari"
local args = require "luari.call_args"
local Call = require "luari.call"
local luari = require "luari"
local Runtime = require "luari.runtime"
local util = require "luari.util"

util.flow_facing()

local failure = Call._failure

-- On top of the dial timeout Asterisk enforces: how long to wait for its
-- verdict before giving up on the channel ourselves.
local DIAL_GRACE = 5

-- Dial statuses that end a dial, and the reason each gives.
local DIAL_FAILURES = {
  BUSY = "busy",
  CONGESTION = "congestion",
  NOANSWER = "noanswer",
  CHANUNAVAIL = "failed",
  CANCEL = "failed",
  DONTCALL = "failed",
  TORTURE = "failed",
  INVALIDARGS = "failed",
}

-- Q.850 causes of a channel destroyed before it answered, without a Dial
-- status (no answer within the timeout: 19, Asterisk hangs it up itself).
local CAUSES = {
  [17] = "busy",
  [18] = "noanswer",
  [19] = "noanswer",
  [34] = "congestion",
  [42] = "congestion",
}

local function root_of(call)
  return call._root or call
end

local function log_warn(call, message)
  call._app:log_call(call, "warn", message)
end

-- The call whose flow runs the current thread: it owns what gets created.
local function owner(method)
  local _, th = Runtime.current(method)
  local call = th.call
  if not call then
    args.fail(method, "must be called from a flow or a thread it started (luari.spawn)")
  end
  return root_of(call)
end

-- --- children ----------------------------------------------------------------

-- What a child sees as the dispatcher: its state changes do not end a flow
-- (the flow is its root's), and the threads it starts (on_hangup
-- handlers) belong to the root, so they end with the flow.
local function child_app(root)
  local app = root._app
  return setmetatable({
    call_state_changed = function() end,
    spawn_for = function(_, _, fn, name, ...)
      return app:spawn_for(root, fn, name, ...)
    end,
  }, { __index = app })
end

-- A call object for a channel the root's flow creates, made before the
-- request so that no event about it is missed.
local function new_child(root, id, call_args)
  root._child_app = root._child_app or child_app(root)
  local child = Call.new(root._child_app, { id = id }, root.app, call_args or {}, root.flow)
  child._root = root
  child._in_stasis = false
  root._children = root._children or {}
  root._children[id] = child
  child:_listen(function(ev)
    if ev.type == "ChannelDestroyed" and type(ev.channel) == "table" and ev.channel.id == id then
      child._destroyed = true
      if root._children[id] == child then
        root._children[id] = nil
      end
      return true
    end
    return false
  end)
  return child
end

local function forget_child(root, child)
  if root._children and root._children[child.id] == child then
    root._children[child.id] = nil
  end
end

-- The snapshot in a reply, unless an event of the channel came first:
-- Asterisk may send the events of a new channel before the reply that
-- made it, and they are newer (an originate's reply says Down, its
-- StasisStart Up). new_child's placeholder has no name.
local function take_reply_snapshot(child, ch)
  if child.channel.name == nil then
    child.channel = ch
  end
end

-- Notes that luari hangs up `child` (before the request leaves): the
-- flow's end, which hangs up what the flow made, must not send another.
-- Its on_hangup handlers will not run: luari hangs it up, not the far end.
-- Returns false when it was noted already.
local function note_hangup(root, child)
  local sent = root._hangups_sent or {}
  root._hangups_sent = sent
  if sent[child.id] then
    return false
  end
  sent[child.id] = true
  child._hangup_handlers = nil
  return true
end

local function send_hangup(root, child)
  local ok, err = ari.channels.hangup(child.id)
  if not ok and err.code ~= "not_found" then
    root._hangups_sent[child.id] = nil -- a later attempt may try again
    log_warn(root, "could not hang up " .. child.id .. ": " .. tostring(err))
  end
end

local function hang_up_now(root, child)
  if child._destroyed or not note_hangup(root, child) then
    return
  end
  send_hangup(root, child)
end

-- Hangs up a channel the flow created, from a thread of luari's own (tried
-- again if it fails): it must happen even though the flow's call has just
-- hung up.
local function hang_up_later(root, child)
  if child._destroyed or not note_hangup(root, child) then
    return
  end
  root._app:hang_up(child.id, "the dial did not complete")
end

-- --- answering ---------------------------------------------------------------

local function settle(tr, result)
  if tr.result then
    return
  end
  tr.result = result
  local wakes = tr.wakes
  tr.wakes = nil
  for wake in pairs(wakes or {}) do
    wake(result)
  end
end

-- Follows a new outbound channel until it answers or fails; the verdict
-- goes to child._answer.result: "answered", "busy", "congestion",
-- "noanswer" or "failed". `answered_by`: "stasis" (originate: it has
-- answered when it enters the application) or "dial" (create + dial: the
-- Dial event says ANSWER; it was in the application from the start).
local function track_answer(child, answered_by)
  local tr = {}
  child._answer = tr
  child:_listen(function(ev)
    local t = ev.type
    if t == "Dial" and type(ev.peer) == "table" and ev.peer.id == child.id then
      local status = ev.dialstatus
      if status == "ANSWER" and answered_by == "dial" then
        settle(tr, "answered")
      elseif DIAL_FAILURES[status] then
        tr.status = DIAL_FAILURES[status]
        settle(tr, tr.status)
      end
    elseif type(ev.channel) == "table" and ev.channel.id == child.id then
      if t == "StasisStart" and answered_by == "stasis" then
        settle(tr, "answered")
      elseif t == "ChannelDestroyed" then
        settle(tr, tr.status or CAUSES[tonumber(ev.cause)] or "failed")
      end
    end
    return tr.result ~= nil
  end)
  return tr
end

-- Waits, as `waiter` (so that its hangup cuts the wait short), for the
-- verdict on `tr`. Any number of threads may wait for the same verdict.
local function wait_verdict(waiter, tr, timeout)
  if tr.result then
    return tr.result
  end
  -- (settle takes the whole set; a timeout or a hangup takes this one out)
  local got, why = waiter:_wait(function(wake)
    tr.wakes = tr.wakes or {}
    tr.wakes[wake] = true
    return function()
      if tr.wakes then
        tr.wakes[wake] = nil
      end
    end
  end, timeout)
  if got then
    return got
  end
  return nil, why
end

-- --- bridges -----------------------------------------------------------------

local function destroy_bridge(root, bridge)
  if bridge.gone then
    return
  end
  bridge.gone = true
  if bridge.unwatch then
    bridge.unwatch()
  end
  local ok, err = ari.bridges.destroy(bridge.id)
  if not ok and err.code ~= "not_found" then
    log_warn(root, "could not destroy bridge " .. bridge.id .. ": " .. tostring(err))
  end
end

local function destroy_bridge_later(root, bridge)
  if bridge.gone then
    return
  end
  root._app:spawn_system(function()
    destroy_bridge(root, bridge)
  end)
end

-- When a member leaves, the bridge goes (see the header).
local function watch_bridge(root, bridge)
  bridge.unwatch = root:_listen(function(ev)
    if type(ev.bridge) ~= "table" or ev.bridge.id ~= bridge.id then
      return false
    end
    if ev.type == "ChannelLeftBridge" then
      destroy_bridge_later(root, bridge)
      return true
    elseif ev.type == "BridgeDestroyed" then
      bridge.gone = true
      return true
    end
    return false
  end)
end

-- A mixing bridge with these calls in it: the bridge record, or nil,
-- reason, err.
local function make_bridge(call, root, members)
  local b, why, err = call:_request(ari.bridges.create, { type = "mixing" })
  if not b then
    return failure(why, err)
  end
  local bridge = { id = b.id }
  watch_bridge(root, bridge)
  local ids = {}
  for i, m in ipairs(members) do
    ids[i] = m.id
  end
  local ok
  ok, why, err = call:_request(ari.bridges.addChannel, b.id, { channel = ids })
  if not ok then
    destroy_bridge_later(root, bridge)
    return failure(why, err)
  end
  for _, m in ipairs(members) do
    m._bridge = bridge
  end
  return bridge
end

-- call:bridge(other): both in a new mixing bridge; the bridge id.
function Call:bridge(other)
  local m = "call:bridge"
  if getmetatable(other) ~= Call then
    args.fail(m, "other must be a call object (from call:dial, luari.originate or a flow)")
  end
  local root = owner(m)
  local gone = self:_gone() or other:_gone()
  if gone then
    return nil, gone
  end
  local bridge, why, err = make_bridge(self, root, { self, other })
  if not bridge then
    return failure(why, err)
  end
  return bridge.id
end

-- --- dial --------------------------------------------------------------------------

local function dial_variables(o)
  local vars = {}
  for k, v in pairs(o.variables or {}) do
    vars[k] = v
  end
  if o.callerId then
    -- /channels/create has no callerId: the same through CALLERID(all).
    vars["CALLERID(all)"] = o.callerId
  end
  return next(vars) and vars or nil
end

-- A failure after the peer exists: it is hung up (before returning, so
-- the flow finds it gone; when the caller has hung up, without making
-- the flow wait), and the reason returned; the caller's own hangup wins
-- over any other reason.
local function dial_failed(call, root, peer, why, err)
  local gone = call:_gone()
  if gone then
    hang_up_later(root, peer)
    return nil, gone
  end
  hang_up_now(root, peer)
  gone = call:_gone()
  if gone then
    return nil, gone
  end
  return failure(why, err)
end

local function dial(call, root, endpoint, o)
  local gone = call:_gone()
  if gone then
    return nil, gone
  end
  local peer = new_child(root, util.uuid())
  local tr = track_answer(peer, "dial")
  local ch, _, err = call:_request(ari.channels.create, {
    endpoint = endpoint, app = call.app, channelId = peer.id, formats = o.formats,
    originator = o.formats == nil and call.id or nil, variables = dial_variables(o),
  })
  if not ch then
    forget_child(root, peer)
    gone = call:_gone()
    return failure(gone or "failed", err)
  end
  take_reply_snapshot(peer, ch)
  local ok
  ok, _, err = call:_request(ari.channels.dial, peer.id, { caller = call.id, timeout = o.timeout })
  if not ok then
    return dial_failed(call, root, peer, "failed", err)
  end
  local result, why = wait_verdict(call, tr, o.timeout + DIAL_GRACE)
  if not result then
    -- The caller hung up, or Asterisk never said: give up on the peer.
    return dial_failed(call, root, peer, why == "timeout" and "noanswer" or why)
  end
  if result ~= "answered" then
    -- Busy and congestion leave the channel in the application, Down.
    return dial_failed(call, root, peer, result)
  end
  local bridge
  bridge, _, err = make_bridge(call, root, { call, peer })
  if not bridge then
    return dial_failed(call, root, peer, "failed", err)
  end
  return peer
end

local DIAL_OPTS = args.set({ "timeout", "callerId", "variables", "formats" })

local function check_variables(m, vars)
  if vars == nil then
    return nil
  end
  if type(vars) ~= "table" then
    args.fail(m, "opts.variables must be a table of name = value")
  end
  for k, v in pairs(vars) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      args.fail(m, "opts.variables must map names to strings or numbers (bad entry " .. tostring(k) .. ")")
    end
  end
  return vars
end

local function check_formats(m, formats)
  if formats == nil or type(formats) == "string" and formats ~= "" then
    return formats
  end
  if type(formats) == "table" and #formats > 0 then
    return table.concat(formats, ",")
  end
  args.fail(m, "opts.formats must be a string such as \"ulaw,alaw\" or an array of formats")
end

-- call:dial(endpoint [, opts]): rings `endpoint` with this call as the
-- caller, bridges the two on answer; the peer's call object, or nil,
-- "busy" / "noanswer" / "congestion" / "failed" / "hangup".
function Call:dial(endpoint, opts)
  local m = "call:dial"
  args.string(m, "endpoint", endpoint)
  opts = args.opts(m, opts, DIAL_OPTS)
  local o = {
    timeout = args.integer(m, "opts.timeout", opts.timeout, true, 1) or 30,
    callerId = args.string(m, "opts.callerId", opts.callerId, true),
    variables = check_variables(m, opts.variables),
    formats = check_formats(m, opts.formats),
  }
  return dial(self, owner(m), endpoint, o)
end

-- --- waiting on calls ------------------------------------------------------------------

-- call:wait_answer([timeout]): for a call from luari.originate, waits
-- until it has answered and entered the application: true, or nil, "busy"
-- / "noanswer" / "congestion" / "failed" / "timeout" / "hangup". Other
-- calls are answered already (or answer themselves): true at once.
function Call:wait_answer(timeout)
  args.number("call:wait_answer", "timeout", timeout, true, 0)
  local tr = self._answer
  if not tr then
    local gone = self:_gone()
    if gone then
      return nil, gone
    end
    return true
  end
  local result = tr.result
  if not result then
    local gone = root_of(self):_gone()
    if gone then
      return nil, gone
    end
    local why
    result, why = wait_verdict(root_of(self), tr, timeout)
    if not result then
      return nil, why
    end
  end
  if result == "answered" then
    return true
  end
  return nil, result
end

-- call:wait_hangup([timeout]): waits until this call's channel hangs up
-- (or leaves the application): true. For a dialed peer, the bridge is gone
-- too by then, so the caller can go on with the flow. nil, "timeout"; nil,
-- "hangup" when the flow's own call hangs up meanwhile.
function Call:wait_hangup(timeout)
  args.number("call:wait_hangup", "timeout", timeout, true, 0)
  if self._state == "up" then
    local _, why = self:_wait(function()
      return nil
    end, timeout)
    if self._state == "up" then
      return nil, why
    end
  end
  local bridge = self._bridge
  local root = root_of(self)
  if bridge and not bridge.gone and not root:_gone() then
    destroy_bridge(root, bridge)
  end
  return true
end

-- --- snoop and originate ----------------------------------------------------------------

local SNOOP_DIRECTIONS = { "none", "both", "out", "in" }
local SNOOP_OPTS = args.set({ "spy", "whisper", "app", "appArgs" })

local function app_args(m, v)
  if v == nil or type(v) == "string" then
    return v
  end
  if type(v) == "table" then
    local parts = {}
    for i, a in ipairs(v) do
      if type(a) ~= "string" and type(a) ~= "number" then
        args.fail(m, "appArgs must be a string or an array of strings")
      end
      parts[i] = tostring(a)
    end
    return table.concat(parts, ",")
  end
  args.fail(m, "appArgs must be a string or an array of strings (got " .. type(v) .. ")")
end

local function split_args(s)
  local list = {}
  for a in tostring(s or ""):gmatch("[^,]+") do
    list[#list + 1] = a
  end
  return list
end

-- call:snoop{spy, whisper, app, appArgs}: a snoop channel on this call;
-- the channel table, and (when it enters this flow's application) a call
-- object for it as a second value.
function Call:snoop(opts)
  local m = "call:snoop"
  if type(opts) ~= "table" then
    args.fail(m, "expects a table such as { spy = \"both\" }")
  end
  opts = args.opts(m, opts, SNOOP_OPTS)
  local spy = args.one_of(m, "spy", opts.spy, SNOOP_DIRECTIONS, true)
  local whisper = args.one_of(m, "whisper", opts.whisper, SNOOP_DIRECTIONS, true)
  if (spy or "none") == "none" and (whisper or "none") == "none" then
    args.fail(m, "give spy or whisper (\"in\", \"out\" or \"both\")")
  end
  local app = args.string(m, "app", opts.app, true) or self.app
  local appargs = app_args(m, opts.appArgs)
  local root = owner(m)
  local gone = self:_gone()
  if gone then
    return nil, gone
  end
  local id = util.uuid()
  local child = app == self.app and new_child(root, id, split_args(appargs)) or nil
  if child then
    -- Before the request: its StasisStart may come before the reply.
    track_answer(child, "stasis")
  end
  local ch, why, err = self:_op(ari.channels.snoopChannel, {
    spy = spy, whisper = whisper, app = app, appArgs = appargs, snoopId = id,
  })
  if not ch then
    if child then
      forget_child(root, child)
    end
    return failure(why, err)
  end
  if not child then
    return ch
  end
  take_reply_snapshot(child, ch)
  return ch, child
end

local ORIGINATE_OPTS = args.set({ "endpoint", "appArgs", "callerId", "timeout", "variables", "formats",
  "originator", "channelId", "otherChannelId" })

-- luari.originate{endpoint, ...}: an outbound call into this flow's
-- application. Returns its call object as soon as the channel exists
-- (call:wait_answer() waits for the answer), or nil, reason, err. It
-- belongs to the flow's call and is hung up when the flow ends.
function luari.originate(opts)
  local m = "luari.originate"
  if type(opts) ~= "table" then
    args.fail(m, "expects a table such as { endpoint = \"PJSIP/100\" }")
  end
  opts = args.opts(m, opts, ORIGINATE_OPTS)
  local endpoint = args.string(m, "endpoint", opts.endpoint)
  local appargs = app_args(m, opts.appArgs)
  local params = {
    endpoint = endpoint, appArgs = appargs,
    callerId = args.string(m, "callerId", opts.callerId, true),
    timeout = args.integer(m, "timeout", opts.timeout, true, -1),
    variables = check_variables(m, opts.variables),
    formats = check_formats(m, opts.formats),
    originator = args.string(m, "originator", opts.originator, true),
    channelId = args.string(m, "channelId", opts.channelId, true) or util.uuid(),
    otherChannelId = args.string(m, "otherChannelId", opts.otherChannelId, true),
  }
  local root = owner(m)
  local gone = root:_gone()
  if gone then
    return nil, gone
  end
  params.app = root.app
  local child = new_child(root, params.channelId, split_args(appargs))
  track_answer(child, "stasis")
  local ch, why, err = root:_request(ari.channels.originate, params)
  if not ch then
    forget_child(root, child)
    return failure(why, err)
  end
  take_reply_snapshot(child, ch)
  return child
end

return luari
