package drafts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// newStore returns a Store on db whose clock the test moves.
func newStore(t *testing.T, db *sqldb.DB, opts Options) (*Store, *sessiontest.Clock) {
	t.Helper()
	clock := sessiontest.NewClock(t0)
	opts.Clock = clock.Now
	s, err := NewStore(context.Background(), db, opts)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s, clock
}

func TestSaveLoadDelete(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, clock := newStore(t, db, Options{})

		saved, err := s.Save(ctx, Draft{User: "alice", Path: "/", Form: "note", Fields: map[string]string{
			"note": "twenty minutes of typing\nwith a second line, ünïcode and \x00 a NUL",
		}})
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
		if !saved.SavedAt.Equal(t0) || !saved.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
			t.Errorf("saved at %v, expires %v; want %v and a day later", saved.SavedAt, saved.ExpiresAt, t0)
		}
		if _, err := s.Save(ctx, Draft{User: "alice", Path: "/", Form: "other", Fields: map[string]string{"a": "b"}}); err != nil {
			t.Fatalf("Save: %v", err)
		}
		if _, err := s.Save(ctx, Draft{User: "alice", Path: "/account", Form: "note", Fields: map[string]string{"x": "y"}}); err != nil {
			t.Fatalf("Save: %v", err)
		}

		clock.Advance(time.Minute)
		list, err := s.Load(ctx, "alice", "/")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if len(list) != 2 || list[0].Form != "note" || list[1].Form != "other" {
			t.Fatalf("Load(alice, /) = %+v, want the drafts note and other", list)
		}
		if got := list[0].Fields["note"]; got != saved.Fields["note"] {
			t.Errorf("the text came back as %q, want %q", got, saved.Fields["note"])
		}
		if !list[0].SavedAt.Equal(t0) || list[0].User != "alice" || list[0].Path != "/" {
			t.Errorf("loaded draft %+v", list[0])
		}

		for _, other := range []string{"bob", "Alice"} {
			if list, err := s.Load(ctx, other, "/"); err != nil || len(list) != 0 {
				t.Errorf("Load(%s, /) = %v, %v; another user must see nothing", other, list, err)
			}
		}

		if err := s.Delete(ctx, "alice", "/", "note"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := s.Delete(ctx, "alice", "/", "note"); err != nil {
			t.Errorf("Delete of a deleted draft: %v, want nil", err)
		}
		list, _ = s.Load(ctx, "alice", "/")
		if len(list) != 1 || list[0].Form != "other" {
			t.Errorf("after Delete, Load = %+v, want only other", list)
		}
	})
}

func TestSaveReplaces(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, clock := newStore(t, db, Options{})
		s.Save(ctx, Draft{User: "alice", Path: "/", Form: "note", Fields: map[string]string{"note": "first", "title": "t"}})
		clock.Advance(time.Hour)
		if _, err := s.Save(ctx, Draft{User: "alice", Path: "/", Form: "note", Fields: map[string]string{"note": "second"}}); err != nil {
			t.Fatalf("Save: %v", err)
		}
		list, err := s.Load(ctx, "alice", "/")
		if err != nil || len(list) != 1 {
			t.Fatalf("Load = %v, %v; want one draft", list, err)
		}
		d := list[0]
		if d.Fields["note"] != "second" || len(d.Fields) != 1 {
			t.Errorf("fields %v, want only the second save's", d.Fields)
		}
		if !d.ExpiresAt.Equal(t0.Add(25 * time.Hour)) {
			t.Errorf("expires %v, want a day after the second save", d.ExpiresAt)
		}
	})
}

func TestExpiry(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, clock := newStore(t, db, Options{TTL: time.Hour})
		s.Save(ctx, Draft{User: "alice", Path: "/", Form: "note", Fields: map[string]string{"note": "x"}})

		clock.Advance(time.Hour - time.Nanosecond)
		if list, _ := s.Load(ctx, "alice", "/"); len(list) != 1 {
			t.Fatalf("a draft is gone %v before its TTL", time.Nanosecond)
		}
		clock.Advance(time.Nanosecond)
		if list, _ := s.Load(ctx, "alice", "/"); len(list) != 0 {
			t.Fatal("a draft is still served at its TTL")
		}
		n, err := s.Purge(ctx)
		if err != nil || n != 1 {
			t.Fatalf("Purge = %d, %v; want 1 deleted", n, err)
		}
		if n, _ := s.Purge(ctx); n != 0 {
			t.Errorf("second Purge deleted %d", n)
		}
	})
}

func TestSavePurgesExpiredDrafts(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, clock := newStore(t, db, Options{TTL: time.Hour})
		s.Save(ctx, Draft{User: "bob", Path: "/", Form: "note", Fields: map[string]string{"note": "x"}})
		clock.Advance(2 * time.Hour)
		s.Save(ctx, Draft{User: "alice", Path: "/", Form: "note", Fields: map[string]string{"note": "y"}})
		var rows int
		if err := db.QueryRow(`SELECT count(*) FROM drafts`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != 1 {
			t.Errorf("the table holds %d rows after a save, want 1: the expired draft of another user stays", rows)
		}
	})
}

func TestLimits(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, clock := newStore(t, db, Options{MaxBytes: 100, MaxPerUser: 3, TTL: time.Hour})

		// {"f":"..."} is 8 bytes plus the value.
		if _, err := s.Save(ctx, Draft{User: "alice", Path: "/", Form: "a", Fields: map[string]string{"f": strings.Repeat("x", 92)}}); err != nil {
			t.Errorf("a draft of exactly MaxBytes: %v", err)
		}
		_, err := s.Save(ctx, Draft{User: "alice", Path: "/", Form: "a", Fields: map[string]string{"f": strings.Repeat("x", 93)}})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("a draft one byte over MaxBytes: %v, want ErrTooLarge", err)
		}

		for _, form := range []string{"b", "c"} {
			if _, err := s.Save(ctx, Draft{User: "alice", Path: "/", Form: form}); err != nil {
				t.Fatalf("Save %s: %v", form, err)
			}
		}
		if _, err := s.Save(ctx, Draft{User: "alice", Path: "/", Form: "d"}); !errors.Is(err, ErrTooMany) {
			t.Errorf("a fourth draft: %v, want ErrTooMany", err)
		}
		if _, err := s.Save(ctx, Draft{User: "alice", Path: "/", Form: "c", Fields: map[string]string{"f": "new"}}); err != nil {
			t.Errorf("saving over an existing draft at the limit: %v", err)
		}
		if _, err := s.Save(ctx, Draft{User: "bob", Path: "/", Form: "d"}); err != nil {
			t.Errorf("another user is not limited by alice's drafts: %v", err)
		}
		clock.Advance(time.Hour)
		if _, err := s.Save(ctx, Draft{User: "alice", Path: "/", Form: "d"}); err != nil {
			t.Errorf("expired drafts still count against the limit: %v", err)
		}
	})
}

func TestConcurrentSavesRespectTheLimit(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db, Options{MaxPerUser: 5})
		var wg sync.WaitGroup
		errs := make([]error, 12)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = s.Save(ctx, Draft{User: "alice", Path: "/", Form: fmt.Sprint("f", i)})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrTooMany):
				t.Errorf("Save: %v", err)
			}
		}
		list, _ := s.Load(ctx, "alice", "/")
		if ok != 5 || len(list) != 5 {
			t.Errorf("%d saves succeeded and %d drafts are kept, want 5 and 5", ok, len(list))
		}
	})
}

func TestInvalidDrafts(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db, Options{})
		for _, d := range []Draft{
			{Path: "/", Form: "f"},
			{User: "alice", Form: "f"},
			{User: "alice", Path: "/"},
			{User: "alice", Path: "relative", Form: "f"},
			{User: "alice", Path: "/" + strings.Repeat("p", MaxPathBytes), Form: "f"},
			{User: "alice", Path: "/", Form: strings.Repeat("f", MaxFormBytes+1)},
			{User: "alice", Path: "/\x00", Form: "f"},
			{User: "alice", Path: "/", Form: "\xff"},
			{User: "alice", Path: "/", Form: "f", Fields: map[string]string{"": "v"}},
			{User: "alice", Path: "/", Form: "f", Fields: map[string]string{strings.Repeat("n", MaxFieldNameBytes+1): "v"}},
		} {
			if _, err := s.Save(ctx, d); !errors.Is(err, ErrInvalid) {
				t.Errorf("Save(%.60q) = %v, want ErrInvalid", fmt.Sprint(d), err)
			}
		}
		if _, err := s.Load(ctx, "alice", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("Load without a path: %v, want ErrInvalid", err)
		}
		if err := s.Delete(ctx, "", "/", "f"); !errors.Is(err, ErrInvalid) {
			t.Errorf("Delete without a user: %v, want ErrInvalid", err)
		}
	})
}

func TestNewStoreOptions(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	if _, err := NewStore(context.Background(), db, Options{TTL: -time.Second}); err == nil {
		t.Error("a negative TTL was accepted")
	}
	if _, err := NewStore(context.Background(), nil, Options{}); err == nil {
		t.Error("a nil database was accepted")
	}
	// A second store on the same database finds its table migrated.
	for range 2 {
		if _, err := NewStore(context.Background(), db, Options{}); err != nil {
			t.Fatalf("NewStore: %v", err)
		}
	}
}
