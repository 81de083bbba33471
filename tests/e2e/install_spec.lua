-- `make install PREFIX=...` gives a luari that works from the prefix
-- exactly as from the build tree: the binary (Lua built in), the Lua
-- library for busted specs, the man page, examples, config, systemd unit.

local h = require "e2e.helper"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("*a")
  p:close()
  return out, tonumber(out:match("exit=(%d+)%s*$"))
end

describe("make install", function()
  local prefix
  setup(function()
    prefix = h.tmpdir() .. "/prefix"
    local build = os.getenv("BUILD") or "build"
    local out, status = sh("make -s install PREFIX=" .. prefix .. " BUILD=" .. build)
    assert.are.equal(0, status, out)
  end)
  after_each(h.stop_all)

  it("installs the binary, the Lua library, the man page, examples, a config and a unit", function()
    for _, f in ipairs({ "bin/luari", "share/lua/5.1/luari/sim.lua", "share/lua/5.1/luari/call.lua",
      "share/man/man1/luari.1", "share/luari/examples/hello.lua", "share/luari/examples/menu.lua",
      "etc/luari/luari.conf.lua", "lib/systemd/system/luari.service" }) do
      assert.is_true(io.open(prefix .. "/" .. f) ~= nil, f)
    end
    assert.truthy(h.read(prefix .. "/share/man/man1/luari.1"):find("^%.TH LUARI 1"))
    local unit = h.read(prefix .. "/lib/systemd/system/luari.service")
    assert.truthy(unit:find("ExecStart=" .. prefix .. "/bin/luari run --config " .. prefix
      .. "/etc/luari/luari.conf.lua", 1, true), unit)
    assert.truthy(unit:find("EnvironmentFile=", 1, true))
    local out = sh("stat -c %a " .. prefix .. "/etc/luari/luari.conf.lua")
    assert.truthy(out:find("^600"), out)
  end)

  it("runs an example flow from the prefix", function()
    local out, status = sh(prefix .. "/bin/luari sim " .. prefix .. "/share/luari/examples/hello.lua")
    assert.are.equal(0, status, out)
    assert.truthy(out:find("play sound:hello-world", 1, true), out)
  end)

  it("serves and runs calls from the prefix", function()
    local saved = h.bin
    h.bin = prefix .. "/bin/luari"
    local sim = h.start_sim()
    local run = h.start_run(prefix .. "/share/luari/examples/hello.lua", { url = sim.url })
    h.bin = saved
    h.wait_log(run, "connected to Asterisk", 10, true)
    h.call(sim, {})
    h.wait_log(run, "event PlaybackFinished", 10, true)
  end)

  it("lets busted specs use luari.sim from the prefix", function()
    local spec = h.tmpdir() .. "/installed_spec.lua"
    local f = io.open(spec, "w")
    f:write(string.format([[
      local sim = require "luari.sim"
      describe("installed", function()
        it("plays hello", function()
          local call = sim.call(%q)
          call:expect_play("sound:hello-world")
          assert.is_true(call:finish())
        end)
      end)
    ]], prefix .. "/share/luari/examples/hello.lua"))
    f:close()
    local out, status = sh("cd " .. h.tmpdir() .. " && LUA_PATH='" .. prefix
      .. "/share/lua/5.1/?.lua;" .. prefix .. "/share/lua/5.1/?/init.lua;;' busted --lua=luajit "
      .. spec)
    assert.are.equal(0, status, out)
    assert.truthy(out:find("1 success", 1, true), out)
  end)
end)
