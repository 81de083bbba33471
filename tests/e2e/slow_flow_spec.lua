-- A flow that keeps the Lua side busy must not stall the events socket:
-- Asterisk drops a WebSocket reader that falls behind its write timeout
-- (the simulator does the same, 100 ms). luari reads events on its own
-- thread and queues them for Lua.

local h = require "e2e.helper"

-- A flow that says it is ready, does what `pause` says (Lua), then counts
-- the flood's events until none has come for `gap` seconds.
local function flood_counter(pause, gap)
  return [[
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"ready\": true}")
  ]] .. pause .. [[

  local n = 0
  while true do
    local ev = call:wait_event("ChannelVarset", ]] .. gap .. [[)
    if not ev then break end
    if ev.variable == "FLOOD" then n = n + 1 end
  end
  luari.log.info("RESULT {\"flood\": %d}", n)
end
]]
end

-- Blocks the loop 2 s once a key comes (never do this in a real flow).
local BUSY_FLOW = flood_counter('call:wait_event("ChannelDtmfReceived", 30); os.execute("sleep 2")', 1)

-- Counts the flood's events as they come, with no pause of its own.
local WAITER_FLOW = flood_counter("", 3)

-- Blocks the loop 1.5 s, then waits 1 s: the wait starts when the flow
-- asks for it, not when the loop last woke up.
local LATE_TIMER_FLOW = [[
local luari = require "luari"
return function(call)
  call:answer()
  os.execute("sleep 1.5") -- blocks the loop (never do this in a real flow)
  local t0 = luari.now()
  call:sleep(1)
  local slept = luari.now() - t0
  t0 = luari.now()
  local _, why = call:wait_event("ChannelDtmfReceived", 0.5)
  luari.log.info("RESULT {\"slept\": %.3f, \"waited\": %.3f, \"why\": %q}", slept, luari.now() - t0, tostring(why))
end
]]

describe("a busy flow", function()
  after_each(h.stop_all)

  it("gets the whole of a wait it starts after blocking the loop", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows({ late = LATE_TIMER_FLOW }), { url = sim.url, log_level = "info" })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.call(sim, { args = { "late" } })
    h.wait_for(function() return #h.results(run) >= 1 end, 10, "the flow to report")
    local r = h.results(run)[1]
    assert.is_true(r.slept >= 0.99, "call:sleep(1) returned after " .. r.slept .. " s")
    assert.is_true(r.waited >= 0.49, "a 0.5 s wait_event returned after " .. r.waited .. " s")
    assert.are.equal("timeout", r.why)
  end)

  it("a simulator that was busy before it floods does not take luari for a slow reader", function()
    local sim = h.start_sim({ args = { "--script", "tests/e2e/faults/busy_flood.lua" } })
    local run = h.start_run(h.flows({ waiter = WAITER_FLOW }), { url = sim.url, log_level = "info" })
    h.wait_log(run, "connected to Asterisk", 10, true)
    local id = h.call(sim, { args = { "waiter" } })
    h.wait_log(run, "\"ready\": true", 10, true)
    local status, res = h.http("POST", sim.base .. "/sim/flood",
      { channel = id, count = 2000, size = 4000, busy_ms = 300 })
    assert.are.equal(200, status, tostring(res))
    h.wait_for(function() return #h.results(run) >= 2 end, 30, "the flow to count the events")
    assert.are.equal(2000, h.results(run)[2].flood)
    assert.is_false(h.log_has(sim, "fell behind", true), h.read(sim.log))
  end)

  it("does not make luari fall behind the events socket", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows({ busy = BUSY_FLOW }), { url = sim.url, log_level = "info" })
    h.wait_log(run, "connected to Asterisk", 10, true)
    local id = h.call(sim, { args = { "busy" } })
    h.wait_log(run, "\"ready\": true", 10, true)
    h.http("POST", sim.base .. "/sim/calls/" .. id .. "/dtmf", { digits = "1" })
    h.sleep(0.5) -- the flow is now blocked in its sleep
    local status, res = h.http("POST", sim.base .. "/sim/flood", { channel = id, count = 4000, size = 4000 })
    assert.are.equal(200, status, tostring(res))
    h.wait_for(function() return #h.results(run) >= 2 end, 30, "the flow to count the events")
    assert.are.equal(4000, h.results(run)[2].flood)
    assert.is_false(h.log_has(sim, "fell behind", true), h.read(sim.log))
    assert.is_false(h.log_has(run, "ARI unavailable", true), h.read(run.log))
  end)
end)
