package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrSchemaTooNew is returned by Migrate when the database holds a newer
// schema for the component than the running program knows: a newer version
// of sessionguard has used it. Old code must not guess at a newer layout, so
// the fix is to run the newer program (or restore a backup).
var ErrSchemaTooNew = errors.New("sqldb: database schema is newer than this program")

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

// text returns the step's SQL for dialect d, or "" if it has none.
func (m Migration) text(d Dialect) string {
	switch {
	case d == SQLite && m.SQLite != "":
		return m.SQLite
	case d == Postgres && m.Postgres != "":
		return m.Postgres
	}
	return m.SQL
}

// createMigrationsTable creates the table that records, for each component,
// how many of its steps the database has run.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	component TEXT NOT NULL,
	version   INTEGER NOT NULL,
	PRIMARY KEY (component)
)`

// Migrate brings component's tables to version len(steps): steps[i] takes
// them from version i to i+1. It runs the missing steps and records the new
// version in one transaction, so a failed step leaves the database as it
// was. Several processes may migrate the same database at once: one does the
// work and the others then find nothing to do.
//
// It returns an error wrapping ErrSchemaTooNew, changing nothing, if the
// database is at a version beyond len(steps).
func (db *DB) Migrate(ctx context.Context, component string, steps []Migration) (err error) {
	if component == "" {
		return errors.New("sqldb: migrate: empty component name")
	}
	for i, s := range steps {
		if s.text(db.Dialect) == "" {
			return fmt.Errorf("sqldb: migrate %s: step %d (%s) has no SQL for %s", component, i+1, s.Name, db.Dialect)
		}
	}
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE on SQLite: it holds the write lock from here
	if err != nil {
		return fmt.Errorf("sqldb: migrate %s: %w", component, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if db.Dialect == Postgres {
		// PostgreSQL lets two transactions read version 0 at once and both
		// create the tables; one would then fail. A transaction-scoped
		// advisory lock per schema serialises migrations, and is released
		// at commit or rollback.
		if _, err := tx.ExecContext(ctx,
			`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.schema_migrations'))`); err != nil {
			return fmt.Errorf("sqldb: migrate %s: lock: %w", component, err)
		}
	}
	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("sqldb: migrate %s: %w", component, err)
	}
	version, err := schemaVersion(ctx, db, tx, component)
	if err != nil {
		return fmt.Errorf("sqldb: migrate %s: %w", component, err)
	}
	if version > len(steps) {
		return fmt.Errorf("%w: the %s tables are at version %d, but this program knows versions up to %d; run a newer sessionguard or restore a backup",
			ErrSchemaTooNew, component, version, len(steps))
	}
	if version == len(steps) {
		return tx.Rollback() // nothing to write
	}
	for i := version; i < len(steps); i++ {
		if _, err := tx.ExecContext(ctx, steps[i].text(db.Dialect)); err != nil {
			return fmt.Errorf("sqldb: migrate %s to version %d (%s): %w", component, i+1, steps[i].Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO schema_migrations (component, version) VALUES (?, ?)
		ON CONFLICT (component) DO UPDATE SET version = excluded.version`), component, len(steps)); err != nil {
		return fmt.Errorf("sqldb: migrate %s: record version: %w", component, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldb: migrate %s: %w", component, err)
	}
	return nil
}

// SchemaVersion returns the version of component's tables: the number of
// its migration steps the database has run, 0 if none.
func (db *DB) SchemaVersion(ctx context.Context, component string) (int, error) {
	var exists bool
	var err error
	switch db.Dialect {
	case Postgres:
		err = db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists)
	default:
		err = db.QueryRowContext(ctx,
			`SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&exists)
	}
	if err != nil || !exists {
		return 0, err
	}
	return schemaVersion(ctx, db, db.DB, component)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func schemaVersion(ctx context.Context, db *DB, q queryRower, component string) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, db.Rebind(`SELECT version FROM schema_migrations WHERE component = ?`), component).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}
