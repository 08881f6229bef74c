package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/sqlitestore"
)

// defaultDB is the -db default: a SQLite file in the working directory.
const defaultDB = "sqlite:sessionguard.db"

// checkDB checks the scheme of a -db DSN before anything is opened, so that
// a typo is a usage error (exit 2) rather than a failed start. sqldb.Open
// checks the rest. The DSN is never echoed: it may hold a password.
func checkDB(dsn string) error {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		if strings.TrimPrefix(dsn, "sqlite:") == "" {
			return fmt.Errorf("sqlite: needs a file path, as in %s", defaultDB)
		}
		return nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return nil
	case dsn == "":
		return fmt.Errorf("no database given: use %s", sqldb.DSNForms)
	}
	return fmt.Errorf("unsupported database %s: use %s", schemeOf(dsn), sqldb.DSNForms)
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
// than report an empty log.
func openDB(ctx context.Context, dsn string, mustExist bool) (*sqldb.DB, error) {
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok && mustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no database file %s (see -db; serve and user add create it)", path)
		}
	}
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("opening the database (-db): %w", err)
	}
	return db, nil
}

// sessionStoreForms lists the -sessions values this build accepts.
const sessionStoreForms = "memory or sqlite:PATH"

// sessionBackend resolves a -sessions DSN to a description for the logs and
// a function that opens the store. An empty DSN means "in the -db database".
// It opens nothing, so flag validation can call it too.
//
// Each session store is one case here.
func sessionBackend(dsn, db string) (describe string, open func(ctx context.Context) (session.Store, error), err error) {
	if dsn == "" {
		switch {
		case strings.HasPrefix(db, "sqlite:"):
			// The session tables are prefixed session_*, so they share the
			// file with the accounts and the audit log.
			dsn = db
		case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
			return "", nil, fmt.Errorf("sessions in a PostgreSQL -db need the PostgreSQL session store, which is not supported yet (issue 5): give -sessions %s", sessionStoreForms)
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
		return "memory (sessions end when the process stops)", func(context.Context) (session.Store, error) {
			return memstore.New(), nil
		}, nil
	case "sqlite":
		if rest == "" {
			return "", nil, fmt.Errorf("sqlite: needs a file path, as in sqlite:sessions.db")
		}
		return "sqlite:" + rest, func(context.Context) (session.Store, error) {
			return sqlitestore.Open(rest)
		}, nil
	case "redis", "rediss":
		return "", nil, fmt.Errorf("%s:// session stores are not supported yet (issue 5): use %s", scheme, sessionStoreForms)
	case "postgres", "postgresql":
		return "", nil, fmt.Errorf("%s:// session stores are not supported yet (issue 5): use %s", scheme, sessionStoreForms)
	}
	return "", nil, fmt.Errorf("unsupported session store %s: use %s", schemeOf(dsn), sessionStoreForms)
}

// checkSessions checks a -sessions DSN (with the -db DSN it defaults to).
func checkSessions(dsn, db string) error {
	_, _, err := sessionBackend(dsn, db)
	return err
}
