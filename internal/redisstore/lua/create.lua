-- create.lua: creates a hash (a stream or a flash sale) unless it exists.
--
-- KEYS[1]  the hash
--
-- ARGV[1]  token of this call; the fields must include tok = ARGV[1], so a
--          call the client retried after a lost reply is recognised
-- ARGV[2..] field, value, field, value, ...
--
-- Returns 1 when this call created the hash, 0 when it existed already.

if redis.call("exists", KEYS[1]) == 1 then
  if redis.call("hget", KEYS[1], "tok") == ARGV[1] then
    return 1
  end
  return 0
end
redis.call("hset", KEYS[1], unpack(ARGV, 2))
return 1
