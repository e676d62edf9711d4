-- reserve.lua: the whole decision of a checkout. The sale must exist and be
-- open (starts <= now < ends, not ended, not closed), the buyer's units in
-- pending and paid orders plus the quantity must stay within the per-user
-- limit, and the stock must cover the quantity. Then the stock and the
-- buyer's count go down and up, and the order is written and indexed.
-- An existing order with this id made with the same idempotency key by the
-- same buyer is a replay and is returned as it is now.
--
-- KEYS[1]  sale hash: price, limit, starts, ends, stock, sver (the stock
--          version), ended, closed, ...
-- KEYS[2]  hash: buyer id -> units in the buyer's pending and paid orders
-- KEYS[3]  sorted set: the sale's order ids -> created, Unix ms
-- KEYS[4]  sorted set: pending order ids -> reserved until, Unix ms
-- KEYS[5]  hash of the order ARGV[1]
--
-- ARGV[1]  order id
-- ARGV[2]  buyer id
-- ARGV[3]  buyer name
-- ARGV[4]  quantity, >= 1
-- ARGV[5]  now, Unix ms
-- ARGV[6]  reserved until, Unix ms
-- ARGV[7]  idempotency key, "" for none
-- ARGV[8]  token of this call: a retry of the call that made the order gets
--          it as made, not as a replay or a conflict
-- ARGV[9]  how long the order is kept, ms
--
-- Returns {"ok" | "replay", stock left, stock version, field, value, ...}
-- with the order, or {"err", code, message}. A reservation increments the
-- sale's stock version with the stock, so the two always go together. The amount is the stored price times the
-- quantity: the caller never names a price.

local s = redis.call("hmget", KEYS[1], "price", "limit", "starts", "ends", "stock", "ended", "closed", "id", "stream", "host")
if not s[1] then
  return {"err", "not_found", "no such flash sale"}
end
local stock = tonumber(s[5])
local ver = tonumber(redis.call("hget", KEYS[1], "sver") or "0")

local function reply(kind)
  local r = {kind, stock, ver}
  for _, v in ipairs(redis.call("hgetall", KEYS[5])) do
    r[#r + 1] = v
  end
  return r
end

local o = redis.call("hmget", KEYS[5], "buyer", "idem", "tok")
if o[1] then
  if o[3] == ARGV[8] then
    return reply("ok")
  end
  if ARGV[7] ~= "" and o[2] == ARGV[7] and o[1] == ARGV[2] then
    return reply("replay")
  end
  return {"err", "conflict", "order id " .. ARGV[1] .. " is taken"}
end

local now, qty = tonumber(ARGV[5]), tonumber(ARGV[4])
if now < tonumber(s[3]) then
  return {"err", "sale_not_started", "the flash sale has not started"}
end
if s[6] or s[7] or now >= tonumber(s[4]) then
  return {"err", "sale_ended", "the flash sale has ended"}
end
local limit = tonumber(s[2])
local held = tonumber(redis.call("hget", KEYS[2], ARGV[2]) or "0")
if held + qty > limit then
  return {"err", "per_user_limit", "at most " .. limit .. " per buyer"}
end
if stock < qty then
  return {"err", "sold_out", "not enough stock left"}
end

stock = redis.call("hincrby", KEYS[1], "stock", -qty)
ver = redis.call("hincrby", KEYS[1], "sver", 1)
redis.call("hincrby", KEYS[2], ARGV[2], qty)
redis.call("hset", KEYS[5],
  "id", ARGV[1], "buyer", ARGV[2], "bname", ARGV[3],
  "sale", s[8], "stream", s[9], "host", s[10],
  "qty", ARGV[4], "amount", string.format("%d", tonumber(s[1]) * qty),
  "status", "pending_payment", "until", ARGV[6],
  "created", ARGV[5], "updated", ARGV[5],
  "idem", ARGV[7], "tok", ARGV[8])
redis.call("pexpire", KEYS[5], ARGV[9])
redis.call("zadd", KEYS[3], now, ARGV[1])
-- Orders past their TTL are gone; so goes their place in the index.
redis.call("zremrangebyscore", KEYS[3], "-inf", string.format("(%d", now - tonumber(ARGV[9])))
redis.call("zadd", KEYS[4], ARGV[6], ARGV[1])
return reply("ok")
