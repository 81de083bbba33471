-- The simulated Asterisk's channel model, operation by operation: state,
-- replies and events, on the virtual clock. Behaviour the reference
-- captures show is also checked by sim_model_replay_spec.lua, which
-- replays them whole; here each operation gets its own small scene, plus
-- what the captures do not show (the simulated caller, queues, recording
-- limits, resources, load).

local json = require "luari.json"
local Clock = require "luari.sim.clock"
local Model = require "luari.sim.model"

local EPOCH = 1795790780.869

local function project_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  return src:match("^(.*)/tests/spec/[^/]*$") or "."
end

-- The captures: $LUARI_SAMPLES, else shared/ari-samples beside the project.
local function samples_dir()
  local candidates = { project_root() .. "/../shared/ari-samples" }
  local env = os.getenv("LUARI_SAMPLES")
  if env and env ~= "" then
    table.insert(candidates, 1, env)
  end
  for _, dir in ipairs(candidates) do
    local f = io.open(dir .. "/events.jsonl", "r")
    if f then
      f:close()
      return dir
    end
  end
  error("reference captures not found: set LUARI_SAMPLES to the ari-samples directory", 0)
end

-- The first captured event for which pred(event) is true.
local captured_events
local function captured_where(pred)
  if not captured_events then
    captured_events = {}
    for line in io.lines(samples_dir() .. "/events.jsonl") do
      local rec = json.decode(line)
      if rec.event then
        captured_events[#captured_events + 1] = rec.event
      end
    end
  end
  for _, ev in ipairs(captured_events) do
    if pred(ev) then
      return ev
    end
  end
  error("no such captured event")
end

-- The first captured event of `type_` about channel `id`.
local function captured(type_, id)
  return captured_where(function(ev)
    local about = ev.channel or ev.peer
    return ev.type == type_ and about ~= nil and about.id == id
  end)
end

local function keys(t)
  local out = {}
  for k in pairs(t) do
    out[#out + 1] = k
  end
  table.sort(out)
  return out
end

-- A model on a virtual clock with app "luari" connected, and helpers.
local function sim(opts)
  opts = opts or {}
  local s = { clock = Clock.new(), events = {} }
  s.m = Model.new {
    clock = s.clock, strict = opts.strict ~= false, epoch = EPOCH,
    sounds = opts.sounds, sound_default = opts.sound_default, dialplan_app = opts.dialplan_app,
    emit = function(app, ev)
      s.events[#s.events + 1] = { t = s.clock:now(), app = app, ev = ev }
      if opts.on_event then
        opts.on_event(s, app, ev)
      end
    end,
  }
  s.m:app_connected("luari")
  function s.req(method, path, query, body)
    if type(body) == "table" then
      body = json.encode(body)
    end
    return s.m:request(method, path, query or {}, body)
  end
  function s.run(seconds)
    s.clock:run_until(s.clock:now() + (seconds or 0))
  end
  -- Originates to `endpoint` into "luari" and lets the call come up.
  function s.originate(endpoint, id, extra)
    local q = { endpoint = endpoint, app = "luari", channelId = id }
    for k, v in pairs(extra or {}) do
      q[k] = v
    end
    local status, _, body = s.req("POST", "/channels", q)
    assert(status == 200, "originate failed: " .. tostring(status))
    s.run(0)
    return body
  end
  function s.create(endpoint, id, extra)
    local q = { endpoint = endpoint, app = "luari", channelId = id }
    for k, v in pairs(extra or {}) do
      q[k] = v
    end
    local status, _, body = s.req("POST", "/channels/create", q)
    assert(status == 200, "create failed: " .. tostring(status))
    s.run(0)
    return body
  end
  -- Events about a channel (or a playback id, a recording name, a bridge id).
  function s.about(id)
    local out = {}
    for _, e in ipairs(s.events) do
      local ev = e.ev
      local who = (ev.channel and ev.channel.id) or (ev.peer and ev.peer.id)
        or (ev.playback and ev.playback.id) or (ev.recording and ev.recording.name)
        or (ev.bridge and ev.bridge.id)
      if who == id then
        out[#out + 1] = e
      end
    end
    return out
  end
  function s.types(id)
    local out = {}
    for _, e in ipairs(s.about(id)) do
      out[#out + 1] = e.ev.type
    end
    return out
  end
  function s.first(type_, id)
    for _, e in ipairs(id and s.about(id) or s.events) do
      if e.ev.type == type_ then
        return e.ev, e.t, e.app
      end
    end
  end
  function s.all(type_, id)
    local out = {}
    for _, e in ipairs(id and s.about(id) or s.events) do
      if e.ev.type == type_ then
        out[#out + 1] = e
      end
    end
    return out
  end
  function s.clear()
    s.events = {}
  end
  return s
end

local function close(a, b, eps)
  return math.abs(a - b) <= (eps or 1e-6)
end

describe("originate", function()
  it("replies with the Down channel first, then dials and enters Stasis as captured", function()
    local s = sim()
    local status, reason, body = s.req("POST", "/channels", {
      endpoint = "Local/1000@wait", app = "luari", appArgs = "a,b", channelId = "x", otherChannelId = "x-peer",
    })
    assert.are.equal(200, status)
    assert.are.equal("OK", reason)
    assert.are.equal("Down", body.state)
    assert.are.same({ context = "wait", exten = "1000", priority = 1, app_name = "AppDial2", app_data = "(Outgoing Line)" }, body.dialplan)
    assert.are.equal("Local/1000@wait-00000000;1", body.name)
    assert.are.same({}, s.events)
    s.run(0)
    assert.are.same({ "Dial", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart" }, s.types("x"))
    assert.are.same({ "ChannelDialplan", "ChannelStateChange" }, s.types("x-peer"))
    local start = s.first("StasisStart", "x")
    assert.are.same({ "a", "b" }, start.args)
    assert.are.equal("Up", start.channel.state)
    assert.are.equal("luari,a,b", start.channel.dialplan.app_data)
    assert.are.same(keys(captured("StasisStart", "wait-1")), keys(start))
    assert.are.same(keys(captured("StasisStart", "wait-1").channel), keys(start.channel))
    local dial = s.all("Dial", "x")
    assert.are.equal("", dial[1].ev.dialstatus)
    assert.are.equal("ANSWER", dial[2].ev.dialstatus)
    assert.are.equal("1000@wait", dial[2].ev.dialstring)
    s.run(0.49)
    assert.is_nil(s.first("ChannelDialplan", "x-peer") and s.all("ChannelDialplan", "x-peer")[2])
    s.run(0.02)
    local wait = s.all("ChannelDialplan", "x-peer")[2]
    assert.are.equal("Wait", wait.ev.dialplan_app)
    assert.are.equal("3600", wait.ev.dialplan_app_data)
    assert.is_true(close(wait.t, 0.5))
  end)

  it("makes ids from the epoch and a counter, and X;2 for the far half of a given id", function()
    local s = sim()
    local a = s.originate("Local/1000@wait")
    assert.are.equal("1795790780.0", a.id)
    assert.is_not_nil(s.m:channel("1795790780.1"))
    local b = s.originate("Local/1000@wait", "given")
    assert.are.equal("given", b.id)
    assert.are.equal("Local/1000@wait-00000001;2", s.m:channel("given;2").name)
  end)

  it("answers PJSIP and SIP endpoints like @wait, on one channel", function()
    local s = sim()
    local body = s.originate("PJSIP/alice", "p1")
    assert.are.equal("PJSIP/alice-00000000", body.name)
    assert.are.same({ "Dial", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart" }, s.types("p1"))
    assert.are.equal("alice", s.first("Dial", "p1").dialstring)
    assert.are.equal("SIP/bob-00000000", s.originate("SIP/bob", "s1").name)
  end)

  it("refuses an unknown technology with Asterisk's 500 and its error key", function()
    local s = sim()
    local status, reason, body = s.req("POST", "/channels", { endpoint = "Nope/1", app = "luari" })
    assert.are.same({ 500, "Internal Server Error", { error = "Allocation failed" } }, { status, reason, body })
  end)

  it("gives the far half the caller id, and CALLERID() variables set the caller", function()
    local s = sim()
    s.originate("Local/1000@wait", "c1", { callerId = '"Alice" <+1 (555) 123>' })
    local cid = s.first("ChannelCallerId", "c1;2")
    assert.are.same({ name = "Alice", number = "+1555123" }, cid.channel.caller)
    assert.are.equal(0, cid.caller_presentation)
    s.req("POST", "/channels", {}, {
      endpoint = "Local/1000@wait", app = "luari", channelId = "c2",
      variables = { ["CALLERID(name)"] = "Bob", ["CALLERID(num)"] = "200", FOO = "bar" },
    })
    s.run(0)
    assert.are.same({ "ChannelVarset", "ChannelConnectedLine", "ChannelDialplan", "ChannelStateChange" }, s.types("c2;2"))
    assert.are.same({ name = "Bob", number = "200" }, s.m:channel("c2").caller)
    local _, _, v = s.req("GET", "/channels/c2/variable", { variable = "FOO" })
    assert.are.same({ value = "bar" }, v)
  end)

  it("ends an unanswered busy call: Dial BUSY, cause 0, the far half 17", function()
    local s = sim()
    s.originate("Local/1000@busy", "b")
    assert.are.same({ "Dial", "Dial", "ChannelDestroyed" }, s.types("b"))
    assert.are.equal("BUSY", s.all("Dial", "b")[2].ev.dialstatus)
    assert.are.equal(0, s.first("ChannelDestroyed", "b").cause)
    assert.are.equal("Unknown", s.first("ChannelDestroyed", "b").cause_txt)
    assert.are.same({ "ChannelDialplan", "ChannelStateChange", "ChannelHangupRequest", "ChannelHangupRequest", "ChannelDestroyed" }, s.types("b;2"))
    assert.are.equal(17, s.first("ChannelDestroyed", "b;2").cause)
    assert.is_nil(s.first("StasisStart"))
    s.originate("Local/1000@congestion", "g")
    assert.are.equal("CONGESTION", s.all("Dial", "g")[2].ev.dialstatus)
    assert.are.equal(34, s.first("ChannelDestroyed", "g;2").cause)
  end)

  it("gives up on a far end that only rings after the timeout (30 s by default), cause 19", function()
    local s = sim()
    s.originate("Local/1000@noanswer", "n")
    assert.are.equal("Ringing", s.m:channel("n").state)
    assert.are.equal("RINGING", s.all("Dial", "n")[2].ev.dialstatus)
    s.run(29.9)
    assert.is_nil(s.first("ChannelDestroyed", "n"))
    s.run(0.2)
    local _, t = s.first("ChannelDestroyed", "n")
    assert.is_true(close(t, 30))
    assert.are.equal(19, s.first("ChannelDestroyed", "n").cause)
    s.originate("Local/1000@noanswer", "forever", { timeout = "-1" })
    s.run(600)
    assert.is_not_nil(s.m:channel("forever"))
  end)

  it("sends a call into the dialplan without events when no app is given", function()
    local s = sim()
    local status = s.req("POST", "/channels", { endpoint = "Local/1000@wait", extension = "1000", context = "wait" })
    assert.are.equal(200, status)
    s.run(1)
    assert.are.same({}, s.events)
    assert.are.equal("Up", s.m:channel("1795790780.0").state)
  end)

  it("destroys both halves of a call to a context that does not exist, without Dial", function()
    local s = sim()
    s.originate("Local/9@nonexistent-context", "z")
    assert.are.same({ "ChannelDestroyed" }, s.types("z"))
    assert.is_nil(s.m:channel("z;2"))
  end)

  it("reads parameters from a JSON body as well as the query", function()
    local s = sim()
    local status, _, body = s.req("POST", "/channels", {}, { endpoint = "Local/1000@wait", app = "luari", channelId = "j", timeout = 10 })
    assert.are.equal(200, status)
    assert.are.equal("j", body.id)
    local st, reason, b = s.req("POST", "/channels", { endpoint = "Local/1000@wait", app = "luari" }, "{bad json")
    assert.are.same({ 400, "Bad Request", { message = "Error parsing request body" } }, { st, reason, b })
  end)
end)

describe("create and dial", function()
  it("puts a created channel into Stasis at once, Down, and dials it on /dial", function()
    local s = sim()
    local body = s.create("Local/1000@wait", "d", { appArgs = "x" })
    assert.are.same({ "", "" }, { body.dialplan.app_name, body.dialplan.app_data })
    assert.are.same({ "ChannelDialplan", "ChannelVarset", "StasisStart" }, s.types("d"))
    assert.are.equal("Down", s.first("StasisStart", "d").channel.state)
    assert.are.same({}, s.types("d;2"))
    s.clear()
    assert.are.equal(204, (s.req("POST", "/channels/d/dial", { timeout = "20" })))
    assert.are.same({}, s.events)
    s.run(0)
    assert.are.same({ "Dial", "ChannelStateChange", "Dial" }, s.types("d"))
    local dials = s.all("Dial", "d")
    assert.are.same({ "", "1000@wait" }, { dials[1].ev.dialstatus, dials[1].ev.dialstring })
    assert.are.same({ "ANSWER", "" }, { dials[2].ev.dialstatus, dials[2].ev.dialstring })
    local status, _, err = s.req("POST", "/channels/d/dial")
    assert.are.same({ 409, { message = "Channel is not in the 'Down' state" } }, { status, err })
  end)

  it("sets create's variables with events, before StasisStart", function()
    local s = sim()
    s.req("POST", "/channels/create", {}, { endpoint = "Local/1000@wait", app = "luari", channelId = "v", variables = { A = "1" } })
    s.run(0)
    assert.are.same({ "ChannelVarset", "ChannelDialplan", "ChannelVarset", "StasisStart" }, s.types("v"))
    assert.are.equal("A", s.first("ChannelVarset", "v").variable)
  end)

  it("refuses to answer or play to a channel that is not answered yet (412)", function()
    local s = sim()
    s.create("Local/1000@wait", "d")
    for _, r in ipairs({ { "POST", "/channels/d/answer" }, { "POST", "/channels/d/play", { media = "sound:beep" } },
      { "POST", "/channels/d/hold" }, { "POST", "/channels/d/dtmf", { dtmf = "1" } } }) do
      local status, reason, body = s.req(r[1], r[2], r[3])
      assert.are.same({ 412, "Precondition Failed", { message = "Channel in invalid state" } }, { status, reason, body })
    end
  end)

  it("leaves a created channel Down in Stasis when the far end is busy", function()
    local s = sim()
    s.create("Local/1000@busy", "d")
    s.req("POST", "/channels/d/dial")
    s.run(5)
    assert.are.same({ "", "BUSY" }, { s.all("Dial", "d")[1].ev.dialstatus, s.all("Dial", "d")[2].ev.dialstatus })
    local _, _, ch = s.req("GET", "/channels/d")
    assert.are.equal("Down", ch.state)
    assert.is_nil(s.first("StasisEnd", "d"))
  end)

  it("hangs a created channel up itself when the dial times out (cause 19)", function()
    local s = sim()
    s.create("Local/1000@noanswer", "d")
    s.req("POST", "/channels/d/dial", { timeout = "3" })
    s.run(2.9)
    assert.are.equal("Ringing", s.m:channel("d").state)
    s.run(0.2)
    assert.are.same({ "ChannelDialplan", "ChannelVarset", "StasisStart", "Dial", "ChannelStateChange", "Dial",
      "ChannelHangupRequest", "StasisEnd", "ChannelVarset", "ChannelDestroyed" }, s.types("d"))
    local req = s.first("ChannelHangupRequest", "d")
    assert.are.same({ 32, true }, { req.cause, req.soft })
    assert.are.equal(19, s.first("ChannelDestroyed", "d").cause)
  end)

  it("loses a dialed channel when the far end hangs up (@hello)", function()
    local s = sim()
    s.create("Local/1000@hello", "h")
    s.req("POST", "/channels/h/dial")
    s.run(3)
    local t_end = select(2, s.first("ChannelDestroyed", "h"))
    assert.is_true(close(t_end, 0.5 + 1.404))
    assert.are.same({ 16 }, { s.first("ChannelHangupRequest", "h").cause })
    assert.is_nil(s.first("ChannelHangupRequest", "h").soft)
  end)

  it("kills a channel created without an app at once", function()
    local s = sim()
    local status, _, body = s.req("POST", "/channels/create", { endpoint = "Local/1000@wait" })
    assert.are.equal(200, status)
    s.run(0)
    assert.is_nil(s.m:channel(body.id))
    assert.are.same({}, s.events)
  end)
end)

describe("the simulated caller", function()
  it("enters Stasis ringing, with args, caller and dialplan, like a call from the dialplan", function()
    local s = sim()
    local id = s.m:incoming { app = "luari", args = { "menu", "x" }, caller = { number = "+15551234", name = "Alice" }, exten = "100", context = "from-pstn" }
    assert.are.same({ "StasisStart" }, s.types(id))
    local start = s.first("StasisStart", id)
    assert.are.same({ "menu", "x" }, start.args)
    assert.are.equal("Ring", start.channel.state)
    assert.are.same({ name = "Alice", number = "+15551234" }, start.channel.caller)
    assert.are.same({ context = "from-pstn", exten = "100", priority = 1, app_name = "Stasis", app_data = "luari,menu,x" }, start.channel.dialplan)
    assert.are.equal("PJSIP/sim-00000000", start.channel.name)
    assert.are.same(keys(captured("StasisStart", "in-1")), keys(start))
    assert.are.equal("PJSIP/alice-00000001", s.m:channel(s.m:incoming { app = "luari", endpoint = "PJSIP/alice", id = "given" }).name)
  end)

  it("is answered with ChannelStateChange Up, once", function()
    local s = sim()
    local id = s.m:incoming { app = "luari" }
    assert.are.equal(204, (s.req("POST", "/channels/" .. id .. "/ring")))
    assert.are.equal(204, (s.req("POST", "/channels/" .. id .. "/answer")))
    assert.are.equal(204, (s.req("POST", "/channels/" .. id .. "/answer")))
    assert.are.same({ "StasisStart", "ChannelStateChange" }, s.types(id))
    assert.are.equal("Up", s.m:channel(id).state)
  end)

  it("presses keys: ChannelDtmfReceived on its channel", function()
    local s = sim()
    local id = s.m:incoming { app = "luari" }
    assert.is_true(s.m:caller_dtmf(id, "5", 120))
    s.m:caller_dtmf(id, "#")
    local d = s.all("ChannelDtmfReceived", id)
    assert.are.same({ "5", 120, "#", 100 }, { d[1].ev.digit, d[1].ev.duration_ms, d[2].ev.digit, d[2].ev.duration_ms })
    assert.are.same({ nil, "no such channel" }, { s.m:caller_dtmf("nope", "1") })
  end)

  it("hangs up: a plain hangup request and StasisEnd, then nothing more", function()
    local s = sim()
    local id = s.m:incoming { app = "luari" }
    s.req("POST", "/channels/" .. id .. "/play", { media = "sound:demo-congrats" })
    s.run(1)
    s.m:caller_hangup(id)
    s.run(5)
    assert.are.same({ "StasisStart", "ChannelHangupRequest", "StasisEnd" }, s.types(id))
    local req = s.first("ChannelHangupRequest", id)
    assert.are.same({ 16 }, { req.cause, req.soft })
    local pb = s.all("PlaybackFinished")[1]
    assert.are.equal("failed", pb.ev.playback.state)
    assert.is_true(pb.t <= select(2, s.first("StasisEnd", id)))
    assert.are.equal(404, (s.req("GET", "/channels/" .. id)))
    assert.are.same({ channels = 0, bridges = 0, playbacks = 0, recordings = 0, timers = 0 }, s.m:stats())
  end)

  it("is hung up by the app: soft request (cause 32) and StasisEnd only", function()
    local s = sim()
    local id = s.m:incoming { app = "luari" }
    assert.are.equal(204, (s.req("DELETE", "/channels/" .. id, { reason = "congestion" })))
    assert.are.same({ "StasisStart", "ChannelHangupRequest", "StasisEnd" }, s.types(id))
    assert.are.same({ 32, true }, { s.first("ChannelHangupRequest", id).cause, s.first("ChannelHangupRequest", id).soft })
  end)

  it("leaves the app on /continue and is not heard of again", function()
    local s = sim()
    local id = s.m:incoming { app = "luari" }
    s.req("POST", "/channels/" .. id .. "/answer")
    assert.are.equal(204, (s.req("POST", "/channels/" .. id .. "/continue", { context = "sales" })))
    local status, _, body = s.req("POST", "/channels/" .. id .. "/answer")
    assert.are.same({ 409, { message = "Channel not in Stasis application" } }, { status, body })
    assert.are.equal(200, (s.req("GET", "/channels/" .. id)))
    s.m:caller_hangup(id)
    assert.are.same({ "StasisStart", "ChannelStateChange", "StasisEnd" }, s.types(id))
    assert.are.equal(404, (s.req("GET", "/channels/" .. id)))
  end)

  it("has RTP statistics; a Local channel has none (403)", function()
    local s = sim()
    local id = s.m:incoming { app = "luari" }
    s.run(10)
    local status, _, stat = s.req("GET", "/channels/" .. id .. "/rtp_statistics")
    assert.are.equal(200, status)
    assert.are.equal(id, stat.channel_uniqueid)
    assert.are.equal(500, stat.txcount)
    s.originate("Local/1000@wait", "l")
    local st, reason = s.req("GET", "/channels/l/rtp_statistics")
    assert.are.same({ 403, "Forbidden" }, { st, reason })
  end)

  it("is sent elsewhere by /redirect (the call ends); a Local channel stays", function()
    local s = sim()
    local id = s.m:incoming { app = "luari" }
    s.req("POST", "/channels/" .. id .. "/answer")
    assert.are.equal(204, (s.req("POST", "/channels/" .. id .. "/redirect", { endpoint = "PJSIP/bob" })))
    assert.is_nil(s.m:channel(id))
    s.originate("Local/1000@wait", "l")
    s.clear()
    assert.are.equal(204, (s.req("POST", "/channels/l/redirect", { endpoint = "Local/2@echo" })))
    assert.are.same({}, s.events)
  end)
end)

describe("hanging up", function()
  local CAUSES = {
    normal = { 16, "Normal Clearing" }, busy = { 17, "User busy" }, congestion = { 34, "Circuit/channel congestion" },
    no_answer = { 19, "User alerting, no answer" }, timeout = { 18, "No user responding" },
    rejected = { 21, "Call Rejected" }, unallocated = { 1, "Unallocated (unassigned) number" },
    normal_unspecified = { 31, "Normal, unspecified" }, number_incomplete = { 28, "Invalid number format" },
    codec_mismatch = { 58, "Bearer capability not available" }, interworking = { 127, "Interworking, unspecified" },
    failure = { 38, "Network out of order" }, answered_elsewhere = { 26, "Answered elsewhere" },
  }

  it("destroys both halves with the reason's cause, in the captured order", function()
    for reason, want in pairs(CAUSES) do
      local s = sim()
      s.originate("Local/1000@wait", "h")
      s.clear()
      s.req("DELETE", "/channels/h", { reason = reason })
      assert.are.same({ "ChannelHangupRequest", "StasisEnd", "ChannelVarset", "ChannelDestroyed" }, s.types("h"))
      assert.are.same(want, { s.first("ChannelDestroyed", "h").cause, s.first("ChannelDestroyed", "h").cause_txt }, reason)
      assert.are.same({ "ChannelHangupRequest", "ChannelHangupRequest", "ChannelDestroyed" }, s.types("h;2"))
      assert.are.equal(want[1], s.first("ChannelHangupRequest", "h;2").cause)
      assert.are.equal("AppDial2", s.first("ChannelDestroyed", "h").channel.dialplan.app_name)
    end
  end)

  it("takes any reason_code, and refuses bad reasons", function()
    local s = sim()
    s.originate("Local/1000@wait", "h")
    local status, reason, body = s.req("DELETE", "/channels/h", { reason_code = "abc" })
    assert.are.same({ 400, "Invalid Reason Code", { message = "Invalid reason for hangup reason code provided" } }, { status, reason, body })
    status, reason = s.req("DELETE", "/channels/h", { reason = "nope" })
    assert.are.same({ 400, "Invalid Reason" }, { status, reason })
    s.req("DELETE", "/channels/h", { reason_code = "21" })
    assert.are.equal(21, s.first("ChannelDestroyed", "h").cause)
  end)

  it("follows the far end's hang-up in the captured order, failing a running playback", function()
    local s = sim()
    s.originate("Local/1000@hangup-soon", "h")
    s.req("POST", "/channels/h/play", { media = "sound:demo-congrats", playbackId = "p" })
    s.req("POST", "/channels/h/play", { media = "sound:beep", playbackId = "queued" })
    s.clear()
    s.run(3)
    local order = {}
    for _, e in ipairs(s.events) do
      local ev = e.ev
      local who = ev.channel and ev.channel.id or ev.playback.id
      order[#order + 1] = ev.type .. " " .. who
    end
    assert.are.same({
      "PlaybackStarted p", "ChannelDialplan h;2", "ChannelDialplan h;2", "ChannelHangupRequest h;2",
      "ChannelHangupRequest h", "ChannelDestroyed h;2", "PlaybackFinished p", "StasisEnd h",
      "ChannelVarset h", "ChannelDestroyed h",
    }, order)
    assert.are.equal("failed", s.first("PlaybackFinished").playback.state)
    assert.is_true(close(select(2, s.first("ChannelDestroyed", "h")), 2.0))
    assert.are.equal(404, (s.req("GET", "/playbacks/queued")))
  end)

  it("treats DELETE of a far half as the far end hanging up", function()
    local s = sim()
    s.create("Local/1000@wait", "d")
    s.req("POST", "/channels/d/dial")
    s.run(1)
    s.clear()
    assert.are.equal(204, (s.req("DELETE", "/channels/d;2")))
    assert.are.same({ "ChannelHangupRequest", "StasisEnd", "ChannelVarset", "ChannelDestroyed" }, s.types("d"))
    assert.are.same({ 16 }, { s.first("ChannelHangupRequest", "d").cause, s.first("ChannelHangupRequest", "d").soft })
  end)
end)

describe("playbacks", function()
  it("plays hello-world for 1.404 s: 201 queued, PlaybackStarted, PlaybackFinished done", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    s.clear()
    local status, reason, body, headers = s.req("POST", "/channels/c/play", { media = "sound:hello-world" })
    assert.are.same({ 201, "Created", "queued" }, { status, reason, body.state })
    assert.are.equal("/ari/playbacks/" .. body.id, headers.Location)
    assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", body.id)
    assert.are.same({}, s.events)
    s.run(0)
    local _, t0 = s.first("PlaybackStarted")
    local get_status, _, got = s.req("GET", "/playbacks/" .. body.id)
    assert.are.equal(200, get_status)
    assert.are.equal("playing", got.state)
    s.run(2)
    local fin, t1 = s.first("PlaybackFinished")
    assert.are.equal("done", fin.playback.state)
    assert.is_true(close(t1 - t0, 1.404))
    assert.are.equal(404, (s.req("GET", "/playbacks/" .. body.id)))
    local real = captured_where(function(ev)
      return ev.type == "PlaybackFinished" and ev.playback.id == "pb-fixed-1"
    end)
    assert.are.same(keys(real), keys(fin))
    assert.are.same(keys(real.playback), keys(fin.playback))
  end)

  it("plays the items of a list one after another with PlaybackContinuing", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    local _, _, body = s.req("POST", "/channels/c/play", { media = "sound:hello-world,digits:42", playbackId = "l" })
    assert.are.same({ "sound:hello-world", "digits:42" }, { body.media_uri, body.next_media_uri })
    s.run(5)
    local seq = {}
    for _, e in ipairs(s.about("l")) do
      seq[#seq + 1] = { e.ev.type, e.ev.playback.media_uri, e.ev.playback.next_media_uri or "", e.ev.playback.state, math.floor(e.t * 1000 + 0.5) }
    end
    assert.are.same({
      { "PlaybackStarted", "sound:hello-world", "digits:42", "playing", 0 },
      { "PlaybackContinuing", "sound:hello-world", "digits:42", "continuing", 1404 },
      { "PlaybackStarted", "digits:42", "", "playing", 1404 },
      { "PlaybackFinished", "digits:42", "", "done", 1404 + 802 + 747 },
    }, seq)
  end)

  it("takes the length of digits:, number: and characters: from digits/ and letters/", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    local want = { ["digits:123"] = 0.911 + 0.747 + 0.838, ["number:42"] = 0.948 + 0.747,
      ["characters:abc"] = 0.615 + 0.741 + 0.865, ["number:1200"] = 0.911 + 0.893 + 0.747 + 0.849 }
    for media, len in pairs(want) do
      s.clear()
      local t0 = s.clock:now()
      s.req("POST", "/channels/c/play", { media = media })
      s.run(10)
      assert.is_true(close(select(2, s.first("PlaybackFinished")) - t0, len), media)
    end
  end)

  it("queues a second playback until the first has finished", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    s.req("POST", "/channels/c/play", { media = "sound:hello-world", playbackId = "one" })
    s.req("POST", "/channels/c/play", { media = "sound:beep", playbackId = "two" })
    s.run(0)
    local _, _, two = s.req("GET", "/playbacks/two")
    assert.are.equal("queued", two.state)
    s.run(3)
    local _, t_two = s.first("PlaybackStarted", "two")
    assert.is_true(close(t_two, 1.404))
    assert.is_true(close(select(2, s.first("PlaybackFinished", "two")), 1.404 + 0.425))
  end)

  it("finishes a queued playback that was stopped as done when its turn comes", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    s.req("POST", "/channels/c/play", { media = "sound:hello-world", playbackId = "one" })
    s.req("POST", "/channels/c/play", { media = "sound:beep", playbackId = "two" })
    s.run(0)
    assert.are.equal(204, (s.req("DELETE", "/playbacks/two")))
    s.run(3)
    assert.are.same({ "PlaybackFinished" }, s.types("two"))
    assert.are.equal("done", s.first("PlaybackFinished", "two").playback.state)
    assert.is_true(close(select(2, s.first("PlaybackFinished", "two")), 1.404))
  end)

  it("is stopped with PlaybackFinished done; tone: plays until then", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    s.req("POST", "/channels/c/play", { media = "tone:ring", playbackId = "t" })
    s.run(120)
    assert.is_nil(s.first("PlaybackFinished", "t"))
    assert.are.equal(204, (s.req("DELETE", "/playbacks/t")))
    assert.are.equal("done", s.first("PlaybackFinished", "t").playback.state)
    assert.are.same({ 404, { message = "Playback not found" } }, { select(1, s.req("DELETE", "/playbacks/t")), select(3, s.req("DELETE", "/playbacks/t")) })
  end)

  it("pauses, unpauses (a new PlaybackStarted), restarts and skips", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    s.req("POST", "/channels/c/play", { media = "sound:demo-congrats", playbackId = "p", skipms = "5000" })
    s.run(10)
    assert.are.equal(204, (s.req("POST", "/playbacks/p/control", { operation = "pause" })))
    assert.are.equal("paused", select(3, s.req("GET", "/playbacks/p")).state)
    s.run(100)
    assert.are.equal(1, #s.all("PlaybackStarted", "p"))
    s.req("POST", "/playbacks/p/control", { operation = "unpause" })
    assert.are.equal(2, #s.all("PlaybackStarted", "p"))
    s.req("POST", "/playbacks/p/control", { operation = "forward" }) -- 20.277 s left -> 15.277
    s.req("POST", "/playbacks/p/control", { operation = "reverse" }) -- back to 20.277
    s.req("POST", "/playbacks/p/control", { operation = "forward" })
    local t = s.clock:now()
    s.run(60)
    assert.is_true(close(select(2, s.first("PlaybackFinished", "p")) - t, 30.277 - 10 - 5, 1e-3))
    s.req("POST", "/channels/c/play", { media = "sound:hello-world", playbackId = "r" })
    s.run(1)
    s.req("POST", "/playbacks/r/control", { operation = "restart" })
    local t_restart = s.clock:now()
    s.run(5)
    assert.is_true(close(select(2, s.first("PlaybackFinished", "r")) - t_restart, 1.404, 1e-3))
  end)

  it("answers control errors as Asterisk does", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    s.req("POST", "/channels/c/play", { media = "digits:123456789", playbackId = "d" })
    s.req("POST", "/channels/c/play", { media = "sound:beep", playbackId = "q" })
    s.run(0)
    assert.are.same({ 400, { message = "Invalid operation bogus" } }, { select(1, s.req("POST", "/playbacks/nope/control", { operation = "bogus" })), select(3, s.req("POST", "/playbacks/nope/control", { operation = "bogus" })) })
    assert.are.same({ 400, { message = "Missing operation" } }, { select(1, s.req("POST", "/playbacks/d/control")), select(3, s.req("POST", "/playbacks/d/control")) })
    assert.are.same({ 404, { message = "Playback not found" } }, { select(1, s.req("POST", "/playbacks/nope/control", { operation = "pause" })), select(3, s.req("POST", "/playbacks/nope/control", { operation = "pause" })) })
    assert.are.same({ 500, { message = "Could not pause playback" } }, { select(1, s.req("POST", "/playbacks/d/control", { operation = "pause" })), select(3, s.req("POST", "/playbacks/d/control", { operation = "pause" })) })
    assert.are.same({ 409, { message = "Can only pause while media is playing" } }, { select(1, s.req("POST", "/playbacks/q/control", { operation = "pause" })), select(3, s.req("POST", "/playbacks/q/control", { operation = "pause" })) })
    assert.are.equal(204, (s.req("POST", "/playbacks/q/control", { operation = "restart" })))
  end)

  it("fails a missing file at once, and vanishes for a bad scheme, number or recording", function()
    local s = sim { sounds = { ["custom/gone"] = false } }
    s.originate("Local/1000@wait", "c")
    s.req("POST", "/channels/c/play", { media = "sound:custom/gone", playbackId = "m" })
    s.run(0)
    assert.are.same({ "PlaybackStarted", "PlaybackFinished" }, s.types("m"))
    assert.are.equal("failed", s.first("PlaybackFinished", "m").playback.state)
    for _, media in ipairs({ "bogus:thing", "number:abc", "recording:none" }) do
      s.clear()
      local _, _, body = s.req("POST", "/channels/c/play", { media = media })
      assert.are.equal("queued", body.state)
      s.run(30)
      assert.are.same({ "PlaybackStarted" }, s.types(body.id), media)
      assert.are.equal(404, (s.req("GET", "/playbacks/" .. body.id)))
    end
    -- the channel is free again after a vanished playback
    s.clear()
    s.req("POST", "/channels/c/play", { media = "sound:beep", playbackId = "after" })
    s.run(1)
    assert.are.same({ "PlaybackStarted", "PlaybackFinished" }, s.types("after"))
  end)

  it("reuses the id of a finished playback, and skips offsetms of the first item", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    s.req("POST", "/channels/c/play", { media = "sound:hello-world", playbackId = "same" })
    s.run(2)
    assert.are.equal(201, (s.req("POST", "/channels/c/play/same", { media = "sound:hello-world", offsetms = "1000" })))
    local t0 = s.clock:now()
    s.run(2)
    assert.are.equal(2, #s.all("PlaybackFinished", "same"))
    assert.is_true(close(s.all("PlaybackFinished", "same")[2].t - t0, 0.404))
  end)

  it("keeps playing when DTMF arrives", function()
    local s = sim()
    s.originate("Local/1000@dtmf", "c")
    s.req("POST", "/channels/c/play", { media = "sound:demo-congrats", playbackId = "long" })
    s.run(5)
    assert.are.equal(4, #s.all("ChannelDtmfReceived", "c"))
    assert.is_nil(s.first("PlaybackFinished", "long"))
  end)

  it("answers 500 to play without media and 409 to a channel not in Stasis", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    local status, _, body = s.req("POST", "/channels/c/play")
    assert.are.same({ 500, { message = "Failed to queue media for playback" } }, { status, body })
    status, _, body = s.req("POST", "/channels/c;2/play", { media = "sound:beep" })
    assert.are.same({ 409, { message = "Channel not in Stasis application" } }, { status, body })
  end)

  it("uses the sounds table: overrides, false for missing, sound_default for the rest", function()
    local s = sim { sounds = { ["hello-world"] = 3.0 }, sound_default = 7.5 }
    s.originate("Local/1000@wait", "c")
    s.req("POST", "/channels/c/play", { media = "sound:hello-world,sound:my-prompt,sound:no-such-file", playbackId = "p" })
    s.run(20)
    local fin, t = s.first("PlaybackFinished", "p")
    assert.are.equal("failed", fin.playback.state)
    assert.are.equal("sound:no-such-file", fin.playback.media_uri)
    assert.is_true(close(t, 10.5))
    local strict = sim { sound_default = false }
    strict.originate("Local/1000@wait", "c")
    strict.req("POST", "/channels/c/play", { media = "sound:my-prompt", playbackId = "p" })
    strict.run(1)
    assert.are.equal("failed", strict.first("PlaybackFinished", "p").playback.state)
  end)
end)

describe("recordings", function()
  local function recording_scene(endpoint)
    local s = sim()
    s.originate(endpoint or "Local/1000@tone", "c")
    s.run(1) -- the far end has started its tone
    s.clear()
    return s
  end

  it("stops at maxDurationSeconds on a whole second, as Asterisk's time() check does", function()
    local s = recording_scene()
    local status, _, body, headers = s.req("POST", "/channels/c/record", { name = "r1", format = "wav", maxDurationSeconds = "2" })
    assert.are.same({ 201, "queued", "/ari/recordings/live/r1" }, { status, body.state, headers.Location })
    s.run(0)
    local _, _, live = s.req("GET", "/recordings/live/r1")
    assert.are.equal("recording", live.state)
    s.run(5)
    local fin, t = s.first("RecordingFinished", "r1")
    assert.are.same({ "done", 2 }, { fin.recording.state, fin.recording.duration })
    -- started at wall x.869 + 1 s: the check passes at the second boundary after 2 s
    assert.is_true(close(t, 1 + 2.131, 1e-3))
    assert.are.same({ name = "r1", format = "wav" }, select(3, s.req("GET", "/recordings/stored/r1")))
    assert.are.equal(404, (s.req("GET", "/recordings/live/r1")))
  end)

  it("ends after 4 s without any frame (a far end that only waits), duration 0", function()
    local s = recording_scene("Local/1000@wait")
    s.req("POST", "/channels/c/record", { name = "silent", format = "wav", maxDurationSeconds = "2" })
    s.run(10)
    local fin, t = s.first("RecordingFinished", "silent")
    assert.are.equal(0, fin.recording.duration)
    assert.is_true(close(t, 1 + 4))
  end)

  it("ends after maxSilenceSeconds of a silent caller and reports talk and silence", function()
    local s = sim()
    local id = s.m:incoming { app = "luari" }
    s.req("POST", "/channels/" .. id .. "/record", { name = "msg", format = "wav", maxSilenceSeconds = "3", maxDurationSeconds = "60" })
    s.run(0)
    assert.are.equal("Up", s.m:channel(id).state) -- recording answers the call
    s.run(5)
    s.m:caller_audio(id, "silence")
    s.run(10)
    local fin, t = s.first("RecordingFinished", "msg")
    -- silence must last longer than 3 s: one more 20 ms frame
    assert.is_true(close(t, 8.02))
    -- 8 s of audio less the trailing silence but 200 ms, as Asterisk counts
    assert.are.same({ 6, 6, 0 }, { fin.recording.duration, fin.recording.talking_duration, fin.recording.silence_duration })
    s.req("POST", "/channels/" .. id .. "/play", { media = "recording:msg", playbackId = "back" })
    s.run(10)
    assert.is_true(close(select(2, s.first("PlaybackFinished", "back")) - select(2, s.first("PlaybackStarted", "back")), 5.2))
  end)

  it("ends on the terminateOn digit", function()
    local s = sim()
    local id = s.m:incoming { app = "luari", state = "Up" }
    s.req("POST", "/channels/" .. id .. "/record", { name = "t", format = "wav", terminateOn = "#" })
    s.run(3)
    s.m:caller_dtmf(id, "1")
    assert.is_nil(s.first("RecordingFinished", "t"))
    s.m:caller_dtmf(id, "#")
    assert.are.equal(3, s.first("RecordingFinished", "t").recording.duration)
    s.req("POST", "/channels/" .. id .. "/record", { name = "a", format = "wav", terminateOn = "any" })
    s.run(1)
    s.m:caller_dtmf(id, "7")
    assert.is_not_nil(s.first("RecordingFinished", "a"))
  end)

  it("does not count a pause against maxDurationSeconds", function()
    local s = recording_scene()
    s.req("POST", "/channels/c/record", { name = "p", format = "wav", maxDurationSeconds = "3" })
    s.run(1)
    s.req("POST", "/recordings/live/p/pause")
    s.run(10)
    s.req("DELETE", "/recordings/live/p/pause")
    s.run(10)
    local fin, t = s.first("RecordingFinished", "p")
    assert.are.equal(3, fin.recording.duration)
    assert.is_true(close(t, 1 + 3.131 + 10, 1e-3))
  end)

  it("is stopped, cancelled (no file), paused (not counted) and muted", function()
    local s = recording_scene()
    s.req("POST", "/channels/c/record", { name = "p", format = "wav" })
    s.run(2)
    assert.are.equal(204, (s.req("POST", "/recordings/live/p/pause")))
    assert.are.equal("paused", select(3, s.req("GET", "/recordings/live/p")).state)
    s.run(10)
    s.req("DELETE", "/recordings/live/p/pause")
    s.req("POST", "/recordings/live/p/mute")
    s.run(1.5)
    assert.are.equal(204, (s.req("POST", "/recordings/live/p/stop")))
    assert.are.equal(3, s.first("RecordingFinished", "p").recording.duration)
    s.req("POST", "/channels/c/record", { name = "x", format = "wav", ifExists = "overwrite" })
    s.run(2)
    assert.are.equal(204, (s.req("DELETE", "/recordings/live/x")))
    assert.are.equal("done", s.first("RecordingFinished", "x").recording.state)
    assert.are.equal(404, (s.req("GET", "/recordings/stored/x")))
    assert.are.same({ 404, { message = "Recording not found" } }, { select(1, s.req("POST", "/recordings/live/x/stop")), select(3, s.req("POST", "/recordings/live/x/stop")) })
  end)

  it("starts after a playback that is running, as Asterisk runs commands in turn", function()
    local s = recording_scene()
    s.req("POST", "/channels/c/play", { media = "sound:beep" })
    s.req("POST", "/channels/c/record", { name = "after", format = "wav", maxDurationSeconds = "1" })
    s.run(0)
    assert.are.equal("queued", select(3, s.req("GET", "/recordings/live/after")).state)
    s.run(5)
    assert.is_true(close(select(2, s.first("RecordingStarted", "after")), 1.425))
  end)

  it("refuses a recording that exists, an unknown format and a bad ifExists", function()
    local s = recording_scene()
    s.req("POST", "/channels/c/record", { name = "r", format = "wav" })
    local status, _, body = s.req("POST", "/channels/c/record", { name = "r", format = "wav", ifExists = "overwrite" })
    assert.are.same({ 409, { message = "Recording 'r' already exists and can not be overwritten" } }, { status, body })
    s.run(1)
    s.req("POST", "/recordings/live/r/stop")
    assert.are.equal(409, (s.req("POST", "/channels/c/record", { name = "r", format = "wav" })))
    assert.are.same({ 422, { message = "specified format is unknown on this system" } }, { select(1, s.req("POST", "/channels/c/record", { name = "q", format = "xyz" })), select(3, s.req("POST", "/channels/c/record", { name = "q", format = "xyz" })) })
    assert.are.same({ 400, { message = "ifExists invalid" } }, { select(1, s.req("POST", "/channels/c/record", { name = "q", format = "wav", ifExists = "x" })), select(3, s.req("POST", "/channels/c/record", { name = "q", format = "wav", ifExists = "x" })) })
    assert.are.same({ 400, { message = "terminateOn invalid" } }, { select(1, s.req("POST", "/channels/c/record", { name = "q", format = "wav", terminateOn = "5" })), select(3, s.req("POST", "/channels/c/record", { name = "q", format = "wav", terminateOn = "5" })) })
    assert.are.same({ 400, { message = "max_duration_seconds cannot be negative" } }, { select(1, s.req("POST", "/channels/c/record", { name = "q", format = "wav", maxDurationSeconds = "-1" })), select(3, s.req("POST", "/channels/c/record", { name = "q", format = "wav", maxDurationSeconds = "-1" })) })
  end)

  it("appends to a stored recording with ifExists=append, and plays it back for its length", function()
    local s = recording_scene()
    s.req("POST", "/channels/c/record", { name = "ap", format = "wav" })
    s.run(2)
    s.req("POST", "/recordings/live/ap/stop")
    s.req("POST", "/channels/c/record", { name = "ap", format = "wav", ifExists = "append" })
    s.run(3)
    s.req("POST", "/recordings/live/ap/stop")
    s.clear()
    s.req("POST", "/channels/c/play", { media = "recording:ap", playbackId = "back" })
    local t0 = s.clock:now()
    s.run(10)
    assert.is_true(close(select(2, s.first("PlaybackFinished", "back")) - t0, 5))
  end)

  it("lists, copies, deletes and serves stored recordings", function()
    local s = recording_scene()
    s.req("POST", "/channels/c/record", { name = "b", format = "gsm" })
    s.req("POST", "/channels/c/record", { name = "a", format = "wav" })
    s.run(1)
    s.req("POST", "/recordings/live/b/stop")
    s.run(1)
    s.req("POST", "/recordings/live/a/stop")
    assert.are.same({ { name = "a", format = "wav" }, { name = "b", format = "gsm" } }, select(3, s.req("GET", "/recordings/stored")))
    local status, _, body = s.req("POST", "/recordings/stored/a/copy", { destinationRecordingName = "c" })
    assert.are.same({ 200, { name = "c", format = "wav" } }, { status, body })
    assert.are.equal(409, (s.req("POST", "/recordings/stored/a/copy", { destinationRecordingName = "b" })))
    local st, _, file, headers = s.req("GET", "/recordings/stored/a/file")
    assert.are.same({ 200, "RIFF", "audio/wav" }, { st, file:sub(1, 4), headers["Content-Type"] })
    assert.are.equal(204, (s.req("DELETE", "/recordings/stored/a")))
    assert.are.equal(404, (s.req("DELETE", "/recordings/stored/a")))
  end)

  it("fails to record a bridged channel with RecordingFailed", function()
    local s = recording_scene()
    s.req("POST", "/bridges", { bridgeId = "b" })
    s.req("POST", "/bridges/b/addChannel", { channel = "c" })
    local status = s.req("POST", "/channels/c/record", { name = "br", format = "wav" })
    assert.are.equal(201, status)
    s.run(0)
    local failed = s.first("RecordingFailed", "br")
    assert.are.same({ "failed", "Cannot record channel while in bridge" }, { failed.recording.state, failed.recording.cause })
    assert.are.equal(404, (s.req("GET", "/recordings/live/br")))
  end)

  it("finishes the recording (done) before StasisEnd when the far end hangs up", function()
    local s = recording_scene("Local/1000@hangup-soon")
    s.req("POST", "/channels/c/record", { name = "h", format = "wav", maxDurationSeconds = "10" })
    s.run(5)
    local types = {}
    for _, e in ipairs(s.events) do
      types[#types + 1] = e.ev.type
    end
    assert.are.same({ "RecordingStarted", "ChannelDialplan", "ChannelHangupRequest", "ChannelHangupRequest",
      "ChannelDestroyed", "RecordingFinished", "StasisEnd", "ChannelVarset", "ChannelDestroyed" }, types)
    assert.are.same({ "done", 0 }, { s.first("RecordingFinished").recording.state, s.first("RecordingFinished").recording.duration })
  end)
end)

describe("DTMF", function()
  it("comes from @dtmf as 1 2 3 # about 1.7 s after StasisStart, 350 ms apart", function()
    local s = sim()
    s.originate("Local/1000@dtmf", "c")
    s.run(3)
    local got = {}
    for _, e in ipairs(s.all("ChannelDtmfReceived", "c")) do
      got[#got + 1] = { e.ev.digit, e.ev.duration_ms, math.floor(e.t * 1000 + 0.5) }
    end
    assert.are.same({ { "1", 100, 1700 }, { "2", 100, 2050 }, { "3", 100, 2400 }, { "#", 100, 2750 } }, got)
    s.run(62)
    assert.is_not_nil(s.first("ChannelDestroyed", "c")) -- the far end hangs up after Wait(60)
  end)

  it("reaches only the receiving side; @echo sends it back and ends on #", function()
    local s = sim()
    s.originate("Local/1000@wait", "w")
    s.clear()
    assert.are.equal(204, (s.req("POST", "/channels/w/dtmf", { dtmf = "9" })))
    s.run(1)
    local heard = s.all("ChannelDtmfReceived", "w;2")
    assert.are.same({ 1, "9", 100 }, { #heard, heard[1].ev.digit, heard[1].ev.duration_ms })
    assert.is_true(close(heard[1].t, 0.2))
    assert.are.same({}, s.types("w"))
    s.originate("Local/1000@echo", "e")
    s.req("POST", "/channels/e/dtmf", { dtmf = "12", before = "100", between = "150", duration = "120" })
    s.run(2)
    local echoed = s.all("ChannelDtmfReceived", "e")
    assert.are.same({ "1", "2" }, { echoed[1].ev.digit, echoed[2].ev.digit })
    assert.are.equal(120, echoed[1].ev.duration_ms)
    assert.is_nil(s.first("ChannelDestroyed", "e"))
    s.req("POST", "/channels/e/dtmf", { dtmf = "#" })
    s.run(1)
    assert.are.equal("#", s.all("ChannelDtmfReceived", "e")[3].ev.digit)
    assert.is_not_nil(s.first("ChannelDestroyed", "e"))
  end)

  it("needs digits (400) and waits for a running playback", function()
    local s = sim()
    s.originate("Local/1000@wait", "w")
    assert.are.same({ 400, { message = "DTMF is required" } }, { select(1, s.req("POST", "/channels/w/dtmf")), select(3, s.req("POST", "/channels/w/dtmf")) })
    s.req("POST", "/channels/w/play", { media = "sound:hello-world" })
    s.req("POST", "/channels/w/dtmf", { dtmf = "5" })
    s.run(3)
    assert.is_true(close(select(2, s.first("ChannelDtmfReceived", "w;2")), 1.404 + 0.2))
  end)
end)

describe("variables", function()
  it("sets and reads channel variables; set without value unsets", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    local status, reason, body = s.req("GET", "/channels/c/variable", { variable = "V" })
    assert.are.same({ 404, "Variable Not Found", { message = "Provided variable was not found" } }, { status, reason, body })
    s.clear()
    assert.are.equal(204, (s.req("POST", "/channels/c/variable", { variable = "V", value = "hello world" })))
    assert.are.same({ "V", "hello world" }, { s.first("ChannelVarset").variable, s.first("ChannelVarset").value })
    assert.are.same({ value = "hello world" }, select(3, s.req("GET", "/channels/c/variable", { variable = "V" })))
    s.req("POST", "/channels/c/variable", { variable = "V" })
    assert.are.equal("", s.all("ChannelVarset")[2].ev.value)
    assert.are.equal(404, (s.req("GET", "/channels/c/variable", { variable = "V" })))
    s.req("POST", "/channels/c/variable", { variable = "E", value = "" })
    assert.are.same({ value = "" }, select(3, s.req("GET", "/channels/c/variable", { variable = "E" })))
  end)

  it("reads and writes dialplan functions", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    assert.are.same({ value = "Local/1000@wait-00000000;1" }, select(3, s.req("GET", "/channels/c/variable", { variable = "CHANNEL(name)" })))
    assert.are.same({ value = '"" <>' }, select(3, s.req("GET", "/channels/c/variable", { variable = "CALLERID(all)" })))
    s.clear()
    assert.are.equal(204, (s.req("POST", "/channels/c/variable", { variable = "CALLERID(all)", value = '"Bob" <200>' })))
    assert.are.same({ "ChannelCallerId" }, s.types("c"))
    assert.are.same({ value = "Bob" }, select(3, s.req("GET", "/channels/c/variable", { variable = "CALLERID(name)" })))
    local status, reason, body = s.req("GET", "/channels/c/variable", { variable = "NOSUCH(x)" })
    assert.are.same({ 500, "Error With Function", { message = "Unable to read provided function" } }, { status, reason, body })
    assert.are.same({ 400, { message = "Failed to execute function" } }, { select(1, s.req("POST", "/channels/c/variable", { variable = "NOSUCH(x)", value = "1" })), select(3, s.req("POST", "/channels/c/variable", { variable = "NOSUCH(x)", value = "1" })) })
  end)

  it("gets and sets several at once, and falls back to globals", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    assert.are.equal(204, (s.req("POST", "/channels/c/variables", {}, { variables = { B = "2", A = "1" } })))
    assert.are.same({ "A", "B" }, { s.all("ChannelVarset", "c")[2].ev.variable, s.all("ChannelVarset", "c")[3].ev.variable })
    assert.are.same({ variables = { A = "1", B = "2" } }, select(3, s.req("GET", "/channels/c/variables", { variables = "A,B" })))
    assert.are.equal(404, (s.req("GET", "/channels/c/variables", { variables = "A,NOPE" })))
    assert.are.same({ 400, { message = "The 'variables' field is required" } }, { select(1, s.req("POST", "/channels/c/variables")), select(3, s.req("POST", "/channels/c/variables")) })
    s.req("POST", "/asterisk/variable", { variable = "G", value = "global" })
    assert.are.same({ value = "global" }, select(3, s.req("GET", "/channels/c/variable", { variable = "G" })))
    assert.are.same({ value = "/etc/asterisk" }, select(3, s.req("GET", "/asterisk/variable", { variable = "ASTETCDIR" })))
    assert.are.same({ value = "" }, select(3, s.req("GET", "/asterisk/variable", { variable = "UNSET" })))
    local status, reason = s.req("GET", "/channels/nope/variable", { variable = "A" })
    assert.are.same({ 404, "Channel Not Found" }, { status, reason })
  end)
end)

describe("moving channels around", function()
  it("continues into [after-stasis]: StasisEnd, its steps, Hangup() after 2 s", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    s.clear()
    assert.are.equal(204, (s.req("POST", "/channels/c/continue", { context = "after-stasis", extension = "1000", priority = "1" })))
    assert.are.same({ "StasisEnd", "ChannelDialplan", "ChannelDialplan" }, s.types("c"))
    assert.are.equal("continued from Stasis to after-stasis,1000", s.first("ChannelDialplan", "c").dialplan_app_data)
    assert.are.same({ 409, { message = "Channel not in Stasis application" } }, { select(1, s.req("POST", "/channels/c/continue")), select(3, s.req("POST", "/channels/c/continue")) })
    s.run(3)
    assert.are.same({ "StasisEnd", "ChannelDialplan", "ChannelDialplan", "ChannelDialplan", "ChannelVarset", "ChannelDestroyed" }, s.types("c"))
    assert.is_true(close(select(2, s.first("ChannelDestroyed", "c")), 2))
    assert.are.equal("after-stasis", s.first("ChannelDestroyed", "c").channel.dialplan.context)
  end)

  it("continues to the next priority without arguments, and refuses unknown labels", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    assert.are.same({ 404, { message = "Requested label can not be found" } }, { select(1, s.req("POST", "/channels/c/continue", { label = "nope" })), select(3, s.req("POST", "/channels/c/continue", { label = "nope" })) })
    s.clear()
    s.req("POST", "/channels/c/continue")
    local step = s.first("ChannelDialplan", "c")
    assert.are.same({ "Wait", "3600", 2 }, { step.dialplan_app, step.dialplan_app_data, step.channel.dialplan.priority })
  end)

  it("moves to a connected app (StasisEnd, StasisStart with its args) and fails to an absent one", function()
    local s = sim()
    s.m:app_connected("other")
    s.originate("Local/1000@wait", "c")
    s.clear()
    s.req("POST", "/channels/c/move", { app = "gone", appArgs = "a" })
    local failed, _, app = s.first("ApplicationMoveFailed", "c")
    assert.are.same({ "gone", { "a" }, "luari" }, { failed.destination, failed.args, app })
    s.req("POST", "/channels/c/move", { app = "other", appArgs = "x,y" })
    local _, _, end_app = s.first("StasisEnd", "c")
    local start, _, start_app = s.first("StasisStart", "c")
    assert.are.same({ "luari", "other", { "x", "y" } }, { end_app, start_app, start.args })
    s.clear()
    s.req("DELETE", "/channels/c")
    local heard = { luari = {}, other = {} }
    for _, e in ipairs(s.about("c")) do
      table.insert(heard[e.app], e.ev.type)
    end
    -- "other" has the channel while it is in Stasis there; luari since originate
    assert.are.same({ "ChannelHangupRequest", "StasisEnd" }, heard.other)
    assert.are.same({ "ChannelHangupRequest", "ChannelVarset", "ChannelDestroyed" }, heard.luari)
  end)

  it("snoops: a Snoop channel in Stasis with args, gone with its target", function()
    local s = sim()
    s.originate("Local/1000@wait", "t")
    local status, _, body = s.req("POST", "/channels/t/snoop", { spy = "both", app = "luari", appArgs = "spying", snoopId = "sn" })
    assert.are.same({ 200, "Snoop/t-00000000", "Up" }, { status, body.name, body.state })
    s.run(0)
    assert.are.same({ "spying" }, s.first("StasisStart", "sn").args)
    local st, reason, err = s.req("POST", "/channels/t/snoop/sn", { spy = "in", app = "luari" })
    assert.are.same({ 500, "Internal error", { message = "Snoop channel could not be created" } }, { st, reason, err })
    assert.are.same({ 400, { message = "Direction must be specified for at least spy or whisper" } }, { select(1, s.req("POST", "/channels/t/snoop", { app = "luari" })), select(3, s.req("POST", "/channels/t/snoop", { app = "luari" })) })
    st, reason, err = s.req("POST", "/channels/nope/snoop", { spy = "in", app = "luari" })
    assert.are.same({ 404, "Channel Not Found", { message = "Provided channel was not found" } }, { st, reason, err })
    s.req("DELETE", "/channels/t")
    assert.are.same({ "StasisStart", "ChannelHangupRequest", "StasisEnd" }, s.types("sn"))
    assert.is_nil(s.m:channel("sn"))
  end)

  it("creates an externalMedia channel with its channelvars, in Stasis", function()
    local s = sim()
    local status, _, body = s.req("POST", "/channels/externalMedia", { app = "luari", external_host = "127.0.0.1:40000", format = "ulaw", channelId = "x", data = "d" })
    assert.are.equal(200, status)
    assert.matches("^UnicastRTP/127%.0%.0%.1:40000%-0x%x+$", body.name)
    assert.are.equal("127.0.0.1", body.channelvars.UNICASTRTP_LOCAL_ADDRESS)
    assert.matches("^%d+$", body.channelvars.UNICASTRTP_LOCAL_PORT)
    s.run(0)
    assert.are.same({ "Dial", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart" }, s.types("x"))
    assert.are.same({ "d" }, s.first("StasisStart", "x").args)
    assert.are.equal("127.0.0.1:40000/c(ulaw)", s.first("Dial", "x").dialstring)
    assert.is_nil(select(3, s.req("GET", "/channels/x")).channelvars)
    assert.are.same({ 404, { message = "RTP info not found" } }, { select(1, s.req("GET", "/channels/x/rtp_statistics")), select(3, s.req("GET", "/channels/x/rtp_statistics")) })
  end)

  it("accepts mute, hold, moh and silence without events, and checks the direction", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    s.clear()
    for _, r in ipairs({ { "POST", "hold" }, { "DELETE", "hold" }, { "POST", "moh" }, { "DELETE", "moh" },
      { "POST", "silence" }, { "DELETE", "silence" }, { "POST", "ring" }, { "DELETE", "ring" }, { "POST", "progress" } }) do
      assert.are.equal(204, (s.req(r[1], "/channels/c/" .. r[2])), r[2])
    end
    assert.are.equal(204, (s.req("POST", "/channels/c/mute", {}, { direction = "in" })))
    assert.are.same({ 400, { message = "Direction is required" } }, { select(1, s.req("POST", "/channels/c/mute")), select(3, s.req("POST", "/channels/c/mute")) })
    assert.are.same({ 400, { message = "Invalid direction specified" } }, { select(1, s.req("DELETE", "/channels/c/mute", { direction = "up" })), select(3, s.req("DELETE", "/channels/c/mute", { direction = "up" })) })
    assert.are.same({}, s.events)
  end)
end)

describe("bridges", function()
  it("mixes channels: entered, BRIDGEPEER, left, and a softmix for three", function()
    local s = sim()
    s.originate("Local/1000@wait", "a")
    s.originate("Local/1000@wait", "b")
    s.originate("Local/1000@wait", "c")
    s.clear()
    local status, _, body = s.req("POST", "/bridges", { type = "mixing", bridgeId = "br", name = "n" })
    assert.are.same({ 200, "simple_bridge", "mixing", "stasis", "Stasis", "n", "talker" },
      { status, body.technology, body.bridge_type, body.bridge_class, body.creator, body.name, body.video_mode })
    assert.are.same({ 409, { message = "Bridge with id 'br' already exists" } }, { select(1, s.req("POST", "/bridges/br")), select(3, s.req("POST", "/bridges/br")) })
    s.req("POST", "/bridges/br/addChannel", { channel = "a,b" })
    assert.are.same({ "ChannelEnteredBridge", "ChannelVarset" }, s.types("a"))
    assert.are.equal(s.m:channel("b").name, s.first("ChannelVarset", "a").value)
    assert.are.same({ "a", "b" }, s.first("ChannelEnteredBridge", "b").bridge.channels)
    s.req("POST", "/bridges/br/addChannel", { channel = "c" })
    assert.are.equal("softmix", select(3, s.req("GET", "/bridges/br")).technology)
    assert.are.equal(s.m:channel("c").name .. "," .. s.m:channel("b").name, s.all("ChannelVarset", "a")[2].ev.value)
    s.clear()
    s.req("POST", "/bridges/br/removeChannel", { channel = "c" })
    assert.are.same({ "ChannelVarset", "ChannelLeftBridge" }, s.types("c"))
    assert.are.same({ 422, { message = "Channel not in this bridge" } }, { select(1, s.req("POST", "/bridges/br/removeChannel", { channel = "c" })), select(3, s.req("POST", "/bridges/br/removeChannel", { channel = "c" })) })
    assert.are.same({ 400, { message = "Channel not found" } }, { select(1, s.req("POST", "/bridges/br/addChannel", { channel = "nope" })), select(3, s.req("POST", "/bridges/br/addChannel", { channel = "nope" })) })
    assert.are.same({ 422, { message = "Channel not in Stasis application" } }, { select(1, s.req("POST", "/bridges/br/addChannel", { channel = "a;2" })), select(3, s.req("POST", "/bridges/br/addChannel", { channel = "a;2" })) })
  end)

  it("plays to a bridge through an announcer, events to the members' app", function()
    local s = sim()
    s.originate("Local/1000@wait", "a")
    s.originate("Local/1000@wait", "b")
    s.req("POST", "/bridges", { bridgeId = "br" })
    s.req("POST", "/bridges/br/addChannel", { channel = "a,b" })
    s.clear()
    local status, _, body = s.req("POST", "/bridges/br/play", { media = "sound:hello-world", playbackId = "bp" })
    assert.are.same({ 201, "bridge:br" }, { status, body.target_uri })
    assert.matches("^Announcer/ARI%-%x+;2,", s.first("ChannelVarset", "a").value)
    s.run(2)
    assert.are.same({ "PlaybackStarted", "PlaybackFinished" }, s.types("bp"))
    assert.are.equal(s.m:channel("b").name, s.all("ChannelVarset", "a")[2].ev.value)
    assert.are.same({ "a", "b" }, select(3, s.req("GET", "/bridges/br")).channels)
  end)

  it("tells BridgeDestroyed only to apps that subscribed to the bridge", function()
    local s = sim()
    s.originate("Local/1000@wait", "a")
    s.req("POST", "/bridges", { bridgeId = "quiet" })
    s.req("POST", "/bridges/quiet/addChannel", { channel = "a" })
    s.req("DELETE", "/bridges/quiet")
    assert.is_nil(s.first("BridgeDestroyed"))
    assert.is_not_nil(s.first("ChannelLeftBridge", "a"))
    s.req("POST", "/bridges/loud", { type = "mixing,dtmf_events" })
    local status, _, app = s.req("POST", "/applications/luari/subscription", { eventSource = "bridge:loud" })
    assert.are.same({ 200, { "loud" } }, { status, app.bridge_ids })
    s.req("DELETE", "/bridges/loud")
    assert.are.equal("loud", s.first("BridgeDestroyed").bridge.id)
    assert.are.equal(404, (s.req("GET", "/bridges/loud")))
  end)

  it("takes a member out when it hangs up (ChannelLeftBridge before StasisEnd)", function()
    local s = sim()
    s.originate("Local/1000@wait", "a")
    s.req("POST", "/bridges", { bridgeId = "br" })
    s.req("POST", "/bridges/br/addChannel", { channel = "a" })
    s.clear()
    s.req("DELETE", "/channels/a")
    assert.are.same({ "ChannelHangupRequest", "ChannelLeftBridge", "StasisEnd", "ChannelVarset", "ChannelDestroyed" }, s.types("a"))
    assert.is_true(json.is_empty_array(select(3, s.req("GET", "/bridges/br")).channels))
  end)

  it("records a bridge through a recorder channel", function()
    local s = sim()
    local id = s.m:incoming { app = "luari", state = "Up" }
    s.req("POST", "/bridges", { bridgeId = "br" })
    s.req("POST", "/bridges/br/addChannel", { channel = id })
    local status, _, body, headers = s.req("POST", "/bridges/br/record", { name = "conf", format = "wav", maxDurationSeconds = "3" })
    assert.are.same({ 201, "bridge:br", "/ari/recordings/live/conf" }, { status, body.target_uri, headers.Location })
    s.run(10)
    assert.are.same({ "RecordingStarted", "RecordingFinished" }, s.types("conf"))
    assert.are.equal(3, s.first("RecordingFinished", "conf").recording.duration)
    assert.are.same({ id }, select(3, s.req("GET", "/bridges/br")).channels)
  end)

  it("has holding bridges, and lists bridges", function()
    local s = sim()
    local _, _, body = s.req("POST", "/bridges", { type = "holding", bridgeId = "h" })
    assert.are.same({ "holding", "holding_bridge" }, { body.bridge_type, body.technology })
    assert.are.equal(1, #select(3, s.req("GET", "/bridges")))
    assert.are.equal(500, (s.req("POST", "/bridges", { type = "weird" })))
  end)
end)

describe("the dialplan's own incoming calls", function()
  it("hands a call to Local/EXTEN@ivr to the dialplan app, ringing, until the app answers", function()
    local s = sim()
    s.req("POST", "/channels", { endpoint = "Local/2000@ivr", extension = "1000", context = "wait", channelId = "caller", otherChannelId = "in" })
    s.run(1)
    assert.are.same({ "StasisStart" }, s.types("in"))
    local start, _, app = s.first("StasisStart", "in")
    assert.are.same({ "luari", { "2000" }, "Ring", "luari,2000", 2 },
      { app, start.args, start.channel.state, start.channel.dialplan.app_data, start.channel.dialplan.priority })
    assert.are.equal("Down", s.m:channel("caller").state)
    s.req("POST", "/channels/in/answer")
    assert.are.equal("Up", s.m:channel("caller").state)
    assert.are.same({ 409 }, { (s.req("POST", "/channels/caller/answer")) })
  end)
end)

describe("applications and other resources", function()
  it("lists connected apps only, with their channels", function()
    local s = sim()
    s.originate("Local/1000@wait", "a")
    local _, _, apps = s.req("GET", "/applications")
    assert.are.equal(1, #apps)
    assert.are.same({ "a", "a;2" }, apps[1].channel_ids)
    assert.is_true(json.is_empty_array(apps[1].endpoint_ids))
    assert.is_true(s.m:app_connected("luari"))
    assert.is_false(s.m:app_connected("new"))
    s.m:app_disconnected("new")
    assert.is_false(s.m:app_is_connected("new"))
    assert.are.same({ 404, { message = "Application not found" } }, { select(1, s.req("GET", "/applications/new")), select(3, s.req("GET", "/applications/new")) })
  end)

  it("subscribes and unsubscribes event sources, with Asterisk's errors", function()
    local s = sim()
    s.m:app_connected("watcher")
    s.originate("Local/1000@wait", "a")
    local _, _, app = s.req("POST", "/applications/watcher/subscription", { eventSource = "channel:a" })
    assert.are.same({ "a" }, app.channel_ids)
    s.clear()
    s.req("POST", "/channels/a/variable", { variable = "X", value = "1" })
    assert.are.same({ "luari", "watcher" }, { s.events[1].app, s.events[2].app })
    assert.are_not.equal(s.events[1].ev, s.events[2].ev)
    assert.are.equal(422, (s.req("POST", "/applications/watcher/subscription", { eventSource = "channel:nope" })))
    assert.are.equal(400, (s.req("POST", "/applications/watcher/subscription", { eventSource = "weird:x" })))
    assert.are.equal(400, (s.req("POST", "/applications/watcher/subscription")))
    assert.are.equal(200, (s.req("DELETE", "/applications/watcher/subscription", { eventSource = "channel:a" })))
    assert.are.equal(422, (s.req("DELETE", "/applications/watcher/subscription", { eventSource = "channel:a" })))
  end)

  it("lets a subscribeAll app hear every channel", function()
    local s = sim()
    s.m:app_connected("all", { subscribeAll = "true" })
    local _, _, app = s.req("GET", "/applications/all")
    assert.are.same({ "__AST_CHANNEL_ALL_TOPIC" }, app.channel_ids)
    s.originate("Local/1000@wait", "a")
    local heard = 0
    for _, e in ipairs(s.events) do
      if e.app == "all" then
        heard = heard + 1
      end
    end
    assert.are.equal(6, heard)
  end)

  it("answers info, ping, sounds and endpoints", function()
    local s = sim()
    local _, _, info = s.req("GET", "/asterisk/info")
    assert.are.same({ "22.10.1", "02:fc:00:00:00:01" }, { info.system.version, info.system.entity_id })
    assert.are.same({ "system" }, keys(select(3, s.req("GET", "/asterisk/info", { only = "system" }))))
    local _, _, ping = s.req("GET", "/asterisk/ping")
    assert.are.equal("pong", ping.ping)
    assert.are.same({ id = "hello-world", formats = { { language = "en", format = "gsm" }, { language = "en", format = "slin" } } },
      select(3, s.req("GET", "/sounds/hello-world")))
    assert.are.same({ 404, { message = "Sound not found" } }, { select(1, s.req("GET", "/sounds/no-such-sound")), select(3, s.req("GET", "/sounds/no-such-sound")) })
    assert.is_true(#select(3, s.req("GET", "/sounds")) > 100)
    assert.is_true(json.is_empty_array(select(3, s.req("GET", "/endpoints"))))
    assert.are.equal("[]", json.encode(select(3, s.req("GET", "/channels"))))
  end)

  it("sends user events to an app, and keeps device states and mailboxes", function()
    local s = sim()
    s.originate("Local/1000@wait", "c")
    s.clear()
    assert.are.equal(204, (s.req("POST", "/events/user/ping", { application = "luari", source = "channel:c" }, { variables = { k = "v" } })))
    local ev = s.first("ChannelUserevent")
    assert.are.same({ "ping", { k = "v" }, "c" }, { ev.eventname, ev.userevent, ev.channel.id })
    assert.are.equal(404, (s.req("POST", "/events/user/ping", { application = "nobody" })))
    assert.are.equal(204, (s.req("PUT", "/deviceStates/Stasis:desk", { deviceState = "BUSY" })))
    assert.are.same({ { name = "Stasis:desk", state = "BUSY" } }, select(3, s.req("GET", "/deviceStates")))
    assert.are.equal(409, (s.req("PUT", "/deviceStates/PJSIP:x", { deviceState = "BUSY" })))
    s.req("PUT", "/mailboxes/100", { oldMessages = "1", newMessages = "2" })
    assert.are.same({ name = "100", old_messages = 1, new_messages = 2 }, select(3, s.req("GET", "/mailboxes/100")))
  end)

  it("refuses Stasis for an app with no socket: STASISSTATUS FAILED, and the channel ends", function()
    local s = sim()
    s.originate("Local/1000@wait", "c", { app = "elsewhere" })
    assert.is_false(s.m:app_is_connected("elsewhere"))
    local failed = false
    for _, e in ipairs(s.events) do
      local ev = e.ev
      failed = failed or ev.type == "ChannelVarset" and ev.variable == "STASISSTATUS" and ev.value == "FAILED"
    end
    assert.is_true(failed)
    s.run(1)
    assert.is_nil(s.first("StasisStart", "c"))
    assert.is_nil(s.m.channels.c)
    assert.are.equal(0, s.m:stats().channels)
  end)

  it("refuses a caller while the app's socket is closed, and takes the next once it is back", function()
    local s = sim()
    s.m:app_disconnected("luari")
    local lost = s.m:incoming { app = "luari" }
    s.run(1)
    assert.is_nil(s.first("StasisStart", lost))
    assert.is_nil(s.m.channels[lost])
    s.m:app_connected("luari")
    local taken = s.m:incoming { app = "luari" }
    s.run(1)
    assert.truthy(s.first("StasisStart", taken))
    assert.truthy(s.m.channels[taken])
  end)

  it("routes like res_ari: 404 for unknown paths, 405 for a known path's other method", function()
    local s = sim()
    assert.are.same({ 404, "Not Found", { message = "Resource not found" } }, { s.req("GET", "/no-such-resource") })
    assert.are.same({ 404, "Not Found", { message = "Resource not found" } }, { s.req("GET", "/channels/x/no-such-sub-resource") })
    assert.are.same({ 405, "Method Not Allowed", { message = "Invalid method" } }, { s.req("PUT", "/channels") })
    assert.are.same({ 405, "Method Not Allowed", { message = "Invalid method" } }, { s.req("GET", "/channels/create") })
  end)
end)

describe("sounds", function()
  it("has the captured lengths of common prompts, digits and letters built in", function()
    local Sounds = require "luari.sim.model.sounds"
    local n = 0
    for _ in pairs(Sounds.BUILTIN) do
      n = n + 1
    end
    assert.is_true(n > 100 and n < 300)
    local tsv = assert(Model.load_sounds_tsv(samples_dir() .. "/sound-durations.tsv"))
    assert.are.equal(1.404, tsv["hello-world"])
    assert.is_true(close(tsv["demo-congrats"], 30.277))
    for name, len in pairs(Sounds.BUILTIN) do
      if len then
        assert.are.equal(tsv[name], len, name)
      end
    end
    assert.is_nil(Model.load_sounds_tsv("/nonexistent/sounds.tsv"))
  end)

  it("takes a table read from a file as the sounds", function()
    local tsv = assert(Model.load_sounds_tsv(samples_dir() .. "/sound-durations.tsv"))
    local s = sim { sounds = tsv, sound_default = false }
    s.originate("Local/1000@wait", "c")
    s.req("POST", "/channels/c/play", { media = "sound:conf-adminmenu", playbackId = "p" })
    s.run(30)
    assert.is_true(close(select(2, s.first("PlaybackFinished", "p")), 19.206))
  end)
end)

describe("the model as a server", function()
  it("hands out fresh tables: changing an event or a reply changes nothing else", function()
    local s = sim()
    s.originate("Local/1000@wait", "c", { appArgs = "a1" })
    local ev = s.first("StasisStart", "c")
    ev.channel.name = "changed"
    ev.args[1] = "x"
    local _, _, body = s.req("GET", "/channels/c")
    assert.are.equal("Local/1000@wait-00000000;1", body.name)
    body.caller.name = "changed"
    assert.are.equal("", s.m:channel("c").caller.name)
  end)

  it("takes a path as decoded segments: one may hold a slash (sent as %2F), as in ARI", function()
    local s = sim()
    local status, _, body = s.req("GET", { "channels", "PJSIP/100" })
    assert.are.same({ 404, { message = "Channel not found" } }, { status, body })
    s.originate("Local/1000@wait", "a/b")
    assert.are.equal(204, (s.req("POST", { "channels", "a/b", "answer" })))
    status, _, body = s.req("POST", { "channels", "a/b", "play", "pb/1" }, { media = "sound:beep" })
    assert.are.same({ 201, "pb/1" }, { status, body.id })
    status, _, body = s.req("GET", { "playbacks", "pb/1" })
    assert.are.same({ 200, "pb/1" }, { status, body.id })
    status, _, body = s.req("GET", { "channels", "a/b", "nosuch" })
    assert.are.same({ 404, { message = "Resource not found" } }, { status, body })
    -- a string path is split at every slash
    status, _, body = s.req("GET", "/channels/a/b")
    assert.are.same({ 404, { message = "Resource not found" } }, { status, body })
  end)

  it("answers 500 instead of failing when something breaks inside", function()
    local s = sim { strict = false }
    s.originate("Local/1000@wait", "c")
    local boom = s.m.channels.c
    s.m.channels.c = setmetatable({}, { __index = function()
      error("broken")
    end })
    local status, _, body = s.req("POST", "/channels/c/answer")
    assert.are.same({ 500, { message = "Internal Server Error" } }, { status, body })
    assert.matches("broken", s.m.last_error)
    s.m.channels.c = boom
    assert.are.equal(204, (s.req("POST", "/channels/c/answer")))
  end)

  it("lets the face call the model back from emit", function()
    local answered = {}
    local s = sim { on_event = function(s, _, ev)
      if ev.type == "StasisStart" then
        answered[#answered + 1] = s.req("POST", "/channels/" .. ev.channel.id .. "/answer")
      end
    end }
    local id = s.m:incoming { app = "luari" }
    assert.are.same({ 204 }, answered)
    assert.are.same({ "StasisStart", "ChannelStateChange" }, s.types(id))
  end)

  it("holds 10,000 calls and leaves nothing behind when they end", function()
    local s = sim()
    local count = 0
    s.m.emit_fn = function()
      count = count + 1
    end
    local t0 = os.clock()
    for i = 1, 10000 do
      s.req("POST", "/channels", { endpoint = "Local/1000@wait", app = "luari", channelId = "k" .. i })
    end
    s.run(1)
    assert.are.equal(20000, s.m:stats().channels)
    for i = 1, 10000 do
      s.req("POST", "/channels/k" .. i .. "/play", { media = "sound:beep" })
    end
    s.run(1)
    for i = 1, 10000 do
      s.req("DELETE", "/channels/k" .. i)
    end
    s.run(1)
    local elapsed = os.clock() - t0
    assert.are.same({ channels = 0, bridges = 0, playbacks = 0, recordings = 0, timers = 0 }, s.m:stats())
    assert.are.same({}, s.m.apps.luari.channels)
    assert.are.equal(10000 * 17, count)
    -- well over 1,000 calls a second through the model alone
    assert.is_true(elapsed < 10, "took " .. elapsed .. " s")
  end)

  it("costs the same per request with 10,000 channels up as with none", function()
    local s = sim()
    s.m.emit_fn = function() end
    local function cycle(n)
      local t0 = os.clock()
      for i = 1, n do
        s.req("POST", "/channels", { endpoint = "Local/1000@wait", app = "luari", channelId = "z" .. i })
        s.run(0)
        s.req("POST", "/channels/z" .. i .. "/variable", { variable = "A", value = "1" })
        s.req("DELETE", "/channels/z" .. i)
      end
      return os.clock() - t0
    end
    cycle(500)
    local empty = cycle(2000)
    for i = 1, 10000 do
      s.req("POST", "/channels", { endpoint = "Local/1000@wait", app = "luari", channelId = "held" .. i })
    end
    s.run(1)
    local loaded = cycle(2000)
    assert.is_true(loaded < empty * 3 + 0.05, string.format("%.3f s loaded vs %.3f s empty", loaded, empty))
  end)
end)
