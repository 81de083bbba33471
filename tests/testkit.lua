-- Small helpers the test suites and benchmarks share: shell commands, a
-- monotonic clock and a sleep. Benchmarks put "tests/?.lua" on
-- package.path; busted has it in .busted.

local ffi = require "ffi"

ffi.cdef [[
  struct luari_testkit_timespec { long tv_sec; long tv_nsec; };
  int clock_gettime(int clk, struct luari_testkit_timespec *ts);
  int nanosleep(const struct luari_testkit_timespec *req, struct luari_testkit_timespec *rem);
]]

local testkit = {}

-- The standard output of a shell command.
function testkit.sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return out
end

-- s quoted for the shell.
function testkit.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local CLOCK_MONOTONIC = 1
local ts = ffi.new("struct luari_testkit_timespec")

-- Monotonic seconds.
function testkit.now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

function testkit.sleep(seconds)
  local req = ffi.new("struct luari_testkit_timespec")
  req.tv_sec = math.floor(seconds)
  req.tv_nsec = math.floor((seconds - math.floor(seconds)) * 1e9)
  ffi.C.nanosleep(req, nil)
end

return testkit
