-- The scheduler: every flow and every luari.spawn thread is a coroutine
-- run by one Runtime, on whatever loop the backend brings (libev in the
-- host, the virtual clock in the simulator).
--
-- One function, Runtime:resume, resumes coroutines; everything that wakes a
-- thread goes through a FIFO run queue drained by Runtime:drain, so threads
-- never resume inside one another. A thread that waits registers a wake
-- function and a cancel function (the operation it waits on), so a call
-- that ends can cut every wait short.
--
-- backend = {
--   request(method, segments, query, body, timeout, cb) -> handle (:cancel())
--   timer(seconds, fn) -> handle (:stop())
--   now() -> monotonic seconds
--   log(level, message, fields)
-- }

local util = require "luari.util"

local Runtime = {}
Runtime.__index = Runtime

local Thread = {}
Thread.__index = Thread

local pack = function(...)
  return { n = select("#", ...), ... }
end
local unpack = unpack or table.unpack

-- The runtime whose thread is running now (modules like luari.ari use it).
local active = nil

-- Instruction budget: a count hook every HOOK_EVERY VM instructions. Flow
-- code is loaded with the JIT off (see luari.flows) because compiled loops
-- never call hooks. The hook is set only while a thread runs: with any
-- count hook set, LuaJIT sends every instruction of every coroutine through
-- its hook dispatch, and luari's own work between threads (routing events,
-- handling replies) is a tenth faster without it.
local HOOK_EVERY = 1000
local hook_ticks, hook_limit = 0, math.huge
local overrun_thread = nil
local budget_hook

-- The thread yielding from Runtime:await, checked as the resume returns:
-- any other yield is the flow's own coroutine.yield, which nothing would
-- ever resume. (One variable, not a field per thread: ten thousand
-- waiting threads are 1.5 MB lighter.)
local yielding = nil

-- The name of luari's own threads (hang-ups, checks): the Lua memory limit
-- is for flows, and must not stop luari from hanging up a call.
local SYSTEM = "luari"
Runtime.SYSTEM = SYSTEM

-- The Lua heap limit, in KiB (math.huge: none). Checked with the budget:
-- a flow that grows the heap past it fails, after one full collection.
local memory_limit_kb = math.huge

-- After a full collection that left the heap over the limit, the next
-- check collects again only once the heap has grown past this.
local memory_recheck_kb = 0

local function over_memory_limit()
  local kb = collectgarbage("count")
  if kb <= memory_limit_kb then
    memory_recheck_kb = 0
    return false
  end
  if kb < memory_recheck_kb then
    return false
  end
  collectgarbage("collect")
  kb = collectgarbage("count")
  memory_recheck_kb = kb * 1.1
  return kb > memory_limit_kb
end

-- A flow's error value printed by its own __tostring (see error_text)
-- runs in `guard_co`, with GUARD_TICKS hook ticks at most.
local GUARD_TICKS = 1000
local guard_co, guard_ticks = nil, 0
local guard_owner = nil -- the coroutine that runs error_text

local function guard_tick()
  guard_ticks = guard_ticks + 1
  if guard_ticks > GUARD_TICKS then
    -- Every instruction from now on, so that a pcall inside cannot go on.
    debug.sethook(budget_hook, "", 1)
    error("__tostring did not finish", 2)
  end
end

budget_hook = function()
  hook_ticks = hook_ticks + 1
  -- While error_text runs a __tostring, all that runs besides error_text
  -- itself is that (and any coroutine it makes): the guard counts it all.
  local co = coroutine.running()
  if guard_co ~= nil and co ~= guard_owner then
    return guard_tick()
  end
  local rt = active
  local th = rt and rt.running
  -- The thread pays, and any coroutine it made and runs (one of its own
  -- looping would otherwise hold the loop for good); not the runtime's
  -- code around the resume, which runs in the resumer.
  if th == nil or co == rt.resumer then
    return
  end
  if memory_limit_kb < math.huge and th.name ~= SYSTEM and over_memory_limit() then
    th.overrun = true
    error(string.format("Lua memory limit exceeded (%.0f MB in use, the limit is %.0f MB)",
      collectgarbage("count") / 1024, memory_limit_kb / 1024), 2)
  end
  if hook_ticks > hook_limit then
    th.overrun = true
    -- After the first error, fail on every instruction, so that a flow
    -- catching the error with pcall cannot keep looping.
    if overrun_thread ~= th then
      overrun_thread = th
      debug.sethook(budget_hook, "", 1)
    end
    error(string.format("instruction budget exceeded: %d instructions without waiting", rt.budget),
      util.flow_code_level(2))
  end
end

-- The hook in place when the outermost thread was resumed (a file's
-- top-level budget in luari.flows, or none), put back when it yields. A
-- hook the program embedding Lua set in C (debug.gethook says "external
-- hook": Lua cannot put it back) is left alone, budget or not.
local outer_hook, outer_mask, outer_count

local function external_hook(fn)
  return fn ~= nil and type(fn) ~= "function"
end

-- Sets the budget hook; returns the hook it found, for put_back_hook.
local function set_budget_hook()
  local fn, mask, count = debug.gethook()
  if not external_hook(fn) then
    debug.sethook(budget_hook, "", HOOK_EVERY)
  end
  return fn, mask, count
end

-- The budget hook itself is put back too: a __tostring that error_text
-- guards may resume a thread of another runtime.
local function put_back_hook(fn, mask, count)
  if external_hook(fn) then
    return -- not ours to change
  elseif fn then
    debug.sethook(fn, mask, count)
  else
    debug.sethook()
  end
end

local function hook_threads()
  outer_hook, outer_mask, outer_count = set_budget_hook()
end

local function unhook_threads()
  put_back_hook(outer_hook, outer_mask, outer_count)
  outer_hook, outer_mask, outer_count = nil, nil, nil
end

local function cancel_request(handle)
  handle:cancel()
end

-- Ends a thread's wait: its timeout and the operation it waited on
-- (th.cancel: a function, or the handle of a request, Runtime:request).
local function cancel_wait(th)
  local cancel, timer = th.cancel, th.wait_timer
  th.token, th.cancel, th.wait_timer = nil, nil, nil
  if timer then
    timer:stop()
  end
  if type(cancel) == "function" then
    pcall(cancel)
  elseif cancel then
    pcall(cancel_request, cancel)
  end
end

-- The collector's pace. While the heap is small LuaJIT's own pace (a new
-- cycle once the heap has doubled) saves CPU: at 1,000 calls a second,
-- 6-25% less than a pause of 150, for a few MB more. With thousands of
-- calls held, the heap is mostly their live state, and garbage allowed to
-- grow as large again is RSS the process keeps: past EAGER_KB the
-- collector starts a new cycle as soon as one ends and works twice as fast
-- (10,000 parked calls: 72 MB RSS down to 62, for a fifth more CPU; pause
-- 100 at the default pace leaves 63-64 MB). Back under RELAXED_KB it
-- relaxes.
Runtime.EAGER_KB, Runtime.RELAXED_KB = 24 * 1024, 16 * 1024

-- eager: the pace now; kb: the heap now. Sets the pace the heap calls
-- for and returns whether it is eager.
function Runtime.pace_collector(eager, kb)
  if not eager and kb > Runtime.EAGER_KB or eager and kb < Runtime.RELAXED_KB then
    eager = not eager
    collectgarbage("setpause", eager and 100 or 200)
    collectgarbage("setstepmul", eager and 400 or 200)
  end
  return eager
end

-- Sets the process-wide Lua heap limit in megabytes (nil or 0: none).
function Runtime.set_memory_limit(mb)
  memory_limit_kb = (mb and mb > 0) and mb * 1024 or math.huge
  memory_recheck_kb = 0
end

-- Whether the Lua heap is over the process-wide limit (after one full
-- collection); also used while flow files load.
Runtime.over_memory_limit = over_memory_limit

-- The limit in MB, for messages (nil: none).
function Runtime.memory_limit_mb()
  return memory_limit_kb < math.huge and memory_limit_kb / 1024 or nil
end

function Runtime.active()
  return active
end

-- The runtime and thread of the caller, or raise naming `what`.
function Runtime.current(what)
  local rt = active
  local th = rt and rt.running
  if not th or th.co ~= coroutine.running() then
    error((what or "this function") .. " waits, so it must be called from a flow or a"
      .. " luari.spawn thread (not from a file's top level or a plain coroutine)", 3)
  end
  return rt, th
end

function Runtime.new(backend, opts)
  opts = opts or {}
  local rt = setmetatable({
    backend = backend,
    budget = opts.instruction_budget or 50000000,
    on_error = opts.on_error,   -- function(thread, message, traceback)
    on_finish = opts.on_finish, -- function(thread, results)
    queue = {},
    qhead = 1,
    qtail = 0,
    draining = false,
    running = nil,
    nthreads = 0,
    waits = 0, -- numbers the waits: a wake meant for an earlier one is ignored
  }, Runtime)
  Runtime.last = rt
  return rt
end

function Runtime:now()
  return self.backend.now()
end

function Runtime:log(level, message, fields)
  self.backend.log(level, message, fields)
end

-- A new thread that has not run yet; Runtime:start runs it.
function Runtime:thread(fn, opts)
  local th = setmetatable({
    co = coroutine.create(fn),
    call = opts and opts.call or nil,
    name = opts and opts.name or nil,
    waiters = nil,
  }, Thread)
  self.nthreads = self.nthreads + 1
  return th
end

-- Starts a thread from Runtime:thread with these arguments: now when
-- nothing else runs, else on the next turn of the run queue.
function Runtime:start(th, ...)
  self:schedule(th, ...)
  return th
end

-- A new thread, started as Runtime:start does.
function Runtime:spawn(fn, opts, ...)
  return self:start(self:thread(fn, opts), ...)
end

-- A failure here is luari's own bug; it must not stop every other thread.
local function run_thread(self, th, ...)
  local ok, err = pcall(self.resume, self, th, ...)
  if not ok then
    self:log("error", "luari: internal error while running a thread: " .. tostring(err))
  end
end

local function run_queue(self)
  local queue = self.queue
  while self.qhead <= self.qtail do
    local head = self.qhead
    local item = queue[head]
    queue[head] = nil
    self.qhead = head + 1
    run_thread(self, item.th, unpack(item, 1, item.n))
  end
  self.qhead, self.qtail = 1, 0
end

-- Every wait of every call goes through here, so it allocates as little
-- as it can: with nothing running and nothing queued (most wake-ups) the
-- thread runs at once; else a queued resume is one table,
-- { n = #args, th = thread, args... }.
function Runtime:schedule(th, ...)
  if not self.draining and not self.running and self.qhead > self.qtail then
    self.draining = true
    run_thread(self, th, ...)
    run_queue(self)
    self.draining = false
    return
  end
  local tail = self.qtail + 1
  self.qtail = tail
  local item = pack(...)
  item.th = th
  self.queue[tail] = item
  if not self.draining and not self.running then
    self:drain()
  end
end

function Runtime:drain()
  if self.draining then
    return
  end
  self.draining = true
  run_queue(self)
  self.draining = false
end

-- A flow may raise any value, even a table whose __tostring fails or
-- never returns: it is printed in a coroutine of its own, with a budget.
local function guarded_tostring(v)
  return tostring(v)
end

-- An error message longer than this is cut (a flow that raised a 20 MB
-- string): the log line stays readable and its traceback is kept.
Runtime.ERROR_TEXT_MAX = 8192

local function shortened(text)
  local max = Runtime.ERROR_TEXT_MAX
  if #text <= max then
    return text
  end
  local cut = max
  while cut > 0 and text:byte(cut + 1) and text:byte(cut + 1) >= 0x80 and text:byte(cut + 1) < 0xC0 do
    cut = cut - 1 -- not inside a UTF-8 character
  end
  return string.format("%s... (%d more bytes)", text:sub(1, cut), #text - cut)
end

local function error_text(e)
  if type(e) == "string" then
    return shortened(e)
  end
  local co = coroutine.create(guarded_tostring)
  guard_co, guard_ticks, guard_owner = co, 0, coroutine.running()
  local old_fn, old_mask, old_count = set_budget_hook()
  local ok, text = coroutine.resume(co, e)
  guard_co, guard_owner = nil, nil
  put_back_hook(old_fn, old_mask, old_count)
  if ok and type(text) == "string" then
    return shortened(text)
  end
  return "(an error value of type " .. type(e) .. " that cannot be printed)"
end

-- (also for the errors of flow files while they load)
Runtime.error_text = error_text

-- `quiet`: the thread was killed; whoever killed it reports it.
local function finish(rt, th, results, err, trace, quiet)
  th.done = true
  -- A dead coroutine's stack keeps what it held (a flow that built a huge
  -- string and failed): nothing needs it now.
  th.co = nil
  th.results = results
  th.error = err
  rt.nthreads = rt.nthreads - 1
  if quiet then
    -- nothing to report
  elseif err and rt.on_error then
    local ok, e = pcall(rt.on_error, th, err, trace)
    if not ok then
      rt:log("error", "luari: error handler failed: " .. tostring(e))
    end
  elseif not err and rt.on_finish then
    local ok, e = pcall(rt.on_finish, th, results)
    if not ok then
      rt:log("error", "luari: finish handler failed: " .. tostring(e))
    end
  end
  local waiters = th.waiters
  th.waiters = nil
  for i = 1, waiters and #waiters or 0 do
    waiters[i]()
  end
end

-- After Runtime:resume: what the coroutine returned is taken as arguments,
-- not packed into a table, since most resumes end in another wait.
-- prev_ticks, prev_limit: the budget of the thread that resumed this one,
-- if any (a thread of another runtime), which goes on with what it had.
local function resumed(self, th, prev_active, prev_running, prev_resumer, prev_ticks, prev_limit, ok, ...)
  local awaited = yielding == th
  yielding = nil
  hook_ticks, hook_limit = prev_ticks, prev_limit
  if overrun_thread then
    overrun_thread = nil
    debug.sethook(budget_hook, "", HOOK_EVERY)
  end
  active, self.running, self.resumer = prev_active, prev_running, prev_resumer
  if prev_active == nil then
    unhook_threads()
  end
  if th.done then
    return -- killed while it ran
  end
  if not ok then
    local msg = error_text((...))
    finish(self, th, nil, msg, debug.traceback(th.co, msg))
  elseif coroutine.status(th.co) == "dead" then
    finish(self, th, pack(...))
  elseif th.overrun then
    -- It caught the budget error and went on to wait: stop it anyway.
    th.dead = true
    cancel_wait(th)
    local msg = "instruction budget exceeded (the error was caught; the thread is stopped)"
    finish(self, th, nil, msg, debug.traceback(th.co, msg))
  elseif not awaited then
    -- coroutine.yield called by the flow itself: nothing would ever resume it.
    th.dead = true
    cancel_wait(th)
    local msg = "coroutine.yield outside a luari wait: a flow waits with luari's functions"
      .. " (call methods, luari.sleep, ...); its own coroutines may yield only inside them"
    finish(self, th, nil, msg, debug.traceback(th.co, msg))
  end
end

-- The one place that resumes a coroutine.
function Runtime:resume(th, ...)
  if th.done or th.dead then
    return
  end
  local prev_active, prev_running, prev_resumer = active, self.running, self.resumer
  local prev_ticks, prev_limit = hook_ticks, hook_limit
  active, self.running, self.resumer = self, th, coroutine.running()
  hook_ticks, hook_limit = 0, self.budget / HOOK_EVERY
  if prev_active == nil then
    hook_threads()
    prev_ticks, prev_limit = 0, math.huge
  end
  return resumed(self, th, prev_active, prev_running, prev_resumer, prev_ticks, prev_limit,
    coroutine.resume(th.co, ...))
end

-- The running thread, its new wait numbered: a wake meant for an earlier
-- wait is ignored. Raises at the caller of the wait outside a thread.
local function begin_wait(rt)
  local th = rt.running
  if not th or th.co ~= coroutine.running() then
    error("luari: wait outside a luari thread", 3)
  end
  local token = rt.waits + 1
  rt.waits = token
  th.token = token
  return th, token
end

-- Wait from inside a thread. start(wake) begins the operation and returns a
-- cancel function (or nil); wake(...) makes this call return its arguments.
-- With a timeout, the call returns nil, "timeout" when it runs out.
function Runtime:await(start, timeout)
  local th, token = begin_wait(self)
  local function wake(...)
    if th.token ~= token then
      return false
    end
    local timer = th.wait_timer
    th.token, th.cancel, th.wait_timer = nil, nil, nil
    if timer then
      timer:stop()
    end
    self:schedule(th, ...)
    return true
  end
  local ok, cancel = pcall(start, wake)
  if not ok then
    if th.token == token then
      th.token = nil
    end
    error(cancel, 0)
  end
  if th.token == token then
    th.cancel = cancel
    if timeout then
      th.wait_timer = self.backend.timer(timeout, function()
        if th.token ~= token then
          return
        end
        th.wait_timer = nil
        -- Cancel before waking: the thread may run at once inside wake.
        cancel_wait(th)
        th.token = token
        wake(nil, "timeout")
      end)
    end
  end
  yielding = th
  return coroutine.yield()
end

-- Wake a waiting thread from outside with these results, cancelling what it
-- waited on (used when a call hangs up). Returns false if it was not waiting.
function Runtime:interrupt(th, ...)
  if not th.token then
    return false
  end
  cancel_wait(th)
  self:schedule(th, ...)
  return true
end

-- What a wait of `seconds` starts (for Runtime:await and Call:_wait).
function Runtime:sleep_start(seconds)
  local backend = self.backend
  return function(wake)
    local t = backend.timer(seconds, function()
      wake(true)
    end)
    return function()
      t:stop()
    end
  end
end

function Runtime:sleep(seconds)
  return self:await(self:sleep_start(seconds))
end

-- Stop a thread for good: its wait is cancelled and it never runs again.
function Runtime:kill(th, why)
  if th.done then
    return
  end
  th.dead = true
  cancel_wait(th)
  finish(self, th, nil, why or "killed", nil, true)
end

-- Wait until another thread ends: its results, or nil and its error.
function Runtime:join(th)
  if not th.done then
    self:await(function(wake)
      th.waiters = th.waiters or {}
      th.waiters[#th.waiters + 1] = function()
        wake()
      end
    end)
  end
  if th.error or not th.results then
    return nil, th.error or "killed"
  end
  return unpack(th.results, 1, th.results.n)
end

-- An HTTP request to ARI: status, decoded body, transport error, message,
-- reason. `op` names the operation for rt.on_request (metrics).
-- The reply of request number `token` of thread th wakes it, unless the
-- thread has stopped waiting for it (interrupted, killed).
local function reply_for(rt, th, token)
  return function(status, rbody, err, errmsg, reason)
    if th.token == token then
      th.token, th.cancel = nil, nil
      rt:schedule(th, status, rbody, err, errmsg, reason)
    end
  end
end

-- The same, reporting each reply to rt.on_request (metrics) first.
local function observed_reply_for(rt, th, token, op)
  local backend, observe = rt.backend, rt.on_request
  local started = backend.now()
  local wake = reply_for(rt, th, token)
  return function(status, rbody, err, errmsg, reason)
    local ok, e = pcall(observe, op, err or status, backend.now() - started)
    if not ok then
      rt:log("error", "luari: request observer failed: " .. tostring(e))
    end
    wake(status, rbody, err, errmsg, reason)
  end
end

-- A request and the wait for its reply: Runtime:await with the start
-- written out, as every operation of every call comes through here (one
-- closure per request, not four). `op` names it for rt.on_request.
function Runtime:request(method, segments, query, body, timeout, op)
  local th, token = begin_wait(self)
  local on_reply = self.on_request and observed_reply_for(self, th, token, op or method)
    or reply_for(self, th, token)
  local ok, handle = pcall(self.backend.request, method, segments, query, body, timeout, on_reply)
  if not ok then
    if th.token == token then
      th.token = nil
    end
    error(handle, 0)
  end
  if th.token == token then
    th.cancel = handle
  end
  yielding = th
  return coroutine.yield()
end

Runtime.Thread = Thread
return Runtime
