package passkey

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// migrations are the passkey tables' schema steps (see sqldb.Migration):
// append only. Times are BIGINT nanoseconds since the Unix epoch, UTC.
//
// A user's handle (the WebAuthn user.id, which authenticators store with a
// discoverable credential and hand back at sign-in) is random rather than
// the user name, so that an authenticator holds nothing that names the
// account. The tables do not reference account_users: the package stays
// usable without the account tables, and the caller removes a deleted
// user's passkeys with RemoveAll.
var migrations = []sqldb.Migration{{
	Name: "users, credentials and used challenges",
	SQLite: `CREATE TABLE passkey_users (
		user_name TEXT NOT NULL PRIMARY KEY,
		handle    BLOB NOT NULL UNIQUE
	);
	CREATE TABLE passkey_credentials (
		id                 BLOB    NOT NULL PRIMARY KEY,
		user_name          TEXT    NOT NULL,
		name               TEXT    NOT NULL,
		public_key         BLOB    NOT NULL,
		attestation_format TEXT    NOT NULL,
		sign_count         BIGINT  NOT NULL,
		user_verified      BOOLEAN NOT NULL,
		backup_eligible    BOOLEAN NOT NULL,
		backup_state       BOOLEAN NOT NULL,
		aaguid             BLOB    NOT NULL,
		transports         TEXT    NOT NULL,
		created_at         BIGINT  NOT NULL,
		last_used_at       BIGINT  NOT NULL
	);
	CREATE INDEX passkey_credentials_user ON passkey_credentials (user_name);
	CREATE TABLE passkey_used_challenges (
		challenge  TEXT   NOT NULL PRIMARY KEY,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX passkey_used_challenges_expires ON passkey_used_challenges (expires_at);`,
	Postgres: `CREATE TABLE passkey_users (
		user_name TEXT  NOT NULL PRIMARY KEY,
		handle    BYTEA NOT NULL UNIQUE
	);
	CREATE TABLE passkey_credentials (
		id                 BYTEA   NOT NULL PRIMARY KEY,
		user_name          TEXT    NOT NULL,
		name               TEXT    NOT NULL,
		public_key         BYTEA   NOT NULL,
		attestation_format TEXT    NOT NULL,
		sign_count         BIGINT  NOT NULL,
		user_verified      BOOLEAN NOT NULL,
		backup_eligible    BOOLEAN NOT NULL,
		backup_state       BOOLEAN NOT NULL,
		aaguid             BYTEA   NOT NULL,
		transports         TEXT    NOT NULL,
		created_at         BIGINT  NOT NULL,
		last_used_at       BIGINT  NOT NULL
	);
	CREATE INDEX passkey_credentials_user ON passkey_credentials (user_name);
	CREATE TABLE passkey_used_challenges (
		challenge  TEXT   NOT NULL PRIMARY KEY,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX passkey_used_challenges_expires ON passkey_used_challenges (expires_at);`,
}}

// Errors callers test with errors.Is.
var (
	// ErrNotFound: the user has no passkey with that ID.
	ErrNotFound = errors.New("passkey: no such passkey")

	// ErrInvalidName: a passkey's name is too long or holds control
	// characters.
	ErrInvalidName = errors.New("passkey: a passkey's name must be at most 64 printable characters")

	// ErrNoPasskeys: a second-factor sign-in was asked of a user who has
	// no passkey.
	ErrNoPasskeys = errors.New("passkey: the user has no passkey")

	// ErrBadState: the ceremony state is malformed, of another kind of
	// ceremony or another user, or was already used.
	ErrBadState = errors.New("passkey: invalid or already used ceremony state")

	// ErrStateExpired: the ceremony took longer than Options.StateTTL.
	ErrStateExpired = errors.New("passkey: the ceremony took too long, start again")

	// ErrRejected: the browser's answer did not verify (wrong origin or
	// challenge, bad signature, unknown or removed passkey, user not
	// verified where required...). The wrapped text says why, for logs.
	ErrRejected = errors.New("passkey: the passkey's answer was refused")

	// ErrCloned: the passkey's signature counter went backwards although
	// it is not a synced (backup eligible) passkey, so a copy of its key
	// may be in use elsewhere. The sign-in is refused; the passkey stays,
	// for the user or an administrator to remove.
	ErrCloned = errors.New("passkey: the passkey's signature counter went backwards: it may have been cloned")

	// ErrCeremoniesOff: the Store was made without a relying party (the
	// zero Config), so it keeps passkeys but runs no ceremony.
	ErrCeremoniesOff = errors.New("passkey: passkeys cannot be used on this server: it has no relying party (an https address or localhost)")
)

// MaxNameLength is the longest name, in characters, a passkey may have.
const MaxNameLength = 64

// DefaultName is the name of a passkey registered without one.
const DefaultName = "Passkey"

// Options configure a Store. A zero field takes its documented default.
type Options struct {
	// Clock tells the time of registrations and uses, and when a ceremony
	// state expires. The default is time.Now.
	Clock func() time.Time

	// StateTTL is how long a ceremony state from a Begin call stays valid
	// for its Finish call. The default (0) is 5 minutes: time to find a
	// security key and type its PIN.
	StateTTL time.Duration
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.StateTTL == 0 {
		o.StateTTL = 5 * time.Minute
	}
	return o
}

// Credential is a registered passkey, as shown to its user.
type Credential struct {
	// ID is the credential ID, unpadded base64url as in the browser's
	// PublicKeyCredential.id; Rename and Remove take it.
	ID   string
	User string
	Name string

	// AAGUID identifies the authenticator's model (all zeros when the
	// authenticator keeps it private, as many passkey providers do).
	AAGUID string

	// Transports are how the browser reached the authenticator at
	// registration ("internal", "usb", "hybrid"...).
	Transports []string

	SignCount uint32

	// UserVerified tells whether the authenticator verified the user (PIN
	// or biometric) at registration.
	UserVerified bool

	// BackupEligible tells whether the passkey may be synced to other
	// devices, BackupState whether it was at its last use.
	BackupEligible, BackupState bool

	CreatedAt time.Time
	// LastUsedAt is zero until the passkey first signs in.
	LastUsedAt time.Time
}

// Store keeps passkeys in a sqldb database and runs the ceremonies. It is
// safe for concurrent use, including by several processes on one database.
type Store struct {
	db   *sqldb.DB
	opts Options
	cfg  Config
	wa   *webauthn.WebAuthn
}

// NewStore returns a Store for the relying party cfg on db, creating or
// migrating its tables (passkey_users, passkey_credentials and
// passkey_used_challenges).
//
// With the zero Config the Store runs no ceremony (they return
// ErrCeremoniesOff) but still lists, counts and removes passkeys: for a
// server at an address where browsers offer no passkeys, which must still
// know that a user has one rather than sign them in with a password alone,
// and for the command line's reset.
func NewStore(ctx context.Context, db *sqldb.DB, cfg Config, opts Options) (*Store, error) {
	if opts.StateTTL < 0 {
		return nil, fmt.Errorf("passkey: Options.StateTTL must be positive or zero (the default), got %v", opts.StateTTL)
	}
	if cfg.RPID == "" && cfg.RPDisplayName == "" && len(cfg.Origins) == 0 {
		if err := db.Migrate(ctx, "passkey", migrations); err != nil {
			return nil, err
		}
		return &Store{db: db, opts: opts.withDefaults()}, nil
	}
	cfg = cfg.withDefaults()
	if len(cfg.Origins) == 0 {
		return nil, errors.New("passkey: Config.Origins is empty: name the origin of the server's pages")
	}
	if err := protocol.ValidateRPID(cfg.RPID); err != nil {
		return nil, fmt.Errorf("passkey: Config.RPID %q: %w", cfg.RPID, err)
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: cfg.RPDisplayName,
		RPOrigins:     cfg.Origins,
		// Passkeys attest nothing useful to us; "none" spares the user a
		// privacy prompt.
		AttestationPreference: protocol.PreferNoAttestation,
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	if err := db.Migrate(ctx, "passkey", migrations); err != nil {
		return nil, err
	}
	return &Store{db: db, opts: opts.withDefaults(), cfg: cfg, wa: wa}, nil
}

// Config returns the relying party the Store serves, defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// CeremoniesOn reports whether the Store runs ceremonies: whether it was
// made with a relying party.
func (s *Store) CeremoniesOn() bool { return s.wa != nil }

const credentialColumns = `id, user_name, name, public_key, attestation_format, sign_count,
	user_verified, backup_eligible, backup_state, aaguid, transports, created_at, last_used_at`

// record is a stored credential: what the user sees and what verification
// needs.
type record struct {
	Credential
	rawID, publicKey, aaguid []byte
	attestationFormat        string
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(row scanner) (record, error) {
	var r record
	var signCount, created, used int64
	var transports string
	if err := row.Scan(&r.rawID, &r.User, &r.Name, &r.publicKey, &r.attestationFormat, &signCount,
		&r.UserVerified, &r.BackupEligible, &r.BackupState, &r.aaguid, &transports, &created, &used); err != nil {
		return record{}, err
	}
	r.ID = base64.RawURLEncoding.EncodeToString(r.rawID)
	r.SignCount = uint32(signCount)
	if id, err := uuid.FromBytes(r.aaguid); err == nil {
		r.AAGUID = id.String()
	}
	if transports != "" {
		r.Transports = strings.Split(transports, ",")
	}
	r.CreatedAt = time.Unix(0, created).UTC()
	if used != 0 {
		r.LastUsedAt = time.Unix(0, used).UTC()
	}
	return r, nil
}

// webauthn returns the record as the library's credential.
func (r record) webauthn() webauthn.Credential {
	flags := protocol.FlagUserPresent
	if r.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if r.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if r.BackupState {
		flags |= protocol.FlagBackupState
	}
	transports := make([]protocol.AuthenticatorTransport, len(r.Transports))
	for i, t := range r.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID:                r.rawID,
		PublicKey:         r.publicKey,
		AttestationFormat: r.attestationFormat,
		Transport:         transports,
		Flags:             webauthn.NewCredentialFlags(flags),
		Authenticator:     webauthn.Authenticator{AAGUID: r.aaguid, SignCount: r.SignCount},
	}
}

func (s *Store) records(ctx context.Context, user string) ([]record, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+credentialColumns+`
		FROM passkey_credentials WHERE user_name = ? ORDER BY created_at, id`), user)
	if err != nil {
		return nil, fmt.Errorf("passkey: listing %s's passkeys: %w", user, err)
	}
	defer rows.Close()
	var out []record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("passkey: listing %s's passkeys: %w", user, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("passkey: listing %s's passkeys: %w", user, err)
	}
	return out, nil
}

// List returns user's passkeys, oldest first (none: an empty slice).
func (s *Store) List(ctx context.Context, user string) ([]Credential, error) {
	recs, err := s.records(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]Credential, len(recs))
	for i, r := range recs {
		out[i] = r.Credential
	}
	return out, nil
}

// Count returns how many passkeys user has.
func (s *Store) Count(ctx context.Context, user string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT count(*) FROM passkey_credentials WHERE user_name = ?`), user).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("passkey: counting %s's passkeys: %w", user, err)
	}
	return n, nil
}

// Rename renames user's passkey id (as in Credential.ID). It returns an
// error wrapping ErrInvalidName for a bad name (an empty one becomes
// DefaultName), or ErrNotFound if user has no such passkey.
func (s *Store) Rename(ctx context.Context, user, id, name string) error {
	name, err := cleanName(name)
	if err != nil {
		return err
	}
	rawID, err := decodeID(id)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE passkey_credentials SET name = ? WHERE id = ? AND user_name = ?`), name, rawID, user)
	return affectedOne(res, err, "renaming", user)
}

// Remove removes user's passkey id (as in Credential.ID); it signs in no
// more, even in a ceremony already begun. It returns ErrNotFound if user has
// no such passkey.
func (s *Store) Remove(ctx context.Context, user, id string) error {
	rawID, err := decodeID(id)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM passkey_credentials WHERE id = ? AND user_name = ?`), rawID, user)
	return affectedOne(res, err, "removing", user)
}

// RemoveAll removes all of user's passkeys, and their user handle, so that
// a passkey left on an authenticator is not even recognised as theirs. It
// returns how many passkeys it removed; a user with none is no error.
func (s *Store) RemoveAll(ctx context.Context, user string) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("passkey: removing %s's passkeys: %w", user, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM passkey_credentials WHERE user_name = ?`), user)
	if err != nil {
		return 0, fmt.Errorf("passkey: removing %s's passkeys: %w", user, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("passkey: removing %s's passkeys: %w", user, err)
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM passkey_users WHERE user_name = ?`), user); err != nil {
		return 0, fmt.Errorf("passkey: removing %s's passkeys: %w", user, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("passkey: removing %s's passkeys: %w", user, err)
	}
	return int(n), nil
}

func affectedOne(res sql.Result, err error, doing, user string) error {
	if err != nil {
		return fmt.Errorf("passkey: %s %s's passkey: %w", doing, user, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("passkey: %s %s's passkey: %w", doing, user, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// decodeID turns a Credential.ID back into bytes; a malformed one names no
// passkey.
func decodeID(id string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) == 0 {
		return nil, ErrNotFound
	}
	return raw, nil
}

// cleanName trims a name typed by the user and checks it.
func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return DefaultName, nil
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLength ||
		strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return "", ErrInvalidName
	}
	return name, nil
}

// handle returns user's WebAuthn user handle, creating it if create is set
// (nil if they have none and create is not set).
func (s *Store) handle(ctx context.Context, user string, create bool) ([]byte, error) {
	if create {
		h := make([]byte, 32)
		rand.Read(h)
		// Concurrent first registrations agree on whichever handle was
		// inserted first.
		if _, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO passkey_users (user_name, handle) VALUES (?, ?)
			ON CONFLICT (user_name) DO NOTHING`), user, h); err != nil {
			return nil, fmt.Errorf("passkey: user handle of %s: %w", user, err)
		}
	}
	var h []byte
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT handle FROM passkey_users WHERE user_name = ?`), user).Scan(&h)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("passkey: user handle of %s: %w", user, err)
	}
	return h, nil
}

// userByHandle returns the user whose handle is h ("" if none).
func (s *Store) userByHandle(ctx context.Context, h []byte) (string, error) {
	var user string
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT user_name FROM passkey_users WHERE handle = ?`), h).Scan(&user)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("passkey: finding the user of a passkey: %w", err)
	}
	return user, nil
}

// insert stores a newly registered credential.
func (s *Store) insert(ctx context.Context, user, name string, c *webauthn.Credential, now time.Time) (Credential, error) {
	transports := make([]string, len(c.Transport))
	for i, t := range c.Transport {
		transports[i] = string(t)
	}
	aaguid := c.Authenticator.AAGUID
	if len(aaguid) != 16 {
		aaguid = make([]byte, 16)
	}
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO passkey_credentials (`+credentialColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`),
		c.ID, user, name, c.PublicKey, c.AttestationFormat, int64(c.Authenticator.SignCount),
		c.Flags.UserVerified, c.Flags.BackupEligible, c.Flags.BackupState, aaguid,
		strings.Join(transports, ","), now.UnixNano())
	if sqldb.IsUniqueViolation(err) {
		// The same authenticator, registered again in spite of the
		// exclusion list (by this user or, with a forged answer, another).
		return Credential{}, fmt.Errorf("%w: this passkey is already registered", ErrRejected)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("passkey: saving %s's passkey: %w", user, err)
	}
	row := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+credentialColumns+` FROM passkey_credentials WHERE id = ?`), c.ID)
	r, err := scanRecord(row)
	if err != nil {
		return Credential{}, fmt.Errorf("passkey: saving %s's passkey: %w", user, err)
	}
	return r.Credential, nil
}

// recordUse stores the outcome of a verified sign-in with credential id of
// user: its new signature counter, backup state and time of use. For a
// passkey that is not backup eligible, the counter must have grown (or be
// zero, for authenticators that keep none, both before and now), checked
// in the UPDATE itself so that two processes cannot both accept the same
// count; otherwise it returns ErrCloned. A synced passkey's counter is not
// reliable across its copies, so it only ever moves forward. It returns
// ErrRejected if the passkey was removed meanwhile.
func (s *Store) recordUse(ctx context.Context, user string, id []byte, backupEligible, backupState bool, count uint32, now time.Time) error {
	var res sql.Result
	var err error
	if backupEligible {
		res, err = s.db.ExecContext(ctx, s.db.Rebind(`UPDATE passkey_credentials
			SET sign_count = CASE WHEN sign_count < ? THEN ? ELSE sign_count END, backup_state = ?, last_used_at = ?
			WHERE id = ? AND user_name = ?`),
			int64(count), int64(count), backupState, now.UnixNano(), id, user)
	} else {
		res, err = s.db.ExecContext(ctx, s.db.Rebind(`UPDATE passkey_credentials
			SET sign_count = ?, backup_state = ?, last_used_at = ?
			WHERE id = ? AND user_name = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`),
			int64(count), backupState, now.UnixNano(), id, user, int64(count), int64(count))
	}
	if err != nil {
		return fmt.Errorf("passkey: recording the use of %s's passkey: %w", user, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("passkey: recording the use of %s's passkey: %w", user, err)
	}
	if n == 1 {
		return nil
	}
	var stored int64
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT sign_count FROM passkey_credentials WHERE id = ? AND user_name = ?`), id, user).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: the passkey was removed", ErrRejected)
	case err != nil:
		return fmt.Errorf("passkey: recording the use of %s's passkey: %w", user, err)
	}
	return fmt.Errorf("%w (%s's passkey %s: counter %d, stored %d)", ErrCloned, user, base64.RawURLEncoding.EncodeToString(id), count, stored)
}

// useChallenge marks a ceremony's challenge used, once across every process
// on the database: a second Finish with the same state is refused. Expired
// marks are swept on the way, as no state that old can be accepted anyway.
func (s *Store) useChallenge(ctx context.Context, challenge string, expires, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM passkey_used_challenges WHERE expires_at < ?`), now.UnixNano()); err != nil {
		return fmt.Errorf("passkey: sweeping used challenges: %w", err)
	}
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO passkey_used_challenges (challenge, expires_at) VALUES (?, ?)`), challenge, expires.UnixNano())
	if sqldb.IsUniqueViolation(err) {
		return ErrBadState
	}
	if err != nil {
		return fmt.Errorf("passkey: marking the challenge used: %w", err)
	}
	return nil
}
