-- call:record: the recording table, the options passed on, each way it
-- ends (max duration, silence, a terminating key that is not left for
-- read_digits), each way it fails (conflict, unknown format,
-- RecordingFailed), a hangup while recording, and misuse.

local T = require "spec.call_helper"

local function record_flow(args_source, before, after)
  return T.call([[
    return function(call)
      T.got("call", call)
      call:answer()
      ]] .. (before or "") .. [[
      T.got("record", call:record(]] .. args_source .. [[))
      ]] .. (after or "") .. [[
    end
  ]])
end

describe("call:record", function()
  it("records until maxDurationSeconds and returns the recording table", function()
    local c = record_flow('"msg-1", { maxDurationSeconds = 2 }')
    local q = c:expect_record("msg-1")
    assert.are.equal("wav", q.format)
    assert.are.equal("2", tostring(q.maxDurationSeconds))
    assert.is_true(c:finish())
    local r = T.values("record")
    assert.are.equal(1, r.n)
    local rec = r[1]
    assert.are.equal("msg-1", rec.name)
    assert.are.equal("wav", rec.format)
    assert.are.equal("done", rec.state)
    -- Asterisk checks the limit at whole seconds: 2 to 3 s of audio.
    assert.is_true(rec.duration >= 2 and rec.duration <= 3, "duration " .. tostring(rec.duration))
    assert.is_true(r.t >= 2 and r.t <= 3)
  end)

  it("passes every option on, named as ARI names them", function()
    local c = record_flow([["msg-2", { format = "gsm", maxDurationSeconds = 5, maxSilenceSeconds = 2,
      ifExists = "overwrite", beep = true, terminateOn = "*" }]])
    local q = c:expect_record("msg-2")
    assert.are.same({ name = "msg-2", format = "gsm", maxDurationSeconds = "5", maxSilenceSeconds = "2",
      ifExists = "overwrite", beep = "true", terminateOn = "*" }, q)
    assert.is_true(c:finish())
    assert.are.equal("gsm", T.value("record").format)
  end)

  it("ends on the terminateOn key, which does not stay buffered", function()
    local c = record_flow('"msg-3", { terminateOn = "#" }', nil,
      'T.got("read", call:read_digits{ timeout = 1 })')
    c:expect_record("msg-3")
    c:advance(3)
    c:press("#")
    assert.is_true(c:finish())
    local r = T.values("record")
    assert.are.equal("done", r[1].state)
    assert.are.equal(3, r[1].duration)
    assert.are.same({ "", "timeout" }, { T.values("read")[1], T.values("read")[2] })
  end)

  it("keeps other keys pressed while recording buffered", function()
    local c = record_flow('"msg-4", { terminateOn = "#", maxDurationSeconds = 10 }', nil,
      'T.got("read", call:read_digits{ max = 1 })')
    c:expect_record("msg-4")
    c:advance(1)
    c:press("5")
    c:advance(1)
    c:press("#")
    assert.is_true(c:finish())
    assert.are.equal("5", T.value("read"))
  end)

  it("ends after maxSilenceSeconds of silence", function()
    local c = record_flow('"msg-5", { maxSilenceSeconds = 2, maxDurationSeconds = 60 }')
    c:expect_record("msg-5")
    c:advance(3)
    c:audio("silence")
    assert.is_true(c:finish())
    local r = T.values("record")
    assert.is_true(r.t >= 5 and r.t < 6, "ended at " .. r.t)
    assert.are.equal("done", r[1].state)
    assert.is_true(r[1].duration >= 3, "duration " .. tostring(r[1].duration))
  end)

  it("gives nil, 'conflict' for a name that exists (ifExists defaults to fail)", function()
    local c = record_flow('"dup", { maxDurationSeconds = 1 }', 'call:record("dup", { maxDurationSeconds = 1 })')
    assert.is_true(c:finish())
    local r = T.values("record")
    assert.is_nil(r[1])
    assert.are.equal("conflict", r[2])
    assert.are.equal(409, r[3].status)
  end)

  it("overwrites with ifExists = 'overwrite'", function()
    local c = record_flow('"dup", { maxDurationSeconds = 1, ifExists = "overwrite" }',
      'call:record("dup", { maxDurationSeconds = 1 })')
    assert.is_true(c:finish())
    assert.are.equal("dup", T.value("record").name)
  end)

  it("gives nil, 'unprocessable' for a format Asterisk does not know", function()
    local c = record_flow('"msg-6", { format = "mp9" }')
    assert.is_true(c:finish())
    local r = T.values("record")
    assert.is_nil(r[1])
    assert.are.equal("unprocessable", r[2])
  end)

  it("gives nil, 'failed' and the recording when Asterisk sends RecordingFailed", function()
    -- A channel in a bridge cannot be recorded: 201, then RecordingFailed.
    local c = record_flow('"msg-7", { maxDurationSeconds = 2 }',
      'T.got("peer", call:dial("Local/agent@wait"))')
    assert.is_true(c:finish())
    assert.is_truthy(T.value("peer"))
    local r = T.values("record")
    assert.is_nil(r[1])
    assert.are.equal("failed", r[2])
    assert.are.equal("msg-7", r[3].name)
    assert.are.equal("failed", r[3].state)
  end)

  it("returns nil, 'hangup' at once when the caller hangs up while recording", function()
    local c = record_flow('"msg-8", { maxDurationSeconds = 30 }')
    c:expect_record("msg-8")
    c:advance(4)
    c:hangup()
    local at = T.hangup_index(c)
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 4, nil, "hangup" }, T.values("record"))
    assert.are.same({}, T.requests(c, at))
    T.assert_clean(c, T.value("call"))
  end)

  it("after a hangup returns nil, 'hangup' without asking Asterisk", function()
    local c = T.call([[
      return function(call)
        call:hangup()
        T.got("record", call:record("late"))
      end
    ]])
    assert.is_true(c:finish())
    assert.are.same({ n = 2, t = 0, nil, "hangup" }, T.values("record"))
    assert.are.equal(0, #T.find_requests(c, "POST", "/record$"))
  end)

  it("raises on misuse, naming the method", function()
    local c = T.call([[
      local function try(name, fn)
        T.got(name, pcall(fn))
      end
      return function(call)
        call:answer()
        try("name", function() call:record() end)
        try("format", function() call:record("x", { format = 3 }) end)
        try("ifexists", function() call:record("x", { ifExists = "replace" }) end)
        try("beep", function() call:record("x", { beep = "yes" }) end)
        try("term", function() call:record("x", { terminateOn = "5" }) end)
        try("max", function() call:record("x", { maxDurationSeconds = -1 }) end)
        try("typo", function() call:record("x", { maxDuration = 5 }) end)
      end
    ]])
    assert.is_true(c:finish())
    for _, name in ipairs({ "name", "format", "ifexists", "beep", "term", "max", "typo" }) do
      local r = T.values(name)
      assert.is_false(r[1], name)
      assert.matches("flow%d+%.lua:%d+: call:record: ", r[2])
    end
    assert.are.equal(0, #T.find_requests(c, "POST", "/record$"))
  end)
end)
