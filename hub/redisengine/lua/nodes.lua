-- nodes.lua: drops nodes whose TTL passed and returns the others.
--
-- KEYS[1]  sorted set: node id -> expiry time, Unix milliseconds
-- KEYS[2]  hash: node id -> node info JSON
--
-- No ARGV. Returns {node info JSON, ...}.

local t = redis.call("time")
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local expired = redis.call("zrangebyscore", KEYS[1], "-inf", now_ms)
for _, id in ipairs(expired) do
  redis.call("zrem", KEYS[1], id)
  redis.call("hdel", KEYS[2], id)
end
return redis.call("hvals", KEYS[2])
