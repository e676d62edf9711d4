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
-- On a single Redis (not Cluster, where these keys sit in other slots) the
-- caller may add three keys and two arguments, so that binding the
-- idempotency key, the decision and the order's indexes are one round trip
-- instead of three:
--
-- KEYS[6]  the idempotency key's record (what idempotency.lua binds)
-- KEYS[7]  string: the order's sale id (P.order.{o:O})
-- KEYS[8]  sorted set: the buyer's order ids -> created, Unix ms
-- ARGV[10] this request's idempotency record, JSON {"h", "s", "b", "o"},
--          with "o" = ARGV[1]
-- ARGV[11] how long the record lives, ms
--
-- The record is bound first, as idempotency.lua does. When the key is
-- already bound to another order id, nothing else happens and the script
-- returns {"bound", record}: the caller checks the record and reserves that
-- order id with the five keys. After a reservation (or a replay) the two
-- indexes are written as the caller would write them.
--
-- Returns {"ok" | "replay", stock left, stock version, field, value, ...}
-- with the order, {"bound", record} (with KEYS[6] only), or {"err", code,
-- message}. A reservation increments the sale's stock version with the
-- stock, so the two always go together. The amount is the stored price
-- times the quantity: the caller never names a price.

if KEYS[6] then
  local bound = redis.call("get", KEYS[6])
  if not bound then
    redis.call("set", KEYS[6], ARGV[10], "px", ARGV[11])
  elseif cjson.decode(bound)["o"] ~= ARGV[1] then
    -- Bound by an earlier request (a record with this call's own, random,
    -- order id is this call's, run again by a client retry).
    return {"bound", bound}
  end
end

local s = redis.call("hmget", KEYS[1], "price", "limit", "starts", "ends", "stock", "ended", "closed", "id", "stream", "host", "sver")
if not s[1] then
  return {"err", "not_found", "no such flash sale"}
end
local stock = tonumber(s[5])
local ver = tonumber(s[11] or "0")

local function reply(kind)
  local r = {kind, stock, ver}
  for _, v in ipairs(redis.call("hgetall", KEYS[5])) do
    r[#r + 1] = v
  end
  if KEYS[6] then
    -- The indexes outside the sale, as Store.indexOrder writes them. An
    -- order this call made was created at ARGV[5].
    local created_ms = tonumber(ARGV[5])
    if kind == "replay" then
      created_ms = tonumber(redis.call("hget", KEYS[5], "created"))
    end
    redis.call("set", KEYS[7], s[8], "nx", "px", ARGV[9])
    redis.call("zadd", KEYS[8], "nx", created_ms, ARGV[1])
    redis.call("zremrangebyscore", KEYS[8], "-inf", string.format("(%d", created_ms - tonumber(ARGV[9])))
    redis.call("pexpire", KEYS[8], ARGV[9])
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
