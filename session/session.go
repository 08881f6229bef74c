package session

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Session is the live session of one request, as seen by its handler. Its
// methods are safe for concurrent use.
type Session struct {
	m  *Manager
	mu sync.Mutex
	// rec is the store's record as this request knows it, updated by what
	// the request itself writes.
	rec Record
}

func (s *Session) info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.Info
}

// activity returns what touch throttling needs, without copying all of Info.
func (s *Session) activity() (id string, last time.Time, p Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.ID, s.rec.LastActivity, s.rec.Policy
}

func (s *Session) tokenHash() TokenHash {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.TokenHash
}

func (s *Session) renewed(h TokenHash, authAt, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.TokenHash, s.rec.AuthenticatedAt, s.rec.LastActivity = h, authAt, last
}

// Info describes the session: its public ID, user, times, policy and client.
func (s *Session) Info() Info { return s.info() }

// ID is the session's public ID.
func (s *Session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.ID
}

// UserID is the signed-in user.
func (s *Session) UserID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.UserID
}

// IdleRemaining is the time left before the session ends for inactivity, as
// the store has it now (a request's own activity is written after its
// handler, so it is not counted yet unless Extend was called).
func (s *Session) IdleRemaining() time.Duration {
	return s.info().IdleDeadline().Sub(s.m.clock.Now())
}

// AbsoluteRemaining is the time left before the session reaches its absolute
// limit. Activity cannot extend it; only re-authentication can.
func (s *Session) AbsoluteRemaining() time.Duration {
	return s.info().AbsoluteDeadline().Sub(s.m.clock.Now())
}

// Extend counts this moment as activity and writes it to the store at once,
// whatever the touch interval and even in a passive request: it is what a
// "Stay signed in" button calls. It cannot move the absolute deadline. It
// returns ErrNotFound if the session ended meanwhile.
func (s *Session) Extend(ctx context.Context) error {
	return s.touch(ctx, s.m.clock.Now())
}

func (s *Session) touch(ctx context.Context, at time.Time) error {
	info := s.info()
	sctx, cancel := s.m.storeContext(ctx)
	defer cancel()
	err := s.m.store.Touch(sctx, info.ID, at)
	s.m.wrote(ctx, "touch", err)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if at.After(s.rec.LastActivity) {
		s.rec.LastActivity = at
	}
	s.mu.Unlock()
	return nil
}

// Get returns the value stored under key in the session's data.
func (s *Session) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.rec.Data[key]
	return v, ok
}

// Set stores value under key in the session's data, writing to the store at
// once; setting a key to the value it has writes nothing. The data is for
// small values (a preference, a flash message): it is read on every request.
// It returns ErrNotFound if the session ended meanwhile; the write never
// brings an ended session back.
func (s *Session) Set(ctx context.Context, key, value string) error {
	if !validData(key) || !validData(value) {
		return ErrInvalidData
	}
	s.mu.Lock()
	if v, ok := s.rec.Data[key]; ok && v == value {
		s.mu.Unlock()
		return nil
	}
	data := maps.Clone(s.rec.Data)
	if data == nil {
		data = make(map[string]string, 1)
	}
	data[key] = value
	s.mu.Unlock()
	return s.saveData(ctx, data)
}

// Delete removes key from the session's data, writing to the store at once if
// it was there.
func (s *Session) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	if _, ok := s.rec.Data[key]; !ok {
		s.mu.Unlock()
		return nil
	}
	data := maps.Clone(s.rec.Data)
	delete(data, key)
	if len(data) == 0 {
		data = nil
	}
	s.mu.Unlock()
	return s.saveData(ctx, data)
}

// ErrInvalidData is returned by Session.Set for a key or value that is not
// valid UTF-8 or holds a NUL byte, which not every store can keep.
var ErrInvalidData = errors.New("session: data must be valid UTF-8 without NUL bytes")

func validData(s string) bool {
	return utf8.ValidString(s) && !strings.Contains(s, "\x00")
}

func (s *Session) saveData(ctx context.Context, data map[string]string) error {
	sctx, cancel := s.m.storeContext(ctx)
	defer cancel()
	err := s.m.store.SaveData(sctx, s.ID(), data)
	s.m.wrote(ctx, "save_data", err)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.rec.Data = data
	s.mu.Unlock()
	return nil
}
