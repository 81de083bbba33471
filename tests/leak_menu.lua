-- Leak test: many calls through examples/menu.lua in the in-process
-- simulator (one world, one dispatcher, one runtime, as in `luari run`),
-- with callers that choose each branch, type ahead, barge in, press wrong
-- keys, stay silent or hang up half way. After the calls (and luari's
-- 30 s tombstones) are over, the Lua heap and the process's RSS must be
-- back where they were after a warm-up of the same traffic.
--
--   luajit tests/leak_menu.lua [CALLS]      (default 10000; from the project root)
--
-- Used by tests/spec/leak_menu_spec.lua; run it alone for other counts.

package.path = "scripts/?.lua;scripts/?/init.lua;" .. package.path

local sim = require "luari.sim"
local World = require "luari.sim.world"

local leak = {}

-- Allowed growth between the measure after the warm-up and the one after
-- all calls. The Lua heap is what luari keeps: 256 KB over 10,000 calls is
-- 26 bytes a call, so any per-call leak shows. The RSS also holds the
-- allocator's free pages and the JIT's machine code, which grow a little
-- and not with the number of calls (measured: +1.9 MB after 2,000 calls,
-- +3.6 MB after 10,000, +3.0 MB after 20,000).
leak.HEAP_TOLERANCE_KB = 256
leak.RSS_TOLERANCE_KB = 6144

-- What the callers do: keys at seconds after the call starts, and when
-- (if ever) they hang up. Each branch of the menu is here.
local CALLERS = {
  { dtmf = "1@3" },                        -- sales
  { dtmf = "2@3,1@6" },                    -- support, billing
  { dtmf = "2@3,2@6" },                    -- support, technical
  { dtmf = "2@3,*@6,0@9" },                -- support, back, operator
  { dtmf = "0@3" },                        -- operator
  { dtmf = "12@0.5" },                     -- typed ahead during the welcome
  { dtmf = "9@3,8@9,7@15" },               -- wrong keys, then the operator
  {},                                      -- silence: three tries, operator
  { dtmf = "2@3", hangup_at = 4 },         -- hangs up in the support menu
  { hangup_at = 1 },                       -- hangs up during the welcome
}

local function rss_kb()
  local f = io.open("/proc/self/statm", "r")
  if not f then
    return 0
  end
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * 4
end

local function heap_kb()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count")
end

-- Runs `n` calls through the world, one new call every `gap` seconds of
-- virtual time, then lets every timer run out. Returns how the calls
-- ended: { ended = n, errors = n }.
local function run_calls(world, n, gap)
  local result = { ended = 0, errors = 0 }
  local started = 0
  world.listeners = {}
  world:watch(function(e)
    if e.kind == "end" then
      result.ended = result.ended + 1
      if e.error then
        result.errors = result.errors + 1
        result.last_error = e.error
      end
      -- A call the menu sent on to the dialplan talks there a while;
      -- then its caller hangs up too.
      world.clock:after(5, function()
        if world.model:channel(e.call) then
          world:hangup(e.call)
        end
      end)
    end
  end)
  local function start_next()
    started = started + 1
    local who = CALLERS[(started - 1) % #CALLERS + 1]
    local id = world:incoming({ caller = string.format("+1555%07d", started) })
    if who.dtmf then
      sim.schedule_dtmf(world, id, who.dtmf)
    end
    if who.hangup_at then
      world.clock:after(who.hangup_at, function()
        world:hangup(id)
      end)
    end
    if started < n then
      world.clock:after(gap, start_next)
    end
  end
  world.clock:after(0, start_next)
  while world.clock:next_time() do
    world.clock:step()
    -- The transcript is for people; this test keeps none of it.
    if #world.transcript > 1000 then
      world.transcript = {}
    end
  end
  world.transcript = {}
  return result
end

-- What is still held after the calls: counts that must all be 0.
function leak.leftovers(world)
  local function count(t)
    local n = 0
    for _ in pairs(t) do
      n = n + 1
    end
    return n
  end
  local stats = world.model:stats()
  return {
    calls = count(world.app.calls),
    channel_owner = count(world.app.channel_owner),
    bridge_owner = count(world.app.bridge_owner),
    active = world.app.stats.active,
    threads = world.rt.nthreads,
    channels = stats.channels,
    playbacks = stats.playbacks,
    bridges = stats.bridges,
  }
end

-- Warms up with `warmup` calls, measures, runs `calls` more, measures.
function leak.run(calls, warmup)
  local world = World.new({ flows = "examples/menu.lua" })
  local w = run_calls(world, warmup or 2000, 0.05)
  local start = { heap = heap_kb(), rss = rss_kb() }
  local t0 = os.clock()
  local r = run_calls(world, calls, 0.05)
  local cpu = os.clock() - t0
  local finish = { heap = heap_kb(), rss = rss_kb() }
  return {
    warmup = w, result = r, start = start, finish = finish, cpu = cpu,
    leftovers = leak.leftovers(world), virtual = world.clock:now(),
  }
end

function leak.report(r, calls)
  return string.format(
    "%d calls (%d ended, %d errors) in %.1f s CPU, %.0f s of virtual time\n"
      .. "Lua heap: %.0f KB at start, %.0f KB at end (%+.0f KB; tolerance %d KB)\n"
      .. "RSS:      %d KB at start, %d KB at end (%+d KB; tolerance %d KB)",
    calls, r.result.ended, r.result.errors, r.cpu, r.virtual,
    r.start.heap, r.finish.heap, r.finish.heap - r.start.heap, leak.HEAP_TOLERANCE_KB,
    r.start.rss, r.finish.rss, r.finish.rss - r.start.rss, leak.RSS_TOLERANCE_KB)
end

if not pcall(debug.getlocal, 4, 1) then
  -- Run as a script.
  local calls = tonumber(arg and arg[1]) or 10000
  local r = leak.run(calls)
  print(leak.report(r, calls))
  local ok = r.result.ended == calls and r.result.errors == 0
    and r.finish.heap - r.start.heap <= leak.HEAP_TOLERANCE_KB
    and r.finish.rss - r.start.rss <= leak.RSS_TOLERANCE_KB
  for k, v in pairs(r.leftovers) do
    if v ~= 0 then
      print("left over: " .. k .. " = " .. v)
      ok = false
    end
  end
  print(ok and "ok" or "LEAK")
  os.exit(ok and 0 or 1)
end

return leak
