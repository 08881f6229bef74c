package drafts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// migrations are the drafts table's schema steps (see sqldb.Migration):
// append only. Times are BIGINT nanoseconds since the Unix epoch, UTC, as in
// the other components; fields is the JSON object of the form's values, kept
// as text so both dialects store it alike.
var migrations = []sqldb.Migration{{
	Name: "drafts",
	SQL: `CREATE TABLE drafts (
		user_name  TEXT   NOT NULL,
		path       TEXT   NOT NULL,
		form       TEXT   NOT NULL,
		fields     TEXT   NOT NULL,
		saved_at   BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		PRIMARY KEY (user_name, path, form)
	);
	CREATE INDEX drafts_expires_at ON drafts (expires_at)`,
}}

// Limits on what a draft may be. A form's values are text a person typed, so
// they are generous for that and small for anything else.
const (
	// MaxPathBytes bounds a draft's page path.
	MaxPathBytes = 2048
	// MaxFormBytes bounds a draft's form identifier.
	MaxFormBytes = 256
	// MaxFieldNameBytes bounds the name of one field.
	MaxFieldNameBytes = 256

	// maxUserBytes bounds a user ID; account names are far shorter.
	maxUserBytes = 256
)

// Errors a Store returns for drafts it refuses. Test for them with errors.Is;
// the returned errors wrap them with the detail.
var (
	// ErrInvalid: the draft lacks a user, path or form, or one of them is
	// malformed (too long, not valid UTF-8, holds a NUL byte, a path that
	// does not start with "/").
	ErrInvalid = errors.New("drafts: invalid draft")

	// ErrTooLarge: the draft's fields, encoded as JSON, exceed
	// Options.MaxBytes.
	ErrTooLarge = errors.New("drafts: draft too large")

	// ErrTooMany: the user already has Options.MaxPerUser live drafts, and
	// this one would be a new one. Saving over an existing draft (same
	// path and form) is always allowed.
	ErrTooMany = errors.New("drafts: too many drafts")
)

// Draft is the unsaved content of one form on one page.
type Draft struct {
	// User is whose draft it is: the session's user ID.
	User string
	// Path is the page the form is on, as in URL.Path ("/account").
	Path string
	// Form identifies the form on the page (its id attribute).
	Form string
	// Fields maps each field's name to its value. Save drops the fields
	// that hold secrets (see Sensitive) and stores the others.
	Fields map[string]string
	// Marks says what the page knows of a field, by name, for Save to
	// drop sensitive ones (see Sensitive): "password" for an input of
	// type password, its autocomplete tokens, "sensitive" for a field
	// marked data-sessionguard-sensitive. It is never stored; Load leaves
	// it nil.
	Marks map[string]string
	// SavedAt is when the draft was last saved; set by Save.
	SavedAt time.Time
	// ExpiresAt is when the draft is forgotten; set by Save.
	ExpiresAt time.Time
}

// Options configure a Store. A zero field takes its documented default;
// a negative one is an error.
type Options struct {
	// TTL is how long a draft is kept after it was last saved. The default
	// (0) is 24 hours, the "such as one day" of WCAG technique G105.
	TTL time.Duration

	// MaxBytes bounds a draft's fields, measured as their JSON encoding.
	// The default (0) is 64 KiB.
	MaxBytes int

	// MaxPerUser bounds how many live drafts one user may have. The
	// default (0) is 20.
	MaxPerUser int

	// Clock tells the time of saves and expiries. The default is time.Now.
	Clock func() time.Time

	// Logger receives the errors Handler hides from clients (a failing
	// database). The default is slog.Default().
	Logger *slog.Logger
}

// withDefaults returns o with its zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.TTL == 0 {
		o.TTL = 24 * time.Hour
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 64 << 10
	}
	if o.MaxPerUser == 0 {
		o.MaxPerUser = 20
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Store keeps drafts in a sqldb database. It is safe for concurrent use,
// including by several processes on one database.
type Store struct {
	db   *sqldb.DB
	opts Options // with the defaults filled in
}

// NewStore returns a Store on db, creating or migrating its table (drafts).
// It returns an error if an option is negative.
func NewStore(ctx context.Context, db *sqldb.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("drafts: NewStore needs a database")
	}
	if opts.TTL < 0 || opts.MaxBytes < 0 || opts.MaxPerUser < 0 {
		return nil, errors.New("drafts: Options.TTL, MaxBytes and MaxPerUser must not be negative")
	}
	s := &Store{db: db, opts: opts.withDefaults()}
	if err := db.Migrate(ctx, "drafts", migrations); err != nil {
		return nil, err
	}
	return s, nil
}

// MaxBytes is the largest draft, in bytes of its fields' JSON, that Save
// accepts.
func (s *Store) MaxBytes() int { return s.opts.MaxBytes }

// checkKey checks the strings that identify a draft. The database keeps them
// as TEXT, which in PostgreSQL cannot hold a NUL byte.
func checkKey(user, path, form string) error {
	check := func(what, v string, limit int) error {
		switch {
		case v == "":
			return fmt.Errorf("%w: no %s", ErrInvalid, what)
		case len(v) > limit:
			return fmt.Errorf("%w: the %s is longer than %d bytes", ErrInvalid, what, limit)
		case !utf8.ValidString(v) || strings.ContainsRune(v, 0):
			return fmt.Errorf("%w: the %s is not valid text", ErrInvalid, what)
		}
		return nil
	}
	if err := check("user", user, maxUserBytes); err != nil {
		return err
	}
	if err := check("path", path, MaxPathBytes); err != nil {
		return err
	}
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("%w: the path %q does not start with /", ErrInvalid, path)
	}
	return check("form", form, MaxFormBytes)
}

// Save stores d under (d.User, d.Path, d.Form), replacing any draft there,
// and returns it as stored: SavedAt and ExpiresAt set, without Marks, and
// without the fields that hold secrets (Sensitive of their name and mark),
// which are never written. It returns an error wrapping
// ErrInvalid, ErrTooLarge or ErrTooMany for a draft it refuses. Expired
// drafts of every user are deleted on the way, so the table never grows past
// what the live drafts need.
func (s *Store) Save(ctx context.Context, d Draft) (Draft, error) {
	if err := checkKey(d.User, d.Path, d.Form); err != nil {
		return Draft{}, err
	}
	for name := range d.Fields {
		if name == "" || len(name) > MaxFieldNameBytes || !utf8.ValidString(name) {
			return Draft{}, fmt.Errorf("%w: a field name is empty, longer than %d bytes or not valid text", ErrInvalid, MaxFieldNameBytes)
		}
	}
	kept := make(map[string]string, len(d.Fields))
	for name, value := range d.Fields {
		if !Sensitive(name, d.Marks[name]) {
			kept[name] = value
		}
	}
	d.Fields, d.Marks = kept, nil
	fields, err := json.Marshal(d.Fields)
	if err != nil {
		return Draft{}, fmt.Errorf("drafts: encoding fields: %w", err)
	}
	if len(fields) > s.opts.MaxBytes {
		return Draft{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(fields), s.opts.MaxBytes)
	}
	now := s.opts.Clock()
	d.SavedAt, d.ExpiresAt = now.UTC(), now.Add(s.opts.TTL).UTC()

	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE on SQLite: saves queue
	if err != nil {
		return Draft{}, fmt.Errorf("drafts: save: %w", err)
	}
	defer tx.Rollback()
	if s.db.Dialect == sqldb.Postgres {
		// Two saves of one user in parallel could both count one draft
		// below the limit and both insert; a lock per user orders them.
		// It is released at commit or rollback.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('drafts:' || $1::text))`, d.User); err != nil {
			return Draft{}, fmt.Errorf("drafts: save: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM drafts WHERE expires_at <= ?`), now.UnixNano()); err != nil {
		return Draft{}, fmt.Errorf("drafts: save: purge: %w", err)
	}
	var others int
	if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT count(*) FROM drafts
		WHERE user_name = ? AND NOT (path = ? AND form = ?)`), d.User, d.Path, d.Form).Scan(&others); err != nil {
		return Draft{}, fmt.Errorf("drafts: save: %w", err)
	}
	if others >= s.opts.MaxPerUser {
		return Draft{}, fmt.Errorf("%w: the user has %d, the limit is %d", ErrTooMany, others, s.opts.MaxPerUser)
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO drafts (user_name, path, form, fields, saved_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_name, path, form) DO UPDATE
		SET fields = excluded.fields, saved_at = excluded.saved_at, expires_at = excluded.expires_at`),
		d.User, d.Path, d.Form, string(fields), now.UnixNano(), now.Add(s.opts.TTL).UnixNano()); err != nil {
		return Draft{}, fmt.Errorf("drafts: save: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Draft{}, fmt.Errorf("drafts: save: %w", err)
	}
	return d, nil
}

// Load returns user's live drafts of the page at path, ordered by form, or
// none. It returns an error wrapping ErrInvalid for an empty or malformed
// user or path.
func (s *Store) Load(ctx context.Context, user, path string) ([]Draft, error) {
	if err := checkKey(user, path, "-"); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT form, fields, saved_at, expires_at FROM drafts
		WHERE user_name = ? AND path = ? AND expires_at > ? ORDER BY form`), user, path, s.opts.Clock().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("drafts: load: %w", err)
	}
	defer rows.Close()
	var list []Draft
	for rows.Next() {
		d := Draft{User: user, Path: path}
		var fields string
		var saved, expires int64
		if err := rows.Scan(&d.Form, &fields, &saved, &expires); err != nil {
			return nil, fmt.Errorf("drafts: load: %w", err)
		}
		if err := json.Unmarshal([]byte(fields), &d.Fields); err != nil {
			return nil, fmt.Errorf("drafts: load: the stored fields of %s on %s are corrupt: %w", d.Form, path, err)
		}
		d.SavedAt, d.ExpiresAt = time.Unix(0, saved).UTC(), time.Unix(0, expires).UTC()
		list = append(list, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("drafts: load: %w", err)
	}
	return list, nil
}

// Delete removes user's draft of form on the page at path. If there is no
// such draft, Delete is a no-op and returns nil. It returns an error
// wrapping ErrInvalid for an empty or malformed key.
func (s *Store) Delete(ctx context.Context, user, path, form string) error {
	if err := checkKey(user, path, form); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM drafts WHERE user_name = ? AND path = ? AND form = ?`),
		user, path, form); err != nil {
		return fmt.Errorf("drafts: delete: %w", err)
	}
	return nil
}

// Purge deletes every expired draft and returns how many it deleted. Save
// purges too, so calling Purge is needed only to forget expired drafts of
// a server where nobody saves any more.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM drafts WHERE expires_at <= ?`), s.opts.Clock().UnixNano())
	if err != nil {
		return 0, fmt.Errorf("drafts: purge: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("drafts: purge: %w", err)
	}
	return n, nil
}
