package sqlitestore

import (
	"context"

	"github.com/sessionguard/sessionguard/internal/sqlstore"
)

// ErrSchemaTooNew is returned by Open when the database's session tables were
// written by a newer version of this package than the running one. Old code
// must not guess at a newer layout; upgrade the program instead. It is the
// same error as pgstore.ErrSchemaTooNew.
var ErrSchemaTooNew = sqlstore.ErrSchemaTooNew

// schema is the session tables' migrations, in order; append only, since a
// released step has already run on databases in the field. The version is
// the row "session" of schema_migrations, the table the server's other
// components (accounts, audit) keep theirs in when they share the file:
// PRAGMA user_version belongs to the whole file.
//
// Times are INTEGER nanoseconds since the Unix epoch (UTC) and timeouts
// INTEGER nanoseconds, so they round-trip exactly. The tables are STRICT so
// that a value of the wrong type is an error instead of a silent conversion.
var schema = sqlstore.Schema{
	Component: "session",
	Steps: []sqlstore.Migration{{
		Name: "records and ended tokens",
		SQL: `CREATE TABLE session_records (
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
	}, {
		// The log of records whose token stopped working, which tells the
		// caches of other connections what to drop (see watch in cache.go).
		Name: "token changes",
		SQL: `CREATE TABLE session_token_changes (
		seq       INTEGER PRIMARY KEY AUTOINCREMENT,
		record_id TEXT    NOT NULL
	) STRICT;`,
	}, {
		// The Manager computes each session's expiry and the store keeps
		// it: expires_at replaces the deadline the store used to compute
		// from the timeouts, and is computed from them here once, for the
		// sessions of the old layout (the earlier deadline; a tie is
		// absolute). The table is rebuilt rather than altered, since a
		// STRICT table's new NOT NULL columns would otherwise need a
		// default that no session should get.
		//
		// A session also ends in place: its row stays, with keep_until,
		// ended_reason and ended_at set and what it held of the client
		// (data, IP, User-Agent) cleared, until keep_until passes. Ending
		// then rewrites the row and the two small partial indexes, whose
		// keys follow the order in which sessions expire, instead of
		// deleting from the indexes on random keys (ID, token hash, user)
		// and inserting into a table of ended tokens keyed by hash; that
		// random work is left to the purge, which is not urgent. The
		// endings of the old layout become such rows, under an ID no
		// session gets.
		Name: "expiry kept by the Manager, persistent sessions, ending in place",
		SQL: `CREATE TABLE session_records_new (
			id               TEXT    NOT NULL PRIMARY KEY,
			token_hash       BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
			user_id          TEXT    NOT NULL,
			created_at       INTEGER NOT NULL,
			authenticated_at INTEGER NOT NULL,
			last_activity    INTEGER NOT NULL,
			idle_timeout     INTEGER NOT NULL,
			absolute_timeout INTEGER NOT NULL,
			ip               TEXT    NOT NULL,
			user_agent       TEXT    NOT NULL,
			data             TEXT,   -- JSON object; NULL when empty
			expires_at       INTEGER NOT NULL,
			expires_reason   TEXT    NOT NULL,
			persistent       INTEGER NOT NULL CHECK (persistent IN (0, 1)),
			-- NULL while the session lives; set together when it ends.
			keep_until       INTEGER,
			ended_reason     TEXT,
			ended_at         INTEGER
		) STRICT;
		INSERT INTO session_records_new (id, token_hash, user_id, created_at, authenticated_at, last_activity,
			idle_timeout, absolute_timeout, ip, user_agent, data, expires_at, expires_reason, persistent)
		SELECT id, token_hash, user_id, created_at, authenticated_at, last_activity,
			idle_timeout, absolute_timeout, ip, user_agent, data,
			min(last_activity + idle_timeout, authenticated_at + absolute_timeout),
			iif(authenticated_at + absolute_timeout <= last_activity + idle_timeout, 'absolute', 'idle'),
			0
		FROM session_records;
		INSERT INTO session_records_new (id, token_hash, user_id, created_at, authenticated_at, last_activity,
			idle_timeout, absolute_timeout, ip, user_agent, expires_at, expires_reason, persistent,
			keep_until, ended_reason, ended_at)
		SELECT 'ended:' || hex(token_hash), token_hash, '', ended_at, ended_at, ended_at,
			0, 0, '', '', ended_at, reason, 0,
			keep_until, reason, ended_at
		FROM session_ended
		WHERE token_hash NOT IN (SELECT token_hash FROM session_records);
		DROP TABLE session_records;
		DROP TABLE session_ended;
		ALTER TABLE session_records_new RENAME TO session_records;
		CREATE INDEX session_records_expires ON session_records (expires_at) WHERE keep_until IS NULL;
		CREATE INDEX session_records_ended ON session_records (keep_until) WHERE keep_until IS NOT NULL;
		CREATE INDEX session_records_user ON session_records (user_id, created_at, id);
		CREATE INDEX session_records_created ON session_records (created_at, id);`,
	}},
	Adopt: adoptSessionSchema,
}

// adoptSessionSchema reads the version of a file whose session tables were
// made before they were recorded in schema_migrations: those kept it in a
// table of their own, session_schema. That table stays, at a version no
// such program knows, so that one opening the file again refuses it
// (ErrSchemaTooNew) instead of failing over tables it would try to create.
func adoptSessionSchema(ctx context.Context, tx sqlstore.Tx) (int, error) {
	var exists bool
	if err := tx.QueryRow(ctx,
		`SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'session_schema'`).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM session_schema`).Scan(&version); err != nil {
		return 0, err
	}
	return version, tx.Exec(ctx, `UPDATE session_schema SET version = ?`, retiredSchemaVersion)
}

// retiredSchemaVersion is what session_schema says once schema_migrations
// has taken over: more than any program that read session_schema knows.
const retiredSchemaVersion = 1 << 30
