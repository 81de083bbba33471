-- Sounds of the simulated Asterisk: how long a prompt plays, and how long
-- Asterisk takes to say digits, numbers and characters (it plays one file
-- per digit or letter, so their lengths add up).
--
-- The built-in table holds the lengths (seconds, 3 decimals) of the US
-- English core sounds that flows use most, measured from the real files.
-- Model.new{sounds = ...} overrides it (false: the file is missing), and
-- `sound_default` gives every other name a length. Model.load_sounds_tsv()
-- reads a full `name<TAB>seconds` list when a caller wants every sound.

local lib = require "luari.sim.model.lib"

local S = {}
lib.sounds = S

S.BUILTIN = {
  ["digits/0"] = 0.875,
  ["digits/1"] = 0.911,
  ["digits/2"] = 0.747,
  ["digits/3"] = 0.838,
  ["digits/4"] = 0.802,
  ["digits/5"] = 0.820,
  ["digits/6"] = 0.881,
  ["digits/7"] = 0.820,
  ["digits/8"] = 0.692,
  ["digits/9"] = 0.859,
  ["digits/10"] = 0.656,
  ["digits/11"] = 0.966,
  ["digits/12"] = 0.802,
  ["digits/13"] = 0.929,
  ["digits/14"] = 1.057,
  ["digits/15"] = 1.148,
  ["digits/16"] = 1.185,
  ["digits/17"] = 1.203,
  ["digits/18"] = 1.096,
  ["digits/19"] = 1.239,
  ["digits/20"] = 0.929,
  ["digits/30"] = 0.902,
  ["digits/40"] = 0.948,
  ["digits/50"] = 1.225,
  ["digits/60"] = 1.020,
  ["digits/70"] = 1.039,
  ["digits/80"] = 0.838,
  ["digits/90"] = 1.039,
  ["digits/hundred"] = 0.849,
  ["digits/thousand"] = 0.893,
  ["digits/million"] = 0.840,
  ["digits/billion"] = 1.002,
  ["digits/minus"] = 0.888,
  ["digits/star"] = 0.809,
  ["digits/pound"] = 0.748,
  ["digits/oh"] = 0.582,
  ["digits/at"] = 0.689,
  ["letters/a"] = 0.615,
  ["letters/b"] = 0.741,
  ["letters/c"] = 0.865,
  ["letters/d"] = 0.719,
  ["letters/e"] = 0.663,
  ["letters/f"] = 0.584,
  ["letters/g"] = 0.697,
  ["letters/h"] = 0.652,
  ["letters/i"] = 0.674,
  ["letters/j"] = 0.753,
  ["letters/k"] = 0.719,
  ["letters/l"] = 0.595,
  ["letters/m"] = 0.607,
  ["letters/n"] = 0.618,
  ["letters/o"] = 0.652,
  ["letters/p"] = 0.640,
  ["letters/q"] = 0.741,
  ["letters/r"] = 0.730,
  ["letters/s"] = 0.618,
  ["letters/t"] = 0.674,
  ["letters/u"] = 0.788,
  ["letters/v"] = 0.765,
  ["letters/w"] = 0.908,
  ["letters/x"] = 0.649,
  ["letters/y"] = 0.752,
  ["letters/z"] = 0.817,
  ["letters/at"] = 0.607,
  ["letters/dash"] = 0.775,
  ["letters/dollar"] = 0.842,
  ["letters/dot"] = 0.741,
  ["letters/equals"] = 0.876,
  ["letters/exclaimation-point"] = 1.528,
  ["letters/plus"] = 0.719,
  ["letters/slash"] = 0.865,
  ["letters/space"] = 0.820,
  ["hello-world"] = 1.404,
  ["hello"] = 0.786,
  ["beep"] = 0.425,
  ["beeperr"] = 0.360,
  ["goodbye"] = 0.932,
  ["demo-congrats"] = 30.277,
  ["demo-thanks"] = 5.517,
  ["demo-echotest"] = 21.982,
  ["demo-echodone"] = 2.678,
  ["demo-instruct"] = 73.349,
  ["demo-moreinfo"] = 14.729,
  ["demo-abouttotry"] = 15.176,
  ["demo-nomatch"] = 3.659,
  ["invalid"] = 4.112,
  ["pbx-invalid"] = 4.436,
  ["pbx-transfer"] = 0.947,
  ["please-try-again"] = 1.245,
  ["please-try-call-later"] = 2.166,
  ["one-moment-please"] = 1.582,
  ["pls-hold-while-try"] = 2.425,
  ["transfer"] = 2.392,
  ["sorry"] = 1.234,
  ["im-sorry"] = 1.022,
  ["cannot-complete-as-dialed"] = 2.641,
  ["all-circuits-busy-now"] = 1.801,
  ["basic-pbx-ivr-main"] = 25.392,
  ["queue-thankyou"] = 1.592,
  ["queue-youarenext"] = 5.362,
  ["queue-holdtime"] = 2.790,
  ["queue-periodic-announce"] = 7.837,
  ["tt-monkeys"] = 16.180,
  ["tt-weasels"] = 2.951,
  ["tt-allbusy"] = 8.969,
  ["tt-somethingwrong"] = 2.565,
  ["auth-thankyou"] = 0.960,
  ["auth-incorrect"] = 4.607,
  ["agent-pass"] = 3.285,
  ["conf-onlyperson"] = 3.160,
  ["conf-getpin"] = 2.388,
  ["vm-intro"] = 5.654,
  ["vm-login"] = 2.543,
  ["vm-password"] = 1.084,
  ["vm-incorrect"] = 1.459,
  ["vm-goodbye"] = 0.865,
  ["vm-leavemsg"] = 2.078,
  ["vm-nobodyavail"] = 2.788,
  ["vm-isunavail"] = 1.245,
  ["vm-extension"] = 1.084,
  ["vm-youhave"] = 0.907,
  ["vm-messages"] = 1.071,
  ["vm-message"] = 0.929,
  ["vm-press"] = 0.723,
  ["vm-then-pound"] = 1.807,
  ["vm-star-cancel"] = 1.859,
  ["vm-enter-num-to-call"] = 2.023,
  ["vm-sorry"] = 3.072,
  ["vm-review"] = 7.746,
  ["vm-saved"] = 1.007,
  ["vm-msgsaved"] = 2.169,
  ["vm-rec-name"] = 4.286,
  ["vm-tooshort"] = 1.782,
  ["vm-options"] = 16.369,
  ["vm-instructions"] = 7.268,
  ["hours"] = 0.876,
  ["minutes"] = 0.882,
  ["seconds"] = 1.120,
  ["silence/1"] = 1.000,
  ["silence/2"] = 2.000,
  ["silence/3"] = 3.000,
  ["silence/4"] = 4.000,
  ["silence/5"] = 5.000,
  ["silence/6"] = 6.000,
  ["silence/7"] = 7.000,
  ["silence/8"] = 8.000,
  ["silence/9"] = 9.000,
  ["silence/10"] = 10.000,
  -- Names the reference captures used for a missing file.
  ["no-such-file"] = false,
  ["no-such-sound"] = false,
}

S.DEFAULT_LENGTH = 2.0

-- Reads `name<TAB>seconds` lines (a header line is skipped) into a table
-- usable as Model.new{sounds = ...}. Returns nil, err when the file cannot
-- be read.
function S.load_tsv(path)
  local f, err = io.open(path, "r")
  if not f then
    return nil, err
  end
  local sounds = {}
  -- Reading raises for a directory, say: the caller gets nil, err.
  local ok, read_err = pcall(function()
    for line in f:lines() do
      local name, secs = line:match("^([^\t]+)\t%s*([%d%.]+)%s*$")
      if name and tonumber(secs) then
        sounds[name] = tonumber(secs)
      end
    end
  end)
  f:close()
  if not ok then
    return nil, path .. ": " .. tostring(read_err):gsub("^.-:%d+: ", "")
  end
  return sounds
end

-- Seconds a sound plays, or nil when the file does not exist; true as a
-- second value when the length is the default for names the simulator
-- does not know (Asterisk would fail a file it does not have).
function S.length(m, name)
  local v = m.sound_overrides[name]
  if v == nil then
    v = S.BUILTIN[name]
  end
  if v == false then
    return nil
  end
  if v ~= nil then
    return v
  end
  if m.sound_default then
    return m.sound_default, true
  end
  return nil
end

-- Whether GET /sounds/{id} finds it.
function S.exists(m, name)
  return S.length(m, name) ~= nil
end

-- The sounds GET /sounds lists: the built-in ones and the overrides.
function S.known_names(m)
  local seen, names = {}, {}
  for _, t in ipairs({ S.BUILTIN, m.sound_overrides }) do
    for name in pairs(t) do
      if not seen[name] and S.exists(m, name) then
        seen[name] = true
        names[#names + 1] = name
      end
    end
  end
  table.sort(names)
  return names
end

-- Total length of a list of files; nil when one is missing.
local function files_length(m, files)
  local total = 0
  for _, f in ipairs(files) do
    local len = S.length(m, f)
    if not len then
      return nil
    end
    total = total + len
  end
  return total
end

local DIGIT_FILES = { ["*"] = "digits/star", ["#"] = "digits/pound", ["-"] = "letters/dash" }

-- ast_say_digit_str(): one file per digit; other characters are skipped.
function S.digits_files(str)
  local files = {}
  for c in str:gmatch(".") do
    if c:match("%d") then
      files[#files + 1] = "digits/" .. c
    elseif DIGIT_FILES[c] then
      files[#files + 1] = DIGIT_FILES[c]
    end
  end
  return files
end

local CHARACTER_FILES = {
  ["*"] = "digits/star", ["#"] = "digits/pound", ["!"] = "letters/exclaimation-point",
  ["@"] = "letters/at", ["$"] = "letters/dollar", ["-"] = "letters/dash",
  ["."] = "letters/dot", ["="] = "letters/equals", ["+"] = "letters/plus",
  ["/"] = "letters/slash", [" "] = "letters/space",
}

-- ast_say_character_str(): digits, letters (any case) and a few symbols.
function S.characters_files(str)
  local files = {}
  for c in str:gmatch(".") do
    if c:match("%d") then
      files[#files + 1] = "digits/" .. c
    elseif c:match("%a") then
      files[#files + 1] = "letters/" .. c:lower()
    elseif CHARACTER_FILES[c] then
      files[#files + 1] = CHARACTER_FILES[c]
    end
  end
  return files
end

-- ast_say_number() in English: "digits/40", "digits/2" for 42, and so on.
local function number_files(n, files)
  if n < 20 then
    files[#files + 1] = "digits/" .. n
  elseif n < 100 then
    files[#files + 1] = "digits/" .. (n - n % 10)
    if n % 10 > 0 then
      files[#files + 1] = "digits/" .. (n % 10)
    end
  elseif n < 1000 then
    files[#files + 1] = "digits/" .. math.floor(n / 100)
    files[#files + 1] = "digits/hundred"
    if n % 100 > 0 then
      number_files(n % 100, files)
    end
  else
    local units = { { 1e9, "digits/billion" }, { 1e6, "digits/million" }, { 1e3, "digits/thousand" } }
    for _, u in ipairs(units) do
      if n >= u[1] then
        number_files(math.floor(n / u[1]), files)
        files[#files + 1] = u[2]
        if n % u[1] > 0 then
          number_files(n % u[1], files)
        end
        return files
      end
    end
  end
  return files
end

function S.number_files(n)
  local files = {}
  if n < 0 then
    files[1] = "digits/minus"
    n = -n
  end
  return number_files(n, files)
end

-- What playing one media URI does: "plays" for `seconds`, "fails" at once
-- (PlaybackFinished failed), "vanishes" (PlaybackStarted and nothing more,
-- as Asterisk does for an unknown scheme, a bad number or a missing
-- recording), or "endless" (tone: until stopped). Then whether it can be
-- controlled, and the sound's name when its length is the default.
function S.media_outcome(m, uri)
  local scheme, rest = uri:match("^(%a+):(.*)$")
  if scheme == "sound" then
    local len, assumed = S.length(m, rest)
    if len then
      return "plays", len, true, assumed and rest or nil
    end
    return "fails"
  elseif scheme == "recording" then
    local rec = m.stored[rest]
    if rec then
      return "plays", rec.seconds, true
    end
    return "vanishes"
  elseif scheme == "number" then
    local n = rest:match("^%s*([+-]?%d+)")
    if not n then
      return "vanishes"
    end
    local len = files_length(m, S.number_files(tonumber(n)))
    return len and "plays" or "fails", len, false
  elseif scheme == "digits" then
    local len = files_length(m, S.digits_files(rest))
    return len and "plays" or "fails", len, false
  elseif scheme == "characters" then
    local len = files_length(m, S.characters_files(rest))
    return len and "plays" or "fails", len, false
  elseif scheme == "tone" then
    return "endless", nil, true
  end
  return "vanishes"
end

return S
