-- presence_remove.lua: removes a client from a channel's presence.
-- Runs after presence_expire.lua.
--
-- KEYS[1]  sorted set: client id -> expiry time, Unix milliseconds
-- KEYS[2]  hash: client id -> client info JSON
-- KEYS[3]  hash: user id -> number of the user's clients
--
-- ARGV[1]  client id

remove_client(ARGV[1])
return 1
