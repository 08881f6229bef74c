package account_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
)

// Wrong second factors lock the user name's second factors, counted apart
// from passwords; a re-authentication's count only its session; and a
// check that decided nothing counts for nothing.
func TestCheckSecondFactor(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, auth, clock := setup(t, db)
	ctx := t.Context()
	at := account.Attempt{Name: "alice", IP: "192.0.2.1"}
	wrong := func(context.Context) error { return account.ErrWrongCode }
	right := func(context.Context) error { return nil }
	down := errors.New("database down")

	if err := auth.CheckSecondFactor(ctx, at, func(context.Context) error { return down }); err != down {
		t.Fatalf("undecided check: %v, want its error", err)
	}
	for i := range account.DefaultAccountThrottle.Failures {
		if err := auth.CheckSecondFactor(ctx, at, wrong); !errors.Is(err, account.ErrWrongCode) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	called := false
	err := auth.CheckSecondFactor(ctx, at, func(context.Context) error { called = true; return nil })
	throttled(t, err, account.ScopeSecondFactor, account.DefaultAccountThrottle.Lockout)
	if called {
		t.Error("a locked key's check ran")
	}

	// The password still signs in; a session's re-authentication is its own.
	if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword, IP: "192.0.2.1"}); err != nil {
		t.Errorf("password after second-factor failures: %v", err)
	}
	inSession := account.Attempt{Name: "alice", IP: "192.0.2.1", Session: "session-1"}
	if err := auth.CheckSecondFactor(ctx, inSession, right); err != nil {
		t.Errorf("re-authentication while sign-ins are locked: %v", err)
	}

	clock.Advance(account.DefaultAccountThrottle.Lockout)
	if err := auth.CheckSecondFactor(ctx, at, right); err != nil {
		t.Errorf("after the lockout: %v", err)
	}
}
