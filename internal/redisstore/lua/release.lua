-- release.lua: pending_payment -> expired or cancelled, once. The units go
-- back on sale and off the buyer's count, and the deadline is dropped. An
-- order in a final state is left alone.
--
-- KEYS[1]  sale hash
-- KEYS[2]  hash: buyer id -> units in the buyer's pending and paid orders
-- KEYS[3]  sorted set: pending order ids -> reserved until, Unix ms
-- KEYS[4]  order hash
--
-- ARGV[1]  order id
-- ARGV[2]  new status: "expired" or "cancelled"
-- ARGV[3]  time of the change, Unix ms
-- ARGV[4]  token of this call: a retry of the call that released the order
--          reports the change again
--
-- Returns {"changed" | "same", stock left, stock version, field, value, ...}
-- with the order, or {"err", code, message}. Releasing units increments the
-- sale's stock version (sver) with the stock.

local o = redis.call("hmget", KEYS[4], "status", "qty", "buyer", "tok")
if not o[1] then
  return {"err", "not_found", "no such order"}
end

local function reply(kind)
  local sv = redis.call("hmget", KEYS[1], "stock", "sver")
  local r = {kind, tonumber(sv[1] or "0"), tonumber(sv[2] or "0")}
  for _, v in ipairs(redis.call("hgetall", KEYS[4])) do
    r[#r + 1] = v
  end
  return r
end

if o[1] ~= "pending_payment" then
  if o[4] == ARGV[4] then
    return reply("changed")
  end
  return reply("same")
end
local qty = tonumber(o[2])
redis.call("hset", KEYS[4], "status", ARGV[2], "updated", ARGV[3], "tok", ARGV[4])
redis.call("hincrby", KEYS[1], "stock", qty)
redis.call("hincrby", KEYS[1], "sver", 1)
if redis.call("hincrby", KEYS[2], o[3], -qty) <= 0 then
  redis.call("hdel", KEYS[2], o[3])
end
redis.call("zrem", KEYS[3], ARGV[1])
return reply("changed")
