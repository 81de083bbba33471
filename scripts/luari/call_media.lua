-- Media methods of the call object: play.

local ari = require "luari.ari"
local Call = require "luari.call"
local util = require "luari.util"

-- call:play(media [, opts]): plays and waits until it has finished.
function Call:play(media, opts)
  if type(media) ~= "string" and type(media) ~= "table" then
    error("call:play: media must be a URI string or an array of them", 2)
  end
  opts = opts or {}
  local id = util.uuid()
  local state, waker
  local unlisten = self:_listen(function(ev)
    if ev.type == "PlaybackFinished" and type(ev.playback) == "table" and ev.playback.id == id then
      state = ev.playback.state
      if waker then
        waker(state)
      end
      return true
    end
  end)
  local ok, why, err = self:_op(ari.channels.playWithId, id,
    { media = media, lang = opts.lang, offsetms = opts.offsetms, skipms = opts.skipms })
  if not ok then
    unlisten()
    return nil, why, err
  end
  if not state then
    local got, reason = self:_wait(function(wake)
      waker = wake
      return function()
        waker = nil
        unlisten()
      end
    end)
    if not got then
      return nil, reason
    end
    state = got
  end
  if state == "failed" then
    return nil, "failed"
  end
  return true
end
