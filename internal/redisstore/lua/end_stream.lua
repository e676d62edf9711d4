-- end_stream.lua: ends a live stream once.
--
-- KEYS[1]  stream hash
--
-- ARGV[1]  end time, Unix ms
-- ARGV[2]  token of this call: a retry of the call that ended the stream
--          succeeds again instead of finding it ended
--
-- Returns {"ok", field, value, ...} with the stream after the change, or
-- {"err", code, message}.

local st = redis.call("hmget", KEYS[1], "state", "etok")
if not st[1] then
  return {"err", "not_found", "no such stream"}
end
if st[1] == "ended" and st[2] ~= ARGV[2] then
  return {"err", "conflict", "the stream has already ended"}
end
redis.call("hset", KEYS[1], "state", "ended", "ended", ARGV[1], "etok", ARGV[2])
local r = {"ok"}
for _, v in ipairs(redis.call("hgetall", KEYS[1])) do
  r[#r + 1] = v
end
return r
