-- A `luari sim-server --script` that keeps only the newest 3 requests in
-- the journal, so that a test can see the oldest go.
return function(server)
  server.journal_limit = 3
end
