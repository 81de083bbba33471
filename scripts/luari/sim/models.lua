-- The ARI data models (Asterisk 22), by resource, for the simulator's
-- /ari/api-docs. Swagger-driven clients need them: node's ari-client looks
-- up the model named by every event's `type` in events.json (and throws on
-- an event it has no model for), then turns each property whose type is a
-- known resource (Channel, Bridge, Playback, LiveRecording, Endpoint, ...)
-- into an object with that resource's operations.
--
-- One entry per model: { name, description, properties... } where a
-- property is "name type", "name type!" (required) or
-- "name type! A|B|C" (allowed values). `base` names the model it extends
-- (Swagger 1.2 lists the sub-types in the base's `subTypes`).
--
-- models.document(resource) gives the Swagger "models" object.

local models = {}

-- Channel states and the like, shared by several properties.
local CHANNEL_STATES = "Down|Rsrved|OffHook|Dialing|Ring|Ringing|Up|Busy|Dialing Offhook|Pre-ring|Unknown"
local DEVICE_STATES = "UNKNOWN|NOT_INUSE|INUSE|BUSY|INVALID|UNAVAILABLE|RINGING|RINGINUSE|ONHOLD"

models.by_resource = {
  applications = {
    { "Application", "Details of a Stasis application",
      "name string!", "channel_ids List[string]!", "bridge_ids List[string]!",
      "endpoint_ids List[string]!", "device_names List[string]!",
      "events_allowed List[object]!", "events_disallowed List[object]!" },
  },

  asterisk = {
    { "BuildInfo", "Info about how Asterisk was built",
      "os string!", "kernel string!", "options string!", "machine string!", "date string!", "user string!" },
    { "SystemInfo", "Info about Asterisk",
      "version string!", "entity_id string!" },
    { "SetId", "Effective user/group id",
      "user string!", "group string!" },
    { "ConfigInfo", "Info about Asterisk configuration",
      "name string!", "default_language string!", "max_channels int", "max_open_files int",
      "max_load double", "setid SetId!" },
    { "StatusInfo", "Info about Asterisk status",
      "startup_time Date!", "last_reload_time Date!" },
    { "AsteriskInfo", "Asterisk system information",
      "build BuildInfo", "system SystemInfo", "config ConfigInfo", "status StatusInfo" },
    { "AsteriskPing", "Asterisk ping information",
      "asterisk_id string!", "ping string!", "timestamp string!" },
    { "Module", "Details of an Asterisk module",
      "name string!", "description string!", "use_count int!", "status string!", "support_level string!" },
    { "LogChannel", "Details of an Asterisk log channel",
      "channel string!", "type string!", "status string!", "configuration string!" },
    { "Variable", "The value of a channel variable",
      "value string!" },
    { "Variables", "The values of several channel variables",
      "variables object!" },
    { "ConfigTuple", "A key/value pair that makes up part of a configuration object.",
      "attribute string!", "value string!" },
  },

  bridges = {
    { "Bridge", "The merging of media from one or more channels.",
      "id string!", "technology string!", "bridge_type string! mixing|holding",
      "bridge_class string!", "creator string!", "name string!", "channels List[string]!",
      "video_mode string", "video_source_id string", "creationtime Date!", "bridgevars object" },
  },

  channels = {
    { "Dialed", "Dialed channel information." },
    { "DialplanCEP", "Dialplan location (context/extension/priority)",
      "context string!", "exten string!", "priority long!", "app_name string!", "app_data string!" },
    { "CallerID", "Caller identification",
      "name string!", "number string!" },
    { "RTPstat", "A statistics of a RTP.",
      "txcount int!", "rxcount int!", "txjitter double", "rxjitter double",
      "remote_maxjitter double", "remote_minjitter double", "remote_normdevjitter double",
      "remote_stdevjitter double", "local_maxjitter double", "local_minjitter double",
      "local_normdevjitter double", "local_stdevjitter double", "txploss int!", "rxploss int!",
      "remote_maxrxploss double", "remote_minrxploss double", "remote_normdevrxploss double",
      "remote_stdevrxploss double", "local_maxrxploss double", "local_minrxploss double",
      "local_normdevrxploss double", "local_stdevrxploss double", "rtt double", "maxrtt double",
      "minrtt double", "normdevrtt double", "stdevrtt double", "local_ssrc int!", "remote_ssrc int!",
      "txoctetcount int!", "rxoctetcount int!", "channel_uniqueid string!" },
    { "Channel", "A specific communication connection between Asterisk and an Endpoint.",
      "id string!", "protocol_id string!", "name string!", "state string! " .. CHANNEL_STATES,
      "caller CallerID!", "connected CallerID!", "accountcode string!", "dialplan DialplanCEP!",
      "creationtime Date!", "language string!", "channelvars object", "caller_rdnis string",
      "tenantid string" },
  },

  deviceStates = {
    { "DeviceState", "Represents the state of a device.",
      "name string!", "state string! " .. DEVICE_STATES },
  },

  endpoints = {
    { "Endpoint", "An external device that may offer/accept calls to/from Asterisk.",
      "technology string!", "resource string!", "state string unknown|offline|online",
      "channel_ids List[string]!" },
    { "TextMessage", "A text message.",
      "from string!", "to string!", "body string!", "variables object" },
  },

  mailboxes = {
    { "Mailbox", "Represents the state of a mailbox.",
      "name string!", "old_messages int!", "new_messages int!" },
  },

  playbacks = {
    { "Playback", "Object representing the playback of media to a channel",
      "id string!", "media_uri string!", "next_media_uri string", "target_uri string!",
      "language string", "state string! queued|playing|continuing|done|failed" },
  },

  recordings = {
    { "StoredRecording", "A past recording that may be played back.",
      "name string!", "format string!" },
    { "LiveRecording", "A recording that is in progress",
      "name string!", "format string!", "target_uri string!",
      "state string! queued|recording|paused|done|failed|canceled",
      "duration int", "talking_duration int", "silence_duration int", "cause string" },
  },

  sounds = {
    { "FormatLangPair", "Identifies the format and language of a sound file",
      "language string!", "format string!" },
    { "Sound", "A media file that may be played back.",
      "id string!", "text string", "formats List[FormatLangPair]!" },
  },

  events = {
    { "Message", "Base type for errors and events", discriminator = "type",
      "type string!", "asterisk_id string" },
    { "MissingParams", "Error event sent when required params are missing.", base = "Message",
      "params List[string]!" },
    { "Event", "Base type for asynchronous events from Asterisk.", base = "Message",
      "application string!", "timestamp Date!" },
    { "ContactInfo", "Detailed information about a contact on an endpoint.",
      "uri string!", "contact_status string! Unreachable|Reachable|Unknown|NonQualified|Removed",
      "aor string!", "roundtrip_usec string" },
    { "Peer", "Detailed information about a remote peer that communicates with Asterisk.",
      "peer_status string!", "cause string", "address string", "port string", "time string" },
    { "DeviceStateChanged", "Notification that a device state has changed.", base = "Event",
      "device_state DeviceState!" },
    { "PlaybackStarted", "Event showing the start of a media playback operation.", base = "Event",
      "playback Playback!" },
    { "PlaybackContinuing", "Event showing the continuation of a media playback operation from one media URI to the next in the list.",
      base = "Event", "playback Playback!" },
    { "PlaybackFinished", "Event showing the completion of a media playback operation.", base = "Event",
      "playback Playback!" },
    { "RecordingStarted", "Event showing the start of a recording operation.", base = "Event",
      "recording LiveRecording!" },
    { "RecordingFinished", "Event showing the completion of a recording operation.", base = "Event",
      "recording LiveRecording!" },
    { "RecordingFailed", "Event showing failure of a recording operation.", base = "Event",
      "recording LiveRecording!" },
    { "ApplicationMoveFailed", "Notification that trying to move a channel to another Stasis application failed.",
      base = "Event", "channel Channel!", "destination string!", "args List[string]!" },
    { "ApplicationRegistered", "Notification that a Stasis app has been registered.", base = "Event" },
    { "ApplicationUnregistered", "Notification that a Stasis app has been unregistered.", base = "Event" },
    { "ApplicationReplaced", "Notification that another WebSocket has taken over for an application.",
      base = "Event" },
    { "BridgeCreated", "Notification that a bridge has been created.", base = "Event",
      "bridge Bridge!" },
    { "BridgeDestroyed", "Notification that a bridge has been destroyed.", base = "Event",
      "bridge Bridge!" },
    { "BridgeMerged", "Notification that one bridge has merged into another.", base = "Event",
      "bridge Bridge!", "bridge_from Bridge!" },
    { "BridgeVideoSourceChanged", "Notification that the source of video in a bridge has changed.",
      base = "Event", "bridge Bridge!", "old_video_source_id string" },
    { "BridgeBlindTransfer", "Notification that a blind transfer has occurred.", base = "Event",
      "channel Channel!", "replace_channel Channel", "transferee Channel", "exten string!",
      "context string!", "result string!", "is_external boolean!", "bridge Bridge" },
    { "BridgeAttendedTransfer", "Notification that an attended transfer has occurred.", base = "Event",
      "transferer_first_leg Channel!", "transferer_second_leg Channel!", "replace_channel Channel",
      "transferee Channel", "transfer_target Channel", "result string!", "is_external boolean!",
      "transferer_first_leg_bridge Bridge", "transferer_second_leg_bridge Bridge",
      "destination_type string!", "destination_bridge string", "destination_application string",
      "destination_link_first_leg Channel", "destination_link_second_leg Channel",
      "destination_threeway_channel Channel", "destination_threeway_bridge Bridge" },
    { "ChannelCreated", "Notification that a channel has been created.", base = "Event",
      "channel Channel!" },
    { "ChannelDestroyed", "Notification that a channel has been destroyed.", base = "Event",
      "cause int!", "tech_cause int", "cause_txt string!", "channel Channel!" },
    { "ChannelEnteredBridge", "Notification that a channel has entered a bridge.", base = "Event",
      "bridge Bridge!", "channel Channel" },
    { "ChannelLeftBridge", "Notification that a channel has left a bridge.", base = "Event",
      "bridge Bridge!", "channel Channel!" },
    { "ChannelStateChange", "Notification of a channel's state change.", base = "Event",
      "channel Channel!" },
    { "ChannelDtmfReceived", "DTMF received on a channel.", base = "Event",
      "digit string!", "duration_ms int!", "channel Channel!" },
    { "ChannelDialplan", "Channel changed location in the dialplan.", base = "Event",
      "channel Channel!", "dialplan_app string!", "dialplan_app_data string!" },
    { "ChannelCallerId", "Channel changed Caller ID.", base = "Event",
      "caller_presentation int!", "caller_presentation_txt string!", "channel Channel!" },
    { "ChannelUserevent", "User-generated event with additional user-defined fields in the object.",
      base = "Event", "eventname string!", "channel Channel", "bridge Bridge", "endpoint Endpoint",
      "userevent object!" },
    { "ChannelHangupRequest", "A hangup was requested on the channel.", base = "Event",
      "cause int", "tech_cause int", "soft boolean", "channel Channel!" },
    { "ChannelVarset", "Channel variable changed.", base = "Event",
      "variable string!", "value string!", "channel Channel" },
    { "ChannelToneDetected", "Tone was detected on the channel.", base = "Event",
      "channel Channel!" },
    { "ChannelTalkingStarted", "Talking was detected on the channel.", base = "Event",
      "channel Channel!" },
    { "ChannelTalkingFinished", "Talking is no longer detected on the channel.", base = "Event",
      "channel Channel!", "duration int!" },
    { "ChannelHold", "A channel initiated a media hold.", base = "Event",
      "channel Channel!", "musicclass string" },
    { "ChannelUnhold", "A channel initiated a media unhold.", base = "Event",
      "channel Channel!" },
    { "ContactStatusChange", "The state of a contact on an endpoint has changed.", base = "Event",
      "endpoint Endpoint!", "contact_info ContactInfo!" },
    { "EndpointStateChange", "Endpoint state changed.", base = "Event",
      "endpoint Endpoint!" },
    { "Dial", "Dialing state has changed.", base = "Event",
      "caller Channel", "peer Channel!", "forward string", "forwarded Channel", "dialstring string",
      "dialstatus string!" },
    { "StasisEnd", "Notification that a channel has left a Stasis application.", base = "Event",
      "channel Channel!" },
    { "StasisStart", "Notification that a channel has entered a Stasis application.", base = "Event",
      "args List[string]!", "channel Channel!", "replace_channel Channel" },
    { "TextMessageReceived", "A text message was received from an endpoint.", base = "Event",
      "message TextMessage!", "endpoint Endpoint" },
    { "ChannelConnectedLine", "Channel changed Connected Line.", base = "Event",
      "channel Channel!" },
    { "PeerStatusChange", "The state of a peer associated with an endpoint has changed.", base = "Event",
      "endpoint Endpoint!", "peer Peer!" },
    { "ChannelTransfer", "Transfer on a channel.", base = "Event",
      "state string",
      "refer_to ReferTo!", "referred_by ReferredBy!" },
    { "ReferTo", "Transfer destination requested by transferee",
      "requested_destination RequiredDestination!", "destination_channel Channel",
      "connected_channel Channel", "bridge Bridge" },
    { "ReferredBy", "Transfer destination requested by transferee",
      "source_channel Channel!", "connected_channel Channel", "bridge Bridge" },
    { "RequiredDestination", "Information about the requested destination",
      "protocol_id string", "destination string", "additional_protocol_params List[AdditionalParam]" },
    { "AdditionalParam", "Protocol specific additional parameter",
      "parameter_name string!", "parameter_value string!" },
    { "RESTHeader", "REST over Websocket header",
      "name string!", "value string!" },
    { "RESTQueryStringParameter", "REST over Websocket Query String Parameter",
      "name string!", "value string!" },
    { "RESTRequest", "REST over Websocket Request.",
      "type string!", "transaction_id string!", "request_id string!", "method string!", "uri string!",
      "content_type string", "message_body string", "query_strings List[RESTQueryStringParameter]" },
    { "RESTResponse", "REST over Websocket Response.", base = "Event",
      "transaction_id string!", "request_id string!", "status_code int!", "reason_phrase string!",
      "uri string!", "content_type string", "message_body string" },
    { "CallBroadcast", "Notification that a call is being broadcast to multiple applications.",
      base = "Event", "channel Channel!", "caller string", "called string" },
    { "CallClaimed", "Notification that a broadcast call has been claimed by an application.",
      base = "Event", "channel Channel!", "winner_app string!" },
  },
}

-- "name type! A|B" -> name, { type, required, allowableValues }
local function property(spec, model_name)
  local name, ptype, values = spec:match("^(%S+)%s+(%S+)%s*(.-)%s*$")
  if not name then
    error("luari.sim.models: bad property '" .. spec .. "' in " .. model_name)
  end
  local required = ptype:sub(-1) == "!"
  local p = { type = required and ptype:sub(1, -2) or ptype, required = required }
  if values ~= "" then
    local list = {}
    for v in values:gmatch("[^|]+") do
      list[#list + 1] = v
    end
    p.allowableValues = { valueType = "LIST", values = list }
  end
  return name, p
end

-- The Swagger "models" object of one resource ({} when it has none).
function models.document(resource)
  local out = {}
  local list = models.by_resource[resource] or {}
  for _, m in ipairs(list) do
    local props = {}
    for i = 3, #m do
      local name, p = property(m[i], m[1])
      props[name] = p
    end
    out[m[1]] = { id = m[1], description = m[2], properties = props, discriminator = m.discriminator }
  end
  for _, m in ipairs(list) do
    if m.base then
      local base = out[m.base]
      base.subTypes = base.subTypes or {}
      base.subTypes[#base.subTypes + 1] = m[1]
    end
  end
  return out
end

-- Every model name, for checks: { name = resource }.
function models.names()
  local out = {}
  for resource, list in pairs(models.by_resource) do
    for _, m in ipairs(list) do
      out[m[1]] = resource
    end
  end
  return out
end

return models
