-- delete: removes the record at KEYS[1]; returns its principal, or
-- false when there was none.
--
-- ARGV[1] the key prefix, ARGV[2] '1' when the script keeps the
-- principal index itself (one node).
local key = KEYS[1]
local stored = read(key)
if stored == nil then
  return false
end

local principal = stored and principal_of(stored) or false
redis.call('DEL', key)
if principal and ARGV[2] == '1' then
  redis.call('SREM', ARGV[1] .. 'principal:' .. principal,
    string.sub(key, #ARGV[1] + 1))
end
return principal
