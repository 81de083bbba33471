-- luari.events' drop() on a connection where nothing more comes: the
-- reader thread must tell the main loop itself (no byte will wake it), so
-- on_down comes at once and the connection reads as closed.

local h = require "e2e.helper"

local FLOW = [[
local events = require "luari.events"
local luari = require "luari"
return function(call)
  call:answer()
  local opened, down_kind, down_at = false, nil, nil
  local url = "SIM_URL"
  local ev
  ev = events.start({ url = url, apps = "quiet", user = "asterisk", password = "asterisk", backoff_max = 60,
    on_open = function() opened = true end,
    on_down = function(d) down_kind, down_at = down_kind or d.kind, down_at or luari.now() end })
  local t0 = luari.now()
  while not opened and luari.now() - t0 < 5 do call:sleep(0.05) end
  call:sleep(0.3) -- quiet: the simulator sends nothing on this connection
  local dropped_at = luari.now()
  ev:drop()
  while not down_kind and luari.now() - dropped_at < 3 do call:sleep(0.05) end
  local open_after = ev:is_open()
  ev:stop()
  luari.log.info("RESULT {\"opened\": %s, \"down\": %q, \"after\": %.3f, \"open_after\": %s}", tostring(opened),
    tostring(down_kind), down_at and down_at - dropped_at or -1, tostring(open_after))
end
]]

describe("events:drop()", function()
  after_each(h.stop_all)

  it("on a quiet connection, reports it down at once", function()
    local sim = h.start_sim()
    local flow = FLOW:gsub("SIM_URL", sim.url)
    local run = h.start_run(h.flows({ dropper = flow }), { url = sim.url, log_level = "info" })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.call(sim, { args = { "dropper" } })
    h.wait_for(function() return #h.results(run) >= 1 end, 15, "the flow to report")
    local r = h.results(run)[1]
    assert.is_true(r.opened)
    assert.are_not.equal("nil", r.down, "on_down never came")
    assert.is_true(r.after >= 0 and r.after < 1, "on_down came " .. r.after .. " s after the drop")
    assert.is_false(r.open_after)
  end)
end)
