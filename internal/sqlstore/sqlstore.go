// Package sqlstore is what the SQL session stores (sqlitestore and pgstore)
// and the server's SQL database (internal/sqldb) share: the columns of a
// session record and how to read them, the encoding of session data, times
// as integer nanoseconds, the errors they return, the SQLite file URI and
// the one migration engine every component's tables go through.
//
// It imports no database driver: a program that uses pgstore does not link
// SQLite, and one that uses sqlitestore does not link pgx. What differs
// between the drivers reaches it through small interfaces (Conn, Tx, Row).
package sqlstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sessionguard/sessionguard/session"
)

// RecordColumns are the columns of session_records that make a
// session.Record, in the order ScanRecord reads them. Both dialects name
// them alike.
const RecordColumns = `id, token_hash, user_id, created_at, authenticated_at, last_activity,
	idle_timeout, absolute_timeout, ip, user_agent, data, expires_at, expires_reason, persistent`

// Row is a *sql.Row, a *sql.Rows, or a pgx.Row.
type Row interface {
	Scan(dest ...any) error
}

// ScanRecord reads the columns of RecordColumns, then any extra columns into
// extra. Times are integer nanoseconds, the token hash, IP and User-Agent
// are read as bytes (so that PostgreSQL's bytea and SQLite's TEXT both
// fit), and data is a JSON object or NULL.
func ScanRecord(row Row, extra ...any) (session.Record, error) {
	return NewRecordScanner(extra...).Scan(row)
}

// RecordScanner reads records row after row through the same scan targets,
// as ScanRecord reads one. A sweep reads hundreds of rows at a time; a new
// set of targets for each would be garbage for the collector, which then
// takes CPU from the requests served meanwhile.
type RecordScanner struct {
	rec                                 session.Record
	hash, data                          []byte
	ip, userAgent                       bytesText
	reason                              string
	created, auth, last, idle, absolute int64
	expires                             int64
	dest                                []any
}

// NewRecordScanner returns a scanner of RecordColumns followed by extra.
func NewRecordScanner(extra ...any) *RecordScanner {
	s := &RecordScanner{}
	s.dest = append(make([]any, 0, 14+len(extra)), &s.rec.ID, &s.hash, &s.rec.UserID, &s.created, &s.auth, &s.last,
		&s.idle, &s.absolute, &s.ip, &s.userAgent, &s.data, &s.expires, &s.reason, &s.rec.Persistent)
	s.dest = append(s.dest, extra...)
	return s
}

// Scan reads the current row of row into a new record.
func (s *RecordScanner) Scan(row Row) (session.Record, error) {
	s.rec = session.Record{}
	s.hash, s.data = s.hash[:0], s.data[:0]
	if err := row.Scan(s.dest...); err != nil {
		return session.Record{}, err
	}
	rec := s.rec
	if len(s.hash) != len(rec.TokenHash) {
		return session.Record{}, fmt.Errorf("record %q has a token hash of %d bytes", rec.ID, len(s.hash))
	}
	copy(rec.TokenHash[:], s.hash)
	rec.CreatedAt, rec.AuthenticatedAt, rec.LastActivity = FromNanos(s.created), FromNanos(s.auth), FromNanos(s.last)
	rec.Policy = session.Policy{IdleTimeout: time.Duration(s.idle), AbsoluteTimeout: time.Duration(s.absolute)}
	rec.IP, rec.UserAgent = string(s.ip), string(s.userAgent)
	rec.Expires = session.Expiry{At: FromNanos(s.expires), Reason: session.EndReason(s.reason)}
	var err error
	if rec.Data, err = DecodeData(s.data); err != nil {
		return session.Record{}, fmt.Errorf("record %q has unreadable data: %w", rec.ID, err)
	}
	return rec, nil
}

// bytesText is the scan target of a column that SQLite keeps as TEXT and
// PostgreSQL as bytea (the IP and the User-Agent). It keeps the string the
// SQLite driver returns as it is, and makes one string of pgx's bytes: a
// []byte target would be a copy of either, made into a string once more.
type bytesText string

// Scan implements sql.Scanner.
func (t *bytesText) Scan(src any) error {
	switch v := src.(type) {
	case string:
		*t = bytesText(v)
	case []byte:
		*t = bytesText(v)
	default:
		return fmt.Errorf("want text or bytes, got %T", src)
	}
	return nil
}

// ScanBytes implements pgx's pgtype.BytesScanner, for bytea.
func (t *bytesText) ScanBytes(b []byte) error {
	*t = bytesText(b)
	return nil
}

// RecordTimes are a record's times as integer nanoseconds, checked to be
// storable.
type RecordTimes struct {
	Created, Authenticated, LastActivity, Expires int64
}

// TimesOf converts rec's times for storing, or explains which one cannot be
// stored.
func TimesOf(rec session.Record) (RecordTimes, error) {
	var t RecordTimes
	var errs [4]error
	t.Created, errs[0] = session.UnixNanos("CreatedAt", rec.CreatedAt)
	t.Authenticated, errs[1] = session.UnixNanos("AuthenticatedAt", rec.AuthenticatedAt)
	t.LastActivity, errs[2] = session.UnixNanos("LastActivity", rec.LastActivity)
	t.Expires, errs[3] = session.UnixNanos("Expires.At", rec.Expires.At)
	return t, errors.Join(errs[:]...)
}

// FromNanos is the inverse of session.UnixNanos, in UTC.
func FromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// KeepUntil is at + keep, or session.MaxStoreTime when that would pass it:
// "keep for ever" must not wrap around.
func KeepUntil(at time.Time, keep time.Duration) time.Time {
	if session.MaxStoreTime.Sub(at) < keep {
		return session.MaxStoreTime
	}
	return at.Add(keep)
}

// ExpiredEnding is how EndExpired ends rec: with its stored expiry, kept
// keep longer.
func ExpiredEnding(rec session.Record, keep time.Duration) session.Ending {
	return session.Ending{Reason: rec.Expires.Reason, At: rec.Expires.At, KeepUntil: KeepUntil(rec.Expires.At, keep)}
}

// EncodeData returns data as the text of a JSON object, or nil (SQL NULL)
// when it is empty, so that an empty map and a nil map are stored alike and
// read back alike, as nil. encoding/json writes a map's keys sorted, so
// equal maps encode to equal text: SaveData compares the stored text with
// the encoding of the data the caller read. It is a string, not a []byte,
// because pgx sends a []byte of unknown type as bytea, which jsonb does not
// parse.
//
// It refuses what would not round-trip: encoding/json would replace invalid
// UTF-8 silently, and PostgreSQL's jsonb refuses NUL characters.
func EncodeData(data map[string]string) (any, error) {
	if len(data) == 0 {
		return nil, nil
	}
	for k, v := range data {
		for _, s := range [2]string{k, v} {
			if !utf8.ValidString(s) {
				return nil, fmt.Errorf("session data key %q: keys and values must be valid UTF-8", k)
			}
			if strings.IndexByte(s, 0) >= 0 {
				return nil, fmt.Errorf("session data key %q: keys and values cannot hold NUL characters", k)
			}
		}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding session data: %w", err)
	}
	return string(b), nil
}

// DecodeData is the inverse of EncodeData: nil (NULL) and an empty object
// read as a nil map.
func DecodeData(b []byte) (map[string]string, error) {
	if b == nil {
		return nil, nil
	}
	var data map[string]string
	if err := json.Unmarshal(b, &data); err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, nil
	}
	return data, nil
}

// Wrap prefixes a database error with the package (as "sqlitestore") and the
// operation; nil stays nil, and session.ErrNotFound and session.ErrStale pass
// unchanged, since callers compare them with errors.Is and need no context.
func Wrap(pkg, op string, err error) error {
	if err == nil || errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrStale) {
		return err
	}
	return fmt.Errorf("%s: %s: %w", pkg, op, err)
}

// SQLite's extended result codes for a violated PRIMARY KEY and UNIQUE
// constraint (SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE).
const (
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// IsUniqueViolation reports whether err is a database's refusal to insert or
// update a row because it would duplicate a UNIQUE or PRIMARY KEY value, in
// either dialect. It recognises the drivers' errors by their methods
// (modernc.org/sqlite's Code, pgx's SQLState), so that this package links
// neither driver.
func IsUniqueViolation(err error) bool {
	if pe, ok := errors.AsType[interface {
		error
		SQLState() string
	}](err); ok {
		return pe.SQLState() == "23505" // unique_violation
	}
	if se, ok := errors.AsType[interface {
		error
		Code() int
	}](err); ok {
		c := se.Code()
		return c == sqliteConstraintPrimaryKey || c == sqliteConstraintUnique
	}
	return false
}
