-- The host's side of the runtime: the backend that puts luari.runtime on
-- the libev loop and the libcurl client (luari.loop, luari.http).

local loop = require "luari.loop"
local http = require "luari.http"

local host = {}

function host.backend()
  return {
    request = http.request,
    timer = loop.timer,
    now = loop.now,
    log = loop.log,
  }
end

return host
