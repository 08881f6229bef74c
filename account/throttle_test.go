package account

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":               "192.0.2.1",
		"192.0.2.1:8080":          "192.0.2.1",
		"::ffff:192.0.2.1":        "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::/64",
		"[2001:db8:1:2::9]:443":   "2001:db8:1:2::/64",
		"fe80::1%eth0":            "fe80::/64",
		"not an address":          "not an address",
		string(make([]byte, 200)): string(make([]byte, 64)),
	} {
		if got := ipKey(in); got != want {
			t.Errorf("ipKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		time.Nanosecond: 1, 999 * time.Millisecond: 1, time.Second: 1,
		time.Second + 1: 2, time.Minute: 60, 0: 1,
	} {
		if got := (&ThrottledError{RetryAfter: d}).RetryAfterSeconds(); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

// When the table is full, keys that can be forgotten go first, then the one
// closest to being forgotten; a key with an attempt in flight stays.
func TestLimiterEviction(t *testing.T) {
	p := ThrottlePolicy{Failures: 2, Window: time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}
	l := newLimiter(p, ScopeAccount, 3)
	l.fail("old", t0)                               // forgettable at t0+1m
	l.fail("locked", t0)                            //
	l.fail("locked", t0)                            // locked until t0+1m, forgettable at t0+2m
	if err := l.begin("inflight", t0); err != nil { // pending: never evicted
		t.Fatal(err)
	}

	now := t0.Add(90 * time.Second)
	l.fail("new", now) // "old" is forgettable now: it goes
	if _, ok := l.keys["old"]; ok || len(l.keys) != 3 {
		t.Fatalf("keys after evicting a forgettable one: %v", keys(l))
	}
	l.fail("newer", now) // none forgettable: "locked" (t0+2m) goes before "new" (t0+2m30s)
	if _, ok := l.keys["locked"]; ok {
		t.Fatalf("keys after a forced eviction: %v", keys(l))
	}
	l.fail("newest", now) // "new" and "newer" tie; one goes, "inflight" stays
	if _, ok := l.keys["inflight"]; !ok || len(l.keys) != 3 {
		t.Fatalf("keys: %v", keys(l))
	}
	// The in-flight attempt still settles correctly.
	l.fail("inflight", now)
	if e := l.keys["inflight"]; e.pending != 0 || e.failures != 1 {
		t.Errorf("inflight = %+v", *e)
	}
}

func keys(l *limiter) []string {
	var ks []string
	for k := range l.keys {
		ks = append(ks, k)
	}
	return ks
}

func TestLimiterSettleForgets(t *testing.T) {
	l := newLimiter(DefaultAccountThrottle, ScopeAccount, 10)
	l.begin("a", t0)
	l.cancel("a")
	l.begin("b", t0)
	l.succeed("b", false)
	if len(l.keys) != 0 {
		t.Errorf("settled attempts left keys behind: %v", keys(l))
	}
	// Settling a key that is not there (evicted) does nothing.
	l.cancel("c")
	l.succeed("c", true)
}

// A flood of sign-ins waits behind a bounded number of hashes, and beyond a
// bounded queue fails fast; nothing it does counts as a failure.
func TestHashGate(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	ctx := t.Context()
	s, err := NewStore(ctx, db, Options{Params: fastParams, MaxConcurrentHashes: 1, MaxWaitingHashes: 3})
	if err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery staple"
	for _, name := range []string{"alice", "bob", "carol"} {
		if err := s.Create(ctx, name, pw, RoleUser); err != nil {
			t.Fatal(err)
		}
	}
	auth, _ := NewAuthenticator(s, AuthOptions{})
	waitFor := func(n int64) {
		for s.gate.waiting.Load() != n {
			runtime.Gosched()
		}
	}

	// Hold the only slot, as a long hash would.
	if err := s.gate.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for _, name := range []string{"alice", "bob"} {
		go func() {
			_, err := auth.Authenticate(ctx, name, pw, "192.0.2.1")
			done <- err
		}()
	}
	waitFor(2)
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() { _, err := auth.Authenticate(cctx, "carol", pw, ""); cancelled <- err }()
	waitFor(3)

	// The queue is full: the next attempts fail at once, uncounted.
	for range 10 {
		_, err := auth.Authenticate(ctx, "carol", "a wrong guess here", "192.0.2.1")
		var te *ThrottledError
		if !errors.As(err, &te) || te.Scope != ScopeBusy || te.RetryAfter <= 0 {
			t.Fatalf("attempt beyond the queue: %v, want ThrottledError{busy}", err)
		}
	}
	// A waiting attempt whose request goes away stops waiting.
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	waitFor(2)

	s.gate.release()
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("queued sign-in: %v", err)
		}
	}
	// None of the refused attempts counted against carol.
	for i := range 4 {
		if _, err := auth.Authenticate(ctx, "carol", "a wrong guess here", ""); err != ErrInvalidCredentials {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := auth.Authenticate(ctx, "carol", pw, ""); err != nil {
		t.Fatalf("busy refusals were counted as failures: %v", err)
	}
}
