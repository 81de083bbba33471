-- End to end: `luari sim` and sounds the simulator does not know. Asterisk
-- fails a sound file it does not have; the simulator plays it for the
-- default length and says so in the transcript, or, with
-- `--sound-default missing`, fails it as Asterisk would.

local h = require "e2e.helper"
local testkit = require "testkit"

local FLOW = [[
return function(call)
  call:answer()
  local ok, why = call:play("sound:helo-world")
  require("luari").log.info("play -> %s %s", tostring(ok), tostring(why))
end
]]

local function sim(args)
  local dir = h.flows({ typo = FLOW })
  local out = testkit.sh(string.format("%s sim %s/typo.lua %s 2>&1; echo \"exit $?\"",
    h.quote(h.bin), h.quote(dir), args or ""))
  return out, tonumber(out:match("exit (%d+)%s*$"))
end

describe("luari sim and a sound it does not know", function()
  it("plays it for the default length and says so once in the transcript", function()
    local out, status = sim()
    assert.are.equal(0, status, out)
    assert.truthy(out:find("sim       sound:helo-world is not a sound the simulator knows", 1, true), out)
    assert.truthy(out:find("2.000  info      play -> true nil", 1, true), out)
  end)

  it("fails it at once with --sound-default missing, as Asterisk does", function()
    local out, status = sim("--sound-default missing")
    assert.are.equal(0, status, out)
    assert.truthy(out:find("PlaybackFinished: sound:helo-world failed", 1, true), out)
    assert.truthy(out:find("0.000  info      play -> nil failed", 1, true), out)
    assert.falsy(out:find("is not a sound the simulator knows", 1, true), out)
  end)

  it("refuses a --sound-default that is neither seconds nor missing", function()
    local out, status = sim("--sound-default soon")
    assert.are.equal(2, status, out)
    assert.truthy(out:find("--sound-default expects a number or missing (got 'soon')", 1, true), out)
  end)
end)
