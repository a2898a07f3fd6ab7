-- create: inserts the record at KEYS[1] unless a live one is there.
-- Returns {1, principal of a dead record it replaced, or false} when
-- created and {0, false} on a collision.
local key = KEYS[1]

local current = stored_expiry(key)
if current and current > now then
  if redis.call('HGET', key, 'writer') == new.writer then
    -- This very create, sent again after its reply was lost.
    return {1, false}
  end
  return {0, false}
end

-- What is there is dead or unreadable: it may be replaced.
local replaced = clear(key)

-- A record that is dead on arrival is not written: a TTL of zero or
-- less is never sent.
if tonumber(new.expires) > now then
  write(key)
end
return {1, replaced}
