-- The network simulator's clock: real time on the libev loop, optionally
-- sped up (speed 10: a 30 s prompt takes 3 s). Same interface as the
-- virtual clock (luari.sim.clock): now() and after(seconds, fn).

local loop = require "luari.loop"

local RealClock = {}
RealClock.__index = RealClock

local Handle = {}
Handle.__index = Handle

function Handle:cancel()
  if self.timer then
    self.timer:stop()
    self.timer = nil
  end
end

function RealClock.new(speed)
  return setmetatable({ speed = speed or 1, t0 = loop.now() }, RealClock)
end

function RealClock:now()
  return (loop.now() - self.t0) * self.speed
end

function RealClock:after(seconds, fn)
  local h = setmetatable({}, Handle)
  h.timer = loop.timer(math.max(seconds or 0, 0) / self.speed, function()
    h.timer = nil
    fn()
  end)
  return h
end

return RealClock
