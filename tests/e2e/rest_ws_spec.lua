-- `luari run --rest websocket`: REST requests over the events WebSocket
-- (RESTRequest out, RESTResponse back), against the simulator, which
-- answers them as Asterisk 22 does. What must hold: the same results as
-- over HTTP, HTTP when the server does not answer there, and no request
-- left waiting when a reply cannot come.

local h = require "e2e.helper"

local SCRIPT = "tests/e2e/faults/rest_ws.lua"

local FLOWS = {
  -- Values that need escaping both in the uri and in the JSON body.
  roundtrip = [[
local ari = require "luari.ari"
local json = require "luari.json"
local luari = require "luari"
local TRICKY = 'a "quoted" \\ back\tslash\nline é ✓ & = ? / %20 + #'
return function(call)
  call:answer()
  local r = {}
  local ok, err = ari.channels.setChannelVar(call.id, { variable = "TRICKY", value = TRICKY })
  r.set = ok ~= nil or tostring(err)
  local v = ari.channels.getChannelVar(call.id, { variable = "TRICKY" })
  r.query_roundtrip = v ~= nil and v.value == TRICKY
  local ch, oerr = ari.channels.originate({ endpoint = "PJSIP/200", app = "luari", variables = { BODYVAR = TRICKY } })
  r.originated = ch ~= nil or tostring(oerr)
  if ch then
    local bv = ari.channels.getChannelVar(ch.id, { variable = "BODYVAR" })
    r.body_roundtrip = bv ~= nil and bv.value == TRICKY
    ari.channels.hangup(ch.id)
  end
  local _, nf = ari.channels.getChannelVar("no-such-channel", { variable = "X" })
  r.missing_code, r.missing_status = nf and nf.code, nf and nf.status
  local _, ferr = ari.recordings.getStoredFile("no-such-recording")
  r.file_code = ferr and ferr.code
  call:play("sound:hello-world")
  luari.log.info("RESULT %s", json.encode(r))
end
]],
  -- Bodies a WebSocket frame cannot carry: not UTF-8, and over 64 KB.
  oddbodies = [[
local ari = require "luari.ari"
local json = require "luari.json"
local luari = require "luari"
return function(call)
  call:answer()
  local a, aerr = ari.channels.originate({ endpoint = "PJSIP/201", app = "luari", variables = { NAME = "Jos\233" } })
  local b, berr = ari.channels.originate({ endpoint = "PJSIP/202", app = "luari",
    variables = { BIG = string.rep("x", 70000) } })
  luari.log.info("RESULT %s", json.encode({ latin1 = a and "ok" or aerr.code, big = b and "ok" or berr.code }))
  for _, ch in ipairs({ a or false, b or false }) do
    if ch then ari.channels.hangup(ch.id) end
  end
end
]],
  -- A request waiting on luari's WebSocket while another events connection fails.
  other = [[
local http = require "luari.http"
local events = require "luari.events"
local luari = require "luari"
return function(call)
  call:answer()
  local got
  http.request("GET", { "asterisk", "info" }, nil, nil, 3, function(status, _, err)
    got = err or status
  end)
  local ev = events.start({ url = "http://127.0.0.1:1/ari", apps = "other", backoff_max = 60 })
  while got == nil do
    call:sleep(0.1)
  end
  ev:close()
  luari.log.info("RESULT {\"other\": %q}", tostring(got))
end
]],
  -- One request when a key is pressed; reports the outcome and the time.
  asker = [[
local ari = require "luari.ari"
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"waiting\": true}")
  call:read_digits({ timeout = 60 })
  local t0 = luari.now()
  local info, err = ari.asterisk.getInfo()
  luari.log.info("RESULT {\"ok\": %s, \"code\": %q, \"took\": %.3f}", tostring(info ~= nil),
    tostring(err and err.code), luari.now() - t0)
  call:read_digits({ timeout = 60 })
  info, err = ari.asterisk.getInfo()
  luari.log.info("RESULT {\"again\": %s, \"code\": %q}", tostring(info ~= nil), tostring(err and err.code))
end
]],
}

local function start(mode, extra)
  local sim = h.start_sim({ args = { "--script", SCRIPT } })
  if mode then
    assert.are.equal(200, (h.http("POST", sim.base .. "/sim/fault/restws", { mode = mode })))
  end
  local args = { "--rest", "websocket", "--reconnect-max", "0.5" }
  for _, a in ipairs(extra or {}) do
    args[#args + 1] = a
  end
  local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info", args = args })
  h.wait_log(run, "connected to Asterisk", 10, true)
  return sim, run
end

local result_with, press = h.last_result, h.press

-- The journal's entries for paths containing `part`.
local function requests(sim, part)
  local out = {}
  for _, r in ipairs(h.journal(sim)) do
    if r.path:find(part, 1, true) then
      out[#out + 1] = r
    end
  end
  return out
end

local function waiting_call(sim, run)
  return h.waiting_call(sim, run, "asker")
end

describe("luari run --rest websocket", function()
  after_each(h.stop_all)

  it("sends the requests over the events WebSocket, with the same results as over HTTP", function()
    local sim, run = start()
    h.wait_log(run, "REST requests go over the events WebSocket", 10, true)
    local id = h.call(sim, { args = { "roundtrip" } })
    local r = result_with(run, "set")
    assert.is_true(r.set)
    assert.is_true(r.query_roundtrip)
    assert.is_true(r.originated)
    assert.is_true(r.body_roundtrip)
    assert.are.equal("not_found", r.missing_code)
    assert.are.equal(404, r.missing_status)
    h.wait_for(function()
      return h.http("GET", sim.base .. "/sim/channels/" .. id) == 404
    end, 10, "the call to be hung up")
    for _, part in ipairs({ "/answer", "/variable", "/play", "/ari/channels/" .. id }) do
      local list = requests(sim, part)
      assert.is_true(#list > 0, part)
      for _, req in ipairs(list) do
        assert.is_true(req.websocket == true, req.method .. " " .. req.path .. " went over HTTP")
      end
    end
    local originate = requests(sim, "/ari/channels")
    local found
    for _, req in ipairs(originate) do
      if req.method == "POST" and req.path == "/ari/channels" then
        found = req
      end
    end
    assert.is_truthy(found, "the originate request")
    assert.is_true(found.websocket == true)
    -- Audio cannot come over the WebSocket: a stored recording's file is fetched over HTTP.
    assert.are.equal("not_found", r.file_code)
    local files = requests(sim, "/ari/recordings/stored/no-such-recording/file")
    assert.are.equal(1, #files)
    assert.is_nil(files[1].websocket)
    assert.is_false(h.log_has(run, "%] error"), h.read(run.log))
  end)

  it("an Asterisk that does not answer there: one warning, and the requests go over HTTP", function()
    local sim, run = start("ignore", { "--timeout", "1" })
    h.wait_log(run, "did not answer REST over the events WebSocket", 10, true)
    assert.is_true(h.log_has(run, "it needs Asterisk 20.14, 21.9, 22.4 or later", true))
    local id = h.call(sim, { args = { "roundtrip" } })
    local r = result_with(run, "set")
    assert.is_true(r.query_roundtrip)
    assert.is_true(r.body_roundtrip)
    local answers = requests(sim, "/channels/" .. id .. "/answer")
    assert.are.equal(1, #answers)
    assert.is_nil(answers[1].websocket)
    -- It asks again (every three --timeout periods): once answered, the WebSocket carries them.
    assert.are.equal(200, (h.http("POST", sim.base .. "/sim/fault/restws", { mode = "normal" })))
    h.wait_log(run, "REST requests go over the events WebSocket", 10, true)
    local again = h.call(sim, { args = { "roundtrip" } })
    h.wait_for(function() return #requests(sim, "/channels/" .. again .. "/answer") == 1 end, 10, "the answer")
    assert.is_true(requests(sim, "/channels/" .. again .. "/answer")[1].websocket == true)
    assert.are.equal(1, h.count_log(run, "did not answer REST over the events WebSocket"))
  end)

  it("an Asterisk that never answers there is asked by one round of pings, also after reconnects", function()
    local sim, run = start("ignore", { "--timeout", "1" })
    h.wait_log(run, "did not answer REST over the events WebSocket", 10, true)
    for n = 2, 4 do
      h.http("POST", sim.base .. "/sim/drop")
      h.wait_for(function() return h.count_log(run, "connected to Asterisk") >= n end, 10, "reconnect " .. n)
      h.sleep(1.6)
    end
    local function seen()
      local _, r = h.http("POST", sim.base .. "/sim/fault/restws", {})
      return r.seen
    end
    local before = seen()
    h.sleep(6)
    -- One round: a ping, 1 s without a reply, 3 s until the next: two at most in 6 s.
    local pings = seen() - before
    assert.is_true(pings >= 1 and pings <= 2, tostring(pings) .. " pings in 6 s")
  end)

  it("a reply that never comes: the request times out after --timeout, the call goes on", function()
    local sim, run = start(nil, { "--timeout", "1" })
    h.wait_log(run, "REST requests go over the events WebSocket", 10, true)
    local id = waiting_call(sim, run)
    assert.are.equal(200, (h.http("POST", sim.base .. "/sim/fault/restws", { mode = "silent", match = "asterisk/info" })))
    press(sim, id, "1")
    local r = result_with(run, "took")
    assert.is_false(r.ok)
    assert.are.equal("timeout", r.code)
    assert.is_true(r.took >= 0.9 and r.took < 3, tostring(r.took))
    press(sim, id, "2")
    local again = result_with(run, "again")
    assert.is_true(again.again, again.code)
  end)

  it("the WebSocket drops with a request waiting: conn_lost at once, then back over the WebSocket", function()
    local sim, run = start()
    h.wait_log(run, "REST requests go over the events WebSocket", 10, true)
    local id = waiting_call(sim, run)
    assert.are.equal(200, (h.http("POST", sim.base .. "/sim/fault/restws", { mode = "drop", match = "asterisk/info" })))
    press(sim, id, "1")
    local r = result_with(run, "took")
    assert.is_false(r.ok)
    assert.are.equal("conn_lost", r.code)
    assert.is_true(r.took < 5, tostring(r.took)) -- not the 10 s timeout
    h.wait_for(function() return h.count_log(run, "connected to Asterisk") >= 2 end, 10, "a reconnect")
    h.wait_for(function()
      return #requests(sim, "/ari/asterisk/ping") >= 2
    end, 10, "the second ping over the WebSocket")
    h.clear_journal(sim)
    press(sim, id, "2")
    local again = result_with(run, "again")
    assert.is_true(again.again, again.code)
    local infos = requests(sim, "/ari/asterisk/info")
    assert.are.equal(1, #infos)
    assert.is_true(infos[1].websocket == true)
    -- Said once, not on every reconnect.
    assert.are.equal(1, h.count_log(run, "REST requests go over the events WebSocket"))
  end)

  it("a body not in UTF-8, or too big for a frame, goes over HTTP; the WebSocket stays", function()
    local sim, run = start()
    h.wait_log(run, "REST requests go over the events WebSocket", 10, true)
    h.call(sim, { args = { "oddbodies" } })
    local r = result_with(run, "latin1")
    assert.are.equal("ok", r.big)
    assert.are.equal("ok", r.latin1)
    local originates = 0
    for _, req in ipairs(requests(sim, "/ari/channels")) do
      if req.method == "POST" and req.path == "/ari/channels" then
        originates = originates + 1
        assert.is_nil(req.websocket)
      end
    end
    assert.are.equal(2, originates)
    assert.are.equal(1, h.count_log(run, "connected to Asterisk"))
  end)

  it("another events connection going down leaves the requests on this one waiting", function()
    local sim, run = start()
    h.wait_log(run, "REST requests go over the events WebSocket", 10, true)
    assert.are.equal(200, (h.http("POST", sim.base .. "/sim/fault/restws", { mode = "silent", match = "asterisk/info" })))
    h.call(sim, { args = { "other" } })
    local r = result_with(run, "other")
    assert.are.equal("timeout", r.other) -- not conn_lost: that connection was not this request's
  end)

  it("--rest takes only http or websocket", function()
    local run = h.start_run_args({ "run", "--rest", "carrier-pigeon", "flows" })
    local code = h.wait_exit(run, 10)
    assert.are.equal(2, code)
    assert.is_true(h.log_has(run, "--rest", true), h.read(run.log))
  end)
end)
