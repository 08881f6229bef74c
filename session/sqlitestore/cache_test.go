package sqlitestore

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// A record read just before a logout must never be served after it, however
// the read and the logout interleave.
func TestCacheNeverServesAnEndedRecord(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	for i := range 200 {
		rec := record(string(rune('a'+i%26)) + time.Now().String())
		mustCreate(t, s, rec)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						s.Get(ctx, rec.TokenHash)
					}
				}
			}()
		}
		if _, err := s.End(ctx, rec.ID, session.Ending{Reason: session.ReasonLogout, At: t0, KeepUntil: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		if _, err := s.Get(ctx, rec.TokenHash); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("round %d: Get after End = %v, want ErrNotFound", i, err)
		}
	}
}

// Changes this Store makes are seen at once; the cache never hides them.
func TestCacheSeesOwnWrites(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	rec := record("own")
	mustCreate(t, s, rec)
	s.Get(ctx, rec.TokenHash) // cached now
	at := t0.Add(time.Minute)
	if err := s.Touch(ctx, rec.ID, at); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, rec.TokenHash)
	if err != nil || !got.LastActivity.Equal(at) {
		t.Fatalf("Get after Touch: %v, last activity %v, want %v", err, got.LastActivity, at)
	}
	if err := s.SaveData(ctx, rec.ID, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, rec.TokenHash)
	if got.Data["k"] != "v" {
		t.Fatalf("Get after SaveData: data %v", got.Data)
	}
	got.Data["k"] = "changed by the caller"
	if again, _ := s.Get(ctx, rec.TokenHash); again.Data["k"] != "v" {
		t.Fatal("a caller changed the cached record's data")
	}
	newHash := hashOf("own-renewed")
	if err := s.Renew(ctx, rec.ID, rec.TokenHash, newHash, at, at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, rec.TokenHash); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("old hash after Renew: %v", err)
	}
	ended, err := s.EndExpired(ctx, t0.Add(48*time.Hour), time.Hour, 10)
	if err != nil || len(ended) != 1 {
		t.Fatalf("EndExpired: %v, %d", err, len(ended))
	}
	if _, err := s.Get(ctx, newHash); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get after the sweep: %v", err)
	}
}

// Another process's changes (the command line revoking a session) are seen
// once the cached entry is older than the TTL.
func TestCacheSeesOtherProcessWithinTTL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	server, err := Open(path, WithCache(time.Second, 100))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	now := t0
	server.cache.now = func() time.Time { return now }
	cli := openPath(t, path)
	ctx := context.Background()
	rec := record("cli")
	mustCreate(t, server, rec)
	if _, err := server.Get(ctx, rec.TokenHash); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.End(ctx, rec.ID, session.Ending{Reason: session.ReasonRevoked, At: t0, KeepUntil: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if _, err := server.Get(ctx, rec.TokenHash); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a revocation by another process is not seen after the TTL: %v", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "small.db"), WithCache(time.Minute, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range 50 {
		rec := record(string(rune('A' + i)))
		mustCreate(t, s, rec)
		s.Get(ctx, rec.TokenHash)
	}
	if n := len(s.cache.entries); n > 10 {
		t.Fatalf("cache holds %d entries, limit 10", n)
	}
}

// listIDs lists user's sessions and returns their IDs and last activities.
func listIDs(t *testing.T, s *Store, user string) []string {
	t.Helper()
	recs, err := s.List(context.Background(), user, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.ID+"@"+r.LastActivity.Sub(t0).String())
	}
	return out
}

// A user's cached list never hides this Store's own writes: a new session,
// a touch, an ending. A caller changing the list it got changes nothing.
func TestListCacheSeesOwnWrites(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	a := record("list-a")
	mustCreate(t, s, a)
	if got := listIDs(t, s, a.UserID); !slices.Equal(got, []string{"id-list-a@0s"}) {
		t.Fatalf("List = %v", got)
	}
	b := record("list-b")
	b.UserID = a.UserID
	mustCreate(t, s, b)
	if got := listIDs(t, s, a.UserID); !slices.Equal(got, []string{"id-list-a@0s", "id-list-b@0s"}) {
		t.Fatalf("List after a second sign-in = %v", got)
	}
	if err := s.Touch(ctx, b.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, s, a.UserID); !slices.Equal(got, []string{"id-list-a@0s", "id-list-b@1m0s"}) {
		t.Fatalf("List after a touch = %v", got)
	}
	recs, _ := s.List(ctx, a.UserID, 0)
	recs[0].ID = "changed by the caller"
	if _, err := s.End(ctx, a.ID, session.Ending{Reason: session.ReasonLogout, At: t0, KeepUntil: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, s, a.UserID); !slices.Equal(got, []string{"id-list-b@1m0s"}) {
		t.Fatalf("List after a sign-out = %v", got)
	}
}

// Another process's changes to a user's sessions are seen once the cached
// list is older than the TTL; a list read while a write ran is not kept.
func TestListCacheSeesOtherProcessWithinTTL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	server, err := Open(path, WithCache(time.Second, 100))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	now := t0
	server.cache.now = func() time.Time { return now }
	cli := openPath(t, path)
	rec := record("list-cli")
	mustCreate(t, server, rec)
	listIDs(t, server, rec.UserID) // cached now
	if _, err := cli.End(context.Background(), rec.ID, session.Ending{Reason: session.ReasonRevoked, At: t0, KeepUntil: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if got := listIDs(t, server, rec.UserID); len(got) != 0 {
		t.Fatalf("a revocation by another process is not seen after the TTL: %v", got)
	}

	epoch := server.cache.currentEpoch()
	server.cache.forget("") // a write finished while the list was read
	server.cache.putList(rec.UserID, -1, []session.Record{rec}, epoch)
	if _, ok := server.cache.getList(rec.UserID, -1); ok {
		t.Error("the cache kept a list read while a write happened")
	}
}
