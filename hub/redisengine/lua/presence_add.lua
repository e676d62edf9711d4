-- presence_add.lua: adds a client to a channel's presence or refreshes it.
-- Runs after presence_expire.lua.
--
-- KEYS[1]  sorted set: client id -> expiry time, Unix milliseconds
-- KEYS[2]  hash: client id -> client info JSON
-- KEYS[3]  hash: user id -> number of the user's clients
--
-- ARGV[1]  client id
-- ARGV[2]  client info JSON
-- ARGV[3]  user id
-- ARGV[4]  presence TTL, milliseconds

local prev = redis.call("hget", KEYS[2], ARGV[1])
if prev then
  local prev_user = cjson.decode(prev)["u"]
  if prev_user ~= ARGV[3] then
    decr_user(prev_user)
    redis.call("hincrby", KEYS[3], ARGV[3], 1)
  end
else
  redis.call("hincrby", KEYS[3], ARGV[3], 1)
end
redis.call("hset", KEYS[2], ARGV[1], ARGV[2])
redis.call("zadd", KEYS[1], now_ms + tonumber(ARGV[4]), ARGV[1])
-- Every entry expires within the TTL, so the keys can too: a channel nobody
-- refreshes leaves nothing behind.
for i = 1, 3 do
  redis.call("pexpire", KEYS[i], ARGV[4])
end
return 1
