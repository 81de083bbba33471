-- Loading flows. FLOWS is a directory of NAME.lua files (or one file, the
-- default flow). All files are compiled together as one generation; each
-- generation has its own environment and its own cache of modules
-- required from FLOWS, so a call keeps the code it started with while a
-- newer generation takes new calls. Flow code runs with the JIT off: the
-- instruction budget that stops endless loops only sees interpreted code.

local flows = {}

local Generation = {}
Generation.__index = Generation

local function is_dir(path)
  local f = io.open(path .. "/.")
  if f then
    f:close()
    return true
  end
  return false
end

local function list_lua_files(dir)
  local names = {}
  local p = io.popen('ls -1 "' .. dir:gsub('"', '\\"') .. '" 2>/dev/null')
  if p then
    for name in p:lines() do
      if name:match("^[%w_%-%.]+%.lua$") then
        names[#names + 1] = name
      end
    end
    p:close()
  end
  table.sort(names)
  return names
end

-- A `require` that looks in FLOWS first (per generation), then the host's.
local function make_require(gen)
  local cache = gen.modules
  return function(name)
    if cache[name] ~= nil then
      return cache[name]
    end
    local file = gen.dir and (gen.dir .. "/" .. name:gsub("%.", "/") .. ".lua")
    local f = file and io.open(file)
    if not f then
      return require(name)
    end
    f:close()
    local chunk, err = loadfile(file)
    if not chunk then
      error(err, 2)
    end
    jit.off(chunk, true)
    setfenv(chunk, gen.env)
    local value = chunk(name)
    if value == nil then
      value = true
    end
    cache[name] = value
    return value
  end
end

local function new_generation(dir, number)
  local gen = setmetatable({ dir = dir, number = number, flows = {}, files = {}, modules = {} }, Generation)
  gen.env = setmetatable({}, { __index = _G })
  gen.env.require = make_require(gen)
  gen.env._G = gen.env
  return gen
end

-- Compiles one flow file into gen; returns true or nil, "file:line: message".
local function compile_flow(gen, name, file)
  local chunk, err = loadfile(file)
  if not chunk then
    return nil, err
  end
  jit.off(chunk, true)
  setfenv(chunk, gen.env)
  local ok, fn = pcall(chunk, name)
  if not ok then
    return nil, tostring(fn)
  end
  if type(fn) ~= "function" then
    return nil, string.format("%s: a flow file must return a function (it returned %s)", file, type(fn))
  end
  jit.off(fn, true)
  gen.flows[name] = fn
  gen.files[name] = file
  return true
end

-- Loads FLOWS (a directory or one file). Returns a generation, or nil and
-- a list of errors ("file:line: message").
function flows.load(path, number)
  local errors = {}
  local gen
  if is_dir(path) then
    gen = new_generation(path, number or 1)
    for _, file in ipairs(list_lua_files(path)) do
      local name = file:gsub("%.lua$", "")
      local ok, err = compile_flow(gen, name, path .. "/" .. file)
      if not ok then
        errors[#errors + 1] = err
      end
    end
    if next(gen.flows) == nil and #errors == 0 then
      errors[#errors + 1] = path .. ": no .lua flow files"
    end
  else
    local f = io.open(path)
    if not f then
      return nil, { path .. ": no such file or directory" }
    end
    f:close()
    local dir = path:match("^(.*)/[^/]*$") or "."
    gen = new_generation(dir, number or 1)
    local name = path:match("([^/]+)%.lua$") or path
    local ok, err = compile_flow(gen, name, path)
    if not ok then
      errors[#errors + 1] = err
    end
    gen.single = name
  end
  if #errors > 0 then
    return nil, errors
  end
  return gen
end

-- The flow function for a name; nil name: the default flow.
function Generation:get(name, default)
  if name == nil or name == "" then
    name = default or self.single
    if name == nil then
      return nil, nil
    end
  end
  return self.flows[name], name
end

function Generation:names()
  local names = {}
  for name in pairs(self.flows) do
    names[#names + 1] = name
  end
  table.sort(names)
  return names
end

flows.Generation = Generation
return flows
