-- luari's config file: a Lua table with the settings `luari run` takes on
-- its command line (`--log-level` is `log_level` here). The command line
-- and the environment (ARI_URL, ARI_USER, ARI_PASSWORD, ARI_APP) win over
-- what is written here. A file holding a password must be readable by its
-- owner only (chmod 600); or leave the password out and give ARI_PASSWORD
-- through the service's EnvironmentFile.
--
--   luari run --config /etc/luari/luari.conf.lua
--   luari run --config /etc/luari/luari.conf.lua --print-config

return {
  url = "http://127.0.0.1:8088/ari",
  user = "luari",
  -- password = "...",
  app = { "luari" },
  flows = "/etc/luari/flows",
  log_level = "info",
  log_format = "text",          -- or "json" for log shippers
  metrics = "127.0.0.1:9464",   -- /metrics (Prometheus) and /healthz
  drain_seconds = 30,
  timeout = 10,
  rest = "http",                -- "websocket": REST over the events WebSocket (Asterisk 20.14, 21.9, 22.4+)
}
