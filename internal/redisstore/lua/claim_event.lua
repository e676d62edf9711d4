-- claim_event.lua: claims the announcement of a sale's lifecycle event,
-- once: flash_sale.started once the start time passed, flash_sale.ended
-- once the end time passed. Only the call that sets the claim publishes the
-- event; every other node, now or later, finds it claimed.
--
-- KEYS[1]  sale hash: starts, ends, ann_started, ann_ended, ...
--
-- ARGV[1]  the claim's field: "ann_started" or "ann_ended"
-- ARGV[2]  the field holding the event's time: "starts" or "ends"
-- ARGV[3]  now, Unix ms
-- ARGV[4]  token of this call: a retry of the call that claimed the event
--          finds its own claim and reports it as made
--
-- Returns 1 when this call holds the claim, 0 when the event is not due yet
-- or another call claimed it, -1 when there is no such sale.

local s = redis.call("hmget", KEYS[1], ARGV[2], ARGV[1])
if not s[1] then
  return -1
end
if s[2] then
  if s[2] == ARGV[4] then
    return 1
  end
  return 0
end
if tonumber(ARGV[3]) < tonumber(s[1]) then
  return 0
end
redis.call("hset", KEYS[1], ARGV[1], ARGV[4])
return 1
