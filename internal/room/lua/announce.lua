-- announce.lua: whether the caller publishes a room figure (the likes total,
-- the viewer count) now. It does when the value differs from the last one
-- announced for the topic and no node claimed the topic within the
-- interval; the claim records the value as announced.
--
-- KEYS[1]  hash: room settings; fields "ann.<topic>" (last announced value)
--          and "ann_at.<topic>" (when, Unix ms)
-- KEYS[2]  string: the topic's claim, expiring after the interval
--
-- ARGV[1]  topic
-- ARGV[2]  value
-- ARGV[3]  interval, ms
-- ARGV[4]  now, Unix ms
-- ARGV[5]  how long the room's keys live after a write, ms
--
-- Returns {claimed 0|1, changed 0|1, previous value or "", previous at or ""}.

local field = "ann." .. ARGV[1]
local atField = "ann_at." .. ARGV[1]
local prev = redis.call("hget", KEYS[1], field)
local at = redis.call("hget", KEYS[1], atField) or ""
if prev == ARGV[2] then
  return {0, 0, prev, at}
end
if not redis.call("set", KEYS[2], ARGV[4], "NX", "PX", ARGV[3]) then
  return {0, 1, prev or "", at}
end
redis.call("hset", KEYS[1], field, ARGV[2], atField, ARGV[4])
redis.call("pexpire", KEYS[1], ARGV[5])
return {1, 1, prev or "", at}
