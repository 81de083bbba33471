-- The benchmark's first flow: answer, play one sound to the end, hang up.
return function(call)
  call:answer()
  call:play("sound:hello-world")
  call:hangup()
end
