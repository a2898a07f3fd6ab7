-- touch: moves the expiry of the live record at KEYS[1] to ARGV[4],
-- but never past its deadline, and rewrites nothing else.
--
-- ARGV[1] the key prefix, ARGV[2] '1' when the script keeps the
-- principal index itself (one node), ARGV[3] the caller's clock in Unix
-- milliseconds: only that clock decides what has expired. ARGV[4] is
-- 20 characters wide, as the header stores it. ARGV[5] is ARGV[4] less
-- ARGV[3], the key's new TTL.
--
-- Returns 1 touched, and {0, principal of what was removed or false}
-- missing.
--
-- Numbers go to Redis as the text they came in: a Lua number passed to
-- redis.call costs Redis a floating-point print, more than the command.
local key = KEYS[1]
local now = tonumber(ARGV[3])
local stored, legacy = read(key)

local current = stored and tonumber(string.sub(stored, 46, 65))
if current and current > now then
  local target, ttl = ARGV[4], ARGV[5]
  local deadline = tonumber(string.sub(stored, 67, 86))
  if deadline and deadline < tonumber(target) then
    target, ttl = string.sub(stored, 67, 86), string.format('%d', deadline - now)
  end

  -- Moved into the past, the session ends below: no TTL of zero or
  -- less is ever sent.
  if tonumber(ttl) > 0 then
    if legacy then
      redis.call('HSET', key, 'expires', target)
    else
      -- The expiry's place in the header; the rest stays as it is.
      redis.call('SETRANGE', key, 45, target)
    end
    redis.call('PEXPIRE', key, ttl)
    return 1
  end
end

-- Gone, dead, unreadable, or moved into the past.
local principal = stored and principal_of(stored) or false
if stored ~= nil then
  redis.call('DEL', key)
end
if principal and ARGV[2] == '1' then
  redis.call('SREM', ARGV[1] .. 'principal:' .. principal,
    string.sub(key, #ARGV[1] + 1))
end
return {0, principal}
