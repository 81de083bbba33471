-- The config file: a Lua file that returns a table (or assigns globals),
-- with the same settings as the command line (`url`, `user`, `password`,
-- `app`, `log_level`, ...) plus `flows`. A file that holds a password must
-- be readable by its owner only.
--
--   -- /etc/luari/luari.conf.lua
--   return {
--     url = "https://pbx.example.com:8089/ari",
--     user = "luari",
--     password = "...",
--     app = { "luari" },
--     flows = "/etc/luari/flows",
--   }

local loop_ok, loop = pcall(require, "luari.loop")

local config = {}

-- Returns the settings table, or nil and a message naming the file.
function config.load(path)
  local chunk, err = loadfile(path)
  if not chunk then
    if not io.open(path) then
      return nil, "cannot read config file " .. path
    end
    return nil, "config file " .. err
  end
  local env = {}
  setfenv(chunk, env)
  local ok, ret = pcall(chunk)
  if not ok then
    return nil, "config file " .. path .. ": " .. tostring(ret)
  end
  local t = type(ret) == "table" and ret or env
  if (t.password ~= nil or config.url_has_password(t.url)) and loop_ok and loop.stat then
    local st = loop.stat(path)
    if st and st.mode % 64 ~= 0 then
      return nil, string.format("config file %s holds a password but others can read it (mode %o): chmod 600 %s",
        path, st.mode % 512, path)
    end
  end
  return t
end

-- Does a URL carry user:password@?
function config.url_has_password(url)
  return type(url) == "string" and url:match("^%a+://[^/@]*:[^/@]*@") ~= nil
end

-- The URL with any user info masked.
function config.mask_url(url)
  return (url:gsub("^(%a+://)[^/@]*@", "%1********@"))
end

-- The settings as a Lua table literal, the password masked.
function config.describe(opts, spec, source)
  local lines = { "return {" }
  for _, o in ipairs(spec) do
    local v = opts[o.key]
    if v ~= nil and o.key ~= "help" and o.key ~= "print_config" and o.key ~= "config" then
      local text
      if o.key == "url" and type(v) == "string" then
        text = string.format("%q", config.mask_url(v))
      elseif o.key == "password" then
        text = '"********"'
      elseif type(v) == "table" then
        local items = {}
        for i, item in ipairs(v) do
          items[i] = string.format("%q", item)
        end
        text = "{ " .. table.concat(items, ", ") .. " }"
      elseif type(v) == "string" then
        text = string.format("%q", v)
      else
        text = tostring(v)
      end
      lines[#lines + 1] = string.format("  %s = %s, -- %s", o.key, text, source and source[o.key] or "")
    end
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

return config
