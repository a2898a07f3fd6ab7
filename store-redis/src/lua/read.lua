-- read: the record stored at a record's key, for the script below.
--
-- Returns nil when the key is absent, false when it holds neither a
-- string that starts as a record header nor a hash, and otherwise the
-- stored string and whether it is a hash (a record of the previous
-- layout). For a hash the string is a header built from its fields,
-- without the data: the scripts look at nothing else, so a record is
-- judged by its header alone (one with damaged data loads as a decode
-- error, but counts as live here until its TTL).
--
-- The header's numbers sit at fixed offsets (see the store's codec), so
-- the scripts cut them out by position, as follows; a pattern match
-- would cost Redis more than the GET.
--   version  string.sub(value, 4, 23)    (as the callers send versions)
--   writer   string.sub(value, 25, 44)
--   expires  string.sub(value, 46, 65)   (the caller's clock decides)
--   deadline string.sub(value, 67, 86)
--   principal principal_of(value)
local function read(key)
  local value = redis.pcall('GET', key)
  if not value then
    return nil
  end
  if type(value) ~= 'table' then
    if string.sub(value, 1, 3) ~= 's1 ' then
      return false
    end
    return value, false
  end

  -- Not a string: a hash of the previous layout, or another type.
  local fields = redis.pcall('HMGET', key,
    'version', 'writer', 'expires', 'deadline', 'principal')
  if fields.err then
    return false
  end
  -- Wider than its place in the header, a number would shift every
  -- offset after it; the store's decoder refuses such a hash too.
  for n = 1, 4 do
    if fields[n] and #fields[n] > 20 then
      return false
    end
  end

  -- Defined only here, so that a call that meets no hash does not pay
  -- for it.
  local function widened(text, width)
    text = text or ''
    local sign = ''
    if string.sub(text, 1, 1) == '-' then
      sign, text = '-', string.sub(text, 2)
    end
    return sign .. string.rep('0', width - #sign - #text) .. text
  end

  local principal = fields[5] or ''
  local length = fields[5] and tostring(#principal) or '-1'
  return table.concat({'s1', widened(fields[1], 20), widened(fields[2], 20),
    widened(fields[3], 20), widened(fields[4], 20), widened(length, 10),
    '0 0\n' .. principal}, ' '), true
end

-- The principal in a stored string, or false when it has none.
local function principal_of(value)
  local length = tonumber(string.sub(value, 88, 97))
  if not length or length < 0 then
    return false
  end
  local body = string.find(value, '\n', 99, true)
  if not body then
    return false
  end
  return string.sub(value, body + 1, body + length)
end

