-- Argument checks for the call object's methods. Misuse raises at once,
-- at the flow's line, naming the method and the argument ("call:play:
-- opts.interupt is not an option (known: interrupt, lang, ...)"), before
-- anything is sent to Asterisk. Unknown option names raise too: a typo
-- would otherwise be ignored silently.

local args = {}

local util = require "luari.util"

util.flow_facing()

-- Raises `message` for method `method`, pointing at the flow's line.
local function fail(method, message)
  error(method .. ": " .. message, util.flow_level(2))
end
args.fail = fail

-- opts must be nil or a table whose keys are all in `known` (a set).
-- Returns the table (an empty one for nil).
function args.opts(method, opts, known, name)
  name = name or "opts"
  if opts == nil then
    return {}
  end
  if type(opts) ~= "table" then
    fail(method, name .. " must be a table (got " .. type(opts) .. ")")
  end
  for k in pairs(opts) do
    if type(k) ~= "string" or not known[k] then
      local names = {}
      for n in pairs(known) do
        names[#names + 1] = n
      end
      table.sort(names)
      fail(method, string.format("%s.%s is not an option (known: %s)", name, tostring(k),
        table.concat(names, ", ")))
    end
  end
  return opts
end

-- A set from a list of names: set{"a", "b"} -> { a = true, b = true }.
function args.set(list)
  local s = {}
  for _, v in ipairs(list) do
    s[v] = true
  end
  return s
end

function args.string(method, name, v, optional)
  if v == nil and optional then
    return nil
  end
  if type(v) ~= "string" or v == "" then
    fail(method, name .. " must be a non-empty string (got " .. (v == "" and "an empty string" or type(v)) .. ")")
  end
  return v
end

function args.number(method, name, v, optional, min)
  if v == nil and optional then
    return nil
  end
  if type(v) ~= "number" or v ~= v then
    fail(method, name .. " must be a number (got " .. type(v) .. ")")
  end
  if min and v < min then
    fail(method, string.format("%s must be at least %s (got %s)", name, tostring(min), tostring(v)))
  end
  return v
end

function args.integer(method, name, v, optional, min)
  if v == nil and optional then
    return nil
  end
  if type(v) ~= "number" or v ~= math.floor(v) or v == math.huge or v == -math.huge then
    fail(method, name .. " must be an integer (got " .. (type(v) == "number" and tostring(v) or type(v)) .. ")")
  end
  if min and v < min then
    fail(method, string.format("%s must be at least %d (got %d)", name, min, v))
  end
  return v
end

function args.boolean(method, name, v, optional)
  if v == nil and optional then
    return nil
  end
  if type(v) ~= "boolean" then
    fail(method, name .. " must be true or false (got " .. type(v) .. ")")
  end
  return v
end

function args.one_of(method, name, v, allowed, optional)
  if v == nil and optional then
    return nil
  end
  for _, a in ipairs(allowed) do
    if v == a then
      return v
    end
  end
  fail(method, string.format("%s must be one of %s (got %s)", name, table.concat(allowed, ", "), tostring(v)))
end

local DTMF = "0123456789*#ABCD"

-- A string of DTMF keys (may be empty when `empty_ok`); "any" means every
-- key when `any_ok`. Returns the keys as a set.
function args.keys(method, name, v, any_ok, empty_ok)
  if any_ok and v == "any" then
    v = DTMF
  end
  if type(v) ~= "string" or (v == "" and not empty_ok) then
    fail(method, name .. " must be a string of keys such as \"#\" or \"0123456789*#\""
      .. (any_ok and " (or \"any\")" or "") .. " (got " .. (v == "" and "an empty string" or type(v)) .. ")")
  end
  local set = {}
  for c in v:gmatch(".") do
    local key = c:upper()
    if not DTMF:find(key, 1, true) then
      fail(method, string.format("%s: '%s' is not a DTMF key (0-9, *, #, A-D)", name, c))
    end
    set[key] = true
  end
  return set
end

-- One media URI or a non-empty array of them.
function args.media(method, name, v, optional)
  if v == nil and optional then
    return nil
  end
  if type(v) == "string" and v ~= "" then
    return v
  end
  if type(v) == "table" and #v > 0 then
    for i = 1, #v do
      if type(v[i]) ~= "string" or v[i] == "" then
        fail(method, string.format("%s[%d] must be a media URI string such as \"sound:hello-world\"", name, i))
      end
    end
    return v
  end
  fail(method, name .. " must be a media URI such as \"sound:hello-world\" or an array of them (got "
    .. (type(v) == "table" and "an empty table" or type(v)) .. ")")
end

return args
