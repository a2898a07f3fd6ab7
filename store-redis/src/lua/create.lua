-- create: inserts the record at KEYS[1] unless a live one is there.
--
-- ARGV[1] the key prefix, ARGV[2] '1' when the script keeps the
-- principal index itself (one node), ARGV[3] the caller's clock in Unix
-- milliseconds: only that clock decides what has expired. ARGV[4] is the
-- record's TTL from that clock, ARGV[5] how long its principal's set
-- must live (to the later of its expiry and deadline). From ARGV[6] on,
-- the record as HSET takes it: version, data, created, expires,
-- deadline and writer (a random token naming this one write) in that
-- order, then principal and expiry when it has them.
--
-- Returns {1, principal of a dead record it replaced, or false} when
-- created and {0, false} on a collision.
--
-- Numbers go to Redis as the text they came in: a Lua number passed to
-- redis.call costs Redis a floating-point print, more than the command.
local key = KEYS[1]
local stored = redis.call('HMGET', key, 'expires', 'writer', 'principal',
  'version', 'data', 'created', 'deadline', 'expiry')

local current = tonumber(stored[1])
if current and current > tonumber(ARGV[3]) then
  if stored[2] == ARGV[17] then
    -- This very create, sent again after its reply was lost.
    return {1, false}
  end
  return {0, false}
end

-- What is there is dead or unreadable: it may be replaced, and no field
-- of it may outlive it in the new record.
local replaced = stored[3]
for i = 1, #stored do
  if stored[i] then
    redis.call('DEL', key)
    if replaced and ARGV[2] == '1' then
      redis.call('SREM', ARGV[1] .. 'principal:' .. replaced,
        string.sub(key, #ARGV[1] + 1))
    end
    break
  end
end

-- A record that is dead on arrival is not written: a TTL of zero or
-- less is never sent.
if tonumber(ARGV[4]) <= 0 then
  return {1, replaced}
end

redis.call('HSET', key, unpack(ARGV, 6))
redis.call('PEXPIRE', key, ARGV[4])

if ARGV[2] == '1' and ARGV[18] == 'principal' then
  local set = ARGV[1] .. 'principal:' .. ARGV[19]
  redis.call('SADD', set, string.sub(key, #ARGV[1] + 1))
  if redis.call('PTTL', set) < tonumber(ARGV[5]) then
    redis.call('PEXPIRE', set, ARGV[5])
  end
end
return {1, replaced}
