package redisstore

// The Lua scripts. Each changes one group (one hash tag, so one Cluster
// slot) atomically: a record, its index entry, the group's history, and
// the change notice it publishes, all or nothing. Keys other
// than KEYS are built from a group's record prefix (ARGV[1]), so they share
// the group's slot.
//
// Times are timeText strings and are only compared, never computed with
// (record.go); index scores are microseconds and only used to find
// candidates, which are then checked exactly.

// luaLib are the scripts' helpers. A script names the ones it uses with a
// line "--#name" where they are to be defined (see lua): Lua creates a
// closure for every local function each time a script runs, which is much
// of a short script's cost, so each script defines only what it uses, and
// only in the branch that uses it.
var luaLib = map[string]string{
	"netstr": `-- netstr joins strings as length:bytes, for history entries (history.go).
local function netstr(parts)
  local out = {}
  for i = 1, #parts do out[i] = #parts[i] .. ':' .. parts[i] end
  return table.concat(out)
end`,
	"toscore": `-- toscore is a timeText as an index score (microseconds, as text).
local function toscore(t)
  local v = tonumber(string.sub(t, 2))
  if string.sub(t, 1, 1) == '0' then v = v - 9223372036854775808 end
  return string.format('%.0f', math.floor(v / 1000))
end`,
	"expire": `-- expire sets a key's TTL in ms ('0': none); with grow, it only lengthens
-- one the key already had.
local function expire(key, ttl, grow)
  if ttl == '0' then redis.call('PERSIST', key)
  elseif grow then redis.call('PEXPIRE', key, ttl, 'GT')
  else redis.call('PEXPIRE', key, ttl) end
end`,
	"unchanged": `-- unchanged reports whether a group's index holds exactly the IDs of
-- snapshot (space-separated): a MaxPerUser decision taken on a snapshot is
-- applied only to that snapshot.
local function unchanged(idx, snapshot)
  local n = 0
  for id in string.gmatch(snapshot, '%S+') do
    if not redis.call('ZSCORE', idx, id) then return false end
    n = n + 1
  end
  return redis.call('ZCARD', idx) == n
end`,
	"stale": `-- stale checks the version (field n) of the record at key against want:
-- it returns 'missing' or 'conflict', or nil and the version when it is
-- still the record the caller read.
local function stale(key, want)
  local n = redis.call('HGET', key, 'n')
  if not n then return 'missing' end
  if n ~= want then return 'conflict' end
  return nil, n
end`,
	"publish": `-- publish sends the change notice of ids: "v1 TAG ID ID ...", at most 200
-- IDs per message.
local function publish(chan, tag, ids)
  local i = 1
  while i <= #ids do
    local j = math.min(i + 199, #ids)
    redis.call('PUBLISH', chan, 'v1 ' .. tag .. ' ' .. table.concat(ids, ' ', i, j))
    i = j + 1
  end
end`,
	"remove": `-- remove deletes record id (key pre .. id) with its index entry (idx, when
-- not false) and, when keep is not '', writes its history entry (ending at,
-- reason, by; score keep). It returns the record's fields ({} for one that
-- cannot be read), or false when there was no record.
local function remove(pre, id, idx, hist, at, reason, by, keep, histTTL)
  local key = pre .. id
  local f = redis.pcall('HGETALL', key)
  if type(f) ~= 'table' or f.err then f = {} end
  local existed = redis.call('DEL', key) == 1
  if idx then redis.call('ZREM', idx, id) end
  if not existed then return false end
  if keep ~= '' and #f > 0 then
    local had = redis.call('EXISTS', hist) == 1
    local parts = {at, reason, by, id}
    for i = 1, #f do parts[#parts + 1] = f[i] end
    redis.call('ZADD', hist, keep, netstr(parts))
    expire(hist, histTTL, had)
  end
  return f
end`,
	"due": `-- due reports whether a record of deadline d and expiry x is due for
-- cleanup at now: d <= now, and an idle deadline (d < x) only when also
-- d <= cut, the grace's cut.
local function due(d, x, now, cut)
  return d <= now and (d >= x or d <= cut)
end`,
}

// luaDeps are the helpers each helper uses.
var luaDeps = map[string][]string{"remove": {"netstr", "expire"}}

// scriptCreate writes a new record (mode "new": only if its key is free;
// "force": replacing what is there, for a session moving in), adds it to
// the user's index, and removes the MaxPerUser victims with their history
// entries and notice. With a snapshot of the group, it does nothing and
// answers {"retry"} unless the group still holds exactly those IDs: the
// victims were chosen on a snapshot that has changed.
//
// On a single server (not a cluster), with "whole", it also writes what
// lives outside the group, in the same step: it sets the locator (only if
// there is none: else it answers {"taken"} and writes nothing), adds the ID
// to P:all and lowers the group's score in P:due. Those keys, the record's
// and the channel are derived from the index's key, which keeps the
// request small: a server reads 16 KB of a connection per pass of its
// event loop, and with appendfsync always one pass is one fsync.
//
// KEYS: idx, hist. ARGV: 1 id, 2 user group ("1" or ""), 3 mode, 4 the
// snapshot ("" for no check, else "=" and the IDs the group held,
// space-separated), 5 score, 6 ttl, 7 instance tag, 8 whole ("1" or ""),
// 9 the raw ID (whole), 10-14 the victims' ending: at, reason, by, history
// score ("" for none), history ttl; 15-24 the record's fields
// (recordArgs); 25... the victims' IDs.
// Reply: {"ok", id, fields, id, fields...} for the removed victims,
// {"exists"}, {"taken"} or {"retry"}.
const scriptCreate = `
--#expire
local idx, hist, id, user = KEYS[1], KEYS[2], ARGV[1], ARGV[2] == '1'
local base, tag = string.match(idx, '^(.*):idx:{(.*)}$')
local pre = base .. ':s:{' .. tag .. '}:'
if ARGV[4] ~= '' then
  --#unchanged
  if not unchanged(idx, string.sub(ARGV[4], 2)) then return {'retry'} end
end
local key = pre .. id
if ARGV[3] == 'force' then
  redis.call('DEL', key)
elseif ARGV[8] == '' and redis.call('EXISTS', key) == 1 then
  return {'exists'} -- (whole, the locator's SET NX below is the check)
end
if ARGV[8] == '1' then
  local loc, locator = base .. ':loc:{a' .. id .. '}', 'a'
  if user then locator = 'u' .. ARGV[16] end
  local set
  if ARGV[6] == '0' then
    set = redis.call('SET', loc, locator, 'NX')
  else
    set = redis.call('SET', loc, locator, 'NX', 'PX', ARGV[6])
  end
  if not set then return {'taken'} end
  redis.call('ZADD', base .. ':all', 0, ARGV[9])
  redis.call('ZADD', base .. ':due', 'LT', ARGV[5], tag)
  if ARGV[13] ~= '' then redis.call('ZADD', base .. ':due', 'LT', ARGV[13], tag) end
end
redis.call('HSET', key, 'h', ARGV[15], 'u', ARGV[16], 'ip', ARGV[17], 'ua', ARGV[18], 'c', ARGV[19],
  'ls', ARGV[20], 'x', ARGV[21], 'd', ARGV[22], 'i', ARGV[23], 'v', ARGV[24], 'n', '1')
expire(key, ARGV[6], false)
local out = {'ok'}
if user then
  redis.call('ZADD', idx, ARGV[5], id)
end
if user and #ARGV >= 25 then
  --#remove publish
  local gone = {}
  for i = 25, #ARGV do
    local f = remove(pre, ARGV[i], idx, hist, ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14])
    if f then
      out[#out + 1] = ARGV[i]
      out[#out + 1] = f
      gone[#gone + 1] = ARGV[i]
    end
  end
  publish(base .. ':changes', ARGV[7], gone)
end
return out
`

// scriptUpdate rewrites a record in place, only if it is still at the
// version the caller read, and publishes its notice.
//
// KEYS: idx. ARGV: 1 record prefix, 2 id, 3 user group, 4 expected
// version, 5 score, 6 ttl, 7 channel, 8 instance tag, 9-18 the fields.
// Reply: "ok", "missing" or "conflict".
const scriptUpdate = `
--#stale expire publish
local key = ARGV[1] .. ARGV[2]
local bad, n = stale(key, ARGV[4])
if bad then return bad end
redis.call('HSET', key, 'h', ARGV[9], 'u', ARGV[10], 'ip', ARGV[11], 'ua', ARGV[12], 'c', ARGV[13],
  'ls', ARGV[14], 'x', ARGV[15], 'd', ARGV[16], 'i', ARGV[17], 'v', ARGV[18],
  'n', string.format('%.0f', tonumber(n) + 1))
expire(key, ARGV[6], false)
if ARGV[3] == '1' then redis.call('ZADD', KEYS[1], ARGV[5], ARGV[2]) end
publish(ARGV[7], ARGV[8], {ARGV[2]})
return 'ok'
`

// scriptTouch writes activity to a group's records: LastSeen only
// forwards, the client of the newest activity, the deadline and index
// score following. Missing records are skipped and reported. No notice:
// activity is not a revocation.
//
// KEYS: idx. ARGV: 1 record prefix, 2 user group, then six per record:
// id, last seen, idle deadline ("" for no idle timeout) and its score,
// IP, user agent. Reply: the IDs of missing records.
const scriptTouch = `
local missing = {}
for i = 3, #ARGV, 6 do
  local id, ls, idl, isc = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local key = ARGV[1] .. id
  local cur = redis.call('HMGET', key, 'ls', 'x', 'n')
  if not (cur[1] and cur[2] and cur[3]) then
    missing[#missing + 1] = id
  elseif ls >= cur[1] then
    redis.call('HSET', key, 'ip', ARGV[i + 4], 'ua', ARGV[i + 5], 'n', string.format('%.0f', tonumber(cur[3]) + 1))
    if ls > cur[1] then
      --#toscore
      local d, sc = cur[2], toscore(cur[2])
      if idl ~= '' and idl < cur[2] then d, sc = idl, isc end
      redis.call('HSET', key, 'ls', ls, 'd', d)
      if ARGV[2] == '1' then redis.call('ZADD', KEYS[1], sc, id) end
    end
  end
end
return missing
`

// scriptDelete removes one record as remove does and publishes its
// notice; an anonymous session's locator (same slot) goes with it.
//
// KEYS: idx, hist, the locator (anonymous group; else idx again).
// ARGV: 1 record prefix, 2 id, 3 user group, 4 channel, 5 instance tag,
// 6-10 ending: at, reason, by, history score ("" for none), history ttl.
// Reply: the record's fields, or nil when there was none.
const scriptDelete = `
--#remove publish
local user = ARGV[3] == '1'
local idx = false
if user then idx = KEYS[1] end
local f = remove(ARGV[1], ARGV[2], idx, KEYS[2], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
if not user and redis.call('GET', KEYS[3]) == 'a' then redis.call('DEL', KEYS[3]) end
if not f then return false end
publish(ARGV[4], ARGV[5], {ARGV[2]})
return f
`

// scriptDeleteUser removes every record of a user's group but one.
//
// KEYS: idx, hist. ARGV: 1 record prefix, 2 the ID to keep ("" for none),
// 3 channel, 4 instance tag, 5-9 ending. Reply: {id, fields, ...}.
const scriptDeleteUser = `
--#remove publish
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf')
local out, gone = {}, {}
for _, id in ipairs(ids) do
  if id ~= ARGV[2] then
    local f = remove(ARGV[1], id, KEYS[1], KEYS[2], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
    if f then
      out[#out + 1] = id
      out[#out + 1] = f
      gone[#gone + 1] = id
    end
  end
end
publish(ARGV[3], ARGV[4], gone)
return out
`

// scriptReadGroup reads a user's group: the IDs its index holds and every
// record.
//
// KEYS: idx. ARGV: 1 record prefix. Reply: {ids, id, fields, ...}, fields
// {} for a record that cannot be read; records that are gone (an index
// entry Redis's expiry left behind) are in ids only.
const scriptReadGroup = `
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {ids}
for _, id in ipairs(ids) do
  local f = redis.pcall('HGETALL', ARGV[1] .. id)
  if type(f) ~= 'table' or f.err then
    out[#out + 1] = id
    out[#out + 1] = {}
  elseif #f > 0 then
    out[#out + 1] = id
    out[#out + 1] = f
  end
end
return out
`

// scriptMoveOut removes a record from the group it is leaving, only if it
// is still the one the mover read, and publishes its notice (move.go).
//
// KEYS: idx. ARGV: 1 record prefix, 2 id, 3 user group, 4 expected
// version, 5 channel, 6 instance tag. Reply: "ok", "missing", "conflict".
const scriptMoveOut = `
--#stale publish
local key = ARGV[1] .. ARGV[2]
local bad = stale(key, ARGV[4])
if bad then return bad end
redis.call('DEL', key)
if ARGV[3] == '1' then redis.call('ZREM', KEYS[1], ARGV[2]) end
publish(ARGV[5], ARGV[6], {ARGV[2]})
return 'ok'
`

// scriptExpireScan lists a group's candidates for cleanup (read only).
//
// KEYS: idx. ARGV: 1 record prefix, 2 user group, 3 the anonymous
// session's ID, 4 now, 5 the highest score to look at, 6 the grace's cut.
// Reply: {id, flag, ...}: flag "y" due, "c" cannot be read, "g" gone.
const scriptExpireScan = `
--#due
local ids
if ARGV[2] == '1' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[5])
else
  ids = {ARGV[3]}
end
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  local f = redis.pcall('HMGET', key, 'd', 'x')
  local flag = false
  if type(f) ~= 'table' or f.err then
    flag = 'c'
  elseif not (f[1] and f[2]) then
    if redis.call('EXISTS', key) == 1 then flag = 'c' else flag = 'g' end
  elseif due(f[1], f[2], ARGV[4], ARGV[6]) then
    flag = 'y'
  end
  if flag then
    out[#out + 1] = id
    out[#out + 1] = flag
  end
end
return out
`

// scriptExpireApply removes the chosen candidates that are still due (or
// cannot be read), with history (reason "expired" once the absolute
// lifetime has passed, else "idle") and notice; drops index entries of
// records that are gone and history entries kept past their time; and
// returns the group's new earliest score.
//
// A record that is gone is reported "g" (its locator and its entry in
// P:all may go too) only when it vanished (Redis's expiry), not when it
// moved to a user's group at a sign-in.
//
// KEYS: idx, hist, the locator (anonymous group; else idx again).
// ARGV: 1 record prefix, 2 user group, 3 now, 4 the grace's cut,
// 5 channel, 6 instance tag, 7 history score ("" for none), 8 history
// ttl, 9 now's score, 10 the anonymous session's ID ("" for a user's
// group), then the chosen IDs.
// Reply: {earliest score or "", id, fields or "g" (gone), ...}.
const scriptExpireApply = `
--#due remove toscore publish
local user = ARGV[2] == '1'
local idx = false
if user then idx = KEYS[1] end
local out, gone = {''}, {}
for i = 11, #ARGV do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  local f = redis.pcall('HMGET', key, 'd', 'x')
  local reason = false
  if type(f) ~= 'table' or f.err then
    reason = 'idle'
  elseif not (f[1] and f[2]) then
    if redis.call('EXISTS', key) == 1 then reason = 'idle' end
  elseif due(f[1], f[2], ARGV[3], ARGV[4]) then
    if f[2] <= ARGV[3] then reason = 'expired' else reason = 'idle' end
  end
  if reason then
    local r = remove(ARGV[1], id, idx, KEYS[2], ARGV[3], reason, '', ARGV[7], ARGV[8])
    if r then
      out[#out + 1] = id
      out[#out + 1] = r
      gone[#gone + 1] = id
    end
  elseif redis.call('EXISTS', key) == 0 then
    local vanished = true
    if user then
      redis.call('ZREM', idx, id)
    else
      local l = redis.call('GET', KEYS[3])
      if l == 'a' then redis.call('DEL', KEYS[3]) elseif l then vanished = false end
    end
    if vanished then
      out[#out + 1] = id
      out[#out + 1] = 'g'
    end
  end
end
local earliest = ''
if user then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[9])
  local first = redis.call('ZRANGE', idx, 0, 0, 'WITHSCORES')
  if #first == 2 then earliest = first[2] end
  local h = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #h == 2 and (earliest == '' or tonumber(h[2]) < tonumber(earliest)) then earliest = h[2] end
else
  local d = redis.pcall('HGET', ARGV[1] .. ARGV[10], 'd')
  if type(d) == 'string' and #d == 20 then earliest = toscore(d) end
end
out[1] = earliest
publish(ARGV[5], ARGV[6], gone)
return out
`

// scriptCAS sets a string key to a new value only if it holds the expected
// one (a locator, the settings lock).
//
// KEYS: the key. ARGV: 1 expected value ("" for none), 2 new value (""
// to delete), 3 ttl in ms ("" keeps the key's TTL, "0" for none).
// Reply: 1 when set, else 0.
const scriptCAS = `
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
elseif ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
elseif ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`

// scriptDueSet sets a group's cleanup score, only if it is still the one
// cleanup read: a change that lowered it meanwhile (ZADD LT) wins.
//
// KEYS: due. ARGV: 1 tag, 2 the score read, 3 the new score ("" to
// remove the group). Reply: 1 when set, else 0.
const scriptDueSet = `
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur or tonumber(cur) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
`
