-- Channel variables and dialplan functions (CHANNEL(), CALLERID(),
-- CONNECTEDLINE()), one or several at a time, and global variables.
-- Reading a channel variable falls back to the globals, as Asterisk does;
-- reading needs no Stasis, setting does.

local U = require "luari.sim.model.util"
local lib = require "luari.sim.model.lib"

local H = {}

local function C()
  return lib.channels
end

-- Globals every Asterisk has.
local BUILTIN_GLOBALS = {
  ASTETCDIR = "/etc/asterisk", ASTMODDIR = "/usr/lib/asterisk/modules",
  ASTVARLIBDIR = "/var/lib/asterisk", ASTDBDIR = "/var/lib/asterisk",
  ASTKEYDIR = "/var/lib/asterisk", ASTDATADIR = "/var/lib/asterisk",
  ASTAGIDIR = "/var/lib/asterisk/agi-bin", ASTSPOOLDIR = "/var/spool/asterisk",
  ASTRUNDIR = "/var/run/asterisk", ASTLOGDIR = "/var/log/asterisk",
  ASTSBINDIR = "/usr/sbin",
}

local function global(m, name)
  local v = m.globals[name]
  if v == nil then
    v = BUILTIN_GLOBALS[name]
  end
  return v
end

local function callerid_all(name, number)
  return string.format('"%s" <%s>', name, number)
end

local READERS = {
  CHANNEL = function(_, ch, arg)
    local items = {
      name = ch.name, uniqueid = ch.id, linkedid = ch.id, channeltype = ch.tech,
      language = ch.language, state = ch.state, context = ch.context, exten = ch.exten,
      priority = tostring(ch.priority), accountcode = "", musicclass = "",
      peeraccount = "", hangupsource = "", callid = "",
    }
    return items[arg:lower()]
  end,
  CALLERID = function(_, ch, arg)
    local items = {
      all = callerid_all(ch.caller_name, ch.caller_number),
      name = ch.caller_name, num = ch.caller_number, number = ch.caller_number,
      ani = ch.caller_number, dnid = "", rdnis = "",
    }
    return items[arg:lower()]
  end,
  CONNECTEDLINE = function(_, ch, arg)
    local items = {
      all = callerid_all(ch.connected_name, ch.connected_number),
      name = ch.connected_name, num = ch.connected_number, number = ch.connected_number,
    }
    return items[arg:lower()]
  end,
}

-- A variable or function's value; nil, status, message, reason when it
-- cannot be read.
local function read(m, ch, name)
  if name:sub(-1) == ")" then
    local fn, arg = name:match("^([%w_]+)%((.*)%)$")
    local reader = fn and READERS[fn:upper()]
    local v = reader and reader(m, ch, arg)
    if v == nil then
      return nil, 500, "Unable to read provided function", "Error With Function"
    end
    return v
  end
  local v = ch.vars[name]
  if v == nil then
    v = global(m, name)
  end
  if v == nil then
    return nil, 404, "Provided variable was not found", "Variable Not Found"
  end
  return v
end

local PARTY = { name = "name", num = "number", number = "number" }

-- Writes a function; false when Asterisk's write would fail.
local function write_function(m, ch, fn, arg, value)
  fn, arg = fn:upper(), arg:lower()
  if fn == "CALLERID" or fn == "CONNECTEDLINE" then
    local prefix = fn == "CALLERID" and "caller_" or "connected_"
    if arg == "all" then
      ch[prefix .. "name"], ch[prefix .. "number"] = C().parse_callerid(value)
    elseif PARTY[arg] then
      ch[prefix .. PARTY[arg]] = value
    else
      return false
    end
    if fn == "CALLERID" then
      C().callerid_event(m, ch)
    else
      C().emit(m, ch, "ChannelConnectedLine")
    end
    return true
  end
  if fn == "CHANNEL" and (arg == "language" or arg == "musicclass" or arg == "accountcode" or arg == "hangupsource") then
    if arg == "language" then
      ch.language = value
    end
    return true
  end
  return false
end

-- Sets a variable (value nil: unsets it) or writes a function.
local function write(m, ch, name, value)
  local fn, arg = name:match("^([%w_]+)%((.*)%)$")
  if fn then
    return write_function(m, ch, fn, arg, value or "")
  end
  C().varset(m, ch, name, value)
  return true
end

H["channels.getChannelVar"] = function(m, req)
  local name = req.args.variable
  if U.empty(name) then
    return U.fail(400, "Variable name is required")
  end
  local ch = m.channels[req.params.channelId]
  if not ch then
    return U.fail(404, "Provided channel was not found", "Channel Not Found")
  end
  local v, status, message, reason = read(m, ch, name)
  if v == nil then
    return U.fail(status, message, reason)
  end
  return U.ok({ value = v })
end

H["channels.setChannelVar"] = function(m, req)
  local name = req.args.variable
  if U.empty(name) then
    return U.fail(400, "Variable name is required")
  end
  local ch, err = lib.channel_ops.find_control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  if not write(m, ch, name, req.args.value) then
    return U.fail(400, "Failed to execute function")
  end
  return U.no_content()
end

H["channels.getChannelVars"] = function(m, req)
  local names = U.split_nonempty(req.args.variables)
  if #names == 0 then
    return U.fail(400, "The 'variables' field is required")
  end
  local ch = m.channels[req.params.channelId]
  if not ch then
    return U.fail(404, "Provided channel was not found", "Channel Not Found")
  end
  local out = {}
  for _, name in ipairs(names) do
    local v, status, message, reason = read(m, ch, name)
    if v == nil then
      return U.fail(status, message, reason)
    end
    out[name] = v
  end
  return U.ok({ variables = out })
end

H["channels.setChannelVars"] = function(m, req)
  local vars = req.vars
  if vars == nil then
    return U.fail(400, "The 'variables' field is required")
  end
  if type(vars) ~= "table" then
    return U.fail(400, "The 'variables' field must be a JSON object")
  end
  local ch, err = lib.channel_ops.find_control(m, req.params.channelId)
  if not ch then
    return unpack(err)
  end
  for _, name in ipairs(U.sorted_keys(vars)) do
    local value = vars[name]
    if type(value) ~= "string" then
      return U.fail(400, "Only string values in the 'variables' object allowed")
    end
    if not write(m, ch, name, value) then
      return U.fail(400, "Failed to execute function")
    end
  end
  return U.no_content()
end

H["asterisk.getGlobalVar"] = function(m, req)
  local name = req.args.variable
  if U.empty(name) then
    return U.fail(400, "Variable name is required")
  end
  return U.ok({ value = global(m, name) or "" })
end

H["asterisk.setGlobalVar"] = function(m, req)
  local name = req.args.variable
  if U.empty(name) then
    return U.fail(400, "Variable name is required")
  end
  m.globals[name] = req.args.value
  return U.no_content()
end

return H
