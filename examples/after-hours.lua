-- after-hours: open or closed? Then back to the dialplan.
--
-- Dialplan:  exten => 400,1,Stasis(luari,after-hours)
--            [open]    exten => s,1,Queue(support)
--            [closed]  exten => s,1,VoiceMail(400@default)
--
-- During opening hours the call goes straight on to [open] (it is not
-- even answered here: the queue does that). Outside them the caller hears
-- that the office is closed and goes on to [closed]. call:continue hands
-- the call back to the dialplan; luari's part ends there.
--
-- The clock is the luari host's local time. To test both branches, or to
-- try them with `luari sim`, pin the time with a Stasis argument
-- "YYYY-MM-DDTHH:MM" (local time): Stasis(luari,after-hours,2026-11-28T10:00).
--
-- Try it:  luari sim examples/after-hours.lua --flow after-hours --args 2026-11-30T10:00
--          luari sim examples/after-hours.lua --flow after-hours --args 2026-11-28T10:00

local luari = require "luari"

-- Opening hours per weekday (os.date's wday: 1 is Sunday), in minutes
-- after midnight: from, until.
local HOURS = {
  [2] = { 9 * 60, 17 * 60 }, -- Monday
  [3] = { 9 * 60, 17 * 60 },
  [4] = { 9 * 60, 17 * 60 },
  [5] = { 9 * 60, 17 * 60 },
  [6] = { 9 * 60, 16 * 60 }, -- Friday: we close early
}

local function is_open(t)
  local hours = HOURS[t.wday]
  local minute = t.hour * 60 + t.min
  return hours ~= nil and minute >= hours[1] and minute < hours[2]
end

-- "2026-11-30T10:00" -> os.date("*t") table of that local time, or nil.
local function parse_time(s)
  local y, mo, d, h, mi = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d)$")
  if not y then
    return nil
  end
  local stamp = os.time({ year = tonumber(y), month = tonumber(mo), day = tonumber(d),
    hour = tonumber(h), min = tonumber(mi) })
  return os.date("*t", stamp)
end

-- The time to decide by: the pinned one, or now.
local function current_time(pinned)
  if pinned then
    local t = parse_time(pinned)
    if t then
      return t
    end
    luari.log.warn("after-hours: '%s' is not YYYY-MM-DDTHH:MM; using the clock", pinned)
  end
  return os.date("*t")
end

return function(call, pinned)
  local t = current_time(pinned)
  if is_open(t) then
    return call:continue("open", "s", 1)
  end
  luari.log.info("after-hours: closed (%s)", os.date("%a %H:%M", os.time(t)))
  call:answer()
  call:play("sound:custom/office-closed")
  call:continue("closed", "s", 1)
end
