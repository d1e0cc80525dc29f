-- Resolves one login's policy in one round trip, reading only the user's
-- memberships (REFERENCE.md §1, the extension's algorithm, as authz.Model.Resolve).
-- KEYS[1] = <base>rev (routes the script to the store's slot)
-- ARGV = base, user, client, audience, connection, idp groups...
-- Returns {revision, groups, roles, permissions}: names in storage order,
-- de-duplicated by name.
local base = ARGV[1]
local rev = redis.call('GET', KEYS[1]) or '0'
local gen = redis.call('GET', base .. 'gen') or '0'
local N = base .. gen .. ':'
local user, client, aud, conn = ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local groups = {}   -- gid -> {seq, name} or false when the group does not exist
local found = {}    -- list of {seq, name}
local function close(start)
  local stack = {start}
  while #stack > 0 do
    local g = table.remove(stack)
    if groups[g] == nil then
      local m = redis.call('HMGET', N .. 'gx:' .. g, 's', 'n')
      if m[1] then
        local e = {tonumber(m[1]), m[2], g}
        groups[g] = e
        found[#found + 1] = e
        local parents = redis.call('SMEMBERS', N .. 'gp:' .. g)
        for i = 1, #parents do stack[#stack + 1] = parents[i] end
      else
        groups[g] = false
      end
    end
  end
end

local direct = redis.call('SMEMBERS', N .. 'ug:' .. user)
for i = 1, #direct do close(direct[i]) end
if conn ~= '' then
  local labels = {}
  for i = 6, #ARGV do labels[#labels + 1] = ARGV[i] end
  -- Mappings also match the names of the direct groups (not inherited ones).
  for i = 1, #direct do
    local e = groups[direct[i]]
    if e then labels[#labels + 1] = e[2] end
  end
  local mp = N .. 'mp:' .. #conn .. ':' .. conn
  for i = 1, #labels do
    local mapped = redis.call('SMEMBERS', mp .. labels[i])
    for j = 1, #mapped do close(mapped[j]) end
  end
end

local bySeq = function(a, b) return a[1] < b[1] end
table.sort(found, bySeq)

local function applies(m)
  return m[4] == client or (aud ~= '' and m[3] == 'resource_server' and m[4] == aud)
end
local function roleEntries(ids, seen, out)
  for i = 1, #ids do
    local r = ids[i]
    if not seen[r] then
      seen[r] = true
      local m = redis.call('HMGET', N .. 'rx:' .. r, 's', 'n', 't', 'a')
      if m[1] and applies(m) then out[#out + 1] = {tonumber(m[1]), m[2], r} end
    end
  end
end

-- Roles of the groups first (storage order), then the directly assigned ones.
local groupRoles, seenG = {}, {}
for i = 1, #found do
  roleEntries(redis.call('SMEMBERS', N .. 'grl:' .. found[i][3]), seenG, groupRoles)
end
table.sort(groupRoles, bySeq)
local userRoles = {}
roleEntries(redis.call('SMEMBERS', N .. 'ur:' .. user), {}, userRoles)
table.sort(userRoles, bySeq)

local perms, seenP = {}, {}
local function addPerms(list)
  for i = 1, #list do
    local ids = redis.call('SMEMBERS', N .. 'rpm:' .. list[i][3])
    for j = 1, #ids do
      local p = ids[j]
      if not seenP[p] then
        seenP[p] = true
        local m = redis.call('HMGET', N .. 'px:' .. p, 's', 'n')
        if m[1] then perms[#perms + 1] = {tonumber(m[1]), m[2]} end
      end
    end
  end
end
addPerms(groupRoles)
addPerms(userRoles)
table.sort(perms, bySeq)

local function names(out, seen, list)
  for i = 1, #list do
    local n = list[i][2]
    if not seen[n] then
      seen[n] = true
      out[#out + 1] = n
    end
  end
  return out
end
local roleSeen = {}
local roles = names({}, roleSeen, groupRoles)
names(roles, roleSeen, userRoles)
return {rev, names({}, {}, found), roles, names({}, {}, perms)}
