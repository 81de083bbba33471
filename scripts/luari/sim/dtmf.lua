-- The caller's key presses as `--dtmf` and sim.call's `dtmf` give them:
-- "1@2.0,#@4.5" presses 1 two seconds in and # at four and a half.

local dtmf = {}

-- A list of { digits = "1", at = 2.0 }, or nil and what is wrong.
function dtmf.parse(spec)
  local out = {}
  for item in tostring(spec or ""):gmatch("[^,]+") do
    local digits, at = item:match("^%s*([%d%*#A-Da-d]+)@([%d%.]+)%s*$")
    if not digits or not tonumber(at) then
      return nil, "bad DTMF item '" .. item .. "' (expected DIGITS@SECONDS, e.g. 1@2.0)"
    end
    out[#out + 1] = { digits = digits, at = tonumber(at) }
  end
  return out
end

return dtmf
