package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/pgstore"
	"github.com/sessionguard/sessionguard/session/redisstore"
	"github.com/sessionguard/sessionguard/session/sqlitestore"
)

// defaultDB is the -db default: a SQLite file in the working directory.
const defaultDB = "sqlite:sessionguard.db"

// defaultStoreTimeout is the -store-timeout default, and the bound of the
// session store calls of the user commands: the session Manager's own
// default, long enough for a store across a data centre, short enough that
// a request waiting on a dead one fails while its user still waits.
const defaultStoreTimeout = 3 * time.Second

// checkDB checks a -db DSN before anything is opened, so that a typo is a
// usage error (exit 2) rather than a failed start. sqldb.Open checks the
// rest. The DSN is never echoed: it may hold a password.
func checkDB(dsn string) error {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		if strings.TrimPrefix(dsn, "sqlite:") == "" {
			return fmt.Errorf("sqlite: needs a file path, as in %s", defaultDB)
		}
		return nil
	case isPostgres(dsn):
		return checkPostgres(dsn)
	case dsn == "":
		return fmt.Errorf("no database given: use %s", sqldb.DSNForms)
	}
	return fmt.Errorf("unsupported database %s: use %s", schemeOf(dsn), sqldb.DSNForms)
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// checkPostgres parses a postgres:// DSN as pgx will, without connecting,
// so that a bad parameter (pool_max_conns=lots) is a usage error. pgx's own
// message quotes the DSN; this one gives only the reason.
func checkPostgres(dsn string) error {
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			return fmt.Errorf("not a valid PostgreSQL URL (%v): want postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]", inner)
		}
		return errors.New("not a valid PostgreSQL URL: want postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]")
	}
	return nil
}

// schemeOf names the scheme of a DSN for an error message, without the rest
// of the DSN, which may hold a password.
func schemeOf(dsn string) string {
	scheme, _, ok := strings.Cut(dsn, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/\\.@ ") {
		return "(no scheme)"
	}
	return fmt.Sprintf("scheme %q", scheme)
}

// openDB opens the -db database. With mustExist, a SQLite file that does
// not exist is an error instead of a new empty database: a command that only
// reads or changes accounts, run in the wrong directory, must say so rather
// than report an empty log. A PostgreSQL DSN gets a connect timeout (see
// postgresTimeouts) unless it sets one.
func openDB(ctx context.Context, dsn string, mustExist bool) (*sqldb.DB, error) {
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok && mustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no database file %s (see -db; serve and user add create it)", path)
		}
	}
	if isPostgres(dsn) {
		var err error
		if dsn, err = postgresTimeouts(dsn, defaultStoreTimeout); err != nil {
			return nil, fmt.Errorf("opening the database (-db): %w", err)
		}
	}
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("opening the database (-db): %w", err)
	}
	return db, nil
}

// sessionStoreForms lists the -sessions values this build accepts.
const sessionStoreForms = "memory, sqlite:PATH, redis://[USER:PASSWORD@]HOST[:PORT][/DB][?PARAMS] (rediss:// for TLS) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]"

// keyPrefixParam is the query parameter of a redis:// DSN that sets the
// prefix of the Store's keys (redisstore.WithKeyPrefix), so that several
// deployments, or tests, can share one Redis database. It is sessionguard's
// own: it is taken out of the DSN before go-redis reads the rest.
const keyPrefixParam = "key_prefix"

// openStore opens a session store whose calls are bounded by timeout.
type openStore func(ctx context.Context, timeout time.Duration) (session.Store, error)

// sessionBackend resolves a -sessions DSN to a description for the logs and
// a function that opens the store. An empty DSN means "in the -db database":
// the SQLite file, or the PostgreSQL database, that also holds the accounts
// and the audit log. It connects to nothing, so flag validation can call it
// too.
//
// Each session store is one case here.
func sessionBackend(dsn, db string) (describe string, open openStore, err error) {
	if dsn == "" {
		switch {
		case strings.HasPrefix(db, "sqlite:"), isPostgres(db):
			// The session tables are prefixed session_*, so they share
			// the database with the accounts and the audit log.
			dsn = db
		default:
			return "", nil, fmt.Errorf("no session store: the -db DSN has an unsupported %s", schemeOf(db))
		}
	}
	scheme, rest, _ := strings.Cut(dsn, ":")
	switch scheme {
	case "memory":
		if rest != "" {
			return "", nil, fmt.Errorf("the memory store takes no parameters: write memory")
		}
		return "memory (sessions end when the process stops)", func(context.Context, time.Duration) (session.Store, error) {
			return memstore.New(), nil
		}, nil
	case "sqlite":
		if rest == "" {
			return "", nil, fmt.Errorf("sqlite: needs a file path, as in sqlite:sessions.db")
		}
		return "sqlite:" + rest, func(context.Context, time.Duration) (session.Store, error) {
			return sqlitestore.Open(rest)
		}, nil
	case "redis", "rediss":
		if !strings.HasPrefix(rest, "//") {
			return "", nil, fmt.Errorf("%s: needs a URL, as in %s://localhost:6379/0", scheme, scheme)
		}
		// Check the DSN as the store will read it; Open connects to
		// nothing, so this costs no round trip.
		if err := checkRedis(dsn); err != nil {
			return "", nil, err
		}
		return redactDSN(dsn), func(ctx context.Context, timeout time.Duration) (session.Store, error) {
			return openRedis(ctx, dsn, timeout)
		}, nil
	case "postgres", "postgresql":
		if err := checkPostgres(dsn); err != nil {
			return "", nil, err
		}
		return redactDSN(dsn), func(ctx context.Context, timeout time.Duration) (session.Store, error) {
			full, err := postgresTimeouts(dsn, timeout)
			if err != nil {
				return nil, err
			}
			return pgstore.Open(ctx, full)
		}, nil
	}
	return "", nil, fmt.Errorf("unsupported session store %s: use %s", schemeOf(dsn), sessionStoreForms)
}

// checkSessions checks a -sessions DSN (with the -db DSN it defaults to).
func checkSessions(dsn, db string) error {
	_, _, err := sessionBackend(dsn, db)
	return err
}

// checkRedis checks a redis:// DSN by making (and at once closing) the
// client the store would use, which reaches no server.
func checkRedis(dsn string) error {
	full, prefix, err := redisOptions(dsn, defaultStoreTimeout)
	if err != nil {
		return err
	}
	s, err := redisstore.Open(full, redisstore.WithKeyPrefix(prefix))
	if err != nil {
		return err
	}
	return s.Close()
}

// openRedis opens a Redis session store and checks that the server answers,
// so that a wrong address stops the start instead of failing every request.
func openRedis(ctx context.Context, dsn string, timeout time.Duration) (session.Store, error) {
	full, prefix, err := redisOptions(dsn, timeout)
	if err != nil {
		return nil, err
	}
	redis.SetLogger(redisLogger{})
	s, err := redisstore.Open(full, redisstore.WithKeyPrefix(prefix))
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.Ping(pctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// redisLogger sends go-redis's own messages (a failed dial, a broken pool
// connection) to the process's logger, so that they come in its format
// (-log-format json) rather than as bare lines on standard error. serve sets
// that logger as slog's default before opening the stores.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().WarnContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

// redisOptions takes sessionguard's key_prefix parameter out of a redis://
// DSN and adds go-redis's client-side timeouts where the DSN sets none: the
// dial, each read and write, and the wait for a pooled connection are then
// bounded by the store timeout even where no context deadline reaches
// (go-redis's defaults allow 5 seconds to dial and 4 to wait for the pool).
// The pool (go-redis's default, ten connections a CPU) bounds the calls in
// flight; requests beyond it wait at most pool_timeout, then fail with 503.
func redisOptions(dsn string, timeout time.Duration) (full, prefix string, err error) {
	base, q, err := splitQuery(dsn)
	if err != nil {
		return "", "", err
	}
	prefix = redisstore.DefaultKeyPrefix
	if q.Has(keyPrefixParam) {
		if prefix = q.Get(keyPrefixParam); prefix == "" {
			return "", "", fmt.Errorf("%s= is empty: leave it out for the default %q", keyPrefixParam, redisstore.DefaultKeyPrefix)
		}
		q.Del(keyPrefixParam)
	}
	t := timeout.String()
	for _, name := range []string{"dial_timeout", "read_timeout", "write_timeout", "pool_timeout"} {
		if !q.Has(name) {
			q.Set(name, t)
		}
	}
	return base + "?" + q.Encode(), prefix, nil
}

// postgresTimeouts adds a connect_timeout (in whole seconds, rounded up) to
// a postgres:// DSN that sets none, so that a new connection to a server
// that does not answer gives up even where no context deadline reaches
// (pgx's default is to wait as long as the operating system does). Each
// call is bounded by its context besides: the Manager's store timeout for
// sessions, the request's deadline for accounts.
func postgresTimeouts(dsn string, timeout time.Duration) (string, error) {
	base, q, err := splitQuery(dsn)
	if err != nil {
		return "", err
	}
	if !q.Has("connect_timeout") {
		q.Set("connect_timeout", strconv.Itoa(int(math.Ceil(timeout.Seconds()))))
	}
	return base + "?" + q.Encode(), nil
}

// splitQuery splits a DSN into what comes before its query and the query's
// parameters. The DSN is never echoed: it may hold a password.
func splitQuery(dsn string) (string, url.Values, error) {
	base, raw, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", nil, errors.New("the DSN's query (after ?) is malformed")
	}
	return base, q, nil
}

// redactDSN returns a DSN for the logs, with any password (in the user
// part or as a query parameter) replaced by xxxxx. It works on the text,
// since a Redis Cluster DSN (several comma-separated addresses) is no URL
// that net/url parses.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return schemeOf(dsn)
	}
	if base, q, err := splitQuery(rest); err != nil {
		rest = base + "?(hidden: malformed)"
	} else if len(q) > 0 {
		for _, name := range []string{"password", "sentinel_password"} {
			if q.Has(name) {
				q.Set(name, "xxxxx")
			}
		}
		rest = base + "?" + q.Encode()
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return scheme + "://" + rest
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return scheme + "://" + rest
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
