-- presence_stats.lua: counts a channel's live clients and distinct users
-- without reading the entries. Runs after presence_expire.lua.
--
-- KEYS[1]  sorted set: client id -> expiry time, Unix milliseconds
-- KEYS[2]  hash: client id -> client info JSON
-- KEYS[3]  hash: user id -> number of the user's clients
--
-- No ARGV. Returns {clients, users}; anonymous clients (empty user id) are
-- clients but no user.

local users = redis.call("hlen", KEYS[3]) - redis.call("hexists", KEYS[3], "")
return {redis.call("hlen", KEYS[2]), users}
