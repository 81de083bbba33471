-- Loading flows. FLOWS is a directory of NAME.lua files (or one file, the
-- default flow); subdirectories hold modules the flows `require`.
--
-- Loading happens in two steps so that a reload can tell what changed
-- before compiling anything: scan reads every .lua file under FLOWS into a
-- snapshot (path below FLOWS -> source), build compiles a snapshot into a
-- generation. All files are compiled together: a syntax error in a module
-- fails the generation even if no flow has required it yet.
--
-- Each generation has its own environment and its own modules, compiled
-- from the snapshot, so a call keeps the code it started with (upvalues and
-- modules, even one it requires late) while a newer generation takes new
-- calls. Flow code runs with the JIT off: the instruction budget that stops
-- endless loops only sees interpreted code. The same budget applies to a
-- file's top level while it loads.

local flows = {}

local Generation = {}
Generation.__index = Generation

flows.LOAD_BUDGET = 50000000

local function is_dir(path)
  local f = io.open(path .. "/.")
  if f then
    f:close()
    return true
  end
  return false
end

local ENOENT = 2

-- The file's text; or nil, the error ("path: Permission denied") and
-- whether the file is simply not there.
local function read_file(path)
  local f, err, code = io.open(path, "rb")
  if not f then
    return nil, err, code == ENOENT
  end
  local text, rerr = f:read("*a")
  f:close()
  if not text then
    return nil, path .. ": " .. tostring(rerr), false
  end
  return text
end

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Every .lua file below dir, as paths relative to dir, sorted. Names
-- starting with a dot are skipped (editor lock files, .git); symlinks are
-- followed, as the watcher follows them. Inside luari the watcher's own
-- lister does it (no process to start while the loop waits); plain LuaJIT
-- (busted) asks find(1) the same question.
local Runtime = require "luari.runtime"
local util = require "luari.util"
local has_watch, watch = pcall(require, "luari.watch")

local function list_lua_files(dir)
  if has_watch then
    local rels, err = watch.list(dir)
    if not rels then
      return nil, err
    end
    table.sort(rels)
    return rels
  end
  local rels = {}
  local cmd = "find -L " .. quote(dir) .. " -mindepth 1 -maxdepth 16 -name '.*' -prune -o -type f -name '*.lua' -print 2>/dev/null"
  local p = io.popen(cmd)
  if p then
    local prefix = #dir + 2
    for line in p:lines() do
      rels[#rels + 1] = line:sub(prefix)
    end
    p:close()
  end
  table.sort(rels)
  return rels
end

-- Every .lua file at the top of FLOWS is a flow, whatever its name
-- ("sales v2", "menü"): Stasis() may name it, and routing only looks the
-- name up. A name luari left out would be a flow that silently is not.
local function flow_name(rel)
  return rel:match("^([^/]+)%.lua$")
end

-- "lib/util.lua" -> "lib.util"; "lib/init.lua" -> "lib" as well.
local function module_names(rel)
  local name = rel:gsub("%.lua$", ""):gsub("/", ".")
  local package_name = name:match("^(.+)%.init$")
  return name, package_name
end

-- Reads FLOWS. Returns a snapshot { path, dir, files = { rel = source },
-- single = name (one-file FLOWS) }, or nil and a list of errors.
function flows.scan(path)
  path = path:gsub("(.)/+$", "%1")
  if is_dir(path) then
    local rels, list_err = list_lua_files(path)
    if not rels then
      -- A directory in FLOWS luari may not read: its files are not gone.
      return nil, { list_err }
    end
    local files, errors = {}, {}
    for _, rel in ipairs(rels) do
      -- A file may vanish between the listing and the read (an editor's
      -- rename dance): it is then simply not part of this snapshot. One
      -- that is there but cannot be read (permissions) is an error, as a
      -- file that does not compile: taken as removed, its flow would be
      -- dropped and its calls hung up.
      local text, err, missing = read_file(path .. "/" .. rel)
      if text then
        files[rel] = text
      elseif not missing then
        errors[#errors + 1] = err
      end
    end
    if #errors > 0 then
      return nil, errors
    end
    return { path = path, dir = path, files = files }
  end
  local text, err, missing = read_file(path)
  if not text then
    return nil, { missing and (path .. ": no such file or directory") or err }
  end
  local base = path:match("([^/]+)$")
  return {
    path = path,
    dir = path:match("^(.*)/[^/]*$") or ".",
    files = { [base] = text },
    single = base:match("^(.+)%.lua$") or base,
    single_file = base,
  }
end

-- A `require` that looks in the generation's modules first, then the host's.
-- A module being loaded is marked with who loads it: a module's top level
-- may wait (a request, a sleep) when a flow requires it late, so another
-- call may ask for it meanwhile (it waits for it), and the loader may be
-- stopped on the way (its call ended: the next one loads it again).
local Loading = {}

-- The runtime thread running now, or the coroutine (flow files loading).
local function current_loader()
  local rt = Runtime.active()
  local th = rt and rt.running
  if th and th.co == coroutine.running() then
    return th, rt
  end
  return coroutine.running(), nil
end

local function loader_gone(loader)
  if type(loader) == "table" then
    return loader.done or loader.dead
  end
  return loader == nil or coroutine.status(loader) == "dead"
end

-- The module `name` once whoever loads it now is done: its value, or nil
-- when nobody is loading it (any more).
local function loaded_by_another(cache, name)
  local value = cache[name]
  while getmetatable(value) == Loading do
    local me, rt = current_loader()
    if value.by == me or (rt == nil and not loader_gone(value.by)) then
      error("loop requiring module '" .. tostring(name) .. "'", 3)
    elseif loader_gone(value.by) then
      cache[name] = nil
      return nil
    end
    rt:sleep(0.01)
    value = cache[name]
  end
  return value
end

-- luari's own modules, which a file in FLOWS must not hide from the
-- other flows (a flow named luari.lua is still a flow, routed by name).
local function is_luari_module(name)
  return name == "luari" or (type(name) == "string" and name:sub(1, 6) == "luari.")
end

local function make_require(gen)
  local cache = gen.modules
  return function(name)
    if is_luari_module(name) then
      return require(name)
    end
    local value = loaded_by_another(cache, name)
    if value ~= nil then
      return value
    end
    local chunk = gen.chunks[name]
    if not chunk and gen.broken[name] then
      error(gen.broken[name], 0)
    end
    if not chunk and gen.single then
      -- One-file FLOWS: modules beside it are read when first required
      -- (its directory may hold anything; it is not scanned).
      local file = gen.dir .. "/" .. name:gsub("%.", "/") .. ".lua"
      local text = read_file(file)
      if text then
        local err
        chunk, err = loadstring(text, "@" .. file)
        util.flow_source("@" .. file)
        if not chunk then
          error(err, 0)
        end
        jit.off(chunk, true)
        setfenv(chunk, gen.env)
      end
    end
    if not chunk then
      return require(name)
    end
    cache[name] = setmetatable({ by = (current_loader()) }, Loading)
    local ok, result = pcall(chunk, name)
    if not ok then
      cache[name] = nil
      error(result, 0)
    end
    if result == nil then
      result = true
    end
    cache[name] = result
    return result
  end
end

-- Flows see `os` without exit: one call's flow must not end every call
-- (nor `luari check` report a broken file as fine); and `debug` without
-- sethook: the hook is what stops a flow that never waits.
local FLOW_OS = setmetatable({
  exit = function()
    error("os.exit is not allowed in a flow (it would end every call): return from the flow, or call:hangup()", 2)
  end,
}, { __index = os })
local FLOW_DEBUG = setmetatable({
  sethook = function()
    error("debug.sethook is not allowed in a flow: luari's instruction budget uses the hook", 2)
  end,
}, { __index = debug })

local function new_generation(snap, number)
  local gen = setmetatable({
    dir = snap.dir,
    number = number,
    flows = {},   -- name -> function
    files = {},   -- name -> file path
    modules = {}, -- module name -> value, once required
    chunks = {},  -- module name -> compiled chunk
    broken = {},  -- module name -> its compile error (while building)
    sources = snap.files,
    single = snap.single,
    active = 0,
  }, Generation)
  gen.env = setmetatable({}, { __index = _G })
  gen.env.require = make_require(gen)
  gen.env._G = gen.env
  gen.env.os = FLOW_OS
  gen.env.debug = FLOW_DEBUG
  return gen
end

-- Where a coroutine stopped: "file:line" of its innermost Lua frame.
local function stopped_at(co)
  for level = 0, 30 do
    local info = debug.getinfo(co, level, "Sl")
    if not info then
      return nil
    elseif info.what ~= "C" and (info.currentline or 0) > 0 then
      return info.short_src .. ":" .. info.currentline
    end
  end
end

-- A file's load error as text with a file and line: an error value that
-- is not a string (error({code = 1}), error(nil), a table whose
-- __tostring loops) is printed under a budget, and gets the line where
-- the file stopped.
local function load_error(co, e)
  local text = Runtime.error_text(e)
  if type(e) == "string" and text:match("^[^\n]-:%d+:") then
    return text
  end
  local where = stopped_at(co)
  return where and (where .. ": " .. text) or text
end

-- Runs fn with a count hook that stops it after `budget` VM instructions,
-- so a file whose top level never ends cannot hang luari. fn runs in a
-- coroutine of its own so that the hook can tell its instructions from
-- the ones here. Past the budget the hook fails every instruction: a file
-- that catches the error with pcall cannot loop on, nor return as if all
-- went well. The previous hook (the runtime's budget) is put back
-- afterwards.
local HOOK_EVERY = 1000
local function run_limited(budget, fn, ...)
  local old_fn, old_mask, old_count = debug.gethook()
  local loader = coroutine.running()
  local ticks, limit, over = 0, budget / HOOK_EVERY, false
  local message = string.format("instruction budget exceeded while loading (%d instructions)", budget)
  local function hook()
    if coroutine.running() == loader then
      return
    end
    ticks = ticks + 1
    if not over and Runtime.over_memory_limit() then
      -- --memory-limit holds while loading too: a top level building a
      -- huge table must not take the heap the calls need.
      message = string.format("Lua memory limit exceeded while loading (%.0f MB in use, the limit is %.0f MB)",
        collectgarbage("count") / 1024, Runtime.memory_limit_mb())
      ticks = limit + 1
    end
    if ticks > limit then
      if not over then
        over = true
        debug.sethook(hook, "", 1)
      end
      error(message, 2)
    end
  end
  local co = coroutine.create(fn)
  debug.sethook(hook, "", HOOK_EVERY)
  local results = { coroutine.resume(co, ...) }
  if old_fn then
    debug.sethook(old_fn, old_mask, old_count)
  else
    debug.sethook()
  end
  if not results[1] and not over then
    return false, load_error(co, results[2])
  end
  if over then
    -- The error as raised names the file and line, unless a handler in the
    -- file replaced it.
    local err = results[2]
    return false, type(err) == "string" and err:find(message, 1, true) and err or message
  elseif results[1] and coroutine.status(co) ~= "dead" then
    return false, "a file's top level must not yield"
  end
  return unpack(results, 1, table.maxn(results))
end

local function last_line(text)
  local n = select(2, text:gsub("\n", "\n"))
  if text ~= "" and text:sub(-1) ~= "\n" then
    n = n + 1
  end
  return math.max(n, 1)
end

-- Errors name a file and a line; one raised without a position (error(x, 0),
-- a table) gets the file it came from.
local function with_file(file, msg)
  msg = tostring(msg)
  if msg:sub(1, #file + 1) == file .. ":" or msg:match("^[^\n]-%.lua:%d+:") then
    return msg
  end
  return file .. ": " .. msg
end

-- The names of the flows in a snapshot of a directory, sorted.
function flows.names(snap)
  local names = {}
  if not snap.single then
    for rel in pairs(snap.files) do
      names[#names + 1] = flow_name(rel)
    end
  end
  table.sort(names)
  return names
end

-- Compiles a snapshot. Returns a generation, or nil and a list of errors
-- ("file:line: message"), one per file that failed.
function flows.build(snap, number, opts)
  opts = opts or {}
  local budget = opts.instruction_budget or flows.LOAD_BUDGET
  local gen = new_generation(snap, number or 1)
  local errors, seen = {}, {}
  -- A broken module fails every flow that requires it with its own
  -- message: report it once.
  local function add_error(e)
    if not seen[e] then
      seen[e] = true
      errors[#errors + 1] = e
    end
  end
  local rels = {}
  for rel in pairs(snap.files) do
    rels[#rels + 1] = rel
  end
  table.sort(rels)
  local pending = {}
  for _, rel in ipairs(rels) do
    -- One-file FLOWS: errors name the file as it was given.
    local file = snap.single and snap.path or (snap.dir .. "/" .. rel)
    local chunk, err = loadstring(snap.files[rel], "@" .. file)
    util.flow_source("@" .. file)
    if not chunk then
      add_error(with_file(file, err))
      if not snap.single then
        -- Requiring it says why, not "module not found".
        local mod, package_name = module_names(rel)
        gen.broken[mod] = errors[#errors]
        if package_name then
          gen.broken[package_name] = errors[#errors]
        end
      end
    else
      jit.off(chunk, true)
      setfenv(chunk, gen.env)
      local name
      if snap.single then
        name = rel == snap.single_file and snap.single or nil
      elseif not rel:find("/") then
        name = flow_name(rel)
      end
      if name then
        pending[#pending + 1] = { name = name, file = file, chunk = chunk, rel = rel }
      end
      if not snap.single then
        local mod, package_name = module_names(rel)
        gen.chunks[mod] = chunk
        if package_name then
          gen.chunks[package_name] = chunk
        end
      end
    end
  end
  -- Every flow that compiled runs, even when another file failed, so
  -- that one pass reports every error.
  for _, f in ipairs(pending) do
    -- A flow file is also a module (a flow may require another's file);
    -- running it here as a flow gives it a fresh instance either way.
    local ok, fn = run_limited(budget, f.chunk, f.name)
    if not ok then
      add_error(with_file(f.file, fn))
    elseif type(fn) ~= "function" then
      add_error(string.format("%s:%d: a flow file must return a function (it returned %s)",
        f.file, last_line(snap.files[f.rel]), type(fn)))
    else
      jit.off(fn, true)
      gen.flows[f.name] = fn
      gen.files[f.name] = f.file
    end
  end
  gen.broken = {}
  if #errors == 0 and next(gen.flows) == nil then
    errors[#errors + 1] = snap.path .. ": no .lua flow files"
  end
  if #errors > 0 then
    return nil, errors
  end
  return gen
end

-- Loads FLOWS (a directory or one file). Returns a generation, or nil and
-- a list of errors ("file:line: message").
function flows.load(path, number, opts)
  local snap, errors = flows.scan(path)
  if not snap then
    return nil, errors
  end
  return flows.build(snap, number, opts)
end

-- Two snapshots' files are the same text under the same names.
function flows.same_files(a, b)
  if not a or not b then
    return false
  end
  for rel, text in pairs(a) do
    if b[rel] ~= text then
      return false
    end
  end
  for rel in pairs(b) do
    if a[rel] == nil then
      return false
    end
  end
  return true
end

-- What a snapshot changes against the files of a generation:
-- { added = {names}, changed = {names}, removed = {names}, modules = {rels} }
-- (flows by name, sorted; modules: other files added, changed or removed).
function flows.diff(old_files, new_snap)
  old_files = old_files or {}
  local new_files = new_snap.files
  local single = new_snap.single_file
  local d = { added = {}, changed = {}, removed = {}, modules = {} }
  local function is_flow(rel)
    if single then
      return rel == single
    end
    return not rel:find("/") and flow_name(rel) ~= nil
  end
  local function name_of(rel)
    return (rel:gsub("%.lua$", ""))
  end
  for rel, text in pairs(new_files) do
    local old = old_files[rel]
    if old ~= text then
      if not is_flow(rel) then
        d.modules[#d.modules + 1] = rel
      elseif old == nil then
        d.added[#d.added + 1] = name_of(rel)
      else
        d.changed[#d.changed + 1] = name_of(rel)
      end
    end
  end
  for rel in pairs(old_files) do
    if new_files[rel] == nil then
      if is_flow(rel) then
        d.removed[#d.removed + 1] = name_of(rel)
      else
        d.modules[#d.modules + 1] = rel
      end
    end
  end
  for _, list in pairs(d) do
    table.sort(list)
  end
  return d
end

-- The flow function for a name; nil name: the default flow.
function Generation:get(name, default)
  if name == nil or name == "" then
    name = default or self.single
    if name == nil then
      return nil, nil
    end
  end
  return self.flows[name], name
end

function Generation:names()
  local names = {}
  for name in pairs(self.flows) do
    names[#names + 1] = name
  end
  table.sort(names)
  return names
end

flows.Generation = Generation
return flows
