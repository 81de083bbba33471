-- Every flow in examples/ runs in `luari sim` and ends without error, with a
-- transcript a person can read. The examples are found when the spec runs,
-- so a new example is checked without touching this file. An example whose
-- comments show how to try it ("luari sim examples/menu.lua --dtmf 1@2")
-- runs with exactly those options, once per such line; otherwise with
-- the defaults.

local h = require "e2e.helper"

local function examples()
  local out = {}
  local p = io.popen("ls examples/*.lua 2>/dev/null")
  for path in p:lines() do
    out[#out + 1] = path
  end
  p:close()
  table.sort(out)
  return out
end

-- Words of a command line, with '...' and "..." quoting.
local function words(text)
  local out, i = {}, 1
  while true do
    i = text:find("%S", i)
    if not i then
      return out
    end
    local word = ""
    while i <= #text and not text:sub(i, i):match("%s") do
      local c = text:sub(i, i)
      if c == '"' or c == "'" then
        local close = assert(text:find(c, i + 1, true), "unbalanced quote in: " .. text)
        word = word .. text:sub(i + 1, close - 1)
        i = close + 1
      else
        word = word .. c
        i = i + 1
      end
    end
    out[#out + 1] = word
  end
end

-- The option lists the example's comments give ("luari sim examples/x.lua
-- --dtmf 1@2", up to a closing backquote), or one empty list.
local function runs_of(path)
  local runs, seen = {}, {}
  local name = path:match("([^/]+)$")
  for line in io.lines(path) do
    local rest = line:match("^%s*%-%-.-luari sim%s+examples/" .. name:gsub("%p", "%%%0") .. "(.*)$")
    if rest and (rest == "" or rest:match("^[%s`]")) then
      local args = words(rest:match("^[^`]*"))
      local key = table.concat(args, "\0")
      if not seen[key] then
        seen[key] = true
        runs[#runs + 1] = args
      end
    end
  end
  if #runs == 0 then
    runs[1] = {}
  end
  return runs
end

local function run_sim(path, args)
  local cmd = { h.quote(h.bin), "sim" }
  for _, a in ipairs(args) do
    cmd[#cmd + 1] = h.quote(a)
  end
  cmd[#cmd + 1] = h.quote(path)
  local out = h.tmpdir() .. "/example.out"
  local status = os.execute(table.concat(cmd, " ") .. " > " .. h.quote(out) .. " 2>&1")
  return status, h.read(out)
end

local LINE = "^%s*(%d+%.%d%d%d)  (%S+)%s+(.*)$"

describe("the examples in luari sim", function()
  local list = examples()

  it("include hello.lua at least", function()
    assert.is_truthy(list[1], "no examples/*.lua found")
    local found = false
    for _, p in ipairs(list) do
      found = found or p == "examples/hello.lua"
    end
    assert.is_true(found)
  end)

  for _, path in ipairs(list) do
    for _, args in ipairs(runs_of(path)) do
      local label = path .. (#args > 0 and (" " .. table.concat(args, " ")) or "")
      it(label .. " ends without error, with a sensible transcript", function()
        local status, text = run_sim(path, args)
        assert.are.equal(0, status, text)
        local lines = {}
        for l in text:gmatch("[^\n]+") do
          lines[#lines + 1] = l
        end
        assert.is_true(#lines >= 4, text)
        -- every line: time, who, what; continuation lines (a traceback) are indented
        local last_t, who_seen = 0, {}
        for _, l in ipairs(lines) do
          local t, who = l:match(LINE)
          if t then
            t = tonumber(t)
            assert.is_true(t >= last_t, "time goes backwards at: " .. l .. "\n" .. text)
            last_t = t
            who_seen[who] = true
          else
            assert.is_truthy(l:match("^%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s"), "not a transcript line: " .. l)
          end
        end
        assert.is_truthy(lines[1]:match("^%s+0%.000  caller    calls from "), text)
        assert.is_truthy(text:find("event     StasisStart: the call enters the application", 1, true), text)
        for _, who in ipairs({ "caller", "event", "flow", "asterisk", "end", "result" }) do
          assert.is_true(who_seen[who] == true, "no '" .. who .. "' line:\n" .. text)
        end
        assert.is_nil(text:find("the flow failed", 1, true), text)
        assert.is_nil(text:find("internal error", 1, true), text)
        assert.is_truthy(text:find("end       the flow returned", 1, true), text)
        assert.is_truthy(lines[#lines]:match("result    the flow ended without error after [%d%.]+ s; .+"), text)
      end)
    end
  end
end)

describe("luari sim given a directory", function()
  local function sim(args)
    local p = io.popen(h.CLEAN_ENV .. h.quote(h.bin) .. " sim " .. args .. " 2>&1; echo exit=$?")
    local out = p:read("*a")
    p:close()
    return out
  end

  it("runs its only flow, or asks which one (exit 2) when it holds several", function()
    local one = h.flows({ solo = "return function(call) call:answer() end\n" })
    local out = sim(h.quote(one))
    assert.truthy(out:find("the flow ended without error", 1, true), out)
    assert.truthy(out:find("exit=0", 1, true), out)
    local two = h.flows({ a = "return function(call) end\n", b = "return function(call) end\n" })
    out = sim(h.quote(two))
    assert.truthy(out:find("luari sim: " .. two .. " holds flows a, b: name the one to run with --flow NAME",
      1, true), out)
    assert.truthy(out:find("exit=2", 1, true), out)
    out = sim("--flow b " .. h.quote(two))
    assert.truthy(out:find("the flow ended without error", 1, true), out)
  end)

  it("takes a bad --dtmf as a usage error (exit 2), as any other bad option", function()
    local out = sim("--dtmf x@1 examples/hello.lua")
    assert.truthy(out:find("luari sim: bad DTMF item 'x@1'", 1, true), out)
    assert.truthy(out:find("exit=2", 1, true), out)
  end)
end)
