package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sessionguard/sessionguard/internal/sqlstore"
)

// ErrSchemaTooNew is returned by Open and New when the database's session
// tables were written by a newer version of this package than the running
// one. Old code must not guess at a newer layout; run the newer program (or
// restore a backup) instead. It is the same error as
// sqlitestore.ErrSchemaTooNew.
var ErrSchemaTooNew = sqlstore.ErrSchemaTooNew

// schema is the session tables' migrations, in order; append only, since a
// released step has already run on databases in the field. The version is
// the row "session" of schema_migrations, the table the server's other
// components (accounts, audit; see internal/sqldb) share, migrated by the
// same engine under the same lock.
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
var schema = sqlstore.Schema{
	Component: "session",
	Steps: []sqlstore.Migration{{
		Name: "records and ended tokens",
		SQL: `CREATE TABLE session_records (
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
	}, {
		// The Manager computes each session's expiry and the store keeps
		// it: expires_at replaces the deadline the store used to compute
		// from the timeouts, and is computed from them here once, for the
		// sessions of the old layout (the earlier deadline; a tie is
		// absolute).
		Name: "expiry kept by the Manager, persistent sessions",
		SQL: `ALTER TABLE session_records
			ADD COLUMN expires_at bigint,
			ADD COLUMN expires_reason text,
			ADD COLUMN persistent boolean NOT NULL DEFAULT false;
		UPDATE session_records SET
			expires_at = LEAST(last_activity + idle_timeout, authenticated_at + absolute_timeout),
			expires_reason = CASE WHEN authenticated_at + absolute_timeout <= last_activity + idle_timeout
				THEN 'absolute' ELSE 'idle' END;
		ALTER TABLE session_records
			ALTER COLUMN expires_at SET NOT NULL,
			ALTER COLUMN expires_reason SET NOT NULL,
			ALTER COLUMN persistent DROP DEFAULT,
			DROP COLUMN deadline;
		CREATE INDEX session_records_expires ON session_records (expires_at);`,
	}, {
		// The sweep resumes where its last full batch ended, after a
		// (expires_at, id) pair: PostgreSQL keeps a deleted row's index
		// entry until a vacuum, and a scan from the start of the index
		// walked every row already swept, more of them with each batch.
		Name: "sweep cursor index",
		SQL: `CREATE INDEX session_records_expires_id ON session_records (expires_at, id);
		DROP INDEX session_records_expires;`,
	}},
}

// migrate brings the session tables of the pool's current schema (the
// first existing schema of its search_path) to the newest version.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return sqlstore.Migrate(ctx, poolConn{pool}, sqlstore.Postgres, schema)
}

// poolConn adapts a pgx pool to the migration engine.
type poolConn struct{ pool *pgxpool.Pool }

func (c poolConn) Begin(ctx context.Context) (sqlstore.Tx, error) {
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return poolTx{tx}, nil
}

type poolTx struct{ tx pgx.Tx }

// Exec runs query; without arguments pgx sends it as one simple query,
// which may hold several statements.
func (t poolTx) Exec(ctx context.Context, query string, args ...any) error {
	_, err := t.tx.Exec(ctx, query, args...)
	return err
}

func (t poolTx) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return t.tx.QueryRow(ctx, query, args...)
}

func (t poolTx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t poolTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }
