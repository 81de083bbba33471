-- Command line options: forms, environment, config file, precedence.

local options = require "luari.cli.options"
local config = require "luari.config"

local SPEC = {
  { name = "url", env = "ARI_URL", default = "http://127.0.0.1:8088/ari" },
  { name = "user", env = "ARI_USER" },
  { name = "password", env = "ARI_PASSWORD" },
  { name = "app", env = "ARI_APP", multi = true, default = { "luari" } },
  { name = "timeout", type = "number", default = 10 },
  { name = "log-level", values = { "debug", "info" }, default = "info" },
  { name = "insecure", flag = true },
}

local function env_of(t)
  return function(k) return t[k] end
end

describe("luari.cli.options", function()
  it("reads --name value, --name=value, flags and positional arguments", function()
    local opts, pos, src = options.parse(SPEC, { "--url", "http://a/ari", "--timeout=2.5", "--insecure", "flows" },
      env_of({}))
    assert.are.equal("http://a/ari", opts.url)
    assert.are.equal(2.5, opts.timeout)
    assert.is_true(opts.insecure)
    assert.are.same({ "flows" }, pos)
    assert.are.equal("cli", src.url)
    assert.are.equal("default", src.log_level)
  end)

  it("takes repeated and comma separated lists", function()
    local opts = options.parse(SPEC, { "--app", "a", "--app", "b,c" }, env_of({}))
    assert.are.same({ "a", "b", "c" }, opts.app)
    opts = options.parse(SPEC, {}, env_of({ ARI_APP = "x,y" }))
    assert.are.same({ "x", "y" }, opts.app)
  end)

  it("puts the command line before the environment, the environment before the config, the config before defaults",
    function()
      local cfg = { url = "http://cfg/ari", user = "cfguser", password = "cfgpass", timeout = 3 }
      local opts, _, src = options.parse(SPEC, { "--user", "cliuser" },
        env_of({ ARI_PASSWORD = "envpass", ARI_URL = "http://env/ari" }), cfg)
      assert.are.equal("cliuser", opts.user)
      assert.are.equal("cli", src.user)
      assert.are.equal("envpass", opts.password)
      assert.are.equal("env", src.password)
      assert.are.equal("http://env/ari", opts.url)
      assert.are.equal(3, opts.timeout)
      assert.are.equal("config", src.timeout)
      assert.are.equal("info", opts.log_level)
      assert.are.equal("default", src.log_level)
    end)

  it("refuses bad values wherever they come from", function()
    local opts, err = options.parse(SPEC, { "--timeout", "soon" }, env_of({}))
    assert.is_nil(opts)
    assert.truthy(err:find("--timeout expects a number", 1, true))
    opts, err = options.parse(SPEC, {}, env_of({ ARI_URL = "" }), { timeout = "x" })
    assert.is_nil(opts)
    assert.truthy(err:find("config", 1, true), err)
    opts, err = options.parse(SPEC, { "--log-level", "loud" }, env_of({}))
    assert.truthy(err:find("must be one of debug, info", 1, true))
    opts, err = options.parse(SPEC, {}, env_of({}), { tiemout = 3 })
    assert.truthy(err:find("unknown setting 'tiemout'", 1, true), err)
    opts, err = options.parse(SPEC, { "--nope" }, env_of({}))
    assert.truthy(err:find("unknown option --nope", 1, true))
  end)

  it("refuses numbers that are not finite or out of range, and a list with no name", function()
    local spec = {
      { name = "grace", type = "number", min = 0 },
      { name = "budget", type = "number", positive = true },
      { name = "app", env = "ARI_APP", multi = true, default = { "luari" } },
    }
    local function err_of(args, env, conf)
      local opts, err = options.parse(spec, args, env_of(env or {}), conf)
      assert.is_nil(opts)
      return err
    end
    assert.matches("--grace must be at least 0 (got '-5')", err_of({ "--grace", "-5" }), 1, true)
    assert.matches("--grace expects a finite number (got 'nan')", err_of({ "--grace", "nan" }), 1, true)
    assert.matches("--grace expects a finite number (got 'inf')", err_of({ "--grace", "inf" }), 1, true)
    assert.matches("--budget must be more than 0 (got '0')", err_of({ "--budget", "0" }), 1, true)
    assert.matches("--budget must be more than 0", err_of({}, {}, { budget = -1 }), 1, true)
    assert.matches("--app needs a name (got '')", err_of({ "--app", "" }), 1, true)
    assert.matches("--app needs a name (got ',')", err_of({}, { ARI_APP = "," }), 1, true)
    local opts = options.parse(spec, { "--grace", "0", "--budget", "0.5", "--app", "a,,b" }, env_of({}))
    assert.are.same({ 0, 0.5, { "a", "b" } }, { opts.grace, opts.budget, opts.app })
  end)

  it("describes the settings with the password masked", function()
    local opts, _, src = options.parse(SPEC, { "--password", "s3cret" }, env_of({}))
    local text = config.describe(opts, SPEC, src)
    assert.is_nil(text:find("s3cret", 1, true))
    assert.truthy(text:find('password = "********", -- cli', 1, true), text)
    assert.truthy(text:find('app = { "luari" }, -- default', 1, true), text)
    local f = assert(loadstring(text))
    assert.are.equal("http://127.0.0.1:8088/ari", f().url)
  end)
end)

describe("luari.config", function()
  it("loads a file returning a table, or assigning settings", function()
    local path = os.tmpname()
    local f = io.open(path, "w")
    f:write('return { url = "http://x/ari", app = { "a", "b" } }')
    f:close()
    local t = assert(config.load(path))
    assert.are.equal("http://x/ari", t.url)
    f = io.open(path, "w")
    f:write('url = "http://y/ari"\nuser = "u"')
    f:close()
    t = assert(config.load(path))
    assert.are.equal("http://y/ari", t.url)
    f = io.open(path, "w")
    f:write('return {')
    f:close()
    local _, err = config.load(path)
    assert.truthy(err:find("config file", 1, true), err)
    os.remove(path)
    _, err = config.load(path)
    assert.truthy(err:find("cannot read config file", 1, true))
  end)
end)

describe("luari.cli.options.host_port", function()
  it("reads HOST:PORT and [IPv6]:PORT, refuses the rest", function()
    assert.are.same({ "127.0.0.1", 8088 }, { options.host_port("127.0.0.1:8088") })
    assert.are.same({ "::1", 9464 }, { options.host_port("[::1]:9464") })
    assert.is_nil(options.host_port("nonsense"))
    assert.is_nil(options.host_port(":80"))
    assert.is_nil(options.host_port("h:70000"))
  end)
end)

describe("luari.config and passwords in URLs", function()
  it("masks user info in the URL it prints", function()
    local opts, _, src = options.parse(SPEC, { "--url", "http://bob:s3cret@pbx:8088/ari" }, env_of({}))
    local text = config.describe(opts, SPEC, src)
    assert.is_nil(text:find("s3cret", 1, true), text)
    assert.truthy(text:find('url = "http://********@pbx:8088/ari"', 1, true), text)
    assert.is_true(config.url_has_password("https://u:p@h/ari"))
    assert.is_false(config.url_has_password("https://h/ari"))
    assert.is_false(config.url_has_password("https://u@h/ari"))
  end)
end)
