-- set_payment.lua: records the gateway's charge on a pending order.
--
-- KEYS[1]  order hash
--
-- ARGV[1]  payment, JSON
--
-- Returns {"ok"}, or {"err", code, message}: the shape of the other
-- scripts' replies. The caller has the order (Reserve returned it) and a
-- pending order changes in nothing else, so the order is not read back.

local st = redis.call("hget", KEYS[1], "status")
if not st then
  return {"err", "not_found", "no such order"}
end
if st ~= "pending_payment" then
  return {"err", "conflict", "the order is " .. st}
end
redis.call("hset", KEYS[1], "pay", ARGV[1])
return {"ok"}
