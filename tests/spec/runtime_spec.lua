-- The scheduler: threads, waits, timeouts, interrupts, kills, joins and the
-- instruction budget, on the virtual clock.

local Clock = require "luari.sim.clock"
local Runtime = require "luari.runtime"

local function new_rt(opts)
  local clock = Clock.new()
  local logs = {}
  local backend = {
    timer = function(s, fn)
      local h = clock:after(s, fn)
      return { stop = function() h:cancel() end }
    end,
    now = function() return clock:now() end,
    log = function(level, msg) logs[#logs + 1] = level .. ": " .. msg end,
    request = function() error("no requests here") end,
  }
  local rt = Runtime.new(backend, opts)
  return rt, clock, logs
end

describe("luari.runtime", function()
  it("runs threads in the order they were spawned, each until it waits", function()
    local rt, clock = new_rt()
    local order = {}
    rt:spawn(function()
      order[#order + 1] = "a1"
      rt:sleep(1)
      order[#order + 1] = "a2"
    end)
    rt:spawn(function()
      order[#order + 1] = "b1"
      rt:sleep(0.5)
      order[#order + 1] = "b2"
    end)
    clock:run()
    assert.are.same({ "a1", "b1", "b2", "a2" }, order)
    assert.are.equal(1, clock:now())
  end)

  it("await returns what wake gives, and a timeout gives nil, 'timeout'", function()
    local rt, clock = new_rt()
    local got = {}
    rt:spawn(function()
      got.a = { rt:await(function(wake)
        clock:after(2, function() wake("x", 42) end)
      end) }
      local cancelled = false
      got.b = { rt:await(function()
        return function() cancelled = true end
      end, 3) }
      got.cancelled = cancelled
      got.at = clock:now()
    end)
    clock:run()
    assert.are.same({ "x", 42 }, got.a)
    assert.are.same({ nil, "timeout" }, got.b)
    assert.is_true(got.cancelled)
    assert.are.equal(5, got.at)
  end)

  it("a late wake after a timeout is ignored", function()
    local rt, clock = new_rt()
    local results = {}
    rt:spawn(function()
      results[#results + 1] = { rt:await(function(wake)
        clock:after(5, function() results.late = wake("late") end)
      end, 1) }
      rt:sleep(10)
    end)
    clock:run()
    assert.are.same({ { nil, "timeout" } }, { results[1] })
    assert.is_false(results.late)
  end)

  it("interrupt wakes a waiting thread and cancels its operation", function()
    local rt, clock = new_rt()
    local th, cancelled, got
    th = rt:spawn(function()
      got = { rt:await(function() return function() cancelled = true end end) }
    end)
    clock:after(1, function() rt:interrupt(th, nil, "hangup") end)
    clock:run()
    assert.are.same({ nil, "hangup" }, got)
    assert.is_true(cancelled)
  end)

  it("kill stops a thread for good and wakes whoever joined it", function()
    local rt, clock = new_rt()
    local after_kill = false
    local victim = rt:spawn(function()
      rt:sleep(10)
      after_kill = true
    end)
    local joined
    rt:spawn(function()
      joined = { rt:join(victim) }
    end)
    clock:after(1, function() rt:kill(victim, "call ended") end)
    clock:run()
    assert.is_false(after_kill)
    assert.are.same({ nil, "call ended" }, joined)
    assert.are.equal(0, rt.nthreads)
  end)

  it("join returns a thread's results", function()
    local rt, clock = new_rt()
    local got
    local worker = rt:spawn(function(a, b)
      rt:sleep(1)
      return a + b, "done"
    end, nil, 2, 3)
    rt:spawn(function() got = { rt:join(worker) } end)
    clock:run()
    assert.are.same({ 5, "done" }, got)
  end)

  it("reports a thread's error with a traceback and carries on with the others", function()
    local errors = {}
    local rt, clock = new_rt()
    rt.on_error = function(th, err, trace) errors[#errors + 1] = { err = err, trace = trace } end
    local survived = false
    rt:spawn(function()
      rt:sleep(1)
      error("boom")
    end)
    rt:spawn(function()
      rt:sleep(2)
      survived = true
    end)
    clock:run()
    assert.are.equal(1, #errors)
    assert.truthy(errors[1].err:find("boom", 1, true))
    assert.truthy(errors[1].trace:find("stack traceback", 1, true))
    assert.is_true(survived)
  end)

  it("cuts a huge error message, keeping its start and the traceback", function()
    local errors = {}
    local rt, clock = new_rt()
    rt.on_error = function(th, err, trace) errors[#errors + 1] = { err = err, trace = trace } end
    rt:spawn(function()
      rt:sleep(1)
      error("huge: " .. string.rep("x", 1000000), 0)
    end)
    clock:run()
    assert.are.equal(1, #errors)
    local err = errors[1].err
    assert.truthy(err:find("^huge: xxxx"))
    assert.is_true(#err < Runtime.ERROR_TEXT_MAX + 100, tostring(#err))
    assert.truthy(err:find("... (" .. (1000006 - Runtime.ERROR_TEXT_MAX) .. " more bytes)", 1, true), err:sub(-60))
    assert.truthy(errors[1].trace:find("stack traceback", 1, true))
    assert.is_true(#errors[1].trace < 2 * Runtime.ERROR_TEXT_MAX)
  end)

  it("stops a loop that never waits once it spends its instruction budget", function()
    local errors = {}
    local rt, clock = new_rt({ instruction_budget = 200000 })
    rt.on_error = function(th, err) errors[#errors + 1] = err end
    local other = false
    local looping = function()
      local x = 0
      while true do x = x + 1 end
    end
    jit.off(looping, true)
    rt:spawn(looping)
    rt:spawn(function() other = true end)
    clock:run()
    assert.are.equal(1, #errors)
    assert.truthy(errors[1]:find("instruction budget", 1, true))
    assert.is_true(other)
  end)

  it("stops a loop that catches the budget error with pcall", function()
    local errors = {}
    local rt, clock = new_rt({ instruction_budget = 200000 })
    rt.on_error = function(th, err) errors[#errors + 1] = err end
    local stubborn = function()
      while true do
        pcall(function() while true do end end)
      end
    end
    jit.off(stubborn, true)
    rt:spawn(stubborn)
    clock:run()
    assert.are.equal(1, #errors)
  end)

  it("gives a clear error when a waiting function runs outside a thread", function()
    local rt = new_rt()
    local ok, err = pcall(function() rt:sleep(1) end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("outside a luari thread", 1, true))
    ok, err = pcall(Runtime.current, "ari.channels.answer")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("ari.channels.answer", 1, true))
  end)
end)

describe("luari.runtime memory limit", function()
  after_each(function() Runtime.set_memory_limit(nil) end)

  it("stops a flow that grows the Lua heap past the limit, and only that flow", function()
    local errors = {}
    local rt, clock = new_rt()
    rt.on_error = function(th, err) errors[#errors + 1] = err end
    Runtime.set_memory_limit(collectgarbage("count") / 1024 + 64)
    local other = false
    local hog = function()
      local t = {}
      for i = 1, 1e7 do t[i] = { i } end
    end
    jit.off(hog, true)
    rt:spawn(hog)
    rt:spawn(function() rt:sleep(1) other = true end)
    clock:run()
    assert.are.equal(1, #errors)
    assert.truthy(errors[1]:find("Lua memory limit exceeded", 1, true), errors[1])
    assert.is_true(other)
  end)

  it("does not stop luari's own threads (they hang calls up)", function()
    local errors = {}
    local rt, clock = new_rt()
    rt.on_error = function(th, err) errors[#errors + 1] = err end
    local held
    Runtime.set_memory_limit(collectgarbage("count") / 1024 + 8)
    local grow = function()
      local t = {}
      for i = 1, 4e5 do t[i] = { i } end
      held = #t
    end
    jit.off(grow, true)
    rt:spawn(grow, { name = Runtime.SYSTEM })
    clock:run()
    assert.are.same({}, errors)
    assert.are.equal(4e5, held)
  end)
end)

describe("luari.runtime robustness", function()
  it("an error value that cannot be printed fails only its thread", function()
    local errors = {}
    local rt, clock = new_rt()
    rt.on_error = function(th, err) errors[#errors + 1] = err end
    local bad = setmetatable({}, { __tostring = function() error("cannot print me") end })
    local later = false
    rt:spawn(function() rt:sleep(1) error(bad) end)
    rt:spawn(function() rt:sleep(2) later = true end)
    clock:run()
    assert.are.equal(1, #errors)
    assert.truthy(errors[1]:find("cannot be printed", 1, true), errors[1])
    assert.is_true(later)
  end)

  it("an error value whose __tostring never returns fails only its thread", function()
    local errors = {}
    local rt, clock = new_rt()
    rt.on_error = function(th, err) errors[#errors + 1] = err end
    local looping = function() while true do end end
    jit.off(looping, true)
    local endless = setmetatable({}, { __tostring = looping })
    local later = false
    rt:spawn(function() error(endless) end)
    rt:spawn(function() rt:sleep(1) later = true end)
    clock:run()
    assert.are.equal(1, #errors)
    assert.truthy(errors[1]:find("cannot be printed", 1, true), errors[1])
    assert.is_true(later)
  end)

  it("stops a __tostring that loops inside a coroutine of its own", function()
    local errors = {}
    local rt, clock = new_rt()
    rt.on_error = function(th, err) errors[#errors + 1] = err end
    local looping = function() while true do end end
    jit.off(looping, true)
    local tostr = function() return coroutine.wrap(looping)() end
    jit.off(tostr, true)
    rt:spawn(function() error(setmetatable({}, { __tostring = tostr })) end)
    clock:run()
    assert.are.equal(1, #errors)
    assert.truthy(errors[1]:find("cannot be printed", 1, true), errors[1])
  end)

  it("keeps the __tostring guard when it wakes a thread of another runtime", function()
    local a, clock = new_rt()
    local b = new_rt()
    local errors = {}
    a.on_error = function(_, e) errors[#errors + 1] = e end
    local tostr = function()
      b:spawn(function() end)
      local n = 0
      for _ = 1, 3000000 do n = n + 1 end -- more than the guard allows
      return "printed"
    end
    jit.off(tostr, true)
    a:spawn(function() error(setmetatable({}, { __tostring = tostr })) end)
    clock:run()
    assert.truthy(errors[1]:find("cannot be printed", 1, true), errors[1])
  end)

  it("a thread that runs a thread of another runtime keeps its own budget", function()
    local errors = {}
    local a, clock = new_rt({ instruction_budget = 200000 })
    local b = new_rt()
    a.on_error = function(_, e) errors[#errors + 1] = e end
    local body = function()
      b:spawn(function() end)
      local n = 0
      for _ = 1, 3000000 do n = n + 1 end
      return n
    end
    jit.off(body, true)
    local th = a:spawn(body)
    clock:run()
    assert.are.equal(1, #errors)
    assert.truthy(errors[1]:find("instruction budget", 1, true), errors[1])
    assert.is_nil(th.results)
  end)

  it("charges the budget to coroutines a thread makes and runs", function()
    local errors = {}
    local rt, clock = new_rt({ instruction_budget = 200000 })
    rt.on_error = function(th, err) errors[#errors + 1] = err end
    local inner = function() while true do end end
    jit.off(inner, true)
    local later = false
    rt:spawn(function() coroutine.wrap(inner)() end)
    rt:spawn(function() rt:sleep(1) later = true end)
    clock:run()
    assert.are.equal(1, #errors)
    assert.truthy(errors[1]:find("instruction budget", 1, true), errors[1])
    assert.is_true(later)
  end)

  it("sets its budget hook only while a thread runs, and puts back the hook it found", function()
    local rt, clock = new_rt()
    local seen = {}
    rt:spawn(function()
      seen[1] = debug.gethook()
      rt:sleep(1)
      seen[2] = debug.gethook()
    end)
    assert.is_function(seen[1])
    assert.is_nil(debug.gethook())
    local mine = function() end
    debug.sethook(mine, "", 1000000)
    clock:run()
    local after, mask, count = debug.gethook()
    debug.sethook()
    assert.are.equal(seen[1], seen[2])
    assert.are.equal(mine, after)
    assert.are.same({ "", 1000000 }, { mask, count })
  end)

  it("sends a request and returns its reply; reports it to on_request", function()
    local rt, clock = new_rt()
    local sent, observed = {}, {}
    rt.backend.request = function(method, segments, query, body, timeout, cb)
      sent[#sent + 1] = { method, segments[1], query[2], body and body.x, timeout }
      clock:after(0.25, function() cb(200, { ok = true }, nil, nil, "OK") end)
      return { cancel = function() error("a request that got its reply is not cancelled") end }
    end
    rt.on_request = function(op, status, seconds)
      observed[#observed + 1] = { op, status, seconds }
    end
    local got
    rt:spawn(function()
      got = { rt:request("POST", { "channels" }, { "app", "luari" }, { x = 1 }, 5, "channels.originate") }
    end)
    clock:run()
    assert.are.same({ { "POST", "channels", "luari", 1, 5 } }, sent)
    assert.are.same({ 200, { ok = true }, nil, nil, "OK" }, got)
    assert.are.same({ { "channels.originate", 200, 0.25 } }, observed)
  end)

  it("cancels a request whose thread is interrupted, and ignores its late reply", function()
    local rt, clock = new_rt()
    local cancels, reply = 0, nil
    rt.backend.request = function(_, _, _, _, _, cb)
      reply = cb
      return { cancel = function() cancels = cancels + 1 end }
    end
    local got, resumed = nil, 0
    local th = rt:spawn(function()
      got = { rt:request("GET", { "asterisk", "ping" }) }
      resumed = resumed + 1
      rt:sleep(10)
    end)
    assert.is_true(rt:interrupt(th, nil, "hangup"))
    assert.are.same({ nil, "hangup" }, got)
    assert.are.equal(1, cancels)
    reply(200, {}, nil, nil, "OK")
    clock:run()
    assert.are.equal(1, resumed)
  end)

  it("raises at the request when the backend cannot send it, and the thread waits for nothing", function()
    local rt, clock = new_rt()
    local errors = {}
    rt.on_error = function(_, err) errors[#errors + 1] = err end
    rt.backend.request = function() error("no such method", 0) end
    local th
    th = rt:thread(function()
      local ok, err = pcall(rt.request, rt, "GET", { "x" })
      assert(not ok and err == "no such method", tostring(err))
      assert(th.token == nil, "still waiting")
      return "went on"
    end)
    rt:start(th)
    clock:run()
    assert.are.same({}, errors)
    assert.are.same({ "went on" }, { th.results[1] })
  end)

  it("fails a thread that yields on its own, outside any wait", function()
    local errors = {}
    local rt, clock = new_rt()
    rt.on_error = function(th, err) errors[#errors + 1] = err end
    local th = rt:spawn(function() coroutine.yield() end)
    clock:run()
    assert.are.equal(1, #errors)
    assert.truthy(errors[1]:find("coroutine.yield outside a luari wait", 1, true), errors[1])
    assert.is_true(th.done)
  end)

  it("lets go of a finished thread's stack: a failed flow's big string is freed", function()
    local rt, clock = new_rt()
    rt.on_error = function() end
    collectgarbage("collect")
    local before = collectgarbage("count")
    local th = rt:spawn(function()
      local big = string.rep("x", 64 * 1024 * 1024)
      error("failed holding " .. #big .. " bytes")
    end)
    clock:run()
    -- LuaJIT's own string buffer, as large as the string was, halves at
    -- each collection: three of them bring it under the bound.
    for _ = 1, 3 do
      collectgarbage("collect")
    end
    assert.truthy(th.error:find("failed holding", 1, true))
    assert.is_true(collectgarbage("count") - before < 16 * 1024, "KB still held: " .. (collectgarbage("count") - before))
  end)

  it("a wait cut short by interrupt stops its timeout timer", function()
    local rt, clock = new_rt()
    local th = rt:spawn(function() rt:await(function() end, 3600) end)
    clock:after(1, function() rt:interrupt(th, nil, "hangup") end)
    clock:run()
    assert.are.equal(1, clock:now(), "nothing may keep the clock running to the old timeout")
  end)

  it("a start function that raises leaves no stale wait behind", function()
    local rt, clock = new_rt()
    local th, caught
    th = rt:spawn(function()
      caught = select(2, pcall(rt.await, rt, function() error("no start") end))
      rt:sleep(1)
    end)
    clock:after(0.5, function() caught = caught .. "|" .. tostring(rt:interrupt(th, "early")) end)
    clock:run()
    assert.truthy(caught:find("no start", 1, true))
    assert.truthy(caught:find("|true", 1, true)) -- the sleep was interrupted, not a stale wait
  end)

  it("a thread made with Runtime:thread runs only when started", function()
    local rt, clock = new_rt()
    local ran = false
    local th = rt:thread(function(x) ran = x end)
    assert.is_false(ran)
    rt:start(th, "yes")
    clock:run()
    assert.are.equal("yes", ran)
  end)
end)

describe("Runtime.pace_collector", function()
  local pause0, stepmul0
  before_each(function()
    pause0 = collectgarbage("setpause", 200)
    stepmul0 = collectgarbage("setstepmul", 200)
  end)
  after_each(function()
    collectgarbage("setpause", pause0)
    collectgarbage("setstepmul", stepmul0)
  end)

  -- The pace in force, read back by setting it again.
  local function pace()
    local p = collectgarbage("setpause", 200)
    local s = collectgarbage("setstepmul", 200)
    collectgarbage("setpause", p)
    collectgarbage("setstepmul", s)
    return p, s
  end

  it("turns eager past EAGER_KB, stays so down to RELAXED_KB, then relaxes", function()
    local eager = Runtime.pace_collector(false, Runtime.EAGER_KB - 1)
    assert.is_false(eager)
    assert.are.same({ 200, 200 }, { pace() })
    eager = Runtime.pace_collector(eager, Runtime.EAGER_KB + 1)
    assert.is_true(eager)
    assert.are.same({ 100, 400 }, { pace() })
    eager = Runtime.pace_collector(eager, Runtime.RELAXED_KB + 1)
    assert.is_true(eager, "between the two marks the pace holds")
    assert.are.same({ 100, 400 }, { pace() })
    eager = Runtime.pace_collector(eager, Runtime.RELAXED_KB - 1)
    assert.is_false(eager)
    assert.are.same({ 200, 200 }, { pace() })
  end)
end)
