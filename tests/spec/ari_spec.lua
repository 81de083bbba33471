-- luari.ari: arguments checked against the reference before anything is
-- sent, what goes on the wire, and how replies map to results.

local ari = require "luari.ari"
local Clock = require "luari.sim.clock"
local Runtime = require "luari.runtime"

-- A runtime whose backend records requests and answers from a script.
local function fake(replies)
  local clock = Clock.new()
  local sent = {}
  local backend = {
    request = function(method, segments, query, body, timeout, cb)
      local req = { method = method, path = "/" .. table.concat(segments, "/"), query = query, body = body }
      sent[#sent + 1] = req
      local r = table.remove(replies or {}, 1) or { 204 }
      local h = clock:after(0, function() cb(r[1], r[2], r[3], r[4], r[5]) end)
      return { cancel = function() h:cancel() end }
    end,
    timer = function(s, fn)
      local h = clock:after(s, fn)
      return { stop = function() h:cancel() end }
    end,
    now = function() return clock:now() end,
    log = function() end,
  }
  local rt = Runtime.new(backend)
  local function run(fn)
    local out
    rt:spawn(function() out = { fn() } end)
    clock:run()
    return out
  end
  return run, sent, rt
end

local function misuse(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("luari.ari", function()
  it("has all 31 Channels operations of the reference", function()
    local names = { "list", "originate", "create", "get", "originateWithId", "hangup", "continueInDialplan",
      "move", "redirect", "answer", "ring", "ringStop", "sendDTMF", "mute", "unmute", "hold", "unhold",
      "startMoh", "stopMoh", "startSilence", "stopSilence", "play", "playWithId", "record", "getChannelVar",
      "setChannelVar", "snoopChannel", "snoopChannelWithId", "dial", "rtpstatistics", "externalMedia" }
    assert.are.equal(31, #names)
    for _, n in ipairs(names) do
      assert.is_function(ari.channels[n], n)
    end
    for _, n in ipairs({ "get", "stop", "control" }) do assert.is_function(ari.playbacks[n], n) end
    for _, n in ipairs({ "getLive", "stop", "pause", "unpause", "mute", "unmute", "cancel", "getStored",
      "deleteStored", "copyStored" }) do assert.is_function(ari.recordings[n], n) end
    for _, n in ipairs({ "list", "create", "get", "destroy", "addChannel", "removeChannel", "play" }) do
      assert.is_function(ari.bridges[n], n)
    end
    assert.is_function(ari.asterisk.getInfo)
  end)

  describe("checks arguments before sending", function()
    it("a missing required parameter", function()
      local err = misuse(function() ari.describe("channels", "play", "c1", {}) end)
      assert.truthy(err:find("ari.channels.play: missing required parameter 'media'", 1, true), err)
    end)

    it("an unknown parameter name (a typo)", function()
      local err = misuse(function() ari.describe("channels", "play", "c1", { media = "sound:x", medai = 1 }) end)
      assert.truthy(err:find("unknown parameter 'medai'", 1, true), err)
    end)

    it("a value of the wrong type", function()
      local err = misuse(function() ari.describe("channels", "originate", { endpoint = {}, app = "a" }) end)
      assert.truthy(err:find("parameter 'endpoint' must be a string", 1, true), err)
      err = misuse(function() ari.describe("channels", "originate", { endpoint = "x", app = "a", timeout = "30" }) end)
      assert.truthy(err:find("parameter 'timeout' must be an integer", 1, true), err)
      err = misuse(function() ari.describe("channels", "originate", { endpoint = "x", app = "a", timeout = 1.5 }) end)
      assert.truthy(err:find("'timeout' must be an integer", 1, true), err)
      err = misuse(function() ari.describe("channels", "record", "c", { name = "n", format = "wav", beep = "yes" }) end)
      assert.truthy(err:find("parameter 'beep' must be a boolean", 1, true), err)
      err = misuse(function() ari.describe("channels", "originate", { endpoint = "x", app = "a", variables = "X=1" }) end)
      assert.truthy(err:find("parameter 'variables' must be a table", 1, true), err)
    end)

    it("a value outside the allowed values", function()
      local err = misuse(function() ari.describe("channels", "hangup", "c1", { reason = "bored" }) end)
      assert.truthy(err:find("parameter 'reason' must be one of normal, busy", 1, true), err)
      err = misuse(function() ari.describe("channels", "mute", "c1", { direction = "sideways" }) end)
      assert.truthy(err:find("'direction' must be one of both, in, out", 1, true), err)
      err = misuse(function() ari.describe("channels", "record", "c", { name = "n", format = "wav", terminateOn = "5" }) end)
      assert.truthy(err:find("'terminateOn' must be one of none, any, *, #", 1, true), err)
    end)

    it("a value outside the allowed range", function()
      local err = misuse(function()
        ari.describe("channels", "record", "c1", { name = "n", format = "wav", maxDurationSeconds = -1 })
      end)
      assert.truthy(err:find("'maxDurationSeconds' must be at least 0", 1, true), err)
      err = misuse(function() ari.describe("channels", "dial", "c1", { timeout = -5 }) end)
      assert.truthy(err:find("'timeout' must be at least 0", 1, true), err)
    end)

    it("an integer out of Asterisk's range; a large one goes out as digits", function()
      local err = misuse(function() ari.describe("channels", "originate", { endpoint = "e", app = "a", timeout = 2 ^ 40 }) end)
      assert.truthy(err:find("'timeout' must be an integer from -2147483648 to 2147483647 (got 1099511627776)", 1, true),
        err)
      local _, _, query = ari.describe("channels", "originate",
        { endpoint = "e", context = "c", extension = "s", priority = 2 ^ 60 })
      assert.are.equal("1152921504606846976", query[#query])
    end)

    it("a comma-separated string of allowed values, item by item", function()
      local _, _, query = ari.describe("asterisk", "getInfo", { only = "build,system" })
      assert.are.same({ "only", { "build", "system" } }, query)
      local err = misuse(function() ari.describe("asterisk", "getInfo", { only = "build,sytem" }) end)
      assert.truthy(err:find("parameter 'only' must be one of build, system, config, status (got 'sytem')", 1, true), err)
    end)

    it("mutually exclusive parameters", function()
      local err = misuse(function()
        ari.describe("channels", "originate", { endpoint = "PJSIP/100", app = "luari", context = "default" })
      end)
      assert.truthy(err:find("'app' and 'context' are mutually exclusive", 1, true), err)
      err = misuse(function() ari.describe("channels", "originateWithId", "x", { endpoint = "e", app = "a", label = "l" }) end)
      assert.truthy(err:find("'app' and 'label' are mutually exclusive", 1, true), err)
      err = misuse(function() ari.describe("channels", "hangup", "c1", { reason = "busy", reason_code = "17" }) end)
      assert.truthy(err:find("'reason' and 'reason_code' are mutually exclusive", 1, true), err)
    end)

    it("path arguments and extra arguments", function()
      local err = misuse(function() ari.describe("channels", "answer") end)
      assert.truthy(err:find("argument 1 ('channelId') must be a non-empty string", 1, true), err)
      err = misuse(function() ari.describe("channels", "answer", "") end)
      assert.truthy(err:find("got an empty string", 1, true), err)
      err = misuse(function() ari.describe("channels", "answer", "c1", {}, "extra") end)
      assert.truthy(err:find("takes 1 argument", 1, true), err)
      err = misuse(function() ari.describe("channels", "answer", "c1", "notatable") end)
      assert.truthy(err:find("must be a table of parameters", 1, true), err)
    end)

    it("raises at the caller's line", function()
      local run = fake()
      local out = run(function()
        return pcall(function() ari.channels.play("c1", { media = 42, lang = {} }) end)
      end)
      assert.is_false(out[1])
      assert.truthy(tostring(out[2]):find("ari_spec.lua:%d+: ari.channels.play: parameter 'lang'"), out[2])
    end)

    it("refuses to run outside a flow (a file's top level)", function()
      local err = misuse(function() ari.channels.list() end)
      assert.truthy(err:find("ari.channels.list waits", 1, true), err)
    end)
  end)

  describe("what is sent", function()
    it("only what the caller gave, in reference order", function()
      local method, segments, query, body = ari.describe("channels", "originate",
        { app = "luari", endpoint = "PJSIP/100", variables = { ["CALLERID(name)"] = "Alice", N = 7 } })
      assert.are.equal("POST", method)
      assert.are.same({ "channels" }, segments)
      assert.are.same({ "endpoint", "PJSIP/100", "app", "luari" }, query)
      assert.are.same({ variables = { ["CALLERID(name)"] = "Alice", N = "7" } }, body)
    end)

    it("the documented default for mute/unmute direction, which Asterisk requires", function()
      local _, segs, query = ari.describe("channels", "mute", "c1")
      assert.are.same({ "channels", "c1", "mute" }, segs)
      assert.are.same({ "direction", "both" }, query)
      local m, _, q2 = ari.describe("channels", "unmute", "c1", { direction = "in" })
      assert.are.equal("DELETE", m)
      assert.are.same({ "direction", "in" }, q2)
      local _, _, q3 = ari.describe("channels", "snoopChannel", "c1", { app = "a", spy = "in" })
      assert.are.same({ "spy", "in", "app", "a" }, q3)
    end)

    it("a parameter that allows comma separated values takes an array", function()
      local _, _, query = ari.describe("channels", "play", "c1", { media = { "sound:a", "digits:42" } })
      assert.are.same({ "media", { "sound:a", "digits:42" } }, query)
      local _, _, q2 = ari.describe("channels", "play", "c1", { media = "sound:a,sound:b" })
      assert.are.same({ "media", "sound:a,sound:b" }, q2)
      local err = misuse(function() ari.describe("channels", "play", "c1", { media = {} }) end)
      assert.truthy(err:find("must not be an empty list", 1, true), err)
    end)

    it("integers as integers, booleans as true/false", function()
      local _, _, query = ari.describe("channels", "record", "c1",
        { name = "vm", format = "wav", maxDurationSeconds = 30, beep = true })
      assert.are.same({ "name", "vm", "format", "wav", "maxDurationSeconds", "30", "beep", "true" }, query)
    end)
  end)

  describe("replies", function()
    it("a body becomes a table, no body becomes true", function()
      local run, sent = fake({ { 200, { id = "c1", state = "Up" } }, { 204 } })
      local out = run(function()
        local ch = ari.channels.get("c1")
        local ok = ari.channels.answer("c1")
        return ch, ok
      end)
      assert.are.same({ id = "c1", state = "Up" }, out[1])
      assert.is_true(out[2])
      assert.are.same({ "GET", "/channels/c1" }, { sent[1].method, sent[1].path })
      assert.are.same({ "POST", "/channels/c1/answer" }, { sent[2].method, sent[2].path })
    end)

    it("bytes that are not JSON are the result of a file operation only", function()
      local wav = "RIFF\0\0\0\0WAVEfmt "
      local run = fake({ { 200, wav }, { 200, "<html>a proxy's page</html>" } })
      local out = run(function()
        return ari.recordings.getStoredFile("r1"), ari.channels.get("c1")
      end)
      assert.are.equal(wav, out[1])
      assert.is_true(out[2])
    end)

    it("a shared empty parameter table cannot be written to", function()
      local _, _, query = ari.describe("channels", "answer", "c1")
      query[1] = "x" -- describe hands out a table of its own
      local run, sent = fake({ { 204 } })
      run(function() return ari.channels.answer("c1") end)
      assert.has_error(function() sent[1].query[1] = "api_key" end)
      assert.is_nil(next(sent[1].query))
    end)

    local cases = {
      { 400, "bad_request" }, { 404, "not_found" }, { 409, "conflict" }, { 412, "precondition" },
      { 422, "unprocessable" }, { 500, "server_error" }, { 503, "server_error" }, { 401, "bad_request" },
      { 403, "bad_request" },
    }
    for _, c in ipairs(cases) do
      it("status " .. c[1] .. " is nil, err with code " .. c[2], function()
        local run = fake({ { c[1], { message = "Channel not found" }, nil, nil, "Whatever" } })
        local out = run(function() return ari.channels.answer("c1") end)
        assert.is_nil(out[1])
        local err = out[2]
        assert.are.equal(c[1], err.status)
        assert.are.equal(c[2], err.code)
        assert.are.equal("Channel not found", err.message)
        assert.are.equal("answer", err.op)
        assert.are.equal("answer: " .. c[1] .. " Channel not found", tostring(err))
        assert.is_true(ari.is_error(err))
      end)
    end

    it("an error body with 'error' instead of 'message' (originate to an unknown technology)", function()
      local run = fake({ { 500, { error = "Allocation failed" } } })
      local out = run(function() return ari.channels.originate({ endpoint = "NoSuchTech/1", app = "a" }) end)
      assert.are.equal("Allocation failed", out[2].message)
      assert.are.equal("server_error", out[2].code)
    end)

    it("timeout and conn_lost from the transport", function()
      local run = fake({ { 0, nil, "timeout", "Operation timed out after 10000 milliseconds" },
        { 0, nil, "conn_lost", "Connection refused" } })
      local out = run(function()
        local a, e1 = ari.channels.list()
        local b, e2 = ari.channels.list()
        return a, e1, b, e2
      end)
      assert.is_nil(out[1])
      assert.are.equal("timeout", out[2].code)
      assert.is_nil(out[2].status)
      assert.are.equal("list: Operation timed out after 10000 milliseconds", tostring(out[2]))
      assert.are.equal("conn_lost", out[4].code)
    end)
  end)

  describe("ownership", function()
    it("a flow's originate picks the channel id before sending and claims it", function()
      local run, sent, rt = fake({ { 200, { id = "x" } } })
      local claimed = {}
      rt.claim = function(th, kind, id) claimed[#claimed + 1] = kind .. ":" .. id end
      run(function()
        local th = rt.running
        th.call = {}
        return ari.channels.originate({ endpoint = "Local/1000@wait", app = "luari" })
      end)
      local q = sent[1].query
      assert.are.equal("channelId", q[#q - 1])
      local id = q[#q]
      assert.truthy(id:match("^%x+%-%x+%-4%x+%-%x+%-%x+$"), id)
      assert.are.same({ "channel:" .. id, "channel:" .. id .. ";2" }, claimed)
    end)

    it("keeps a channelId the flow gave", function()
      local run, sent, rt = fake({ { 200, { id = "mine" } } })
      local claimed = {}
      rt.claim = function(th, kind, id) claimed[#claimed + 1] = id end
      run(function()
        rt.running.call = {}
        return ari.channels.create({ endpoint = "PJSIP/1", app = "luari", channelId = "mine", otherChannelId = "peer" })
      end)
      assert.are.same({ "mine", "peer" }, claimed)
      assert.are.same({ "endpoint", "PJSIP/1", "app", "luari", "channelId", "mine", "otherChannelId", "peer" },
        sent[1].query)
    end)
  end)
end)

describe("luari.ari ownership on misuse", function()
  it("claims nothing when the call raises for a bad parameter", function()
    local clock = Clock.new()
    local rt = Runtime.new({
      request = function() error("nothing may be sent") end,
      timer = function(s, fn) local h = clock:after(s, fn) return { stop = function() h:cancel() end } end,
      now = function() return clock:now() end,
      log = function() end,
    })
    local claimed = 0
    rt.claim = function() claimed = claimed + 1 end
    local ok
    rt:spawn(function()
      rt.running.call = {}
      ok = pcall(ari.channels.originate, { endpoint = "Local/1@wait", app = "luari", timeout = "soon" })
    end)
    clock:run()
    assert.is_false(ok)
    assert.are.equal(0, claimed)
  end)
end)
