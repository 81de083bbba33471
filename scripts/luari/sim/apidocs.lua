-- /ari/api-docs for the simulator, generated from luari's own operation
-- table (luari.ari_ops) in the Swagger 1.1 shape Asterisk serves, so that
-- swagger-driven clients (node's ari-client, ...) find every operation.

local json = require "luari.json"
local models = require "luari.sim.models"
local ops = require "luari.ari_ops"

local apidocs = {}

local DESCRIPTIONS = {
  asterisk = "Asterisk resources",
  endpoints = "Endpoint resources",
  channels = "Channel resources",
  bridges = "Bridge resources",
  recordings = "Recording resources",
  sounds = "Sound resources",
  playbacks = "Playback control resources",
  deviceStates = "Device state resources",
  mailboxes = "Mailboxes resources",
  events = "WebSocket resource",
  applications = "Stasis application resources",
}

local ORDER = { "asterisk", "endpoints", "channels", "bridges", "recordings", "sounds", "playbacks",
  "deviceStates", "mailboxes", "events", "applications" }

local function resources(base)
  local apis = {}
  for _, name in ipairs(ORDER) do
    apis[#apis + 1] = { path = "/api-docs/" .. name .. ".{format}", description = DESCRIPTIONS[name] }
  end
  return { apiVersion = "10.0.0", swaggerVersion = "1.1", basePath = base, apis = apis }
end

local function parameter(p, kind)
  local out = {
    name = p[1],
    paramType = kind,
    required = p.required == true or kind == "path",
    allowMultiple = p.multiple == true,
    dataType = p[2] or "string",
  }
  if p.swagger_default ~= nil then
    out.defaultValue = p.swagger_default
  elseif p.default ~= nil then
    out.defaultValue = p.default
  end
  if p.values then
    out.allowableValues = { valueType = "LIST", values = p.values }
  elseif p.min or p.max then
    out.allowableValues = { valueType = "RANGE", min = p.min, max = p.max }
  end
  return out
end

local function operation(entry)
  local params = {}
  for pname in entry[4]:gmatch("{([^}]+)}") do
    params[#params + 1] = parameter({ pname, "string", required = true }, "path")
  end
  for _, p in ipairs(entry.params or {}) do
    params[#params + 1] = parameter(p, p.body and "body" or "query")
  end
  local errors = {}
  for _, e in ipairs(entry.errors or {}) do
    errors[#errors + 1] = { code = e[1], reason = e[2] }
  end
  local op = {
    httpMethod = entry[3],
    summary = entry.summary,
    nickname = entry[2],
    responseClass = entry.returns or "void",
    parameters = json.array(params),
  }
  if #errors > 0 then
    op.errorResponses = errors
  end
  if entry[1] == "events" and entry[2] == "eventWebsocket" then
    op.upgrade = "websocket"
    op.websocketProtocol = "ari"
  end
  return op
end

local function resource(name, base)
  local apis, by_path = {}, {}
  for _, entry in ipairs(ops) do
    if entry[1] == name then
      local api = by_path[entry[4]]
      if not api then
        api = { path = entry[4], operations = {} }
        by_path[entry[4]] = api
        apis[#apis + 1] = api
      end
      api.operations[#api.operations + 1] = operation(entry)
    end
  end
  if #apis == 0 then
    return nil
  end
  return {
    apiVersion = "2.0.0",
    -- Asterisk declares its events document (with the model sub-types) 1.2.
    swaggerVersion = name == "events" and "1.2" or "1.1",
    basePath = base,
    resourcePath = "/api-docs/" .. name .. ".{format}",
    apis = apis,
    models = models.document(name),
  }
end

-- The document for "resources" or a resource name; nil when unknown.
function apidocs.document(name, base)
  base = base or "http://127.0.0.1:8088/ari"
  if name == "resources" then
    return resources(base)
  end
  return resource(name, base)
end

return apidocs
