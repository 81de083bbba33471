-- End to end: the simulator's load generation (POST /sim/load), keys
-- pressed on all its callers (POST /sim/load/dtmf) and what it saw of
-- them (GET /sim/stats), with `luari run` answering the calls.

local h = require "e2e.helper"

local FLOWS = {
  play = [[
return function(call)
  call:answer()
  call:play("sound:beep")
  call:hangup()
end
]],
  park = [[
return function(call)
  call:answer()
  call:read_digits({ timeout = 600 })
  call:hangup()
end
]],
}

local function stats(sim, counts)
  local status, s = h.http("GET", sim.base .. "/sim/stats" .. (counts and "?counts=1" or ""))
  assert.are.equal(200, status)
  return s
end

describe("luari sim-server load generation", function()
  after_each(h.stop_all)

  it("places calls at a rate, and counts what the client did with each", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info" })
    h.wait_log(run, "connected to Asterisk", 10, true)
    local status, res = h.http("POST", sim.base .. "/sim/load", { rate = 100, count = 20, args = { "play" } })
    assert.are.equal(200, status)
    assert.are.same({ rate = 100, count = 20 }, res)
    local s = h.wait_for(function()
      local st = stats(sim, true)
      return st.ended == 20 and st
    end, 20, "20 calls to end")
    assert.is_nil(s.answer_latency, "counts only")
    s = stats(sim)
    assert.are.equal(20, s.placed)
    assert.are.equal(20, s.stasis_start)
    assert.are.equal(20, s.answered)
    assert.are.equal(20, s.hungup_by_app)
    assert.are.equal(0, s.in_stasis)
    assert.are.equal(0, s.errors)
    assert.are.equal(20, s.answer_latency.n)
    assert.is_true(s.answer_latency.p50_ms > 0 and s.answer_latency.p50_ms <= s.answer_latency.max_ms)
    assert.are.equal(20, s.placement_lag.n)
    -- 20 calls at 100 a second: the last is placed about 0.19 s after the first.
    assert.is_true(s.last_placed > 0.15 and s.last_placed < 1, tostring(s.last_placed))
    assert.is_true(s.first_ended > 0.4, "each call plays beep (0.425 s) first")
    assert.are.equal(204, (h.http("DELETE", sim.base .. "/sim/stats")))
    assert.are.equal(0, stats(sim).placed)
  end)

  it("presses keys on every parked caller, and counts errors", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info" })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.http("POST", sim.base .. "/sim/load", { rate = 200, count = 10, args = "park" })
    h.wait_for(function() return stats(sim, true).answered == 10 end, 20, "10 calls to be answered")
    h.sleep(0.2)
    local s = stats(sim)
    assert.are.equal(10, s.in_stasis)
    assert.are.equal(0, s.ended)
    local status, res = h.http("POST", sim.base .. "/sim/load/dtmf", { digits = "1", rate = 100 })
    assert.are.equal(200, status)
    assert.are.equal(10, res.calls)
    h.wait_for(function() return stats(sim, true).ended == 10 end, 20, "10 calls to end")
    s = stats(sim)
    assert.are.equal(10, s.pressed)
    assert.are.equal(10, s.hungup_by_app)
    assert.are.equal(0, s.errors)
    -- An ARI request the simulator refuses is counted as an error.
    h.http("POST", sim.base .. "/ari/channels/no-such-channel/answer")
    s = stats(sim)
    assert.are.equal(1, s.errors)
    assert.are.same({ method = "POST", path = "/ari/channels/no-such-channel/answer", status = 404 }, s.error_list[1])
  end)

  it("refuses a load without a rate or a count", function()
    local sim = h.start_sim()
    assert.are.equal(400, (h.http("POST", sim.base .. "/sim/load", { count = 10 })))
    assert.are.equal(400, (h.http("POST", sim.base .. "/sim/load", { rate = 10, count = 1.5 })))
    assert.are.equal(400, (h.http("POST", sim.base .. "/sim/load", { rate = 10, count = 2, dtmf = "x" })))
    assert.are.equal(400, (h.http("POST", sim.base .. "/sim/load/dtmf", { digits = "", rate = 10 })))
  end)
end)

describe("luari's REST connections", function()
  after_each(h.stop_all)

  it("carry on when the server closes them while idle, as Asterisk does after session_keep_alive", function()
    local sim = h.start_sim({ args = { "--http-keepalive", "1" } })
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info" })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.http("POST", sim.base .. "/sim/load", { rate = 50, count = 5, args = { "play" } })
    h.wait_for(function() return stats(sim, true).ended == 5 end, 20, "the first 5 calls")
    h.sleep(2.5) -- every kept-alive connection has been closed by now
    h.http("POST", sim.base .. "/sim/load", { rate = 50, count = 5, args = { "play" } })
    h.wait_for(function() return stats(sim, true).ended == 10 end, 20, "5 more calls")
    local s = stats(sim)
    assert.are.equal(10, s.answered)
    assert.are.equal(10, s.hungup_by_app)
    assert.are.equal(0, s.errors)
    for line in h.read(run.log):gmatch("[^\n]+") do
      local level = line:match("^%S+ %S+ (%a+)")
      assert.is_true(level ~= "error" and (level ~= "warn" or line:find("--password", 1, true) ~= nil), line)
    end
  end)
end)
