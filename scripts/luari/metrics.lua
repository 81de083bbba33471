-- Metrics in the Prometheus text format: counters, gauges and histograms
-- with labels, kept in plain tables and rendered on demand (GET /metrics).

local metrics = {}

local Registry = {}
Registry.__index = Registry

function metrics.new()
  return setmetatable({ families = {}, order = {} }, Registry)
end

local function family(reg, name, kind, help, buckets)
  local f = reg.families[name]
  if not f then
    f = { name = name, kind = kind, help = help, series = {}, keys = {}, buckets = buckets, by_value = {} }
    reg.families[name] = f
    reg.order[#reg.order + 1] = name
  end
  return f
end

local function escape(v)
  return (tostring(v):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

-- Labels as written in the exposition, in a stable order: {a="1",b="2"}
local function label_text(labels)
  if not labels then
    return ""
  end
  local keys = {}
  for k in pairs(labels) do
    keys[#keys + 1] = k
  end
  if #keys == 0 then
    return ""
  end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = k .. '="' .. escape(labels[k]) .. '"'
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Series already seen, by label values: labels with one or two names are
-- found without building their text (luari counts every event and every
-- request), in f.by_value[name][value] or f.by_value[name1][name2][v1][v2]
-- with the names in sorted order.
local CACHEABLE = { string = true, number = true, boolean = true }

local function cacheable(k, v)
  return type(k) == "string" and CACHEABLE[type(v)] and v == v
end

local function cached(f, labels)
  local k1, v1 = next(labels)
  if k1 == nil or not cacheable(k1, v1) then
    return nil
  end
  local k2, v2 = next(labels, k1)
  local t = f.by_value
  if k2 == nil then
    t = t[k1]
    return t and t[v1], 1, k1, v1
  end
  if not cacheable(k2, v2) or next(labels, k2) ~= nil then
    return nil
  end
  if k2 < k1 then
    k1, k2, v1, v2 = k2, k1, v2, v1
  end
  t = t[k1]
  t = t and t[k2]
  t = t and t[v1]
  return t and t[v2], 2, k1, v1, k2, v2
end

local function remember(f, s, n, k1, v1, k2, v2)
  local function sub(t, k)
    local c = t[k]
    if not c then
      c = {}
      t[k] = c
    end
    return c
  end
  if n == 1 then
    sub(f.by_value, k1)[v1] = s
  elseif n == 2 then
    sub(sub(sub(f.by_value, k1), k2), v1)[v2] = s
  end
end

local function series(f, labels)
  local s, n, k1, v1, k2, v2
  if labels then
    s, n, k1, v1, k2, v2 = cached(f, labels)
    if s then
      return s
    end
  end
  local key = label_text(labels)
  s = f.series[key]
  if not s then
    s = { labels = key, value = 0 }
    if f.buckets then
      s.counts, s.sum, s.count = {}, 0, 0
      for i = 1, #f.buckets do
        s.counts[i] = 0
      end
    end
    f.series[key] = s
    f.keys[#f.keys + 1] = key
  end
  remember(f, s, n, k1, v1, k2, v2)
  return s
end

function Registry:counter(name, help)
  family(self, name, "counter", help)
end

function Registry:gauge(name, help)
  family(self, name, "gauge", help)
end

function Registry:histogram(name, help, buckets)
  family(self, name, "histogram", help, buckets or { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5 })
end

function Registry:inc(name, labels, by)
  local s = series(self.families[name], labels)
  s.value = s.value + (by or 1)
end

function Registry:set(name, labels, value)
  series(self.families[name], labels).value = value
end

function Registry:observe(name, labels, value)
  local f = self.families[name]
  local s = series(f, labels)
  for i, le in ipairs(f.buckets) do
    if value <= le then
      s.counts[i] = s.counts[i] + 1
    end
  end
  s.sum = s.sum + value
  s.count = s.count + 1
end

function Registry:get(name, labels)
  local f = self.families[name]
  local s = f and f.series[label_text(labels)]
  return s and (s.count or s.value) or 0
end

local function with_le(labels, le)
  local inner = labels:match("^{(.*)}$")
  local le_text = 'le="' .. le .. '"'
  return "{" .. (inner and (inner .. ",") or "") .. le_text .. "}"
end

local function number(v)
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return string.format("%d", v)
  end
  return string.format("%.9g", v)
end

function Registry:render()
  local out = {}
  for _, name in ipairs(self.order) do
    local f = self.families[name]
    out[#out + 1] = "# HELP " .. name .. " " .. (f.help or name)
    out[#out + 1] = "# TYPE " .. name .. " " .. f.kind
    for _, key in ipairs(f.keys) do
      local s = f.series[key]
      if f.kind == "histogram" then
        for i, le in ipairs(f.buckets) do
          out[#out + 1] = name .. "_bucket" .. with_le(key, number(le)) .. " " .. number(s.counts[i])
        end
        out[#out + 1] = name .. "_bucket" .. with_le(key, "+Inf") .. " " .. number(s.count)
        out[#out + 1] = name .. "_sum" .. key .. " " .. number(s.sum)
        out[#out + 1] = name .. "_count" .. key .. " " .. number(s.count)
      else
        out[#out + 1] = name .. key .. " " .. number(s.value)
      end
    end
  end
  return table.concat(out, "\n") .. "\n"
end

-- The metrics luari keeps about itself.
function metrics.luari()
  local reg = metrics.new()
  reg:gauge("luari_calls_active", "Calls whose flow is running, by flow")
  reg:counter("luari_calls_total", "Calls started, by flow")
  reg:counter("luari_flow_errors_total", "Flows that ended with a Lua error, by flow")
  reg:counter("luari_ari_requests_total", "ARI REST requests, by operation and status")
  reg:histogram("luari_ari_request_seconds", "ARI REST request latency, by operation")
  reg:counter("luari_events_total", "ARI events received, by type")
  reg:counter("luari_events_unrouted_total", "ARI events no call owned")
  reg:counter("luari_ws_reconnects_total", "Times the events WebSocket was opened again after the first")
  reg:gauge("luari_ari_connected", "1 while the events WebSocket is open")
  reg:gauge("luari_lua_memory_bytes", "Lua heap in use")
  reg:gauge("luari_flow_generation", "The flow generation new calls start on")
  return reg
end

return metrics
