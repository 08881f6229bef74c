package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/pgstore"
	"github.com/sessionguard/sessionguard/session/redisstore"
	"github.com/sessionguard/sessionguard/session/sqlitestore"
)

// browserUA is the User-Agent of the preloaded sessions: a common browser's,
// copied for each session as a parsed request header would be.
const browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// mountSessionguard serves sessionguard's middleware with one store:
//
//	GET  /                a session check: Require, then a handler that reads the user
//	POST /bench/login     ?n=N: N new sessions, their Cookie header values
//	POST /bench/preload   ?n=N[&expired=1]: N more idle (or already expired) sessions
//	POST /bench/settle    brings the SQL stores' files and tables to a steady state
//	POST /bench/sweep     ends every expired session (Manager.SweepExpired);
//	                      ?for=8s stops it after the store call under way at 8s
//	GET  /bench/writes    store writes so far (POST resets them)
func mountSessionguard(ctx context.Context, mux *http.ServeMux, o serveOptions) (func() error, error) {
	var store session.Store
	var err error
	// closeClient closes the Redis client or PostgreSQL pool the store
	// runs on, after the store: a store made with New leaves it open.
	closeClient := func() error { return nil }
	switch o.system {
	case "sg-memory":
		store = memstore.New()
	case "sg-sqlite":
		if o.sqlitePath == "" {
			return nil, errors.New("sg-sqlite needs -sqlite")
		}
		store, err = sqlitestore.Open(o.sqlitePath)
	case "sg-redis":
		// The client is made here, as the bare-redis-get system makes its
		// own, so that the two rows differ only in what runs on it.
		var client *redis.Client
		if client, err = redisClient(o.redisDSN); err != nil {
			return nil, err
		}
		closeClient = client.Close
		store, err = redisstore.New(client, redisstore.WithKeyPrefix(o.prefix))
	case "sg-postgres":
		// Likewise the pool, which bare-pg-select makes the same way.
		var pool *pgxpool.Pool
		if pool, err = pgPool(ctx, o.pgDSN); err != nil {
			return nil, err
		}
		closeClient = func() error { pool.Close(); return nil }
		store, err = pgstore.New(ctx, pool)
	}
	if err != nil {
		closeClient()
		return nil, err
	}
	if err := store.Ping(ctx); err != nil {
		store.Close()
		closeClient()
		return nil, err
	}
	counted := &countingStore{Store: store}
	var managed session.Store = counted
	if _, ok := store.(session.InMemoryStore); ok {
		// The wrapper must keep the memory store's InMemory ability, or the
		// Manager would arm a timeout timer on every call, which no real
		// user of the memory store pays.
		managed = inMemoryCountingStore{counted}
	}
	var ended atomic.Int64
	var clock session.Clock = session.SystemClock
	if o.clockStep > 0 {
		clock = &steppingClock{start: time.Now(), step: o.clockStep, every: o.stepEvery}
	}
	cfg := session.Config{
		Store:  managed,
		Clock:  clock,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Observers: []session.Observer{session.ObserverFunc(func(ctx context.Context, e session.Event) {
			if e.Kind == session.EventEnded {
				ended.Add(1)
			}
		})},
	}
	if !o.sweep {
		cfg.SweepInterval = session.SweepOff
	}
	m, err := session.New(cfg)
	if err != nil {
		store.Close()
		closeClient()
		return nil, err
	}

	mux.Handle("GET /{$}", m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checkedHello(w, session.FromContext(r.Context()).UserID())
	})))
	mux.HandleFunc("POST /bench/login", func(w http.ResponseWriter, r *http.Request) {
		n, err := intParam(r, "n", 1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ans loginAnswer
		for i := range n {
			rec := httptest.NewRecorder()
			req := httptest.NewRequestWithContext(r.Context(), http.MethodPost, "/", nil)
			req.RemoteAddr = "127.0.0.1:1"
			req.Header.Set("User-Agent", browserUA)
			if _, err := m.Login(rec, req, fmt.Sprintf("probe-%d", i), session.LoginOptions{}); err != nil {
				httpError(w, err)
				return
			}
			ck := rec.Result().Cookies()
			if len(ck) == 0 {
				httpError(w, errors.New("login set no cookie"))
				return
			}
			ans.Cookies = append(ans.Cookies, ck[0].Name+"="+ck[0].Value)
		}
		writeJSON(w, ans)
	})
	mux.HandleFunc("POST /bench/preload", func(w http.ResponseWriter, r *http.Request) {
		n, err := intParam(r, "n", 0)
		if err != nil || n < 1 {
			http.Error(w, "n must be a positive number", http.StatusBadRequest)
			return
		}
		now := time.Now()
		if r.URL.Query().Get("expired") == "1" {
			// Idle for a minute past the idle timeout: the deadline has
			// passed, nothing has swept them yet.
			now = now.Add(-session.DefaultPolicy.IdleTimeout - time.Minute)
		}
		start := time.Now()
		if err := preload(r.Context(), o, store, n, now); err != nil {
			httpError(w, err)
			return
		}
		writeJSON(w, map[string]float64{"seconds": time.Since(start).Seconds()})
	})
	mux.HandleFunc("POST /bench/settle", func(w http.ResponseWriter, r *http.Request) {
		if err := settle(r.Context(), o); err != nil {
			httpError(w, err)
			return
		}
		writeJSON(w, struct{}{})
	})
	mux.HandleFunc("POST /bench/sweep", func(w http.ResponseWriter, r *http.Request) {
		before := ended.Load()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		ctx := r.Context()
		if v := r.URL.Query().Get("for"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				http.Error(w, fmt.Sprintf("for=%q: want a positive duration such as 8s", v), http.StatusBadRequest)
				return
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		start := time.Now()
		n, err := m.SweepExpired(ctx)
		took := time.Since(start)
		runtime.ReadMemStats(&ms1)
		stopped := errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil
		if err != nil && !stopped {
			httpError(w, err)
			return
		}
		writeJSON(w, sweepAnswer{Ended: n, Done: err == nil, Events: ended.Load() - before, Seconds: took.Seconds(),
			GCs: ms1.NumGC - ms0.NumGC, GCPause: time.Duration(ms1.PauseTotalNs - ms0.PauseTotalNs),
			Allocated: ms1.TotalAlloc - ms0.TotalAlloc, HeapBefore: ms0.HeapAlloc})
	})
	mux.HandleFunc("/bench/writes", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			counted.reset()
		}
		writeJSON(w, counted.counts())
	})
	return func() error {
		m.Close()
		return errors.Join(store.Close(), closeClient())
	}, nil
}

// sweepAnswer is the answer of POST /bench/sweep.
type sweepAnswer struct {
	Ended   int     `json:"ended"`
	Done    bool    `json:"done"`   // no expired session is left: the sweep ended, not its time
	Events  int64   `json:"events"` // end events the Manager's observers received
	Seconds float64 `json:"seconds"`
	// The sweeping process's garbage collector during the sweep: cycles,
	// their stop-the-world pauses, the bytes allocated, and the heap
	// (live and garbage) at the start.
	GCs        uint32        `json:"gcs"`
	GCPause    time.Duration `json:"gc_pause"`
	Allocated  uint64        `json:"allocated"`
	HeapBefore uint64        `json:"heap_before"`
}

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 10_000_000 {
		return 0, fmt.Errorf("%s=%q: want a number from 0 to 10000000", name, v)
	}
	return n, nil
}

// steppingClock runs in real time, and jumps forward by step every every,
// so that a run of seconds covers a whole idle period. Between jumps it
// runs at the real pace, so a store write takes as long against the
// traffic as it would in real time (a clock that ran uniformly faster
// would stretch each write, and the requests that race it, as much).
type steppingClock struct {
	start time.Time
	step  time.Duration
	every time.Duration
}

func (c *steppingClock) Now() time.Time {
	now := time.Now()
	return now.Add(time.Duration(now.Sub(c.start)/c.every) * c.step)
}

// countingStore counts the writes the Manager makes to its store.
type countingStore struct {
	session.Store
	create, touch, saveData, renew, end, expired atomic.Int64
}

// writeCounts is the answer of GET /bench/writes.
type writeCounts struct {
	Create   int64 `json:"create"`
	Touch    int64 `json:"touch"`
	SaveData int64 `json:"save_data"`
	Renew    int64 `json:"renew"`
	End      int64 `json:"end"`
	Expired  int64 `json:"expired"` // records ended by EndExpired
	// Total is every write of a session after its creation (Touch,
	// SaveData, Renew, End, EndExpired's records): what a busy session
	// costs the store.
	Total int64 `json:"total"`
}

// inMemoryCountingStore is a countingStore around an in-memory store.
type inMemoryCountingStore struct{ *countingStore }

func (inMemoryCountingStore) InMemory() {}

// SweepBatch forwards the store's suggestion, so that the Manager sweeps
// in the batches it would without the wrapper.
func (s *countingStore) SweepBatch() int {
	if b, ok := s.Store.(session.SweepBatcher); ok {
		return b.SweepBatch()
	}
	return 0
}

func (s *countingStore) counts() writeCounts {
	c := writeCounts{
		Create: s.create.Load(), Touch: s.touch.Load(), SaveData: s.saveData.Load(),
		Renew: s.renew.Load(), End: s.end.Load(), Expired: s.expired.Load(),
	}
	c.Total = c.Touch + c.SaveData + c.Renew + c.End + c.Expired
	return c
}

func (s *countingStore) reset() {
	for _, c := range []*atomic.Int64{&s.create, &s.touch, &s.saveData, &s.renew, &s.end, &s.expired} {
		c.Store(0)
	}
}

func (s *countingStore) Create(ctx context.Context, rec session.Record) error {
	s.create.Add(1)
	return s.Store.Create(ctx, rec)
}

func (s *countingStore) Touch(ctx context.Context, id string, at time.Time, exp session.Expiry) error {
	s.touch.Add(1)
	return s.Store.Touch(ctx, id, at, exp)
}

func (s *countingStore) SaveData(ctx context.Context, id string, old, data map[string]string) error {
	s.saveData.Add(1)
	return s.Store.SaveData(ctx, id, old, data)
}

func (s *countingStore) Renew(ctx context.Context, id string, old, new session.TokenHash, r session.Renewal) error {
	s.renew.Add(1)
	return s.Store.Renew(ctx, id, old, new, r)
}

func (s *countingStore) End(ctx context.Context, id string, e session.Ending) (session.Record, error) {
	s.end.Add(1)
	return s.Store.End(ctx, id, e)
}

// EndExpired is never cancelled: a sweep stopped by POST /bench/sweep?for=
// stops between two store calls, as it would between two sweeps, and not
// by interrupting one, which would leave work half done.
func (s *countingStore) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	ended, err := s.Store.EndExpired(context.WithoutCancel(ctx), now, keep, limit)
	s.expired.Add(int64(len(ended)))
	return ended, err
}

// idleRecord is a session as a login makes it, last active at now: its own
// user and IP, a browser's User-Agent, no data, and the expiry the Manager
// gives it under the default policy (the idle deadline, the earlier).
func idleRecord(i int, now time.Time) session.Record {
	var b [16 + 32]byte
	rand.Read(b[:])
	var h session.TokenHash
	copy(h[:], b[16:])
	return session.Record{
		Info: session.Info{
			ID:              base64.RawURLEncoding.EncodeToString(b[:16]),
			UserID:          fmt.Sprintf("user-%d", i),
			CreatedAt:       now,
			AuthenticatedAt: now,
			LastActivity:    now,
			Policy:          session.DefaultPolicy,
			IP:              fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
			UserAgent:       strings.Clone(browserUA),
			Expires:         session.Expiry{At: now.Add(session.DefaultPolicy.IdleTimeout), Reason: session.ReasonIdle},
		},
		TokenHash: h,
	}
}

// preloaded numbers the preloaded sessions of a process, so that every
// one has its own user.
var preloaded atomic.Int64

// preload adds n sessions last active at now. The SQL stores' rows are
// written into the store's table in bulk (PostgreSQL's with COPY, SQLite's
// in transactions of many rows), which is what a store holding a million
// sessions would have accumulated: one Create per transaction would take
// minutes through SQLite's single writer. The other stores get them
// through their own Create, from parallel workers.
func preload(ctx context.Context, o serveOptions, store session.Store, n int, now time.Time) error {
	first := int(preloaded.Add(int64(n))) - n
	switch o.system {
	case "sg-postgres":
		return copyPostgres(ctx, o.pgDSN, first, n, now)
	case "sg-sqlite":
		return insertSQLite(ctx, o.sqlitePath, first, n, now)
	}
	workers := 8
	if o.system == "sg-redis" {
		workers = 64 // network round trips: keep Redis busy
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := store.Create(ctx, idleRecord(first+i, now)); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// sessionColumns are the columns of the SQL stores' session_records that
// their Create writes, in the order of sessionRow's values.
var sessionColumns = []string{"id", "token_hash", "user_id", "created_at", "authenticated_at", "last_activity",
	"idle_timeout", "absolute_timeout", "ip", "user_agent", "data", "expires_at", "expires_reason", "persistent"}

// sessionRow is the i-th preloaded session as the SQL stores' Create
// would write it: ip and user agent as text and persistent as 0 or 1
// (SQLite), or as bytes and a boolean (PostgreSQL).
func sessionRow(i int, now time.Time, postgres bool) []any {
	rec := idleRecord(i, now)
	t := now.UnixNano()
	var ip, ua, persistent any = rec.IP, rec.UserAgent, 0
	if postgres {
		ip, ua, persistent = []byte(rec.IP), []byte(rec.UserAgent), false
	}
	return []any{rec.ID, rec.TokenHash[:], rec.UserID, t, t, t,
		int64(rec.Policy.IdleTimeout), int64(rec.Policy.AbsoluteTimeout), ip, ua, nil,
		rec.Expires.At.UnixNano(), string(rec.Expires.Reason), persistent}
}

// insertSQLite inserts n sessions into sqlitestore's session_records
// table, 10,000 to a transaction, over one connection.
func insertSQLite(ctx context.Context, path string, first, n int, now time.Time) error {
	// A large page cache, since the inserts land all over the random-keyed
	// indexes, and no sync per commit: this connection only fills the file.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=cache_size(-1048576)&_pragma=synchronous(OFF)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	insert := "INSERT INTO session_records (" + strings.Join(sessionColumns, ", ") + ") VALUES (?" + strings.Repeat(", ?", len(sessionColumns)-1) + ")"
	for done := 0; done < n; {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, insert)
		if err != nil {
			tx.Rollback()
			return err
		}
		for end := min(n, done+10_000); done < end; done++ {
			if _, err := stmt.ExecContext(ctx, sessionRow(first+done, now, false)...); err != nil {
				tx.Rollback()
				return fmt.Errorf("inserting into session_records: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// settle brings a SQL store to the state a long-running one keeps, so that
// every measurement starts from the same: SQLite's write-ahead log
// checkpointed into the database, as its automatic checkpoints do;
// PostgreSQL's table vacuumed and analysed, as autovacuum does (after a
// bulk load autovacuum would otherwise run during the measurement).
func settle(ctx context.Context, o serveOptions) error {
	if err := settleStore(ctx, o); err != nil {
		return err
	}
	// The preload left the kernel with dirty pages (the SQLite file,
	// PostgreSQL's and Redis's own writes) that it would write back during
	// the next measurement; write them now, and collect the preload's
	// garbage, so that a quiet store is measured quiet.
	syncDisks()
	runtime.GC()
	return nil
}

func settleStore(ctx context.Context, o serveOptions) error {
	switch o.system {
	case "sg-sqlite":
		db, err := sql.Open("sqlite", "file:"+o.sqlitePath+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
		return err
	case "sg-postgres":
		conn, err := pgx.Connect(ctx, o.pgDSN)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "VACUUM (ANALYZE) session_records")
		return err
	}
	return nil
}

// copyPostgres copies n sessions into pgstore's session_records table with
// COPY, with the columns pgstore's Create writes.
func copyPostgres(ctx context.Context, dsn string, first, n int, now time.Time) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		i++
		return sessionRow(first+i-1, now, true), nil
	})
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"session_records"}, sessionColumns, src); err != nil {
		return fmt.Errorf("COPY into session_records: %w", err)
	}
	return nil
}
