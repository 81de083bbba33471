-- Shared by the call_*_spec files: flows written inline in a spec, and a
-- place where they report what each method returned.
--
--   local T = require "spec.call_helper"
--   local call = T.call([[
--     return function(call)
--       T.got("play", call:play("sound:hello-world"))
--     end
--   ]])
--   call:finish()
--   assert.are.same({ true }, T.values("play"))
--
-- Every flow gets `T` (this module) and `luari` as locals. Results keep
-- their nils (T.values returns them with n) and the virtual time they were
-- reported at.

local assert = require "luassert"
local sim = require "luari.sim"

local T = {}

local dir
local count = 0

local function flow_dir()
  if not dir then
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p '" .. dir .. "'")
  end
  return dir
end

local PRELUDE = 'local T = require "spec.call_helper"; local luari = require "luari"; '

-- Writes a flow's source to a file; returns its path.
function T.flow(source)
  count = count + 1
  local path = string.format("%s/flow%d.lua", flow_dir(), count)
  local f = assert(io.open(path, "w"))
  f:write(PRELUDE, source)
  f:close()
  return path
end

-- A simulated call into an inline flow; results of earlier calls are
-- forgotten.
function T.call(source, opts)
  T.results = {}
  local c = sim.call(T.flow(source), opts)
  T.current = c
  return c
end

T.results = {}

-- From a flow: records what a method returned, under `name`.
function T.got(name, ...)
  local luari = require "luari"
  local r = { n = select("#", ...), t = luari.now(), ... }
  T.results[#T.results + 1] = { name = name, values = r }
  return ...
end

-- The values reported under `name` (the `nth` such report, default the
-- first); errors when there was none.
function T.values(name, nth)
  local seen = 0
  for _, r in ipairs(T.results) do
    if r.name == name then
      seen = seen + 1
      if seen == (nth or 1) then
        return r.values
      end
    end
  end
  local names = {}
  for _, r in ipairs(T.results) do
    names[#names + 1] = r.name
  end
  error("no result '" .. name .. "' (got: " .. table.concat(names, ", ") .. ")"
    .. (T.current and ("\n" .. T.current:transcript_text()) or ""), 2)
end

-- The first value reported under `name`.
function T.value(name, nth)
  return T.values(name, nth)[1]
end

-- Whether anything was reported under `name`.
function T.has(name)
  for _, r in ipairs(T.results) do
    if r.name == name then
      return true
    end
  end
  return false
end

-- Holds back the reply to every request whose path matches `pattern` by
-- `seconds` of virtual time, so that the events the request causes come
-- first: a real Asterisk may send them before its HTTP reply.
function T.delay_replies(c, pattern, seconds)
  local world = c.world
  local request = world._request
  world._request = function(self, method, segments, query, body, reply)
    if ("/" .. table.concat(segments, "/")):find(pattern) then
      local inner = reply
      reply = function(...)
        local results = { n = select("#", ...), ... }
        self.clock:after(seconds, function()
          inner(unpack(results, 1, results.n))
        end)
      end
    end
    return request(self, method, segments, query, body, reply)
  end
end

-- Requests the flow made, as "METHOD /path" strings (query left out),
-- from transcript entry `from` on.
function T.requests(c, from)
  local out = {}
  for i = from or 1, #c.world.transcript do
    local e = c.world.transcript[i]
    if e.kind == "request" then
      out[#out + 1] = e.method .. " " .. e.path
    end
  end
  return out
end

-- Request entries (with query and body) whose path matches `pattern`.
function T.find_requests(c, method, pattern)
  local out = {}
  for _, e in ipairs(c.world.transcript) do
    if e.kind == "request" and e.method == method and e.path:find(pattern) then
      out[#out + 1] = e
    end
  end
  return out
end

-- The transcript index of the caller's hangup (the first "hangs up").
function T.hangup_index(c)
  for i, e in ipairs(c.world.transcript) do
    if e.kind == "caller" and e.action == "hangup" then
      return i
    end
  end
end

-- Listeners of a call object still registered.
function T.live_listeners(call)
  local n = 0
  for _, rec in ipairs(call._listeners) do
    if rec.fn then
      n = n + 1
    end
  end
  return n
end

-- After the call has ended: checks that the call object holds nothing
-- (listeners, cleanups, waiters), lets luari's tombstones expire, then
-- checks that nothing is left anywhere (model, dispatcher, clock).
function T.assert_clean(c, call_object)
  c.world:advance(1)
  if call_object then
    assert.are.equal(0, T.live_listeners(call_object), "a listener is left")
    assert.is_nil(next(call_object._cleanups), "a cleanup is left")
    assert.is_nil(next(call_object._digit_waiters), "a digit waiter is left")
    assert.is_nil(next(call_object._event_waiters), "an event waiter is left")
    for _, child in pairs(call_object._children or {}) do
      assert.are.equal(0, T.live_listeners(child), "a listener of " .. child.id .. " is left")
    end
  end
  c.world:advance(60)
  local stats = c.world.model:stats()
  assert.are.same({ channels = 0, bridges = 0, playbacks = 0, recordings = 0, timers = 0 }, stats)
  assert.is_nil(next(c.world.app.channel_owner), "a channel is still owned")
  assert.is_nil(next(c.world.app.bridge_owner), "a bridge is still owned")
  assert.is_nil(next(c.world.app.calls), "a call is still live")
  assert.is_nil(c.world.clock:next_time(), "a timer is still pending")
  assert.are.equal(0, c.world.rt.nthreads, "a thread is still alive")
end

return T
