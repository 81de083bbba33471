-- examples/survey.lua: answers logged in one line, a wrong key, skipped
-- questions, answers typed ahead, and a caller who hangs up half way.

local sim = require "luari.sim"

local SURVEY = "examples/survey.lua"

local function survey_line(c)
  for _, line in ipairs(c:logs("info")) do
    if line:find("^survey ") then
      return line
    end
  end
end

describe("examples/survey.lua", function()
  it("asks the three questions and logs the answers", function()
    local c = sim.call(SURVEY, { caller = "+15551234" })
    c:expect_play("sound:custom/survey-friendly")
    c:press("4")
    c:expect_play("sound:custom/survey-solved")
    c:press("5")
    c:expect_play("sound:custom/survey-recommend")
    c:press("3")
    c:expect_play("sound:auth-thankyou")
    c:expect_hangup()
    assert.is_true(c:finish())
    assert.are.equal("survey caller=+15551234 friendly=4 solved=5 recommend=3", survey_line(c))
  end)

  it("asks again after a key that is not 1-5", function()
    local c = sim.call(SURVEY, { caller = "+15550100" })
    c:expect_play("sound:custom/survey-friendly")
    c:press("9")
    c:expect_play("sound:custom/survey-1-to-5")
    c:expect_play("sound:custom/survey-friendly")
    c:press("2")
    c:expect_play("sound:custom/survey-solved")
    c:press("1")
    c:expect_play("sound:custom/survey-recommend")
    c:press("5")
    assert.is_true(c:finish())
    assert.are.equal("survey caller=+15550100 friendly=2 solved=1 recommend=5", survey_line(c))
  end)

  it("skips a question left unanswered and logs it as '-'", function()
    local c = sim.call(SURVEY, { caller = "+15550100" })
    c:expect_play("sound:custom/survey-friendly")
    c:expect_play("sound:custom/survey-friendly") -- asked twice
    c:expect_play("sound:custom/survey-solved")
    c:press("4")
    c:expect_play("sound:custom/survey-recommend")
    c:press("4")
    assert.is_true(c:finish())
    assert.are.equal("survey caller=+15550100 friendly=- solved=4 recommend=4", survey_line(c))
  end)

  it("takes answers typed ahead without playing the questions", function()
    local c = sim.call(SURVEY, { caller = "+15550100" })
    c:expect_play("sound:custom/survey-intro")
    c.world:press(c.id, "543", 0)
    c:expect_play("sound:auth-thankyou")
    assert.is_true(c:finish())
    assert.are.equal("survey caller=+15550100 friendly=5 solved=4 recommend=3", survey_line(c))
    for _, e in ipairs(c:transcript()) do
      if e.kind == "request" and e.path:find("/play/") then
        assert.is_nil(e.query.media:find("survey%-[frs]"), "played " .. e.query.media)
      end
    end
  end)

  it("logs what it has when the caller hangs up half way", function()
    local c = sim.call(SURVEY, { caller = "+15550100" })
    c:expect_play("sound:custom/survey-friendly")
    c:press("3")
    c:expect_play("sound:custom/survey-solved")
    c:hangup()
    assert.is_true(c:finish())
    assert.are.equal("survey caller=+15550100 friendly=3 solved=- recommend=-", survey_line(c))
  end)
end)
