-- Turns the in-process simulator's transcript into lines a person reads:
-- what the flow asked, what Asterisk answered, what the caller did, how the
-- call ended, each with its virtual time.
--
--     0.000  caller    calls from +15551234 (Stasis args: menu)
--     0.000  event     StasisStart: the call enters the application (Ring)
--     0.000  flow      answer
--     0.000  asterisk  answer -> 204 No Content
--     ...
--     2.000  end       the flow returned
--
-- transcript.text(entries) renders a whole transcript; transcript.renderer()
-- renders entries one by one as they happen (`luari sim`); transcript.outcome
-- says in one sentence how the call ended.

local ari = require "luari.ari"
local router = require "luari.sim.model.router"

local transcript = {}

-- Events that only add noise unless asked for (verbose).
local QUIET = {
  ChannelVarset = true, ChannelDialplan = true, PlaybackStarted = true, RecordingStarted = true,
  ChannelConnectedLine = true, ChannelCallerId = true,
}

-- Which operation a request is (res_ari's routing: a literal segment wins
-- over a parameter): the luari.ari spec and the path arguments by position.
local function find_op(method, path)
  local op, params = router.match(method, path)
  if not op then
    return nil
  end
  local spec = ari.specs[op[1] .. "." .. op[2]]
  if not spec then
    return nil
  end
  local args = {}
  for i, name in ipairs(spec.path_params) do
    args[i] = params[name]
  end
  return spec, args
end
transcript.find_op = find_op

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

local function params_text(query, body)
  local parts = {}
  for _, k in ipairs(sorted_keys(query)) do
    parts[#parts + 1] = k .. "=" .. tostring(query[k])
  end
  if type(body) == "table" and type(body.variables) == "table" then
    local vars = {}
    for _, k in ipairs(sorted_keys(body.variables)) do
      vars[#vars + 1] = k .. "=" .. tostring(body.variables[k])
    end
    parts[#parts + 1] = "variables{" .. table.concat(vars, ", ") .. "}"
  end
  return table.concat(parts, " ")
end

-- Channel operations that read better under a short name with their main
-- argument first; the playback id is in Asterisk's reply.
local SHORT = {
  play = { "play", "media", "playbackId" },
  playWithId = { "play", "media", "playbackId" },
  record = { "record", "name" },
}

-- "play sound:hello-world", "hangup reason=busy", "playbacks.stop 3492a928-...".
-- `main`: the call's own channel id, left out of the text (other channels
-- are named).
function transcript.describe_request(e, main)
  local spec, args = find_op(e.method, e.path)
  if not spec then
    local p = params_text(e.query, e.body)
    return e.method .. " " .. e.path .. (p ~= "" and (" " .. p) or "")
  end
  local query = e.query or {}
  local short = spec.resource == "channels" and SHORT[spec.nickname]
  local hidden = {}
  for i = 3, short and #short or 0 do
    hidden[short[i]] = true
  end
  local words = {}
  local first_arg = 1
  if spec.resource == "channels" then
    words[1] = short and short[1] or spec.nickname
    if main and args[1] and args[1] ~= main then
      words[#words + 1] = "[" .. args[1] .. "]"
    end
    first_arg = 2
  else
    words[1] = spec.resource .. "." .. spec.nickname
  end
  for i = first_arg, #spec.path_params do
    local name = spec.path_params[i]
    if not hidden[name] then
      words[#words + 1] = (spec.resource == "channels" and (name .. "=") or "") .. tostring(args[i])
    end
  end
  local rest = query
  if short then
    words[#words + 1] = tostring(query[short[2]])
    rest = {}
    hidden[short[2]] = true
    for k, v in pairs(query) do
      if not hidden[k] then
        rest[k] = v
      end
    end
  end
  local p = params_text(rest, e.body)
  if p ~= "" then
    words[#words + 1] = p
  end
  return table.concat(words, " "), spec
end

local function op_name(req)
  local spec = req and find_op(req.method, req.path)
  if not spec then
    return req and (req.method .. " " .. req.path) or "?"
  end
  if spec.resource == "channels" then
    return SHORT[spec.nickname] and SHORT[spec.nickname][1] or spec.nickname
  end
  return spec.resource .. "." .. spec.nickname
end

-- luari's own check on a playback (call:play notices a playback that
-- Asterisk dropped without a PlaybackFinished): shown when verbose, or
-- when it finds the playback gone.
local function is_playback_check(req)
  local spec = req and find_op(req.method, req.path)
  return spec ~= nil and spec.resource == "playbacks" and spec.nickname == "get"
end
transcript.is_playback_check = is_playback_check

local function describe_response(e)
  local text = string.format("%s -> %d %s", op_name(e.request), e.status, e.reason or "")
  local b = e.body
  if type(b) == "table" then
    if b.message then
      text = text .. ": " .. tostring(b.message)
    elseif b.error then
      text = text .. ": " .. tostring(b.error)
    elseif b.id and b.media_uri then
      text = text .. ": playback " .. tostring(b.id) .. " " .. tostring(b.state)
    elseif b.name and b.format then
      text = text .. ": recording " .. tostring(b.name) .. " " .. tostring(b.state or "stored")
    elseif b.id and b.state and b.name then
      text = text .. ": channel " .. tostring(b.id) .. " " .. tostring(b.state)
    elseif b.id and b.bridge_type then
      text = text .. ": bridge " .. tostring(b.id) .. " " .. tostring(b.bridge_type)
    elseif b.value ~= nil then
      text = text .. ": " .. tostring(b.value)
    end
  end
  return text
end

local function cause_text(ev)
  if ev.cause == nil then
    return ""
  end
  return "cause " .. tostring(ev.cause) .. (ev.cause_txt and (" " .. ev.cause_txt) or "")
end

local function describe_event(ev, main)
  local t = ev.type or "?"
  local ch = ev.channel and ev.channel.id
  local own = main ~= nil and ch == main
  local what
  if t == "StasisStart" then
    local args = ev.args and #ev.args > 0 and ("; args: " .. table.concat(ev.args, ", ")) or ""
    what = (own and "the call" or "the channel") .. " enters the application ("
      .. tostring(ev.channel and ev.channel.state) .. args .. ")"
  elseif t == "StasisEnd" then
    what = (own and "the call" or "the channel") .. " leaves the application"
  elseif ev.playback then
    what = tostring(ev.playback.media_uri) .. " " .. tostring(ev.playback.state)
  elseif ev.recording then
    what = tostring(ev.recording.name) .. " " .. tostring(ev.recording.state)
    if ev.recording.duration then
      what = what .. ", " .. tostring(ev.recording.duration) .. " s"
    end
    if ev.recording.cause then
      what = what .. " (" .. tostring(ev.recording.cause) .. ")"
    end
  elseif t == "ChannelDtmfReceived" then
    what = tostring(ev.digit)
  elseif t == "ChannelStateChange" then
    what = tostring(ev.channel and ev.channel.state)
  elseif t == "Dial" then
    local status = ev.dialstatus == "" and "dialing" or tostring(ev.dialstatus)
    what = tostring(ev.peer and ev.peer.id) .. " " .. status
    ch = ev.caller and ev.caller.id or nil
    own = main ~= nil and ch == main
  elseif t == "ChannelDestroyed" or t == "ChannelHangupRequest" then
    what = cause_text(ev)
    if ev.soft then
      what = what .. " (soft)"
    end
  elseif t == "ChannelVarset" then
    what = tostring(ev.variable) .. "=" .. tostring(ev.value)
  elseif t == "ChannelEnteredBridge" or t == "ChannelLeftBridge" then
    what = "bridge " .. tostring(ev.bridge and ev.bridge.id)
  elseif t == "ApplicationMoveFailed" then
    what = "to " .. tostring(ev.destination)
  end
  local text = t
  if ch and not own then
    text = text .. " [" .. ch .. "]"
  end
  if what and what ~= "" then
    text = text .. ": " .. what
  end
  return text
end

local function describe_caller(e)
  if e.action == "call" then
    local c = e.caller or {}
    local who = (c.number and c.number ~= "" and c.number) or "an anonymous caller"
    if c.name and c.name ~= "" then
      who = c.name .. " <" .. who .. ">"
    end
    local args = #(e.args or {}) > 0 and (" (Stasis args: " .. table.concat(e.args, ", ") .. ")") or ""
    return "calls from " .. who .. args
  elseif e.action == "dtmf" then
    return "presses " .. tostring(e.digit)
  elseif e.action == "hangup" then
    return "hangs up"
  elseif e.action == "audio" then
    return "now sends " .. tostring(e.audio)
  end
  return tostring(e.action)
end

-- Lines after the first (a traceback) are indented under the text.
local function format_line(t, who, text)
  text = tostring(text):gsub("\n", "\n" .. string.rep(" ", 21))
  return string.format("%9.3f  %-8s  %s", t, who, text)
end
transcript.format_line = format_line

-- A renderer keeps what a line depends on: the call's own channel (not
-- repeated on every line) and whether the flow has ended (requests after
-- that are luari's own hang-up, not the flow's).
-- renderer(verbose) -> function(entry) -> line or nil
function transcript.renderer(verbose)
  local main, ended = nil, false
  return function(e)
    local what, text
    if e.kind == "request" then
      if not verbose and is_playback_check(e) then
        return nil
      end
      what = ended and "luari" or "flow"
      text = transcript.describe_request(e, main)
    elseif e.kind == "response" then
      if not verbose and e.status < 300 and is_playback_check(e.request) then
        return nil
      end
      what, text = "asterisk", describe_response(e)
    elseif e.kind == "event" then
      local ev = e.event
      if not main and ev.type == "StasisStart" and ev.channel then
        main = ev.channel.id
      end
      if not verbose and QUIET[ev.type] then
        return nil
      end
      what, text = "event", describe_event(ev, main)
    elseif e.kind == "caller" then
      what, text = "caller", describe_caller(e)
    elseif e.kind == "log" then
      if e.level == "debug" and not verbose then
        return nil
      end
      what, text = e.level, e.message
    elseif e.kind == "sim" then
      what, text = "sim", e.message
    elseif e.kind == "end" then
      if main == nil or e.call == main then
        ended = true
      end
      what = "end"
      text = e.error and ("the flow failed: " .. tostring(e.error)) or "the flow returned"
    else
      what, text = e.kind, ""
    end
    return format_line(e.t, what, text)
  end
end

-- One line for an entry on its own (no context), or nil for entries not
-- worth showing at this verbosity.
function transcript.line(e, verbose)
  return transcript.renderer(verbose)(e)
end

function transcript.lines(entries, verbose, from, to)
  local render = transcript.renderer(verbose)
  local out = {}
  for i = 1, to or #entries do
    local l = render(entries[i])
    if l and i >= (from or 1) then
      out[#out + 1] = l
    end
  end
  return out
end

function transcript.text(entries, verbose)
  return table.concat(transcript.lines(entries, verbose), "\n")
end

-- How the call ended, in one sentence, from the whole transcript:
-- "the flow hung up at 1.404 s", "the caller hung up at 3.000 s", "the flow
-- sent the call back to the dialplan (sales,s,1) at 2.000 s", ...
-- Returns the sentence and the time, or "the call is still up".
-- Asterisk refused the request at entries[i] (an error status), or, for a
-- move, the move failed after its 204 (ApplicationMoveFailed, not
-- StasisEnd): the call did not go.
local function refused(entries, i, main, nickname)
  local req = entries[i]
  for j = i + 1, #entries do
    local x = entries[j]
    if x.kind == "response" and x.request == req then
      if x.status >= 300 then
        return true
      elseif nickname ~= "move" then
        return false
      end
    elseif nickname == "move" and x.kind == "event" and type(x.event.channel) == "table"
        and x.event.channel.id == main then
      if x.event.type == "ApplicationMoveFailed" then
        return true
      elseif x.event.type == "StasisEnd" then
        return false
      end
    end
  end
  return false
end

local SENDS_ON = { continueInDialplan = true, move = true, redirect = true }

function transcript.outcome(entries)
  local main, flow_ended, failed
  for i, e in ipairs(entries) do
    if e.kind == "event" and e.event.type == "StasisStart" and e.event.channel then
      main = main or e.event.channel.id
    elseif e.kind == "end" and (main == nil or e.call == main) then
      flow_ended, failed = true, e.error ~= nil
    elseif e.kind == "caller" and e.action == "hangup" then
      return string.format("the caller hung up at %.3f s", e.t), e.t
    elseif e.kind == "request" and main then
      local spec, args = find_op(e.method, e.path)
      if spec and spec.resource == "channels" and args[1] == main
          and not (SENDS_ON[spec.nickname] and refused(entries, i, main, spec.nickname)) then
        local q = e.query or {}
        local who = flow_ended and "luari" or "the flow"
        if spec.nickname == "hangup" then
          local why = q.reason and (" (" .. q.reason .. ")") or (q.reason_code and (" (cause " .. q.reason_code .. ")"))
            or ""
          local after = flow_ended and (failed and ", after the flow failed" or ", after the flow returned") or ""
          return string.format("%s hung up at %.3f s%s%s", who, e.t, why, after), e.t
        elseif spec.nickname == "continueInDialplan" then
          local where = {}
          for _, k in ipairs({ "context", "extension", "priority", "label" }) do
            if q[k] then
              where[#where + 1] = tostring(q[k])
            end
          end
          local to = #where > 0 and (" (" .. table.concat(where, ",") .. ")") or ""
          return string.format("the flow sent the call back to the dialplan%s at %.3f s", to, e.t), e.t
        elseif spec.nickname == "move" then
          return string.format("the flow moved the call to application %s at %.3f s", tostring(q.app), e.t), e.t
        elseif spec.nickname == "redirect" then
          return string.format("the flow redirected the call to %s at %.3f s", tostring(q.endpoint), e.t), e.t
        end
      end
    elseif e.kind == "event" and main and e.event.type == "ChannelDestroyed" and e.event.channel
        and e.event.channel.id == main then
      return string.format("the channel was destroyed at %.3f s (%s)", e.t, cause_text(e.event)), e.t
    end
  end
  return "the call is still up"
end

return transcript
