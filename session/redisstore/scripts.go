package redisstore

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
)

// The Lua scripts that change records. Each one runs atomically on the
// server, which is what makes the contract's conditional updates and
// exactly-once ends hold across any number of processes.
//
// Every script reads and writes keys of one cluster slot only: a record, its
// user's index and (List) the user's other records, all carrying the user's
// hash tag. The one exception is a script run in "atomic" mode (ARGV[2] ==
// "1"), which the Store uses only on a single server or a Sentinel-managed
// primary, where every key lives in one place: there a script also follows
// the ID pointer itself and does the cross-slot bookkeeping (pointers, global
// indexes, ended-token records) inline, so the whole call is one atomic round
// trip. On a Cluster (ARGV[2] == "0") the caller passes the record and index
// keys and does that bookkeeping afterwards; see the package documentation.
//
// Times arrive as decimal Unix nanoseconds, which Lua's numbers (doubles)
// cannot hold exactly. The prelude splits them into whole seconds and
// nanoseconds, each exact, and does the few sums and comparisons the scripts
// need on those pairs, so that "deadline - 1ns" and "deadline" still differ.

// prelude is prepended to every script that needs it.
const prelude = `
local E9 = 1000000000

-- split parses a decimal int64 (Unix nanoseconds or a duration) into
-- {seconds, nanoseconds} with 0 <= nanoseconds < 1e9, both exact.
local function split(t)
  local neg = string.sub(t, 1, 1) == '-'
  if neg then t = string.sub(t, 2) end
  local s, ns = 0, tonumber(t)
  if #t > 9 then
    s = tonumber(string.sub(t, 1, -10))
    ns = tonumber(string.sub(t, -9))
  end
  if neg then
    s = -s
    if ns > 0 then s, ns = s - 1, E9 - ns end
  end
  return {s, ns}
end

-- decimal is the inverse of split.
local function decimal(a)
  local s, ns = a[1], a[2]
  if s < 0 and ns > 0 then s, ns = s + 1, E9 - ns end
  if s == 0 then
    if a[1] < 0 then return '-' .. string.format('%d', ns) end
    return string.format('%d', ns)
  end
  return string.format('%d%09d', s, ns)
end

local function add(a, b)
  local s, ns = a[1] + b[1], a[2] + b[2]
  if ns >= E9 then s, ns = s + 1, ns - E9 end
  return {s, ns}
end

local function before(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

-- Milliseconds, rounded down (scores of the global indexes, which may only
-- be early) or up (expiry times, which may only be late).
local function msFloor(a) return a[1] * 1000 + math.floor(a[2] / 1000000) end
local function msCeil(a) return a[1] * 1000 + math.ceil(a[2] / 1000000) end

local function isInt(t)
  return t ~= nil and t ~= false and string.match(t, '^%-?%d+$') ~= nil
end

-- fieldsOf turns HGETALL's flat reply into a table.
local function fieldsOf(f)
  local r = {}
  for i = 1, #f, 2 do r[f[i]] = f[i + 1] end
  return r
end

-- member is a record's member in the global expiry index (indexMember in
-- Go), and parseMember its inverse: tag, ID, version.
local function member(ref, v)
  if not v or v == '0' then return ref end
  return ref .. '#' .. v
end
local function parseMember(m)
  local ref, v = string.match(m, '^(.*)#(%d+)$')
  if not ref then ref, v = m, '0' end
  local tag, id = string.match(ref, '^({u:[^}]*}):s:(.*)$')
  return tag, id, v
end

-- setExpiry makes record rk expire at exp (Unix ms) and gives it the same
-- score in its user's index, so that an index entry is known stale exactly
-- when Redis has dropped its record; the index lives as long as its
-- longest-lived entry.
local function setExpiry(rk, idx, id, exp)
  redis.call('PEXPIREAT', rk, exp)
  redis.call('ZADD', idx, exp, id)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', idx, top[2])
end

-- pruneIndex drops the entries of a user's index whose records Redis has
-- already expired (score, their expiry, before the server's clock).
local function pruneIndex(idx)
  local t = redis.call('TIME')
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', string.format('(%d', t[1] * 1000 + math.floor(t[2] / 1000)))
end

local P = ARGV[1]
local atomic = ARGV[2] == '1'

-- locate returns the record key, the user index key and the record's
-- reference: in atomic mode by following the ID pointer KEYS[1], otherwise
-- from KEYS[1] and KEYS[2] as the caller resolved them. nil if the pointer
-- is gone.
local function locate()
  if not atomic then
    return KEYS[1], KEYS[2], string.sub(KEYS[1], #P + 1)
  end
  local ref = redis.call('GET', KEYS[1])
  if not ref then return nil end
  local tag = string.match(ref, '^({u:[^}]*}):s:')
  if not tag then return nil end
  return P .. ref, P .. tag .. ':idx', ref
end

-- expireOne ends record rk, found through the expiry index entry of
-- version ver, if its expiry is at or before now. It returns:
--   1, fields, table   ended: the record's fields, as a list and a table
--   2, score           not yet expired: the score its entry should have
--   4, score, version  the entry is of an older version (a renewal's
--                      bookkeeping has not reached the index, or a sweep
--                      re-scored it late): the current version and score
--   3                  written before records kept their expiry: the
--                      caller upgrades it and visits it again
--   0                  gone, or unreadable: its entry is dropped and Redis
--                      expires it (Redis does not undo what a failed script
--                      already did, so an error could stop a sweep half-way)
local function expireOne(rk, idx, id, ver, now)
  local f = redis.call('HGETALL', rk)
  if #f == 0 then return 0 end
  local r = fieldsOf(f)
  if not r.ex then
    if isInt(r.la) and isInt(r.aa) and isInt(r.it) and isInt(r.at) then return 3 end
    return 0
  end
  if not (isInt(r.ex) and isInt(r.la) and isInt(r.aa) and isInt(r.ca) and isInt(r.it) and isInt(r.at)) or
    (r.er ~= 'idle' and r.er ~= 'absolute') then return 0 end
  local ex = split(r.ex)
  if (r.v or '0') ~= ver then return 4, msFloor(ex), r.v or '0' end
  if before(now, ex) then return 2, msFloor(ex) end
  redis.call('DEL', rk)
  redis.call('ZREM', idx, id)
  return 1, f, r
end
`

// getScript follows token pointers to their records, for a batch of Gets
// in one round trip (atomic mode only; on a Cluster the keys live on
// different nodes). One script call for the batch, not one per Get, spares
// the server a command and a Lua call per session.
//
// Each record comes back as one string: its fields in readOrder, as HMGET
// reads them, packed by Redis's built-in MessagePack encoder (see
// unpackRecord). The client then reads one string per session rather than
// one per field name and value, and builds no map; and the encoder, written
// in C, costs Redis less than building such a string in Lua, or than
// returning HGETALL's names and values.
// KEYS: token pointers. ARGV: prefix.
// Returns one string per key: the packed fields, or "" if the pointer is
// gone (if only the record is, every field is absent).
var getScript = newScript(`
local F = {` + luaStrings(readOrder[:]) + `}
local out = {}
for i, k in ipairs(KEYS) do
  local ref = redis.call('GET', k)
  if ref then
    out[i] = cmsgpack.pack(redis.call('HMGET', ARGV[1] .. ref, unpack(F)))
  else
    out[i] = ''
  end
end
return out
`)

// luaStrings writes names as the items of a Lua table constructor.
func luaStrings(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "'" + n + "'"
	}
	return strings.Join(quoted, ", ")
}

// createScript stores a new record unless its ID or token hash is taken.
// KEYS: record, user index, and in atomic mode ID pointer, token pointer,
// expiry index.
// ARGV: prefix, atomic, ID, reference, keys' expiry (ms), expiry index
// score, then the record's field/value pairs.
// Returns 1, or 0 for a conflict.
var createScript = newScript(prelude + `
if atomic and redis.call('EXISTS', KEYS[3], KEYS[4]) > 0 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
pruneIndex(KEYS[2])
setExpiry(KEYS[1], KEYS[2], ARGV[3], ARGV[5])
if atomic then
  redis.call('SET', KEYS[3], ARGV[4], 'PXAT', ARGV[5])
  redis.call('SET', KEYS[4], ARGV[4], 'PXAT', ARGV[5])
  redis.call('ZADD', KEYS[5], ARGV[6], ARGV[4])
end
return 1
`)

// touchScript records activity at at: LastActivity moves forward to at,
// and Expires to exp if exp is later, with the keys' expiry; in atomic mode
// also the pointers' and the expiry index score. On a Cluster the index is
// left alone: its score stays a lower bound, which the sweep corrects.
// KEYS: ID pointer (atomic) or record and user index.
// ARGV: prefix, atomic, ID, at (ns), exp (ns), exp's reason, grace (ms).
// Returns {0} if there is no such record or it expired at or before at,
// {1} if the expiry stayed, {2, token hash, keys' expiry (ms)} if it moved,
// {3, record key} if the record predates stored expiries.
var touchScript = newScript(prelude + `
local rk, idx, ref = locate()
if not rk then return {0} end
local v = redis.call('HMGET', rk, 'la', 'ex', 'th', 'v')
if not v[1] then return {0} end
if not v[2] then return {3, rk} end
if not (isInt(v[1]) and isInt(v[2])) then return redis.error_reply('unreadable times in record ' .. rk) end
local at, ex, nex = split(ARGV[4]), split(v[2]), split(ARGV[5])
if not before(at, ex) then return {0} end
if before(split(v[1]), at) then redis.call('HSET', rk, 'la', ARGV[4]) end
if not before(ex, nex) then return {1} end
local exp = msCeil(nex) + tonumber(ARGV[7])
redis.call('HSET', rk, 'ex', ARGV[5], 'er', ARGV[6])
setExpiry(rk, idx, ARGV[3], exp)
if atomic then
  redis.call('PEXPIREAT', KEYS[1], exp)
  redis.call('PEXPIREAT', P .. 't:' .. v[3], exp)
  redis.call('ZADD', P .. 'deadlines', 'XX', msFloor(nex), member(ref, v[4]))
end
return {2, v[3], exp}
`)

// saveDataScript replaces the data of an existing record if it is still
// old.
// KEYS: ID pointer (atomic) or record and user index.
// ARGV: prefix, atomic, old encoded data, new encoded data ("" for none).
// Returns 1, 0 if there is no such record, 2 if its data is not old.
var saveDataScript = newScript(prelude + `
local rk = locate()
if not rk or redis.call('EXISTS', rk) == 0 then return 0 end
if (redis.call('HGET', rk, 'd') or '') ~= ARGV[3] then return 2 end
if ARGV[4] == '' then
  redis.call('HDEL', rk, 'd')
else
  redis.call('HSET', rk, 'd', ARGV[4])
end
return 1
`)

// renewScript swaps the token hash of a record whose hash is still old,
// sets its authentication and activity times and its expiry, and gives it
// a new version, so that its expiry index entry becomes a new member.
// KEYS: ID pointer (atomic) or record and user index.
// ARGV: prefix, atomic, ID, old hash, new hash, authenticatedAt,
// lastActivity, expiry (ns), expiry reason, grace (ms).
// Returns {1, index score, keys' expiry (ms), old version, new version},
// {0} if there is no such record with hash old, or {2} if the new hash is
// taken (atomic mode).
var renewScript = newScript(prelude + `
local rk, idx, ref = locate()
if not rk then return {0} end
local v = redis.call('HMGET', rk, 'th', 'v')
if v[1] ~= ARGV[4] then return {0} end
if atomic and redis.call('EXISTS', P .. 't:' .. ARGV[5]) == 1 then return {2} end
local old = v[2] or '0'
local ver = string.format('%d', tonumber(old) + 1)
local ex = split(ARGV[8])
local exp, score = msCeil(ex) + tonumber(ARGV[10]), msFloor(ex)
redis.call('HSET', rk, 'th', ARGV[5], 'aa', ARGV[6], 'la', ARGV[7], 'ex', ARGV[8], 'er', ARGV[9], 'v', ver)
setExpiry(rk, idx, ARGV[3], exp)
if atomic then
  redis.call('DEL', P .. 't:' .. ARGV[4])
  redis.call('SET', P .. 't:' .. ARGV[5], ref, 'PXAT', exp)
  redis.call('PEXPIREAT', KEYS[1], exp)
  redis.call('ZREM', P .. 'deadlines', member(ref, old))
  redis.call('ZADD', P .. 'deadlines', score, member(ref, ver))
end
return {1, score, exp, old, ver}
`)

// endScript removes a record and returns it, exactly once.
// KEYS: ID pointer (atomic) or record and user index.
// ARGV: prefix, atomic, ID, reason, at (ns), keepUntil (ns), keepUntil ms
// rounded up, keepUntil ms rounded down.
// Returns the record's fields, or nil if there was none.
var endScript = newScript(prelude + `
local rk, idx, ref = locate()
if not rk then return false end
local f = redis.call('HGETALL', rk)
if #f == 0 then return false end
redis.call('DEL', rk)
redis.call('ZREM', idx, ARGV[3])
if atomic then
  local r = fieldsOf(f)
  redis.call('DEL', P .. 't:' .. r.th, KEYS[1])
  redis.call('ZREM', P .. 'deadlines', member(ref, r.v))
  local ek = P .. 'e:' .. r.th
  redis.call('HSET', ek, 'r', ARGV[4], 'at', ARGV[5], 'ku', ARGV[6])
  redis.call('PEXPIREAT', ek, ARGV[7])
  redis.call('ZADD', P .. 'ended', ARGV[8], r.th)
end
return f
`)

// expireScript ends one record if its expiry has come (Cluster mode).
// KEYS: record, user index. ARGV: prefix, "0", ID, index entry's version,
// now (ns).
// Returns {code, ...} as expireOne, the fields as a list.
var expireScript = newScript(prelude + `
local code, a, b = expireOne(KEYS[1], KEYS[2], ARGV[3], ARGV[4], split(ARGV[5]))
if code == 1 then return {1, a} end
if code == 2 then return {2, a} end
if code == 4 then return {4, a, b} end
return {code}
`)

// sweepStepScript is one step of EndExpired on one server: it visits up to
// limit entries of the expiry index and ends those whose records have
// expired, with everything that goes with an end (pointers, index entries,
// the ended-token record). The ended-token record is written by the same
// script: written afterwards, a request presenting the token between the
// two would find neither the session nor why it ended.
//
// It first takes entries scored before now's millisecond, which are
// expired unless their score is a lower bound (then it corrects the score,
// which moves the entry out of that range); only when there are fewer than
// limit of those, entries of now's own millisecond, from skip on, which
// need the exact comparison and may stay.
// KEYS: expiry index. ARGV: prefix, "1", now (ns), now (ms, rounded down),
// limit, skip, keep (ns).
// Returns {each record ended, packed as getScript packs it, entries visited,
// entries of now's millisecond that stayed, record keys to upgrade}.
var sweepStepScript = newScript(prelude + `
local F = {` + luaStrings(readOrder[:]) + `}
-- packed is a record's fields in readOrder, packed as the Get script packs
-- them: one string per ended record for the client to read, not a list of
-- field names and values.
local function packed(r)
  local v = {}
  for i, name in ipairs(F) do v[i] = r[name] or false end
  return cmsgpack.pack(v)
end
local now, nowMs, limit = split(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local keep, last = split(ARGV[7]), split('9223372036854775807')
local out, visited, stayed, legacy = {}, 0, 0, {}
-- visit handles one entry and says whether it stayed at nowMs.
local function visit(m)
  visited = visited + 1
  local tag, id, ver = parseMember(m)
  if not tag then
    redis.call('ZREM', KEYS[1], m)
    return false
  end
  local ref = tag .. ':s:' .. id
  local code, a, b = expireOne(P .. ref, P .. tag .. ':idx', id, ver, now)
  if code == 1 then
    out[#out + 1] = packed(b)
    redis.call('ZREM', KEYS[1], m)
    redis.call('DEL', P .. 't:' .. b.th, P .. 'i:' .. id)
    local ku = add(split(b.ex), keep)
    if before(last, ku) then ku = last end
    local ek = P .. 'e:' .. b.th
    redis.call('HSET', ek, 'r', b.er, 'at', b.ex, 'ku', decimal(ku))
    redis.call('PEXPIREAT', ek, msCeil(ku))
    redis.call('ZADD', P .. 'ended', msFloor(ku), b.th)
    return false
  end
  if code == 2 then
    redis.call('ZADD', KEYS[1], 'XX', a, m)
    return a <= nowMs
  end
  if code == 4 then
    redis.call('ZREM', KEYS[1], m)
    redis.call('ZADD', KEYS[1], 'NX', a, member(ref, b))
    return false
  end
  if code == 3 then
    legacy[#legacy + 1] = P .. ref
    return false
  end
  redis.call('ZREM', KEYS[1], m)
  return false
end
local ms = string.format('%d', nowMs)
local refs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ms, 'LIMIT', 0, limit)
for _, m in ipairs(refs) do visit(m) end
if #refs < limit then
  refs = redis.call('ZRANGEBYSCORE', KEYS[1], ms, ms, 'LIMIT', tonumber(ARGV[6]), limit - #refs)
  for _, m in ipairs(refs) do
    if visit(m) then stayed = stayed + 1 end
  end
end
return {out, visited, stayed, legacy}
`)

// upgradeScript gives a record written before records kept their expiry
// the expiry computed from its old fields, unless it has one by now or its
// activity moved since it was read.
// KEYS: record. ARGV: prefix, mode, LastActivity read (ns), expiry (ns),
// reason.
var upgradeScript = newScript(prelude + `
if redis.call('HEXISTS', KEYS[1], 'ex') == 1 then return 1 end
if redis.call('HGET', KEYS[1], 'la') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'ex', ARGV[4], 'er', ARGV[5])
return 1
`)

// purgeScript deletes an ended-token record whose KeepUntil is at or
// before now (Cluster mode). KEYS: ended-token record. ARGV: prefix, "0",
// now (ns).
// Returns 1 if the record is gone now, 0 if it is kept.
var purgeScript = newScript(prelude + `
local ku = redis.call('HGET', KEYS[1], 'ku')
if not ku then return 1 end
if not before(split(ARGV[3]), split(ku)) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// purgeStepScript deletes up to limit ended-token records whose KeepUntil
// is at or before now (atomic mode).
// KEYS: ended index. ARGV: prefix, "1", now (ns), now (ms, rounded down),
// limit.
// Returns how many entries it visited.
var purgeStepScript = newScript(prelude + `
local now = split(ARGV[3])
local hashes = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
for _, h in ipairs(hashes) do
  local ek = P .. 'e:' .. h
  local ku = redis.call('HGET', ek, 'ku')
  if not ku or not before(now, split(ku)) then
    redis.call('DEL', ek)
    redis.call('ZREM', KEYS[1], h)
  end
end
return #hashes
`)

// listScript returns every record of one user, dropping index entries whose
// records are gone.
// KEYS: user index. ARGV: prefix, "0", the user's hash tag.
var listScript = newScript(prelude + `
pruneIndex(KEYS[1])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HGETALL', P .. ARGV[3] .. ':s:' .. id)
  if #f == 0 then
    redis.call('ZREM', KEYS[1], id)
  else
    out[#out + 1] = f
  end
end
return out
`)

// script is a Lua script and its SHA-1, by which EVALSHA runs it without
// sending its text.
type script struct {
	src, sha string
	// shaArg is sha as a command argument, made once: an interface
	// holding a string costs an allocation each time it is made.
	shaArg any
}

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	sha := hex.EncodeToString(sum[:])
	return &script{src: src, sha: sha, shaArg: sha}
}
