-- 10,000 calls through examples/menu.lua in the in-process simulator: the
-- Lua heap and the RSS come back to where they were, and nothing is left
-- in the dispatcher, the runtime or the simulated Asterisk. See
-- tests/leak_menu.lua (also a script: luajit tests/leak_menu.lua N).

local leak = require "leak_menu"

local CALLS = 10000

describe("10,000 calls through the menu example", function()
  it("leave the Lua heap and the RSS where they were", function()
    local r = leak.run(CALLS)
    for line in leak.report(r, CALLS):gmatch("[^\n]+") do
      print("# " .. line)
    end
    assert.are.equal(CALLS, r.result.ended)
    assert.are.equal(0, r.result.errors, tostring(r.result.last_error))
    assert.are.same({ calls = 0, channel_owner = 0, bridge_owner = 0, active = 0, threads = 0,
      channels = 0, playbacks = 0, bridges = 0 }, r.leftovers)
    assert.is_true(r.finish.heap - r.start.heap <= leak.HEAP_TOLERANCE_KB,
      string.format("Lua heap grew by %.0f KB", r.finish.heap - r.start.heap))
    assert.is_true(r.finish.rss - r.start.rss <= leak.RSS_TOLERANCE_KB,
      string.format("RSS grew by %d KB", r.finish.rss - r.start.rss))
  end)
end)
