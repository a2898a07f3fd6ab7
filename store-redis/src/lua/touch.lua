-- touch: moves the expiry of the live record at KEYS[1] to ARGV[4],
-- but never past its deadline, and rewrites nothing else.
-- Returns {1, false} touched and {0, principal of what was removed}
-- missing.
local key = KEYS[1]

local current = stored_expiry(key)
if not current or current <= now then
  return {0, clear(key)}
end

local target = ARGV[4]
local deadline = redis.call('HGET', key, 'deadline')
if tonumber(deadline) and tonumber(deadline) < tonumber(target) then
  target = deadline
end

-- Moved into the past: the session ends here, with no TTL of zero or
-- less sent.
if tonumber(target) <= now then
  return {0, remove(key)}
end

redis.call('HSET', key, 'expires', target)
redis.call('PEXPIRE', key, tonumber(target) - now)
return {1, false}
