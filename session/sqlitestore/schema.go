package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrSchemaTooNew is returned by Open when the database's session tables were
// written by a newer version of this package than the running one. Old code
// must not guess at a newer layout; upgrade the program instead.
var ErrSchemaTooNew = errors.New("sqlitestore: database schema is newer than this program")

// migrations are the schema changes in order: migrations[i] takes the session
// tables from version i to version i+1. Append only; a released migration is
// never edited, since databases in the field have already run it.
//
// Times are INTEGER nanoseconds since the Unix epoch (UTC) and timeouts
// INTEGER nanoseconds, so they round-trip exactly. The tables are STRICT so
// that a value of the wrong type is an error instead of a silent conversion.
var migrations = []string{
	// 1: records and ended tokens.
	`CREATE TABLE session_records (
		id               TEXT    NOT NULL PRIMARY KEY,
		token_hash       BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
		user_id          TEXT    NOT NULL,
		created_at       INTEGER NOT NULL,
		authenticated_at INTEGER NOT NULL,
		last_activity    INTEGER NOT NULL,
		idle_timeout     INTEGER NOT NULL,
		absolute_timeout INTEGER NOT NULL,
		-- min(last_activity + idle_timeout, authenticated_at + absolute_timeout),
		-- kept by every write so the expiry sweep can use an index.
		deadline         INTEGER NOT NULL,
		ip               TEXT    NOT NULL,
		user_agent       TEXT    NOT NULL,
		data             TEXT    -- JSON object; NULL when empty
	) STRICT;
	CREATE INDEX session_records_deadline ON session_records (deadline);
	CREATE INDEX session_records_user ON session_records (user_id, created_at, id);
	CREATE INDEX session_records_created ON session_records (created_at, id);
	CREATE TABLE session_ended (
		token_hash BLOB    NOT NULL PRIMARY KEY,
		reason     TEXT    NOT NULL,
		ended_at   INTEGER NOT NULL,
		keep_until INTEGER NOT NULL
	) STRICT, WITHOUT ROWID;
	CREATE INDEX session_ended_keep_until ON session_ended (keep_until);`,
	// 2: the log of records whose token stopped working, which tells the
	// caches of other connections what to drop (see watch in cache.go).
	`CREATE TABLE session_token_changes (
		seq       INTEGER PRIMARY KEY AUTOINCREMENT,
		record_id TEXT    NOT NULL
	) STRICT;`,
}

// migrate brings the session tables to the newest version, all in one write
// transaction, so that of several processes opening a new file at once one
// migrates and the others find the work done. The version lives in a table of
// this package's own because PRAGMA user_version belongs to the whole file,
// which other packages share.
func migrate(ctx context.Context, db *sql.DB, path string) (err error) {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: see writeDSN
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS session_schema (version INTEGER NOT NULL) STRICT`); err != nil {
		return err
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM session_schema`).Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO session_schema (version) VALUES (0)`); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("%w: %s has session schema version %d, this program knows up to %d",
			ErrSchemaTooNew, path, version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating to version %d: %w", i+1, err)
		}
	}
	if version < len(migrations) {
		if _, err := tx.ExecContext(ctx, `UPDATE session_schema SET version = ?`, len(migrations)); err != nil {
			return err
		}
	}
	return tx.Commit()
}
