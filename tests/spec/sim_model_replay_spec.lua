-- Replays the reference captures against the simulated Asterisk's model.
--
-- ari-samples holds every REST request a real Asterisk 22.10.1 answered
-- and every event it sent, with the time of each. This spec sends the same
-- requests to the model at the same (virtual) times, connects and
-- disconnects the same applications, and compares field for field: replies
-- (status, reason phrase, body), the events about each channel, playback,
-- recording and bridge (in order), and when they came. Ids, time stamps
-- and a few values that a real server makes up (a random RTP port, a
-- pointer in a channel name) are left out of the comparison; the few
-- differences the model does not reproduce are listed, with the reason.

local json = require "luari.json"
local Clock = require "luari.sim.clock"
local Model = require "luari.sim.model"

local function project_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/tests/spec/[^/]*$")
  if dir then
    return dir
  end
  return "."
end

-- The captures: $LUARI_SAMPLES, else shared/ari-samples beside the project.
local function samples_dir()
  local env = os.getenv("LUARI_SAMPLES")
  local candidates = { project_root() .. "/../shared/ari-samples" }
  if env and env ~= "" then
    table.insert(candidates, 1, env)
  end
  for _, dir in ipairs(candidates) do
    do
      local f = io.open(dir .. "/events.jsonl", "r")
      if f then
        f:close()
        return dir
      end
    end
  end
  error("reference captures not found: set LUARI_SAMPLES to the ari-samples directory", 0)
end

local function read_jsonl(path)
  local out = {}
  for line in io.lines(path) do
    if line:find("%S") then
      out[#out + 1] = assert(json.decode(line))
    end
  end
  return out
end

local function pct(s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

-- "/ari/channels/x%3B2?a=b" -> "/channels/x;2", { a = "b" }
local function split_url(url)
  local path, qs = url:match("^([^?]*)%??(.*)$")
  path = path:gsub("^/ari", "")
  local segs = {}
  for seg in path:gmatch("[^/]+") do
    segs[#segs + 1] = pct(seg)
  end
  local q = {}
  for pair in qs:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    q[pct(k)] = pct(v)
  end
  return "/" .. table.concat(segs, "/"), q
end

-- The wall-clock time of the capture's t=0, from the first event's stamp:
-- with it the model's server-made channel ids equal the captured ones.
local CAPTURE_EPOCH = 1795790780.869

-- What the replay sends for one captured exchange: nil when it is the
-- network face's business (authentication, WebSocket handshakes).
local function to_request(it)
  local method = it.method
  if it.status == 401 or it.status == 403 or method == "LOCAL OBSERVATION" then
    return nil
  end
  if method == "WS RESTRequest" then
    local frame = it.sent
    if type(frame) ~= "table" or not frame.uri then
      return nil
    end
    local path, q = split_url("/" .. frame.uri)
    for _, kv in ipairs(frame.query_strings or {}) do
      q[kv.name] = kv.value
    end
    return { method = frame.method, path = path, query = q, body = frame.message_body, over_ws = true }
  end
  local path, q = split_url(it.path)
  return { method = method, path = path, query = q, body = it.request_body }
end

local function replay(dir)
  local items = {}
  for _, r in ipairs(read_jsonl(dir .. "/responses.jsonl")) do
    r.kind = "reply"
    items[#items + 1] = r
  end
  for _, e in ipairs(read_jsonl(dir .. "/events.jsonl")) do
    e.kind = "event"
    items[#items + 1] = e
  end
  table.sort(items, function(a, b)
    return a.seq < b.seq
  end)

  local clock = Clock.new()
  local got = {}
  local m = Model.new {
    clock = clock, epoch = CAPTURE_EPOCH, strict = true, dialplan_app = "ivr-test",
    emit = function(app, ev)
      got[#got + 1] = { t = clock:now() * 1000, app = app, ev = ev, json = json.encode(ev) }
    end,
  }
  local expected, replies, sockets, rest_responses = {}, {}, {}, {}
  for _, it in ipairs(items) do
    local t = (it.t_ms - (it.elapsed_ms or 0)) / 1000
    if it.kind == "event" then
      if it.websocket_closed then
        local app = it.conn:gsub("#%d+$", "")
        sockets[app] = sockets[app] - 1
        if sockets[app] == 0 then
          clock:run_until(t)
          m:app_disconnected(app)
        end
      elseif it.event.type == "RESTResponse" then
        rest_responses[it.event.request_id] = it.event
      elseif it.event.type ~= "ApplicationReplaced" then
        expected[#expected + 1] = it
      end
    elseif it.method == "GET (WebSocket upgrade)" then
      if it.status == 101 then
        local _, q = split_url(it.path)
        clock:run_until(t)
        sockets[q.app] = (sockets[q.app] or 0) + 1
        m:app_connected(q.app, { subscribeAll = q.subscribeAll })
      end
    else
      local rq = to_request(it)
      if rq then
        clock:run_until(t)
        local status, reason, body, headers = m:request(rq.method, rq.path, rq.query, rq.body)
        replies[#replies + 1] = { it = it, rq = rq, status = status, reason = reason, body = body, headers = headers }
      end
    end
  end
  clock:run_until(clock:now() + 120)
  return {
    model = m, clock = clock, expected = expected, got = got, replies = replies,
    rest_responses = rest_responses,
  }
end

local function is_uuid(s)
  return type(s) == "string" and s:match("^%x+%-%x+%-%x+%-%x+%-%x+$") ~= nil
end

-- Drops what a real server makes up anew each run.
local function normalize(v, key)
  if json.is_empty_array(v) then
    return {}
  end
  if type(v) == "string" then
    if is_uuid(v) then
      return "<uuid>"
    end
    if key == "UNICASTRTP_LOCAL_PORT" and v:match("^%d+$") then
      return "<port>"
    end
    return (v:gsub("%-0x%x+", "-0x<ptr>"))
  end
  if type(v) ~= "table" then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    if k ~= "timestamp" and k ~= "creationtime" then
      out[k] = normalize(x, k)
    end
  end
  return out
end

-- JSON with sorted keys, to compare tables.
local function canonical(v)
  if type(v) ~= "table" then
    return json.encode(v)
  end
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = k
  end
  if #keys > 0 and #v == #keys then
    local parts = {}
    for i = 1, #v do
      parts[i] = canonical(v[i])
    end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = json.encode(tostring(k)) .. ":" .. canonical(v[k])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Replies the model cannot match, by capture seq: the field and why.
local REPLY_DEVIATIONS = {
  [239] = { field = "state", why = "the real server had already started the playback when it built the 201 (a race)" },
  [267] = { field = "state", why = "the real server had already started the recording when it built the 201 (a race)" },
}

-- GET /asterisk/info describes the capturing server's build host and
-- start time, which the model has its own of.
local function normalize_reply(body)
  body = normalize(body)
  if type(body) == "table" and body.build and body.status then
    body.build.kernel, body.build.date, body.status = nil, nil, nil
  end
  if type(body) == "table" and body[1] and type(body[1]) == "table" and body[1].id then
    table.sort(body, function(a, b)
      return a.id < b.id
    end)
  end
  return body
end

-- The object an event is about.
local function subject(ev)
  if ev.channel then
    return ev.channel.id
  elseif ev.peer then
    return ev.peer.id
  elseif ev.playback then
    return "playback " .. ev.playback.id
  elseif ev.recording then
    return "recording " .. ev.recording.name
  elseif ev.bridge then
    return "bridge " .. ev.bridge.id
  end
  return "?"
end

-- Events grouped by subject, server-made playback ids renamed by order.
local function by_subject(list, get)
  local groups, order, uuids = {}, {}, {}
  for _, x in ipairs(list) do
    local ev, app, t = get(x)
    local key = subject(ev)
    local id = key:match("^playback (.*)$")
    if id and is_uuid(id) then
      uuids[id] = uuids[id] or ("playback <server id " .. (#order + 1) .. ">")
      key = uuids[id]
    end
    if not groups[key] then
      groups[key] = {}
      order[#order + 1] = key
    end
    table.insert(groups[key], { ev = ev, app = app, t = t })
  end
  return groups, order
end

-- Events the model does not reproduce: subject, position, what, why.
local EVENT_DEVIATIONS = {
  ["echo-1 #7"] = {
    field = "duration_ms",
    why = "Echo() returned the second digit 80 ms long instead of 120 (jitter of the real echo)",
  },
}

-- The far end was still in Answer() when the first digit arrived; the real
-- Local channel passed it on when Echo() started, ~150 ms later.
local TIMING_DEVIATIONS = {
  ["echo-1-peer #4"] = true,
  ["echo-1 #6"] = true,
}
local TIMING_TOLERANCE_MS = 60

describe("the model replaying the reference captures", function()
  local R

  setup(function()
    R = replay(samples_dir())
  end)

  it("answers every request with the captured status, reason phrase and body", function()
    assert.is_true(#R.replies > 250)
    local bad = {}
    for _, r in ipairs(R.replies) do
      local it = r.it
      local want, have = normalize_reply(it.body), normalize_reply(r.body)
      local dev = REPLY_DEVIATIONS[it.seq]
      if dev and type(have) == "table" then
        have[dev.field] = want[dev.field]
      end
      if type(it.body) == "table" and it.body._binary then
        -- the model keeps no audio: it answers a placeholder WAV
        assert.are.equal("string", type(r.body))
        assert.are.equal("RIFF", r.body:sub(1, 4))
        want, have = nil, nil
      end
      local status, reason = it.status, it.status_text
      if r.rq.over_ws then
        -- The face wraps the reply in a RESTResponse; compare with that.
        local resp = assert(R.rest_responses[it.sent.request_id])
        status, reason = resp.status_code, resp.reason_phrase
        want = normalize_reply(resp.message_body and json.decode(resp.message_body))
      end
      if r.rq.query.variable == "UNICASTRTP_LOCAL_PORT" then
        -- a port the real server picked at random
        want.value, have.value = "<port>", have.value:match("^%d+$") and "<port>"
      end
      local same = canonical(want) == canonical(have)
      if status ~= r.status or reason ~= r.reason or not same then
        bad[#bad + 1] = string.format("seq %d %s %s: want %s %s %s, got %s %s %s",
          it.seq, it.method, it.path or "", tostring(status), tostring(reason),
          canonical(want), tostring(r.status), tostring(r.reason), canonical(have))
      end
    end
    assert.are.same({}, bad)
  end)

  it("gives 201 replies a Location header", function()
    local n = 0
    for _, r in ipairs(R.replies) do
      if r.status == 201 then
        n = n + 1
        local function strip(loc)
          return (loc:gsub("%x+%-%x+%-%x+%-%x+%-%x+", "<uuid>"))
        end
        assert.are.equal(strip(r.it.headers.location), strip(r.headers.Location))
      end
    end
    assert.is_true(n >= 20)
  end)

  it("sends every captured event, in order per subject, with the same fields", function()
    local want, order = by_subject(R.expected, function(x)
      return x.event, x.conn, x.t_ms
    end)
    local have = by_subject(R.got, function(x)
      return x.ev, x.app, x.t
    end)
    local bad, compared = {}, 0
    for _, key in ipairs(order) do
      local w, h = want[key], have[key] or {}
      for i = 1, math.max(#w, #h) do
        local a, b = w[i], h[i]
        local dev = EVENT_DEVIATIONS[key .. " #" .. i]
        local na, nb = a and normalize(a.ev), b and normalize(b.ev)
        if dev and na and nb then
          nb[dev.field] = na[dev.field]
        end
        local sa = a and (a.app .. " " .. canonical(na)) or "(none)"
        local sb = b and (b.app .. " " .. canonical(nb)) or "(none)"
        compared = compared + 1
        if sa ~= sb then
          bad[#bad + 1] = string.format("%s #%d: want %s, got %s", key, i, sa, sb)
        end
      end
    end
    for key, list in pairs(have) do
      if not want[key] then
        bad[#bad + 1] = string.format("unexpected events about %s (first: %s)", key, list[1].ev.type)
      end
    end
    assert.is_true(compared > 400)
    assert.are.same({}, bad)
  end)

  it("sends each event within 60 ms of when the real server sent it", function()
    local want, order = by_subject(R.expected, function(x)
      return x.event, x.conn, x.t_ms
    end)
    local have = by_subject(R.got, function(x)
      return x.ev, x.app, x.t
    end)
    local late, timed = {}, 0
    for _, key in ipairs(order) do
      for i, a in ipairs(want[key]) do
        local b = (have[key] or {})[i]
        if b and not TIMING_DEVIATIONS[key .. " #" .. i] then
          timed = timed + 1
          if math.abs(b.t - a.t) > TIMING_TOLERANCE_MS then
            late[#late + 1] = string.format("%s #%d %s: at %.0f ms, want %d ms", key, i, a.ev.type, b.t, a.t)
          end
        end
      end
    end
    assert.is_true(timed > 400)
    assert.are.same({}, late)
  end)

  it("makes every event a JSON object with type, timestamp, asterisk_id and application", function()
    for _, g in ipairs(R.got) do
      local ev = json.decode(g.json)
      assert.is_string(ev.type)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%+0000$", ev.timestamp)
      assert.are.equal("02:fc:00:00:00:01", ev.asterisk_id)
      assert.are.equal(g.app, ev.application)
    end
  end)

  it("stamps events with the captured wall-clock times", function()
    local want = by_subject(R.expected, function(x)
      return x.event, x.conn, x.t_ms
    end)
    local have = by_subject(R.got, function(x)
      return x.ev, x.app, x.t
    end)
    local function first(list, type_)
      for _, x in ipairs(list) do
        if x.ev.type == type_ then
          return x.ev
        end
      end
    end
    -- StasisStart of wait-1 came at 14:46:26.360 on the real server.
    assert.are.equal("2026-11-27T14:46:26.360+0000", first(want["wait-1"], "StasisStart").timestamp)
    assert.matches("^2026%-11%-27T14:46:26%.3%d%d%+0000$", first(have["wait-1"], "StasisStart").timestamp)
  end)

  it("leaves no channel, timer, playback or recording behind once the calls are over", function()
    local stats = R.model:stats()
    assert.are.same({ channels = 0, bridges = 0, playbacks = 0, recordings = 0, timers = 0 }, stats)
    for name, app in pairs(R.model.apps) do
      assert.are.same({}, app.channels, name)
    end
  end)

  it("answers every error case of status-codes.tsv the way Asterisk did", function()
    local rows = {}
    for line in io.lines(samples_dir() .. "/status-codes.tsv") do
      local step, method, path, status, reason, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)")
      if step and step ~= "step" and tonumber(status) and tonumber(status) >= 400 then
        rows[#rows + 1] = { method = method, path = path, status = tonumber(status), reason = reason, body = body }
      end
    end
    local replies, checked = {}, 0
    for _, r in ipairs(R.replies) do
      replies[#replies + 1] = r
    end
    for _, row in ipairs(rows) do
      local face_only = row.method:match("WebSocket") or row.status == 401 or row.status == 403
      if not face_only then
        local found
        for i, r in ipairs(replies) do
          if r.it.method == row.method and r.it.path == row.path and r.it.status == row.status then
            found = table.remove(replies, i)
            break
          end
        end
        assert(found, "no replayed request for " .. row.method .. " " .. row.path)
        assert.are.equal(row.status, found.status, row.path)
        assert.are.equal(row.reason, found.reason, row.path)
        local want = json.decode(row.body)
        assert.are.same(want, found.body, row.path)
        checked = checked + 1
      end
    end
    assert.is_true(checked >= 70)
  end)
end)
