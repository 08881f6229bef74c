package pgstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sessionguard/sessionguard/session"
)

// schemaVersion returns the session row of schema_migrations, or -1 if there
// is none, and how many rows the table has.
func schemaVersion(t *testing.T, s *Store) (version, rows int) {
	t.Helper()
	ctx := context.Background()
	version = -1
	if err := s.pool.QueryRow(ctx,
		`SELECT coalesce((SELECT version FROM schema_migrations WHERE component = 'session'), -1),
			(SELECT count(*) FROM schema_migrations)`).Scan(&version, &rows); err != nil {
		t.Fatal(err)
	}
	return version, rows
}

// wantIndexes is the indexes of the session tables at the newest version.
const wantIndexes = "[session_ended_keep_until session_ended_pkey session_records_expires_id session_records_pkey session_records_token_hash_key session_records_user]"

// sessionIndexes lists the indexes of s's session tables, by name.
func sessionIndexes(t *testing.T, s *Store) string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT indexname FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename LIKE 'session_%' ORDER BY indexname`)
	if err != nil {
		t.Fatal(err)
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(indexes)
}

func TestMigrateCreatesTablesOnceAndLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := freshDSN(t)
	// The server's accounts already use the shared version table.
	admin(t, dsn, `CREATE TABLE schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (component));
		INSERT INTO schema_migrations VALUES ('accounts', 3)`)
	s := openDSN(t, dsn)
	mustCreate(t, s, record("a"))
	if got := sessionIndexes(t, s); got != wantIndexes {
		t.Errorf("indexes = %s, want %s", got, wantIndexes)
	}
	s.Close()

	for range 2 { // reopening neither fails nor re-runs the migrations
		s = openDSN(t, dsn)
		if _, err := s.Get(ctx, hashOf("a")); err != nil {
			t.Fatalf("Get after reopen: %v", err)
		}
		if v, n := schemaVersion(t, s); v != len(schema.Steps) || n != 2 {
			t.Fatalf("schema_migrations: session at version %d of %d rows; want %d of 2", v, n, len(schema.Steps))
		}
		s.Close()
	}
	if err := s.pool.Ping(ctx); err == nil {
		t.Error("the pool Open made is still open after Close")
	}
	s = openDSN(t, dsn)
	var accounts int
	if err := s.pool.QueryRow(ctx, `SELECT version FROM schema_migrations WHERE component = 'accounts'`).Scan(&accounts); err != nil || accounts != 3 {
		t.Errorf("the accounts' version = %d, %v; want 3, untouched", accounts, err)
	}
}

// TestConcurrentOpenOnEmptySchema starts four instances at once on a schema
// with nothing in it: the advisory lock lets one migrate while the others
// wait, and all of them succeed.
func TestConcurrentOpenOnEmptySchema(t *testing.T) {
	t.Parallel()
	dsn := freshDSN(t)
	const instances = 4
	stores := make([]*Store, instances)
	errs := make([]error, instances)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(context.Background(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: Open: %v", i, err)
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		t.FailNow()
	}
	for i, s := range stores {
		r := record(fmt.Sprint(i))
		mustCreate(t, s, r)
		if _, err := stores[(i+1)%instances].Get(context.Background(), r.TokenHash); err != nil {
			t.Errorf("a record created on instance %d, read on the next: %v", i, err)
		}
	}
	if v, n := schemaVersion(t, stores[0]); v != len(schema.Steps) || n != 1 {
		t.Errorf("schema_migrations: session at version %d of %d rows; want %d of 1", v, n, len(schema.Steps))
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, dsn := open(t)
	mustCreate(t, s, record("a"))
	if _, err := s.pool.Exec(ctx, `UPDATE schema_migrations SET version = $1 WHERE component = 'session'`,
		len(schema.Steps)+1); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, dsn)
	if err == nil {
		s2.Close()
		t.Fatal("Open of a schema at a newer version succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open: err = %v, want ErrSchemaTooNew", err)
	}
	t.Log(err)
	if _, err := s.Get(ctx, hashOf("a")); err != nil {
		t.Errorf("the newer schema's data after the refusal: %v", err)
	}
	if v, _ := schemaVersion(t, s); v != len(schema.Steps)+1 {
		t.Errorf("version after the refusal = %d, want %d, unchanged", v, len(schema.Steps)+1)
	}
}

// TestFailedMigrationChangesNothing meets a table of the same name and
// another shape: the migration fails as a whole and records no version.
func TestFailedMigrationChangesNothing(t *testing.T) {
	t.Parallel()
	dsn := freshDSN(t)
	admin(t, dsn, `CREATE TABLE session_ended (something_else text)`)
	s, err := Open(context.Background(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open over a foreign session_ended table succeeded")
	}
	t.Log(err)
	admin(t, dsn, `DO $$ BEGIN
		IF to_regclass('session_records') IS NOT NULL THEN RAISE 'session_records was left behind'; END IF;
		IF to_regclass('schema_migrations') IS NOT NULL THEN RAISE 'schema_migrations was left behind'; END IF;
	END $$`)
}

func TestOpenRejectsBadDSNs(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"", "sqlite:sessions.db", "mysql://u:secret@host/db", "host=localhost password=secret",
		"postgres://u:secret@host:notaport/db", "postgres://u:secret@%zz/db",
		"postgres://u:secret@host/db?sslmode=bogus", "postgres://u:secret@host/db?pool_max_conns=many"} {
		s, err := Open(ctx, dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): the error shows the password: %v", dsn, err)
		}
	}
	// Nothing listens on port 1: the error names the server, not the password.
	quick, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := Open(quick, "postgres://u:secret@127.0.0.1:1/db?connect_timeout=2")
	if err == nil {
		s.Close()
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("Open of an unreachable server: %v; want the address and no password", err)
	}
	if _, err := New(ctx, nil); err == nil {
		t.Error("New with a nil pool succeeded")
	}
}

// TestOpenSizesThePool checks the default pool size and that the DSN can
// change it.
func TestOpenSizesThePool(t *testing.T) {
	t.Parallel()
	dsn := freshDSN(t)
	if s := openDSN(t, dsn); s.pool.Config().MaxConns != DefaultMaxConns {
		t.Errorf("MaxConns = %d, want DefaultMaxConns (%d)", s.pool.Config().MaxConns, DefaultMaxConns)
	}
	if s := openDSN(t, dsn+"&pool_max_conns=2"); s.pool.Config().MaxConns != 2 {
		t.Errorf("MaxConns with pool_max_conns=2 = %d", s.pool.Config().MaxConns)
	}
}

func TestMissingSchemaIsAClearError(t *testing.T) {
	t.Parallel()
	dsn := freshDSN(t)
	s, err := Open(context.Background(), strings.Replace(dsn, "search_path=pgstore_test_", "search_path=missing_", 1))
	if err == nil {
		s.Close()
		t.Fatal("Open with a search_path of no existing schema succeeded")
	}
	if !strings.Contains(err.Error(), "search_path") {
		t.Errorf("err = %v, want it to point at the search_path", err)
	}
}

// TestNewSharesThePool: a Store made by New leaves its caller's pool open on
// Close, and refuses calls after it.
func TestNewSharesThePool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, freshDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, record("a"))
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := pool.Ping(ctx); err != nil {
		t.Errorf("the shared pool after the Store's Close: %v", err)
	}
	calls := map[string]error{
		"Ping":   s.Ping(ctx),
		"Create": s.Create(ctx, record("b")),
		"Touch":  s.Touch(ctx, "id-a", t0, record("a").Expires),
	}
	_, calls["Get"] = s.Get(ctx, hashOf("a"))
	_, calls["List"] = s.List(ctx, "", 0)
	_, calls["EndExpired"] = s.EndExpired(ctx, t0, 0, 1)
	for name, err := range calls {
		if err == nil || errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s after Close: err = %v, want a closed-store error", name, err)
		}
	}
}

// TestSurvivesProcessCrash kills a process that wrote to the store without
// closing it, then reads what it wrote: every call that returned had
// committed, and nothing waits in the client to be written.
func TestSurvivesProcessCrash(t *testing.T) {
	if dsn := os.Getenv("PGSTORE_CRASH_DSN"); dsn != "" {
		crashingWriter(dsn)
		return
	}
	t.Parallel()
	dsn := freshDSN(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSurvivesProcessCrash$")
	cmd.Env = append(os.Environ(), "PGSTORE_CRASH_DSN="+dsn)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("writer process: %v (want exit status 3)\n%s", err, out)
	}
	s := openDSN(t, dsn)
	ctx := context.Background()
	for i := range 100 {
		r := record(fmt.Sprint(i))
		if i%2 == 1 {
			if e, err := s.Ended(ctx, r.TokenHash); err != nil || e.Reason != session.ReasonLogout {
				t.Fatalf("record %d ended before the crash: Ended = %+v, %v", i, e, err)
			}
			continue
		}
		if got, err := s.Get(ctx, r.TokenHash); err != nil || !got.LastActivity.Equal(t0.Add(time.Minute)) {
			t.Fatalf("record %d after the crash = %+v, %v; want touched at t0+1m", i, got, err)
		}
	}
}

// crashingWriter creates, touches and ends records, then exits without
// closing the store, as a killed process would.
func crashingWriter(dsn string) {
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	for i := range 100 {
		r := record(fmt.Sprint(i))
		err := s.Create(ctx, r)
		if err == nil {
			err = s.Touch(ctx, r.ID, t0.Add(time.Minute), expiryOf(policy, t0, t0.Add(time.Minute)))
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

func TestClientStringsNeedNotBeUTF8(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	r := record("latin1")
	// A Latin-1 User-Agent, cut in the middle of a UTF-8 character.
	r.UserAgent = "Navigateur \xe9l\xe9gant " + "caf\xc3"
	r.IP = "\xff\x00not an address"
	mustCreate(t, s, r)
	if got, err := s.Get(ctx, r.TokenHash); err != nil || got.UserAgent != r.UserAgent || got.IP != r.IP {
		t.Errorf("Get = %q %q, %v; want %q %q", got.UserAgent, got.IP, err, r.UserAgent, r.IP)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	mustCreate(t, s, record("a"))
	farFuture := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	farExpiry := record("far")
	farExpiry.Expires.At = farFuture
	noID := record("noid")
	noID.ID = ""
	farPast := record("past")
	farPast.CreatedAt = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)
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
		"save NUL in data":               s.SaveData(ctx, "id-a", nil, map[string]string{"k\x00": "v"}),
		"save invalid UTF-8 data":        s.SaveData(ctx, "id-a", nil, map[string]string{"k": "\xc3"}),
		"touch past 2262":                s.Touch(ctx, "id-a", farFuture, session.Expiry{At: farFuture, Reason: session.ReasonIdle}),
		"renew past 2262":                s.Renew(ctx, "id-a", hashOf("a"), hashOf("b"), renewal(farFuture)),
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
	if got, err := s.Get(ctx, hashOf("a")); err != nil || !equalRecords(got, record("a")) {
		t.Errorf("record changed by rejected calls: Get = %+v, %v", got, err)
	}
	if n := count(t, s, "session_records"); n != 1 {
		t.Errorf("%d records after rejected creates, want 1", n)
	}
}

func TestConflictsNameTheConstraint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	a, b := record("a"), record("b")
	mustCreate(t, s, a, b)
	sameID, sameHash := record("c"), record("d")
	sameID.ID, sameHash.TokenHash = a.ID, a.TokenHash
	for name, err := range map[string]error{
		"Create with a taken ID":         s.Create(ctx, sameID),
		"Create with a taken hash":       s.Create(ctx, sameHash),
		"Renew to another record's hash": s.Renew(ctx, b.ID, b.TokenHash, a.TokenHash, renewal(t0)),
	} {
		if !errors.Is(err, session.ErrConflict) || !strings.Contains(err.Error(), "session_records_") {
			t.Errorf("%s: err = %v, want ErrConflict naming the constraint", name, err)
		}
	}
}

// TestQueryExecModes runs every call in the query modes a DSN may choose
// for a connection pooler that cannot keep prepared statements, where pgx
// knows no parameter types (see the package documentation).
func TestQueryExecModes(t *testing.T) {
	t.Parallel()
	dsn := freshDSN(t)
	for _, mode := range []string{"exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			s := openDSN(t, dsn+"&default_query_exec_mode="+mode)
			r := record(mode)
			r.Data = map[string]string{"k": `"quoted" \ ünï`}
			r.UserAgent = "caf\xc3"
			mustCreate(t, s, r)
			r.LastActivity = t0.Add(time.Minute)
			r.Expires = expiryOf(policy, t0, r.LastActivity)
			if err := s.Touch(ctx, r.ID, r.LastActivity, r.Expires); err != nil {
				t.Fatal(err)
			}
			old := maps.Clone(r.Data)
			r.Data["k2"] = "v2"
			if err := s.SaveData(ctx, r.ID, map[string]string{"k": "stale"}, r.Data); !errors.Is(err, session.ErrStale) {
				t.Fatalf("SaveData from stale data: %v, want ErrStale", err)
			}
			if err := s.SaveData(ctx, r.ID, old, r.Data); err != nil {
				t.Fatal(err)
			}
			if recs, err := s.List(ctx, r.UserID, 0); err != nil || len(recs) != 1 || !equalRecords(recs[0], r) {
				t.Fatalf("List = %+v, %v; want %+v", recs, err, r)
			}
			rn := renewal(t0)
			if err := s.Renew(ctx, r.ID, r.TokenHash, hashOf(mode+"-2"), rn); err != nil {
				t.Fatal(err)
			}
			r.TokenHash, r.AuthenticatedAt, r.LastActivity, r.Expires = hashOf(mode+"-2"), rn.AuthenticatedAt, rn.LastActivity, rn.Expires
			if got, err := s.End(ctx, r.ID, session.Ending{Reason: session.ReasonLogout, At: t0, KeepUntil: t0}); err != nil || !equalRecords(got, r) {
				t.Fatalf("End = %+v, %v; want %+v", got, err, r)
			}
			expired := record(mode + "-expired")
			mustCreate(t, s, expired)
			ended, err := s.EndExpired(ctx, t0.Add(time.Hour), time.Hour, 10)
			if err != nil || len(ended) != 1 || !equalRecords(ended[0].Record, expired) || ended[0].Reason != session.ReasonIdle {
				t.Fatalf("EndExpired = %+v, %v", ended, err)
			}
			if _, err := s.Ended(ctx, r.TokenHash); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("Ended after the purge: %v, want ErrNotFound", err)
			}
			if e, err := s.Ended(ctx, expired.TokenHash); err != nil || e.Reason != session.ReasonIdle {
				t.Errorf("Ended = %+v, %v", e, err)
			}
		})
	}
}

// renewal is a renewal at at, with the expiry it gives.
func renewal(at time.Time) session.Renewal {
	return session.Renewal{AuthenticatedAt: at, LastActivity: at, Expires: expiryOf(policy, at, at)}
}

// TestMigrateFromTheOldLayout opens a schema written by the layout before
// the Manager kept each session's expiry (version 1, with a deadline the
// store computed): every session gets the expiry its timeouts gave it, and
// the sweep ends them with it.
func TestMigrateFromTheOldLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := freshDSN(t)
	admin(t, dsn, schema.Steps[0].SQL+`;
		CREATE TABLE schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (component));
		INSERT INTO schema_migrations VALUES ('session', 1)`)
	h := time.Hour
	olds := []struct {
		name string
		last time.Duration // after t0
		want session.Expiry
	}{
		{"idle", 10 * time.Minute, session.Expiry{At: t0.Add(40 * time.Minute), Reason: session.ReasonIdle}},
		{"absolute", 11*h + 45*time.Minute, session.Expiry{At: t0.Add(12 * h), Reason: session.ReasonAbsolute}},
		{"tie", 11*h + 30*time.Minute, session.Expiry{At: t0.Add(12 * h), Reason: session.ReasonAbsolute}},
	}
	for _, o := range olds {
		r := record(o.name)
		last := t0.Add(o.last)
		deadline := min(last.Add(policy.IdleTimeout).UnixNano(), t0.Add(policy.AbsoluteTimeout).UnixNano())
		admin(t, dsn, fmt.Sprintf(`INSERT INTO session_records (id, token_hash, user_id, created_at, authenticated_at,
			last_activity, idle_timeout, absolute_timeout, deadline, ip, user_agent, data)
			VALUES ('%s', sha256('%s'), '%s', %d, %d, %d, %d, %d, %d, '\\x00', '\\x00', '{"k": "%s"}')`,
			r.ID, o.name, r.UserID, t0.UnixNano(), t0.UnixNano(), last.UnixNano(),
			int64(policy.IdleTimeout), int64(policy.AbsoluteTimeout), deadline, o.name))
	}

	s := openDSN(t, dsn)
	if v, _ := schemaVersion(t, s); v != len(schema.Steps) {
		t.Errorf("schema version = %d, want %d", v, len(schema.Steps))
	}
	recs, err := s.List(ctx, "", 0)
	if err != nil || len(recs) != len(olds) {
		t.Fatalf("List after the migration = %d records, %v", len(recs), err)
	}
	byID := map[string]session.Record{}
	for _, r := range recs {
		byID[r.ID] = r
	}
	for _, o := range olds {
		got := byID["id-"+o.name]
		if !got.Expires.At.Equal(o.want.At) || got.Expires.Reason != o.want.Reason || got.Persistent ||
			!got.LastActivity.Equal(t0.Add(o.last)) || got.Policy != policy || got.Data["k"] != o.name {
			t.Errorf("%s after the migration = %+v; want expiry %+v, not persistent", o.name, got, o.want)
		}
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
	if got := sessionIndexes(t, s); got != wantIndexes {
		t.Errorf("indexes after the migration = %s, want %s, as a new schema has (the sweep's (expires_at, id), not expires_at alone)", got, wantIndexes)
	}
	var defaults int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'session_records' AND column_default IS NOT NULL`).Scan(&defaults); err != nil || defaults != 0 {
		t.Errorf("%d columns with a default, %v; want none", defaults, err)
	}
}

// An expired record that another writer left unreadable ends with the
// rest, and the error names it: the others' end events are not lost with
// it, and the next sweep finds nothing left.
func TestSweepEndsUnreadableRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	recs := expiredRecords(5)
	insertRecords(t, s, recs)
	// Valid jsonb, but not the object of strings the store writes.
	if _, err := s.pool.Exec(ctx, `UPDATE session_records SET data = '[1]' WHERE id = $1`, recs[1].ID); err != nil {
		t.Fatal(err)
	}
	ended, err := s.EndExpired(ctx, t0.Add(time.Hour), time.Hour, 10)
	var ids []string
	for _, e := range ended {
		ids = append(ids, e.ID)
	}
	if want := []string{recs[0].ID, recs[2].ID, recs[3].ID, recs[4].ID}; !slices.Equal(ids, want) {
		t.Errorf("EndExpired ended %v, want %v", ids, want)
	}
	if err == nil || !strings.Contains(err.Error(), recs[1].ID) {
		t.Errorf("EndExpired error = %v; want one naming %s", err, recs[1].ID)
	}
	if n := count(t, s, "session_records"); n != 0 {
		t.Errorf("%d records left; want every expired one ended", n)
	}
	if e, err := s.Ended(ctx, recs[1].TokenHash); err != nil || e.Reason != recs[1].Expires.Reason {
		t.Errorf("Ended(the unreadable record) = %+v, %v; want its ending kept", e, err)
	}
	if more, err := s.EndExpired(ctx, t0.Add(time.Hour), time.Hour, 10); err != nil || len(more) != 0 {
		t.Errorf("the next EndExpired = %d records, %v; want none and no error", len(more), err)
	}
}
