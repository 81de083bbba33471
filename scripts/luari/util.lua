-- Small helpers shared by luari's Lua modules.

local util = {}

-- The sources of luari's files that a flow calls through (the call
-- object's): misuse found in them is reported at the flow's line.
local through = {}

-- Chunk sources of the files in FLOWS: an error luari raises while one of
-- them runs inside luari's own code (the instruction budget, say) is
-- placed at the flow's line.
local flow_sources = {}

-- Called at the top of a file of the call object.
function util.flow_facing()
  through[debug.getinfo(2, "S").source] = true
end

function util.flow_source(source)
  flow_sources[source] = true
end

-- For a function F about to raise with error(message, level), through one
-- of the two below: F's level, from `level` up, of the first caller whose
-- source `wanted` accepts; `level` when there is none.
local function level_where(level, wanted)
  local l = level
  while true do
    local info = debug.getinfo(l + 2, "S") -- + 2: this function and the one below
    if not info then
      return level
    end
    if wanted(info.source) then
      return l
    end
    l = l + 1
  end
end

local function outside_call_files(source)
  return not through[source]
end

local function in_flows(source)
  return flow_sources[source] == true
end

-- The first caller outside the call object's files.
function util.flow_level(level)
  local l = level_where(level, outside_call_files) -- not a tail call: level_where counts this frame
  return l
end

-- The first caller in a file from FLOWS.
function util.flow_code_level(level)
  local l = level_where(level, in_flows)
  return l
end

-- Names for a log line: all of them when there are few, else the first
-- `max` (default 20) and how many there are (3,000 flows would make every
-- such line tens of kilobytes).
function util.name_list(names, max)
  max = max or 20
  if #names <= max then
    return table.concat(names, ", ")
  end
  return string.format("%s, ... (%d in all)", table.concat(names, ", ", 1, max), #names)
end

local seeded = false

local function seed()
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(4)
  if f then
    f:close()
  end
  local n = 0
  for i = 1, bytes and #bytes or 0 do
    n = n * 256 + bytes:byte(i)
  end
  math.randomseed(n + os.time())
  seeded = true
end

-- A random UUID (version 4): ids luari picks before asking Asterisk, so
-- that the events for a new channel or playback can be routed at once.
function util.uuid()
  if not seeded then
    seed()
  end
  local r = math.random
  return string.format("%08x-%04x-4%03x-%04x-%04x%08x", r(0, 0x7fffffff), r(0, 0xffff), r(0, 0xfff),
    0x8000 + r(0, 0x3fff), r(0, 0xffff), r(0, 0x7fffffff))
end

-- A failure message without the figures that change from one try to the
-- next (curl says "after 0 ms", then "after 1 ms"): two messages with the
-- same cause give the same text, so that a cause is reported once.
function util.failure_cause(message)
  return (tostring(message):gsub(" after %d+ ms", ""):gsub(" after %d+ milliseconds", ""))
end

-- "a,,b" -> { "a", "", "b" }: a comma-separated list as Asterisk writes
-- one (Stasis() arguments, parameters that take several values).
function util.split_commas(s)
  local out = {}
  for item in (s .. ","):gmatch("([^,]*),") do
    out[#out + 1] = item
  end
  return out
end

function util.shallow_copy(t)
  local c = {}
  for k, v in pairs(t) do
    c[k] = v
  end
  return c
end

return util
