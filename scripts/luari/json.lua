-- JSON for luari's Lua side: lua-cjson, plus a way to say "empty array".
--
-- cjson encodes an empty Lua table as {}; ARI sends [] for empty lists
-- (args, channel_ids, GET /channels with no channels). json.array(t) marks a
-- list so that it is encoded as [] when empty.

local cjson = require "cjson"

local json = {}

json.null = cjson.null

local EMPTY = "@@luari:empty-array@@"
local EMPTY_QUOTED = '"' .. EMPTY .. '"'
local EMPTY_PATTERN = EMPTY_QUOTED:gsub("%p", "%%%0")

-- The value to store in place of a list that may be empty.
function json.array(t)
  if t == nil or next(t) == nil then
    return EMPTY
  end
  return t
end

function json.is_empty_array(v)
  return v == EMPTY
end

function json.encode(v)
  local s = cjson.encode(v)
  if s:find(EMPTY_QUOTED, 1, true) then
    s = s:gsub(EMPTY_PATTERN, "[]")
  end
  return s
end

-- Returns the value, or nil and a message; never raises.
function json.decode(s)
  local ok, v = pcall(cjson.decode, s)
  if ok then
    return v
  end
  return nil, v
end

return json
