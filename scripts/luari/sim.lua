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
-- expected, and fails with what the flow actually did otherwise. Time is
-- virtual: a flow that waits 30 s takes microseconds.

local transcript = require "luari.sim.transcript"
local World = require "luari.sim.world"

local sim = {}

local SimCall = {}
SimCall.__index = SimCall

-- How much virtual time an expectation may spend waiting, by default.
sim.DEFAULT_WAIT = 600

-- sim.call(flow, opts): a simulated caller calls; the flow starts.
-- flow: a flow file or a directory of flows (opts.flow picks the name).
-- opts: caller, caller_name, args, flow, dtmf ("1@2.0,#@4.5"), hangup_at,
--       audio ("speech"|"silence"), sounds, sound_default, wait (seconds),
--       verbose (print the transcript as it goes).
function sim.call(flow, opts)
  opts = opts or {}
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
    world:watch(function(e)
      local l = transcript.line(e, opts.verbose == "all")
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
  for item in tostring(spec):gmatch("[^,]+") do
    local digits, at = item:match("^%s*([%d%*#A-Da-d]+)@([%d%.]+)%s*$")
    if not digits then
      error("bad DTMF item '" .. item .. "' (expected DIGITS@SECONDS, e.g. 1@2.0)", 3)
    end
    world.clock:after(tonumber(at), function()
      world:press(id, digits)
    end)
  end
end

-- --- running --------------------------------------------------------------------

local function settled(self)
  local at = self.world.clock:next_time()
  return self.ended and (not at or at > self.world.clock:now())
end

-- Steps the clock until match(entry) accepts a new flow request; returns
-- it, or nil and the list of requests seen instead.
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
      return nil, seen, "the flow ended"
    end
    local at = self.world.clock:next_time()
    if not at then
      return nil, seen, "the flow is waiting and nothing else will happen"
    end
    if at > limit then
      return nil, seen, string.format("nothing after %g s of waiting", self.wait)
    end
    self.world.clock:step()
  end
end

local function describe_seen(seen, why)
  local parts = {}
  for _, e in ipairs(seen) do
    parts[#parts + 1] = transcript.describe_request(e)
  end
  local did = #parts > 0 and table.concat(parts, "; ") or "nothing"
  return "the flow did: " .. did .. " (" .. why .. ")"
end

function SimCall:_fail(expected, seen, why)
  local msg = "expected " .. expected .. ", but " .. describe_seen(seen, why)
  if self.ended and self.ended.error then
    msg = msg .. "\nflow error: " .. tostring(self.ended.error)
  end
  error(msg .. "\n\ntranscript:\n" .. self:transcript_text(), 3)
end

-- Waits for a request the flow makes on its own channel, by operation.
function SimCall:_expect_op(expected, nicknames, check)
  local e, seen, why = self:_until(function(e)
    local _, spec = transcript.describe_request(e)
    if not spec or spec.resource ~= "channels" or not nicknames[spec.nickname] then
      return false
    end
    return check == nil or check(e, spec)
  end)
  if not e then
    self:_fail(expected, seen, why)
  end
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

-- The flow plays `media` (a URI, or an array for a list played at once).
function SimCall:expect_play(media)
  local want = type(media) == "table" and table.concat(media, ",") or media
  local e = self:_expect_op("play " .. tostring(want), { play = true, playWithId = true }, function(e)
    return media == nil or table.concat(media_list(e), ",") == want
  end)
  return { media = media_list(e), request = e }
end

-- The flow leaves the application back to the dialplan.
function SimCall:expect_continue(context, extension, priority, label)
  local want = { context = context, extension = extension, priority = priority, label = label }
  local desc = "continue" .. (context and (" to " .. table.concat({ context, extension, priority }, ",")) or "")
  local e = self:_expect_op(desc, { continueInDialplan = true }, function(e)
    for k, v in pairs(want) do
      if tostring(e.query[k]) ~= tostring(v) then
        return false
      end
    end
    return true
  end)
  return e.query
end

-- The flow (or luari, when the flow returns) hangs up the call.
function SimCall:expect_hangup(reason)
  local e = self:_expect_op("hangup" .. (reason and (" (" .. reason .. ")") or ""), { hangup = true },
    function(e)
      return e.path:find(self.id, 1, true) and (reason == nil or e.query.reason == reason)
    end)
  return e.query
end

-- The flow starts a recording (name, when given, must match).
function SimCall:expect_record(name)
  local e = self:_expect_op("record" .. (name and (" " .. name) or ""), { record = true }, function(e)
    return name == nil or e.query.name == name
  end)
  return e.query
end

-- The flow does channel operation `nickname` (e.g. "answer", "dial").
function SimCall:expect(nickname, params)
  local e = self:_expect_op(nickname, { [nickname] = true }, function(e)
    for k, v in pairs(params or {}) do
      if tostring(e.query[k]) ~= tostring(v) then
        return false
      end
    end
    return true
  end)
  return e.query
end

-- The caller presses keys now (0.25 s apart).
function SimCall:press(digits)
  self.world:press(self.id, tostring(digits))
  return self
end

-- The caller hangs up now.
function SimCall:hangup()
  self.world:hangup(self.id)
  return self
end

-- What the caller sends from now on: "speech" or "silence".
function SimCall:audio(kind)
  self.world:caller_audio(self.id, kind)
  return self
end

-- Lets `seconds` of virtual time pass.
function SimCall:advance(seconds)
  self.world:advance(seconds)
  return self
end

-- Runs until the flow has ended. Returns true, or nil and the flow's error.
function SimCall:finish(limit)
  local deadline = self.world.clock:now() + (limit or self.wait)
  self.world:run(function()
    return settled(self)
  end, deadline)
  if not self.ended then
    return nil, "the flow did not end within " .. (limit or self.wait) .. " s"
  end
  if self.ended.error then
    return nil, self.ended.error
  end
  return true
end

function SimCall:channel()
  return self.world.model:channel(self.id)
end

function SimCall:transcript()
  return self.world.transcript
end

function SimCall:transcript_text(verbose)
  return transcript.text(self.world.transcript, verbose)
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
