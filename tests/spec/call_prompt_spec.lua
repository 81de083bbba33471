-- call:prompt: keys pressed before, during (barge-in) and after the
-- prompt, tries, valid as a pattern and as a function, the invalid media,
-- timeout and invalid results, a hangup at each point where it waits, and
-- misuse.

local T = require "spec.call_helper"

local ENTER = 2.388 -- sound:conf-getpin
local INVALID = 1.459 -- sound:vm-incorrect

local function prompt_flow(opts_source, before)
  return T.call([[
    return function(call)
      T.got("call", call)
      call:answer()
      ]] .. (before or "") .. [[
      T.got("prompt", call:prompt(]] .. opts_source .. [[))
    end
  ]])
end

local function plays(c, media)
  local n = 0
  for _, e in ipairs(T.find_requests(c, "POST", "/play/")) do
    if e.query.media == media then
      n = n + 1
    end
  end
  return n
end

local function near(expected, actual)
  assert.is_true(math.abs(expected - actual) < 1e-6,
    string.format("expected %s, got %s", tostring(expected), tostring(actual)))
end

describe("call:prompt", function()
  it("plays the media, then collects: keys after the prompt", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", max = 4 }')
    c:expect_play("sound:conf-getpin")
    c:advance(ENTER + 1)
    c:press("1234")
    assert.is_true(c:finish())
    local r = T.values("prompt")
    assert.are.equal(1, r.n)
    assert.are.equal("1234", r[1])
    near(ENTER + 1.75, r.t)
  end)

  it("stops the media on the first key (barge-in) and keeps that key", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", max = 4 }')
    c:expect_play("sound:conf-getpin")
    c:advance(1)
    c:press("5678")
    assert.is_true(c:finish())
    assert.are.equal("5678", T.value("prompt"))
    near(1.75, T.values("prompt").t)
    assert.are.equal(1, #T.find_requests(c, "DELETE", "^/playbacks/"))
  end)

  it("skips the media when keys were pressed before it (type-ahead)", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", max = 2 }', "call:sleep(1)")
    c:expect("answer")
    c:press("42")
    assert.is_true(c:finish())
    assert.are.equal("42", T.value("prompt"))
    near(1, T.values("prompt").t)
    assert.are.equal(0, plays(c, "sound:conf-getpin"))
  end)

  it("with flush forgets keys pressed before and plays the media", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", max = 2, flush = true }', "call:sleep(1)")
    c:expect("answer")
    c:press("42")
    c:expect_play("sound:conf-getpin")
    c:press("17")
    assert.is_true(c:finish())
    assert.are.equal("17", T.value("prompt"))
  end)

  it("ends an entry on the terminator", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", max = 6 }')
    c:expect_play("sound:conf-getpin")
    c:press("12#")
    assert.is_true(c:finish())
    assert.are.equal("12", T.value("prompt"))
  end)

  it("accepts an entry cut short by the inter-digit timeout if it is long enough", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", min = 2, max = 6, inter_timeout = 2 }')
    c:expect_play("sound:conf-getpin")
    c:advance(ENTER)
    c:press("123")
    assert.is_true(c:finish())
    assert.are.equal("123", T.value("prompt"))
    near(ENTER + 0.5 + 2, T.values("prompt").t)
  end)

  it("repeats the media on silence and gives nil, 'timeout' after `tries`", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", tries = 2, timeout = 3 }')
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 2 * (ENTER + 3), nil, "timeout" }, T.values("prompt"))
    assert.are.equal(2, plays(c, "sound:conf-getpin"))
  end)

  it("defaults to 3 tries", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", timeout = 1 }')
    assert.is_true(c:finish())
    assert.are.equal("timeout", T.values("prompt")[2])
    assert.are.equal(3, plays(c, "sound:conf-getpin"))
  end)

  it("plays `invalid` after a bad entry, tries again, and returns the good one", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", invalid = "sound:vm-incorrect", valid = "[1-3]" }')
    c:expect_play("sound:conf-getpin")
    c:press("9")
    c:expect_play("sound:vm-incorrect")
    c:expect_play("sound:conf-getpin")
    c:press("2")
    assert.is_true(c:finish())
    assert.are.equal("2", T.value("prompt"))
  end)

  it("gives nil, 'invalid' when every try was a bad entry", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", invalid = "sound:vm-incorrect", valid = "[1-3]", tries = 2 }')
    c:expect_play("sound:conf-getpin")
    c:press("9")
    c:expect_play("sound:vm-incorrect")
    c:expect_play("sound:conf-getpin")
    c:press("8")
    assert.is_true(c:finish())
    assert.are.same({ nil, "invalid" }, { T.values("prompt")[1], T.values("prompt")[2] })
    assert.are.equal(2, plays(c, "sound:vm-incorrect"))
  end)

  it("reports the last try's outcome when bad entries and silence mix", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", valid = "1", tries = 2, timeout = 2 }')
    c:expect_play("sound:conf-getpin")
    c:press("5")
    assert.is_true(c:finish())
    assert.are.equal("timeout", T.values("prompt")[2])
  end)

  it("matches a `valid` pattern against the whole entry", function()
    local c = prompt_flow('{ max = 3, valid = "[1-3]", tries = 1 }')
    c:expect("answer")
    c:press("12#")
    assert.is_true(c:finish())
    assert.are.equal("invalid", T.values("prompt")[2])
  end)

  it("takes a pattern that is anchored already", function()
    local c = prompt_flow('{ max = 4, valid = "^%d%d%d%d$" }')
    c:expect("answer")
    c:press("2024")
    assert.is_true(c:finish())
    assert.are.equal("2024", T.value("prompt"))
  end)

  it("takes `valid` as a function", function()
    local c = prompt_flow([[{ max = 3, valid = function(d) return tonumber(d) % 2 == 0 end,
      invalid = "sound:vm-incorrect" }]])
    c:expect("answer")
    c:press("13#")
    c:expect_play("sound:vm-incorrect")
    c:press("14#")
    assert.is_true(c:finish())
    assert.are.equal("14", T.value("prompt"))
  end)

  it("treats an entry shorter than min, ended by the terminator, as bad at once", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", min = 4, max = 4, invalid = "sound:vm-incorrect" }')
    c:expect_play("sound:conf-getpin")
    c:press("12#")
    c:expect_play("sound:vm-incorrect")
    near(0.5, c.world.clock:now()) -- right after the '#', no inter-digit wait
    c:expect_play("sound:conf-getpin")
    c:press("1234")
    assert.is_true(c:finish())
    assert.are.equal("1234", T.value("prompt"))
  end)

  it("with min = 0 accepts a lone terminator as an empty entry", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", min = 0, max = 4 }')
    c:expect_play("sound:conf-getpin")
    c:press("#")
    assert.is_true(c:finish())
    assert.are.same({ n = 1, t = 0, "" }, T.values("prompt"))
  end)

  it("throws away keys typed after a bad entry", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", max = 1, valid = "[12]", tries = 2, timeout = 2 }')
    c:expect_play("sound:conf-getpin")
    c.world:press(c.id, "97", 0)
    assert.is_true(c:finish())
    -- "9" was the bad entry; "7", typed with it, must not count as the
    -- second try's entry
    assert.are.equal("timeout", T.values("prompt")[2])
  end)

  it("lets the caller barge into the invalid media as well", function()
    local c = prompt_flow('{ media = "sound:conf-getpin", invalid = "sound:vm-incorrect", valid = "[12]" }')
    c:expect_play("sound:conf-getpin")
    c:press("9")
    c:expect_play("sound:vm-incorrect")
    c:advance(0.5)
    c:press("1")
    assert.is_true(c:finish())
    assert.are.equal("1", T.value("prompt"))
    assert.are.equal(1, plays(c, "sound:conf-getpin"))
  end)

  it("goes on collecting when its media cannot be played", function()
    local c = prompt_flow('{ media = "sound:custom/missing", max = 1 }')
    c:expect_play("sound:custom/missing")
    c:press("3")
    assert.is_true(c:finish())
    assert.are.equal("3", T.value("prompt"))
  end)

  it("works without media (collect only)", function()
    local c = prompt_flow('{ max = 2 }')
    c:expect("answer")
    c:press("55")
    assert.is_true(c:finish())
    assert.are.equal("55", T.value("prompt"))
  end)

  describe("when the caller hangs up", function()
    local function hangup_at(opts_source, action)
      local c = prompt_flow(opts_source)
      action(c)
      c:hangup()
      local at = T.hangup_index(c)
      local now = c.world.clock:now()
      assert.is_true(c:finish())
      assert.are.same({ n = 2, t = now, nil, "hangup" }, T.values("prompt"))
      assert.are.same({}, T.requests(c, at))
      T.assert_clean(c, T.value("call"))
    end

    it("during the media returns nil, 'hangup' at once", function()
      hangup_at('{ media = "sound:conf-getpin" }', function(c)
        c:expect_play("sound:conf-getpin")
        c:advance(1)
      end)
    end)

    it("while it collects returns nil, 'hangup' at once", function()
      hangup_at('{ media = "sound:conf-getpin", max = 4 }', function(c)
        c:expect_play("sound:conf-getpin")
        c:advance(ENTER + 1)
        c:press("1")
        c:advance(0.5)
      end)
    end)

    it("during the invalid media returns nil, 'hangup' at once", function()
      hangup_at('{ media = "sound:conf-getpin", invalid = "sound:vm-incorrect", valid = "1" }', function(c)
        c:expect_play("sound:conf-getpin")
        c:press("2")
        c:expect_play("sound:vm-incorrect")
        c:advance(INVALID / 2)
      end)
    end)
  end)

  it("after a hangup returns nil, 'hangup' without playing", function()
    local c = T.call([[
      return function(call)
        call:hangup()
        T.got("prompt", call:prompt{ media = "sound:conf-getpin" })
      end
    ]])
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 0, nil, "hangup" }, T.values("prompt"))
    assert.are.equal(0, plays(c, "sound:conf-getpin"))
  end)

  it("raises on misuse, naming the method", function()
    local c = T.call([[
      local function try(name, fn)
        T.got(name, pcall(fn))
      end
      return function(call)
        call:answer()
        try("notable", function() call:prompt("sound:x") end)
        try("media", function() call:prompt{ media = 5 } end)
        try("valid", function() call:prompt{ valid = 5 } end)
        try("pattern", function() call:prompt{ valid = "[1-" } end)
        try("tries", function() call:prompt{ tries = 0 } end)
        try("typo", function() call:prompt{ medias = "sound:x" } end)
      end
    ]])
    assert.is_true(c:finish())
    for _, name in ipairs({ "notable", "media", "valid", "pattern", "tries", "typo" }) do
      local r = T.values(name)
      assert.is_false(r[1], name)
      assert.matches("flow%d+%.lua:%d+: call:prompt: ", r[2])
    end
    assert.are.equal(0, #T.find_requests(c, "POST", "/play/"))
  end)
end)
