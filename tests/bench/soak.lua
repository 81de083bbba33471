-- Soak: 30 minutes of mixed traffic, in about a minute, with faults.
--
--   luajit tests/bench/soak.lua build/luari [virtual-minutes] [speed] [http|websocket]
--
-- `luari sim-server` runs its clock 30 times faster than real time and
-- places calls into every example flow (menu and survey callers press keys,
-- some callers hang up early) while the test keeps injecting faults: events
-- WebSockets dropped, malformed, binary and unroutable events, REST 500s.
-- `luari run` serves them. At the end it prints calls placed and
-- completed, flow errors, log errors, reconnects, and luari's RSS at the
-- start, once warmed up (half way) and at the end; it exits 1 when a
-- call was lost or RSS grew after the warm-up. With `websocket`, luari
-- runs with `--rest websocket` (REST over the events WebSocket, which the
-- faults drop with requests waiting); the run also says how many requests
-- went that way.

package.path = "tests/?.lua;" .. package.path
local h = require "e2e.helper"
local json = require "cjson"

h.bin = arg[1] or "build/luari"
local MINUTES = tonumber(arg[2]) or 30
local SPEED = tonumber(arg[3]) or 30
local WALL = MINUTES * 60 / SPEED
local REST = arg[4] or "http"

local function rss_kb(pid)
  local status = h.read("/proc/" .. pid .. "/status")
  return tonumber(status:match("VmRSS:%s+(%d+)")) or 0
end

local function post(sim, path, body)
  return h.http("POST", sim.base .. path, body)
end

local function metric(base, series)
  local p = io.popen("curl -s " .. base .. "/metrics")
  local text = "\n" .. p:read("*a")
  p:close()
  local total = 0
  for v in text:gmatch("\n" .. series:gsub("[%p]", "%%%0") .. "[^\n]* ([%d%.e%+]+)") do
    total = total + tonumber(v)
  end
  return total
end

-- Callers per kind, each second of wall time: flow name, Stasis args, keys, hangup.
local TRAFFIC = {
  { args = { "hello" }, rate = 4 },
  { args = { "menu" }, rate = 3, dtmf = "1@6,1@14,9@22" },
  { args = { "menu" }, rate = 2, dtmf = "2@5", hangup_at = 40 },
  { args = { "survey" }, rate = 2, dtmf = "4@3,5@9,3@15,2@21,1@27" },
  { args = { "voicemail" }, rate = 1, dtmf = "#@20,1@40", audio = "speech" },
  { args = { "dial" }, rate = 1, hangup_at = 90 },
  { args = { "after-hours", "2026-11-27T10:00" }, rate = 1 },
}

local FAULTS = {
  function(sim) post(sim, "/sim/drop") return "events WebSocket dropped" end,
  function(sim) post(sim, "/sim/fault/ws", { kind = "malformed" }) return "malformed event" end,
  function(sim) post(sim, "/sim/fault/ws", { kind = "binary" }) return "binary frame" end,
  function(sim) post(sim, "/sim/fault/ws", { kind = "unknown_channel" }) return "event for no channel" end,
  function(sim)
    post(sim, "/sim/fault/rest", { match = "/play", status = 500, count = 3 })
    return "three plays answered 500"
  end,
}

local function main()
  local sim = h.start_sim({ args = { "--speed", tostring(SPEED), "--script", "tests/e2e/faults/inject.lua",
    "--log-level", "warn" } })
  local run = h.start_run("examples", { url = sim.url, log_level = "info",
    args = { "--metrics", "127.0.0.1:0", "--reconnect-max", "1", "--hangup-grace", "30", "--rest", REST } })
  local port = h.wait_for(function()
    return h.read(run.log):match("metrics on http://127%.0%.0%.1:(%d+)/metrics") or
      (h.alive(run) and nil)
  end, 10, "luari's metrics")
  local mbase = "http://127.0.0.1:" .. port
  h.wait_for(function() return metric(mbase, "luari_ari_connected") == 1 end, 10, "luari to connect")
  if REST == "websocket" then
    h.wait_log(run, "REST requests go over the events WebSocket", 10, true)
  end
  io.write(string.format("soak: %d virtual minutes at speed %g (%.0f s), mixed traffic into every example, "
    .. "a fault every 5 s; REST over %s\n", MINUTES, SPEED, WALL, REST == "websocket" and "the events WebSocket" or "HTTP"))
  local rss_start, rss_warm
  local warm_at = math.max(10, math.floor(WALL / 2))
  local t0 = os.time()
  local second, faults = 0, 0
  while os.time() - t0 < WALL do
    for _, kind in ipairs(TRAFFIC) do
      post(sim, "/sim/load", { rate = kind.rate * 4, count = kind.rate, app = "luari", args = kind.args,
        dtmf = kind.dtmf, hangup_at = kind.hangup_at, audio = kind.audio })
    end
    second = second + 1
    if second == 5 then
      rss_start = rss_kb(run.pid)
    elseif second == warm_at then
      rss_warm = rss_kb(run.pid)
    end
    if second % 5 == 0 then
      faults = faults + 1
      local what = FAULTS[(faults - 1) % #FAULTS + 1](sim)
      io.write(string.format("  %3d s  fault: %s\n", second, what))
    end
    h.sleep(1)
  end
  io.write("  traffic stops; waiting for the calls in progress to end\n")
  local stats
  local ok = pcall(h.wait_for, function()
    local _, s = h.http("GET", sim.base .. "/sim/stats")
    stats = s
    return type(s) == "table" and s.ended and s.ended >= s.stasis_start and s
  end, 120, "every call to end")
  local c = stats
  local rss_end = rss_kb(run.pid)
  local log_errors = h.count_log(run, " error ")
  io.write(string.format([[
soak results
  calls placed        %d
  calls completed     %d%s
  flow errors         %d   (Lua errors in flows, luari_flow_errors_total)
  log errors          %d   (error lines in luari's log: bad input it dropped, flows that failed)
  faults injected     %d
  reconnects          %d
  events unrouted     %d
  luari RSS           %d KB after 5 s, %d KB after %d s (warmed up), %d KB at the end (%+.1f%% since warm)
]], c.placed, c.ended, ok and "" or "  (NOT ALL: some calls never ended)",
    metric(mbase, "luari_flow_errors_total"), log_errors, faults, metric(mbase, "luari_ws_reconnects_total"),
    metric(mbase, "luari_events_unrouted_total"), rss_start or 0, rss_warm or 0, warm_at, rss_end,
    rss_warm and (rss_end - rss_warm) * 100 / rss_warm or 0))
  local over_ws, rest_total = 0, 0
  for _, r in ipairs(h.journal(sim)) do
    if r.path ~= "/ari/events" then
      rest_total = rest_total + 1
      over_ws = over_ws + (r.websocket and 1 or 0)
    end
  end
  io.write(string.format("  REST requests       %d, %d of them over the events WebSocket\n", rest_total, over_ws))
  local lost = c.placed - c.ended
  -- Flat: after the first half (allocator arenas, caches, JIT traces
  -- filled), RSS may not grow by more than a tenth.
  local grew = rss_warm and rss_end > rss_warm * 1.10
  -- Over HTTP only while the WebSocket is down or not yet asked again.
  local wrong_way = REST == "websocket" and over_ws < rest_total * 0.9
  h.stop_all()
  if lost > 0 or grew or wrong_way then
    io.write("soak: FAILED (", lost > 0 and (lost .. " calls lost ") or "", grew and "RSS grew " or "",
      wrong_way and "requests went over HTTP" or "", ")\n")
    os.exit(1)
  end
  io.write("soak: every call ended; RSS flat\n")
end

local ok, err = pcall(main)
if not ok then
  h.stop_all()
  io.stderr:write("soak: ", tostring(err), "\n")
  os.exit(1)
end
