-- status.lua: move an order's delivery status forward.
--
-- KEYS[1]  hash: the order's delivery (see RedisState)
--
-- ARGV[1]  the new status
-- ARGV[2]  proof photo URL, or ""
-- ARGV[3]  now, Unix ms
-- ARGV[4]  how long the keys live after a write, ms
--
-- Returns {outcome, hash fields and values}: outcome "ok" (changed), "same"
-- (already there), "none" (no assignment) or "backward" (the status does
-- not move forward, or tracking has ended).

local rank = {assigned = 1, picked_up = 2, on_the_way = 3, delivered = 4, cancelled = 4}
local st = redis.call("hget", KEYS[1], "status")
if not st then
  return {"none", {}}
end
if st == ARGV[1] then
  return {"same", redis.call("hgetall", KEYS[1])}
end
if st == "delivered" or st == "cancelled" or (rank[ARGV[1]] or 0) <= (rank[st] or 0) then
  return {"backward", redis.call("hgetall", KEYS[1])}
end
redis.call("hset", KEYS[1], "status", ARGV[1], "updated_at", ARGV[3])
if ARGV[2] ~= "" then
  redis.call("hset", KEYS[1], "proof", ARGV[2])
end
redis.call("pexpire", KEYS[1], ARGV[4])
return {"ok", redis.call("hgetall", KEYS[1])}
