package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/postgresstore"
	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/gomodule/redigo/redis"
	"github.com/gorilla/sessions"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for scs's PostgreSQL store
)

// idleTimeout and absoluteTimeout are every system's session policy: the
// seed's 30 minutes of inactivity, and sessionguard's default 12 hours.
const (
	idleTimeout     = 30 * time.Minute
	absoluteTimeout = 12 * time.Hour
)

// mountSCS serves alexedwards/scs with one of its stores, as its README
// sets it up, with a 30-minute idle timeout (so it re-saves the session on
// every request, which is how scs slides the idle deadline):
//
//	GET  /               LoadAndSave, then a handler that reads the user
//	POST /bench/login    ?n=N: N new sessions, their Cookie header values
//	POST /bench/preload  ?n=N: N more sessions committed to the store
//	GET  /bench/writes   store writes (Commit, Delete) so far
func mountSCS(ctx context.Context, mux *http.ServeMux, o serveOptions) (func() error, error) {
	var store scs.Store
	closeStore := func() error { return nil }
	switch o.system {
	case "scs-memory":
		store = memstore.New()
	case "scs-redis":
		addr, db, err := redisAddr(o.redisDSN)
		if err != nil {
			return nil, err
		}
		pool := &redis.Pool{
			MaxIdle: 64,
			Dial: func() (redis.Conn, error) {
				return redis.Dial("tcp", addr, redis.DialDatabase(db))
			},
		}
		store = redisstore.NewWithPrefix(pool, o.prefix)
		closeStore = pool.Close
	case "scs-postgres":
		db, err := sql.Open("pgx", o.pgDSN)
		if err != nil {
			return nil, err
		}
		// database/sql keeps two idle connections by default: under 32
		// concurrent requests it would open and close connections all
		// the time, which measures connection set-up, not scs.
		db.SetMaxIdleConns(64)
		if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS sessions (
			token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL);
			CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions (expiry)`); err != nil {
			db.Close()
			return nil, err
		}
		store = postgresstore.New(db)
		closeStore = db.Close
	}
	counted := &countingSCSStore{Store: store}
	sm := scs.New()
	sm.Store = counted
	sm.IdleTimeout = idleTimeout
	sm.Lifetime = absoluteTimeout
	sm.Cookie.Secure = true

	mux.Handle("GET /{$}", sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := sm.GetString(r.Context(), "user")
		if user == "" {
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		checkedHello(w, user)
	})))
	mux.HandleFunc("POST /bench/login", func(w http.ResponseWriter, r *http.Request) {
		n, err := intParam(r, "n", 1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ans loginAnswer
		for i := range n {
			ctx, err := sm.Load(r.Context(), "")
			if err != nil {
				httpError(w, err)
				return
			}
			if err := sm.RenewToken(ctx); err != nil {
				httpError(w, err)
				return
			}
			sm.Put(ctx, "user", fmt.Sprintf("probe-%d", i))
			token, _, err := sm.Commit(ctx)
			if err != nil {
				httpError(w, err)
				return
			}
			ans.Cookies = append(ans.Cookies, sm.Cookie.Name+"="+token)
		}
		writeJSON(w, ans)
	})
	mux.HandleFunc("POST /bench/preload", func(w http.ResponseWriter, r *http.Request) {
		n, err := intParam(r, "n", 0)
		if err != nil || n < 1 {
			http.Error(w, "n must be a positive number", http.StatusBadRequest)
			return
		}
		start := time.Now()
		if err := preloadSCS(sm, store, n); err != nil {
			httpError(w, err)
			return
		}
		writeJSON(w, map[string]float64{"seconds": time.Since(start).Seconds()})
	})
	mux.HandleFunc("/bench/writes", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			counted.commits.Store(0)
			counted.deletes.Store(0)
		}
		c := writeCounts{Touch: counted.commits.Load(), End: counted.deletes.Load()}
		c.Total = c.Touch + c.End
		writeJSON(w, c)
	})
	return closeStore, nil
}

// preloadSCS commits n sessions as scs's login would leave them: a 32-byte
// random token, the user in the data, the idle deadline as expiry.
func preloadSCS(sm *scs.SessionManager, store scs.Store, n int) error {
	first := int(preloaded.Add(int64(n))) - n
	now := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				b, err := sm.Codec.Encode(now.Add(absoluteTimeout), map[string]any{"user": fmt.Sprintf("user-%d", first+i)})
				if err != nil {
					errs[w] = err
					return
				}
				var t [32]byte
				rand.Read(t[:])
				if err := store.Commit(base64.RawURLEncoding.EncodeToString(t[:]), b, now.Add(idleTimeout)); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// countingSCSStore counts the writes scs makes to its store.
type countingSCSStore struct {
	scs.Store
	commits, deletes atomic.Int64
}

func (s *countingSCSStore) Commit(token string, b []byte, expiry time.Time) error {
	s.commits.Add(1)
	return s.Store.Commit(token, b, expiry)
}

func (s *countingSCSStore) Delete(token string) error {
	s.deletes.Add(1)
	return s.Store.Delete(token)
}

// redisAddr returns the host:port and database number of a redis:// DSN.
func redisAddr(dsn string) (string, int, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "redis" || u.Host == "" {
		return "", 0, fmt.Errorf("Redis DSN: want redis://HOST:PORT/DB")
	}
	host := u.Host
	if u.Port() == "" {
		host += ":6379"
	}
	db := 0
	if p := strings.Trim(u.Path, "/"); p != "" {
		if db, err = strconv.Atoi(p); err != nil {
			return "", 0, fmt.Errorf("Redis DSN: database %q is not a number", p)
		}
	}
	return host, db, nil
}

// mountGorilla serves gorilla/sessions' cookie store: the session lives
// in a signed cookie (the store's one-key form, as in its README), with
// the last activity in it; each request checks the idle timeout and
// saves the session again, which slides the cookie's Max-Age and its
// recorded activity.
func mountGorilla(mux *http.ServeMux) (func() error, error) {
	key := make([]byte, 32)
	rand.Read(key)
	store := sessions.NewCookieStore(key)
	store.Options = &sessions.Options{Path: "/", MaxAge: int(idleTimeout.Seconds()), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	const name = "session"
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, name)
		user, ok := s.Values["user"].(string)
		last, _ := s.Values["last"].(int64)
		start, _ := s.Values["start"].(int64)
		now := time.Now()
		if err != nil || !ok || now.Sub(time.Unix(0, last)) >= idleTimeout || now.Sub(time.Unix(0, start)) >= absoluteTimeout {
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		s.Values["last"] = now.UnixNano()
		if err := s.Save(r, w); err != nil {
			httpError(w, err)
			return
		}
		checkedHello(w, user)
	})
	mux.HandleFunc("POST /bench/login", func(w http.ResponseWriter, r *http.Request) {
		n, err := intParam(r, "n", 1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ans loginAnswer
		for i := range n {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/", nil)
			s, _ := store.New(req, name)
			now := time.Now().UnixNano()
			s.Values["user"] = fmt.Sprintf("probe-%d", i)
			s.Values["start"], s.Values["last"] = now, now
			if err := s.Save(req, rec); err != nil {
				httpError(w, err)
				return
			}
			ck := rec.Result().Cookies()[0]
			ans.Cookies = append(ans.Cookies, ck.Name+"="+ck.Value)
		}
		writeJSON(w, ans)
	})
	return func() error { return nil }, nil
}
