-- wss:// and https:// to ARI: certificates are verified by default, a
-- private CA is accepted with --ca-file, --insecure skips the check with a
-- warning. socat terminates TLS in front of `luari sim-server`.

local h = require "e2e.helper"

local FLOW = [[
local ari = require "luari.ari"
local luari = require "luari"
return function(call)
  local info, err = ari.asterisk.getInfo()
  luari.log.info("RESULT {\"version\": \"%s\"}", info and info.system.version or tostring(err))
end
]]

local function make_cert(dir)
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  local rc = os.execute("openssl req -x509 -newkey rsa:2048 -nodes -keyout " .. key .. " -out " .. cert
    .. " -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1")
  assert(rc == 0, "openssl could not make a test certificate")
  return cert, key
end

-- A port nothing listens on (bash's /dev/tcp tells), below the range the
-- kernel hands out to outgoing connections, so bind() does not race them.
local function free_port()
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
  for _ = 1, 50 do
    local port = math.random(20000, 32000)
    if os.execute("bash -c 'echo > /dev/tcp/127.0.0.1/" .. port .. "' 2>/dev/null") ~= 0 then
      return port
    end
  end
  error("no free port found")
end

local function listening(port)
  return os.execute("bash -c 'echo > /dev/tcp/127.0.0.1/" .. port .. "' 2>/dev/null") == 0
end

-- socat terminating TLS on a free port in front of the simulator; a port
-- taken in the meantime means another try.
local function start_tls_proxy(sim, cert, key)
  for _ = 1, 5 do
    local port = free_port()
    local log = h.tmpdir() .. "/socat-" .. port .. ".log"
    os.execute(string.format("socat OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,cert=%s,key=%s,verify=0 "
      .. "TCP:127.0.0.1:%d > %s 2>&1 & echo $! > %s.pid", port, cert, key, sim.port, log, log))
    local ok = pcall(h.wait_for, function() return listening(port) end, 5, "socat to listen")
    if ok then
      return port, log
    end
    os.execute("kill $(cat " .. log .. ".pid) 2>/dev/null")
  end
  error("socat did not listen on any of five ports")
end

describe("TLS to ARI", function()
  local sim, port, proxy_log, cert
  before_each(function()
    sim = h.start_sim()
    local key
    cert, key = make_cert(h.tmpdir())
    port, proxy_log = start_tls_proxy(sim, cert, key)
  end)
  after_each(function()
    h.stop_all()
    os.execute("kill $(cat " .. proxy_log .. ".pid) 2>/dev/null")
  end)

  it("refuses an untrusted certificate by default, saying why and how to fix it", function()
    local run = h.start_run(h.flows({ tls = FLOW }), { url = "https://localhost:" .. port .. "/ari",
      args = { "--reconnect-max", "1" } })
    h.wait_log(run, "TLS certificate not trusted", 10, true)
    assert.is_true(h.log_has(run, "wss://localhost:" .. port .. "/ari/events", true))
    assert.is_true(h.log_has(run, "--ca-file", true))
    assert.is_false(h.log_has(run, "connected to Asterisk", true))
  end)

  it("refuses at start a --ca-file it cannot read or that holds no certificate (exit 2)", function()
    local notpem = h.tmpdir() .. "/not-a-cert.pem"
    local f = assert(io.open(notpem, "w"))
    f:write("hello\n")
    f:close()
    for file, why in pairs({ ["/nonexistent/ca.pem"] = "No such file or directory",
      [notpem] = "no PEM certificate in it" }) do
      local p = io.popen(h.CLEAN_ENV .. h.quote(h.bin) .. " run --url https://localhost:" .. port .. "/ari"
        .. " --ca-file " .. h.quote(file) .. " " .. h.quote(h.flows({ tls = FLOW })) .. " 2>&1; echo exit=$?")
      local out = p:read("*a")
      p:close()
      assert.truthy(out:find("luari run: --ca-file " .. file .. ": " .. why, 1, true), out)
      assert.truthy(out:find("exit=2", 1, true), out)
    end
  end)

  it("connects with --ca-file and makes REST calls over https", function()
    local run = h.start_run(h.flows({ tls = FLOW }), { url = "https://localhost:" .. port .. "/ari",
      args = { "--ca-file", cert } })
    h.wait_log(run, "connected to Asterisk 22.10.1 at https://localhost:" .. port .. "/ari", 10, true)
    h.call(sim, { args = { "tls" } })
    h.wait_log(run, "RESULT", 10, true)
    assert.are.equal("22.10.1", h.results(run)[1].version)
  end)

  it("carries REST over the wss:// events WebSocket with --rest websocket", function()
    local run = h.start_run(h.flows({ tls = FLOW }), { url = "https://localhost:" .. port .. "/ari",
      args = { "--ca-file", cert, "--rest", "websocket" } })
    h.wait_log(run, "REST requests go over the events WebSocket", 10, true)
    h.clear_journal(sim)
    h.call(sim, { args = { "tls" } })
    h.wait_log(run, "RESULT", 10, true)
    assert.are.equal("22.10.1", h.results(run)[1].version)
    local info
    for _, r in ipairs(h.journal(sim)) do
      if r.path == "/ari/asterisk/info" then
        info = r
      end
    end
    assert.is_truthy(info)
    assert.is_true(info.websocket == true)
  end)

  it("connects with --insecure, and warns that it does", function()
    local run = h.start_run(h.flows({ tls = FLOW }), { url = "wss://127.0.0.1:" .. port .. "/ari",
      args = { "--insecure" } })
    h.wait_log(run, "connected to Asterisk", 10, true)
    assert.is_true(h.log_has(run, "warn  --insecure: TLS certificates are not verified", true))
  end)
end)
