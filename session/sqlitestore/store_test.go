package sqlitestore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// t0 is the tests' reference instant; its nanoseconds check that times are
// not rounded on the way through the database.
var t0 = time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)

var policy = session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}

// record returns a distinct record for each name, created at t0.
func record(name string) session.Record {
	return session.Record{
		Info: session.Info{
			ID:              "id-" + name,
			UserID:          "user-" + name,
			CreatedAt:       t0,
			AuthenticatedAt: t0,
			LastActivity:    t0,
			Policy:          policy,
			IP:              "192.0.2.1",
			UserAgent:       "test agent",
		},
		TokenHash: hashOf(name),
	}
}

func hashOf(name string) session.TokenHash { return sha256.Sum256([]byte("token-" + name)) }

// open returns a Store on a new file, closed when the test ends.
func open(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sessions.db")
	return openPath(t, path), path
}

func openPath(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustCreate(t testing.TB, s *Store, recs ...session.Record) {
	t.Helper()
	for _, r := range recs {
		if err := s.Create(context.Background(), r); err != nil {
			t.Fatalf("Create(%s): %v", r.ID, err)
		}
	}
}

func equalRecords(a, b session.Record) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.TokenHash == b.TokenHash &&
		a.CreatedAt.Equal(b.CreatedAt) && a.AuthenticatedAt.Equal(b.AuthenticatedAt) &&
		a.LastActivity.Equal(b.LastActivity) && a.Policy == b.Policy &&
		a.IP == b.IP && a.UserAgent == b.UserAgent && fmt.Sprint(a.Data) == fmt.Sprint(b.Data) &&
		(a.Data == nil) == (b.Data == nil)
}

func TestDurableAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	touched, ended, renewed, data := record("touched"), record("ended"), record("renewed"), record("data")
	data.Data = map[string]string{"theme": "dark", "lang": "fr"}
	mustCreate(t, s, touched, ended, renewed, data)
	touchAt := t0.Add(10*time.Minute + 7)
	if err := s.Touch(ctx, touched.ID, touchAt); err != nil {
		t.Fatal(err)
	}
	endedAt := t0.Add(time.Minute)
	ending := session.Ending{Reason: session.ReasonRevoked, At: endedAt, KeepUntil: endedAt.Add(time.Hour)}
	if _, err := s.End(ctx, ended.ID, ending); err != nil {
		t.Fatal(err)
	}
	newHash := hashOf("renewed-2")
	if err := s.Renew(ctx, renewed.ID, renewed.TokenHash, newHash, t0.Add(2*time.Minute), t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openPath(t, path)
	got, err := s.Get(ctx, touched.TokenHash)
	touched.LastActivity = touchAt
	if err != nil || !equalRecords(got, touched) {
		t.Errorf("touched record after reopen = %+v, %v; want %+v", got, err, touched)
	}
	if got, err := s.Get(ctx, data.TokenHash); err != nil || !equalRecords(got, data) {
		t.Errorf("record with data after reopen = %+v, %v; want %+v", got, err, data)
	}
	if _, err := s.Get(ctx, ended.TokenHash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("ended record after reopen: err = %v, want ErrNotFound", err)
	}
	if e, err := s.Ended(ctx, ended.TokenHash); err != nil || e.Reason != ending.Reason ||
		!e.At.Equal(ending.At) || !e.KeepUntil.Equal(ending.KeepUntil) {
		t.Errorf("Ended after reopen = %+v, %v; want %+v", e, err, ending)
	}
	if _, err := s.Get(ctx, renewed.TokenHash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("old hash of renewed record after reopen: err = %v, want ErrNotFound", err)
	}
	if got, err := s.Get(ctx, newHash); err != nil || !got.AuthenticatedAt.Equal(t0.Add(2*time.Minute)) ||
		!got.LastActivity.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("renewed record after reopen = %+v, %v", got, err)
	}
	if recs, err := s.List(ctx, "", 0); err != nil || len(recs) != 3 {
		t.Errorf("List after reopen = %d records, %v; want 3", len(recs), err)
	}
}

// TestSurvivesProcessCrash kills a process that wrote to the store without
// closing it, then reads what it wrote: WAL with synchronous=NORMAL keeps
// every committed transaction when only the process dies.
func TestSurvivesProcessCrash(t *testing.T) {
	if path := os.Getenv("SQLITESTORE_CRASH_PATH"); path != "" {
		crashingWriter(path)
		return
	}
	path := filepath.Join(t.TempDir(), "sessions.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSurvivesProcessCrash$")
	cmd.Env = append(os.Environ(), "SQLITESTORE_CRASH_PATH="+path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("writer process: %v (want exit status 3)\n%s", err, out)
	}
	s := openPath(t, path)
	ctx := context.Background()
	for i := range 100 {
		r := record(fmt.Sprint(i))
		got, err := s.Get(ctx, r.TokenHash)
		if i%2 == 1 {
			if e, err := s.Ended(ctx, r.TokenHash); err != nil || e.Reason != session.ReasonLogout {
				t.Fatalf("record %d ended before the crash: Ended = %+v, %v", i, e, err)
			}
			continue
		}
		if err != nil || !got.LastActivity.Equal(t0.Add(time.Minute)) {
			t.Fatalf("record %d after the crash = %+v, %v; want touched at t0+1m", i, got, err)
		}
	}
}

// crashingWriter creates, touches and ends records, then exits without
// closing the store, as a killed process would.
func crashingWriter(path string) {
	s, err := Open(path)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	ctx := context.Background()
	for i := range 100 {
		r := record(fmt.Sprint(i))
		err := s.Create(ctx, r)
		if err == nil {
			err = s.Touch(ctx, r.ID, t0.Add(time.Minute))
		}
		if err == nil && i%2 == 1 {
			_, err = s.End(ctx, r.ID, session.Ending{Reason: session.ReasonLogout, At: t0, KeepUntil: t0.Add(time.Hour)})
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}
	os.Exit(3)
}

func TestMigrateNewFileAndReopen(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	mustCreate(t, s, record("a"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // reopening must neither fail nor re-run migrations
		s = openPath(t, path)
		if _, err := s.Get(ctx, hashOf("a")); err != nil {
			t.Fatalf("Get after reopen: %v", err)
		}
		var version int
		if err := s.read.QueryRow(`SELECT version FROM session_schema`).Scan(&version); err != nil || version != len(migrations) {
			t.Fatalf("schema version = %d, %v; want %d", version, err, len(migrations))
		}
		var rows int
		if err := s.read.QueryRow(`SELECT count(*) FROM session_schema`).Scan(&rows); err != nil || rows != 1 {
			t.Fatalf("session_schema has %d rows, %v; want 1", rows, err)
		}
		var mode string
		if err := s.read.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
		}
		s.Close()
	}
}

// TestSharesFileWithOtherTables checks that the store leaves alone what other
// packages keep in the same file, PRAGMA user_version included.
func TestSharesFileWithOtherTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.db")
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`PRAGMA user_version = 7; CREATE TABLE account_users (name TEXT);
		INSERT INTO account_users VALUES ('ada')`); err != nil {
		t.Fatal(err)
	}
	s := openPath(t, path)
	mustCreate(t, s, record("a"))
	var version int
	var name string
	if err := other.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != 7 {
		t.Errorf("user_version = %d, %v; want 7, untouched", version, err)
	}
	if err := other.QueryRow(`SELECT name FROM account_users`).Scan(&name); err != nil || name != "ada" {
		t.Errorf("other package's row = %q, %v", name, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	s, path := open(t)
	if _, err := s.write.Exec(`UPDATE session_schema SET version = ?`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path)
	if err == nil {
		s2.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open: err = %v, want ErrSchemaTooNew", err)
	}
	t.Log(err)
}

func TestOpenRejectsBadPaths(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file::memory:?cache=shared", "file:x.db"} {
		if s, err := Open(path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
	dir := filepath.Join(t.TempDir(), "missing-dir")
	if s, err := Open(filepath.Join(dir, "x.db")); err == nil {
		s.Close()
		t.Errorf("Open in a missing directory succeeded")
	}
}

func TestOpenOddFileName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a ?b#c%20d.db")
	s := openPath(t, path)
	mustCreate(t, s, record("a"))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	mustCreate(t, s, record("a"))
	farFuture := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	tooLongPolicy := record("long")
	tooLongPolicy.Policy.AbsoluteTimeout = 250 * 365 * 24 * time.Hour
	noID := record("noid")
	noID.ID = ""
	farPast := record("past")
	farPast.CreatedAt = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, err := range map[string]error{
		"create with time out of range":  s.Create(ctx, farPast),
		"create with deadline past 2262": s.Create(ctx, tooLongPolicy),
		"create without ID":              s.Create(ctx, noID),
		"touch past 2262":                s.Touch(ctx, "id-a", farFuture),
		"renew past 2262":                s.Renew(ctx, "id-a", hashOf("a"), hashOf("b"), farFuture, farFuture),
	} {
		if err == nil || errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s: err = %v, want a clear error", name, err)
		}
	}
	if _, err := s.End(ctx, "id-a", session.Ending{Reason: "bored", At: t0, KeepUntil: t0}); err == nil {
		t.Error("End with an invalid reason succeeded")
	}
	for _, limit := range []int{0, -1} {
		if _, err := s.EndExpired(ctx, t0, time.Hour, limit); err == nil {
			t.Errorf("EndExpired with limit %d succeeded", limit)
		}
	}
	if _, err := s.EndExpired(ctx, t0, -time.Hour, 10); err == nil {
		t.Error("EndExpired with negative keep succeeded")
	}
	if _, err := s.Get(ctx, hashOf("a")); err != nil {
		t.Errorf("record changed by rejected calls: Get: %v", err)
	}
}

func TestTouchMovesDeadline(t *testing.T) {
	ctx := context.Background()
	idle := policy.IdleTimeout
	tests := []struct {
		name      string
		touches   []time.Duration // after t0
		wantErr   error
		expiredAt time.Duration // first instant EndExpired takes the record
	}{
		{"untouched", nil, nil, idle},
		{"touched later", []time.Duration{10 * time.Minute}, nil, 10*time.Minute + idle},
		{"older touch is a no-op", []time.Duration{10 * time.Minute, 5 * time.Minute}, nil, 10*time.Minute + idle},
		{"touch 1ns before idle deadline", []time.Duration{idle - 1}, nil, 2*idle - 1},
		{"touch at idle deadline", []time.Duration{idle}, session.ErrNotFound, idle},
		{"absolute deadline caps touches", []time.Duration{12*time.Hour - time.Minute}, nil, 12 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := open(t)
			r := record("a")
			mustCreate(t, s, r)
			// Walk the session forward in steps inside the idle timeout so that
			// late touches find it alive.
			var err error
			for _, d := range tt.touches {
				if d > idle {
					for at := time.Duration(0); at < d; at += idle / 2 {
						if err := s.Touch(ctx, r.ID, t0.Add(at)); err != nil {
							t.Fatalf("touch at +%v: %v", at, err)
						}
					}
				}
				err = s.Touch(ctx, r.ID, t0.Add(d))
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("last touch: err = %v, want %v", err, tt.wantErr)
			}
			if e, err := s.EndExpired(ctx, t0.Add(tt.expiredAt-1), 0, 10); err != nil || len(e) != 0 {
				t.Fatalf("EndExpired 1ns before the deadline ended %d records, %v", len(e), err)
			}
			e, err := s.EndExpired(ctx, t0.Add(tt.expiredAt), 0, 10)
			if err != nil || len(e) != 1 {
				t.Fatalf("EndExpired at the deadline ended %d records, %v; want 1", len(e), err)
			}
			if !e[0].At.Equal(t0.Add(tt.expiredAt)) {
				t.Errorf("ended at %v, want %v", e[0].At, t0.Add(tt.expiredAt))
			}
		})
	}
}

func TestRenewResetsDeadline(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	r := record("a")
	mustCreate(t, s, r)
	at := t0.Add(20 * time.Minute)
	if err := s.Renew(ctx, r.ID, r.TokenHash, hashOf("b"), at, at); err != nil {
		t.Fatal(err)
	}
	// Renewed at t0+20m: the idle deadline is now t0+50m, not t0+30m.
	if e, err := s.EndExpired(ctx, t0.Add(50*time.Minute-1), 0, 10); err != nil || len(e) != 0 {
		t.Fatalf("EndExpired before the renewed deadline ended %d, %v", len(e), err)
	}
	if err := s.Touch(ctx, r.ID, t0.Add(49*time.Minute)); err != nil {
		t.Fatalf("Touch before the renewed deadline: %v", err)
	}
	// A second renewal from the same old hash lost the race.
	if err := s.Renew(ctx, r.ID, r.TokenHash, hashOf("c"), at, at); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Renew from a stale hash: err = %v, want ErrNotFound", err)
	}
	mustCreate(t, s, record("d"))
	if err := s.Renew(ctx, r.ID, hashOf("b"), hashOf("d"), at, at); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("Renew to another record's hash: err = %v, want ErrConflict", err)
	}
}

func TestCreateConflict(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	a := record("a")
	mustCreate(t, s, a)
	sameID, sameHash := record("b"), record("c")
	sameID.ID = a.ID
	sameHash.TokenHash = a.TokenHash
	for name, r := range map[string]session.Record{"same ID": sameID, "same hash": sameHash} {
		if err := s.Create(ctx, r); !errors.Is(err, session.ErrConflict) {
			t.Errorf("Create with the %s: err = %v, want ErrConflict", name, err)
		}
	}
}

// TestEndExactlyOnceAcrossStores races End and EndExpired through two Stores
// on one file, as two processes would: every record is won exactly once.
func TestEndExactlyOnceAcrossStores(t *testing.T) {
	ctx := context.Background()
	a, path := open(t)
	b := openPath(t, path)
	const n = 200
	for i := range n {
		mustCreate(t, a, record(fmt.Sprint(i)))
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for _, s := range []*Store{a, b, a, b} {
		wg.Go(func() {
			for i := range n {
				_, err := s.End(ctx, "id-"+fmt.Sprint(i), session.Ending{Reason: session.ReasonRevoked, At: t0, KeepUntil: t0.Add(time.Hour)})
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, session.ErrNotFound):
					errc <- err
					return
				}
			}
		})
	}
	for _, s := range []*Store{a, b} {
		wg.Go(func() {
			for {
				e, err := s.EndExpired(ctx, t0.Add(policy.IdleTimeout), time.Hour, 7)
				if err != nil {
					errc <- err
					return
				}
				wins.Add(int64(len(e)))
				if len(e) < 7 {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if got := wins.Load(); got != n {
		t.Fatalf("%d records ended by the winners of End and EndExpired, want exactly %d", got, n)
	}
	if recs, err := b.List(ctx, "", 0); err != nil || len(recs) != 0 {
		t.Fatalf("List after ending all = %d, %v", len(recs), err)
	}
}

// TestEndExpiredBatchesWhileServing sweeps 10,000 expired records in bounded
// batches while Get and Touch on a live session keep succeeding.
func TestEndExpiredBatchesWhileServing(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	const expired, limit = 10_000, 500
	insertExpired(t, s, expired)
	live := record("live")
	live.AuthenticatedAt, live.LastActivity = t0.Add(time.Hour), t0.Add(time.Hour)
	mustCreate(t, s, live)
	now := t0.Add(time.Hour)

	stop := make(chan struct{})
	var gets atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	for i := range 2 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Get(ctx, live.TokenHash); err != nil {
					errc <- fmt.Errorf("Get during sweep: %w", err)
					return
				}
				if i == 0 && n%10 == 0 { // a touch interval makes writes rarer than reads
					if err := s.Touch(ctx, live.ID, now); err != nil {
						errc <- fmt.Errorf("Touch during sweep: %w", err)
						return
					}
				}
				gets.Add(1)
			}
		})
	}
	batches, total := 0, 0
	for {
		e, err := s.EndExpired(ctx, now, time.Hour, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(e) > limit {
			t.Fatalf("batch of %d, limit %d", len(e), limit)
		}
		for _, x := range e {
			if x.Reason != session.ReasonIdle || !x.KeepUntil.Equal(x.At.Add(time.Hour)) {
				t.Fatalf("ended %+v, want idle, kept an hour", x.Ending)
			}
		}
		batches++
		total += len(e)
		if len(e) < limit {
			break
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if total != expired || batches != expired/limit+1 {
		t.Errorf("ended %d records in %d batches, want %d in %d", total, batches, expired, expired/limit+1)
	}
	if gets.Load() == 0 {
		t.Error("no Get completed during the sweep")
	}
	if _, err := s.Get(ctx, live.TokenHash); err != nil {
		t.Errorf("live session after the sweep: %v", err)
	}

	// The ended-token records go once their hour has passed, also in batches.
	if _, err := s.Ended(ctx, hashOf("expired-0")); err != nil {
		t.Fatalf("Ended before purge: %v", err)
	}
	purged := 0
	for range expired/limit + 1 {
		if _, err := s.EndExpired(ctx, now.Add(time.Hour), time.Hour, limit); err != nil {
			t.Fatal(err)
		}
		// Not counting the live session, ended in this sweep and kept longer.
		var left int
		if err := s.read.QueryRow(`SELECT count(*) FROM session_ended WHERE token_hash != ?`,
			live.TokenHash[:]).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if expired-left-purged > limit {
			t.Fatalf("one call purged %d ended-token records, limit %d", expired-left-purged, limit)
		}
		purged = expired - left
	}
	if purged != expired {
		t.Errorf("purged %d ended-token records, want %d", purged, expired)
	}
	if _, err := s.Ended(ctx, hashOf("expired-0")); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Ended after purge: err = %v, want ErrNotFound", err)
	}
}

// insertExpired creates n records, expired by t0+30m, in one transaction.
func insertExpired(t testing.TB, s *Store, n int) {
	t.Helper()
	tx, err := s.write.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	st, err := tx.Prepare(`INSERT INTO session_records (` + recordColumns + `, deadline)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := record(fmt.Sprint("expired-", i))
		// Spread the deadlines so batches take the oldest first.
		at := t0.Add(time.Duration(i) * time.Millisecond)
		if _, err := st.Exec(r.ID, r.TokenHash[:], r.UserID, at.UnixNano(), at.UnixNano(), at.UnixNano(),
			int64(policy.IdleTimeout), int64(policy.AbsoluteTimeout), r.IP, r.UserAgent,
			at.Add(policy.IdleTimeout).UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestEndExpiredOldestFirstAndReasons(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	idle, abs := record("idle"), record("abs")
	abs.Policy = session.Policy{IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour} // tie: absolute
	idle.LastActivity = t0.Add(-time.Minute)
	mustCreate(t, s, abs, idle)
	e, err := s.EndExpired(ctx, t0.Add(90*time.Minute), time.Hour, 1)
	if err != nil || len(e) != 1 || e[0].ID != idle.ID || e[0].Reason != session.ReasonIdle ||
		!e[0].At.Equal(t0.Add(29*time.Minute)) {
		t.Fatalf("first batch = %+v, %v; want the idle record ended at t0+29m", e, err)
	}
	e, err = s.EndExpired(ctx, t0.Add(90*time.Minute), time.Hour, 1)
	if err != nil || len(e) != 1 || e[0].ID != abs.ID || e[0].Reason != session.ReasonAbsolute {
		t.Fatalf("second batch = %+v, %v; want the absolute record", e, err)
	}
	if got, err := s.Ended(ctx, abs.TokenHash); err != nil || got.Reason != session.ReasonAbsolute ||
		!got.KeepUntil.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("Ended(abs) = %+v, %v", got, err)
	}
}

// EndExpired computes the endings it stores in SQL and the endings it
// returns in Go, and selects its batch twice (once for each): the two must
// agree, for every reason, at the edge of "keep for ever", and for ties of
// deadline split across batches.
func TestEndExpiredStoresTheEndingsItReturns(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name         string
		auth         time.Duration // before t0
		policy       session.Policy
		keep         time.Duration
		wantKeepEver bool
	}{
		{"idle", 0, policy, time.Hour, false},
		{"absolute", 45 * time.Minute, session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: time.Hour}, time.Hour, false},
		{"tie", 30 * time.Minute, session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: time.Hour}, time.Hour, false},
		{"keep nothing", 0, policy, 0, false},
		{"keep for ever", 0, policy, time.Duration(math.MaxInt64), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := open(t)
			rec := record(c.name)
			rec.Policy = c.policy
			rec.AuthenticatedAt = t0.Add(-c.auth)
			mustCreate(t, s, rec)
			ended, err := s.EndExpired(ctx, t0.Add(30*time.Minute), c.keep, 10) // every deadline, no KeepUntil
			if err != nil || len(ended) != 1 {
				t.Fatalf("EndExpired = %v, %v; want one record", ended, err)
			}
			reason, at := rec.Expiry()
			if e := ended[0].Ending; e.Reason != reason || !e.At.Equal(at) {
				t.Errorf("returned ending %+v; want %s at %v", e, reason, at)
			}
			if c.wantKeepEver != ended[0].KeepUntil.Equal(session.MaxStoreTime) {
				t.Errorf("returned KeepUntil %v; keep for ever: %v", ended[0].KeepUntil, c.wantKeepEver)
			}
			got, err := s.Ended(ctx, rec.TokenHash)
			if err != nil || got.Reason != ended[0].Reason || !got.At.Equal(ended[0].At) || !got.KeepUntil.Equal(ended[0].KeepUntil) {
				t.Errorf("Ended = %+v, %v; want what EndExpired returned, %+v", got, err, ended[0].Ending)
			}
		})
	}

	t.Run("ties across batches", func(t *testing.T) {
		s, _ := open(t)
		const n, limit = 25, 10
		var recs []session.Record
		for i := range n {
			rec := record(fmt.Sprint("tie-", i)) // all with the same deadline
			mustCreate(t, s, rec)
			recs = append(recs, rec)
		}
		endedIDs := make(map[string]bool)
		for batch := 0; len(endedIDs) < n; batch++ {
			ended, err := s.EndExpired(ctx, t0.Add(time.Hour), time.Hour, limit)
			if err != nil || len(ended) != min(limit, n-len(endedIDs)) {
				t.Fatalf("batch %d: EndExpired = %d records, %v", batch, len(ended), err)
			}
			for _, e := range ended {
				endedIDs[e.ID] = true
			}
			for _, rec := range recs {
				_, err := s.Ended(ctx, rec.TokenHash)
				_, getErr := s.Get(ctx, rec.TokenHash)
				switch {
				case endedIDs[rec.ID] && (err != nil || !errors.Is(getErr, session.ErrNotFound)):
					t.Errorf("batch %d: %s ended, but Ended = %v and Get = %v", batch, rec.ID, err, getErr)
				case !endedIDs[rec.ID] && (!errors.Is(err, session.ErrNotFound) || getErr != nil):
					t.Errorf("batch %d: %s not ended, but Ended = %v and Get = %v", batch, rec.ID, err, getErr)
				}
			}
		}
	})
}

func TestDataRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	r := record("a")
	mustCreate(t, s, r)
	for _, data := range []map[string]string{
		{"k": "v", "quote\"": "line\nbreak", "ünï": "\x00"},
		{},
		nil,
	} {
		if err := s.SaveData(ctx, r.ID, data); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, r.TokenHash)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 && got.Data != nil {
			t.Errorf("SaveData(%#v) read back as %#v, want nil", data, got.Data)
		}
		if len(data) > 0 && fmt.Sprint(got.Data) != fmt.Sprint(data) {
			t.Errorf("SaveData(%q) read back as %q", data, got.Data)
		}
	}
	if err := s.SaveData(ctx, "missing", map[string]string{"a": "b"}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SaveData on a missing record: err = %v, want ErrNotFound", err)
	}
}

func TestListOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	var want []string
	for i := range 5 {
		r := record(fmt.Sprint(i))
		r.UserID = "ada"
		r.CreatedAt = t0.Add(time.Duration(5-i) * time.Second) // created in reverse order
		want = append([]string{r.ID}, want...)
		mustCreate(t, s, r)
	}
	mustCreate(t, s, record("other"))
	recs, err := s.List(ctx, "ada", 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(want[:3]) {
		t.Errorf("List(ada, 3) = %v, want %v", got, want[:3])
	}
	if all, err := s.List(ctx, "", 0); err != nil || len(all) != 6 {
		t.Errorf("List(all) = %d, %v; want 6", len(all), err)
	}
}

func TestClosedStoreFails(t *testing.T) {
	s, _ := open(t)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	s.Close()
	if err := s.Ping(context.Background()); err == nil {
		t.Error("Ping after Close succeeded")
	}
	if _, err := s.Get(context.Background(), hashOf("a")); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get after Close: err = %v, want a closed-database error", err)
	}
}

func TestEndedKeptUntilKeepUntilInclusive(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	r := record("a")
	mustCreate(t, s, r)
	keepUntil := t0.Add(time.Hour)
	if _, err := s.End(ctx, r.ID, session.Ending{Reason: session.ReasonLogout, At: t0, KeepUntil: keepUntil}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		now  time.Time
		kept bool
	}{{keepUntil.Add(-1), true}, {keepUntil, true}, {keepUntil.Add(1), false}} {
		if _, err := s.EndExpired(ctx, step.now, time.Hour, 10); err != nil {
			t.Fatal(err)
		}
		_, err := s.Ended(ctx, r.TokenHash)
		if kept := err == nil; kept != step.kept {
			t.Errorf("after a sweep at KeepUntil%+v: Ended err = %v, want kept %v", step.now.Sub(keepUntil), err, step.kept)
		}
	}
}
