-- examples/dial.lua: the agent answers and talks; busy, no answer,
-- congestion and a failed endpoint each get their message; the caller
-- hangs up while it rings or while talking.

local sim = require "luari.sim"

local DIAL = "examples/dial.lua"

local function call_agent(agent)
  return sim.call(DIAL, { flow = "dial", args = { agent } })
end

local function played(c, media)
  for _, e in ipairs(c:transcript()) do
    if e.kind == "request" and e.path:find("/play/") and e.query.media == media then
      return true
    end
  end
  return false
end

describe("examples/dial.lua", function()
  it("bridges the caller with the agent who answers, and thanks them when the agent hangs up", function()
    local c = sim.call(DIAL) -- the default agent answers, says hello, hangs up
    c:expect_play("sound:pls-hold-while-try")
    c:expect("startMoh")
    local q = c:expect("dial")
    assert.are.equal(c.id, q.caller)
    assert.are.equal("20", tostring(q.timeout))
    c:expect("stopMoh")
    c:expect_play("sound:auth-thankyou")
    assert.is_true(c:finish())
    local bridged = false
    for _, e in ipairs(c:transcript()) do
      if e.kind == "request" and e.path:find("/addChannel$") then
        bridged = e.query.channel:find(c.id, 1, true) ~= nil
      end
    end
    assert.is_true(bridged)
  end)

  for _, case in ipairs({
    { "Local/agent@busy", "sound:custom/agent-busy" },
    { "Local/agent@noanswer", "sound:vm-nobodyavail" },
    { "Local/agent@congestion", "sound:all-circuits-busy-now" },
    { "Local/agent@nonexistent", "sound:cannot-complete-as-dialed" },
  }) do
    it("says why when " .. case[1] .. " does not take the call", function()
      local c = call_agent(case[1])
      c:expect("dial")
      c:expect_play(case[2])
      c:expect_play("sound:goodbye")
      c:expect_hangup()
      assert.is_true(c:finish())
    end)
  end

  it("gives up after 20 s of ringing", function()
    local c = call_agent("Local/agent@noanswer")
    c:expect("dial")
    local t0 = c.world.clock:now()
    c:expect_play("sound:vm-nobodyavail")
    assert.are.equal(20, c.world.clock:now() - t0)
  end)

  it("stops ringing the agent when the caller hangs up, and says nothing", function()
    local c = call_agent("Local/agent@noanswer")
    c:expect("dial")
    c:advance(5)
    c:hangup()
    assert.is_true(c:finish())
    assert.is_false(played(c, "sound:vm-nobodyavail"))
    assert.are.same({ channels = 0, bridges = 0, playbacks = 0, recordings = 0, timers = 0 },
      c.world.model:stats())
  end)

  it("ends when the caller hangs up while talking; luari hangs up the agent", function()
    local c = call_agent("Local/agent@wait")
    c:expect("dial")
    c:advance(30)
    c:hangup()
    assert.is_true(c:finish())
    assert.is_false(played(c, "sound:auth-thankyou"))
    c:advance(1)
    assert.are.same({ channels = 0, bridges = 0, playbacks = 0, recordings = 0, timers = 0 },
      c.world.model:stats())
  end)
end)
