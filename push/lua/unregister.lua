-- Deletes a device entry if it belongs to the given user.
-- KEYS[1]: the device key, holding the device as JSON
-- ARGV[1]: the user id
-- Returns 1 when the entry was deleted, 0 otherwise.
local raw = redis.call('GET', KEYS[1])
if not raw then
  return 0
end
local ok, d = pcall(cjson.decode, raw)
if ok and type(d) == 'table' and d['user_id'] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
