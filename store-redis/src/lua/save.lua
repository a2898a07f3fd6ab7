-- save: writes the record at KEYS[1] if its stored version is ARGV[4].
-- Versions come 20 digits wide, as the header stores them.
--
-- ARGV[1] the key prefix, ARGV[2] '1' when the script keeps the
-- principal index itself (one node), ARGV[3] the caller's clock in Unix
-- milliseconds: only that clock decides what has expired. ARGV[5] is '1'
-- when a cluster caller has already added the record to its principal's
-- set. ARGV[6] is the record's TTL from the caller's clock, ARGV[7] how
-- long its principal's set must live (to the later of its expiry and
-- deadline), ARGV[8] its new version, ARGV[9] the write token (a random
-- number naming this one write), ARGV[10] the record as stored, and
-- ARGV[11] its principal when it has one.
--
-- Returns 1 or {1, previous principal} saved, 2 conflict, {3,
-- principal of what was removed or false} missing, and on a cluster 4
-- when the caller must add the record to its principal's set first.
--
-- Numbers go to Redis as the text they came in: a Lua number passed to
-- redis.call costs Redis a floating-point print, more than the command.
local key = KEYS[1]
local now = tonumber(ARGV[3])
local keeps_index = ARGV[2] == '1'
local stored = read(key)
local current = stored and tonumber(string.sub(stored, 46, 65))
local previous = stored and principal_of(stored) or false

local dead = not current or current <= now
local version = not dead and string.sub(stored, 4, 23)
if version and version ~= ARGV[4] then
  if version == ARGV[8] and string.sub(stored, 25, 44) == ARGV[9] then
    -- This very save, sent again after its reply was lost.
    return 1
  end
  return 2
end

-- What is gone, dead or unreadable is never brought back, and saving a
-- record that is already dead ends the session instead of sending a TTL
-- of zero or less.
if dead or tonumber(ARGV[6]) <= 0 then
  if stored ~= nil then
    redis.call('DEL', key)
  end
  if keeps_index and previous then
    redis.call('SREM', ARGV[1] .. 'principal:' .. previous,
      string.sub(key, #ARGV[1] + 1))
  end
  return {3, previous}
end

-- The principal's set must name the record and live as long as it can.
-- It already does unless the principal changes or the record may now
-- live longer than before.
local principal = ARGV[11] or false
local index = principal and (previous ~= principal
  or tonumber(ARGV[7])
    > math.max(tonumber(string.sub(stored, 67, 86)) or 0, current) - now)

-- On a cluster the set is updated by a separate call made before this
-- one, so that a live record is never missing from its principal's set.
if index and not keeps_index and ARGV[5] ~= '1' then
  return 4
end

if keeps_index and previous and previous ~= principal then
  redis.call('SREM', ARGV[1] .. 'principal:' .. previous,
    string.sub(key, #ARGV[1] + 1))
end
-- SET rewrites a record of the previous layout as well.
redis.call('SET', key, ARGV[10], 'PX', ARGV[6])

if index and keeps_index then
  local set = ARGV[1] .. 'principal:' .. principal
  redis.call('SADD', set, string.sub(key, #ARGV[1] + 1))
  if redis.call('PTTL', set) < tonumber(ARGV[7]) then
    redis.call('PEXPIRE', set, ARGV[7])
  end
end
-- Only a cluster caller has a set to update.
if keeps_index or not previous then
  return 1
end
return {1, previous}
