-- examples/voicemail.lua: record with a beep until # (or silence), play it
-- back, keep it, hear it again or record it again; an empty message; a
-- hangup while recording.

local sim = require "luari.sim"

local VM = "examples/voicemail.lua"

local function requests(c, method, pattern)
  local out = {}
  for _, e in ipairs(c:transcript()) do
    if e.kind == "request" and e.method == method and e.path:find(pattern) then
      out[#out + 1] = e
    end
  end
  return out
end

local function has_log(c, pattern)
  for _, line in ipairs(c:logs()) do
    if line:find(pattern) then
      return true
    end
  end
  return false
end

describe("examples/voicemail.lua", function()
  it("records after a beep until #, plays the message back and keeps it on 1", function()
    local c = sim.call(VM, { flow = "voicemail", args = { "200" } })
    c:expect_play("sound:vm-intro")
    local q = c:expect_record("vm-200-" .. c.id)
    assert.are.same({ "true", "#", "wav", "4", "overwrite" }, { q.beep, q.terminateOn, q.format,
      tostring(q.maxSilenceSeconds), q.ifExists })
    c:advance(5)
    c:press("#")
    c:expect_play("recording:vm-200-" .. c.id)
    c:expect_play("sound:vm-review")
    c:press("1")
    c:expect_play("sound:vm-msgsaved")
    c:expect_play("sound:vm-goodbye")
    c:expect_hangup()
    assert.is_true(c:finish())
    assert.is_true(has_log(c, "mailbox 200: new message vm%-200%-"))
  end)

  it("plays the message again on 2", function()
    local c = sim.call(VM)
    c:expect_record()
    c:advance(3)
    c:press("#")
    c:expect_play("sound:vm-review")
    c:press("2")
    c:expect_play("recording:vm-100-" .. c.id)
    c:expect_play("sound:vm-review")
    c:press("1")
    c:expect_hangup()
    assert.is_true(c:finish())
  end)

  it("records again on 3, over the first take", function()
    local c = sim.call(VM)
    c:expect_record()
    c:advance(3)
    c:press("#")
    c:expect_play("sound:vm-review")
    c:press("3")
    c:expect_record("vm-100-" .. c.id)
    c:advance(2)
    c:press("#")
    c:expect_play("sound:vm-review")
    c:press("1")
    c:expect_hangup()
    assert.is_true(c:finish())
    assert.are.equal(2, #requests(c, "POST", "/record$"))
  end)

  it("ends the recording after 4 s of silence", function()
    local c = sim.call(VM)
    c:expect_record()
    c:advance(6)
    c:audio("silence")
    local t0 = c.world.clock:now()
    c:expect_play("recording:vm-100-" .. c.id)
    local t = c.world.clock:now()
    assert.is_true(t >= t0 + 4 and t < t0 + 5, "the recording ended at " .. t)
  end)

  it("keeps the message when the caller does not choose", function()
    local c = sim.call(VM)
    c:expect_record()
    c:advance(3)
    c:press("#")
    c:expect_play("sound:vm-msgsaved")
    c:expect_hangup()
    assert.is_true(c:finish())
  end)

  it("records again after an empty message, and gives up after three", function()
    local c = sim.call(VM)
    c.world:caller_audio(c.id, "none") -- no frames at all: Asterisk stops after 4 s, 0 s long
    for _ = 1, 3 do
      c:expect_record()
      c:expect_play("sound:vm-tooshort")
    end
    c:expect_play("sound:vm-goodbye")
    c:expect_hangup()
    assert.is_true(c:finish())
    for _, e in ipairs(requests(c, "POST", "/play/")) do
      assert.is_nil(e.query.media:find("^recording:"), "an empty message was played back")
    end
  end)

  it("leaves the message as it is when the caller hangs up while recording", function()
    local c = sim.call(VM)
    c:expect_record()
    c:advance(10)
    c:hangup()
    assert.is_true(c:finish())
    assert.is_true(has_log(c, "mailbox 100: hangup while recording"))
    assert.are.equal(0, #requests(c, "DELETE", "^/recordings/"))
  end)
end)
