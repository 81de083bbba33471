-- End to end: `luari run` reloads its flows when files change on disk
-- (inotify) or on SIGHUP, against `luari sim-server`.

local h = require "e2e.helper"

local function flow(version)
  return string.format([[
local luari = require "luari"
local json = require "cjson"
local tag = require "lib.tag"
return function(call)
  luari.log.info("RESULT %%s", json.encode({ version = %q, tag = tag }))
  call:hangup()
end
]], version)
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function sh(cmd)
  assert(os.execute(cmd) == 0, cmd)
end

-- Places a call to `name` and returns the RESULT it logs.
local function call(sim, run, name)
  local before = #h.results(run)
  h.call(sim, { args = { name } })
  h.wait_for(function() return #h.results(run) > before end, 10, "a RESULT from " .. name .. " in " .. run.log)
  return h.results(run)[before + 1]
end

local function wait_generation(run, n, how)
  h.wait_log(run, "flows reloaded (" .. (how or "change") .. "): generation " .. n .. " ", 10, true)
end

describe("luari run: hot reload", function()
  after_each(h.stop_all)

  it("picks up edits, rename-style saves, new and deleted flows; a broken save is logged once", function()
    local dir = h.flows({ hello = flow("v1"), other = flow("other") })
    sh("mkdir -p " .. h.quote(dir .. "/lib"))
    write(dir .. "/lib/tag.lua", 'return "t1"\n')
    local sim = h.start_sim()
    local run = h.start_run(dir, { url = sim.url })
    h.wait_log(run, "connected to Asterisk", 10, true)
    assert.are.same({ version = "v1", tag = "t1" }, call(sim, run, "hello"))

    -- edited in place
    write(dir .. "/hello.lua", flow("v2"))
    wait_generation(run, 2)
    assert.is_true(h.log_has(run, "generation 2 in [%d.]+ ms: changed hello %(2 flows%)"))
    assert.are.equal("v2", call(sim, run, "hello").version)

    -- written elsewhere and renamed over (most editors, deploy tools)
    write(dir .. "/.hello.lua.tmp", flow("v3"))
    sh("mv " .. h.quote(dir .. "/.hello.lua.tmp") .. " " .. h.quote(dir .. "/hello.lua"))
    wait_generation(run, 3)
    assert.are.equal("v3", call(sim, run, "hello").version)

    -- vim with backupcopy=no: the old file becomes the backup, a new one is written
    sh("mv " .. h.quote(dir .. "/hello.lua") .. " " .. h.quote(dir .. "/hello.lua~"))
    write(dir .. "/hello.lua", flow("v4"))
    wait_generation(run, 4)
    assert.are.equal("v4", call(sim, run, "hello").version)

    -- a module in a subdirectory
    write(dir .. "/lib/tag.lua", 'return "t2"\n')
    wait_generation(run, 5)
    assert.is_true(h.log_has(run, "generation 5 in [%d.]+ ms: modules lib/tag%.lua"))
    assert.are.same({ version = "v4", tag = "t2" }, call(sim, run, "hello"))

    -- broken: logged once with file and line, the running generation stays
    write(dir .. "/hello.lua", "return function(call)\n  call:answer(\nend\n")
    h.wait_log(run, "flows not reloaded", 10, true)
    write(dir .. "/other.lua", flow("other2")) -- another event, hello.lua still broken
    h.sleep(1)
    assert.are.equal(1, h.count_log(run, "flows not reloaded"))
    assert.is_true(h.log_has(run, "generation 5 stays: " .. dir .. "/hello.lua:3: ", true))
    assert.are.equal("v4", call(sim, run, "hello").version)

    -- fixed; a new flow appears, another goes
    write(dir .. "/hello.lua", flow("v6"))
    write(dir .. "/fresh.lua", flow("fresh"))
    os.remove(dir .. "/other.lua")
    wait_generation(run, 6)
    assert.is_true(h.log_has(run, "generation 6 in [%d.]+ ms: changed hello; added fresh; removed other %(2 flows%)"))
    assert.are.equal("v6", call(sim, run, "hello").version)
    assert.are.equal("fresh", call(sim, run, "fresh").version)
    h.call(sim, { args = { "other" } })
    h.wait_log(run, "unknown flow 'other'", 10, true)

    -- a subdirectory made after the start is watched too
    sh("mkdir -p " .. h.quote(dir .. "/lib/more"))
    write(dir .. "/lib/more/x.lua", "return 1\n")
    wait_generation(run, 7)
    write(dir .. "/lib/more/x.lua", "return 2\n")
    wait_generation(run, 8)
    assert.is_true(h.log_has(run, "generation 8 in [%d.]+ ms: modules lib/more/x%.lua"))
    assert.is_true(h.alive(run))
  end)

  it("a file it may not read keeps the running generation, as a broken one does", function()
    -- As root every file is readable: luari runs as nobody here, on a
    -- directory of its own (the specs' temporary directory is private).
    local dir = io.popen("mktemp -d /tmp/luari-perm.XXXXXX"):read("*l")
    finally(function() os.execute("rm -rf " .. h.quote(dir)) end)
    write(dir .. "/hello.lua", flow("v1"))
    sh("mkdir -p " .. h.quote(dir .. "/lib"))
    write(dir .. "/lib/tag.lua", 'return "t1"\n')
    sh("chmod -R a+rX " .. h.quote(dir))
    local sim = h.start_sim()
    local run = h.start_run(dir, { url = sim.url, log_level = "info",
      prefix = { "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    assert.are.equal("v1", call(sim, run, "hello").version)
    write(dir .. "/hello.lua", flow("v2"))
    sh("chmod 000 " .. h.quote(dir .. "/hello.lua"))
    h.signal(run, "HUP")
    h.wait_log(run, "flows not reloaded", 10, true)
    assert.is_true(h.log_has(run, "generation 1 stays: " .. dir .. "/hello.lua: Permission denied", true),
      h.read(run.log))
    -- Not taken as removed: the flow still answers, from generation 1.
    assert.are.equal("v1", call(sim, run, "hello").version)
    sh("chmod 644 " .. h.quote(dir .. "/hello.lua"))
    h.signal(run, "HUP")
    wait_generation(run, 2, "SIGHUP")
    assert.are.equal("v2", call(sim, run, "hello").version)
    -- A directory it may not read: its modules are not taken as removed.
    sh("chmod 711 " .. h.quote(dir .. "/lib"))
    write(dir .. "/hello.lua", flow("v3"))
    h.signal(run, "HUP")
    h.wait_log(run, "generation 2 stays: cannot read " .. dir .. "/lib: Permission denied", 10, true)
    assert.are.same({ version = "v2", tag = "t1" }, call(sim, run, "hello"))
    sh("chmod 755 " .. h.quote(dir .. "/lib"))
    h.signal(run, "HUP")
    wait_generation(run, 3, "SIGHUP")
    assert.are.same({ version = "v3", tag = "t1" }, call(sim, run, "hello"))
  end)

  it("SIGHUP re-reads FLOWS, also without the watcher", function()
    local dir = h.flows({ hello = 'local luari = require "luari"\nreturn function(call)\n'
      .. '  luari.log.info("RESULT %s", "\\"one\\"")\n  call:hangup()\nend\n' })
    local sim = h.start_sim()
    local run = h.start_run(dir, { url = sim.url, args = { "--no-watch" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    write(dir .. "/hello.lua", 'local luari = require "luari"\nreturn function(call)\n'
      .. '  luari.log.info("RESULT %s", "\\"two\\"")\n  call:hangup()\nend\n')
    h.sleep(0.5)
    assert.is_false(h.log_has(run, "flows reloaded", true))
    assert.are.equal("one", call(sim, run, "hello"))
    h.signal(run, "HUP")
    wait_generation(run, 2, "SIGHUP")
    assert.are.equal("two", call(sim, run, "hello"))
    -- nothing changed: SIGHUP still makes a generation, as asked
    h.signal(run, "HUP")
    wait_generation(run, 3, "SIGHUP")
    assert.is_true(h.log_has(run, "generation 3 in [%d.]+ ms: no change"))
    h.wait_log(run, "generation 2 retired", 5, true)
  end)

  it("a FLOWS directory replaced as a whole is watched again", function()
    local dir = h.flows({ hello = flow("v1") })
    sh("mkdir -p " .. h.quote(dir .. "/lib"))
    write(dir .. "/lib/tag.lua", 'return "t"\n')
    local sim = h.start_sim()
    local run = h.start_run(dir, { url = sim.url })
    h.wait_log(run, "connected to Asterisk", 10, true)
    sh("mv " .. h.quote(dir) .. " " .. h.quote(dir .. ".old"))
    h.wait_log(run, "went away", 10, true)
    sh("cp -r " .. h.quote(dir .. ".old") .. " " .. h.quote(dir))
    write(dir .. "/hello.lua", flow("v2"))
    h.wait_log(run, "watching " .. dir .. " again", 10, true)
    wait_generation(run, 2)
    assert.are.equal("v2", call(sim, run, "hello").version)
  end)

  it("a FLOWS symlink pointed at another release is followed", function()
    local r1 = h.flows({ hello = flow("r1") })
    local r2 = h.flows({ hello = flow("r2") })
    for _, d in ipairs({ r1, r2 }) do
      sh("mkdir -p " .. h.quote(d .. "/lib"))
      write(d .. "/lib/tag.lua", 'return "t"\n')
    end
    local current = h.tmpdir() .. "/current"
    sh("ln -sfn " .. h.quote(r1) .. " " .. h.quote(current))
    local sim = h.start_sim()
    local run = h.start_run(current, { url = sim.url })
    h.wait_log(run, "connected to Asterisk", 10, true)
    assert.are.equal("r1", call(sim, run, "hello").version)
    -- a deploy: the symlink is replaced at once (a new link renamed over it)
    sh("ln -sfn " .. h.quote(r2) .. " " .. h.quote(current .. ".new") .. " && mv -T "
      .. h.quote(current .. ".new") .. " " .. h.quote(current))
    wait_generation(run, 2)
    assert.are.equal("r2", call(sim, run, "hello").version)
    -- and the new release is the one watched
    write(r2 .. "/hello.lua", flow("r2b"))
    wait_generation(run, 3)
    assert.are.equal("r2b", call(sim, run, "hello").version)
  end)
end)

describe("luari check", function()
  local function check(...)
    local args = { h.bin, "check" }
    for _, a in ipairs({ ... }) do
      args[#args + 1] = h.quote(a)
    end
    local out = h.tmpdir() .. "/check.out"
    local cmd = table.concat(args, " ") .. " > " .. h.quote(out) .. " 2>&1; echo $?"
    local p = io.popen(cmd)
    local status = tonumber(p:read("*a"):match("%d+"))
    p:close()
    return status, h.read(out)
  end

  it("exits 0 when every flow compiles", function()
    local dir = h.flows({ a = flow("a"), b = "return function() end\n" })
    sh("mkdir -p " .. h.quote(dir .. "/lib"))
    write(dir .. "/lib/tag.lua", 'return "t"\n')
    local status, out = check(dir, dir .. "/b.lua")
    assert.are.equal(0, status)
    assert.are.equal("luari check: 3 flows OK\n", out)
  end)

  it("exits 1 with file:line: message for each error, modules included", function()
    local dir = h.flows({
      ok = "return function() end\n",
      syntax = "return function(call)\n  call:answer(\nend\n",
      table = "local M = {}\nreturn M\n",
      boom = "local x = nil\nreturn x.y\n",
    })
    sh("mkdir -p " .. h.quote(dir .. "/lib"))
    write(dir .. "/lib/bad.lua", "return {\n")
    local status, out = check(dir)
    assert.are.equal(1, status)
    local lines = {}
    for line in out:gmatch("[^\n]+") do
      lines[#lines + 1] = line
    end
    table.sort(lines)
    assert.are.equal(4, #lines, out)
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/boom%.lua:2: attempt to index local 'x' %(a nil value%)$", lines[1])
    assert.matches("/lib/bad%.lua:1?2?: .*'<eof>'", lines[2])
    assert.matches("/syntax%.lua:3: unexpected symbol near 'end'$", lines[3])
    assert.matches("/table%.lua:2: a flow file must return a function %(it returned table%)$", lines[4])
  end)

  it("a missing file, and no argument at all", function()
    local status, out = check(h.tmpdir() .. "/nope.lua")
    assert.are.equal(1, status)
    assert.matches("nope%.lua: no such file or directory", out)
    status, out = check()
    assert.are.equal(2, status)
    assert.matches("usage: luari check", out)
  end)

  it("stops a file whose top level never ends", function()
    local dir = h.flows({ spin = "while true do end\n" })
    local status, out = check(dir .. "/spin.lua")
    assert.are.equal(1, status)
    assert.matches("spin%.lua:1: instruction budget exceeded while loading", out)
  end)
end)

-- A module whose top level waits, required late (inside a flow): another
-- call asking for it meanwhile waits for it, and a loader stopped on the
-- way (its call ended) leaves nothing behind.
describe("luari run: a module whose top level waits", function()
  after_each(h.stop_all)

  local SLOW = 'local luari = require "luari"\nluari.sleep(1)\nreturn { v = "loaded" }\n'
  local function asker(module)
    return string.format([[
local luari = require "luari"
local json = require "cjson"
return function(call)
  local ok, m = pcall(require, %q)
  luari.log.info("RESULT %%s", json.encode({ ok = ok, v = ok and m.v or tostring(m) }))
  call:hangup()
end
]], module)
  end

  it("is waited for by a second call, and loaded again after a loader that was stopped", function()
    local dir = h.flows({
      ask = asker("lib.slow"),
      ask2 = asker("lib.slow2"),
      -- starts loading lib.slow2 in a thread of its own, then ends: the thread is stopped
      quitter = 'local luari = require "luari"\nreturn function(call)\n'
        .. '  luari.spawn(function() require "lib.slow2" end)\n  luari.sleep(0.3)\n  call:hangup()\nend\n',
    })
    sh("mkdir -p " .. h.quote(dir .. "/lib"))
    write(dir .. "/lib/slow.lua", SLOW)
    write(dir .. "/lib/slow2.lua", SLOW)
    local sim = h.start_sim()
    local run = h.start_run(dir, { url = sim.url })
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.call(sim, { args = { "ask" } })
    h.sleep(0.3)
    h.call(sim, { args = { "ask" } })
    h.wait_for(function() return #h.results(run) >= 2 end, 10, "both calls to load lib.slow")
    for _, r in ipairs(h.results(run)) do
      assert.are.same({ ok = true, v = "loaded" }, r)
    end
    h.call(sim, { args = { "quitter" } })
    h.sleep(1)
    assert.are.same({ ok = true, v = "loaded" }, call(sim, run, "ask2"))
  end)
end)
