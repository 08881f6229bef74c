package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Session is the session of one request, as seen by its handler: signed in,
// or anonymous (started by Manager.Start). Its methods are safe for
// concurrent use.
//
// A nil *Session, which FromContext returns for a request without one, is
// safe to use: it reads as empty (no ID, no user, no data) and its writes
// return ErrNoSession. A handler that needs a signed-in user should sit
// behind Require, or check SignedIn.
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

func (s *Session) renewed(h TokenHash, r Renewal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.TokenHash, s.rec.AuthenticatedAt, s.rec.LastActivity, s.rec.Expires =
		h, r.AuthenticatedAt, r.LastActivity, r.Expires
}

// Info describes the session: its public ID, user, times, policy and client.
func (s *Session) Info() Info {
	if s == nil {
		return Info{}
	}
	return s.info()
}

// ID is the session's public ID; "" for a nil Session.
func (s *Session) ID() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.ID
}

// UserID is the signed-in user; "" for an anonymous or a nil Session.
func (s *Session) UserID() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.UserID
}

// SignedIn reports whether the session belongs to a signed-in user: false
// for an anonymous or a nil Session.
func (s *Session) SignedIn() bool { return s.UserID() != "" }

// IdleRemaining is the time left before the session ends for inactivity, as
// the store has it now (a request's own activity is written after its
// handler, so it is not counted yet unless Extend was called). It is zero
// for a nil Session.
func (s *Session) IdleRemaining() time.Duration {
	if s == nil {
		return 0
	}
	return s.info().IdleDeadline().Sub(s.m.clock.Now())
}

// AbsoluteRemaining is the time left before the session reaches its absolute
// limit. Activity cannot extend it; only re-authentication can. It is zero
// for a nil Session.
func (s *Session) AbsoluteRemaining() time.Duration {
	if s == nil {
		return 0
	}
	return s.info().AbsoluteDeadline().Sub(s.m.clock.Now())
}

// Extend counts this moment as activity and writes it to the store at once,
// whatever the touch interval and even in a passive request: it is what a
// "Stay signed in" button calls. It cannot move the absolute deadline. It
// returns ErrNotFound if the session ended meanwhile.
func (s *Session) Extend(ctx context.Context) error {
	if s == nil {
		return ErrNoSession
	}
	return s.touch(ctx, s.m.clock.Now())
}

func (s *Session) touch(ctx context.Context, at time.Time) error {
	info := s.info()
	exp := expiryOf(info.Policy, info.AuthenticatedAt, at)
	sctx, cancel := s.m.storeContext(ctx)
	defer cancel()
	err := s.m.store.Touch(sctx, info.ID, at, exp)
	s.m.wrote(ctx, "touch", err)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if at.After(s.rec.LastActivity) {
		s.rec.LastActivity = at
	}
	if exp.At.After(s.rec.Expires.At) {
		s.rec.Expires = exp
	}
	s.mu.Unlock()
	return nil
}

// ErrInvalidData is returned by Session.Set for a key or value that is not
// valid UTF-8 or holds a NUL byte, which not every store can keep.
var ErrInvalidData = errors.New("session: data must be valid UTF-8 without NUL bytes")

// ErrTooLarge is returned by a write that would make a session's data larger
// than Config.MaxDataBytes. The data is read on every request of the
// session, so it is for small values: keep large ones in the application's
// own database, under a key the session holds.
var ErrTooLarge = errors.New("session: data too large")

func validData(s string) bool {
	return utf8.ValidString(s) && !strings.Contains(s, "\x00")
}

// dataSize is what MaxDataBytes bounds: the bytes of every key and value.
func dataSize(data map[string]string) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// Get returns the value stored under key in the session's data.
func (s *Session) Get(key string) (string, bool) {
	if s == nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.rec.Data[key]
	return v, ok
}

// Exists reports whether the session's data holds key.
func (s *Session) Exists(key string) bool {
	_, ok := s.Get(key)
	return ok
}

// Keys returns the keys of the session's data, sorted.
func (s *Session) Keys() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.rec.Data))
}

// Set stores value under key in the session's data, writing to the store at
// once; setting a key to the value it has writes nothing. Requests of the
// same session may set different keys at the same time: each keeps its own.
// It returns ErrNotFound if the session ended meanwhile (the write never
// brings an ended session back), or if another request of the session
// renewed its token while this one was writing (rare: try again on the next
// request), ErrTooLarge if the data would exceed
// Config.MaxDataBytes, and ErrInvalidData for text a store cannot keep.
func (s *Session) Set(ctx context.Context, key, value string) error {
	if !validData(key) || !validData(value) {
		return ErrInvalidData
	}
	return s.change(ctx, func(data map[string]string) bool {
		if v, ok := data[key]; ok && v == value {
			return false
		}
		data[key] = value
		return true
	})
}

// Delete removes key from the session's data, writing to the store at once if
// it was there.
func (s *Session) Delete(ctx context.Context, key string) error {
	return s.change(ctx, func(data map[string]string) bool {
		if _, ok := data[key]; !ok {
			return false
		}
		delete(data, key)
		return true
	})
}

// Pop returns the value under key and removes it, in one write: a flash
// message shown once. Of two requests popping the same key at once, only one
// gets the value. It returns false, writing nothing, if key is absent.
func (s *Session) Pop(ctx context.Context, key string) (string, bool, error) {
	var value string
	var found bool
	err := s.change(ctx, func(data map[string]string) bool {
		value, found = data[key]
		delete(data, key)
		return found
	})
	if err != nil {
		return "", false, err
	}
	return value, found, nil
}

// Clear removes every key of the session's data. The session itself stays
// signed in; Logout ends it.
func (s *Session) Clear(ctx context.Context) error {
	return s.change(ctx, func(data map[string]string) bool {
		if len(data) == 0 {
			return false
		}
		clear(data)
		return true
	})
}

// SetInt stores n under key, in decimal.
func (s *Session) SetInt(ctx context.Context, key string, n int64) error {
	return s.Set(ctx, key, strconv.FormatInt(n, 10))
}

// Int returns the integer stored under key by SetInt. It returns false if
// key is absent or does not hold an integer.
func (s *Session) Int(key string) (int64, bool) {
	v, ok := s.Get(key)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// SetTime stores t under key, in RFC 3339 with nanoseconds, so it reads back
// Equal to t (its monotonic reading and location name are not kept).
func (s *Session) SetTime(ctx context.Context, key string, t time.Time) error {
	return s.Set(ctx, key, t.Format(time.RFC3339Nano))
}

// Time returns the time stored under key by SetTime. It returns false if
// key is absent or does not hold a time.
func (s *Session) Time(key string) (time.Time, bool) {
	v, ok := s.Get(key)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

// SetJSON stores v under key as JSON: a small struct such as a cart.
func (s *Session) SetJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("session: encoding %q as JSON: %w", key, err)
	}
	return s.Set(ctx, key, string(b))
}

// JSON decodes the JSON stored under key by SetJSON into v. It returns false
// and no error if key is absent, and an error if its value does not decode
// into v.
func (s *Session) JSON(key string, v any) (bool, error) {
	raw, ok := s.Get(key)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		return true, fmt.Errorf("session: decoding %q: %w", key, err)
	}
	return true, nil
}

// maxDataRetries bounds how often a write reads the record again after
// another request changed the data first. Each retry means another write
// won, so running out takes a storm of writers to one session.
const maxDataRetries = 16

// change applies edit to a copy of the session's data and saves it if edit
// reports a change. The store saves it only if its data is still what this
// request read (compare-and-set); if another request wrote first, change
// reads the record again and reapplies edit, so concurrent writes of
// different keys all survive and a Pop pops once.
func (s *Session) change(ctx context.Context, edit func(map[string]string) bool) error {
	if s == nil {
		return ErrNoSession
	}
	for range maxDataRetries {
		s.mu.Lock()
		id, hash, old := s.rec.ID, s.rec.TokenHash, s.rec.Data
		s.mu.Unlock()
		data := maps.Clone(old)
		if data == nil {
			data = make(map[string]string)
		}
		if !edit(data) {
			return nil
		}
		if dataSize(data) > s.m.maxData {
			return fmt.Errorf("%w: %d bytes of keys and values, more than the %d allowed", ErrTooLarge, dataSize(data), s.m.maxData)
		}
		if len(data) == 0 {
			data = nil
		}
		sctx, cancel := s.m.storeContext(ctx)
		err := s.m.store.SaveData(sctx, id, old, data)
		s.m.wrote(ctx, "save_data", err)
		if err == nil {
			cancel()
			s.mu.Lock()
			s.rec.Data = data
			s.mu.Unlock()
			return nil
		}
		if !errors.Is(err, ErrStale) {
			cancel()
			return err
		}
		fresh, err := s.m.store.Get(sctx, hash)
		cancel()
		if err != nil {
			return err // ErrNotFound: it ended, or was renewed by another request
		}
		s.mu.Lock()
		s.rec.Data = fresh.Data
		s.mu.Unlock()
	}
	return fmt.Errorf("session: data of session %s kept changing under %d attempts to write it", s.ID(), maxDataRetries)
}
