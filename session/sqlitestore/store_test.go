package sqlitestore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqlstore"
	"github.com/sessionguard/sessionguard/session"
)

// t0 is the tests' reference instant; its nanoseconds check that times are
// not rounded on the way through the database.
var t0 = time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)

var policy = session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}

// record returns a distinct record for each name, created at t0 and idle
// from t0+30m.
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
			Expires:         session.Expiry{At: t0.Add(policy.IdleTimeout), Reason: session.ReasonIdle},
		},
		TokenHash: hashOf(name),
	}
}

func hashOf(name string) session.TokenHash { return sha256.Sum256([]byte("token-" + name)) }

// open returns a Store on a new file, closed when the test ends.
func open(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sessions.db")
	return openTest(t, path), path
}

func mustCreate(t testing.TB, s *Store, recs ...session.Record) {
	t.Helper()
	for _, r := range recs {
		if err := s.Create(context.Background(), r); err != nil {
			t.Fatalf("Create(%s): %v", r.ID, err)
		}
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
	s := openTest(t, path)
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
			at := t0.Add(time.Minute)
			err = s.Touch(ctx, r.ID, at, session.Expiry{At: at.Add(policy.IdleTimeout), Reason: session.ReasonIdle})
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

// schemaVersion returns the session row of schema_migrations.
func schemaVersion(t *testing.T, s *Store) int {
	t.Helper()
	v, err := sqlstore.Version(context.Background(), sqlstore.SQL(s.write), sqlstore.SQLite, "session")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrateNewFileAndReopen(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	mustCreate(t, s, record("a"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // reopening must neither fail nor re-run migrations
		s = openTest(t, path)
		if _, err := s.Get(ctx, hashOf("a")); err != nil {
			t.Fatalf("Get after reopen: %v", err)
		}
		if v := schemaVersion(t, s); v != len(schema.Steps) {
			t.Fatalf("schema version = %d; want %d", v, len(schema.Steps))
		}
		var mode string
		if err := s.read.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
		}
		s.Close()
	}
}

// TestMigrateFromTheOldLayout opens a file written by the layout before the
// Manager kept each session's expiry (version 2, in session_schema, with a
// deadline the store computed): every session gets the expiry its timeouts
// gave it, the sweep ends them with it, and the old version table is left
// at a version no old program accepts.
func TestMigrateFromTheOldLayout(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for _, step := range schema.Steps[:2] {
		if _, err := old.Exec(step.SQL); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.Exec(`CREATE TABLE session_schema (version INTEGER NOT NULL) STRICT;
		INSERT INTO session_schema VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	type oldRecord struct {
		name       string
		auth, last time.Duration // after t0
		p          session.Policy
		want       session.Expiry
	}
	h := time.Hour
	olds := []oldRecord{
		{"idle", 0, 10 * time.Minute, policy, session.Expiry{At: t0.Add(40 * time.Minute), Reason: session.ReasonIdle}},
		{"absolute", 0, 11*h + 45*time.Minute, policy, session.Expiry{At: t0.Add(12 * h), Reason: session.ReasonAbsolute}},
		{"tie", 0, 11*h + 30*time.Minute, policy, session.Expiry{At: t0.Add(12 * h), Reason: session.ReasonAbsolute}},
	}
	for _, o := range olds {
		r := record(o.name)
		r.Data = map[string]string{"k": o.name}
		auth, last := t0.Add(o.auth), t0.Add(o.last)
		deadline := min(last.Add(o.p.IdleTimeout).UnixNano(), auth.Add(o.p.AbsoluteTimeout).UnixNano())
		if _, err := old.Exec(`INSERT INTO session_records (id, token_hash, user_id, created_at, authenticated_at,
			last_activity, idle_timeout, absolute_timeout, deadline, ip, user_agent, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.TokenHash[:], r.UserID, t0.UnixNano(), auth.UnixNano(), last.UnixNano(),
			int64(o.p.IdleTimeout), int64(o.p.AbsoluteTimeout), deadline, r.IP, r.UserAgent, `{"k":"`+o.name+`"}`); err != nil {
			t.Fatal(err)
		}
	}
	gone := hashOf("gone")
	if _, err := old.Exec(`INSERT INTO session_ended VALUES (?, 'logout', ?, ?)`,
		gone[:], t0.UnixNano(), t0.Add(h).UnixNano()); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s := openTest(t, path)
	if v := schemaVersion(t, s); v != len(schema.Steps) {
		t.Errorf("schema version = %d, want %d", v, len(schema.Steps))
	}
	for _, o := range olds {
		got, err := s.Get(ctx, hashOf(o.name))
		if err != nil {
			t.Fatalf("%s after the migration: %v", o.name, err)
		}
		if !got.Expires.At.Equal(o.want.At) || got.Expires.Reason != o.want.Reason || got.Persistent ||
			!got.LastActivity.Equal(t0.Add(o.last)) || got.Policy != o.p || got.Data["k"] != o.name {
			t.Errorf("%s after the migration = %+v; want expiry %+v, not persistent", o.name, got, o.want)
		}
	}
	if e, err := s.Ended(ctx, hashOf("gone")); err != nil || e.Reason != session.ReasonLogout {
		t.Errorf("an ending kept before the migration: %+v, %v", e, err)
	}
	ended, err := s.EndExpired(ctx, t0.Add(12*h), h, 10)
	if err != nil || len(ended) != len(olds) {
		t.Fatalf("EndExpired after the migration = %d records, %v; want %d", len(ended), err, len(olds))
	}
	for i, e := range ended {
		if want := olds[i].want; e.ID != "id-"+olds[i].name || !e.At.Equal(want.At) || e.Reason != want.Reason {
			t.Errorf("ended[%d] = %s %+v, want %s %+v", i, e.ID, e.Ending, olds[i].name, want)
		}
	}
	s.Close()

	var retired int
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT version FROM session_schema`).Scan(&retired); err != nil || retired != retiredSchemaVersion {
		t.Errorf("session_schema after the migration = %d, %v; want %d", retired, err, retiredSchemaVersion)
	}
	openTest(t, path) // adopting happens once; reopening finds nothing to do
}

// TestSharesFileWithOtherTables checks that the store leaves alone what other
// packages keep in the same file, PRAGMA user_version and their rows of
// schema_migrations included.
func TestSharesFileWithOtherTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.db")
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`PRAGMA user_version = 7; CREATE TABLE account_users (name TEXT);
		INSERT INTO account_users VALUES ('ada');
		CREATE TABLE schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (component));
		INSERT INTO schema_migrations VALUES ('account', 3)`); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path)
	mustCreate(t, s, record("a"))
	var version, account int
	var name string
	if err := other.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != 7 {
		t.Errorf("user_version = %d, %v; want 7, untouched", version, err)
	}
	if err := other.QueryRow(`SELECT name FROM account_users`).Scan(&name); err != nil || name != "ada" {
		t.Errorf("other package's row = %q, %v", name, err)
	}
	if err := other.QueryRow(`SELECT version FROM schema_migrations WHERE component = 'account'`).Scan(&account); err != nil || account != 3 {
		t.Errorf("other package's version = %d, %v; want 3", account, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	s, path := open(t)
	if _, err := s.write.Exec(`UPDATE schema_migrations SET version = ? WHERE component = 'session'`, len(schema.Steps)+1); err != nil {
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
	s := openTest(t, path)
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
	noID := record("noid")
	noID.ID = ""
	farPast := record("past")
	farPast.CreatedAt = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)
	farExpiry := record("far")
	farExpiry.Expires.At = farFuture
	nulData := record("nul")
	nulData.Data = map[string]string{"k": "a\x00b"}
	badUTF8 := record("utf8")
	badUTF8.Data = map[string]string{"k\xff": "v"}
	for name, err := range map[string]error{
		"create with time out of range":  s.Create(ctx, farPast),
		"create with expiry past 2262":   s.Create(ctx, farExpiry),
		"create without ID":              s.Create(ctx, noID),
		"create with NUL in data":        s.Create(ctx, nulData),
		"create with invalid UTF-8 data": s.Create(ctx, badUTF8),
		"save invalid UTF-8 data":        s.SaveData(ctx, "id-a", nil, map[string]string{"k": "\xc3"}),
		"touch past 2262":                s.Touch(ctx, "id-a", farFuture, session.Expiry{At: farFuture, Reason: session.ReasonIdle}),
		"touch to an expiry past 2262":   s.Touch(ctx, "id-a", t0, session.Expiry{At: farFuture, Reason: session.ReasonIdle}),
		"renew to an expiry past 2262":   s.Renew(ctx, "id-a", hashOf("a"), hashOf("b"), session.Renewal{AuthenticatedAt: t0, LastActivity: t0, Expires: session.Expiry{At: farFuture}}),
		"renew with times out of range":  s.Renew(ctx, "id-a", hashOf("a"), hashOf("b"), session.Renewal{AuthenticatedAt: farFuture, LastActivity: farFuture}),
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

// TestEndExpiredInSeveralTransactions asks for more records than one
// transaction ends: the call still ends exactly limit, oldest first, keeps
// each one's ending, and purges ended-token records in bounded steps too.
func TestEndExpiredInSeveralTransactions(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	const n, limit = 2*sweepBatch + 30, 2*sweepBatch + 7
	insertExpired(t, s, n)
	ended, err := s.EndExpired(ctx, t0.Add(time.Hour), time.Hour, limit)
	if err != nil || len(ended) != limit {
		t.Fatalf("EndExpired = %d records, %v; want %d", len(ended), err, limit)
	}
	for i, e := range ended {
		if want := fmt.Sprint("id-expired-", i); e.ID != want {
			t.Fatalf("ended[%d] = %s, want %s: not oldest first", i, e.ID, want)
		}
		at := t0.Add(time.Duration(i)*time.Millisecond + policy.IdleTimeout)
		if e.Reason != session.ReasonIdle || !e.At.Equal(at) || !e.KeepUntil.Equal(at.Add(time.Hour)) {
			t.Fatalf("ended[%d] = %+v, want idle at %v kept an hour", i, e.Ending, at)
		}
		if got, err := s.Ended(ctx, e.TokenHash); err != nil || got != e.Ending {
			t.Fatalf("Ended(%s) = %+v, %v; want %+v", e.ID, got, err, e.Ending)
		}
	}
	if rest, err := s.EndExpired(ctx, t0.Add(time.Hour), time.Hour, limit); err != nil || len(rest) != n-limit {
		t.Fatalf("second EndExpired = %d records, %v; want %d", len(rest), err, n-limit)
	}
	if _, err := s.EndExpired(ctx, t0.Add(3*time.Hour), time.Hour, limit); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := s.read.QueryRow(`SELECT count(*) FROM session_records WHERE keep_until IS NOT NULL`).Scan(&left); err != nil || left != n-limit {
		t.Fatalf("%d ended-token records left after purging %d, %v; want %d", left, limit, err, n-limit)
	}
}

// insertExpired creates n records named expired-0..n-1, in one transaction,
// idle from t0+30m, 1ms apart in the order of their index.
func insertExpired(t testing.TB, s *Store, n int) {
	t.Helper()
	tx, err := s.write.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	st, err := tx.Prepare(`INSERT INTO session_records (` + sqlstore.RecordColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, 'idle', 0)`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := record(fmt.Sprint("expired-", i))
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

// A purge that fails inside the transaction that ends a batch takes that
// batch's endings back with it: those records stay live, to be ended (and
// their end events sent) by a later call, never lost and never twice. What
// earlier transactions of the call ended is returned. The failure comes
// from a trigger that a second connection adds, as another process might.
func TestFailedPurgeRollsBackItsBatch(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	const extra = 5
	insertExpired(t, s, 1+sweepBatch+extra)
	// expired-0 ends now and may be forgotten from t0+75m: the next calls
	// have an ended record to purge.
	const keep = 45 * time.Minute
	first, err := s.EndExpired(ctx, t0.Add(time.Hour), keep, 1)
	if err != nil || len(first) != 1 || first[0].ID != "id-expired-0" {
		t.Fatalf("first EndExpired = %v, %v; want expired-0", first, err)
	}
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`CREATE TRIGGER fail_purge BEFORE DELETE ON session_records
		BEGIN SELECT RAISE(ABORT, 'injected purge failure'); END`); err != nil {
		t.Fatal(err)
	}
	live := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			h := hashOf(fmt.Sprint("expired-", i))
			if _, err := s.Ended(ctx, h); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Ended(expired-%d) = %v; want ErrNotFound: its ending was rolled back", i, err)
			}
			if rec, err := s.Get(ctx, h); err != nil || rec.ID != fmt.Sprint("id-expired-", i) {
				t.Fatalf("Get(expired-%d) = %s, %v; want the record, still there", i, rec.ID, err)
			}
		}
	}

	// The first transaction ends a full batch and commits; the second ends
	// the rest and purges, which fails.
	now := t0.Add(2 * time.Hour)
	ended, err := s.EndExpired(ctx, now, keep, 2*sweepBatch)
	if err != nil || len(ended) != sweepBatch {
		t.Fatalf("EndExpired = %d records, %v; want the %d of the committed batch, no error", len(ended), err, sweepBatch)
	}
	for i, e := range ended {
		if want := fmt.Sprint("id-expired-", i+1); e.ID != want {
			t.Fatalf("ended[%d] = %s, want %s", i, e.ID, want)
		}
	}
	live(1+sweepBatch, 1+sweepBatch+extra)

	// Nothing committed: the error reaches the caller.
	if again, err := s.EndExpired(ctx, now, keep, 2*sweepBatch); err == nil || !strings.Contains(err.Error(), "injected purge failure") || len(again) != 0 {
		t.Fatalf("EndExpired with only the failing batch = %d records, %v; want none and the trigger's error", len(again), err)
	}
	live(1+sweepBatch, 1+sweepBatch+extra)
	if _, err := s.Ended(ctx, hashOf("expired-0")); err != nil {
		t.Fatalf("Ended(expired-0) = %v; want its ending kept: the purge failed", err)
	}

	if _, err := other.Exec(`DROP TRIGGER fail_purge`); err != nil {
		t.Fatal(err)
	}
	rest, err := s.EndExpired(ctx, now, keep, 2*sweepBatch)
	if err != nil || len(rest) != extra {
		t.Fatalf("EndExpired once the purge works = %d records, %v; want the %d rolled back", len(rest), err, extra)
	}
	for i, e := range rest {
		if want := fmt.Sprint("id-expired-", 1+sweepBatch+i); e.ID != want {
			t.Fatalf("rest[%d] = %s, want %s", i, e.ID, want)
		}
	}
	if _, err := s.Ended(ctx, hashOf("expired-0")); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Ended(expired-0) = %v; want ErrNotFound: purged", err)
	}
}

// Expired records that another writer left unreadable end with the rest,
// and the error names them; they do not stop this sweep or any later one.
func TestSweepEndsUnreadableRecords(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	insertExpired(t, s, 5)
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, damage := range []string{
		`UPDATE session_records SET data = '[1]' WHERE id = 'id-expired-1'`,
		`UPDATE session_records SET data = 'not json' WHERE id = 'id-expired-3'`,
	} {
		if _, err := other.Exec(damage); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(time.Hour)
	ended, err := s.EndExpired(ctx, now, time.Hour, 10)
	if got := endedIDs(ended); !slices.Equal(got, []string{"id-expired-0", "id-expired-2", "id-expired-4"}) {
		t.Errorf("EndExpired ended %v, want the three readable records", got)
	}
	if err == nil || !strings.Contains(err.Error(), "id-expired-1") || !strings.Contains(err.Error(), "id-expired-3") {
		t.Errorf("EndExpired error = %v; want one naming each unreadable record", err)
	}
	var left int
	if err := s.read.QueryRow(`SELECT count(*) FROM session_records WHERE ` + live).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d records still live, %v; want every expired one ended", left, err)
	}
	if more, err := s.EndExpired(ctx, now, time.Hour, 10); err != nil || len(more) != 0 {
		t.Errorf("the next EndExpired = %v, %v; want nothing left and no error", endedIDs(more), err)
	}
}

func endedIDs(ended []session.Ended) []string {
	ids := make([]string, len(ended))
	for i, e := range ended {
		ids[i] = e.ID
	}
	return ids
}

// An ended session keeps its row until its ending is forgotten, with
// what it held of the client cleared at once; the ID and the token it
// used may be given to a new session meanwhile, which takes them over.
func TestEndedRowsKeepNothingOfTheClient(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	a, b := record("a"), record("b")
	a.Data = map[string]string{"cart": "3 items"}
	mustCreate(t, s, a, b)
	if _, err := s.End(ctx, a.ID, session.Ending{Reason: session.ReasonLogout, At: t0, KeepUntil: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.EndExpired(ctx, t0.Add(time.Hour), time.Hour, 10); err != nil || len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("EndExpired = %v, %v; want b", got, err)
	}
	rows, err := s.read.Query(`SELECT id, data IS NULL, ip, user_agent FROM session_records ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id, ip, ua string
		var noData bool
		if err := rows.Scan(&id, &noData, &ip, &ua); err != nil {
			t.Fatal(err)
		}
		if !noData || ip != "" || ua != "" {
			t.Errorf("ended row %s keeps data %v, IP %q, User-Agent %q", id, !noData, ip, ua)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != 2 {
		t.Fatalf("%d ended rows, %v; want 2", n, err)
	}

	// A new session with a's ID, and one with b's token: the ended rows
	// give them up, and their endings are forgotten.
	sameID, sameToken := record("c"), record("d")
	sameID.ID = a.ID
	sameToken.TokenHash = b.TokenHash
	mustCreate(t, s, sameID, sameToken)
	for _, r := range []session.Record{sameID, sameToken} {
		if got, err := s.Get(ctx, r.TokenHash); err != nil || got.ID != r.ID {
			t.Errorf("Get(%s) = %v, %v", r.ID, got.ID, err)
		}
	}
	for _, h := range []session.TokenHash{a.TokenHash, b.TokenHash} {
		if e, err := s.Ended(ctx, h); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Ended of a token whose row was taken over = %+v, %v; want ErrNotFound", e, err)
		}
	}
	// A live session's ID and token still conflict.
	dup := record("e")
	dup.ID = sameID.ID
	if err := s.Create(ctx, dup); !errors.Is(err, session.ErrConflict) {
		t.Errorf("Create with a live session's ID = %v, want ErrConflict", err)
	}

	// Renew to the token of an ended session takes it over too.
	f := record("f")
	mustCreate(t, s, f)
	if _, err := s.End(ctx, f.ID, session.Ending{Reason: session.ReasonRevoked, At: t0, KeepUntil: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	r := session.Renewal{AuthenticatedAt: at, LastActivity: at, Expires: session.Expiry{At: at.Add(time.Hour), Reason: session.ReasonIdle}}
	if err := s.Renew(ctx, sameID.ID, sameID.TokenHash, f.TokenHash, r); err != nil {
		t.Fatalf("Renew to an ended session's token: %v", err)
	}
	if got, err := s.Get(ctx, f.TokenHash); err != nil || got.ID != sameID.ID {
		t.Errorf("Get of the renewed token = %v, %v", got.ID, err)
	}
	if err := s.Renew(ctx, sameID.ID, f.TokenHash, sameToken.TokenHash, r); !errors.Is(err, session.ErrConflict) {
		t.Errorf("Renew to a live session's token = %v, want ErrConflict", err)
	}
}

// Stores opened together on a new file all open it (see
// sqlstore.ConnectSQLite).
func TestOpenTogetherOnANewFile(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("new-%d.db", round))
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := Open(path)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// TestSweepKeepsWriteAheadLogSmall sweeps many records in the batches the
// store suggests to the Manager: the sweep checkpoints as it goes, so the write-ahead log
// stays a fraction of what the sweep writes, rather than growing to the
// automatic checkpoint's threshold inside some request's commit.
func TestSweepKeepsWriteAheadLogSmall(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	const n = 20_000
	limit := s.SweepBatch()
	insertExpired(t, s, n)
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// The insert's own frames are copied by the first checkpoint; the log
	// file keeps its size, so measure from an empty one.
	if _, err := s.write.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	for total := 0; total < n; {
		ended, err := s.EndExpired(ctx, t0.Add(time.Hour), time.Hour, limit)
		if err != nil {
			t.Fatal(err)
		}
		total += len(ended)
		if len(ended) < limit && total < n {
			t.Fatalf("the sweep stopped at %d of %d", total, n)
		}
		// The Manager pauses between calls, and the checkpoints, which
		// run beside the sweep, catch up meanwhile.
		for s.checkpointer.pending.Load() > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	const most = 1 << 20
	if size := walSize(); size > most {
		t.Errorf("after sweeping %d records the write-ahead log is %d bytes, want at most %d", n, size, most)
	}
}

// TestSortEnded checks the sweep's sort of what it ended against a plain
// sort, on batches with many sessions expiring in the same nanosecond and
// on batches already in order.
func TestSortEnded(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cmp := func(a, b session.Ended) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	}
	for round := range 500 {
		n := rng.IntN(80)
		ended := make([]session.Ended, n)
		for i := range ended {
			ended[i].ID = fmt.Sprint("s-", rng.IntN(1000))
			ended[i].At = t0.Add(time.Duration(rng.IntN(4)) * time.Nanosecond)
			ended[i].UserAgent = fmt.Sprint("agent of ", ended[i].ID)
		}
		if round%5 == 0 {
			slices.SortFunc(ended, cmp)
		}
		want := slices.Clone(ended)
		slices.SortStableFunc(want, cmp)
		sortEnded(ended)
		for i := range ended {
			if ended[i].ID != want[i].ID || !ended[i].At.Equal(want[i].At) || ended[i].UserAgent != want[i].UserAgent {
				t.Fatalf("round %d: position %d holds %s at %v, want %s at %v", round, i, ended[i].ID, ended[i].At, want[i].ID, want[i].At)
			}
		}
	}
}
