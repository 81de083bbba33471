-- Hot reload: turns "a file under FLOWS changed" into a new generation for
-- new calls, the same way under `luari run` (inotify, SIGHUP) and in the
-- in-process simulator (a spec calls notify or rescan itself).
--
-- Changes are debounced: a reload runs once FLOWS has been quiet for
-- `debounce` seconds (editors save in several steps; a checkout writes many
-- files), or at the latest `max_delay` seconds after the first change of a
-- burst, so a file rewritten without pause cannot hold reloads off.
--
-- A reload reads every file, and compiles them all only if some text
-- differs from the current generation. Success swaps app.generation: new
-- calls start on it, calls in progress keep theirs (call._generation). A
-- failure keeps the current generation and logs each error once: it is
-- logged again only when the file it names has changed (not for another
-- event, or another file saved meanwhile); SIGHUP always reports.
--
-- Old generations are kept only by their calls: `generations` is a weak
-- table, so one disappears from it once its last call has ended and the
-- collector has run (Reloader:live() lists the ones still in memory).
--
--   local r = Reloader.new{ app = app, path = "flows", timer = loop.timer,
--                           clock = loop.now, log = loop.log }
--   local gen, errors = r:start()   -- generation 1
--   r:notify("changed", "hello.lua") -- from the watcher
--   r:rescan("SIGHUP")               -- now, even if nothing changed

local flows = require "luari.flows"
local util = require "luari.util"

local Reloader = {}
Reloader.__index = Reloader

Reloader.DEBOUNCE = 0.15
Reloader.MAX_DELAY = 2
Reloader.RESYNC_EVERY = 1

-- opts: app, path, timer(seconds, fn) -> handle with :stop(),
-- now() -> seconds on the timer's clock (the simulator's is virtual),
-- clock() -> seconds of real time, to measure how long a reload takes
-- (default os.clock; both default to each other),
-- log(level, message), debounce, max_delay, instruction_budget,
-- resync() -> true | nil, err (re-watch FLOWS after it went away).
function Reloader.new(opts)
  local self = setmetatable({
    app = opts.app,
    path = opts.path,
    timer = opts.timer,
    clock = opts.clock or opts.now or os.clock,
    now = opts.now or opts.clock or os.clock,
    log = opts.log or function() end,
    debounce = opts.debounce or Reloader.DEBOUNCE,
    max_delay = opts.max_delay or Reloader.MAX_DELAY,
    budget = opts.instruction_budget,
    resync = opts.resync,
    generations = setmetatable({}, { __mode = "k" }), -- generation -> its number
    stats = { reloads = 0, failures = 0, unchanged = 0, events = 0, last_ms = 0, max_ms = 0 },
  }, Reloader)
  if self.app then
    self.app.on_generation_idle = function(gen)
      self:_retired(gen)
    end
  end
  return self
end

-- "changed hello; added menu; removed old; modules lib/util.lua"
local function describe(diff)
  local parts = {}
  for _, kind in ipairs({ "changed", "added", "removed" }) do
    if #diff[kind] > 0 then
      parts[#parts + 1] = kind .. " " .. util.name_list(diff[kind])
    end
  end
  if #diff.modules > 0 then
    parts[#parts + 1] = "modules " .. util.name_list(diff.modules)
  end
  return #parts > 0 and table.concat(parts, "; ") or "no change"
end

function Reloader:current()
  return self.app.generation
end

function Reloader:_adopt(gen)
  self.generations[gen] = gen.number
  self.app.generation = gen
end

-- Loads generation 1. Returns it, or nil and the errors (nothing is logged:
-- at start the caller decides what a failure means).
function Reloader:start()
  local gen, errors = flows.load(self.path, 1, { instruction_budget = self.budget })
  if gen then
    self:_adopt(gen)
  end
  return gen, errors
end

-- The number of the generations still in memory, oldest first.
function Reloader:live()
  local list = {}
  for _, number in pairs(self.generations) do
    list[#list + 1] = number
  end
  table.sort(list)
  return list
end

function Reloader:_retired(gen, why)
  self.log("info", string.format("flows: generation %d retired (%s)", gen.number, why or "its last call ended"))
end

-- A watcher event: what is "changed", "removed", "rescan" or "lost"; file
-- is relative to FLOWS. Starts (or restarts) the quiet period.
function Reloader:notify(what, file)
  self.stats.events = self.stats.events + 1
  if what == "lost" then
    self:_lost()
  elseif self.resyncing then
    -- The watcher found FLOWS again by itself (it watches FLOWS's parent).
    self:_found()
  end
  local now = self.now()
  self.burst_start = self.burst_start or now
  local delay = self.debounce
  if now - self.burst_start + delay > self.max_delay then
    delay = math.max(0, self.max_delay - (now - self.burst_start))
  end
  if self.pending then
    self.pending:stop()
  end
  self.pending = self.timer(delay, function()
    self.pending = nil
    self:reload("change")
  end)
end

-- FLOWS itself went away: nothing is watched. Try to watch it again now and
-- then; when it is back, everything under it counts as changed.
function Reloader:_lost()
  if not self.resync or self.resyncing then
    return
  end
  self.resyncing = true
  self.log("warn", "flows: " .. self.path .. " went away; generation "
    .. self:current().number .. " stays until it is back")
  local function try()
    self.resync_timer = nil
    local ok = self.resync()
    if ok then
      self:_found()
      self:notify("rescan", "")
    else
      self.resync_timer = self.timer(Reloader.RESYNC_EVERY, try)
    end
  end
  self.resync_timer = self.timer(Reloader.RESYNC_EVERY, try)
end

function Reloader:_found()
  self.resyncing = false
  if self.resync_timer then
    self.resync_timer:stop()
    self.resync_timer = nil
  end
  self.log("info", "flows: watching " .. self.path .. " again")
end

-- Reload now, even if no file changed (SIGHUP). Cancels a pending reload.
function Reloader:rescan(reason)
  if self.pending then
    self.pending:stop()
    self.pending = nil
  end
  return self:reload(reason or "rescan", true)
end

-- Stops timers (at shutdown).
function Reloader:stop()
  for _, key in ipairs({ "pending", "resync_timer" }) do
    if self[key] then
      self[key]:stop()
      self[key] = nil
    end
  end
  self.resyncing = false
end

-- An error is worth reporting again only once the file it names has
-- changed: saving another file while this one is broken repeats nothing.
local function error_key(e, snap)
  if snap and snap.single then
    local given = snap.path .. ":"
    return e:sub(1, #given) == given and (e .. "\0" .. snap.files[snap.single_file]) or e
  end
  local prefix = snap and (snap.dir .. "/")
  if prefix and e:sub(1, #prefix) == prefix then
    local rel = e:sub(#prefix + 1):match("^(.-%.lua):")
    if rel and snap.files[rel] then
      return e .. "\0" .. snap.files[rel]
    end
  end
  return e
end

function Reloader:_report(reason, current, snap, errors, force)
  self.stats.failures = self.stats.failures + 1
  local keys, logged = {}, 0
  for _, e in ipairs(errors) do
    local key = error_key(e, snap)
    keys[key] = true
    if force or not (self.reported and self.reported[key]) then
      logged = logged + 1
      self.log("error", string.format("flows not reloaded (%s), generation %d stays: %s", reason,
        current.number, e))
    end
  end
  if logged == 0 then
    self.log("debug", "flows: still the same errors; generation " .. current.number .. " stays")
  end
  self.reported = keys
  self.failed_files = snap and snap.files
  self.failed_errors = errors
end

-- Reads FLOWS and, if anything changed (or `force`), compiles a new
-- generation and swaps it in. Returns the generation in use afterwards and,
-- on failure, the list of errors.
function Reloader:reload(reason, force)
  self.burst_start = nil
  local current = self:current()
  local t0 = self.clock()
  local snap, errors = flows.scan(self.path)
  local gen, diff
  if snap then
    diff = flows.diff(current.sources, snap)
    if not force and flows.same_files(current.sources, snap.files) then
      self.stats.unchanged = self.stats.unchanged + 1
      if self.reported then
        self.log("info", string.format("flows: files are back to generation %d's; it stays", current.number))
      else
        self.log("debug", string.format("flows: nothing changed (%s); generation %d stays", reason, current.number))
      end
      self.reported, self.failed_files, self.failed_errors = nil, nil, nil
      return current
    end
    if not force and flows.same_files(self.failed_files, snap.files) then
      -- The very files that failed last time: no need to compile them again.
      self.log("debug", "flows: still the same errors; generation " .. current.number .. " stays")
      return current, self.failed_errors
    end
    gen, errors = flows.build(snap, current.number + 1, { instruction_budget = self.budget })
  end
  local ms = (self.clock() - t0) * 1000
  if not gen then
    self:_report(reason, current, snap, errors, force)
    return current, errors
  end
  self.reported, self.failed_files, self.failed_errors = nil, nil, nil
  self:_adopt(gen)
  self.stats.reloads = self.stats.reloads + 1
  self.stats.last_ms = ms
  self.stats.max_ms = math.max(self.stats.max_ms, ms)
  self.log("info", string.format("flows reloaded (%s): generation %d in %.1f ms: %s (%d flows)", reason,
    gen.number, ms, describe(diff), #gen:names()))
  if (current.active or 0) == 0 then
    self:_retired(current, "no call was on it")
  end
  return gen
end

return Reloader
