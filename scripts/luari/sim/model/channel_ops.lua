-- REST operations on channels other than creating them, media and
-- variables: list/get, hangup, answer/ring/progress, DTMF, mute, hold, music
-- on hold, silence, continue, move, redirect, dial, RTP statistics,
-- transfer progress. Replies, checks and their order follow res_ari.

local U = require "luari.sim.model.util"
local lib = require "luari.sim.model.lib"

local H = {}
lib.channel_ops = H

local function C()
  return lib.channels
end

-- res_ari's find_control: 404 for no channel, 409 for one not in Stasis.
function H.find_control(m, id)
  local ch = m.channels[id]
  if not ch or ch.hanging then
    return nil, { U.fail(404, "Channel not found") }
  end
  if not ch.stasis then
    return nil, { U.fail(409, "Channel not in Stasis application") }
  end
  return ch
end

-- res_ari's channel_state_invalid: an outbound channel not yet answered
-- cannot be answered, played to, held, ...
function H.state_invalid(ch)
  if ch.state == "Down" or ch.state == "Ringing" then
    return { U.fail(412, "Channel in invalid state") }
  end
end

-- Looks up a Stasis channel in a usable state; returns ch or nil, reply.
function H.control(m, id)
  local ch, err = H.find_control(m, id)
  if not ch then
    return nil, err
  end
  err = H.state_invalid(ch)
  if err then
    return nil, err
  end
  return ch
end

-- An operation that needs a channel in Stasis and in a usable state, and
-- does nothing the applications can see (ring, hold, music on hold, ...).
local function accepted(m, req)
  local ch, err = H.control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  return U.no_content()
end

H["channels.list"] = function(m)
  return U.ok(C().list_json(m))
end

H["channels.get"] = function(m, req)
  local ch = m.channels[req.params.channelId]
  if not ch then
    return U.fail(404, "Channel not found")
  end
  return U.ok(C().snapshot(ch))
end

H["channels.originate"] = function(m, req)
  return lib.calls.originate(m, req, nil)
end

H["channels.originateWithId"] = function(m, req)
  return lib.calls.originate(m, req, req.params.channelId)
end

H["channels.create"] = function(m, req)
  return lib.calls.create(m, req)
end

H["channels.externalMedia"] = function(m, req)
  return lib.calls.external_media(m, req)
end

H["channels.snoopChannel"] = function(m, req)
  return lib.calls.snoop(m, req, nil)
end

H["channels.snoopChannelWithId"] = function(m, req)
  return lib.calls.snoop(m, req, req.params.snoopId)
end

local function hangup_cause(a)
  if not U.empty(a.reason) and not U.empty(a.reason_code) then
    return nil, { U.fail(400, "The reason and reason_code can't both be specified") }
  end
  if not U.empty(a.reason_code) then
    local cause = U.scan_int(a.reason_code)
    if not cause then
      return nil, { U.fail(400, "Invalid reason for hangup reason code provided", "Invalid Reason Code") }
    end
    return cause
  end
  if not U.empty(a.reason) then
    local cause = U.REASON_CAUSES[a.reason]
    if not cause then
      return nil, { U.fail(400, "Invalid reason for hangup reason provided", "Invalid Reason") }
    end
    return cause
  end
  return 16
end

H["channels.hangup"] = function(m, req)
  local ch = m.channels[req.params.channelId]
  if not ch or ch.hanging then
    return U.fail(404, "Channel not found")
  end
  local cause, err = hangup_cause(req.args)
  if not cause then
    return unpack(err)
  end
  if ch.half == 2 and ch.peer then
    C().far_hangup(m, ch, cause, { 32, true })
  else
    C().hangup(m, ch, cause, "app")
  end
  return U.no_content()
end

H["channels.answer"] = function(m, req)
  local ch, err = H.control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  if ch.state ~= "Up" then
    C().set_state(m, ch, "Up")
    lib.dialplan.answered(m, ch)
  end
  return U.no_content()
end

H["channels.ring"] = accepted
H["channels.ringStop"] = accepted
H["channels.progress"] = accepted
H["channels.hold"] = accepted
H["channels.unhold"] = accepted
H["channels.startMoh"] = accepted
H["channels.stopMoh"] = accepted
H["channels.startSilence"] = accepted
H["channels.stopSilence"] = accepted

local DIRECTIONS = { ["in"] = true, out = true, both = true }

local function mute(on)
  return function(m, req)
    local ch, err = H.control(m, req.params.channelId)
    if not ch then
      return unpack(err)
    end
    local dir = req.args.direction
    if U.empty(dir) then
      return U.fail(400, "Direction is required")
    end
    if not DIRECTIONS[dir] then
      return U.fail(400, "Invalid direction specified")
    end
    if dir ~= "out" then
      -- What the channel hears is muted: a recording of it hears silence.
      ch.mute_in = on or nil
      lib.recordings.media_changed(m, ch)
    end
    return U.no_content()
  end
end

H["channels.mute"] = mute(true)
H["channels.unmute"] = mute(false)

-- DTMF is a channel command: it waits for a playback in progress.
H["channels.sendDTMF"] = function(m, req)
  local ch, err = H.control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  local a = req.args
  if U.empty(a.dtmf) then
    return U.fail(400, "DTMF is required")
  end
  local o = {
    before = U.int(a.before, 0) / 1000, between = U.int(a.between, 100) / 1000,
    duration = U.int(a.duration, 100) / 1000, after = U.int(a.after, 0) / 1000,
  }
  C().enqueue(m, ch, {
    start = function(_, _, cmd)
      local total = lib.dialplan.send_dtmf(m, ch, a.dtmf, o)
      cmd.slot = m:after(ch, total, function()
        C().command_done(m, ch, cmd)
      end)
    end,
  })
  return U.no_content()
end

-- Where /continue sends the channel (res_ari's rules); nil, reply on error.
local function continue_target(ch, a)
  local context, exten
  if U.empty(a.context) then
    context = ch.context
    exten = U.empty(a.extension) and ch.exten or a.extension
  else
    context = a.context
    exten = U.empty(a.extension) and "s" or a.extension
  end
  local priority
  if not U.empty(a.label) then
    priority = U.scan_int(a.label)
    if not priority then
      return nil, { U.fail(404, "Requested label can not be found") }
    elseif priority == 0 then
      return nil, { U.fail(400, "Requested priority is illegal") }
    end
  elseif U.int(a.priority, 0) ~= 0 then
    priority = U.int(a.priority, 0)
  elseif U.empty(a.context) and U.empty(a.extension) then
    priority = ch.priority + 1
  else
    priority = 1
  end
  return { context = context, exten = exten, priority = priority }
end

H["channels.continueInDialplan"] = function(m, req)
  local ch, err = H.control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  local target
  target, err = continue_target(ch, req.args)
  if not target then
    return unpack(err)
  end
  C().flush_commands(m, ch, "leave")
  C().end_stasis(m, ch)
  lib.dialplan.run(m, ch, target.context, target.exten, target.priority)
  return U.no_content()
end

H["channels.move"] = function(m, req)
  local ch, err = H.find_control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  local a = req.args
  if U.empty(a.app) then
    -- Asterisk 22.10.1 crashes here (it dereferences the missing name);
    -- the model answers instead of taking the whole server down.
    return U.fail(400, "Required parameter 'app' not provided.")
  end
  local args = U.split(a.appArgs)
  local target = m.apps[a.app]
  if target and target.connected then
    C().end_stasis(m, ch)
    C().start_stasis(m, ch, a.app, args)
  else
    local ev = C().event(m, "ApplicationMoveFailed", ch)
    ev.destination = a.app
    ev.args = U.array_copy(args)
    C().deliver(m, { ch.stasis }, ev)
  end
  return U.no_content()
end

H["channels.redirect"] = function(m, req)
  local ch, err = H.control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  local endpoint = req.args.endpoint
  if U.empty(endpoint) then
    return U.fail(400, "Required parameter 'endpoint' not provided.", "Not Found")
  end
  local tech, resource = endpoint:match("^([^/]+)/(.*)$")
  if not tech then
    return U.fail(422, string.format("Endpoint parameter '%s' does not contain tech/resource", endpoint))
  end
  if resource == "" then
    return U.fail(422, string.format("No resource provided in endpoint parameter '%s'", endpoint))
  end
  if tech:lower() ~= ch.tech:lower() then
    return U.fail(422, string.format("Endpoint technology '%s' does not match channel technology '%s'", tech, ch.tech))
  end
  if ch.tech ~= "Local" then
    -- The phone is told to call elsewhere (302): this call ends.
    C().hangup(m, ch, 16, "far")
  end
  -- On a Local channel Asterisk accepts and does nothing ("Unsupported transfer requested").
  return U.no_content()
end

H["channels.dial"] = function(m, req)
  local ch, err = H.find_control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  if ch.state ~= "Down" then
    return U.fail(409, "Channel is not in the 'Down' state")
  end
  if not ch.dialstring or ch.kind ~= "created" then
    return U.fail(409, "Dialing a channel not created by ARI")
  end
  local timeout = U.int(req.args.timeout, 0)
  lib.calls.dial(m, ch, timeout > 0 and timeout or nil)
  return U.no_content()
end

local RTP_TECHS = { PJSIP = true, SIP = true, IAX2 = false }

-- Plausible statistics of a SIP call that has run for `age` seconds.
local function rtpstat(m, ch)
  local age = math.max(0, m:wall() - ch.created_wall)
  local packets = math.floor(age * 50)
  return {
    txcount = packets, rxcount = packets, txjitter = 0.0, rxjitter = 0.000125,
    remote_maxjitter = 0.0, remote_minjitter = 0.0, remote_normdevjitter = 0.0, remote_stdevjitter = 0.0,
    local_maxjitter = 0.000125, local_minjitter = 0.0, local_normdevjitter = 0.0000625, local_stdevjitter = 0.0000625,
    txploss = 0, rxploss = 0,
    remote_maxrxploss = 0.0, remote_minrxploss = 0.0, remote_normdevrxploss = 0.0, remote_stdevrxploss = 0.0,
    local_maxrxploss = 0.0, local_minrxploss = 0.0, local_normdevrxploss = 0.0, local_stdevrxploss = 0.0,
    rtt = 0.0, maxrtt = 0.0, minrtt = 0.0, normdevrtt = 0.0, stdevrtt = 0.0,
    local_ssrc = 1000 + m.channel_count, remote_ssrc = 2000 + m.channel_count,
    txoctetcount = packets * 160, rxoctetcount = packets * 160,
    channel_uniqueid = ch.id,
  }
end

H["channels.rtpstatistics"] = function(m, req)
  local ch = m.channels[req.params.channelId]
  if not ch then
    return U.fail(404, "Channel not found")
  end
  if ch.tech == "UnicastRTP" then
    return U.fail(404, "RTP info not found")
  end
  if not RTP_TECHS[ch.tech] then
    return U.fail(403, "Unsupported channel type", "Forbidden")
  end
  return U.ok(rtpstat(m, ch))
end

local TRANSFER_STATES = {
  channel_progress = true, channel_answered = true,
  channel_unavailable = true, channel_declined = true,
}

H["channels.transfer_progress"] = function(m, req)
  local ch, err = H.find_control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  local states = req.args.states
  if U.empty(states) then
    return U.fail(400, "states must not be empty")
  end
  if not TRANSFER_STATES[states] then
    return U.fail(400, "Invalid states value")
  end
  return U.no_content()
end

return H
