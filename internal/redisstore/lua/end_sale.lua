-- end_sale.lua: ends a flash sale early, once. A sale whose end time has
-- passed is ended already, and so is one whose flash_sale.ended was claimed
-- (claim_event.lua). Ending the sale claims its flash_sale.ended, and its
-- flash_sale.started when it had not started: the caller announces the end.
--
-- KEYS[1]  sale hash
--
-- ARGV[1]  end time, Unix ms
-- ARGV[2]  token of this call: a retry of the call that ended the sale
--          succeeds again instead of finding it ended
--
-- Returns {"ok", field, value, ...} with the sale after the change, or
-- {"err", code, message}.

local s = redis.call("hmget", KEYS[1], "ends", "ended", "etok", "ann_ended", "starts")
if not s[1] then
  return {"err", "not_found", "no such flash sale"}
end
if not (s[2] and s[3] == ARGV[2]) then
  if s[2] or s[4] or tonumber(ARGV[1]) >= tonumber(s[1]) then
    return {"err", "conflict", "the flash sale has already ended"}
  end
  redis.call("hset", KEYS[1], "ended", ARGV[1], "etok", ARGV[2], "ann_ended", ARGV[2])
  if tonumber(ARGV[1]) < tonumber(s[5]) then
    redis.call("hsetnx", KEYS[1], "ann_started", ARGV[2])
  end
end
local r = {"ok"}
for _, v in ipairs(redis.call("hgetall", KEYS[1])) do
  r[#r + 1] = v
end
return r
