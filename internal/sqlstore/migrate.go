package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrSchemaTooNew is returned when the database holds a newer schema for a
// component than the running program knows: a newer version of sessionguard
// has used it. Old code must not guess at a newer layout, so the fix is to
// run the newer program (or restore a backup).
var ErrSchemaTooNew = errors.New("database schema is newer than this program")

// Dialect is the SQL dialect of a database.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// String returns the dialect's name, "sqlite" or "postgres".
func (d Dialect) String() string { return string(d) }

// Migration is one step of a component's schema. Steps are applied in order
// and each runs once per database; a released step is never edited or
// reordered, since databases in the field have already run it. Append new
// steps instead.
//
// Each SQL text may hold several statements separated by semicolons.
type Migration struct {
	// Name says what the step does, for error messages.
	Name string

	// SQL is the step for every dialect that has no text of its own below.
	SQL string

	// SQLite, when set, replaces SQL on SQLite: for autoincrement keys
	// (INTEGER PRIMARY KEY AUTOINCREMENT against GENERATED ALWAYS AS
	// IDENTITY), BLOB against BYTEA, and the like.
	SQLite string
	// Postgres, when set, replaces SQL on PostgreSQL.
	Postgres string
}

// Text returns the step's SQL for dialect d, or "" if it has none.
func (m Migration) Text(d Dialect) string {
	switch {
	case d == SQLite && m.SQLite != "":
		return m.SQLite
	case d == Postgres && m.Postgres != "":
		return m.Postgres
	}
	return m.SQL
}

// Schema is what Migrate brings a database to: a component's steps.
type Schema struct {
	// Component names the tables' owner, its row in schema_migrations.
	Component string

	// Steps take the component's tables from version i to i+1.
	Steps []Migration

	// Adopt, when set, is asked for the version of tables made before
	// schema_migrations recorded the component, when it has no row there.
	// It runs in the migration's transaction and returns 0 if there are no
	// such tables; the version it returns is then recorded in
	// schema_migrations like any other.
	Adopt func(ctx context.Context, tx Tx) (int, error)
}

// Conn is a database the migration engine can begin transactions on: a
// *sql.DB (through SQL) or a pgx pool (through an adapter of pgstore's). On
// SQLite its transactions must take the write lock when they begin (BEGIN
// IMMEDIATE), so that of two processes migrating at once one waits for the
// other instead of failing.
type Conn interface {
	Begin(ctx context.Context) (Tx, error)
}

// Tx is a transaction of a Conn.
type Tx interface {
	// Exec runs a statement, or (without args) several separated by
	// semicolons.
	Exec(ctx context.Context, query string, args ...any) error
	QueryRow(ctx context.Context, query string, args ...any) Row
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// createMigrationsTable creates the table that records, for each component,
// how many of its steps the database has run. Every component of a
// database shares it: the server's accounts and audit log, and the session
// tables of sqlitestore and pgstore.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	component TEXT NOT NULL,
	version   INTEGER NOT NULL,
	PRIMARY KEY (component)
)`

// migrationLock serialises PostgreSQL migrations of one schema: without it,
// two transactions could both read version 0 and both create the tables,
// and one would fail. It is one key per schema, not per component, since
// every component creates schema_migrations if it is missing. A
// transaction-level lock is released by commit or rollback, so a crashed
// migration cannot leave it held.
const migrationLock = `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.schema_migrations'))`

// Migrate brings the component's tables to version len(s.Steps): it runs the
// missing steps and records the new version in one transaction, so a failed
// step leaves the database as it was. Several processes may migrate the same
// database at once: one does the work and the others then find nothing to
// do.
//
// It returns an error wrapping ErrSchemaTooNew, changing nothing, if the
// database is at a version beyond len(s.Steps).
func Migrate(ctx context.Context, c Conn, d Dialect, s Schema) (err error) {
	if s.Component == "" {
		return errors.New("migrate: empty component name")
	}
	for i, m := range s.Steps {
		if m.Text(d) == "" {
			return fmt.Errorf("migrate %s: step %d (%s) has no SQL for %s", s.Component, i+1, m.Name, d)
		}
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.Component, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	var where string // the schema, in messages about PostgreSQL
	if d == Postgres {
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("migrate %s: %w", s.Component, err)
		}
		if schema == nil {
			return fmt.Errorf("migrate %s: no schema to create the tables in: the search_path names no existing schema", s.Component)
		}
		where = fmt.Sprintf(" of schema %q", *schema)
		if err := tx.Exec(ctx, migrationLock); err != nil {
			return fmt.Errorf("migrate %s: lock: %w", s.Component, err)
		}
	}
	if err := tx.Exec(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("migrate %s: %w", s.Component, err)
	}
	version, recorded, err := readVersion(ctx, tx, d, s.Component)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.Component, err)
	}
	if !recorded && s.Adopt != nil {
		if version, err = s.Adopt(ctx, tx); err != nil {
			return fmt.Errorf("migrate %s: reading the version of tables older than schema_migrations: %w", s.Component, err)
		}
	}
	if version > len(s.Steps) {
		return fmt.Errorf("%w: the %s tables%s are at version %d, but this program knows versions up to %d; run a newer sessionguard or restore a backup",
			ErrSchemaTooNew, s.Component, where, version, len(s.Steps))
	}
	if version == len(s.Steps) && recorded {
		return tx.Rollback(ctx) // nothing to write
	}
	for i := version; i < len(s.Steps); i++ {
		if err := tx.Exec(ctx, s.Steps[i].Text(d)); err != nil {
			return fmt.Errorf("migrate %s to version %d (%s): %w", s.Component, i+1, s.Steps[i].Name, err)
		}
	}
	if err := tx.Exec(ctx, Rebind(d, `INSERT INTO schema_migrations (component, version) VALUES (?, ?)
		ON CONFLICT (component) DO UPDATE SET version = excluded.version`), s.Component, len(s.Steps)); err != nil {
		return fmt.Errorf("migrate %s: record version: %w", s.Component, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", s.Component, err)
	}
	return nil
}

// readVersion returns the component's version in schema_migrations, and
// whether it has a row there.
func readVersion(ctx context.Context, tx Tx, d Dialect, component string) (version int, recorded bool, err error) {
	err = tx.QueryRow(ctx, Rebind(d, `SELECT coalesce(max(version), 0), count(*) > 0 FROM schema_migrations WHERE component = ?`),
		component).Scan(&version, &recorded)
	return version, recorded, err
}

// Version returns the version of component's tables: the number of its
// migration steps the database has run, 0 if none. It changes nothing, not
// even creating schema_migrations.
func Version(ctx context.Context, c Conn, d Dialect, component string) (version int, err error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var exists bool
	switch d {
	case Postgres:
		err = tx.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists)
	default:
		err = tx.QueryRow(ctx,
			`SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&exists)
	}
	if err != nil || !exists {
		return 0, err
	}
	version, _, err = readVersion(ctx, tx, d, component)
	return version, err
}

// SQL adapts a database/sql pool to Conn.
func SQL(db *sql.DB) Conn { return sqlConn{db} }

type sqlConn struct{ db *sql.DB }

func (c sqlConn) Begin(ctx context.Context) (Tx, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqlTx{tx}, nil
}

type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) Exec(ctx context.Context, query string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, query, args...)
	return err
}

func (t sqlTx) QueryRow(ctx context.Context, query string, args ...any) Row {
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t sqlTx) Commit(context.Context) error   { return t.tx.Commit() }
func (t sqlTx) Rollback(context.Context) error { return t.tx.Rollback() }

// Rebind returns query with its ? placeholders written for dialect d:
// unchanged for SQLite, $1, $2... for PostgreSQL. A ? inside a quoted
// string, a quoted identifier or a comment is left alone; one inside a
// PostgreSQL dollar-quoted string is not recognised, so keep those free of ?.
func Rebind(d Dialect, query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		case c == '\'' || c == '"':
			// Copy through the closing quote; a doubled quote is an
			// escaped one and keeps the string open.
			end := strings.IndexByte(query[i+1:], c)
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+2])
			i += end + 1
			continue
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end])
			i += end - 1
			continue
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+4])
			i += end + 3
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
