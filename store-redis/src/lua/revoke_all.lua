-- revoke_all (one node): deletes every record of principal ARGV[4]
-- named by its set KEYS[1], then the set, atomically, and returns how
-- many of them were live.
local set = KEYS[1]

local live = 0
for _, member in ipairs(redis.call('SMEMBERS', set)) do
  if revoke(prefix .. member, ARGV[4]) == 1 then
    live = live + 1
  end
end

-- Members that name other principals' records were stale; they go too.
redis.call('DEL', set)
return live
