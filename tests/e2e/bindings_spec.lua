-- End to end: the C bindings inside the host, through a `luari sim-server
-- --script` that exercises them before the server starts and logs what it
-- found.

local h = require "e2e.helper"

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
  it("a server that cannot listen lets go of its callbacks", function()
    local path = h.tmpdir() .. "/refcheck.lua"
    local f = assert(io.open(path, "w"))
    f:write(SCRIPT)
    f:close()
    local sim = h.start_sim({ args = { "--script", path, "--log-level", "info" } })
    h.wait_log(sim, "REFCHECK", 10, true)
    local failures, before, after = h.read(sim.log):match("REFCHECK failures=(%d+) before=(%d+) after=(%d+)")
    assert.are.equal("50", failures)
    assert.are.equal(before, after)
  end)
end)
