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
-- never call hooks.
local HOOK_EVERY = 1000
local hook_ticks, hook_limit = 0, math.huge
local overrun_thread = nil

-- The Lua heap limit, in KiB (math.huge: none). Checked with the budget:
-- a flow that grows the heap past it fails, after one full collection.
local memory_limit_kb = math.huge

local function over_memory_limit()
  if collectgarbage("count") <= memory_limit_kb then
    return false
  end
  collectgarbage("collect")
  return collectgarbage("count") > memory_limit_kb
end

local function budget_hook()
  hook_ticks = hook_ticks + 1
  if memory_limit_kb < math.huge and over_memory_limit() then
    local rt = active
    local th = rt and rt.running
    if th and coroutine.running() == th.co then
      th.overrun = true
      error(string.format("Lua memory limit exceeded (%.0f MB in use, the limit is %.0f MB)",
        collectgarbage("count") / 1024, memory_limit_kb / 1024), 2)
    end
  end
  if hook_ticks > hook_limit then
    local rt = active
    local th = rt and rt.running
    -- Only the thread itself pays: not the runtime's code around it.
    if th and coroutine.running() == th.co then
      th.overrun = true
      -- After the first error, fail on every instruction, so that a flow
      -- catching the error with pcall cannot keep looping.
      if overrun_thread ~= th then
        overrun_thread = th
        debug.sethook(budget_hook, "", 1)
      end
      error(string.format("instruction budget exceeded: %d instructions without waiting",
        rt.budget), 2)
    end
  end
end

local function install_hook()
  if debug.gethook() ~= budget_hook then
    debug.sethook(budget_hook, "", HOOK_EVERY)
  end
end

local function cancel_wait(th)
  local cancel = th.cancel
  th.token, th.cancel = nil, nil
  if cancel then
    pcall(cancel)
  end
end

-- Sets the process-wide Lua heap limit in megabytes (nil or 0: none).
function Runtime.set_memory_limit(mb)
  memory_limit_kb = (mb and mb > 0) and mb * 1024 or math.huge
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
  }, Runtime)
  install_hook()
  Runtime.last = rt
  return rt
end

function Runtime:now()
  return self.backend.now()
end

function Runtime:log(level, message, fields)
  self.backend.log(level, message, fields)
end

-- A new thread, started on the next turn of the run queue.
function Runtime:spawn(fn, opts, ...)
  local th = setmetatable({
    co = coroutine.create(fn),
    call = opts and opts.call or nil,
    name = opts and opts.name or nil,
    rt = self,
    waiters = nil,
  }, Thread)
  self.nthreads = self.nthreads + 1
  self:schedule(th, ...)
  return th
end

function Runtime:schedule(th, ...)
  local tail = self.qtail + 1
  self.qtail = tail
  self.queue[tail] = { th, pack(...) }
  if not self.draining and not self.running then
    self:drain()
  end
end

function Runtime:drain()
  if self.draining then
    return
  end
  self.draining = true
  local queue = self.queue
  while self.qhead <= self.qtail do
    local head = self.qhead
    local item = queue[head]
    queue[head] = nil
    self.qhead = head + 1
    local args = item[2]
    self:resume(item[1], unpack(args, 1, args.n))
  end
  self.qhead, self.qtail = 1, 0
  self.draining = false
end

-- `quiet`: the thread was killed; whoever killed it reports it.
local function finish(rt, th, results, err, trace, quiet)
  th.done = true
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

-- The one place that resumes a coroutine.
function Runtime:resume(th, ...)
  if th.done or th.dead then
    return
  end
  local prev_active, prev_running = active, self.running
  active, self.running = self, th
  hook_ticks, hook_limit = 0, self.budget / HOOK_EVERY
  local res = pack(coroutine.resume(th.co, ...))
  hook_limit = math.huge
  if overrun_thread then
    overrun_thread = nil
    debug.sethook(budget_hook, "", HOOK_EVERY)
  end
  active, self.running = prev_active, prev_running
  if th.done then
    return -- killed while it ran
  end
  if not res[1] then
    finish(self, th, nil, tostring(res[2]), debug.traceback(th.co, tostring(res[2])))
  elseif coroutine.status(th.co) == "dead" then
    finish(self, th, { n = res.n - 1, unpack(res, 2, res.n) })
  elseif th.overrun then
    -- It caught the budget error and went on to wait: stop it anyway.
    th.dead = true
    cancel_wait(th)
    local msg = "instruction budget exceeded (the error was caught; the thread is stopped)"
    finish(self, th, nil, msg, debug.traceback(th.co, msg))
  end
end

-- Wait from inside a thread. start(wake) begins the operation and returns a
-- cancel function (or nil); wake(...) makes this call return its arguments.
-- With a timeout, the call returns nil, "timeout" when it runs out.
function Runtime:await(start, timeout)
  local th = self.running
  if not th or th.co ~= coroutine.running() then
    error("luari: wait outside a luari thread", 2)
  end
  local token = {}
  th.token = token
  local timer
  local function wake(...)
    if th.token ~= token then
      return false
    end
    th.token, th.cancel = nil, nil
    if timer then
      timer:stop()
    end
    self:schedule(th, ...)
    return true
  end
  local cancel = start(wake)
  if th.token == token then
    th.cancel = cancel
    if timeout then
      timer = self.backend.timer(timeout, function()
        if th.token ~= token then
          return
        end
        timer = nil
        -- Cancel before waking: the thread may run at once inside wake.
        cancel_wait(th)
        th.token = token
        wake(nil, "timeout")
      end)
    end
  end
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

function Runtime:sleep(seconds)
  local backend = self.backend
  return self:await(function(wake)
    local t = backend.timer(seconds, function()
      wake(true)
    end)
    return function()
      t:stop()
    end
  end)
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
function Runtime:request(method, segments, query, body, timeout, op)
  local backend = self.backend
  local observe = self.on_request
  local started = observe and backend.now()
  return self:await(function(wake)
    local handle = backend.request(method, segments, query, body, timeout,
      function(status, rbody, err, errmsg, reason)
        if observe then
          observe(op or method, err or status, backend.now() - started)
        end
        wake(status, rbody, err, errmsg, reason)
      end)
    return function()
      handle:cancel()
    end
  end)
end

Runtime.Thread = Thread
return Runtime
