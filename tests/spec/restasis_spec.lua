-- A channel that leaves the application and comes back: the dialplan (or
-- a move) sends it into Stasis() again. Routing is by the new StasisStart's
-- arguments, as for any call: a new flow runs and, when it returns, hangs
-- the call up. And a channel a flow created and handed over (continue)
-- lives on when that flow ends.

local sim = require "luari.sim"
local T = require "spec.call_helper"

local PRELUDE = 'local T = require "spec.call_helper"; local luari = require "luari"; '

-- A directory of flows: name -> source.
local function flows(sources)
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "'")
  for name, source in pairs(sources) do
    local f = assert(io.open(dir .. "/" .. name .. ".lua", "w"))
    f:write(PRELUDE, source)
    f:close()
  end
  return dir
end

local SECOND = [[
return function(call)
  T.got("second", call.id, call.args[1])
  T.got("second_play", call:play("sound:hello-world"))
end
]]

local function hangups(c, id)
  local n = 0
  for _, r in ipairs(T.find_requests(c, "DELETE", "^/channels/")) do
    n = n + (r.path == "/channels/" .. id and 1 or 0)
  end
  return n
end

describe("a channel back in Stasis", function()
  before_each(function() T.results = {} end)

  it("after continue, runs the flow its new arguments name, which hangs it up at its end", function()
    local c = sim.call(flows({
      main = [[
        return function(call)
          call:answer()
          T.got("continue", call:continue("ivr", "second", 1))
          T.got("after", call:answer())
        end
      ]],
      second = SECOND,
    }), { flow = "main" })
    c:advance(10)
    assert.is_true(T.value("continue"))
    local after = T.values("after")
    assert.are.same({ nil, "left" }, { after[1], after[2] })
    assert.are.equal(c.id, T.value("second"))
    assert.is_true(T.value("second_play"))
    assert.are.equal(1, hangups(c, c.id), "the second flow's end hangs the caller up")
  end)

  it("after a move to this application, runs the flow the move names", function()
    local c = sim.call(flows({
      main = [[
        return function(call)
          call:answer()
          T.got("move", call:move("luari", { "second", "x" }))
          T.got("up", call:is_up())
        end
      ]],
      second = SECOND,
    }), { flow = "main" })
    c:advance(10)
    assert.is_true(T.value("move"))
    assert.is_false(T.value("up"))
    local second = T.values("second")
    assert.are.same({ c.id, "x" }, { second[1], second[2] })
    assert.is_true(T.value("second_play"))
  end)

  it("a channel the flow created and sent to the dialplan is not hung up when the flow ends", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local o = luari.originate({ endpoint = "Local/1000@wait" })
        T.got("answered", o:wait_answer(5))
        T.got("o", o.id)
        T.got("continue", o:continue("after-stasis", "s", 1))
      end
    ]])
    c:advance(10)
    assert.is_true(T.value("answered"))
    assert.is_true(T.value("continue"))
    assert.are.equal(0, hangups(c, T.value("o")), "handed over, it lives on")
    assert.are.equal(1, hangups(c, c.id))
  end)
end)

describe("a move to an application nobody serves", function()
  before_each(function() T.results = {} end)

  it("fails: the channel stays, and the flow goes on with it", function()
    local c = T.call([[
      return function(call)
        call:answer()
        T.got("move", call:move("nobody-here", { "a" }))
        T.got("up", call:is_up())
        T.got("play", call:play("sound:beep"))
      end
    ]])
    c:advance(10)
    local move = T.values("move")
    assert.are.same({ nil, "failed" }, { move[1], move[2] })
    assert.truthy(move[3].message:find("nobody-here", 1, true))
    assert.is_true(T.value("up"))
    assert.is_true(T.value("play"))
  end)
end)
