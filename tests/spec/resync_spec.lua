-- Resync, the dispatcher's side of a reconnect (App:resync): every live
-- call, and every channel a call made (a dialled peer), is checked with
-- Asterisk; a check that fails for a reason other than 404 is tried again.
-- The events lost while the socket was down are played here by answering
-- GET /channels/{id} as a test says.

local T = require "spec.call_helper"

-- Answers GET /channels/{id} with `answer(id, n)` (n: how many times that
-- id was asked) when it returns a status; other requests go on as usual.
-- Returns the table of counts by id.
local function intercept_gets(c, answer)
  local backend = c.world.rt.backend
  local request = backend.request
  local asked = {}
  backend.request = function(method, segments, query, body, timeout, cb)
    local id = method == "GET" and segments[1] == "channels" and #segments == 2 and segments[2]
    if id then
      asked[id] = (asked[id] or 0) + 1
      local status, rbody = answer(id, asked[id])
      if status then
        local h = c.world.clock:after(0, function()
          cb(status, rbody)
        end)
        return { cancel = function() h:cancel() end }
      end
    end
    return request(method, segments, query, body, timeout, cb)
  end
  return asked
end

local function count_lines(lines, text)
  local n = 0
  for _, line in ipairs(lines) do
    if line:find(text, 1, true) then
      n = n + 1
    end
  end
  return n
end

-- A call whose flow sleeps 20 s, 1 s into it.
local function sleeping_call()
  local c = T.call([[
    return function(call)
      call:answer()
      T.got("slept", call:sleep(20))
    end
  ]])
  c:advance(1)
  return c
end

describe("resync", function()
  it("tries a failed check again, and a call still there carries on", function()
    local c = sleeping_call()
    local asked = intercept_gets(c, function(_, n)
      if n <= 2 then
        return 500, { message = "Internal Server Error" }
      end
    end)
    assert.are.equal(1, c.world.app:resync())
    c:advance(5)
    assert.are.equal(3, asked[c.id])
    assert.is_false(T.has("slept"), "the flow still sleeps")
    assert.are.equal(0, count_lines(c:logs("warn"), "resync: cannot check"))
    assert.is_true(c:finish())
    assert.is_true(T.value("slept"))
  end)

  it("gives up after three tries with one warning, and leaves the call alone", function()
    local c = sleeping_call()
    local asked = intercept_gets(c, function()
      return 500, { message = "Internal Server Error" }
    end)
    c.world.app:resync()
    c:advance(10)
    assert.are.equal(3, asked[c.id])
    assert.are.equal(1, count_lines(c:logs("warn"), "resync: cannot check 1 channel(s) (the first: get: 500 Internal Server Error, 3 tries)"))
    assert.is_true(c:finish())
    assert.is_true(T.value("slept"))
  end)

  it("checks the channels a call dialled: a peer gone meanwhile ends as a hangup", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local peer = call:dial("Local/1000@wait", { timeout = 10 })
        T.got("peer", peer)
        T.got("peer_gone", peer:wait_hangup(60))
        T.got("peer_state", peer:is_up())
      end
    ]])
    c:advance(5)
    local peer = T.value("peer")
    assert.is_table(peer)
    local asked = intercept_gets(c, function(id)
      if id == peer.id then
        return 404, { message = "Channel not found" }
      end
    end)
    assert.is_false(T.has("peer_gone"))
    c.world.app:resync()
    c:advance(1)
    assert.are.equal(1, asked[c.id], "the caller's channel is checked")
    assert.are.equal(1, asked[peer.id], "and so is the peer's")
    assert.is_true(T.value("peer_gone"))
    assert.is_false(T.value("peer_state"))
    assert.are.equal(1, count_lines(c:logs("info"), "resync: 1 channel(s) hung up while events were down"))
  end)

  it("sums the outcomes up in one line, each channel's at debug", function()
    local c = T.call([[
      return function(call)
        call:answer()
        local peers = {}
        for i = 1, 3 do
          peers[i] = call:dial("Local/100" .. i .. "@wait", { timeout = 10 })
          T.got("peer" .. i, peers[i])
        end
        for i = 1, 3 do
          peers[i]:wait_hangup(60)
        end
        T.got("all_gone", true)
        call:sleep(60)
      end
    ]])
    c:advance(10)
    local gone = {}
    for i = 1, 3 do
      assert.is_table(T.value("peer" .. i), "peer " .. i .. " answered")
      gone[T.value("peer" .. i).id] = true
    end
    intercept_gets(c, function(id)
      if gone[id] then
        return 404, { message = "Channel not found" }
      end
    end)
    c.world.app:resync()
    c:advance(1)
    assert.is_true(T.value("all_gone"))
    local info = c:logs("info")
    assert.are.equal(1, count_lines(info, "resync: 3 channel(s) hung up while events were down"), table.concat(info, "\n"))
    assert.are.equal(0, count_lines(info, "resync: the channel"))
    assert.are.equal(3, count_lines(c:logs("debug"), "resync: the channel hung up while events were down"))
  end)
end)
