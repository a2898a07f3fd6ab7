-- index_add (cluster): adds member ARGV[4] to the principal set KEYS[1]
-- and keeps the set for at least ARGV[5] more milliseconds.
index_add(KEYS[1], ARGV[4], tonumber(ARGV[5]))
return 1
