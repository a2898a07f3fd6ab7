-- index_add (cluster): adds member ARGV[4] to the principal set KEYS[1]
-- and keeps the set for at least ARGV[5] more milliseconds, so that it
-- outlives every record it names.
redis.call('SADD', KEYS[1], ARGV[4])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return 1
