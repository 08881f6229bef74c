// Package sqldb opens the server's SQL database, SQLite or PostgreSQL, from
// one DSN, and migrates the tables of each component that keeps data in it.
//
// The same database holds the accounts, the audit log and (unless sessions are
// kept elsewhere) the sessions; each component names its tables with its own
// prefix and keeps its schema version in the shared schema_migrations table.
//
// Queries are written once, with ? placeholders, and passed through
// DB.Rebind, which turns them into PostgreSQL's $1, $2... when needed. Where
// the dialects differ in DDL (autoincrement keys, BLOB against BYTEA), a
// Migration carries one statement per dialect.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/sessionguard/sessionguard/internal/dataversion"
	"github.com/sessionguard/sessionguard/internal/sqlstore"
)

// Dialect is the SQL dialect of a database.
type Dialect = sqlstore.Dialect

// The supported dialects.
const (
	SQLite   = sqlstore.SQLite
	Postgres = sqlstore.Postgres
)

// DSNForms describes the DSNs Open accepts, for error messages and help text.
const DSNForms = "sqlite:PATH (for example sqlite:sessionguard.db) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS] (postgresql:// also works)"

// BusyTimeout is how long a SQLite connection waits for another writer (in
// this process or another) before failing with SQLITE_BUSY.
const BusyTimeout = sqlstore.BusyTimeout

// DB is an open database: a *sql.DB and the dialect its queries must be
// written in. It is safe for concurrent use; Close it when done.
type DB struct {
	*sql.DB

	// Dialect is the database's SQL dialect.
	Dialect Dialect

	// name is the DSN with any password removed, for String.
	name string

	// uri opens another pool on the same SQLite file (empty for
	// PostgreSQL), for the data-version connection.
	uri     string
	version versionWatch
}

// versionWatch is a SQLite connection of its own, opened on first use and
// kept until Close, that tells whether anyone else has committed.
type versionWatch struct {
	once sync.Once
	mu   sync.Mutex // a dataversion.Conn serves one caller at a time
	pool *sql.DB
	conn *dataversion.Conn
	err  error
}

// DataVersion returns SQLite's PRAGMA data_version as seen by a connection
// kept for it: the value changes whenever any other connection, of this
// process or another, has committed since the previous call. It lets a
// cache of the database's rows stay exact across processes for the price
// of a pragma. ok is false for PostgreSQL, which has no such thing.
func (db *DB) DataVersion(ctx context.Context) (version int64, ok bool, err error) {
	if db.uri == "" {
		return 0, false, nil
	}
	w := &db.version
	w.once.Do(func() {
		// A pool of its own, so that the kept connection is never one
		// that queries wait for.
		if w.pool, w.err = sql.Open("sqlite", db.uri); w.err != nil {
			return
		}
		w.pool.SetMaxOpenConns(1)
		w.conn, w.err = dataversion.Open(ctx, w.pool)
	})
	if w.err != nil {
		return 0, true, fmt.Errorf("sqldb: watching for other connections' commits: %w", w.err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return 0, true, errors.New("sqldb: the database is closed")
	}
	version, err = w.conn.Read(ctx)
	return version, true, err
}

// Close closes the database and the data-version connection, if one was
// opened.
func (db *DB) Close() error {
	w := &db.version
	w.mu.Lock()
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	if w.pool != nil {
		w.pool.Close()
		w.pool = nil
	}
	w.mu.Unlock()
	return db.DB.Close()
}

// String returns the DSN the database was opened with, any password
// replaced by "xxxxx", so that it can be logged.
func (db *DB) String() string { return db.name }

// Open opens the database named by dsn and checks that it answers:
//
//   - sqlite:PATH opens (creating it if needed, readable by its owner only)
//     the SQLite file at PATH, relative to the working directory unless
//     absolute, with the pure-Go driver modernc.org/sqlite. Every connection
//     runs in WAL mode with synchronous=NORMAL, foreign keys enforced and a
//     busy timeout of BusyTimeout, and every transaction is BEGIN IMMEDIATE.
//     An in-memory database is refused: each pooled connection would see a
//     database of its own.
//   - postgres://... or postgresql://... opens a PostgreSQL database with
//     github.com/jackc/pgx/v5/stdlib. Query parameters that pgx does not
//     interpret are sent as run-time parameters, so
//     ?search_path=myschema selects the schema.
//
// Anything else is an error that lists the accepted forms (DSNForms). ctx
// bounds the first connection, which Open makes to check the database.
func Open(ctx context.Context, dsn string) (*DB, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	}
	// The DSN is not echoed whole: a mistyped one may hold a password.
	scheme, _, found := strings.Cut(dsn, ":")
	switch {
	case dsn == "":
		return nil, fmt.Errorf("sqldb: no database given: use %s", DSNForms)
	case !found || strings.ContainsAny(scheme, "/\\.@"):
		return nil, fmt.Errorf("sqldb: database %q has no recognised scheme: use %s", redactLoose(dsn), DSNForms)
	default:
		return nil, fmt.Errorf("sqldb: unsupported database scheme %q: use %s", scheme, DSNForms)
	}
}

// redactLoose returns s, or a placeholder when s looks like it might hold
// credentials.
func redactLoose(s string) string {
	if strings.Contains(s, "@") {
		return "(hidden: it contains '@')"
	}
	return s
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	switch {
	case path == "":
		return nil, fmt.Errorf("sqldb: sqlite: no file path given: use %s", DSNForms)
	case strings.HasPrefix(path, ":memory:"), strings.HasPrefix(path, "file:"), strings.Contains(path, "mode=memory"):
		return nil, fmt.Errorf("sqldb: sqlite: %q is not a file path: sessionguard needs a database file, as in sqlite:sessionguard.db", path)
	case strings.HasPrefix(path, "//") && !strings.HasPrefix(path, "///"):
		// sqlite://name would silently mean /name.
		return nil, fmt.Errorf("sqldb: sqlite: %q is not a file path: write sqlite:PATH, as in sqlite:sessionguard.db or sqlite:/var/lib/sessionguard/db", "sqlite:"+path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqldb: sqlite: %w", err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, fmt.Errorf("sqldb: sqlite: %w", err)
	}
	sdb, err := sql.Open("sqlite", sqlstore.FileURI(abs)+"?"+sqlstore.SQLitePragmas)
	if err != nil {
		return nil, fmt.Errorf("sqldb: sqlite %s: %w", path, err)
	}
	// Reads run in parallel in WAL mode, and writers queue in SQLite (see
	// sqlstore.SQLitePragmas), so a few connections serve a busy server; every one is
	// kept open, since a new connection re-runs the pragmas and starts with
	// a cold page cache.
	conns := max(4, runtime.GOMAXPROCS(0))
	sdb.SetMaxOpenConns(conns)
	sdb.SetMaxIdleConns(conns)
	sdb.SetConnMaxLifetime(0)
	sdb.SetConnMaxIdleTime(0)
	if err := sqlstore.ConnectSQLite(ctx, sdb); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("sqldb: sqlite %s: %w", path, err)
	}
	return &DB{DB: sdb, Dialect: SQLite, name: "sqlite:" + path, uri: sqlstore.FileURI(abs) + "?" + sqlstore.SQLitePragmas}, nil
}

// createPrivate creates the database file, if it does not exist, readable and
// writable by its owner only: it holds password hashes. SQLite gives its WAL
// and shared-memory files the permissions of the database file.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		return err
	}
	return f.Close()
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// url.Error quotes the DSN, which may hold a password.
		return nil, fmt.Errorf("sqldb: postgres: malformed URL: use %s", DSNForms)
	}
	name := u.Redacted()
	pdb, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqldb: postgres %s: %w", name, err)
	}
	// A server's connections are a shared, limited resource (100 by
	// default), so the pool is bounded; idle ones are closed after a while
	// and all are replaced hourly, so a fail-over or a changed setting is
	// picked up.
	pdb.SetMaxOpenConns(16)
	pdb.SetMaxIdleConns(4)
	pdb.SetConnMaxIdleTime(5 * time.Minute)
	pdb.SetConnMaxLifetime(time.Hour)
	if err := pdb.PingContext(ctx); err != nil {
		pdb.Close()
		return nil, fmt.Errorf("sqldb: postgres %s: %w", name, err)
	}
	return &DB{DB: pdb, Dialect: Postgres, name: name}, nil
}

// Rebind returns query with its ? placeholders written for the database's
// dialect: unchanged for SQLite, $1, $2... for PostgreSQL (see
// sqlstore.Rebind for what it leaves alone).
func (db *DB) Rebind(query string) string { return sqlstore.Rebind(db.Dialect, query) }

// IsUniqueViolation reports whether err is a database's refusal to insert or
// update a row because it would duplicate a UNIQUE or PRIMARY KEY value, in
// either dialect.
func IsUniqueViolation(err error) bool { return sqlstore.IsUniqueViolation(err) }
