-- dial: ring an agent; talk when they answer; say why when they do not.
--
-- Dialplan:  exten => 300,1,Stasis(luari,dial,PJSIP/agent42)
--
-- The agent's endpoint is the Stasis argument. Without one the flow rings
-- Local/agent@hello, a far end the simulator knows (it answers, says
-- "hello world" and hangs up), so that `luari sim examples/dial.lua` has
-- someone to talk to.
--
-- call:dial creates the agent's channel, dials it with this call as the
-- caller, and waits up to `timeout` seconds. When the agent answers the
-- two are bridged and dial returns the agent's call object; it has the
-- same methods as `call`. Otherwise it returns nil and why:
--   "busy"        the agent's phone is busy
--   "noanswer"    nobody answered within the timeout
--   "congestion"  the network could not reach the agent
--   "failed"      no such endpoint, or it failed otherwise
--   "hangup"      the caller hung up while it rang (the ringing stops)
-- luari hangs up whatever is left when the flow returns: the agent's
-- channel belongs to this call.
--
-- Try it:  luari sim examples/dial.lua
--          luari sim examples/dial.lua --flow dial --args Local/agent@busy

local luari = require "luari"

local SORRY = {
  busy = "sound:custom/agent-busy", -- "our agent is on another call"
  noanswer = "sound:vm-nobodyavail",
  congestion = "sound:all-circuits-busy-now",
  failed = "sound:cannot-complete-as-dialed",
}

return function(call, agent)
  agent = agent or "Local/agent@hello"
  call:answer()
  call:play("sound:pls-hold-while-try")
  call:moh() -- music while it rings
  local peer, why = call:dial(agent, { timeout = 20 })
  call:stop_moh()
  if peer then
    luari.log.info("%s talks to %s", call.id, agent)
    -- They talk until one side hangs up. wait_hangup returns true when
    -- the agent hangs up, nil, "hangup" when the caller does.
    if peer:wait_hangup() then
      call:play("sound:auth-thankyou")
    end
    return
  end
  if why == "hangup" then
    return
  end
  luari.log.info("%s: %s did not take the call (%s)", call.id, agent, why)
  call:play(SORRY[why] or SORRY.failed)
  call:play("sound:goodbye")
  call:hangup()
end
