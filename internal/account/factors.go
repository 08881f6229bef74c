package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// mfaMigrations are the steps of the "account_mfa" component: second
// factors other than passkeys (which package passkey keeps).
//
// account_totp holds at most one row per user: the confirmed secret, if
// any, with the last time step a code was accepted for (codes at or before
// it are refused, so each is accepted once), and the secret of an enrolment
// not yet confirmed, if any. Keeping both lets a user move to a new
// authenticator app without losing the old one until the new one works.
//
// account_recovery_codes holds the SHA-256 of each unused recovery code;
// using a code deletes its row.
var mfaMigrations = []sqldb.Migration{{
	Name: "totp and recovery codes",
	SQL: `CREATE TABLE account_totp (
		name           TEXT   NOT NULL PRIMARY KEY REFERENCES account_users (name) ON DELETE CASCADE,
		secret         TEXT,
		confirmed_at   BIGINT NOT NULL DEFAULT 0,
		last_step      BIGINT NOT NULL DEFAULT 0,
		pending_secret TEXT,
		pending_since  BIGINT NOT NULL DEFAULT 0
	);
	CREATE TABLE account_recovery_codes (
		name       TEXT   NOT NULL REFERENCES account_users (name) ON DELETE CASCADE,
		code_hash  TEXT   NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (name, code_hash)
	);`,
}}

// Errors of second factors. Test for them with errors.Is: they may be
// returned wrapped, with details for the log.
var (
	// ErrWrongCode: the authenticator or recovery code is wrong, malformed,
	// expired or used already, or the user has no such factor. One error
	// for all, so that the answer tells a guesser nothing.
	ErrWrongCode = errors.New("account: wrong or expired code")
	// ErrNoTOTPEnrolment: ConfirmTOTP was called with no enrolment begun
	// (or after it was confirmed, removed or reset).
	ErrNoTOTPEnrolment = errors.New("account: no authenticator app enrolment in progress")
	// ErrNoTOTP: RemoveTOTP was called for a user with no confirmed
	// authenticator app.
	ErrNoTOTP = errors.New("account: no authenticator app is set up")
)

// Factors are the second factors a user has in this package; passkeys are
// counted by package passkey.
type Factors struct {
	// TOTP is whether the user has a confirmed authenticator app. An
	// enrolment not yet confirmed does not count.
	TOTP bool
	// TOTPSince is when the authenticator app was confirmed, in UTC; zero
	// when TOTP is false.
	TOTPSince time.Time
	// RecoveryCodesLeft is the number of unused recovery codes.
	RecoveryCodesLeft int
}

// Factors returns the user's second factors. A user who does not exist has
// none; a name that could not exist gives ErrNotFound.
func (s *Store) Factors(ctx context.Context, user string) (Factors, error) {
	norm, err := NormalizeName(user)
	if err != nil {
		return Factors{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var confirmed sql.NullInt64
	var f Factors
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT
		(SELECT confirmed_at FROM account_totp WHERE name = ? AND secret IS NOT NULL),
		(SELECT count(*) FROM account_recovery_codes WHERE name = ?)`), norm, norm).Scan(&confirmed, &f.RecoveryCodesLeft)
	if err != nil {
		return Factors{}, fmt.Errorf("account: second factors of %s: %w", norm, err)
	}
	if confirmed.Valid {
		f.TOTP = true
		f.TOTPSince = time.Unix(0, confirmed.Int64).UTC()
	}
	return f, nil
}

// ResetSecondFactors removes the user's authenticator app (confirmed or
// being enrolled) and recovery codes, in one transaction: what an
// administrator does for a user who lost them. It returns ErrNotFound for
// a missing user, and nil for one who had nothing to remove. Passkeys
// (package passkey), ending the user's sessions and the audit record are
// the caller's part.
func (s *Store) ResetSecondFactors(ctx context.Context, user string) error {
	norm, err := NormalizeName(user)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("account: reset second factors of %s: %w", norm, err)
	}
	defer tx.Rollback()
	if err := s.lockUser(ctx, tx, norm); err != nil {
		return err
	}
	for _, table := range []string{"account_totp", "account_recovery_codes"} {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM `+table+` WHERE name = ?`), norm); err != nil {
			return fmt.Errorf("account: reset second factors of %s: %w", norm, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("account: reset second factors of %s: %w", norm, err)
	}
	return nil
}

// lockUser checks inside tx that the user exists, and holds their row until
// tx ends, so that changes to the user's factors made under it do not
// interleave: SQLite transactions hold the whole database (BEGIN
// IMMEDIATE); PostgreSQL locks the row.
func (s *Store) lockUser(ctx context.Context, tx *sql.Tx, norm string) error {
	q := `SELECT name FROM account_users WHERE name = ?`
	if s.db.Dialect == sqldb.Postgres {
		q += ` FOR UPDATE`
	}
	var name string
	switch err := tx.QueryRowContext(ctx, s.db.Rebind(q), norm).Scan(&name); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %s", ErrNotFound, norm)
	case err != nil:
		return fmt.Errorf("account: %s: %w", norm, err)
	}
	return nil
}

// FactorKind names a kind of authentication factor, as the audit log
// records it.
type FactorKind string

// The kinds of second factor.
const (
	// FactorTOTP is a code from an authenticator app (RFC 6238).
	FactorTOTP FactorKind = "totp"
	// FactorRecoveryCode is one of the user's single-use recovery codes.
	FactorRecoveryCode FactorKind = "recovery_code"
	// FactorPasskey is a WebAuthn credential (package passkey).
	FactorPasskey FactorKind = "passkey"
)

// MFAPolicy says when a sign-in needs a second factor after the password,
// and which factors count. The server has one for administrators and one
// for other users.
type MFAPolicy string

// The policies. The zero MFAPolicy is none of them; Decide and Accepts treat
// it, and any other unknown value, as MFARequired, so that a policy left
// unset never lets a password alone through where one is required.
const (
	// MFAOff never asks for a second factor, even from users who have one.
	MFAOff MFAPolicy = "off"
	// MFAOptional asks users who have a second factor for it, and lets the
	// others in with the password.
	MFAOptional MFAPolicy = "optional"
	// MFARequired asks every user for a second factor, sending those who
	// have none to enrol one first.
	MFARequired MFAPolicy = "required"
	// MFAPasskey is MFARequired where only a passkey counts (NIST 800-63B
	// AAL3 has no place for a code a person can type): authenticator apps
	// and recovery codes are neither asked for nor accepted.
	MFAPasskey MFAPolicy = "passkey"
)

// mfaPolicies are the valid policies, in the order error messages list them.
var mfaPolicies = []MFAPolicy{MFAOff, MFAOptional, MFARequired, MFAPasskey}

// ParseMFAPolicy returns the policy named s ("off", "optional", "required"
// or "passkey"), as a command-line flag gives it.
func ParseMFAPolicy(s string) (MFAPolicy, error) {
	for _, p := range mfaPolicies {
		if string(p) == s {
			return p, nil
		}
	}
	names := make([]string, len(mfaPolicies))
	for i, p := range mfaPolicies {
		names[i] = string(p)
	}
	return "", fmt.Errorf("account: unknown second-factor policy %q: use one of %s", s, strings.Join(names, ", "))
}

// String returns the policy's name.
func (p MFAPolicy) String() string { return string(p) }

// known returns p, or MFARequired if p is not a valid policy.
func (p MFAPolicy) known() MFAPolicy {
	switch p {
	case MFAOff, MFAOptional, MFARequired, MFAPasskey:
		return p
	}
	return MFARequired
}

// Accepts reports whether a factor of kind k counts as the second factor
// under p. Under MFAOff none does, since none is asked for.
func (p MFAPolicy) Accepts(k FactorKind) bool {
	switch p.known() {
	case MFAOptional, MFARequired:
		return k == FactorTOTP || k == FactorRecoveryCode || k == FactorPasskey
	case MFAPasskey:
		return k == FactorPasskey
	}
	return false
}

// MFADecision is what a sign-in whose password was right does next. Its
// zero value is none of the decisions, so that a decision never made is
// never taken for "let in".
type MFADecision int

// The decisions.
const (
	// MFANoneNeeded: the password suffices; the user is signed in.
	MFANoneNeeded MFADecision = iota + 1
	// MFAAskSecondFactor: the user must give a second factor that the
	// policy accepts (MFAPolicy.Accepts) before being signed in.
	MFAAskSecondFactor
	// MFAMustEnrol: the user has no second factor that the policy accepts
	// and must enrol one (a passkey under MFAPasskey) before doing
	// anything else.
	MFAMustEnrol
)

// String returns the decision's name, for logs and tests.
func (d MFADecision) String() string {
	switch d {
	case MFANoneNeeded:
		return "none needed"
	case MFAAskSecondFactor:
		return "ask second factor"
	case MFAMustEnrol:
		return "must enrol"
	}
	return fmt.Sprintf("MFADecision(%d)", int(d))
}

// Decide returns what follows a right password under p, for a user with a
// confirmed authenticator app or not (Factors.TOTP) and the given number of
// passkeys. Recovery codes alone never make a user enrolled: they are a
// way back to the other factors, not one of their own.
func (p MFAPolicy) Decide(hasTOTP bool, passkeys int) MFADecision {
	p = p.known()
	has := passkeys > 0 || (hasTOTP && p.Accepts(FactorTOTP))
	switch {
	case p == MFAOff:
		return MFANoneNeeded
	case has:
		return MFAAskSecondFactor
	case p == MFAOptional:
		return MFANoneNeeded
	}
	return MFAMustEnrol
}
