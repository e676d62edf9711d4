-- publish.lua: stores a publication in the channel's history and publishes
-- it, in one atomic step, so a publication is either in history and sent to
-- the subscribed nodes, or neither.
--
-- KEYS[1]  meta hash of the channel's stream: e = epoch, s = top offset
-- KEYS[2]  history stream; entry ids are <offset>-0, field d holds the body
-- KEYS[3]  idempotency result key, present only when the publish has a key
--
-- ARGV[1]  pub/sub channel
-- ARGV[2]  encoded publication body
-- ARGV[3]  history size; 0 keeps no history
-- ARGV[4]  history TTL, milliseconds
-- ARGV[5]  meta TTL, milliseconds
-- ARGV[6]  epoch for a stream that has none (new, or lost with its meta)
-- ARGV[7]  idempotent result TTL, milliseconds
-- ARGV[8]  publish command: publish, or spublish on Redis Cluster
--
-- Returns {offset, epoch, 1 when an earlier publish with the key made it else 0}.
-- Offset "0" and epoch "" mean the channel keeps no history.

local idem_key = KEYS[3]
if idem_key then
  local prev = redis.call("get", idem_key)
  if prev then
    local sep = string.find(prev, ":", 1, true)
    return {string.sub(prev, 1, sep - 1), string.sub(prev, sep + 1), 1}
  end
end

local offset, epoch = "0", ""
if ARGV[3] ~= "0" then
  epoch = redis.call("hget", KEYS[1], "e")
  if not epoch then
    epoch = ARGV[6]
    -- Entries left from a forgotten epoch mean nothing any more, and their
    -- ids would be above the new offsets.
    redis.call("del", KEYS[2])
    redis.call("hset", KEYS[1], "e", epoch)
  end
  offset = tostring(redis.call("hincrby", KEYS[1], "s", 1))
  redis.call("xadd", KEYS[2], "MAXLEN", ARGV[3], offset .. "-0", "d", ARGV[2])
  redis.call("pexpire", KEYS[2], ARGV[4])
  redis.call("pexpire", KEYS[1], ARGV[5])
end

redis.call(ARGV[8], ARGV[1], "p" .. offset .. ":" .. epoch .. ":" .. ARGV[2])

if idem_key then
  redis.call("set", idem_key, offset .. ":" .. epoch, "PX", ARGV[7])
end
return {offset, epoch, 0}
