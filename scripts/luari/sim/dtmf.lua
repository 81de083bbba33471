-- The caller's key presses as `--dtmf` and sim.call's `dtmf` give them:
-- "1@2.0,#@4.5" presses 1 two seconds in and # at four and a half.

local dtmf = {}

-- Keys a caller can press, one or more.
dtmf.DIGITS = "^[%d%*#A-Da-d]+$"

-- A list of { digits = "1", at = 2.0 }, or nil and what is wrong.
function dtmf.parse(spec)
  local out = {}
  for item in tostring(spec or ""):gmatch("[^,]+") do
    local digits, at = item:match("^%s*([^@%s]+)@([%d%.]+)%s*$")
    if not digits or not digits:match(dtmf.DIGITS) or not tonumber(at) then
      return nil, "bad DTMF item '" .. item .. "' (expected DIGITS@SECONDS, e.g. 1@2.0)"
    end
    out[#out + 1] = { digits = digits, at = tonumber(at) }
  end
  return out
end

return dtmf
