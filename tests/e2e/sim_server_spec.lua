-- End to end: the network face of `luari sim-server` against the captures
-- of a real Asterisk 22.10.1 (ari-samples): status, body and headers of
-- authentication failures, unknown paths and wrong methods, 201/204/200
-- responses, the events WebSocket (handshake, refusals, ApplicationReplaced,
-- events of originated channels) and REST over the WebSocket. HTTP goes
-- through curl, WebSockets through tests/node/ws_probe.js (node's ws).

local h = require "e2e.helper"
local json = require "cjson"

local AUTH = h.user .. ":" .. h.password

-- The captured exchanges, by seq.
local captured
local function capture(seq)
  if not captured then
    captured = {}
    for line in io.lines(h.samples_dir() .. "/responses.jsonl") do
      local r = json.decode(line)
      captured[r.seq] = r
    end
  end
  return assert(captured[seq], "no captured exchange " .. seq)
end

-- The captured events, in order.
local function captured_events()
  local out = {}
  for line in io.lines(h.samples_dir() .. "/events.jsonl") do
    out[#out + 1] = json.decode(line)
  end
  return out
end

local n = 0
-- curl -i: { status, headers = { lower-case name = value }, body }.
-- opts: user, password (Basic), headers = { "Name: value" }, no_auth,
-- data (the request body, sent as it is).
local function raw(method, url, opts)
  opts = opts or {}
  n = n + 1
  local base = h.tmpdir() .. "/raw-" .. n
  local cmd = { "curl", "-s", "--max-time", "5", "-D", h.quote(base .. ".head"), "-o", h.quote(base .. ".body"),
    "-X", method }
  if not opts.no_auth then
    cmd[#cmd + 1] = "-u " .. h.quote((opts.user or h.user) .. ":" .. (opts.password or h.password))
  end
  for _, hd in ipairs(opts.headers or {}) do
    cmd[#cmd + 1] = "-H " .. h.quote(hd)
  end
  if opts.data then
    cmd[#cmd + 1] = "--data-binary " .. h.quote(opts.data)
  end
  cmd[#cmd + 1] = h.quote(url)
  os.execute(table.concat(cmd, " "))
  local head = h.read(base .. ".head")
  local res = { headers = {}, body = h.read(base .. ".body") }
  res.status = tonumber(head:match("^HTTP/%S+ (%d+)"))
  for name, value in head:gmatch("\n([%w%-]+):%s*([^\r\n]*)") do
    res.headers[name:lower()] = value
  end
  return res
end

local UPGRADE = { "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" }

-- Replays captured exchange `seq` against the simulator: same method, path
-- and credentials.
local function replay(sim, seq)
  local c = capture(seq)
  local opts = { no_auth = true, headers = {} }
  local auth = c.request_headers and c.request_headers.Authorization
  if auth then
    local user, password = auth:match("^%(Basic ([^:]*):(.*)%)$")
    opts.no_auth, opts.user, opts.password = false, user, password
  end
  local method = c.method
  if method:find("WebSocket", 1, true) then
    method, opts.headers = "GET", UPGRADE
  end
  return raw(method, sim.base .. c.path, opts), c
end

local function same_json(expected_text_or_table, actual_text)
  local expected = expected_text_or_table
  if type(expected) == "string" then
    expected = json.decode(expected)
  end
  return json.decode(actual_text), expected
end

local function probe(sim, steps)
  local r, output = h.node("ws_probe.js", { sim.base, AUTH, json.encode(steps) })
  assert.is_nil(r.error, output)
  return r
end

local function of_type(messages, t)
  local out = {}
  for _, m in ipairs(messages) do
    if m.type == t then
      out[#out + 1] = m
    end
  end
  return out
end

local function keys(t)
  local out = {}
  for k in pairs(t) do
    out[#out + 1] = k
  end
  table.sort(out)
  return out
end

describe("luari sim-server's network face, compared with the captures", function()
  local sim
  setup(function()
    sim = h.start_sim()
  end)
  teardown(h.stop_all)

  describe("answers what the captured Asterisk answered", function()
    -- no credentials, wrong password, api_key, wrong api_key, unknown user,
    -- unknown path, wrong method, unknown sub-resource; WebSocket without
    -- app, with an empty app, a wrong api_key, no credentials
    for _, seq in ipairs({ 35, 36, 37, 38, 39, 42, 43, 44, 5, 6, 7, 8 }) do
      local c = capture(seq)
      it(string.format("#%d %s %s (%s)", seq, c.method, c.path, c.note or ""), function()
        local res = replay(sim, seq)
        assert.are.equal(c.status, res.status)
        for _, name in ipairs({ "server", "cache-control", "content-type", "www-authenticate", "allow" }) do
          assert.are.equal(c.headers[name], res.headers[name], name)
        end
        assert.are.equal(tostring(#res.body), res.headers["content-length"])
        if type(c.body) == "string" then
          assert.are.equal(c.body, res.body)
        elseif c.status == 200 then
          assert.are.same(keys(c.body), keys(json.decode(res.body)))
        else
          assert.are.equal(c.headers["content-length"], res.headers["content-length"])
          assert.are.same(c.body, json.decode(res.body))
        end
      end)
    end
  end)

  it("sends 201 with Location, 204 with Content-Length 0 and no type, 200 as JSON", function()
    h.hold_app(sim, "net-face")
    local id = h.call(sim, { app = "net-face" })
    local answered = raw("POST", sim.url .. "/channels/" .. id .. "/answer")
    assert.are.equal(204, answered.status)
    assert.are.equal("0", answered.headers["content-length"])
    assert.is_nil(answered.headers["content-type"])
    assert.are.equal("Asterisk/22.10.1", answered.headers.server)
    assert.are.equal("no-cache, no-store", answered.headers["cache-control"])

    local played = raw("POST", sim.url .. "/channels/" .. id .. "/play/pb-net-1?media=sound:hello-world")
    assert.are.equal(201, played.status)
    assert.are.equal("/ari/playbacks/pb-net-1", played.headers.location)
    assert.are.equal("application/json", played.headers["content-type"])
    assert.are.equal("queued", json.decode(played.body).state)

    local recorded = raw("POST", sim.url .. "/channels/" .. id .. "/record?name=net-rec&format=wav")
    assert.are.equal(201, recorded.status)
    assert.are.equal("/ari/recordings/live/net-rec", recorded.headers.location)

    local got = raw("POST", sim.url .. "/channels?endpoint=Local/1000@wait&app=net-face&channelId=net-orig")
    assert.are.equal(200, got.status)
    assert.are.equal("application/json", got.headers["content-type"])
    assert.is_nil(got.headers.location)
    assert.are.equal(tostring(#got.body), got.headers["content-length"])
    -- JSON as Asterisk writes it: "/" is not escaped
    assert.is_truthy(got.body:find('"name":"Local/1000@wait-', 1, true), got.body)
    assert.is_nil(got.body:find("\\/", 1, true))
  end)

  it("refuses a simulated caller for an application with no WebSocket, as Stasis() would", function()
    local status, res = h.http("POST", sim.base .. "/sim/calls", { app = "nobody-listens" })
    assert.are.equal(409, status)
    assert.matches("no WebSocket is connected for application nobody%-listens", res.message)
    -- An originated channel answers, then Stasis() fails: it is gone at once.
    local got = raw("POST", sim.url .. "/channels?endpoint=Local/1000@wait&app=nobody-listens&channelId=refused-1")
    assert.are.equal(200, got.status)
    h.wait_for(function()
      return raw("GET", sim.url .. "/channels/refused-1").status == 404
    end, 5, "the refused channel to end")
  end)

  -- What res_ari does (its source; the captures have no such request).
  describe("reads a request as res_ari does", function()
    it("takes form fields from a urlencoded body, a query parameter winning", function()
      local got = raw("POST", sim.url .. "/channels?channelId=form-q", { data = "endpoint=Local%2F1000%40wait"
        .. "&app=form-app&channelId=form-body", headers = { "Content-Type: application/x-www-form-urlencoded" } })
      assert.are.equal(200, got.status, got.body)
      local ch = json.decode(got.body)
      assert.are.equal("form-q", ch.id)
      assert.matches("^Local/1000@wait%-", ch.name)
    end)

    it("reads a JSON body only when its type says JSON", function()
      local body = '{"endpoint":"Local/1000@wait","app":"json-app"}'
      for _, hd in ipairs({ "Content-Type: text/plain", "Content-Type: application/octet-stream" }) do
        local got = raw("POST", sim.url .. "/channels", { data = body, headers = { hd } })
        assert.are.equal(400, got.status, hd)
        assert.are.same({ message = "Endpoint must be specified" }, json.decode(got.body), hd)
      end
      -- not read, so not a parse error either
      local bad = raw("POST", sim.url .. "/channels?endpoint=Local/1000@wait&app=json-app&channelId=json-ignored",
        { data = "{oops", headers = { "Content-Type: text/plain" } })
      assert.are.equal(200, bad.status, bad.body)
      local typed = raw("POST", sim.url .. "/channels", { data = body,
        headers = { "Content-Type: Application/JSON; charset=utf-8" } })
      assert.are.equal(200, typed.status, typed.body)
    end)

    it("answers a URL ending in a slash with 404 and the URL to use", function()
      local res = raw("GET", sim.url .. "/channels/")
      assert.are.equal(404, res.status)
      assert.are.same({ message = "ARI URLs do not end with a slash. Try /ari/channels" }, json.decode(res.body))
      -- credentials first, as res_ari
      assert.are.equal(401, raw("GET", sim.url .. "/channels/", { no_auth = true }).status)
    end)

    it("serves api-docs to GET only", function()
      local res = raw("POST", sim.url .. "/api-docs/resources.json")
      assert.are.equal(405, res.status)
      assert.are.same({ message = "Unsupported method" }, json.decode(res.body))
      assert.are.equal(200, raw("GET", sim.url .. "/api-docs/resources.json").status)
    end)

    it("goes by the Basic header when there is one, by api_key only when there is none", function()
      local good = h.user .. ":" .. h.password
      assert.are.equal(200, raw("GET", sim.url .. "/channels?api_key=" .. h.user .. ":wrong").status)
      assert.are.equal(401, raw("GET", sim.url .. "/channels?api_key=" .. good, { password = "wrong" }).status)
      assert.are.equal(200, raw("GET", sim.url .. "/channels?api_key=" .. good, { no_auth = true }).status)
      assert.are.equal(200, raw("GET", sim.url .. "/channels?api_key=" .. good,
        { no_auth = true, headers = { "Authorization: Bearer x" } }).status)
    end)
  end)

  it("stops with an error when it cannot write --port-file", function()
    local p = io.popen(h.CLEAN_ENV .. h.quote(h.bin) .. " sim-server --listen 127.0.0.1:0"
      .. " --port-file /nonexistent/dir/port 2>&1; echo exit=$?")
    local out = p:read("*a")
    p:close()
    assert.truthy(out:find("sim-server: --port-file: cannot write /nonexistent/dir/port", 1, true), out)
    assert.truthy(out:find("exit=1", 1, true), out)
  end)

  it("answers OPTIONS with the methods of the path", function()
    local res = raw("OPTIONS", sim.url .. "/channels")
    assert.are.equal(204, res.status)
    assert.are.equal("OPTIONS,GET,POST", res.headers.allow)
    assert.are.equal(404, raw("OPTIONS", sim.url .. "/no-such-resource").status)
  end)

  it("keeps the newest requests in its journal, oldest first, up to its limit", function()
    local small = h.start_sim({ args = { "--script", "tests/e2e/faults/journal_limit.lua" } })
    for i = 1, 5 do
      h.http("GET", small.url .. "/channels/journal-" .. i)
    end
    local paths = {}
    for _, r in ipairs(h.journal(small)) do
      paths[#paths + 1] = r.path
    end
    assert.are.same({ "/ari/channels/journal-3", "/ari/channels/journal-4", "/ari/channels/journal-5" }, paths)
    h.clear_journal(small)
    h.http("GET", small.url .. "/channels/journal-6")
    assert.are.equal(1, #h.journal(small))
  end)

  it("answers an empty list as [], over HTTP and over the WebSocket", function()
    local fresh = h.start_sim()
    for _, path in ipairs({ "/channels", "/bridges", "/recordings/stored", "/deviceStates" }) do
      local res = raw("GET", fresh.url .. path)
      assert.are.equal(200, res.status, path)
      assert.are.equal("[]", res.body, path)
    end
    -- the journal (which leaves out /sim requests) after it is cleared
    h.clear_journal(fresh)
    assert.are.equal("[]", raw("GET", fresh.base .. "/sim/requests").body)
    local r = probe(fresh, {
      { op = "open", name = "a", path = "/ari/events?app=empty&api_key={{auth}}" },
      { op = "send", name = "a", data = { type = "RESTRequest", transaction_id = "t", request_id = "r",
        method = "GET", uri = "channels" } },
      { op = "wait", name = "a", type = "RESTResponse" },
    })
    local reply = of_type(r.sockets.a.messages, "RESTResponse")[1]
    assert.are.equal(200, reply.status_code)
    assert.are.equal("[]", reply.message_body)
  end)

  describe("the events WebSocket", function()
    it("upgrades with 101 and the headers Asterisk sends, and sends nothing on connect", function()
      local c = capture(2)
      local r = probe(sim, {
        { op = "open", name = "a", path = "/ari/events?app=hs&api_key={{auth}}" },
        { op = "sleep", ms = 300 },
        { op = "close", name = "a" },
      })
      local hs = r.steps[1]
      assert.are.equal(101, hs.status)
      for _, name in ipairs({ "upgrade", "connection" }) do
        assert.are.equal(c.headers[name]:lower(), hs.headers[name]:lower(), name)
      end
      assert.is_truthy(hs.headers["sec-websocket-accept"])
      assert.is_nil(hs.headers.server)
      assert.is_nil(hs.headers["content-type"])
      assert.are.same({}, r.sockets.a.messages)
      assert.are.equal(1000, r.steps[3].code)
    end)

    it("hands a call of its [ivr] context to the one application connected", function()
      local fresh = h.start_sim()
      local r = probe(fresh, {
        { op = "open", name = "a", path = "/ari/events?app=ivr-only&api_key={{auth}}" },
        { op = "send", name = "a", data = { type = "RESTRequest", transaction_id = "t", request_id = "r1",
          method = "POST", uri = "channels?endpoint=Local/2000@ivr&context=wait&extension=1000"
            .. "&otherChannelId=in-ivr-1" } },
        { op = "wait", name = "a", type = "StasisStart" },
      })
      local start = of_type(r.sockets.a.messages, "StasisStart")[1]
      assert.are.equal("in-ivr-1", start.channel.id)
      assert.are.equal("ivr-only", start.application)
      assert.are.same({ "2000" }, start.args)
    end)

    it("reads subscribeAll as Asterisk's ast_true does (1, yes, on, true)", function()
      local r = probe(sim, {
        { op = "open", name = "a", path = "/ari/events?app=all-one&subscribeAll=1&api_key={{auth}}" },
        { op = "open", name = "b", path = "/ari/events?app=all-no&subscribeAll=no&api_key={{auth}}" },
        { op = "send", name = "a", data = { type = "RESTRequest", transaction_id = "t", request_id = "r1",
          method = "GET", uri = "applications/all-one" } },
        { op = "wait", name = "a", type = "RESTResponse" },
        { op = "send", name = "b", data = { type = "RESTRequest", transaction_id = "t", request_id = "r2",
          method = "GET", uri = "applications/all-no" } },
        { op = "wait", name = "b", type = "RESTResponse" },
      })
      local one = json.decode(of_type(r.sockets.a.messages, "RESTResponse")[1].message_body)
      local no = json.decode(of_type(r.sockets.b.messages, "RESTResponse")[1].message_body)
      assert.are.same({ "__AST_CHANNEL_ALL_TOPIC" }, one.channel_ids)
      assert.are.same({}, no.channel_ids)
    end)

    it("refuses a socket without app (400 HTML) and with bad credentials (401 JSON)", function()
      local r = probe(sim, {
        { op = "open", name = "noapp", path = "/ari/events?api_key={{auth}}" },
        { op = "open", name = "badkey", path = "/ari/events?app=x&api_key=asterisk:wrong" },
        { op = "open", name = "nokey", path = "/ari/events?app=x" },
      })
      assert.are.equal(400, r.steps[1].status)
      assert.are.equal("text/html", r.steps[1].headers["content-type"])
      assert.are.equal(capture(5).body, r.steps[1].body)
      for i = 2, 3 do
        assert.are.equal(401, r.steps[i].status)
        assert.are.equal("application/json", r.steps[i].headers["content-type"])
        assert.are.equal(capture(7).headers["www-authenticate"], r.steps[i].headers["www-authenticate"])
        assert.are.same({ message = "Authentication required" }, json.decode(r.steps[i].body))
      end
    end)

    it("sends ApplicationReplaced to the first socket when a second opens, and keeps it open", function()
      local r = probe(sim, {
        { op = "open", name = "first", path = "/ari/events?app=replace-me&api_key={{auth}}" },
        { op = "open", name = "second", path = "/ari/events?app=replace-me&api_key={{auth}}" },
        { op = "wait", name = "first", type = "ApplicationReplaced" },
        { op = "sleep", ms = 500 },
        { op = "http", method = "GET", path = "/ari/applications/replace-me" },
        { op = "close", name = "second" },
        { op = "close", name = "first" },
        { op = "sleep", ms = 100 },
        { op = "http", method = "GET", path = "/ari/applications/replace-me" },
      })
      assert.is_true(r.steps[3].ok)
      local first, second = r.sockets.first, r.sockets.second
      assert.are.equal(1, #first.messages)
      local replaced = first.messages[1]
      local c
      for _, e in ipairs(captured_events()) do
        if e.event and e.event.type == "ApplicationReplaced" then
          c = e.event
          break
        end
      end
      assert.are.same(keys(c), keys(replaced))
      assert.are.equal("replace-me", replaced.application)
      assert.are.same({}, second.messages)
      -- not closed by the server: both closes were ours, normal ones
      assert.are.equal(1000, first.closed.code)
      assert.are.equal(200, r.steps[5].status)
      assert.are.equal("replace-me", json.decode(r.steps[5].body).name)
      assert.are.equal(404, r.steps[9].status)
      assert.are.same({ message = "Application not found" }, json.decode(r.steps[9].body))
    end)

    it("carries the events of an originated channel, in Asterisk's order", function()
      local r = probe(sim, {
        { op = "open", name = "a", path = "/ari/events?app=orig-app&api_key={{auth}}" },
        { op = "http", method = "POST",
          path = "/ari/channels?endpoint=Local/1000@wait&app=orig-app&appArgs=x,y&channelId=orig-1" },
        { op = "wait", name = "a", type = "StasisStart" },
        { op = "http", method = "DELETE", path = "/ari/channels/orig-1" },
        { op = "wait", name = "a", type = "ChannelDestroyed", count = 2 },
      })
      assert.are.equal(200, r.steps[2].status)
      assert.is_true(r.steps[3].ok and r.steps[5].ok)
      local mine = {}
      for _, m in ipairs(r.sockets.a.messages) do
        if m.channel and m.channel.id == "orig-1" or (m.peer and m.peer.id == "orig-1") then
          mine[#mine + 1] = m.type
        end
        assert.are.equal("orig-app", m.application)
        assert.is_truthy(m.timestamp and m.asterisk_id)
      end
      -- Asterisk: Dial "", [the peer answers], Dial ANSWER, Varset, StasisStart;
      -- hang-up: HangupRequest, StasisEnd, Varset, Destroyed
      assert.are.same({ "Dial", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart",
        "ChannelHangupRequest", "StasisEnd", "ChannelVarset", "ChannelDestroyed" }, mine)
      local start = of_type(r.sockets.a.messages, "StasisStart")[1]
      assert.are.same({ "x", "y" }, start.args)
      assert.are.equal("Up", start.channel.state)
    end)

    it("answers a RESTRequest it cannot parse with a 400 naming why, its ids echoed", function()
      local bad = {
        { { request_id = "r1", transaction_id = "t1", method = "GET", uri = "asterisk/ping" },
          "No 'type' property.", "" },
        { { type = "Hello", request_id = "r2", transaction_id = "t2", uri = "asterisk/ping" },
          "Unknown request type.", "" },
        { { type = "RESTRequest", request_id = "r3", transaction_id = "t3", method = "GET" },
          "Empty or missing 'uri' property.", "" },
        { { type = "RESTRequest", request_id = "r4", transaction_id = "t4", method = "FETCH", uri = "asterisk/ping?x=1" },
          "Unknown or missing 'method' property.", "asterisk/ping" },
        { { type = "RESTRequest", request_id = "r5", transaction_id = "t5", method = "POST",
          uri = "channels/none/variable", message_body = "{}" },
          "No 'content_type' for 'message_body'.", "channels/none/variable" },
        { { type = "RESTRequest", request_id = "r6", transaction_id = "t6", method = "POST",
          uri = "channels/none/variable", content_type = "text/plain", message_body = "x" },
          "Unknown content type.", "channels/none/variable" },
        { { type = "RESTRequest", request_id = "r7", transaction_id = "t7", method = "POST",
          uri = "channels/none/variable", content_type = "application/json", message_body = "{oops" },
          "Unable to parse 'message_body' as 'application/json'.", "channels/none/variable" },
      }
      local steps = { { op = "open", name = "a", path = "/ari/events?app=badreq&api_key={{auth}}" } }
      for _, b in ipairs(bad) do
        steps[#steps + 1] = { op = "send", name = "a", data = b[1] }
      end
      -- A form body joins the query, as on Asterisk: a 404 for no such channel, not a 400.
      steps[#steps + 1] = { op = "send", name = "a", data = { type = "RESTRequest", request_id = "r8",
        method = "POST", uri = "channels/none/variable", content_type = "application/x-www-form-urlencoded",
        message_body = "variable=A&value=b+c" } }
      steps[#steps + 1] = { op = "wait", name = "a", type = "RESTResponse", count = #bad + 1 }
      local r = probe(sim, steps)
      local got = of_type(r.sockets.a.messages, "RESTResponse")
      for i, b in ipairs(bad) do
        local reply = got[i]
        assert.are.equal(400, reply.status_code, b[2])
        assert.are.equal("Bad request", reply.reason_phrase)
        assert.are.equal(b[1].request_id, reply.request_id)
        assert.are.equal(b[1].transaction_id, reply.transaction_id)
        assert.are.equal(b[3], reply.uri, b[2])
        assert.are.same({ message = b[2] }, json.decode(reply.message_body))
      end
      assert.are.equal(404, got[#bad + 1].status_code)
      assert.are.equal("", got[#bad + 1].transaction_id)
    end)

    it("closes the WebSocket on a client message over 65535 bytes, as Asterisk does", function()
      local r = probe(sim, {
        { op = "open", name = "a", path = "/ari/events?app=bigmsg&api_key={{auth}}" },
        { op = "send", name = "a", data = { type = "RESTRequest", request_id = "x", method = "GET",
          uri = "asterisk/ping?pad=" .. string.rep("p", 70000) } },
        { op = "sleep", ms = 300 },
      })
      assert.are.equal(1009, r.sockets.a.closed and r.sockets.a.closed.code, json.encode(r.sockets.a))
    end)

    it("answers REST over the WebSocket as the captured Asterisk did", function()
      local sent, expected = {}, {}
      for seq = 752, 765 do
        local ok, c = pcall(capture, seq)
        if ok and c.method == "WS RESTRequest" then
          sent[#sent + 1] = type(c.sent) == "table" and c.sent or { type = "RESTRequest" }
        end
      end
      for _, e in ipairs(captured_events()) do
        if e.event and e.event.type == "RESTResponse" then
          expected[#expected + 1] = e.event
        end
      end
      assert.are.equal(6, #sent)
      assert.are.equal(#sent, #expected)
      -- the captured requests use channel move-1 (the capture's app is ivr-test)
      local steps = {
        { op = "open", name = "a", path = "/ari/events?app=ivr-test&api_key={{auth}}" },
        { op = "http", method = "POST",
          path = "/ari/channels?endpoint=Local/1000@wait&app=ivr-test&channelId=move-1&otherChannelId=move-1-peer" },
        { op = "wait", name = "a", type = "StasisStart" },
      }
      for _, frame in ipairs(sent) do
        steps[#steps + 1] = { op = "send", name = "a", data = frame }
      end
      steps[#steps + 1] = { op = "wait", name = "a", type = "RESTResponse", count = #sent }
      steps[#steps + 1] = { op = "http", method = "DELETE", path = "/ari/channels/move-1" }
      h.clear_journal(sim)
      local r = probe(sim, steps)
      assert.is_true(r.steps[#steps - 1].ok)
      -- the journal keeps them too, marked as having come over the socket
      local over_ws = {}
      for _, e in ipairs(h.journal(sim)) do
        if e.websocket then
          over_ws[#over_ws + 1] = e.method .. " " .. e.path
        end
      end
      assert.are.same({ "GET /ari/asterisk/ping", "GET /ari/channels/no-such-channel",
        "POST /ari/channels/move-1/variable", "GET /ari/channels/move-1/variable",
        "POST /ari/channels/move-1/variables" }, over_ws)
      local got = of_type(r.sockets.a.messages, "RESTResponse")
      for i, want in ipairs(expected) do
        local have = got[i]
        assert.are.same(keys(want), keys(have), "response " .. i)
        for _, k in ipairs({ "transaction_id", "request_id", "status_code", "reason_phrase", "uri",
          "content_type", "application" }) do
          assert.are.equal(want[k], have[k], "response " .. i .. " " .. k)
        end
        if want.message_body then
          local a, b = json.decode(have.message_body), json.decode(want.message_body)
          if b.ping then
            assert.are.same(keys(b), keys(a))
          else
            assert.are.same(b, a)
          end
        end
      end
    end)
  end)
end)
