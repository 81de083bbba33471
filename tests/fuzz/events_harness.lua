-- The Lua side of tests/fuzz/fuzz_events.c: the dispatcher with flows that
-- wait in each of the call object's methods, on a backend that answers
-- every request at the next event and never fires a timer (only events
-- move a flow on). Ids luari chooses are id-1, id-2, ... so that the
-- seeds (tests/fuzz/corpus/events) can name them.
--
-- Returns dispatch(ev): nil, or what went wrong where it must not (a flow
-- or a thread of luari's failed on an event).

local App = require "luari.app"
local Runtime = require "luari.runtime"
local flows = require "luari.flows"
local util = require "luari.util"

local ids = 0
util.uuid = function()
  ids = ids + 1
  return "id-" .. ids
end

local pending = {}
local function answer_pending()
  local now = pending
  pending = {}
  for _, r in ipairs(now) do
    if r.method == "GET" then
      r.cb(200, { id = r.segments[#r.segments], name = "PJSIP/100-00000001", state = "Up" })
    else
      r.cb(204, nil)
    end
  end
end

local failure
local MUST_NOT = { "flow failed", "thread failed", "internal error", "handler failed", "observer failed" }
local backend = {
  request = function(method, segments, query, body, timeout, cb)
    local r = { method = method, segments = segments, cb = cb }
    pending[#pending + 1] = r
    return { cancel = function() r.cb = function() end end }
  end,
  timer = function() return { stop = function() end } end,
  now = function() return 0 end,
  log = function(level, message)
    if level == "error" then
      for _, what in ipairs(MUST_NOT) do
        if tostring(message):find(what, 1, true) then
          failure = failure or tostring(message)
        end
      end
    end
  end,
}

local luari = require "luari"

-- Every kind of wait a flow has, one after the other; each ends only on
-- the events the fuzzer finds (or on the call going away).
local function flow(call)
  call:on_hangup(function() end)
  call:answer()
  local watcher = luari.spawn(function()
    call:wait_event("ChannelDtmfReceived", 5)
  end)
  for _ = 1, 2 do
    local h = call:play_async("sound:hello-world")
    if h then
      h:wait(5)
    end
    call:play("sound:hello-world")
    call:read_digits({ max = 2, timeout = 5 })
    call:prompt({ media = "sound:hello-world", max = 1, tries = 1 })
    call:record("msg", { maxDurationSeconds = 5 })
    call:wait_event("ChannelVarset", 5)
  end
  local peer = call:dial("Local/1000@wait", { timeout = 5 })
  if peer then
    peer:play("sound:beep")
    peer:wait_hangup(5)
  end
  local out = luari.originate({ endpoint = "Local/1000@wait" })
  if out then
    out:wait_answer(5)
  end
  luari.wait(watcher)
  call:wait_hangup(5)
end

local gen = setmetatable({ flows = { f = flow }, files = {}, number = 1, single = "f" }, flows.Generation)
local rt = Runtime.new(backend)

local function new_app()
  ids = 0
  return App.new({ rt = rt, generation = gen, apps = { "luari" } })
end

local app = new_app()

return function(ev)
  failure = nil
  -- Calls here end only when an event says so: start afresh now and then,
  -- so that memory stays bounded however long the fuzzer runs.
  if app.stats.calls >= 1000 then
    app = new_app()
  end
  answer_pending()
  app:on_event(ev)
  answer_pending()
  return failure
end
