package sqlitestore

import (
	"maps"
	"sync"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// cache keeps recently read records in memory, so that the check every
// request makes does not cost a SQLite query each time: through
// database/sql and the Go translation of SQLite a Get costs tens of
// microseconds, more than the rest of a request.
//
// Correctness rests on two rules. Every write this Store makes to a record
// drops that record from the cache before and after the write, and bumps
// the epoch; a Get that read the database while any write happened does not
// fill the cache, so a record read just before a logout cannot be put back
// after it. Writes by other processes on the same file (the command line's
// "user disable") are not seen until an entry is older than ttl, so they
// take effect within ttl.
type cache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	epoch   uint64
	entries map[session.TokenHash]cacheEntry
	byID    map[string]session.TokenHash

	// lists holds users' session lists (List with a user), which a page of
	// "your sessions" reads on every view. Any write drops them all: a
	// write names a record, not always its user, and writes are rare next
	// to reads (one per touch interval per session).
	lists map[listKey]listEntry
}

type listKey struct {
	user  string
	limit int
}

type listEntry struct {
	recs    []session.Record
	expires time.Time
}

type cacheEntry struct {
	rec     session.Record
	expires time.Time
}

func newCache(ttl time.Duration, max int) *cache {
	return &cache{
		ttl:     ttl,
		max:     max,
		now:     time.Now,
		entries: make(map[session.TokenHash]cacheEntry),
		byID:    make(map[string]session.TokenHash),
		lists:   make(map[listKey]listEntry),
	}
}

// get returns a fresh cached record for h, a copy the caller may change.
func (c *cache) get(h session.TokenHash) (session.Record, bool) {
	if c == nil {
		return session.Record{}, false
	}
	c.mu.Lock()
	e, ok := c.entries[h]
	c.mu.Unlock()
	if !ok || !c.now().Before(e.expires) {
		return session.Record{}, false
	}
	rec := e.rec
	rec.Data = maps.Clone(rec.Data)
	return rec, true
}

// currentEpoch is read before a database read whose result may be cached.
func (c *cache) currentEpoch() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// put caches rec, read from the database when the epoch was epoch, unless a
// write happened since.
func (c *cache) put(rec session.Record, epoch uint64) {
	if c == nil {
		return
	}
	rec.Data = maps.Clone(rec.Data)
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if len(c.entries) >= c.max {
		for h, e := range c.entries { // evict an arbitrary entry
			delete(c.entries, h)
			delete(c.byID, e.rec.ID)
			break
		}
	}
	c.entries[rec.TokenHash] = cacheEntry{rec: rec, expires: expires}
	c.byID[rec.ID] = rec.TokenHash
}

// forget drops the record with public ID id and every cached list, and
// bumps the epoch.
func (c *cache) forget(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if h, ok := c.byID[id]; ok {
		delete(c.entries, h)
		delete(c.byID, id)
	}
	clear(c.lists)
}

// getList returns a fresh cached list of user's sessions, a copy the caller
// may change.
func (c *cache) getList(user string, limit int) ([]session.Record, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.lists[listKey{user, limit}]
	c.mu.Unlock()
	if !ok || !c.now().Before(e.expires) {
		return nil, false
	}
	return cloneRecords(e.recs), true
}

// putList caches recs, user's sessions read from the database when the
// epoch was epoch (currentEpoch, read before the query), unless a write
// happened since.
func (c *cache) putList(user string, limit int, recs []session.Record, epoch uint64) {
	if c == nil {
		return
	}
	recs = cloneRecords(recs)
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if len(c.lists) >= c.max {
		for k := range c.lists { // evict an arbitrary list
			delete(c.lists, k)
			break
		}
	}
	c.lists[listKey{user, limit}] = listEntry{recs: recs, expires: expires}
}

// cloneRecords copies recs deeply enough that neither copy's changes reach
// the other: the slice and each record's Data.
func cloneRecords(recs []session.Record) []session.Record {
	out := make([]session.Record, len(recs))
	for i, rec := range recs {
		rec.Data = maps.Clone(rec.Data)
		out[i] = rec
	}
	return out
}
