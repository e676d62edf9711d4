-- append.lua: accept points after the last accepted one.
--
-- KEYS[1]  hash: the order's delivery (see RedisState)
-- KEYS[2]  list: the order's path, JSON points, oldest first
--
-- ARGV[1]  device time of the last point the caller checked against, "0"
--          when it saw none (compare-and-set)
-- ARGV[2]  now, Unix ms
-- ARGV[3]  throttle, ms; 0 turns it off
-- ARGV[4]  the most points the path keeps; 0 keeps all
-- ARGV[5]  how long the keys live after a write, ms
-- ARGV[6]  the newest point, JSON
-- ARGV[7]  the newest point's device time
-- ARGV[8..] the points to append, JSON, oldest first (none: only check)
--
-- Returns {outcome, wait ms}: outcome "ok", "none" (no assignment), "ended",
-- "stale" (another point was accepted since) or "throttled".

local st = redis.call("hget", KEYS[1], "status")
if not st then
  return {"none", 0}
end
if st == "delivered" or st == "cancelled" then
  return {"ended", 0}
end
local dt = redis.call("hget", KEYS[1], "last_dt") or "0"
if dt ~= ARGV[1] then
  return {"stale", 0}
end
local throttle = tonumber(ARGV[3])
local at = redis.call("hget", KEYS[1], "last_at")
if throttle > 0 and at then
  local wait = tonumber(at) + throttle - tonumber(ARGV[2])
  if wait > 0 then
    return {"throttled", wait}
  end
end
if #ARGV < 8 then
  return {"ok", 0}
end
redis.call("hset", KEYS[1], "last", ARGV[6], "last_dt", ARGV[7], "last_at", ARGV[2])
for i = 8, #ARGV do
  redis.call("rpush", KEYS[2], ARGV[i])
end
local max = tonumber(ARGV[4])
if max > 0 then
  redis.call("ltrim", KEYS[2], -max, -1)
end
redis.call("pexpire", KEYS[1], ARGV[5])
redis.call("pexpire", KEYS[2], ARGV[5])
return {"ok", 0}
