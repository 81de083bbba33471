-- End to end: luari.ari through the whole stack. A flow run by `luari run`
-- calls the Channels operations (and the playbacks, recordings, bridges
-- and asterisk.getInfo functions) on live channels of `luari sim-server`.
-- Each step is one call; the flow reports what it returned, the
-- simulator's journal shows what went on the wire (method, path as sent,
-- query, JSON body), and for one block a tap in front of the simulator
-- shows the request lines byte for byte.
--
-- One simulator and one `luari run` per describe block; the flow runs
-- once in setup and every step is checked by its own test.

local h = require "e2e.helper"
local json = require "cjson"

-- A channel id luari picked (util.uuid); the simulator's playback ids
-- have the same shape.
local UUID = "~^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- --- the flow -----------------------------------------------------------------

local FLOW_HEAD = [=[
local ari = require "luari.ari"
local luari = require "luari"
local json = require "cjson"

local seen = {}

-- The next event of type `kind` about `id` (a channel, a dialed channel,
-- a playback or a recording) whose fields equal those of `want`; events
-- about others are kept for a later await.
local function await(call, kind, id, want)
  local function fits(ev)
    local about = ev.channel or ev.peer or ev.playback or ev.recording
    if ev.type ~= kind or type(about) ~= "table" or (about.id or about.name) ~= id then
      return false
    end
    for k, v in pairs(want or {}) do
      if ev[k] ~= v then
        return false
      end
    end
    return true
  end
  for i, ev in ipairs(seen) do
    if fits(ev) then
      return table.remove(seen, i)
    end
  end
  local deadline = luari.now() + 10
  while true do
    local left = deadline - luari.now()
    if left <= 0 then
      return nil, "timeout waiting for " .. kind .. " of " .. tostring(id)
    end
    local ev, why = call:wait_event(kind, left)
    if not ev then
      return nil, tostring(why) .. " waiting for " .. kind .. " of " .. tostring(id)
    end
    if fits(ev) then
      return ev
    end
    seen[#seen + 1] = ev
  end
end

local function report(t)
  local ok, text = pcall(json.encode, t)
  luari.log.info("RESULT %s", ok and text or json.encode({ step = t.step, raised = "cannot encode: " .. text }))
end

local STEPS = {
]=]

local FLOW_TAIL = [=[
}

return function(call)
  local S = { call = call.id }
  for i, step in ipairs(STEPS) do
    local ok, value, err = pcall(step, S, call)
    local r = { step = i, S = S }
    if not ok then
      r.raised = tostring(value)
    else
      r.value = value
      if type(err) == "table" then
        r.err = { status = err.status, code = err.code, message = err.message, op = err.op, text = tostring(err) }
      elseif err ~= nil then
        r.err = { text = tostring(err) }
      end
    end
    report(r)
  end
  report({ done = true, S = S })
end
]=]

local function flow_source(steps)
  local parts = {}
  for i, s in ipairs(steps) do
    local code = s.code
    if not code:find("return", 1, true) then
      code = "return " .. code
    end
    parts[i] = string.format("  -- %d. %s\n  function(S, call)\n    %s\n  end,", i, s.name, code)
  end
  return FLOW_HEAD .. table.concat(parts, "\n") .. FLOW_TAIL
end

-- --- expectations ---------------------------------------------------------------

-- Percent-encoding as RFC 3986 wants it: every byte but the unreserved ones.
local function enc(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

-- "{name}" stands for S.name (percent-encoded in paths and request lines).
local function fill(s, S, encode)
  if type(s) ~= "string" then
    return s
  end
  return (s:gsub("{(%w+)}", function(k)
    assert(S[k] ~= nil, "the flow did not set S." .. k)
    return encode and enc(S[k]) or S[k]
  end))
end

-- A string "~pattern" matches by Lua pattern, anything else by equality.
local function fits(expected, actual, S)
  expected = fill(expected, S)
  if type(expected) == "string" and expected:sub(1, 1) == "~" then
    return type(actual) == "string" and actual:match(expected:sub(2)) ~= nil
  end
  return expected == actual
end

local function show_args(args)
  local out = {}
  for i, a in ipairs(args or {}) do
    out[i] = tostring(a[1]) .. "=" .. tostring(a[2])
  end
  return "[" .. table.concat(out, " & ") .. "]"
end

local function field(t, path)
  for key in path:gmatch("[^%.]+") do
    if type(t) ~= "table" then
      return nil
    end
    t = t[tonumber(key) or key]
  end
  return t
end

-- What the flow got back from the step.
local function check_result(step, r, S)
  assert.is_table(r, "the flow reported nothing for this step")
  assert.is_nil(r.raised, r.raised)
  if step.err then
    local want = { status = step.err[1], code = step.err[2], message = fill(step.err[3], S) }
    assert.is_nil(r.value, "expected nil, err; got a value")
    assert.is_table(r.err, "expected an error")
    assert.are.same(want, { status = r.err.status, code = r.err.code, message = r.err.message })
    local op = step.code:match("ari%.%w+%.(%w+)")
    assert.are.equal(op, r.err.op)
    assert.are.equal(op .. ": " .. want.status .. " " .. want.message, r.err.text)
    return
  end
  assert.is_nil(r.err, r.err and r.err.text)
  if step.ok then
    assert.is_true(r.value)
  elseif step.bytes then
    assert.is_string(r.value, "expected the body's bytes as a string")
  else
    assert.is_table(r.value, "expected a table")
  end
  for path, want in pairs(step.fields or {}) do
    local got = field(r.value, path)
    assert.is_true(fits(want, got, S), string.format("%s: expected %s, got %s", path,
      tostring(fill(want, S)), tostring(got)))
  end
  if step.check then
    step.check(r.value, S)
  end
end

-- What the simulator received for the step.
local function check_request(step, req, S)
  assert.is_table(req, "nothing reached the simulator for this step")
  assert.are.equal(step.method, req.method)
  assert.are.equal(fill(step.path, S, true), req.path)
  local want, got = step.args or {}, req.args or {}
  local same = #want == #got
  for i = 1, #want do
    same = same and want[i][1] == got[i][1] and fits(want[i][2], got[i][2], S)
  end
  local shown = {}
  for i, a in ipairs(want) do
    shown[i] = { a[1], fill(a[2], S) }
  end
  assert.is_true(same, "query: expected " .. show_args(shown) .. ", got " .. show_args(got))
  if step.body then
    assert.is_string(req.body, "no body was sent")
    assert.are.same(step.body, json.decode(req.body))
  else
    assert.is_nil(req.body, "a body was sent: " .. tostring(req.body))
  end
end

-- --- running a block ------------------------------------------------------------------

-- A tap in front of the simulator: socat's raw dump of every byte luari
-- sends (-r: each chunk read is written whole, so that the forked children
-- of concurrent connections, the events WebSocket and REST, cannot cut
-- into each other's lines as -v's piecemeal text dump could). It listens
-- on a port below the ephemeral range; one taken means another try.
local function start_tap(sim)
  local dump = h.tmpdir() .. "/tap-" .. sim.port .. ".txt"
  math.randomseed(os.time() + sim.port)
  for _ = 1, 20 do
    local port = math.random(20000, 32000)
    os.remove(dump)
    os.execute(string.format("socat -r %s TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:%d "
      .. "2>> %s.err > /dev/null & echo $! > %s.pid", dump, port, sim.port, dump, dump))
    local pid = h.read(dump .. ".pid"):match("%d+")
    local up = h.wait_for(function()
      if os.execute("bash -c 'echo > /dev/tcp/127.0.0.1/" .. port .. "' 2>/dev/null") == 0 then
        return "up"
      end
      if os.execute("kill -0 " .. pid .. " 2>/dev/null") ~= 0 then
        return "gone"
      end
    end, 10, "socat to listen on " .. port)
    if up == "up" then
      return { port = port, dump = dump, pid = pid }
    end
  end
  error("socat found no free port to listen on: " .. h.read(dump .. ".err"))
end

-- The request lines in the dump, as sent. A request's body does not end
-- with a newline, so the next request line may follow it on the same line.
local function request_lines(dump)
  local lines = {}
  for l in h.read(dump):gmatch("%f[%u](%u+ /ari/%S* HTTP/1%.1)\r\n") do
    lines[#lines + 1] = l
  end
  return lines
end

-- Runs `steps` in a flow for one simulated incoming call; returns the
-- per-step results, the final S, the requests the simulator received for
-- the steps (in step order), and the request lines from the tap.
local function run_block(name, steps, opts)
  opts = opts or {}
  local sim = h.start_sim()
  local tap = opts.tap and start_tap(sim) or nil
  local url = tap and ("http://127.0.0.1:" .. tap.port .. "/ari") or sim.url
  local run = h.start_run(h.flows({ [name] = flow_source(steps) }), { url = url })
  h.wait_log(run, "connected to Asterisk", 10, true)
  h.clear_journal(sim)
  h.call(sim, { args = { name }, caller = "+15551234" })
  h.wait_log(run, '"done":true', 60, true)
  local results, S = {}, nil
  for _, r in ipairs(h.results(run)) do
    if type(r) == "table" and r.step then
      results[r.step] = r
    elseif type(r) == "table" and r.done then
      S = r.S
    end
  end
  local ari_requests = {}
  for _, req in ipairs(h.journal(sim)) do
    if req.path:match("^/ari/") then
      ari_requests[#ari_requests + 1] = req
    end
  end
  local by_step, n = {}, 0
  for i, s in ipairs(steps) do
    if s.method then
      n = n + 1
      by_step[i] = ari_requests[n]
    end
  end
  local lines
  if tap then
    -- socat writes its dump on its own time: wait until it holds at least
    -- every request the simulator got since the call came in.
    lines = h.wait_for(function()
      local l = request_lines(tap.dump)
      return #l >= #ari_requests and l
    end, 10, "the tap's dump to catch up")
  end
  local block = { results = results, S = S, requests = by_step, nrequests = n, all = ari_requests,
    lines = lines, tap = tap, log = run.log }
  return block
end

-- Declares the tests of a block: one per step, plus one for the request count.
local function block_tests(name, steps, opts)
  local block
  setup(function()
    block = run_block(name, steps, opts)
  end)
  teardown(function()
    if block and block.tap then
      os.execute("kill " .. block.tap.pid .. " 2>/dev/null")
    end
    h.stop_all()
  end)

  it("the flow ran to its end; after its steps luari only hung up what the flow left", function()
    assert.is_table(block.S, "the flow did not finish")
    assert.is_true(#block.all >= block.nrequests, "only " .. #block.all .. " requests for "
      .. block.nrequests .. " ARI steps")
    -- After the steps luari only hangs up what the flow left behind.
    for i = block.nrequests + 1, #block.all do
      assert.are.equal("DELETE", block.all[i].method, block.all[i].path)
    end
  end)

  for i, s in ipairs(steps) do
    local title = string.format("%d. %s", i, s.name)
    if s.method then
      title = title .. ": " .. s.method .. " " .. s.path
    end
    it(title, function()
      local S = block.S
      check_result(s, block.results[i], S)
      if s.method then
        check_request(s, block.requests[i], S)
      end
      if s.raw then
        local line = fill(s.raw, S, true) .. " HTTP/1.1"
        local found = false
        for _, l in ipairs(block.lines) do
          found = found or l == line
        end
        assert.is_true(found, "not on the wire: " .. line .. "\nsent:\n" .. table.concat(block.lines, "\n"))
      end
    end)
  end
end

local function args(...)
  local out = {}
  local list = { ... }
  for i = 1, #list, 2 do
    out[#out + 1] = { list[i], list[i + 1] }
  end
  return out
end

-- --- block 1: the simple operations and their errors ----------------------------------

-- Ids of no channel, with what they look like in a path.
local UNKNOWN = {
  { "PJSIP/100", "PJSIP%2F100" },
  { "Local/1000@ivr", "Local%2F1000%40ivr" },
  { "gone chan+é", "gone%20chan%2B%C3%A9" },
}

-- nickname, method, path after the channel id, Lua arguments after the id,
-- query sent, the statuses of the reference this block produces.
local MATRIX = {
  { "answer", "POST", "/answer", "", {}, { 404, 409, 412 } },
  { "ring", "POST", "/ring", "", {}, { 404, 409, 412 } },
  { "ringStop", "DELETE", "/ring", "", {}, { 404, 409, 412 } },
  { "hold", "POST", "/hold", "", {}, { 404, 409, 412 } },
  { "unhold", "DELETE", "/hold", "", {}, { 404, 409, 412 } },
  { "startMoh", "POST", "/moh", "", {}, { 404, 409, 412 } },
  { "stopMoh", "DELETE", "/moh", "", {}, { 404, 409, 412 } },
  { "startSilence", "POST", "/silence", "", {}, { 404, 409, 412 } },
  { "stopSilence", "DELETE", "/silence", "", {}, { 404, 409, 412 } },
  { "mute", "POST", "/mute", "", args("direction", "both"), { 404, 409, 412 } },
  { "unmute", "DELETE", "/mute", "", args("direction", "both"), { 404, 409, 412 } },
  { "sendDTMF", "POST", "/dtmf", ', { dtmf = "1" }', args("dtmf", "1"), { 404, 409, 412 } },
  { "play", "POST", "/play", ', { media = "sound:beep" }', args("media", "sound:beep"), { 404, 409, 412 } },
  { "playWithId", "POST", "/play/e2e-pb", ', "e2e-pb", { media = "sound:beep" }', args("media", "sound:beep"),
    { 404, 409, 412 } },
  { "continueInDialplan", "POST", "/continue", "", {}, { 404, 409, 412 } },
  { "redirect", "POST", "/redirect", ', { endpoint = "Local/2000@elsewhere" }',
    args("endpoint", "Local/2000@elsewhere"), { 404, 409, 412 } },
  { "move", "POST", "/move", ', { app = "elsewhere" }', args("app", "elsewhere"), { 404, 409 } },
  { "record", "POST", "/record", ', { name = "e2e-never", format = "wav" }',
    args("name", "e2e-never", "format", "wav"), { 404, 409 } },
  { "setChannelVar", "POST", "/variable", ', { variable = "X", value = "1" }', args("variable", "X", "value", "1"),
    { 404, 409 } },
  { "getChannelVar", "GET", "/variable", ', { variable = "CHANNEL(name)" }', args("variable", "CHANNEL(name)"),
    { 404 } },
  { "dial", "POST", "/dial", "", {}, { 404, 409 } },
  { "get", "GET", "", "", {}, { 404 } },
  { "hangup", "DELETE", "", "", {}, { 404 } },
  { "rtpstatistics", "GET", "/rtp_statistics", "", {}, { 404 } },
  { "snoopChannel", "POST", "/snoop", ', { spy = "in", app = "luari" }', args("spy", "in", "app", "luari", "snoopId", UUID),
    { 404 } },
  { "snoopChannelWithId", "POST", "/snoop/e2e-spy", ', "e2e-spy", { spy = "in", app = "luari" }',
    args("spy", "in", "app", "luari"), { 404 } },
}

local NOT_FOUND = { getChannelVar = "Provided channel was not found", snoopChannel = "Provided channel was not found",
  snoopChannelWithId = "Provided channel was not found" }

-- The channel each status is produced on: none, the ;2 half of a Local
-- channel (never in Stasis), a channel from /channels/create (in Stasis, Down).
local function matrix_steps()
  local steps = {}
  local k = 0
  for _, m in ipairs(MATRIX) do
    local nick, method, suffix, rest, query, statuses = m[1], m[2], m[3], m[4], m[5], m[6]
    for _, status in ipairs(statuses) do
      local id_code, path, err
      if status == 404 then
        k = k % #UNKNOWN + 1
        id_code, path = string.format("%q", UNKNOWN[k][1]), "/ari/channels/" .. UNKNOWN[k][2] .. suffix
        err = { 404, "not_found", NOT_FOUND[nick] or "Channel not found" }
      elseif status == 409 then
        id_code, path = 'S.orig .. ";2"', "/ari/channels/{orig}%3B2" .. suffix
        err = { 409, "conflict", "Channel not in Stasis application" }
      else
        id_code, path = "S.created", "/ari/channels/{created}" .. suffix
        err = { 412, "precondition", "Channel in invalid state" }
      end
      local where = status == 404 and "no channel" or status == 409 and "a channel not in Stasis"
        or "a channel in state Down"
      steps[#steps + 1] = {
        name = string.format("%s on %s: %d", nick, where, status),
        code = string.format("ari.channels.%s(%s%s)", nick, id_code, rest),
        method = method, path = path, args = query, err = err,
      }
    end
  end
  return steps
end

local function has_id(list, id)
  for _, item in ipairs(list) do
    if item.id == id then
      return true
    end
  end
  return false
end

local SIMPLE = {
  -- Channels to operate on besides the call.
  { name = "originate a Local channel into the application (luari picks its id)",
    code = [[local ch, err = ari.channels.originate({ endpoint = "Local/1000@wait", app = "luari" })
      S.orig = ch and ch.id
      return ch, err]],
    method = "POST", path = "/ari/channels",
    args = args("endpoint", "Local/1000@wait", "app", "luari", "channelId", "{orig}"),
    fields = { id = UUID, state = "Down", name = "~^Local/1000@wait%-%x+;1$", ["dialplan.app_name"] = "AppDial2" } },
  { name = "its StasisStart", code = [[await(call, "StasisStart", S.orig)]],
    fields = { ["channel.state"] = "Up" } },
  { name = "create a channel (luari picks its id)",
    code = [[local ch, err = ari.channels.create({ endpoint = "Local/1000@wait", app = "luari" })
      S.created = ch and ch.id
      return ch, err]],
    method = "POST", path = "/ari/channels/create",
    args = args("endpoint", "Local/1000@wait", "app", "luari", "channelId", "{created}"),
    fields = { id = UUID, state = "Down" } },
  { name = "its StasisStart, still Down", code = [[await(call, "StasisStart", S.created)]],
    fields = { ["channel.state"] = "Down" } },

  -- The call itself (an incoming PJSIP call, state Ring).
  { name = "ring", code = "ari.channels.ring(S.call)", method = "POST", path = "/ari/channels/{call}/ring", ok = true },
  { name = "ringStop", code = "ari.channels.ringStop(S.call)", method = "DELETE", path = "/ari/channels/{call}/ring",
    ok = true },
  { name = "answer", code = "ari.channels.answer(S.call)", method = "POST", path = "/ari/channels/{call}/answer",
    ok = true },
  { name = "get", code = "ari.channels.get(S.call)", method = "GET", path = "/ari/channels/{call}",
    fields = { id = "{call}", state = "Up", name = "~^PJSIP/", ["caller.number"] = "+15551234" } },
  { name = "list", code = "ari.channels.list()", method = "GET", path = "/ari/channels",
    check = function(v, S)
      assert.is_true(has_id(v, S.call), "the call is not listed")
      assert.is_true(has_id(v, S.orig), "the originated channel is not listed")
      assert.is_true(has_id(v, S.orig .. ";2"), "its other half is not listed")
    end },
  { name = "hold", code = "ari.channels.hold(S.call)", method = "POST", path = "/ari/channels/{call}/hold", ok = true },
  { name = "unhold", code = "ari.channels.unhold(S.call)", method = "DELETE", path = "/ari/channels/{call}/hold",
    ok = true },
  { name = "startMoh with a class", code = 'ari.channels.startMoh(S.call, { mohClass = "default" })',
    method = "POST", path = "/ari/channels/{call}/moh", args = args("mohClass", "default"), ok = true },
  { name = "stopMoh", code = "ari.channels.stopMoh(S.call)", method = "DELETE", path = "/ari/channels/{call}/moh",
    ok = true },
  { name = "startMoh without a class sends none", code = "ari.channels.startMoh(S.call)",
    method = "POST", path = "/ari/channels/{call}/moh", ok = true },
  { name = "stopMoh again", code = "ari.channels.stopMoh(S.call)", method = "DELETE",
    path = "/ari/channels/{call}/moh", ok = true },
  { name = "startSilence", code = "ari.channels.startSilence(S.call)", method = "POST",
    path = "/ari/channels/{call}/silence", ok = true },
  { name = "stopSilence", code = "ari.channels.stopSilence(S.call)", method = "DELETE",
    path = "/ari/channels/{call}/silence", ok = true },
  { name = "mute: luari sends the documented direction, which Asterisk requires", code = "ari.channels.mute(S.call)",
    method = "POST", path = "/ari/channels/{call}/mute", args = args("direction", "both"), ok = true },
  { name = "mute in", code = 'ari.channels.mute(S.call, { direction = "in" })',
    method = "POST", path = "/ari/channels/{call}/mute", args = args("direction", "in"), ok = true },
  { name = "unmute out", code = 'ari.channels.unmute(S.call, { direction = "out" })',
    method = "DELETE", path = "/ari/channels/{call}/mute", args = args("direction", "out"), ok = true },
  { name = "unmute: the documented direction", code = "ari.channels.unmute(S.call)",
    method = "DELETE", path = "/ari/channels/{call}/mute", args = args("direction", "both"), ok = true },
  { name = "sendDTMF sends only the timings given", code = 'ari.channels.sendDTMF(S.call, { dtmf = "12#*", duration = 80 })',
    method = "POST", path = "/ari/channels/{call}/dtmf", args = args("dtmf", "12#*", "duration", "80"), ok = true },
  { name = "sendDTMF with every timing",
    code = 'ari.channels.sendDTMF(S.call, { dtmf = "9", before = 0, between = 50, duration = 60, after = 10 })',
    method = "POST", path = "/ari/channels/{call}/dtmf",
    args = args("dtmf", "9", "before", "0", "between", "50", "duration", "60", "after", "10"), ok = true },
  { name = "setChannelVar: UTF-8, +, & and = survive the query string",
    code = 'ari.channels.setChannelVar(S.call, { variable = "GREETING", value = "Grüß Gott + 1 & 2=3" })',
    method = "POST", path = "/ari/channels/{call}/variable",
    args = args("variable", "GREETING", "value", "Grüß Gott + 1 & 2=3"), ok = true },
  { name = "getChannelVar", code = 'ari.channels.getChannelVar(S.call, { variable = "GREETING" })',
    method = "GET", path = "/ari/channels/{call}/variable", args = args("variable", "GREETING"),
    fields = { value = "Grüß Gott + 1 & 2=3" } },
  { name = "getChannelVar of a function", code = 'ari.channels.getChannelVar(S.call, { variable = "CALLERID(num)" })',
    method = "GET", path = "/ari/channels/{call}/variable", args = args("variable", "CALLERID(num)"),
    fields = { value = "+15551234" } },
  { name = "setChannelVar without a value sends no value (unsets it)",
    code = 'ari.channels.setChannelVar(S.call, { variable = "GREETING" })',
    method = "POST", path = "/ari/channels/{call}/variable", args = args("variable", "GREETING"), ok = true },
  { name = "getChannelVar of an unset variable: 404",
    code = 'ari.channels.getChannelVar(S.call, { variable = "GREETING" })',
    method = "GET", path = "/ari/channels/{call}/variable", args = args("variable", "GREETING"),
    err = { 404, "not_found", "Provided variable was not found" } },
  { name = "getChannelVar of an unknown function: 500",
    code = 'ari.channels.getChannelVar(S.call, { variable = "NOSUCHFUNC(x)" })',
    method = "GET", path = "/ari/channels/{call}/variable", args = args("variable", "NOSUCHFUNC(x)"),
    err = { 500, "server_error", "Unable to read provided function" } },
  { name = "getChannelVar of an empty name: 400", code = 'ari.channels.getChannelVar(S.call, { variable = "" })',
    method = "GET", path = "/ari/channels/{call}/variable", args = args("variable", ""),
    err = { 400, "bad_request", "Variable name is required" } },
  { name = "setChannelVar of an empty name: 400", code = 'ari.channels.setChannelVar(S.call, { variable = "" })',
    method = "POST", path = "/ari/channels/{call}/variable", args = args("variable", ""),
    err = { 400, "bad_request", "Variable name is required" } },
  { name = "getChannelVar on a channel not in Stasis works (the reference documents 409)",
    code = 'ari.channels.getChannelVar(S.orig .. ";2", { variable = "CHANNEL(name)" })',
    method = "GET", path = "/ari/channels/{orig}%3B2/variable", args = args("variable", "CHANNEL(name)"),
    fields = { value = "~^Local/1000@wait%-%x+;2$" } },
  { name = "sendDTMF without digits: 400", code = "ari.channels.sendDTMF(S.call)",
    method = "POST", path = "/ari/channels/{call}/dtmf", err = { 400, "bad_request", "DTMF is required" } },
  { name = "snoopChannel with neither spy nor whisper: 400", code = 'ari.channels.snoopChannel(S.call, { app = "luari" })',
    method = "POST", path = "/ari/channels/{call}/snoop", args = args("app", "luari", "snoopId", UUID),
    err = { 400, "bad_request", "Direction must be specified for at least spy or whisper" } },
  { name = "rtpstatistics of a PJSIP channel", code = "ari.channels.rtpstatistics(S.call)",
    method = "GET", path = "/ari/channels/{call}/rtp_statistics",
    fields = { channel_uniqueid = "{call}" },
    check = function(v) assert.is_number(v.txcount) end },
  { name = "rtpstatistics of a Local channel: 403 (the reference documents only 404)",
    code = "ari.channels.rtpstatistics(S.orig)", method = "GET", path = "/ari/channels/{orig}/rtp_statistics",
    err = { 403, "bad_request", "Unsupported channel type" } },
}

local DIAL = {
  { name = "dial the created channel", code = "ari.channels.dial(S.created, { caller = S.call, timeout = 10 })",
    method = "POST", path = "/ari/channels/{created}/dial", args = args("caller", "{call}", "timeout", "10"), ok = true },
  { name = "it answers", code = [[await(call, "Dial", S.created, { dialstatus = "ANSWER" })]],
    fields = { ["peer.state"] = "Up" } },
  { name = "dial a channel that is not Down: 409", code = "ari.channels.dial(S.call)",
    method = "POST", path = "/ari/channels/{call}/dial", err = { 409, "conflict", "Channel is not in the 'Down' state" } },
}

describe("luari.ari on a call in Stasis", function()
  local steps = {}
  for _, list in ipairs({ SIMPLE, matrix_steps(), DIAL }) do
    for _, s in ipairs(list) do
      steps[#steps + 1] = s
    end
  end
  block_tests("simple", steps)
end)

-- --- block 2: playbacks and recordings ------------------------------------------------

local MEDIA = {
  { name = "answer", code = "ari.channels.answer(S.call)", method = "POST", path = "/ari/channels/{call}/answer",
    ok = true },
  { name = "play a list of media (luari picks no playback id)",
    code = [[local pb, err = ari.channels.play(S.call, { media = { "sound:hello-world", "digits:42" }, lang = "en" })
      S.pb = pb and pb.id
      return pb, err]],
    method = "POST", path = "/ari/channels/{call}/play", args = args("media", "sound:hello-world,digits:42", "lang", "en"),
    fields = { id = UUID, state = "queued", media_uri = "sound:hello-world", next_media_uri = "digits:42",
      target_uri = "channel:{call}", language = "en" } },
  { name = "it starts", code = [[await(call, "PlaybackStarted", S.pb)]], fields = { ["playback.state"] = "playing" } },
  { name = "playbacks.get", code = "ari.playbacks.get(S.pb)", method = "GET", path = "/ari/playbacks/{pb}",
    fields = { id = "{pb}", state = "playing" } },
  { name = "playbacks.control pause", code = 'ari.playbacks.control(S.pb, { operation = "pause" })',
    method = "POST", path = "/ari/playbacks/{pb}/control", args = args("operation", "pause"), ok = true },
  { name = "playbacks.control unpause", code = 'ari.playbacks.control(S.pb, { operation = "unpause" })',
    method = "POST", path = "/ari/playbacks/{pb}/control", args = args("operation", "unpause"), ok = true },
  { name = "playbacks.control restart", code = 'ari.playbacks.control(S.pb, { operation = "restart" })',
    method = "POST", path = "/ari/playbacks/{pb}/control", args = args("operation", "restart"), ok = true },
  { name = "playbacks.control reverse", code = 'ari.playbacks.control(S.pb, { operation = "reverse" })',
    method = "POST", path = "/ari/playbacks/{pb}/control", args = args("operation", "reverse"), ok = true },
  { name = "playbacks.control forward", code = 'ari.playbacks.control(S.pb, { operation = "forward" })',
    method = "POST", path = "/ari/playbacks/{pb}/control", args = args("operation", "forward"), ok = true },
  { name = "playbacks.stop", code = "ari.playbacks.stop(S.pb)", method = "DELETE", path = "/ari/playbacks/{pb}",
    ok = true },
  { name = "it finishes", code = [[await(call, "PlaybackFinished", S.pb)]], fields = { ["playback.state"] = "done" } },
  { name = "playbacks.get of a finished playback: 404", code = "ari.playbacks.get(S.pb)",
    method = "GET", path = "/ari/playbacks/{pb}", err = { 404, "not_found", "Playback not found" } },
  { name = "playbacks.stop: 404", code = "ari.playbacks.stop(S.pb)", method = "DELETE", path = "/ari/playbacks/{pb}",
    err = { 404, "not_found", "Playback not found" } },
  { name = "playbacks.control: 404", code = 'ari.playbacks.control(S.pb, { operation = "pause" })',
    method = "POST", path = "/ari/playbacks/{pb}/control", args = args("operation", "pause"),
    err = { 404, "not_found", "Playback not found" } },
  { name = "playWithId, the id in the path", code = 'ari.channels.playWithId(S.call, "e2e tone/1", { media = "tone:ring" })',
    method = "POST", path = "/ari/channels/{call}/play/e2e%20tone%2F1", args = args("media", "tone:ring"),
    fields = { id = "e2e tone/1", state = "queued", media_uri = "tone:ring" } },
  { name = "it starts", code = [[await(call, "PlaybackStarted", "e2e tone/1")]],
    fields = { ["playback.state"] = "playing" } },
  { name = "play with a playbackId, queued behind it",
    code = 'ari.channels.play(S.call, { media = "sound:beep", playbackId = "e2e queued" })',
    method = "POST", path = "/ari/channels/{call}/play", args = args("media", "sound:beep", "playbackId", "e2e queued"),
    fields = { id = "e2e queued", state = "queued" } },
  { name = "playbacks.control of a queued playback: 409",
    code = 'ari.playbacks.control("e2e queued", { operation = "pause" })',
    method = "POST", path = "/ari/playbacks/e2e%20queued/control", args = args("operation", "pause"),
    err = { 409, "conflict", "Can only pause while media is playing" } },
  { name = "playbacks.stop of the queued one", code = 'ari.playbacks.stop("e2e queued")',
    method = "DELETE", path = "/ari/playbacks/e2e%20queued", ok = true },
  { name = "playbacks.stop of the tone", code = 'ari.playbacks.stop("e2e tone/1")',
    method = "DELETE", path = "/ari/playbacks/e2e%20tone%2F1", ok = true },
  { name = "the tone finishes", code = [[await(call, "PlaybackFinished", "e2e tone/1")]],
    fields = { ["playback.state"] = "done" } },
  { name = "so does the queued one", code = [[await(call, "PlaybackFinished", "e2e queued")]],
    fields = { ["playback.state"] = "done" } },

  { name = "record", code = [[ari.channels.record(S.call, { name = "e2e rec/1", format = "wav",
      maxDurationSeconds = 60, ifExists = "overwrite" })]],
    method = "POST", path = "/ari/channels/{call}/record",
    args = args("name", "e2e rec/1", "format", "wav", "maxDurationSeconds", "60", "ifExists", "overwrite"),
    fields = { name = "e2e rec/1", format = "wav", state = "queued", target_uri = "channel:{call}" } },
  { name = "it starts", code = [[await(call, "RecordingStarted", "e2e rec/1")]],
    fields = { ["recording.state"] = "recording" } },
  { name = "recordings.getLive", code = 'ari.recordings.getLive("e2e rec/1")',
    method = "GET", path = "/ari/recordings/live/e2e%20rec%2F1", fields = { name = "e2e rec/1", state = "recording" } },
  { name = "recordings.pause", code = 'ari.recordings.pause("e2e rec/1")',
    method = "POST", path = "/ari/recordings/live/e2e%20rec%2F1/pause", ok = true },
  { name = "recordings.unpause", code = 'ari.recordings.unpause("e2e rec/1")',
    method = "DELETE", path = "/ari/recordings/live/e2e%20rec%2F1/pause", ok = true },
  { name = "recordings.mute", code = 'ari.recordings.mute("e2e rec/1")',
    method = "POST", path = "/ari/recordings/live/e2e%20rec%2F1/mute", ok = true },
  { name = "recordings.unmute", code = 'ari.recordings.unmute("e2e rec/1")',
    method = "DELETE", path = "/ari/recordings/live/e2e%20rec%2F1/mute", ok = true },
  { name = "recordings.stop", code = 'ari.recordings.stop("e2e rec/1")',
    method = "POST", path = "/ari/recordings/live/e2e%20rec%2F1/stop", ok = true },
  { name = "it finishes", code = [[await(call, "RecordingFinished", "e2e rec/1")]],
    fields = { ["recording.state"] = "done" } },
  { name = "recordings.getLive of a finished recording: 404", code = 'ari.recordings.getLive("e2e rec/1")',
    method = "GET", path = "/ari/recordings/live/e2e%20rec%2F1", err = { 404, "not_found", "Recording not found" } },
  { name = "recordings.getStored", code = 'ari.recordings.getStored("e2e rec/1")',
    method = "GET", path = "/ari/recordings/stored/e2e%20rec%2F1", fields = { name = "e2e rec/1", format = "wav" } },
  { name = "recordings.getStoredFile: the audio itself, as a string",
    code = 'ari.recordings.getStoredFile("e2e rec/1")', bytes = true,
    method = "GET", path = "/ari/recordings/stored/e2e%20rec%2F1/file",
    check = function(v)
      assert.are.equal("RIFF", v:sub(1, 4))
      assert.are.equal("WAVE", v:sub(9, 12))
    end },
  { name = "recordings.copyStored", code = 'ari.recordings.copyStored("e2e rec/1", { destinationRecordingName = "e2e copy+1" })',
    method = "POST", path = "/ari/recordings/stored/e2e%20rec%2F1/copy",
    args = args("destinationRecordingName", "e2e copy+1"), fields = { name = "e2e copy+1", format = "wav" } },
  { name = "recordings.copyStored onto an existing name: 409",
    code = 'ari.recordings.copyStored("e2e rec/1", { destinationRecordingName = "e2e copy+1" })',
    method = "POST", path = "/ari/recordings/stored/e2e%20rec%2F1/copy",
    args = args("destinationRecordingName", "e2e copy+1"),
    err = { 409, "conflict", "A recording with the same name already exists on the system" } },
  { name = "record onto a stored name (ifExists fail): 409",
    code = 'ari.channels.record(S.call, { name = "e2e rec/1", format = "wav" })',
    method = "POST", path = "/ari/channels/{call}/record", args = args("name", "e2e rec/1", "format", "wav"),
    err = { 409, "conflict", "Recording 'e2e rec/1' already exists and can not be overwritten" } },
  { name = "record in an unknown format: 422",
    code = 'ari.channels.record(S.call, { name = "e2e-bad", format = "nosuchformat" })',
    method = "POST", path = "/ari/channels/{call}/record", args = args("name", "e2e-bad", "format", "nosuchformat"),
    err = { 422, "unprocessable", "specified format is unknown on this system" } },
  { name = "recordings.deleteStored", code = 'ari.recordings.deleteStored("e2e copy+1")',
    method = "DELETE", path = "/ari/recordings/stored/e2e%20copy%2B1", ok = true },
  { name = "recordings.deleteStored: 404", code = 'ari.recordings.deleteStored("e2e copy+1")',
    method = "DELETE", path = "/ari/recordings/stored/e2e%20copy%2B1", err = { 404, "not_found", "Recording not found" } },
  { name = "recordings.getStored: 404", code = 'ari.recordings.getStored("e2e copy+1")',
    method = "GET", path = "/ari/recordings/stored/e2e%20copy%2B1", err = { 404, "not_found", "Recording not found" } },
  { name = "recordings.copyStored of no recording: 404",
    code = 'ari.recordings.copyStored("e2e missing", { destinationRecordingName = "e2e x" })',
    method = "POST", path = "/ari/recordings/stored/e2e%20missing/copy", args = args("destinationRecordingName", "e2e x"),
    err = { 404, "not_found", "Recording not found" } },
}

for _, op in ipairs({ { "getLive", "GET", "" }, { "stop", "POST", "/stop" }, { "pause", "POST", "/pause" },
  { "unpause", "DELETE", "/pause" }, { "mute", "POST", "/mute" }, { "unmute", "DELETE", "/mute" },
  { "cancel", "DELETE", "" } }) do
  MEDIA[#MEDIA + 1] = { name = "recordings." .. op[1] .. " of no recording: 404",
    code = string.format('ari.recordings.%s("e2e missing")', op[1]),
    method = op[2], path = "/ari/recordings/live/e2e%20missing" .. op[3], err = { 404, "not_found", "Recording not found" } }
end

local QUEUED = {
  { name = "a tone", code = 'ari.channels.playWithId(S.call, "e2e tone/2", { media = "tone:ring" })',
    method = "POST", path = "/ari/channels/{call}/play/e2e%20tone%2F2", args = args("media", "tone:ring"),
    fields = { id = "e2e tone/2" } },
  { name = "it starts", code = [[await(call, "PlaybackStarted", "e2e tone/2")]], fields = { type = "PlaybackStarted" } },
  { name = "record, queued behind it", code = 'ari.channels.record(S.call, { name = "e2e queued", format = "wav" })',
    method = "POST", path = "/ari/channels/{call}/record", args = args("name", "e2e queued", "format", "wav"),
    fields = { state = "queued" } },
}
for _, op in ipairs({ { "pause", "POST", "/pause" }, { "unpause", "DELETE", "/pause" }, { "mute", "POST", "/mute" },
  { "unmute", "DELETE", "/mute" } }) do
  QUEUED[#QUEUED + 1] = { name = "recordings." .. op[1] .. " of a queued recording: 409",
    code = string.format('ari.recordings.%s("e2e queued")', op[1]),
    method = op[2], path = "/ari/recordings/live/e2e%20queued" .. op[3], err = { 409, "conflict", "Recording not in session" } }
end
for _, s in ipairs({
  { name = "recordings.cancel of the queued recording", code = 'ari.recordings.cancel("e2e queued")',
    method = "DELETE", path = "/ari/recordings/live/e2e%20queued", ok = true },
  { name = "recordings.getLive: it is gone", code = 'ari.recordings.getLive("e2e queued")',
    method = "GET", path = "/ari/recordings/live/e2e%20queued", err = { 404, "not_found", "Recording not found" } },
  { name = "stop the tone", code = 'ari.playbacks.stop("e2e tone/2")',
    method = "DELETE", path = "/ari/playbacks/e2e%20tone%2F2", ok = true },
  { name = "record once more", code = 'ari.channels.record(S.call, { name = "e2e cancelled", format = "wav" })',
    method = "POST", path = "/ari/channels/{call}/record", args = args("name", "e2e cancelled", "format", "wav"),
    fields = { name = "e2e cancelled" } },
  { name = "it starts", code = [[await(call, "RecordingStarted", "e2e cancelled")]],
    fields = { ["recording.state"] = "recording" } },
  { name = "recordings.cancel of a live recording", code = 'ari.recordings.cancel("e2e cancelled")',
    method = "DELETE", path = "/ari/recordings/live/e2e%20cancelled", ok = true },
  { name = "a cancelled recording is not stored", code = 'ari.recordings.getStored("e2e cancelled")',
    method = "GET", path = "/ari/recordings/stored/e2e%20cancelled", err = { 404, "not_found", "Recording not found" } },
}) do
  QUEUED[#QUEUED + 1] = s
end

describe("luari.ari playbacks and recordings", function()
  local steps = {}
  for _, list in ipairs({ MEDIA, QUEUED }) do
    for _, s in ipairs(list) do
      steps[#steps + 1] = s
    end
  end
  block_tests("media", steps)
end)

-- --- block 3: channels the flow creates, bridges, asterisk; bytes on the wire ----------------

local CREATE = {
  { name = "asterisk.getInfo", code = "ari.asterisk.getInfo()", method = "GET", path = "/ari/asterisk/info",
    raw = "GET /ari/asterisk/info", fields = { ["system.version"] = "22.10.1" } },
  { name = "asterisk.getInfo of some parts: a list goes out comma separated",
    code = 'ari.asterisk.getInfo({ only = { "build", "system" } })',
    method = "GET", path = "/ari/asterisk/info", args = args("only", "build,system"),
    raw = "GET /ari/asterisk/info?only=build,system",
    check = function(v)
      assert.is_table(v.build)
      assert.is_table(v.system)
      assert.is_nil(v.status)
      assert.is_nil(v.config)
    end },
  { name = "originate with every kind of value",
    code = [[local ch, err = ari.channels.originate({ endpoint = "Local/1000@wait", app = "luari",
        appArgs = "a b,c+d", callerId = '"Zoë" <+15551234>', timeout = 20,
        variables = { ["CALLERID(name)"] = "Zoë", GREETING = "a+b & c" } })
      S.orig = ch and ch.id
      return ch, err]],
    method = "POST", path = "/ari/channels",
    args = args("endpoint", "Local/1000@wait", "app", "luari", "appArgs", "a b,c+d", "callerId", '"Zoë" <+15551234>',
      "timeout", "20", "channelId", "{orig}"),
    body = { variables = { ["CALLERID(name)"] = "Zoë", GREETING = "a+b & c" } },
    raw = "POST /ari/channels?endpoint=Local%2F1000%40wait&app=luari&appArgs=a%20b%2Cc%2Bd"
      .. "&callerId=%22Zo%C3%AB%22%20%3C%2B15551234%3E&timeout=20&channelId={orig}",
    fields = { id = UUID, state = "Down", ["caller.name"] = "Zoë", ["caller.number"] = "+15551234" } },
  { name = "its StasisStart carries the arguments", code = [[await(call, "StasisStart", S.orig)]],
    fields = { ["args.1"] = "a b", ["args.2"] = "c+d", ["channel.caller.name"] = "Zoë" },
    check = function(ev) assert.are.equal(2, #ev.args) end },
  { name = "the variables of the body were set", code = 'ari.channels.getChannelVar(S.orig, { variable = "GREETING" })',
    method = "GET", path = "/ari/channels/{orig}/variable", args = args("variable", "GREETING"),
    raw = "GET /ari/channels/{orig}/variable?variable=GREETING", fields = { value = "a+b & c" } },
  { name = "originate into the dialplan",
    code = [[local ch, err = ari.channels.originate({ endpoint = "Local/1000@wait", extension = "s",
        context = "after-stasis", priority = 1 })
      S.dp = ch and ch.id
      return ch, err]],
    method = "POST", path = "/ari/channels",
    args = args("endpoint", "Local/1000@wait", "extension", "s", "context", "after-stasis", "priority", "1",
      "channelId", "{dp}"),
    fields = { id = UUID, state = "Down" } },
  { name = "originateWithId, the id in the path",
    code = [[ari.channels.originateWithId("e2e orig/1", { endpoint = "Local/1000@wait", app = "luari",
      otherChannelId = "e2e orig/1 peer", formats = "ulaw" })]],
    method = "POST", path = "/ari/channels/e2e%20orig%2F1",
    args = args("endpoint", "Local/1000@wait", "app", "luari", "otherChannelId", "e2e orig/1 peer", "formats", "ulaw"),
    raw = "POST /ari/channels/e2e%20orig%2F1?endpoint=Local%2F1000%40wait&app=luari"
      .. "&otherChannelId=e2e%20orig%2F1%20peer&formats=ulaw",
    fields = { id = "e2e orig/1", state = "Down" } },
  { name = "its StasisStart", code = [[await(call, "StasisStart", "e2e orig/1")]],
    fields = { ["channel.id"] = "e2e orig/1" } },
  { name = "originateWithId of an id in use: 409",
    code = 'ari.channels.originateWithId("e2e orig/1", { endpoint = "Local/1000@wait", app = "luari" })',
    method = "POST", path = "/ari/channels/e2e%20orig%2F1", args = args("endpoint", "Local/1000@wait", "app", "luari"),
    err = { 409, "conflict", "Channel with given unique ID already exists" } },
  { name = "originateWithId with an endpoint without a technology: 400",
    code = 'ari.channels.originateWithId("e2e orig/2", { endpoint = "NoSlash", app = "luari" })',
    method = "POST", path = "/ari/channels/e2e%20orig%2F2", args = args("endpoint", "NoSlash", "app", "luari"),
    err = { 400, "bad_request", "Invalid endpoint specified" } },
  { name = "originate with an endpoint without a technology: 400",
    code = 'ari.channels.originate({ endpoint = "NoSlash", app = "luari" })',
    method = "POST", path = "/ari/channels", args = args("endpoint", "NoSlash", "app", "luari", "channelId", UUID),
    err = { 400, "bad_request", "Invalid endpoint specified" } },
  { name = "originate with a channelId in use: 409",
    code = 'ari.channels.originate({ endpoint = "Local/1000@wait", app = "luari", channelId = S.orig })',
    method = "POST", path = "/ari/channels", args = args("endpoint", "Local/1000@wait", "app", "luari", "channelId", "{orig}"),
    err = { 409, "conflict", "Channel with given unique ID already exists" } },
  { name = "originate to an unknown technology: 500 (an 'error' body)",
    code = 'ari.channels.originate({ endpoint = "NoSuchTech/1", app = "luari" })',
    method = "POST", path = "/ari/channels", args = args("endpoint", "NoSuchTech/1", "app", "luari", "channelId", UUID),
    err = { 500, "server_error", "Allocation failed" } },
  { name = "rtpstatistics of a Local channel: 403", code = "ari.channels.rtpstatistics(S.orig)",
    method = "GET", path = "/ari/channels/{orig}/rtp_statistics", err = { 403, "bad_request", "Unsupported channel type" } },

  { name = "create with arguments and variables",
    code = [[local ch, err = ari.channels.create({ endpoint = "Local/1000@wait", app = "luari", appArgs = "made",
        variables = { LANG = "fr" } })
      S.created = ch and ch.id
      return ch, err]],
    method = "POST", path = "/ari/channels/create",
    args = args("endpoint", "Local/1000@wait", "app", "luari", "appArgs", "made", "channelId", "{created}"),
    body = { variables = { LANG = "fr" } },
    fields = { id = UUID, state = "Down" } },
  { name = "its StasisStart", code = [[await(call, "StasisStart", S.created)]],
    fields = { ["args.1"] = "made", ["channel.state"] = "Down" } },
  { name = "create with a channelId in use: 409",
    code = 'ari.channels.create({ endpoint = "Local/1000@wait", app = "luari", channelId = S.created })',
    method = "POST", path = "/ari/channels/create",
    args = args("endpoint", "Local/1000@wait", "app", "luari", "channelId", "{created}"),
    err = { 409, "conflict", "Channel with given unique ID already exists" } },
  { name = "dial it", code = "ari.channels.dial(S.created, { timeout = 5 })",
    method = "POST", path = "/ari/channels/{created}/dial", args = args("timeout", "5"), ok = true },
  { name = "it answers", code = [[await(call, "Dial", S.created, { dialstatus = "ANSWER" })]],
    fields = { ["peer.id"] = "{created}" } },

  { name = "snoopChannel (luari picks the snoopId)",
    code = [[local ch, err = ari.channels.snoopChannel(S.orig, { spy = "both", whisper = "in", app = "luari",
        appArgs = "spy,1" })
      S.snoop = ch and ch.id
      return ch, err]],
    method = "POST", path = "/ari/channels/{orig}/snoop",
    args = args("spy", "both", "whisper", "in", "app", "luari", "appArgs", "spy,1", "snoopId", "{snoop}"),
    fields = { id = UUID, state = "Up", name = "~^Snoop/" } },
  { name = "its StasisStart", code = [[await(call, "StasisStart", S.snoop)]],
    fields = { ["args.1"] = "spy", ["args.2"] = "1" } },
  { name = "snoopChannelWithId, the id in the path",
    code = 'ari.channels.snoopChannelWithId(S.orig, "e2e snoop/1", { spy = "out", app = "luari" })',
    method = "POST", path = "/ari/channels/{orig}/snoop/e2e%20snoop%2F1", args = args("spy", "out", "app", "luari"),
    fields = { id = "e2e snoop/1", name = "~^Snoop/" } },
  { name = "snoopChannelWithId with neither spy nor whisper: 400",
    code = 'ari.channels.snoopChannelWithId(S.orig, "e2e snoop/2", { app = "luari" })',
    method = "POST", path = "/ari/channels/{orig}/snoop/e2e%20snoop%2F2", args = args("app", "luari"),
    err = { 400, "bad_request", "Direction must be specified for at least spy or whisper" } },
  { name = "snoopChannelWithId of an id in use: 500 (undocumented)",
    code = 'ari.channels.snoopChannelWithId(S.orig, "e2e snoop/1", { spy = "out", app = "luari" })',
    method = "POST", path = "/ari/channels/{orig}/snoop/e2e%20snoop%2F1", args = args("spy", "out", "app", "luari"),
    err = { 500, "server_error", "Snoop channel could not be created" } },

  { name = "externalMedia (luari picks the channelId)",
    code = [[local ch, err = ari.channels.externalMedia({ app = "luari", external_host = "127.0.0.1:40000",
        format = "ulaw", variables = { EM = "1" } })
      S.em = ch and ch.id
      return ch, err]],
    method = "POST", path = "/ari/channels/externalMedia",
    args = args("channelId", "{em}", "app", "luari", "external_host", "127.0.0.1:40000", "format", "ulaw"),
    body = { variables = { EM = "1" } },
    raw = "POST /ari/channels/externalMedia?channelId={em}&app=luari&external_host=127.0.0.1%3A40000&format=ulaw",
    fields = { id = UUID, name = "~^UnicastRTP/127%.0%.0%.1:40000%-", ["channelvars.UNICASTRTP_LOCAL_ADDRESS"] = "127.0.0.1" } },
  { name = "its StasisStart", code = [[await(call, "StasisStart", S.em)]], fields = { ["channel.state"] = "Up" } },
  { name = "rtpstatistics of the external media channel: 404", code = "ari.channels.rtpstatistics(S.em)",
    method = "GET", path = "/ari/channels/{em}/rtp_statistics", err = { 404, "not_found", "RTP info not found" } },
  { name = "externalMedia without a port: 400",
    code = 'ari.channels.externalMedia({ app = "luari", external_host = "nohostport", format = "ulaw" })',
    method = "POST", path = "/ari/channels/externalMedia",
    args = args("channelId", UUID, "app", "luari", "external_host", "nohostport", "format", "ulaw"),
    err = { 400, "bad_request", "external_host must be <host>:<port> for all transports other than websocket" } },
  { name = "externalMedia with a channelId in use: 409",
    code = 'ari.channels.externalMedia({ channelId = S.em, app = "luari", external_host = "127.0.0.1:40002", format = "ulaw" })',
    method = "POST", path = "/ari/channels/externalMedia",
    args = args("channelId", "{em}", "app", "luari", "external_host", "127.0.0.1:40002", "format", "ulaw"),
    err = { 409, "conflict", "Channel with given unique ID already exists" } },

  { name = "bridges.create (luari picks the bridgeId)",
    code = [[local b, err = ari.bridges.create({ type = "mixing", name = "e2e conf" })
      S.br = b and b.id
      return b, err]],
    method = "POST", path = "/ari/bridges", args = args("type", "mixing", "bridgeId", "{br}", "name", "e2e conf"),
    raw = "POST /ari/bridges?type=mixing&bridgeId={br}&name=e2e%20conf",
    fields = { id = UUID, bridge_type = "mixing", name = "e2e conf" } },
  { name = "bridges.create with a bridgeId in use: 409", code = "ari.bridges.create({ bridgeId = S.br })",
    method = "POST", path = "/ari/bridges", args = args("bridgeId", "{br}"),
    err = { 409, "conflict", "Bridge with id '{br}' already exists" } },
  { name = "bridges.get", code = "ari.bridges.get(S.br)", method = "GET", path = "/ari/bridges/{br}",
    fields = { id = "{br}", technology = "simple_bridge" } },
  { name = "bridges.list", code = "ari.bridges.list()", method = "GET", path = "/ari/bridges",
    check = function(v, S) assert.is_true(has_id(v, S.br)) end },
  { name = "bridges.addChannel of two channels, comma separated",
    code = 'ari.bridges.addChannel(S.br, { channel = { S.orig, "e2e orig/1" } })',
    method = "POST", path = "/ari/bridges/{br}/addChannel", args = args("channel", "{orig},e2e orig/1"),
    raw = "POST /ari/bridges/{br}/addChannel?channel={orig},e2e%20orig%2F1", ok = true },
  { name = "both are members", code = "ari.bridges.get(S.br)", method = "GET", path = "/ari/bridges/{br}",
    check = function(v, S) assert.are.same({ S.orig, "e2e orig/1" }, v.channels) end },
  { name = "bridges.play", code = 'ari.bridges.play(S.br, { media = "sound:beep" })',
    method = "POST", path = "/ari/bridges/{br}/play", args = args("media", "sound:beep"),
    fields = { target_uri = "bridge:{br}", state = "queued", media_uri = "sound:beep" } },
  { name = "bridges.play on no bridge: 404", code = 'ari.bridges.play("e2e no bridge", { media = "sound:beep" })',
    method = "POST", path = "/ari/bridges/e2e%20no%20bridge/play", args = args("media", "sound:beep"),
    err = { 404, "not_found", "Bridge not found" } },
  { name = "bridges.addChannel of no channel: 400", code = 'ari.bridges.addChannel(S.br, { channel = "PJSIP/100" })',
    method = "POST", path = "/ari/bridges/{br}/addChannel", args = args("channel", "PJSIP/100"),
    err = { 400, "bad_request", "Channel not found" } },
  { name = "bridges.addChannel to no bridge: 404", code = 'ari.bridges.addChannel("e2e no bridge", { channel = S.orig })',
    method = "POST", path = "/ari/bridges/e2e%20no%20bridge/addChannel", args = args("channel", "{orig}"),
    err = { 404, "not_found", "Bridge not found" } },
  { name = "bridges.addChannel of a channel not in Stasis: 422",
    code = 'ari.bridges.addChannel(S.br, { channel = S.orig .. ";2" })',
    method = "POST", path = "/ari/bridges/{br}/addChannel", args = args("channel", "{orig};2"),
    err = { 422, "unprocessable", "Channel not in Stasis application" } },
  { name = "record the created channel", code = 'ari.channels.record(S.created, { name = "e2e br rec", format = "wav" })',
    method = "POST", path = "/ari/channels/{created}/record", args = args("name", "e2e br rec", "format", "wav"),
    fields = { name = "e2e br rec" } },
  { name = "it starts", code = [[await(call, "RecordingStarted", "e2e br rec")]], fields = { type = "RecordingStarted" } },
  { name = "bridges.addChannel of a channel that is recording: 409",
    code = "ari.bridges.addChannel(S.br, { channel = S.created })",
    method = "POST", path = "/ari/bridges/{br}/addChannel", args = args("channel", "{created}"),
    err = { 409, "conflict", "Channel {created} currently recording" } },
  { name = "cancel that recording", code = 'ari.recordings.cancel("e2e br rec")',
    method = "DELETE", path = "/ari/recordings/live/e2e%20br%20rec", ok = true },
  { name = "bridges.removeChannel", code = "ari.bridges.removeChannel(S.br, { channel = S.orig })",
    method = "POST", path = "/ari/bridges/{br}/removeChannel", args = args("channel", "{orig}"), ok = true },
  { name = "bridges.removeChannel of a channel not in it: 422",
    code = "ari.bridges.removeChannel(S.br, { channel = S.orig })",
    method = "POST", path = "/ari/bridges/{br}/removeChannel", args = args("channel", "{orig}"),
    err = { 422, "unprocessable", "Channel not in this bridge" } },
  { name = "bridges.removeChannel of no channel: 400", code = 'ari.bridges.removeChannel(S.br, { channel = "PJSIP/100" })',
    method = "POST", path = "/ari/bridges/{br}/removeChannel", args = args("channel", "PJSIP/100"),
    err = { 400, "bad_request", "Channel not found" } },
  { name = "bridges.removeChannel from no bridge: 404",
    code = 'ari.bridges.removeChannel("e2e no bridge", { channel = S.orig })',
    method = "POST", path = "/ari/bridges/e2e%20no%20bridge/removeChannel", args = args("channel", "{orig}"),
    err = { 404, "not_found", "Bridge not found" } },
  { name = "bridges.destroy", code = "ari.bridges.destroy(S.br)", method = "DELETE", path = "/ari/bridges/{br}", ok = true },
  { name = "bridges.destroy: 404", code = "ari.bridges.destroy(S.br)", method = "DELETE", path = "/ari/bridges/{br}",
    err = { 404, "not_found", "Bridge not found" } },
  { name = "bridges.get: 404", code = "ari.bridges.get(S.br)", method = "GET", path = "/ari/bridges/{br}",
    err = { 404, "not_found", "Bridge not found" } },

  { name = "move to an application nobody is connected to",
    code = 'ari.channels.move(S.orig, { app = "elsewhere", appArgs = "x,y" })',
    method = "POST", path = "/ari/channels/{orig}/move", args = args("app", "elsewhere", "appArgs", "x,y"), ok = true },
  { name = "ApplicationMoveFailed", code = [[await(call, "ApplicationMoveFailed", S.orig)]],
    fields = { destination = "elsewhere", ["args.1"] = "x", ["args.2"] = "y" } },
  { name = "redirect a Local channel", code = 'ari.channels.redirect(S.orig, { endpoint = "Local/2000@elsewhere" })',
    method = "POST", path = "/ari/channels/{orig}/redirect", args = args("endpoint", "Local/2000@elsewhere"),
    raw = "POST /ari/channels/{orig}/redirect?endpoint=Local%2F2000%40elsewhere", ok = true },
  { name = "redirect to another technology: 422", code = 'ari.channels.redirect(S.orig, { endpoint = "PJSIP/200" })',
    method = "POST", path = "/ari/channels/{orig}/redirect", args = args("endpoint", "PJSIP/200"),
    err = { 422, "unprocessable", "Endpoint technology 'PJSIP' does not match channel technology 'Local'" } },
  { name = "redirect to an empty endpoint: 400", code = 'ari.channels.redirect(S.orig, { endpoint = "" })',
    method = "POST", path = "/ari/channels/{orig}/redirect", args = args("endpoint", ""),
    err = { 400, "bad_request", "Required parameter 'endpoint' not provided." } },
  { name = "continueInDialplan to an unknown label: 404",
    code = 'ari.channels.continueInDialplan(S.orig, { label = "nosuch" })',
    method = "POST", path = "/ari/channels/{orig}/continue", args = args("label", "nosuch"),
    err = { 404, "not_found", "Requested label can not be found" } },
  { name = "continueInDialplan",
    code = 'ari.channels.continueInDialplan(S.orig, { context = "after-stasis", extension = "s", priority = 1 })',
    method = "POST", path = "/ari/channels/{orig}/continue",
    args = args("context", "after-stasis", "extension", "s", "priority", "1"), ok = true },
  { name = "StasisEnd", code = [[await(call, "StasisEnd", S.orig)]], fields = { ["channel.id"] = "{orig}" } },
  { name = "continueInDialplan of a channel that left: 409", code = "ari.channels.continueInDialplan(S.orig)",
    method = "POST", path = "/ari/channels/{orig}/continue",
    err = { 409, "conflict", "Channel not in Stasis application" } },
  { name = "hangup with a reason", code = 'ari.channels.hangup("e2e orig/1", { reason = "busy" })',
    method = "DELETE", path = "/ari/channels/e2e%20orig%2F1", args = args("reason", "busy"),
    raw = "DELETE /ari/channels/e2e%20orig%2F1?reason=busy", ok = true },
  { name = "destroyed with cause 17", code = [[await(call, "ChannelDestroyed", "e2e orig/1")]],
    fields = { cause = 17 } },
  { name = "hangup with a reason code", code = 'ari.channels.hangup(S.created, { reason_code = "21" })',
    method = "DELETE", path = "/ari/channels/{created}", args = args("reason_code", "21"), ok = true },
  { name = "destroyed with cause 21", code = [[await(call, "ChannelDestroyed", S.created)]], fields = { cause = 21 } },
  { name = "hangup with a reason code that is no number: 400",
    code = 'ari.channels.hangup(S.em, { reason_code = "abc" })',
    method = "DELETE", path = "/ari/channels/{em}", args = args("reason_code", "abc"),
    err = { 400, "bad_request", "Invalid reason for hangup reason code provided" } },
  { name = "hangup sends nothing it was not given", code = "ari.channels.hangup(S.em)",
    method = "DELETE", path = "/ari/channels/{em}", raw = "DELETE /ari/channels/{em}", ok = true },
  { name = "hangup of a channel that is gone: 404", code = 'ari.channels.hangup("e2e orig/1")',
    method = "DELETE", path = "/ari/channels/e2e%20orig%2F1", err = { 404, "not_found", "Channel not found" } },
}

describe("luari.ari on channels a flow creates, bridges and asterisk, byte for byte", function()
  block_tests("create", CREATE, { tap = true })
end)
