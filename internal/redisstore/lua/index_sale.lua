-- index_sale.lua: lists a sale under its stream, after the stream's other
-- sales, unless it is listed already.
--
-- KEYS[1]  sorted set of the stream's sales: sale id -> creation rank (1, 2, ...)
--
-- ARGV[1]  sale id
--
-- Returns 1 when the sale was added, 0 when it was there.

if redis.call("zscore", KEYS[1], ARGV[1]) then
  return 0
end
local top = redis.call("zrange", KEYS[1], -1, -1, "withscores")
local rank = 1
if top[2] then
  rank = tonumber(top[2]) + 1
end
redis.call("zadd", KEYS[1], rank, ARGV[1])
return 1
