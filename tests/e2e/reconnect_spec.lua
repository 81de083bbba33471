-- Reconnect is resync: after the events WebSocket comes back, luari asks
-- Asterisk about every live call; a call that is gone ends with
-- nil, "hangup" wherever it waited, one that is still there carries on.

local h = require "e2e.helper"

local WAITING_FLOW = [[
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"waiting\": true}")
  local ev, why = call:wait_event("ChannelDtmfReceived", 60)
  luari.log.info("RESULT {\"digit\": %q, \"why\": %q}", ev and ev.digit or "", tostring(why))
end
]]

describe("after a reconnect", function()
  after_each(h.stop_all)

  it("a call whose channel is gone ends with nil, 'hangup'", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows({ waiting = WAITING_FLOW }), { url = sim.url,
      args = { "--reconnect-max", "0.5" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.call(sim, { args = { "waiting" } })
    h.wait_log(run, "\"waiting\": true", 10, true)
    h.signal(sim, "KILL") -- Asterisk restarts: every channel is gone
    h.wait_log(run, "ARI unavailable", 10, true)
    h.start_sim({ port = sim.port })
    h.wait_log(run, "hung up while events were down", 10, true)
    h.wait_for(function() return #h.results(run) >= 2 end, 10, "the flow to end")
    local r = h.results(run)[2]
    assert.are.equal("", r.digit)
    assert.are.equal("hangup", r.why)
  end)

  it("says to check the credentials when Asterisk comes back refusing them, and keeps trying", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows({ waiting = WAITING_FLOW }), { url = sim.url,
      args = { "--reconnect-max", "0.5" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.signal(sim, "KILL")
    h.wait_log(run, "ARI unavailable", 10, true)
    local other = h.start_sim({ port = sim.port, args = { "--password", "changed" } })
    h.wait_log(run, "401 Unauthorized", 10, true)
    assert.is_true(h.log_has(run, "(check --user/--password or ARI_USER/ARI_PASSWORD)", true), h.read(run.log))
    assert.is_true(h.alive(run))
    h.signal(other, "KILL")
    h.start_sim({ port = sim.port })
    h.wait_for(function() return h.count_log(run, "connected to Asterisk") >= 2 end, 10, "the reconnect")
  end)

  it("a call whose StasisStart was lost runs its flow after the reconnect", function()
    local sim = h.start_sim({ args = { "--script", "tests/e2e/faults/inject.lua" } })
    local run = h.start_run(h.flows({ waiting = WAITING_FLOW }), { url = sim.url, log_level = "info",
      args = { "--reconnect-max", "0.5" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    local status = h.http("POST", sim.base .. "/sim/fault/lose-stasis-start", { count = 1 })
    assert.are.equal(200, status)
    local id = h.call(sim, { args = { "waiting" } })
    h.sleep(0.5)
    assert.are.equal(0, #h.results(run), "the flow ran without its StasisStart")
    h.http("POST", sim.base .. "/sim/drop")
    h.wait_log(run, "resync: 1 channel(s) in the application whose StasisStart was lost (" .. id .. ")", 10, true)
    h.wait_for(function() return #h.results(run) >= 1 end, 10, "the flow to run")
    assert.is_true(h.results(run)[1].waiting)
    h.http("POST", sim.base .. "/sim/calls/" .. id .. "/dtmf", { digits = "5" })
    h.wait_for(function() return #h.results(run) >= 2 end, 10, "the flow to end")
    assert.are.same({ digit = "5", why = "nil" }, h.results(run)[2])
  end)

  it("a call whose channel is still there carries on and gets later events", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows({ waiting = WAITING_FLOW }), { url = sim.url,
      args = { "--reconnect-max", "0.5" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    local id = h.call(sim, { args = { "waiting" } })
    h.wait_log(run, "\"waiting\": true", 10, true)
    local status = h.http("POST", sim.base .. "/sim/drop")
    assert.are.equal(200, status)
    h.wait_for(function() return h.count_log(run, "connected to Asterisk") >= 2 end, 10, "the reconnect")
    h.wait_log(run, "checking 1 live call", 10, true)
    h.sleep(0.3)
    h.press(sim, id, "5")
    h.wait_for(function() return #h.results(run) >= 2 end, 10, "the digit to reach the flow")
    local r = h.results(run)[2]
    assert.are.equal("5", r.digit)
  end)
end)
