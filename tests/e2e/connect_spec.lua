-- End to end: `luari run` against `luari sim-server` on loopback.

local h = require "e2e.helper"

local STACK_FLOW = [[
local ari = require "luari.ari"
local luari = require "luari"
local json = require "cjson"
return function(call)
  local info, e1 = ari.asterisk.getInfo()
  local list, e2 = ari.channels.list()
  local ch, e3 = ari.channels.get(call.id)
  local answered, e4 = ari.channels.answer(call.id)
  local missing, e5 = ari.channels.get("no-such-channel")
  local hung, e6 = ari.channels.hangup(call.id)
  luari.log.info("RESULT %s", json.encode({
    version = info and info.system and info.system.version,
    listed = type(list) == "table" and #list or -1,
    state = ch and ch.state,
    answered = answered,
    missing_code = e5 and e5.code, missing_status = e5 and e5.status,
    missing_text = tostring(e5),
    hung = hung,
    errors = { tostring(e1), tostring(e2), tostring(e3), tostring(e4), tostring(e6) },
  }))
end
]]

-- What STACK_FLOW reported, checked; `state`: the channel's state when the
-- flow got it. Each event type is logged at debug level (StasisEnd may
-- come over the WebSocket after the hangup's reply, so after the RESULT).
local function check_stack_result(run, state)
  local r = h.results(run)[1]
  assert.is_true(r.listed >= 1)
  assert.are.equal(state, r.state)
  assert.is_true(r.answered)
  assert.are.equal("not_found", r.missing_code)
  assert.are.equal(404, r.missing_status)
  assert.are.equal("get: 404 Channel not found", r.missing_text)
  assert.is_true(r.hung)
  h.wait_log(run, "event StasisStart", 5, true)
  h.wait_log(run, "event StasisEnd", 5, true)
  return r
end

describe("luari run against luari sim-server", function()
  after_each(h.stop_all)

  it("connects, receives events and makes REST calls through the whole stack (ARI_URL's Asterisk if given)",
    function()
      local ari = h.ari()
      local run = h.start_run(h.flows({ stack = STACK_FLOW }), { url = ari.url, user = ari.user,
        password = ari.password })
      h.wait_log(run, "connected to Asterisk", 10, true)
      h.originate(ari, { "stack" })
      h.wait_log(run, "RESULT", 10, true)
      local r = check_stack_result(run, "Up")
      assert.truthy(tostring(r.version):match("^%d+%.%d+"), tostring(r.version))
    end)

  it("makes REST calls on an incoming call, and sends credentials only in a header", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows({ stack = STACK_FLOW }), { url = sim.url })
    h.wait_log(run, "connected to Asterisk 22.10.1 at " .. sim.url, 10, true)
    h.call(sim, { args = { "stack" }, caller = "+15551234" })
    h.wait_log(run, "RESULT", 10, true)
    local r = check_stack_result(run, "Ring")
    assert.are.equal("22.10.1", r.version)
    h.wait_log(run, "event ChannelStateChange", 5, true)
    -- the requests went out as ARI expects, with credentials only in a header
    local journal = h.journal(sim)
    local seen = {}
    for _, req in ipairs(journal) do
      seen[req.method .. " " .. req.path] = true
      assert.is_nil(req.path:find("api_key", 1, true))
    end
    assert.is_true(seen["GET /ari/asterisk/info"])
    assert.is_true(seen["GET /ari/channels"])
  end)

  it("keeps reconnecting while the server is down and carries on when it is back", function()
    local sim = h.start_sim()
    local port = sim.port
    local run = h.start_run(h.flows({ stack = STACK_FLOW }), { url = sim.url, args = { "--reconnect-max", "1" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.signal(sim, "KILL")
    h.wait_log(run, "ARI unavailable", 10, true)
    h.sleep(2.5) -- several attempts at the capped backoff
    local warnings = h.count_log(run, "ARI unavailable")
    assert.is_true(h.alive(run))
    local sim2 = h.start_sim({ port = port })
    h.wait_for(function() return h.count_log(run, "connected to Asterisk") >= 2 end, 10, "a second connect")
    -- one line per cause, not one per retry
    assert.is_true(warnings <= 2, "warnings: " .. warnings)
    h.call(sim2, { args = { "stack" } })
    h.wait_log(run, "RESULT", 10, true)
    assert.is_true(h.results(run)[1].answered)
  end)

  it("a wrong password is one clear error naming the URL and the 401, and luari exits", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows({ stack = STACK_FLOW }), { url = sim.url, password = "wrong",
      log_level = "info" })
    local status = h.wait_exit(run, 10)
    assert.are.equal(1, status)
    local log = h.read(run.log)
    local errors = {}
    for line in log:gmatch("[^\n]+") do
      if line:find(" error ", 1, true) then
        errors[#errors + 1] = line
      end
    end
    assert.are.equal(1, #errors, log)
    assert.truthy(errors[1]:find("ws://127.0.0.1:" .. sim.port .. "/ari/events", 1, true), errors[1])
    assert.truthy(errors[1]:find("401", 1, true), errors[1])
    assert.is_nil(log:find("wrong", 1, true), "the password never appears in the log")
  end)
end)
