-- `luari run FLOWS`: connect to Asterisk, take calls into flows, keep the
-- events WebSocket up for as long as luari runs, drain on SIGTERM.

local App = require "luari.app"
local ari = require "luari.ari"
local config = require "luari.config"
local events = require "luari.events"
local host = require "luari.host"
local http = require "luari.http"
local loop = require "luari.loop"
local metrics = require "luari.metrics"
local metrics_server = require "luari.metrics_server"
local options = require "luari.cli.options"
local Reloader = require "luari.reload"
local Runtime = require "luari.runtime"
local util = require "luari.util"
local watch = require "luari.watch"

local run = {}

run.SPEC = {
  { name = "url", env = "ARI_URL", default = "http://127.0.0.1:8088/ari", arg = "URL", help = "ARI base URL" },
  { name = "user", env = "ARI_USER", arg = "USER", help = "ARI user" },
  { name = "password", env = "ARI_PASSWORD", arg = "PASSWORD", help = "ARI password" },
  { name = "app", env = "ARI_APP", multi = true, default = { "luari" }, arg = "NAME",
    help = "Stasis application (repeatable)" },
  { name = "default-flow", arg = "NAME", help = "flow for calls that name none" },
  { name = "log-level", env = "LUARI_LOG_LEVEL", default = "info", values = { "debug", "info", "warn", "error" },
    help = "log level" },
  { name = "log-format", env = "LUARI_LOG_FORMAT", default = "text", values = { "text", "json" },
    help = "log line format" },
  { name = "drain-seconds", type = "number", min = 0, default = 30, help = "on SIGTERM, time given to running calls" },
  { name = "timeout", type = "number", positive = true, default = 10, help = "seconds before an ARI request gives up" },
  { name = "insecure", flag = true, help = "do not verify TLS certificates (not for production)" },
  { name = "ca-file", env = "ARI_CA_FILE", arg = "FILE", help = "CA certificates for https/wss" },
  { name = "reconnect-max", type = "number", positive = true, default = 10, help = "longest wait between reconnects, seconds" },
  { name = "hangup-grace", type = "number", min = 0, default = 10,
    help = "seconds a flow may run on after its caller hung up" },
  { name = "instruction-budget", type = "number", positive = true, default = 50000000,
    help = "VM instructions a flow may run without waiting" },
  { name = "memory-limit", type = "number", min = 0, default = 1024,
    help = "Lua heap limit in MB; the flow that passes it fails (0: none)" },
  { name = "rest", env = "ARI_REST", default = "http", values = { "http", "websocket" },
    help = "how REST requests travel: http, or websocket (over the events WebSocket; Asterisk 20.14, 21.9,"
      .. " 22.4 or later, HTTP while it does not answer there)" },
  { name = "max-event-size", type = "number", positive = true, default = 16777216,
    help = "largest events WebSocket message accepted, bytes (a bigger one drops the connection)" },
  { name = "no-watch", flag = true, help = "do not reload FLOWS when files change (SIGHUP still does)" },
  { name = "metrics", env = "LUARI_METRICS", arg = "HOST:PORT",
    help = "serve /metrics (Prometheus) and /healthz on this address" },
  { name = "config", env = "LUARI_CONFIG", arg = "FILE",
    help = "read settings from a Lua file (the command line and environment win)" },
  { name = "print-config", flag = true, help = "print the settings in effect (password masked) and exit" },
  { name = "help", short = "h", flag = true, help = "show this help" },
}

local function usage()
  return "usage: luari run [options] FLOWS\n\n" .. options.usage(run.SPEC)
    .. "\n\nFLOWS may also come from the config file (flows = \"...\").\n"
end

-- Why the CA file cannot serve (nil when it can): told at start, not as a
-- certificate "not trusted" on every connection attempt.
local function ca_file_problem(path)
  local f, err = io.open(path, "rb")
  if not f then
    return (err:gsub("^[^:]*: ", ""))
  end
  local text, read_err = f:read(1024 * 1024)
  f:close()
  if not text then
    return read_err or "cannot read it"
  elseif not text:find("-----BEGIN CERTIFICATE-----", 1, true) then
    return "no PEM certificate in it (-----BEGIN CERTIFICATE-----)"
  end
  return nil
end

local function print_errors(errors)
  for _, e in ipairs(errors) do
    io.stderr:write("luari: ", e, "\n")
  end
end

-- One connection-down message per distinct cause, not one per retry, nor
-- one per connection that a server accepts and ends at once: the cause
-- is told again once a connection has lasted (as long as the longest wait
-- between tries).
local function down_reporter(state)
  return function(down)
    if down.kind == "stopped" then
      return
    end
    if state.opened_at and loop.now() - state.opened_at >= state.reconnect_max then
      state.last_down = nil
    end
    state.opened_at = nil
    local msg = down.message
    if down.kind == "http" and (down.status == 401 or down.status == 403) then
      msg = msg .. " (check --user/--password or ARI_USER/ARI_PASSWORD)"
    end
    local cause = util.failure_cause(msg)
    if cause ~= state.last_down then
      state.last_down = cause
      loop.log("warn", string.format("ARI unavailable: %s (retrying every %.1f s at most)", msg,
        state.reconnect_max))
    else
      loop.log("debug", string.format("ARI still unavailable; next try in %.1f s", down.retry_in))
    end
  end
end

-- Says so once Asterisk answers getInfo (not when the connection it
-- asked on has gone meanwhile); a refused getInfo is told as well: the
-- WebSocket may be up while REST is not (a password changed since, a
-- read-only ARI user).
local function log_connected(ctx)
  local app, opts, base = ctx.app, ctx.opts, ctx.base
  local events = ctx.events
  app:spawn_system(function()
    local info, err = ari.asterisk.getInfo()
    if not events:is_open() then
      return
    end
    local version = type(info) == "table" and type(info.system) == "table" and info.system.version
    loop.log("info", string.format("connected to Asterisk %s at %s (applications: %s)",
      version or "(version unknown)", base, table.concat(opts.app, ", ")))
    if err and err.status then
      loop.log("warn", string.format("REST: %s%s", tostring(err),
        (err.status == 401 or err.status == 403) and " (check --user/--password or ARI_USER/ARI_PASSWORD)"
          or ""))
    end
  end)
end

-- --rest websocket: once the events WebSocket is open, one ping over it
-- says whether this Asterisk takes REST there; until it answers, and if it
-- never does, requests go over HTTP. Asked again on every open, and after
-- a ping with no reply (an Asterisk too old, or too busy to answer in time)
-- every three --timeout periods while that connection lasts. Each open
-- starts its own round: `ctx.rest_round` tells a late reply or timer of an
-- earlier one to let go.
local offer_rest_websocket

local function rest_websocket_refused(ctx, round, status, err, errmsg)
  if ctx.rest_state ~= "http" then
    loop.log("warn", string.format("--rest websocket: Asterisk did not answer REST over the events WebSocket"
      .. " (%s; it needs Asterisk 20.14, 21.9, 22.4 or later): requests go over HTTP%s",
      errmsg or string.format("status %d", status), err == "timeout" and "; asking again" or ""))
  end
  ctx.rest_state = "http"
  if err == "timeout" then
    loop.timer(3 * ctx.opts.timeout, function()
      if ctx.rest_round == round and ctx.events:is_open() and not ctx.finishing then
        offer_rest_websocket(ctx, round)
      end
    end)
  end
end

offer_rest_websocket = function(ctx, round)
  http.rest_over(nil)
  local ws = ctx.events
  http.request_over(ws, "GET", { "asterisk", "ping" }, nil, nil, ctx.opts.timeout,
    function(status, _, err, errmsg)
      if ctx.rest_round ~= round or ctx.finishing or err == "conn_lost" then
        return -- a later open asks again
      elseif status ~= 200 then
        return rest_websocket_refused(ctx, round, status, err, errmsg)
      end
      http.rest_over(ws)
      if ctx.rest_state ~= "websocket" then
        loop.log("info", "REST requests go over the events WebSocket")
      end
      ctx.rest_state = "websocket"
    end)
end

local function start_events(ctx)
  local opts, app = ctx.opts, ctx.app
  local report_down = down_reporter(ctx)
  local debug_events = loop.log_enabled("debug")
  ctx.events = events.start({
    url = opts.url,
    apps = opts.app,
    user = opts.user,
    password = opts.password,
    insecure = opts.insecure,
    ca_file = opts.ca_file,
    backoff_max = opts.reconnect_max,
    max_message = opts.max_event_size,
    on_open = function()
      local reconnect = ctx.connected_once
      if reconnect then
        ctx.metrics:inc("luari_ws_reconnects_total")
      end
      ctx.connected_once = true
      ctx.opened_at = loop.now()
      if opts.rest == "websocket" then
        ctx.rest_round = {}
        offer_rest_websocket(ctx, ctx.rest_round)
      end
      log_connected(ctx)
      if reconnect then
        app:resync()
      end
    end,
    on_event = function(ev)
      if debug_events then
        loop.log("debug", "event " .. tostring(ev.type))
      end
      app:on_event(ev)
    end,
    on_down = function(down)
      if down.kind == "http" and (down.status == 401 or down.status == 403) and not ctx.connected_once then
        loop.log("error", "cannot log in to ARI: " .. down.message
          .. " (check --user/--password or ARI_USER/ARI_PASSWORD)")
        ctx.exit_code = 1
        ctx.events:stop()
        loop.stop()
        return
      end
      report_down(down)
    end,
  })
end

-- Hot reload: inotify on FLOWS feeds the reloader, which debounces and
-- swaps generations (luari.reload). Without a watcher (--no-watch, or
-- inotify unavailable) SIGHUP still reloads.
local function start_watch(ctx)
  local debug_watch = loop.log_enabled("debug")
  local w, err = watch.open(ctx.flows_path, function(what, file)
    if debug_watch then
      loop.log("debug", string.format("flows: %s %s", what, file ~= "" and file or ctx.flows_path))
    end
    ctx.reloader:notify(what, file)
  end)
  ctx.watcher = w
  if not w then
    loop.log("warn", "flows: not watching for changes (" .. tostring(err) .. "); SIGHUP reloads")
  end
end

local function on_sighup(ctx)
  if not ctx.opts.no_watch then
    if ctx.watcher then
      -- FLOWS may be a symlink that now points elsewhere.
      local ok, err = ctx.watcher:resync()
      if not ok then
        loop.log("warn", "flows: " .. tostring(err))
      end
    else
      start_watch(ctx)
    end
  end
  ctx.reloader:rescan("SIGHUP")
end

local function stop_watch(ctx)
  if ctx.watcher then
    ctx.watcher:close()
    ctx.watcher = nil
  end
  ctx.reloader:stop()
end

-- Once a second, the collector's pace follows the heap (Runtime.pace_collector).
local function start_gc_pacing(ctx)
  local eager = false
  local function check()
    if ctx.finishing then
      return
    end
    local kb = collectgarbage("count")
    local now_eager = Runtime.pace_collector(eager, kb)
    if now_eager ~= eager then
      eager = now_eager
      loop.log("debug", string.format("Lua heap %.1f MB: %s collector", kb / 1024, eager and "eager" or "lazy"))
    end
    loop.timer(1, check)
  end
  loop.timer(1, check)
end

-- How long luari waits, on its way out, for Asterisk to confirm the
-- hang-ups of the calls still running.
local HANGUP_WAIT = 2

-- Calls still running when luari stops (the drain ran out, or a second
-- signal) are hung up, as when their flows end: left in Stasis, with
-- nobody to serve them, their callers would wait in silence. Then done().
local function hang_up_the_rest(ctx, done)
  local app, calls = ctx.app, {}
  for _, call in pairs(app.calls) do
    calls[#calls + 1] = call
  end
  if #calls == 0 then
    return done()
  end
  loop.log("warn", string.format("hanging up %d call(s) still running", #calls))
  for _, call in ipairs(calls) do
    app:end_call(call)
  end
  local deadline = loop.now() + HANGUP_WAIT
  local function check()
    if http.active() == 0 or loop.now() >= deadline then
      done()
    else
      loop.timer(0.05, check)
    end
  end
  loop.timer(0, check)
end

local function finish(ctx)
  if ctx.finishing then
    return
  end
  ctx.finishing = true
  stop_watch(ctx)
  hang_up_the_rest(ctx, function()
    ctx.events:stop()
    loop.timer(0.5, function()
      loop.log("info", "luari: stopped")
      loop.stop()
    end)
  end)
end

local function shutdown(ctx, signame)
  local app = ctx.app
  if ctx.draining then
    loop.log("warn", "second " .. signame .. ": stopping now")
    finish(ctx)
    return
  end
  ctx.draining = true
  app.accepting = false
  loop.log("info", string.format("%s: no new calls; waiting up to %g s for %d running call(s)", signame,
    ctx.opts.drain_seconds, app.stats.active))
  local deadline = loop.now() + ctx.opts.drain_seconds
  local function check()
    if app.stats.active == 0 or loop.now() >= deadline then
      if app.stats.active > 0 then
        loop.log("warn", string.format("drain time over with %d call(s) still running", app.stats.active))
      end
      finish(ctx)
    else
      loop.timer(0.1, check)
    end
  end
  check()
end

-- --config FILE (or LUARI_CONFIG), read before the other options so that
-- they can override it.
local function config_path(args)
  for i, a in ipairs(args) do
    if a == "--config" then
      return args[i + 1]
    end
    local v = a:match("^%-%-config=(.*)$")
    if v then
      return v
    end
  end
  local env = os.getenv("LUARI_CONFIG")
  return env ~= "" and env or nil
end

-- Options, FLOWS and where each setting came from; or nil, exit status.
local function settings(args)
  local cfg
  local path = config_path(args)
  if path then
    local err
    cfg, err = config.load(path)
    if not cfg then
      io.stderr:write("luari run: ", err, "\n")
      return nil, 2
    end
  end
  local opts, positional, source = options.command("run", usage(), run.SPEC, args, cfg)
  if not opts then
    return nil, positional
  end
  local flows = positional[1] or (cfg and cfg.flows)
  if #positional > 1 or not flows then
    io.stderr:write("luari run: give one FLOWS directory or file\n\n", usage())
    return nil, 2
  end
  return opts, flows, source
end

local function start_metrics(ctx)
  local host, port = options.host_port(ctx.opts.metrics)
  if not host or not port then
    return nil, "--metrics expects HOST:PORT (got " .. ctx.opts.metrics .. ")"
  end
  local srv, err = metrics_server.start(host, port, {
    registry = ctx.metrics,
    app = ctx.app,
    reloader = ctx.reloader,
    connected = function()
      return ctx.events ~= nil and ctx.events:is_open()
    end,
    events_stats = function()
      return ctx.events and ctx.events:stats() or {}
    end,
  })
  if not srv then
    return nil, err
  end
  ctx.metrics_server = srv
  loop.log("info", string.format("metrics on http://%s:%d/metrics (health: /healthz)", host, srv:port()))
  return true
end

-- Counts ARI requests by operation and status, with their latency. The
-- label tables are made once per operation and status, not per request.
local function observe_requests(rt, reg)
  local by_op = {}
  local function labels_for(op, status)
    local l = by_op[op]
    if not l then
      l = { op = { op = op }, status = {} }
      by_op[op] = l
    end
    local with_status = l.status[status]
    if not with_status then
      with_status = { op = op, status = tostring(status) }
      l.status[status] = with_status
    end
    return l.op, with_status
  end
  rt.on_request = function(op, status, seconds)
    local op_labels, status_labels = labels_for(op, status)
    reg:inc("luari_ari_requests_total", status_labels)
    reg:observe("luari_ari_request_seconds", op_labels, seconds)
  end
end

function run.main(args)
  local opts, flows_path, source = settings(args)
  if not opts then
    return flows_path
  end
  if opts.print_config then
    io.stdout:write(config.describe(opts, run.SPEC, source), string.format("-- flows: %s\n", flows_path))
    return 0
  end
  local positional = { flows_path }
  loop.set_log({ level = opts.log_level, format = opts.log_format })
  if source.password == "cli" or (source.url == "cli" and config.url_has_password(opts.url)) then
    loop.log("warn", "--password on the command line can be read by other users of this machine (ps):"
      .. " prefer ARI_PASSWORD or a config file only you can read")
  end
  Runtime.set_memory_limit(opts.memory_limit)
  local rt = Runtime.new(host.backend(), { instruction_budget = opts.instruction_budget })
  local reg = metrics.luari()
  observe_requests(rt, reg)
  local app = App.new({ rt = rt, default_flow = opts.default_flow, apps = opts.app,
    hangup_grace = opts.hangup_grace, metrics = reg })
  local ctx = { opts = opts, app = app, flows_path = positional[1], exit_code = 0,
    reconnect_max = opts.reconnect_max, metrics = reg }
  ctx.reloader = Reloader.new({
    app = app, path = positional[1], timer = loop.timer, now = loop.now, clock = loop.now, log = loop.log,
    instruction_budget = opts.instruction_budget,
    resync = function()
      if not ctx.watcher then
        return nil, "not watching"
      end
      return ctx.watcher:resync()
    end,
  })
  -- The signals' watchers before the first load, which may take a while:
  -- a SIGHUP or SIGTERM meanwhile (a service manager's reload or stop) is
  -- then acted on once the loop runs, instead of killing the process.
  loop.signal("TERM", function() shutdown(ctx, "SIGTERM") end)
  loop.signal("INT", function() shutdown(ctx, "SIGINT") end)
  loop.signal("HUP", function() on_sighup(ctx) end)
  local gen, errors = ctx.reloader:start()
  if not gen then
    print_errors(errors)
    return 1
  end
  if opts.ca_file then
    local err = ca_file_problem(opts.ca_file)
    if err then
      io.stderr:write("luari run: --ca-file ", opts.ca_file, ": ", err, "\n")
      return 2
    end
  end
  local ok, base = pcall(http.configure, {
    url = opts.url, user = opts.user, password = opts.password,
    insecure = opts.insecure, ca_file = opts.ca_file, timeout = opts.timeout,
  })
  if not ok then
    local from = { env = " (from ARI_URL)", config = " (from the config file)" }
    io.stderr:write("luari run: ", tostring(base), ": '", config.mask_url(opts.url), "'",
      from[source.url] or "", "\n")
    return 2
  end
  if opts.insecure then
    loop.log("warn", "--insecure: TLS certificates are not verified")
  end
  ctx.base = base
  run.ctx = ctx
  loop.log("info", string.format("luari: flows %s from %s; connecting to %s", util.name_list(gen:names()),
    positional[1], base))
  if opts.default_flow and not gen.flows[opts.default_flow] then
    loop.log("warn", string.format("--default-flow %s: FLOWS has no such flow: calls that name no flow will be"
      .. " hung up until it appears", opts.default_flow))
  end
  if opts.metrics then
    local mok, merr = start_metrics(ctx)
    if not mok then
      io.stderr:write("luari run: ", tostring(merr), "\n")
      return 2
    end
  end
  start_events(ctx)
  start_gc_pacing(ctx)
  if not opts.no_watch then
    start_watch(ctx)
  end
  loop.run()
  return ctx.exit_code
end

return run
