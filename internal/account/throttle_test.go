package account

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func TestAddressKey(t *testing.T) {
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
		if got := AddressKey(in); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", in, got, want)
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

// The rules of one key, without a database: only failures lock, attempts
// in flight fill the budget without failing, and a reservation whose
// process died counts for nothing after reservationTTL.
func TestEntryRules(t *testing.T) {
	p := ThrottlePolicy{Failures: 2, Window: time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}
	var e entry
	for range 2 {
		if got := e.admit(p, t0); got != admitted {
			t.Fatalf("admit = %v, want admitted", got)
		}
	}
	if got := e.admit(p, t0); got != full {
		t.Fatalf("third attempt in flight: %v, want full (wait), not locked", got)
	}
	if e.succeed(true) || e.inFlight != 1 || e.failures != 0 {
		t.Fatalf("after a success: %+v", e)
	}
	if d := e.fail(p, t0); d != 0 || e.failures != 1 {
		t.Fatalf("after a failure: %+v, lockout %v", e, d)
	}
	e.admit(p, t0)
	if d := e.fail(p, t0); d != time.Minute || e.lockouts != 1 {
		t.Fatalf("second failure: lockout %v, %+v", d, e)
	}
	if got := e.admit(p, t0.Add(time.Minute-1)); got != locked {
		t.Fatalf("during the lockout: %v", got)
	}
	if !e.succeed(true) || !e.empty() {
		t.Fatalf("a success after a lockout must report the unlock and forget all: %+v", e)
	}

	// A process died holding both places: after reservationTTL they count
	// for nothing, and the row can be deleted then.
	e = entry{}
	e.admit(p, t0)
	e.admit(p, t0)
	if at := e.forgetAt(p); !at.Equal(t0.Add(reservationTTL)) {
		t.Errorf("forgetAt = %v, want the reservations' end", at)
	}
	e.refresh(p, t0.Add(reservationTTL-1))
	if got := e.admit(p, t0.Add(reservationTTL-1)); got != full {
		t.Fatalf("before the reservations expire: %v", got)
	}
	e.refresh(p, t0.Add(reservationTTL))
	if e.inFlight != 0 || e.admit(p, t0.Add(reservationTTL)) != admitted {
		t.Fatalf("after the reservations expire: %+v", e)
	}
}

// The memory of locks is bounded; ended locks make room, and beyond the
// bound a lock is simply not remembered (the database still enforces it).
func TestLockCacheBounded(t *testing.T) {
	c := lockCache{max: 2}
	c.put("a", t0.Add(time.Minute), t0)
	c.put("b", t0.Add(2*time.Minute), t0)
	c.put("c", t0.Add(time.Minute), t0)
	if _, ok := c.get("c", t0); ok || c.len() != 2 {
		t.Fatalf("a third lock was remembered beyond the bound")
	}
	now := t0.Add(time.Minute)
	c.put("c", now.Add(time.Minute), now) // "a" has ended: it makes room
	if _, ok := c.get("c", now); !ok || c.len() != 2 {
		t.Fatalf("an ended lock did not make room")
	}
	if until, ok := c.get("b", now); !ok || !until.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("b = %v, %v", until, ok)
	}
	if _, ok := c.get("b", t0.Add(2*time.Minute)); ok {
		t.Fatal("an ended lock still refuses")
	}
}

// Attempts of one process beyond a key's budget queue in memory, and leave
// no gate behind.
func TestKeyGates(t *testing.T) {
	var g keyGates
	k := []throttleKey{{scope: ScopeAccount, subject: "alice", policy: ThrottlePolicy{Failures: 2}}}
	r1, err := g.acquire(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := g.acquire(t.Context(), k)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := g.acquire(ctx, k); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third acquire: %v, want it to wait until its context ends", err)
	}
	got := make(chan func(), 1)
	go func() { r, _ := g.acquire(t.Context(), k); got <- r }()
	r1()
	(<-got)()
	r2()
	if len(g.gates) != 0 {
		t.Errorf("gates left behind: %d", len(g.gates))
	}
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
			_, err := auth.Authenticate(ctx, Attempt{Name: name, Password: pw, IP: "192.0.2.1"})
			done <- err
		}()
	}
	waitFor(2)
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() { _, err := auth.Authenticate(cctx, Attempt{Name: "carol", Password: pw}); cancelled <- err }()
	waitFor(3)

	// The queue is full: the next attempts fail at once, uncounted.
	for range 10 {
		_, err := auth.Authenticate(ctx, Attempt{Name: "carol", Password: "a wrong guess here", IP: "192.0.2.1"})
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
		if _, err := auth.Authenticate(ctx, Attempt{Name: "carol", Password: "a wrong guess here"}); err != ErrInvalidCredentials {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := auth.Authenticate(ctx, Attempt{Name: "carol", Password: pw}); err != nil {
		t.Fatalf("busy refusals were counted as failures: %v", err)
	}
}

// A process that dies while checking passwords leaves its reservations in
// the shared database. Until they expire they fill the key's budget, so an
// attempt elsewhere waits and is told the server is busy, never that it
// failed; after reservationTTL the budget is whole again.
func TestDeadProcessReservationsExpire(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		now := t0
		clock := func() time.Time { return now }
		s, err := NewStore(ctx, db, Options{Params: fastParams, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		const pw = "correct horse battery staple"
		if err := s.Create(ctx, "alice", pw, RoleUser); err != nil {
			t.Fatal(err)
		}
		dead, _ := NewAuthenticator(s, AuthOptions{})
		for range DefaultAccountThrottle.Failures {
			key := []throttleKey{{scope: ScopeAccount, subject: "alice", policy: DefaultAccountThrottle, user: "alice"}}
			if _, err := dead.throttle.begin(ctx, key, ""); err != nil {
				t.Fatal(err)
			}
		}
		live, _ := NewAuthenticator(s, AuthOptions{})
		live.throttle.admitWait = 50 * time.Millisecond
		_, err = live.Authenticate(ctx, Attempt{Name: "alice", Password: pw})
		if te, ok := errors.AsType[*ThrottledError](err); !ok || !te.Busy() {
			t.Fatalf("attempt behind a dead process's reservations: %v, want busy", err)
		}
		now = now.Add(reservationTTL)
		if _, err := live.Authenticate(ctx, Attempt{Name: "alice", Password: pw}); err != nil {
			t.Fatalf("after the reservations expired: %v", err)
		}
	})
}

// An attempt whose request goes away while it waits stops waiting, and
// says so (no verdict, no 429).
func TestWaitingAttemptCancelled(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	ctx := t.Context()
	s, err := NewStore(ctx, db, Options{Params: fastParams})
	if err != nil {
		t.Fatal(err)
	}
	auth, _ := NewAuthenticator(s, AuthOptions{})
	key := []throttleKey{{scope: ScopeAccount, subject: "alice", policy: DefaultAccountThrottle}}
	for range DefaultAccountThrottle.Failures {
		if _, err := auth.throttle.begin(ctx, key, ""); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := auth.Authenticate(cctx, Attempt{Name: "alice", Password: "whatever it is"})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting: %v", err)
	}
}

// Only failures count, even in flight: while the only attempt the budget
// admits holds its place (its hash is slow: the hash gate is held), the
// correct attempts behind it wait; none is told it failed.
func TestAttemptsInFlightAreNotFailures(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	ctx := t.Context()
	s, err := NewStore(ctx, db, Options{Params: fastParams, MaxConcurrentHashes: 1})
	if err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery staple"
	if err := s.Create(ctx, "alice", pw, RoleUser); err != nil {
		t.Fatal(err)
	}
	auth, _ := NewAuthenticator(s, AuthOptions{})
	for range DefaultAccountThrottle.Failures - 1 { // a budget of one left
		if _, err := auth.Authenticate(ctx, Attempt{Name: "alice", Password: "a typo in it", IP: "192.0.2.1"}); err != ErrInvalidCredentials {
			t.Fatal(err)
		}
	}
	if err := s.gate.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Go(func() { _, errs[i] = auth.Authenticate(ctx, Attempt{Name: "alice", Password: pw, IP: "192.0.2.1"}) })
	}
	for s.gate.waiting.Load() != 1 {
		runtime.Gosched()
	}
	// Let the attempts the key's queue admitted find the budget full.
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
		runtime.Gosched()
	}
	s.gate.release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("correct sign-in %d: %v", i+1, err)
		}
	}
}
