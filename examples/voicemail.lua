-- voicemail: leave a message, hear it back, keep it or record it again.
--
-- Dialplan:  exten => 200,1,Stasis(luari,voicemail,200)   ; the mailbox
--
--   "Please leave your message after the tone; when done, hang up or
--    press the pound key" (vm-intro), a beep, then luari records until the
--   caller presses #, stays silent for 4 s, or talks for 3 minutes. Then:
--   the message is played back and the caller chooses (vm-review):
--     1  keep it     2  hear it again     3  record it again
--   Nothing pressed keeps it. A message under a second long (an empty
--   one, say) is recorded again; after three empty ones the caller hears
--   goodbye.
--
-- call:record waits until Asterisk ends the recording and returns its
-- table (name, format, duration, ...). The # that ends it is consumed:
-- the review menu afterwards does not see it. A caller who hangs up while
-- recording leaves the message as it is (Asterisk keeps the file): record
-- returns nil, "hangup" and the flow just logs it.
--
-- The message is the stored recording "vm-<mailbox>-<call id>"
-- (/var/spool/asterisk/recording/ on the Asterisk host); "recording:NAME"
-- plays it back.
--
-- Try it:  luari sim examples/voicemail.lua --dtmf "#@8,1@12"

local luari = require "luari"

local RECORD = {
  format = "wav",
  beep = true,
  terminateOn = "#",
  maxSilenceSeconds = 4,
  maxDurationSeconds = 180,
  ifExists = "overwrite", -- recording again replaces the first take
}

-- What to do with a message: "keep" or "again" (or nil when the caller
-- hung up).
local function review(call, name)
  while true do
    call:play("recording:" .. name, { interrupt = "123" })
    local key, why = call:prompt{ media = "sound:vm-review", valid = "[123]", invalid = "sound:vm-sorry",
      tries = 2, timeout = 5 }
    if why == "hangup" then
      return nil
    elseif key == "3" then
      return "again"
    elseif key ~= "2" then
      return "keep" -- 1, or no answer: keep what was said
    end
  end
end

return function(call, mailbox)
  mailbox = mailbox or "100"
  local name = string.format("vm-%s-%s", mailbox, call.id)
  call:answer()
  call:play("sound:vm-intro")
  for _ = 1, 3 do
    local rec, why = call:record(name, RECORD)
    if not rec then
      luari.log.info("mailbox %s: %s while recording %s", mailbox, why, name)
      return
    end
    if rec.duration < 1 then
      call:play("sound:vm-tooshort")
    else
      local choice = review(call, name)
      if choice == "keep" then
        luari.log.info("mailbox %s: new message %s (%d s)", mailbox, name, rec.duration)
        call:play("sound:vm-msgsaved")
        call:play("sound:vm-goodbye")
        return call:hangup()
      elseif choice == nil then
        return
      end
    end
  end
  call:play("sound:vm-goodbye")
  call:hangup()
end
