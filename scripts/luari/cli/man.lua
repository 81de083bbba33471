-- `luari man`: the luari(1) manual page in troff, generated from the same
-- option tables as --help, so the two never disagree. `make install` puts
-- it in share/man/man1.

local main = require "luari.main"

local man = {}

local function esc(s)
  return (tostring(s):gsub("\\", "\\e"):gsub("^%.", "\\&."):gsub("%-", "\\-"))
end

local function option_lines(out, spec)
  for _, o in ipairs(spec) do
    if o.name ~= "help" then
      out[#out + 1] = ".TP"
      local head = "\\fB\\-\\-" .. esc(o.name) .. "\\fR"
      if not o.flag then
        head = head .. " \\fI" .. esc(o.arg or "VALUE") .. "\\fR"
      end
      out[#out + 1] = head
      local text = esc(o.help or "")
      if text ~= "" and not text:find("[%.%)]$") then
        text = text .. "."
      end
      if o.env then
        text = text .. " Also read from \\fB" .. esc(o.env) .. "\\fR."
      end
      if o.default ~= nil and not o.flag then
        local d = type(o.default) == "table" and table.concat(o.default, ",") or tostring(o.default)
        text = text .. " Default: " .. esc(d) .. "."
      end
      if o.values then
        text = text .. " One of: " .. esc(table.concat(o.values, ", ")) .. "."
      end
      out[#out + 1] = text
    end
  end
end

local SECTIONS = {
  { "run", "luari.cli.run", "luari run [options] FLOWS",
    "Connects to Asterisk through ARI and runs a flow for every call that enters Stasis(APP,NAME,ARGS...): "
      .. "FLOWS/NAME.lua, or the default flow. Reconnects for as long as it runs; reloads FLOWS when a file "
      .. "changes or on SIGHUP." },
  { "sim", "luari.cli.sim", "luari sim [options] FLOW",
    "Runs one simulated call through FLOW against the built-in simulated Asterisk on a virtual clock and "
      .. "prints a timed transcript. Exits 0 when the flow ended without error." },
  { "sim-server", "luari.cli.simserver", "luari sim-server [options]",
    "Serves the simulated Asterisk as a network ARI endpoint (REST, events WebSocket, api-docs) for any ARI "
      .. "client, with /sim/... to place simulated calls." },
}

function man.page()
  local out = {
    '.TH LUARI 1 "" "luari ' .. main.VERSION .. '" "User Commands"',
    ".SH NAME",
    "luari \\- call flows in Lua for Asterisk, through ARI",
    ".SH SYNOPSIS",
  }
  for _, s in ipairs(SECTIONS) do
    out[#out + 1] = ".B " .. esc(s[3])
    out[#out + 1] = ".br"
  end
  out[#out + 1] = ".B luari check FLOW..."
  out[#out + 1] = ".br"
  out[#out + 1] = ".B luari version"
  out[#out + 1] = ".SH DESCRIPTION"
  out[#out + 1] = "luari hosts call flows written in Lua. Each call runs its flow in its own coroutine on one "
    .. "event loop; a flow reads like straight-line code while thousands of calls share one thread."
  for _, s in ipairs(SECTIONS) do
    out[#out + 1] = ".SH " .. esc(s[1]:upper())
    out[#out + 1] = esc(s[4])
    option_lines(out, require(s[2]).SPEC)
  end
  out[#out + 1] = ".SH CHECK"
  out[#out + 1] = "\\fBluari check FLOW...\\fR compiles flows without running them; prints file:line: message "
    .. "for each error and exits 1, or exits 0."
  out[#out + 1] = ".SH SIGNALS"
  out[#out + 1] = "SIGHUP reloads the flows. SIGINT and SIGTERM stop taking new calls, let running flows finish "
    .. "for up to \\-\\-drain\\-seconds, then exit 0."
  out[#out + 1] = ".SH FILES"
  out[#out + 1] = "A config file (\\-\\-config) is a Lua file returning a table of the settings above "
    .. "(url, user, password, app, flows, ...). A file that holds a password must be readable by its owner only."
  out[#out + 1] = ".SH EXIT STATUS"
  out[#out + 1] = "0 on success or after a drain; 1 when flows do not compile or the login is refused; 2 on a "
    .. "command line error."
  out[#out + 1] = ".SH SEE ALSO"
  out[#out + 1] = "The README of luari, and the Asterisk ARI documentation."
  return table.concat(out, "\n") .. "\n"
end

function man.main()
  io.stdout:write(man.page())
  return 0
end

return man
