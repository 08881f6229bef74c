package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sessionguard/sessionguard/internal/audit"
	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// auditLog is the audit log as the commands use it.
type auditLog = audit.Log

// openAudit opens the audit log in db, creating its table if needed.
func openAudit(ctx context.Context, db *sqldb.DB, log *slog.Logger) (*auditLog, error) {
	l, err := audit.NewLog(ctx, db, audit.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	return l, nil
}

// recordAudit records an account change made from the command line. A
// failure to record does not undo the change, which is done; it is logged
// so that the operator knows the log misses it.
func recordAudit(ctx context.Context, l *auditLog, log *slog.Logger, event audit.Event, user string) {
	recordAuditDetail(ctx, l, log, event, user, "command line")
}

// recordAuditDetail is recordAudit with the entry's Detail given.
func recordAuditDetail(ctx context.Context, l *auditLog, log *slog.Logger, event audit.Event, user, detail string) {
	err := l.Record(ctx, audit.Entry{Event: event, User: user, Detail: detail})
	if err != nil {
		log.Error("the change is made but the audit log missed it", "event", event, "user", user, "err", err)
	}
}

const auditAbout = `Prints the audit log, oldest entry first: sign-ins, failed sign-ins, sessions
started and ended (with the reason: logout, idle, absolute, revoked) and
account changes. With -json, one JSON object a line with the keys time, event,
user, session, reason and ip (and detail when there is one). Control
characters, bidirectional overrides and other invisible characters (a user
name typed at sign-in may hold them) are shown escaped: quoted with \u escapes
in the table, as \uXXXX in JSON.`

// auditCommand runs `sessionguard audit`.
func auditCommand(ctx context.Context, args []string, env environment, stdout io.Writer) error {
	var (
		db, user, event string
		since           time.Duration
		asJSON          bool
	)
	f := newFlagSet("sessionguard audit", "sessionguard audit [flags]", auditAbout)
	f.String(&db, "db", defaultDB, "DSN", "the database of the audit log: sqlite:PATH or postgres://...")
	commandLineOnly(f.Duration(&since, "since", "0", "show only the entries of this last period, as in 24h (0: all)"))
	commandLineOnly(f.Bool(&asJSON, "json", "one JSON object a line instead of a table"))
	commandLineOnly(f.String(&user, "user", "", "NAME", "show only the entries of this user"))
	commandLineOnly(f.String(&event, "event", "", "NAME", "show only this event, as in session_ended or login_failed"))
	rest, err := f.parse(args, env, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("audit takes no arguments, got %q (see 'sessionguard audit -h')", rest[0])
	}
	if since < 0 {
		return usageErrorf("invalid value %q for -since: must not be negative", f.lookup("since").raw)
	}
	if err := checkDB(db); err != nil {
		return usageErrorf("invalid value for %s: %v", f.lookup("db").source, err)
	}

	d, err := openDB(ctx, db, true)
	if err != nil {
		return err
	}
	defer d.Close()
	l, err := openAudit(ctx, d, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	filter := audit.Filter{User: user, Event: audit.Event(event)}
	if since > 0 {
		filter.Since = time.Now().Add(-since)
	}
	entries, err := l.Query(ctx, filter)
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	if asJSON {
		return audit.WriteJSONLines(stdout, entries)
	}
	return audit.WriteTable(stdout, entries)
}
