-- mark_paid.lua: pending_payment -> paid, once. The order's units move from
-- reserved to sold and its deadline is dropped. A paid order is left alone;
-- an expired or cancelled one is a conflict (its units went back on sale).
--
-- KEYS[1]  sale hash
-- KEYS[2]  sorted set: pending order ids -> reserved until, Unix ms
-- KEYS[3]  order hash
--
-- ARGV[1]  order id
-- ARGV[2]  payment time, Unix ms
-- ARGV[3]  payment, JSON
-- ARGV[4]  token of this call: a retry of the call that paid the order
--          reports the change again
--
-- Returns {"changed" | "same", stock left, stock version, field, value, ...}
-- with the order, or {"err", code, message}. A payment leaves the stock,
-- and so its version, as they are.

local o = redis.call("hmget", KEYS[3], "status", "qty", "tok")
if not o[1] then
  return {"err", "not_found", "no such order"}
end

local function reply(kind)
  local sv = redis.call("hmget", KEYS[1], "stock", "sver")
  local r = {kind, tonumber(sv[1] or "0"), tonumber(sv[2] or "0")}
  for _, v in ipairs(redis.call("hgetall", KEYS[3])) do
    r[#r + 1] = v
  end
  return r
end

if o[1] == "paid" then
  if o[3] == ARGV[4] then
    return reply("changed")
  end
  return reply("same")
end
if o[1] ~= "pending_payment" then
  return {"err", "conflict", "the order is " .. o[1]}
end
redis.call("hset", KEYS[3], "status", "paid", "paid", ARGV[2], "updated", ARGV[2], "pay", ARGV[3], "tok", ARGV[4])
redis.call("hincrby", KEYS[1], "sold", o[2])
redis.call("zrem", KEYS[2], ARGV[1])
return reply("changed")
