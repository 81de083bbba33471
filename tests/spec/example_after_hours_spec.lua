-- examples/after-hours.lua: open and closed, decided by a pinned time
-- (the flow's Stasis argument), including the edges of the opening hours.

local sim = require "luari.sim"

local FLOW = "examples/after-hours.lua"

local function at(time)
  return sim.call(FLOW, { flow = "after-hours", args = { time } })
end

local function answered(c)
  for _, e in ipairs(c:transcript()) do
    if e.kind == "request" and e.path:find("/answer$") then
      return true
    end
  end
  return false
end

describe("examples/after-hours.lua", function()
  it("sends the call on to [open] during opening hours, without answering it", function()
    local c = at("2026-11-30T10:00") -- a Monday
    c:expect_continue("open", "s", 1)
    assert.is_true(c:finish())
    assert.is_false(answered(c))
  end)

  it("tells the caller the office is closed on a Saturday, then goes on to [closed]", function()
    local c = at("2026-11-28T10:00") -- a Saturday
    c:expect("answer")
    c:expect_play("sound:custom/office-closed")
    c:expect_continue("closed", "s", 1)
    assert.is_true(c:finish())
  end)

  for _, case in ipairs({
    { "2026-11-30T08:59", "closed" }, -- Monday, a minute before opening
    { "2026-11-30T09:00", "open" },
    { "2026-11-30T16:59", "open" },
    { "2026-11-30T17:00", "closed" },
    { "2026-12-04T15:59", "open" }, -- Friday closes at 16:00
    { "2026-12-04T16:00", "closed" },
    { "2026-11-29T12:00", "closed" }, -- Sunday
  }) do
    it("at " .. case[1] .. " is " .. case[2], function()
      local c = at(case[1])
      c:expect_continue(case[2], "s", 1)
      assert.is_true(c:finish())
    end)
  end

  it("warns about a time it cannot read and goes by the clock", function()
    local c = at("tomorrow")
    local q = c:expect("continueInDialplan")
    assert.is_true(q.context == "open" or q.context == "closed")
    assert.is_true(c:finish())
    local warned = false
    for _, line in ipairs(c:logs("warn")) do
      warned = warned or line:find("'tomorrow' is not YYYY-MM-DDTHH:MM", 1, true) ~= nil
    end
    assert.is_true(warned)
  end)
end)
