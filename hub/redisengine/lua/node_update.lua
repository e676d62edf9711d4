-- node_update.lua: records a node's latest info for at most its TTL and
-- drops nodes whose TTL passed.
--
-- KEYS[1]  sorted set: node id -> expiry time, Unix milliseconds
-- KEYS[2]  hash: node id -> node info JSON
--
-- ARGV[1]  node id
-- ARGV[2]  node info JSON
-- ARGV[3]  TTL, milliseconds

local t = redis.call("time")
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])

local expired = redis.call("zrangebyscore", KEYS[1], "-inf", now_ms)
for _, id in ipairs(expired) do
  redis.call("zrem", KEYS[1], id)
  redis.call("hdel", KEYS[2], id)
end

if ttl <= 0 then
  redis.call("zrem", KEYS[1], ARGV[1])
  redis.call("hdel", KEYS[2], ARGV[1])
  return 0
end
redis.call("hset", KEYS[2], ARGV[1], ARGV[2])
redis.call("zadd", KEYS[1], now_ms + ttl, ARGV[1])
-- The keys live as long as the longest-lived node; nodes report with
-- different TTLs, so the expiry only ever grows here.
for i = 1, 2 do
  -- pttl is -1 for a key just created without an expiry.
  if redis.call("pttl", KEYS[i]) < ttl then
    redis.call("pexpire", KEYS[i], ttl)
  end
end
return 1
