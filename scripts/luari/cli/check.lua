-- `luari check FLOW...`: compiles flows the way `luari run` loads them
-- (every .lua file under a directory, modules included; each file's top
-- level runs, under the instruction budget), but starts no call. Exit 0
-- when all are fine; 1 with one "file:line: message" line per error.

local flows = require "luari.flows"

local check = {}

local USAGE = [[
usage: luari check FLOW...

Each FLOW is a flows directory or a flow file. Prints file:line: message for
each error and exits 1; exits 0 when every flow compiles and returns a function.
]]

function check.main(args)
  if args[1] == "--help" or args[1] == "-h" then
    io.stdout:write(USAGE)
    return 0
  end
  if #args == 0 then
    io.stderr:write("luari check: give at least one flow file or directory\n\n", USAGE)
    return 2
  end
  local nerrors, nflows = 0, 0
  for _, path in ipairs(args) do
    local gen, errors = flows.load(path, 1)
    if gen then
      nflows = nflows + #gen:names()
    else
      for _, e in ipairs(errors) do
        io.stderr:write(e, "\n")
        nerrors = nerrors + 1
      end
    end
  end
  if nerrors > 0 then
    return 1
  end
  io.stdout:write(string.format("luari check: %d flow%s OK\n", nflows, nflows == 1 and "" or "s"))
  return 0
end

return check
