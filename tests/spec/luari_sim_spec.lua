-- luari.sim, the busted helper for flows: every expectation and caller
-- action, when the flow does what is expected and when it does not. A
-- failure must say which expectation failed, at which line of the spec,
-- what the flow did instead, how that stretch ended, and show the
-- transcript.

local sim = require "luari.sim"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p '" .. dir .. "'")

local function flow(name, source)
  local path = dir .. "/" .. name .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(source)
  f:close()
  return path
end

local MENU = flow("menu", [[
return function(call)
  call:answer()
  local key = call:prompt{ media = "sound:main-menu", max = 1, tries = 2, timeout = 5 }
  if key == "1" then
    call:play("sound:sales")
    call:continue("sales", "s", 1)
  elseif key == "2" then
    call:record("message", { maxDurationSeconds = 5, beep = true })
    call:hangup("normal")
  elseif key == "9" then
    call:hangup("busy")
  else
    call:play({ "sound:goodbye", "sound:beep" })
  end
end
]])

local WAITS = flow("waits", [[
return function(call)
  call:answer()
  call:wait_event({ "ChannelTalkingStarted" })
end
]])

local SLEEPS = flow("sleeps", [[
return function(call)
  call:answer()
  call:sleep(100)
  call:play("sound:beep")
end
]])

local FAILS = flow("fails", [[
return function(call)
  call:answer()
  local t = nil
  return t.field
end
]])

local THIS_FILE = "luari_sim_spec.lua"

-- Runs fn, which must fail; returns the message.
local function failure(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected a failure")
  return tostring(err)
end

local function has(text, piece)
  assert.is_truthy(text:find(piece, 1, true), "missing '" .. piece .. "' in:\n" .. text)
end

describe("luari.sim", function()
  describe("expect_play", function()
    it("passes when the flow plays the media, and returns it", function()
      local call = sim.call(MENU, { caller = "+15551234" })
      local p = call:expect_play("sound:main-menu")
      assert.are.same({ "sound:main-menu" }, p.media)
      assert.are.equal("sound:main-menu", p.request.query.media)
      assert.are.equal(0, p.request.t)
    end)

    it("passes for a list played at once", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("5")
      assert.are.same({ "sound:goodbye", "sound:beep" }, call:expect_play({ "sound:goodbye", "sound:beep" }).media)
    end)

    it("fails naming the line, the expected media, what the flow played instead and how it ended", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("1")
      local line = debug.getinfo(1, "l").currentline + 1
      local msg = failure(function() call:expect_play("sound:support") end)
      has(msg, THIS_FILE .. ":" .. line .. ": ")
      has(msg, 'expect_play("sound:support"): expected the flow to play sound:support')
      has(msg, "since the previous expectation (0.000 s) the flow did:")
      has(msg, "flow      play sound:sales")
      has(msg, "continueInDialplan context=sales extension=s priority=1")
      has(msg, "and then the flow returned at ")
      has(msg, "the flow sent the call back to the dialplan (sales,s,1)")
      has(msg, "transcript (>> since the previous expectation):")
      has(msg, ">>     0.000  caller    presses 1")
      -- the media list must match as a whole
      local call2 = sim.call(MENU)
      call2:expect_play("sound:main-menu")
      call2:press("5")
      has(failure(function() call2:expect_play("sound:goodbye") end), "play sound:goodbye,sound:beep")
    end)
  end)

  describe("press", function()
    it("sends the caller's keys to the flow", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("2")
      local rec = call:expect_record("message")
      assert.are.equal("5", tostring(rec.maxDurationSeconds))
      local caller = {}
      for _, e in ipairs(call:transcript()) do
        if e.kind == "caller" and e.action == "dtmf" then
          caller[#caller + 1] = e.digit
        end
      end
      assert.are.same({ "2" }, caller)
    end)

    it("refuses keys a phone does not have", function()
      local call = sim.call(MENU)
      local msg = failure(function() call:press("1x") end)
      has(msg, THIS_FILE .. ":")
      has(msg, 'press("1x"): keys are 0-9, *, # and A-D')
    end)

    it("fails when the call is already over, saying how it ended", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("9")
      call:expect_hangup("busy")
      assert.is_true(call:finish())
      local msg = failure(function() call:press("1") end)
      has(msg, 'press("1"): the caller cannot do that at ')
      has(msg, "the call is over (the flow hung up at ")
      has(msg, "(busy)")
    end)
  end)

  describe("expect_continue", function()
    it("passes when the flow continues in the dialplan where expected", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("1")
      call:expect_play("sound:sales")
      local q = call:expect_continue("sales", "s", 1)
      assert.are.equal("sales", q.context)
      assert.is_true(call:finish())
      assert.is_truthy(call:outcome():find("the flow sent the call back to the dialplan (sales,s,1)", 1, true))
    end)

    it("fails showing where the flow went instead", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("1")
      local msg = failure(function() call:expect_continue("support") end)
      has(msg, 'expect_continue("support"): expected the flow to continue in the dialplan at support')
      has(msg, "continueInDialplan context=sales extension=s priority=1")
    end)
  end)

  describe("expect_hangup", function()
    it("passes for the flow's hangup with its reason, and for luari's after the flow returns", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("9")
      assert.are.equal("busy", call:expect_hangup("busy").reason)
      local quiet = sim.call(MENU)
      quiet:expect_play("sound:main-menu")
      quiet:press("5")
      quiet:expect_hangup()
      assert.is_true(quiet:finish())
      assert.is_truthy(quiet:outcome():find("luari hung up at", 1, true))
    end)

    it("lists luari's own hangup after the flow returned as luari's, not the flow's", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("5")
      local msg = failure(function() call:expect_play("sound:nope") end)
      has(msg, "luari     hangup")
      assert.is_nil(msg:match("flow      hangup"), msg)
    end)

    it("fails when the call was hung up because the flow failed", function()
      local call = sim.call(FAILS)
      local msg = failure(function() call:expect_hangup() end)
      has(msg, "expect_hangup(): the call was hung up because the flow failed at 0.000 s:")
      has(msg, "attempt to index local 't'")
    end)

    it("fails when the flow waits for something the test never does", function()
      local call = sim.call(WAITS)
      local msg = failure(function() call:expect_hangup() end)
      has(msg, "expect_hangup(): expected the flow to hang up the call, but since the call began the flow did:")
      has(msg, "flow      answer")
      has(msg, "the flow waits and nothing else is due (no timer, no caller action)")
    end)

    it("fails with the reason it expected and the one the flow gave", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("9")
      local msg = failure(function() call:expect_hangup("normal") end)
      has(msg, 'expect_hangup("normal"): expected the flow to hang up the call with reason normal')
      has(msg, "hangup reason=busy")
    end)
  end)

  describe("expect_record", function()
    it("passes when the flow records, and returns the parameters", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("2")
      local q = call:expect_record("message")
      assert.are.equal("true", tostring(q.beep))
      assert.are.equal("wav", q.format)
      assert.are.equal("normal", call:expect_hangup().reason)
    end)

    it("fails when the flow never records", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("1")
      local msg = failure(function() call:expect_record() end)
      has(msg, "expect_record(): expected the flow to record something")
      has(msg, "play sound:sales")
    end)
  end)

  describe("expect", function()
    it("passes for any channel operation with matching parameters", function()
      local call = sim.call(MENU)
      call:expect("answer")
      call:press("1")
      assert.are.equal("s", call:expect("continueInDialplan", { context = "sales" }).extension)
    end)

    it("fails naming the operation and the parameters", function()
      local call = sim.call(MENU)
      call:press("1")
      local msg = failure(function() call:expect("continueInDialplan", { context = "billing" }) end)
      has(msg, 'expect("continueInDialplan"): expected the flow to do continueInDialplan with context=billing')
    end)
  end)

  describe("hangup", function()
    it("hangs the caller up: the flow sees it and the outcome says so", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:advance(1)
      call:hangup()
      assert.is_true(call:finish())
      assert.is_truthy(call:outcome():find("the caller hung up at 1.000 s", 1, true), call:outcome())
      assert.is_nil(call:channel())
    end)

    it("fails when the call is already over", function()
      local call = sim.call(MENU)
      call:expect_play("sound:main-menu")
      call:press("9")
      assert.is_true(call:finish())
      local msg = failure(function() call:hangup() end)
      has(msg, "hangup(): the caller cannot do that at ")
      has(msg, "the call is over")
    end)
  end)

  describe("transcript", function()
    it("records what the flow asked, what Asterisk answered, the caller and the end, with times", function()
      local call = sim.call(MENU, { caller = "+15551234", caller_name = "Alice" })
      call:expect_play("sound:main-menu")
      call:press("9")
      assert.is_true(call:finish())
      local kinds = {}
      for _, e in ipairs(call:transcript()) do
        kinds[e.kind] = true
        assert.are.equal("number", type(e.t))
      end
      for _, k in ipairs({ "caller", "request", "response", "event", "end" }) do
        assert.is_true(kinds[k], k)
      end
      local text = call:transcript_text()
      has(text, "    0.000  caller    calls from Alice <+15551234>")
      has(text, "    0.000  event     StasisStart: the call enters the application (Ring; args: menu)")
      has(text, "    0.000  flow      answer")
      has(text, "    0.000  asterisk  answer -> 204 No Content")
      has(text, "    0.000  asterisk  play -> 201 Created: playback ")
      has(text, "    0.000  caller    presses 9")
      has(text, "    0.000  event     ChannelDtmfReceived: 9")
      has(text, "flow      hangup reason=busy")
      has(text, "end       the flow returned")
      -- noisy events only when verbose
      assert.is_nil(text:find("PlaybackStarted", 1, true))
      has(call:transcript_text(true), "event     PlaybackStarted: sound:main-menu playing")
    end)

    it("is part of every failure, as is the flow's error", function()
      local call = sim.call(FAILS)
      local msg = failure(function() call:expect_play() end)
      has(msg, "expect_play(): expected the flow to play something")
      has(msg, "and then the flow failed at 0.000 s: ")
      has(msg, "attempt to index local 't'")
      has(msg, "flow error: ")
      has(msg, "end       the flow failed: ")
      local done, err = sim.call(FAILS):finish()
      assert.is_nil(done)
      assert.is_truthy(tostring(err):find("attempt to index", 1, true))
    end)
  end)

  describe("waiting", function()
    it("runs on a virtual clock: 100 s of sleep take no time", function()
      local call = sim.call(SLEEPS)
      local started = os.clock()
      call:expect_play("sound:beep")
      assert.are.equal(100, call:transcript()[#call:transcript()].t)
      assert.is_true(os.clock() - started < 5)
    end)

    it("gives up after the `wait` option's virtual seconds, saying so", function()
      local call = sim.call(SLEEPS, { wait = 5 })
      local msg = failure(function() call:expect_play("sound:beep") end)
      has(msg, "nothing more within 5 s of waiting (sim.call's `wait` option)")
    end)

    it("finish reports a flow that cannot end", function()
      local done, why = sim.call(WAITS):finish()
      assert.is_nil(done)
      assert.is_truthy(why:find("at 0.000 s it waits and nothing else is due", 1, true), why)
    end)
  end)

  describe("sim.call", function()
    it("rejects unknown options and bad DTMF schedules, naming them", function()
      has(failure(function() sim.call(MENU, { caler = "1" }) end), "sim.call: unknown option 'caler'")
      has(failure(function() sim.call(MENU, { wait = "5" }) end), "option 'wait' must be a number")
      has(failure(function() sim.call(MENU, { dtmf = "1@x" }) end), "bad DTMF item '1@x'")
    end)

    it("checks option values and the arguments of advance, finish and expect, at the spec's line", function()
      local line = debug.getinfo(1, "l").currentline
      local msg = failure(function() sim.call(MENU, { audio = "loud" }) end)
      has(msg, "luari_sim_spec.lua:" .. (line + 1) .. ": sim.call: option 'audio' must be speech, silence, tone or none")
      has(failure(function() sim.call(MENU, "x") end), "sim.call: the options must be a table (got string)")
      has(failure(function() sim.call(MENU, { wait = 0 }) end), "option 'wait' must be more than 0 seconds")
      has(failure(function() sim.call(MENU, { hangup_at = -1 }) end), "option 'hangup_at' must be a number of seconds, at least 0")
      has(failure(function() sim.call(MENU, { sound_default = -3 }) end), "option 'sound_default' must be a number")
      has(failure(function() sim.call(MENU, { sounds = { "hello-world" } }) end), "option 'sounds' maps sound names")
      local call = sim.call(MENU)
      has(failure(function() call:advance("x") end), "advance: seconds must be a number of seconds, at least 0")
      has(failure(function() call:advance(-1) end), "advance: seconds must be a number of seconds, at least 0 (got -1)")
      has(failure(function() call:finish("x") end), "finish: the time limit must be a number of seconds")
      has(failure(function() call:expect() end), "expect: the ARI operation's nickname")
    end)

    it("reads a DTMF schedule as both faces of the simulator take it", function()
      local dtmf = require "luari.sim.dtmf"
      assert.are.same({ { digits = "1", at = 2 }, { digits = "#*", at = 4.5 } }, dtmf.parse("1@2.0, #*@4.5"))
      assert.are.same({}, dtmf.parse(""))
      for _, bad in ipairs({ "1", "1@", "x@1", "1@1.2.3", "1@2,,#@x" }) do
        local list, err = dtmf.parse(bad)
        assert.is_nil(list, bad)
        assert.is_truthy(err:find("bad DTMF item", 1, true), err)
      end
    end)

    it("plays a DTMF schedule and a hang-up time", function()
      local call = sim.call(MENU, { dtmf = "2@1.5", hangup_at = 3 })
      call:expect_record("message")
      assert.is_true(call:finish())
      assert.is_truthy(call:outcome():find("the caller hung up at 3.000 s", 1, true), call:outcome())
    end)
  end)
end)

describe("luari.sim with one flow file", function()
  it("names the flow in the Stasis arguments, so args reach the flow as its own", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local f = io.open(dir .. "/echoargs.lua", "w")
    f:write([[return function(call, a, b)
      call:play("sound:" .. tostring(a) .. "-" .. tostring(b))
    end]])
    f:close()
    local call = sim.call(dir .. "/echoargs.lua", { args = { "one", "two" } })
    call:expect_play("sound:one-two")
    assert.is_true(call:finish())
    os.execute("rm -rf " .. dir)
  end)
end)

describe("luari.sim looks at the caller's channel and at what Asterisk answered", function()
  local PEER = flow("peer", [[
return function(call)
  call:answer()
  local agent = call:dial("Local/100@wait")
  agent:play("sound:sales")
  agent:continue("sales", "s", 1)
  call:sleep(1)
end
]])

  it("does not take a play or a continue on another channel for the caller's", function()
    local call = sim.call(PEER, { wait = 30 })
    local msg = failure(function() call:expect_play("sound:sales") end)
    has(msg, "expected the flow to play sound:sales")
    call = sim.call(PEER, { wait = 30 })
    local p = call:expect_play("sound:sales", { channel = "any" })
    assert.are.same({ "sound:sales" }, p.media)
    call:expect("continueInDialplan", { context = "sales" }, { channel = "any" })
    call = sim.call(PEER, { wait = 30 })
    failure(function() call:expect_continue("sales") end)
    assert.is_true(sim.call(PEER):expect("dial") ~= nil, "a dial is on the new channel")
  end)

  it("expect_hangup wants the caller's own channel, not one whose id contains it", function()
    local HANGS_PEER = flow("hangs_peer", [[
local luari = require "luari"
return function(call)
  call:answer()
  local other = luari.originate{ endpoint = "Local/100@wait", channelId = call.id .. "-peer" }
  other:hangup()
  call:play("sound:hello-world")
  call:sleep(5)
end
]])
    local call = sim.call(HANGS_PEER, { wait = 2 })
    local msg = failure(function() call:expect_hangup() end)
    has(msg, "expected the flow to hang up the call")
    has(msg, "nothing more within 2 s of waiting")
    call = sim.call(HANGS_PEER)
    call:expect_play("sound:hello-world")
    call:expect_hangup()
  end)

  it("fails expect_continue when Asterisk refused the continue, and the outcome says what happened", function()
    local BAD_LABEL = flow("bad_label", [[
return function(call)
  call:answer()
  if not call:continue("sales", "s", nil, "no-such-label") then
    call:play("sound:ss-noservice")
  end
end
]])
    local call = sim.call(BAD_LABEL)
    local msg = failure(function() call:expect_continue("sales", "s", nil, "no-such-label") end)
    has(msg, "the flow asked to continue in the dialplan at 0.000 s, but Asterisk answered 404")
    call = sim.call(BAD_LABEL)
    assert.is_true(call:finish())
    assert.is_nil(call:outcome():find("back to the dialplan", 1, true), call:outcome())
    assert.matches("hung up", call:outcome())
  end)

  it("names the place a continue was expected, with * for what was not given", function()
    local call = sim.call(MENU)
    call:expect_play("sound:main-menu")
    call:press("1")
    local msg = failure(function() call:expect_continue(nil, "200") end)
    has(msg, "expected the flow to continue in the dialplan at *,200")
  end)
end)

describe("luari.sim caller", function()
  local PIN = flow("pin", [[
return function(call)
  call:answer()
  local digits = call:read_digits{ max = 8, timeout = 5 }
  call:play(digits == "1234" and "sound:auth-thankyou" or "sound:auth-incorrect")
end
]])

  it("presses the keys of two presses in a row one after the other", function()
    local call = sim.call(PIN)
    call:press("12")
    call:press("34#")
    call:expect_play("sound:auth-thankyou")
  end)

  it("calls in at the extension, context, channel id and with the variables given", function()
    local WHERE = flow("where", [[
local luari = require "luari"
return function(call)
  local dp = call.channel.dialplan
  luari.log.info("%s %s %s %s", dp.exten, dp.context, call.id, tostring(call:get_var("LANG")))
end
]])
    local call = sim.call(WHERE, { exten = "5000", context = "from-pstn", id = "in-7", variables = { LANG = "fr" } })
    assert.is_true(call:finish())
    has(table.concat(call:logs(), "\n"), "5000 from-pstn in-7 fr")
  end)

  it("keeps a failure message short when the flow repeats itself", function()
    local LOOPS = flow("loops", [[
return function(call)
  for _ = 1, 2000 do
    call:get_var("X")
  end
end
]])
    local call = sim.call(LOOPS)
    local msg = failure(function() call:expect_play("sound:goodbye") end)
    has(msg, "more like it")
    local lines = select(2, msg:gsub("\n", "\n"))
    assert.is_true(lines < 250, lines .. " lines")
  end)
end)
