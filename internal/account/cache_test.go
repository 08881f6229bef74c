package account_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

// getUser is Get that fails the test on an error.
func getUser(t *testing.T, s *account.Store, name string) account.User {
	t.Helper()
	u, err := s.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return u
}

// Changes made through the Store that serves Get are seen at once, however
// long the cache would keep the user otherwise.
func TestGetSeesOwnChangesAtOnce(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		clock := sessiontest.NewClock(start)
		s, err := account.NewStore(ctx, db, account.Options{Params: fastParams, Clock: clock.Now, CacheTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, "alice", alicePassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, "root", bobPassword, account.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		getUser(t, s, "alice") // cached now

		if err := s.SetDisabled(ctx, "alice", true); err != nil {
			t.Fatal(err)
		}
		if u := getUser(t, s, "Alice"); !u.Disabled {
			t.Errorf("Get after SetDisabled(true) = %+v, want disabled", u)
		}
		if err := s.SetDisabled(ctx, "alice", false); err != nil {
			t.Fatal(err)
		}
		if u := getUser(t, s, "alice"); u.Disabled {
			t.Errorf("Get after SetDisabled(false) = %+v, want enabled", u)
		}
		clock.Advance(time.Minute)
		if err := s.SetPassword(ctx, "alice", "a brand new passphrase here"); err != nil {
			t.Fatal(err)
		}
		if u := getUser(t, s, "alice"); !u.PasswordChangedAt.Equal(start.Add(time.Minute)) {
			t.Errorf("Get after SetPassword: PasswordChangedAt = %v, want %v", u.PasswordChangedAt, start.Add(time.Minute))
		}
	})
}

// A change made by another process (here another Store on the same
// database, as the command line is) is seen by the very next Get, however
// long the cache would keep the user otherwise.
func TestGetSeesOtherProcessAtOnce(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		clock := sessiontest.NewClock(start)
		server, err := account.NewStore(ctx, db, account.Options{Params: fastParams, Clock: clock.Now, CacheTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		cli := newStore(t, db, sessiontest.NewClock(start))
		if err := server.Create(ctx, "alice", alicePassword, account.RoleUser); err != nil {
			t.Fatal(err)
		}
		if err := server.Create(ctx, "root", bobPassword, account.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		getUser(t, server, "alice") // cached now, for an hour
		getUser(t, server, "root")

		if err := cli.SetDisabled(ctx, "alice", true); err != nil {
			t.Fatal(err)
		}
		if u := getUser(t, server, "alice"); !u.Disabled {
			t.Errorf("Get right after another process disabled the user = %+v, want disabled", u)
		}
		if err := cli.SetDisabled(ctx, "alice", false); err != nil {
			t.Fatal(err)
		}
		if u := getUser(t, server, "alice"); u.Disabled {
			t.Errorf("Get right after another process enabled the user = %+v, want enabled", u)
		}
		clock.Advance(time.Minute)
		if err := cli.SetPassword(ctx, "alice", "a brand new passphrase here"); err != nil {
			t.Fatal(err)
		}
		if u := getUser(t, server, "alice"); !u.PasswordChangedAt.Equal(start) {
			t.Errorf("Get after another process changed the password: PasswordChangedAt = %v, want %v (the other's clock)", u.PasswordChangedAt, start)
		}

		// Sign-in never trusts the cache either.
		getUser(t, server, "alice")
		if err := cli.SetDisabled(ctx, "alice", true); err != nil {
			t.Fatal(err)
		}
		auth := newAuth(t, server, clock)
		if _, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "a brand new passphrase here", IP: "192.0.2.1"}); err == nil {
			t.Error("Authenticate accepted a user disabled by another process")
		}
	})
}

// The same with the server and the command line on connections of their
// own to one SQLite file, as two processes are.
func TestGetSeesOtherConnectionAtOnce(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "shared.db")
	open := func() *sqldb.DB {
		db, err := sqldb.Open(ctx, "sqlite:"+path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	clock := sessiontest.NewClock(start)
	server, err := account.NewStore(ctx, open(), account.Options{Params: fastParams, Clock: clock.Now, CacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cli := newStore(t, open(), clock)
	if err := cli.Create(ctx, "alice", alicePassword, account.RoleUser); err != nil {
		t.Fatal(err)
	}
	getUser(t, server, "alice") // cached now, for an hour
	if err := cli.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if u := getUser(t, server, "alice"); !u.Disabled {
		t.Errorf("Get right after another connection disabled the user = %+v, want disabled", u)
	}
}

// CacheOff turns the cache off: every Get reads the database.
func TestGetWithoutCache(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	ctx := t.Context()
	clock := sessiontest.NewClock(start)
	server, err := account.NewStore(ctx, db, account.Options{Params: fastParams, Clock: clock.Now, CacheTTL: account.CacheOff})
	if err != nil {
		t.Fatal(err)
	}
	cli := newStore(t, db, clock)
	if err := server.Create(ctx, "alice", alicePassword, account.RoleUser); err != nil {
		t.Fatal(err)
	}
	getUser(t, server, "alice")
	if err := cli.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if u := getUser(t, server, "alice"); !u.Disabled {
		t.Errorf("Get without a cache = %+v, want disabled at once", u)
	}
}
