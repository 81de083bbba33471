-- Hot reload of flows: generations (luari.flows), the reloader that swaps
-- them (luari.reload), and 200 calls in the in-process simulator living
-- through 50 rewrites of their flow.

local Clock = require "luari.sim.clock"
local flows = require "luari.flows"
local Reloader = require "luari.reload"
local World = require "luari.sim.world"

local sh = require("testkit").sh

local dirs = {}
local function tmpdir()
  local d = sh("mktemp -d /tmp/luari-reload.XXXXXX"):gsub("%s+$", "")
  dirs[#dirs + 1] = d
  return d
end

local function write(dir, rel, text)
  local sub = rel:match("^(.*)/[^/]*$")
  if sub then
    os.execute("mkdir -p '" .. dir .. "/" .. sub .. "'")
  end
  -- Written whole under another name and renamed, as a careful editor does,
  -- so a reader never sees half a file.
  local tmp = dir .. "/" .. rel .. ".tmp"
  local f = assert(io.open(tmp, "wb"))
  f:write(text)
  f:close()
  assert(os.rename(tmp, dir .. "/" .. rel))
end

local function remove(dir, rel)
  assert(os.remove(dir .. "/" .. rel))
end

-- A reloader on a virtual clock, with its log lines kept.
local function new_reloader(dir, opts)
  opts = opts or {}
  local clock = Clock.new()
  local logs = {}
  local app = { generation = nil }
  local r = Reloader.new({
    app = app,
    path = dir,
    timer = function(s, fn)
      local h = clock:after(s, fn)
      return { stop = function() h:cancel() end }
    end,
    now = function() return clock:now() end,
    log = function(level, msg) logs[#logs + 1] = level .. ": " .. msg end,
    resync = opts.resync,
    instruction_budget = opts.instruction_budget,
  })
  local gen, errors = r:start()
  assert(gen, errors and table.concat(errors, "\n"))
  return r, clock, logs, app
end

local function grep(logs, pattern)
  local found = {}
  for _, l in ipairs(logs) do
    if l:find(pattern) then
      found[#found + 1] = l
    end
  end
  return found
end

local FLOW = "return function(call) end\n"

teardown(function()
  for _, d in ipairs(dirs) do
    os.execute("rm -rf '" .. d .. "'")
  end
end)

describe("luari.flows", function()
  it("compiles every flow and module; each generation has its own modules and globals", function()
    local dir = tmpdir()
    write(dir, "a.lua", 'local m = require "lib.m"\ncounter = (counter or 0) + 1\nreturn function() return m, counter end\n')
    write(dir, "b.lua", 'local m = require "lib.m"\nreturn function() return m end\n')
    write(dir, "lib/m.lua", "return { n = 1 }\n")
    write(dir, ".hidden.lua", "this is not lua")
    write(dir, ".git/x.lua", "nor this")
    local g1 = assert(flows.load(dir, 1))
    local g2 = assert(flows.load(dir, 2))
    assert.are.same({ "a", "b" }, g1:names())
    local m1 = g1.flows.a()
    assert.are.equal(m1, g1.flows.b(), "one module instance per generation")
    assert.are_not.equal(m1, g2.flows.a(), "and a new one for the next")
    assert.are.equal(1, select(2, g1.flows.a()))
    assert.are.equal(1, select(2, g2.flows.a()), "globals stay in their generation")
    assert.is_nil(rawget(_G, "counter"))
    assert.are.equal(dir .. "/a.lua", g1.files.a)
  end)

  it("a flow or module named luari does not hide luari's own modules from the flows", function()
    local dir = tmpdir()
    write(dir, "luari.lua", "return function() return 'the luari flow' end\n")
    write(dir, "luari/ari.lua", "return 'not ari'\n")
    write(dir, "hello.lua", 'local luari = require "luari"\nlocal ari = require "luari.ari"\n'
      .. "return function() return luari, ari end\n")
    local g = assert(flows.load(dir, 1))
    local luari, ari = g.flows.hello()
    assert.are.equal(require("luari"), luari)
    assert.are.equal(require("luari.ari"), ari)
    assert.are.equal("the luari flow", g:get("luari")())
  end)

  it("a module that no flow requires yet still fails the generation, with file and line", function()
    local dir = tmpdir()
    write(dir, "a.lua", FLOW)
    write(dir, "lib/later.lua", "return {\n  x = 1\n  y = 2\n}\n")
    local gen, errors = flows.load(dir, 1)
    assert.is_nil(gen)
    assert.are.equal(1, #errors)
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/lib/later%.lua:3: ", errors[1])
  end)

  it("reports every broken file in one pass, each once", function()
    local dir = tmpdir()
    write(dir, "a.lua", 'local m = require "lib.bad"\nreturn function() end\n')
    write(dir, "b.lua", 'require "lib.bad"\nreturn function() end\n')
    write(dir, "c.lua", "local t = {}\n\nreturn t\n")
    write(dir, "d.lua", "error('no config')\n")
    write(dir, "lib/bad.lua", "return {\n")
    local gen, errors = flows.load(dir, 1)
    assert.is_nil(gen)
    table.sort(errors)
    assert.are.equal(3, #errors, table.concat(errors, "\n"))
    assert.matches("/c%.lua:3: a flow file must return a function %(it returned table%)$", errors[1])
    assert.matches("/d%.lua:1: no config$", errors[2])
    assert.matches("/lib/bad%.lua:2: .*near '<eof>'$", errors[3])
  end)

  it("stops a file whose top level never ends", function()
    local dir = tmpdir()
    write(dir, "spin.lua", "while true do end\nreturn function() end\n")
    local before = { debug.gethook() }
    local gen, errors = flows.load(dir, 1, { instruction_budget = 100000 })
    assert.is_nil(gen)
    assert.matches("/spin%.lua:1: instruction budget exceeded while loading", errors[1])
    assert.are.same(before, { debug.gethook() }, "the previous hook is back")
  end)

  it("stops a top level that catches the budget error with pcall, or loops in a coroutine", function()
    local dir = tmpdir()
    write(dir, "caught.lua", "pcall(function() while true do end end)\nreturn function() end\n")
    write(dir, "again.lua", "while true do pcall(function() while true do end end) end\nreturn function() end\n")
    write(dir, "co.lua", "coroutine.wrap(function() while true do end end)()\nreturn function() end\n")
    write(dir, "yield.lua", "coroutine.yield(1)\nreturn function() end\n")
    local before = { debug.gethook() }
    local gen, errors = flows.load(dir, 1, { instruction_budget = 100000 })
    assert.is_nil(gen)
    table.sort(errors)
    assert.are.equal(4, #errors, table.concat(errors, "\n"))
    assert.matches("/again%.lua:%d+: instruction budget exceeded while loading", errors[1])
    assert.matches("/caught%.lua:%d+: instruction budget exceeded while loading", errors[2])
    assert.matches("/co%.lua:%d+: instruction budget exceeded while loading", errors[3])
    assert.matches("/yield%.lua: a file's top level must not yield", errors[4])
    assert.are.same(before, { debug.gethook() }, "the previous hook is back")
  end)

  it("names file and line for an error value that is not a string, printed under a budget", function()
    local dir = tmpdir()
    write(dir, "t.lua", "local x = 1\nerror({ code = 1 })\n")
    write(dir, "n.lua", "error(nil)\n")
    write(dir, "loops.lua", "error(setmetatable({}, { __tostring = function() while true do end end }))\n")
    write(dir, "fails.lua", "error(setmetatable({}, { __tostring = function() error('boom') end }))\n")
    write(dir, "plain.lua", "\nerror('no position', 0)\n")
    local gen, errors = flows.load(dir, 1)
    assert.is_nil(gen)
    table.sort(errors)
    assert.are.equal(5, #errors, table.concat(errors, "\n"))
    assert.matches("/fails%.lua:1: %(an error value of type table that cannot be printed%)$", errors[1])
    assert.matches("/loops%.lua:1: %(an error value of type table that cannot be printed%)$", errors[2])
    assert.matches("/n%.lua:1: nil$", errors[3])
    assert.matches("/plain%.lua:2: no position$", errors[4])
    assert.matches("/t%.lua:2: table: ", errors[5])
  end)

  it("holds a top level to the Lua memory limit", function()
    local Runtime = require "luari.runtime"
    local dir = tmpdir()
    write(dir, "big.lua", "local t = {}\nfor i = 1, 5000000 do t[i] = { i } end\nreturn function() end\n")
    collectgarbage("collect")
    local limit = math.ceil(collectgarbage("count") / 1024) + 40
    Runtime.set_memory_limit(limit)
    finally(function()
      Runtime.set_memory_limit(nil)
      collectgarbage("collect")
    end)
    local gen, errors = flows.load(dir, 1)
    assert.is_nil(gen)
    assert.matches("/big%.lua:2: Lua memory limit exceeded while loading %(%d+ MB in use, the limit is "
      .. limit .. " MB%)", errors[1])
  end)

  it("takes every .lua file at the top as a flow, whatever its name", function()
    local dir = tmpdir()
    write(dir, "sales v2.lua", "return function() return 'v2' end\n")
    write(dir, "menü.lua", "return function() return 'ü' end\n")
    write(dir, "x-1.2.lua", "return 42\n")
    local gen, errors = flows.load(dir, 1)
    assert.is_nil(gen)
    assert.are.equal(1, #errors, table.concat(errors, "\n"))
    assert.matches("/x%-1%.2%.lua:1: a flow file must return a function", errors[1])
    os.remove(dir .. "/x-1.2.lua")
    gen = assert(flows.load(dir, 2))
    assert.are.equal("v2", gen:get("sales v2")())
    assert.are.equal("ü", gen:get("menü")())
  end)

  it("gives flows an os.exit that raises instead of ending the process", function()
    local dir = tmpdir()
    write(dir, "quit.lua", "os.exit(0)\nreturn 5\n")
    write(dir, "late.lua", "return function() os.exit(3) end\n")
    local gen, errors = flows.load(dir, 1)
    assert.is_nil(gen)
    assert.are.equal(1, #errors, table.concat(errors, "\n"))
    assert.matches("/quit%.lua:1: os%.exit is not allowed in a flow", errors[1])
    os.remove(dir .. "/quit.lua")
    gen = assert(flows.load(dir, 2))
    local ok, err = pcall(gen:get("late"))
    assert.is_false(ok)
    assert.matches("late%.lua:1: os%.exit is not allowed in a flow", err)
    assert.are.equal("function", type(os.exit), "luari's own os is untouched")
    write(dir, "unhook.lua", "debug.sethook()\nwhile true do end\n")
    gen, errors = flows.load(dir, 3, { instruction_budget = 100000 })
    assert.is_nil(gen)
    assert.matches("/unhook%.lua:1: debug%.sethook is not allowed in a flow", errors[1])
  end)

  it("one file: that file is the default flow; modules beside it load when required", function()
    local dir = tmpdir()
    write(dir, "main.lua", 'return function() return require("helper").v end\n')
    write(dir, "helper.lua", "return { v = 7 }\n")
    write(dir, "broken.lua", "not lua at all")
    local gen = assert(flows.load(dir .. "/main.lua", 1))
    local fn, name = gen:get(nil)
    assert.are.equal("main", name)
    assert.are.equal(7, fn())
  end)

  it("diff names the flows added, changed and removed, and the modules", function()
    local dir = tmpdir()
    write(dir, "keep.lua", FLOW)
    write(dir, "edit.lua", FLOW)
    write(dir, "gone.lua", FLOW)
    write(dir, "lib/m.lua", "return 1")
    local gen = assert(flows.load(dir, 1))
    write(dir, "edit.lua", FLOW .. "-- edited\n")
    write(dir, "new.lua", FLOW)
    remove(dir, "gone.lua")
    write(dir, "lib/m.lua", "return 2")
    local d = flows.diff(gen.sources, flows.scan(dir))
    assert.are.same({ added = { "new" }, changed = { "edit" }, removed = { "gone" }, modules = { "lib/m.lua" } }, d)
  end)
end)

describe("luari.reload", function()
  it("debounces a burst into one reload and logs generation, changes and time", function()
    local dir = tmpdir()
    write(dir, "hello.lua", FLOW)
    local r, clock, logs, app = new_reloader(dir)
    for i = 1, 5 do
      write(dir, "hello.lua", FLOW .. "-- " .. i .. "\n")
      r:notify("changed", "hello.lua")
      clock:run_until(clock:now() + 0.1)
    end
    assert.are.equal(1, app.generation.number, "nothing while the burst goes on")
    clock:run_until(clock:now() + 0.2)
    assert.are.equal(2, app.generation.number)
    assert.are.equal(1, r.stats.reloads)
    local line = grep(logs, "flows reloaded")[1]
    assert.matches("^info: flows reloaded %(change%): generation 2 in [%d.]+ ms: changed hello %(1 flows%)$", line)
  end)

  it("a file rewritten without pause is reloaded after max_delay anyway", function()
    local dir = tmpdir()
    write(dir, "hello.lua", FLOW)
    local r, clock, _, app = new_reloader(dir)
    for i = 1, 30 do
      write(dir, "hello.lua", FLOW .. "-- " .. i .. "\n")
      r:notify("changed", "hello.lua")
      clock:run_until(clock:now() + 0.1)
    end
    assert.is_true(app.generation.number >= 2, "reloaded during a 3 s stream of writes")
  end)

  it("nothing changed: no new generation; SIGHUP makes one anyway", function()
    local dir = tmpdir()
    write(dir, "hello.lua", FLOW)
    local r, clock, logs, app = new_reloader(dir)
    r:notify("changed", "hello.lua")
    clock:run_until(1)
    assert.are.equal(1, app.generation.number)
    assert.are.equal(0, #grep(logs, "^info"))
    r:rescan("SIGHUP")
    assert.are.equal(2, app.generation.number)
    assert.matches("flows reloaded %(SIGHUP%): generation 2 in .*: no change", grep(logs, "flows reloaded")[1])
  end)

  it("a broken file keeps the generation and is logged once, however many events come", function()
    local dir = tmpdir()
    write(dir, "hello.lua", FLOW)
    local r, clock, logs, app = new_reloader(dir)
    local first = app.generation
    write(dir, "hello.lua", "return function(call)\n  call:answer(\nend\n")
    for _ = 1, 3 do
      for _ = 1, 4 do
        r:notify("changed", "hello.lua")
      end
      clock:run_until(clock:now() + 1)
    end
    assert.are.equal(first, app.generation)
    local errors = grep(logs, "^error")
    assert.are.equal(1, #errors)
    assert.matches("^error: flows not reloaded %(change%), generation 1 stays: .*/hello%.lua:3: ", errors[1])
    -- the same bytes saved again: still nothing new in the log
    write(dir, "hello.lua", "return function(call)\n  call:answer(\nend\n")
    r:notify("changed", "hello.lua")
    clock:run_until(clock:now() + 1)
    assert.are.equal(1, #grep(logs, "^error"))
    -- another file saved meanwhile: hello.lua's error is not news
    write(dir, "other.lua", FLOW)
    r:notify("changed", "other.lua")
    clock:run_until(clock:now() + 1)
    assert.are.equal(1, #grep(logs, "^error"))
    -- SIGHUP reports it again: someone asked
    r:rescan("SIGHUP")
    assert.are.equal(2, #grep(logs, "^error"))
    -- a different mistake is a new error
    write(dir, "hello.lua", "return 42\n")
    r:notify("changed", "hello.lua")
    clock:run_until(clock:now() + 1)
    assert.matches("hello%.lua:1: a flow file must return a function %(it returned number%)", grep(logs, "^error")[3])
    -- fixed: the next generation
    write(dir, "hello.lua", FLOW .. "-- fixed\n")
    r:notify("changed", "hello.lua")
    clock:run_until(clock:now() + 1)
    assert.are.equal(2, app.generation.number)
  end)

  it("a broken save fixed within the quiet period logs nothing", function()
    local dir = tmpdir()
    write(dir, "hello.lua", FLOW)
    local r, clock, logs, app = new_reloader(dir)
    write(dir, "hello.lua", "return function(\n")
    r:notify("changed", "hello.lua")
    clock:run_until(clock:now() + 0.05)
    write(dir, "hello.lua", FLOW .. "-- ok\n")
    r:notify("changed", "hello.lua")
    clock:run_until(clock:now() + 1)
    assert.are.equal(0, #grep(logs, "^error"))
    assert.are.equal(2, app.generation.number)
  end)

  it("files back to the running generation's text: it stays, and that is said", function()
    local dir = tmpdir()
    write(dir, "hello.lua", FLOW)
    local r, clock, logs, app = new_reloader(dir)
    write(dir, "hello.lua", "return function(\n")
    r:notify("changed", "hello.lua")
    clock:run_until(1)
    write(dir, "hello.lua", FLOW)
    r:notify("changed", "hello.lua")
    clock:run_until(2)
    assert.are.equal(1, app.generation.number)
    assert.matches("files are back to generation 1's", grep(logs, "^info")[1])
  end)

  it("one-file FLOWS: errors name the file as given, once", function()
    local dir = tmpdir()
    write(dir, "main.lua", FLOW)
    write(dir, "other.lua", FLOW)
    local r, clock, logs, app = new_reloader(dir .. "/main.lua")
    write(dir, "main.lua", "return function(\n")
    for _ = 1, 3 do
      r:notify("changed", "main.lua")
      clock:run_until(clock:now() + 1)
    end
    local errors = grep(logs, "^error")
    assert.are.equal(1, #errors)
    assert.matches("stays: " .. (dir .. "/main.lua:"):gsub("%p", "%%%0"), errors[1])
    write(dir, "main.lua", FLOW .. "-- v2\n")
    r:notify("changed", "main.lua")
    clock:run_until(clock:now() + 1)
    assert.are.equal(2, app.generation.number)
    assert.matches("generation 2 in [%d.]+ ms: changed main %(1 flows%)$", grep(logs, "flows reloaded")[1])
  end)

  it("new flow files become routable, deleted ones go, and the log says which", function()
    local dir = tmpdir()
    write(dir, "a.lua", FLOW)
    write(dir, "b.lua", FLOW)
    local r, clock, logs, app = new_reloader(dir)
    write(dir, "c.lua", FLOW)
    remove(dir, "b.lua")
    r:notify("changed", "c.lua")
    r:notify("removed", "b.lua")
    clock:run_until(1)
    assert.are.same({ "a", "c" }, app.generation:names())
    assert.matches("generation 2 in [%d.]+ ms: added c; removed b %(2 flows%)$", grep(logs, "flows reloaded")[1])
    -- all flows gone looks like a deploy half done: keep what runs
    remove(dir, "a.lua")
    remove(dir, "c.lua")
    r:notify("removed", "a.lua")
    clock:run_until(2)
    assert.are.same({ "a", "c" }, app.generation:names())
    assert.matches("no %.lua flow files", grep(logs, "^error")[1])
  end)

  it("FLOWS gone: retries watching it, and reloads once it is back", function()
    local dir = tmpdir()
    write(dir, "a.lua", FLOW)
    local tries = 0
    local present = false
    local r, clock, logs, app = new_reloader(dir, {
      resync = function()
        tries = tries + 1
        return present or nil, "gone"
      end,
    })
    os.execute("rm -rf '" .. dir .. "'")
    r:notify("lost", "")
    clock:run_until(3.5)
    assert.are.equal(1, app.generation.number)
    assert.are.equal(3, tries)
    assert.are.equal(1, #grep(logs, "went away"))
    assert.are.equal(1, #grep(logs, "^error"), "the failed reload is logged once")
    os.execute("mkdir '" .. dir .. "'")
    write(dir, "a.lua", FLOW .. "-- new\n")
    present = true
    clock:run_until(5)
    assert.are.equal(2, app.generation.number)
    assert.are.equal(1, #grep(logs, "watching .* again"))
    r:stop()
    assert.is_nil(clock:next_time())
  end)

  it("FLOWS found again by the watcher itself: no more retries", function()
    local dir = tmpdir()
    write(dir, "a.lua", FLOW)
    local tries = 0
    local r, clock, logs, app = new_reloader(dir, {
      resync = function()
        tries = tries + 1
        return nil, "gone"
      end,
    })
    r:notify("lost", "")
    clock:run_until(1.5)
    write(dir, "a.lua", FLOW .. "-- new\n")
    r:notify("rescan", "")
    clock:run_until(10)
    assert.are.equal(1, tries)
    assert.are.equal(2, app.generation.number)
    assert.are.equal(1, #grep(logs, "watching .* again"))
    assert.is_nil(clock:next_time())
  end)
end)

describe("old generations", function()
  it("go as soon as their last call ends, however it ended", function()
    local dir = tmpdir()
    local src = [[
local luari = require "luari"
local big = string.rep("x", 100000) -- something worth freeing
return function(call, how)
  call:on_hangup(function() return big end)
  luari.spawn(function() while true do luari.sleep(1) end end)
  call:answer()
  if how == "fail" then
    call:sleep(1)
    error("flow failed on purpose " .. #big)
  end
  if how == "stuck" then
    while true do call:sleep(1) end -- ignores the hangup until cut off
  end
  call:sleep(1)
end
-- %d
]]
    write(dir, "f.lua", src:format(1))
    local logs = {}
    local world = World.new({ flows = dir, hangup_grace = 2, log_sink = function(level, msg)
      logs[#logs + 1] = level .. ": " .. msg
    end })
    local r = world.reloader
    local ids = {}
    for _, how in ipairs({ "ok", "fail", "stuck" }) do
      ids[#ids + 1] = world:incoming({ args = { "f", how } })
    end
    world:advance(0.1)
    write(dir, "f.lua", src:format(2))
    r:notify("changed", "f.lua")
    world:advance(0.5)
    assert.are.equal(2, world.app.generation.number)
    world:hangup(ids[3])
    world:advance(5)
    assert.are.equal(0, world.app.stats.active)
    assert.are.equal(1, #grep(logs, "generation 1 retired %(its last call ended%)"))
    -- A finished call lingers to absorb late events (App's tombstone); with
    -- it, threads that were cut off in the middle of flow code. Once it is
    -- forgotten, nothing holds the generation.
    world:advance(40)
    collectgarbage()
    collectgarbage()
    assert.are.same({ 2 }, r:live())
  end)
end)

-- The flow of the big test: it records which generation it runs on three
-- ways (its upvalue, a module required at load, a module required only
-- after its caller pressed keys, by which time newer versions exist).
local RECORDS_FLOW = [[
local ver = require "lib.ver"
local VERSION = %d
local calls = 0
return function(call, press)
  calls = calls + 1
  local rec = { version = VERSION, module = ver.version, nth = calls }
  RELOAD_RECORDS[call.id] = rec
  call:answer()
  local digits = ""
  while true do
    local ev = call:wait_event("ChannelDtmfReceived", 60)
    if not ev or ev.digit == "#" then
      break
    end
    digits = digits .. ev.digit
  end
  rec.digits = digits
  rec.late = require("lib.late").version
  rec.version_end, rec.module_end = VERSION, ver.version
  rec.done = true
end
]]

-- Versions that must not become a generation, each broken differently.
local function broken_kind(v)
  if v % 7 == 3 then
    return "syntax"
  elseif v % 11 == 5 then
    return "not a function"
  elseif v % 13 == 8 then
    return "late module syntax"
  elseif v % 17 == 2 then
    return "module error"
  end
end

local function write_version(dir, v)
  local kind = broken_kind(v)
  local flow = RECORDS_FLOW:format(v)
  if kind == "syntax" then
    flow = flow:gsub("calls = calls %+ 1", "calls = = 1")
  elseif kind == "not a function" then
    flow = "return { version = " .. v .. " }\n"
  end
  write(dir, "lib/ver.lua", kind == "module error" and ("error('version " .. v .. " broken')\n")
    or ("return { version = " .. v .. " }\n"))
  write(dir, "lib/late.lua", kind == "late module syntax" and ("return { version = " .. v .. "\n")
    or ("return { version = " .. v .. " }\n"))
  write(dir, "ivr.lua", flow)
end

describe("hot reload under live traffic (in-process simulator)", function()
  local NCALLS, NVERSIONS = 200, 50

  after_each(function()
    rawset(_G, "RELOAD_RECORDS", nil)
  end)

  it("200 calls live through 50 rewrites: each finishes on its own generation, none is lost, old generations go", function()
    local dir = tmpdir()
    write(dir, "other.lua", FLOW)
    write_version(dir, 0)
    rawset(_G, "RELOAD_RECORDS", {})
    local errors_logged = {}
    local world = World.new({
      flows = dir,
      log_sink = function(level, msg)
        if level == "error" then
          errors_logged[#errors_logged + 1] = msg
        end
      end,
    })
    local r = world.reloader
    local debounce = r.debounce
    local clock = world.clock
    -- The model of what must happen: which version is live, how many
    -- failed reloads must be reported.
    local applied, latest, last_write = 0, 0, nil
    local expect_errors = 0
    local expected, pressed = {}, {}
    local ids = {}
    local peak, burst = 0, 0
    local expected_live
    local rng = 12345
    local function random(n)
      rng = (rng * 1103515245 + 12345) % 2147483648
      return math.floor(rng / 65536) % n
    end

    local function place_call()
      local id = world:incoming({ args = { "ivr" } })
      ids[#ids + 1] = id
      expected[id] = applied
      local roll = random(10)
      if roll < 6 then
        -- presses keys after a while, long after newer versions were written
        local digits = tostring(100 + random(900))
        pressed[id] = digits
        clock:after(16 + random(20), function()
          world:press(id, digits .. "#", 0.1)
        end)
      elseif roll < 8 then
        clock:after(16 + random(20), function()
          world:hangup(id)
        end)
      else
        pressed[id] = ""
        clock:after(16 + random(20), function()
          world:press(id, "#")
        end)
      end
    end

    -- Steps the clock, keeping the model up to date: a pending change is
    -- reloaded `debounce` after its last event.
    local function advance(dt)
      local target = clock:now() + dt
      if last_write and last_write + debounce <= target then
        world:advance(last_write + debounce - clock:now() + 0.001)
        last_write = nil
        if broken_kind(latest) then
          expect_errors = expect_errors + 1
        else
          applied = latest
        end
        assert.are.equal(applied, expected_live(world))
      end
      world:advance(target - clock:now())
      peak = math.max(peak, world.app.stats.active)
    end
    expected_live = function(w)
      -- the version the current generation's flow was built from
      local fn = w.app.generation.flows.ivr
      for i = 1, 10 do
        local name, value = debug.getupvalue(fn, i)
        if name == "VERSION" then
          return value
        elseif name == nil then
          break
        end
      end
    end

    for _ = 1, NCALLS / 2 do
      place_call()
    end
    world:advance(0.01)
    for v = 1, NVERSIONS do
      write_version(dir, v)
      latest = v
      last_write = clock:now()
      -- the watcher's events for one save: several files, several events
      r:notify("changed", "lib/ver.lua")
      r:notify("changed", "lib/late.lua")
      r:notify("changed", "ivr.lua")
      -- mostly a pause long enough to reload, sometimes a burst (short
      -- enough that max_delay does not cut it)
      if random(3) == 0 and burst < 3 then
        burst = burst + 1
        advance(0.05)
      else
        burst = 0
        advance(0.2 + random(30) / 100)
      end
      if not last_write and broken_kind(latest) and random(2) == 0 then
        -- another event on the same broken files: no second report
        r:notify("changed", "ivr.lua")
        advance(0.3)
      end
      place_call()
      place_call()
    end
    advance(1)
    assert.are.equal(NCALLS, #ids)
    assert.is_true(peak >= 190, "calls in progress at once: " .. peak)

    -- a call placed now runs the newest good version
    local newest_good = NVERSIONS
    while broken_kind(newest_good) do
      newest_good = newest_good - 1
    end
    assert.are.equal(newest_good, applied)
    local last_id = world:incoming({ args = { "ivr" } })
    world:advance(0.01)
    assert.are.equal(newest_good, RELOAD_RECORDS[last_id].version)
    world:hangup(last_id)

    world:run(function() return world.app.stats.active == 0 end, clock:now() + 120)
    assert.are.equal(0, world.app.stats.active)

    local versions_seen = {}
    for _, id in ipairs(ids) do
      local rec = RELOAD_RECORDS[id]
      assert.is_table(rec, "call " .. id .. " never ran")
      assert.is_true(rec.done, "call " .. id .. " did not finish")
      local want = expected[id]
      versions_seen[want] = true
      assert.are.same({ want, want, want, want, want },
        { rec.version, rec.module, rec.late, rec.version_end, rec.module_end },
        "call " .. id .. " ran on the wrong generation")
      if pressed[id] then
        assert.are.equal(pressed[id], rec.digits, "call " .. id .. " lost key presses")
      end
    end
    local nversions = 0
    for _ in pairs(versions_seen) do
      nversions = nversions + 1
    end
    assert.is_true(nversions >= 20, "calls spread over " .. nversions .. " generations")
    assert.are.equal(0, world.app.stats.flow_errors)
    assert.are.equal(0, world.app.stats.unrouted)
    for _, e in ipairs(world.transcript) do
      if e.kind == "end" then
        assert.is_nil(e.error)
      end
    end

    -- one report per failed reload, not per event
    assert.are.equal(expect_errors, #errors_logged, table.concat(errors_logged, "\n"))
    assert.is_true(expect_errors >= 5)
    for _, e in ipairs(errors_logged) do
      assert.matches("^flows not reloaded %(change%), generation %d+ stays: .*%.lua:%d+: ", e)
    end

    -- old generations go as soon as their last call has ended (these flows
    -- leave nothing behind in their calls)
    local current = world.app.generation.number
    collectgarbage()
    collectgarbage()
    assert.are.same({ current }, r:live())
    assert.is_true(r.stats.reloads >= 20)
  end)
end)
