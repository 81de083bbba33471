-- The registry through which the model's parts reach each other.
--
-- Channels hang up playbacks, playbacks wake the far end, the far end hangs
-- up channels: the parts call each other in a circle, which plain `require`
-- cannot load. Each part registers itself here when it is loaded and looks
-- the others up at call time (luari.sim.model loads them all first).

return {}
