-- End to end: the C bindings inside the host, through a `luari sim-server
-- --script` that exercises them before the server starts and logs what it
-- found.

local h = require "e2e.helper"
local testkit = require "testkit"

-- Registry slots holding a function: the callbacks bindings keep.
local SCRIPT = [[
local simserver = require "luari.simserver"
local loop = require "luari.loop"

local function callbacks_held()
  local n = 0
  for _, v in pairs(debug.getregistry()) do
    if type(v) == "function" then
      n = n + 1
    end
  end
  return n
end

local function callbacks()
  return {
    on_request = function() end, on_ws_open = function() end,
    on_ws_message = function() end, on_ws_close = function() end,
  }
end

return function()
  local first = callbacks()
  first.port = 0
  local srv = assert(simserver.listen(first))
  collectgarbage("collect")
  local before = callbacks_held()
  local failures = 0
  for _ = 1, 50 do
    local opts = callbacks()
    opts.port = srv:port()
    local s, err = simserver.listen(opts)
    if not s and err then
      failures = failures + 1
    end
  end
  collectgarbage("collect")
  collectgarbage("collect")
  loop.log("info", string.format("REFCHECK failures=%d before=%d after=%d", failures, before,
    callbacks_held()))
  srv:close()
end
]]

describe("bindings", function()
  after_each(h.stop_all)

  it("a server that cannot listen lets go of its callbacks", function()
    local path = h.flows({ refcheck = SCRIPT }) .. "/refcheck.lua"
    local sim = h.start_sim({ args = { "--script", path, "--log-level", "info" } })
    h.wait_log(sim, "REFCHECK", 10, true)
    local failures, before, after = h.read(sim.log):match("REFCHECK failures=(%d+) before=(%d+) after=(%d+)")
    assert.are.equal("50", failures)
    assert.are.equal(before, after)
  end)

  -- Debian 12's LuaJIT trace compiler crashed `luari run` in the soak
  -- benchmark: the host runs its Lua, and the flows, interpreted.
  it("runs Lua without LuaJIT's trace compiler, in every command", function()
    local dir = h.flows({
      flow = [[
local luari = require "luari"
return function(call)
  luari.log.info("JIT_STATUS %s", tostring((jit.status())))
  call:hangup()
end
]],
      server = [[
local loop = require "luari.loop"
return function()
  loop.log("info", "JIT_STATUS " .. tostring((jit.status())))
end
]],
    })
    local out = testkit.sh(h.quote(h.bin) .. " sim " .. h.quote(dir .. "/flow.lua") .. " 2>&1")
    assert.truthy(out:find("JIT_STATUS false", 1, true), out)
    local sim = h.start_sim({ args = { "--script", dir .. "/server.lua", "--log-level", "info" } })
    h.wait_log(sim, "JIT_STATUS", 10, true)
    assert.truthy(h.log_has(sim, "JIT_STATUS false", true), h.read(sim.log))
  end)
end)
