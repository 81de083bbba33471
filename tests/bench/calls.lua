-- Benchmark: luari against npm's ari-client, side by side, on loopback,
-- each against a fresh `luari sim-server` that generates the calls itself
-- (POST /sim/load) and measures what it sees (GET /sim/stats). Run by
-- `make bench`; not part of `make test`.
--
--   luajit tests/bench/calls.lua [--bin build/luari] [--calls 2000] [--rate 1000]
--                                [--rounds 3] [--park 1000,10000] [--park-rate 1000]
--                                [--clients luari,luari-ws,ari-client] [--pin 0,1|none]
--                                [--luari-bin B] [--keep DIR]
--
-- --bin is the luari that serves the simulator (and, unless --luari-bin
-- names another build to compare, the client). --pin puts the client on
-- one CPU and the simulator (and this script) on the other.
--
-- From the project root. Per round, one client after the other (the order
-- alternates from round to round):
--
--   calls    `--calls` calls at `--rate` a second into a flow that answers,
--            plays sound:hello-world (1.404 s) to the end and hangs up
--   park N   N calls at `--park-rate` a second into a flow that answers and
--            waits for a key; once all N are parked, each caller presses 1
--            (at the same rate) and the flow hangs up
--
-- luari runs tests/bench/flows/{play,park}.lua, once as `luari run` does by
-- default (REST over HTTP) and once as luari-ws (`--rest websocket`: REST
-- over the events WebSocket, as Asterisk 20.14, 21.9 and 22.4 on allow);
-- ari-client runs the same flows in tests/node/bench_client.js (it has no
-- such transport). Figures, per client and run:
--
--   CPU      user+sys seconds of the client's process (all its threads,
--            /proc/PID/stat) from just before the first call to the last
--            hangup, per 1,000 calls
--   calls/s  calls completed per second, first to last completion
--   answer   StasisStart-to-answer latency as the simulator saw it: from
--            the event leaving its WebSocket to the answer request arriving
--   RSS      the client's peak RSS (VmHWM); for park, also the RSS with
--            all N calls parked less the RSS before the first, per call
--   sim CPU  the simulator's own CPU over the same window, as a share of
--            one core (it has one thread): at 90% or more, or when it
--            could not place calls at the rate asked, the run says the
--            simulator was the bottleneck. How late its loop placed calls
--            (p99) is its own jitter, which the latency figures include:
--            over 5 ms, the run says so
--
-- Where the answer time is taken: when the simulator's HTTP server began
-- the pass that read the request (see luari.sim.load), so the time it
-- spent on requests read before it in the same pass does not count.
--
-- Every call must be answered and hung up by the client, with no ARI
-- error answered by the simulator and no error or warning logged by either
-- side: the run says otherwise. Ratios are luari / ari-client (and
-- luari-ws / ari-client) per round, median over the rounds.


package.path = "tests/?.lua;" .. package.path

local ffi = require "ffi"
local bit = require "bit"
local json = require "cjson"
local floor = require "bench.floor"
local testkit = require "testkit"

ffi.cdef [[
  int kill(int pid, int sig);
  int socket(int domain, int type, int protocol);
  struct luari_bench_sockaddr_in { uint16_t family; uint16_t port; uint32_t addr; uint8_t zero[8]; };
  int connect(int fd, const struct luari_bench_sockaddr_in *addr, uint32_t len);
  long write(int fd, const void *buf, size_t n);
  long read(int fd, void *buf, size_t n);
  int close(int fd);
]]
local C = ffi.C

-- --- options ----------------------------------------------------------------------

local opts = { bin = "build/luari", calls = 2000, rate = 1000, rounds = 3, park = "1000,10000",
  park_rate = 1000, clients = "luari,luari-ws,ari-client", pin = "0,1" }
do
  local i = 1
  while arg[i] do
    local name = arg[i]:match("^%-%-([%w%-]+)$")
    if not name or arg[i + 1] == nil then
      io.stderr:write("usage: luajit tests/bench/calls.lua [--bin B] [--calls N] [--rate R] [--rounds K]"
        .. " [--park N,N] [--park-rate R] [--clients luari,luari-ws,ari-client] [--pin CLIENT_CPU,SIM_CPU|none]"
        .. " [--luari-bin B]"
        .. " [--keep DIR]\n")
      os.exit(2)
    end
    name = name:gsub("%-", "_")
    opts[name] = tonumber(arg[i + 1]) or arg[i + 1]
    i = i + 2
  end
end
local PARK = {}
for n in tostring(opts.park):gmatch("%d+") do
  PARK[#PARK + 1] = tonumber(n)
end
local CLIENTS = {}
for c in tostring(opts.clients):gmatch("[^,]+") do
  if c ~= "luari" and c ~= "luari-ws" and c ~= "ari-client" then
    io.stderr:write("calls bench: --clients takes luari, luari-ws and ari-client, not " .. c .. "\n")
    os.exit(2)
  end
  CLIENTS[#CLIENTS + 1] = c
end

-- luari, or luari with REST over the events WebSocket.
local function is_luari(client)
  return client == "luari" or client == "luari-ws"
end
local CLIENT_CPU, SIM_CPU = tostring(opts.pin):match("^(%d+),(%d+)$")
local USER, PASSWORD = "asterisk", "asterisk"
local MEDIA_SECONDS = 1.404 -- sound:hello-world in the simulator

-- --- small helpers --------------------------------------------------------------------

local now, sleep, sh, quote = testkit.now, testkit.sleep, testkit.sh, testkit.quote

local function read_file(path)
  local f = io.open(path)
  if not f then
    return nil
  end
  local s = f:read("*a")
  f:close()
  return s
end

local CLK_TCK = tonumber(sh("getconf CLK_TCK")) or 100

-- user+sys CPU seconds of a process (every thread of it), and the sys part.
local function cpu_of(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if not stat then
    return nil
  end
  local rest = stat:match("%) (.*)$")
  local fields = {}
  for f in rest:gmatch("%S+") do
    fields[#fields + 1] = f
  end
  -- fields[1] is field 3 (state): utime is field 14, stime 15.
  return (tonumber(fields[12]) + tonumber(fields[13])) / CLK_TCK, tonumber(fields[13]) / CLK_TCK
end

-- VmRSS and VmHWM (peak) in KB.
local function rss_of(pid)
  local status = read_file("/proc/" .. pid .. "/status") or ""
  return tonumber(status:match("VmRSS:%s*(%d+)")), tonumber(status:match("VmHWM:%s*(%d+)"))
end

-- The machine's CPU seconds: busy (all CPUs, anyone) and stolen by the hypervisor.
local function machine_cpu()
  local f = {}
  for v in ((read_file("/proc/stat") or ""):match("^cpu%s+([^\n]*)") or ""):gmatch("%d+") do
    f[#f + 1] = tonumber(v)
  end
  -- user nice system idle iowait irq softirq steal
  return ((f[1] or 0) + (f[2] or 0) + (f[3] or 0) + (f[6] or 0) + (f[7] or 0)) / CLK_TCK, (f[8] or 0) / CLK_TCK
end

local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("%) (%a)") ~= "Z"
end

local function wait_for(fn, timeout, what, step)
  local deadline = now() + timeout
  while true do
    local v = fn()
    if v then
      return v
    end
    if now() > deadline then
      error("timed out waiting for " .. what, 0)
    end
    sleep(step or 0.02)
  end
end

-- --- processes --------------------------------------------------------------------------

local workdir = opts.keep or sh("mktemp -d /tmp/luari-bench.XXXXXX"):gsub("%s+$", "")
os.execute("mkdir -p " .. quote(workdir))
local serial = 0

local running = {} -- every process started, stopped at the end whatever happens

local function spawn(args, name, env, cpu)
  serial = serial + 1
  local log = string.format("%s/%02d-%s.log", workdir, serial, name)
  local cmd = {}
  for k, v in pairs(env or {}) do
    cmd[#cmd + 1] = k .. "=" .. quote(v)
  end
  if cpu then
    cmd[#cmd + 1] = "taskset -c " .. cpu
  end
  for _, a in ipairs(args) do
    cmd[#cmd + 1] = quote(a)
  end
  local pid = tonumber(sh("(" .. table.concat(cmd, " ") .. " > " .. quote(log) .. " 2>&1 & echo $!)"):match("%d+"))
  local proc = { pid = pid, log = log, name = name }
  running[#running + 1] = proc
  return proc
end

local function stop(proc, grace)
  if not alive(proc.pid) then
    return
  end
  C.kill(proc.pid, 15)
  local deadline = now() + (grace or 5)
  while alive(proc.pid) and now() < deadline do
    sleep(0.02)
  end
  if alive(proc.pid) then
    C.kill(proc.pid, 9)
    wait_for(function() return not alive(proc.pid) end, 5, "process " .. proc.pid .. " to die")
  end
end

-- Lines at level warn or error in a luari log ("TIME LEVEL message").
local function bad_log_lines(proc)
  local out = {}
  for line in (read_file(proc.log) or ""):gmatch("[^\n]+") do
    local level = line:match("^%S+ %S+ (%a+)")
    if level == "warn" or level == "error" then
      out[#out + 1] = line
    end
  end
  return out
end

-- --- HTTP to the simulator (plain sockets: no process per request) -----------------------

local AUTH = "Basic " .. (function(s)
  local b = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((s:gsub(".", function(x)
    local r, c = "", x:byte()
    for i = 8, 1, -1 do
      r = r .. (c % 2 ^ i - c % 2 ^ (i - 1) > 0 and "1" or "0")
    end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then
      return ""
    end
    local c = 0
    for i = 1, 6 do
      c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0)
    end
    return b:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end)(USER .. ":" .. PASSWORD)

local buf = ffi.new("char[65536]")

local function http(port, method, path, body)
  local fd = C.socket(2, 1, 0) -- AF_INET, SOCK_STREAM
  assert(fd >= 0, "socket() failed")
  local sa = ffi.new("struct luari_bench_sockaddr_in")
  sa.family = 2
  sa.port = bit.bor(bit.rshift(port, 8), bit.lshift(bit.band(port, 0xff), 8))
  sa.addr = 0x0100007f -- 127.0.0.1 in network order on a little-endian host
  if C.connect(fd, sa, ffi.sizeof(sa)) ~= 0 then
    C.close(fd)
    return nil, "connect failed"
  end
  body = body and json.encode(body) or ""
  local req = string.format("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\nConnection: close\r\n"
    .. "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", method, path, AUTH, #body, body)
  C.write(fd, req, #req)
  local parts = {}
  while true do
    local n = tonumber(C.read(fd, buf, 65536))
    if n <= 0 then
      break
    end
    parts[#parts + 1] = ffi.string(buf, n)
  end
  C.close(fd)
  local reply = table.concat(parts)
  local status = tonumber(reply:match("^HTTP/%S+ (%d+)"))
  local rbody = reply:match("\r\n\r\n(.*)$") or ""
  local ok, decoded = pcall(json.decode, rbody)
  return status, ok and decoded or rbody
end

-- --- one run ------------------------------------------------------------------------------

local function start_sim()
  local port_file = string.format("%s/sim-%d.port", workdir, serial + 1)
  local sim = spawn({ opts.bin, "sim-server", "--listen", "127.0.0.1:0", "--port-file", port_file,
    "--user", USER, "--password", PASSWORD, "--log-level", "info" }, "sim", nil, SIM_CPU)
  sim.port = wait_for(function()
    return tonumber((read_file(port_file) or ""):match("%d+"))
  end, 10, "sim-server to listen")
  return sim
end

local function start_client(client, sim)
  local url = "http://127.0.0.1:" .. sim.port
  local p
  if is_luari(client) then
    local args = { opts.luari_bin or opts.bin, "run", "--url", url .. "/ari", "--user", USER, "--log-level", "info",
      "--no-watch", "tests/bench/flows" }
    if client == "luari-ws" then
      table.insert(args, #args, "--rest")
      table.insert(args, #args, "websocket")
    end
    p = spawn(args, client, { ARI_PASSWORD = PASSWORD }, CLIENT_CPU)
    local ready = client == "luari-ws" and "REST requests go over the events WebSocket" or "connected to Asterisk"
    wait_for(function()
      return (read_file(p.log) or ""):find(ready, 1, true)
    end, 20, client .. " to connect (" .. p.log .. ")")
  else
    p = spawn({ "node", "tests/node/bench_client.js", url, USER, PASSWORD, "luari" }, "ari-client", nil, CLIENT_CPU)
    wait_for(function()
      return (read_file(p.log) or ""):find("READY", 1, true)
    end, 30, "ari-client to connect (" .. p.log .. ")")
  end
  return p
end

-- counts: only the counts, cheap enough to poll.
local function stats(sim, counts)
  local status, s = http(sim.port, "GET", counts and "/sim/stats?counts=1" or "/sim/stats")
  assert(status == 200 and type(s) == "table", "GET /sim/stats failed: " .. tostring(status))
  return s
end

-- Runs one client through one kind of run; returns its figures.
-- kind: "calls" or "park"; n: the number of calls.
local function run_one(client, kind, n)
  local r = { client = client, kind = kind, n = n, problems = {} }
  local function problem(fmt, ...)
    r.problems[#r.problems + 1] = string.format(fmt, ...)
  end
  local sim, p
  local ok, err = pcall(function()
    sim = start_sim()
    p = start_client(client, sim)
    sleep(0.3)
    http(sim.port, "DELETE", "/sim/stats")
    local rss0 = rss_of(p.pid)
    local busy0, steal0 = machine_cpu()
    local self0 = os.clock()
    local cpu0, sys0 = cpu_of(p.pid)
    local sim0, t0 = cpu_of(sim.pid), now()
    local rate = kind == "calls" and opts.rate or opts.park_rate
    local status = http(sim.port, "POST", "/sim/load",
      { rate = rate, count = n, app = "luari", args = { kind == "calls" and "play" or "park" } })
    assert(status == 200, "POST /sim/load: " .. tostring(status))
    local placing = n / rate
    local s
    if kind == "park" then
      wait_for(function()
        local st = stats(sim, true)
        return st.answered >= n or not alive(p.pid)
      end, placing * 20 + 120, n .. " calls to be answered", 0.1)
      -- Every flow is in read_digits once its answer has come back.
      sleep(1)
      r.rss_parked = rss_of(p.pid)
      r.rss_per_call = (r.rss_parked - rss0) / n
      r.park_cpu = cpu_of(p.pid) - cpu0
      http(sim.port, "POST", "/sim/load/dtmf", { digits = "1", rate = rate })
    end
    wait_for(function()
      local st = stats(sim, true)
      return (st.ended >= n and st.hungup_by_app >= n) or not alive(p.pid)
    end, placing * 20 + (kind == "calls" and MEDIA_SECONDS or placing) + 120, n .. " calls to end", 0.05)
    local busy1, steal1 = machine_cpu()
    local self1 = os.clock()
    local cpu1, sys1 = cpu_of(p.pid)
    local sim1, t1 = cpu_of(sim.pid), now()
    s = stats(sim)
    r.sys_share = (sys1 - sys0) / math.max(cpu1 - cpu0, 1e-9)
    local _, hwm = rss_of(p.pid)
    r.cpu = cpu1 - cpu0
    r.cpu_per_1000 = r.cpu / n * 1000
    r.wall = t1 - t0
    r.sim_cpu = sim1 - sim0
    r.sim_share = r.sim_cpu / r.wall
    -- Anything else the machine did meanwhile (other processes, the
    -- kernel's own threads) and what the hypervisor took.
    r.other_share = math.max(0, (busy1 - busy0) - r.cpu - r.sim_cpu - (self1 - self0)) / r.wall
    r.steal_share = (steal1 - steal0) / r.wall
    r.client_share = r.cpu / r.wall
    r.peak_rss = hwm
    r.rss_before = rss0
    r.p50 = s.answer_latency.p50_ms
    r.p99 = s.answer_latency.p99_ms
    r.max = s.answer_latency.max_ms
    r.lag_p99 = s.placement_lag.p99_ms
    -- the arrival rate the simulator managed, first call to last
    r.placed_rate = s.last_placed and s.last_placed > 0 and (s.placed - 1) / s.last_placed or nil
    r.rate = rate
    if kind == "calls" then
      -- completions per second, first to last
      local span = (s.last_ended or 0) - (s.first_ended or 0)
      r.cps = span > 0 and (s.ended - 1) / span or nil
    else
      r.cps = nil
    end
    r.stats = s
    if not alive(p.pid) then
      problem("%s died", client)
    end
    if s.answered < n then
      problem("%d of %d calls never answered", n - s.answered, n)
    end
    if s.hungup_by_app < n or s.ended < n then
      problem("%d of %d calls not hung up by the client", n - math.min(s.hungup_by_app, s.ended), n)
    end
    if s.errors > 0 then
      local first = s.error_list[1]
      problem("%d ARI requests answered with an error (first: %s %s -> %s)", s.errors, first.method, first.path,
        first.status)
    end
  end)
  if not ok then
    problem("%s", tostring(err))
  end
  if p then
    stop(p, is_luari(client) and 35 or 5)
  end
  if sim then
    stop(sim)
  end
  if not p or not sim then
    return r
  end
  for _, line in ipairs(bad_log_lines(sim)) do
    problem("simulator logged: %s", line)
  end
  if is_luari(client) then
    for _, line in ipairs(bad_log_lines(p)) do
      problem("%s logged: %s", client, line)
    end
  else
    local rep = (read_file(p.log) or ""):match("REPORT (%b{})")
    local report = rep and json.decode(rep)
    if not report then
      problem("ari-client gave no report")
    elseif report.errors > 0 then
      problem("ari-client: %d errors (first: %s)", report.errors, tostring(report.first_errors[1]))
    end
  end
  -- The simulator was the bottleneck when it used (nearly) a whole CPU or
  -- could not place calls at the rate asked; its loop running late only
  -- blurs the latency figures, and the round says so.
  if r.sim_share and (r.sim_share >= 0.9 or (r.placed_rate and r.placed_rate < 0.95 * r.rate)) then
    r.sim_bound = true
  elseif r.lag_p99 and r.lag_p99 > 5 then
    r.sim_late = true
  end
  if r.other_share and (r.other_share > 0.15 or r.steal_share > 0.05) then
    r.disturbed = true
  end
  return r
end

-- The machine's own round trip between the two sides' CPUs, with no
-- client and no simulator (tests/bench/floor.lua): the floor under the
-- answer latency, measured in the same window as the round it goes with.
local function measure_floor(n, rate)
  local port_file = string.format("%s/floor-%d.port", workdir, serial + 1)
  local echo = spawn({ "luajit", "tests/bench/floor.lua", "echo", port_file }, "floor", nil, CLIENT_CPU)
  local ok, result = pcall(function()
    local port = wait_for(function()
      return tonumber((read_file(port_file) or ""):match("%d+"))
    end, 10, "the floor's echo side to listen")
    return floor.measure(port, n, rate)
  end)
  stop(echo, 2)
  if not ok then
    io.stderr:write("calls bench: could not measure the loopback floor: " .. tostring(result) .. "\n")
    return nil
  end
  return result
end

-- --- the report -----------------------------------------------------------------------------

local function median(list)
  local t = {}
  for _, v in ipairs(list) do
    if v == v and v ~= nil then
      t[#t + 1] = v
    end
  end
  if #t == 0 then
    return nil
  end
  table.sort(t)
  local m = math.floor((#t + 1) / 2)
  if #t % 2 == 1 then
    return t[m]
  end
  return (t[m] + t[m + 1]) / 2
end

local function fmt(v, f)
  if v == nil then
    return "-"
  end
  return string.format(f or "%.3g", v)
end

local METRICS = {
  { key = "cpu_per_1000", label = "CPU s per 1,000 calls", f = "%.3f" },
  { key = "cps", label = "calls/s completed", f = "%.0f", kinds = { calls = true } },
  { key = "p50", label = "answer latency p50 ms", f = "%.3f" },
  { key = "p99", label = "answer latency p99 ms", f = "%.3f" },
  { key = "peak_rss", label = "peak RSS MB", f = "%.1f", scale = 1 / 1024 },
  { key = "rss_parked", label = "RSS, all parked, MB", f = "%.1f", scale = 1 / 1024, kinds = { park = true } },
  { key = "rss_per_call", label = "RSS per parked call KB", f = "%.2f", kinds = { park = true } },
  { key = "client_share", label = "client CPU, % of a core", f = "%.0f", scale = 100 },
  { key = "sim_share", label = "simulator CPU, % of a core", f = "%.0f", scale = 100 },
}

local function report(title, kind, runs, floors)
  print("")
  print(title)
  local by = {}
  for _, r in ipairs(runs) do
    by[r.client] = by[r.client] or {}
    by[r.client][#by[r.client] + 1] = r
  end
  -- Columns: each client present, then each luari's ratio to ari-client.
  local cols, ratio_cols = {}, {}
  for _, c in ipairs({ "luari", "luari-ws", "ari-client" }) do
    if by[c] then
      cols[#cols + 1] = c
      if c ~= "ari-client" and by["ari-client"] then
        ratio_cols[#ratio_cols + 1] = c
      end
    end
  end
  local head = { string.format("  %-28s", "median of " .. opts.rounds .. " rounds") }
  for _, c in ipairs(cols) do
    head[#head + 1] = string.format(" %11s", c)
  end
  for _, c in ipairs(ratio_cols) do
    head[#head + 1] = string.format(" %17s", c .. "/ari-cl.")
  end
  print(table.concat(head))
  for _, m in ipairs(METRICS) do
    if not m.kinds or m.kinds[kind] then
      local sc = m.scale or 1
      local line = { string.format("  %-28s", m.label) }
      for _, c in ipairs(cols) do
        local values = {}
        for _, r in ipairs(by[c]) do
          values[#values + 1] = r[m.key]
        end
        local v = median(values)
        line[#line + 1] = string.format(" %11s", fmt(v and v * sc, m.f))
      end
      for _, c in ipairs(ratio_cols) do
        local ratios, mine, theirs = {}, by[c], by["ari-client"]
        for i = 1, math.min(#mine, #theirs) do
          local x, y = mine[i][m.key], theirs[i][m.key]
          if x and y and y ~= 0 then
            ratios[#ratios + 1] = x / y
          end
        end
        line[#line + 1] = string.format(" %17s", fmt(median(ratios), "%.3f"))
      end
      print(table.concat(line))
    end
  end
  if floors and #floors > 0 then
    local p50, p99 = {}, {}
    for i, f in ipairs(floors) do
      p50[i], p99[i] = f.p50_ms, f.p99_ms
    end
    print(string.format("  %-28s %12s   the machine's loopback round trip between the two CPUs, event out,",
      "floor p50/p99 ms", string.format("%.3f/%.3f", median(p50), median(p99))))
    print(string.format("  %-28s %12s   request back, no client or simulator: no client can answer faster", "", ""))
  end
  print("  per round (CPU s/1,000 calls, the system's share; answer p99 ms; simulator % of a core, and how late")
  print("  its loop placed calls at p99: its own jitter, which the latency figures include):")
  for _, r in ipairs(runs) do
    print(string.format("    round %d %-10s cpu %7.3f (%2.0f%% sys)  p99 %8.3f  sim %3.0f%%, placing late by %.1f ms (p99)%s",
      r.round, r.client, r.cpu_per_1000 or 0 / 0, (r.sys_share or 0) * 100, r.p99 or 0 / 0, (r.sim_share or 0) * 100,
      r.lag_p99 or 0 / 0,
      r.sim_bound and "  (the simulator was the bottleneck)"
        or r.sim_late and "  (the simulator's loop ran late: latency figures include it)" or ""))
    if r.disturbed then
      print(string.format("      (the machine was busy with something else meanwhile: %.0f%% of a CPU, %.0f%% stolen)",
        r.other_share * 100, r.steal_share * 100))
    end
    for _, p in ipairs(r.problems) do
      print("      PROBLEM: " .. p)
    end
  end
end

-- --- main ------------------------------------------------------------------------------------

print(string.format("luari against ari-client on loopback: %s; %s", sh("nproc"):gsub("%s+$", "") .. " CPUs",
  (sh("sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1"):gsub("%s+$", ""))))
print(string.format("luari %s; node %s; ari-client %s", (sh(quote(opts.bin) .. " version"):gsub("%s+$", "")),
  (sh("node --version"):gsub("%s+$", "")),
  (read_file("tests/node/node_modules/ari-client/package.json") or ""):match('"version"%s*:%s*"([^"]+)"') or "?"))
print("logs in " .. workdir)
if CLIENT_CPU then
  -- The client has a CPU of its own; the simulator shares the other one
  -- with this script, which mostly sleeps.
  local self_pid = (read_file("/proc/self/stat") or ""):match("^(%d+)")
  os.execute("taskset -p -c " .. SIM_CPU .. " " .. self_pid .. " > /dev/null")
  print(string.format("client pinned to CPU %s, simulator to CPU %s", CLIENT_CPU, SIM_CPU))
end

local SCENARIOS = {
  { kind = "calls", n = opts.calls, title = string.format(
    "== %d calls at %d/s: answer, play sound:hello-world (%.3f s) to the end, hang up", opts.calls, opts.rate,
    MEDIA_SECONDS) },
}
for _, n in ipairs(PARK) do
  SCENARIOS[#SCENARIOS + 1] = { kind = "park", n = n, title = string.format(
    "== %d calls parked at once (placed at %d/s): answer, wait for a key, hang up when 1 comes", n,
    opts.park_rate) }
end

local failed = false
local function stop_all()
  for _, proc in ipairs(running) do
    stop(proc, 2)
  end
end
local main_ok, main_err = pcall(function()
for _, sc in ipairs(SCENARIOS) do
  local runs, floors = {}, {}
  for round = 1, opts.rounds do
    if sc.kind == "calls" then
      io.stderr:write(string.format("  [%s %d, round %d: loopback floor]\n", sc.kind, sc.n, round))
      floors[#floors + 1] = measure_floor(sc.n, opts.rate)
    end
    local order = {}
    for i = 1, #CLIENTS do
      order[i] = CLIENTS[(round % 2 == 1) and i or (#CLIENTS - i + 1)]
    end
    for _, client in ipairs(order) do
      io.stderr:write(string.format("  [%s %d, round %d: %s]\n", sc.kind, sc.n, round, client))
      local r = run_one(client, sc.kind, sc.n)
      r.round = round
      runs[#runs + 1] = r
      if #r.problems > 0 then
        failed = true
      end
    end
  end
  table.sort(runs, function(x, y)
    if x.client ~= y.client then
      return x.client > y.client
    end
    return x.round < y.round
  end)
  report(sc.title, sc.kind, runs, floors)
end
end)
stop_all()
if not main_ok then
  print("calls bench: stopped by an error: " .. tostring(main_err))
  failed = true
end

if not opts.keep then
  os.execute("rm -rf " .. quote(workdir))
end
print("")
print(failed and "calls bench: PROBLEMS (see above)" or "calls bench: every call answered and hung up, no error")
os.exit(failed and 1 or 0)
