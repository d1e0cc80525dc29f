-- The login's one round trip: the revision, the structure version, the
-- generation, the user's direct groups and roles and the store's marker
-- (data-loss detection), read atomically.
-- KEYS[1] = <base>rev (routes the script to the store's slot)
-- ARGV[1] = <base>, ARGV[2] = user id
local base = ARGV[1]
local gen = redis.call('GET', base .. 'gen') or '0'
local n = base .. gen .. ':'
return {
  redis.call('GET', KEYS[1]) or '0',
  redis.call('GET', base .. 'srev') or '',
  gen,
  redis.call('SMEMBERS', n .. 'ug:' .. ARGV[2]),
  redis.call('SMEMBERS', n .. 'ur:' .. ARGV[2]),
  redis.call('GET', base .. 'init') or '',
}
