-- Media methods of the call object: play and play_async (with barge-in),
-- the readers of the call's DTMF type-ahead buffer (read_digits, prompt),
-- and record.
--
-- The buffer itself is filled by Call:_deliver: every key the caller
-- presses lands there, whatever the flow is doing, and stays until a
-- reader takes it. A playback that a key interrupts leaves that key in the
-- buffer, so `play{interrupt}` followed by `read_digits` loses nothing.

local ari = require "luari.ari"
local args = require "luari.call_args"
local Call = require "luari.call"
local util = require "luari.util"

util.flow_facing()

local failure = Call._failure

-- Asterisk sends no PlaybackFinished for a media it cannot start (an
-- unknown URI scheme, number:abc, a missing recording:): the playback
-- just disappears. So whoever waits for a playback asks Asterisk about it
-- shortly after each PlaybackStarted and then now and then; gone without a
-- PlaybackFinished (after a grace for one still on its way) means failed.
-- A sound: (a missing file ends as failed) or tone: never vanishes, so for
-- those the first check waits as long as the later ones: one request less
-- per prompt, and still a safety net should the event never come.
local CHECK_AFTER_START = 1.0
local CHECK_EVERY = 15
local NEVER_VANISH = { sound = true, tone = true }
local VANISH_GRACE = 0.5
-- How long to wait for the PlaybackFinished of a playback luari stopped
-- (a stop while queued is only reported when its turn comes).
local STOP_GRACE = 2
local EPSILON = 1e-9

local function now(call)
  return call._rt:now()
end

-- The first key in the buffer that is in `keys` (a set), or nil.
local function buffered_key(call, keys)
  for c in call._dtmf:gmatch(".") do
    if keys[c] then
      return c
    end
  end
  return nil
end

-- --- playbacks ---------------------------------------------------------------

-- Seconds from PlaybackStarted to the first check: soon when a media URI
-- (one, an array, or a comma list) may vanish without a PlaybackFinished.
local function first_check(media)
  if type(media) == "table" then
    for i = 1, #media do
      if first_check(media[i]) == CHECK_AFTER_START then
        return CHECK_AFTER_START
      end
    end
    return CHECK_EVERY
  end
  for uri in media:gmatch("[^,]+") do
    if not NEVER_VANISH[uri:match("^%s*(%a+):")] then
      return CHECK_AFTER_START
    end
  end
  return CHECK_EVERY
end

-- The handle play_async returns. Fields: id, state ("queued", "playing",
-- "done", "failed", or "hangup"/"left" when the call went away first),
-- digit (the key that interrupted it, if one did).
local Playback = {}
Playback.__index = Playback
Call.Playback = Playback

function Playback:_settled()
  local s = self.state
  return s ~= "queued" and s ~= "playing"
end

function Playback:_release()
  if self._unlisten then
    self._unlisten()
    self._unlisten = nil
  end
  if self._ungone then
    self._ungone()
    self._ungone = nil
  end
  if self._unresync then
    self._unresync()
    self._unresync = nil
  end
end

function Playback:_wake_waiter(why)
  local wake = self._wake
  if wake then
    self._wake = nil
    wake(why)
  end
end

function Playback:_settle(state)
  if self:_settled() then
    return
  end
  self.state = state
  self:_release()
  self:_wake_waiter("settled")
end

-- Sends the stop from a thread of the call's own, for a playback nobody
-- waits on (play_async with interrupt keys).
function Playback:_spawn_stop()
  self._stop_sent = true
  local call = self.call
  call._app:spawn_for(call, function()
    self:_send_stop()
  end, "stop playback")
end

-- A key asked to stop the playback. Before the playback exists in Asterisk
-- (its request is on the way), the stop waits until it does.
function Playback:_want_stop()
  if self._stop_wanted then
    return
  end
  self._stop_wanted = true
  if not self._created then
    return
  end
  if self._wake then
    self:_wake_waiter("stop")
  elseif not self._stop_sent then
    self:_spawn_stop()
  end
end

function Playback:_on_event(ev)
  local t = ev.type
  local pb = ev.playback
  if type(pb) == "table" then
    if pb.id ~= self.id then
      return false
    end
    if t == "PlaybackStarted" then
      self.state = "playing"
      self._vanished = nil
      self._next_check = now(self.call) + self._first_check
      self:_wake_waiter("started")
    elseif t == "PlaybackFinished" then
      self:_settle(pb.state == "failed" and "failed" or "done")
      return true
    end
  elseif t == "ChannelDtmfReceived" and self._keys and type(ev.channel) == "table"
      and ev.channel.id == self.call.id and self._keys[ev.digit] and not self.digit then
    self.digit = ev.digit
    self:_want_stop()
  end
  return false
end

-- DELETE /playbacks/{id}. After a 204 the PlaybackFinished is awaited for
-- a little while; a 404 means it is gone already (its PlaybackFinished is
-- on the way, or there will be none: see CHECK_AFTER_START).
function Playback:_send_stop()
  self._stop_sent = true
  if self:_settled() then
    return true
  end
  local ok, why, err = self.call:_request(ari.playbacks.stop, self.id)
  if self:_settled() then
    return true
  end
  if ok then
    self._stop_deadline = now(self.call) + STOP_GRACE
    self:_wake_waiter("stopping")
    return true
  end
  if why == "not_found" then
    self._vanished = true
    self._next_check = now(self.call) + VANISH_GRACE
    self:_wake_waiter("stopping")
    return true
  end
  return failure(why, err)
end

-- GET /playbacks/{id}: is it still there?
function Playback:_check()
  local call = self.call
  if self._vanished then
    -- Gone, and no PlaybackFinished came during the grace: it never will.
    return self:_settle("failed")
  end
  self._next_check = now(call) + CHECK_EVERY
  local pb, why = call:_request(ari.playbacks.get, self.id)
  if self:_settled() or call:_gone() then
    return
  end
  if type(pb) == "table" then -- (a reply of another shape tells nothing)
    if pb.state == "playing" or pb.state == "paused" then
      self.state = "playing"
    end
  elseif why == "not_found" then
    self._vanished = true
    self._next_check = now(call) + VANISH_GRACE
  end
end

function Playback:_result()
  local s = self.state
  if s == "done" then
    if self.digit then
      return true, self.digit
    end
    return true
  elseif s == "failed" then
    return nil, "failed"
  end
  return nil, s
end

-- The next moment the waiter must act on its own: a check, the end of a
-- stop's grace, or the caller's deadline.
function Playback:_next_deadline(deadline)
  local at = self._next_check
  if self._stop_deadline and self._stop_deadline < at then
    at = self._stop_deadline
  end
  if deadline and deadline < at then
    at = deadline
  end
  return at
end

function Playback:_wait_until(deadline)
  local call = self.call
  while not self:_settled() do
    if self._stop_wanted and not self._stop_sent then
      self:_send_stop()
    else
      local at = self:_next_deadline(deadline)
      local got, why = call:_wait(function(wake)
        self._wake = wake
        return function()
          self._wake = nil
        end
      end, math.max(0, at - now(call)))
      self._wake = nil
      if got == nil and why ~= "timeout" then
        return nil, why
      end
      if got == nil and not self:_settled() then
        local t = now(call)
        if deadline and t >= deadline - EPSILON then
          return nil, "timeout"
        end
        if self._stop_deadline and t >= self._stop_deadline - EPSILON then
          self:_settle("done")
        elseif t >= self._next_check - EPSILON then
          self:_check()
        end
      end
    end
  end
  return self:_result()
end

-- h:wait([timeout]): true (and the interrupting key, if any) when it has
-- finished; nil, "failed"; nil, "timeout" (it goes on playing); nil,
-- "hangup".
function Playback:wait(timeout)
  args.number("playback:wait", "timeout", timeout, true, 0)
  if self:_settled() then
    return self:_result()
  end
  local gone = self.call:_gone()
  if gone then
    return nil, gone
  end
  return self:_wait_until(timeout and (now(self.call) + timeout) or nil)
end

-- h:stop(): stops it now; true (also when it had already finished).
function Playback:stop()
  if self:_settled() then
    return true
  end
  local gone = self.call:_gone()
  if gone then
    return nil, gone
  end
  self._stop_wanted = true
  return self:_send_stop()
end

local CONTROL_OPS = { "restart", "pause", "unpause", "reverse", "forward" }

-- h:control(op): restart, pause, unpause, reverse or forward; true.
function Playback:control(op)
  args.one_of("playback:control", "operation", op, CONTROL_OPS)
  return self.call:_request(ari.playbacks.control, self.id, { operation = op })
end

-- Starts a playback; returns its handle, or nil, reason, err. `keys` (a set
-- or nil) are the keys that stop it. `waited`: the caller waits on it at
-- once (play), so the waiter sends any stop itself.
local function start_playback(call, media, opts, keys, waited)
  local gone = call:_gone()
  if gone then
    return nil, gone
  end
  local h = setmetatable({ id = util.uuid(), call = call, state = "queued", _keys = keys,
    _first_check = first_check(media) }, Playback)
  -- Barge-in with type-ahead: a key pressed before the prompt that would
  -- stop it means the caller does not need to hear it.
  local early = keys and buffered_key(call, keys)
  if early then
    h.state, h.digit, h.skipped = "done", early, true
    return h
  end
  h._unlisten = call:_listen(function(ev)
    return h:_on_event(ev)
  end)
  h._ungone = call:_on_gone(function()
    h:_settle(call:_gone() or "hangup")
  end)
  -- After a reconnect: a playback that is gone ended while its
  -- PlaybackFinished could not arrive.
  h._unresync = call:_on_resync(function()
    if not h._created or h:_settled() then
      return
    end
    local pb, why = call:_request(ari.playbacks.get, h.id)
    if not pb and why == "not_found" and not h:_settled() then
      h:_settle("done")
    end
  end)
  local ok, why, err = call:_op(ari.channels.playWithId, h.id, {
    media = media, lang = opts.lang, offsetms = opts.offsetms, skipms = opts.skipms,
  })
  if not ok then
    h:_release()
    return failure(why, err)
  end
  h._created = true
  if not h:_settled() then
    h._next_check = now(call) + h._first_check
    if h._stop_wanted and not waited then
      h:_spawn_stop()
    end
  end
  return h
end

local PLAY_OPTS = args.set({ "interrupt", "lang", "offsetms", "skipms" })

local function play_args(method, media, opts)
  args.media(method, "media", media)
  opts = args.opts(method, opts, PLAY_OPTS)
  args.string(method, "opts.lang", opts.lang, true)
  args.integer(method, "opts.offsetms", opts.offsetms, true, 0)
  args.integer(method, "opts.skipms", opts.skipms, true, 0)
  local keys = opts.interrupt ~= nil and args.keys(method, "opts.interrupt", opts.interrupt, true) or nil
  return opts, keys
end

-- call:play(media [, opts]): plays and waits until it has finished.
-- true (plus the key that interrupted it, if one did), or nil, "failed" /
-- "hangup" / an ARI code.
function Call:play(media, opts)
  local o, keys = play_args("call:play", media, opts)
  local h, why, err = start_playback(self, media, o, keys, true)
  if not h then
    return failure(why, err)
  end
  return h:_wait_until(nil)
end

-- call:play_async(media [, opts]): starts it and returns its handle.
function Call:play_async(media, opts)
  local o, keys = play_args("call:play_async", media, opts)
  return start_playback(self, media, o, keys, false)
end

-- --- reading keys --------------------------------------------------------------

-- Waits until the buffer holds a key: true, or nil, "timeout" / "hangup".
local function wait_key(call, timeout)
  if #call._dtmf > 0 then
    return true
  end
  local gone = call:_gone()
  if gone then
    return nil, gone
  end
  if timeout <= 0 then
    return nil, "timeout"
  end
  return call:_wait(function(wake)
    local waiters = call:_own("_digit_waiters")
    waiters[wake] = true
    return function()
      waiters[wake] = nil
    end
  end, timeout)
end

-- Takes keys from the buffer until max, a terminator (once `min` keys are
-- in: an earlier one is dropped) or a timeout: `timeout` from the start
-- until the first digit (a dropped terminator is none), then
-- `inter_timeout` from each key. o: max, min, timeout, inter_timeout,
-- terminators (a set).
local function collect(call, o)
  local gone = call:_gone()
  if gone then
    return nil, gone
  end
  -- The options as locals: `o` is not kept while the caller is silent.
  local max, min, terminators = o.max, o.min, o.terminators
  local timeout, inter_timeout = o.timeout, o.inter_timeout
  o = nil
  local rt = call._rt
  local first_by = rt:now() + timeout
  local got, pressed = "", false
  while true do
    while #call._dtmf > 0 do
      local key = call._dtmf:sub(1, 1)
      call._dtmf = call._dtmf:sub(2)
      pressed = #got > 0 or not terminators[key]
      if terminators[key] then
        if #got >= min then
          return got, "terminator"
        end
      else
        got = got .. key
        if #got >= max then
          return got, "max"
        end
      end
    end
    local ok, why = wait_key(call, pressed and inter_timeout or math.max(0, first_by - rt:now()))
    if not ok then
      if why == "timeout" then
        return got, "timeout"
      end
      return nil, why
    end
  end
end

local DEFAULT_TERMINATORS = { ["#"] = true }

-- The options read_digits and prompt share; returns the collect options.
local function collect_args(method, opts)
  local max = args.integer(method, "max", opts.max, true, 1)
  local min = args.integer(method, "min", opts.min, true, 0)
  max = max or math.max(min or 1, 1)
  min = min or math.min(1, max)
  if min > max then
    args.fail(method, string.format("min (%d) must not be more than max (%d)", min, max))
  end
  local terminators = DEFAULT_TERMINATORS
  if opts.terminators ~= nil then
    terminators = args.keys(method, "terminators", opts.terminators, false, true)
  end
  return {
    max = max,
    min = min,
    timeout = args.number(method, "timeout", opts.timeout, true, 0) or 5,
    inter_timeout = args.number(method, "inter_timeout", opts.inter_timeout, true, 0) or 3,
    terminators = terminators,
  }
end

local READ_OPTS = args.set({ "max", "min", "timeout", "inter_timeout", "terminators", "flush" })

-- call:read_digits{max, min, timeout, inter_timeout, terminators, flush}:
-- digits, why (max, terminator, timeout); nil, "hangup".
function Call:read_digits(opts)
  opts = args.opts("call:read_digits", opts, READ_OPTS)
  local o = collect_args("call:read_digits", opts)
  if args.boolean("call:read_digits", "flush", opts.flush, true) and not self:_gone() then
    self._dtmf = ""
  end
  return collect(self, o)
end

-- --- prompt ----------------------------------------------------------------------

local ALL_KEYS = args.keys("prompt", "keys", "any", true)

-- `valid` as a Lua pattern matches the whole entry: "^" and "$" are added
-- unless the pattern has them.
local function pattern_check(method, pattern)
  local body = pattern:gsub("^%^", "")
  if body:sub(-1) == "$" and body:sub(-2, -2) ~= "%" then
    body = body:sub(1, -2)
  end
  local anchored = "^" .. body .. "$"
  local ok, err = pcall(string.find, "", anchored)
  if not ok then
    args.fail(method, "valid is not a valid Lua pattern: " .. tostring(err))
  end
  return function(digits)
    return digits:find(anchored) ~= nil
  end
end

local function accepted(o, digits)
  if #digits < o.min then
    return false
  end
  return not o.valid or o.valid(digits)
end

-- Plays one of the prompt's media with barge-in. A media that fails is
-- logged and skipped: the caller can still answer.
local function prompt_play(call, media)
  local h, why, err = start_playback(call, media, {}, ALL_KEYS, true)
  if h then
    local ok
    ok, why = h:_wait_until(nil)
    if ok then
      return true
    end
  end
  if why == "failed" then
    call._app:log_call(call, "warn", "prompt: could not play " .. (type(media) == "table"
      and table.concat(media, ",") or tostring(media)))
    return true
  end
  return failure(why, err)
end

local function run_prompt(call, o)
  local last = "timeout"
  for _ = 1, o.tries do
    if o.media then
      local ok, why, err = prompt_play(call, o.media)
      if not ok then
        return failure(why, err)
      end
    end
    local digits, why = collect(call, o.collect)
    if not digits then
      return nil, why
    end
    if digits == "" and why == "timeout" then
      last = "timeout"
    elseif accepted(o, digits) then
      return digits
    else
      last = "invalid"
      -- Keys typed after a bad entry belong to it, not to the next try.
      call._dtmf = ""
      if o.invalid then
        local ok, pwhy, err = prompt_play(call, o.invalid)
        if not ok then
          return failure(pwhy, err)
        end
      end
    end
  end
  return nil, last
end

local PROMPT_OPTS = args.set({ "media", "min", "max", "tries", "timeout", "inter_timeout", "terminators",
  "valid", "invalid", "flush" })

-- call:prompt{media, min, max, tries, timeout, inter_timeout, terminators,
-- valid, invalid, flush}: the digits, or nil, "timeout" / "invalid" /
-- "hangup".
function Call:prompt(opts)
  local m = "call:prompt"
  if type(opts) ~= "table" then
    args.fail(m, "expects a table such as { media = \"sound:enter-account\", max = 6 }")
  end
  opts = args.opts(m, opts, PROMPT_OPTS)
  local o = {
    media = args.media(m, "media", opts.media, true),
    invalid = args.media(m, "invalid", opts.invalid, true),
    tries = args.integer(m, "tries", opts.tries, true, 1) or 3,
    collect = collect_args(m, opts),
  }
  -- Unlike read_digits, a terminator always ends an entry here: one that
  -- is too short is a bad entry at once, not a wait for more keys.
  o.min = o.collect.min
  o.collect.min = 0
  local valid = opts.valid
  if type(valid) == "string" then
    o.valid = pattern_check(m, valid)
  elseif type(valid) == "function" then
    o.valid = valid
  elseif valid ~= nil then
    args.fail(m, "valid must be a Lua pattern string or a function (got " .. type(valid) .. ")")
  end
  local gone = self:_gone()
  if gone then
    return nil, gone
  end
  if args.boolean(m, "flush", opts.flush, true) then
    self._dtmf = ""
  end
  return run_prompt(self, o)
end

-- --- recording -------------------------------------------------------------------

-- The key that ended a recording (terminateOn) was meant for the
-- recorder, not for the next read_digits: take it out of the buffer.
local function drop_last_key(call, key)
  local buf = call._dtmf
  for i = #buf, 1, -1 do
    if buf:sub(i, i) == key then
      call._dtmf = buf:sub(1, i - 1) .. buf:sub(i + 1)
      return
    end
  end
end

local function record(call, name, o)
  local target = "channel:" .. call.id
  local done, started, ended_by, waker
  local unlisten = call:_listen(function(ev)
    local t = ev.type
    local rec = ev.recording
    if type(rec) == "table" then
      if rec.name ~= name or rec.target_uri ~= target then
        return false
      end
      if t == "RecordingStarted" then
        started = true
      elseif t == "RecordingFinished" or t == "RecordingFailed" then
        done = { type = t, recording = rec }
        if waker then
          waker(true)
        end
        return true
      end
    elseif t == "ChannelDtmfReceived" and started and type(ev.channel) == "table"
        and ev.channel.id == call.id then
      if o.terminateOn == "any" or o.terminateOn == ev.digit then
        ended_by = ev.digit
      end
    end
    return false
  end)
  local ok, why, err = call:_op(ari.channels.record, {
    name = name, format = o.format, maxDurationSeconds = o.maxDurationSeconds,
    maxSilenceSeconds = o.maxSilenceSeconds, ifExists = o.ifExists, beep = o.beep,
    terminateOn = o.terminateOn,
  })
  if not ok then
    unlisten()
    return failure(why, err)
  end
  -- After a reconnect the RecordingFinished may have been lost: a live
  -- recording that is gone has finished. Its length is then known only
  -- roughly (from when it started to now): `duration_estimated` says so.
  local started_at = now(call)
  local unresync = call:_on_resync(function()
    local _, err = ari.recordings.getLive(name)
    if done or not err or err.code ~= "not_found" then
      return
    end
    local stored = ari.recordings.getStored(name)
    done = { type = "RecordingFinished", recording = {
      name = name, format = type(stored) == "table" and stored.format or o.format,
      state = "done", target_uri = target,
      duration = math.floor(now(call) - started_at), duration_estimated = true,
    } }
    if waker then
      waker(true)
    end
  end)
  if not done then
    local got, reason = call:_wait(function(wake)
      waker = wake
      return function()
        waker = nil
        unlisten()
      end
    end)
    waker = nil
    if not got then
      unresync()
      unlisten()
      return nil, reason
    end
  end
  unresync()
  if done.type == "RecordingFailed" then
    return nil, "failed", done.recording
  end
  if ended_by then
    drop_last_key(call, ended_by)
  end
  return done.recording
end

local RECORD_OPTS = args.set({ "format", "maxDurationSeconds", "maxSilenceSeconds", "ifExists", "beep",
  "terminateOn" })

-- call:record(name [, opts]): records until Asterisk ends it; the
-- recording table (name, format, duration, ...), or nil, "failed" /
-- "hangup" / an ARI code ("conflict": the name exists and ifExists is
-- "fail"; "unprocessable": unknown format).
function Call:record(name, opts)
  local m = "call:record"
  args.string(m, "name", name)
  opts = args.opts(m, opts, RECORD_OPTS)
  local o = {
    format = args.string(m, "opts.format", opts.format, true) or "wav",
    maxDurationSeconds = args.integer(m, "opts.maxDurationSeconds", opts.maxDurationSeconds, true, 0),
    maxSilenceSeconds = args.integer(m, "opts.maxSilenceSeconds", opts.maxSilenceSeconds, true, 0),
    ifExists = args.one_of(m, "opts.ifExists", opts.ifExists, { "fail", "overwrite", "append" }, true),
    beep = args.boolean(m, "opts.beep", opts.beep, true),
    terminateOn = args.one_of(m, "opts.terminateOn", opts.terminateOn, { "none", "any", "*", "#" }, true),
  }
  return record(self, name, o)
end
