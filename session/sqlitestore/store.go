package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqlstore"
	"github.com/sessionguard/sessionguard/session"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Store is a session.Store kept in a SQLite database file. Create one with
// Open; it is safe for concurrent use, and several Stores (in one process or
// several) may share one file.
type Store struct {
	// SQLite admits one writer at a time, so writes go through a pool of
	// exactly one connection: writers queue in Go, in order, instead of
	// polling the file lock in SQLite's busy handler, which sleeps for
	// milliseconds and is not fair. Reads, the hot path (a Get per request),
	// go through their own pool; in WAL mode they never wait for the writer.
	read, write *sql.DB

	get, exists, touch, saveData, renew, ended, listUser *sql.Stmt

	// The sweep's statements: read a batch of expired records, end them,
	// purge ended records, trim the log of token changes.
	expiredRead, expiredEnd, purge, trimChanges *sql.Stmt

	cache  *cache // nil when turned off
	closed atomic.Bool
	// unchecked counts the records EndExpired has ended or purged since
	// it last asked for a checkpoint.
	unchecked    atomic.Int64
	checkpointer *checkpointer
}

// errClosed is returned by every call after Close.
var errClosed = errors.New("sqlitestore: store is closed")

// Option configures a Store.
type Option func(*options)

type options struct {
	cacheTTL  time.Duration
	cacheSize int
}

// WithCache sets how long a record read from the file may be served from
// memory, and how many records are kept. The default is one second and
// 100,000 records. Whatever the TTL, a session that ends or gets a new token
// is refused at once, wherever that happened: in this Store, or in another
// process on the same file (the command line ending a user's sessions,
// another server's sign-out). Before every read the Store asks SQLite
// whether another connection has written (PRAGMA data_version, a few
// microseconds), and drops what ended. Other changes made elsewhere (a
// session's last activity, its data, a user's new session in List) are seen
// within the TTL. A ttl of zero or less turns the cache off, so every
// session check reads the file.
func WithCache(ttl time.Duration, size int) Option {
	return func(o *options) { o.cacheTTL, o.cacheSize = ttl, size }
}

// Open opens the SQLite database file at path, creating it if it does not
// exist, and creates or migrates the session tables in it.
//
// The database is put in WAL mode; connections run with foreign_keys on and
// a busy_timeout of 5 seconds, and writes with synchronous=NORMAL (see the
// package documentation for what that means on a crash).
//
// The Store opens connections of its own (its own *sql.DB pools) and closes
// them on Close. Other packages may open the same file at the same time for
// their own tables; SQLite arbitrates between them. path is a file name, not
// a DSN or "file:" URI (the Store sets the connection parameters itself), and
// not ":memory:": an in-memory database cannot be shared between the pools.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{cacheTTL: time.Second, cacheSize: 100_000}
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlitestore: path %q must name a database file", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	name := sqlstore.FileURI(abs)

	s := &Store{}
	if o.cacheTTL > 0 && o.cacheSize > 0 {
		s.cache = newCache(o.cacheTTL, o.cacheSize)
	}
	// The write pool comes first: its first connection switches a new file to
	// WAL mode and migrates it before any read connection looks at it.
	if s.write, err = sql.Open("sqlite", name+"?"+writeDSN); err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	if err := sqlstore.ConnectSQLite(context.Background(), s.write); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if err := sqlstore.Migrate(context.Background(), sqlstore.SQL(s.write), sqlstore.SQLite, schema); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}

	// Reading is CPU work in the Go translation of SQLite, so more
	// connections than cores gain little; but they must all stay idle in the
	// pool, or each burst of requests would reopen connections (the default
	// keeps two) and re-run the pragmas.
	readers := max(4, runtime.GOMAXPROCS(0))
	if s.read, err = sql.Open("sqlite", name+"?"+readDSN); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	// One more connection for the cache's watch, which keeps it.
	s.read.SetMaxOpenConns(readers + 1)
	s.read.SetMaxIdleConns(readers + 1)

	s.checkpointer = startCheckpointer(s.read)
	if err := s.prepare(); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if s.cache != nil {
		if s.cache.watch, err = newWatch(context.Background(), s.read, s.cache); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
		}
	}
	return s, nil
}

// writeDSN configures the connection of the write pool: sqlstore's pragmas
// for a writer (WAL, synchronous=NORMAL, BEGIN IMMEDIATE, the busy
// timeout), SQLite's default page cache (2 MiB: every commit walks the
// cache's hash table, so a larger one costs each commit more than it
// saves), and an automatic checkpoint only once the write-ahead log holds
// 16,384 pages (64 MiB; SQLite's default is 1,000). That one runs inside
// the commit that crossed the threshold, whichever write it is; EndExpired
// checkpoints off that path (see checkpoint), so this one is the backstop
// for a program that never sweeps.
//
// No connection maps the file into memory (mmap_size stays 0). A
// connection that begins a read after another one has committed drops its
// whole map, and maps the file again on its next read: with a write every
// few milliseconds (a sweep, or the touches of busy sessions) every request
// unmapped and faulted pages back in, and unmapping interrupts every core
// the process runs on. A sweep of a million sessions took longer with the
// map than without it.
var writeDSN = sqlstore.SQLitePragmas + "&_pragma=wal_autocheckpoint(16384)"

// readDSN configures the read pool. query_only guards against a write
// slipping into the pool that is not serialized; journal_mode is the file's,
// set by the write pool.
var readDSN = "_pragma=busy_timeout(" + strconv.FormatInt(sqlstore.BusyTimeout.Milliseconds(), 10) + ")" +
	"&_pragma=foreign_keys(1)" +
	"&_pragma=query_only(1)"

// prepare compiles the statements of the frequent calls once per connection
// rather than once per call.
func (s *Store) prepare() error {
	ctx := context.Background()
	var err error
	prep := func(db *sql.DB, query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = db.PrepareContext(ctx, query)
		return st
	}
	s.get = prep(s.read, `SELECT `+sqlstore.RecordColumns+` FROM session_records WHERE token_hash = ? AND `+live)
	s.exists = prep(s.read, `SELECT count(*) FROM session_records WHERE id = ? AND `+live)
	s.ended = prep(s.read, `SELECT ended_reason, ended_at, keep_until FROM session_records
		WHERE token_hash = ? AND keep_until IS NOT NULL`)
	// A user's sessions are listed on every view of their sessions page.
	s.listUser = prep(s.read, `SELECT `+sqlstore.RecordColumns+` FROM session_records
		WHERE user_id = ? AND `+live+` ORDER BY created_at, id LIMIT ?`)
	// SQLite evaluates every SET expression on the row as it was, so the
	// reason is compared with the old expires_at. A touch older than the
	// stored activity still matches the row, and SQLite counts a matched
	// row as changed, so it succeeds as a no-op.
	s.touch = prep(s.write, `UPDATE session_records
		SET last_activity = max(last_activity, ?1),
		    expires_at = max(expires_at, ?2),
		    expires_reason = iif(?2 > expires_at, ?3, expires_reason)
		WHERE id = ?4 AND expires_at > ?1 AND `+live)
	// The stored data is compared as text with the same encoding of old:
	// encoding/json sorts map keys, so equal maps give equal text, and
	// empty data is NULL on both sides (IS, not =, matches NULL).
	s.saveData = prep(s.write, `UPDATE session_records SET data = ?1 WHERE id = ?2 AND data IS ?3 AND `+live)
	s.renew = prep(s.write, `UPDATE session_records
		SET token_hash = ?1, authenticated_at = ?2, last_activity = ?3, expires_at = ?4, expires_reason = ?5
		WHERE id = ?6 AND token_hash = ?7 AND `+live)
	s.expiredRead = prep(s.write, `SELECT `+sqlstore.RecordColumns+` FROM session_records
		WHERE rowid IN (`+expiredBatch+`)`)
	// KeepUntil as sqlstore.KeepUntil computes it: expires_at + keep,
	// unless that would pass the last instant an int64 holds.
	s.expiredEnd = prep(s.write, `UPDATE session_records
		SET keep_until = iif(expires_at > ?3 - ?4, ?3, expires_at + ?4),
		    ended_reason = expires_reason, ended_at = expires_at, `+forgetClient+`
		WHERE rowid IN (`+expiredBatch+`)`)
	s.purge = prep(s.write, `DELETE FROM session_records WHERE rowid IN
		(SELECT rowid FROM session_records WHERE keep_until <= ? ORDER BY keep_until LIMIT ?)`)
	s.trimChanges = prep(s.write, `DELETE FROM session_token_changes
		WHERE seq <= (SELECT max(seq) FROM session_token_changes) - ?`)
	return err
}

// live is the condition of a session that has not ended. An ended session
// keeps its row, with keep_until set, until its ending is forgotten (see
// the schema): every statement on sessions, but for the sweep's, names it.
const live = `keep_until IS NULL`

// Close closes the Store's connections. Calls after Close fail; Close is
// idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	s.checkpointer.close() // it uses the read pool
	if s.cache != nil && s.cache.watch != nil {
		errs = append(errs, s.cache.watch.close())
	}
	for _, st := range []*sql.Stmt{s.get, s.exists, s.ended, s.touch, s.saveData, s.renew, s.listUser,
		s.expiredRead, s.expiredEnd, s.purge, s.trimChanges} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	errs = append(errs, s.write.Close())
	return errors.Join(errs...)
}

// SweepBatch asks the Manager's sweep for calls of two transactions,
// 2*sweepBatch sessions (session.SweepBatcher): SQLite runs in this
// process, and a call holds a core from start to end. The longer the
// calls, the slower the requests served during the sweep. The shorter, the
// more each ended session costs: a call that follows the Manager's pause
// starts on a core whose caches other work has taken, and the pause's
// timer fires up to a millisecond late, so the sweep takes longer
// (docs/benchmarks.md, the sweep).
func (s *Store) SweepBatch() int { return 2 * sweepBatch }

// Count returns the number of records (session.CountingStore).
func (s *Store) Count(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM session_records WHERE `+live).Scan(&n)
	return n, wrap("count", err)
}

// Ping reports whether both connection pools answer.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return wrap("ping", errors.Join(s.read.PingContext(ctx), s.write.PingContext(ctx)))
}

// Create inserts rec, or returns session.ErrConflict if its ID or token hash
// is taken.
func (s *Store) Create(ctx context.Context, rec session.Record) error {
	if s.closed.Load() {
		return errClosed
	}
	t, err := sqlstore.TimesOf(rec)
	if err != nil {
		return err
	}
	if rec.ID == "" {
		return errors.New("sqlitestore: record has no ID")
	}
	data, err := sqlstore.EncodeData(rec.Data)
	if err != nil {
		return fmt.Errorf("sqlitestore: create: %w", err)
	}
	// The user's cached lists lack the new session: drop them, and keep
	// a list read during the insert from being cached.
	s.cache.forget(rec.ID)
	defer s.cache.forget(rec.ID)
	args := []any{rec.ID, rec.TokenHash[:], rec.UserID, t.Created, t.Authenticated, t.LastActivity,
		int64(rec.Policy.IdleTimeout), int64(rec.Policy.AbsoluteTimeout),
		rec.IP, rec.UserAgent, data, t.Expires, string(rec.Expires.Reason), rec.Persistent}
	_, err = s.write.ExecContext(ctx, insertRecord, args...)
	if sqlstore.IsUniqueViolation(err) {
		err = s.createOverEnded(ctx, rec, args)
	}
	return wrap("create", err)
}

const insertRecord = `INSERT INTO session_records (` + sqlstore.RecordColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// createOverEnded inserts rec, whose ID or token hash Create found taken,
// if what holds them is only the row of an ended session: an ID or a token
// that was used once may be used again, as if the ended session had been
// deleted, and its ending is then forgotten. Otherwise it returns
// session.ErrConflict.
func (s *Store) createOverEnded(ctx context.Context, rec session.Record, args []any) (err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	n, err := rowsAffected(tx.ExecContext(ctx, `DELETE FROM session_records
		WHERE (id = ? OR token_hash = ?) AND keep_until IS NOT NULL`, rec.ID, rec.TokenHash[:]))
	if err != nil {
		return err
	}
	if n == 0 {
		return session.ErrConflict
	}
	if _, err = tx.ExecContext(ctx, insertRecord, args...); sqlstore.IsUniqueViolation(err) {
		return session.ErrConflict
	} else if err != nil {
		return err
	}
	return tx.Commit()
}

// Get returns the record whose token hashes to h, expired or not (the
// Manager judges expiry), or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	if s.closed.Load() {
		return session.Record{}, errClosed
	}
	// A cache that could not catch up is neither read nor filled; the
	// file, asked next, most likely fails the same way.
	cached := s.cache.catchUp(ctx) == nil
	if cached {
		if rec, ok := s.cache.get(h); ok {
			return rec, nil
		}
	}
	epoch := s.cache.currentEpoch()
	rec, err := sqlstore.ScanRecord(s.get.QueryRowContext(ctx, h[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return session.Record{}, session.ErrNotFound
	}
	if err != nil {
		return session.Record{}, wrap("get", err)
	}
	if cached {
		s.cache.put(rec, epoch)
	}
	return rec, nil
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
	s.cache.forget(id)
	defer s.cache.forget(id)
	res, err := s.touch.ExecContext(ctx, n, e, string(exp.Reason), id)
	return affectedOne("touch", res, err)
}

// SaveData replaces the record's data with data if it is still old. It
// returns session.ErrStale if the stored data differs from old, and
// session.ErrNotFound if there is no such record.
func (s *Store) SaveData(ctx context.Context, id string, old, data map[string]string) error {
	if s.closed.Load() {
		return errClosed
	}
	was, err1 := sqlstore.EncodeData(old)
	enc, err2 := sqlstore.EncodeData(data)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("sqlitestore: save data: %w", err)
	}
	s.cache.forget(id)
	defer s.cache.forget(id)
	res, err := s.saveData.ExecContext(ctx, enc, id, was)
	if err = affectedOne("save data", res, err); !errors.Is(err, session.ErrNotFound) {
		return err
	}
	// Nothing matched: the record is gone, or its data changed.
	var n int
	if err := s.exists.QueryRowContext(ctx, id).Scan(&n); err != nil {
		return wrap("save data", err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return session.ErrStale
}

// Renew gives the record id the token hash new, if its hash is still old, and
// writes r's times. Otherwise it returns session.ErrNotFound. If new is
// another record's hash it returns session.ErrConflict.
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
	s.cache.forget(id)
	defer s.cache.forget(id)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return wrap("renew", err)
	}
	defer tx.Rollback() // a no-op after Commit
	renew := tx.StmtContext(ctx, s.renew)
	args := []any{new[:], auth, last, exp, string(r.Expires.Reason), id, old[:]}
	res, err := renew.ExecContext(ctx, args...)
	if sqlstore.IsUniqueViolation(err) {
		// The hash may be held by the row of an ended session only, which
		// gives it up, as Create's does.
		n, derr := rowsAffected(tx.ExecContext(ctx,
			`DELETE FROM session_records WHERE token_hash = ? AND keep_until IS NOT NULL`, new[:]))
		if derr != nil {
			return wrap("renew", derr)
		}
		if n > 0 {
			res, err = renew.ExecContext(ctx, args...)
		}
	}
	if sqlstore.IsUniqueViolation(err) {
		return session.ErrConflict
	}
	if err := affectedOne("renew", res, err); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, logTokenChange, id); err != nil {
		return wrap("renew", err)
	}
	return wrap("renew", tx.Commit())
}

// End ends the record id and keeps why it ended until e.KeepUntil. It
// returns the record as it was, or session.ErrNotFound if another End (or
// EndExpired, in any process) ended it first.
func (s *Store) End(ctx context.Context, id string, e session.Ending) (rec session.Record, err error) {
	if s.closed.Load() {
		return session.Record{}, errClosed
	}
	if !e.Reason.Valid() {
		return session.Record{}, fmt.Errorf("sqlitestore: end: invalid reason %q", e.Reason)
	}
	at, err1 := session.UnixNanos("end time", e.At)
	keep, err2 := session.UnixNanos("KeepUntil", e.KeepUntil)
	if err := errors.Join(err1, err2); err != nil {
		return session.Record{}, err
	}
	s.cache.forget(id)
	defer s.cache.forget(id)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return session.Record{}, wrap("end", err)
	}
	defer tx.Rollback() // a no-op after Commit
	// The transaction holds the write lock from its BEGIN IMMEDIATE, so
	// no other connection ends the record between the read and the
	// update; the update's own condition and count say so again. That is
	// what makes End exactly-once: a second End finds no live row.
	var rowid int64
	rec, err = sqlstore.ScanRecord(tx.QueryRowContext(ctx,
		`SELECT `+sqlstore.RecordColumns+`, rowid FROM session_records WHERE id = ? AND `+live, id), &rowid)
	if errors.Is(err, sql.ErrNoRows) {
		return session.Record{}, session.ErrNotFound
	}
	if err != nil {
		return session.Record{}, wrap("end", err)
	}
	n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE session_records
		SET keep_until = ?, ended_reason = ?, ended_at = ?, `+forgetClient+`
		WHERE rowid = ? AND `+live, keep, string(e.Reason), at, rowid))
	if err == nil && n != 1 {
		err = fmt.Errorf("record %q changed under the write lock", id)
	}
	if err != nil {
		return session.Record{}, wrap("end", err)
	}
	if _, err = tx.ExecContext(ctx, logTokenChange, id); err != nil {
		return session.Record{}, wrap("end", err)
	}
	if err = tx.Commit(); err != nil {
		return session.Record{}, wrap("end", err)
	}
	return rec, nil
}

// forgetClient is the assignment that clears, as a session ends, what its
// row held for the client: the data and where it signed in from. What the
// indexes hold stays until the purge.
const forgetClient = `data = NULL, ip = '', user_agent = ''`

// sweepBatch is the most records one transaction of EndExpired ends, and
// purgeBatch the most it purges. The write lock is released between
// transactions, so a Touch or a sign-in waits for one of these at most,
// whatever limit the caller asked for. Purging a row costs several times
// what ending it does (it deletes from every index, at random places), so
// its transactions are smaller, to hold the lock about as long.
const (
	sweepBatch = 64
	purgeBatch = 25
)

// EndExpired ends up to limit records whose expiry is at or before now,
// each with its stored expiry and kept until keep after it, and purges up
// to limit ended records whose KeepUntil is at or before now. limit must
// be positive and keep not negative.
//
// It works in transactions of at most sweepBatch records: each reads the
// records through the expiry index and ends them in place, in one
// statement each. Readers never wait for it; writers wait for one
// transaction at most. If a transaction fails after others have committed,
// it returns the records those ended and no error: they have ended, and
// their caller must know.
//
// An expired record that cannot be read (another writer left data that is
// not a JSON object of strings) ends with the others, without an end event, and the error names it: failing its
// transaction instead would stop every later sweep at it.
func (s *Store) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		return nil, fmt.Errorf("sqlitestore: end expired: limit must be positive, got %d", limit)
	}
	if keep < 0 {
		return nil, fmt.Errorf("sqlitestore: end expired: keep must not be negative, got %v", keep)
	}
	n, err := session.UnixNanos("now", now)
	if err != nil {
		return nil, err
	}
	// Reads racing the sweep must not cache what it ends: the epoch
	// moves now, and the ended records are dropped once the sweep is done.
	s.cache.forget("")
	var res sweepResult
	defer func() {
		if len(res.ended) > 0 {
			ids := make([]string, len(res.ended))
			for i, e := range res.ended {
				ids[i] = e.ID
			}
			s.cache.forgetRecords(ids)
		}
	}()
	purged, err := s.sweep(ctx, n, keep, limit, &res)
	ended := res.ended
	// The last call of a sweep (nothing left to end) always checkpoints,
	// so that what requests wrote between sweeps is copied too; during a
	// long sweep, every checkpointEvery records. A checkpoint per call
	// would cost each call of a small batch as much again.
	if changed := s.unchecked.Add(int64(res.count() + purged)); res.count() < limit || changed >= checkpointEvery {
		s.unchecked.Store(0)
		s.checkpointer.want()
	}
	if len(ended) > 0 {
		// Once records have ended they must reach the caller, which sends
		// their end events; a failure after that recurs on the next call.
		err = nil
		sortEnded(ended)
	}
	return ended, errors.Join(append([]error{err}, res.unreadable...)...)
}

// sweepResult is what the committed transactions of one EndExpired call
// ended: the records, and an error for each expired record that could not
// be read and ended without one.
type sweepResult struct {
	ended      []session.Ended
	unreadable []error
}

// count is how many records the call has ended.
func (r *sweepResult) count() int { return len(r.ended) + len(r.unreadable) }

// sortEnded puts ended in order of ending, then of ID. The records come
// in order of expiry already, but sessions that expired in the same
// nanosecond come in the order they were inserted. It sorts positions and
// then moves each record once, rather than swapping records of some
// hundreds of bytes at every step of the sort.
func sortEnded(ended []session.Ended) {
	before := func(a, b *session.Ended) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	}
	i := 1
	for i < len(ended) && before(&ended[i-1], &ended[i]) <= 0 {
		i++
	}
	if i >= len(ended) {
		return // the common case: expiries differ
	}
	order := make([]int, len(ended))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return before(&ended[i], &ended[j]) })
	// ended[i] takes the record at order[i]: follow each cycle of the
	// permutation, holding one record aside.
	for start := range order {
		if order[start] < 0 {
			continue
		}
		held := ended[start]
		i := start
		for order[i] != start {
			next := order[i]
			ended[i] = ended[next]
			order[i] = -1
			i = next
		}
		ended[i] = held
		order[i] = -1
	}
}

// sweep ends up to limit expired records, in transactions of at most
// sweepBatch, adding them to res, purges up to limit ended records,
// and trims the log of token changes. It returns how many it purged.
//
// The call's last transaction of ending also purges a first batch and
// trims the log: between sweeps the Manager calls every second, and finds
// nothing to end and, most often, nothing to purge, so each transaction
// of its own would take and release the write lock for nothing. More to
// purge goes on in transactions of purgeBatch.
func (s *Store) sweep(ctx context.Context, now int64, keep time.Duration, limit int, res *sweepResult) (purged int, err error) {
	for purged = -1; purged < 0; { // until the call's last batch, which purged
		batch := min(sweepBatch, limit-res.count())
		if purged, err = s.endExpiredBatch(ctx, now, keep, batch, limit, res); err != nil {
			return 0, err
		}
	}
	// A full first batch of purging: more may be waiting.
	for more := purged == min(purgeBatch, limit); more && purged < limit; {
		batch := min(purgeBatch, limit-purged)
		res, err := s.purge.ExecContext(ctx, now, batch)
		got, err := rowsAffected(res, err)
		if err != nil {
			return purged, wrap("end expired", err)
		}
		purged += int(got)
		more = int(got) == batch
	}
	return purged, nil
}

// expiredBatch selects, oldest expiry first, the live records that have
// expired by ?1, at most ?2 of them. The order is total (expires_at, then
// rowid, as the partial index holds them), so that under one write lock
// the read and the update select the same rows.
const expiredBatch = `SELECT rowid FROM session_records
	WHERE expires_at <= ?1 AND ` + live + ` ORDER BY expires_at, rowid LIMIT ?2`

// endExpiredBatch ends up to limit expired records in one transaction and
// adds them to res, for a call of EndExpired that ends up to callLimit. When this batch is the call's last (it ended fewer than
// limit, or the call's limit is reached), the same transaction purges up to
// purgeBatch ended records (callLimit, if fewer) and trims the log of token
// changes, and purged is how many it purged; otherwise purged is -1.
func (s *Store) endExpiredBatch(ctx context.Context, now int64, keep time.Duration, limit, callLimit int, res *sweepResult) (purged int, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return -1, wrap("end expired", err)
	}
	defer tx.Rollback() // a no-op after Commit
	first, firstUnreadable := len(res.ended), len(res.unreadable)
	fail := func(err error) (int, error) {
		res.ended, res.unreadable = res.ended[:first], res.unreadable[:firstUnreadable]
		return -1, wrap("end expired", err)
	}
	rows, err := tx.StmtContext(ctx, s.expiredRead).QueryContext(ctx, now, limit)
	if err != nil {
		return fail(err)
	}
	scan := sqlstore.NewRecordScanner()
	for rows.Next() {
		rec, err := scan.Scan(rows)
		if err != nil {
			// The update below ends this row with the others, as it
			// selects the same rows.
			res.unreadable = append(res.unreadable, fmt.Errorf("sqlitestore: end expired: ended a record without an end event: %w", err))
			continue
		}
		if res.ended == nil { // sized once, and not at all when nothing expired
			res.ended = make([]session.Ended, 0, callLimit)
		}
		res.ended = append(res.ended, session.Ended{Record: rec, Ending: sqlstore.ExpiredEnding(rec, keep)})
	}
	if err = rows.Err(); err != nil {
		return fail(err)
	}
	got := len(res.ended) - first + len(res.unreadable) - firstUnreadable
	if got > 0 {
		changed, err := rowsAffected(tx.StmtContext(ctx, s.expiredEnd).ExecContext(ctx,
			now, limit, int64(math.MaxInt64), int64(keep)))
		if err == nil && changed != int64(got) {
			err = fmt.Errorf("ended %d records of the %d read under the same write lock", changed, got)
		}
		if err != nil {
			return fail(err)
		}
	}
	purged = -1
	if got < limit || res.count() == callLimit {
		gone, err := rowsAffected(tx.StmtContext(ctx, s.purge).ExecContext(ctx, now, min(purgeBatch, callLimit)))
		if err == nil {
			_, err = tx.StmtContext(ctx, s.trimChanges).ExecContext(ctx, tokenChangesKept)
		}
		if err != nil {
			return fail(err)
		}
		purged = int(gone)
	}
	if err = tx.Commit(); err != nil {
		return fail(err)
	}
	return purged, nil
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
	err := s.ended.QueryRowContext(ctx, h[:]).Scan(&reason, &at, &keepUntil)
	if errors.Is(err, sql.ErrNoRows) {
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
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	if userID == "" {
		rows, err := s.read.QueryContext(ctx, `SELECT `+sqlstore.RecordColumns+` FROM session_records
			WHERE `+live+` ORDER BY created_at, id LIMIT ?`, limit)
		return scanRecords(rows, err)
	}
	cached := s.cache.catchUp(ctx) == nil
	if cached {
		if recs, ok := s.cache.getList(userID, limit); ok {
			return recs, nil
		}
	}
	epoch := s.cache.currentEpoch()
	recs, err := scanRecords(s.listUser.QueryContext(ctx, userID, limit))
	if err == nil && cached {
		s.cache.putList(userID, limit, recs, epoch)
	}
	return recs, err
}

// scanRecords reads every row of a query of sqlstore.RecordColumns.
func scanRecords(rows *sql.Rows, err error) ([]session.Record, error) {
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

// rowsAffected returns how many rows a statement changed.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// affectedOne turns the result of an update of one record by ID into nil, or
// session.ErrNotFound if no row matched.
func affectedOne(op string, res sql.Result, err error) error {
	n, err := rowsAffected(res, err)
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// wrap prefixes a database error with the package and operation.
func wrap(op string, err error) error { return sqlstore.Wrap("sqlitestore", op, err) }
