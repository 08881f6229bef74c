package sqlitestore

import (
	"context"
	"errors"
	"path/filepath"
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
