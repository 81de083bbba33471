-- luari.ari: ARI itself, one function per operation, built from the
-- operation table (luari.ari_ops). Arguments are checked against the table
-- before anything is sent: a mistake raises at once, naming the operation
-- and the parameter. Replies: the decoded body (or true), or nil and an
-- error table whose code says what went wrong.

local ops = require "luari.ari_ops"
local json = require "luari.json"
local Runtime = require "luari.runtime"
local util = require "luari.util"

local ari = { null = json.null }

-- --- errors ---------------------------------------------------------------

local AriError = {}
AriError.__index = AriError
AriError.__tostring = function(e)
  if e.status then
    return string.format("%s: %d %s", e.op, e.status, e.message)
  end
  return string.format("%s: %s", e.op, e.message)
end

local STATUS_CODES = {
  [400] = "bad_request",
  -- 401 and 403 are not among the codes flows are promised: any other
  -- 4xx reads as bad_request (err.status still says which).
  [404] = "not_found",
  [405] = "bad_request",
  [409] = "conflict",
  [412] = "precondition",
  [422] = "unprocessable",
}

function ari.code_for_status(status)
  if status >= 500 then
    return "server_error"
  end
  return STATUS_CODES[status] or "bad_request"
end

function ari.is_error(v)
  return getmetatable(v) == AriError
end

function ari.new_error(fields)
  return setmetatable(fields, AriError)
end

-- --- compiling the table --------------------------------------------------

local function compile(entry)
  local spec = {
    resource = entry[1],
    nickname = entry[2],
    method = entry[3],
    path = entry[4],
    name = "ari." .. entry[1] .. "." .. entry[2],
    label = entry[1] .. "." .. entry[2],
    returns = entry.returns,
    params = entry.params or {},
    by_name = {},
    exclusive = entry.exclusive or {},
    segments = {},   -- strings, or the index of a path parameter
    path_params = {},
  }
  for piece in entry[4]:gmatch("[^/]+") do
    local pname = piece:match("^{(.+)}$")
    if pname then
      spec.path_params[#spec.path_params + 1] = pname
      spec.segments[#spec.segments + 1] = #spec.path_params
    else
      spec.segments[#spec.segments + 1] = piece
    end
  end
  for _, p in ipairs(spec.params) do
    spec.by_name[p[1]] = p
  end
  return spec
end

-- --- checking arguments ---------------------------------------------------

-- Misuse raises a table so that the public function can re-raise the
-- message at its caller's line.
local Misuse = {}

local function fail(spec, fmt, ...)
  error(setmetatable({ message = spec.name .. ": " .. string.format(fmt, ...) }, Misuse), 0)
end

local function rethrow(err)
  if getmetatable(err) == Misuse then
    -- At the operation's caller, or past the call object to the flow.
    error(err.message, util.flow_level(3))
  end
  error(err, 0)
end

-- Whole numbers as digits at any size (tostring would write 2^60 as
-- 1.1529215046068e+18, which Asterisk reads as 1).
local function number_string(v)
  if v == math.floor(v) and v == v and v ~= math.huge and v ~= -math.huge then
    return string.format("%.0f", v)
  end
  return tostring(v)
end

local function known_names(spec)
  local names = {}
  for _, p in ipairs(spec.params) do
    names[#names + 1] = p[1]
  end
  return #names > 0 and table.concat(names, ", ") or "none"
end

local function check_allowed(spec, p, s)
  if p.values then
    for _, allowed in ipairs(p.values) do
      if s == allowed then
        return
      end
    end
    fail(spec, "parameter '%s' must be one of %s (got '%s')", p[1], table.concat(p.values, ", "), s)
  end
end

local function check_string(spec, p, v)
  local t = type(v)
  if t == "number" then
    v = number_string(v)
  elseif t ~= "string" then
    fail(spec, "parameter '%s' must be a string (got %s)", p[1], t)
  end
  check_allowed(spec, p, v)
  return v
end

-- What Asterisk's int and long parameters hold (C int, long on 64 bits).
local INT_RANGE = { int = 2 ^ 31, long = 2 ^ 63 }

local function check_integer(spec, p, v)
  if type(v) ~= "number" or v ~= math.floor(v) or v ~= v or v == math.huge or v == -math.huge then
    fail(spec, "parameter '%s' must be an integer (got %s)", p[1],
      type(v) == "number" and tostring(v) or type(v))
  end
  local range = INT_RANGE[p[2]]
  if range and (v >= range or v < -range) then
    fail(spec, "parameter '%s' must be an integer from %s to %s (got %s)", p[1], number_string(-range),
      number_string(range - 1), number_string(v))
  end
  if p.min and v < p.min then
    fail(spec, "parameter '%s' must be at least %s (got %s)", p[1], tostring(p.min), number_string(v))
  end
  if p.max and v > p.max then
    fail(spec, "parameter '%s' must be at most %s (got %s)", p[1], tostring(p.max), number_string(v))
  end
  return number_string(v)
end

local function check_containers(spec, p, v)
  if type(v) ~= "table" then
    fail(spec, "parameter '%s' must be a table of name = value (got %s)", p[1], type(v))
  end
  local out = {}
  for k, val in pairs(v) do
    if type(k) ~= "string" then
      fail(spec, "parameter '%s' must have string keys (got a %s key)", p[1], type(k))
    end
    local tv = type(val)
    if tv == "number" then
      val = number_string(val)
    elseif tv == "boolean" then
      val = tostring(val)
    elseif tv ~= "string" then
      fail(spec, "parameter '%s': value of '%s' must be a string (got %s)", p[1], k, tv)
    end
    out[k] = val
  end
  return out
end

local function check_list(spec, p, v)
  if type(v) == "string" and p.values then
    -- "build,system": each item must be allowed, as in the array form.
    return check_list(spec, p, util.split_commas(v))
  elseif type(v) ~= "table" then
    return check_string(spec, p, v)
  end
  if #v == 0 then
    fail(spec, "parameter '%s' must not be an empty list", p[1])
  end
  local out = {}
  for i = 1, #v do
    out[i] = check_string(spec, p, v[i])
  end
  return out
end

local CHECKERS = {
  string = check_string,
  int = check_integer,
  long = check_integer,
  double = function(spec, p, v)
    if type(v) ~= "number" then
      fail(spec, "parameter '%s' must be a number (got %s)", p[1], type(v))
    end
    return tostring(v)
  end,
  boolean = function(spec, p, v)
    if type(v) ~= "boolean" then
      fail(spec, "parameter '%s' must be a boolean (got %s)", p[1], type(v))
    end
    return tostring(v)
  end,
  containers = check_containers,
}

local function check_value(spec, p, v)
  if p.multiple then
    return check_list(spec, p, v)
  end
  local checker = CHECKERS[p[2]]
  if checker then
    return checker(spec, p, v)
  end
  return v -- other body types (object, List[...]) go to JSON as given
end

local function check_exclusive(spec, opts)
  for _, rule in ipairs(spec.exclusive) do
    local a = rule[1]
    if opts[a] ~= nil then
      for _, b in ipairs(rule[2]) do
        if opts[b] ~= nil then
          fail(spec, "parameters '%s' and '%s' are mutually exclusive", a, b)
        end
      end
    end
  end
end

-- What an operation without parameters (or without query parameters)
-- passes on: one table for all, which nothing may write to.
local READ_ONLY = { __newindex = function()
  error("luari: internal: a shared empty parameter table was written to", 2)
end }
local NO_OPTS, NO_QUERY = setmetatable({}, READ_ONLY), setmetatable({}, READ_ONLY)

-- Returns the query (flat name, value list in table order) and the body.
local function build_params(spec, opts)
  for name in pairs(opts) do
    if type(name) ~= "string" or not spec.by_name[name] then
      fail(spec, "unknown parameter '%s' (known: %s)", tostring(name), known_names(spec))
    end
  end
  check_exclusive(spec, opts)
  local query, body = nil, nil
  for _, p in ipairs(spec.params) do
    local v = opts[p[1]]
    if v == nil and p.send_default then
      v = p.default
    end
    -- An empty string is a value and goes out: Asterisk's own answer to
    -- it (a 400 for most) is what the captures show a flow gets.
    if v == nil then
      if p.required then
        fail(spec, "missing required parameter '%s'", p[1])
      end
    elseif p.body then
      body = body or {}
      body[p[1]] = check_value(spec, p, v)
    else
      query = query or {}
      query[#query + 1] = p[1]
      query[#query + 1] = check_value(spec, p, v)
    end
  end
  return query or NO_QUERY, body
end

local function build_segments(spec, args, nargs)
  local np = #spec.path_params
  for i = 1, np do
    local v = args[i]
    local t = type(v)
    if t == "number" then
      args[i] = number_string(v)
    elseif t ~= "string" or v == "" then
      fail(spec, "argument %d ('%s') must be a non-empty string (got %s)", i, spec.path_params[i],
        t == "string" and "an empty string" or t)
    end
  end
  if nargs > np + 1 then
    fail(spec, "takes %d argument%s and a parameter table, got %d arguments", np, np == 1 and "" or "s", nargs)
  end
  local opts = args[np + 1]
  if opts ~= nil and type(opts) ~= "table" then
    fail(spec, "argument %d must be a table of parameters (got %s)", np + 1, type(opts))
  end
  local segments = {}
  for i, piece in ipairs(spec.segments) do
    segments[i] = type(piece) == "number" and args[piece] or piece
  end
  return segments, opts or NO_OPTS
end

-- --- ownership of what a flow creates ----------------------------------------

-- Operations that create a channel or bridge: which parameter (or path
-- argument) names it. The flow that creates it owns it, so its events are
-- routed to that flow from the first one on.
local CREATES = {
  ["channels.originate"] = { kind = "channel", param = "channelId", other = "otherChannelId" },
  ["channels.originateWithId"] = { kind = "channel", path = 1, other = "otherChannelId" },
  ["channels.create"] = { kind = "channel", param = "channelId", other = "otherChannelId" },
  ["channels.snoopChannel"] = { kind = "channel", param = "snoopId" },
  ["channels.snoopChannelWithId"] = { kind = "channel", path = 2 },
  ["channels.externalMedia"] = { kind = "channel", param = "channelId" },
  ["bridges.create"] = { kind = "bridge", param = "bridgeId" },
  ["bridges.createWithId"] = { kind = "bridge", path = 1 },
}

-- Picks the id before the request when the caller gave none. Returns the
-- parameters to send and the ids to claim once they have been checked.
local function pick_ids(rt, th, spec, args, opts)
  local what = CREATES[spec.resource .. "." .. spec.nickname]
  if not what or not rt or not rt.claim or not th.call then
    return opts, nil
  end
  local id
  if what.path then
    id = args[what.path]
  else
    id = opts[what.param]
    if id == nil then
      opts = util.shallow_copy(opts)
      id = util.uuid()
      opts[what.param] = id
    end
  end
  local ids = { tostring(id) }
  if what.other then
    ids[2] = opts[what.other] and tostring(opts[what.other]) or (tostring(id) .. ";2")
  end
  return opts, { kind = what.kind, ids = ids }
end

-- The flow owns what it creates from the first event on. The second id
-- is a Local channel's ;2 half, which goes when the first is hung up.
local function claim(rt, th, claims)
  for i, id in ipairs(claims.ids) do
    rt.claim(th, claims.kind, id, i == 2)
  end
end

-- --- calling ----------------------------------------------------------------

local function reply(spec, status, body, err, errmsg, reason)
  if status == nil then -- the wait was interrupted (body holds why)
    return nil, ari.new_error({ op = spec.nickname, code = tostring(body or "interrupted"),
      message = "interrupted: " .. tostring(body or "interrupted") })
  end
  if err then
    return nil, ari.new_error({ op = spec.nickname, code = err, message = errmsg or err })
  end
  if status >= 200 and status < 300 then
    -- Bytes that are not JSON are the result only where the operation
    -- returns a file; elsewhere (a proxy's page) as before: true.
    if body == nil or type(body) == "string" and spec.returns ~= "binary" then
      return true
    end
    return body
  end
  local message = type(body) == "table" and (body.message or body.error) or nil
  if type(message) ~= "string" then
    message = (reason and reason ~= "") and reason or ("HTTP " .. status)
  end
  return nil, ari.new_error({
    op = spec.nickname,
    status = status,
    code = ari.code_for_status(status),
    message = message,
  })
end

local function prepare(spec, rt, th, args, nargs)
  local segments, opts = build_segments(spec, args, nargs)
  local claims
  opts, claims = pick_ids(rt, th, spec, args, opts)
  local query, body = build_params(spec, opts)
  if claims then
    claim(rt, th, claims)
  end
  return segments, query, body
end

local spec_of = {} -- operation function -> its spec

local function make_function(spec)
  return function(...)
    local rt, th = Runtime.current(spec.name)
    local ok, segments, query, body = pcall(prepare, spec, rt, th, { ... }, select("#", ...))
    if not ok then
      rethrow(segments)
    end
    return reply(spec, rt:request(spec.method, segments, query, body, nil, spec.label))
  end
end

-- For tests and tools: what a call would send, without sending it.
function ari.describe(resource, nickname, ...)
  local spec = ari.specs[resource .. "." .. nickname]
  if not spec then
    error("no operation " .. resource .. "." .. nickname, 2)
  end
  local ok, segments, query, body = pcall(prepare, spec, nil, nil, { ... }, select("#", ...))
  if not ok then
    rethrow(segments)
  end
  return spec.method, segments, query == NO_QUERY and {} or query, body
end

-- Raises what calling operation `fn` with these arguments would raise for
-- misuse, without sending anything: the call object checks a request it
-- will not send (the call is gone) as strictly as one it sends.
function ari.check(fn, ...)
  local spec = assert(spec_of[fn], "ari.check: not an operation")
  local ok, err = pcall(prepare, spec, nil, nil, { ... }, select("#", ...))
  if not ok then
    rethrow(err)
  end
end

ari.specs = {}
for _, entry in ipairs(ops) do
  local spec = compile(entry)
  ari.specs[spec.resource .. "." .. spec.nickname] = spec
  ari[spec.resource] = ari[spec.resource] or {}
  local fn = make_function(spec)
  ari[spec.resource][spec.nickname] = fn
  spec_of[fn] = spec
end

return ari
