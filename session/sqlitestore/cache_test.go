package sqlitestore

import (
	"context"
	"errors"
	"fmt"
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
	if err := s.Touch(ctx, rec.ID, at, session.Expiry{At: at.Add(policy.IdleTimeout), Reason: session.ReasonIdle}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, rec.TokenHash)
	if err != nil || !got.LastActivity.Equal(at) {
		t.Fatalf("Get after Touch: %v, last activity %v, want %v", err, got.LastActivity, at)
	}
	if err := s.SaveData(ctx, rec.ID, nil, map[string]string{"k": "v"}); err != nil {
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
	if err := s.Renew(ctx, rec.ID, rec.TokenHash, newHash, renewal(at)); err != nil {
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

// openCached opens a Store on path whose cache keeps entries for an hour
// by the clock the test moves, so that only the watch can make it drop one.
func openCached(t *testing.T, path string, now *time.Time) *Store {
	t.Helper()
	s, err := Open(path, WithCache(time.Hour, 100))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.cache.now = func() time.Time { return *now }
	return s
}

// A session ended or renewed by another process (here another Store on the
// file, with connections of its own, as the command line or a second server
// has) is refused by the very next Get, however long the cache would keep
// it: the watch sees that another connection wrote.
func TestCacheSeesOtherProcessRevocationAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	now := t0
	server := openCached(t, path, &now)
	cli := openTest(t, path)
	ctx := context.Background()
	ended, renewed, kept := record("cli-ended"), record("cli-renewed"), record("kept")
	mustCreate(t, server, ended, renewed, kept)
	for _, rec := range []session.Record{ended, renewed, kept} {
		if _, err := server.Get(ctx, rec.TokenHash); err != nil { // cached now
			t.Fatal(err)
		}
	}

	if _, err := cli.End(ctx, ended.ID, session.Ending{Reason: session.ReasonRevoked, At: t0, KeepUntil: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Get(ctx, ended.TokenHash); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get right after another process ended the session = %v, want ErrNotFound", err)
	}
	newHash := hashOf("cli-renewed-again")
	if err := cli.Renew(ctx, renewed.ID, renewed.TokenHash, newHash, renewal(t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Get(ctx, renewed.TokenHash); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get of the old token right after another process renewed it = %v, want ErrNotFound", err)
	}
	if _, err := server.Get(ctx, newHash); err != nil {
		t.Fatalf("Get of the new token: %v", err)
	}

	// What ended elsewhere is dropped one by one; the rest stays cached.
	if _, ok := server.cache.get(kept.TokenHash); !ok {
		t.Error("a session nobody changed was dropped from the cache")
	}
}

// A user's cached list drops a session another process ended at once.
func TestListCacheSeesOtherProcessRevocationAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	now := t0
	server := openCached(t, path, &now)
	cli := openTest(t, path)
	rec := record("list-cli")
	mustCreate(t, server, rec)
	listIDs(t, server, rec.UserID) // cached now
	if _, err := cli.End(context.Background(), rec.ID, session.Ending{Reason: session.ReasonRevoked, At: t0, KeepUntil: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, server, rec.UserID); len(got) != 0 {
		t.Fatalf("List right after another process ended the session = %v, want none", got)
	}

	epoch := server.cache.currentEpoch()
	server.cache.forget("") // a write finished while the list was read
	server.cache.putList(rec.UserID, -1, []session.Record{rec}, epoch)
	if _, ok := server.cache.getList(rec.UserID, -1); ok {
		t.Error("the cache kept a list read while a write happened")
	}
}

// What another process changes without ending a token (a touch, the data)
// is seen once the cached entry is older than the TTL.
func TestCacheSeesOtherProcessActivityWithinTTL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	server, err := Open(path, WithCache(time.Second, 100))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	now := t0
	server.cache.now = func() time.Time { return now }
	cli := openTest(t, path)
	ctx := context.Background()
	rec := record("touched")
	mustCreate(t, server, rec)
	server.Get(ctx, rec.TokenHash) // cached now
	if err := cli.Touch(ctx, rec.ID, t0.Add(time.Minute), session.Expiry{At: t0.Add(31 * time.Minute), Reason: session.ReasonIdle}); err != nil {
		t.Fatal(err)
	}
	if got, _ := server.Get(ctx, rec.TokenHash); !got.LastActivity.Equal(t0) {
		t.Errorf("within the TTL: last activity %v, want the cached %v", got.LastActivity, t0)
	}
	now = now.Add(time.Second)
	if got, _ := server.Get(ctx, rec.TokenHash); !got.LastActivity.Equal(t0.Add(time.Minute)) {
		t.Errorf("after the TTL: last activity %v, want %v", got.LastActivity, t0.Add(time.Minute))
	}
}

// A watch that fell behind by more token changes than the log keeps cannot
// tell which records to drop, so it drops them all.
func TestCacheWatchFallenBehindDropsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	now := t0
	server := openCached(t, path, &now)
	cli := openTest(t, path)
	ctx := context.Background()
	kept, probe := record("kept-behind"), record("probe-behind")
	mustCreate(t, server, kept, probe)
	server.Get(ctx, kept.TokenHash) // cached now

	// Others end more sessions than the log keeps, and a sweep prunes it,
	// while this server reads nothing.
	ending := session.Ending{Reason: session.ReasonLogout, At: t0, KeepUntil: t0.Add(time.Hour)}
	for i := range tokenChangesKept + 2 {
		rec := record(fmt.Sprint("behind-", i))
		mustCreate(t, cli, rec)
		if _, err := cli.End(ctx, rec.ID, ending); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.EndExpired(ctx, t0, time.Hour, 10); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := cli.read.QueryRow(`SELECT count(*) FROM session_token_changes`).Scan(&rows); err != nil || rows != tokenChangesKept {
		t.Fatalf("the sweep left %d token changes, %v; want %d", rows, err, tokenChangesKept)
	}
	if _, err := server.Get(ctx, probe.TokenHash); err != nil { // the catch-up
		t.Fatal(err)
	}
	if want := int64(tokenChangesKept + 2); server.cache.watch.lastSeq != want {
		t.Errorf("the watch read up to change %d, want %d", server.cache.watch.lastSeq, want)
	}
	if _, ok := server.cache.get(kept.TokenHash); ok {
		t.Error("after falling behind the log, the watch kept a cached record it could not vouch for")
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
	if err := s.Touch(ctx, b.ID, t0.Add(time.Minute), session.Expiry{At: t0.Add(31 * time.Minute), Reason: session.ReasonIdle}); err != nil {
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
	cli := openTest(t, path)
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

// renewal is a renewal at at, idle from at+30m.
func renewal(at time.Time) session.Renewal {
	return session.Renewal{AuthenticatedAt: at, LastActivity: at,
		Expires: session.Expiry{At: at.Add(policy.IdleTimeout), Reason: session.ReasonIdle}}
}
