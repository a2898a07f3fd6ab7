-- save: writes the record at KEYS[1] if its stored version is ARGV[4].
--
-- ARGV[1] the key prefix, ARGV[2] '1' when the script keeps the
-- principal index itself (one node), ARGV[3] the caller's clock in Unix
-- milliseconds: only that clock decides what has expired. ARGV[5] is '1'
-- when a cluster caller has already added the record to its principal's
-- set. ARGV[6] is the record's TTL from the caller's clock, ARGV[7] how
-- long its principal's set must live (to the later of its expiry and
-- deadline). From ARGV[8] on, the record as HSET takes it: version,
-- data, created, expires, deadline and writer (a random token naming
-- this one write) in that order, then principal and expiry when it has
-- them.
--
-- Returns {1, previous principal} saved, {2, false} conflict,
-- {3, principal of what was removed} missing, and on a cluster
-- {4, false} when the caller must add the record to its principal's
-- set first.
--
-- Numbers go to Redis as the text they came in: a Lua number passed to
-- redis.call costs Redis a floating-point print, more than the command.
local key = KEYS[1]
local now = tonumber(ARGV[3])
local keeps_index = ARGV[2] == '1'
local stored = redis.call('HMGET', key,
  'expires', 'version', 'writer', 'principal', 'deadline', 'expiry')
local current = tonumber(stored[1])
local previous = stored[4]

local dead = not current or current <= now
if not dead and stored[2] ~= ARGV[4] then
  if stored[2] == ARGV[9] and stored[3] == ARGV[19] then
    -- This very save, sent again after its reply was lost.
    return {1, false}
  end
  return {2, false}
end

-- What is gone, dead or unreadable is never brought back, and saving a
-- record that is already dead ends the session instead of sending a TTL
-- of zero or less.
if dead or tonumber(ARGV[6]) <= 0 then
  redis.call('DEL', key)
  if keeps_index and previous then
    redis.call('SREM', ARGV[1] .. 'principal:' .. previous,
      string.sub(key, #ARGV[1] + 1))
  end
  return {3, previous}
end

local principal, expiry = false, false
for i = 20, #ARGV, 2 do
  if ARGV[i] == 'principal' then
    principal = ARGV[i + 1]
  else
    expiry = ARGV[i + 1]
  end
end

-- The principal's set must name the record and live as long as it can.
-- It already does unless the principal changes or the record may now
-- live longer than before.
local index = principal and (previous ~= principal
  or tonumber(ARGV[7]) > math.max(tonumber(stored[5]) or 0, current) - now)

-- On a cluster the set is updated by a separate call made before this
-- one, so that a live record is never missing from its principal's set.
if index and not keeps_index and ARGV[5] ~= '1' then
  return {4, false}
end

if keeps_index and previous and previous ~= principal then
  redis.call('SREM', ARGV[1] .. 'principal:' .. previous,
    string.sub(key, #ARGV[1] + 1))
end
redis.call('HSET', key, unpack(ARGV, 8))
if previous and not principal then
  redis.call('HDEL', key, 'principal')
end
if stored[6] and not expiry then
  redis.call('HDEL', key, 'expiry')
end
redis.call('PEXPIRE', key, ARGV[6])

if index and keeps_index then
  local set = ARGV[1] .. 'principal:' .. principal
  redis.call('SADD', set, string.sub(key, #ARGV[1] + 1))
  if redis.call('PTTL', set) < tonumber(ARGV[7]) then
    redis.call('PEXPIRE', set, ARGV[7])
  end
end
return {1, previous}
