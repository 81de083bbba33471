-- call:play and call:play_async against the simulated Asterisk: finishing,
-- failing (a missing file, and the unknown scheme that never finishes),
-- barge-in keys that stay buffered, type-ahead, the handle's methods, a
-- hangup while playing, and misuse.

local T = require "spec.call_helper"

local HELLO = 1.404 -- seconds of sound:hello-world in the simulator

local function near(expected, actual, tolerance)
  assert.is_true(math.abs(expected - actual) <= (tolerance or 1e-6),
    string.format("expected about %s, got %s", tostring(expected), tostring(actual)))
end

describe("call:play", function()
  it("waits until the playback has finished and returns true", function()
    local c = T.call([[
      return function(call)
        call:answer()
        T.got("play", call:play("sound:hello-world"))
      end
    ]])
    c:expect_play("sound:hello-world")
    assert.is_true(c:finish())
    local r = T.values("play")
    assert.are.equal(1, r.n)
    assert.is_true(r[1])
    near(HELLO, r.t)
  end)

  it("chooses the playback id before asking (playWithId), so no event can be missed", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play("sound:beep"))
      end
    ]])
    assert.is_true(c:finish())
    local reqs = T.find_requests(c, "POST", "^/channels/[^/]+/play/[%w%-]+$")
    assert.are.equal(1, #reqs)
    assert.is_true(T.value("play"))
  end)

  it("plays an array of media as one playback, in order", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play({ "sound:hello-world", "sound:beep" }))
      end
    ]])
    local p = c:expect_play({ "sound:hello-world", "sound:beep" })
    assert.are.same({ "sound:hello-world", "sound:beep" }, p.media)
    assert.is_true(c:finish())
    near(HELLO + 0.425, T.values("play").t)
  end)

  it("passes lang, offsetms and skipms on to Asterisk", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play("sound:hello-world", { lang = "fr", offsetms = 400, skipms = 1000 }))
      end
    ]])
    local p = c:expect_play("sound:hello-world")
    assert.are.equal("fr", p.request.query.lang)
    assert.are.equal("400", tostring(p.request.query.offsetms))
    assert.are.equal("1000", tostring(p.request.query.skipms))
    assert.is_true(c:finish())
    near(HELLO - 0.4, T.values("play").t)
  end)

  it("gives nil, 'failed' for a missing sound file (PlaybackFinished state failed)", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play("sound:custom/greeting"))
        T.got("after", call:play("sound:beep"))
      end
    ]], { sounds = { ["custom/greeting"] = false } })
    assert.is_true(c:finish())
    local r = T.values("play")
    assert.is_nil(r[1])
    assert.are.equal("failed", r[2])
    near(0, r.t)
    assert.is_true(T.value("after"))
  end)

  it("plays a sound the simulator does not know for the default length, and says so once", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play("sound:helo-world"))
        T.got("again", call:play("sound:helo-world"))
      end
    ]])
    assert.is_true(c:finish())
    assert.is_true(T.value("play"))
    near(2.0, T.values("play").t)
    local notes = {}
    for _, e in ipairs(c.world.transcript) do
      if e.kind == "sim" then
        notes[#notes + 1] = e.message
      end
    end
    assert.are.equal(1, #notes)
    assert.matches("sound:helo-world is not a sound the simulator knows", notes[1], 1, true)
    assert.matches("--sound-default missing", notes[1], 1, true)
  end)

  it("with sound_default = false, a sound not in the tables fails as a missing file does", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play("sound:helo-world"))
        T.got("known", call:play("sound:beep"))
      end
    ]], { sound_default = false })
    assert.is_true(c:finish())
    local r = T.values("play")
    assert.are.same({ nil, "failed" }, { r[1], r[2] })
    near(0, r.t)
    assert.is_true(T.value("known"))
  end)

  it("notices an unknown URI scheme, for which Asterisk never sends PlaybackFinished", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play("bogus:thing"))
      end
    ]])
    assert.is_true(c:finish(60))
    local r = T.values("play")
    assert.is_nil(r[1])
    assert.are.equal("failed", r[2])
    assert.is_true(r.t < 3, "took " .. r.t .. " s")
    assert.is_true(#T.find_requests(c, "GET", "^/playbacks/") >= 1)
  end)

  it("does not ask Asterisk about a sound: playback that ends within 15 s (it always sends PlaybackFinished)",
    function()
      local c = T.call([[
        return function(call)
          T.got("play", call:play("sound:hello-world"))
          T.got("list", call:play("sound:beep,sound:hello-world"))
          T.got("long", call:play("sound:demo-congrats"))
        end
      ]])
      assert.is_true(c:finish(120))
      assert.is_true(T.value("play"))
      assert.is_true(T.value("list"))
      assert.is_true(T.value("long"))
      -- demo-congrats plays 30.28 s: checked at 15 s and 30 s, as a safety net.
      assert.are.equal(2, #T.find_requests(c, "GET", "^/playbacks/"))
    end)

  it("notices a list whose second media vanishes after the first has played", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play({ "sound:hello-world", "number:abc" }))
      end
    ]])
    assert.is_true(c:finish(60))
    local r = T.values("play")
    assert.are.same({ n = 2, t = r.t, nil, "failed" }, r)
    assert.is_true(r.t > HELLO and r.t < HELLO + 3, "took " .. r.t .. " s")
  end)

  it("is stopped by an interrupt key, which stays buffered for read_digits", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play("sound:demo-congrats", { interrupt = "#" }))
        T.got("read", call:read_digits{ max = 4, terminators = "*" })
      end
    ]])
    c:expect_play("sound:demo-congrats")
    c:advance(2)
    c:press("#")
    assert.is_true(c:finish())
    local r = T.values("play")
    assert.is_true(r[1])
    assert.are.equal("#", r[2])
    near(2, r.t, 0.01)
    assert.are.equal(1, #T.find_requests(c, "DELETE", "^/playbacks/"))
    assert.are.equal("#", T.value("read"))
  end)

  it("keeps playing on keys that are not interrupt keys, and buffers them", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play("sound:hello-world", { interrupt = "#" }))
        T.got("read", call:read_digits{ max = 2, timeout = 0 })
      end
    ]])
    c:expect_play("sound:hello-world")
    c:press("12")
    assert.is_true(c:finish())
    assert.is_true(T.value("play"))
    near(HELLO, T.values("play").t)
    assert.are.equal(0, #T.find_requests(c, "DELETE", "^/playbacks/"))
    assert.are.equal("12", T.value("read"))
  end)

  it("with interrupt = 'any' stops on any key", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play("sound:demo-congrats", { interrupt = "any" }))
      end
    ]])
    c:expect_play("sound:demo-congrats")
    c:advance(1)
    c:press("7")
    assert.is_true(c:finish())
    assert.are.equal("7", T.values("play")[2])
    near(1, T.values("play").t, 0.01)
  end)

  it("does not start at all when an interrupt key was pressed before (type-ahead)", function()
    local c = T.call([[
      return function(call)
        call:answer()
        call:sleep(2)
        T.got("play", call:play("sound:main-menu", { interrupt = "0123456789" }))
        T.got("read", call:read_digits())
      end
    ]])
    c:expect("answer")
    c:press("3")
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 2, true, "3" }, T.values("play"))
    assert.are.equal(0, #T.find_requests(c, "POST", "/play"))
    assert.are.equal("3", T.value("read"))
  end)

  it("returns nil, 'hangup' at once when the caller hangs up, and touches nothing afterwards", function()
    local c = T.call([[
      return function(call)
        T.got("call", call)
        T.got("play", call:play("sound:demo-congrats"))
        T.got("again", call:play("sound:beep"))
        T.got("answer", call:answer())
      end
    ]])
    c:expect_play("sound:demo-congrats")
    c:advance(3)
    c:hangup()
    local at = T.hangup_index(c)
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 3, nil, "hangup" }, T.values("play"))
    assert.are.same({ n = 2, t = 3, nil, "hangup" }, T.values("again"))
    assert.are.same({ n = 2, t = 3, nil, "hangup" }, T.values("answer"))
    assert.are.same({}, T.requests(c, at))
    T.assert_clean(c, T.value("call"))
  end)

  it("returns nil, 'hangup' when the caller hangs up while an unknown scheme 'plays'", function()
    local c = T.call([[
      return function(call)
        T.got("call", call)
        T.got("play", call:play("bogus:x"))
      end
    ]])
    c:expect_play("bogus:x")
    c:advance(0.5)
    c:hangup()
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 0.5, nil, "hangup" }, T.values("play"))
    T.assert_clean(c, T.value("call"))
  end)

  it("returns an ARI code when Asterisk refuses (not in the application any more)", function()
    local c = T.call([[
      return function(call)
        T.got("continue", call:continue())
        T.got("play", call:play("sound:beep"))
      end
    ]])
    assert.is_true(c:finish())
    assert.is_true(T.value("continue"))
    local r = T.values("play")
    assert.is_nil(r[1])
    assert.are.equal("left", r[2])
  end)

  it("raises on misuse, naming the method", function()
    local c = T.call([[
      local function try(name, ...)
        local ok, err = pcall(...)
        T.got(name, ok, err)
      end
      return function(call)
        try("number", call.play, call, 42)
        try("empty", call.play, call, {})
        try("typo", call.play, call, "sound:beep", { interupt = "#" })
        try("key", call.play, call, "sound:beep", { interrupt = "x" })
        try("offset", call.play, call, "sound:beep", { offsetms = -1 })
        try("async", function() call:play_async(nil) end)
      end
    ]])
    assert.is_true(c:finish())
    for _, name in ipairs({ "number", "empty", "typo", "key", "offset" }) do
      local r = T.values(name)
      assert.is_false(r[1], name)
      assert.matches("call:play: ", r[2], 1, true)
    end
    assert.matches("interupt is not an option", T.values("typo")[2], 1, true)
    assert.matches("flow%d+%.lua:%d+: call:play_async: media", T.values("async")[2])
    assert.are.equal(0, #T.find_requests(c, "POST", "/play"))
  end)
end)

describe("call:play_async", function()
  it("returns a handle at once; h:wait() waits for the end", function()
    local c = T.call([[
      return function(call)
        local h = T.got("handle", call:play_async("sound:hello-world"))
        T.got("started", luari.now())
        T.got("wait", h:wait())
        T.got("state", h.state)
      end
    ]])
    assert.is_true(c:finish())
    local h = T.value("handle")
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", h.id)
    assert.are.equal(0, T.value("started"))
    assert.is_true(T.value("wait"))
    near(HELLO, T.values("wait").t)
    assert.are.equal("done", T.value("state"))
    assert.are.equal(1, #T.find_requests(c, "POST", "/play/" .. h.id:gsub("%-", "%%-") .. "$"))
  end)

  it("h:wait(timeout) gives nil, 'timeout' and leaves it playing", function()
    local c = T.call([[
      return function(call)
        local h = call:play_async("sound:hello-world")
        T.got("short", h:wait(0.5))
        T.got("long", h:wait())
      end
    ]])
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 0.5, nil, "timeout" }, T.values("short"))
    near(HELLO, T.values("long").t)
    assert.is_true(T.value("long"))
  end)

  it("h:stop() stops it; its wait returns true", function()
    local c = T.call([[
      return function(call)
        local h = call:play_async("sound:demo-congrats")
        call:sleep(1)
        T.got("stop", h:stop())
        T.got("wait", h:wait())
        T.got("again", h:stop())
      end
    ]])
    assert.is_true(c:finish())
    assert.is_true(T.value("stop"))
    assert.is_true(T.value("wait"))
    near(1, T.values("wait").t)
    assert.is_true(T.value("again"))
    assert.are.equal(1, #T.find_requests(c, "DELETE", "^/playbacks/"))
  end)

  it("h:control() pauses and unpauses (the paused time adds to the length)", function()
    local c = T.call([[
      return function(call)
        local h = call:play_async("sound:hello-world")
        call:sleep(0.5)
        T.got("pause", h:control("pause"))
        call:sleep(2)
        T.got("unpause", h:control("unpause"))
        T.got("wait", h:wait())
        T.got("bad", pcall(h.control, h, "rewind"))
      end
    ]])
    assert.is_true(c:finish())
    assert.is_true(T.value("pause"))
    assert.is_true(T.value("unpause"))
    near(HELLO + 2, T.values("wait").t)
    assert.is_false(T.value("bad"))
    assert.matches("playback:control: operation must be one of", T.values("bad")[2], 1, true)
  end)

  it("h:control() on a finished playback gives Asterisk's code", function()
    local c = T.call([[
      return function(call)
        local h = call:play_async("sound:beep")
        h:wait()
        T.got("control", h:control("pause"))
      end
    ]])
    assert.is_true(c:finish())
    local r = T.values("control")
    assert.is_nil(r[1])
    assert.are.equal("not_found", r[2])
    assert.are.equal(404, r[3].status)
  end)

  it("is stopped by an interrupt key while the flow does something else", function()
    local c = T.call([[
      return function(call)
        local h = call:play_async("sound:demo-congrats", { interrupt = "*" })
        T.got("read", call:read_digits{ max = 1, timeout = 10, terminators = "" })
        T.got("wait", h:wait())
        T.got("digit", h.digit)
      end
    ]])
    c:expect_play("sound:demo-congrats")
    c:advance(2)
    c:press("*")
    assert.is_true(c:finish())
    assert.are.equal("*", T.value("read"))
    assert.is_true(T.value("wait"))
    near(2, T.values("wait").t, 0.01)
    assert.are.equal("*", T.value("digit"))
    assert.are.equal(1, #T.find_requests(c, "DELETE", "^/playbacks/"))
  end)

  it("a handle that nobody waits on lets go when the call hangs up", function()
    local c = T.call([[
      return function(call)
        T.got("call", call)
        local h = call:play_async("bogus:forever", { interrupt = "#" })
        T.got("handle", h)
        T.got("sleep", call:sleep(100))
        T.got("wait", h:wait())
        T.got("stop", h:stop())
      end
    ]])
    c:advance(5)
    c:hangup()
    assert.is_true(c:finish())
    assert.are.same({ nil, "hangup" }, { T.values("sleep")[1], T.values("sleep")[2] })
    assert.are.equal(5, T.values("sleep").t)
    assert.are.same({ n = 2, t = 5, nil, "hangup" }, T.values("wait"))
    assert.are.equal("hangup", T.value("handle").state)
    assert.is_true(T.value("stop"))
    T.assert_clean(c, T.value("call"))
  end)

  it("after a hangup returns nil, 'hangup' without asking Asterisk", function()
    local c = T.call([[
      return function(call)
        call:hangup()
        T.got("async", call:play_async("sound:beep"))
      end
    ]])
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 0, nil, "hangup" }, T.values("async"))
    assert.are.equal(0, #T.find_requests(c, "POST", "/play"))
  end)
end)

describe("call:play when a playback check gets a reply of another shape", function()
  it("goes on waiting for PlaybackFinished (a 204 to GET /playbacks is not a playback)", function()
    local c = T.call([[
      return function(call)
        T.got("play", call:play("sound:demo-congrats"))
      end
    ]])
    local world = c.world
    local request = world._request
    local checks = 0
    world._request = function(self, method, segments, query, body, reply)
      if method == "GET" and segments[1] == "playbacks" then
        checks = checks + 1
        self.clock:after(0, function() reply(204, nil, nil, nil, "No Content") end)
        return { cancel = function() end }
      end
      return request(self, method, segments, query, body, reply)
    end
    assert.is_true(c:finish())
    assert.is_true(checks >= 1)
    local v = T.values("play")
    assert.is_true(v[1])
    assert.is_true(v.t > 30, "played to the end: " .. v.t)
  end)
end)
