-- Helpers for end-to-end specs: start `luari sim-server` and `luari run`
-- as real processes on loopback, talk to them over HTTP (curl), read logs.

local json = require "cjson"

local helper = {}

helper.bin = os.getenv("LUARI_BIN") or "build/luari"
helper.user = "asterisk"
helper.password = "asterisk"

local tmpdir
local procs = {}

local testkit = require "testkit"
local sh, quote = testkit.sh, testkit.quote
helper.quote = quote

function helper.tmpdir()
  if not tmpdir then
    tmpdir = sh("mktemp -d /tmp/luari-e2e.XXXXXX"):gsub("%s+$", "")
  end
  return tmpdir
end

helper.sleep = testkit.sleep

-- Polls fn() until it returns a true value or `timeout` seconds pass.
function helper.wait_for(fn, timeout, what)
  local deadline = os.time() + (timeout or 10)
  local step = 0.02
  while true do
    local v = fn()
    if v then
      return v
    end
    if os.time() > deadline then
      error("timed out waiting for " .. (what or "a condition"), 2)
    end
    helper.sleep(step)
    step = math.min(step * 1.5, 0.2)
  end
end

local counter = 0
local function new_name(prefix)
  counter = counter + 1
  return string.format("%s/%s-%d", helper.tmpdir(), prefix, counter)
end

-- Starts a command in the background with stdout+stderr to a log file.
-- Processes the specs start see none of the ARI settings of the shell
-- running the tests (CI exports ARI_URL for specs that use an external
-- Asterisk): each spec says what it wants.
helper.CLEAN_ENV = "env -u ARI_URL -u ARI_USER -u ARI_PASSWORD -u ARI_APP -u LUARI_CONFIG "

local function spawn(args, prefix)
  local log = new_name(prefix) .. ".log"
  local cmd = { helper.CLEAN_ENV }
  for _, a in ipairs(args) do
    cmd[#cmd + 1] = quote(a)
  end
  local pid = sh("(" .. table.concat(cmd, " ") .. " > " .. quote(log) .. " 2>&1 & echo $!)"):match("%d+")
  local proc = { pid = tonumber(pid), log = log }
  procs[#procs + 1] = proc
  return proc
end

function helper.read(path)
  local f = io.open(path)
  if not f then
    return ""
  end
  local s = f:read("*a")
  f:close()
  return s
end

function helper.alive(proc)
  return os.execute("kill -0 " .. proc.pid .. " 2>/dev/null") == 0
end

function helper.signal(proc, sig)
  os.execute("kill -" .. (sig or "TERM") .. " " .. proc.pid .. " 2>/dev/null")
end

-- Waits for the process to end; returns its exit status (from `wait` in a shell is not possible
-- for a non-child, so luari processes write it to a file via the wrapper).
function helper.wait_exit(proc, timeout)
  return helper.wait_for(function()
    return not helper.alive(proc) and tonumber(helper.read(proc.status_file or ""):match("%d+"))
  end, timeout or 10, "process " .. proc.pid .. " to exit")
end

function helper.stop_all()
  for _, p in ipairs(procs) do
    if helper.alive(p) then
      helper.signal(p, "KILL")
    end
  end
  procs = {}
end

-- Runs `args` under a small shell that records the exit status in a file,
-- so wait_exit can read it; proc.pid is the program's own pid, so signals
-- reach it directly.
local function spawn_with_status(args, prefix)
  local base = new_name(prefix)
  local status, pidfile = base .. ".status", base .. ".pid"
  local script = '"$@" & child=$!; echo $child > ' .. quote(pidfile)
    .. '; wait $child; rc=$?; while kill -0 $child 2>/dev/null; do wait $child; rc=$?; done; echo $rc > '
    .. quote(status)
  local wrapped = { "sh", "-c", script, "sh" }
  for _, a in ipairs(args) do
    wrapped[#wrapped + 1] = a
  end
  local proc = spawn(wrapped, prefix)
  proc.status_file = status
  proc.wrapper = proc.pid
  proc.pid = helper.wait_for(function()
    return tonumber(helper.read(pidfile):match("%d+"))
  end, 10, "the process to start")
  return proc
end

-- The ARI the shell names (ARI_URL, ARI_USER, ARI_PASSWORD: a real
-- Asterisk, or the simulator CI starts), else a private simulator.
function helper.ari()
  local url = os.getenv("ARI_URL")
  if url and url ~= "" then
    return { url = url, user = os.getenv("ARI_USER") or helper.user,
      password = os.getenv("ARI_PASSWORD") or helper.password, external = true }
  end
  local sim = helper.start_sim()
  sim.user, sim.password = helper.user, helper.password
  return sim
end

-- A call into application `app` with Stasis args, the way a real Asterisk
-- can make one: originate a Local channel whose far end answers and waits.
function helper.originate(ari, args, app)
  local q = "endpoint=Local%2F1000%40wait&app=" .. (app or "luari")
  if args and #args > 0 then
    q = q .. "&appArgs=" .. table.concat(args, ",")
  end
  local status, res = helper.http("POST", ari.url .. "/channels?" .. q, nil,
    { user = ari.user, password = ari.password })
  assert(status == 200, "originate failed: " .. tostring(status) .. " " .. tostring(res))
  return res.id
end

-- A private simulated Asterisk on a free port.
function helper.start_sim(extra)
  local port_file = new_name("sim") .. ".port"
  local args = { helper.bin, "sim-server", "--listen", "127.0.0.1:" .. ((extra and extra.port) or 0),
    "--port-file", port_file, "--user", helper.user, "--password", helper.password, "--journal" }
  for _, a in ipairs(extra and extra.args or {}) do
    args[#args + 1] = a
  end
  local proc = spawn(args, "sim")
  local port = helper.wait_for(function()
    return tonumber(helper.read(port_file):match("%d+"))
  end, 10, "sim-server to listen; log: " .. proc.log)
  proc.port = port
  proc.url = "http://127.0.0.1:" .. port .. "/ari"
  proc.base = "http://127.0.0.1:" .. port
  return proc
end

-- `luari run` against url with the flows in `flows` (a directory or file).
-- opts.prefix: a command luari runs under (e.g. { "setpriv", ... }).
function helper.start_run(flows, opts)
  opts = opts or {}
  local args = {}
  for _, a in ipairs(opts.prefix or {}) do
    args[#args + 1] = a
  end
  for _, a in ipairs({ helper.bin, "run", "--url", opts.url, "--user", opts.user or helper.user,
    "--password", opts.password or helper.password, "--log-level", opts.log_level or "debug" }) do
    args[#args + 1] = a
  end
  for _, a in ipairs(opts.args or {}) do
    args[#args + 1] = a
  end
  args[#args + 1] = flows
  return spawn_with_status(args, "run")
end

-- `luari ARGS...` as given (no defaults added).
function helper.start_run_args(args)
  local full = { helper.bin }
  for _, a in ipairs(args) do
    full[#full + 1] = a
  end
  return spawn_with_status(full, "run")
end

function helper.log_has(proc, pattern, plain)
  return helper.read(proc.log):find(pattern, 1, plain) ~= nil
end

function helper.wait_log(proc, pattern, timeout, plain)
  return helper.wait_for(function()
    return helper.log_has(proc, pattern, plain)
  end, timeout or 10, "'" .. pattern .. "' in " .. proc.log .. ":\n" .. helper.read(proc.log))
end

function helper.count_log(proc, pattern)
  local n = 0
  for _ in helper.read(proc.log):gmatch(pattern) do
    n = n + 1
  end
  return n
end

-- HTTP through curl: status, decoded body (or raw text).
function helper.http(method, url, body, opts)
  opts = opts or {}
  local out = new_name("http") .. ".out"
  local cmd = { "curl", "-s", "-o", quote(out), "-w", "'%{http_code}'", "-X", method,
    "-u", quote((opts.user or helper.user) .. ":" .. (opts.password or helper.password)) }
  if body then
    cmd[#cmd + 1] = "-H 'Content-Type: application/json' --data-binary " .. quote(json.encode(body))
  end
  cmd[#cmd + 1] = quote(url)
  local status = tonumber(sh(table.concat(cmd, " ")))
  local text = helper.read(out)
  os.remove(out)
  local ok, decoded = pcall(json.decode, text)
  return status, ok and decoded or text
end

-- The requests the simulator received (needs --journal).
function helper.journal(sim)
  local _, list = helper.http("GET", sim.base .. "/sim/requests")
  return type(list) == "table" and list or {}
end

function helper.clear_journal(sim)
  helper.http("DELETE", sim.base .. "/sim/requests")
end

-- An incoming call from a simulated caller into Stasis(app, args...).
function helper.call(sim, opts)
  local status, res = helper.http("POST", sim.base .. "/sim/calls", opts or {})
  assert(status == 200, "placing a simulated call failed: " .. tostring(status) .. " " .. tostring(res))
  return res.id
end

-- The simulated caller of call `id` presses `digits`.
function helper.press(sim, id, digits)
  helper.http("POST", sim.base .. "/sim/calls/" .. id .. "/dtmf", { digits = digits })
end

-- The latest RESULT table the flows logged that has `key`, once there is one.
function helper.last_result(run, key)
  return helper.wait_for(function()
    local rs = helper.results(run)
    for i = #rs, 1, -1 do
      if type(rs[i]) == "table" and rs[i][key] ~= nil then return rs[i] end
    end
  end, 15, "a result with " .. key .. " in " .. run.log)
end

-- A call into `flow`, once the flow has logged RESULT {"waiting": true}.
function helper.waiting_call(sim, run, flow)
  local id = helper.call(sim, { args = { flow } })
  helper.last_result(run, "waiting")
  return id
end

-- Keeps an events WebSocket open for application `app` (as Asterisk
-- refuses Stasis() for an app with none) until h.stop_all.
function helper.hold_app(sim, app)
  local steps = { { op = "open", name = "a", path = "/ari/events?app=" .. app .. "&api_key={{auth}}" },
    { op = "sleep", ms = 60000 } }
  local proc = spawn({ "node", "tests/node/ws_probe.js", sim.base, helper.user .. ":" .. helper.password,
    json.encode(steps) }, "hold-" .. app)
  helper.wait_for(function()
    return helper.http("GET", sim.url .. "/applications/" .. app) == 200
  end, 10, "application " .. app .. " to connect")
  return proc
end

-- Writes a flows directory from { name = source } and returns its path.
function helper.flows(files)
  local dir = new_name("flows")
  os.execute("mkdir -p " .. quote(dir))
  for name, src in pairs(files) do
    local f = assert(io.open(dir .. "/" .. name .. ".lua", "w"))
    f:write(src)
    f:close()
  end
  return dir
end

-- Lines the flows logged as JSON with luari.log.info("RESULT %s", json).
function helper.results(proc)
  local out = {}
  for line in helper.read(proc.log):gmatch("[^\n]+") do
    local payload = line:match("RESULT (.*)$")
    if payload then
      local ok, v = pcall(json.decode, payload)
      out[#out + 1] = ok and v or payload
    end
  end
  return out
end

-- The captures of a real Asterisk that the simulator is compared with:
-- $LUARI_SAMPLES, else shared/ari-samples beside the project.
function helper.samples_dir()
  local candidates = { "../shared/ari-samples" }
  local env = os.getenv("LUARI_SAMPLES")
  if env and env ~= "" then
    table.insert(candidates, 1, env)
  end
  for _, dir in ipairs(candidates) do
    local f = io.open(dir .. "/responses.jsonl")
    if f then
      f:close()
      return dir
    end
  end
  error("reference captures not found: set LUARI_SAMPLES to the ari-samples directory", 0)
end

-- Runs tests/node/<script> with node and returns the table it printed on
-- its "REPORT {json}" line, and all it printed. Node.js and the packages
-- of tests/node (`make deps`) are required: their absence fails the spec.
function helper.node(script, args)
  assert(os.execute("command -v node > /dev/null 2>&1") == 0,
    "node is not installed: these specs need Node.js (make deps installs it)")
  local pkg = io.open("tests/node/node_modules/ari-client/package.json")
  assert(pkg, "tests/node/node_modules is missing: run `make deps` (npm ci --prefix tests/node)")
  pkg:close()
  local cmd = { "node", quote("tests/node/" .. script) }
  for _, a in ipairs(args or {}) do
    cmd[#cmd + 1] = quote(a)
  end
  local output = sh(table.concat(cmd, " ") .. " 2>&1")
  local payload = output:match("\nREPORT ([^\n]*)") or output:match("^REPORT ([^\n]*)")
  assert(payload, "no report from node " .. script .. ":\n" .. output)
  return json.decode(payload), output
end

return helper
