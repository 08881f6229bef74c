package account

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
)

// Unknown and disabled users, and a damaged stored hash, must cost the same
// argon2 work as a wrong password, or response times would tell which names
// exist. The work is counted, not timed: one derivation with the store's
// parameters for every attempt. (Names that break NormalizeName skip the
// database lookup; the rules are public, so that tells nothing.)
func TestFailedSignInsCostTheSameWork(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	params := Params{Memory: 64, Time: 1, Threads: 1}
	s, err := NewStore(t.Context(), db, Options{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	loose := ThrottlePolicy{Failures: 1000, Window: time.Minute, Lockout: time.Minute, MaxLockout: time.Minute}
	auth, err := NewAuthenticator(s, AuthOptions{AccountThrottle: loose, IPThrottle: loose})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const password = "correct horse battery staple"
	for _, name := range []string{"alice", "dora", "erin"} {
		if err := s.Create(ctx, name, password, RoleUser); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetDisabled(ctx, "dora", true); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, db.Rebind("UPDATE account_users SET password_hash = ? WHERE name = ?"), "$argon2id$damaged", "erin"); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var work []Params
	count := func(p Params) {
		mu.Lock()
		defer mu.Unlock()
		work = append(work, p)
	}
	derived.Store(&count)
	defer derived.Store(nil)

	for _, tc := range []struct{ what, name, pw string }{
		{"wrong password", "alice", "not the password at all"},
		{"unknown user", "nobody", password},
		{"disabled user", "dora", password},
		{"damaged stored hash", "erin", password},
	} {
		mu.Lock()
		work = nil
		mu.Unlock()
		if _, err := auth.Authenticate(ctx, Attempt{Name: tc.name, Password: tc.pw}); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%s: %v, want ErrInvalidCredentials", tc.what, err)
		}
		mu.Lock()
		if !slices.Equal(work, []Params{s.opts.Params}) {
			t.Errorf("%s: derivations with %+v, want exactly one with %+v", tc.what, work, s.opts.Params)
		}
		mu.Unlock()
	}
}
