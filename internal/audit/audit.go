// Package audit keeps the server's audit log: who signed in, failed to, or
// was signed out, and why, in the shared SQL database (package sqldb).
//
// Entries are written by the web handlers (Record) and, for everything that
// happens to sessions, by the session Manager through Log's SessionEvent
// method, which makes a *Log a session.Observer: every session that ends,
// including those that time out unobserved, leaves exactly one
// session_ended entry with its reason.
//
// An entry names a session by its public ID, never by its token, which would
// let anyone who can read the log take the session over.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/session"
)

// Event names what happened. The names are a contract: scripts read them
// from `sessionguard audit -json`.
type Event string

// The events.
const (
	// LoginSucceeded: a user signed in; Session is the new session.
	LoginSucceeded Event = "login_succeeded"
	// LoginFailed: a sign-in was refused; User is the name as typed,
	// Reason says why (ReasonInvalidCredentials, ReasonThrottled).
	LoginFailed Event = "login_failed"
	// SessionStarted: a session was created (recorded by SessionEvent).
	SessionStarted Event = "session_started"
	// SessionRenewed: a session got a new token after re-authentication or
	// a privilege change; its public ID stays (recorded by SessionEvent).
	SessionRenewed Event = "session_renewed"
	// SessionEnded: a session ended; Reason is logout, idle, absolute or
	// revoked (recorded by SessionEvent).
	SessionEnded Event = "session_ended"
	// SessionsRevoked: someone ended several sessions at once (all of a
	// user's, or all others); User is whose, Detail who did it and how
	// many. Each session also gets its own SessionEnded.
	SessionsRevoked Event = "sessions_revoked"
	// PasswordChanged: a password was changed, by its user or reset by an
	// administrator (Detail says which).
	PasswordChanged Event = "password_changed"
	// UserCreated, UserDisabled, UserEnabled: account changes; Detail
	// names who made them.
	UserCreated  Event = "user_created"
	UserDisabled Event = "user_disabled"
	UserEnabled  Event = "user_enabled"
	// SignInLocked: repeated failures locked sign-ins for a while; Reason
	// is what is locked (account: the user name, for clients that are not
	// its known devices; ip; device; session: its re-authentication),
	// Detail until when (recorded by ThrottleEvent).
	SignInLocked Event = "signin_locked"
	// SignInUnlocked: a success after a lockout cleared the failures of
	// what Reason names (recorded by ThrottleEvent).
	SignInUnlocked Event = "signin_unlocked"
	// MFAEnrolled: a user set up a second factor; Detail says which
	// (totp, passkey, recovery_codes for a new set of recovery codes).
	MFAEnrolled Event = "mfa_enrolled"
	// MFARemoved: a user removed a second factor; Detail says which.
	MFARemoved Event = "mfa_removed"
	// MFAFailed: a second factor was refused at sign-in or
	// re-authentication; Detail says which kind and where.
	MFAFailed Event = "mfa_failed"
	// RecoveryCodeUsed: a recovery code stood in for the second factor;
	// Detail says how many are left when known.
	RecoveryCodeUsed Event = "recovery_code_used"
	// MFAReset: an administrator removed every second factor of User (an
	// authenticator app, recovery codes, passkeys); Detail says which.
	MFAReset Event = "mfa_reset"
	// Reauthenticated: a signed-in user proved who they are again before
	// a sensitive action; Detail names the factors used
	// ("password+totp").
	Reauthenticated Event = "reauthenticated"
)

// Reasons of LoginFailed entries. (SessionEnded entries carry the
// session.EndReason.)
const (
	ReasonInvalidCredentials = "invalid_credentials"
	ReasonThrottled          = "throttled"
)

// TimeFormat is how entry times are written: RFC 3339 in UTC with all nine
// digits of nanoseconds, so that entries sort as text.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Entry is one line of the audit log. Its JSON form has exactly the keys
// time, event, user, session, reason and ip, and detail when it is not empty.
type Entry struct {
	// Time is when it happened; Record fills in the current time when zero.
	Time time.Time
	// Event is what happened.
	Event Event
	// User is the user name concerned: the account's, or for a failed
	// sign-in the name as typed.
	User string
	// Session is the public ID of the session concerned; never its token.
	Session string
	// Reason says why: the session.EndReason of a SessionEnded entry, or
	// why a sign-in failed.
	Reason string
	// IP is the client's address, or empty for events without a request.
	IP string
	// Detail is optional free text.
	Detail string
}

type entryJSON struct {
	Time    string `json:"time"`
	Event   Event  `json:"event"`
	User    string `json:"user"`
	Session string `json:"session"`
	Reason  string `json:"reason"`
	IP      string `json:"ip"`
	Detail  string `json:"detail,omitempty"`
}

// MarshalJSON writes the entry with its time in TimeFormat and every
// character that is not graphic escaped as \uXXXX (see Printable): C0 and
// C1 controls, DEL, bidirectional overrides and isolates, other format
// characters, line separators, and invalid bytes as \ufffd. encoding/json
// alone would pass U+009B or U+202E through raw to a terminal. (Whether <,
// > and & are escaped is left to the caller's encoder.)
func (e Entry) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 192)
	field := func(key, value string) {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		b = appendJSONString(b, value)
	}
	b = append(b, `{"time":`...)
	b = appendJSONString(b, e.Time.UTC().Format(TimeFormat))
	field("event", string(e.Event))
	field("user", e.User)
	field("session", e.Session)
	field("reason", e.Reason)
	field("ip", e.IP)
	if e.Detail != "" {
		field("detail", e.Detail)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("audit: entry time: %w", err)
	}
	*e = Entry{t, j.Event, j.User, j.Session, j.Reason, j.IP, j.Detail}
	return nil
}

// Field limits, in bytes. Values come partly from clients (a failed
// sign-in's user name, the address), so they are bounded before they reach
// the database.
const (
	maxEvent  = 64
	maxShort  = 256 // user, session, reason, ip
	maxDetail = 4096
)

// RecordTimeout bounds each write of an entry.
const RecordTimeout = 5 * time.Second

var migrations = []sqldb.Migration{{
	Name: "events",
	SQLite: `CREATE TABLE audit_events (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		time       BIGINT  NOT NULL, -- nanoseconds since the Unix epoch, UTC
		event      TEXT    NOT NULL,
		user_name  TEXT    NOT NULL,
		session_id TEXT    NOT NULL,
		reason     TEXT    NOT NULL,
		ip         TEXT    NOT NULL,
		detail     TEXT    NOT NULL
	);
	CREATE INDEX audit_events_time ON audit_events (time, id);
	CREATE INDEX audit_events_user ON audit_events (user_name, time);`,
	Postgres: `CREATE TABLE audit_events (
		id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		time       BIGINT  NOT NULL,
		event      TEXT    NOT NULL,
		user_name  TEXT    NOT NULL,
		session_id TEXT    NOT NULL,
		reason     TEXT    NOT NULL,
		ip         TEXT    NOT NULL,
		detail     TEXT    NOT NULL
	);
	CREATE INDEX audit_events_time ON audit_events (time, id);
	CREATE INDEX audit_events_user ON audit_events (user_name, time);`,
}}

// Options configure a Log. The zero value gives the documented defaults.
type Options struct {
	// Clock tells the time of entries recorded without one. The default is
	// time.Now.
	Clock func() time.Time
	// Logger receives the entries SessionEvent could not write. The
	// default is slog.Default().
	Logger *slog.Logger
}

// withDefaults returns o with its zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Log is the audit log in a sqldb database. It is safe for concurrent use,
// also by several processes on one database.
type Log struct {
	db   *sqldb.DB
	opts Options // with the defaults filled in

	pruneBatch int // rows deleted per statement by Prune
}

// NewLog returns the audit log kept in db, creating or migrating its table
// (audit_events).
func NewLog(ctx context.Context, db *sqldb.DB, opts Options) (*Log, error) {
	l := &Log{db: db, opts: opts.withDefaults(), pruneBatch: 5000}
	if err := db.Migrate(ctx, "audit", migrations); err != nil {
		return nil, err
	}
	return l, nil
}

// Record appends an entry. It needs an Event; a zero Time means now.
// Invalid UTF-8 and NUL bytes are replaced and over-long fields cut, rather
// than losing the entry.
//
// The write is not abandoned when ctx is cancelled, only bounded by
// RecordTimeout: a client that hangs up right after a failed sign-in must
// not erase its trace.
func (l *Log) Record(ctx context.Context, e Entry) error {
	if e.Event == "" {
		return errors.New("audit: entry has no event")
	}
	if e.Time.IsZero() {
		e.Time = l.opts.Clock()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RecordTimeout)
	defer cancel()
	_, err := l.db.ExecContext(ctx, l.db.Rebind(`INSERT INTO audit_events
		(time, event, user_name, session_id, reason, ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		e.Time.UnixNano(), clean(string(e.Event), maxEvent), clean(e.User, maxShort), clean(e.Session, maxShort),
		clean(e.Reason, maxShort), clean(e.IP, maxShort), clean(e.Detail, maxDetail))
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", e.Event, err)
	}
	return nil
}

// clean makes s storable in both dialects (PostgreSQL refuses invalid UTF-8
// and NUL in text) and cuts it to at most max bytes on a character boundary.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= max {
		return s
	}
	const mark = "…"
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// SessionEvent records a session event: EventStarted as SessionStarted,
// EventRenewed as SessionRenewed and EventEnded as SessionEnded with its
// reason, at the event's time, with the session's user and public ID, and
// the address of the request that caused it (or else the one the session
// was created from). It makes *Log a session.Observer. Observers cannot
// fail, so a write that fails is logged instead.
func (l *Log) SessionEvent(ctx context.Context, e session.Event) {
	entry := Entry{
		Time:    e.Time,
		User:    e.Session.UserID,
		Session: e.Session.ID,
		IP:      e.IP,
	}
	if entry.IP == "" {
		entry.IP = e.Session.IP
	}
	switch e.Kind {
	case session.EventStarted:
		entry.Event = SessionStarted
	case session.EventRenewed:
		entry.Event = SessionRenewed
	case session.EventEnded:
		entry.Event = SessionEnded
		entry.Reason = string(e.Reason)
	default:
		entry.Event = Event("session_" + string(e.Kind)) // a kind added later: keep it
	}
	if err := l.Record(ctx, entry); err != nil {
		l.opts.Logger.ErrorContext(ctx, "audit: entry lost", "event", entry.Event, "user", entry.User,
			"session", entry.Session, "reason", entry.Reason, "err", err)
	}
}

var _ session.Observer = (*Log)(nil)

// Filter selects entries for Query. Its zero value selects everything.
type Filter struct {
	// Since, if not zero, keeps entries at or after it.
	Since time.Time
	// Until, if not zero, keeps entries before it.
	Until time.Time
	// User, if not empty, keeps the entries of exactly that user name.
	User string
	// Event, if not empty, keeps the entries of that event.
	Event Event
	// Limit, if positive, keeps only the newest Limit entries.
	Limit int
}

// Query returns the entries that match f, oldest first (like a log file;
// with a Limit, the newest Limit of them, like tail). Times are in UTC.
func (l *Log) Query(ctx context.Context, f Filter) ([]Entry, error) {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time < ?"), append(args, f.Until.UnixNano())
	}
	if f.User != "" {
		where, args = append(where, "user_name = ?"), append(args, f.User)
	}
	if f.Event != "" {
		where, args = append(where, "event = ?"), append(args, string(f.Event))
	}
	q := `SELECT time, event, user_name, session_id, reason, ip, detail FROM audit_events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit > 0 {
		q += " ORDER BY time DESC, id DESC LIMIT ?"
		args = append(args, f.Limit)
	} else {
		q += " ORDER BY time, id"
	}
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("audit: query: %w", err)
	}
	defer rows.Close()
	var entries []Entry
	for rows.Next() {
		var e Entry
		var ns int64
		if err := rows.Scan(&ns, &e.Event, &e.User, &e.Session, &e.Reason, &e.IP, &e.Detail); err != nil {
			return nil, fmt.Errorf("audit: query: %w", err)
		}
		e.Time = time.Unix(0, ns).UTC()
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: query: %w", err)
	}
	if f.Limit > 0 {
		slices.Reverse(entries)
	}
	return entries, nil
}

// Prune deletes the entries older than before and returns how many it
// deleted. It works in batches of a few thousand rows, one statement each,
// so that it never holds SQLite's write lock for long. Retention is the
// operator's choice; nothing prunes by itself.
func (l *Log) Prune(ctx context.Context, before time.Time) (int64, error) {
	q := l.db.Rebind(`DELETE FROM audit_events WHERE id IN (
		SELECT id FROM audit_events WHERE time < ? ORDER BY time, id LIMIT ?)`)
	var total int64
	for {
		res, err := l.db.ExecContext(ctx, q, before.UnixNano(), l.pruneBatch)
		if err != nil {
			return total, fmt.Errorf("audit: prune: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("audit: prune: %w", err)
		}
		total += n
		if n < int64(l.pruneBatch) {
			return total, nil
		}
	}
}
