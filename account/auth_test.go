package account_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

func newAuth(t *testing.T, s *account.Store, clock *sessiontest.Clock) *account.Authenticator {
	t.Helper()
	a, err := account.NewAuthenticator(s, account.AuthOptions{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// setup returns an Authenticator with the default throttles over a store
// holding alice (user) and root (admin), and the clock they run on.
func setup(t *testing.T, db *sqldb.DB) (*account.Store, *account.Authenticator, *sessiontest.Clock) {
	t.Helper()
	clock := sessiontest.NewClock(start)
	s := newStore(t, db, clock)
	if err := s.Create(t.Context(), "alice", alicePassword, account.RoleUser); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), "root", bobPassword, account.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	return s, newAuth(t, s, clock), clock
}

func throttled(t *testing.T, err error, scope account.ThrottleScope, retryAfter time.Duration) {
	t.Helper()
	var te *account.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want a ThrottledError", err)
	}
	if te.Scope != scope || (retryAfter > 0 && te.RetryAfter != retryAfter) || te.RetryAfter <= 0 {
		t.Fatalf("ThrottledError{%v, %s}, want {%v, %s}", te.RetryAfter, te.Scope, retryAfter, scope)
	}
}

func TestAuthenticate(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		s, auth, _ := setup(t, db)
		ctx := t.Context()
		u, err := auth.Authenticate(ctx, "Alice", alicePassword, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != "alice" || u.Role != account.RoleUser {
			t.Errorf("Authenticate returned %+v", u)
		}
		if err := s.SetDisabled(ctx, "alice", true); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ what, name, pw string }{
			{"wrong password", "root", alicePassword},
			{"unknown user", "mallory", alicePassword},
			{"disabled user, right password", "alice", alicePassword},
			{"impossible name", "no such name!", alicePassword},
			{"empty", "", ""},
		} {
			u, err := auth.Authenticate(ctx, tc.name, tc.pw, "192.0.2.1")
			// The very same error, so not even its text differs.
			if err != account.ErrInvalidCredentials || u != (account.User{}) {
				t.Errorf("%s: Authenticate = %+v, %v; want ErrInvalidCredentials", tc.what, u, err)
			}
		}
	})
}

func TestThrottlePerAccount(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		_, auth, clock := setup(t, db)
		ctx := t.Context()
		// Each attempt from its own address: only the account limit applies.
		ip := 0
		try := func(pw string) error {
			ip++
			_, err := auth.Authenticate(ctx, "alice", pw, fmt.Sprintf("192.0.2.%d", ip))
			return err
		}
		for i := range 5 {
			clock.Advance(time.Second)
			if err := try("wrong password number " + fmt.Sprint(i)); err != account.ErrInvalidCredentials {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		// Locked: even the right password waits, or guessing would go on.
		throttled(t, try(alicePassword), account.ScopeAccount, time.Minute)
		clock.Advance(59 * time.Second)
		throttled(t, try(alicePassword), account.ScopeAccount, time.Second)
		// Other accounts are not affected.
		if _, err := auth.Authenticate(ctx, "root", bobPassword, "198.51.100.1"); err != nil {
			t.Fatalf("root during alice's lockout: %v", err)
		}
		clock.Advance(time.Second)
		if err := try(alicePassword); err != nil {
			t.Fatalf("right password after the lockout: %v", err)
		}
		// The success forgot the failures: five more before the next lockout,
		// which is again the first, one minute long.
		for i := range 5 {
			if err := try("wrong again " + fmt.Sprint(i)); err != account.ErrInvalidCredentials {
				t.Fatalf("failure %d after a success: %v", i+1, err)
			}
		}
		throttled(t, try(alicePassword), account.ScopeAccount, time.Minute)
	})
}

func TestThrottleBackoff(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, auth, clock := setup(t, db)
	ctx := t.Context()
	fail := func() error {
		_, err := auth.Authenticate(ctx, "alice", "not her password, no", "")
		return err
	}
	for range 5 {
		fail()
	}
	// Each failure after a lockout locks again, twice as long, up to an hour.
	for _, lock := range []time.Duration{1, 2, 4, 8, 16, 32, 60, 60} {
		lock *= time.Minute
		throttled(t, fail(), account.ScopeAccount, lock)
		clock.Advance(lock)
		if err := fail(); err != account.ErrInvalidCredentials {
			t.Fatalf("the attempt after a %v lockout: %v", lock, err)
		}
	}
	// A quiet window after the lockout forgets everything.
	clock.Advance(time.Hour + 15*time.Minute)
	for i := range 4 {
		if err := fail(); err != account.ErrInvalidCredentials {
			t.Fatalf("failure %d after a quiet window: %v", i+1, err)
		}
	}
	if _, err := auth.Authenticate(ctx, "alice", alicePassword, ""); err != nil {
		t.Fatalf("fifth attempt, right password: %v", err)
	}
}

func TestThrottleWindow(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, auth, clock := setup(t, db)
	ctx := t.Context()
	fail := func() error {
		_, err := auth.Authenticate(ctx, "alice", "not her password, no", "")
		return err
	}
	for range 4 {
		fail()
	}
	// The window opened at the first failure; once it has passed, the count
	// starts again.
	clock.Advance(15*time.Minute - time.Nanosecond)
	if err := fail(); err != account.ErrInvalidCredentials {
		t.Fatal(err)
	}
	throttled(t, fail(), account.ScopeAccount, time.Minute)

	clock.Advance(time.Hour) // forget
	for range 4 {
		fail()
	}
	clock.Advance(15 * time.Minute)
	for i := range 4 {
		if err := fail(); err != account.ErrInvalidCredentials {
			t.Fatalf("failure %d in a new window: %v", i+1, err)
		}
	}
}

// Names that do not exist lock like real ones; otherwise the lockout would
// reveal which names are real.
func TestThrottleUnknownNames(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, auth, _ := setup(t, db)
	for _, name := range []string{"alice", "nobody"} {
		for range 5 {
			auth.Authenticate(t.Context(), name, "not the password, no", "")
		}
		_, err := auth.Authenticate(t.Context(), name, "not the password, no", "")
		throttled(t, err, account.ScopeAccount, time.Minute)
	}
}

func TestThrottlePerIP(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		_, auth, _ := setup(t, db)
		ctx := t.Context()
		// One password tried against many names: only the address limit
		// catches it.
		for i := range 20 {
			if _, err := auth.Authenticate(ctx, fmt.Sprintf("user%d", i), alicePassword, "203.0.113.7"); err != account.ErrInvalidCredentials {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		_, err := auth.Authenticate(ctx, "alice", alicePassword, "203.0.113.7")
		throttled(t, err, account.ScopeIP, time.Minute)
		_, err = auth.Authenticate(ctx, "alice", alicePassword, "203.0.113.7:41234") // with a port
		throttled(t, err, account.ScopeIP, time.Minute)
		if _, err := auth.Authenticate(ctx, "alice", alicePassword, "203.0.113.8"); err != nil {
			t.Fatalf("another address: %v", err)
		}

		// An IPv6 client commonly holds a whole /64: it is one key.
		for i := range 20 {
			auth.Authenticate(ctx, fmt.Sprintf("user%d", i), alicePassword, fmt.Sprintf("2001:db8:1:2::%x", i+1))
		}
		_, err = auth.Authenticate(ctx, "alice", alicePassword, "2001:db8:1:2:ffff::1")
		throttled(t, err, account.ScopeIP, time.Minute)
		if _, err := auth.Authenticate(ctx, "alice", alicePassword, "2001:db8:1:3::1"); err != nil {
			t.Fatalf("another /64: %v", err)
		}
	})
}

// A success resets the account's count, never the address's: an attacker
// signing in to an account of their own must not get fresh guesses.
func TestSuccessDoesNotResetIP(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, auth, _ := setup(t, db)
	ctx := t.Context()
	const ip = "203.0.113.9"
	for i := range 19 {
		auth.Authenticate(ctx, fmt.Sprintf("victim%d", i), "guess guess guess", ip)
	}
	if _, err := auth.Authenticate(ctx, "alice", alicePassword, ip); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(ctx, "victim99", "guess guess guess", ip); err != account.ErrInvalidCredentials {
		t.Fatal(err)
	}
	_, err := auth.Authenticate(ctx, "victim100", "guess guess guess", ip)
	throttled(t, err, account.ScopeIP, time.Minute)
}

// Successful sign-ins are never counted or slowed, however many.
func TestSuccessNotThrottled(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, auth, _ := setup(t, db)
	for i := range 100 {
		if _, err := auth.Authenticate(t.Context(), "alice", alicePassword, "192.0.2.1"); err != nil {
			t.Fatalf("sign-in %d: %v", i+1, err)
		}
	}
	// Failures interleaved with successes never add up to a lockout.
	// (Four rounds: 20 failures would lock the address.)
	for round := range 4 {
		for range 4 {
			auth.Authenticate(t.Context(), "alice", "almost her password", "192.0.2.1")
		}
		if _, err := auth.Authenticate(t.Context(), "alice", alicePassword, "192.0.2.1"); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// Concurrent guesses must not all slip past the check before the first
// failure is counted.
func TestConcurrentGuessesLimited(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		// Hashes slow enough that every guess starts before the first ends.
		s, err := account.NewStore(t.Context(), db, account.Options{Params: account.Params{Memory: 2048, Time: 1, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Create(t.Context(), "alice", alicePassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}
		auth, _ := account.NewAuthenticator(s, account.AuthOptions{})
		var wg sync.WaitGroup
		errs := make([]error, 40)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = auth.Authenticate(t.Context(), "alice", fmt.Sprintf("guess number %d!", i), fmt.Sprintf("10.0.%d.1", i))
			})
		}
		wg.Wait()
		checked := 0
		for _, err := range errs {
			var te *account.ThrottledError
			switch {
			case err == account.ErrInvalidCredentials:
				checked++
			case errors.As(err, &te) && te.Scope == account.ScopeAccount:
			default:
				t.Errorf("unexpected %v", err)
			}
		}
		if checked != 5 {
			t.Errorf("%d of 40 concurrent guesses were checked, want exactly 5", checked)
		}
	})
}

func TestCancelledAttemptsNotCounted(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, auth, _ := setup(t, db)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 10 {
		if _, err := auth.Authenticate(ctx, "alice", "whatever it is", "192.0.2.1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled attempt: %v", err)
		}
	}
	for i := range 4 {
		if _, err := auth.Authenticate(t.Context(), "alice", "wrong guess here", "192.0.2.1"); err != account.ErrInvalidCredentials {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := auth.Authenticate(t.Context(), "alice", alicePassword, "192.0.2.1"); err != nil {
		t.Fatalf("cancelled attempts counted as failures: %v", err)
	}
}

func TestVerify(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		s, auth, _ := setup(t, db)
		ctx := t.Context()
		if err := auth.Verify(ctx, "alice", alicePassword); err != nil {
			t.Fatal(err)
		}
		if err := auth.Verify(ctx, "alice", bobPassword); err != account.ErrInvalidCredentials {
			t.Fatalf("wrong password: %v", err)
		}
		// A stolen session cannot guess the password through Verify.
		for range 4 {
			auth.Verify(ctx, "alice", bobPassword)
		}
		throttled(t, auth.Verify(ctx, "alice", alicePassword), account.ScopeAccount, time.Minute)

		if err := s.Create(ctx, "carol", alicePassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}
		s.SetDisabled(ctx, "carol", true)
		if err := auth.Verify(ctx, "carol", alicePassword); err != account.ErrInvalidCredentials {
			t.Fatalf("disabled user: %v", err)
		}
	})
}

func storedHash(t *testing.T, db *sqldb.DB, name string) string {
	t.Helper()
	var h string
	if err := db.QueryRowContext(t.Context(), db.Rebind(`SELECT password_hash FROM account_users WHERE name = ?`), name).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRehashOnSignIn(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		old, _, _ := setup(t, db)
		before, _ := old.Get(ctx, "alice")
		oldHash := storedHash(t, db, "alice")

		// The server restarts with stronger parameters.
		stronger := account.Params{Memory: 128, Time: 2, Threads: 1}
		s, err := account.NewStore(ctx, db, account.Options{Params: stronger})
		if err != nil {
			t.Fatal(err)
		}
		auth, _ := account.NewAuthenticator(s, account.AuthOptions{})
		if _, err := auth.Authenticate(ctx, "alice", "not her password at all", ""); err != account.ErrInvalidCredentials {
			t.Fatal(err)
		}
		if storedHash(t, db, "alice") != oldHash {
			t.Fatal("a failed sign-in changed the hash")
		}
		if _, err := auth.Authenticate(ctx, "alice", alicePassword, ""); err != nil {
			t.Fatal(err)
		}
		newHash := storedHash(t, db, "alice")
		if !strings.HasPrefix(newHash, "$argon2id$v=19$m=128,t=2,p=1$") || account.NeedsRehash(newHash, stronger) {
			t.Fatalf("hash after sign-in = %q, want the stronger parameters", newHash)
		}
		after, _ := s.Get(ctx, "alice")
		if !after.PasswordChangedAt.Equal(before.PasswordChangedAt) {
			t.Error("rehashing changed PasswordChangedAt: the password did not change")
		}
		if _, err := auth.Authenticate(ctx, "alice", alicePassword, ""); err != nil {
			t.Fatalf("sign-in with the upgraded hash: %v", err)
		}
	})
}

// A damaged hash in the database is outside input: no panic, no 500, the
// same answer as a wrong password, and a log line for the operator.
func TestCorruptStoredHash(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		var logs bytes.Buffer
		s, err := account.NewStore(ctx, db, account.Options{Params: fastParams, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, "alice", alicePassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}
		auth, _ := account.NewAuthenticator(s, account.AuthOptions{})
		for _, bad := range []string{"", "garbage", "$argon2id$v=19$m=4294967295,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
			db.ExecContext(ctx, db.Rebind(`UPDATE account_users SET password_hash = ? WHERE name = ?`), bad, "alice")
			if _, err := auth.Authenticate(ctx, "alice", alicePassword, ""); err != account.ErrInvalidCredentials {
				t.Errorf("hash %q: %v", bad, err)
			}
		}
		if !strings.Contains(logs.String(), "unusable") || !strings.Contains(logs.String(), "alice") {
			t.Errorf("no log line for the operator: %q", logs.String())
		}
	})
}

func TestNewAuthenticatorRejectsBadPolicy(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	s := newStore(t, db, sessiontest.NewClock(start))
	for _, p := range []account.ThrottlePolicy{
		{Failures: 0, Window: time.Minute, Lockout: time.Minute, MaxLockout: time.Minute},
		{Failures: 5, Window: 0, Lockout: time.Minute, MaxLockout: time.Minute},
		{Failures: 5, Window: time.Minute, Lockout: time.Hour, MaxLockout: time.Minute},
	} {
		if _, err := account.NewAuthenticator(s, account.AuthOptions{AccountThrottle: p}); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
	}
}

func TestTrackedKeysBounded(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	s := newStore(t, db, sessiontest.NewClock(start))
	auth, _ := account.NewAuthenticator(s, account.AuthOptions{MaxTrackedKeys: 10})
	for i := range 100 {
		auth.Authenticate(t.Context(), fmt.Sprintf("spray%d", i), "guess guess guess", fmt.Sprintf("10.1.%d.%d", i/250, i%250))
	}
	names, addrs := auth.Tracked()
	if names > 10 || addrs > 10 {
		t.Errorf("tracking %d names and %d addresses, want at most 10 each", names, addrs)
	}
}
