-- Events that do not have the shape Asterisk documents (a field missing,
-- or of another type) reach a call in each place a flow waits: the
-- dispatcher must not raise and the flow must not fail; it carries on or
-- ends the way a well-formed event would have made it. The network face
-- has the same guarantee for bytes (tests/fuzz); this covers the shapes.

local T = require "spec.call_helper"
local util = require "luari.util"

-- Where the flow waits when the event comes.
local FLOWS = {
  play = [[return function(call) call:answer() T.got("r", call:play("sound:hello-world")) end]],
  read_digits = [[return function(call) call:answer() T.got("r", call:read_digits{ max = 3, timeout = 30 }) end]],
  prompt = [[return function(call) call:answer()
    T.got("r", call:prompt{ media = "sound:hello-world", max = 2, timeout = 30 }) end]],
  record = [[return function(call) call:answer() T.got("r", call:record("msg", { maxDurationSeconds = 30 })) end]],
  dial = [[return function(call) call:answer() T.got("r", call:dial("Local/1000@wait", { timeout = 30 })) end]],
  wait_event = [[return function(call) call:answer() T.got("r", call:wait_event("ChannelVarset", 30)) end]],
}

local function channel(id)
  return { id = id, name = "PJSIP/100-00000001", state = "Up", protocol_id = "", accountcode = "",
    caller = { name = "", number = "100" }, connected = { name = "", number = "" },
    dialplan = { context = "ivr", exten = "s", priority = 1, app_name = "Stasis", app_data = "luari" },
    creationtime = "2026-11-27T14:46:26.359+0000", language = "en" }
end

local function bridge(ch)
  return { id = "b1", technology = "simple_bridge", bridge_type = "mixing", bridge_class = "stasis",
    creator = "Stasis", name = "", channels = { ch }, video_mode = "talker" }
end

-- ch: the call's channel id; x: the last id luari chose (a playback, a
-- peer channel).
local TEMPLATES = {
  ChannelDtmfReceived = function(ch) return { digit = "1", duration_ms = 100, channel = channel(ch) } end,
  PlaybackStarted = function(ch, x) return { playback = { id = x, media_uri = "sound:hello-world",
    target_uri = "channel:" .. ch, language = "en", state = "playing" } } end,
  PlaybackFinished = function(ch, x) return { playback = { id = x, media_uri = "sound:hello-world",
    target_uri = "channel:" .. ch, language = "en", state = "done" } } end,
  RecordingStarted = function(ch) return { recording = { name = "msg", format = "wav", state = "recording",
    target_uri = "channel:" .. ch } } end,
  RecordingFinished = function(ch) return { recording = { name = "msg", format = "wav", state = "done",
    target_uri = "channel:" .. ch, duration = 3 } } end,
  RecordingFailed = function(ch) return { recording = { name = "msg", format = "wav", state = "failed",
    target_uri = "channel:" .. ch, cause = "x" } } end,
  Dial = function(ch, x) return { caller = channel(ch), peer = channel(x), dialstatus = "ANSWER",
    dialstring = "1000@wait", forwarded = "" } end,
  ChannelStateChange = function(_, x) return { channel = channel(x) } end,
  ChannelHangupRequest = function(ch) return { cause = 16, soft = true, channel = channel(ch) } end,
  ChannelDestroyed = function(ch) return { cause = 16, cause_txt = "Normal Clearing", channel = channel(ch) } end,
  StasisEnd = function(ch) return { channel = channel(ch) } end,
  StasisStart = function(_, x) return { args = {}, channel = channel(x) } end,
  ChannelVarset = function(ch) return { variable = "V", value = "1", channel = channel(ch) } end,
  ChannelEnteredBridge = function(ch) return { bridge = bridge(ch), channel = channel(ch) } end,
  ChannelLeftBridge = function(ch) return { bridge = bridge(ch), channel = channel(ch) } end,
  BridgeDestroyed = function(ch) return { bridge = bridge(ch) } end,
}

local NIL = {}
local WRONG = { NIL, "", "?", 7, {}, false }

-- Every field, and every field of a table field, as a path: { "channel", "id" }.
local function paths(ev)
  local out = {}
  for k, v in pairs(ev) do
    if k ~= "type" then
      out[#out + 1] = { k }
      if type(v) == "table" then
        for k2 in pairs(v) do
          out[#out + 1] = { k, k2 }
        end
      end
    end
  end
  table.sort(out, function(a, b) return table.concat(a, ".") < table.concat(b, ".") end)
  return out
end

local function set(ev, path, value)
  local t = ev
  for i = 1, #path - 1 do
    t = t[path[i]]
  end
  if value == NIL then
    t[path[#path]] = nil
  else
    t[path[#path]] = value
  end
end

local function describe_value(v)
  if v == NIL then return "missing" end
  return type(v) == "string" and string.format("%q", v) or type(v) == "table" and "{}" or tostring(v)
end

describe("an event of the wrong shape, while a flow waits", function()
  local real_uuid = util.uuid
  local last_id
  before_each(function()
    local n = 0
    util.uuid = function()
      n = n + 1
      last_id = "id-" .. n
      return last_id
    end
  end)
  after_each(function()
    util.uuid = real_uuid
  end)

  local types = {}
  for name in pairs(TEMPLATES) do
    types[#types + 1] = name
  end
  table.sort(types)

  for _, where in ipairs({ "play", "read_digits", "prompt", "record", "dial", "wait_event" }) do
    it("in " .. where .. " neither raises nor fails the flow", function()
      local cases, failures = 0, {}
      for _, name in ipairs(types) do
        local shape = TEMPLATES[name]("x", "y")
        for _, path in ipairs(paths(shape)) do
          for _, value in ipairs(WRONG) do
            local c = T.call(FLOWS[where])
            c:advance(0.05)
            local ev = TEMPLATES[name](c.id, last_id)
            ev.type = name
            ev.application = "luari"
            ev.timestamp = "2026-11-27T14:46:26.400+0000"
            set(ev, path, value)
            local ok, err = pcall(c.world.app.on_event, c.world.app, ev)
            c:advance(0.05)
            local errors = {}
            for _, line in ipairs(c:logs("error")) do
              -- luari's own report of the bad input is the one error expected
              if not line:find("^StasisStart without a channel id: ignored") then
                errors[#errors + 1] = line
              end
            end
            cases = cases + 1
            if not ok or #errors > 0 then
              failures[#failures + 1] = string.format("%s with %s %s: %s", name, table.concat(path, "."),
                describe_value(value), ok and table.concat(errors, "; ") or tostring(err))
            end
          end
        end
      end
      assert(cases > 300, "too few cases: " .. cases)
      assert(#failures == 0, #failures .. " of " .. cases .. " cases went wrong:\n" ..
        table.concat(failures, "\n", 1, math.min(#failures, 30)))
    end)
  end
end)
