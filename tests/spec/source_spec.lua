-- Lua lets a later `function M:f` silently replace an earlier one of the
-- same name in a file: one such leftover once hid a newer App:resync. No
-- file of luari's defines a function name twice.

local function lua_files()
  local out = {}
  local p = assert(io.popen("find scripts examples -name '*.lua' | sort"))
  for path in p:lines() do
    out[#out + 1] = path
  end
  p:close()
  return out
end

describe("luari's Lua sources", function()
  it("define each function name once per file", function()
    local files = lua_files()
    assert(#files > 30, "the sources were not found (run from the project root)")
    local twice = {}
    for _, path in ipairs(files) do
      local seen = {}
      local n = 0
      for line in io.lines(path) do
        n = n + 1
        local name = line:match("^local function ([%w_]+)") or line:match("^function ([%w_.:]+)")
          or line:match("^([%w_.]+) = function")
        if name then
          if seen[name] then
            twice[#twice + 1] = string.format("%s:%d: %s (first at line %d)", path, n, name, seen[name])
          end
          seen[name] = seen[name] or n
        end
      end
    end
    assert(#twice == 0, "defined twice:\n" .. table.concat(twice, "\n"))
  end)
end)
