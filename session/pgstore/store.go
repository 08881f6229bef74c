package pgstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sessionguard/sessionguard/internal/batch"
	"github.com/sessionguard/sessionguard/session"
)

// Store is a session.Store kept in PostgreSQL. Create one with Open or New;
// it is safe for concurrent use, and any number of Stores, in one process or
// many, may share one database schema.
type Store struct {
	pool *pgxpool.Pool
	// ownPool is set when Open made the pool, which Close then closes.
	ownPool bool
	closed  atomic.Bool
	gets    *batch.Batcher[session.TokenHash, session.Record]
}

// errClosed is returned by every call after Close.
var errClosed = errors.New("pgstore: store is closed")

// DefaultMaxConns is the size of the connection pool Open makes when the DSN
// does not set pool_max_conns: twice the number of CPUs the program may use,
// and at least 4 (4 on a 2-core machine). A session call holds a connection
// for one round trip, so a few connections keep the CPUs busy; more would
// only queue in the database, whose connections several instances share
// (PostgreSQL allows 100 by default).
var DefaultMaxConns = int32(max(4, 2*runtime.GOMAXPROCS(0)))

// Open connects to the PostgreSQL database named by dsn, a URL of the form
// postgres://user[:password]@host[:port]/database[?params] (postgresql://
// also works), and creates or migrates the session tables in it.
//
// The tables go into the connection's current schema: the first existing
// schema of its search_path, which the DSN may set (?search_path=sessions).
// Parameters that pgx does not interpret are sent to the server as run-time
// parameters; pgxpool's own are honoured, pool_max_conns among them (the
// default is DefaultMaxConns). Idle connections are closed after 30 minutes
// and every connection is replaced after an hour (pgxpool's defaults), so a
// fail-over or a changed setting is picked up.
//
// The Store owns the pool it makes and closes it on Close. ctx bounds the
// connection and the migration, not the Store's life.
func Open(ctx context.Context, dsn string) (*Store, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		// The DSN is not echoed: a mistyped one may hold a password.
		return nil, errors.New("pgstore: the DSN must be a URL of the form postgres://user[:password]@host[:port]/database[?params]")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// url.Error quotes the DSN, which may hold a password.
		return nil, errors.New("pgstore: malformed DSN: want postgres://user[:password]@host[:port]/database[?params]")
	}
	name := u.Redacted()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", name, err)
	}
	if !u.Query().Has("pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", name, err)
	}
	s, err := New(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("%w (database %s)", err, name)
	}
	s.ownPool = true
	return s, nil
}

// New returns a Store on a pool the caller shares with other code, and
// creates or migrates the session tables in the pool's current schema (see
// Open). Closing the Store leaves the pool open; the caller closes it, after
// the Store.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: New: nil pool")
	}
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: connecting: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		if errors.Is(err, ErrSchemaTooNew) {
			return nil, err
		}
		return nil, fmt.Errorf("pgstore: migrating the session tables: %w", err)
	}
	s := &Store{pool: pool}
	s.gets = batch.New(s.getBatch, batch.Options{MaxBatch: getBatchSize, MaxInFlight: getsInFlight})
	return s, nil
}

// Close releases the Store: it closes the pool if Open made it, waiting for
// calls in progress to return their connections. Calls after Close fail.
// Close is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.ownPool {
		s.pool.Close()
	}
	return nil
}

// Count returns the number of records (session.CountingStore).
func (s *Store) Count(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM session_records`).Scan(&n)
	return n, wrap("count", err)
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return wrap("ping", s.pool.Ping(ctx))
}

const recordColumns = `id, token_hash, user_id, created_at, authenticated_at, last_activity,
	idle_timeout, absolute_timeout, ip, user_agent, data`

// Create inserts rec, or returns an error wrapping session.ErrConflict if its
// ID or token hash is taken.
func (s *Store) Create(ctx context.Context, rec session.Record) error {
	if s.closed.Load() {
		return errClosed
	}
	created, err1 := session.UnixNanos("CreatedAt", rec.CreatedAt)
	auth, err2 := session.UnixNanos("AuthenticatedAt", rec.AuthenticatedAt)
	last, err3 := session.UnixNanos("LastActivity", rec.LastActivity)
	// Both deadlines must be storable, not only the earlier one, or the
	// arithmetic of Touch, Renew and EndExpired could overflow.
	idle, err4 := session.UnixNanos("IdleDeadline", rec.IdleDeadline())
	abs, err5 := session.UnixNanos("AbsoluteDeadline", rec.AbsoluteDeadline())
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return err
	}
	if rec.ID == "" {
		return errors.New("pgstore: record has no ID")
	}
	data, err := encodeData(rec.Data)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO session_records (`+recordColumns+`, deadline)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		rec.ID, rec.TokenHash[:], rec.UserID, created, auth, last,
		int64(rec.Policy.IdleTimeout), int64(rec.Policy.AbsoluteTimeout),
		bytesOf(rec.IP), bytesOf(rec.UserAgent), data, min(idle, abs))
	if c, ok := uniqueViolation(err); ok {
		return fmt.Errorf("pgstore: create: %w (%s)", session.ErrConflict, c)
	}
	return wrap("create", err)
}

// Get returns the record whose token hashes to h, expired or not (the
// Manager judges expiry), or session.ErrNotFound. It takes no lock: it never
// waits for a writer or the sweeper. Gets that arrive while others are in
// flight wait for them and then share one query (see getBatch); each still
// reads the table after it was called.
func (s *Store) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	if s.closed.Load() {
		return session.Record{}, errClosed
	}
	return s.gets.Get(ctx, h)
}

// getBatchSize is the most Gets one query serves.
const getBatchSize = 128

// getsInFlight is how many Get queries may run at once; further Gets queue
// for the next. One keeps a connection of the pool for the other calls and
// gathers the most Gets per query.
const getsInFlight = 1

// getBatch reads the records of hashes in one query. A query that fails
// fails every Get of the batch; a row that cannot be read fails the Get of
// its own token only.
func (s *Store) getBatch(ctx context.Context, hashes []session.TokenHash) ([]batch.Result[session.Record], error) {
	out := make([]batch.Result[session.Record], len(hashes))
	if len(hashes) == 1 {
		rec, err := scanRecord(s.pool.QueryRow(ctx,
			`SELECT `+recordColumns+` FROM session_records WHERE token_hash = $1`, hashes[0][:]))
		if errors.Is(err, pgx.ErrNoRows) {
			err = session.ErrNotFound
		}
		out[0] = batch.Result[session.Record]{Value: rec, Err: wrapNotFound("get", err)}
		return out, nil
	}
	keys := make([][]byte, len(hashes))
	for i := range hashes {
		keys[i] = hashes[i][:]
	}
	// The token hash comes once more, as a plain column at the end, so that
	// a row scanRecord cannot decode is still known by its hash.
	rows, err := s.pool.Query(ctx, `SELECT `+recordColumns+`, token_hash
		FROM session_records WHERE token_hash = ANY($1)`, keys)
	if err != nil {
		return nil, wrap("get", err)
	}
	defer rows.Close()
	found := make(map[session.TokenHash]batch.Result[session.Record], len(hashes))
	for rows.Next() {
		var key []byte
		rec, err := scanRecord(rows, &key)
		if len(key) != len(session.TokenHash{}) {
			return nil, wrap("get", cmp.Or(err, errors.New("a row without its token hash")))
		}
		found[session.TokenHash(key)] = batch.Result[session.Record]{Value: rec, Err: wrap("get", err)}
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("get", err)
	}
	for i, h := range hashes {
		if r, ok := found[h]; ok {
			out[i] = r
		} else {
			out[i].Err = session.ErrNotFound
		}
	}
	return out, nil
}

// wrapNotFound is wrap, except that session.ErrNotFound passes unchanged.
func wrapNotFound(op string, err error) error {
	if errors.Is(err, session.ErrNotFound) {
		return err
	}
	return wrap(op, err)
}

// Touch moves the record's LastActivity forward to at (never back) and its
// deadline with it. It returns session.ErrNotFound if the record is gone or
// its deadline is not after at.
func (s *Store) Touch(ctx context.Context, id string, at time.Time) error {
	if s.closed.Load() {
		return errClosed
	}
	n, err := session.UnixNanos("touch time", at)
	if err != nil {
		return err
	}
	// SET expressions see the row as it was, hence GREATEST in both. A
	// touch older than the stored activity still matches the row and
	// succeeds as a no-op; one at or after the deadline matches nothing.
	tag, err := s.pool.Exec(ctx, `UPDATE session_records
		SET last_activity = GREATEST(last_activity, $1),
		    deadline = LEAST(GREATEST(last_activity, $1) + idle_timeout, authenticated_at + absolute_timeout)
		WHERE id = $2 AND deadline > $1`, n, id)
	return affectedOne("touch", tag, err)
}

// SaveData replaces the record's data, or returns session.ErrNotFound.
// PostgreSQL's jsonb cannot hold NUL characters, and JSON cannot hold
// invalid UTF-8: data with either is refused with an error, not altered.
func (s *Store) SaveData(ctx context.Context, id string, data map[string]string) error {
	if s.closed.Load() {
		return errClosed
	}
	enc, err := encodeData(data)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE session_records SET data = $1 WHERE id = $2`, enc, id)
	return affectedOne("save data", tag, err)
}

// Renew gives the record id the token hash new, if its hash is still old, and
// sets its AuthenticatedAt and LastActivity. Otherwise it returns
// session.ErrNotFound. If new is another record's hash it returns an error
// wrapping session.ErrConflict.
func (s *Store) Renew(ctx context.Context, id string, old, new session.TokenHash, authenticatedAt, lastActivity time.Time) error {
	if s.closed.Load() {
		return errClosed
	}
	auth, err1 := session.UnixNanos("AuthenticatedAt", authenticatedAt)
	last, err2 := session.UnixNanos("LastActivity", lastActivity)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	// Of two renewals racing from one hash, the second waits for the
	// first's row lock and then re-checks its WHERE on the renewed row,
	// which no longer has the old hash: it matches nothing.
	tag, err := s.pool.Exec(ctx, `UPDATE session_records
		SET token_hash = $1, authenticated_at = $2, last_activity = $3,
		    deadline = LEAST($3 + idle_timeout, $2 + absolute_timeout)
		WHERE id = $4 AND token_hash = $5`, new[:], auth, last, id, old[:])
	if c, ok := uniqueViolation(err); ok {
		return fmt.Errorf("pgstore: renew: %w (%s)", session.ErrConflict, c)
	}
	return affectedOne("renew", tag, err)
}

// keepEnded writes the ended-token rows of the records in gone, which has the
// columns token_hash, reason, ended_at and keep_until. A row for the same
// hash can only be left by a record that ended and was then created again
// with the same token; the newer ending is the true one, so it replaces the
// old. (The no-upsert rule is for session records: an ended-token row brings
// no session back.)
const keepEnded = `INSERT INTO session_ended (token_hash, reason, ended_at, keep_until)
	SELECT token_hash, reason, ended_at, keep_until FROM gone
	ON CONFLICT (token_hash) DO UPDATE
	SET reason = excluded.reason, ended_at = excluded.ended_at, keep_until = excluded.keep_until`

// endQuery deletes one record and keeps its ending in one statement, so one
// transaction: of two Ends of one record (on any instances) the second waits
// for the first's row lock, then finds no row, inserts nothing and returns
// nothing.
const endQuery = `WITH gone AS (
		DELETE FROM session_records WHERE id = $1
		RETURNING ` + recordColumns + `, $2::text AS reason, $3::bigint AS ended_at, $4::bigint AS keep_until
	), kept AS (` + keepEnded + `)
	SELECT ` + recordColumns + ` FROM gone`

// End deletes the record id and keeps why it ended until e.KeepUntil. It
// returns the deleted record, or session.ErrNotFound if another End (or
// EndExpired, on any instance) deleted it first.
func (s *Store) End(ctx context.Context, id string, e session.Ending) (session.Record, error) {
	if s.closed.Load() {
		return session.Record{}, errClosed
	}
	if !e.Reason.Valid() {
		return session.Record{}, fmt.Errorf("pgstore: end: invalid reason %q", e.Reason)
	}
	at, err1 := session.UnixNanos("end time", e.At)
	keep, err2 := session.UnixNanos("KeepUntil", e.KeepUntil)
	if err := errors.Join(err1, err2); err != nil {
		return session.Record{}, err
	}
	rec, err := scanRecord(s.pool.QueryRow(ctx, endQuery, id, string(e.Reason), at, keep))
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Record{}, session.ErrNotFound
	}
	if err != nil {
		return session.Record{}, wrap("end", err)
	}
	return rec, nil
}

// endExpiredQuery is one sweep, in one statement:
//
//   - gone locks up to $2 expired records, oldest deadline first, skipping
//     those another transaction has locked (another instance's sweep, an End,
//     a Touch), deletes them and computes each one's ending as
//     Record.Expiry does: absolute when the absolute deadline is not after
//     the idle one, at the earlier deadline, kept $3 longer (saturating
//     rather than overflowing);
//   - kept writes their ended-token rows;
//   - purged deletes up to $2 ended-token rows whose keep_until is before $1,
//     again skipping locked ones. It leaves alone a row that kept is
//     replacing in the same statement (a token created again after it
//     ended), since one statement must not change a row twice.
//
// Sweeps on several instances therefore never wait for each other and never
// take the same record: each expired record is returned, and its end
// recorded, by exactly one of them. Nothing is held after the statement.
//
// The final ORDER BY gives the batch in expiry order.
const endExpiredQuery = `WITH gone AS (
		DELETE FROM session_records
		WHERE id IN (
			SELECT id FROM session_records
			WHERE deadline <= $1
			ORDER BY deadline
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		RETURNING ` + recordColumns + `,
			CASE WHEN authenticated_at + absolute_timeout <= last_activity + idle_timeout
				THEN 'absolute' ELSE 'idle' END AS reason,
			LEAST(authenticated_at + absolute_timeout, last_activity + idle_timeout) AS ended_at,
			CASE WHEN LEAST(authenticated_at + absolute_timeout, last_activity + idle_timeout) > 9223372036854775807 - $3::bigint
				THEN 9223372036854775807
				ELSE LEAST(authenticated_at + absolute_timeout, last_activity + idle_timeout) + $3::bigint END AS keep_until
	), kept AS (` + keepEnded + `
	), purged AS (
		DELETE FROM session_ended
		WHERE token_hash IN (
			SELECT token_hash FROM session_ended
			WHERE keep_until < $1 AND token_hash NOT IN (SELECT token_hash FROM gone)
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
	)
	SELECT ` + recordColumns + `, reason, ended_at, keep_until FROM gone ORDER BY ended_at, id`

// EndExpired ends up to limit records whose deadline is at or before now,
// oldest deadline first, keeping their ended-token records until keep after
// their expiry, and deletes up to limit ended-token records whose KeepUntil
// is before now (an ending is kept until KeepUntil, inclusive). limit must be
// positive and keep not negative.
//
// It is one statement: it holds row locks on one batch for the time the
// statement runs and never waits for a lock, so Gets never wait for it and
// other instances may sweep at the same time (see the package
// documentation). While another instance sweeps, a call may end fewer than
// limit records although expired ones are left: those are the other sweep's.
func (s *Store) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		return nil, fmt.Errorf("pgstore: end expired: limit must be positive, got %d", limit)
	}
	if keep < 0 {
		return nil, fmt.Errorf("pgstore: end expired: keep must not be negative, got %v", keep)
	}
	n, err := session.UnixNanos("now", now)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, endExpiredQuery, n, limit, int64(keep))
	if err != nil {
		return nil, wrap("end expired", err)
	}
	defer rows.Close()
	var ended []session.Ended
	for rows.Next() {
		var (
			e             session.Ended
			reason        string
			at, keepUntil int64
		)
		e.Record, err = scanRecord(rows, &reason, &at, &keepUntil)
		if err != nil {
			return nil, wrap("end expired", err)
		}
		e.Ending = session.Ending{Reason: session.EndReason(reason), At: fromNanos(at), KeepUntil: fromNanos(keepUntil)}
		ended = append(ended, e)
	}
	if err := rows.Err(); err != nil {
		// The statement failed as a whole: nothing was deleted.
		return nil, wrap("end expired", err)
	}
	return ended, nil
}

// Ended returns why the token with hash h stopped working, or
// session.ErrNotFound if no ending is kept for it.
func (s *Store) Ended(ctx context.Context, h session.TokenHash) (session.Ending, error) {
	if s.closed.Load() {
		return session.Ending{}, errClosed
	}
	var (
		reason        string
		at, keepUntil int64
	)
	err := s.pool.QueryRow(ctx, `SELECT reason, ended_at, keep_until FROM session_ended WHERE token_hash = $1`,
		h[:]).Scan(&reason, &at, &keepUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Ending{}, session.ErrNotFound
	}
	if err != nil {
		return session.Ending{}, wrap("ended", err)
	}
	return session.Ending{Reason: session.EndReason(reason), At: fromNanos(at), KeepUntil: fromNanos(keepUntil)}, nil
}

// List returns the records of userID, or of every user if userID is empty,
// oldest first (by CreatedAt, then ID), at most limit of them (limit <= 0: no
// limit). Like Get, it returns records past their deadline that EndExpired
// has not yet removed.
func (s *Store) List(ctx context.Context, userID string, limit int) ([]session.Record, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	var lim any // NULL: LIMIT ALL
	if limit > 0 {
		lim = limit
	}
	var (
		rows pgx.Rows
		err  error
	)
	if userID == "" {
		rows, err = s.pool.Query(ctx, `SELECT `+recordColumns+` FROM session_records
			ORDER BY created_at, id LIMIT $1`, lim)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+recordColumns+` FROM session_records
			WHERE user_id = $1 ORDER BY created_at, id LIMIT $2`, userID, lim)
	}
	if err != nil {
		return nil, wrap("list", err)
	}
	defer rows.Close()
	var recs []session.Record
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, wrap("list", err)
		}
		recs = append(recs, rec)
	}
	return recs, wrap("list", rows.Err())
}

// scanRecord reads the columns of recordColumns, then any extra columns into
// extra.
func scanRecord(row pgx.Row, extra ...any) (session.Record, error) {
	var (
		rec                                 session.Record
		hash, ip, userAgent, data           []byte
		created, auth, last, idle, absolute int64
	)
	dest := append([]any{&rec.ID, &hash, &rec.UserID, &created, &auth, &last,
		&idle, &absolute, &ip, &userAgent, &data}, extra...)
	if err := row.Scan(dest...); err != nil {
		return session.Record{}, err
	}
	if len(hash) != len(rec.TokenHash) {
		return session.Record{}, fmt.Errorf("record %q has a token hash of %d bytes", rec.ID, len(hash))
	}
	copy(rec.TokenHash[:], hash)
	rec.CreatedAt, rec.AuthenticatedAt, rec.LastActivity = fromNanos(created), fromNanos(auth), fromNanos(last)
	rec.Policy = session.Policy{IdleTimeout: time.Duration(idle), AbsoluteTimeout: time.Duration(absolute)}
	rec.IP, rec.UserAgent = string(ip), string(userAgent)
	if data != nil {
		if err := json.Unmarshal(data, &rec.Data); err != nil {
			return session.Record{}, fmt.Errorf("record %q has unreadable data: %w", rec.ID, err)
		}
		if len(rec.Data) == 0 {
			rec.Data = nil
		}
	}
	return rec, nil
}

// encodeData returns data as the text of a JSON object, or nil (SQL NULL)
// when it is empty, so that an empty map and a nil map read back alike, as
// nil. It is a string, not a []byte, because pgx sends a []byte of unknown
// type as bytea (in the exec and simple-protocol modes), which jsonb does
// not parse. It refuses what would not round-trip: encoding/json would
// replace invalid UTF-8 silently, and jsonb refuses NUL characters.
func encodeData(data map[string]string) (any, error) {
	if len(data) == 0 {
		return nil, nil
	}
	for k, v := range data {
		for _, s := range [2]string{k, v} {
			if !utf8.ValidString(s) {
				return nil, fmt.Errorf("pgstore: session data key %q: keys and values must be valid UTF-8", k)
			}
			if strings.IndexByte(s, 0) >= 0 {
				return nil, fmt.Errorf("pgstore: session data key %q: keys and values cannot hold NUL characters", k)
			}
		}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("pgstore: encoding data: %w", err)
	}
	return string(b), nil
}

// bytesOf returns s as a non-nil slice: pgx sends a nil slice as NULL, and
// the columns take an empty value instead.
func bytesOf(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// affectedOne turns the result of an update of one record by ID into nil, or
// session.ErrNotFound if no row matched.
func affectedOne(op string, tag pgconn.CommandTag, err error) error {
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return session.ErrNotFound
	}
	return nil
}

// uniqueViolation reports whether err is a primary key or unique constraint
// failure (another record has the ID or token hash), and names the
// constraint.
func uniqueViolation(err error) (string, bool) {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	if !ok || pe.Code != "23505" { // unique_violation
		return "", false
	}
	return pe.ConstraintName, true
}

// wrap prefixes a database error with the package and operation; nil stays
// nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}
