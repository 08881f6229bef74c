package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout is how long a connection waits for another connection's write
// lock (in this process or another) before failing with SQLITE_BUSY. Writes
// here are single statements or one bounded batch, so five seconds means a
// stuck writer, not a busy one.
const busyTimeout = 5 * time.Second

// Store is a session.Store kept in a SQLite database file. Create one with
// Open; it is safe for concurrent use, and several Stores (in one process or
// several) may share one file.
type Store struct {
	// SQLite admits one writer at a time, so writes go through a pool of
	// exactly one connection: writers queue in Go, in order, instead of
	// polling the file lock in SQLite's busy handler, which sleeps for
	// milliseconds and is not fair. Reads, the hot path (a Get per request),
	// go through their own pool; in WAL mode they never wait for the writer.
	// Measured against one shared pool (BEGIN IMMEDIATE, the busy handler
	// arbitrating writers) with BenchmarkMixed, one Touch per 20 Gets from
	// 16 goroutines, this took 20-40% less time per operation and halved the
	// worst-case latency; only a load of nothing but writes went faster
	// through one pool, and with worst cases four times longer.
	read, write *sql.DB

	get, touch, saveData, renew, ended, listUser *sql.Stmt

	cache *cache // nil when turned off
}

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
	name := fileURI(abs)

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
	if err := migrate(context.Background(), s.write, path); err != nil {
		s.write.Close()
		if errors.Is(err, ErrSchemaTooNew) {
			return nil, err
		}
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

// writeDSN configures the connection of the write pool. busy_timeout is
// applied first by the driver, so the other pragmas already wait for a lock.
// _txlock=immediate makes every transaction BEGIN IMMEDIATE: it takes the
// write lock at once, instead of reading first and then failing with
// SQLITE_BUSY (no busy wait possible) when another process wrote in between.
//
// synchronous=NORMAL in WAL mode syncs the WAL at checkpoints only, not at
// every commit: a commit survives a crash of the process but not necessarily
// a power loss or kernel crash, which may lose the last transactions (never
// corrupt the database). FULL would sync on every commit, and a touch on a
// busy server would then cost a disk flush.
//
// cache_size is 32 MiB (SQLite's default is 2 MiB): a batch of EndExpired
// dirties pages all over the random-keyed indexes (token hash, ID, the
// ended tokens' hash), about four per ended session, and a cache smaller
// than the batch's pages spills them to the WAL before the commit and
// reads them back. Over 100 batches of 500 (the Manager's default) from a
// million expired sessions, the default cache made a third more write
// calls and 2.3 times the read calls (counted in /proc/self/io); 16 MiB
// already sufficed. The pages are allocated as they are used, so a small
// database does not pay for them.
var writeDSN = "_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(NORMAL)" +
	"&_pragma=foreign_keys(1)" +
	"&_pragma=cache_size(-32768)" +
	mmapPragma +
	"&_txlock=immediate"

// readDSN configures the read pool. query_only guards against a write
// slipping into the pool that is not serialized; journal_mode is the file's,
// set by the write pool.
var readDSN = "_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
	"&_pragma=foreign_keys(1)" +
	"&_pragma=query_only(1)" +
	mmapPragma

// mmapPragma has every connection read the database file through a memory
// map of up to 1 GiB, shared with the operating system's page cache,
// instead of copying each page into its own cache with a read system call.
// A session check looks a token up in an index that grows with the number
// of sessions: at a million sessions, with SQLite's default 2 MiB page
// cache per connection, a Get missed its cache and made about one read
// call per lookup (none at a thousand sessions); through the map it makes
// none. Pages still in the WAL are read as before. The map is address
// space, not memory, but 32-bit programs have little of that, so they
// keep plain reads. SQLite's caveat applies: an I/O error while reading
// the map (a failing disk) kills the process instead of failing a query.
var mmapPragma = func() string {
	if strconv.IntSize < 64 {
		return ""
	}
	return "&_pragma=mmap_size(1073741824)"
}()

// fileURI returns the SQLite URI of the file at the absolute path p. The URI
// form lets a path hold '?' or '#', which would otherwise start the DSN's
// parameters, and they are escaped as SQLite's URI rules ask.
func fileURI(p string) string {
	p = filepath.ToSlash(p)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:/C:/dir/db
	}
	var b strings.Builder
	b.WriteString("file:")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

const recordColumns = `id, token_hash, user_id, created_at, authenticated_at, last_activity,
	idle_timeout, absolute_timeout, ip, user_agent, data`

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
	s.get = prep(s.read, `SELECT `+recordColumns+` FROM session_records WHERE token_hash = ?`)
	s.ended = prep(s.read, `SELECT reason, ended_at, keep_until FROM session_ended WHERE token_hash = ?`)
	// A user's sessions are listed on every view of their sessions page.
	s.listUser = prep(s.read, `SELECT `+recordColumns+` FROM session_records
		WHERE user_id = ? ORDER BY created_at, id LIMIT ?`)
	// The deadline is computed from the old last_activity (SQLite evaluates
	// every SET expression on the row as it was), hence max() in both. A
	// touch older than the stored activity still matches the row, and
	// SQLite counts a matched row as changed, so it succeeds as a no-op.
	s.touch = prep(s.write, `UPDATE session_records
		SET last_activity = max(last_activity, ?1),
		    deadline = min(max(last_activity, ?1) + idle_timeout, authenticated_at + absolute_timeout)
		WHERE id = ?2 AND deadline > ?1`)
	s.saveData = prep(s.write, `UPDATE session_records SET data = ? WHERE id = ?`)
	s.renew = prep(s.write, `UPDATE session_records
		SET token_hash = ?1, authenticated_at = ?2, last_activity = ?3,
		    deadline = min(?3 + idle_timeout, ?2 + absolute_timeout)
		WHERE id = ?4 AND token_hash = ?5`)
	return err
}

// Close closes the Store's connections. Calls after Close fail.
func (s *Store) Close() error {
	var errs []error
	if s.cache != nil && s.cache.watch != nil {
		errs = append(errs, s.cache.watch.close())
	}
	for _, st := range []*sql.Stmt{s.get, s.ended, s.touch, s.saveData, s.renew, s.listUser} {
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

// Ping reports whether the database answers.
// Count returns the number of records (session.CountingStore).
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM session_records`).Scan(&n)
	return n, wrap("count", err)
}

// Ping reports whether both connection pools answer.
func (s *Store) Ping(ctx context.Context) error {
	return errors.Join(s.read.PingContext(ctx), s.write.PingContext(ctx))
}

// Create inserts rec, or returns session.ErrConflict if its ID or token hash
// is taken.
func (s *Store) Create(ctx context.Context, rec session.Record) error {
	created, err1 := session.UnixNanos("CreatedAt", rec.CreatedAt)
	auth, err2 := session.UnixNanos("AuthenticatedAt", rec.AuthenticatedAt)
	last, err3 := session.UnixNanos("LastActivity", rec.LastActivity)
	// Both deadlines must be storable, not only the earlier one, or the
	// arithmetic of Touch and Renew could overflow.
	idle, err4 := session.UnixNanos("IdleDeadline", rec.IdleDeadline())
	abs, err5 := session.UnixNanos("AbsoluteDeadline", rec.AbsoluteDeadline())
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return err
	}
	if rec.ID == "" {
		return errors.New("sqlitestore: record has no ID")
	}
	data, err := encodeData(rec.Data)
	if err != nil {
		return err
	}
	// The user's cached lists lack the new session: drop them, and keep
	// a list read during the insert from being cached.
	s.cache.forget(rec.ID)
	defer s.cache.forget(rec.ID)
	_, err = s.write.ExecContext(ctx, `INSERT INTO session_records (`+recordColumns+`, deadline)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.ID, rec.TokenHash[:], rec.UserID, created, auth, last,
		int64(rec.Policy.IdleTimeout), int64(rec.Policy.AbsoluteTimeout),
		rec.IP, rec.UserAgent, data, min(idle, abs))
	if isUniqueViolation(err) {
		return session.ErrConflict
	}
	return wrap("create", err)
}

// Get returns the record whose token hashes to h, expired or not (the
// Manager judges expiry), or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	// A cache that could not catch up is neither read nor filled; the
	// file, asked next, most likely fails the same way.
	cached := s.cache.catchUp(ctx) == nil
	if cached {
		if rec, ok := s.cache.get(h); ok {
			return rec, nil
		}
	}
	epoch := s.cache.currentEpoch()
	rec, err := scanRecord(s.get.QueryRowContext(ctx, h[:]))
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

// Touch moves the record's LastActivity forward to at (never back) and its
// deadline with it. It returns session.ErrNotFound if the record is gone or
// its deadline is not after at.
func (s *Store) Touch(ctx context.Context, id string, at time.Time) error {
	n, err := session.UnixNanos("touch time", at)
	if err != nil {
		return err
	}
	s.cache.forget(id)
	defer s.cache.forget(id)
	res, err := s.touch.ExecContext(ctx, n, id)
	return affectedOne("touch", res, err)
}

// SaveData replaces the record's data, or returns session.ErrNotFound.
func (s *Store) SaveData(ctx context.Context, id string, data map[string]string) error {
	enc, err := encodeData(data)
	if err != nil {
		return err
	}
	s.cache.forget(id)
	defer s.cache.forget(id)
	res, err := s.saveData.ExecContext(ctx, enc, id)
	return affectedOne("save data", res, err)
}

// Renew gives the record id the token hash new, if its hash is still old, and
// sets its AuthenticatedAt and LastActivity. Otherwise it returns
// session.ErrNotFound. If new is another record's hash it returns
// session.ErrConflict.
func (s *Store) Renew(ctx context.Context, id string, old, new session.TokenHash, authenticatedAt, lastActivity time.Time) error {
	auth, err1 := session.UnixNanos("AuthenticatedAt", authenticatedAt)
	last, err2 := session.UnixNanos("LastActivity", lastActivity)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	s.cache.forget(id)
	defer s.cache.forget(id)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return wrap("renew", err)
	}
	defer tx.Rollback() // a no-op after Commit
	res, err := tx.StmtContext(ctx, s.renew).ExecContext(ctx, new[:], auth, last, id, old[:])
	if isUniqueViolation(err) {
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

// End deletes the record id and keeps why it ended until e.KeepUntil. It
// returns the deleted record, or session.ErrNotFound if another End (or
// EndExpired, in any process) deleted it first.
func (s *Store) End(ctx context.Context, id string, e session.Ending) (rec session.Record, err error) {
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
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// Deleting and reading the record in one statement, under the write
	// lock, is what makes End exactly-once: a second End finds no row.
	rec, err = scanRecord(tx.QueryRowContext(ctx,
		`DELETE FROM session_records WHERE id = ? RETURNING `+recordColumns, id))
	if errors.Is(err, sql.ErrNoRows) {
		return session.Record{}, session.ErrNotFound
	}
	if err != nil {
		return session.Record{}, wrap("end", err)
	}
	if _, err = tx.ExecContext(ctx, insertEnded, rec.TokenHash[:], string(e.Reason), at, keep); err != nil {
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

// insertEnded records why a token stopped working. A row for the same hash
// can only be left by a record that ended and was then created again with
// the same token; the newer ending is the true one, so it replaces the old.
// (The no-upsert rule is for session records: an ended-token row brings no
// session back.)
const insertEnded = `INSERT INTO session_ended (token_hash, reason, ended_at, keep_until)
	VALUES (?, ?, ?, ?)` + endedConflict

// endedConflict is insertEnded's rule for a hash that already has an
// ending, shared with insertExpiredEndings.
const endedConflict = `
	ON CONFLICT (token_hash) DO UPDATE
	SET reason = excluded.reason, ended_at = excluded.ended_at, keep_until = excluded.keep_until`

// expiring selects the rowids of the records a batch of EndExpired ends:
// those whose deadline is at or before ?1, oldest first, at most ?2. The
// rowid breaks ties, so that the two statements of a batch, run in one
// write transaction, pick the same records; the deadline index holds
// (deadline, rowid) in that order, so no sorting is needed either way.
const expiring = `SELECT rowid FROM session_records WHERE deadline <= ?1 ORDER BY deadline, rowid LIMIT ?2`

// insertExpiredEndings writes the ended-token records of the batch that
// expiring selects, with the reason and time of session.Info.Expiry (a tie
// counts as absolute) and kept until ?3 after that, or until the largest
// time a store holds (?6) when that would pass it. One INSERT ... SELECT
// for the whole batch costs a fraction of one INSERT per record through
// database/sql, in time and in garbage. The sums cannot overflow: Create
// checks both deadlines, and Touch and Renew compute both sums in SQL,
// where an overflow would have failed the write.
const insertExpiredEndings = `WITH batch AS (
		SELECT token_hash, last_activity + idle_timeout AS idle_at,
		       authenticated_at + absolute_timeout AS absolute_at
		FROM session_records WHERE rowid IN (` + expiring + `)
	), ending AS (
		SELECT token_hash, iif(absolute_at <= idle_at, ?4, ?5) AS reason,
		       min(idle_at, absolute_at) AS at FROM batch
	)
	INSERT INTO session_ended (token_hash, reason, ended_at, keep_until)
	SELECT token_hash, reason, at, iif(at > ?6 - ?3, ?6, at + ?3) FROM ending
	WHERE true` + endedConflict // WHERE: SQLite's rule for INSERT ... SELECT with an upsert

// EndExpired ends up to limit records whose deadline is at or before now,
// oldest deadline first, keeping their ended-token records until keep after
// their expiry, and deletes up to limit ended-token records whose KeepUntil
// is before now (an ending is kept until KeepUntil, inclusive), and trims
// the log of token changes to its last tokenChangesKept rows. Each call is
// one write transaction, so a small limit (hundreds) keeps other writers
// waiting for milliseconds only; readers never wait. limit must be positive
// and keep not negative.
func (s *Store) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) (ended []session.Ended, err error) {
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
	// Reads racing the sweep must not cache what it deletes: bump the epoch
	// now, and drop each ended record once the sweep is done.
	s.cache.forget("")
	defer func() {
		for _, e := range ended {
			s.cache.forget(e.ID)
		}
	}()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap("end expired", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// The endings first, while the records are there to compute them
	// from; then the records, deleted and returned in one statement. By
	// rowid, not id: the rowids come from the deadline index alone, and
	// the delete needs no lookup in the id index to find its rows.
	if _, err = tx.ExecContext(ctx, insertExpiredEndings, n, limit, int64(keep),
		string(session.ReasonAbsolute), string(session.ReasonIdle), int64(math.MaxInt64)); err != nil {
		return nil, wrap("end expired", err)
	}
	rows, err := tx.QueryContext(ctx, `DELETE FROM session_records WHERE rowid IN (`+expiring+`)
		RETURNING `+recordColumns, n, limit)
	if err != nil {
		return nil, wrap("end expired", err)
	}
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			rows.Close()
			return nil, wrap("end expired", err)
		}
		if ended == nil { // sized once, and not at all when nothing expired
			ended = make([]session.Ended, 0, min(limit, 1000))
		}
		reason, at := rec.Expiry() // as insertExpiredEndings stored it
		keepUntil := at.Add(keep)
		if session.MaxStoreTime.Sub(at) < keep {
			keepUntil = session.MaxStoreTime // "keep for ever" must not wrap around
		}
		ended = append(ended, session.Ended{Record: rec,
			Ending: session.Ending{Reason: reason, At: at, KeepUntil: keepUntil}})
	}
	if err = rows.Err(); err != nil {
		return nil, wrap("end expired", err)
	}
	// RETURNING gives rows in no promised order.
	slices.SortFunc(ended, func(a, b session.Ended) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if _, err = tx.ExecContext(ctx, `DELETE FROM session_ended WHERE token_hash IN
		(SELECT token_hash FROM session_ended WHERE keep_until < ? LIMIT ?)`, n, limit); err != nil {
		return nil, wrap("end expired", err)
	}
	if _, err = tx.ExecContext(ctx, `DELETE FROM session_token_changes
		WHERE seq <= (SELECT max(seq) FROM session_token_changes) - ?`, tokenChangesKept); err != nil {
		return nil, wrap("end expired", err)
	}
	if err = tx.Commit(); err != nil {
		return nil, wrap("end expired", err)
	}
	return ended, nil
}

// Ended returns why the token with hash h stopped working, or
// session.ErrNotFound if no ending is kept for it.
func (s *Store) Ended(ctx context.Context, h session.TokenHash) (session.Ending, error) {
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
	return session.Ending{Reason: session.EndReason(reason), At: fromNanos(at), KeepUntil: fromNanos(keepUntil)}, nil
}

// List returns the records of userID, or of every user if userID is empty,
// oldest first (by CreatedAt, then ID), at most limit of them (limit <= 0: no
// limit). Like Get, it returns records past their deadline that EndExpired
// has not yet removed.
func (s *Store) List(ctx context.Context, userID string, limit int) ([]session.Record, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	if userID == "" {
		rows, err := s.read.QueryContext(ctx, `SELECT `+recordColumns+` FROM session_records
			ORDER BY created_at, id LIMIT ?`, limit)
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

// scanRecords reads every row of a query of recordColumns.
func scanRecords(rows *sql.Rows, err error) ([]session.Record, error) {
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

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanRecord reads the columns of recordColumns.
func scanRecord(row scanner) (session.Record, error) {
	var (
		rec                                 session.Record
		hash, data                          []byte
		created, auth, last, idle, absolute int64
	)
	err := row.Scan(&rec.ID, &hash, &rec.UserID, &created, &auth, &last,
		&idle, &absolute, &rec.IP, &rec.UserAgent, &data)
	if err != nil {
		return session.Record{}, err
	}
	if len(hash) != len(rec.TokenHash) {
		return session.Record{}, fmt.Errorf("record %q has a token hash of %d bytes", rec.ID, len(hash))
	}
	copy(rec.TokenHash[:], hash)
	rec.CreatedAt, rec.AuthenticatedAt, rec.LastActivity = fromNanos(created), fromNanos(auth), fromNanos(last)
	rec.Policy = session.Policy{IdleTimeout: time.Duration(idle), AbsoluteTimeout: time.Duration(absolute)}
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

// encodeData returns data as a JSON object, or nil (SQL NULL) when it is
// empty, so that an empty map and a nil map read back alike, as nil.
func encodeData(data map[string]string) (any, error) {
	if len(data) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: encoding data: %w", err)
	}
	return string(b), nil
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// affectedOne turns the result of an update of one record by ID into nil, or
// session.ErrNotFound if no row matched.
func affectedOne(op string, res sql.Result, err error) error {
	if err != nil {
		return wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// isUniqueViolation reports whether err is a primary key or unique constraint
// failure: another record has the ID or token hash.
func isUniqueViolation(err error) bool {
	var serr *sqlite.Error
	if !errors.As(err, &serr) {
		return false
	}
	c := serr.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// wrap prefixes a database error with the package and operation; nil stays
// nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}
