-- Playbacks: media played to a channel or a bridge, the /playbacks resource
-- (get, stop, control) and the events PlaybackStarted, PlaybackContinuing
-- and PlaybackFinished.
--
-- A playback is a channel command: the reply (201, state "queued") goes
-- out first, the playback starts when nothing else runs on the channel.
-- What each media URI does (plays for its length, fails, vanishes without a
-- PlaybackFinished, plays until stopped) comes from luari.sim.model.sounds.
-- Stopping gives PlaybackFinished "done"; a hang-up gives "failed".

local U = require "luari.sim.model.util"
local lib = require "luari.sim.model.lib"

local P = {}
lib.playbacks = P

local H = {}
P.handlers = H

local function C()
  return lib.channels
end

local function to_json(pb, state)
  local t = {
    id = pb.id, media_uri = pb.uris[pb.idx], target_uri = pb.target_uri,
    language = pb.language, state = state or pb.state,
  }
  if pb.uris[pb.idx + 1] then
    t.next_media_uri = pb.uris[pb.idx + 1]
  end
  return t
end

local function publish(m, pb, type_, state)
  local apps
  if pb.bridge then
    apps = C().recipients(m, nil, pb.bridge)
  else
    apps = C().recipients(m, pb.channel)
  end
  if #apps == 0 then
    return
  end
  local ev = C().event(m, type_)
  ev.playback = to_json(pb, state)
  C().deliver(m, apps, ev)
end

local function forget(m, pb)
  pb.finished = true
  if pb.slot then
    m:cancel(pb.slot)
    pb.slot = nil
  end
  if m.playbacks[pb.id] == pb then
    m.playbacks[pb.id] = nil
  end
end

-- The playback is over: the channel takes its next command.
local function finish(m, pb, state)
  if state then
    pb.state = state
    publish(m, pb, "PlaybackFinished", state)
  end
  forget(m, pb)
  C().command_done(m, pb.channel, pb.cmd)
end

local segment_done

local function run_timer(m, pb)
  pb.segment_start = m.clock:now()
  pb.slot = m:after(pb.channel, pb.remaining, function()
    pb.slot = nil
    segment_done(m, pb)
  end)
end

-- Starts the current media URI of the playback.
local function begin_segment(m, pb)
  local outcome, len, controllable, assumed = lib.sounds.media_outcome(m, pb.uris[pb.idx])
  pb.controllable = controllable
  if assumed then
    m:assumed_sound(assumed)
  end
  if outcome == "plays" then
    if pb.idx == 1 and pb.offset > 0 then
      len = math.max(0, len - pb.offset)
    end
    pb.length, pb.remaining = len, len
    run_timer(m, pb)
  elseif outcome == "fails" then
    finish(m, pb, "failed")
  elseif outcome == "vanishes" then
    finish(m, pb, nil)
  else
    pb.length, pb.remaining = nil, nil
  end
end

segment_done = function(m, pb)
  if pb.uris[pb.idx + 1] then
    publish(m, pb, "PlaybackContinuing", "continuing")
    pb.idx = pb.idx + 1
    publish(m, pb, "PlaybackStarted", "playing")
    return begin_segment(m, pb)
  end
  finish(m, pb, "done")
end

local function start(m, ch, cmd)
  local pb = cmd.pb
  if pb.state == "canceled" then
    -- Stopped while queued: Asterisk reports it done when its turn comes.
    return finish(m, pb, "done")
  end
  pb.state = "playing"
  publish(m, pb, "PlaybackStarted")
  lib.dialplan.media_from_peer(m, ch)
  begin_segment(m, pb)
end

local function hangup(m, _, cmd, why)
  local pb = cmd.pb
  pb.state = why == "hangup" and "failed" or "done"
  publish(m, pb, "PlaybackFinished")
  forget(m, pb)
end

local function dropped(m, _, cmd)
  forget(m, cmd.pb)
end

-- Queues a playback on `ch` (a channel, or a bridge's announcer).
-- o: id, media (list), language, target_uri, offsetms, skipms, bridge.
function P.start(m, ch, o)
  local pb = {
    id = o.id or m:uuid(), uris = o.media, idx = 1, target_uri = o.target_uri,
    language = o.language, state = "queued", channel = ch, bridge = o.bridge,
    offset = (o.offsetms or 0) / 1000, skip = ((o.skipms ~= 0 and o.skipms) or 3000) / 1000,
  }
  pb.cmd = { start = start, hangup = hangup, dropped = dropped, pb = pb }
  m.playbacks[pb.id] = pb
  C().enqueue(m, ch, pb.cmd)
  return pb
end

-- Checks common to playing on a channel and on a bridge; returns the
-- options or nil, reply.
function P.options(a, language)
  local media = U.split_nonempty(a.media)
  local skipms, offsetms = U.int(a.skipms, 0), U.int(a.offsetms, 0)
  if skipms < 0 then
    return nil, { U.fail(400, "skipms cannot be negative") }
  end
  if offsetms < 0 then
    return nil, { U.fail(400, "offsetms cannot be negative") }
  end
  return {
    media = media, language = U.empty(a.lang) and language or a.lang,
    skipms = skipms, offsetms = offsetms,
  }
end

local function play_channel(m, req, id)
  local ch, err = lib.channel_ops.control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  local o
  o, err = P.options(req.args, ch.language)
  if not o then
    return unpack(err)
  end
  if #o.media == 0 then
    return U.fail(500, "Failed to queue media for playback")
  end
  o.id = not U.empty(id) and id or nil
  o.target_uri = "channel:" .. ch.id
  local pb = P.start(m, ch, o)
  return 201, "Created", to_json(pb, "queued"), { Location = "/ari/playbacks/" .. pb.id }
end

H["channels.play"] = function(m, req)
  return play_channel(m, req, req.args.playbackId)
end

H["channels.playWithId"] = function(m, req)
  return play_channel(m, req, req.params.playbackId)
end

H["playbacks.get"] = function(m, req)
  local pb = m.playbacks[req.params.playbackId]
  if not pb then
    return U.fail(404, "Playback not found")
  end
  return U.ok(to_json(pb, pb.state == "canceled" and "done" or pb.state))
end

local function stop(m, pb)
  if pb.state == "queued" then
    pb.state = "canceled"
  elseif pb.state == "playing" or pb.state == "paused" then
    finish(m, pb, "done")
  end
end

H["playbacks.stop"] = function(m, req)
  local pb = m.playbacks[req.params.playbackId]
  if not pb then
    return U.fail(404, "Playback not found")
  end
  stop(m, pb)
  return U.no_content()
end

-- Time left of the current media, as if paused now.
local function left(m, pb)
  if pb.slot then
    return math.max(0, pb.remaining - (m.clock:now() - pb.segment_start))
  end
  return pb.remaining
end

local function reschedule(m, pb, remaining)
  if pb.slot then
    m:cancel(pb.slot)
    pb.slot = nil
  end
  pb.remaining = remaining
  if pb.state == "playing" and remaining then
    run_timer(m, pb)
  end
end

local OPS = {}

function OPS.pause(m, pb)
  pb.state = "paused"
  reschedule(m, pb, left(m, pb))
end

function OPS.unpause(m, pb)
  pb.state = "playing"
  publish(m, pb, "PlaybackStarted")
  reschedule(m, pb, pb.remaining)
end

function OPS.restart(m, pb)
  reschedule(m, pb, pb.length)
end

function OPS.reverse(m, pb)
  local rem = left(m, pb)
  reschedule(m, pb, rem and math.min(pb.length, rem + pb.skip))
end

function OPS.forward(m, pb)
  local rem = left(m, pb)
  reschedule(m, pb, rem and math.max(0, rem - pb.skip))
end

-- res_stasis_playback's table of operations per state: "run", "noop", or
-- absent (409 unless the playback is playing).
local ALLOWED = {
  queued = { restart = "noop" },
  playing = { unpause = "noop", pause = "run", restart = "run", reverse = "run", forward = "run" },
  paused = { pause = "noop", unpause = "run" },
}

H["playbacks.control"] = function(m, req)
  local op = req.args.operation
  if U.empty(op) then
    return U.fail(400, "Missing operation")
  end
  if not OPS[op] then
    return U.fail(400, "Invalid operation " .. op)
  end
  local pb = m.playbacks[req.params.playbackId]
  if not pb then
    return U.fail(404, "Playback not found")
  end
  local what = (ALLOWED[pb.state] or {})[op]
  if not what then
    return U.fail(409, string.format("Can only %s while media is playing", op))
  end
  if what == "run" then
    if not pb.controllable then
      return U.fail(500, string.format("Could not %s playback", op))
    end
    OPS[op](m, pb)
  end
  return U.no_content()
end

P.to_json = to_json

return P
