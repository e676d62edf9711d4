-- assign.lua: record an order's courier and address while it is assigned.
--
-- KEYS[1]  hash: the order's delivery (see RedisState)
-- KEYS[2]  list: the order's path (only its TTL is refreshed)
--
-- ARGV[1]  order id
-- ARGV[2]  courier id
-- ARGV[3]  buyer id
-- ARGV[4]  merchant id
-- ARGV[5]  address, JSON
-- ARGV[6]  now, Unix ms
-- ARGV[7]  how long the keys live after a write, ms
--
-- Returns {outcome, hash fields and values}: outcome "ok", or the status
-- that keeps the order from being (re)assigned.

local st = redis.call("hget", KEYS[1], "status")
if st and st ~= "assigned" then
  return {st, redis.call("hgetall", KEYS[1])}
end
if not st then
  redis.call("hset", KEYS[1], "assigned_at", ARGV[6])
end
redis.call("hset", KEYS[1], "order_id", ARGV[1], "courier", ARGV[2], "buyer", ARGV[3],
  "merchant", ARGV[4], "addr", ARGV[5], "status", "assigned", "updated_at", ARGV[6])
redis.call("pexpire", KEYS[1], ARGV[7])
redis.call("pexpire", KEYS[2], ARGV[7])
return {"ok", redis.call("hgetall", KEYS[1])}
