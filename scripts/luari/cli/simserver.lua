-- `luari sim-server`: the simulated Asterisk as a network ARI endpoint that
-- any ARI client can use (REST, events WebSocket, api-docs), plus /sim/...
-- to place simulated calls and press keys.

local loop = require "luari.loop"
local options = require "luari.cli.options"

local cmd = {}

cmd.SPEC = {
  { name = "listen", default = "127.0.0.1:8088", arg = "HOST:PORT", help = "address to serve (port 0: any free port)" },
  { name = "user", env = "ARI_USER", arg = "USER", help = "ARI user clients must give (default asterisk)" },
  { name = "password", env = "ARI_PASSWORD", arg = "PASSWORD", help = "ARI password (default asterisk)" },
  { name = "no-auth", flag = true, help = "accept requests without credentials" },
  { name = "speed", type = "number", positive = true, default = 1, help = "clock speed factor (10: ten times real time)" },
  { name = "sounds", arg = "FILE", help = "sound lengths, one 'name<TAB>seconds' per line" },
  { name = "sound-default", type = "number", min = 0, word = "missing", arg = "SECONDS|missing",
    help = "length of sounds not in the table, seconds (default 2); missing: they fail, as on Asterisk" },
  { name = "write-timeout", type = "number", min = 0, default = 0.1,
    help = "seconds a WebSocket reader may fall behind before it is dropped, as Asterisk does" },
  { name = "http-keepalive", type = "number", min = 0, default = 15,
    help = "seconds an idle kept-alive HTTP connection stays open (Asterisk: http.conf session_keep_alive, 15)" },
  { name = "journal", flag = true, help = "keep every ARI request (not /sim ones) for GET /sim/requests" },
  { name = "port-file", arg = "FILE", help = "write the port served to FILE" },
  { name = "script", arg = "FILE",
    help = "a Lua file returning function(server): extra behaviour or faults, run at start" },
  { name = "log-level", env = "LUARI_LOG_LEVEL", default = "info", values = { "debug", "info", "warn", "error" },
    help = "log level" },
  { name = "help", short = "h", flag = true, help = "show this help" },
}

-- Writes the port beside the file and renames it into place: whoever
-- waits for the file never reads it half written. Returns an error or nil.
local function write_port_file(path, port)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then
    return "cannot write " .. err
  end
  local ok, werr = f:write(port, "\n")
  f:close()
  if not ok then
    os.remove(tmp)
    return "cannot write " .. tmp .. ": " .. tostring(werr)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    return "cannot write " .. tostring(rerr)
  end
  return nil
end

local function usage()
  return "usage: luari sim-server [options]\n\n" .. options.usage(cmd.SPEC) .. "\n"
end

function cmd.main(args)
  local opts, positional = options.command("sim-server", usage(), cmd.SPEC, args)
  if not opts then
    return positional
  end
  loop.set_log({ level = opts.log_level })
  local host, port = options.host_port(opts.listen)
  if not host then
    io.stderr:write("luari sim-server: --listen expects HOST:PORT (got ", opts.listen, ")\n")
    return 2
  end
  local Model = require "luari.sim.model"
  local sounds
  if opts.sounds then
    local err
    sounds, err = Model.load_sounds_tsv(opts.sounds)
    if not sounds then
      io.stderr:write("luari sim-server: cannot read ", opts.sounds, ": ", tostring(err), "\n")
      return 1
    end
  end
  local user, password = opts.user, opts.password
  if opts.no_auth then
    user, password = nil, nil
  elseif not user then
    user, password = "asterisk", password or "asterisk"
    loop.log("info", "sim-server: no --user given: clients log in as user 'asterisk' (see --help)")
  end
  local Server = require "luari.sim.server"
  local server = Server.new({
    user = user,
    password = password,
    speed = opts.speed,
    sounds = sounds,
    sound_default = opts.sound_default,
    journal = opts.journal,
    write_timeout = opts.write_timeout,
    idle_timeout = opts.http_keepalive,
    apidocs = require("luari.sim.apidocs").document,
    log = loop.log,
  })
  if opts.script then
    local chunk, serr = loadfile(opts.script)
    local ok, perr = chunk ~= nil, serr
    if chunk then
      ok, perr = pcall(function()
        local setup = chunk()
        if type(setup) ~= "function" then
          error(opts.script .. " must return function(server)")
        end
        setup(server)
      end)
    end
    if not ok then
      loop.log("error", "sim-server: --script: " .. tostring(perr))
      return 1
    end
  end
  local bound, err = server:listen(host, port)
  if not bound then
    loop.log("error", "sim-server: " .. tostring(err))
    return 1
  end
  if opts.port_file then
    local werr = write_port_file(opts.port_file, bound)
    if werr then
      loop.log("error", "sim-server: --port-file: " .. werr)
      server:close()
      return 1
    end
  end
  loop.log("info", string.format("sim-server: simulated Asterisk on http://%s:%d/ari (speed %g)",
    host:find(":") and ("[" .. host .. "]") or host, bound, opts.speed))
  local function stop()
    server:close()
    loop.stop()
  end
  loop.signal("TERM", stop)
  loop.signal("INT", stop)
  loop.run()
  return 0
end

return cmd
