-- save: writes the record at KEYS[1] if the stored version is ARGV[13].
-- ARGV[14] is '1' when a cluster caller has already added the record to
-- its principal's set.
--
-- Returns {1, previous principal} saved, {2, false} conflict,
-- {3, principal of what was removed} missing, and on a cluster
-- {4, false} when the caller must add the record to its principal's
-- set first.
local key = KEYS[1]

local current = stored_expiry(key)
if not current or current <= now then
  return {3, clear(key)}
end

local version = redis.call('HGET', key, 'version')
if version ~= ARGV[13] then
  if version == new.version and redis.call('HGET', key, 'writer') == new.writer then
    -- This very save, sent again after its reply was lost.
    return {1, false}
  end
  return {2, false}
end

-- Saving a record that is already dead ends the session instead of
-- sending a TTL of zero or less.
if tonumber(new.expires) <= now then
  return {3, remove(key)}
end

local previous = redis.call('HGET', key, 'principal')

-- On a cluster the set is updated in a separate call made before this
-- one, so that a live record is never missing from its principal's set.
-- It is needed only when the principal changes or its set must live
-- longer; an ordinary save stays one round trip.
if not keeps_index and new.principal and ARGV[14] ~= '1' then
  local reach = math.max(
    tonumber(redis.call('HGET', key, 'deadline')) or 0, current) - now
  if previous ~= new.principal or new_reach() > reach then
    return {4, false}
  end
end

if keeps_index and previous and previous ~= new.principal then
  redis.call('SREM', index_key(previous), member_of(key))
end
write(key)
return {1, previous}
