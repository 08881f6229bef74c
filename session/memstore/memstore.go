// Package memstore keeps sessions in the memory of one process: for tests,
// and for a single instance that can afford to sign everyone out when it
// restarts. It passes the storetest conformance suite like every other store.
//
// Every operation is O(log n) or better except List with an empty user ID,
// which reads every session. Expired sessions are found through a heap
// ordered by deadline, so a sweep costs only what it ends.
package memstore

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
	"unique"

	"github.com/sessionguard/sessionguard/session"
)

// errClosed is returned by every method of a closed Store.
var errClosed = errors.New("memstore: store is closed")

// Store is a session.Store in memory. It is safe for concurrent use. The
// zero value is not usable; call New.
//
// Its methods ignore their context: none waits for anything but a short
// critical section. Times are kept as Unix nanoseconds, so a time outside the
// years 1678 to 2262 is refused with an error, changing nothing.
type Store struct {
	mu     sync.RWMutex
	closed bool
	// byHash finds sessions by token hash. It is keyed by the hash's first
	// 64 bits, with the rare sessions that share them chained through
	// entry.sameKey: a 32-byte key would cost about 35 bytes more per
	// session, and a token hash, being SHA-256 output, needs no rehashing.
	byHash map[uint64]*entry
	byID   map[string]*entry
	// byUser holds each user's oldest session, the way into a circular list
	// of all of that user's sessions, oldest first (see entry.prev).
	byUser    map[string]*entry
	deadlines deadlineHeap // every live session, soonest deadline first
	ended     map[session.TokenHash]endedToken
	retention retentionHeap // ended tokens, soonest KeepUntil first
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		byHash: make(map[uint64]*entry),
		byID:   make(map[string]*entry),
		byUser: make(map[string]*entry),
		ended:  make(map[session.TokenHash]endedToken),
	}
}

// fields are what a Store keeps of a session.Record, in a compact form: a
// memstore holds millions of them. Times are Unix nanoseconds (the contract
// asks only that they compare Equal, so the zone is not kept), the user agent
// is interned (most sessions share a handful of them), and Data is packed into
// one string (see packData). A fields value is never changed in place once
// other goroutines can see it, except under Store.mu.
type fields struct {
	hash                                 session.TokenHash
	id, userID, ip                       string
	userAgent                            unique.Handle[string]
	createdAt, authenticatedAt, lastSeen int64
	idleTimeout, absoluteTimeout         time.Duration
	data                                 string
}

// entry is a live session and its places in the Store's indexes.
type entry struct {
	fields
	// prev and next link the sessions of one user in a circular list ordered
	// by createdAt, so listing a user's sessions needs no sort.
	prev, next *entry
	sameKey    *entry // the next session in the same Store.byHash chain
	heapIndex  int    // position in Store.deadlines
}

// endedToken is what Ended answers for a token whose session ended.
type endedToken struct {
	reason        session.EndReason
	at, keepUntil int64
}

func (t endedToken) ending() session.Ending {
	return session.Ending{Reason: t.reason, At: fromNanos(t.at), KeepUntil: fromNanos(t.keepUntil)}
}

// Create inserts a new record. It returns session.ErrConflict if a live
// record has the same ID or token hash, and an error if one of its times lies
// outside the years 1678 to 2262, which a memstore cannot hold.
func (s *Store) Create(ctx context.Context, rec session.Record) error {
	f := fields{
		hash:            rec.TokenHash,
		id:              rec.ID,
		userID:          rec.UserID,
		ip:              rec.IP,
		userAgent:       unique.Make(rec.UserAgent),
		idleTimeout:     rec.Policy.IdleTimeout,
		absoluteTimeout: rec.Policy.AbsoluteTimeout,
		data:            packData(rec.Data),
	}
	var err error
	if f.createdAt, err = session.UnixNanos("CreatedAt", rec.CreatedAt); err != nil {
		return err
	}
	if f.authenticatedAt, err = session.UnixNanos("AuthenticatedAt", rec.AuthenticatedAt); err != nil {
		return err
	}
	if f.lastSeen, err = session.UnixNanos("LastActivity", rec.LastActivity); err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if _, ok := s.byID[f.id]; ok {
		return fmt.Errorf("%w: session ID %q", session.ErrConflict, f.id)
	}
	if s.lookup(f.hash) != nil {
		return fmt.Errorf("%w: token hash of session %q", session.ErrConflict, f.id)
	}
	e := &entry{fields: f}
	s.byID[e.id] = e
	s.indexHash(e)
	s.linkUser(e)
	heap.Push(&s.deadlines, e)
	return nil
}

// Get returns the live record whose token hashes to h, past its deadline or
// not, or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return session.Record{}, errClosed
	}
	e := s.lookup(h)
	var f fields
	if e != nil {
		f = e.fields
	}
	s.mu.RUnlock()
	if e == nil {
		return session.Record{}, session.ErrNotFound
	}
	return f.record(), nil
}

// Touch moves the record's last activity forward to at. It returns
// session.ErrNotFound, changing nothing, if the record does not exist or its
// deadline is not after at. It costs O(log n): the deadline heap is fixed in
// place.
func (s *Store) Touch(ctx context.Context, id string, at time.Time) error {
	atNanos, err := session.UnixNanos("activity time", at)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	e, ok := s.byID[id]
	if !ok {
		return session.ErrNotFound
	}
	if _, deadline := e.expiry(); deadline <= atNanos {
		return session.ErrNotFound
	}
	if atNanos > e.lastSeen {
		e.lastSeen = atNanos
		heap.Fix(&s.deadlines, e.heapIndex)
	}
	return nil
}

// SaveData replaces the record's data with a copy of data. It returns
// session.ErrNotFound, changing nothing, if the record does not exist.
func (s *Store) SaveData(ctx context.Context, id string, data map[string]string) error {
	packed := packData(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	e, ok := s.byID[id]
	if !ok {
		return session.ErrNotFound
	}
	e.data = packed
	return nil
}

// Renew replaces the record's token hash old with new and sets its
// authentication and activity times. It returns session.ErrNotFound, changing
// nothing, if there is no record with ID id and hash old, and
// session.ErrConflict if another live record has the hash new.
func (s *Store) Renew(ctx context.Context, id string, old, new session.TokenHash, authenticatedAt, lastActivity time.Time) error {
	auth, err := session.UnixNanos("AuthenticatedAt", authenticatedAt)
	if err != nil {
		return err
	}
	seen, err := session.UnixNanos("LastActivity", lastActivity)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	e, ok := s.byID[id]
	if !ok || e.hash != old {
		return session.ErrNotFound
	}
	if other := s.lookup(new); other != nil && other != e {
		return fmt.Errorf("%w: token hash of session %q", session.ErrConflict, other.id)
	}
	s.unindexHash(e)
	e.hash = new
	s.indexHash(e)
	e.authenticatedAt, e.lastSeen = auth, seen
	heap.Fix(&s.deadlines, e.heapIndex)
	return nil
}

// End removes the record with ID id and remembers its token's ending until
// e.KeepUntil. It returns the removed record, or session.ErrNotFound if there
// was none. Of concurrent calls for one record exactly one gets it. An e
// whose times a Store cannot hold is refused before anything ends.
func (s *Store) End(ctx context.Context, id string, e session.Ending) (session.Record, error) {
	tok := endedToken{reason: e.Reason}
	var err error
	if tok.at, err = session.UnixNanos("ending time", e.At); err != nil {
		return session.Record{}, err
	}
	if tok.keepUntil, err = session.UnixNanos("KeepUntil", e.KeepUntil); err != nil {
		return session.Record{}, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return session.Record{}, errClosed
	}
	en, ok := s.byID[id]
	if !ok {
		s.mu.Unlock()
		return session.Record{}, session.ErrNotFound
	}
	s.remove(en)
	heap.Remove(&s.deadlines, en.heapIndex)
	s.keepEnded(en.hash, tok)
	f := en.fields
	s.mu.Unlock()
	return f.record(), nil
}

// EndExpired ends up to limit records whose deadline is at or before now,
// and forgets up to limit ended tokens whose KeepUntil is at or before now.
// It holds the Store's lock for one batch: O(limit log n). A limit below 1 is
// an error, since it would make the batch unbounded.
func (s *Store) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	if limit < 1 {
		return nil, fmt.Errorf("memstore: EndExpired limit must be at least 1, got %d", limit)
	}
	nowNanos := clampNanos(now)
	var expired []fields
	var endings []endedToken
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	for len(expired) < limit && len(s.deadlines) > 0 && s.deadlines[0].deadline() <= nowNanos {
		e := heap.Pop(&s.deadlines).(*entry)
		s.remove(e)
		reason, at := e.expiry()
		tok := endedToken{reason: reason, at: at, keepUntil: addNanos(at, keep)}
		s.keepEnded(e.hash, tok)
		expired = append(expired, e.fields)
		endings = append(endings, tok)
	}
	for range limit {
		if len(s.retention) == 0 || s.retention[0].keepUntil > nowNanos {
			break
		}
		item := heap.Pop(&s.retention).(retentionItem)
		// A token may have ended again after this item was queued (its
		// record re-created): only the item matching its latest ending counts.
		if tok, ok := s.ended[item.hash]; ok && tok.keepUntil == item.keepUntil {
			delete(s.ended, item.hash)
		}
	}
	s.mu.Unlock()

	out := make([]session.Ended, len(expired))
	for i, f := range expired {
		out[i] = session.Ended{Record: f.record(), Ending: endings[i].ending()}
	}
	return out, nil
}

// Ended returns why the session with token hash h ended, or
// session.ErrNotFound if the Store knows nothing of it.
func (s *Store) Ended(ctx context.Context, h session.TokenHash) (session.Ending, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return session.Ending{}, errClosed
	}
	tok, ok := s.ended[h]
	s.mu.RUnlock()
	if !ok {
		return session.Ending{}, session.ErrNotFound
	}
	return tok.ending(), nil
}

// Count returns the number of records (session.CountingStore).
func (s *Store) Count(ctx context.Context) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	return len(s.byID), nil
}

// List returns the live records of userID, or of every user when userID is
// empty, oldest first, at most limit of them (limit <= 0: all of them). One
// user's sessions are read from their own list; every user's are read and
// sorted in full, under a read lock that holds back writers meanwhile.
func (s *Store) List(ctx context.Context, userID string, limit int) ([]session.Record, error) {
	var found []fields
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, errClosed
	}
	if userID != "" {
		if head, ok := s.byUser[userID]; ok {
			for e := head; ; e = e.next {
				found = append(found, e.fields)
				if e.next == head || len(found) == limit {
					break
				}
			}
		}
	} else {
		found = make([]fields, 0, len(s.byID))
		for _, e := range s.byID {
			found = append(found, e.fields)
		}
	}
	s.mu.RUnlock()

	if userID == "" {
		slices.SortFunc(found, func(a, b fields) int {
			if c := cmp.Compare(a.createdAt, b.createdAt); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		})
		if limit > 0 && len(found) > limit {
			found = found[:limit]
		}
	}
	recs := make([]session.Record, len(found))
	for i, f := range found {
		recs[i] = f.record()
	}
	return recs, nil
}

// Ping reports whether the Store is open.
// InMemory tells the Manager that calls never wait on I/O, so it need not
// bound them with a timer (session.InMemoryStore).
func (s *Store) InMemory() {}

func (s *Store) Ping(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed
	}
	return nil
}

// Close drops every session and ended token. Later calls to any method but
// Close fail; Close itself may be called again and returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.byHash, s.byID, s.byUser, s.ended = nil, nil, nil, nil
	s.deadlines, s.retention = nil, nil
	return nil
}

// remove takes e out of the hash, ID and user indexes; the caller removes it
// from the deadline heap.
func (s *Store) remove(e *entry) {
	s.unindexHash(e)
	delete(s.byID, e.id)
	s.unlinkUser(e)
}

// keepEnded remembers tok as the ending of the token hashing to h.
func (s *Store) keepEnded(h session.TokenHash, tok endedToken) {
	s.ended[h] = tok
	heap.Push(&s.retention, retentionItem{keepUntil: tok.keepUntil, hash: h})
}

// hashKey is the Store.byHash key of h.
func hashKey(h session.TokenHash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// lookup returns the live session with token hash h, or nil.
func (s *Store) lookup(h session.TokenHash) *entry {
	for e := s.byHash[hashKey(h)]; e != nil; e = e.sameKey {
		if e.hash == h {
			return e
		}
	}
	return nil
}

// indexHash adds e to the hash index under e.hash.
func (s *Store) indexHash(e *entry) {
	k := hashKey(e.hash)
	e.sameKey = s.byHash[k]
	s.byHash[k] = e
}

// unindexHash takes e out of the hash index.
func (s *Store) unindexHash(e *entry) {
	k := hashKey(e.hash)
	if first := s.byHash[k]; first == e {
		if e.sameKey == nil {
			delete(s.byHash, k)
		} else {
			s.byHash[k] = e.sameKey
		}
	} else {
		for first.sameKey != e {
			first = first.sameKey
		}
		first.sameKey = e.sameKey
	}
	e.sameKey = nil
}

// linkUser adds e to its user's list, after every session created no later.
func (s *Store) linkUser(e *entry) {
	head, ok := s.byUser[e.userID]
	if !ok {
		e.prev, e.next = e, e
		s.byUser[e.userID] = e
		return
	}
	// One copy of the user ID serves all of the user's sessions.
	e.userID = head.userID
	// New sessions are usually the newest: search from the tail.
	after := head.prev
	for after.createdAt > e.createdAt && after != head {
		after = after.prev
	}
	if after == head && head.createdAt > e.createdAt {
		// Older than every session of the user: e becomes the head.
		after = head.prev
		s.byUser[e.userID] = e
	}
	e.prev, e.next = after, after.next
	after.next.prev = e
	after.next = e
}

// unlinkUser takes e out of its user's list.
func (s *Store) unlinkUser(e *entry) {
	if e.next == e {
		delete(s.byUser, e.userID)
	} else {
		e.prev.next, e.next.prev = e.next, e.prev
		if s.byUser[e.userID] == e {
			s.byUser[e.userID] = e.next
		}
	}
	e.prev, e.next = nil, nil
}

// expiry returns how and when the session ends if nothing else ends it
// first, as session.Info.Expiry does, in Unix nanoseconds.
func (f *fields) expiry() (session.EndReason, int64) {
	idle := addNanos(f.lastSeen, f.idleTimeout)
	abs := addNanos(f.authenticatedAt, f.absoluteTimeout)
	if abs <= idle {
		return session.ReasonAbsolute, abs
	}
	return session.ReasonIdle, idle
}

// deadline is the instant from which the session is expired.
func (f *fields) deadline() int64 {
	_, at := f.expiry()
	return at
}

// record returns f as a session.Record, with fresh Data the caller may change.
func (f *fields) record() session.Record {
	return session.Record{
		Info: session.Info{
			ID:              f.id,
			UserID:          f.userID,
			CreatedAt:       fromNanos(f.createdAt),
			AuthenticatedAt: fromNanos(f.authenticatedAt),
			LastActivity:    fromNanos(f.lastSeen),
			Policy:          session.Policy{IdleTimeout: f.idleTimeout, AbsoluteTimeout: f.absoluteTimeout},
			IP:              f.ip,
			UserAgent:       f.userAgent.Value(),
		},
		TokenHash: f.hash,
		Data:      unpackData(f.data),
	}
}

// clampNanos returns t in Unix nanoseconds, clamped to the range an int64
// holds; for a sweep's "now", where only order matters.
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(session.MinStoreTime):
		return math.MinInt64
	case t.After(session.MaxStoreTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// addNanos returns t+d, saturating at the int64 bounds rather than wrapping,
// so that a huge timeout means "never" instead of "long ago".
func addNanos(t int64, d time.Duration) int64 {
	switch {
	case d > 0 && t > math.MaxInt64-int64(d):
		return math.MaxInt64
	case d < 0 && t < math.MinInt64-int64(d):
		return math.MinInt64
	}
	return t + int64(d)
}
