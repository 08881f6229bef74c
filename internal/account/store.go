package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// migrations are the account tables' schema steps (see sqldb.Migration):
// append only. Times are BIGINT nanoseconds since the Unix epoch, UTC, so
// they round-trip exactly in both dialects.
var migrations = []sqldb.Migration{{
	Name: "users",
	SQL: `CREATE TABLE account_users (
		name                TEXT    NOT NULL PRIMARY KEY,
		role                TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
		password_hash       TEXT    NOT NULL,
		disabled            BOOLEAN NOT NULL DEFAULT FALSE,
		created_at          BIGINT  NOT NULL,
		password_changed_at BIGINT  NOT NULL
	)`,
}}

// Options configure a Store. A zero field takes its documented default.
type Options struct {
	// Params are the argon2id parameters of new hashes. The default (the
	// zero Params) is DefaultParams. Lower ones are for tests only.
	Params Params

	// MaxConcurrentHashes bounds the password hashes computed at once, by
	// this Store and its Authenticators. The default (0) is half the CPUs
	// (at least one), so that a flood of sign-ins, which are all hashing, leaves
	// the other half to the signed-in users (docs/benchmarks.md, the login
	// flood).
	MaxConcurrentHashes int

	// MaxWaitingHashes bounds the callers waiting for a hash slot; the next
	// one fails at once with a ThrottledError of ScopeBusy. The default (0)
	// is 64: about a second of waiting at most, with the default parameters
	// on two cores.
	MaxWaitingHashes int

	// Clock tells the time of creations and password changes, and when a
	// cached user goes stale. The default is time.Now.
	Clock func() time.Time

	// CacheTTL is how long Get may keep a user it read from the database
	// in memory. Whatever the TTL, a change to any user, made by this Store
	// or by another process on the same database (the command line's "user
	// disable", another server), is seen by the next Get: before answering
	// from memory, Get reads a counter that every change bumps (see
	// userCache). Password checks always read the database. The default
	// (0) is one second; CacheOff turns the cache off, so every Get reads
	// the user's row.
	CacheTTL time.Duration

	// Logger receives problems that are not the caller's (a corrupt stored
	// hash, a failed re-hash). The default is slog.Default().
	Logger *slog.Logger

	// Issuer names the service in authenticator apps, beside the user name
	// (BeginTOTP). It may not contain a colon, which the otpauth URI uses
	// to separate the two. The default is "sessionguard".
	Issuer string
}

// CacheOff, as Options.CacheTTL, turns the Store's cache of users off.
const CacheOff time.Duration = -1

// check reports an option out of range.
func (o *Options) check() error {
	switch {
	case o.MaxConcurrentHashes < 0:
		return fmt.Errorf("account: Options.MaxConcurrentHashes must be positive or zero (the default), got %d", o.MaxConcurrentHashes)
	case o.MaxWaitingHashes < 0:
		return fmt.Errorf("account: Options.MaxWaitingHashes must be positive or zero (the default), got %d", o.MaxWaitingHashes)
	case o.CacheTTL < 0 && o.CacheTTL != CacheOff:
		return fmt.Errorf("account: Options.CacheTTL must be positive, zero (the default) or CacheOff, got %v", o.CacheTTL)
	case strings.Contains(o.Issuer, ":"):
		return fmt.Errorf("account: Options.Issuer may not contain a colon, got %q", o.Issuer)
	}
	return nil
}

// withDefaults returns o with its zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.Params == (Params{}) {
		o.Params = DefaultParams
	}
	if o.MaxConcurrentHashes == 0 {
		o.MaxConcurrentHashes = max(1, runtime.NumCPU()/2)
	}
	if o.MaxWaitingHashes == 0 {
		o.MaxWaitingHashes = 64
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Issuer == "" {
		o.Issuer = "sessionguard"
	}
	return o
}

// Store keeps the user accounts in a sqldb database. It is safe for
// concurrent use, including by several processes on one database.
type Store struct {
	db    *sqldb.DB
	opts  Options // with the defaults filled in
	gate  *hashGate
	cache *userCache // nil when turned off

	// dummyHash is verified for unknown and disabled users, so that they
	// cost the same work as real ones.
	dummyHash string
}

// NewStore returns a Store on db, creating or migrating its tables
// (account_users, account_version for its cache, account_setup_tokens,
// account_totp and account_recovery_codes for second factors, and
// account_throttle and account_known_clients for its Authenticators).
func NewStore(ctx context.Context, db *sqldb.DB, opts Options) (*Store, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := opts.Params.Validate(); err != nil {
		return nil, err
	}
	s := &Store{db: db, opts: opts, gate: newHashGate(opts.MaxConcurrentHashes, opts.MaxWaitingHashes)}
	var err error
	// Whether the dummy matches is never asked; it only has to cost what a
	// real hash costs.
	if s.dummyHash, err = HashPassword("dummy", s.opts.Params); err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "account", migrations); err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "account_throttle", throttleMigrations); err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "account_cache", cacheMigrations); err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "account_setup", setupMigrations); err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "account_mfa", mfaMigrations); err != nil {
		return nil, err
	}
	if s.cache, err = newUserCache(ctx, db, opts.CacheTTL, s.opts.Clock); err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	return s, nil
}

// hash computes a password hash through the gate.
func (s *Store) hash(ctx context.Context, password string) (string, error) {
	if err := s.gate.acquire(ctx); err != nil {
		return "", err
	}
	defer s.gate.release()
	return HashPassword(password, s.opts.Params)
}

const userColumns = `name, role, disabled, created_at, password_changed_at, password_hash`

type scanner interface{ Scan(dest ...any) error }

// scanUser reads a row of userColumns.
func scanUser(row scanner) (User, string, error) {
	var u User
	var created, changed int64
	var hash string
	if err := row.Scan(&u.Name, &u.Role, &u.Disabled, &created, &changed, &hash); err != nil {
		return User{}, "", err
	}
	u.CreatedAt = time.Unix(0, created).UTC()
	u.PasswordChangedAt = time.Unix(0, changed).UTC()
	return u, hash, nil
}

// Create adds a user. It returns an error wrapping ErrInvalidName,
// ErrInvalidRole or ErrWeakPassword for input that breaks the rules,
// ErrExists if the name is taken (in any letter case), or a
// ThrottledError or ctx.Err() if no hash slot was free.
func (s *Store) Create(ctx context.Context, name, password string, role Role) error {
	u, hash, err := s.prepare(ctx, name, password, role)
	if err != nil {
		return err
	}
	defer s.cache.forget(u.Name)
	return s.insert(ctx, s.db.DB, u, hash)
}

// CreateFirstAdmin adds an administrator if, and only if, there is no account
// yet; otherwise it returns ErrAccountsExist. The check and the insertion are
// one transaction, so of two concurrent calls one fails. It returns the same
// input errors as Create.
func (s *Store) CreateFirstAdmin(ctx context.Context, name, password string) (err error) {
	u, hash, err := s.prepare(ctx, name, password, RoleAdmin)
	if err != nil {
		return err
	}
	// Deferred before the transaction, so that it runs after the commit.
	defer s.cache.forget(u.Name)
	tx, err := s.db.BeginTx(ctx, nil) // SQLite: BEGIN IMMEDIATE, which serialises writers
	if err != nil {
		return fmt.Errorf("account: create first admin: %w", err)
	}
	defer tx.Rollback()
	if s.db.Dialect == sqldb.Postgres {
		// Under READ COMMITTED two transactions could both count zero
		// users; this lock admits readers but no other writer until commit.
		if _, err := tx.ExecContext(ctx, `LOCK TABLE account_users IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("account: create first admin: %w", err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM account_users`).Scan(&n); err != nil {
		return fmt.Errorf("account: create first admin: %w", err)
	}
	if n > 0 {
		return ErrAccountsExist
	}
	if err := s.insert(ctx, tx, u, hash); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("account: create first admin: %w", err)
	}
	return nil
}

// prepare validates a new user and hashes their password.
func (s *Store) prepare(ctx context.Context, name, password string, role Role) (User, string, error) {
	name, err := NormalizeName(name)
	if err != nil {
		return User{}, "", err
	}
	if !role.Valid() {
		_, err := ParseRole(string(role))
		return User{}, "", err
	}
	if err := CheckPassword(name, password); err != nil {
		return User{}, "", err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return User{}, "", err
	}
	now := s.opts.Clock().UTC()
	return User{Name: name, Role: role, CreatedAt: now, PasswordChangedAt: now}, hash, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) insert(ctx context.Context, db execer, u User, hash string) error {
	_, err := db.ExecContext(ctx, s.db.Rebind(`INSERT INTO account_users
		(name, role, password_hash, disabled, created_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?)`),
		u.Name, string(u.Role), hash, false, u.CreatedAt.UnixNano(), u.PasswordChangedAt.UnixNano())
	switch {
	case sqldb.IsUniqueViolation(err):
		return fmt.Errorf("%w: %s", ErrExists, u.Name)
	case err != nil:
		return fmt.Errorf("account: create %s: %w", u.Name, err)
	}
	return nil
}

// Get returns the user called name (in any letter case), or an error
// wrapping ErrNotFound (also for a name that could not exist). The user may
// come from memory, but never as it was before a change that any process
// had made when Get was called.
func (s *Store) Get(ctx context.Context, name string) (User, error) {
	norm, err := NormalizeName(name)
	if err != nil {
		return User{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	// A cache that could not catch up is neither read nor filled.
	cached := s.cache.catchUp(ctx) == nil
	u, epoch, ok := s.cache.get(norm)
	if ok && cached {
		return u, nil
	}
	u, _, err = s.get(ctx, norm)
	if err == nil && cached {
		s.cache.put(u, epoch)
	}
	return u, err
}

func (s *Store) get(ctx context.Context, name string) (User, string, error) {
	norm, err := NormalizeName(name)
	if err != nil {
		return User{}, "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	u, hash, err := scanUser(s.db.QueryRowContext(ctx,
		s.db.Rebind(`SELECT `+userColumns+` FROM account_users WHERE name = ?`), norm))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return User{}, "", fmt.Errorf("%w: %s", ErrNotFound, norm)
	case err != nil:
		return User{}, "", fmt.Errorf("account: get %s: %w", norm, err)
	}
	return u, hash, nil
}

// List returns every user, disabled ones included, ordered by name.
func (s *Store) List(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM account_users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("account: list: %w", err)
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		u, _, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("account: list: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("account: list: %w", err)
	}
	return users, nil
}

// Count returns the number of users, disabled ones included. A server with
// none offers the setup link.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM account_users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("account: count: %w", err)
	}
	return n, nil
}

// SetPassword replaces the user's password and sets PasswordChangedAt. It
// returns an error wrapping ErrWeakPassword or ErrNotFound, or a
// ThrottledError or ctx.Err() if no hash slot was free. Ending the user's
// other sessions is the caller's part.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	norm, err := NormalizeName(name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err := CheckPassword(norm, password); err != nil {
		return err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return err
	}
	defer s.cache.forget(norm)
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE account_users SET password_hash = ?, password_changed_at = ? WHERE name = ?`),
		hash, s.opts.Clock().UnixNano(), norm)
	return s.updated(res, err, "set password", norm)
}

// SetDisabled disables or re-enables the user. Disabling the last enabled
// administrator returns ErrLastAdmin and changes nothing, so that someone
// can always administer the server; a missing user gives ErrNotFound.
// Ending the user's sessions is the caller's part.
func (s *Store) SetDisabled(ctx context.Context, name string, disabled bool) error {
	norm, err := NormalizeName(name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	defer s.cache.forget(norm)
	if !disabled {
		res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE account_users SET disabled = ? WHERE name = ?`), false, norm)
		return s.updated(res, err, "enable", norm)
	}
	// One statement, so the count and the change agree.
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE account_users SET disabled = ?
		WHERE name = ? AND (role <> 'admin' OR disabled OR EXISTS (
			SELECT 1 FROM account_users other WHERE other.role = 'admin' AND NOT other.disabled AND other.name <> ?))`),
		true, norm, norm)
	if err := s.updated(res, err, "disable", norm); !errors.Is(err, ErrNotFound) {
		return err
	}
	// Nothing changed: the user is missing, or the last admin.
	if _, _, err := s.get(ctx, norm); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s cannot be disabled", ErrLastAdmin, norm)
}

// updated turns the result of an UPDATE of one user into an error.
func (s *Store) updated(res sql.Result, err error, what, name string) error {
	if err != nil {
		return fmt.Errorf("account: %s %s: %w", what, name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("account: %s %s: %w", what, name, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return nil
}

// rehash replaces the hash of a user who just proved their password with one
// made with the Store's parameters, unless the hash changed meanwhile (a
// concurrent password change wins). The password itself has not changed, so
// PasswordChangedAt stays. Failure only delays the upgrade, so it is logged.
func (s *Store) rehash(ctx context.Context, name, old, password string) {
	hash, err := HashPassword(password, s.opts.Params) // the caller holds a gate slot
	if err == nil {
		_, err = s.db.ExecContext(ctx, s.db.Rebind(`UPDATE account_users SET password_hash = ? WHERE name = ? AND password_hash = ?`),
			hash, name, old)
	}
	if err != nil {
		s.opts.Logger.WarnContext(ctx, "account: could not upgrade a password hash", "user", name, "err", err)
	}
}
