-- The in-process simulated Asterisk: the channel model on a virtual clock,
-- a runtime whose backend talks to the model directly, and luari's own
-- dispatcher running flows, all in one Lua state. A transcript records
-- what the flow asked, what "Asterisk" answered, what the caller did.
-- luari.sim (busted) and `luari sim` drive it.

local App = require "luari.app"
local Clock = require "luari.sim.clock"
local flows = require "luari.flows"
local json = require "luari.json"
local Model = require "luari.sim.model"
local Reloader = require "luari.reload"
local Runtime = require "luari.runtime"

local World = {}
World.__index = World

local function query_table(pairs_list)
  local q = {}
  for i = 1, #(pairs_list or {}), 2 do
    local v = pairs_list[i + 1]
    q[pairs_list[i]] = type(v) == "table" and table.concat(v, ",") or v
  end
  return q
end

-- Like the network: the flow gets fresh tables decoded from JSON.
local function roundtrip(value)
  if value == nil then
    return nil, ""
  end
  local text = json.encode(value)
  return json.decode(text), text
end

function World.new(opts)
  opts = opts or {}
  local self = setmetatable({
    transcript = {},
    listeners = {},
    app_name = opts.app or "luari",
    quiet_logs = opts.quiet_logs,
    log_sink = opts.log_sink,
  }, World)
  self.clock = Clock.new(0)
  self.model = Model.new({
    clock = self.clock,
    emit = function(app, event)
      self:_emit(app, event)
    end,
    sounds = opts.sounds,
    sound_default = opts.sound_default,
    epoch = opts.epoch,
    notice = function(message)
      self:note("sim", { message = message })
    end,
  })
  self.model:app_connected(self.app_name)
  self.rt = Runtime.new(self:_backend(), { instruction_budget = opts.instruction_budget })
  self.app = App.new({
    rt = self.rt,
    generation = opts.generation or setmetatable({ flows = {}, files = {}, number = 0 }, flows.Generation),
    default_flow = opts.default_flow,
    apps = { self.app_name },
    hangup_grace = opts.hangup_grace,
    on_call_end = function(call)
      self:note("end", { call = call.id, flow = call.flow, error = call._failed })
    end,
  })
  if opts.flows and not opts.generation then
    -- world.reloader:notify(...) plays the file watcher, :rescan() SIGHUP;
    -- the generation in use is world.app.generation.
    local backend = self.rt.backend
    self.reloader = Reloader.new({
      app = self.app,
      path = opts.flows,
      timer = backend.timer,
      now = backend.now,
      clock = os.clock,
      log = backend.log,
      debounce = opts.reload_debounce,
      instruction_budget = opts.instruction_budget,
    })
    local gen, errors = self.reloader:start()
    if not gen then
      error(table.concat(errors, "\n"), 0)
    end
  end
  return self
end

-- --- transcript -------------------------------------------------------------

function World:note(kind, entry)
  entry.t = self.clock:now()
  entry.kind = kind
  local tr = self.transcript
  tr[#tr + 1] = entry
  for _, fn in ipairs(self.listeners) do
    fn(entry)
  end
  return entry
end

-- fn(entry) for every later transcript entry.
function World:watch(fn)
  self.listeners[#self.listeners + 1] = fn
end

-- --- the backend the runtime uses ---------------------------------------------

-- Waits of 0 s and ARI replies take no virtual time. A flow that loops on
-- them (luari.sleep(0) until another thread is done, a request in a loop)
-- would hold virtual time still for ever, where on a real loop every turn
-- takes a little time. Past STILL_LIMIT of them in a row with nothing
-- else happening, each one takes a step, STILL_STEP at first and twice as
-- long every STILL_LIMIT steps (up to a second), so that even an endless
-- loop of them reaches the end of a run soon.
local STILL_LIMIT, STILL_STEP, STILL_MAX = 100, 0.01, 1

function World:_still_delay()
  local now = self.clock:now()
  if now ~= self.still_at and now ~= self.still_next then
    -- Time moved on its own: something else happened.
    self.still_count, self.still_step = 0, STILL_STEP
  end
  self.still_at = now
  self.still_count = self.still_count + 1
  if self.still_count <= STILL_LIMIT then
    return 0
  end
  if self.still_count % STILL_LIMIT == 0 then
    self.still_step = math.min(self.still_step * 2, STILL_MAX)
  end
  self.still_next = now + self.still_step
  return self.still_step
end

function World:_backend()
  local clock = self.clock
  return {
    request = function(method, segments, query, body, timeout, cb)
      return self:_request(method, segments, query, body, cb)
    end,
    timer = function(seconds, fn)
      local h = clock:after(seconds > 0 and seconds or self:_still_delay(), fn)
      return {
        stop = function()
          h:cancel()
        end,
        active = function()
          return not h.cancelled
        end,
      }
    end,
    now = function()
      return clock:now()
    end,
    log = function(level, message, fields)
      self:note("log", { level = level, message = message, call = fields and fields.call })
      if self.log_sink then
        self.log_sink(level, message, fields)
      end
    end,
  }
end

function World:_request(method, segments, query, body, cb)
  local path = "/" .. table.concat(segments, "/")
  local q = query_table(query)
  local body_text = body ~= nil and json.encode(body) or nil
  local req = self:note("request", { method = method, path = path, query = q, body = body })
  local status, reason, rbody, headers = self.model:request(method, segments, q, body_text)
  local decoded = roundtrip(rbody)
  local handle = self.clock:after(self:_still_delay(), function()
    self:note("response", { request = req, status = status, reason = reason, body = decoded, headers = headers })
    cb(status, decoded, nil, nil, reason)
  end)
  return {
    cancel = function()
      handle:cancel()
    end,
  }
end

function World:_emit(app, event)
  if app ~= self.app_name then
    return
  end
  local decoded = roundtrip(event)
  self.clock:after(0, function()
    self:note("event", { event = decoded })
    self.app:on_event(decoded)
  end)
end

-- --- the simulated caller ----------------------------------------------------------

-- An incoming call entering Stasis(app, args...). Returns the channel id.
function World:incoming(opts)
  opts = opts or {}
  local args = {}
  -- A single flow file: the call names it, so the args are the flow's own.
  local gen = self.app.generation
  local flow = opts.flow or (gen and gen.single)
  if flow then
    args[1] = flow
  end
  for _, a in ipairs(opts.args or {}) do
    args[#args + 1] = a
  end
  local caller = { number = opts.caller or "", name = opts.caller_name or "" }
  self:note("caller", { action = "call", caller = caller, args = args })
  local id = self.model:incoming({
    app = self.app_name,
    args = args,
    caller = caller,
    exten = opts.exten,
    context = opts.context,
    id = opts.id,
    variables = opts.variables,
  })
  if opts.audio then
    self.model:caller_audio(id, opts.audio)
  end
  return id
end

-- The keys go one after another, `spacing` apart, after any keys of an
-- earlier press still to come: press("12") then press("34") is 1234.
function World:press(id, digits, spacing)
  spacing = spacing or 0.25
  self.keys_free = self.keys_free or {}
  local now = self.clock:now()
  local start = math.max(now, self.keys_free[id] or now)
  local free = start + #digits * spacing
  self.keys_free[id] = free
  for i = 1, #digits do
    local d = digits:sub(i, i)
    self.clock:after(start - now + (i - 1) * spacing, function()
      if i == #digits and self.keys_free[id] == free then
        self.keys_free[id] = nil -- no press queued after this one
      end
      self:note("caller", { action = "dtmf", channel = id, digit = d })
      self.model:caller_dtmf(id, d, 100)
    end)
  end
end

function World:hangup(id)
  self:note("caller", { action = "hangup", channel = id })
  self.model:caller_hangup(id)
end

function World:caller_audio(id, kind)
  self:note("caller", { action = "audio", channel = id, audio = kind })
  self.model:caller_audio(id, kind)
end

-- --- running the clock ---------------------------------------------------------------

-- Runs until done() is true, nothing is left to run, or the clock passes
-- `limit` (absolute virtual time). Returns done()'s last value.
function World:run(done, limit)
  limit = limit or (self.clock:now() + 3600)
  return self.clock:run(done, limit)
end

function World:advance(seconds)
  self.clock:run_until(self.clock:now() + seconds)
end

return World
