-- revoke_one: deletes the record at KEYS[1] if its principal is ARGV[4].
-- Returns 1 when it was live, 0 when it was dead or absent, -1 when it
-- is someone else's (and was kept).
--
-- ARGV[3] is the caller's clock in Unix milliseconds.
local key = KEYS[1]
local stored = redis.call('HMGET', key, 'principal', 'expires')
if stored[1] ~= ARGV[4] then
  -- A record without a principal is someone else's too.
  if stored[1] or redis.call('EXISTS', key) == 1 then
    return -1
  end
  return 0
end

redis.call('DEL', key)
local expires = tonumber(stored[2])
if expires and expires > tonumber(ARGV[3]) then
  return 1
end
return 0
