package pgstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sessionguard/sessionguard/internal/sqlstore"
	"github.com/sessionguard/sessionguard/session"
)

// envPostgres names the environment variable holding the DSN of the
// PostgreSQL database the tests use, for example
// postgres://root@127.0.0.1:5432/test. The tests create and drop schemas in
// it and touch nothing else.
const envPostgres = "SESSIONGUARD_TEST_POSTGRES"

// t0 is the tests' reference instant; its nanoseconds check that times are
// not rounded on the way through the database.
var t0 = time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)

var policy = session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}

// baseDSN returns the DSN of the test database, or skips the test when
// none is set.
func baseDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(envPostgres)
	if dsn == "" {
		t.Skip(envPostgres + " not set: skipping PostgreSQL tests")
	}
	return dsn
}

// freshDSN creates a schema of its own for the test, dropped when the test
// ends, and returns the DSN of the test database with search_path set to it:
// every Store opened on it sees only this test's tables, so tests (and test
// binaries) may run in parallel.
func freshDSN(t testing.TB) string {
	t.Helper()
	dsn := baseDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s is not a URL", envPostgres)
	}
	var b [8]byte
	rand.Read(b[:])
	schema := "pgstore_test_" + hex.EncodeToString(b[:])
	admin(t, dsn, `CREATE SCHEMA `+schema)
	// Registered before any Store's Close, so it runs after them.
	t.Cleanup(func() { admin(t, dsn, `DROP SCHEMA `+schema+` CASCADE`) })
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// admin runs one statement on a connection of its own. It does not use the
// test's context, which is cancelled before cleanups run.
func admin(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", envPostgres, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// open returns a Store on a fresh schema, closed when the test ends, and the
// DSN that reaches the schema.
func open(t testing.TB) (*Store, string) {
	t.Helper()
	dsn := freshDSN(t)
	return openDSN(t, dsn), dsn
}

func openDSN(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

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
			UserAgent:       "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
			Expires:         expiryOf(policy, t0, t0),
		},
		TokenHash: hashOf(name),
	}
}

func hashOf(name string) session.TokenHash { return sha256.Sum256([]byte("token-" + name)) }

func mustCreate(t testing.TB, s *Store, recs ...session.Record) {
	t.Helper()
	for _, r := range recs {
		if err := s.Create(context.Background(), r); err != nil {
			t.Fatalf("Create(%s): %v", r.ID, err)
		}
	}
}

// expiredRecords returns n records named expired-0..n-1, all expired at
// t0+30m, with deadlines 1ms apart in the order of their index. Every third
// reaches its absolute deadline first, every seventh (not third) ties its
// two deadlines (absolute); the rest go idle.
func expiredRecords(n int) []session.Record {
	recs := make([]session.Record, n)
	for i := range recs {
		r := record(fmt.Sprint("expired-", i))
		r.UserID = fmt.Sprint("user-", i%50)
		at := t0.Add(time.Duration(i) * time.Millisecond)
		r.CreatedAt, r.AuthenticatedAt, r.LastActivity = at, at, at
		switch {
		case i%3 == 0: // absolute deadline at+30m, idle at+40m
			r.LastActivity = at.Add(10 * time.Minute)
			r.AuthenticatedAt = at.Add(30*time.Minute - policy.AbsoluteTimeout)
		case i%7 == 0: // both at at+30m
			r.AuthenticatedAt = at.Add(30*time.Minute - policy.AbsoluteTimeout)
		}
		r.Expires = expiryOf(r.Policy, r.AuthenticatedAt, r.LastActivity)
		recs[i] = r
	}
	return recs
}

// expiryOf is the expiry the Manager gives a session of policy p,
// authenticated at auth and last active at last: the earlier deadline, a
// tie counting as absolute.
func expiryOf(p session.Policy, auth, last time.Time) session.Expiry {
	idle, abs := last.Add(p.IdleTimeout), auth.Add(p.AbsoluteTimeout)
	if !abs.After(idle) {
		return session.Expiry{At: abs, Reason: session.ReasonAbsolute}
	}
	return session.Expiry{At: idle, Reason: session.ReasonIdle}
}

// insertRecords stores recs with one COPY, much faster than Create one by
// one.
func insertRecords(t testing.TB, s *Store, recs []session.Record) {
	t.Helper()
	rows := make([][]any, len(recs))
	for i, r := range recs {
		data, err := sqlstore.EncodeData(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		rows[i] = []any{r.ID, r.TokenHash[:], r.UserID, r.CreatedAt.UnixNano(), r.AuthenticatedAt.UnixNano(),
			r.LastActivity.UnixNano(), int64(r.Policy.IdleTimeout), int64(r.Policy.AbsoluteTimeout),
			bytesOf(r.IP), bytesOf(r.UserAgent), data, r.Expires.At.UnixNano(), string(r.Expires.Reason), r.Persistent}
	}
	n, err := s.pool.CopyFrom(context.Background(), pgx.Identifier{"session_records"},
		strings.Split(strings.Join(strings.Fields(sqlstore.RecordColumns), ""), ","),
		pgx.CopyFromRows(rows))
	if err != nil || n != int64(len(recs)) {
		t.Fatalf("copying %d records: %d, %v", len(recs), n, err)
	}
}

// count returns the number of rows of a table of the store's schema.
func count(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func equalRecords(a, b session.Record) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.TokenHash == b.TokenHash &&
		a.CreatedAt.Equal(b.CreatedAt) && a.AuthenticatedAt.Equal(b.AuthenticatedAt) &&
		a.LastActivity.Equal(b.LastActivity) && a.Policy == b.Policy &&
		a.IP == b.IP && a.UserAgent == b.UserAgent && maps.Equal(a.Data, b.Data) &&
		a.Expires.At.Equal(b.Expires.At) && a.Expires.Reason == b.Expires.Reason && a.Persistent == b.Persistent
}

func equalEndings(a, b session.Ending) bool {
	return a.Reason == b.Reason && a.At.Equal(b.At) && a.KeepUntil.Equal(b.KeepUntil)
}
