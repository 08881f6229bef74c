package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/sessionguard/sessionguard/internal/coalesce"
	"github.com/sessionguard/sessionguard/internal/dataversion"
	"github.com/sessionguard/sessionguard/session"
)

// cache keeps recently read records in memory, so that the check every
// request makes does not cost a SQLite query each time: through
// database/sql and the Go translation of SQLite a Get costs tens of
// microseconds, more than the rest of a request.
//
// Correctness rests on three rules. Every write this Store makes to a record
// drops that record from the cache before and after the write, and bumps
// the epoch; a Get that read the database while any write happened does not
// fill the cache, so a record read just before a logout cannot be put back
// after it. Before every read the watch asks SQLite whether any other
// connection (another process, or another Store on the file) has committed
// since it last looked, and if so drops the records whose token stopped
// working meanwhile, which End and Renew log in the same transaction: a
// sign-out, revocation or renewal anywhere is seen by the next read. What
// other connections change without ending a token (the last activity, the
// data, a new session in a user's list) is seen once an entry is older than
// ttl.
type cache struct {
	ttl   time.Duration
	max   int
	now   func() time.Time
	watch *watch // nil in tests of the cache alone

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

// forgetRecords drops the records with these public IDs and every cached
// list, and bumps the epoch, as forget does for one.
func (c *cache) forgetRecords(ids []string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, id := range ids {
		if h, ok := c.byID[id]; ok {
			delete(c.entries, h)
			delete(c.byID, id)
		}
	}
	clear(c.lists)
}

// clear drops everything and bumps the epoch.
func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.entries)
	clear(c.byID)
	clear(c.lists)
}

// catchUp brings the cache up to date with what other connections have
// committed before the call: it returns nil once every record whose token
// stopped working by then is dropped. A caller that gets an error must
// neither use the cache nor fill it.
func (c *cache) catchUp(ctx context.Context) error {
	if c == nil || c.watch == nil {
		return nil
	}
	return c.watch.check.Run(ctx, c.watch.catchUp)
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

// tokenChangesKept is how many rows of session_token_changes EndExpired
// keeps. A watch that falls further behind than that (a process that served
// no request while a thousand sessions ended elsewhere) cannot tell which
// records to drop, and drops them all.
const tokenChangesKept = 1000

// logTokenChange records, inside the transaction of an End or a Renew, that
// a record's token stopped working, for the watches of other connections.
// EndExpired logs nothing: a record it ends had passed its expiry, and
// a cached copy anywhere has an expiry no later (Touch only moves it
// forward, and a cached copy never runs ahead of the file), so the Manager
// refuses it anyway.
const logTokenChange = `INSERT INTO session_token_changes (record_id) VALUES (?)`

// watch learns what other connections wrote to the file. It asks SQLite for
// the data version on a connection of its own (package dataversion), a few
// microseconds, a fraction of a Get from the file; only when that changed
// does it read the log of token changes, and drop from the cache the records
// it names. Concurrent readers share one check (package coalesce: a reader
// that arrives while a check is under way waits for the next, which begins
// after it arrived), so a burst of requests pays for about one.
type watch struct {
	cache   *cache
	check   *coalesce.Check // runs catchUp, one at a time
	version *dataversion.Conn
	changes *sql.Stmt // the token changes after a sequence number

	// What the last successful check saw; read and written only by
	// catchUp, which check runs one at a time.
	lastVersion int64
	lastSeq     int64
}

// newWatch starts watching for c, with a connection of db's that it keeps
// until close.
func newWatch(ctx context.Context, db *sql.DB, c *cache) (w *watch, err error) {
	w = &watch{cache: c, check: coalesce.New()}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if w.version, err = dataversion.Open(ctx, db); err != nil {
		return nil, err
	}
	if w.changes, err = db.PrepareContext(ctx,
		`SELECT seq, record_id FROM session_token_changes WHERE seq > ? ORDER BY seq`); err != nil {
		return nil, err
	}
	// The version first: a change committed between the two reads is
	// then read again, harmlessly, by the next check.
	if w.lastVersion, err = w.version.Read(ctx); err != nil {
		return nil, err
	}
	err = db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM session_token_changes`).Scan(&w.lastSeq)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// catchUp is one check: see whether anyone else committed, and if so drop
// the records whose token changed since the last check.
func (w *watch) catchUp(ctx context.Context) error {
	version, err := w.version.Read(ctx)
	if err != nil {
		return err
	}
	if version == w.lastVersion {
		return nil
	}
	rows, err := w.changes.QueryContext(ctx, w.lastSeq)
	if err != nil {
		return err
	}
	defer rows.Close()
	var ids []string
	first, last := int64(0), w.lastSeq
	for rows.Next() {
		var id string
		if err := rows.Scan(&last, &id); err != nil {
			return err
		}
		if first == 0 {
			first = last
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	switch {
	case first > w.lastSeq+1:
		// EndExpired pruned changes this watch had not read: which
		// records they named is lost.
		w.cache.clear()
	case len(ids) > 0:
		w.cache.forgetRecords(ids)
	}
	w.lastVersion, w.lastSeq = version, last
	return nil
}

// close releases the watch's statement and connection.
func (w *watch) close() error {
	var errs []error
	if w.changes != nil {
		errs = append(errs, w.changes.Close())
	}
	if w.version != nil {
		errs = append(errs, w.version.Close())
	}
	return errors.Join(errs...)
}
