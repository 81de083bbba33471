-- The simulator's virtual clock: a queue of timed callbacks.
--
-- Time only moves when the queue is run, so a flow that waits 30 s runs in
-- microseconds. Callbacks due at the same time run in the order they were
-- scheduled. The network simulator uses a real-time clock with the same
-- interface (now, after); see luari.sim.realclock.

local Clock = {}
Clock.__index = Clock

local Handle = {}
Handle.__index = Handle

function Handle:cancel()
  self.cancelled = true
end

function Clock.new(start)
  return setmetatable({ t = start or 0, seq = 0, heap = {}, n = 0 }, Clock)
end

function Clock:now()
  return self.t
end

local function less(a, b)
  if a.at ~= b.at then
    return a.at < b.at
  end
  return a.seq < b.seq
end

local function push(self, item)
  local heap = self.heap
  local i = self.n + 1
  self.n = i
  heap[i] = item
  while i > 1 do
    local parent = math.floor(i / 2)
    if not less(heap[i], heap[parent]) then
      break
    end
    heap[i], heap[parent] = heap[parent], heap[i]
    i = parent
  end
end

local function pop(self)
  local heap, n = self.heap, self.n
  local top = heap[1]
  heap[1] = heap[n]
  heap[n] = nil
  n = n - 1
  self.n = n
  local i = 1
  while true do
    local l, r, smallest = 2 * i, 2 * i + 1, i
    if l <= n and less(heap[l], heap[smallest]) then
      smallest = l
    end
    if r <= n and less(heap[r], heap[smallest]) then
      smallest = r
    end
    if smallest == i then
      break
    end
    heap[i], heap[smallest] = heap[smallest], heap[i]
    i = smallest
  end
  return top
end

-- Run fn after `seconds` of virtual time (0: after everything already due now).
function Clock:after(seconds, fn)
  assert(type(fn) == "function", "clock:after: fn must be a function")
  if not (seconds and seconds > 0) then
    seconds = 0
  end
  self.seq = self.seq + 1
  local item = setmetatable({ at = self.t + seconds, seq = self.seq, fn = fn }, Handle)
  push(self, item)
  return item
end

-- Time of the next live callback, or nil.
function Clock:next_time()
  while self.n > 0 and self.heap[1].cancelled do
    pop(self)
  end
  return self.n > 0 and self.heap[1].at or nil
end

-- Run the next due callback; false when nothing is queued.
function Clock:step()
  local at = self:next_time()
  if not at then
    return false
  end
  local item = pop(self)
  if at > self.t then
    self.t = at
  end
  item.fn()
  return true
end

-- Run callbacks until none is due at or before `t`, then set the time to t.
function Clock:run_until(t)
  while true do
    local at = self:next_time()
    if not at or at > t then
      break
    end
    self:step()
  end
  if t > self.t then
    self.t = t
  end
end

-- Run until `done()` is true or nothing is queued; `limit` caps virtual time.
function Clock:run(done, limit)
  while not (done and done()) do
    local at = self:next_time()
    if not at or (limit and at > limit) then
      return false
    end
    self:step()
  end
  return true
end

return Clock
