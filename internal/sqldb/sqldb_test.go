package sqldb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
)

func TestOpenRejectsBadDSNs(t *testing.T) {
	for _, dsn := range []string{
		"",
		"sessionguard.db",
		"mysql://root:hunter2@db/app",
		"redis://localhost:6379",
		"sqlite:",
		"sqlite::memory:",
		"sqlite:file:x.db?mode=memory",
		"sqlite://x.db",
		"user:hunter2@host",
		"postgres://root:hunter2@[::1/x", // malformed URL
	} {
		t.Run(dsn, func(t *testing.T) {
			db, err := sqldb.Open(t.Context(), dsn)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", dsn)
			}
			msg := err.Error()
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error reveals the password: %s", msg)
			}
			if !strings.Contains(msg, "sqlite:") {
				t.Errorf("error does not say which forms are accepted: %s", msg)
			}
		})
	}
}

func TestOpenUnknownSchemeListsForms(t *testing.T) {
	_, err := sqldb.Open(t.Context(), "mysql://root@db/app")
	if err == nil || !strings.Contains(err.Error(), `"mysql"`) || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("err = %v, want it to name the scheme and list the accepted forms", err)
	}
}

func TestOpenSQLiteSettings(t *testing.T) {
	dir := t.TempDir()
	// '?' and '#' would start the DSN's parameters if the path were not
	// escaped.
	path := filepath.Join(dir, "odd ?name#.db")
	db, err := sqldb.Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect != sqldb.SQLite {
		t.Errorf("Dialect = %q", db.Dialect)
	}
	if got, want := db.String(), "sqlite:"+path; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if _, err := db.ExecContext(t.Context(), `CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the database is not at the path given: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode = %v, want 0600 (it holds password hashes)", perm)
	}

	// Every pooled connection, not only the first, must carry the pragmas:
	// hold several at once.
	conns := make([]interface{ Close() error }, 0, 3)
	for range 3 {
		c, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000", "synchronous": "1",
		} {
			var got string
			if err := c.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
			}
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestOpenSQLiteKeepsExistingPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode of an existing file changed to %v", fi.Mode().Perm())
	}
}

func TestOpenSQLiteMissingDirectory(t *testing.T) {
	_, err := sqldb.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"))
	if err == nil {
		t.Fatal("opening a file in a missing directory succeeded")
	}
}

func TestOpenPostgresUnreachable(t *testing.T) {
	// Port 1 on localhost refuses at once; the error must name the server
	// but not the password.
	_, err := sqldb.Open(t.Context(), "postgres://root:hunter2@127.0.0.1:1/test?connect_timeout=2")
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error reveals the password: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error does not name the server: %v", err)
	}
}

func TestPostgresString(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.Postgres)
	if db.Dialect != sqldb.Postgres {
		t.Errorf("Dialect = %q", db.Dialect)
	}
	if !strings.HasPrefix(db.String(), "postgres") {
		t.Errorf("String() = %q", db.String())
	}
}

func TestRebind(t *testing.T) {
	pg := &sqldb.DB{Dialect: sqldb.Postgres}
	lite := &sqldb.DB{Dialect: sqldb.SQLite}
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT * FROM t WHERE a = ? AND b = ?`, `SELECT * FROM t WHERE a = $1 AND b = $2`},
		{`INSERT INTO t VALUES (?,?,?)`, `INSERT INTO t VALUES ($1,$2,$3)`},
		{`SELECT '?' , ? FROM t`, `SELECT '?' , $1 FROM t`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`SELECT "odd?col" FROM t WHERE x = ?`, `SELECT "odd?col" FROM t WHERE x = $1`},
		{"SELECT ? -- why?\nFROM t WHERE y = ?", "SELECT $1 -- why?\nFROM t WHERE y = $2"},
		{`SELECT ? /* what? */ , ?`, `SELECT $1 /* what? */ , $2`},
		{`SELECT 'unterminated ?`, `SELECT 'unterminated ?`},
		{`SELECT ? /* unterminated ?`, `SELECT $1 /* unterminated ?`},
		{`SELECT ? -- to the end?`, `SELECT $1 -- to the end?`},
	} {
		if got := pg.Rebind(tc.in); got != tc.want {
			t.Errorf("postgres Rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := lite.Rebind(tc.in); got != tc.in {
			t.Errorf("sqlite Rebind(%q) = %q, want it unchanged", tc.in, got)
		}
	}
}

var testSteps = []sqldb.Migration{
	{Name: "widgets", SQL: `CREATE TABLE widgets (name TEXT PRIMARY KEY)`},
	{
		Name:     "parts",
		SQLite:   `CREATE TABLE parts (id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL); CREATE INDEX parts_data ON parts (data)`,
		Postgres: `CREATE TABLE parts (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, data BYTEA NOT NULL); CREATE INDEX parts_data ON parts (data)`,
	},
}

func TestMigrate(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		if v, err := db.SchemaVersion(ctx, "test"); err != nil || v != 0 {
			t.Fatalf("SchemaVersion of a new database = %d, %v; want 0", v, err)
		}
		if err := db.Migrate(ctx, "test", testSteps[:1]); err != nil {
			t.Fatal(err)
		}
		if v, _ := db.SchemaVersion(ctx, "test"); v != 1 {
			t.Fatalf("version = %d after one step, want 1", v)
		}
		// Upgrading runs only the new step (step 1 again would fail:
		// the table exists).
		if err := db.Migrate(ctx, "test", testSteps); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, "test", testSteps); err != nil {
			t.Fatalf("migrating an up-to-date database: %v", err)
		}
		if v, _ := db.SchemaVersion(ctx, "test"); v != 2 {
			t.Fatalf("version = %d, want 2", v)
		}
		// The per-dialect step ran: ids are generated, bytes stored.
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO parts (data) VALUES (?)`), []byte{0, 1, 2}); err != nil {
			t.Fatal(err)
		}
		var id int64
		var data []byte
		if err := db.QueryRowContext(ctx, `SELECT id, data FROM parts`).Scan(&id, &data); err != nil {
			t.Fatal(err)
		}
		if id != 1 || string(data) != "\x00\x01\x02" {
			t.Errorf("row = %d, %q", id, data)
		}
		// Components keep versions of their own.
		if v, _ := db.SchemaVersion(ctx, "other"); v != 0 {
			t.Errorf("another component's version = %d, want 0", v)
		}
	})
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		if err := db.Migrate(ctx, "test", testSteps); err != nil {
			t.Fatal(err)
		}
		err := db.Migrate(ctx, "test", testSteps[:1])
		if !errors.Is(err, sqldb.ErrSchemaTooNew) {
			t.Fatalf("err = %v, want ErrSchemaTooNew", err)
		}
		for _, want := range []string{"test", "version 2", "up to 1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if v, _ := db.SchemaVersion(ctx, "test"); v != 2 {
			t.Errorf("version = %d after a refused migration, want 2", v)
		}
	})
}

func TestMigrateFailedStepChangesNothing(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		steps := []sqldb.Migration{
			testSteps[0],
			{Name: "broken", SQL: `CREATE TABLE gadgets (x INTEGER); THIS IS NOT SQL`},
		}
		err := db.Migrate(ctx, "test", steps)
		if err == nil || !strings.Contains(err.Error(), "broken") || !strings.Contains(err.Error(), "version 2") {
			t.Fatalf("err = %v, want a failure naming step 2 (broken)", err)
		}
		if v, _ := db.SchemaVersion(ctx, "test"); v != 0 {
			t.Errorf("version = %d after a failed migration, want 0", v)
		}
		// Step 1 was rolled back with step 2, so it runs again cleanly.
		if err := db.Migrate(ctx, "test", testSteps[:1]); err != nil {
			t.Fatalf("step 1 was not rolled back: %v", err)
		}
	})
}

func TestMigrateNeedsSQLForDialect(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		steps := []sqldb.Migration{{Name: "other dialect only", SQLite: "SELECT 1", Postgres: ""}}
		if db.Dialect == sqldb.SQLite {
			steps[0] = sqldb.Migration{Name: "other dialect only", Postgres: "SELECT 1"}
		}
		if err := db.Migrate(t.Context(), "test", steps); err == nil || !strings.Contains(err.Error(), "no SQL") {
			t.Fatalf("err = %v, want a missing-SQL error", err)
		}
		if err := db.Migrate(t.Context(), "", testSteps); err == nil {
			t.Fatal("an empty component name was accepted")
		}
	})
}

// Processes starting together (a server and a command-line call) all migrate
// the same new database; each must succeed, and the steps run once.
func TestMigrateConcurrently(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() { errs <- db.Migrate(t.Context(), "test", testSteps) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if v, _ := db.SchemaVersion(t.Context(), "test"); v != 2 {
			t.Errorf("version = %d, want 2", v)
		}
	})
}

// Two handles on one SQLite file stand for two processes.
func TestMigrateConcurrentlySQLiteFiles(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "shared.db")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			db, err := sqldb.Open(t.Context(), dsn)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- db.Migrate(t.Context(), "test", testSteps)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// SQLite admits one writer at a time; the pool and pragmas must make the
// others wait rather than fail with SQLITE_BUSY, in plain statements and in
// read-then-write transactions alike.
func TestConcurrentWriters(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		if err := db.Migrate(ctx, "test", testSteps); err != nil {
			t.Fatal(err)
		}
		const writers, each = 16, 20
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					name := fmt.Sprintf("w%d-%d", w, i)
					if i%2 == 0 {
						_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO widgets (name) VALUES (?)`), name)
						errs <- err
						continue
					}
					errs <- readThenWrite(ctx, db, name)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM widgets`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != writers*each {
			t.Errorf("%d rows, want %d", n, writers*each)
		}
	})
}

func readThenWrite(ctx context.Context, db *sqldb.DB, name string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM widgets`).Scan(&n); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO widgets (name) VALUES (?)`), name); err != nil {
		return err
	}
	return tx.Commit()
}

func TestIsUniqueViolation(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		if err := db.Migrate(ctx, "test", testSteps); err != nil {
			t.Fatal(err)
		}
		insert := db.Rebind(`INSERT INTO widgets (name) VALUES (?)`)
		if _, err := db.ExecContext(ctx, insert, "a"); err != nil {
			t.Fatal(err)
		}
		_, err := db.ExecContext(ctx, insert, "a")
		if !sqldb.IsUniqueViolation(err) {
			t.Errorf("duplicate key: IsUniqueViolation(%v) = false", err)
		}
		if !sqldb.IsUniqueViolation(fmt.Errorf("wrapped: %w", err)) {
			t.Error("a wrapped violation is not recognised")
		}
		_, err = db.ExecContext(ctx, `INSERT INTO no_such_table VALUES (1)`)
		if err == nil || sqldb.IsUniqueViolation(err) {
			t.Errorf("other error: IsUniqueViolation(%v) = true", err)
		}
		if sqldb.IsUniqueViolation(nil) {
			t.Error("IsUniqueViolation(nil) = true")
		}
	})
}

// TestDataVersionSeesOtherCommits: the data version moves when another
// connection (here another process's pool on the same file) commits, and
// only then; PostgreSQL has none.
func TestDataVersionSeesOtherCommits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	a, err := sqldb.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sqldb.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	read := func() int64 {
		t.Helper()
		v, ok, err := a.DataVersion(ctx)
		if !ok || err != nil {
			t.Fatalf("DataVersion: ok %v, %v", ok, err)
		}
		return v
	}
	first := read()
	if read() != first {
		t.Fatal("the data version moved with no commit")
	}
	if _, err := b.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	second := read()
	if second == first {
		t.Fatal("another connection's commit did not move the data version")
	}
	// a's own pool counts as another connection too.
	if _, err := a.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if read() == second {
		t.Fatal("a commit of the database's own pool did not move the data version")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.DataVersion(ctx); err == nil {
		t.Error("DataVersion after Close gave no error")
	}

	for _, d := range sqldbtest.Dialects {
		if d == sqldb.SQLite {
			continue
		}
		db := sqldbtest.Open(t, d)
		if _, ok, err := db.DataVersion(ctx); ok || err != nil {
			t.Errorf("%s: DataVersion ok %v, %v; want none", d, ok, err)
		}
	}
}

// Processes that start together on a new file all open it: the first turns
// it to WAL mode, which makes the others' first connection fail with
// SQLITE_BUSY at once (no busy timeout applies there) unless Open tries
// again.
func TestOpenSQLiteTogetherOnANewFile(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("new-%d.db", round))
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				db, err := sqldb.Open(context.Background(), "sqlite:"+path)
				if err == nil {
					err = db.Migrate(context.Background(), "together", []sqldb.Migration{{Name: "t", SQL: "CREATE TABLE t (x INTEGER)"}})
					db.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
