-- The call object's core against the simulated Asterisk: sleep and
-- wait_event (and a hangup while they wait), on_hangup, is_up, continue,
-- the rule that once the caller has hung up every method returns nil,
-- "hangup" without contacting Asterisk, and a flow that ends before it
-- ever waits.

local T = require "spec.call_helper"

describe("call:sleep", function()
  it("waits and returns true", function()
    local c = T.call([[
      return function(call)
        T.got("sleep", call:sleep(2.5))
      end
    ]])
    assert.is_true(c:finish())
    assert.are.same({ n = 1, t = 2.5, true }, T.values("sleep"))
  end)

  it("wakes early with nil, 'hangup' when the caller hangs up", function()
    local c = T.call([[
      return function(call)
        T.got("call", call)
        T.got("sleep", call:sleep(60))
      end
    ]])
    c:advance(3)
    c:hangup()
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 3, nil, "hangup" }, T.values("sleep"))
    T.assert_clean(c, T.value("call"))
  end)
end)

describe("call:wait_event", function()
  it("returns the next event of the types asked for, and nil, 'timeout'", function()
    local c = T.call([[
      return function(call)
        call:answer()
        T.got("dtmf", call:wait_event("ChannelDtmfReceived", 10))
        T.got("none", call:wait_event({ "ChannelTalkingStarted" }, 2))
      end
    ]])
    c:expect("answer")
    c:advance(1)
    c:press("4")
    assert.is_true(c:finish())
    local ev = T.value("dtmf")
    assert.are.equal("ChannelDtmfReceived", ev.type)
    assert.are.equal("4", ev.digit)
    assert.are.same({ n = 2, t = 3, nil, "timeout" }, T.values("none"))
  end)

  it("keeps what arrived meanwhile, in order, including events the call's methods used", function()
    local c = T.call([[
      return function(call)
        call:answer()
        call:play("sound:beep")
        call:sleep(5) -- the caller presses 1, then 2, meanwhile
        T.got("played", call:wait_event("PlaybackFinished", 1))
        T.got("first", call:wait_event("ChannelDtmfReceived", 1))
        T.got("second", call:wait_event("ChannelDtmfReceived", 1))
        T.got("none", call:wait_event("ChannelDtmfReceived", 1))
      end
    ]])
    c:expect("answer")
    c:advance(1)
    c:press("12")
    assert.is_true(c:finish())
    assert.are.equal("sound:beep", T.value("played").playback.media_uri)
    assert.are.equal("1", T.value("first").digit)
    assert.are.equal("2", T.value("second").digit)
    assert.are.equal("timeout", T.values("none")[2])
  end)

  it("keeps the latest INBOX_LIMIT unread events, and warns once when it drops older ones", function()
    local Call = require "luari.call"
    local limit = Call.INBOX_LIMIT
    Call.INBOX_LIMIT = 3
    local ok, err = pcall(function()
      local c = T.call([[
        return function(call)
          call:answer()
          call:sleep(5) -- the caller presses 1 to 5 meanwhile
          for i = 1, 4 do
            T.got("ev" .. i, call:wait_event("ChannelDtmfReceived", 1))
          end
        end
      ]])
      c:expect("answer")
      c:advance(1)
      c:press("12345")
      assert.is_true(c:finish())
      assert.are.same({ "3", "4", "5" }, { T.value("ev1").digit, T.value("ev2").digit, T.value("ev3").digit })
      assert.are.equal("timeout", T.values("ev4")[2])
      local warned = 0
      for _, line in ipairs(c:logs("warn")) do
        if line:find("inbox over 3 events", 1, true) then
          warned = warned + 1
        end
      end
      assert.are.equal(1, warned)
    end)
    Call.INBOX_LIMIT = limit
    assert(ok, err)
  end)

  it("returns nil, 'hangup' when the caller hangs up while it waits", function()
    local c = T.call([[
      return function(call)
        T.got("call", call)
        call:answer()
        T.got("ev", call:wait_event("ChannelDtmfReceived"))
      end
    ]])
    c:expect("answer")
    c:advance(2)
    c:hangup()
    assert.is_true(c:finish())
    local r = T.values("ev")
    assert.is_nil(r[1])
    assert.are.equal("hangup", r[2])
    assert.are.equal(2, r.t)
    T.assert_clean(c, T.value("call"))
  end)
end)

describe("call:on_hangup and call:is_up", function()
  it("runs the handler once when the caller hangs up, while the flow waits", function()
    local c = T.call([[
      return function(call)
        call:on_hangup(function(cl) T.got("handler", cl.id, cl:is_up()) end)
        T.got("up", call:is_up())
        call:sleep(30)
      end
    ]])
    c:advance(4)
    c:hangup()
    assert.is_true(c:finish())
    assert.is_true(T.value("up"))
    local r = T.values("handler")
    assert.are.equal(c.id, r[1])
    assert.is_false(r[2])
    assert.are.equal(4, r.t)
  end)
end)

describe("luari.spawn threads end with the call", function()
  local function count(name)
    local n = 0
    for _, r in ipairs(T.results) do
      n = n + (r.name == name and 1 or 0)
    end
    return n
  end

  -- A ticker that ignores what luari.sleep returns: it would spin once
  -- every wait returned nil, "hangup" at once.
  local TICKER = [[
        local ticker = luari.spawn(function()
          while true do
            luari.sleep(1)
            T.got("tick")
          end
        end)
  ]]

  it("when the caller hangs up: a thread that ignores the hangup stops, luari.wait says why", function()
    local c = T.call([[
      return function(call)
        T.got("call", call)
        ]] .. TICKER .. [[
        call:sleep(30)
        T.got("wait", luari.wait(ticker))
      end
    ]])
    c:advance(3.5)
    c:hangup()
    assert.is_true(c:finish())
    assert.are.equal(3, count("tick"))
    assert.are.same({ n = 2, t = 3.5, nil, "hangup" }, T.values("wait"))
    assert.are.same({}, c:logs("error"))
    T.assert_clean(c, T.value("call"))
  end)

  it("when the flow hangs up the call itself", function()
    local c = T.call([[
      return function(call)
        T.got("call", call)
        ]] .. TICKER .. [[
        call:sleep(3.5)
        call:hangup()
        T.got("wait", luari.wait(ticker))
        call:sleep(5)
      end
    ]])
    assert.is_true(c:finish())
    assert.are.equal(3, count("tick"))
    assert.are.same({ n = 2, t = 3.5, nil, "hangup" }, T.values("wait"))
    assert.are.same({}, c:logs("error"))
    T.assert_clean(c, T.value("call"))
  end)

  it("when the call leaves the application", function()
    local c = T.call([[
      return function(call)
        ]] .. TICKER .. [[
        call:sleep(2.5)
        call:continue("sales", "s", 1)
        T.got("wait", luari.wait(ticker))
        call:sleep(5)
      end
    ]])
    c:expect_continue("sales", "s", 1)
    assert.is_true(c:finish())
    assert.are.equal(2, count("tick"))
    assert.are.same({ nil, "left" }, { T.values("wait")[1], T.values("wait")[2] })
    assert.are.same({}, c:logs("error"))
  end)
end)

describe("the instruction budget", function()
  it("names the flow's line even when it runs out inside luari's own code", function()
    local module = T.flow("return { n = 1 }\n"):match("([^/]+)%.lua$")
    local c = T.call([[
      return function(call)
        while true do
          local m = require("]] .. module .. [[")
        end
      end
    ]], { instruction_budget = 100000 })
    local ok, err = c:finish()
    assert.is_nil(ok)
    assert.matches("^[^\n]*flow%d+%.lua:%d+: instruction budget exceeded", tostring(err))
  end)
end)

describe("call:wait_event and the hangup", function()
  it("gives a flow waiting for the hangup event that event, not nil, 'hangup'", function()
    local c = T.call([[
      return function(call)
        call:answer()
        T.got("ev", call:wait_event("ChannelHangupRequest", 30))
        T.got("after", call:wait_event("ChannelDtmfReceived", 5))
      end
    ]])
    c:expect("answer")
    c:advance(2)
    c:hangup()
    assert.is_true(c:finish())
    local ev = T.value("ev")
    assert.are.equal("ChannelHangupRequest", ev.type)
    assert.are.equal(2, T.values("ev").t)
    assert.are.same({ nil, "hangup" }, { T.values("after")[1], T.values("after")[2] })
  end)
end)

describe("virtual time and loops that wait 0 s", function()
  it("moves on for a flow that sleeps 0 s until another thread is done", function()
    local c = T.call([[
      return function(call)
        local done = false
        luari.spawn(function() luari.sleep(1); done = true end)
        local turns = 0
        while not done do
          luari.sleep(0)
          turns = turns + 1
        end
        T.got("done", turns)
      end
    ]])
    assert.is_true(c:finish())
    local r = T.values("done")
    assert.is_true(r[1] > 100, tostring(r[1]))
    assert.is_true(r.t >= 1 and r.t < 1.1, tostring(r.t))
  end)

  it("lets an endless loop of them run out the time given, instead of hanging", function()
    local c = T.call([[
      return function(call)
        while true do
          call:sleep(0)
        end
      end
    ]])
    local ok, why = c:finish(600)
    assert.is_nil(ok)
    assert.matches("did not end within 600 s", why, 1, true)
  end)
end)

describe("call:on_hangup when the flow ends while the handler waits", function()
  local ARI = 'local ari = require "luari.ari"\n'

  it("lets the handler finish a request the flow's end would have cut", function()
    local c = T.call(ARI .. [[
      return function(call)
        call:answer()
        call:on_hangup(function()
          T.got("handler_start")
          T.got("handler_done", ari.asterisk.getInfo() ~= nil)
        end)
        T.got("read", call:read_digits{ timeout = 30 })
        ari.asterisk.getInfo() -- one more wait, then the flow returns
      end
    ]])
    T.delay_replies(c, "^/asterisk/info$", 0.2)
    c:advance(1)
    c:hangup()
    assert.is_true(c:finish())
    c.world:advance(5)
    assert.is_true(T.has("handler_start"))
    assert.is_true(T.value("handler_done"))
  end)

  it("lets it finish when the caller hangs up while the flow's request is out", function()
    local c = T.call(ARI .. [[
      return function(call)
        call:answer()
        call:on_hangup(function()
          T.got("handler_done", ari.asterisk.getInfo() ~= nil)
        end)
        call:sleep(1)
        call:get_var("CALLERID(num)")
      end
    ]])
    T.delay_replies(c, "/variable$", 0.2)
    T.delay_replies(c, "^/asterisk/info$", 0.2)
    c:advance(1.1)
    c:hangup()
    assert.is_true(c:finish())
    c.world:advance(5)
    assert.is_true(T.value("handler_done"))
  end)
end)

describe("call:on_hangup and the flow it interrupts", function()
  it("runs before the flow wakes with nil, 'hangup'", function()
    local c = T.call([[
      return function(call)
        local note
        call:on_hangup(function() note = "handler ran" end)
        call:answer()
        local ok, why = call:sleep(30)
        T.got("woke", ok, why, note)
      end
    ]])
    c:advance(1)
    c:hangup()
    assert.is_true(c:finish())
    local v = T.values("woke")
    assert.are.same({ nil, "hangup", "handler ran" }, { v[1], v[2], v[3] })
  end)
end)

describe("luari.sleep in an on_hangup handler", function()
  it("sleeps, though the call is over", function()
    local c = T.call([[
      local luari = require "luari"
      return function(call)
        call:on_hangup(function()
          local t0 = luari.now()
          T.got("slept", luari.sleep(1), luari.now() - t0)
        end)
        call:answer()
        call:sleep(30)
      end
    ]])
    c:advance(1)
    c:hangup()
    assert.is_true(c:finish())
    c.world:advance(2)
    local v = T.values("slept")
    assert.is_true(v[1])
    assert.are.equal(1, v[2])
  end)
end)

describe("call:on_hangup that never ends", function()
  it("is stopped --hangup-grace after the flow ended", function()
    local c = T.call('local ari = require "luari.ari"\n' .. [[
      return function(call)
        call:answer()
        call:on_hangup(function()
          while true do
            ari.asterisk.getInfo()
          end
        end)
        call:sleep(30)
      end
    ]], { hangup_grace = 5 })
    c:advance(1)
    c:hangup()
    assert.is_true(c:finish())
    c.world:advance(6)
    local asked = #T.find_requests(c, "GET", "^/asterisk/info$")
    assert.is_true(asked > 0)
    c.world:advance(10)
    assert.are.equal(asked, #T.find_requests(c, "GET", "^/asterisk/info$"), "the handler was stopped")
    local warned = false
    for _, l in ipairs(c:logs("warn")) do
      warned = warned or l:find("on_hangup handler still running 5s after the flow ended: stopped", 1, true) ~= nil
    end
    assert.is_true(warned, table.concat(c:logs(), "\n"))
  end)
end)

describe("call:on_hangup when the flow hangs up", function()
  it("does not run the handler: the caller did not hang up", function()
    local c = T.call([[
      return function(call)
        call:on_hangup(function() T.got("handler") end)
        call:answer()
        T.got("hangup", call:hangup())
        call:sleep(2)
      end
    ]])
    c:expect("answer")
    assert.is_true(c:finish())
    assert.is_true(T.value("hangup"))
    assert.is_false(T.has("handler"))
  end)
end)

describe("misuse of the ARI operations behind the methods", function()
  local FLOW = [[
      local function try(name, ...)
        local ok, err = pcall(...)
        T.got(name, ok, err)
      end
      return function(call)
        try("dtmf typo", call.send_dtmf, call, "1", { gap = 100 })
        try("dtmf opts", call.send_dtmf, call, "1", "x")
        try("dtmf before", call.send_dtmf, call, "1", { before = "x" })
        try("dtmf digits", call.send_dtmf, call, 1)
        try("priority", function() call:continue("sales", "s", "x") end)
        call:sleep(10)
        try("gone reason", function() call:hangup("bogus") end)
        try("gone priority", function() call:continue("sales", "s", "x") end)
        try("gone dtmf", function() call:send_dtmf("1", { after = -1 }) end)
      end
  ]]

  -- Each try(name, ...) the flow made raised, with a message matching its pattern.
  local function assert_raised(patterns)
    for name, pattern in pairs(patterns) do
      local r = T.values(name)
      assert.is_false(r[1], name)
      assert.matches(pattern, r[2], 1, false, name)
    end
  end

  it("raises at the flow's line, naming what is wrong, before anything is sent", function()
    local c = T.call(FLOW)
    c:advance(1)
    c:hangup()
    assert.is_true(c:finish())
    assert_raised({
      ["dtmf typo"] = "call:send_dtmf: opts.gap is not an option",
      ["dtmf opts"] = "call:send_dtmf: opts must be a table",
      ["dtmf before"] = "call:send_dtmf: opts.before must be an integer",
      ["dtmf digits"] = "call:send_dtmf: digits must be a non%-empty string",
      ["priority"] = "flow%d+%.lua:%d+: ari.channels.continueInDialplan: parameter 'priority' must be an integer",
    })
    assert.are.equal(0, #T.find_requests(c, "POST", "/dtmf"))
    assert.are.equal(0, #T.find_requests(c, "POST", "/continue"))
  end)

  it("points at the flow's line even when the flow's path looks like luari's own", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p '" .. dir .. "/luari'")
    local path = dir .. "/luari/call_center.lua"
    local f = assert(io.open(path, "w"))
    f:write('local T = require "spec.call_helper"\n', [[
      return function(call)
        T.got("typo", pcall(function() call:send_dtmf("1", { gap = 100 }) end))
        T.got("priority", pcall(function() call:continue("sales", "s", "x") end))
      end
    ]])
    f:close()
    T.results = {}
    local c = require("luari.sim").call(path)
    assert.is_true(c:finish())
    os.execute("rm -rf '" .. dir .. "'")
    assert.matches("call_center%.lua:3: call:send_dtmf: opts%.gap", T.values("typo")[2])
    assert.matches("call_center%.lua:4: ari%.channels%.continueInDialplan", T.values("priority")[2])
  end)

  it("raises the same once the caller has hung up, when nothing would be sent anyway", function()
    local c = T.call(FLOW)
    c:advance(1)
    c:hangup()
    assert.is_true(c:finish())
    assert_raised({
      ["gone reason"] = "flow%d+%.lua:%d+: ari.channels.hangup: .*reason",
      ["gone priority"] = "flow%d+%.lua:%d+: ari.channels.continueInDialplan: parameter 'priority'",
      ["gone dtmf"] = "flow%d+%.lua:%d+: call:send_dtmf: opts.after must be at least 0",
    })
  end)
end)

describe("call:continue", function()
  it("leaves the application; afterwards methods give nil, 'left'", function()
    local c = T.call([[
      return function(call)
        T.got("continue", call:continue("sales", "s", 1))
        T.got("play", call:play("sound:beep"))
        T.got("read", call:read_digits())
      end
    ]])
    c:expect_continue("sales", "s", 1)
    assert.is_true(c:finish())
    assert.is_true(T.value("continue"))
    assert.are.same({ nil, "left" }, { T.values("play")[1], T.values("play")[2] })
    assert.are.same({ nil, "left" }, { T.values("read")[1], T.values("read")[2] })
  end)
end)

describe("once the caller has hung up", function()
  -- Each entry: a name and the call of the method (source).
  local METHODS = {
    { "answer", "call:answer()" }, { "ring", "call:ring()" }, { "ring_stop", "call:ring_stop()" },
    { "hangup", "call:hangup()" }, { "play", 'call:play("sound:beep")' },
    { "play_async", 'call:play_async("sound:beep")' }, { "read_digits", "call:read_digits()" },
    { "prompt", 'call:prompt{ media = "sound:beep" }' }, { "record", 'call:record("r")' },
    { "send_dtmf", 'call:send_dtmf("1")' }, { "mute", "call:mute()" }, { "unmute", "call:unmute()" },
    { "hold", "call:hold()" }, { "unhold", "call:unhold()" }, { "moh", "call:moh()" },
    { "stop_moh", "call:stop_moh()" }, { "silence", "call:silence()" },
    { "stop_silence", "call:stop_silence()" }, { "get_var", 'call:get_var("X")' },
    { "set_var", 'call:set_var("X", "1")' }, { "continue", "call:continue()" },
    { "move", 'call:move("other")' }, { "redirect", 'call:redirect("PJSIP/1")' },
    { "dial", 'call:dial("Local/1@wait")' }, { "snoop", 'call:snoop{ spy = "both" }' },
    { "rtp_statistics", "call:rtp_statistics()" }, { "wait_event", 'call:wait_event("StasisStart", 5)' },
    { "sleep", "call:sleep(5)" }, { "originate", 'luari.originate{ endpoint = "Local/1@wait" }' },
  }

  it("every method returns nil, 'hangup' at once without contacting Asterisk", function()
    local lines = {}
    for _, m in ipairs(METHODS) do
      lines[#lines + 1] = string.format("T.got(%q, %s)", m[1], m[2])
    end
    local c = T.call([[
      return function(call)
        call:answer()
        call:sleep(10)
        ]] .. table.concat(lines, "\n        ") .. [[
        T.got("is_up", call:is_up())
      end
    ]])
    c:expect("answer")
    c:advance(1)
    c:hangup()
    local at = T.hangup_index(c)
    assert.is_true(c:finish())
    for _, m in ipairs(METHODS) do
      local r = T.values(m[1])
      assert.are.same({ nil, "hangup" }, { r[1], r[2] }, m[1])
      assert.are.equal(1, r.t, m[1])
    end
    assert.is_false(T.value("is_up"))
    assert.are.same({}, T.requests(c, at))
  end)
end)

describe("a flow that ends before its first wait", function()
  -- Regression: its call was never ended (the dispatcher only knew its
  -- main thread after the thread had already finished).
  it("is ended and its call hung up, also when it fails", function()
    local c = T.call([[
      return function(call)
        T.got("ran", true)
      end
    ]])
    assert.is_true(c:finish(5))
    c:expect_hangup()
    local f = T.call([[
      return function(call)
        local x = nil
        return x.y
      end
    ]])
    local ok, err = f:finish(5)
    assert.is_nil(ok)
    assert.matches("attempt to index", err)
  end)
end)

describe("a flow that ends with Local channels of its own", function()
  it("hangs up each first half, not the ;2 half that goes with it, whatever its id", function()
    local c = T.call([[
      local ari = require "luari.ari"
      return function(call)
        call:answer()
        T.got("a", ari.channels.originate({ endpoint = "Local/1000@wait", app = "luari", channelId = "a" }))
        T.got("b", ari.channels.originate({ endpoint = "Local/1000@wait", app = "luari", channelId = "b",
          otherChannelId = "b-other" }))
      end
    ]])
    assert.is_true(c:finish(5))
    local deleted = {}
    for _, e in ipairs(T.find_requests(c, "DELETE", "^/channels/")) do
      deleted[#deleted + 1] = e.path:match("^/channels/(.*)$")
    end
    table.sort(deleted)
    assert.are.same({ c.id, "a", "b" }, deleted)
  end)
end)

describe("a finished call", function()
  it("leaves a tombstone for its channel, not itself: late events are ignored quietly, then forgotten", function()
    local c = T.call([[
      return function(call)
        T.got("call", call)
        call:answer()
        call:hangup()
      end
    ]])
    assert.is_true(c:finish(5))
    local app = c.world.app
    local id = T.value("call").id
    local owner = app.channel_owner[id]
    assert.is_table(owner)
    assert.is_true(owner.tombstone)
    -- Nothing holds the call object any more.
    local weak = setmetatable({ T.value("call") }, { __mode = "v" })
    T.results = {}
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
    local unrouted = app.stats.unrouted
    app:on_event({ type = "ChannelVarset", variable = "LATE", value = "1", channel = { id = id } })
    assert.are.equal(unrouted, app.stats.unrouted)
    c.world:advance(31)
    assert.is_nil(app.channel_owner[id])
    app:on_event({ type = "ChannelVarset", variable = "LATER", value = "1", channel = { id = id } })
    assert.are.equal(unrouted + 1, app.stats.unrouted)
  end)
end)
