-- Stopping luari: SIGTERM drains (no new calls, running flows finish up to
-- --drain-seconds) and exits 0; a flow that never returns after its caller
-- hung up is cut off after --hangup-grace.

local h = require "e2e.helper"

local FLOWS = {
  slow = [[
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"started\": true}")
  call:sleep(2)
  luari.log.info("RESULT {\"finished\": true}")
end
]],
  forever = [[
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"started\": true}")
  call:sleep(600)
end
]],
  stubborn = [[
local ari = require "luari.ari"
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"started\": true}")
  while true do -- ignores the hangup, keeps talking to Asterisk
    ari.asterisk.getInfo()
  end
end
]],
}

describe("stopping", function()
  after_each(h.stop_all)

  it("SIGTERM lets running calls finish, refuses new ones, then exits 0", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info" })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.call(sim, { args = { "slow" } })
    h.wait_log(run, "\"started\": true", 10, true)
    h.signal(run, "TERM")
    h.wait_log(run, "SIGTERM: no new calls", 5, true)
    local late = h.call(sim, { args = { "slow" } })
    h.wait_log(run, "shutting down: hanging up new call " .. late, 5, true)
    assert.are.equal(0, h.wait_exit(run, 10))
    assert.is_true(h.log_has(run, "\"finished\": true", true))
  end)

  -- Sixty files whose top level counts for a while: the first load takes
  -- a second or two, and the signals come while it runs.
  local function slow_flows()
    local files = {}
    for i = 1, 60 do
      files["slow" .. i] = "local x = 0\nfor i = 1, 8000000 do x = x + i end\nreturn function(call) end\n"
    end
    return h.flows(files)
  end

  -- luari run on slow_flows(), half a second into their first load.
  local function loading()
    local sim = h.start_sim()
    local run = h.start_run(slow_flows(), { url = sim.url, log_level = "info", args = { "--no-watch" } })
    h.sleep(0.5)
    assert.is_false(h.log_has(run, "luari: flows", true), "the signal came after the load")
    return run
  end

  it("acts on a SIGHUP that comes while the flows first load, once they are loaded", function()
    local run = loading()
    h.signal(run, "HUP")
    h.wait_log(run, "flows reloaded (SIGHUP)", 20, true)
    assert.is_true(h.alive(run))
  end)

  it("acts on a SIGTERM that comes while the flows first load: exits 0", function()
    local run = loading()
    h.signal(run, "TERM")
    assert.are.equal(0, h.wait_exit(run, 20))
    assert.is_true(h.log_has(run, "SIGTERM: no new calls", true))
  end)

  it("SIGTERM stops waiting after --drain-seconds", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info",
      args = { "--drain-seconds", "1" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.call(sim, { args = { "forever" } })
    h.wait_log(run, "\"started\": true", 10, true)
    local t0 = os.time()
    h.signal(run, "TERM")
    assert.are.equal(0, h.wait_exit(run, 10))
    assert.is_true(os.time() - t0 <= 4)
    assert.is_true(h.log_has(run, "drain time over with 1 call(s) still running", true))
  end)

  it("hangs up the calls still running when the drain runs out, or on a second signal", function()
    local sim = h.start_sim()
    for _, case in ipairs({ { second = false }, { second = true }, { second = false, rest = "websocket" } }) do
      local second = case.second
      h.clear_journal(sim)
      local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info",
        args = { "--drain-seconds", second and "60" or "1", "--rest", case.rest or "http" } })
      h.wait_log(run, case.rest and "REST requests go over the events WebSocket" or "connected to Asterisk", 10, true)
      local id = h.call(sim, { args = { "forever" } })
      h.wait_log(run, "\"started\": true", 10, true)
      h.signal(run, "TERM")
      if second then
        h.wait_log(run, "SIGTERM: no new calls", 5, true)
        h.signal(run, "INT")
      end
      assert.are.equal(0, h.wait_exit(run, 10))
      assert.is_true(h.log_has(run, "hanging up 1 call(s) still running", true))
      -- The simulator has no such channel any more: luari hung it up before it left.
      local status = h.http("GET", sim.base .. "/sim/channels/" .. id)
      assert.are.equal(404, status, h.read(run.log))
      if case.rest then
        -- ... over the WebSocket, and waited for the reply before closing it.
        local hangups = 0
        for _, r in ipairs(h.journal(sim)) do
          if r.method == "DELETE" and r.path == "/ari/channels/" .. id then
            hangups = hangups + 1
            assert.is_true(r.websocket == true)
          end
        end
        assert.are.equal(1, hangups)
        assert.is_false(h.log_has(run, "conn_lost", true), h.read(run.log))
      end
    end
  end)

  it("a flow that ignores its caller's hangup is stopped after the grace period", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info",
      args = { "--hangup-grace", "1" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    local id = h.call(sim, { args = { "stubborn" } })
    h.wait_log(run, "\"started\": true", 10, true)
    h.http("POST", sim.base .. "/sim/calls/" .. id .. "/hangup")
    h.wait_log(run, "flow still running 1s after hangup: stopped", 5, true)
    assert.is_true(h.alive(run))
  end)
end)
