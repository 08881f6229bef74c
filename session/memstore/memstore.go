// Package memstore keeps sessions in the memory of one process: for tests,
// and for a single instance that can afford to sign everyone out when it
// restarts. It passes the storetest conformance suite like every other store.
//
// Every operation is O(log n) or better except List with an empty user ID,
// which reads every session. Expired sessions are found through a heap
// ordered by expiry, so a sweep costs only what it ends.
package memstore

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
	"unique"

	"github.com/sessionguard/sessionguard/session"
)

// errClosed is returned by every method of a closed Store.
var errClosed = errors.New("memstore: store is closed")

// sweepChunk is how many sessions EndExpired ends, and how many ended
// tokens it forgets, under one hold of the lock. Requests wait for the lock
// while it is held: 64 sessions of a million take about a tenth of a
// millisecond, where a batch of 500 under one hold took one or two.
const sweepChunk = 64

// Store is a session.Store in memory. It is safe for concurrent use. The
// zero value is not usable; call New.
//
// Its methods ignore their context: none waits for anything but a short
// critical section. Times are kept as Unix nanoseconds, so a time outside the
// years 1678 to 2262 is refused with an error, changing nothing.
type Store struct {
	mu     sync.RWMutex
	closed bool
	// index finds live sessions by token hash, by ID, and each user's
	// oldest session, the way into a circular list of all of that user's
	// sessions, oldest first (see entry.prev). See chainedIndex for why
	// these are not Go maps.
	index     [indexCount]chainedIndex
	seed      maphash.Seed // of the ID and user ID hashes
	expiries  expiryHeap   // every live session, soonest expiry first
	ended     map[session.TokenHash]endedToken
	retention retentionHeap // ended tokens, soonest KeepUntil first
	// reasons interns the reasons of ended tokens, which endedToken holds
	// as their position here: the Manager uses a handful of them.
	reasons     []session.EndReason
	reasonCodes map[session.EndReason]uint32
}

// New returns an empty Store.
func New() *Store {
	s := &Store{
		seed:        maphash.MakeSeed(),
		ended:       make(map[session.TokenHash]endedToken),
		reasonCodes: make(map[session.EndReason]uint32),
	}
	s.index[byHash] = chainedIndex{link: byHash, hashOf: func(e *entry) uint64 { return hashKey(e.hash) }}
	s.index[byID] = chainedIndex{link: byID, hashOf: func(e *entry) uint64 { return s.hashString(e.id()) }}
	s.index[byUser] = chainedIndex{link: byUser, hashOf: func(e *entry) uint64 { return s.hashString(e.userID()) }}
	return s
}

// entry is a live session, in a compact form: a memstore holds millions of
// them, and this one fits the allocator's 144-byte size class.
//
// Its strings (ID, user ID, IP, and Data packed by packData) are one string,
// text: one allocation instead of four, from which Get hands out substrings
// without copying. Times are Unix nanoseconds (the contract asks only that
// they compare Equal, so the zone is not kept). What rarely changes (user
// agent, policy, Persistent, the reason of the expiry) is interned as one
// value: most sessions share a handful of them.
//
// An entry's fields change only under Store.mu; readers copy it under the
// read lock.
type entry struct {
	hash session.TokenHash
	text string
	// idEnd, userEnd and ipEnd are where the ID, user ID and IP end in
	// text; the packed data follows.
	idEnd, userEnd, ipEnd                uint32
	heapIndex                            int32 // position in Store.expiries
	meta                                 unique.Handle[meta]
	createdAt, authenticatedAt, lastSeen int64
	expiresAt                            int64
	// prev and next link the sessions of one user in a circular list ordered
	// by createdAt, so listing a user's sessions needs no sort.
	prev, next *entry
	// links chain the entry to the next in its bucket of each index (only
	// a user's oldest session is in the user index).
	links [indexCount]*entry
}

func (e *entry) id() string     { return e.text[:e.idEnd] }
func (e *entry) userID() string { return e.text[e.idEnd:e.userEnd] }
func (e *entry) ip() string     { return e.text[e.userEnd:e.ipEnd] }
func (e *entry) data() string   { return e.text[e.ipEnd:] }

// meta is the part of a session that few sessions differ in.
type meta struct {
	userAgent  string
	policy     session.Policy
	persistent bool
	// expiryReason is the reason of the session's expiry, which a touch
	// rarely changes (from idle to absolute, once, near the end).
	expiryReason session.EndReason
}

// setExpiryReason sets the reason of e's expiry, interning anew only when it
// changes.
func (e *entry) setExpiryReason(reason session.EndReason) {
	if m := e.meta.Value(); m.expiryReason != reason {
		m.expiryReason = reason
		e.meta = unique.Make(m)
	}
}

// endedToken is what Ended answers for a token whose session ended. It
// holds no pointer (its reason is a position in Store.reasons), so that the
// garbage collector need not scan Store.ended: after a sweep of a million
// sessions it holds a million tokens for a day.
type endedToken struct {
	at, keepUntil int64
	reason        uint32
}

// ending returns tok as Ended answers it. The caller holds s.mu.
func (s *Store) ending(tok endedToken) session.Ending {
	return session.Ending{Reason: s.reasons[tok.reason], At: fromNanos(tok.at), KeepUntil: fromNanos(tok.keepUntil)}
}

// Create inserts a new record. It returns session.ErrConflict if a live
// record has the same ID or token hash, and an error if one of its times lies
// outside the years 1678 to 2262, which a memstore cannot hold.
func (s *Store) Create(ctx context.Context, rec session.Record) error {
	text := rec.ID + rec.UserID + rec.IP + packData(rec.Data)
	if uint64(len(text)) > math.MaxUint32 {
		return fmt.Errorf("memstore: session %.40q: ID, user ID, IP and data exceed 4 GiB", rec.ID)
	}
	e := &entry{
		hash:    rec.TokenHash,
		text:    text,
		idEnd:   uint32(len(rec.ID)),
		userEnd: uint32(len(rec.ID) + len(rec.UserID)),
		ipEnd:   uint32(len(rec.ID) + len(rec.UserID) + len(rec.IP)),
		meta: unique.Make(meta{
			userAgent:    rec.UserAgent,
			policy:       rec.Policy,
			persistent:   rec.Persistent,
			expiryReason: rec.Expires.Reason,
		}),
	}
	var err error
	if e.createdAt, err = session.UnixNanos("CreatedAt", rec.CreatedAt); err != nil {
		return err
	}
	if e.authenticatedAt, err = session.UnixNanos("AuthenticatedAt", rec.AuthenticatedAt); err != nil {
		return err
	}
	if e.lastSeen, err = session.UnixNanos("LastActivity", rec.LastActivity); err != nil {
		return err
	}
	if e.expiresAt, err = session.UnixNanos("Expires.At", rec.Expires.At); err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.findID(rec.ID) != nil {
		return fmt.Errorf("%w: session ID %q", session.ErrConflict, rec.ID)
	}
	if s.lookup(e.hash) != nil {
		return fmt.Errorf("%w: token hash of session %q", session.ErrConflict, rec.ID)
	}
	s.index[byID].insert(e, s.hashString(rec.ID))
	s.index[byHash].insert(e, hashKey(e.hash))
	s.linkUser(e)
	heap.Push(&s.expiries, e)
	return nil
}

// Get returns the live record whose token hashes to h, past its expiry or
// not, or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return session.Record{}, errClosed
	}
	e := s.lookup(h)
	var found entry
	if e != nil {
		found = *e
	}
	s.mu.RUnlock()
	if e == nil {
		return session.Record{}, session.ErrNotFound
	}
	return found.record(), nil
}

// Touch records activity at at: LastActivity becomes the later of its
// stored value and at, and the expiry becomes exp if exp is later. It returns
// session.ErrNotFound, changing nothing, if the record does not exist or its
// expiry is not after at. It costs O(log n): the expiry heap is fixed in
// place.
func (s *Store) Touch(ctx context.Context, id string, at time.Time, exp session.Expiry) error {
	atNanos, err := session.UnixNanos("activity time", at)
	if err != nil {
		return err
	}
	expNanos, err := session.UnixNanos("Expires.At", exp.At)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	e := s.findID(id)
	if e == nil || e.expiresAt <= atNanos {
		return session.ErrNotFound
	}
	e.lastSeen = max(e.lastSeen, atNanos)
	if expNanos > e.expiresAt {
		e.expiresAt = expNanos
		e.setExpiryReason(exp.Reason)
		heap.Fix(&s.expiries, int(e.heapIndex))
	}
	return nil
}

// SaveData replaces the record's data with a copy of data if its data is
// still old. It returns session.ErrStale, changing nothing, if it is not,
// and session.ErrNotFound if the record does not exist.
func (s *Store) SaveData(ctx context.Context, id string, old, data map[string]string) error {
	packed := packData(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	e := s.findID(id)
	if e == nil {
		return session.ErrNotFound
	}
	if !packedEqual(e.data(), old) {
		return session.ErrStale
	}
	if uint64(e.ipEnd)+uint64(len(packed)) > math.MaxUint32 {
		return fmt.Errorf("memstore: session %.40q: data exceeds 4 GiB", id)
	}
	// A new string, not a change to the old one: readers may hold
	// substrings of it.
	e.text = e.text[:e.ipEnd] + packed
	return nil
}

// Renew replaces the record's token hash old with new and sets its
// authentication and activity times and its expiry to r's. It returns
// session.ErrNotFound, changing nothing, if there is no record with ID id and
// hash old, and session.ErrConflict if another live record has the hash new.
func (s *Store) Renew(ctx context.Context, id string, old, new session.TokenHash, r session.Renewal) error {
	auth, err := session.UnixNanos("AuthenticatedAt", r.AuthenticatedAt)
	if err != nil {
		return err
	}
	seen, err := session.UnixNanos("LastActivity", r.LastActivity)
	if err != nil {
		return err
	}
	expires, err := session.UnixNanos("Expires.At", r.Expires.At)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	e := s.findID(id)
	if e == nil || e.hash != old {
		return session.ErrNotFound
	}
	if other := s.lookup(new); other != nil && other != e {
		return fmt.Errorf("%w: token hash of session %q", session.ErrConflict, other.id())
	}
	s.index[byHash].remove(e, hashKey(e.hash))
	e.hash = new
	s.index[byHash].insert(e, hashKey(e.hash))
	e.authenticatedAt, e.lastSeen, e.expiresAt = auth, seen, expires
	e.setExpiryReason(r.Expires.Reason)
	heap.Fix(&s.expiries, int(e.heapIndex))
	return nil
}

// End removes the record with ID id and remembers its token's ending until
// e.KeepUntil. It returns the removed record, or session.ErrNotFound if there
// was none. Of concurrent calls for one record exactly one gets it. An e
// whose times a Store cannot hold is refused before anything ends.
func (s *Store) End(ctx context.Context, id string, e session.Ending) (session.Record, error) {
	var tok endedToken
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
	en := s.findID(id)
	if en == nil {
		s.mu.Unlock()
		return session.Record{}, session.ErrNotFound
	}
	s.remove(en)
	heap.Remove(&s.expiries, int(en.heapIndex))
	tok.reason = s.reasonCode(e.Reason)
	s.keepEnded(en.hash, tok)
	s.mu.Unlock()
	// No one else can reach en any more, so it is read without the lock.
	return en.record(), nil
}

// EndExpired ends up to limit records whose expiry is at or before now,
// and forgets up to limit ended tokens whose KeepUntil is at or before now.
// A limit below 1 is an error, since it would make the batch unbounded.
//
// It works in chunks of sweepChunk under the lock, O(sweepChunk log n)
// each, and lets other goroutines run between chunks, so that a sweep of a
// million sessions delays requests by a chunk at a time rather than by a
// whole batch.
func (s *Store) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	if limit < 1 {
		return nil, fmt.Errorf("memstore: EndExpired limit must be at least 1, got %d", limit)
	}
	nowNanos := clampNanos(now)
	expired := make([]*entry, 0, min(limit, 1024))
	forgotten := 0
	var err error
	for {
		endChunk := min(sweepChunk, limit-len(expired))
		forgetChunk := min(sweepChunk, limit-forgotten)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			err = errClosed
			break
		}
		before := len(expired)
		expired = s.endExpired(expired, nowNanos, keep, endChunk)
		forgot := s.forgetEnded(nowNanos, forgetChunk)
		s.mu.Unlock()
		forgotten += forgot
		moreToEnd := len(expired)-before == endChunk && len(expired) < limit
		moreToForget := forgot == forgetChunk && forgotten < limit
		if !moreToEnd && !moreToForget {
			break
		}
		// The lock is free now, but this goroutine still holds its
		// processor: on a machine of few cores, requests ready to run
		// would wait for the scheduler to preempt the sweep, up to 10ms.
		runtime.Gosched()
	}
	if len(expired) == 0 {
		return nil, err
	}
	// The ended entries are in no index any more, so no one else can reach
	// them: they are read without the lock.
	out := make([]session.Ended, len(expired))
	for i, e := range expired {
		rec := e.record()
		ending := session.Ending{Reason: rec.Expires.Reason, At: rec.Expires.At, KeepUntil: fromNanos(addNanos(e.expiresAt, keep))}
		out[i] = session.Ended{Record: rec, Ending: ending}
	}
	return out, err
}

// endExpired ends up to n sessions whose expiry is at or before now,
// appending them to expired. The caller holds s.mu.
func (s *Store) endExpired(expired []*entry, now int64, keep time.Duration, n int) []*entry {
	for range n {
		e := s.expiries.first()
		if e == nil || e.expiresAt > now {
			break
		}
		heap.Pop(&s.expiries)
		s.remove(e)
		at := e.expiresAt
		s.keepEnded(e.hash, endedToken{reason: s.reasonCode(e.meta.Value().expiryReason), at: at, keepUntil: addNanos(at, keep)})
		expired = append(expired, e)
	}
	return expired
}

// forgetEnded forgets up to n ended tokens whose KeepUntil is at or before
// now, and returns how many it looked at. The caller holds s.mu.
func (s *Store) forgetEnded(now int64, n int) int {
	looked := 0
	for ; looked < n; looked++ {
		if item, ok := s.retention.first(); !ok || item.keepUntil > now {
			break
		}
		item := s.retention.removeFirst()
		// A token may have ended again after this item was queued (its
		// record re-created): only the item matching its latest ending counts.
		if tok, ok := s.ended[item.hash]; ok && tok.keepUntil == item.keepUntil {
			delete(s.ended, item.hash)
		}
	}
	return looked
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
	var ending session.Ending
	if ok {
		ending = s.ending(tok)
	}
	s.mu.RUnlock()
	if !ok {
		return session.Ending{}, session.ErrNotFound
	}
	return ending, nil
}

// Count returns the number of records (session.CountingStore).
func (s *Store) Count(ctx context.Context) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	return s.index[byID].n, nil
}

// List returns the live records of userID, or of every user when userID is
// empty, oldest first, at most limit of them (limit <= 0: all of them). One
// user's sessions are read from their own list; every user's are read and
// sorted in full, under a read lock that holds back writers meanwhile.
func (s *Store) List(ctx context.Context, userID string, limit int) ([]session.Record, error) {
	var found []entry
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, errClosed
	}
	if userID != "" {
		if head := s.findUser(userID); head != nil {
			for e := head; ; e = e.next {
				found = append(found, *e)
				if e.next == head || len(found) == limit {
					break
				}
			}
		}
	} else {
		found = make([]entry, 0, s.index[byID].n)
		s.index[byID].all(func(e *entry) bool {
			found = append(found, *e)
			return true
		})
	}
	s.mu.RUnlock()

	if userID == "" {
		slices.SortFunc(found, func(a, b entry) int {
			if c := cmp.Compare(a.createdAt, b.createdAt); c != 0 {
				return c
			}
			return cmp.Compare(a.id(), b.id())
		})
		if limit > 0 && len(found) > limit {
			found = found[:limit]
		}
	}
	recs := make([]session.Record, len(found))
	for i := range found {
		recs[i] = found[i].record()
	}
	return recs, nil
}

// InMemory tells the Manager that calls never wait on I/O, so it need not
// bound them with a timer (session.InMemoryStore).
func (s *Store) InMemory() {}

// SweepBatch asks the Manager's sweep for calls of one chunk, sweepChunk
// sessions (session.SweepBatcher): each call runs on the sweeping
// goroutine's core from start to end, about 0.2ms at this size.
func (s *Store) SweepBatch() int { return sweepChunk }

// Ping reports whether the Store is open.
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
	for i := range s.index {
		s.index[i] = chainedIndex{}
	}
	s.ended = nil
	s.expiries, s.retention = expiryHeap{}, retentionHeap{}
	return nil
}

// remove takes e out of the hash, ID and user indexes; the caller removes it
// from the expiry heap.
func (s *Store) remove(e *entry) {
	s.index[byHash].remove(e, hashKey(e.hash))
	s.index[byID].remove(e, s.hashString(e.id()))
	s.unlinkUser(e)
}

// reasonCode returns the position of reason in s.reasons, adding it if
// new. The caller holds s.mu for writing.
func (s *Store) reasonCode(reason session.EndReason) uint32 {
	code, ok := s.reasonCodes[reason]
	if !ok {
		code = uint32(len(s.reasons))
		s.reasons = append(s.reasons, reason)
		s.reasonCodes[reason] = code
	}
	return code
}

// keepEnded remembers tok as the ending of the token hashing to h.
func (s *Store) keepEnded(h session.TokenHash, tok endedToken) {
	s.ended[h] = tok
	s.retention.add(retentionItem{keepUntil: tok.keepUntil, hash: h})
}

// hashKey is the hash of h in the hash index: its first 64 bits. A token
// hash, being SHA-256 output, needs no rehashing.
func hashKey(h session.TokenHash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// hashString is the hash of an ID or user ID in their indexes. It is
// seeded per Store, so that no one can choose IDs that share a bucket.
func (s *Store) hashString(str string) uint64 { return maphash.String(s.seed, str) }

// lookup returns the live session with token hash h, or nil.
func (s *Store) lookup(h session.TokenHash) *entry {
	return s.index[byHash].find(hashKey(h), func(e *entry) bool { return e.hash == h })
}

// findID returns the live session with ID id, or nil.
func (s *Store) findID(id string) *entry {
	return s.index[byID].find(s.hashString(id), func(e *entry) bool { return e.id() == id })
}

// findUser returns the oldest live session of userID, or nil.
func (s *Store) findUser(userID string) *entry {
	return s.index[byUser].find(s.hashString(userID), func(e *entry) bool { return e.userID() == userID })
}

// linkUser adds e to its user's list, after every session created no later.
func (s *Store) linkUser(e *entry) {
	h := s.hashString(e.userID())
	head := s.findUser(e.userID())
	if head == nil {
		e.prev, e.next = e, e
		s.index[byUser].insert(e, h)
		return
	}
	// New sessions are usually the newest: search from the tail.
	after := head.prev
	for after.createdAt > e.createdAt && after != head {
		after = after.prev
	}
	if after == head && head.createdAt > e.createdAt {
		// Older than every session of the user: e becomes the head.
		after = head.prev
		s.index[byUser].remove(head, h)
		s.index[byUser].insert(e, h)
	}
	e.prev, e.next = after, after.next
	after.next.prev = e
	after.next = e
}

// unlinkUser takes e out of its user's list.
func (s *Store) unlinkUser(e *entry) {
	h := s.hashString(e.userID())
	if e.next == e {
		s.index[byUser].remove(e, h)
	} else {
		if s.findUser(e.userID()) == e {
			// The next oldest becomes the head.
			s.index[byUser].remove(e, h)
			s.index[byUser].insert(e.next, h)
		}
		e.prev.next, e.next.prev = e.next, e.prev
	}
	e.prev, e.next = nil, nil
}

// record returns e as a session.Record, with fresh Data the caller may change.
func (e *entry) record() session.Record {
	m := e.meta.Value()
	return session.Record{
		Info: session.Info{
			ID:              e.id(),
			UserID:          e.userID(),
			CreatedAt:       fromNanos(e.createdAt),
			AuthenticatedAt: fromNanos(e.authenticatedAt),
			LastActivity:    fromNanos(e.lastSeen),
			Policy:          m.policy,
			IP:              e.ip(),
			UserAgent:       m.userAgent,
			Expires:         session.Expiry{At: fromNanos(e.expiresAt), Reason: m.expiryReason},
			Persistent:      m.persistent,
		},
		TokenHash: e.hash,
		Data:      unpackData(e.data()),
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
