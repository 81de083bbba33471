-- A `luari sim-server --script`: POST /sim/flood with `busy_ms` keeps the
-- simulator's loop busy that long first (as a slow model would), then
-- floods as usual.
return function(server)
  local control = server.control_request
  server.control_request = function(self, method, path, data)
    if method == "POST" and path == "/sim/flood" and tonumber(data.busy_ms) then
      local until_ = os.clock() + tonumber(data.busy_ms) / 1000
      while os.clock() < until_ do end
    end
    return control(self, method, path, data)
  end
end
