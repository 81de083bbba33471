-- Benchmark: hot reload of 100 flows. Not part of `make test`.
--
--   LUA_PATH='scripts/?.lua;scripts/?/init.lua;tests/?.lua;;' luajit tests/bench/reload.lua [build/luari]
--
-- 1. In process: how long reading and compiling 100 flows (and their
--    modules) takes, i.e. how long a reload holds the event loop.
-- 2. With the binary (skipped if it is missing): `luari run` against
--    `luari sim-server`, with a call whose flow wakes every 5 ms and
--    measures how late it wakes, while flow files are rewritten on disk.
--    The worst lateness during reloads is the pause they cause in event
--    handling, as a call sees it; compare it with the same measure
--    without reloads.

package.path = package.path .. ";tests/?.lua"

local flows = require "luari.flows"
local Reloader = require "luari.reload"
local testkit = require "testkit"

local now, sh = testkit.now, testkit.sh

local NFLOWS = tonumber(os.getenv("NFLOWS")) or 100
local ROUNDS = tonumber(os.getenv("ROUNDS")) or 20


local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- A flow the size of a real IVR menu (about 60 lines).
local FLOW = [[
local menu = require "lib.menu"
local util = require "lib.util"
local luari = require "luari"

local PROMPTS = {
  welcome = "sound:welcome-%d",
  options = { "sound:press-1", "sound:for-sales", "sound:press-2", "sound:for-support" },
  invalid = "sound:option-is-invalid",
  goodbye = "sound:goodbye",
}

local function route(call, choice)
  if choice == "1" then
    return call:continue("sales", "s", 1)
  elseif choice == "2" then
    return call:continue("support", "s", 1)
  elseif choice == "0" then
    return call:dial("PJSIP/operator", { timeout = 20 })
  end
  return nil, "invalid"
end

local function business_hours(t)
  local hour = tonumber(os.date("!%%H", t))
  return hour >= 8 and hour < 18
end

return function(call, lang)
  call:answer()
  if not business_hours(os.time()) then
    call:play("sound:closed")
    return call:hangup()
  end
  call:play(PROMPTS.welcome, { lang = lang or "en" })
  for attempt = 1, 3 do
    local choice = menu.ask(call, PROMPTS.options, { timeout = 5, valid = "^[012]$" })
    if choice then
      local ok, why = route(call, choice)
      if ok then
        return
      end
      luari.log.warn("route %%s failed: %%s", choice, tostring(why))
    end
    call:play(PROMPTS.invalid)
    util.count("invalid", attempt)
  end
  call:play(PROMPTS.goodbye)
  call:hangup()
end
]]

local MENU = [[
local M = {}
function M.ask(call, prompts, opts)
  return call:prompt({ media = prompts, timeout = opts.timeout, valid = opts.valid, tries = 1 })
end
return M
]]

local UTIL = [[
local counts = {}
return { count = function(what, n) counts[what] = (counts[what] or 0) + n end }
]]

local function make_flows(dir, version)
  os.execute("mkdir -p '" .. dir .. "/lib'")
  for i = 1, NFLOWS do
    write(string.format("%s/flow%03d.lua", dir, i), FLOW:format(i) .. "-- " .. version .. "\n")
  end
  write(dir .. "/lib/menu.lua", MENU)
  write(dir .. "/lib/util.lua", UTIL)
end

local function stats(list)
  table.sort(list)
  local sum = 0
  for _, v in ipairs(list) do
    sum = sum + v
  end
  return list[1], list[math.ceil(#list / 2)], list[#list], sum / #list
end

local function in_process(dir)
  local scan_ms, build_ms, total_ms = {}, {}, {}
  for round = 1, ROUNDS do
    write(dir .. "/flow001.lua", FLOW:format(1) .. "-- round " .. round .. "\n")
    local t0 = now()
    local snap = assert(flows.scan(dir))
    local t1 = now()
    local gen = assert(flows.build(snap, round))
    local t2 = now()
    assert(#gen:names() == NFLOWS)
    scan_ms[#scan_ms + 1] = (t1 - t0) * 1000
    build_ms[#build_ms + 1] = (t2 - t1) * 1000
  end
  -- The reloader's whole path: scan, compare, compile, swap, log.
  local app = { generation = nil }
  local r = Reloader.new({ app = app, path = dir, timer = function() return { stop = function() end } end,
    clock = now, now = now })
  assert(r:start())
  for round = 1, ROUNDS do
    write(dir .. "/flow002.lua", FLOW:format(2) .. "-- reload " .. round .. "\n")
    local t0 = now()
    r:reload("bench")
    total_ms[#total_ms + 1] = (now() - t0) * 1000
  end
  assert(app.generation.number == ROUNDS + 1)
  local t0 = now()
  for _ = 1, ROUNDS do
    r:reload("bench") -- nothing changed: read and compare only
  end
  local unchanged_ms = (now() - t0) * 1000 / ROUNDS
  print(string.format("reload of %d flows, %d rounds (ms): min / median / max / mean", NFLOWS, ROUNDS))
  print(string.format("  read (scan)        %6.2f %6.2f %6.2f %6.2f", stats(scan_ms)))
  print(string.format("  compile (build)    %6.2f %6.2f %6.2f %6.2f", stats(build_ms)))
  print(string.format("  whole reload       %6.2f %6.2f %6.2f %6.2f", stats(total_ms)))
  print(string.format("  nothing changed    %6.2f (read and compare only)", unchanged_ms))
end

-- Part 2: the real loop.
local TICKER = [[
local luari = require "luari"
local json = require "cjson"
return function(call, seconds)
  call:answer()
  local stop = luari.now() + tonumber(seconds)
  local worst, n, late_total = 0, 0, 0
  local lates = {}
  while luari.now() < stop do
    local t0 = luari.now()
    luari.sleep(0.005)
    local late = (luari.now() - t0 - 0.005) * 1000
    n = n + 1
    late_total = late_total + late
    lates[#lates + 1] = late
    if late > worst then worst = late end
  end
  table.sort(lates)
  luari.log.info("RESULT %s", json.encode({ worst = worst, mean = late_total / n, n = n,
    p99 = lates[math.ceil(#lates * 0.99)] }))
  call:hangup()
end
]]

local function with_binary(bin, dir)
  local ok, h = pcall(require, "e2e.helper")
  if not ok then
    print("(skipping the loop measure: " .. tostring(h) .. ")")
    return
  end
  h.bin = bin
  write(dir .. "/ticker.lua", TICKER)
  local sim = h.start_sim()
  local run = h.start_run(dir, { url = sim.url, log_level = "info" })
  local function finish()
    h.stop_all()
  end
  local okrun, err = pcall(function()
    h.wait_log(run, "connected to Asterisk", 10, true)
    local seconds = 4
    -- baseline: no reloads
    h.call(sim, { args = { "ticker", tostring(seconds) } })
    h.wait_for(function() return #h.results(run) >= 1 end, seconds + 10, "the baseline ticker")
    -- with a reload every 300 ms (each beyond the 150 ms debounce)
    h.call(sim, { args = { "ticker", tostring(seconds) } })
    local rounds = 0
    local stop = now() + seconds - 0.5
    h.sleep(0.2)
    while now() < stop do
      rounds = rounds + 1
      write(dir .. "/flow003.lua", FLOW:format(3) .. "-- disk " .. rounds .. "\n")
      h.sleep(0.3)
    end
    h.wait_for(function() return #h.results(run) >= 2 end, seconds + 10, "the ticker under reloads")
    local res = h.results(run)
    local reload_ms = {}
    for ms in h.read(run.log):gmatch("flows reloaded %(change%): generation %d+ in ([%d.]+) ms") do
      reload_ms[#reload_ms + 1] = tonumber(ms)
    end
    print(string.format("luari run, %d flows + a call waking every 5 ms for %d s:", NFLOWS, seconds))
    print(string.format("  no reloads:        lateness worst %6.2f ms, p99 %5.2f ms, mean %5.2f ms", res[1].worst,
      res[1].p99, res[1].mean))
    print(string.format("  %2d reloads:        lateness worst %6.2f ms, p99 %5.2f ms, mean %5.2f ms", #reload_ms,
      res[2].worst, res[2].p99, res[2].mean))
    if #reload_ms > 0 then
      print(string.format("  reload times logged by luari (ms): min / median / max / mean %.1f %.1f %.1f %.1f",
        stats(reload_ms)))
    end
  end)
  finish()
  if not okrun then
    print("loop measure failed: " .. tostring(err))
  end
end

local dir = sh("mktemp -d /tmp/luari-bench-reload.XXXXXX"):gsub("%s+$", "")
make_flows(dir, 0)
local ok, err = pcall(in_process, dir)
if not ok then
  print("in-process measure failed: " .. tostring(err))
end
local bin = arg[1] or os.getenv("LUARI_BIN") or "build/luari"
if io.open(bin) then
  with_binary(bin, dir)
else
  print("(no " .. bin .. ": skipping the measure with the real loop)")
end
os.execute("rm -rf '" .. dir .. "'")
