-- Command line options: --name value, --name=value and flags, each option
-- optionally also read from an environment variable. The command line
-- wins over the environment, which wins over the defaults.

local options = {}

local function find(spec, name)
  for _, o in ipairs(spec) do
    if o.name == name or o.short == name then
      return o
    end
  end
  return nil
end

-- A number option's value: finite, and at least o.min (or more than 0
-- with o.positive).
local function check_number(o, n, raw)
  if n ~= n or n == math.huge or n == -math.huge then
    return nil, string.format("--%s expects a finite number (got '%s')", o.name, raw)
  end
  if o.positive and n <= 0 then
    return nil, string.format("--%s must be more than 0 (got '%s')", o.name, raw)
  end
  if o.min and n < o.min then
    return nil, string.format("--%s must be at least %s (got '%s')", o.name, tostring(o.min), raw)
  end
  return n
end

-- o.word: a word a number option also takes, read as false.
local function convert(o, raw)
  if o.type == "number" then
    if o.word and raw == o.word then
      return false
    end
    local n = tonumber(raw)
    if not n then
      return nil, string.format("--%s expects a number%s (got '%s')", o.name,
        o.word and (" or " .. o.word) or "", raw)
    end
    return check_number(o, n, raw)
  end
  if o.multi and not raw:find("[^,]") then
    return nil, string.format("--%s needs a name (got '%s')", o.name, raw)
  end
  if o.values then
    for _, v in ipairs(o.values) do
      if v == raw then
        return raw
      end
    end
    return nil, string.format("--%s must be one of %s (got '%s')", o.name, table.concat(o.values, ", "), raw)
  end
  return raw
end

local function store(opts, o, value)
  if o.multi then
    opts[o.key] = opts[o.key] or {}
    for item in tostring(value):gmatch("[^,]+") do
      table.insert(opts[o.key], item)
    end
  else
    opts[o.key] = value
  end
end

-- A value from a config file, checked like one from the command line.
local function from_config(o, v)
  if o.flag then
    if type(v) ~= "boolean" then
      return nil, string.format("config: %s must be true or false", o.key)
    end
    return v
  end
  if o.multi and type(v) == "table" then
    local list = {}
    for i, item in ipairs(v) do
      list[i] = tostring(item)
    end
    return list
  end
  if type(v) ~= "string" and type(v) ~= "number" then
    return nil, string.format("config: %s must be a %s", o.key, o.type == "number" and "number" or "string")
  end
  local value, err = convert(o, tostring(v))
  if value == nil then
    return nil, "config: " .. err
  end
  if o.multi then
    local list = {}
    for item in tostring(value):gmatch("[^,]+") do
      list[#list + 1] = item
    end
    return list
  end
  return value
end

-- For a command's main: options.parse, then a bad option is printed with
-- the usage text on stderr and --help prints it on stdout. Returns opts,
-- positional, source; or nil and the exit code (2 or 0).
function options.command(name, usage, spec, args, config)
  local opts, positional, source = options.parse(spec, args, nil, config)
  if not opts then
    io.stderr:write("luari ", name, ": ", positional, "\n\n", usage)
    return nil, 2
  end
  if opts.help then
    io.stdout:write(usage)
    return nil, 0
  end
  return opts, positional, source
end

-- Returns opts (keys with - turned into _), positional args, and where each
-- value came from ("cli", "env", "config", "default"); or nil, error.
-- Precedence: command line, then environment, then `config` (a table, e.g.
-- from --config FILE), then defaults.
function options.parse(spec, args, env, config)
  env = env or os.getenv
  local opts, positional, from_cli = {}, {}, {}
  for _, o in ipairs(spec) do
    o.key = o.key or o.name:gsub("-", "_")
  end
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do
        positional[#positional + 1] = args[j]
      end
      break
    end
    local name, inline = a:match("^%-%-([%w%-]+)=(.*)$")
    if not name then
      name = a:match("^%-%-([%w%-]+)$") or a:match("^%-(%a)$")
    end
    if name then
      local o = find(spec, name)
      if not o then
        return nil, "unknown option " .. a
      end
      local value
      if o.flag then
        value = true
        if inline then
          value = inline ~= "false" and inline ~= "0" and inline ~= "no"
        end
      else
        value = inline
        if value == nil then
          i = i + 1
          value = args[i]
          if value == nil then
            return nil, "option --" .. o.name .. " needs a value"
          end
        end
        local err
        value, err = convert(o, value)
        if value == nil then
          return nil, err
        end
      end
      if o.multi and not from_cli[o.key] then
        opts[o.key] = nil
      end
      from_cli[o.key] = true
      store(opts, o, value)
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  local source = {}
  for key in pairs(from_cli) do
    source[key] = "cli"
  end
  for _, o in ipairs(spec) do
    if opts[o.key] == nil and o.env then
      local v = env(o.env)
      if v and v ~= "" then
        if o.flag then
          opts[o.key] = v ~= "0" and v ~= "false" and v ~= "no"
        else
          local value, err = convert(o, v)
          if value == nil then
            return nil, err .. " (from " .. o.env .. ")"
          end
          store(opts, o, value)
        end
        source[o.key] = "env"
      end
    end
    if opts[o.key] == nil and config and config[o.key] ~= nil then
      local value, err = from_config(o, config[o.key])
      if value == nil then
        return nil, err
      end
      opts[o.key] = value
      source[o.key] = "config"
    end
    if opts[o.key] == nil and o.default ~= nil then
      opts[o.key] = o.default
      source[o.key] = "default"
    end
  end
  if config then
    for k in pairs(config) do
      local known = false
      for _, o in ipairs(spec) do
        known = known or o.key == k
      end
      if not known and k ~= "flows" then
        return nil, "config: unknown setting '" .. tostring(k) .. "'"
      end
    end
  end
  return opts, positional, source
end

-- "HOST:PORT" or "[IPv6]:PORT" -> host, port; nil when it is neither.
function options.host_port(s)
  local host, port = s:match("^%[(.+)%]:(%d+)$")
  if not host then
    host, port = s:match("^(.*):(%d+)$")
  end
  port = tonumber(port)
  if not host or host == "" or not port or port > 65535 then
    return nil
  end
  return host, port
end

function options.usage(spec)
  local lines = {}
  for _, o in ipairs(spec) do
    local left = (o.short and ("  -" .. o.short .. ", --") or "  --") .. o.name
      .. (o.flag and "" or (" " .. (o.arg or "VALUE")))
    local right = o.help or ""
    if o.env then
      right = right .. " [" .. o.env .. "]"
    end
    if o.default ~= nil and not o.flag then
      local d = type(o.default) == "table" and table.concat(o.default, ",") or tostring(o.default)
      right = right .. " (default " .. d .. ")"
    end
    if #left > 28 then
      -- Too wide for the column: the help goes on the next line.
      lines[#lines + 1] = left
      left = ""
    end
    lines[#lines + 1] = string.format("%-28s %s", left, right)
  end
  return table.concat(lines, "\n")
end

return options
