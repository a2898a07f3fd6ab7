-- read: what is stored at a record's key, for the script that follows.
--
-- Returns nil when the key is absent, false when it holds something no
-- store version wrote, and otherwise a table: version (20 digits, as
-- the callers send versions), writer, expires (a number), deadline
-- (text), principal (or nil), and legacy = true for a record of the
-- previous layout (a hash).
--
-- The header's numbers sit at fixed offsets (see the store's codec), so
-- they are cut out by position: a pattern match costs more than the GET.
local function read(key)
  local value = redis.pcall('GET', key)
  if not value then
    return nil
  end

  if type(value) == 'table' then
    local fields = redis.pcall('HMGET', key,
      'version', 'writer', 'expires', 'deadline', 'principal')
    if fields.err then
      return false
    end
    local version = fields[1]
    if version then
      version = string.rep('0', 20 - #version) .. version
    end
    return {
      version = version, writer = fields[2], expires = tonumber(fields[3]),
      deadline = fields[4], principal = fields[5] or nil, legacy = true,
    }
  end

  local length = tonumber(string.sub(value, 88, 97))
  if string.sub(value, 1, 3) ~= 's1 ' or not length then
    return false
  end

  local principal = nil
  if length >= 0 then
    local body = string.find(value, '\n', 99, true)
    if not body then
      return false
    end
    principal = string.sub(value, body + 1, body + length)
  end
  return {
    version = string.sub(value, 4, 23), writer = string.sub(value, 25, 44),
    expires = tonumber(string.sub(value, 46, 65)),
    deadline = string.sub(value, 67, 86), principal = principal,
  }
end

