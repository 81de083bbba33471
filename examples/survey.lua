-- survey: three questions, each answered with a key from 1 to 5, logged.
--
-- Dialplan (after a support call, say):
--            exten => 500,1,Stasis(luari,survey)
--
--   "Please rate ... from 1 to 5" for each question. A key other than 1-5
--   gets "please answer with a number from 1 to 5" and the question again;
--   a question left unanswered twice is skipped. The answers go to the log
--   as one line, also when the caller hangs up half way:
--
--     survey caller=+15550100 friendly=4 solved=5 recommend=-
--
--   ("-" is a question without an answer.) Send the log to whatever
--   collects your statistics, or replace log_answers with a database call.
--
-- A caller who knows the questions can answer ahead: keys pressed while a
-- question plays stop it, and keys pressed early are kept for the next
-- question (call:prompt's type-ahead).
--
-- Try it:  luari sim examples/survey.lua --dtmf "4@3,5@8,3@12"

local luari = require "luari"

local QUESTIONS = {
  { name = "friendly", media = "sound:custom/survey-friendly" },
  { name = "solved", media = "sound:custom/survey-solved" },
  { name = "recommend", media = "sound:custom/survey-recommend" },
}

local function log_answers(call, answers)
  local parts = { "survey caller=" .. (call.channel.caller.number ~= "" and call.channel.caller.number or "-") }
  for _, q in ipairs(QUESTIONS) do
    parts[#parts + 1] = q.name .. "=" .. (answers[q.name] or "-")
  end
  luari.log.info("%s", table.concat(parts, " "))
end

return function(call)
  call:answer()
  call:play("sound:custom/survey-intro", { interrupt = "12345" })
  local answers = {}
  for _, q in ipairs(QUESTIONS) do
    local key, why = call:prompt{
      media = q.media,
      valid = "[1-5]",
      invalid = "sound:custom/survey-1-to-5",
      tries = 2,
      timeout = 6,
    }
    if why == "hangup" then
      break
    end
    answers[q.name] = key -- nil when skipped
  end
  log_answers(call, answers)
  call:play("sound:auth-thankyou")
  call:hangup()
end
