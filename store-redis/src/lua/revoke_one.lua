-- revoke_one: deletes the record at KEYS[1] if its principal is ARGV[4]
-- (see revoke in common.lua for the reply).
return revoke(KEYS[1], ARGV[4])
