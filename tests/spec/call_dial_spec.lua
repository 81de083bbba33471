-- call:dial, call:bridge, call:snoop, luari.originate with
-- call:wait_answer, and call:wait_hangup, against the simulated Asterisk:
-- each outcome as the wire shows it (ARI's Dial failures differ: see
-- ari-samples/README.md "Dial failures"), what luari cleans up, hangups at
-- each point, and misuse.

local T = require "spec.call_helper"

local function near(expected, actual, tolerance)
  assert.is_true(math.abs(expected - actual) <= (tolerance or 1e-6),
    string.format("expected about %s, got %s", tostring(expected), tostring(actual)))
end

local function escape(s)
  return (s:gsub("%p", "%%%0"))
end

local function dial_flow(args_source, after)
  return T.call([[
    return function(call)
      T.got("call", call)
      call:answer()
      local peer, why, err = T.got("dial", call:dial(]] .. args_source .. [[))
      ]] .. (after or "") .. [[
    end
  ]])
end

-- The DELETE requests for channel `id` (luari's own cleanup when a flow
-- ends may add one that finds it gone already).
local function hangups_of(c, id)
  return #T.find_requests(c, "DELETE", "^/channels/" .. escape(id) .. "$")
end

-- The time of the first DELETE for channel `id`, or nil.
local function hung_up_at(c, id)
  local r = T.find_requests(c, "DELETE", "^/channels/" .. escape(id) .. "$")[1]
  return r and r.t
end

describe("call:dial", function()
  it("creates the channel in this app, dials it with this call as caller, bridges on answer", function()
    local c = dial_flow('"Local/agent@wait"', 'T.got("up", peer:is_up()) T.got("channel", peer.channel)')
    assert.is_true(c:finish())
    local call = T.value("call")
    local peer = T.value("dial")
    assert.are.equal("table", type(peer))
    assert.is_true(T.value("up"))
    assert.are.equal("Up", T.value("channel").state)
    local create = T.find_requests(c, "POST", "^/channels/create$")[1]
    local q = create.query
    assert.are.same({ endpoint = "Local/agent@wait", app = "luari", channelId = peer.id, originator = call.id }, q)
    local dial = T.find_requests(c, "POST", "^/channels/" .. escape(peer.id) .. "/dial$")[1]
    assert.are.same({ caller = call.id, timeout = "30" }, dial.query)
    local bridge = T.find_requests(c, "POST", "^/bridges$")[1]
    assert.are.equal("mixing", bridge.query.type)
    local add = T.find_requests(c, "POST", "^/bridges/[^/]+/addChannel$")[1]
    assert.are.equal(call.id .. "," .. peer.id, add.query.channel)
  end)

  it("returns a peer that supports the call methods", function()
    local c = dial_flow('"Local/agent@dtmf"', [[
      T.got("digits", peer:read_digits{ max = 5, timeout = 5 })
      T.got("play", peer:play("sound:beep"))
    ]])
    assert.is_true(c:finish())
    assert.are.same({ "123", "terminator" }, { T.values("digits")[1], T.values("digits")[2] })
    assert.is_true(T.value("play"))
    local peer = T.value("dial")
    assert.are.equal(1, #T.find_requests(c, "POST", "^/channels/" .. escape(peer.id) .. "/play/"))
  end)

  it("keeps the peer's events for the peer: the caller's wait_event does not see them", function()
    local c = dial_flow('"Local/agent@dtmf"', [[
      T.got("caller", call:wait_event("ChannelDtmfReceived", 3))
      T.got("peer", peer:wait_event("ChannelDtmfReceived", 3))
    ]])
    assert.is_true(c:finish())
    local caller = T.values("caller")
    assert.are.same({ nil, "timeout" }, { caller[1], caller[2] })
    local ev = T.value("peer")
    assert.are.equal("1", ev.digit)
    assert.are.equal(T.value("dial").id, ev.channel.id)
  end)

  it("passes timeout, callerId (as CALLERID(all)), variables and formats", function()
    local c = dial_flow([["Local/agent@wait", { timeout = 12, callerId = "Support <100>",
      variables = { ORIGIN = "ivr" }, formats = { "ulaw", "alaw" } }]])
    assert.is_true(c:finish())
    local create = T.find_requests(c, "POST", "^/channels/create$")[1]
    assert.are.same({ ["CALLERID(all)"] = "Support <100>", ORIGIN = "ivr" }, create.body.variables)
    assert.are.equal("ulaw,alaw", create.query.formats)
    assert.is_nil(create.query.originator) -- Asterisk refuses originator with formats
    assert.are.equal("12", T.find_requests(c, "POST", "/dial$")[1].query.timeout)
    assert.is_truthy(T.value("dial"))
  end)

  it("gives nil, 'busy' on Dial BUSY and hangs up the channel it left in the app", function()
    local c = dial_flow('"Local/agent@busy"', 'T.got("slept", call:sleep(5))')
    assert.is_true(c:finish())
    local r = T.values("dial")
    assert.are.same({ n = 2, t = 0, nil, "busy" }, r)
    local create = T.find_requests(c, "POST", "^/channels/create$")[1]
    assert.are.equal(0, hung_up_at(c, create.query.channelId))
    assert.is_true(T.value("slept"))
    T.assert_clean(c, T.value("call"))
  end)

  it("gives nil, 'congestion' on Dial CONGESTION and hangs the channel up", function()
    local c = dial_flow('"Local/agent@congestion"', 'call:sleep(5)')
    assert.is_true(c:finish())
    assert.are.same({ nil, "congestion" }, { T.values("dial")[1], T.values("dial")[2] })
    local create = T.find_requests(c, "POST", "^/channels/create$")[1]
    assert.are.equal(0, hung_up_at(c, create.query.channelId))
  end)

  it("gives nil, 'noanswer' when the timeout runs out (no Dial status: Asterisk hangs up, cause 19)", function()
    local c = dial_flow('"Local/agent@noanswer", { timeout = 4 }', 'call:sleep(5)')
    assert.is_true(c:finish())
    local r = T.values("dial")
    assert.are.same({ nil, "noanswer" }, { r[1], r[2] })
    near(4, r.t)
    -- Asterisk hung it up itself: nothing to do.
    local create = T.find_requests(c, "POST", "^/channels/create$")[1]
    assert.are.equal(0, hangups_of(c, create.query.channelId))
    T.assert_clean(c, T.value("call"))
  end)

  it("gives nil, 'failed' for an extension that does not exist (StasisEnd, cause 16)", function()
    local c = dial_flow('"Local/agent@nonexistent-context"')
    assert.is_true(c:finish())
    assert.are.same({ nil, "failed" }, { T.values("dial")[1], T.values("dial")[2] })
  end)

  it("gives nil, 'failed' and Asterisk's error when the channel cannot be created", function()
    local c = dial_flow('"NoSuchTech/123"')
    assert.is_true(c:finish())
    local r = T.values("dial")
    assert.is_nil(r[1])
    assert.are.equal("failed", r[2])
    assert.are.equal(500, r[3].status)
  end)

  it("returns nil, 'hangup' at once when the caller hangs up while it rings, and hangs up the peer", function()
    local c = dial_flow('"Local/agent@noanswer"')
    c:expect("dial")
    c:advance(5)
    c:hangup()
    local at = T.hangup_index(c)
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 5, nil, "hangup" }, T.values("dial"))
    local call = T.value("call")
    local create = T.find_requests(c, "POST", "^/channels/create$")[1]
    -- Nothing touches the caller's channel any more; only the ringing peer
    -- is hung up.
    for _, r in ipairs(T.requests(c, at)) do
      assert.are.equal("DELETE /channels/" .. create.query.channelId, r)
    end
    assert.are.equal(5, hung_up_at(c, create.query.channelId))
    assert.are.equal(1, hangups_of(c, create.query.channelId), "one DELETE for the peer, not one more at the flow's end")
    assert.are.equal(0, hangups_of(c, call.id))
    T.assert_clean(c, call)
  end)

  it("the peer's wait_hangup returns true when the peer hangs up; the bridge is gone by then", function()
    local c = dial_flow('"Local/agent@hangup-soon"', [[
      T.got("wait", peer:wait_hangup())
      T.got("record", call:record("after", { maxDurationSeconds = 1 }))
    ]])
    assert.is_true(c:finish())
    local w = T.values("wait")
    assert.is_true(w[1])
    assert.is_true(w.t >= 2 and w.t < 3, "peer hung up at " .. w.t)
    assert.are.equal(1, #T.find_requests(c, "DELETE", "^/bridges/"))
    -- Recording fails while the caller is in a bridge: it is not any more.
    assert.are.equal("done", T.value("record").state)
    T.assert_clean(c, T.value("call"))
  end)

  it("the peer's wait_hangup returns nil, 'hangup' when the caller hangs up; luari cleans up", function()
    local c = dial_flow('"Local/agent@wait"', 'T.got("wait", peer:wait_hangup())')
    c:expect("dial")
    c:advance(10)
    c:hangup()
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 10, nil, "hangup" }, T.values("wait"))
    local peer = T.value("dial")
    assert.are.equal(1, hangups_of(c, peer.id))
    assert.are.equal(1, #T.find_requests(c, "DELETE", "^/bridges/"))
    T.assert_clean(c, T.value("call"))
  end)

  it("the peer and the bridge are hung up and destroyed when the flow ends", function()
    local c = dial_flow('"Local/agent@wait"')
    assert.is_true(c:finish())
    local peer = T.value("dial")
    c:advance(1)
    assert.are.equal(1, hangups_of(c, peer.id))
    assert.are.equal(1, #T.find_requests(c, "DELETE", "^/bridges/"))
    T.assert_clean(c, T.value("call"))
  end)

  it("runs a peer's on_hangup handler when the peer hangs up", function()
    local c = dial_flow('"Local/agent@hangup-soon"', [[
      peer:on_hangup(function(p) T.got("handler", p.id) end)
      T.got("sleep", call:sleep(5))
    ]])
    assert.is_true(c:finish())
    assert.are.equal(T.value("dial").id, T.value("handler"))
    assert.is_true(T.values("handler").t < 3)
    assert.is_true(T.value("sleep"))
  end)

  it("makes the peer's methods return nil, 'hangup' once the caller has hung up", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local peer = call:dial("Local/agent@wait")
        call:on_hangup(function()
          T.got("play", peer:play("sound:beep"))
          T.got("up", peer:is_up())
        end)
        call:sleep(60)
      end
    ]])
    c:expect("dial")
    c:advance(3)
    c:hangup()
    assert.is_true(c:finish())
    assert.are.same({ nil, "hangup" }, { T.values("play")[1], T.values("play")[2] })
    assert.is_true(T.value("up"))
  end)

  it("after a hangup returns nil, 'hangup' without asking Asterisk", function()
    local c = T.call([[
      return function(call)
        call:hangup()
        T.got("dial", call:dial("Local/agent@wait"))
      end
    ]])
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 0, nil, "hangup" }, T.values("dial"))
    assert.are.equal(0, #T.find_requests(c, "POST", "^/channels/create$"))
  end)

  it("raises on misuse, naming the method", function()
    local c = T.call([[
      local function try(name, fn)
        T.got(name, pcall(fn))
      end
      return function(call)
        call:answer()
        try("endpoint", function() call:dial() end)
        try("timeout", function() call:dial("PJSIP/1", { timeout = "30" }) end)
        try("typo", function() call:dial("PJSIP/1", { timout = 30 }) end)
        try("vars", function() call:dial("PJSIP/1", { variables = { A = {} } }) end)
        try("bridge", function() call:bridge("someone") end)
      end
    ]])
    assert.is_true(c:finish())
    for _, name in ipairs({ "endpoint", "timeout", "typo", "vars" }) do
      local r = T.values(name)
      assert.is_false(r[1], name)
      assert.matches("flow%d+%.lua:%d+: call:dial: ", r[2])
    end
    assert.matches("call:bridge: other must be a call object", T.values("bridge")[2])
    assert.are.equal(0, #T.find_requests(c, "POST", "^/channels/create$"))
  end)
end)

describe("luari.originate and call:wait_answer", function()
  local function originate_flow(opts_source, after)
    return T.call([[
      return function(call)
        T.got("call", call)
        call:answer()
        local out, why, err = T.got("originate", luari.originate(]] .. opts_source .. [[))
        ]] .. (after or "") .. [[
      end
    ]])
  end

  it("returns a call object as soon as the channel exists; wait_answer waits for it", function()
    local c = originate_flow('{ endpoint = "Local/bob@wait", callerId = "IVR <200>", appArgs = { "a", "b" } }', [[
      T.got("state", out.channel.state)
      T.got("answer", out:wait_answer())
      T.got("up", out:is_up())
      T.got("args", out.args)
    ]])
    assert.is_true(c:finish())
    local out = T.value("originate")
    assert.are.equal(0, T.values("originate").t)
    assert.are.equal("Down", T.value("state"))
    assert.is_true(T.value("answer"))
    assert.is_true(T.value("up"))
    assert.are.same({ "a", "b" }, T.value("args"))
    local req = T.find_requests(c, "POST", "^/channels$")[1]
    assert.are.same({ endpoint = "Local/bob@wait", app = "luari", appArgs = "a,b", callerId = "IVR <200>",
      channelId = out.id }, req.query)
  end)

  it("lets the flow use the new call (keys from its far end)", function()
    local c = originate_flow('{ endpoint = "Local/bob@dtmf" }', [[
      out:wait_answer()
      T.got("digits", out:read_digits{ max = 4, terminators = "" })
    ]])
    assert.is_true(c:finish())
    assert.are.equal("123#", T.value("digits"))
  end)

  for _, case in ipairs({
    { "Local/bob@busy", "busy" },
    { "Local/bob@congestion", "congestion" },
    { "Local/bob@nonexistent", "failed" },
  }) do
    it("wait_answer gives nil, '" .. case[2] .. "' for " .. case[1], function()
      local c = originate_flow('{ endpoint = "' .. case[1] .. '" }', 'T.got("answer", out:wait_answer())')
      assert.is_true(c:finish())
      assert.are.same({ nil, case[2] }, { T.values("answer")[1], T.values("answer")[2] })
      T.assert_clean(c, T.value("call"))
    end)
  end

  it("wait_answer gives nil, 'noanswer' when Asterisk's timeout runs out", function()
    local c = originate_flow('{ endpoint = "Local/bob@noanswer", timeout = 3 }', 'T.got("answer", out:wait_answer())')
    assert.is_true(c:finish())
    local r = T.values("answer")
    assert.are.same({ nil, "noanswer" }, { r[1], r[2] })
    near(3, r.t)
  end)

  it("wait_answer(timeout) gives nil, 'timeout' and the call goes on ringing", function()
    local c = originate_flow('{ endpoint = "Local/bob@noanswer" }', [[
      T.got("short", out:wait_answer(2))
      T.got("up", out:is_up())
    ]])
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 2, nil, "timeout" }, T.values("short"))
    assert.is_false(T.value("up"))
    -- It is hung up when the flow ends.
    assert.are.equal(1, hangups_of(c, T.value("originate").id))
    T.assert_clean(c, T.value("call"))
  end)

  it("wait_answer returns nil, 'hangup' when the flow's caller hangs up meanwhile", function()
    local c = originate_flow('{ endpoint = "Local/bob@noanswer" }', 'T.got("answer", out:wait_answer())')
    c:expect("answer")
    c:advance(4)
    c:hangup()
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 4, nil, "hangup" }, T.values("answer"))
    T.assert_clean(c, T.value("call"))
  end)

  it("on a call luari did not originate, wait_answer returns true at once", function()
    local c = T.call([[
      return function(call)
        call:answer()
        T.got("answer", call:wait_answer())
      end
    ]])
    assert.is_true(c:finish())
    assert.are.same({ n = 1, t = 0, true }, T.values("answer"))
  end)

  it("after a hangup returns nil, 'hangup' without asking Asterisk", function()
    local c = T.call([[
      return function(call)
        call:hangup()
        T.got("originate", luari.originate{ endpoint = "Local/bob@wait" })
      end
    ]])
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 0, nil, "hangup" }, T.values("originate"))
    assert.are.equal(0, #T.find_requests(c, "POST", "^/channels$"))
  end)

  it("returns Asterisk's error code when the originate is refused", function()
    local c = originate_flow('{ endpoint = "Local" }')
    assert.is_true(c:finish())
    local r = T.values("originate")
    assert.is_nil(r[1])
    assert.are.equal("bad_request", r[2])
  end)

  it("raises on misuse, naming the function", function()
    local c = T.call([[
      local function try(name, fn)
        T.got(name, pcall(fn))
      end
      return function(call)
        call:answer()
        try("notable", function() luari.originate("PJSIP/1") end)
        try("endpoint", function() luari.originate{} end)
        try("app", function() luari.originate{ endpoint = "PJSIP/1", app = "other" } end)
        try("wait", function() call:wait_answer("soon") end)
      end
    ]])
    assert.is_true(c:finish())
    for _, name in ipairs({ "notable", "endpoint", "app" }) do
      local r = T.values(name)
      assert.is_false(r[1], name)
      assert.matches("flow%d+%.lua:%d+: luari.originate: ", r[2])
    end
    assert.matches("call:wait_answer: timeout must be a number", T.values("wait")[2])
  end)
end)

describe("call:bridge", function()
  it("puts two calls in a new mixing bridge and returns its id", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local out = luari.originate{ endpoint = "Local/bob@hangup-soon" }
        out:wait_answer()
        T.got("bridge", call:bridge(out))
        T.got("wait", out:wait_hangup())
      end
    ]])
    assert.is_true(c:finish())
    local id = T.value("bridge")
    assert.are.equal("string", type(id))
    assert.are.equal(1, #T.find_requests(c, "POST", "^/bridges/" .. escape(id) .. "/addChannel$"))
    assert.is_true(T.value("wait"))
    assert.are.equal(1, #T.find_requests(c, "DELETE", "^/bridges/" .. escape(id) .. "$"))
  end)

  it("gives nil, 'hangup' when either call is gone", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local out = luari.originate{ endpoint = "Local/bob@hangup-soon" }
        out:wait_answer()
        out:wait_hangup()
        T.got("bridge", call:bridge(out))
      end
    ]])
    assert.is_true(c:finish())
    assert.are.same({ nil, "hangup" }, { T.values("bridge")[1], T.values("bridge")[2] })
    assert.are.equal(0, #T.find_requests(c, "POST", "^/bridges$"))
  end)
end)

describe("call:snoop", function()
  it("starts a snoop channel and returns its channel table and a call object", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local ch, spy = T.got("snoop", call:snoop{ spy = "both", appArgs = "rec" })
        T.got("answer", spy:wait_answer())
        T.got("record", spy:record("snooped", { maxDurationSeconds = 1 }))
      end
    ]])
    assert.is_true(c:finish())
    local r = T.values("snoop")
    assert.matches("^Snoop/", r[1].name)
    assert.are.equal(r[1].id, r[2].id)
    assert.are.same({ "rec" }, r[2].args)
    assert.is_true(T.value("answer"))
    assert.are.equal("snooped", T.value("record").name)
    local req = T.find_requests(c, "POST", "/snoop$")[1]
    assert.are.same({ spy = "both", app = "luari", appArgs = "rec", snoopId = r[1].id }, req.query)
    -- The snoop channel is hung up with the call.
    T.assert_clean(c)
  end)

  it("for another application returns only the channel table", function()
    local c = T.call([[
      return function(call)
        call:answer()
        T.got("snoop", call:snoop{ whisper = "out", app = "recorder" })
      end
    ]])
    assert.is_true(c:finish())
    local r = T.values("snoop")
    assert.are.equal(1, r.n)
    assert.matches("^Snoop/", r[1].name)
  end)

  it("raises on misuse, naming the method", function()
    local c = T.call([[
      return function(call)
        call:answer()
        T.got("none", pcall(function() call:snoop{} end))
        T.got("dir", pcall(function() call:snoop{ spy = "sideways" } end))
      end
    ]])
    assert.is_true(c:finish())
    assert.matches("call:snoop: give spy or whisper", T.values("none")[2])
    assert.matches("call:snoop: spy must be one of", T.values("dir")[2])
  end)
end)

-- A real Asterisk may send a new channel's events before the reply to the
-- request that made it (ari-samples/README.md): luari must not lose them,
-- nor let the older snapshot in the reply overwrite theirs.
describe("events that come before the reply", function()
  it("snoop: wait_answer sees a StasisStart that came before the reply", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local _, spy = call:snoop{ spy = "both" }
        T.got("wait_answer", spy:wait_answer(10))
      end
    ]])
    T.delay_replies(c, "/snoop$", 0.05)
    assert.is_true(c:finish())
    local v = T.values("wait_answer")
    assert.is_true(v[1])
    near(0.05, v.t, 0.01)
  end)

  it("originate: call.channel stays the newer snapshot of the events", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local out = luari.originate{ endpoint = "Local/1000@wait" }
        T.got("wait_answer", out:wait_answer(10))
        T.got("state", out.channel.state)
      end
    ]])
    T.delay_replies(c, "^/channels$", 0.05)
    assert.is_true(c:finish())
    assert.is_true(T.value("wait_answer"))
    assert.are.equal("Up", T.value("state"))
  end)
end)

describe("call:wait_answer from two threads", function()
  it("wakes both with the verdict", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local out = luari.originate{ endpoint = "Local/1000@noanswer", timeout = 3 }
        local th = luari.spawn(function() return out:wait_answer(20) end)
        T.got("flow", out:wait_answer(20))
        T.got("spawned", luari.wait(th))
      end
    ]])
    assert.is_true(c:finish())
    for _, name in ipairs({ "flow", "spawned" }) do
      local v = T.values(name)
      assert.are.same({ nil, "noanswer" }, { v[1], v[2] }, name)
      assert.is_true(v.t < 5, name .. " woke at " .. v.t)
    end
  end)
end)

describe("on_hangup of a channel the flow made", function()
  it("does not run when luari hangs it up at the flow's end", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local agent = call:dial("Local/1000@wait")
        T.got("dial", agent ~= nil)
        agent:on_hangup(function() T.got("agent_on_hangup") end)
        call:sleep(2)
      end
    ]])
    assert.is_true(c:finish())
    c.world:advance(5)
    assert.is_true(T.value("dial"))
    assert.is_false(T.has("agent_on_hangup"))
  end)

  it("runs when the far end hangs up", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local agent = call:dial("Local/1000@hangup-soon")
        T.got("dial", agent ~= nil)
        agent:on_hangup(function() T.got("agent_on_hangup") end)
        call:sleep(30)
      end
    ]])
    assert.is_true(c:finish())
    assert.is_true(T.value("dial"))
    assert.is_true(T.has("agent_on_hangup"))
  end)
end)
