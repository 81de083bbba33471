-- Which channels and bridges an ARI event concerns: the keys by which it is
-- routed to the calls that own them. Playbacks and recordings travel by
-- their target_uri ("channel:ID" or "bridge:ID"), Dial events by peer and
-- caller.

local router = {}

local function add(list, id)
  if type(id) == "string" and id ~= "" then
    list[#list + 1] = id
  end
end

local function add_target(channels, bridges, uri)
  if type(uri) ~= "string" then
    return
  end
  local kind, id = uri:match("^(%a+):(.+)$")
  if kind == "channel" then
    add(channels, id)
  elseif kind == "bridge" then
    add(bridges, id)
  end
end

-- The id of a channel or bridge object in an event, if it has a usable one.
function router.id_of(v)
  local id = type(v) == "table" and v.id
  return type(id) == "string" and id ~= "" and id or nil
end
local id_of = router.id_of

local function clear(list)
  for i = #list, 1, -1 do
    list[i] = nil
  end
  return list
end

-- Returns two arrays: channel ids and bridge ids (possibly empty). The
-- dispatcher passes two arrays of its own to fill, since it routes every
-- event: new ones for each would be garbage at every event.
function router.keys(ev, channels, bridges)
  channels = channels and clear(channels) or {}
  bridges = bridges and clear(bridges) or {}
  add(channels, id_of(ev.channel))
  add(channels, id_of(ev.peer))
  add(channels, id_of(ev.caller))
  add(channels, id_of(ev.forwarded))
  add(channels, id_of(ev.replace_channel))
  add(bridges, id_of(ev.bridge))
  local playback = ev.playback
  if type(playback) == "table" then
    add_target(channels, bridges, playback.target_uri)
  end
  local recording = ev.recording
  if type(recording) == "table" then
    add_target(channels, bridges, recording.target_uri)
  end
  return channels, bridges
end

return router
