-- hello: the smallest useful flow.
--
-- Asterisk hands the call to luari (dialplan: same => n,Stasis(luari,hello)).
-- luari calls this function in its own coroutine with the call object.
-- Each call:method() waits until Asterisk has done it; other calls carry on
-- meanwhile. When the function returns, luari hangs up whatever is left.
--
-- Try it without Asterisk:  luari sim examples/hello.lua

return function(call)
  call:answer()
  call:play("sound:hello-world")
  call:hangup()
end
