-- luari.sim: unit-test call flows with busted, no Asterisk needed.
--
--   local sim = require "luari.sim"
--   local call = sim.call("flows/menu.lua", { caller = "+15551234" })
--   call:expect_play("sound:main-menu")
--   call:press("1")
--   call:expect_play("sound:sales")
--   call:expect_continue("sales")
--
-- Each expectation runs the virtual clock until the flow does what is
-- expected, and fails with what the flow actually did otherwise: the
-- requests it made since the previous expectation, how that stretch ended
-- (the flow returned, failed, or waits for something that never comes),
-- and the whole transcript. Time is virtual: a flow that waits 30 s takes
-- microseconds.

local dtmf = require "luari.sim.dtmf"
local transcript = require "luari.sim.transcript"
local World = require "luari.sim.world"

local sim = {}

local SimCall = {}
SimCall.__index = SimCall

-- How much virtual time an expectation may spend waiting, by default.
sim.DEFAULT_WAIT = 600

local OPTIONS = {
  caller = "string", caller_name = "string", args = "table", flow = "string", dtmf = "string",
  exten = "string", context = "string", id = "string", variables = "table",
  hangup_at = "number", audio = "string", sounds = "table", sound_default = "seconds", wait = "number",
  verbose = "any", instruction_budget = "number", hangup_grace = "number",
}

-- The line of the spec that called into luari.sim, for error messages
-- ("menu_spec.lua:12: expected ..."), found by walking out of this file.
local function caller_position()
  local here = debug.getinfo(1, "S").source
  for level = 2, 30 do
    local info = debug.getinfo(level, "Sl")
    if not info then
      break
    end
    if info.source ~= here and info.what ~= "C" then
      return info.short_src .. ":" .. tostring(info.currentline) .. ": "
    end
  end
  return ""
end

local function raise(msg)
  error(caller_position() .. msg, 0)
end

-- Seconds given to a luari.sim function: a number, at least `min`.
local function check_seconds(what, v, min)
  if type(v) ~= "number" or v ~= v or v == math.huge or v < min then
    raise(string.format("%s must be a number of seconds, at least %s (got %s)", what, tostring(min), tostring(v)))
  end
end

local AUDIO = { speech = true, silence = true, tone = true, none = true }
local AT_LEAST = { hangup_at = 0, hangup_grace = 0 } -- sound_default: as a "seconds" option

local function check_options(opts)
  if type(opts) ~= "table" then
    raise("sim.call: the options must be a table (got " .. type(opts) .. ")")
  end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then
      raise("sim.call: unknown option '" .. tostring(k) .. "'")
    elseif want == "seconds" then
      if v ~= false then
        check_seconds("sim.call: option '" .. k .. "'", v, 0)
      end
    elseif want ~= "any" and type(v) ~= want then
      raise("sim.call: option '" .. k .. "' must be a " .. want .. " (got " .. type(v) .. ")")
    end
  end
  for k, min in pairs(AT_LEAST) do
    if type(opts[k]) == "number" then
      check_seconds("sim.call: option '" .. k .. "'", opts[k], min)
    end
  end
  if opts.wait ~= nil and not (opts.wait > 0) then
    raise("sim.call: option 'wait' must be more than 0 seconds (got " .. tostring(opts.wait) .. ")")
  end
  if opts.audio ~= nil and not AUDIO[opts.audio] then
    raise("sim.call: option 'audio' must be speech, silence, tone or none (got '" .. opts.audio .. "')")
  end
  for name, len in pairs(opts.sounds or {}) do
    if type(name) ~= "string" or not (len == false or type(len) == "number" and len >= 0) then
      raise("sim.call: option 'sounds' maps sound names (\"hello-world\") to seconds, or false for a"
        .. " missing file (got " .. tostring(name) .. " = " .. tostring(len) .. ")")
    end
  end
end

-- sim.call(flow, opts): a simulated caller calls; the flow starts.
-- flow: a flow file or a directory of flows (opts.flow picks the name).
-- opts: caller, caller_name, args, flow, exten, context (where the call
--       came in; default s, default), id (the channel's), variables (set
--       on the channel before Stasis, as the dialplan would), dtmf
--       ("1@2.0,#@4.5"), hangup_at,
--       audio ("speech"|"silence"), sounds, sound_default (seconds, or false:
--       sounds not in the tables are missing), wait (seconds an
--       expectation may wait, default sim.DEFAULT_WAIT), verbose (print the
--       transcript as it goes; "all" for every event), instruction_budget,
--       hangup_grace.
function sim.call(flow, opts)
  opts = opts == nil and {} or opts
  if type(flow) ~= "string" then
    raise("sim.call: the first argument must be a flow file or directory (got " .. type(flow) .. ")")
  end
  check_options(opts)
  local self = setmetatable({ cursor = 1, wait = opts.wait or sim.DEFAULT_WAIT }, SimCall)
  local world = World.new({
    flows = flow,
    sounds = opts.sounds,
    sound_default = opts.sound_default,
    instruction_budget = opts.instruction_budget,
    hangup_grace = opts.hangup_grace,
  })
  self.world = world
  if opts.verbose then
    local render = transcript.renderer(opts.verbose == "all")
    world:watch(function(e)
      local l = render(e)
      if l then
        io.stdout:write(l, "\n")
      end
    end)
  end
  world:watch(function(e)
    if e.kind == "end" and e.call == self.id then
      self.ended = e
    end
  end)
  self.id = world:incoming({
    caller = opts.caller,
    caller_name = opts.caller_name,
    args = opts.args,
    flow = opts.flow,
    audio = opts.audio,
    exten = opts.exten,
    context = opts.context,
    id = opts.id,
    variables = opts.variables,
  })
  if opts.dtmf then
    sim.schedule_dtmf(world, self.id, opts.dtmf)
  end
  if opts.hangup_at then
    world.clock:after(opts.hangup_at, function()
      world:hangup(self.id)
    end)
  end
  return self
end


-- "1@2.0,#@4.5" (digits at seconds from now) into caller key presses.
function sim.schedule_dtmf(world, id, spec)
  local schedule, err = dtmf.parse(spec)
  if not schedule then
    raise(err)
  end
  for _, item in ipairs(schedule) do
    world.clock:after(item.at, function()
      world:press(id, item.digits)
    end)
  end
end

-- --- running --------------------------------------------------------------------

local function settled(self)
  local at = self.world.clock:next_time()
  return self.ended and (not at or at > self.world.clock:now())
end

-- Steps the clock until match(entry) accepts a new flow request; returns
-- it, or nil, the requests seen instead and why the search stopped.
function SimCall:_until(match)
  local tr = self.world.transcript
  local seen = {}
  local limit = self.world.clock:now() + self.wait
  while true do
    while self.cursor <= #tr do
      local e = tr[self.cursor]
      self.cursor = self.cursor + 1
      if e.kind == "request" then
        if match(e) then
          return e
        end
        seen[#seen + 1] = e
      end
    end
    if settled(self) then
      return nil, seen, "ended"
    end
    local at = self.world.clock:next_time()
    if not at then
      return nil, seen, "stuck"
    end
    if at > limit then
      return nil, seen, "limit"
    end
    self.world.clock:step()
  end
end

-- The requests as one line each, with their times (luari's own playback
-- checks left out, as in the transcript).
-- `ended`: the flow's end entry, if it has ended; requests after it are
-- luari's own (it hangs up what the flow left), as the transcript says.
local function describe_seen(seen, tr, ended)
  local after_end = {}
  local past = false
  for _, e in ipairs(ended and tr or {}) do
    past = past or e == ended
    if past then
      after_end[e] = true
    end
  end
  local lines = {}
  for _, e in ipairs(seen) do
    if not transcript.is_playback_check(e) then
      lines[#lines + 1] = transcript.format_line(e.t, after_end[e] and "luari" or "flow",
        transcript.describe_request(e))
    end
  end
  return lines
end

-- Lines for a failure message, kept readable: a run of lines that differ
-- only in their time becomes its first line and a count, and past `max`
-- lines the middle is left out (a flow looping on requests would
-- otherwise fill the screen many times over).
local function sans_time(line)
  return (line:gsub("^[>%s]*[%d%.]+", "", 1))
end

local function abridge(lines, max)
  local out, i = {}, 1
  while i <= #lines do
    local text = sans_time(lines[i])
    local j = i
    while j < #lines and sans_time(lines[j + 1]) == text do
      j = j + 1
    end
    out[#out + 1] = lines[i]
    if j > i then
      out[#out + 1] = string.format("             ... and %d more like it, to %s s", j - i,
        (lines[j]:match("^%s*>*%s*([%d%.]+)")) or "?")
    end
    i = j + 1
  end
  if #out <= max then
    return out
  end
  local head, tail = math.floor(max / 3), max - math.floor(max / 3)
  local kept = {}
  for k = 1, head do
    kept[#kept + 1] = out[k]
  end
  kept[#kept + 1] = string.format("             ... %d lines left out ...", #out - head - tail)
  for k = #out - tail + 1, #out do
    kept[#kept + 1] = out[k]
  end
  return kept
end

-- Why an expectation stopped looking, for the failure message.
function SimCall:_why(why)
  local now = self.world.clock:now()
  if why == "ended" then
    local e = self.ended
    local first = e and e.error and tostring(e.error):match("^[^\n]*")
    local flow = first and string.format("the flow failed at %.3f s: %s", e.t, first)
      or string.format("the flow returned at %.3f s", e and e.t or now)
    return flow .. " (" .. transcript.outcome(self.world.transcript) .. ")"
  elseif why == "stuck" then
    return string.format("at %.3f s the flow waits and nothing else is due (no timer, no caller action): "
      .. "it waits for something this test never does (a key press? a hang-up?)", now)
  end
  return string.format("nothing more within %g s of waiting (sim.call's `wait` option)", self.wait)
end

-- The whole transcript, with ">>" on the lines this expectation looked at.
function SimCall:_marked_transcript(from)
  local render = transcript.renderer(false)
  local out = {}
  for i, e in ipairs(self.world.transcript) do
    local l = render(e)
    if l then
      out[#out + 1] = (i >= from and ">> " or "   ") .. l
    end
  end
  return table.concat(abridge(out, 150), "\n")
end

function SimCall:_fail(what, expected, seen, why, from)
  local since = self.since and string.format("since the previous expectation (%.3f s)", self.since)
    or "since the call began"
  local lines = abridge(describe_seen(seen, self.world.transcript, self.ended), 40)
  local did
  if #lines == 0 then
    did = since .. " the flow made no request, and"
  else
    did = since .. " the flow did:\n" .. table.concat(lines, "\n") .. "\nand then"
  end
  local msg = string.format("%s: expected the flow to %s, but %s %s.", what, expected, did, self:_why(why))
  if self.ended and self.ended.error then
    msg = msg .. "\n\nflow error: " .. tostring(self.ended.error)
  end
  raise(msg .. "\n\ntranscript (>> since the previous expectation):\n" .. self:_marked_transcript(from))
end

-- The channel an expectation looks at: the caller's unless `channel`
-- says another id, or "any".
local function channel_option(what, opts)
  if opts == nil then
    return nil
  end
  if type(opts) ~= "table" or (opts.channel ~= nil and type(opts.channel) ~= "string") then
    raise(what .. ": the options are a table such as { channel = \"any\" } or { channel = id }")
  end
  for k in pairs(opts) do
    if k ~= "channel" then
      raise(what .. ": unknown option '" .. tostring(k) .. "' (there is `channel`)")
    end
  end
  return opts.channel
end

-- Waits for a channel operation the flow makes, by nickname, on
-- `channel` (default: the caller's channel; "any": any channel). An
-- operation on no channel in particular (originate, create) matches
-- whatever `channel` says.
function SimCall:_expect_op(what, expected, nicknames, check, channel)
  local from = self.cursor
  channel = channel or self.id
  local e, seen, why = self:_until(function(e)
    local spec, args = transcript.find_op(e.method, e.path)
    if not spec or spec.resource ~= "channels" or not nicknames[spec.nickname] then
      return false
    end
    if channel ~= "any" and spec.path_params[1] == "channelId" and args[1] ~= channel then
      return false
    end
    return check == nil or check(e, spec)
  end)
  if not e then
    self:_fail(what, expected, seen, why, from)
  end
  self.since = e.t
  return e
end

local function media_list(e)
  local m = e.query and e.query.media
  local list = {}
  for item in tostring(m or ""):gmatch("[^,]+") do
    list[#list + 1] = item
  end
  return list
end

local function quoted_args(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "table" then
      local items = {}
      for _, x in ipairs(v) do
        items[#items + 1] = string.format("%q", tostring(x))
      end
      parts[#parts + 1] = "{ " .. table.concat(items, ", ") .. " }"
    elseif type(v) == "string" then
      parts[#parts + 1] = string.format("%q", v)
    else
      parts[#parts + 1] = tostring(v)
    end
  end
  while parts[#parts] == "nil" do
    parts[#parts] = nil
  end
  return table.concat(parts, ", ")
end

-- The flow plays `media` (a URI, or an array for a list played at once).
-- Returns { media = { uri, ... }, request = entry }.
function SimCall:expect_play(media, opts)
  local what = "expect_play(" .. quoted_args(media) .. ")"
  local channel = channel_option(what, opts)
  local want = type(media) == "table" and table.concat(media, ",") or media
  local e = self:_expect_op(what,
    (media == nil and "play something" or ("play " .. tostring(want))) .. (channel and (" on " .. channel) or ""),
    { play = true, playWithId = true }, function(e)
      return media == nil or table.concat(media_list(e), ",") == want
    end, channel)
  return { media = media_list(e), request = e }
end

-- Whether a request's query has each of these parameters, as text.
local function query_has(query, want)
  for k, v in pairs(want) do
    if tostring(query[k]) ~= tostring(v) then
      return false
    end
  end
  return true
end

-- The flow leaves the application back to the dialplan (at context,
-- extension, priority, label when given). Returns the request's parameters.
function SimCall:expect_continue(context, extension, priority, label)
  local want = { context = context, extension = extension, priority = priority, label = label }
  local given = { context, extension, priority, label }
  local where, last = {}, 0
  for i = 1, 4 do
    if given[i] ~= nil then
      last = i
    end
  end
  for i = 1, last do
    where[i] = given[i] == nil and "*" or tostring(given[i])
  end
  local what = "expect_continue(" .. quoted_args(context, extension, priority, label) .. ")"
  local expected = "continue in the dialplan" .. (last > 0 and (" at " .. table.concat(where, ",")) or "")
  local from = self.cursor
  local e = self:_expect_op(what, expected, { continueInDialplan = true }, function(e)
    return query_has(e.query, want)
  end)
  self:_expect_success(what, e, "continue in the dialplan", from)
  return e.query
end

-- Runs the clock until Asterisk has answered request entry `e`; returns
-- the response entry (nil when none came while anything was due).
function SimCall:_response_to(e)
  local tr = self.world.transcript
  local i = self.cursor
  while true do
    for j = i, #tr do
      if tr[j].kind == "response" and tr[j].request == e then
        return tr[j]
      end
    end
    i = #tr + 1
    local at = self.world.clock:next_time()
    if not at or at > self.world.clock:now() + self.wait then
      return nil
    end
    self.world.clock:step()
  end
end

-- The request was made; fails when Asterisk refused it.
function SimCall:_expect_success(what, e, asked, from)
  local r = self:_response_to(e)
  if r and r.status >= 300 then
    local message = type(r.body) == "table" and r.body.message
    raise(string.format("%s: the flow asked to %s at %.3f s, but Asterisk answered %d%s.\n\n"
      .. "transcript (>> since the previous expectation):\n%s", what, asked, e.t, r.status,
      message and (" " .. tostring(message)) or "", self:_marked_transcript(from)))
  end
end

-- The flow (or luari, when the flow returns) hangs up the call, with
-- `reason` when given. Returns the request's parameters.
function SimCall:expect_hangup(reason)
  local what = "expect_hangup(" .. quoted_args(reason) .. ")"
  local e = self:_expect_op(what,
    "hang up the call" .. (reason and (" with reason " .. reason) or ""), { hangup = true },
    function(e)
      return reason == nil or e.query.reason == reason
    end)
  local ended = self.ended
  if ended and ended.error and e.t >= ended.t then
    -- luari hangs up after a flow that failed: that is no hangup the flow made.
    raise(string.format("%s: the call was hung up because the flow failed at %.3f s:\n%s", what, ended.t,
      tostring(ended.error)))
  end
  return e.query
end

-- The flow starts a recording (named `name`, when given). Returns the
-- request's parameters.
function SimCall:expect_record(name, opts)
  local what = "expect_record(" .. quoted_args(name) .. ")"
  local channel = channel_option(what, opts)
  local e = self:_expect_op(what,
    "record" .. (name and (" " .. name) or " something") .. (channel and (" on " .. channel) or ""),
    { record = true }, function(e)
      return name == nil or e.query.name == name
    end, channel)
  return e.query
end

-- The flow does channel operation `nickname` (e.g. "answer", "dial") with
-- these parameters. Returns the request's parameters.
function SimCall:expect(nickname, params, opts)
  if type(nickname) ~= "string" or nickname == "" then
    raise("expect: the ARI operation's nickname, as the transcript shows it (\"answer\", \"startMoh\"),"
      .. " must be a string (got " .. type(nickname) .. ")")
  end
  local wanted = {}
  for k, v in pairs(params or {}) do
    wanted[#wanted + 1] = k .. "=" .. tostring(v)
  end
  table.sort(wanted)
  local what = "expect(" .. quoted_args(nickname) .. ")"
  -- A dial is made on the new channel, never on the caller's.
  local channel = channel_option(what, opts) or (nickname == "dial" and "any" or nil)
  local expected = "do " .. tostring(nickname) .. (#wanted > 0 and (" with " .. table.concat(wanted, " ")) or "")
    .. ((channel and channel ~= "any") and (" on " .. channel) or "")
  local e = self:_expect_op(what, expected, { [nickname] = true },
    function(e)
      return query_has(e.query, params or {})
    end, channel)
  return e.query
end

-- The caller can act only while the channel exists and is not hanging up
-- (the model's own notion: a channel being hung up takes no more keys).
function SimCall:_caller_check(what)
  local ch = self.world.model.channels[self.id]
  if not ch or ch.hanging then
    raise(string.format("%s: the caller cannot do that at %.3f s: the call is over (%s)", what,
      self.world.clock:now(), transcript.outcome(self.world.transcript)))
  end
end

-- The caller presses keys now (0.25 s apart).
function SimCall:press(digits)
  local what = "press(" .. quoted_args(digits) .. ")"
  if (type(digits) ~= "string" and type(digits) ~= "number") or not tostring(digits):match(dtmf.DIGITS) then
    raise(what .. ": keys are 0-9, *, # and A-D (got " .. tostring(digits) .. ")")
  end
  self:_caller_check(what)
  self.world:press(self.id, tostring(digits))
  return self
end

-- The caller hangs up now.
function SimCall:hangup()
  self:_caller_check("hangup()")
  self.world:hangup(self.id)
  return self
end

local AUDIO = { speech = true, silence = true, tone = true, none = true }

-- What the caller sends from now on: "speech", "silence", "tone" or "none".
function SimCall:audio(kind)
  if not AUDIO[kind] then
    raise("audio(" .. quoted_args(kind) .. "): the caller sends \"speech\", \"silence\", \"tone\" or \"none\"")
  end
  self.world:caller_audio(self.id, kind)
  return self
end

-- Lets `seconds` of virtual time pass.
function SimCall:advance(seconds)
  check_seconds("advance: seconds", seconds, 0)
  self.world:advance(seconds)
  return self
end

-- Runs until the flow has ended. Returns true, or nil and why not: the
-- flow's error, or what kept it from ending.
function SimCall:finish(limit)
  if limit ~= nil then
    check_seconds("finish: the time limit", limit, 0)
  end
  local deadline = self.world.clock:now() + (limit or self.wait)
  self.world:run(function()
    return settled(self)
  end, deadline)
  if not self.ended then
    if self.world.app.stats.calls == 0 then
      local errors = self:logs("error")
      return nil, "no flow ran for the call" .. (#errors > 0 and (": " .. table.concat(errors, "; ")) or "")
    end
    if not self.world.clock:next_time() then
      return nil, string.format("the flow did not end: at %.3f s it waits and nothing else is due",
        self.world.clock:now())
    end
    return nil, "the flow did not end within " .. (limit or self.wait) .. " s"
  end
  if self.ended.error then
    return nil, self.ended.error
  end
  return true
end

-- The caller's channel as the simulated Asterisk has it (nil once gone).
function SimCall:channel()
  return self.world.model:channel(self.id)
end

-- The transcript entries: { t, kind = "request"|"response"|"event"|
-- "caller"|"log"|"end", ... }.
function SimCall:transcript()
  return self.world.transcript
end

-- The transcript as `luari sim` prints it.
function SimCall:transcript_text(verbose)
  return transcript.text(self.world.transcript, verbose)
end

-- How the call ended, in one sentence (see transcript.outcome).
function SimCall:outcome()
  return transcript.outcome(self.world.transcript)
end

-- The flow's log lines (luari.log.* and luari's own), as strings.
function SimCall:logs(level)
  local out = {}
  for _, e in ipairs(self.world.transcript) do
    if e.kind == "log" and (level == nil or e.level == level) then
      out[#out + 1] = e.message
    end
  end
  return out
end

sim.SimCall = SimCall
return sim
