-- /metrics (Prometheus text format) and /healthz for `luari run
-- --metrics HOST:PORT`, served by the same small HTTP server as the
-- simulator. Gauges are read when scraped; counters are kept as things
-- happen (luari.app, the runtime's request hook, the events connection).

local simserver = require "luari.simserver"

local server = {}

local function respond(req, status, ctype, body)
  req:respond(status, { ["Content-Type"] = ctype, ["Cache-Control"] = "no-cache" }, body)
end

-- ctx: { registry, app, reloader, connected = function() -> boolean }
local function refresh(ctx)
  local reg = ctx.registry
  reg:set("luari_lua_memory_bytes", nil, collectgarbage("count") * 1024)
  reg:set("luari_ari_connected", nil, ctx.connected() and 1 or 0)
  local gen = ctx.app.generation
  reg:set("luari_flow_generation", nil, gen and gen.number or 0)
  local ev = ctx.events_stats and ctx.events_stats() or {}
  reg:set("luari_events_dropped_total", { reason = "malformed_json" }, ev.dropped_json or 0)
  reg:set("luari_events_dropped_total", { reason = "binary_frame" }, ev.dropped_binary or 0)
  local stats = ctx.reloader and ctx.reloader.stats
  if stats then
    reg:set("luari_flow_reloads_total", nil, stats.reloads)
    reg:set("luari_flow_reload_failures_total", nil, stats.failures)
  end
end

function server.start(host, port, ctx)
  ctx.registry:counter("luari_events_dropped_total", "Events WebSocket messages dropped as bad input, by reason")
  ctx.registry:counter("luari_flow_reloads_total", "Flow reloads that made a new generation")
  ctx.registry:counter("luari_flow_reload_failures_total", "Flow reloads refused because a file did not compile")
  local srv, err = simserver.listen({
    host = host,
    port = port,
    on_request = function(req)
      local path = req:path():match("^[^?]*")
      if req:method() ~= "GET" then
        respond(req, 405, "text/plain", "GET only\n")
      elseif path == "/metrics" then
        refresh(ctx)
        respond(req, 200, "text/plain; version=0.0.4", ctx.registry:render())
      elseif path == "/healthz" then
        if ctx.connected() then
          respond(req, 200, "text/plain", "ok: connected to ARI\n")
        else
          respond(req, 503, "text/plain", "not connected to ARI\n")
        end
      else
        respond(req, 404, "text/plain", "try /metrics or /healthz\n")
      end
    end,
    on_ws_open = function(conn)
      conn:close(1008)
    end,
    on_ws_message = function() end,
    on_ws_close = function() end,
  })
  if not srv then
    return nil, err
  end
  return srv
end

return server
