package storetest_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// refDB is the smallest store that keeps the contract: a map and a mutex.
// It is the "database" of refStore handles, so that the suite's reopen and
// second-handle groups run on it too.
type refDB struct {
	mu     sync.Mutex
	byID   map[string]*session.Record
	byHash map[session.TokenHash]*session.Record
	ended  map[session.TokenHash]session.Ending
}

// refStore is one handle on a refDB, as one process's connection.
type refStore struct {
	db     *refDB
	closed atomic.Bool
}

var errClosed = errors.New("refstore: closed")

func newRefStore() *refStore {
	return &refStore{db: &refDB{
		byID:   make(map[string]*session.Record),
		byHash: make(map[session.TokenHash]*session.Record),
		ended:  make(map[session.TokenHash]session.Ending),
	}}
}

// lock locks the database unless the handle is closed.
func (s *refStore) lock() (*refDB, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	s.db.mu.Lock()
	return s.db, nil
}

// clone copies rec, so that no caller shares the stored Data map.
func clone(rec session.Record) session.Record {
	rec.Data = maps.Clone(rec.Data)
	return rec
}

func (s *refStore) Create(ctx context.Context, rec session.Record) error {
	db, err := s.lock()
	if err != nil {
		return err
	}
	defer db.mu.Unlock()
	if db.byID[rec.ID] != nil || db.byHash[rec.TokenHash] != nil {
		return session.ErrConflict
	}
	rec = clone(rec)
	db.byID[rec.ID], db.byHash[rec.TokenHash] = &rec, &rec
	return nil
}

func (s *refStore) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	db, err := s.lock()
	if err != nil {
		return session.Record{}, err
	}
	defer db.mu.Unlock()
	rec := db.byHash[h]
	if rec == nil {
		return session.Record{}, session.ErrNotFound
	}
	return clone(*rec), nil
}

func (s *refStore) Touch(ctx context.Context, id string, at time.Time, exp session.Expiry) error {
	db, err := s.lock()
	if err != nil {
		return err
	}
	defer db.mu.Unlock()
	rec := db.byID[id]
	if rec == nil || !rec.Expires.At.After(at) {
		return session.ErrNotFound
	}
	if at.After(rec.LastActivity) {
		rec.LastActivity = at
	}
	if exp.At.After(rec.Expires.At) {
		rec.Expires = exp
	}
	return nil
}

func (s *refStore) SaveData(ctx context.Context, id string, old, data map[string]string) error {
	db, err := s.lock()
	if err != nil {
		return err
	}
	defer db.mu.Unlock()
	rec := db.byID[id]
	switch {
	case rec == nil:
		return session.ErrNotFound
	case !maps.Equal(rec.Data, old): // nil and empty are equal here
		return session.ErrStale
	}
	rec.Data = maps.Clone(data)
	return nil
}

func (s *refStore) Renew(ctx context.Context, id string, old, new session.TokenHash, r session.Renewal) error {
	db, err := s.lock()
	if err != nil {
		return err
	}
	defer db.mu.Unlock()
	rec := db.byID[id]
	switch {
	case rec == nil || rec.TokenHash != old:
		return session.ErrNotFound
	case db.byHash[new] != nil && new != old:
		return session.ErrConflict
	}
	delete(db.byHash, old)
	rec.TokenHash, db.byHash[new] = new, rec
	rec.AuthenticatedAt, rec.LastActivity, rec.Expires = r.AuthenticatedAt, r.LastActivity, r.Expires
	return nil
}

func (s *refStore) End(ctx context.Context, id string, e session.Ending) (session.Record, error) {
	db, err := s.lock()
	if err != nil {
		return session.Record{}, err
	}
	defer db.mu.Unlock()
	return db.end(id, e)
}

// end removes the record with ID id and keeps its ending. The caller holds
// db.mu.
func (db *refDB) end(id string, e session.Ending) (session.Record, error) {
	rec := db.byID[id]
	if rec == nil {
		return session.Record{}, session.ErrNotFound
	}
	delete(db.byID, id)
	delete(db.byHash, rec.TokenHash)
	db.ended[rec.TokenHash] = e
	return *rec, nil
}

func (s *refStore) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	db, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer db.mu.Unlock()
	var out []session.Ended
	for id, rec := range db.byID {
		if len(out) == limit {
			break
		}
		if !rec.Expires.At.After(now) {
			e := session.Ending{Reason: rec.Expires.Reason, At: rec.Expires.At, KeepUntil: rec.Expires.At.Add(keep)}
			ended, _ := db.end(id, e)
			out = append(out, session.Ended{Record: ended, Ending: e})
		}
	}
	forgotten := 0
	for h, e := range db.ended {
		if forgotten == limit {
			break
		}
		if !e.KeepUntil.After(now) {
			delete(db.ended, h)
			forgotten++
		}
	}
	return out, nil
}

func (s *refStore) Ended(ctx context.Context, h session.TokenHash) (session.Ending, error) {
	db, err := s.lock()
	if err != nil {
		return session.Ending{}, err
	}
	defer db.mu.Unlock()
	e, ok := db.ended[h]
	if !ok {
		return session.Ending{}, session.ErrNotFound
	}
	return e, nil
}

func (s *refStore) List(ctx context.Context, userID string, limit int) ([]session.Record, error) {
	db, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer db.mu.Unlock()
	var out []session.Record
	for _, rec := range db.byID {
		if userID == "" || rec.UserID == userID {
			out = append(out, clone(*rec))
		}
	}
	slices.SortFunc(out, func(a, b session.Record) int { return a.CreatedAt.Compare(b.CreatedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *refStore) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

func (s *refStore) Close() error {
	s.closed.Store(true)
	return nil
}

// handle opens another handle on the database of s, as a second process or
// a restart would.
func handle(t testing.TB, s session.Store) session.Store {
	return &refStore{db: s.(*refStore).db}
}

func TestReferenceStore(t *testing.T) {
	storetest.Run(t, func(t testing.TB) session.Store { return newRefStore() },
		storetest.WithReopen(func(t testing.TB, s session.Store) session.Store {
			s.Close()
			return handle(t, s)
		}),
		storetest.WithSecondHandle(handle))
}
