package redisstore

import (
	"crypto/sha1"
	"encoding/hex"
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

local function add(a, b)
  local s, ns = a[1] + b[1], a[2] + b[2]
  if ns >= E9 then s, ns = s + 1, ns - E9 end
  return {s, ns}
end

local function before(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

local function earlier(a, b)
  if before(b, a) then return b end
  return a
end

-- Milliseconds, rounded down (scores of the global indexes, which may only
-- be early) or up (expiry times, which may only be late).
local function msFloor(a) return a[1] * 1000 + math.floor(a[2] / 1000000) end
local function msCeil(a) return a[1] * 1000 + math.ceil(a[2] / 1000000) end

-- deadline is the earlier of the idle and absolute deadlines of a record's
-- last activity, authentication time and timeouts.
local function deadline(la, aa, it, at)
  return earlier(add(split(la), split(it)), add(split(aa), split(at)))
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

local function isInt(t)
  return t ~= nil and string.match(t, '^%-?%d+$') ~= nil
end

-- expireOne ends record rk if its deadline is at or before now: it returns
-- the record's fields if it ended it, nil and the deadline's score if the
-- deadline is still ahead, or nil, nil if the record is gone. A record whose
-- times are unreadable counts as gone: it is dropped from the deadline
-- index, left for Redis to expire, and cannot stop a sweep half-way (Redis
-- does not undo what a failed script already did).
local function expireOne(rk, idx, id, now)
  local f = redis.call('HGETALL', rk)
  if #f == 0 then return nil, nil end
  local r = {}
  for i = 1, #f, 2 do r[f[i]] = f[i + 1] end
  if not (isInt(r.la) and isInt(r.aa) and isInt(r.it) and isInt(r.at)) then return nil, nil end
  local dl = deadline(r.la, r.aa, r.it, r.at)
  if before(now, dl) then return nil, msFloor(dl) end
  redis.call('DEL', rk)
  redis.call('ZREM', idx, id)
  return f
end
`

// getScript follows token pointers to their records, for a batch of Gets
// in one round trip (atomic mode only; on a Cluster the keys live on
// different nodes). One script call for the batch, not one per Get, spares
// the server a command and a Lua call per session.
// KEYS: token pointers. ARGV: prefix.
// Returns one reply per key: the record's fields, or an empty array if the
// pointer or its record is gone.
var getScript = newScript(`
local out = {}
for i, k in ipairs(KEYS) do
  local ref = redis.call('GET', k)
  if ref then
    out[i] = redis.call('HGETALL', ARGV[1] .. ref)
  else
    out[i] = {}
  end
end
return out
`)

// createScript stores a new record unless its ID or token hash is taken.
// KEYS: record, user index, and in atomic mode ID pointer, token pointer,
// deadline index.
// ARGV: prefix, atomic, ID, reference, expiry ms, pointer expiry ms,
// deadline score, then the record's field/value pairs.
// Returns 1, or 0 for a conflict.
var createScript = newScript(prelude + `
if atomic and redis.call('EXISTS', KEYS[3], KEYS[4]) > 0 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
pruneIndex(KEYS[2])
setExpiry(KEYS[1], KEYS[2], ARGV[3], ARGV[5])
if atomic then
  redis.call('SET', KEYS[3], ARGV[4], 'PXAT', ARGV[6])
  redis.call('SET', KEYS[4], ARGV[4], 'PXAT', ARGV[6])
  redis.call('ZADD', KEYS[5], ARGV[7], ARGV[4])
end
return 1
`)

// touchScript moves LastActivity forward to at if the record exists and its
// deadline is after at, and its expiry with it. The global deadline index is
// left alone: its score is a lower bound that EndExpired corrects, and a
// touch can only move a deadline later.
// KEYS: ID pointer (atomic) or record and user index.
// ARGV: prefix, atomic, ID, at (ns), grace (ms).
// Returns 1, or 0 if there is no such live record.
var touchScript = newScript(prelude + `
local rk, idx = locate()
if not rk then return 0 end
local v = redis.call('HMGET', rk, 'la', 'aa', 'it', 'at')
if not v[1] then return 0 end
local at, la, it = split(ARGV[4]), split(v[1]), split(v[3])
local abs = add(split(v[2]), split(v[4]))
if not before(at, earlier(add(la, it), abs)) then return 0 end
if before(la, at) then
  redis.call('HSET', rk, 'la', ARGV[4])
  setExpiry(rk, idx, ARGV[3], msCeil(earlier(add(at, it), abs)) + tonumber(ARGV[5]))
end
return 1
`)

// saveDataScript replaces the data of an existing record.
// KEYS: ID pointer (atomic) or record and user index.
// ARGV: prefix, atomic, encoded data ("" for none).
// Returns 1, or 0 if there is no such record.
var saveDataScript = newScript(prelude + `
local rk = locate()
if not rk or redis.call('EXISTS', rk) == 0 then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', rk, 'd')
else
  redis.call('HSET', rk, 'd', ARGV[3])
end
return 1
`)

// renewScript swaps the token hash of a record whose hash is still old and
// sets its authentication and activity times.
// KEYS: ID pointer (atomic) or record and user index.
// ARGV: prefix, atomic, ID, old hash, new hash, authenticatedAt,
// lastActivity, grace (ms).
// Returns {1, deadline score, pointer expiry ms}, {0} if there is no such
// record with hash old, or {2} if the new hash is taken (atomic mode).
var renewScript = newScript(prelude + `
local rk, idx, ref = locate()
if not rk then return {0} end
local v = redis.call('HMGET', rk, 'th', 'it', 'at')
if v[1] ~= ARGV[4] then return {0} end
if atomic and redis.call('EXISTS', P .. 't:' .. ARGV[5]) == 1 then return {2} end
local abs = add(split(ARGV[6]), split(v[3]))
local dl = earlier(add(split(ARGV[7]), split(v[2])), abs)
local grace = tonumber(ARGV[8])
local ptrExp = msCeil(abs) + grace
redis.call('HSET', rk, 'th', ARGV[5], 'aa', ARGV[6], 'la', ARGV[7])
setExpiry(rk, idx, ARGV[3], msCeil(dl) + grace)
if atomic then
  redis.call('DEL', P .. 't:' .. ARGV[4])
  redis.call('SET', P .. 't:' .. ARGV[5], ref, 'PXAT', ptrExp)
  redis.call('PEXPIREAT', KEYS[1], ptrExp)
  redis.call('ZADD', P .. 'deadlines', 'XX', 'LT', msFloor(dl), ref)
end
return {1, msFloor(dl), ptrExp}
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
  local th
  for i = 1, #f, 2 do
    if f[i] == 'th' then th = f[i + 1] end
  end
  redis.call('DEL', P .. 't:' .. th, KEYS[1])
  redis.call('ZREM', P .. 'deadlines', ref)
  local ek = P .. 'e:' .. th
  redis.call('HSET', ek, 'r', ARGV[4], 'at', ARGV[5], 'ku', ARGV[6])
  redis.call('PEXPIREAT', ek, ARGV[7])
  redis.call('ZADD', P .. 'ended', ARGV[8], th)
end
return f
`)

// expireScript ends one record if its deadline has come (Cluster mode).
// KEYS: record, user index. ARGV: prefix, "0", ID, now (ns).
// Returns {1, fields} if it ended the record, {2, deadline score} if the
// deadline is still ahead, {0} if the record is gone.
var expireScript = newScript(prelude + `
local f, score = expireOne(KEYS[1], KEYS[2], ARGV[3], split(ARGV[4]))
if f then return {1, f} end
if score then return {2, score} end
return {0}
`)

// expireBatchScript ends up to limit records whose deadline has come, found
// through the global deadline index (atomic mode). It first takes entries
// whose score is before now's millisecond, which are expired unless their
// score is stale (then it corrects the score, which moves the entry out of
// that range), and then those of now's own millisecond, which need the exact
// comparison and may stay.
// It also writes each ended record's ended-token record, in the same
// script: written afterwards, a request presenting the token between the
// two would find neither the session nor why it ended, and its user would
// be told nothing. EndExpired writes them again with the same values.
// KEYS: deadline index. ARGV: prefix, "1", now (ns), now (ms, rounded down),
// limit, how long to keep ended-token records (ns; empty: not here).
// Returns the fields of each record it ended.
var expireBatchScript = newScript(prelude + `
local now, nowMs, limit = split(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}
-- keepEnding records why the record of fields f ended: the earlier of its
-- deadlines, absolute when they coincide.
local function keepEnding(f)
  if ARGV[6] == '' then return end
  local r = {}
  for i = 1, #f, 2 do r[f[i]] = f[i + 1] end
  if not r.th then return end
  local idle, abs = add(split(r.la), split(r.it)), add(split(r.aa), split(r.at))
  local reason, at = 'idle', idle
  if not before(idle, abs) then reason, at = 'absolute', abs end
  local ku = add(at, split(ARGV[6]))
  local ek = P .. 'e:' .. r.th
  redis.call('HSET', ek, 'r', reason, 'at', string.format('%d%09d', at[1], at[2]),
    'ku', string.format('%d%09d', ku[1], ku[2]))
  redis.call('PEXPIREAT', ek, msCeil(ku))
  redis.call('ZADD', P .. 'ended', msFloor(ku), r.th)
end
-- visit handles one entry and says whether it stayed in the index at nowMs.
local function visit(ref)
  local tag, id = string.match(ref, '^({u:[^}]*}):s:(.*)$')
  if not tag then
    redis.call('ZREM', KEYS[1], ref)
    return false
  end
  local f, score = expireOne(P .. ref, P .. tag .. ':idx', id, now)
  if f then
    out[#out + 1] = f
    keepEnding(f)
    redis.call('ZREM', KEYS[1], ref)
    return false
  end
  if not score then
    redis.call('ZREM', KEYS[1], ref)
    return false
  end
  redis.call('ZADD', KEYS[1], score, ref)
  return score <= nowMs
end
while #out < limit do
  local want = limit - #out
  local refs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', nowMs), 'LIMIT', 0, want)
  for _, ref in ipairs(refs) do visit(ref) end
  if #refs < want then break end
end
local skip = 0
while #out < limit do
  local want = limit - #out
  local refs = redis.call('ZRANGEBYSCORE', KEYS[1], nowMs, nowMs, 'LIMIT', skip, want)
  for _, ref in ipairs(refs) do
    if visit(ref) then skip = skip + 1 end
  end
  if #refs < want then break end
end
return out
`)

// purgeScript deletes an ended-token record whose KeepUntil is before now
// (Cluster mode). KEYS: ended-token record. ARGV: prefix, "0", now (ns).
// Returns 1 if the record is gone now, 0 if it is kept.
var purgeScript = newScript(prelude + `
local ku = redis.call('HGET', KEYS[1], 'ku')
if not ku then return 1 end
if before(split(ku), split(ARGV[3])) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// purgeBatchScript deletes up to limit ended-token records whose KeepUntil
// is before now (atomic mode).
// KEYS: ended index. ARGV: prefix, "1", now (ns), now (ms, rounded down),
// limit.
var purgeBatchScript = newScript(prelude + `
local now = split(ARGV[3])
local hashes = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
for _, h in ipairs(hashes) do
  local ek = P .. 'e:' .. h
  local ku = redis.call('HGET', ek, 'ku')
  if not ku or before(split(ku), now) then
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
}

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:])}
}
