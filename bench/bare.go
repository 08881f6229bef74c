package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/pgstore"
)

// The bare store systems are the ceilings of the networked stores: what a
// handler reaches that asks Redis or PostgreSQL one question per request
// and does nothing else. sg-redis and sg-postgres run on a client made by
// the same function as theirs, so that the rows differ only in what runs
// on that client.

// redisClient makes the go-redis client of the Redis systems, as
// redisstore.Open makes it for a DSN naming one server: redis.ParseURL's
// options, and the context's deadline bounding every call.
func redisClient(dsn string) (*redis.Client, error) {
	o, err := redis.ParseURL(dsn)
	if err != nil {
		return nil, err
	}
	o.ContextTimeoutEnabled = true
	return redis.NewClient(o), nil
}

// pgPool makes the pgx pool of the PostgreSQL systems, as pgstore.Open
// makes it: pgxpool's configuration from the DSN, and pgstore's pool size
// unless the DSN sets pool_max_conns.
func pgPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, err
	}
	if !u.Query().Has("pool_max_conns") {
		cfg.MaxConns = pgstore.DefaultMaxConns
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// benchCookie is the name of the session cookie every sessionguard system
// and the bare store systems read: the Manager's default.
const benchCookie = "__Host-session"

// newBenchToken returns a random token of the size of a sessionguard one
// (32 bytes, base64url), to name a bare system's row or key.
func newBenchToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// bareLogins serves POST /bench/login?n=N for a bare store system: it
// stores N rows or keys with put and answers their Cookie header values.
func bareLogins(put func(ctx context.Context, token string, i int) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := intParam(r, "n", 1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ans loginAnswer
		for i := range n {
			token := newBenchToken()
			if err := put(r.Context(), token, i); err != nil {
				httpError(w, err)
				return
			}
			ans.Cookies = append(ans.Cookies, benchCookie+"="+token)
		}
		writeJSON(w, ans)
	}
}

// mountBareRedis serves bare-redis-get:
//
//	GET  /             one GET of the key the cookie names, then the body of the session check
//	POST /bench/login  ?n=N: N new keys, their Cookie header values
//
// A key holds the user's ID, a newline, and a session record encoded as
// JSON, so that the value read is about as large as a session's.
func mountBareRedis(ctx context.Context, mux *http.ServeMux, o serveOptions) (func() error, error) {
	client, err := redisClient(o.redisDSN)
	if err != nil {
		return nil, err
	}
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, err
	}
	key := func(token string) string { return o.prefix + "bare:" + token }
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(benchCookie)
		if err != nil {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		v, err := client.Get(r.Context(), key(c.Value)).Result()
		switch {
		case errors.Is(err, redis.Nil):
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		case err != nil:
			httpError(w, err)
			return
		}
		user, _, _ := strings.Cut(v, "\n")
		checkedHello(w, user)
	})
	mux.HandleFunc("POST /bench/login", bareLogins(func(ctx context.Context, token string, i int) error {
		user := fmt.Sprintf("probe-%d", i)
		rec, err := json.Marshal(idleRecord(i, time.Now()))
		if err != nil {
			return err
		}
		return client.Set(ctx, key(token), user+"\n"+string(rec), session.DefaultPolicy.AbsoluteTimeout).Err()
	}))
	return client.Close, nil
}

// bareTable is a table shaped like pgstore's session_records, keyed by the
// cookie's token itself.
const bareTable = `CREATE TABLE IF NOT EXISTS bare_sessions (
	token            text COLLATE "C" NOT NULL PRIMARY KEY,
	id               text COLLATE "C" NOT NULL,
	user_id          text COLLATE "C" NOT NULL,
	created_at       bigint  NOT NULL,
	authenticated_at bigint  NOT NULL,
	last_activity    bigint  NOT NULL,
	idle_timeout     bigint  NOT NULL,
	absolute_timeout bigint  NOT NULL,
	ip               bytea   NOT NULL,
	user_agent       bytea   NOT NULL,
	data             jsonb,
	expires_at       bigint  NOT NULL,
	expires_reason   text    NOT NULL,
	persistent       boolean NOT NULL
)`

// mountBarePG serves bare-pg-select:
//
//	GET  /             one SELECT of the row the cookie names, by primary key, then the body of the session check
//	POST /bench/login  ?n=N: N new rows, their Cookie header values
func mountBarePG(ctx context.Context, mux *http.ServeMux, o serveOptions) (func() error, error) {
	pool, err := pgPool(ctx, o.pgDSN)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, bareTable); err != nil {
		pool.Close()
		return nil, err
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(benchCookie)
		if err != nil {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		// Every column of the row, read as the store reads a record's.
		var (
			id, user, reason                    string
			created, auth, last, idle, absolute int64
			expires                             int64
			ip, ua, data                        []byte
			persistent                          bool
		)
		err = pool.QueryRow(r.Context(), `SELECT id, user_id, created_at, authenticated_at, last_activity,
			idle_timeout, absolute_timeout, ip, user_agent, data, expires_at, expires_reason, persistent
			FROM bare_sessions WHERE token = $1`, c.Value).Scan(&id, &user, &created, &auth, &last,
			&idle, &absolute, &ip, &ua, &data, &expires, &reason, &persistent)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		case err != nil:
			httpError(w, err)
			return
		}
		checkedHello(w, user)
	})
	mux.HandleFunc("POST /bench/login", bareLogins(func(ctx context.Context, token string, i int) error {
		now := time.Now()
		rec := idleRecord(i, now)
		t := now.UnixNano()
		_, err := pool.Exec(ctx, `INSERT INTO bare_sessions (token, id, user_id, created_at, authenticated_at,
			last_activity, idle_timeout, absolute_timeout, ip, user_agent, data, expires_at, expires_reason, persistent)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $12, false)`,
			token, rec.ID, fmt.Sprintf("probe-%d", i), t, t, t, int64(rec.Policy.IdleTimeout), int64(rec.Policy.AbsoluteTimeout),
			[]byte(rec.IP), []byte(rec.UserAgent), rec.Expires.At.UnixNano(), string(rec.Expires.Reason))
		return err
	}))
	return func() error { pool.Close(); return nil }, nil
}
