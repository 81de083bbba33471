-- End to end: the calls benchmark of `make bench` (tests/bench/calls.lua),
-- small and unpinned, so that it cannot rot between benchmark runs: it
-- runs luari against the simulator, checks every call, and prints the
-- loopback floor (tests/bench/floor.lua) beside the latency it bounds.
-- Nothing here judges the figures: benchmarks print them.

local h = require "e2e.helper"
local testkit = require "testkit"

describe("calls benchmark", function()
  local out

  setup(function()
    out = testkit.sh(string.format(
      "luajit tests/bench/calls.lua --bin %s --calls 100 --rate 200 --rounds 1 --park 50 --clients luari,luari-ws --pin none 2>&1",
      h.quote(h.bin)))
  end)

  it("runs both kinds of run and finds every call answered and hung up", function()
    assert.truthy(out:find("== 100 calls at 200/s", 1, true), out)
    assert.truthy(out:find("== 50 calls parked at once", 1, true), out)
    assert.truthy(out:find("calls bench: every call answered and hung up, no error", 1, true), out)
  end)

  it("prints the loopback floor, p50 no higher than p99", function()
    local p50, p99 = out:match("floor p50/p99 ms%s+([%d.]+)/([%d.]+)")
    p50, p99 = tonumber(p50), tonumber(p99)
    assert.is_number(p50, out)
    assert.is_true(p50 > 0 and p50 <= p99, out)
  end)

  it("prints the answer latency and CPU of luari, over HTTP and over the WebSocket, for the calls run", function()
    local section = out:match("== 100 calls.-\n\n") or ""
    assert.truthy(section:find("luari%s+luari%-ws"), out)
    for _, label in ipairs({ "answer latency p99 ms", "CPU s per 1,000 calls" }) do
      local http, ws = section:match(label .. "%s+([%d.]+)%s+([%d.]+)")
      assert.is_number(tonumber(http), label .. "\n" .. out)
      assert.is_number(tonumber(ws), label .. "\n" .. out)
    end
  end)
end)
