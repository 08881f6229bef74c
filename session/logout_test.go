package session_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// writeFailingStore fails the writes the Manager makes while failWrites is
// set, and every lookup while failReads is; reads work otherwise, as with a
// SQLite file that another process holds the write lock of.
type writeFailingStore struct {
	session.Store
	failWrites, failReads atomic.Bool
}

var errLocked = errors.New("database is locked (SQLITE_BUSY)")

func (s *writeFailingStore) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	if s.failReads.Load() {
		return session.Record{}, errLocked
	}
	return s.Store.Get(ctx, h)
}

func (s *writeFailingStore) End(ctx context.Context, id string, e session.Ending) (session.Record, error) {
	if s.failWrites.Load() {
		return session.Record{}, errLocked
	}
	return s.Store.End(ctx, id, e)
}

func (s *writeFailingStore) Touch(ctx context.Context, id string, at time.Time, exp session.Expiry) error {
	if s.failWrites.Load() {
		return errLocked
	}
	return s.Store.Touch(ctx, id, at, exp)
}

func (s *writeFailingStore) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	if s.failWrites.Load() {
		return nil, errLocked
	}
	return s.Store.EndExpired(ctx, now, keep, limit)
}

// writeRecorder is a StoreWriteObserver that keeps what it heard.
type writeRecorder struct {
	mu     sync.Mutex
	writes []string // "op" or "op: error"
}

func (o *writeRecorder) SessionEvent(context.Context, session.Event) {}

func (o *writeRecorder) StoreWrite(_ context.Context, op string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		op += ": " + err.Error()
	}
	o.writes = append(o.writes, op)
}

func (o *writeRecorder) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	w := o.writes
	o.writes = nil
	return w
}

// A sign-out the store could not record changes nothing: the cookie stays
// (so that the user can try again), the token keeps working, and the caller
// gets the error to tell them. Once the store takes writes again, the same
// sign-out ends the session for good.
func TestLogoutThatFailsKeepsTheCookie(t *testing.T) {
	var store *writeFailingStore
	h := newHarness(t, func(c *session.Config) {
		store = &writeFailingStore{Store: c.Store}
		c.Store = store
	})
	tok := h.login("alice")

	for name, fail := range map[string]*atomic.Bool{"the end not written": &store.failWrites, "the session not found": &store.failReads} {
		fail.Store(true)
		w := h.do("POST", "/logout", tok)
		fail.Store(false)
		if w.Code != http.StatusInternalServerError {
			t.Errorf("%s: logout answered %d, want the harness's 500 for an error", name, w.Code)
		}
		if c := w.Header().Values("Set-Cookie"); len(c) != 0 {
			t.Errorf("%s: a failed logout set cookies %q", name, c)
		}
		if v := w.Header().Get("Clear-Site-Data"); v != "" {
			t.Errorf("%s: a failed logout sent Clear-Site-Data %q", name, v)
		}
		if !h.signedIn(tok) {
			t.Fatalf("%s: the session ended although the logout failed", name)
		}
	}
	if n := len(h.events.ended()); n != 0 {
		t.Errorf("%d end events for sign-outs that failed", n)
	}

	w := h.do("POST", "/logout", tok)
	if w.Code != http.StatusOK {
		t.Fatalf("logout once the store works: %d %s", w.Code, w.Body)
	}
	if c := sessionCookie(t, w, h.m.CookieName()); c.Value != "" || c.MaxAge >= 0 {
		t.Errorf("logout once the store works kept the cookie: %q", w.Header().Get("Set-Cookie"))
	}
	if h.signedIn(tok) {
		t.Fatal("the token works after the logout went through")
	}
}

// StoreWriteObservers hear every write, failed or not; "not found" is an
// answer, not a failure.
func TestStoreWriteObserver(t *testing.T) {
	var store *writeFailingStore
	writes := &writeRecorder{}
	plain := &recorder{}
	h := newHarness(t, func(c *session.Config) {
		store = &writeFailingStore{Store: c.Store}
		c.Store = store
		c.Observers = append(c.Observers, writes, plain)
	})
	tok := h.login("alice")
	h.clock.Advance(time.Minute) // a touch is due
	h.signedIn(tok)
	store.failWrites.Store(true)
	h.do("POST", "/logout", tok)
	if _, err := h.m.SweepExpired(context.Background()); err == nil {
		t.Error("a sweep with the store refusing writes succeeded")
	}
	store.failWrites.Store(false)
	id := currentID(t, h, tok)
	h.do("POST", "/logout", tok)
	if err := h.m.RevokeAny(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Revoke of an ended session = %v", err)
	}
	want := []string{"create", "touch", "end: " + errLocked.Error(), "end_expired: " + errLocked.Error(), "end", "end"}
	if got := writes.take(); !slices.Equal(got, want) {
		t.Errorf("writes heard: %q\nwant %q", got, want)
	}
}
