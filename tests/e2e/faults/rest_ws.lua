-- A `luari sim-server --script` for REST over the events WebSocket:
--   POST /sim/fault/restws {mode = "ignore"}: RESTRequest messages get no
--     reply at all, as from an Asterisk older than 20.14, 21.9 or 22.4
--   POST /sim/fault/restws {mode = "silent", match = "..."}: the next
--     request whose uri contains `match` gets no reply
--   POST /sim/fault/restws {mode = "drop", match = "..."}: the next such
--     request drops the WebSocket instead of a reply
-- Each answer says how many RESTRequests came so far (`seen`); a POST
-- without a mode changes nothing.

local json = require "luari.json"

return function(server)
  local mode, match, seen = "normal", nil, 0
  local control = server.control_request
  server.control_request = function(self, method, path, data)
    if method == "POST" and path == "/sim/fault/restws" then
      if data.mode then
        mode, match = data.mode, data.match
      end
      return 200, { mode = mode, seen = seen }
    end
    return control(self, method, path, data)
  end
  local on_ws_message = server.on_ws_message
  server.on_ws_message = function(self, conn, text)
    local ok, msg = pcall(json.decode, text)
    local uri = ok and type(msg) == "table" and type(msg.uri) == "string" and msg.uri or ""
    seen = seen + 1
    if mode == "ignore" then
      return
    end
    if (mode == "silent" or mode == "drop") and match and uri:find(match, 1, true) then
      local was = mode
      mode, match = "normal", nil
      if was == "drop" then
        conn:close(0)
      end
      return
    end
    return on_ws_message(self, conn, text)
  end
end
