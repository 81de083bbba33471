-- Turns the in-process simulator's transcript into lines a person reads:
-- what the flow asked, what Asterisk answered, what the caller did, how the
-- call ended.

local ari = require "luari.ari"

local transcript = {}

-- Which operation a request is, from the operation table.
local function find_op(method, path)
  local segs = {}
  for s in path:gmatch("[^/]+") do
    segs[#segs + 1] = s
  end
  for _, spec in pairs(ari.specs) do
    if spec.method == method and #spec.segments == #segs then
      local ok, args = true, {}
      for i, piece in ipairs(spec.segments) do
        if type(piece) == "number" then
          args[piece] = segs[i]
        elseif piece ~= segs[i] then
          ok = false
          break
        end
      end
      if ok then
        return spec, args
      end
    end
  end
  return nil
end
transcript.find_op = find_op

local function params_text(query, body)
  local parts = {}
  local keys = {}
  for k in pairs(query or {}) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    parts[#parts + 1] = k .. "=" .. tostring(query[k])
  end
  if body and body.variables then
    local vars = {}
    for k, v in pairs(body.variables) do
      vars[#vars + 1] = k .. "=" .. tostring(v)
    end
    table.sort(vars)
    parts[#parts + 1] = "variables{" .. table.concat(vars, ", ") .. "}"
  end
  return table.concat(parts, " ")
end

-- "play media=sound:hello-world" for a request entry.
local SHORT = {
  playWithId = function(q)
    return "play " .. tostring(q.media), { media = true }
  end,
  play = function(q)
    return "play " .. tostring(q.media), { media = true, playbackId = true }
  end,
  record = function(q)
    return "record " .. tostring(q.name), { name = true }
  end,
}

function transcript.describe_request(e)
  local spec, args = find_op(e.method, e.path)
  local short = spec and spec.resource == "channels" and SHORT[spec.nickname]
  if short then
    local text, shown = short(e.query or {})
    local rest = {}
    for k, v in pairs(e.query or {}) do
      if not shown[k] then
        rest[k] = v
      end
    end
    local p = params_text(rest, e.body)
    return p ~= "" and (text .. " " .. p) or text, spec
  end
  local name = spec and (spec.resource == "channels" and spec.nickname or (spec.resource .. "." .. spec.nickname))
    or (e.method .. " " .. e.path)
  local text = name
  if spec and #spec.path_params > 1 then
    local extra = {}
    for i = 2, #spec.path_params do
      extra[#extra + 1] = spec.path_params[i] .. "=" .. tostring(args[i])
    end
    text = text .. " " .. table.concat(extra, " ")
  end
  local p = params_text(e.query, e.body)
  if p ~= "" then
    text = text .. " " .. p
  end
  return text, spec
end

local function describe_response(e)
  local text = string.format("%d %s", e.status, e.reason or "")
  local b = e.body
  if type(b) == "table" then
    if b.message then
      text = text .. ": " .. tostring(b.message)
    elseif b.error then
      text = text .. ": " .. tostring(b.error)
    elseif b.id and b.media_uri then
      text = text .. " (playback " .. tostring(b.id) .. ", " .. tostring(b.state) .. ")"
    elseif b.name and b.format then
      text = text .. " (recording " .. tostring(b.name) .. ", " .. tostring(b.state or "stored") .. ")"
    elseif b.id and b.state then
      text = text .. " (channel " .. tostring(b.id) .. ", " .. tostring(b.state) .. ")"
    elseif b.value ~= nil then
      text = text .. " (value " .. tostring(b.value) .. ")"
    end
  end
  return text
end

local function describe_event(ev)
  local t = ev.type or "?"
  local parts = { t }
  if ev.playback then
    parts[#parts + 1] = tostring(ev.playback.media_uri) .. " " .. tostring(ev.playback.state)
  elseif ev.recording then
    parts[#parts + 1] = tostring(ev.recording.name) .. " " .. tostring(ev.recording.state)
    if ev.recording.duration then
      parts[#parts + 1] = "(" .. tostring(ev.recording.duration) .. " s)"
    end
  elseif t == "ChannelDtmfReceived" then
    parts[#parts + 1] = tostring(ev.digit)
  elseif t == "ChannelStateChange" or t == "StasisStart" then
    parts[#parts + 1] = tostring(ev.channel and ev.channel.state)
  elseif t == "Dial" then
    parts[#parts + 1] = "'" .. tostring(ev.dialstatus) .. "' " .. tostring(ev.peer and ev.peer.id)
  elseif t == "ChannelDestroyed" or t == "ChannelHangupRequest" then
    parts[#parts + 1] = "cause " .. tostring(ev.cause) .. (ev.cause_txt and (" " .. ev.cause_txt) or "")
  elseif t == "ChannelVarset" then
    parts[#parts + 1] = tostring(ev.variable) .. "=" .. tostring(ev.value)
  end
  if ev.channel and ev.channel.id and t ~= "StasisStart" then
    parts[#parts + 1] = "[" .. ev.channel.id .. "]"
  end
  return table.concat(parts, " ")
end

local function describe_caller(e)
  if e.action == "call" then
    local c = e.caller or {}
    local who = (c.number ~= "" and c.number) or "an anonymous caller"
    local args = #(e.args or {}) > 0 and (" (Stasis args: " .. table.concat(e.args, ", ") .. ")") or ""
    return "call from " .. who .. args
  elseif e.action == "dtmf" then
    return "presses " .. tostring(e.digit)
  elseif e.action == "hangup" then
    return "hangs up"
  elseif e.action == "audio" then
    return "now sends " .. tostring(e.audio)
  end
  return tostring(e.action)
end

-- One line, or nil for entries not worth showing at this verbosity.
function transcript.line(e, verbose)
  local what, text
  if e.kind == "request" then
    what, text = "flow", transcript.describe_request(e)
  elseif e.kind == "response" then
    what, text = "asterisk", describe_response(e)
  elseif e.kind == "event" then
    local t = e.event.type
    if not verbose and (t == "ChannelVarset" or t == "ChannelDialplan" or t == "PlaybackStarted"
        or t == "RecordingStarted" or t == "ChannelConnectedLine" or t == "ChannelCallerId") then
      return nil
    end
    what, text = "event", describe_event(e.event)
  elseif e.kind == "caller" then
    what, text = "caller", describe_caller(e)
  elseif e.kind == "log" then
    if e.level == "debug" and not verbose then
      return nil
    end
    what, text = e.level, e.message
  elseif e.kind == "end" then
    what = "end"
    text = e.error and ("flow failed: " .. tostring(e.error)) or "flow returned"
  else
    what, text = e.kind, ""
  end
  return string.format("%9.3f  %-8s %s", e.t, what, text)
end

function transcript.text(entries, verbose)
  local out = {}
  for _, e in ipairs(entries) do
    local l = transcript.line(e, verbose)
    if l then
      out[#out + 1] = l
    end
  end
  return table.concat(out, "\n")
end

return transcript
