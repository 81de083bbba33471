-- Channels of the simulated Asterisk: the channel record and its JSON
-- snapshot, the events about a channel and which applications receive them,
-- entering and leaving Stasis, hanging up and destroying, and the queue that
-- runs a channel's playbacks, recordings and DTMF one after another.
--
-- Who receives what (as Asterisk 22 does): an application subscribed to a
-- channel gets every event about it. originate/create/externalMedia
-- subscribe explicitly and stay subscribed after StasisEnd; a channel that
-- enters Stasis otherwise (from the dialplan, a snoop) is subscribed only
-- while it is in Stasis, so its application hears nothing after StasisEnd.
-- StasisStart and StasisEnd go to the entering/leaving application only.

local json = require "luari.json"
local U = require "luari.sim.model.util"
local lib = require "luari.sim.model.lib"

local C = {}
lib.channels = C

-- Takes a number from Asterisk's unique-id counter. Every allocation attempt
-- takes one, also when the id was chosen by the caller or is already taken
-- (that is how the counter moves in the captures). Returns nil when `wanted`
-- is the id of a live channel.
function C.alloc_id(m, wanted)
  local n = m.uid_seq
  m.uid_seq = n + 1
  if not U.empty(wanted) then
    if m.channels[wanted] then
      return nil
    end
    return wanted
  end
  return string.format("%d.%d", math.floor(m:wall()), n)
end

-- t: id, name, tech, kind, state, context, exten, priority, app_name,
-- app_data, rest_app_name, rest_app_data, media. `rest_app_*` is the
-- dialplan application a destroyed channel shows (AppDial2 for a dialed
-- channel, nothing for one made by /channels/create).
function C.new(m, t)
  local ch = {
    id = t.id, name = t.name, tech = t.tech, kind = t.kind,
    state = t.state or "Down",
    caller_name = "", caller_number = "", connected_name = "", connected_number = "",
    context = t.context or "default", exten = t.exten or "s", priority = t.priority or 1,
    app_name = t.app_name or "", app_data = t.app_data or "",
    rest_app_name = t.rest_app_name or "", rest_app_data = t.rest_app_data or "",
    creationtime = m:ts(), created_wall = m:wall(), language = "en",
    vars = {}, subs = {}, timers = {},
    media = t.media or "none",
  }
  m.channels[ch.id] = ch
  m.channel_count = m.channel_count + 1
  return ch
end

function C.snapshot(ch)
  return {
    id = ch.id, name = ch.name, state = ch.state, protocol_id = "",
    caller = { name = ch.caller_name, number = ch.caller_number },
    connected = { name = ch.connected_name, number = ch.connected_number },
    accountcode = "",
    dialplan = {
      context = ch.context, exten = ch.exten, priority = ch.priority,
      app_name = ch.app_name, app_data = ch.app_data,
    },
    creationtime = ch.creationtime, language = ch.language,
  }
end

-- Applications that receive events about `ch` and/or `bridge`, each once.
function C.recipients(m, ch, bridge)
  local list, n = {}, 0
  local function add(app)
    for i = 1, n do
      if list[i] == app then
        return
      end
    end
    n = n + 1
    list[n] = app
  end
  if ch then
    local subs = ch.subs
    for i = 1, #subs do
      add(subs[i].app)
    end
  end
  if bridge then
    for _, app in ipairs(bridge.sub_order) do
      if (bridge.subs[app] or 0) > 0 then
        add(app)
      end
    end
  end
  for _, app in ipairs(m.all_apps) do
    add(app)
  end
  return list
end

-- Queues `ev` for every app in `apps`; each gets its own table.
function C.deliver(m, apps, ev)
  for i = 1, #apps do
    local e = i == 1 and ev or U.copy(ev)
    e.application = apps[i]
    m:queue_event(apps[i], e)
  end
end

function C.event(m, type_, ch)
  local ev = { type = type_, timestamp = m:ts(), asterisk_id = m.asterisk_id }
  if ch then
    ev.channel = C.snapshot(ch)
  end
  return ev
end

-- An event about `ch` with extra `fields`, to the channel's subscribers.
function C.emit(m, ch, type_, fields)
  local apps = C.recipients(m, ch)
  if #apps == 0 then
    return
  end
  local ev = C.event(m, type_, ch)
  if fields then
    for k, v in pairs(fields) do
      ev[k] = v
    end
  end
  C.deliver(m, apps, ev)
end

function C.set_state(m, ch, state)
  if ch.state ~= state then
    ch.state = state
    C.emit(m, ch, "ChannelStateChange")
  end
end

-- Sets (or with value nil unsets) a channel variable; Asterisk reports every
-- set, also of an empty value.
function C.varset(m, ch, name, value)
  ch.vars[name] = value
  C.emit(m, ch, "ChannelVarset", { variable = name, value = value or "" })
end

function C.dialplan_step(m, ch, priority, app, data)
  ch.priority, ch.app_name, ch.app_data = priority, app, data
  C.emit(m, ch, "ChannelDialplan", { dialplan_app = app, dialplan_app_data = data })
end

function C.hangup_request(m, ch, cause, soft)
  C.emit(m, ch, "ChannelHangupRequest", { cause = cause, soft = soft or nil })
end

-- Dial is about the dialed channel, which it carries as "peer".
function C.dial_event(m, ch, status, dialstring)
  local apps = C.recipients(m, ch)
  if #apps == 0 then
    return
  end
  local ev = C.event(m, "Dial")
  ev.peer = C.snapshot(ch)
  ev.dialstatus, ev.forward, ev.dialstring = status, "", dialstring
  C.deliver(m, apps, ev)
end

local function find_sub(ch, app)
  for i, s in ipairs(ch.subs) do
    if s.app == app then
      return i, s
    end
  end
end

-- how: "explicit" (originate, create, /applications subscription) or
-- "stasis" (while the channel is in that app).
function C.subscribe(m, ch, app, how)
  local _, s = find_sub(ch, app)
  if not s then
    s = { app = app }
    ch.subs[#ch.subs + 1] = s
    m:app_record(app).channels[ch.id] = true
  end
  s[how] = true
end

function C.unsubscribe(m, ch, app, how)
  local i, s = find_sub(ch, app)
  if not s then
    return false
  end
  s[how] = nil
  if not s.explicit and not s.stasis then
    table.remove(ch.subs, i)
    local rec = m.apps[app]
    if rec then
      rec.channels[ch.id] = nil
    end
  end
  return true
end

-- Stasis() refuses an application with no WebSocket connected (never
-- registered, or its socket closed: Asterisk deactivates it then).
-- STASISSTATUS is FAILED and the dialplan goes on; the simulator knows no
-- dialplan after it, so the channel ends there, as at the end of an
-- extension. Returns true when it refused.
function C.stasis_refused(m, ch, app)
  if m:app_is_connected(app) then
    return false
  end
  C.varset(m, ch, "STASISSTATUS", "FAILED")
  m:after(ch, 0, function()
    C.hangup(m, ch, 16, "quiet")
  end)
  return true
end

-- Stasis(app,args) starts on a channel: STASISSTATUS is cleared (seen by
-- apps already subscribed), then StasisStart.
function C.enter_stasis(m, ch, app, args_str)
  ch.app_name = "Stasis"
  ch.app_data = U.empty(args_str) and app or (app .. "," .. args_str)
  C.varset(m, ch, "STASISSTATUS", "")
  if C.stasis_refused(m, ch, app) then
    return
  end
  C.start_stasis(m, ch, app, U.split(args_str))
  ch.stasis_pending = true
end

function C.start_stasis(m, ch, app, args)
  C.subscribe(m, ch, app, "stasis")
  ch.stasis = app
  local ev = C.event(m, "StasisStart", ch)
  ev.args = U.array_copy(args)
  C.deliver(m, { app }, ev)
end

function C.end_stasis(m, ch)
  local app = ch.stasis
  ch.stasis = nil
  C.deliver(m, { app }, C.event(m, "StasisEnd", ch))
  C.unsubscribe(m, ch, app, "stasis")
end

-- The command queue. A command is { start = fn(m, ch, cmd), hangup =
-- fn(m, ch, cmd) (it was running when the channel went away), dropped =
-- fn(m, ch, cmd) (it never ran) }; start() ends with C.command_done().
function C.enqueue(m, ch, cmd)
  local q = ch.cmdq
  if not q then
    q = {}
    ch.cmdq = q
  end
  q[#q + 1] = cmd
  if not ch.cmd_current and not ch.cmd_kick then
    -- Start on the next turn, so that the reply that queued it goes first.
    ch.cmd_kick = m:after(ch, 0, function()
      ch.cmd_kick = nil
      C.next_command(m, ch)
    end)
  end
end

function C.next_command(m, ch)
  if ch.cmd_current or ch.hanging then
    return
  end
  local q = ch.cmdq
  local cmd = q and table.remove(q, 1)
  if not cmd then
    if ch.on_idle then
      ch.on_idle(m, ch)
    end
    return
  end
  ch.cmd_current = cmd
  cmd.start(m, ch, cmd)
end

function C.command_done(m, ch, cmd)
  if ch.cmd_current ~= cmd then
    return
  end
  ch.cmd_current = nil
  C.next_command(m, ch)
end

function C.unqueue(ch, cmd)
  local q = ch.cmdq or {}
  for i = 1, #q do
    if q[i] == cmd then
      table.remove(q, i)
      return true
    end
  end
  return false
end

-- Ends the running command and forgets the queued ones (the channel goes
-- away or leaves Stasis; `why` is "hangup" or "leave").
function C.flush_commands(m, ch, why)
  local cur, q = ch.cmd_current, ch.cmdq
  ch.cmd_current, ch.cmdq = nil, nil
  if ch.cmd_kick then
    m:cancel(ch.cmd_kick)
    ch.cmd_kick = nil
  end
  if cur and cur.hangup then
    cur.hangup(m, ch, cur, why)
  end
  for _, c in ipairs(q or {}) do
    if c.dropped then
      c.dropped(m, ch, c)
    end
  end
end

-- Stops what runs on a channel that is going away and takes it out of
-- Stasis: bridge, media, StasisEnd, then STASISSTATUS=SUCCESS (set when a
-- Stasis() that ran on the channel has returned).
local function wind_down(m, ch)
  if ch.bridge then
    lib.bridges.leave(m, ch.bridge, ch)
  end
  C.flush_commands(m, ch, "hangup")
  if ch.stasis then
    C.end_stasis(m, ch)
  end
  if ch.stasis_pending then
    ch.stasis_pending = nil
    C.varset(m, ch, "STASISSTATUS", "SUCCESS")
  end
end

local function release(m, ch)
  for slot in pairs(ch.timers) do
    m:cancel(slot)
  end
  ch.timers = {}
  if m.channels[ch.id] == ch then
    m.channels[ch.id] = nil
    m.channel_count = m.channel_count - 1
  end
  for _, s in ipairs(ch.subs) do
    local rec = m.apps[s.app]
    if rec then
      rec.channels[ch.id] = nil
    end
  end
  ch.subs = {}
  if ch.peer and ch.peer.peer == ch then
    ch.peer.peer = nil
  end
  ch.peer, ch.dialer = nil, nil
  if ch.snoop_target and ch.snoop_target.snoops then
    ch.snoop_target.snoops[ch] = nil
  end
  local snoops = ch.snoops
  ch.snoops = nil
  for snoop in pairs(snoops or {}) do
    C.hangup(m, snoop, 16, "far")
  end
end

function C.destroy(m, ch, cause)
  if ch.destroyed then
    return
  end
  ch.destroyed = true
  ch.hanging = true
  ch.app_name, ch.app_data = ch.rest_app_name, ch.rest_app_data
  C.emit(m, ch, "ChannelDestroyed", { cause = cause, cause_txt = U.cause_text(cause) })
  release(m, ch)
end

-- Hangs up `ch` and, for a Local channel, its other half after it.
-- how: "app" (ARI DELETE: soft hangup request, cause 32), "far" (the other
-- side went away: a plain request with the cause), "quiet" (no request
-- event: the channel's own Hangup(), a failed or timed-out dial).
-- `peer_cause`: the cause the other half is destroyed with, when it differs.
function C.hangup(m, ch, cause, how, peer_cause)
  if ch.hanging then
    return
  end
  ch.hanging = true
  local peer = ch.peer
  if how == "app" then
    C.hangup_request(m, ch, 32, true)
  elseif how == "far" then
    C.hangup_request(m, ch, cause)
  end
  wind_down(m, ch)
  if peer and not peer.hanging then
    peer.hanging = true
    C.hangup_request(m, peer, cause)
    C.destroy(m, ch, cause)
    wind_down(m, peer)
    C.hangup_request(m, peer, 16, true)
    C.destroy(m, peer, peer_cause or cause)
  else
    C.destroy(m, ch, cause)
  end
end

-- The far (;2) half of a Local pair hangs up first; the near half follows.
-- `request`: { cause, soft } of the far half's own request event (its
-- Hangup() or an ARI DELETE), nil when its dialplan simply ran out.
function C.far_hangup(m, far, cause, request)
  if far.hanging then
    return
  end
  far.hanging = true
  local near = far.peer
  if request then
    C.hangup_request(m, far, request[1], request[2])
  end
  if near and not near.hanging then
    near.hanging = true
    C.hangup_request(m, near, cause)
    wind_down(m, far)
    C.destroy(m, far, cause)
    wind_down(m, near)
    C.destroy(m, near, cause)
  else
    wind_down(m, far)
    C.destroy(m, far, cause)
  end
end

-- Removes a channel that nobody ever saw (a failed allocation).
function C.discard(m, ch)
  ch.destroyed, ch.hanging = true, true
  release(m, ch)
end

-- What a recording of `ch` hears changed: "none" (no frames at all),
-- "silence", "tone", "speech".
function C.set_media(m, ch, kind)
  if ch.media == kind then
    return
  end
  ch.media = kind
  lib.recordings.media_changed(m, ch)
end

-- Fills caller or connected fields from a callerId string
-- ("\"Alice\" <100>", "<100>", "100", "Alice"), as ast_callerid_parse does.
function C.parse_callerid(s)
  local name, number = s:match('^%s*(.-)%s*<([^>]*)>')
  if not number then
    if s:match("^[%d%+%*#%-%s%(%)%.]+$") then
      name, number = "", s
    else
      name, number = s, ""
    end
  end
  name = name:match('^"(.*)"$') or name
  if number:match("^[%d%+%-%s%(%)%.]+$") then
    -- ast_shrink_phone_number: drop the separators a person types
    number = number:gsub("[%-%s%(%)%.]", "")
  end
  return name, number
end

function C.callerid_event(m, ch)
  C.emit(m, ch, "ChannelCallerId", {
    caller_presentation = 0,
    caller_presentation_txt = "Presentation Allowed, Not Screened",
  })
end

function C.list_json(m)
  local out = {}
  for _, ch in pairs(m.channels) do
    out[#out + 1] = C.snapshot(ch)
  end
  return json.array(out)
end

return C
