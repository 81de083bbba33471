-- Routes a REST request to its ARI operation, the way res_ari walks its
-- handler tree: a literal path segment wins over a {parameter} and there is
-- no backtracking (GET /channels/create is 405, not a channel named
-- "create"). Unknown path: 404 "Resource not found"; known path, other
-- method: 405 "Invalid method".

local ops = require "luari.ari_ops"

local R = {}

local function new_node()
  return { literal = {}, methods = {}, has_ops = false }
end

local function build(list)
  local root = new_node()
  for _, op in ipairs(list) do
    local node = root
    for seg in op[4]:gmatch("[^/]+") do
      local pname = seg:match("^{(.+)}$")
      if pname then
        node.param = node.param or new_node()
        node.param_name = pname
        node = node.param
      else
        node.literal[seg] = node.literal[seg] or new_node()
        node = node.literal[seg]
      end
    end
    node.methods[op[3]] = op
    node.has_ops = true
  end
  return root
end

local tree

-- `path` is "/channels/c1/answer" or its segments, percent-decoded one by
-- one ({ "channels", "PJSIP/100", "answer" }): ARI splits the raw path at
-- "/" before it decodes, so a segment sent as PJSIP%2F100 is one segment.
-- Returns op, path_params; or nil, status, message.
function R.match(method, path)
  tree = tree or build(ops)
  local node, params = tree, {}
  local segments = path
  if type(path) == "string" then
    segments = {}
    for seg in path:gmatch("[^/]+") do
      segments[#segments + 1] = seg
    end
  end
  for _, seg in ipairs(segments) do
    local nxt = node.literal[seg]
    if not nxt and node.param then
      params[node.param_name] = seg
      nxt = node.param
    end
    if not nxt then
      return nil, 404, "Resource not found"
    end
    node = nxt
  end
  if not node.has_ops then
    return nil, 404, "Resource not found"
  end
  local op = node.methods[method]
  if not op then
    return nil, 405, "Invalid method"
  end
  return op, params
end

return R
