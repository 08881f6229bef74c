package account_test

import (
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

// valid is SetupToken.Valid that fails the test on an error.
func valid(t *testing.T, st *account.SetupToken, token string) bool {
	t.Helper()
	ok, err := st.Valid(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func newSetupToken(t *testing.T, s *account.Store, ttl time.Duration) (*account.SetupToken, string) {
	t.Helper()
	st, secret, err := s.NewSetupToken(t.Context(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	return st, secret
}

func TestSetupToken(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		s := newStore(t, db, sessiontest.NewClock(start))
		st, secret := newSetupToken(t, s, 0)
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(secret) {
			t.Fatalf("secret %q is not 256 bits of base64url", secret)
		}
		if got, want := st.ExpiresAt(), start.Add(account.DefaultSetupTTL); !got.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v (one hour)", got, want)
		}
		if _, other := newSetupToken(t, s, 0); other == secret {
			t.Fatal("two setup tokens share a secret")
		}
		var stored string
		if err := db.QueryRowContext(ctx, `SELECT token_hash FROM account_setup_tokens LIMIT 1`).Scan(&stored); err != nil || stored == secret {
			t.Fatalf("the database keeps %q (%v): the secret itself must not be stored", stored, err)
		}
		for _, wrong := range []string{"", secret[:42], secret + "A", secret[:42] + "x"} {
			if valid(t, st, wrong) {
				t.Errorf("Valid(%q) = true", wrong)
			}
			if err := st.Use(ctx, wrong, func() error { t.Error("create ran for a wrong token"); return nil }); !errors.Is(err, account.ErrInvalidSetupToken) {
				t.Errorf("Use(%q) = %v", wrong, err)
			}
		}
		if !valid(t, st, secret) {
			t.Fatal("the secret is not valid")
		}

		// A failed creation leaves the token usable, so the form can be retried.
		weak := errors.New("password too short")
		if err := st.Use(ctx, secret, func() error { return weak }); err != weak {
			t.Fatalf("Use with a failing create = %v", err)
		}
		if !valid(t, st, secret) {
			t.Fatal("a failed creation used the token up")
		}
		ran := 0
		if err := st.Use(ctx, secret, func() error { ran++; return nil }); err != nil || ran != 1 {
			t.Fatalf("Use = %v, create ran %d times", err, ran)
		}
		// One time only.
		if valid(t, st, secret) {
			t.Error("the token is still valid after use")
		}
		if err := st.Use(ctx, secret, func() error { ran++; return nil }); !errors.Is(err, account.ErrInvalidSetupToken) || ran != 1 {
			t.Errorf("second Use = %v, create ran %d times", err, ran)
		}
	})
}

// The link printed by one instance works on another that shares the
// database (here another Store on it, as another process has), and its use
// there spends every instance's link.
func TestSetupTokenWorksOnEveryInstance(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		first := newStore(t, db, sessiontest.NewClock(start))
		second := newStore(t, db, sessiontest.NewClock(start))
		printed, secret := newSetupToken(t, first, 0)
		own, ownSecret := newSetupToken(t, second, 0)
		if !valid(t, own, secret) {
			t.Fatal("the second instance refuses the link the first printed")
		}
		if err := own.Use(ctx, secret, func() error {
			return second.CreateFirstAdmin(ctx, "root", "granite owls guard the ledger")
		}); err != nil {
			t.Fatalf("Use on the second instance: %v", err)
		}
		for _, tok := range []string{secret, ownSecret} {
			if valid(t, printed, tok) || valid(t, own, tok) {
				t.Error("a setup link still works after the first administrator was created")
			}
		}
	})
}

func TestSetupTokenExpires(t *testing.T) {
	clock := sessiontest.NewClock(start)
	s := newStore(t, sqldbtest.Open(t, sqldb.SQLite), clock)
	st, secret := newSetupToken(t, s, 10*time.Minute)
	clock.Advance(10*time.Minute - time.Nanosecond)
	if !valid(t, st, secret) {
		t.Fatal("expired early")
	}
	clock.Advance(time.Nanosecond)
	if valid(t, st, secret) {
		t.Fatal("valid at its expiry")
	}
	if err := st.Use(t.Context(), secret, func() error { return nil }); !errors.Is(err, account.ErrInvalidSetupToken) {
		t.Errorf("Use after expiry = %v", err)
	}
}

func TestSetupTokenConcurrentUse(t *testing.T) {
	s := newStore(t, sqldbtest.Open(t, sqldb.SQLite), sessiontest.NewClock(start))
	st, secret := newSetupToken(t, s, 0)
	var mu sync.Mutex
	created := 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			st.Use(t.Context(), secret, func() error {
				mu.Lock()
				created++
				mu.Unlock()
				return nil
			})
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("%d concurrent uses created an admin, want 1", created)
	}
}
