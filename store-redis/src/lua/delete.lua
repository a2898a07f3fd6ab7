-- delete: removes the record at KEYS[1]; returns its principal, or
-- false when there was none.
return clear(KEYS[1])
