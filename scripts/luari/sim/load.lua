-- Load generation for `luari sim-server`: simulated callers placed on the
-- simulator's own loop at a steady rate (POST /sim/load), keys pressed on
-- all of them (POST /sim/load/dtmf), and what the simulator saw of each
-- call (GET /sim/stats): when its StasisStart left, when the client's
-- answer for it arrived, whether it ended and who hung up, and every ARI
-- request the simulator answered with an error.
--
-- Times are real (the loop's monotonic clock), whatever --speed says:
-- they measure the client, not the simulated world. The StasisStart time
-- is taken just before the event is written to the WebSocket; the answer
-- time is when the HTTP server began the pass that read the request (it
-- had arrived by then), so time the simulator spent on requests read
-- before it in the same pass is not counted. The difference is the
-- client's reaction time plus the transport both ways, plus whatever kept
-- the simulator's loop from starting that pass (placement_lag shows how
-- late its loop runs).

local loop = require "luari.loop"

local Load = {}
Load.__index = Load

-- Error responses kept for GET /sim/stats (the first ones; the count is exact).
local ERRORS_KEPT = 20

function Load.new(server)
  local self = setmetatable({ server = server, seq = 0 }, Load)
  self:reset()
  return self
end

function Load:reset()
  if self.timer then
    self.timer:stop()
  end
  if self.dtmf_timer then
    self.dtmf_timer:stop()
  end
  self.timer, self.dtmf_timer = nil, nil
  self.calls = {}        -- channel id -> record
  self.order = {}        -- channel ids, in the order they were placed
  self.latencies = {}    -- seconds, StasisStart to answer, in arrival order
  self.lags = {}         -- seconds each call was placed behind its schedule
  self.counts = { placed = 0, stasis_start = 0, answered = 0, ended = 0, hungup_by_app = 0,
    place_failed = 0, pressed = 0 }
  self.errors = 0
  self.error_list = {}
  self.requests = 0
  self.first_placed, self.last_placed, self.last_answered = nil, nil, nil
  self.first_ended, self.last_ended = nil, nil
end

-- --- placing calls ------------------------------------------------------------------------

-- o: rate (calls per second, > 0), count, app, args (array), caller, dtmf
-- and hangup_at (as for POST /sim/calls), audio. Runs until `count` calls
-- are placed; a later start replaces a load still placing calls.
function Load:start(o)
  if self.timer then
    self.timer:stop()
    self.timer = nil
  end
  local placed, t0 = 0, loop.now()
  local interval = 1 / o.rate
  local server, model = self.server, self.server.model
  local function place(scheduled)
    placed = placed + 1
    self.seq = self.seq + 1
    local now = loop.now()
    -- The record exists before the call: its StasisStart leaves at once.
    local id = string.format("load-%d", self.seq)
    local rec = { placed = now }
    self.calls[id] = rec
    -- A call Stasis() refuses (the app has no WebSocket) is not placed.
    local ok = model:app_is_connected(o.app) and pcall(model.incoming, model, {
      id = id, app = o.app, args = o.args,
      caller = { number = o.caller or string.format("+1555%07d", self.seq), name = "" },
    })
    if not ok then
      self.calls[id] = nil
      self.counts.place_failed = self.counts.place_failed + 1
      return
    end
    self.order[#self.order + 1] = id
    self.counts.placed = self.counts.placed + 1
    self.lags[#self.lags + 1] = now - scheduled
    self.first_placed = self.first_placed or now
    self.last_placed = now
    if o.audio then
      model:caller_audio(id, o.audio)
    end
    if o.dtmf or o.hangup_at then
      server:schedule_caller(id, o)
    end
  end
  local function tick()
    self.timer = nil
    local now = loop.now()
    -- Every call whose time has come, so that a late timer catches up.
    while placed < o.count and t0 + placed * interval <= now do
      place(t0 + placed * interval)
    end
    if placed < o.count then
      self.timer = loop.timer(math.max(t0 + placed * interval - loop.now(), 0), tick)
    end
  end
  tick()
  return { count = o.count, rate = o.rate }
end

-- Every load call still in the application presses `digits`, `rate`
-- calls a second, in the order they were placed.
function Load:press(digits, rate)
  if self.dtmf_timer then
    self.dtmf_timer:stop()
    self.dtmf_timer = nil
  end
  local ids = {}
  for _, id in ipairs(self.order) do
    local rec = self.calls[id]
    if rec.stasis and not rec.ended then
      ids[#ids + 1] = id
    end
  end
  local model = self.server.model
  local done, t0, interval = 0, loop.now(), 1 / rate
  local function tick()
    self.dtmf_timer = nil
    local now = loop.now()
    while done < #ids and t0 + done * interval <= now do
      done = done + 1
      for i = 1, #digits do
        model:caller_dtmf(ids[done], digits:sub(i, i), 100)
      end
      self.counts.pressed = self.counts.pressed + 1
    end
    if done < #ids then
      self.dtmf_timer = loop.timer(math.max(t0 + done * interval - loop.now(), 0), tick)
    end
  end
  tick()
  return { calls = #ids, rate = rate }
end

-- --- what the simulator sees --------------------------------------------------------------

-- An event is about to leave for `app`.
function Load:on_event(ev)
  local t = ev.type
  if t ~= "StasisStart" and t ~= "StasisEnd" then
    return
  end
  local ch = ev.channel
  local rec = ch and self.calls[ch.id]
  if not rec then
    return
  end
  local now = loop.now()
  if t == "StasisStart" and not rec.stasis then
    rec.stasis = now
    self.counts.stasis_start = self.counts.stasis_start + 1
  elseif t == "StasisEnd" and not rec.ended then
    rec.ended = now
    self.counts.ended = self.counts.ended + 1
    self.first_ended = self.first_ended or now
    self.last_ended = now
  end
end

-- An ARI request arrived at `now`: `segments` are its path's, below /ari.
function Load:on_request(method, segments, now)
  self.requests = self.requests + 1
  if segments[1] ~= "channels" then
    return
  end
  local rec = self.calls[segments[2]]
  if not rec then
    return
  end
  if method == "POST" and segments[3] == "answer" and not rec.answered then
    rec.answered = now
    self.counts.answered = self.counts.answered + 1
    self.last_answered = now
    if rec.stasis then
      self.latencies[#self.latencies + 1] = now - rec.stasis
    end
  elseif method == "DELETE" and segments[3] == nil and not rec.hungup then
    rec.hungup = now
    self.counts.hungup_by_app = self.counts.hungup_by_app + 1
  end
end

-- Any ARI answer with a status of 400 or more counts as an error.
function Load:on_response(method, path, status)
  if status >= 400 then
    self.errors = self.errors + 1
    if #self.error_list < ERRORS_KEPT then
      self.error_list[#self.error_list + 1] = { method = method, path = path, status = status }
    end
  end
end

-- --- the figures ----------------------------------------------------------------------------

local function summary(list)
  local n = #list
  local out = { n = n }
  if n == 0 then
    return out
  end
  local sorted, sum = {}, 0
  for i = 1, n do
    sorted[i] = list[i]
    sum = sum + list[i]
  end
  table.sort(sorted)
  local function pct(p)
    return sorted[math.max(1, math.ceil(n * p))] * 1000
  end
  out.p50_ms, out.p90_ms, out.p99_ms, out.p999_ms = pct(0.50), pct(0.90), pct(0.99), pct(0.999)
  out.max_ms, out.mean_ms = sorted[n] * 1000, sum / n * 1000
  return out
end

-- counts_only: leave out the percentiles (sorting 10,000 latencies takes
-- the loop a few milliseconds: a poller would disturb what it measures).
function Load:stats(counts_only)
  local c = self.counts
  local live = 0
  for _, rec in pairs(self.calls) do
    if rec.stasis and not rec.ended then
      live = live + 1
    end
  end
  local function since_first(t)
    return (t and self.first_placed) and (t - self.first_placed) or nil
  end
  return {
    placed = c.placed, stasis_start = c.stasis_start, answered = c.answered, ended = c.ended,
    hungup_by_app = c.hungup_by_app, place_failed = c.place_failed, pressed = c.pressed,
    in_stasis = live,
    placing = self.timer ~= nil,
    requests = self.requests,
    errors = self.errors, error_list = self.error_list,
    answer_latency = not counts_only and summary(self.latencies) or nil,
    placement_lag = not counts_only and summary(self.lags) or nil,
    -- seconds from the first call placed
    last_placed = since_first(self.last_placed),
    last_answered = since_first(self.last_answered),
    first_ended = since_first(self.first_ended),
    last_ended = since_first(self.last_ended),
  }
end

return Load
