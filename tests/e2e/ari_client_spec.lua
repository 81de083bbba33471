-- End to end: npm's ari-client (the Node.js ARI client Asterisk's project
-- publishes) against `luari sim-server`. ari-client is swagger-driven: it
-- builds its whole API from /ari/api-docs and types every event with the
-- models of events.json, so this checks the simulator's api-docs as much
-- as its REST and WebSocket.

local h = require "e2e.helper"
local json = require "cjson"

local function index_of(list, pred, from)
  for i = from or 1, #list do
    if pred(list[i]) then
      return i
    end
  end
end

local function query_of(entry)
  local q = {}
  for _, pair in ipairs(entry.args or {}) do
    q[pair[1]] = pair[2]
  end
  return q
end

describe("ari-client against luari sim-server", function()
  after_each(h.stop_all)

  it("connects, originates, answers, plays and hangs up", function()
    local sim = h.start_sim({ args = { "--speed", "10" } })
    local r, output = h.node("ari_client_call.js", { sim.base, h.user, h.password, "node-app",
      "Local/1000@wait", "sound:hello-world" })
    assert.is_nil(r.error, output)
    assert.are.same({ "connected", "started", "originated", "stasis-start", "answered", "playing",
      "played", "hung-up", "stasis-end" }, r.steps)

    -- the API ari-client built from the simulator's api-docs
    assert.are.same({ "applications", "asterisk", "bridges", "channels", "deviceStates", "endpoints",
      "events", "mailboxes", "playbacks", "recordings", "sounds" }, r.resources)
    for _, op in ipairs({ "originate", "answer", "play", "hangup", "continueInDialplan", "snoopChannel" }) do
      assert.is_truthy(index_of(r.channel_operations, function(x) return x == op end), op)
    end
    local events_doc = json.decode(h.read(h.samples_dir() .. "/api-docs/events.json"))
    local captured_models = 0
    for _ in pairs(events_doc.models) do
      captured_models = captured_models + 1
    end
    assert.are.equal(captured_models, r.event_models)

    -- an empty list is a JSON array, so ari-client's .length works
    assert.are.equal(0, r.channels_before)
    -- the id ari-client generated for client.Channel() went out as channelId
    assert.are.equal(r.originated.generated_id, r.originated.id)
    assert.are.equal("Down", r.originated.state)
    assert.are.same({ "one", "two" }, r.stasis_start.args)
    assert.are.equal("Up", r.stasis_start.state)
    -- the event's channel became a Channel object with operations
    assert.are.equal("function", r.stasis_start.has_answer)
    assert.are.equal(r.playback.generated_id, r.playback.id)
    assert.are.equal("queued", r.playback.state)
    assert.are.equal("sound:hello-world", r.playback.media_uri)
    assert.are.equal("done", r.playback_finished)
    assert.are.equal("22.10.1", r.asterisk_version)
    assert.are.equal('{"message":"Channel not found"}', r.after_hangup)

    -- events in Asterisk's order, each typed by its model
    local ev = r.events
    local id = r.originated.id
    local function at(t, from)
      return index_of(ev, function(e) return e.type == t and (e.channel == nil or e.channel == id) end, from)
    end
    local start = at("StasisStart")
    assert.is_truthy(start)
    assert.is_truthy(at("Dial") < start)
    local pstart = at("PlaybackStarted", start)
    local pdone = at("PlaybackFinished", start)
    local stasis_end = at("StasisEnd", start)
    local destroyed = at("ChannelDestroyed", start)
    assert.is_truthy(pstart and pdone and stasis_end and destroyed, json.encode(ev))
    assert.is_true(pstart < pdone and pdone < stasis_end and stasis_end < destroyed)
    assert.are.equal("Channel", ev[start].instance)
    assert.are.equal("Playback", ev[pdone].instance)

    -- what the simulator received, in order
    local journal = h.journal(sim)
    local function find(method, path, from)
      return index_of(journal, function(e)
        return e.method == method and e.path == path
      end, from)
    end
    assert.is_truthy(find("GET", "/ari/api-docs/resources.json"))
    assert.is_truthy(find("GET", "/ari/api-docs/events.json"))
    local socket = find("GET", "/ari/events")
    assert.is_truthy(socket)
    -- the journal keeps the parameter, not the credentials in it
    assert.are.same({ app = "node-app", api_key = "(hidden)" }, query_of(journal[socket]))
    local orig = find("POST", "/ari/channels")
    assert.is_truthy(orig)
    assert.are.same({ endpoint = "Local/1000@wait", app = "node-app", appArgs = "one,two", channelId = id },
      query_of(journal[orig]))
    local answer = find("POST", "/ari/channels/" .. id .. "/answer", orig)
    local play = find("POST", "/ari/channels/" .. id .. "/play", answer)
    local hangup = find("DELETE", "/ari/channels/" .. id, play)
    assert.is_truthy(answer and play and hangup)
    assert.are.equal("sound:hello-world", query_of(journal[play]).media)
    assert.are.equal(r.playback.id, query_of(journal[play]).playbackId)
  end)

  it("fails loudly when the server refuses the credentials", function()
    local sim = h.start_sim()
    local r = h.node("ari_client_call.js", { sim.base, h.user, "wrong-password" })
    assert.is_truthy(r.error)
    assert.are.same({}, r.steps)
  end)
end)
