-- Shared by every script of the store: the store puts it in front of
-- each one.
--
-- ARGV[1]  the key prefix
-- ARGV[2]  '1' when the script keeps the principal index itself (one
--          node); '0' when the caller does, because on a cluster each
--          principal's set lives in a hash slot of its own
-- ARGV[3]  the caller's clock, in Unix milliseconds
--
-- A record is a hash with the fields version, data, created, expires
-- and deadline (times in Unix milliseconds), plus principal and expiry
-- when it has them. Only the caller's clock decides what is expired;
-- the key's TTL is counted from it, so Redis's own clock never matters.

local prefix = ARGV[1]
local keeps_index = ARGV[2] == '1'
local now = tonumber(ARGV[3])

local function index_key(principal)
  return prefix .. 'principal:' .. principal
end

-- A record's member in its principal's set: its key without the prefix.
local function member_of(key)
  return string.sub(key, #prefix + 1)
end

-- When the stored record dies; nil when there is none or it is unreadable.
local function stored_expiry(key)
  return tonumber(redis.call('HGET', key, 'expires'))
end

-- Adds a member and keeps the set for at least ttl more milliseconds,
-- so that the index outlives every record it names.
local function index_add(set, member, ttl)
  redis.call('SADD', set, member)
  if redis.call('PTTL', set) < ttl then
    redis.call('PEXPIRE', set, ttl)
  end
end

-- Deletes a record (and, when the script keeps the index, its member).
-- Returns the record's principal so that a cluster caller can do the same.
local function remove(key)
  local principal = redis.call('HGET', key, 'principal')
  redis.call('DEL', key)
  if keeps_index and principal then
    redis.call('SREM', index_key(principal), member_of(key))
  end
  return principal
end

-- Removes whatever record is at key, dead or unreadable; returns its
-- principal, or false when there was none.
local function clear(key)
  if redis.call('EXISTS', key) == 0 then
    return false
  end
  return remove(key)
end

-- Deletes the record at key if it belongs to principal. Returns 1 when
-- it was live, 0 when it was dead or absent, -1 when it is someone
-- else's (and was kept).
local function revoke(key, principal)
  if redis.call('EXISTS', key) == 0 then
    return 0
  end
  if redis.call('HGET', key, 'principal') ~= principal then
    return -1
  end

  local expires = stored_expiry(key)
  redis.call('DEL', key)
  if expires and expires > now then
    return 1
  end
  return 0
end
