-- revoke_one: deletes the record at KEYS[1] if its principal is ARGV[4].
-- Returns 1 when it was live, 0 when it was dead or absent, -1 when it
-- is someone else's (and was kept).
--
-- ARGV[3] is the caller's clock in Unix milliseconds.
local key = KEYS[1]
local stored = read(key)
if stored == nil then
  return 0
end
-- A record without a principal, or unreadable, is someone else's too.
if not stored or principal_of(stored) ~= ARGV[4] then
  return -1
end

redis.call('DEL', key)
local expires = tonumber(string.sub(stored, 46, 65))
if expires and expires > tonumber(ARGV[3]) then
  return 1
end
return 0
