-- `luari sim FLOW`: one simulated call through a flow on the virtual
-- clock, printed as a timed transcript (luari.sim.transcript) that ends
-- with a "result" line: how the flow ended and how the call did. Exit
-- status 0 when the flow ended without error.

local options = require "luari.cli.options"

local cmd = {}

cmd.SPEC = {
  { name = "caller", arg = "NUMBER", default = "+15550100", help = "caller id number" },
  { name = "caller-name", arg = "NAME", help = "caller id name" },
  { name = "args", arg = "A,B", help = "Stasis arguments after the flow name" },
  { name = "flow", arg = "NAME", help = "the flow to run when FLOW is a directory" },
  { name = "dtmf", arg = "D@S,...", help = "keys the caller presses, at seconds: 1@2.0,#@4.5" },
  { name = "hangup-at", type = "number", min = 0, arg = "SECONDS", help = "the caller hangs up at this time" },
  { name = "audio", values = { "speech", "silence", "tone", "none" }, default = "speech",
    help = "what the caller sends: speech, silence, tone or none" },
  { name = "max-time", type = "number", positive = true, default = 3600, help = "stop after this much virtual time" },
  { name = "sounds", arg = "FILE", help = "sound lengths, one 'name<TAB>seconds' per line" },
  { name = "sound-default", type = "number", min = 0, word = "missing", arg = "SECONDS|missing",
    help = "length of sounds not in the table, seconds (default 2); missing: they fail, as on Asterisk" },
  { name = "verbose", flag = true, help = "show every event (ChannelVarset, ...) and luari's playback checks" },
  { name = "help", short = "h", flag = true, help = "show this help" },
}

local function usage()
  return "usage: luari sim [options] FLOW\n\n" .. options.usage(cmd.SPEC) .. "\n"
end

-- FLOW is a directory and no --flow says which: its one flow, or an error
-- that lists them. (nil, nil: FLOW is a file.)
local function only_flow(path)
  local flows = require "luari.flows"
  local snap = flows.scan(path)
  if not snap or snap.single then
    return nil, nil
  end
  local names = flows.names(snap)
  if #names == 1 then
    return names[1]
  end
  if #names == 0 then
    return nil, path .. " holds no flow (no .lua file at its top)"
  end
  return nil, string.format("%s holds flows %s: name the one to run with --flow NAME", path,
    table.concat(names, ", "))
end

function cmd.main(args)
  local opts, positional = options.command("sim", usage(), cmd.SPEC, args)
  if not opts then
    return positional
  end
  if #positional ~= 1 then
    io.stderr:write("luari sim: give one flow file (or a directory and --flow NAME)\n\n", usage())
    return 2
  end
  if opts.dtmf then
    -- A bad --dtmf is a usage error, as any other bad option.
    local ok, err = require("luari.sim.dtmf").parse(opts.dtmf)
    if not ok then
      io.stderr:write("luari sim: ", tostring(err), "\n")
      return 2
    end
  end
  if not opts.flow then
    local flow, err = only_flow(positional[1])
    if err then
      io.stderr:write("luari sim: ", err, "\n")
      return 2
    end
    opts.flow = flow
  end
  local sim = require "luari.sim"
  local transcript = require "luari.sim.transcript"
  local sounds
  if opts.sounds then
    local err
    sounds, err = require("luari.sim.model").load_sounds_tsv(opts.sounds)
    if not sounds then
      io.stderr:write("luari sim: cannot read ", opts.sounds, ": ", tostring(err), "\n")
      return 1
    end
  end
  local list = {}
  for a in tostring(opts.args or ""):gmatch("[^,]+") do
    list[#list + 1] = a
  end
  local ok, call = pcall(sim.call, positional[1], {
    caller = opts.caller,
    caller_name = opts.caller_name,
    args = list,
    flow = opts.flow,
    dtmf = opts.dtmf,
    hangup_at = opts.hangup_at,
    audio = opts.audio,
    sounds = sounds,
    sound_default = opts.sound_default,
  })
  if not ok then
    -- luari.sim names the caller's line, which here is this file's.
    local message = tostring(call):gsub("^[^\n]-luari[/%.]cli[/%.]sim%.lua:%d+: ", "")
    io.stderr:write("luari sim: ", message, "\n")
    return 1
  end
  local render = transcript.renderer(opts.verbose)
  local function show(e)
    local line = render(e)
    if line then
      io.stdout:write(line, "\n")
    end
  end
  for _, e in ipairs(call.world.transcript) do
    show(e)
  end
  call.world:watch(show)
  local done, err = call:finish(opts.max_time)
  local now = call.world.clock:now()
  local how = transcript.outcome(call.world.transcript)
  if not done then
    local first = tostring(err):match("^[^\n]*")
    local what = call.ended and string.format("the flow failed after %.3f s: %s", now, first) or first
    io.stdout:write(transcript.format_line(now, "result", what .. "; " .. how), "\n")
    return 1
  end
  io.stdout:write(transcript.format_line(now, "result",
    string.format("the flow ended without error after %.3f s; %s", now, how)), "\n")
  return 0
end

return cmd
