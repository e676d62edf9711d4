-- due.lua: the sale's pending reservations whose deadline passed. A sale
-- that can take no more reservations and holds none is closed: reserve.lua
-- refuses it from then on, and the caller drops it from the set of open
-- sales, so sweeps only visit sales that may still have work.
--
-- KEYS[1]  sale hash
-- KEYS[2]  sorted set: pending order ids -> reserved until, Unix ms
--
-- ARGV[1]  now, Unix ms; deadlines before it are due
-- ARGV[2]  at most this many, 0 for all
-- ARGV[3]  grace after the sale's end time before it is closed, ms, so a
--          node whose clock is behind may still finish a reservation
--
-- Returns {closed (0 or 1), order id, deadline, order id, deadline, ...},
-- earliest deadline first.

local s = redis.call("hmget", KEYS[1], "ends", "ended")
if not s[1] then
  return {1}
end
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local due
if limit > 0 then
  due = redis.call("zrangebyscore", KEYS[2], "-inf", "(" .. ARGV[1], "withscores", "limit", 0, limit)
else
  due = redis.call("zrangebyscore", KEYS[2], "-inf", "(" .. ARGV[1], "withscores")
end
local r = {0}
if #due == 0 and (s[2] or now >= tonumber(s[1]) + tonumber(ARGV[3])) and redis.call("zcard", KEYS[2]) == 0 then
  redis.call("hset", KEYS[1], "closed", "1")
  r[1] = 1
end
for _, v in ipairs(due) do
  r[#r + 1] = v
end
return r
