-- GCRA decisions for several keys at once, on the Redis clock: every key
-- takes the request, or none does.
-- KEYS[i]        a key's theoretical arrival time (microseconds)
-- ARGV[2i-1]     its interval: microseconds one request uses up
-- ARGV[2i]       its burst: requests that may arrive at once
-- Returns {1, 0, 0} when allowed, else {0, retry_after_microseconds, i} for
-- the first key i that refused.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nxt, ahead = {}, {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then
    tat = now
  end
  nxt[i] = tat + interval
  ahead[i] = nxt[i] - now
  if ahead[i] > burst * interval then
    return {0, ahead[i] - burst * interval, i}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%d', nxt[i]), 'PX', math.ceil(ahead[i] / 1000))
end
return {1, 0, 0}
