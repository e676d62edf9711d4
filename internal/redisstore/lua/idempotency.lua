-- idempotency.lua: binds an idempotency key to the first request that uses
-- it, for a while.
--
-- KEYS[1]  the key's record
--
-- ARGV[1]  this request's record: JSON {"h": request hash, "s": sale id,
--          "b": buyer id, "o": order id}
-- ARGV[2]  how long the record lives, ms
--
-- Returns the record already bound to the key, or nil after binding ARGV[1].

local v = redis.call("get", KEYS[1])
if v then
  return v
end
redis.call("set", KEYS[1], ARGV[1], "px", ARGV[2])
return false
