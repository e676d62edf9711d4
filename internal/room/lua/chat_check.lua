-- chat_check.lua: whether a user may send a chat message, as one decision.
-- The user must not be banned, nor muted at now; unless exempt (staff, or a
-- moderator of the room), slow mode must have let the user's last message
-- age enough; then the message's words are looked up among the muted ones.
-- A message that may go (possibly masked) starts the user's slow-mode
-- interval; a refused one does not.
--
-- KEYS[1]  set: banned user ids
-- KEYS[2]  hash: muted user id -> muted until, Unix ms
-- KEYS[3]  set: moderator user ids
-- KEYS[4]  hash: room settings (slow = seconds, mode = reject|mask, ...)
-- KEYS[5]  set: muted words, lowercase
-- KEYS[6]  string: when the user's slow-mode interval started, Unix ms;
--          it expires with the interval
--
-- ARGV[1]  user id
-- ARGV[2]  now, Unix ms
-- ARGV[3]  "1" when the user is exempt from slow mode as staff, else "0"
-- ARGV[4...] the message's distinct lowercase words
--
-- Returns one of
--   {"banned"}
--   {"muted", until ms}
--   {"slow", wait ms, moderator 0|1}
--   {"words", moderator 0|1, mode, word, ...}   refused for a muted word
--   {"ok", moderator 0|1, mode, word, ...}      the words to mask, if any

local user = ARGV[1]
local now = tonumber(ARGV[2])

if redis.call("sismember", KEYS[1], user) == 1 then
  return {"banned"}
end

local untilMs = tonumber(redis.call("hget", KEYS[2], user) or "0")
if untilMs > now then
  return {"muted", untilMs}
end
if untilMs ~= 0 then
  redis.call("hdel", KEYS[2], user)
end

local mod = redis.call("sismember", KEYS[3], user)
local conf = redis.call("hmget", KEYS[4], "slow", "mode")
local slow = tonumber(conf[1] or "0") * 1000
local mode = conf[2] or "reject"
local limited = slow > 0 and ARGV[3] ~= "1" and mod == 0

if limited then
  local last = redis.call("get", KEYS[6])
  if last then
    local wait = tonumber(last) + slow - now
    if wait > 0 then
      return {"slow", wait, mod}
    end
  end
end

local out = {"ok", mod, mode}
for i = 4, #ARGV do
  if redis.call("sismember", KEYS[5], ARGV[i]) == 1 then
    out[#out + 1] = ARGV[i]
  end
end
if #out > 3 and mode ~= "mask" then
  out[1] = "words"
  return out
end

if limited then
  redis.call("set", KEYS[6], ARGV[2], "PX", slow)
end
return out
