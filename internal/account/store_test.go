package account_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

// fastParams keep tests fast; production uses DefaultParams.
var fastParams = account.Params{Memory: 64, Time: 1, Threads: 1}

const (
	alicePassword = "correct horse battery staple"
	bobPassword   = "purple monkey dishwasher tonight"
)

var start = time.Date(2025, 3, 1, 9, 0, 0, 123456789, time.UTC)

func newStore(t *testing.T, db *sqldb.DB, clock *sessiontest.Clock) *account.Store {
	t.Helper()
	s, err := account.NewStore(t.Context(), db, account.Options{Params: fastParams, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		clock := sessiontest.NewClock(start)
		s := newStore(t, db, clock)

		if n, err := s.Count(ctx); err != nil || n != 0 {
			t.Fatalf("Count of a new store = %d, %v", n, err)
		}
		if err := s.Create(ctx, "Alice", alicePassword, account.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		if err := s.Create(ctx, "bob", bobPassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}

		alice, err := s.Get(ctx, "ALICE")
		if err != nil {
			t.Fatal(err)
		}
		want := account.User{Name: "alice", Role: account.RoleAdmin, CreatedAt: start, PasswordChangedAt: start}
		if alice != want {
			t.Errorf("Get = %+v, want %+v", alice, want)
		}
		if !alice.IsAdmin() {
			t.Error("alice is not an admin")
		}

		users, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 2 || users[0].Name != "alice" || users[1].Name != "bob" || users[1].Role != account.RoleUser {
			t.Errorf("List = %+v", users)
		}
		if n, _ := s.Count(ctx); n != 2 {
			t.Errorf("Count = %d, want 2", n)
		}

		// Names are case-insensitive: no second Alice.
		if err := s.Create(ctx, "aLiCe", bobPassword, account.RoleUser); !errors.Is(err, account.ErrExists) {
			t.Errorf("duplicate Create = %v, want ErrExists", err)
		}
		if _, err := s.Get(ctx, "carol"); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("Get(carol) = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, "no such/name"); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("Get of an impossible name = %v, want ErrNotFound", err)
		}
	})
}

func TestStoreCreateRejectsBadInput(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	s := newStore(t, db, sessiontest.NewClock(start))
	ctx := t.Context()
	for _, tc := range []struct {
		name, pw string
		role     account.Role
		want     error
	}{
		{"bad name", alicePassword, account.RoleUser, account.ErrInvalidName},
		{"", alicePassword, account.RoleUser, account.ErrInvalidName},
		{"carol", alicePassword, "root", account.ErrInvalidRole},
		{"carol", alicePassword, "", account.ErrInvalidRole},
		{"carol", "too short", account.RoleUser, account.ErrWeakPassword},
		{"carol", "carol carol carol", account.RoleUser, account.ErrWeakPassword},
	} {
		if err := s.Create(ctx, tc.name, tc.pw, tc.role); !errors.Is(err, tc.want) {
			t.Errorf("Create(%q, %q, %q) = %v, want %v", tc.name, tc.pw, tc.role, err, tc.want)
		}
	}
	if n, _ := s.Count(ctx); n != 0 {
		t.Errorf("%d users created from bad input", n)
	}
}

func TestStoreSetPassword(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		clock := sessiontest.NewClock(start)
		s := newStore(t, db, clock)
		auth := newAuth(t, s, clock)
		if err := s.Create(ctx, "alice", alicePassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
		const newPassword = "a completely new passphrase"
		if err := s.SetPassword(ctx, "Alice", newPassword); err != nil {
			t.Fatal(err)
		}
		u, _ := s.Get(ctx, "alice")
		if !u.PasswordChangedAt.Equal(start.Add(time.Hour)) || !u.CreatedAt.Equal(start) {
			t.Errorf("times after SetPassword: created %v, changed %v", u.CreatedAt, u.PasswordChangedAt)
		}
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: alicePassword}); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Errorf("old password after SetPassword: %v", err)
		}
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: newPassword}); err != nil {
			t.Errorf("new password after SetPassword: %v", err)
		}
		if err := s.SetPassword(ctx, "alice", "short"); !errors.Is(err, account.ErrWeakPassword) {
			t.Errorf("weak SetPassword = %v", err)
		}
		if err := s.SetPassword(ctx, "nobody", newPassword); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("SetPassword(nobody) = %v, want ErrNotFound", err)
		}
	})
}

func TestStoreSetDisabled(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		s := newStore(t, db, sessiontest.NewClock(start))
		for _, u := range []struct {
			name string
			role account.Role
		}{{"root", account.RoleAdmin}, {"alice", account.RoleAdmin}, {"bob", account.RoleUser}} {
			if err := s.Create(ctx, u.name, alicePassword+" "+u.name, u.role); err != nil {
				t.Fatal(err)
			}
		}
		disabled := func(name string) bool {
			t.Helper()
			u, err := s.Get(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			return u.Disabled
		}
		if err := s.SetDisabled(ctx, "bob", true); err != nil || !disabled("bob") {
			t.Fatalf("disable bob: %v", err)
		}
		if err := s.SetDisabled(ctx, "bob", true); err != nil {
			t.Errorf("disabling twice: %v", err)
		}
		if err := s.SetDisabled(ctx, "bob", false); err != nil || disabled("bob") {
			t.Fatalf("enable bob: %v", err)
		}
		if err := s.SetDisabled(ctx, "root", true); err != nil {
			t.Fatalf("disable one of two admins: %v", err)
		}
		// alice is now the last enabled admin.
		if err := s.SetDisabled(ctx, "Alice", true); !errors.Is(err, account.ErrLastAdmin) {
			t.Fatalf("disable the last admin = %v, want ErrLastAdmin", err)
		}
		if disabled("alice") {
			t.Fatal("the last admin was disabled")
		}
		if err := s.SetDisabled(ctx, "root", true); err != nil {
			t.Errorf("disabling an already disabled admin: %v", err)
		}
		if err := s.SetDisabled(ctx, "nobody", true); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("SetDisabled(nobody) = %v, want ErrNotFound", err)
		}
		if err := s.SetDisabled(ctx, "nobody", false); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("SetDisabled(nobody, false) = %v, want ErrNotFound", err)
		}
	})
}

func TestCreateFirstAdmin(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		s := newStore(t, db, sessiontest.NewClock(start))
		if err := s.CreateFirstAdmin(ctx, "root", "short"); !errors.Is(err, account.ErrWeakPassword) {
			t.Fatalf("weak first admin = %v", err)
		}
		// Concurrent setups: exactly one wins.
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() {
				errs[i] = s.CreateFirstAdmin(ctx, "admin"+strings.Repeat("x", i), alicePassword)
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, account.ErrAccountsExist):
				t.Errorf("CreateFirstAdmin: %v", err)
			}
		}
		users, _ := s.List(ctx)
		if won != 1 || len(users) != 1 || users[0].Role != account.RoleAdmin {
			t.Errorf("%d setups succeeded, users %+v; want exactly one admin", won, users)
		}
	})
}

func TestNewStoreRejectsBadParams(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, err := account.NewStore(t.Context(), db, account.Options{Params: account.Params{Memory: 1, Time: 1, Threads: 1}})
	if err == nil {
		t.Fatal("NewStore accepted 1 KiB of memory")
	}
}

// Two stores on one database stand for the server and a command line.
func TestStoresShareDatabase(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		a := newStore(t, db, sessiontest.NewClock(start))
		b := newStore(t, db, sessiontest.NewClock(start))
		if err := a.Create(context.Background(), "alice", alicePassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(context.Background(), "alice"); err != nil {
			t.Fatal(err)
		}
	})
}
