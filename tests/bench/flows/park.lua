-- The benchmark's held calls: answer, then wait in read_digits for a key
-- (an hour at most), then hang up.
return function(call)
  call:answer()
  call:read_digits({ max = 1, timeout = 3600 })
  call:hangup()
end
