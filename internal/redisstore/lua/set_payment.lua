-- set_payment.lua: records the gateway's charge on a pending order.
--
-- KEYS[1]  order hash
--
-- ARGV[1]  payment, JSON
--
-- Returns {"ok", 0, 0, field, value, ...} with the order, or {"err", code,
-- message}: the shape of the other order scripts' replies.

local st = redis.call("hget", KEYS[1], "status")
if not st then
  return {"err", "not_found", "no such order"}
end
if st ~= "pending_payment" then
  return {"err", "conflict", "the order is " .. st}
end
redis.call("hset", KEYS[1], "pay", ARGV[1])
local r = {"ok", 0, 0}
for _, v in ipairs(redis.call("hgetall", KEYS[1])) do
  r[#r + 1] = v
end
return r
