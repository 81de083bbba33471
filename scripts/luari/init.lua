-- The `luari` module: time, light threads tied to the current call, and
-- logging with the call id. luari.originate lives with the call object
-- (luari.call_dial adds it here), so loading this module loads that too.

local Runtime = require "luari.runtime"

local luari = {}

local function current(what)
  return Runtime.current(what)
end

function luari.now()
  local rt = Runtime.active() or Runtime.last
  if rt then
    return rt:now()
  end
  return os.clock()
end

function luari.sleep(seconds)
  if type(seconds) ~= "number" or seconds < 0 then
    error("luari.sleep: seconds must be a number >= 0", 2)
  end
  local rt, th = current("luari.sleep")
  -- An on_hangup handler's call is over: it sleeps anyway (bounded by
  -- --hangup-grace once the flow has ended).
  if th.call and th.name ~= "on_hangup" then
    return th.call:sleep(seconds)
  end
  return rt:sleep(seconds)
end

-- A light thread that belongs to the current call and ends with it. It
-- starts as soon as the caller waits or returns.
function luari.spawn(fn, ...)
  if type(fn) ~= "function" then
    error("luari.spawn: expects a function", 2)
  end
  local rt, th = current("luari.spawn")
  local call = th.call
  if call then
    return call._app:spawn_for(call, fn, "spawn", ...)
  end
  return rt:spawn(fn, { name = "spawn" }, ...)
end

-- Waits for a thread from luari.spawn: its return values, or nil and its
-- error. Returns nil, "hangup" at once if the call hangs up meanwhile.
function luari.wait(thread)
  if type(thread) ~= "table" or getmetatable(thread) ~= Runtime.Thread then
    error("luari.wait: expects a thread from luari.spawn", 2)
  end
  local rt, th = current("luari.wait")
  if not thread.done and th.call then
    local ok, why = th.call:_wait(function(wake)
      thread.waiters = thread.waiters or {}
      thread.waiters[#thread.waiters + 1] = function()
        wake(true)
      end
    end)
    if not ok then
      return nil, why
    end
  end
  return rt:join(thread)
end

local function log_at(level)
  return function(fmt, ...)
    local msg = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
    local rt = Runtime.active() or Runtime.last
    if not rt then
      io.stderr:write(level, " ", msg, "\n")
      return
    end
    local th = rt.running
    local call = th and th.call
    rt:log(level, msg, call and { call = call.id, flow = call.flow } or nil)
  end
end

luari.log = {
  debug = log_at("debug"),
  info = log_at("info"),
  warn = log_at("warn"),
  error = log_at("error"),
}

package.loaded["luari"] = luari
require "luari.call"
return luari
