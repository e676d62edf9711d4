-- history.lua: reads a channel's stream position and, when asked, a range of
-- its history. A channel without a meta hash gets one with a new epoch, so
-- the position a client is given stays comparable with later ones.
--
-- KEYS[1]  meta hash of the channel's stream: e = epoch, s = top offset
-- KEYS[2]  history stream; entry ids are <offset>-0
--
-- ARGV[1]  how many publications: 0 none (position only), -1 all, else at most that many
-- ARGV[2]  first offset wanted, "" for no lower bound
-- ARGV[3]  "1" for newest first
-- ARGV[4]  meta TTL to set on an existing meta, milliseconds; "0" leaves it
-- ARGV[5]  epoch for a stream that has none
-- ARGV[6]  meta TTL of a meta created here, milliseconds
--
-- Returns {top offset, epoch, {{id, {field, value, ...}}, ...}}.

local meta = redis.call("hmget", KEYS[1], "e", "s")
local epoch, top = meta[1], meta[2]
if not epoch then
  epoch, top = ARGV[5], "0"
  redis.call("del", KEYS[2])
  redis.call("hset", KEYS[1], "e", epoch, "s", "0")
  redis.call("pexpire", KEYS[1], ARGV[6])
elseif ARGV[4] ~= "0" then
  redis.call("pexpire", KEYS[1], ARGV[4])
end
if not top then
  top = "0"
end

if ARGV[1] == "0" then
  return {top, epoch, {}}
end

local entries
local first = ARGV[2]
if first == "" then
  first = "-"
else
  first = first .. "-0"
end
if ARGV[1] == "-1" then
  if ARGV[3] == "1" then
    entries = redis.call("xrevrange", KEYS[2], "+", first)
  else
    entries = redis.call("xrange", KEYS[2], first, "+")
  end
else
  if ARGV[3] == "1" then
    entries = redis.call("xrevrange", KEYS[2], "+", first, "COUNT", ARGV[1])
  else
    entries = redis.call("xrange", KEYS[2], first, "+", "COUNT", ARGV[1])
  end
end
return {top, epoch, entries}
