-- luari's command line: reads the subcommand and hands over to its module.

local main = {}

main.VERSION = "0.1.0"

local USAGE = [[
usage: luari <command> [options]

  luari run   [options] FLOWS       connect to Asterisk, run flows for calls
  luari sim   [options] FLOW        run one flow against the built-in simulated Asterisk
  luari sim-server [options]        serve the simulated Asterisk as a network ARI endpoint
  luari check FLOW...               compile-check flow files
  luari version

Run `luari <command> --help` for the options of a command.
]]

local commands = {
  run = "luari.cli.run",
  sim = "luari.cli.sim",
  ["sim-server"] = "luari.cli.simserver",
  check = "luari.cli.check",
  man = "luari.cli.man",
}

function main.main(argv)
  local name = argv[1]
  if name == "version" or name == "--version" then
    io.stdout:write("luari ", main.VERSION, " (", jit and jit.version or _VERSION, ")\n")
    return 0
  end
  if name == nil or name == "help" or name == "--help" or name == "-h" then
    io.stdout:write(USAGE)
    return name and 0 or 2
  end
  local module = commands[name]
  if not module then
    io.stderr:write("luari: unknown command '", tostring(name), "'\n\n", USAGE)
    return 2
  end
  local args = {}
  for i = 2, #argv do
    args[#args + 1] = argv[i]
  end
  return require(module).main(args)
end

return main
