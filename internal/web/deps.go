package web

import (
	"context"
	"errors"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/audit"
)

// AccountStore is what the Server needs of the user accounts.
// *account.Store satisfies it.
type AccountStore interface {
	Create(ctx context.Context, name, password string, role account.Role) error
	CreateFirstAdmin(ctx context.Context, name, password string) error
	Get(ctx context.Context, name string) (account.User, error)
	List(ctx context.Context) ([]account.User, error)
	Count(ctx context.Context) (int, error)
	SetPassword(ctx context.Context, name, password string) error
	SetDisabled(ctx context.Context, name string, disabled bool) error
}

// Authenticator checks passwords, with failures throttled (per user name,
// client address, known client and session). *account.Authenticator
// satisfies it.
type Authenticator interface {
	// Authenticate checks a sign-in. It returns an error wrapping
	// account.ErrInvalidCredentials (unknown user, wrong password and
	// disabled account alike) or an *account.ThrottledError.
	Authenticate(ctx context.Context, at account.Attempt) (account.User, error)
	// Verify checks a signed-in user's password before a sensitive action,
	// counting failures against at.Session alone, with the same errors.
	Verify(ctx context.Context, at account.Attempt) error
	// RememberClient makes the client of a successful sign-in a known
	// client of the user, and returns the device token for its cookie.
	RememberClient(ctx context.Context, at account.Attempt) (string, error)
	// CheckSecondFactor runs check, the verification of a second factor
	// of at.Name, throttled as passwords are: per user name at sign-in,
	// per session (at.Session) at re-authentication. An error wrapping
	// account.ErrWrongCode from check counts as a failure; it returns an
	// *account.ThrottledError, without calling check, while locked.
	CheckSecondFactor(ctx context.Context, at account.Attempt, check func(context.Context) error) error
}

// SecondFactorStore holds the users' authenticator apps (TOTP) and recovery
// codes. *account.Store satisfies it. Every code check returns an error
// wrapping account.ErrWrongCode for a wrong, used or malformed code.
type SecondFactorStore interface {
	// Factors returns the user's second factors (passkeys aside).
	Factors(ctx context.Context, user string) (account.Factors, error)
	// BeginTOTP stores a new secret, not yet counting, and returns what
	// the enrolment page shows.
	BeginTOTP(ctx context.Context, user string) (account.TOTPEnrolment, error)
	// ConfirmTOTP makes the begun secret the user's app, given a code
	// from it; account.ErrNoTOTPEnrolment if none was begun.
	ConfirmTOTP(ctx context.Context, user, code string) error
	// VerifyTOTP checks and uses up a code of the user's app: each code is
	// accepted once.
	VerifyTOTP(ctx context.Context, user, code string) error
	// RemoveTOTP removes the user's app; account.ErrNoTOTP if there was
	// none.
	RemoveTOTP(ctx context.Context, user string) error
	// NewRecoveryCodes replaces the user's recovery codes with new ones,
	// returned to be shown once.
	NewRecoveryCodes(ctx context.Context, user string) ([]string, error)
	// UseRecoveryCode checks and uses up one recovery code.
	UseRecoveryCode(ctx context.Context, user, code string) error
}

// AuditLog is what the Server needs of the audit log. *audit.Log satisfies
// it.
type AuditLog interface {
	// Record appends an entry.
	Record(ctx context.Context, e audit.Entry) error
	// Query returns the entries that match f, oldest first (with a Limit,
	// the newest Limit of them).
	Query(ctx context.Context, f audit.Filter) ([]audit.Entry, error)
}

// SetupToken is the one-time secret of the first-run link.
// *account.SetupToken satisfies it.
type SetupToken interface {
	// Valid reports whether token is a setup secret, unused and unexpired;
	// an error means the database did not answer.
	Valid(ctx context.Context, token string) (bool, error)
	// Use runs create if token is valid, and uses the token up if create
	// succeeds; otherwise it returns account.ErrInvalidSetupToken.
	Use(ctx context.Context, token string, create func() error) error
}

// throttled reports whether err refuses a password check for a while, and
// how long to wait.
func throttled(err error) (time.Duration, bool) {
	if te, ok := errors.AsType[*account.ThrottledError](err); ok {
		return te.RetryAfter, true
	}
	return 0, false
}

// invalidCredentials reports whether err is the one answer to an unknown
// user, a wrong password and a disabled account.
func invalidCredentials(err error) bool {
	return errors.Is(err, account.ErrInvalidCredentials)
}
