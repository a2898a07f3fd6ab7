-- create: inserts the record at KEYS[1] unless a live one is there.
--
-- ARGV[1] the key prefix, ARGV[2] '1' when the script keeps the
-- principal index itself (one node), ARGV[3] the caller's clock in Unix
-- milliseconds: only that clock decides what has expired. ARGV[4] is the
-- record's TTL from that clock, ARGV[5] how long its principal's set
-- must live (to the later of its expiry and deadline), ARGV[6] the write
-- token (a random number naming this one write), ARGV[7] the record as
-- stored, and ARGV[8] its principal when it has one.
--
-- Returns 1 or {1, principal of a dead record it replaced} when created
-- and 0 on a collision.
--
-- Numbers go to Redis as the text they came in: a Lua number passed to
-- redis.call costs Redis a floating-point print, more than the command.
local key = KEYS[1]
local stored = read(key)

local current = stored and tonumber(string.sub(stored, 46, 65))
if current and current > tonumber(ARGV[3]) then
  if string.sub(stored, 25, 44) == ARGV[6] then
    -- This very create, sent again after its reply was lost.
    return 1
  end
  return 0
end

-- What is there is dead or unreadable: the new record replaces it (SET
-- replaces a key of any type), and it leaves its principal's set.
local replaced = stored and principal_of(stored) or false
if replaced and ARGV[2] == '1' then
  redis.call('SREM', ARGV[1] .. 'principal:' .. replaced,
    string.sub(key, #ARGV[1] + 1))
end

-- A record that is dead on arrival is not written: a TTL of zero or
-- less is never sent.
if tonumber(ARGV[4]) <= 0 then
  if stored ~= nil then
    redis.call('DEL', key)
  end
  return {1, replaced}
end

redis.call('SET', key, ARGV[7], 'PX', ARGV[4])

if ARGV[2] == '1' and ARGV[8] then
  local set = ARGV[1] .. 'principal:' .. ARGV[8]
  redis.call('SADD', set, string.sub(key, #ARGV[1] + 1))
  if redis.call('PTTL', set) < tonumber(ARGV[5]) then
    redis.call('PEXPIRE', set, ARGV[5])
  end
end
if not replaced then
  return 1
end
return {1, replaced}
