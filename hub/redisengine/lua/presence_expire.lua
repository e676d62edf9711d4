-- presence_expire.lua: the part every presence script starts with. It drops
-- the entries whose expiry passed, which is how the connections of a node
-- that died without cleaning up leave the channel.
--
-- KEYS[1]  sorted set: client id -> expiry time, Unix milliseconds
-- KEYS[2]  hash: client id -> client info JSON (field "u" is the user id)
-- KEYS[3]  hash: user id -> number of the user's clients
--
-- Defines now_ms (Redis server time, so node clocks do not matter) and
-- remove_client(client_id) for the script that follows.

local t = redis.call("time")
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function decr_user(user)
  if redis.call("hincrby", KEYS[3], user, -1) <= 0 then
    redis.call("hdel", KEYS[3], user)
  end
end

local function remove_client(client_id)
  local info = redis.call("hget", KEYS[2], client_id)
  redis.call("zrem", KEYS[1], client_id)
  if info then
    redis.call("hdel", KEYS[2], client_id)
    decr_user(cjson.decode(info)["u"])
  end
end

local expired = redis.call("zrangebyscore", KEYS[1], "-inf", now_ms)
for _, client_id in ipairs(expired) do
  remove_client(client_id)
end
