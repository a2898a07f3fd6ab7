-- revoke_all (one node): deletes every record of principal ARGV[4]
-- named by its set KEYS[1], then the set, atomically, and returns how
-- many of them were live.
--
-- ARGV[1] the key prefix, ARGV[3] the caller's clock in Unix
-- milliseconds.
local set = KEYS[1]
local principal = ARGV[4]
local now = tonumber(ARGV[3])

local live = 0
for _, member in ipairs(redis.call('SMEMBERS', set)) do
  local key = ARGV[1] .. member
  local stored = read(key)
  -- Members that name no record, or another principal's, are stale.
  if stored and principal_of(stored) == principal then
    redis.call('DEL', key)
    local expires = tonumber(string.sub(stored, 46, 65))
    if expires and expires > now then
      live = live + 1
    end
  end
end

redis.call('DEL', set)
return live
