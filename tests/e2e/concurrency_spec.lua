-- 500 calls at once through `luari run` and the network simulator: every
-- call completes; a flow that throws and one that loops forever disturb
-- nobody else.

local h = require "e2e.helper"

local FLOWS = {
  hello = [[
local luari = require "luari"
return function(call)
  call:answer()
  local ok, why = call:play("sound:beep")
  luari.log.info("RESULT {\"done\": %s}", tostring(ok == true))
  call:hangup()
end
]],
  throws = [[
return function(call)
  call:answer()
  error("this flow is broken on purpose")
end
]],
  loops = [[
return function(call)
  call:answer()
  local x = 0
  while true do x = x + 1 end
end
]],
}

-- Places n simulated calls with one curl process (parallel transfers).
local function place_calls(sim, n, flow)
  local file = h.tmpdir() .. "/curl-" .. flow .. ".cfg"
  local f = io.open(file, "w")
  for i = 1, n do
    f:write(string.format('url = "%s/sim/calls"\nrequest = "POST"\nuser = "%s:%s"\n'
      .. 'header = "Content-Type: application/json"\ndata = "{\\"args\\":[\\"%s\\"]}"\n'
      .. 'output = "/dev/null"\n', sim.base, h.user, h.password, flow))
    if i < n then
      f:write("next\n")
    end
  end
  f:close()
  assert(os.execute("curl -s --no-progress-meter --parallel --parallel-max 50 -K " .. file) == 0)
end

describe("many calls at once", function()
  after_each(h.stop_all)

  it("500 calls complete while one flow throws and one loops forever", function()
    local sim = h.start_sim()
    local run = h.start_run(h.flows(FLOWS), { url = sim.url, log_level = "info",
      args = { "--instruction-budget", "5000000" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    place_calls(sim, 1, "throws")
    place_calls(sim, 1, "loops")
    place_calls(sim, 498, "hello")
    h.wait_for(function() return #h.results(run) >= 498 end, 60, "498 calls to complete")
    h.sleep(0.5)
    local results = h.results(run)
    local done = 0
    for _, r in ipairs(results) do
      if r.done then
        done = done + 1
      end
    end
    assert.are.equal(498, done)
    local log = h.read(run.log)
    assert.truthy(log:find("flow failed: .-this flow is broken on purpose"), "the throwing flow's error is logged")
    assert.truthy(log:find("flow failed: .-instruction budget exceeded"), "the looping flow is stopped")
    assert.truthy(log:find("%[call=[^%]]*flow=throws%]") or log:find("%[flow=throws call="), "with call id and flow name")
    assert.truthy(log:find("stack traceback", 1, true), "with a traceback")
    assert.is_true(h.alive(run))
    -- every channel of every call is gone: nothing left behind
    h.wait_for(function()
      local _, chans = h.http("GET", sim.url .. "/channels")
      return type(chans) == "table" and #chans == 0
    end, 10, "all channels to be hung up")
  end)
end)
