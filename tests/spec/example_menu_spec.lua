-- examples/menu.lua: every branch of the nested menu, retries, the
-- operator fallback, barge-in and type-ahead, and a hangup in the middle.

local sim = require "luari.sim"

local MENU = "examples/menu.lua"

local function count_plays(c, media)
  local n = 0
  for _, e in ipairs(c:transcript()) do
    if e.kind == "request" and e.method == "POST" and e.path:find("/play/") and e.query.media == media then
      n = n + 1
    end
  end
  return n
end

describe("examples/menu.lua", function()
  it("sends 1 to sales", function()
    local c = sim.call(MENU, { caller = "+15551234" })
    c:expect("answer")
    c:expect_play("sound:custom/welcome")
    c:expect_play("sound:custom/main-menu")
    c:press("1")
    c:expect_play("sound:pbx-transfer")
    c:expect_continue("sales", "s", 1)
    assert.is_true(c:finish())
  end)

  for _, case in ipairs({ { "1", "billing" }, { "2", "technical" } }) do
    it("sends 2 then " .. case[1] .. " to " .. case[2], function()
      local c = sim.call(MENU)
      c:expect_play("sound:custom/main-menu")
      c:press("2")
      c:expect_play("sound:custom/support-menu")
      c:press(case[1])
      c:expect_continue(case[2], "s", 1)
      assert.is_true(c:finish())
    end)
  end

  it("goes back to the main menu with *", function()
    local c = sim.call(MENU)
    c:expect_play("sound:custom/main-menu")
    c:press("2")
    c:expect_play("sound:custom/support-menu")
    c:press("*")
    c:expect_play("sound:custom/main-menu")
    c:press("1")
    c:expect_continue("sales", "s", 1)
    assert.is_true(c:finish())
  end)

  it("sends 0 to the operator", function()
    local c = sim.call(MENU)
    c:expect_play("sound:custom/main-menu")
    c:press("0")
    c:expect_play("sound:pls-hold-while-try")
    c:expect_continue("operator", "s", 1)
    assert.is_true(c:finish())
  end)

  it("tries the main menu three times when nothing is pressed, then the operator", function()
    local c = sim.call(MENU)
    c:expect_continue("operator", "s", 1)
    assert.is_true(c:finish())
    assert.are.equal(3, count_plays(c, "sound:custom/main-menu"))
    assert.are.equal(0, count_plays(c, "sound:custom/not-an-option"))
  end)

  it("says 'not an option' after a wrong key and goes to the operator after three", function()
    local c = sim.call(MENU)
    for _ = 1, 3 do
      c:expect_play("sound:custom/main-menu")
      c:press("9")
      c:expect_play("sound:custom/not-an-option")
    end
    c:expect_continue("operator", "s", 1)
    assert.is_true(c:finish())
  end)

  it("falls back to the operator from the support menu too", function()
    local c = sim.call(MENU)
    c:expect_play("sound:custom/main-menu")
    c:press("2")
    c:expect_continue("operator", "s", 1)
    assert.is_true(c:finish())
    assert.are.equal(3, count_plays(c, "sound:custom/support-menu"))
  end)

  it("lets a caller who knows the menu skip it (type-ahead during the welcome)", function()
    local c = sim.call(MENU)
    c:expect_play("sound:custom/welcome")
    c.world:press(c.id, "22", 0) -- both keys before the next menu starts
    c:expect_continue("technical", "s", 1)
    assert.is_true(c:finish())
    assert.are.equal(0, count_plays(c, "sound:custom/main-menu"))
    assert.are.equal(0, count_plays(c, "sound:custom/support-menu"))
  end)

  it("stops when the caller hangs up, without sending the call anywhere", function()
    local c = sim.call(MENU)
    c:expect_play("sound:custom/main-menu")
    c:hangup()
    assert.is_true(c:finish())
    for _, e in ipairs(c:transcript()) do
      assert.is_false(e.kind == "request" and e.path:find("/continue$") ~= nil, "continued after the hangup")
    end
  end)
end)
