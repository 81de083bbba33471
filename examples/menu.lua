-- menu: a main menu with a submenu, retries, and an operator fallback.
--
-- Dialplan:  exten => 100,1,Stasis(luari,menu)
--
--   welcome, then the main menu (one key):
--     1  sales                   -> dialplan sales,s,1
--     2  the support menu:
--          1  billing            -> dialplan billing,s,1
--          2  technical support  -> dialplan technical,s,1
--          *  back to the main menu
--     0  the operator            -> dialplan operator,s,1
--   Three tries without a usable key (nothing pressed, or a key that is not
--   on the menu) also go to the operator: nobody is hung up on for not
--   managing a menu.
--
-- call:prompt does the menu work: it plays the menu, lets the caller
-- press a key before it ends (barge-in, the menu stops at once) or even
-- before it starts (type-ahead: a caller who knows the menu never hears
-- it), checks the key against `valid`, plays `invalid` after a wrong key,
-- and tries again. It returns the key, or nil and why: "timeout" (nothing
-- pressed), "invalid" (wrong keys), "hangup" (the caller is gone).
--
-- Leaving for the dialplan (call:continue) ends luari's part of the call;
-- the dialplan takes it from there (a queue, a phone, voicemail).
--
-- The prompts are your own recordings (sound:custom/...); the simulator
-- gives sounds it does not know a default length.
--
-- Try it:  luari sim examples/menu.lua --dtmf "2@3,1@6"

-- One menu: the prompt, and the keys it accepts ("[12*]": a Lua pattern).
local function ask(call, media, keys)
  return call:prompt{
    media = media,
    valid = "[" .. keys .. "]",
    invalid = "sound:custom/not-an-option",
    tries = 3,
    timeout = 5,
    terminators = "", -- '#' and '*' are menu keys here, not "end of entry"
  }
end

-- Leaves for a dialplan context (where the call really goes).
local function send_to(call, context)
  call:play("sound:pbx-transfer")
  return call:continue(context, "s", 1)
end

local function operator(call)
  call:play("sound:pls-hold-while-try")
  return call:continue("operator", "s", 1)
end

-- The support menu: returns "back" to go up, or nothing when the call has
-- been sent on (or has hung up).
local function support(call)
  local key, why = ask(call, "sound:custom/support-menu", "12*")
  if key == "1" then
    return send_to(call, "billing")
  elseif key == "2" then
    return send_to(call, "technical")
  elseif key == "*" then
    return "back"
  elseif why ~= "hangup" then
    return operator(call)
  end
end

return function(call)
  call:answer()
  call:play("sound:custom/welcome", { interrupt = "any" })
  while true do
    local key, why = ask(call, "sound:custom/main-menu", "120")
    if key == "1" then
      return send_to(call, "sales")
    elseif key == "2" then
      if support(call) ~= "back" then
        return
      end
    elseif why ~= "hangup" then -- "0", or three tries without a usable key
      return operator(call)
    else
      return -- the caller hung up: nothing left to do
    end
  end
end
