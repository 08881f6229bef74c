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

	"github.com/sessionguard/sessionguard/internal/account"
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
		u, err := auth.Authenticate(ctx, account.Attempt{Name: "Alice", Password: alicePassword, IP: "192.0.2.1"})
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
			u, err := auth.Authenticate(ctx, account.Attempt{Name: tc.name, Password: tc.pw, IP: "192.0.2.1"})
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
			_, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: pw, IP: fmt.Sprintf("192.0.2.%d", ip)})
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
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "root", Password: bobPassword, IP: "198.51.100.1"}); err != nil {
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
		_, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "not her password, no"})
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
	if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword}); err != nil {
		t.Fatalf("fifth attempt, right password: %v", err)
	}
}

func TestThrottleWindow(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, auth, clock := setup(t, db)
	ctx := t.Context()
	fail := func() error {
		_, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "not her password, no"})
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
			auth.Authenticate(t.Context(), account.Attempt{Name: name, Password: "not the password, no"})
		}
		_, err := auth.Authenticate(t.Context(), account.Attempt{Name: name, Password: "not the password, no"})
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
			if _, err := auth.Authenticate(ctx, account.Attempt{Name: fmt.Sprintf("user%d", i), Password: alicePassword, IP: "203.0.113.7"}); err != account.ErrInvalidCredentials {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		_, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "203.0.113.7"})
		throttled(t, err, account.ScopeIP, time.Minute)
		_, err = auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "203.0.113.7:41234"}) // with a port
		throttled(t, err, account.ScopeIP, time.Minute)
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "203.0.113.8"}); err != nil {
			t.Fatalf("another address: %v", err)
		}

		// An IPv6 client commonly holds a whole /64: it is one key.
		for i := range 20 {
			auth.Authenticate(ctx, account.Attempt{Name: fmt.Sprintf("user%d", i), Password: alicePassword, IP: fmt.Sprintf("2001:db8:1:2::%x", i+1)})
		}
		_, err = auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "2001:db8:1:2:ffff::1"})
		throttled(t, err, account.ScopeIP, time.Minute)
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "2001:db8:1:3::1"}); err != nil {
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
		auth.Authenticate(ctx, account.Attempt{Name: fmt.Sprintf("victim%d", i), Password: "guess guess guess", IP: ip})
	}
	if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: ip}); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(ctx, account.Attempt{Name: "victim99", Password: "guess guess guess", IP: ip}); err != account.ErrInvalidCredentials {
		t.Fatal(err)
	}
	_, err := auth.Authenticate(ctx, account.Attempt{Name: "victim100", Password: "guess guess guess", IP: ip})
	throttled(t, err, account.ScopeIP, time.Minute)
}

// Successful sign-ins are never counted or slowed, however many.
func TestSuccessNotThrottled(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, auth, _ := setup(t, db)
	for i := range 100 {
		if _, err := auth.Authenticate(t.Context(), account.Attempt{Name: "alice", Password: alicePassword, IP: "192.0.2.1"}); err != nil {
			t.Fatalf("sign-in %d: %v", i+1, err)
		}
	}
	// Failures interleaved with successes never add up to a lockout.
	// (Four rounds: 20 failures would lock the address.)
	for round := range 4 {
		for range 4 {
			auth.Authenticate(t.Context(), account.Attempt{Name: "alice", Password: "almost her password", IP: "192.0.2.1"})
		}
		if _, err := auth.Authenticate(t.Context(), account.Attempt{Name: "alice", Password: alicePassword, IP: "192.0.2.1"}); err != nil {
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
				_, errs[i] = auth.Authenticate(t.Context(), account.Attempt{Name: "alice", Password: fmt.Sprintf("guess number %d!", i), IP: fmt.Sprintf("10.0.%d.1", i)})
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
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "whatever it is", IP: "192.0.2.1"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled attempt: %v", err)
		}
	}
	for i := range 4 {
		if _, err := auth.Authenticate(t.Context(), account.Attempt{Name: "alice", Password: "wrong guess here", IP: "192.0.2.1"}); err != account.ErrInvalidCredentials {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := auth.Authenticate(t.Context(), account.Attempt{Name: "alice", Password: alicePassword, IP: "192.0.2.1"}); err != nil {
		t.Fatalf("cancelled attempts counted as failures: %v", err)
	}
}

func TestVerify(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		s, auth, _ := setup(t, db)
		ctx := t.Context()
		verify := func(session, pw string) error {
			return auth.Verify(ctx, account.Attempt{Name: "alice", Password: pw, Session: session, IP: "192.0.2.1"})
		}
		if err := verify("S1", alicePassword); err != nil {
			t.Fatal(err)
		}
		if err := verify("S1", bobPassword); err != account.ErrInvalidCredentials {
			t.Fatalf("wrong password: %v", err)
		}
		// A stolen session cannot guess the password through Verify.
		for range 4 {
			verify("S1", bobPassword)
		}
		throttled(t, verify("S1", alicePassword), account.ScopeSession, time.Minute)
		// Its failures are the session's own: the user's other sessions
		// and sign-ins are not held back by them.
		if err := verify("S2", alicePassword); err != nil {
			t.Fatalf("another session of alice: %v", err)
		}
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "192.0.2.1"}); err != nil {
			t.Fatalf("a sign-in of alice: %v", err)
		}

		if err := s.Create(ctx, "carol", alicePassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}
		s.SetDisabled(ctx, "carol", true)
		if err := auth.Verify(ctx, account.Attempt{Name: "carol", Password: alicePassword, Session: "S3"}); err != account.ErrInvalidCredentials {
			t.Fatalf("disabled user: %v", err)
		}
		if err := auth.Verify(ctx, account.Attempt{Name: "alice", Password: alicePassword}); err == nil || errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("Verify without a session: %v, want a programming error", err)
		}
	})
}

// A name lock is no denial of service: five wrong passwords for alice from
// anywhere must not stop her live session from re-authenticating (which
// she needs to end the attacker's sessions), while the name stays locked
// for everyone else.
func TestNameLockDoesNotBlockReauthentication(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		_, auth, _ := setup(t, db)
		ctx := t.Context()
		for i := range 5 {
			if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "an attacker's guess", IP: fmt.Sprintf("203.0.113.%d", i+1)}); err != account.ErrInvalidCredentials {
				t.Fatalf("guess %d: %v", i+1, err)
			}
		}
		if err := auth.Verify(ctx, account.Attempt{Name: "alice", Password: alicePassword, Session: "alices-session", IP: "192.0.2.1"}); err != nil {
			t.Fatalf("alice's session re-authenticating during the name's lock: %v", err)
		}
		_, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "198.51.100.9"})
		throttled(t, err, account.ScopeAccount, time.Minute)
	})
}

// signInDevice signs alice in and returns the device token her browser
// keeps.
func signInDevice(t *testing.T, auth *account.Authenticator, ip string) string {
	t.Helper()
	at := account.Attempt{Name: "alice", Password: alicePassword, IP: ip}
	if _, err := auth.Authenticate(t.Context(), at); err != nil {
		t.Fatal(err)
	}
	token, err := auth.RememberClient(t.Context(), at)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// A lock on the name, which anyone can cause, holds strangers back but not
// the user's own known devices; each device has a limit of its own.
func TestKnownDeviceDuringNameLock(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		_, auth, clock := setup(t, db)
		ctx := t.Context()
		device := signInDevice(t, auth, "192.0.2.1")
		for i := range 5 {
			auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "an attacker's guess", IP: fmt.Sprintf("203.0.113.%d", i+1)})
		}
		// The stranger with the right password waits: the name is locked.
		_, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "198.51.100.9"})
		throttled(t, err, account.ScopeAccount, time.Minute)
		// So does one with a made-up token, or with a token of another user.
		rootDevice, err := auth.RememberClient(ctx, account.Attempt{Name: "root"})
		if err != nil {
			t.Fatal(err)
		}
		for _, other := range []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", rootDevice, "not a token"} {
			_, err = auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "198.51.100.9", Device: other})
			throttled(t, err, account.ScopeAccount, time.Minute)
		}
		// Alice, from her known device, signs in, even from another address.
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "192.0.2.77", Device: device}); err != nil {
			t.Fatalf("alice from her known device during the lock: %v", err)
		}
		// Her success did not lift the lock on the name.
		_, err = auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "198.51.100.9"})
		throttled(t, err, account.ScopeAccount, 0)

		// A known device is not held back by its address's lock either.
		const shared = "203.0.113.200" // the office NAT, shared with an attacker
		for i := range 20 {
			auth.Authenticate(ctx, account.Attempt{Name: fmt.Sprintf("user%d", i), Password: "spray spray spray", IP: shared})
		}
		_, err = auth.Authenticate(ctx, account.Attempt{Name: "root", Password: bobPassword, IP: shared})
		throttled(t, err, account.ScopeIP, time.Minute)
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: shared, Device: device}); err != nil {
			t.Fatalf("alice's known device behind a locked address: %v", err)
		}

		// A stolen device token buys five guesses of its own, then locks
		// that device (and only it).
		for i := range 5 {
			if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: fmt.Sprintf("guess %d with her cookie", i), IP: "198.51.100.9", Device: device}); err != account.ErrInvalidCredentials {
				t.Fatalf("guess %d with the device: %v", i+1, err)
			}
		}
		_, err = auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, Device: device})
		throttled(t, err, account.ScopeDevice, time.Minute)
		clock.Advance(time.Minute)
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, Device: device}); err != nil {
			t.Fatalf("the device after its lockout: %v", err)
		}
	})
}

// An explicit sign-out clears the device cookie (Clear-Site-Data), so an
// address the account signed in from is known as well: a lock on the name
// does not hold it back, but failures from it count against it (and the
// pair of name and address), never letting a neighbour guess freely.
func TestKnownAddressDuringNameLock(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		_, auth, _ := setup(t, db)
		ctx := t.Context()
		device := signInDevice(t, auth, "2001:db8:aa:bb::1")
		for i := range 5 {
			auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "an attacker's guess", IP: fmt.Sprintf("203.0.113.%d", i+1)})
		}
		_, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "198.51.100.9"})
		throttled(t, err, account.ScopeAccount, time.Minute)
		// From her home network (another address in its /64), without the
		// cookie her sign-out cleared: in.
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "2001:db8:aa:bb::2"}); err != nil {
			t.Fatalf("alice from her known address during the name's lock: %v", err)
		}
		// Someone on her network guessing gets five tries of their own,
		// then the pair locks; her device still signs in.
		for i := range 5 {
			if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: fmt.Sprintf("neighbour guess %d", i), IP: "2001:db8:aa:bb::66"}); err != account.ErrInvalidCredentials {
				t.Fatalf("guess %d from her network: %v", i+1, err)
			}
		}
		_, err = auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "2001:db8:aa:bb::2"})
		throttled(t, err, account.ScopeKnownAddress, time.Minute)
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "2001:db8:aa:bb::2", Device: device}); err != nil {
			t.Fatalf("alice's device: %v", err)
		}
		// The address is known to alice only.
		_, err = auth.Authenticate(ctx, account.Attempt{Name: "nobody", Password: alicePassword, IP: "2001:db8:aa:bb::66"})
		if err != account.ErrInvalidCredentials {
			t.Fatalf("another name from alice's address: %v", err)
		}
	})
}

func TestRememberClient(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		_, auth, clock := setup(t, db)
		ctx := t.Context()
		remember := func(name, device string) string {
			t.Helper()
			token, err := auth.RememberClient(ctx, account.Attempt{Name: name, Device: device})
			if err != nil {
				t.Fatal(err)
			}
			return token
		}
		first := remember("Alice", "")
		if len(first) != 43 {
			t.Fatalf("RememberClient = %q", first)
		}
		// A known device keeps its token; anything else gets a new one, so
		// a token planted in a browser is never adopted.
		if again := remember("alice", first); again != first {
			t.Errorf("a known device got a new token")
		}
		planted := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		if got := remember("alice", planted); got == planted || got == first {
			t.Errorf("an unknown token was adopted")
		}
		if got := remember("root", first); got == first {
			t.Errorf("alice's device token was adopted for root")
		}
		if _, err := auth.RememberClient(ctx, account.Attempt{Name: "no such name!"}); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("impossible name: %v", err)
		}

		locked := func(device string) bool {
			for i := range 5 {
				auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "wrong, wrong, wrong", IP: fmt.Sprintf("203.0.113.%d", i)})
			}
			_, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, Device: device})
			var te *account.ThrottledError
			return errors.As(err, &te)
		}
		// Only the 20 devices used last stay known.
		clock.Advance(time.Second)
		for range 20 {
			remember("alice", "")
			clock.Advance(time.Second)
		}
		if !locked(first) {
			t.Error("the 21st most recent device is still known")
		}
		clock.Advance(2 * time.Hour)
		// A device unused for KnownClientTTL is forgotten.
		recent := remember("alice", "")
		clock.Advance(account.KnownClientTTL - time.Second)
		if locked(recent) {
			t.Error("a device used within KnownClientTTL is not known")
		}
		clock.Advance(2 * time.Hour)
		if !locked(recent) {
			t.Error("a device unused for KnownClientTTL is still known")
		}
	})
}

// Only failures count. A burst of correct sign-ins of one user waits its
// turn instead of being told it failed, even when the user had mistyped
// four times just before.
func TestParallelCorrectSignInsNotThrottled(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		_, auth, _ := setup(t, db) // fastParams: each hash takes microseconds
		ctx := t.Context()
		for range 4 {
			auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "a typo in it", IP: "192.0.2.1"})
		}
		var wg sync.WaitGroup
		errs := make([]error, 100)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "192.0.2.1"})
			})
		}
		wg.Wait()
		busy := 0
		for i, err := range errs {
			var te *account.ThrottledError
			switch {
			case err == nil:
			case errors.As(err, &te) && te.Busy():
				busy++
			default:
				t.Errorf("sign-in %d: %v", i+1, err)
			}
		}
		t.Logf("100 parallel correct sign-ins: %d busy, none throttled for failures", busy)
		if busy > 0 {
			t.Errorf("%d of 100 correct sign-ins were refused as busy; none should wait that long", busy)
		}
	})
}

// Two servers on one database enforce one limit, not
// two: their failures add up, their locks hold on both, and concurrent
// guesses split between them are still only five.
func TestThrottleSharedBetweenAuthenticators(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		clock := sessiontest.NewClock(start)
		one := newStore(t, db, clock)
		two := newStore(t, db, clock)
		if err := one.Create(ctx, "alice", alicePassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}
		authOne, authTwo := newAuth(t, one, clock), newAuth(t, two, clock)
		for i := range 5 {
			auth := []*account.Authenticator{authOne, authTwo}[i%2]
			if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "guess guess guess", IP: fmt.Sprintf("203.0.113.%d", i)}); err != account.ErrInvalidCredentials {
				t.Fatalf("guess %d: %v", i+1, err)
			}
		}
		for _, auth := range []*account.Authenticator{authOne, authTwo} {
			_, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "198.51.100.1"})
			throttled(t, err, account.ScopeAccount, time.Minute)
		}
		// A device made known on one is known on the other.
		clock.Advance(time.Minute)
		if _, err := authOne.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword}); err != nil {
			t.Fatal(err)
		}
		device, err := authOne.RememberClient(ctx, account.Attempt{Name: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			authOne.Authenticate(ctx, account.Attempt{Name: "alice", Password: "guess guess guess", IP: fmt.Sprintf("203.0.113.%d", i)})
		}
		if _, err := authTwo.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, Device: device}); err != nil {
			t.Fatalf("the device on the other server: %v", err)
		}

		// Concurrent guesses at a fresh name, half on each server.
		if err := one.Create(ctx, "bob", bobPassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 40)
		for i := range errs {
			auth := []*account.Authenticator{authOne, authTwo}[i%2]
			wg.Go(func() {
				_, errs[i] = auth.Authenticate(ctx, account.Attempt{Name: "bob", Password: fmt.Sprintf("guess number %d!", i), IP: fmt.Sprintf("10.0.%d.1", i)})
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
			t.Errorf("%d of 40 concurrent guesses on two servers were checked, want exactly 5", checked)
		}
	})
}

// eventLog is a ThrottleObserver that keeps what it is told.
type eventLog struct {
	mu     sync.Mutex
	events []account.ThrottleEvent
}

func (l *eventLog) ThrottleEvent(_ context.Context, e account.ThrottleEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// Locks and unlocks go to the log and to the observer (the audit log).
func TestThrottleEvents(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	ctx := t.Context()
	clock := sessiontest.NewClock(start)
	var logs bytes.Buffer
	s, err := account.NewStore(ctx, db, account.Options{Params: fastParams, Clock: clock.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "alice", alicePassword, account.RoleUser); err != nil {
		t.Fatal(err)
	}
	observer := &eventLog{}
	auth, err := account.NewAuthenticator(s, account.AuthOptions{Observer: observer})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "guess guess guess", IP: "203.0.113.5"})
	}
	want := account.ThrottleEvent{Kind: account.ThrottleLocked, Scope: account.ScopeAccount, User: "alice", IP: "203.0.113.5",
		Time: start, Until: start.Add(time.Minute), Lockouts: 1}
	if len(observer.events) != 1 || observer.events[0] != want {
		t.Fatalf("events = %+v, want %+v", observer.events, want)
	}
	if !strings.Contains(logs.String(), "sign-in locked") || !strings.Contains(logs.String(), "user=alice") {
		t.Errorf("no log line for the lock: %q", logs.String())
	}
	clock.Advance(time.Minute)
	if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	if len(observer.events) != 2 || observer.events[1].Kind != account.ThrottleUnlocked || observer.events[1].User != "alice" {
		t.Fatalf("events = %+v, want an unlock", observer.events)
	}
	if !strings.Contains(logs.String(), "sign-in unlocked") {
		t.Errorf("no log line for the unlock: %q", logs.String())
	}
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
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "not her password at all"}); err != account.ErrInvalidCredentials {
			t.Fatal(err)
		}
		if storedHash(t, db, "alice") != oldHash {
			t.Fatal("a failed sign-in changed the hash")
		}
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword}); err != nil {
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
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword}); err != nil {
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
			if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword}); err != account.ErrInvalidCredentials {
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
