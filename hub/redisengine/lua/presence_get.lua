-- presence_get.lua: returns a channel's live presence entries.
-- Runs after presence_expire.lua.
--
-- KEYS[1]  sorted set: client id -> expiry time, Unix milliseconds
-- KEYS[2]  hash: client id -> client info JSON
-- KEYS[3]  hash: user id -> number of the user's clients
--
-- No ARGV. Returns {client id, info JSON, ...}.

return redis.call("hgetall", KEYS[2])
