-- Moves delayed jobs that are due to the stream, in due order.
-- KEYS[1]: the delayed jobs, a sorted set scored by due time in ms whose
--          members are the jobs' JSON
-- KEYS[2]: the queue's stream
-- ARGV[1]: now, in ms since the epoch
-- ARGV[2]: the most jobs to move
-- ARGV[3]: the stream entry field that holds a job
-- Returns the due time in ms of the earliest job still delayed, or -1.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', ARGV[3], job)
end
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 0 then
  return -1
end
return tonumber(nxt[2])
