-- One GCRA decision, on the Redis clock so every node agrees.
-- KEYS[1]  the key's theoretical arrival time (microseconds)
-- ARGV[1]  interval: microseconds one request uses up
-- ARGV[2]  burst: requests that may arrive at once
-- Returns {allowed (1|0), retry_after_microseconds}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local nxt = tat + interval
local ahead = nxt - now
if ahead > burst * interval then
  return {0, ahead - burst * interval}
end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.ceil(ahead / 1000))
return {1, 0}
