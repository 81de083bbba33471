-- End to end: what `luari run` says about its flows, for an operator: a
-- --default-flow that FLOWS does not have, flow lists kept short when
-- there are thousands, the unknown-flow error carrying the call id as a
-- field, and log lines that always read "[call=... flow=...]".

local h = require "e2e.helper"
local json = require "cjson"

local function many_flows(n)
  local files = {}
  for i = 1, n do
    files["f" .. i] = [[
local luari = require "luari"
return function(call)
  luari.log.info("hello from a flow")
end
]]
  end
  return h.flows(files)
end

describe("luari run's messages about flows", function()
  after_each(h.stop_all)

  it("warns at start about a --default-flow FLOWS does not have, and keeps flow lists short", function()
    local sim = h.start_sim()
    local run = h.start_run(many_flows(30), { url = sim.url, log_level = "info",
      args = { "--default-flow", "nope" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    local log = h.read(run.log)
    assert.truthy(log:find("--default-flow nope: FLOWS has no such flow", 1, true), log)
    assert.truthy(log:find("luari: flows f1, f10, f11, .-%(30 in all%) from "), log)
  end)

  it("logs an unknown flow once per call, with the call id as a field and a short list", function()
    local sim = h.start_sim()
    local run = h.start_run(many_flows(30), { url = sim.url, log_level = "info",
      args = { "--log-format", "json" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    local id = h.call(sim, { args = { "zzz" } })
    h.wait_log(run, "unknown flow 'zzz'", 10, true)
    local found
    for line in h.read(run.log):gmatch("[^\n]+") do
      local rec = json.decode(line)
      if rec.msg:find("unknown flow 'zzz'", 1, true) then
        found = rec
      end
    end
    assert.are.equal(id, found.call)
    assert.truthy(found.msg:find("(30 in all)", 1, true), found.msg)
    assert.is_true(#found.msg < 400, found.msg)
  end)

  it("puts the call before the flow in every text log line, run after run", function()
    for _ = 1, 3 do
      local sim = h.start_sim()
      local run = h.start_run(many_flows(1), { url = sim.url, log_level = "info" })
      h.wait_log(run, "connected to Asterisk", 10, true)
      local id = h.call(sim, { args = { "f1" } })
      h.wait_log(run, "hello from a flow", 10, true)
      local line = h.read(run.log):match("[^\n]*hello from a flow[^\n]*")
      assert.truthy(line:find("[call=" .. id .. " flow=f1]", 1, true), line)
      h.stop_all()
    end
  end)
end)
