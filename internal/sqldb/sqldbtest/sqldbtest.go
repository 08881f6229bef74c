// Package sqldbtest gives tests a fresh, empty database of each dialect, so
// that every package that keeps data with sqldb runs its tests on SQLite and
// PostgreSQL alike.
//
// SQLite tests always run, on a file in the test's temporary directory.
// PostgreSQL tests run when the environment variable named by EnvPostgres
// holds a DSN, and are skipped otherwise. Each PostgreSQL database is a schema
// of its own, created with a random name and dropped at the end of the test,
// so tests running in parallel (or test binaries of several packages) never
// see each other's tables.
//
// A test that should hold on every database:
//
//	func TestThing(t *testing.T) {
//		sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
//			store, err := thing.NewStore(t.Context(), db)
//			...
//		})
//	}
//
// Run them against PostgreSQL too with
//
//	SESSIONGUARD_TEST_POSTGRES=postgres://root@127.0.0.1:5432/test go test ./...
package sqldbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// EnvPostgres names the environment variable that holds the DSN of the
// PostgreSQL database to test against, for example
// postgres://root@127.0.0.1:5432/test. The tests create and drop schemas in
// it, and touch nothing else.
const EnvPostgres = "SESSIONGUARD_TEST_POSTGRES"

// SkipPostgres is the message a PostgreSQL test is skipped with when
// EnvPostgres is not set.
const SkipPostgres = EnvPostgres + " not set: skipping PostgreSQL tests"

// Dialects lists every dialect, for tests that loop over them.
var Dialects = []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres}

// Open returns a fresh, empty database of the given dialect, closed (and for
// PostgreSQL dropped) when the test ends. A PostgreSQL test is skipped when
// EnvPostgres is not set, and fails when it is set but the server cannot be
// used.
func Open(t testing.TB, dialect sqldb.Dialect) *sqldb.DB {
	t.Helper()
	switch dialect {
	case sqldb.SQLite:
		return openSQLite(t)
	case sqldb.Postgres:
		return openPostgres(t)
	}
	t.Fatalf("sqldbtest: unknown dialect %q", dialect)
	return nil
}

// Run runs test as one subtest per dialect, named after it, each with a
// fresh database from Open.
func Run(t *testing.T, test func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) {
			test(t, Open(t, d))
		})
	}
}

func openSQLite(t testing.TB) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), "sqlite:"+t.TempDir()+"/test.db")
	if err != nil {
		t.Fatalf("sqldbtest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t testing.TB) *sqldb.DB {
	t.Helper()
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		t.Skip(SkipPostgres)
	}
	// Cleanup runs after the test's context is cancelled, so neither setup
	// nor teardown uses it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("sqldbtest: %s is not a URL", EnvPostgres)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("sqldbtest: %s: %v", EnvPostgres, err)
	}
	var b [8]byte
	rand.Read(b[:])
	schema := "sgtest_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("sqldbtest: create schema in %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("sqldbtest: drop schema %s: %v", schema, err)
		}
		admin.Close()
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sqldb.Open(ctx, u.String())
	if err != nil {
		t.Fatalf("sqldbtest: %v", err)
	}
	// Registered after the schema's cleanup, so it runs first: the pool
	// closes before its schema is dropped.
	t.Cleanup(func() { db.Close() })
	return db
}
