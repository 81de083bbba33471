-- The dialplan of the simulated Asterisk: the far ends a Local channel
-- reaches (context wait, busy, congestion, noanswer, hangup-soon, hello,
-- dtmf, echo, tone) and the context [after-stasis] that /continue uses, run
-- step by step with a ChannelDialplan event per step; and the DTMF that
-- travels between the two halves of a Local pair.
--
-- A far end that answers spends up to 0.5 s in Answer() (Asterisk waits
-- for the first voice frame): the next step comes after 0.5 s, or at once
-- when the near half starts sending media. Any other Local context behaves
-- like [wait]; a context named "nonexistent..." does not exist. Waits of
-- 120 s or more (Wait(3600) in [wait]) last until the call ends.

local U = require "luari.sim.model.util"
local lib = require "luari.sim.model.lib"

local D = {}
lib.dialplan = D

local CONTEXTS = {
  wait = { { "Answer", "" }, { "Wait", "3600" } },
  tone = { { "Answer", "" }, { "PlayTones", "440" }, { "Wait", "3600" } },
  echo = { { "Answer", "" }, { "Echo", "" } },
  hello = { { "Answer", "" }, { "Playback", "hello-world" }, { "Hangup", "" } },
  ["hangup-soon"] = { { "Answer", "" }, { "Wait", "2" }, { "Hangup", "16" } },
  dtmf = { { "Answer", "" }, { "Wait", "1" }, { "SendDTMF", "123#" }, { "Wait", "60" }, { "Hangup", "" } },
  busy = { { "Busy", "10" } },
  congestion = { { "Congestion", "10" } },
  noanswer = { { "Ringing", "" }, { "Wait", "120" } },
  ["after-stasis"] = { { "NoOp", "continued from Stasis to %c,%e" }, { "Wait", "2" }, { "Hangup", "" } },
  -- An incoming call: Stasis(<dialplan app>,<exten>), unanswered.
  ivr = { { "NoOp", "incoming call" }, { "Stasis", "%a,%e" } },
}

local ANSWER_WAIT = 0.5   -- Answer() waits this long for a first voice frame
local UNTIMED_WAIT = 120  -- a Wait() this long outlasts any test call
local DTMF_LATENCY = 0.1  -- a digit is reported this long after its tone ends

function D.exists(context)
  return not context:match("^nonexistent")
end

-- Steps the far half of a Local channel runs: its context, or [wait].
local function far_steps(context)
  return CONTEXTS[context] or CONTEXTS.wait
end

-- Runs the dialplan of `ch` from `priority`. A Local far half (;2) runs its
-- far end; any other channel runs a context this model knows, or stays where
-- it is (the dialplan is the user's own).
function D.run(m, ch, context, exten, priority)
  ch.context, ch.exten = context, exten
  if ch.half == 2 then
    ch.steps = far_steps(context)
  else
    ch.steps = CONTEXTS[context]
  end
  if ch.steps then
    D.step(m, ch, priority)
  else
    ch.priority = priority
  end
end

local APPS = {}

function D.step(m, ch, priority)
  if ch.hanging then
    return
  end
  local step = ch.steps and ch.steps[priority]
  if not step then
    return D.fallthrough(m, ch)
  end
  local app = step[1]
  local data = step[2]:gsub("%%c", ch.context):gsub("%%e", ch.exten):gsub("%%a", m:dialplan_app())
  lib.channels.dialplan_step(m, ch, priority, app, data)
  APPS[app](m, ch, priority, data)
end

local function next_step(m, ch, priority)
  D.step(m, ch, priority + 1)
end

-- The extension ran out of priorities: Asterisk hangs the channel up.
function D.fallthrough(m, ch)
  if ch.half == 2 then
    lib.channels.far_hangup(m, ch, 16, nil)
  else
    lib.channels.hangup(m, ch, 16, "quiet")
  end
end

-- Tells whoever dials this channel how it went (answered, ringing, failed).
local function signal(ch, what, ...)
  local d = ch.dialer
  if d and d[what] then
    if what ~= "ringing" then
      ch.dialer = nil
    end
    d[what](...)
  end
end

-- What the far half sends is what the near half hears.
local function send_media(m, ch, kind)
  ch.output = kind
  if ch.peer then
    lib.channels.set_media(m, ch.peer, kind)
  end
end

function APPS.Answer(m, ch, priority)
  if ch.state == "Up" then
    return next_step(m, ch, priority)
  end
  lib.channels.set_state(m, ch, "Up")
  signal(ch, "answered")
  ch.answer_next = priority + 1
  ch.answer_wait = m:after(ch, ANSWER_WAIT, function()
    ch.answer_wait = nil
    next_step(m, ch, priority)
  end)
end

function APPS.Wait(m, ch, priority, data)
  local secs = tonumber(data) or 0
  if secs < UNTIMED_WAIT then
    m:after(ch, secs, function()
      next_step(m, ch, priority)
    end)
  end
end

function APPS.NoOp(m, ch, priority)
  next_step(m, ch, priority)
end

function APPS.PlayTones(m, ch, priority)
  send_media(m, ch, "tone")
  next_step(m, ch, priority)
end

function APPS.Echo(_, ch)
  ch.echo = true
end

function APPS.Playback(m, ch, priority, data)
  local len = lib.sounds.length(m, data)
  if not len then
    lib.channels.varset(m, ch, "PLAYBACKSTATUS", "FAILED")
    return next_step(m, ch, priority)
  end
  send_media(m, ch, "speech")
  m:after(ch, len, function()
    send_media(m, ch, "none")
    lib.channels.varset(m, ch, "PLAYBACKSTATUS", "SUCCESS")
    next_step(m, ch, priority)
  end)
end

function APPS.Hangup(m, ch, _, data)
  local cause = U.scan_int(data) or 16
  if ch.half == 2 then
    lib.channels.far_hangup(m, ch, cause, { cause, true })
  else
    lib.channels.hangup(m, ch, cause, "quiet")
  end
end

-- SendDTMF(digits): 100 ms tones 250 ms apart; the next step 350 ms after
-- the last tone (timings of the reference captures).
function APPS.SendDTMF(m, ch, priority, data)
  local total = D.send_dtmf(m, ch, data, { before = 0, between = 0.25, duration = 0.1, after = 0.35 })
  m:after(ch, total, function()
    next_step(m, ch, priority)
  end)
end

local function refuse(status, cause)
  return function(m, ch)
    lib.channels.set_state(m, ch, "Busy")
    signal(ch, "failed", status, cause)
  end
end

APPS.Busy = refuse("BUSY", 17)
APPS.Congestion = refuse("CONGESTION", 34)

-- Stasis(app,args) run by the dialplan: the channel enters the app as it
-- is (an incoming call rings); the app was not subscribed before.
function APPS.Stasis(m, ch, _, data)
  local app, args = data:match("^([^,]*),?(.*)$")
  lib.channels.varset(m, ch, "STASISSTATUS", "")
  if lib.channels.stasis_refused(m, ch, app) then
    return
  end
  lib.channels.start_stasis(m, ch, app, U.split(args))
  ch.stasis_pending = true
end

-- ARI answered a channel that a caller is dialing: the caller hears it.
function D.answered(_, ch)
  signal(ch, "answered")
end

function APPS.Ringing(m, ch, priority)
  signal(ch, "ringing")
  next_step(m, ch, priority)
end

-- The near half sent its first media (a playback, DTMF): a far end waiting
-- in Answer() goes on at once.
function D.media_from_peer(m, ch)
  local far = ch.peer
  if far and far.answer_wait then
    m:cancel(far.answer_wait)
    far.answer_wait = nil
    D.step(m, far, far.answer_next)
  end
end

-- A digit reaches `ch`. Echo() sends it straight back, and ends on '#'.
function D.receive_digit(m, ch, digit, duration_ms)
  if ch.hanging then
    return
  end
  lib.channels.emit(m, ch, "ChannelDtmfReceived", { digit = digit, duration_ms = duration_ms })
  lib.recordings.dtmf(m, ch, digit)
  if ch.echo and ch.peer then
    D.receive_digit(m, ch.peer, digit, duration_ms)
    if digit == "#" and not ch.hanging then
      ch.echo = false
      next_step(m, ch, ch.priority)
    end
  end
end

-- `from` sends `digits` to the other half of its Local pair. o: before,
-- between, duration, after (seconds). Each digit is reported at the end of
-- its tone. Returns how long the sending takes.
function D.send_dtmf(m, from, digits, o)
  local to = from.peer
  local t = o.before
  local sent = 0
  if to then
    m:after(from, t + DTMF_LATENCY, function()
      D.media_from_peer(m, from)
    end)
  end
  for c in digits:gmatch(".") do
    if c == "," then
      t = t + 0.5
    elseif c:match("^[%dA-Da-d%*#]$") then
      if sent > 0 then
        t = t + o.between
      end
      sent = sent + 1
      t = t + o.duration
      if to then
        local digit, ms = c:upper(), math.floor(o.duration * 1000 + 0.5)
        m:after(from, t + DTMF_LATENCY, function()
          if not to.destroyed then
            D.receive_digit(m, to, digit, ms)
          end
        end)
      end
    end
  end
  return t + o.after
end

return D
