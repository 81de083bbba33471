-- The floor under the answer latency: what this machine's loopback and
-- scheduler cost with no client and no simulator. One side writes an
-- event-sized message (1,500 bytes) at the benchmark's rate; the other,
-- on the client's CPU, reads it whole and answers with a request-sized one
-- (200 bytes) at once. The round trip is the shortest StasisStart-to-answer
-- any client could show on this machine, pinned as the benchmark pins.
--
--   luajit tests/bench/floor.lua echo PORT_FILE     the answering side
--   require("bench.floor").measure(port, n, rate)   the measuring side
--
-- Both sides wait in the kernel between messages, as an event loop does,
-- so an idle CPU's wake-up is part of the figure.

local ffi = require "ffi"

-- Renamed declarations (__asm__): the benchmark that loads this module
-- declares some of the same functions with types of its own.
ffi.cdef [[
  struct luari_floor_addr { uint16_t family; uint16_t port; uint32_t addr; uint8_t zero[8]; };
  struct luari_floor_ts { long sec; long nsec; };
  int luari_floor_socket(int domain, int type, int protocol) __asm__("socket");
  int luari_floor_bind(int fd, const struct luari_floor_addr *addr, uint32_t len) __asm__("bind");
  int luari_floor_listen(int fd, int backlog) __asm__("listen");
  int luari_floor_accept(int fd, void *addr, void *len) __asm__("accept");
  int luari_floor_connect(int fd, const struct luari_floor_addr *addr, uint32_t len) __asm__("connect");
  int luari_floor_getsockname(int fd, struct luari_floor_addr *addr, uint32_t *len) __asm__("getsockname");
  int luari_floor_setsockopt(int fd, int level, int name, const void *value, uint32_t len) __asm__("setsockopt");
  long luari_floor_send(int fd, const void *buf, size_t n, int flags) __asm__("send");
  long luari_floor_recv(int fd, void *buf, size_t n, int flags) __asm__("recv");
  int luari_floor_close(int fd) __asm__("close");
  int luari_floor_clock_gettime(int clock, struct luari_floor_ts *ts) __asm__("clock_gettime");
  int luari_floor_clock_nanosleep(int clock, int flags, const struct luari_floor_ts *ts,
                                  struct luari_floor_ts *rem) __asm__("clock_nanosleep");
  uint16_t luari_floor_htons(uint16_t v) __asm__("htons");
  uint16_t luari_floor_ntohs(uint16_t v) __asm__("ntohs");
]]
local C = ffi.C

local AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_NODELAY = 2, 1, 6, 1
local SOL_SOCKET, SO_REUSEADDR = 1, 2
local CLOCK_MONOTONIC, TIMER_ABSTIME, MSG_NOSIGNAL = 1, 1, 0x4000
local LOOPBACK = 0x0100007f -- 127.0.0.1, network order on a little-endian machine
local EVENT_BYTES, REQUEST_BYTES = 1500, 200

local floor = {}

local function check(rc, what)
  if rc < 0 then
    error(string.format("floor: %s failed (errno %d)", what, ffi.errno()), 2)
  end
  return rc
end

local function addr(port)
  local a = ffi.new("struct luari_floor_addr")
  a.family, a.port, a.addr = AF_INET, C.luari_floor_htons(port), LOOPBACK
  return a
end

local function no_delay(fd)
  check(C.luari_floor_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, ffi.new("int[1]", 1), 4), "setsockopt")
end

-- Reads exactly n bytes; false at end of stream.
local function read_all(fd, buf, n)
  local got = 0
  while got < n do
    local r = C.luari_floor_recv(fd, buf + got, n - got, 0)
    if r <= 0 then
      return false
    end
    got = got + r
  end
  return true
end

local function write_all(fd, buf, n)
  local sent = 0
  while sent < n do
    sent = sent + check(C.luari_floor_send(fd, buf + sent, n - sent, MSG_NOSIGNAL), "send")
  end
end

local function now()
  local ts = ffi.new("struct luari_floor_ts")
  C.luari_floor_clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.sec) + tonumber(ts.nsec) * 1e-9
end

local function sleep_until(t)
  local ts = ffi.new("struct luari_floor_ts")
  ts.sec = math.floor(t)
  ts.nsec = math.floor((t - math.floor(t)) * 1e9)
  C.luari_floor_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ts, nil)
end

-- The answering side: one connection, answered until it closes.
function floor.echo(port_file)
  local fd = check(C.luari_floor_socket(AF_INET, SOCK_STREAM, 0), "socket")
  check(C.luari_floor_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, ffi.new("int[1]", 1), 4), "setsockopt")
  check(C.luari_floor_bind(fd, addr(0), 16), "bind")
  check(C.luari_floor_listen(fd, 1), "listen")
  local bound, len = ffi.new("struct luari_floor_addr"), ffi.new("uint32_t[1]", 16)
  check(C.luari_floor_getsockname(fd, bound, len), "getsockname")
  local f = assert(io.open(port_file .. ".tmp", "w"))
  f:write(C.luari_floor_ntohs(bound.port), "\n")
  f:close()
  os.rename(port_file .. ".tmp", port_file)
  local conn = check(C.luari_floor_accept(fd, nil, nil), "accept")
  no_delay(conn)
  local event, request = ffi.new("char[?]", EVENT_BYTES), ffi.new("char[?]", REQUEST_BYTES)
  while read_all(conn, event, EVENT_BYTES) do
    write_all(conn, request, REQUEST_BYTES)
  end
  C.luari_floor_close(conn)
  C.luari_floor_close(fd)
end

local function percentile(sorted, p)
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

-- n round trips at `rate` a second to the echo side on `port`; returns
-- { p50_ms, p99_ms, max_ms }.
function floor.measure(port, n, rate)
  local fd = check(C.luari_floor_socket(AF_INET, SOCK_STREAM, 0), "socket")
  check(C.luari_floor_connect(fd, addr(port), 16), "connect")
  no_delay(fd)
  local event, request = ffi.new("char[?]", EVENT_BYTES), ffi.new("char[?]", REQUEST_BYTES)
  local times, t0 = {}, now()
  for i = 1, n do
    sleep_until(t0 + i / rate)
    local sent = now()
    write_all(fd, event, EVENT_BYTES)
    if not read_all(fd, request, REQUEST_BYTES) then
      C.luari_floor_close(fd)
      error("floor: the echo side closed the connection")
    end
    times[i] = now() - sent
  end
  C.luari_floor_close(fd)
  table.sort(times)
  return { p50_ms = percentile(times, 0.5) * 1000, p99_ms = percentile(times, 0.99) * 1000,
    max_ms = times[#times] * 1000 }
end

if arg and arg[0] and arg[0]:match("floor%.lua$") and arg[1] == "echo" and arg[2] then
  floor.echo(arg[2])
end

return floor
