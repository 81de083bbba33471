-- Operating luari: /metrics and /healthz move as calls run, a config file
-- (owner-only when it holds a password), the masked --print-config, JSON
-- log lines.

local h = require "e2e.helper"
local json = require "cjson"

local FLOWS = {
  hello = [[
return function(call)
  call:answer()
  call:play("sound:beep")
  call:hangup()
end
]],
  broken = [[
return function(call)
  error("broken on purpose")
end
]],
  waits = [[
local luari = require "luari"
return function(call)
  call:answer()
  luari.log.info("RESULT {\"waiting\": true}")
  call:sleep(3)
end
]],
}

local function metrics_url(run)
  local port = h.wait_for(function()
    return h.read(run.log):match("metrics on http://127%.0%.0%.1:(%d+)/metrics")
  end, 10, "the metrics server")
  return "http://127.0.0.1:" .. port
end

local function scrape(base)
  local p = io.popen("curl -s " .. base .. "/metrics")
  local text = p:read("*a")
  p:close()
  return text
end

local function value(text, series)
  local pattern = "\n" .. series:gsub("[%p]", "%%%0") .. " ([%d%.e%+]+)"
  local v = ("\n" .. text):match(pattern)
  return tonumber(v)
end

local function http_status(url)
  local p = io.popen("curl -s -o /dev/null -w '%{http_code}' " .. url)
  local code = tonumber(p:read("*a"))
  p:close()
  return code
end

describe("operating luari", function()
  after_each(h.stop_all)

  it("serves /metrics and /healthz, and the counters move with the calls", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info",
      args = { "--metrics", "127.0.0.1:0" } })
    local base = metrics_url(run)
    h.wait_log(run, "connected to Asterisk", 10, true)
    assert.are.equal(200, http_status(base .. "/healthz"))
    local before = scrape(base)
    assert.are.equal(1, value(before, "luari_ari_connected"))
    assert.is_nil(value(before, 'luari_calls_total{flow="hello"}'))
    for _ = 1, 3 do
      h.call(sim, { args = { "hello" } })
    end
    h.call(sim, { args = { "broken" } })
    h.call(sim, { args = { "waits" } })
    h.wait_log(run, "\"waiting\": true", 10, true)
    local during = scrape(base)
    assert.are.equal(1, value(during, 'luari_calls_active{flow="waits"}'))
    h.wait_for(function()
      return value(scrape(base), 'luari_calls_total{flow="hello"}') == 3
    end, 10, "three hello calls counted")
    local after = h.wait_for(function()
      local t = scrape(base)
      return value(t, 'luari_calls_active{flow="waits"}') == 0 and t
    end, 10, "the waiting call to end")
    assert.are.equal(3, value(after, 'luari_calls_total{flow="hello"}'))
    assert.are.equal(0, value(after, 'luari_calls_active{flow="hello"}'))
    assert.are.equal(1, value(after, 'luari_flow_errors_total{flow="broken"}'))
    assert.is_true(value(after, 'luari_ari_requests_total{op="channels.answer",status="204"}') >= 4)
    assert.is_true(value(after, 'luari_ari_request_seconds_count{op="channels.answer"}') >= 4)
    assert.is_true(value(after, 'luari_events_total{type="StasisStart"}') >= 5)
    assert.is_true(value(after, "luari_lua_memory_bytes") > 100000)
    assert.are.equal(1, value(after, "luari_flow_generation"))
    h.signal(sim, "KILL")
    h.wait_for(function() return http_status(base .. "/healthz") == 503 end, 10, "/healthz to say 503")
    local sim2 = h.start_sim({ port = sim.port })
    h.wait_for(function() return http_status(base .. "/healthz") == 200 end, 10, "/healthz to recover")
    assert.are.equal(1, value(scrape(base), "luari_ws_reconnects_total"))
    assert.truthy(sim2)
  end)

  it("reads a config file, refuses one others can read when it holds a password", function()
    local sim = h.start_sim()
    local flows = h.flows(FLOWS)
    local file = h.tmpdir() .. "/luari.conf.lua"
    local f = io.open(file, "w")
    f:write(string.format('return { url = %q, user = %q, password = %q, flows = %q, log_level = "info" }',
      sim.url, h.user, h.password, flows))
    f:close()
    os.execute("chmod 644 " .. file)
    local p = io.popen(h.CLEAN_ENV .. h.quote(h.bin) .. " run --config " .. file .. " 2>&1; echo exit=$?")
    local out = p:read("*a")
    p:close()
    assert.truthy(out:find("others can read it", 1, true), out)
    assert.truthy(out:find("exit=2", 1, true), out)
    assert.is_nil(out:find(h.password .. '"', 1, true))
    os.execute("chmod 600 " .. file)
    p = io.popen(h.CLEAN_ENV .. h.quote(h.bin) .. " run --config " .. file .. " --print-config --log-level debug 2>&1")
    out = p:read("*a")
    p:close()
    assert.truthy(out:find('password = "********", -- config', 1, true), out)
    assert.truthy(out:find('log_level = "debug", -- cli', 1, true), out)
    assert.truthy(out:find("-- flows: " .. flows, 1, true), out)
    local run = h.start_run_args({ "run", "--config", file })
    h.wait_log(run, "connected to Asterisk", 10, true)
  end)

  it("writes JSON log lines with the call id and flow when asked", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info",
      args = { "--log-format", "json" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.call(sim, { args = { "broken" } })
    h.wait_log(run, "broken on purpose", 10, true)
    local saw_call = false
    for line in h.read(run.log):gmatch("[^\n]+") do
      local ok, rec = pcall(json.decode, line)
      assert.is_true(ok, "not JSON: " .. line)
      assert.truthy(rec.time and rec.level and rec.msg, line)
      if rec.msg:find("broken on purpose", 1, true) then
        saw_call = rec.call ~= nil and rec.flow == "broken" and rec.level == "error"
      end
      assert.is_nil(line:find(h.password, 1, true))
    end
    assert.is_true(saw_call)
  end)
end)
