package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sessionguard/sessionguard/internal/batch"
	"github.com/sessionguard/sessionguard/internal/sqlstore"
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
	// sweepFrom is where EndExpired's next call starts.
	sweepFrom sweepCursor
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
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := &Store{pool: pool, sweepFrom: sweepCursor{pos: sweepStart}}
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

// recordColumns are the columns a record is read from.
const recordColumns = sqlstore.RecordColumns

// Create inserts rec, or returns an error wrapping session.ErrConflict if its
// ID or token hash is taken.
func (s *Store) Create(ctx context.Context, rec session.Record) error {
	if s.closed.Load() {
		return errClosed
	}
	t, err := sqlstore.TimesOf(rec)
	if err != nil {
		return err
	}
	if rec.ID == "" {
		return errors.New("pgstore: record has no ID")
	}
	data, err := sqlstore.EncodeData(rec.Data)
	if err != nil {
		return fmt.Errorf("pgstore: create: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO session_records (`+recordColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		rec.ID, rec.TokenHash[:], rec.UserID, t.Created, t.Authenticated, t.LastActivity,
		int64(rec.Policy.IdleTimeout), int64(rec.Policy.AbsoluteTimeout),
		bytesOf(rec.IP), bytesOf(rec.UserAgent), data, t.Expires, string(rec.Expires.Reason), rec.Persistent)
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
		rec, err := sqlstore.ScanRecord(s.pool.QueryRow(ctx,
			`SELECT `+recordColumns+` FROM session_records WHERE token_hash = $1`, hashes[0][:]))
		if errors.Is(err, pgx.ErrNoRows) {
			err = session.ErrNotFound
		}
		out[0] = batch.Result[session.Record]{Value: rec, Err: wrap("get", err)}
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
	var key []byte
	scan := sqlstore.NewRecordScanner(&key)
	for rows.Next() {
		key = nil
		rec, err := scan.Scan(rows)
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

// Touch moves the record's LastActivity forward to at (never back), and its
// expiry to exp if that is later than the stored one. It returns
// session.ErrNotFound if the record is gone or its stored expiry is not
// after at.
func (s *Store) Touch(ctx context.Context, id string, at time.Time, exp session.Expiry) error {
	if s.closed.Load() {
		return errClosed
	}
	n, err1 := session.UnixNanos("touch time", at)
	e, err2 := session.UnixNanos("Expires.At", exp.At)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	// SET expressions see the row as it was, so the reason is compared
	// with the old expires_at. A touch older than the stored activity
	// still matches the row and succeeds as a no-op; one at or after the
	// stored expiry matches nothing.
	tag, err := s.pool.Exec(ctx, `UPDATE session_records
		SET last_activity = GREATEST(last_activity, $1),
		    expires_at = GREATEST(expires_at, $2),
		    expires_reason = CASE WHEN $2 > expires_at THEN $3 ELSE expires_reason END
		WHERE id = $4 AND expires_at > $1`, n, e, string(exp.Reason), id)
	return affectedOne("touch", tag, err)
}

// SaveData replaces the record's data with data if it is still old. It
// returns session.ErrStale if the stored data differs from old, and
// session.ErrNotFound if there is no such record. PostgreSQL's jsonb cannot
// hold NUL characters, and JSON cannot hold invalid UTF-8: data with either
// is refused with an error, not altered.
func (s *Store) SaveData(ctx context.Context, id string, old, data map[string]string) error {
	if s.closed.Load() {
		return errClosed
	}
	was, err1 := sqlstore.EncodeData(old)
	enc, err2 := sqlstore.EncodeData(data)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("pgstore: save data: %w", err)
	}
	// jsonb compares as JSON, not as text, and NULL (no data) matches
	// only NULL. Of two SaveData racing on one record, the second waits
	// for the first's row lock and then compares with what it wrote.
	tag, err := s.pool.Exec(ctx, `UPDATE session_records SET data = $1
		WHERE id = $2 AND data IS NOT DISTINCT FROM $3::jsonb`, enc, id, was)
	if err = affectedOne("save data", tag, err); !errors.Is(err, session.ErrNotFound) {
		return err
	}
	// Nothing matched: the record is gone, or its data changed.
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM session_records WHERE id = $1)`, id).Scan(&exists); err != nil {
		return wrap("save data", err)
	}
	if !exists {
		return session.ErrNotFound
	}
	return session.ErrStale
}

// Renew gives the record id the token hash new, if its hash is still old, and
// writes r's times. Otherwise it returns session.ErrNotFound. If new is
// another record's hash it returns an error wrapping session.ErrConflict.
func (s *Store) Renew(ctx context.Context, id string, old, new session.TokenHash, r session.Renewal) error {
	if s.closed.Load() {
		return errClosed
	}
	auth, err1 := session.UnixNanos("AuthenticatedAt", r.AuthenticatedAt)
	last, err2 := session.UnixNanos("LastActivity", r.LastActivity)
	exp, err3 := session.UnixNanos("Expires.At", r.Expires.At)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	// Of two renewals racing from one hash, the second waits for the
	// first's row lock and then re-checks its WHERE on the renewed row,
	// which no longer has the old hash: it matches nothing.
	tag, err := s.pool.Exec(ctx, `UPDATE session_records
		SET token_hash = $1, authenticated_at = $2, last_activity = $3, expires_at = $4, expires_reason = $5
		WHERE id = $6 AND token_hash = $7`, new[:], auth, last, exp, string(r.Expires.Reason), id, old[:])
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
	rec, err := sqlstore.ScanRecord(s.pool.QueryRow(ctx, endQuery, id, string(e.Reason), at, keep))
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
//   - gone locks up to $2 expired records (expires_at at or before $1)
//     that come after ($4, $5) in (expires_at, id) order, oldest first
//     through that index, skipping those another transaction has locked
//     (another instance's sweep, an End, a Touch), and deletes them; each
//     ends with its stored expiry, kept $3 longer (saturating rather than
//     overflowing);
//   - kept writes their ended-token rows;
//   - purged deletes up to $2 ended-token rows whose keep_until is at or
//     before $1, again skipping locked ones. It leaves alone a row that kept
//     is replacing in the same statement (a token created again after it
//     ended), since one statement must not change a row twice.
//
// Sweeps on several instances therefore never wait for each other and never
// take the same record: each expired record is returned, and its end
// recorded, by exactly one of them. Nothing is held after the statement.
//
// Each batch is chosen inside ARRAY(...) and deleted with = ANY, not with
// IN (subquery): planning IN as a join, PostgreSQL looked up the smallest
// and largest key of the primary key's index on every call, walking the
// entries of every row swept since the last vacuum. ORDER BY keep_until
// keeps the purge on its index when the table's statistics are stale (an
// empty table analyzed, then a million endings written before autovacuum
// came), where the planner chose to read the whole table.
const endExpiredQuery = `WITH gone AS (
		DELETE FROM session_records
		WHERE id = ANY(ARRAY(
			SELECT id FROM session_records
			WHERE expires_at <= $1 AND (expires_at, id) > ($4::bigint, $5::text COLLATE "C")
			ORDER BY expires_at, id
			LIMIT $2
			FOR UPDATE SKIP LOCKED))
		RETURNING ` + recordColumns + `,
			expires_reason AS reason,
			expires_at AS ended_at,
			CASE WHEN expires_at > 9223372036854775807 - $3::bigint
				THEN 9223372036854775807 ELSE expires_at + $3::bigint END AS keep_until
	), kept AS (` + keepEnded + `
	), purged AS (
		DELETE FROM session_ended
		WHERE token_hash = ANY(ARRAY(
			SELECT token_hash FROM session_ended
			WHERE keep_until <= $1 AND token_hash NOT IN (SELECT token_hash FROM gone)
			ORDER BY keep_until
			LIMIT $2
			FOR UPDATE SKIP LOCKED))
	)
	SELECT ` + recordColumns + `, keep_until FROM gone ORDER BY ended_at, id`

// EndExpired ends up to limit records whose expiry is at or before now,
// oldest first, each with its stored expiry and kept until keep after it,
// and deletes up to limit ended-token records whose KeepUntil is at or
// before now. limit must be positive and keep not negative.
//
// It is one statement: it holds row locks on one batch for the time the
// statement runs and never waits for a lock, so Gets never wait for it and
// other instances may sweep at the same time (see the package
// documentation). While another instance sweeps, a call may end fewer than
// limit records although expired ones are left: those are the other sweep's.
//
// A call that ends limit records leaves a cursor at the last of them, and
// the next call starts after it: PostgreSQL keeps the index entries of
// deleted rows until a vacuum, and a sweep of many batches that started
// each one at the beginning of the index would walk all the rows already
// swept. A call that ends fewer than limit clears the cursor, so a record
// left behind it (one a Touch held while a batch passed) is swept by the
// next sweep.
//
// An expired record that cannot be read (another writer left data that is
// not a JSON object of strings) ends with the others, without an end
// event, and the error names it, beside the records that did end.
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
	from := s.sweepFrom.get()
	rows, err := s.pool.Query(ctx, endExpiredQuery, n, limit, int64(keep), from.at, from.id)
	if err != nil {
		return nil, wrap("end expired", err)
	}
	defer rows.Close()
	var ended []session.Ended
	var unreadable []error
	var keepUntil int64
	scan := sqlstore.NewRecordScanner(&keepUntil)
	for rows.Next() {
		rec, err := scan.Scan(rows)
		if err != nil {
			// The statement ran to its end before the first row came:
			// this record has ended too, and the rest must still reach
			// the caller.
			unreadable = append(unreadable, fmt.Errorf("pgstore: end expired: ended a record without an end event: %w", err))
			continue
		}
		if ended == nil { // sized once, and not at all when nothing expired
			ended = make([]session.Ended, 0, limit)
		}
		ended = append(ended, session.Ended{Record: rec, Ending: session.Ending{
			Reason: rec.Expires.Reason, At: rec.Expires.At, KeepUntil: sqlstore.FromNanos(keepUntil)}})
	}
	if err := rows.Err(); err != nil {
		if len(ended) == 0 && len(unreadable) == 0 {
			// The statement failed as a whole: nothing was deleted.
			return nil, wrap("end expired", err)
		}
		unreadable = append(unreadable, wrap("end expired", err))
	}
	if len(ended)+len(unreadable) < limit || len(ended) == 0 {
		s.sweepFrom.set(sweepStart)
	} else {
		last := ended[len(ended)-1] // the rows come in (expires_at, id) order
		s.sweepFrom.set(sweepPosition{at: last.Expires.At.UnixNano(), id: last.ID})
	}
	return ended, errors.Join(unreadable...)
}

// sweepPosition is a place in the (expires_at, id) order of records.
type sweepPosition struct {
	at int64
	id string
}

// sweepStart comes before every record: no ID is empty.
var sweepStart = sweepPosition{at: math.MinInt64}

// sweepCursor is where the Store's next sweep call starts. Concurrent calls
// may each move it; a call that starts from an older position only walks
// some deleted rows again, and one that starts from a newer one leaves
// records behind for the next sweep, never unswept.
type sweepCursor struct {
	mu  sync.Mutex
	pos sweepPosition
}

func (c *sweepCursor) get() sweepPosition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos
}

func (c *sweepCursor) set(p sweepPosition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pos = p
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
	return session.Ending{Reason: session.EndReason(reason), At: sqlstore.FromNanos(at), KeepUntil: sqlstore.FromNanos(keepUntil)}, nil
}

// List returns the records of userID, or of every user if userID is empty,
// oldest first (by CreatedAt, then ID), at most limit of them (limit <= 0: no
// limit). Like Get, it returns records past their expiry that EndExpired
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
	scan := sqlstore.NewRecordScanner()
	for rows.Next() {
		rec, err := scan.Scan(rows)
		if err != nil {
			return nil, wrap("list", err)
		}
		recs = append(recs, rec)
	}
	return recs, wrap("list", rows.Err())
}

// bytesOf returns s as a non-nil slice: pgx sends a nil slice as NULL, and
// the columns take an empty value instead.
func bytesOf(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}

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
	if !sqlstore.IsUniqueViolation(err) {
		return "", false
	}
	var constraint string
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		constraint = pe.ConstraintName
	}
	return constraint, true
}

// wrap prefixes a database error with the package and operation.
func wrap(op string, err error) error { return sqlstore.Wrap("pgstore", op, err) }
