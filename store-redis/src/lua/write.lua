-- Shared by create and save, after common.lua: the record they write,
-- from ARGV[4] on: version, data, created, expires, deadline, '1' and
-- the principal when it has one ('0' and '' otherwise), its expiry as
-- JSON or '', and a random token naming this one write.
--
-- The token is stored with the record. When a reply is lost with the
-- connection and the store sends the same write again, the script
-- finds its own token and reports what the first attempt did, instead
-- of a collision or a conflict with itself.

local new = {
  version = ARGV[4],
  data = ARGV[5],
  created = ARGV[6],
  expires = ARGV[7],
  deadline = ARGV[8],
  principal = ARGV[9] == '1' and ARGV[10],
  expiry = ARGV[11],
  writer = ARGV[12],
}

-- How long the new record's principal set must live from now on.
local function new_reach()
  return math.max(tonumber(new.deadline), tonumber(new.expires)) - now
end

-- Replaces the record at key with the new one. The caller has checked
-- that it expires after now, so the TTL is at least one millisecond.
local function write(key)
  redis.call('DEL', key)
  redis.call('HSET', key,
    'version', new.version, 'data', new.data, 'created', new.created,
    'expires', new.expires, 'deadline', new.deadline, 'writer', new.writer)
  if new.principal then
    redis.call('HSET', key, 'principal', new.principal)
  end
  if new.expiry ~= '' then
    redis.call('HSET', key, 'expiry', new.expiry)
  end
  redis.call('PEXPIRE', key, tonumber(new.expires) - now)

  if keeps_index and new.principal then
    index_add(index_key(new.principal), member_of(key), new_reach())
  end
end
