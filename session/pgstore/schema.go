package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrSchemaTooNew is returned by Open and New when the database's session
// tables were written by a newer version of this package than the running
// one. Old code must not guess at a newer layout; run the newer program (or
// restore a backup) instead.
var ErrSchemaTooNew = errors.New("pgstore: database schema is newer than this program")

// component is this package's row in schema_migrations.
const component = "session"

// migrations are the schema changes in order: migrations[i] takes the session
// tables from version i to version i+1. Append only; a released migration is
// never edited, since databases in the field have already run it.
//
// Times are bigint nanoseconds since the Unix epoch and timeouts bigint
// nanoseconds: timestamptz keeps microseconds only, and the Store contract
// asks for nanoseconds. ip and user_agent are bytea, not text: they come from
// the request (a User-Agent may hold Latin-1 bytes, and the Manager cuts it
// at 512 bytes, possibly inside a character), and a text column would refuse
// such a login instead of storing it. The IDs are compared bytewise
// (COLLATE "C"): they are opaque, and a byte comparison is cheaper than a
// locale's.
//
// There is no index on created_at alone: List of every user (an
// administrator's page) sorts the table instead, which saves an index entry
// on every Touch, the frequent write.
var migrations = []string{
	// 1: records and ended tokens.
	`CREATE TABLE session_records (
		id               text COLLATE "C" NOT NULL PRIMARY KEY,
		token_hash       bytea  NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
		user_id          text COLLATE "C" NOT NULL,
		created_at       bigint NOT NULL,
		authenticated_at bigint NOT NULL,
		last_activity    bigint NOT NULL,
		idle_timeout     bigint NOT NULL,
		absolute_timeout bigint NOT NULL,
		-- least(last_activity + idle_timeout, authenticated_at + absolute_timeout),
		-- kept by every write so that the sweeper can use an index.
		deadline         bigint NOT NULL,
		ip               bytea  NOT NULL,
		user_agent       bytea  NOT NULL,
		data             jsonb  -- an object of strings; NULL when empty
	);
	CREATE INDEX session_records_deadline ON session_records (deadline);
	CREATE INDEX session_records_user ON session_records (user_id, created_at);
	CREATE TABLE session_ended (
		token_hash bytea  NOT NULL PRIMARY KEY CHECK (octet_length(token_hash) = 32),
		reason     text   NOT NULL,
		ended_at   bigint NOT NULL,
		keep_until bigint NOT NULL
	);
	CREATE INDEX session_ended_keep_until ON session_ended (keep_until);`,
}

// createMigrationsTable is the version table the server's other components
// (accounts, audit; see internal/sqldb) share: one row per component. It is
// repeated here, not imported, so that this library package does not pull
// the server's SQLite driver into every program that uses it; the text and
// the lock below must stay the same as sqldb's.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	component TEXT NOT NULL,
	version   INTEGER NOT NULL,
	PRIMARY KEY (component)
)`

// migrationLock serialises migrations of one schema: without it, two
// instances starting at once could both read version 0 and both create the
// tables, and one would fail. It is the key sqldb uses, so that the session
// tables and the server's other tables are never migrated at the same time
// either (both create schema_migrations if it is missing). A transaction-level
// lock is released by commit or rollback, so a crashed migration cannot leave
// it held.
const migrationLock = `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.schema_migrations'))`

// migrate brings the session tables of the connection's current schema (the
// first existing schema of its search_path) to the newest version, in one
// transaction: a failed step leaves the database as it was. Of several
// instances migrating at once one does the work and the others wait for it
// and then find nothing to do.
func migrate(ctx context.Context, pool *pgxpool.Pool) (err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // after Commit a no-op

	var schema *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	if schema == nil {
		return errors.New("no schema to create the session tables in: the search_path names no existing schema")
	}
	if _, err := tx.Exec(ctx, migrationLock); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
		return err
	}
	var version int
	err = tx.QueryRow(ctx, `SELECT version FROM schema_migrations WHERE component = $1`, component).Scan(&version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("%w: the session tables of schema %q are at version %d, this program knows versions up to %d",
			ErrSchemaTooNew, *schema, version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	for i := version; i < len(migrations); i++ {
		// Without arguments pgx sends the text as one simple query, which
		// may hold several statements.
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (component, version) VALUES ($1, $2)
		ON CONFLICT (component) DO UPDATE SET version = excluded.version`, component, len(migrations)); err != nil {
		return fmt.Errorf("recording version %d: %w", len(migrations), err)
	}
	return tx.Commit(ctx)
}
