-- Small helpers of the simulated Asterisk's model: replies and reason
-- phrases, Asterisk's time stamps and ids, argument parsing the way ARI's C
-- code parses (atoi, ast_true), Q.850 cause texts.

local json = require "luari.json"
local util = require "luari.util"

local U = {}

U.REASONS = {
  [200] = "OK", [201] = "Created", [204] = "No Content",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed", [409] = "Conflict",
  [412] = "Precondition Failed", [422] = "Unprocessable Entity",
  [500] = "Internal Server Error", [501] = "Not Implemented",
}

-- An error reply as Asterisk sends it: {"message": ...}. `reason` only where
-- Asterisk sends its own phrase ("Variable Not Found", "Invalid Reason").
function U.fail(status, message, reason)
  return status, reason or U.REASONS[status], { message = message }
end

function U.ok(body)
  return 200, "OK", body
end

function U.no_content()
  return 204, "No Content", nil
end

-- ast_ari_response_alloc_failed: the one reply that uses "error", not "message".
function U.alloc_failed()
  return 500, "Internal Server Error", { error = "Allocation failed" }
end

-- 2026-11-27T14:43:31.338+0000 for wall-clock seconds `t`.
function U.format_time(t)
  local ms = math.floor(t * 1000 + 0.5)
  local s = math.floor(ms / 1000)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03d+0000", ms - s * 1000)
end

-- Asterisk's ast_true(): what a boolean query parameter accepts.
local TRUE = { yes = true, ["true"] = true, y = true, t = true, ["1"] = true, on = true }

function U.truthy(v)
  if type(v) == "boolean" then
    return v
  end
  return v ~= nil and TRUE[string.lower(tostring(v))] == true
end

-- atoi(): leading integer, 0 when there is none; `default` when absent.
function U.int(v, default)
  if v == nil or v == "" then
    return default
  end
  if type(v) == "number" then
    return math.floor(v)
  end
  local n = tostring(v):match("^%s*([+-]?%d+)")
  return n and tonumber(n) or 0
end

-- sscanf("%d"): the integer, or nil when the text does not start with one.
function U.scan_int(v)
  if v == nil then
    return nil
  end
  local n = tostring(v):match("^%s*([+-]?%d+)")
  return n and tonumber(n) or nil
end

function U.empty(s)
  return s == nil or s == ""
end

-- "a,b,c" -> { "a", "b", "c" }; "" or nil -> {}. Empty items are kept, as
-- Asterisk keeps them in Stasis arguments.
function U.split(s)
  if U.empty(s) then
    return {}
  end
  return util.split_commas(s)
end

-- Like U.split, without empty items: channel lists, format lists.
function U.split_nonempty(s)
  local out = {}
  if U.empty(s) then
    return out
  end
  for item in s:gmatch("[^,]+") do
    item = item:match("^%s*(.-)%s*$")
    if item ~= "" then
      out[#out + 1] = item
    end
  end
  return out
end

function U.copy(v)
  if type(v) ~= "table" then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    out[k] = U.copy(x)
  end
  return out
end

function U.array_copy(t)
  local out = {}
  for i = 1, #t do
    out[i] = t[i]
  end
  return json.array(out)
end

function U.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

function U.hex8(n)
  return string.format("%08x", n)
end

-- Percent-encoding for Location headers (ast_uri_encode with ast_uri_http).
function U.uri_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

-- Q.850 causes as ast_cause2str() spells them.
local CAUSE_TEXT = {
  [0] = "Unknown",
  [1] = "Unallocated (unassigned) number",
  [2] = "No route to specified transmit network",
  [3] = "No route to destination",
  [6] = "Channel unacceptable",
  [16] = "Normal Clearing",
  [17] = "User busy",
  [18] = "No user responding",
  [19] = "User alerting, no answer",
  [21] = "Call Rejected",
  [22] = "Number changed",
  [26] = "Answered elsewhere",
  [27] = "Destination out of order",
  [28] = "Invalid number format",
  [29] = "Facility rejected",
  [31] = "Normal, unspecified",
  [34] = "Circuit/channel congestion",
  [38] = "Network out of order",
  [41] = "Temporary failure",
  [42] = "Switching equipment congestion",
  [44] = "Requested channel not available",
  [58] = "Bearer capability not available",
  [127] = "Interworking, unspecified",
}

function U.cause_text(cause)
  return CAUSE_TEXT[cause] or "Unknown"
end

-- DELETE /channels/{id}?reason=...: the causes res_ari maps them to.
U.REASON_CAUSES = {
  normal = 16, busy = 17, congestion = 34, no_answer = 19, timeout = 18,
  rejected = 21, unallocated = 1, normal_unspecified = 31,
  number_incomplete = 28, codec_mismatch = 58, interworking = 127,
  failure = 38, answered_elsewhere = 26,
}

-- Formats Asterisk 22 knows by file extension (record) and by name (formats).
U.RECORD_FORMATS = {
  wav = true, WAV = true, wav49 = true, gsm = true, ulaw = true, alaw = true,
  pcm = true, ul = true, al = true, mu = true, sln = true, raw = true,
  slin = true, sln16 = true, wav16 = true, g722 = true, g729 = true,
  g723 = true, ilbc = true, ogg = true, au = true, h264 = true, vox = true,
}

U.CODECS = {
  ulaw = true, alaw = true, gsm = true, g722 = true, g729 = true, g723 = true,
  g726 = true, ilbc = true, opus = true, speex = true, slin = true,
  slin12 = true, slin16 = true, slin24 = true, slin32 = true, slin44 = true,
  slin48 = true, slin96 = true, slin192 = true, lpc10 = true, adpcm = true,
  siren7 = true, siren14 = true, h264 = true, vp8 = true, vp9 = true,
}

return U
