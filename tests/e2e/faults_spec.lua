-- Fault injection: bad input from the network, a simulator that answers
-- 500, late or cut-short replies. Every case: a logged (and counted)
-- error, no crash, no call lost, every flow ends with the documented
-- result.

local h = require "e2e.helper"

local SCRIPT = "tests/e2e/faults/inject.lua"

local FLOWS = {
  -- Waits for a key; what it gets is the test's result.
  waiter = [[
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"waiting\": true}")
  local digits, why = call:read_digits({ timeout = 30 })
  luari.log.info("RESULT {\"digits\": %q, \"why\": %q}", tostring(digits), tostring(why))
end
]],
  -- One REST request when a key is pressed; reports the outcome and time.
  asker = [[
local ari = require "luari.ari"
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"waiting\": true}")
  call:read_digits({ timeout = 60 })
  local t0 = luari.now()
  local info, err = ari.asterisk.getInfo()
  luari.log.info("RESULT {\"ok\": %s, \"code\": %q, \"status\": %q, \"text\": %q, \"took\": %.3f}",
    tostring(info ~= nil), tostring(err and err.code), tostring(err and err.status), tostring(err),
    luari.now() - t0)
end
]],
  -- Sixteen requests at once when a key is pressed; reports the first error.
  crowd = [[
local ari = require "luari.ari"
local json = require "luari.json"
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"waiting\": true}")
  call:read_digits({ timeout = 60 })
  local errors, done = {}, 0
  for _ = 1, 16 do
    luari.spawn(function()
      local info, err = ari.asterisk.getInfo()
      if not info then
        errors[#errors + 1] = tostring(err)
      end
      done = done + 1
    end)
  end
  while done < 16 do
    call:sleep(0.05)
  end
  luari.log.info("RESULT %s", json.encode({ failed = #errors, first = errors[1] or "" }))
end
]],
}

local function start(args)
  local sim = h.start_sim({ args = { "--script", SCRIPT } })
  local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info",
    args = args or { "--reconnect-max", "0.5", "--metrics", "127.0.0.1:0" } })
  h.wait_log(run, "connected to Asterisk", 10, true)
  return sim, run
end

local waiting_call, press, last_result = h.waiting_call, h.press, h.last_result

local function fault(sim, path, body)
  local status, res = h.http("POST", sim.base .. path, body)
  assert.are.equal(200, status, tostring(res))
end

local function metric(run, series)
  local port = h.read(run.log):match("metrics on http://127%.0%.0%.1:(%d+)/metrics")
  local p = io.popen("curl -s http://127.0.0.1:" .. port .. "/metrics")
  local text = "\n" .. p:read("*a")
  p:close()
  return tonumber(text:match("\n" .. series:gsub("[%p]", "%%%0") .. " (%d+)"))
end

describe("bad input on the events WebSocket", function()
  after_each(h.stop_all)

  local cases = {
    { kind = "malformed", log = "malformed event dropped", metric = 'luari_events_dropped_total{reason="malformed_json"}' },
    { kind = "untyped", log = 'malformed event dropped (no "type": not an ARI event): [1, 2, 3]',
      metric = 'luari_events_dropped_total{reason="malformed_json"}' },
    { kind = "binary", log = "binary frame", metric = 'luari_events_dropped_total{reason="binary_frame"}' },
    { kind = "unknown_channel", metric = "luari_events_unrouted_total" },
  }
  for _, c in ipairs(cases) do
    it(c.kind .. ": logged and counted; the call goes on and gets its keys", function()
      local sim, run = start()
      local id = waiting_call(sim, run, "waiter")
      fault(sim, "/sim/fault/ws", { kind = c.kind })
      if c.log then
        h.wait_log(run, c.log, 10, true)
      end
      press(sim, id, "7")
      local r = last_result(run, "digits")
      assert.are.equal("7", r.digits)
      assert.are.equal(1, metric(run, c.metric))
      assert.is_false(h.log_has(run, "ARI unavailable", true))
      assert.is_true(h.alive(run))
    end)
  end

  local dropping = {
    oversized = "over the size limit (closed with 1009; luari run --max-event-size raises it)",
    utf8 = "not UTF-8 (closed with 1007)",
    midframe = "the server closed the connection",
  }
  for kind, why in pairs(dropping) do
    it(kind .. ": the connection is dropped and comes back; the call goes on", function()
      local sim, run = start({ "--reconnect-max", "0.5", "--max-event-size", "100000" })
      local id = waiting_call(sim, run, "waiter")
      fault(sim, "/sim/fault/ws", { kind = kind, size = 200000 })
      h.wait_log(run, "ARI unavailable", 10, true)
      assert.is_true(h.log_has(run, why, true), h.read(run.log))
      h.wait_for(function() return h.count_log(run, "connected to Asterisk") >= 2 end, 10, "a reconnect")
      h.wait_log(run, "checking 1 live call", 10, true)
      press(sim, id, "8")
      local r = last_result(run, "digits")
      assert.are.equal("8", r.digits)
    end)
  end
end)

describe("faulty REST replies", function()
  after_each(h.stop_all)

  it("luari's own hangup is tried again after a 500: the caller is not left in Stasis", function()
    local sim, run = start()
    local id = waiting_call(sim, run, "waiter")
    fault(sim, "/sim/fault/rest", { match = "/ari/channels/" .. id, method = "DELETE", status = 500, count = 2 })
    press(sim, id, "7") -- the flow returns: luari hangs up the call
    h.wait_for(function()
      return h.http("GET", sim.base .. "/sim/channels/" .. id) == 404
    end, 10, "the channel to be hung up after two failed tries")
    assert.is_false(h.log_has(run, "could not hang up", true), h.read(run.log))
  end)

  it("says so when the WebSocket is let in but REST is refused (a password changed since)", function()
    local sim = h.start_sim({ args = { "--script", SCRIPT } })
    fault(sim, "/sim/fault/rest", { match = "/ari/asterisk/info", status = 401,
      message = "Authentication required" })
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info" })
    h.wait_log(run, "REST: getInfo: 401 Authentication required (check --user/--password", 10, true)
    assert.is_true(h.log_has(run, "connected to Asterisk (version unknown)", true))
  end)

  it("a 500 is nil, err with code server_error", function()
    local sim, run = start()
    local id = waiting_call(sim, run, "asker")
    fault(sim, "/sim/fault/rest", { match = "/ari/asterisk/info", status = 500, message = "boom" })
    press(sim, id, "1")
    local r = last_result(run, "ok")
    assert.is_false(r.ok)
    assert.are.equal("server_error", r.code)
    assert.are.equal("500", r.status)
    assert.are.equal("getInfo: 500 boom", r.text)
  end)

  -- The asker's getInfo answered 4 s late, under `--timeout seconds`.
  local function late_reply(seconds)
    local sim, run = start({ "--timeout", seconds })
    local id = waiting_call(sim, run, "asker")
    fault(sim, "/sim/fault/rest", { match = "/ari/asterisk/info", delay = 4 })
    press(sim, id, "1")
    return last_result(run, "ok")
  end

  it("a reply later than --timeout is nil, err with code timeout, on time", function()
    local r = late_reply("1")
    assert.is_false(r.ok)
    assert.are.equal("timeout", r.code)
    assert.is_true(r.took >= 0.9 and r.took < 2.5, "took " .. r.took)
  end)

  it("a --timeout under a millisecond is kept, not read as none (curl's 0)", function()
    local r = late_reply("0.0004")
    assert.is_false(r.ok)
    assert.are.equal("timeout", r.code)
    assert.is_true(r.took < 1, "took " .. r.took)
  end)

  it("a reply cut short is nil, err with code conn_lost", function()
    local sim, run = start()
    local id = waiting_call(sim, run, "asker")
    fault(sim, "/sim/fault/rest", { match = "/ari/asterisk/info", truncate = 20 })
    press(sim, id, "1")
    local r = last_result(run, "ok")
    assert.is_false(r.ok)
    assert.are.equal("conn_lost", r.code)
  end)

  it("with Asterisk gone, a request is nil, err with code conn_lost at once", function()
    local sim, run = start()
    local id = waiting_call(sim, run, "asker")
    -- The key press reaches luari, then Asterisk dies before the flow asks.
    fault(sim, "/sim/fault/rest", { match = "/ari/asterisk/info", delay = 30 })
    press(sim, id, "1")
    h.sleep(1)
    h.signal(sim, "KILL")
    local r = last_result(run, "ok")
    assert.is_false(r.ok)
    assert.are.equal("conn_lost", r.code)
  end)
end)

describe("operations whose end came while events were down", function()
  after_each(h.stop_all)

  local FLOWS2 = {
    recorder = [[
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"waiting\": true}")
  local rec, why = call:record("resync-" .. call.id, { terminateOn = "#", ifExists = "overwrite" })
  luari.log.info("RESULT {\"recorded\": %q, \"why\": %q, \"duration\": %s, \"estimated\": %s}",
    tostring(rec and rec.name), tostring(why), tostring(rec and rec.duration), tostring(rec and rec.duration_estimated))
end
]],
    player = [[
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"waiting\": true}")
  local ok, why = call:play("sound:hello-world")
  luari.log.info("RESULT {\"played\": %s, \"why\": %q}", tostring(ok), tostring(why))
end
]],
  }

  local function setup_run()
    local sim = h.start_sim({ args = { "--script", SCRIPT } })
    local run = h.start_run(h.flows(FLOWS2), { url = sim.url, log_level = "info",
      args = { "--reconnect-max", "0.5" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    return sim, run
  end

  it("a recording that ended while events were down is found after the reconnect", function()
    local sim, run = setup_run()
    local id = waiting_call(sim, run, "recorder")
    h.sleep(0.3)
    fault(sim, "/sim/fault/ws-refuse", { seconds = 2 })
    fault(sim, "/sim/drop", {})
    press(sim, id, "#") -- ends the recording: its RecordingFinished has nowhere to go
    local r = last_result(run, "recorded")
    assert.are.equal("resync-" .. id, r.recorded)
    assert.are.equal("number", type(r.duration))
    assert.is_true(r.estimated)
    assert.is_true(h.count_log(run, "connected to Asterisk") >= 2)
  end)

  it("a playback that ended while events were down is done after the reconnect", function()
    local sim, run = setup_run()
    waiting_call(sim, run, "player")
    fault(sim, "/sim/fault/ws-refuse", { seconds = 3 })
    fault(sim, "/sim/drop", {})
    local r = last_result(run, "played")
    assert.are.equal("true", tostring(r.played))
    assert.is_true(h.count_log(run, "connected to Asterisk") >= 2)
  end)
end)

describe("a server that accepts the events WebSocket and ends it at once", function()
  after_each(h.stop_all)

  it("is retried with a growing wait, and its cause told once", function()
    local sim = h.start_sim({ args = { "--script", SCRIPT } })
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info",
      args = { "--reconnect-max", "2" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.sleep(2.5) -- a connection that lasted: the first retry comes at once
    fault(sim, "/sim/fault/ws-slam", { seconds = 6 })
    fault(sim, "/sim/drop", {})
    h.sleep(6)
    local _, counts = h.http("GET", sim.base .. "/sim/fault/ws-slam")
    -- Waits of 0.5, 1, 2, 2 s (each +-20%): four or five in six seconds;
    -- a retry every 0.5 s would be a dozen.
    assert.is_true(counts.slammed >= 2 and counts.slammed <= 6, "slammed " .. counts.slammed)
    assert.is_true(h.count_log(run, "ARI unavailable") <= 2, h.read(run.log))
    -- Then a connection that lasts: a call goes through.
    h.wait_for(function()
      return (h.http("POST", sim.base .. "/sim/calls", { args = { "waiter" } })) == 200
    end, 10, "a call the events WebSocket takes")
    h.wait_log(run, "\"waiting\": true", 10, true)
    assert.is_true(h.alive(run))
  end)
end)

describe("out of file descriptors", function()
  after_each(h.stop_all)

  it("a request that cannot get a socket says why, and luari goes on", function()
    -- The simulator closes idle connections after 1 s, so that every request
    -- below needs a new socket; then luari may open no descriptor at all
    -- (those it has keep working).
    local sim = h.start_sim({ args = { "--script", SCRIPT, "--http-keepalive", "1" } })
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info" })
    h.wait_log(run, "connected to Asterisk", 10, true)
    local id = waiting_call(sim, run, "crowd")
    h.sleep(1.5)
    os.execute(string.format("prlimit --pid %d --nofile=3:3", run.pid))
    press(sim, id, "1")
    local r = last_result(run, "failed")
    assert.are.equal(16, r.failed, h.read(run.log))
    assert.truthy(r.first:find("Too many open files", 1, true), r.first)
    assert.is_true(h.alive(run))
  end)
end)
