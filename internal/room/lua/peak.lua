-- peak.lua: raise the room's viewer peak to a count if it is higher.
--
-- KEYS[1]  hash: room settings; field "peak"
--
-- ARGV[1]  the viewer count now
-- ARGV[2]  how long the room's keys live after a write, ms
--
-- Returns the peak.

local peak = tonumber(redis.call("hget", KEYS[1], "peak") or "0")
local n = tonumber(ARGV[1])
if n > peak then
  redis.call("hset", KEYS[1], "peak", n)
  redis.call("pexpire", KEYS[1], ARGV[2])
  peak = n
end
return peak
