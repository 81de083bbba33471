-- Recordings: recording a channel or a bridge, the live recording resource
-- (stop, cancel, pause, mute), stored recordings, and the events
-- RecordingStarted, RecordingFinished and RecordingFailed.
--
-- What a recording hears is the channel's media: "none" (no frames at all,
-- like a Local far end that only waits), "silence", "tone" or "speech".
-- Asterisk's recorder ends by itself on maxDurationSeconds, after
-- maxSilenceSeconds of silence, on a terminateOn digit, when no frame at
-- all arrived for 4 s (two 2-second waits; the file is then empty,
-- duration 0), or when the channel hangs up (state "done" all the same).
-- It checks maxDurationSeconds against time() in whole seconds when a frame
-- arrives, so a 2 s recording stops at the first second boundary after
-- 2 s have passed (2.0 to 3.0 s). Durations are whole seconds of audio
-- actually recorded, computed as Asterisk does (see durations()).

local json = require "luari.json"
local U = require "luari.sim.model.util"
local lib = require "luari.sim.model.lib"

local R = {}
lib.recordings = R

local H = {}
R.handlers = H

local NO_AUDIO = 4          -- two ast_waitfor(2000) without a frame
local SILENCE_FRAME = 0.02  -- silence must exceed the limit: one more 20 ms frame
local BEEP = "beep"
local EPSILON = 1e-6

local function C()
  return lib.channels
end

local function to_json(rec, state)
  return { name = rec.name, format = rec.format, state = state or rec.state, target_uri = rec.target_uri }
end

local function publish(m, rec, type_, body)
  local apps
  if rec.bridge then
    apps = C().recipients(m, nil, rec.bridge)
  else
    apps = C().recipients(m, rec.channel)
  end
  if #apps == 0 then
    return
  end
  local ev = C().event(m, type_)
  ev.recording = body
  C().deliver(m, apps, ev)
end

-- What the recorder receives now: "none" (no frames), "muted" (frames the
-- channel's mute drops), "silence" or "sound".
local function hearing(rec)
  local media
  if rec.bridge then
    media = "none"
    for _, member in ipairs(rec.bridge.members) do
      if member.media ~= "none" then
        media = member.media
      end
    end
  else
    media = rec.channel.media
    if media ~= "none" and rec.channel.mute_in then
      return "muted"
    end
  end
  if media == "none" or media == "silence" then
    return media
  end
  return "sound"
end

-- Adds the audio received since the last update. A recording's own mute
-- writes silence but its silence detector still hears the caller, so it
-- changes nothing here.
local function accrue(m, rec)
  local now = m.clock:now()
  local from = math.max(rec.t, rec.begin_at)
  rec.t = now
  local kind = rec.heard_kind
  if kind == "none" then
    return
  end
  rec.last_frame = now
  if kind == "muted" or rec.paused or now <= from then
    return
  end
  local dt = now - from
  rec.heard = rec.heard + dt
  if kind == "silence" then
    rec.silence_run = rec.silence_run + dt
    rec.silence_total = rec.silence_total + dt
  else
    rec.silence_run = 0
  end
end

-- The time() check: maxDurationSeconds < whole seconds since the start,
-- less the whole seconds spent paused.
local function max_deadline(m, rec)
  return math.floor(m.epoch + rec.begin_at) + rec.paused_secs + rec.max_duration + 1 - m.epoch
end

local finish

-- Which limit ends the recording and when, given what it hears.
local function next_deadline(m, rec)
  local now = m.clock:now()
  if rec.heard_kind == "none" then
    return rec.last_frame + NO_AUDIO
  end
  if rec.paused then
    return nil
  end
  local base = math.max(now, rec.begin_at)
  local at
  if rec.max_duration > 0 then
    at = math.max(base, max_deadline(m, rec))
  end
  if rec.max_silence > 0 and rec.heard_kind == "silence" then
    local s = base + (rec.max_silence + SILENCE_FRAME - rec.silence_run)
    at = at and math.min(at, s) or s
  end
  return at
end

local function check(m, rec)
  accrue(m, rec)
  local now = m.clock:now()
  local kind = rec.heard_kind
  if kind == "none" then
    if now >= rec.last_frame + NO_AUDIO - EPSILON then
      return finish(m, rec, "no audio")
    end
  elseif not rec.paused then
    if rec.max_duration > 0 and now >= max_deadline(m, rec) - EPSILON then
      return finish(m, rec, "max")
    end
    if rec.max_silence > 0 and rec.silence_run >= rec.max_silence + SILENCE_FRAME - EPSILON then
      return finish(m, rec, "silence")
    end
  end
  local at = next_deadline(m, rec)
  if at then
    rec.slot = m:after(rec.channel, math.max(0, at - now), function()
      rec.slot = nil
      check(m, rec)
    end)
  end
end

-- Something changed what the recording hears or counts: update and look
-- again for the next limit.
local function refresh(m, rec)
  accrue(m, rec)
  rec.heard_kind = hearing(rec)
  if rec.slot then
    m:cancel(rec.slot)
    rec.slot = nil
  end
  check(m, rec)
end

local function store(m, rec, seconds)
  local old = m.stored[rec.name]
  if rec.if_exists == "append" and old then
    seconds = seconds + old.seconds
  end
  m.stored[rec.name] = { name = rec.name, format = rec.format, seconds = seconds }
end

-- C's integer division, which truncates toward zero.
local function cdiv(a, b)
  local q = a / b
  return q >= 0 and math.floor(q) or math.ceil(q)
end

-- Durations as __ast_play_and_record computes them: whole seconds of audio
-- in the file; with maxSilenceSeconds, the trailing silence (all but
-- 200 ms) comes off the duration and all silence off the talking time.
-- Returns duration, talking seconds (or nil), seconds kept in the file.
local function durations(rec, how)
  local full = math.floor(rec.heard + EPSILON)
  if rec.max_silence <= 0 then
    return full, nil, rec.heard
  end
  local trailing = math.floor(rec.silence_run * 1000 + 0.5)
  local total = math.floor(rec.silence_total * 1000 + 0.5)
  local talking = math.max(0, full - (total > 0 and cdiv(total - 200, 1000) or 0))
  local duration = math.max(0, full - (trailing > 0 and cdiv(trailing - 200, 1000) or 0))
  local kept = rec.heard
  if trailing > 0 and (how == "silence" or how == "max" or how == "dtmf") then
    kept = rec.heard - math.max(0, trailing - 200) / 1000
  end
  return duration, talking, kept
end

finish = function(m, rec, how)
  if rec.finished then
    return
  end
  accrue(m, rec)
  rec.finished = true
  if rec.slot then
    m:cancel(rec.slot)
    rec.slot = nil
  end
  if rec.channel.recording == rec then
    rec.channel.recording = nil
  end
  if m.live[rec.name] == rec then
    m.live[rec.name] = nil
  end
  local duration, talking, kept = durations(rec, how)
  if how == "cancel" then
    m.stored[rec.name] = nil
  else
    store(m, rec, kept)
  end
  local body = to_json(rec, "done")
  body.duration = duration
  if talking then
    body.talking_duration = talking
    body.silence_duration = duration - talking
  end
  publish(m, rec, "RecordingFinished", body)
  C().command_done(m, rec.channel, rec.cmd)
end

local function fail(m, rec, cause)
  rec.finished = true
  if m.live[rec.name] == rec then
    m.live[rec.name] = nil
  end
  local body = to_json(rec, "failed")
  body.cause = cause
  publish(m, rec, "RecordingFailed", body)
  C().command_done(m, rec.channel, rec.cmd)
end

local function start(m, ch, cmd)
  local rec = cmd.rec
  if not rec.bridge and ch.bridge then
    return fail(m, rec, "Cannot record channel while in bridge")
  end
  if ch.state == "Ring" then
    -- ast_auto_answer(): recording answers the channel first.
    C().set_state(m, ch, "Up")
  end
  rec.state = "recording"
  publish(m, rec, "RecordingStarted", to_json(rec))
  local now = m.clock:now()
  rec.t, rec.last_frame = now, now
  rec.begin_at = now + (rec.beep and (lib.sounds.length(m, BEEP) or 0) or 0)
  rec.heard, rec.silence_run, rec.silence_total, rec.paused_secs = 0, 0, 0, 0
  rec.heard_kind = hearing(rec)
  ch.recording = rec
  check(m, rec)
end

local function hangup(m, _, cmd)
  finish(m, cmd.rec, "done")
end

local function dropped(m, _, cmd)
  if m.live[cmd.rec.name] == cmd.rec then
    m.live[cmd.rec.name] = nil
  end
end

-- The channel's media changed (far end, caller, mute): its recording, and
-- that of a bridge it is in, hear something else now.
function R.media_changed(m, ch)
  local rec = ch.recording
  if rec and not rec.finished then
    refresh(m, rec)
  end
  local recorder = ch.bridge and ch.bridge.recorder
  rec = recorder and recorder.recording
  if rec and not rec.finished then
    refresh(m, rec)
  end
end

-- A digit reached the channel: it is a frame, and may end the recording.
function R.dtmf(m, ch, digit)
  local rec = ch.recording
  if not rec or rec.finished then
    return
  end
  accrue(m, rec)
  rec.last_frame = m.clock:now()
  local on = rec.terminate_on
  if on == "any" or on == digit then
    return finish(m, rec, "dtmf")
  end
  refresh(m, rec)
end

local TERMINATE = { none = "none", any = "any", ["#"] = "#", ["*"] = "*" }
local IF_EXISTS = { fail = true, overwrite = true, append = true }

-- Checks of a record request in res_ari's order; returns the recording or
-- nil, reply. `exec` is the channel that records, `target_uri` what.
local function new_recording(m, a, exec, target_uri)
  local terminate = TERMINATE[U.empty(a.terminateOn) and "none" or a.terminateOn:lower()]
  if not terminate then
    return nil, { U.fail(400, "terminateOn invalid") }
  end
  local if_exists = U.empty(a.ifExists) and "fail" or a.ifExists:lower()
  if not IF_EXISTS[if_exists] then
    return nil, { U.fail(400, "ifExists invalid") }
  end
  if U.empty(a.format) or not U.RECORD_FORMATS[a.format] then
    return nil, { U.fail(422, "specified format is unknown on this system") }
  end
  if U.empty(a.name) then
    return nil, { U.fail(500, "Error parsing request") }
  end
  if (if_exists == "fail" and m.stored[a.name]) or m.live[a.name] then
    return nil, { U.fail(409, string.format("Recording '%s' already exists and can not be overwritten", a.name)) }
  end
  local rec = {
    name = a.name, format = a.format, target_uri = target_uri, state = "queued",
    channel = exec, max_duration = U.int(a.maxDurationSeconds, 0),
    max_silence = U.int(a.maxSilenceSeconds, 0), if_exists = if_exists,
    beep = U.truthy(a.beep), terminate_on = terminate,
  }
  rec.cmd = { start = start, hangup = hangup, dropped = dropped, rec = rec }
  m.live[rec.name] = rec
  return rec
end

local function check_limits(a)
  if U.int(a.maxDurationSeconds, 0) < 0 then
    return { U.fail(400, "max_duration_seconds cannot be negative") }
  end
  if U.int(a.maxSilenceSeconds, 0) < 0 then
    return { U.fail(400, "max_silence_seconds cannot be negative") }
  end
end

local function created(rec)
  return 201, "Created", to_json(rec), { Location = "/ari/recordings/live/" .. U.uri_encode(rec.name) }
end

H["channels.record"] = function(m, req)
  local a = req.args
  local err = check_limits(a)
  if err then
    return unpack(err)
  end
  local ch
  ch, err = lib.channel_ops.find_control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  local rec
  rec, err = new_recording(m, a, ch, "channel:" .. ch.id)
  if not rec then
    return unpack(err)
  end
  C().enqueue(m, ch, rec.cmd)
  return created(rec)
end

-- POST /bridges/{id}/record: a recorder channel joins the bridge.
function R.record_bridge(m, bridge, a)
  local err = check_limits(a)
  if err then
    return unpack(err)
  end
  local recorder = lib.bridges.media_channel(m, bridge, "Recorder")
  local rec
  rec, err = new_recording(m, a, recorder, "bridge:" .. bridge.id)
  if not rec then
    return unpack(err)
  end
  rec.bridge = bridge
  C().enqueue(m, recorder, rec.cmd)
  return created(rec)
end

H["recordings.getLive"] = function(m, req)
  local rec = m.live[req.params.recordingName]
  if not rec then
    return U.fail(404, "Recording not found")
  end
  return U.ok(to_json(rec))
end

local LIVE_OPS = {}

function LIVE_OPS.stop(m, rec)
  finish(m, rec, "done")
end

function LIVE_OPS.cancel(m, rec)
  finish(m, rec, "cancel")
end

-- Asterisk counts the paused time in whole seconds of time() too.
function LIVE_OPS.pause(m, rec)
  accrue(m, rec)
  rec.paused, rec.state = true, "paused"
  rec.pause_start = math.floor(m:wall())
  refresh(m, rec)
end

function LIVE_OPS.unpause(m, rec)
  accrue(m, rec)
  rec.paused, rec.state = false, "recording"
  rec.paused_secs = rec.paused_secs + math.floor(m:wall()) - rec.pause_start
  refresh(m, rec)
end

function LIVE_OPS.mute(m, rec)
  rec.muted = true
  refresh(m, rec)
end

function LIVE_OPS.unmute(m, rec)
  rec.muted = false
  refresh(m, rec)
end

-- res_stasis_recording's table: which operation each state accepts.
local LIVE_ALLOWED = {
  queued = { stop = "drop", cancel = "drop" },
  recording = { stop = true, cancel = true, pause = true, unpause = "noop", mute = true, unmute = true },
  paused = { stop = true, cancel = true, pause = "noop", unpause = true, mute = true, unmute = true },
}

local function live_op(op)
  return function(m, req)
    local rec = m.live[req.params.recordingName]
    if not rec then
      return U.fail(404, "Recording not found")
    end
    local what = LIVE_ALLOWED[rec.state][op]
    if not what then
      return U.fail(409, "Recording not in session")
    end
    if what == "drop" then
      C().unqueue(rec.channel, rec.cmd)
      m.live[rec.name] = nil
    elseif what ~= "noop" then
      LIVE_OPS[op](m, rec)
    end
    return U.no_content()
  end
end

H["recordings.stop"] = live_op("stop")
H["recordings.cancel"] = live_op("cancel")
H["recordings.pause"] = live_op("pause")
H["recordings.unpause"] = live_op("unpause")
H["recordings.mute"] = live_op("mute")
H["recordings.unmute"] = live_op("unmute")

local function stored_json(s)
  return { name = s.name, format = s.format }
end

H["recordings.listStored"] = function(m)
  local out = {}
  for _, name in ipairs(U.sorted_keys(m.stored)) do
    out[#out + 1] = stored_json(m.stored[name])
  end
  return U.ok(json.array(out))
end

H["recordings.getStored"] = function(m, req)
  local s = m.stored[req.params.recordingName]
  if not s then
    return U.fail(404, "Recording not found")
  end
  return U.ok(stored_json(s))
end

H["recordings.deleteStored"] = function(m, req)
  if not m.stored[req.params.recordingName] then
    return U.fail(404, "Recording not found")
  end
  m.stored[req.params.recordingName] = nil
  return U.no_content()
end

-- A WAV header with no samples. The model keeps no audio, so /file answers
-- with this placeholder: the body is a Lua string (raw bytes, not JSON)
-- and the headers carry its Content-Type.
local function empty_wav()
  local function le32(n)
    return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256, math.floor(n / 16777216) % 256)
  end
  local function le16(n)
    return string.char(n % 256, math.floor(n / 256) % 256)
  end
  return "RIFF" .. le32(36) .. "WAVE" .. "fmt " .. le32(16) .. le16(1) .. le16(1)
    .. le32(8000) .. le32(16000) .. le16(2) .. le16(16) .. "data" .. le32(0)
end

local CONTENT_TYPES = { wav = "audio/wav", WAV = "audio/wav", wav16 = "audio/wav", gsm = "audio/x-gsm" }

H["recordings.getStoredFile"] = function(m, req)
  local s = m.stored[req.params.recordingName]
  if not s then
    return U.fail(404, "Recording not found")
  end
  return 200, "OK", empty_wav(), { ["Content-Type"] = CONTENT_TYPES[s.format] or "application/octet-stream" }
end

H["recordings.copyStored"] = function(m, req)
  local s = m.stored[req.params.recordingName]
  if not s then
    return U.fail(404, "Recording not found")
  end
  local dest = req.args.destinationRecordingName
  if U.empty(dest) then
    return U.fail(400, "Invalid destination recording name")
  end
  if m.stored[dest] then
    return U.fail(409, "A recording with the same name already exists on the system")
  end
  m.stored[dest] = { name = dest, format = s.format, seconds = s.seconds }
  return U.ok(stored_json(m.stored[dest]))
end

return R
