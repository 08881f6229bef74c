package account

import (
	"bytes"
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"image/png"
	"time"
	"unicode"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The authenticator-app parameters: RFC 6238's defaults, the only ones
// every app supports.
const (
	// TOTPPeriod is the time step: a code changes every 30 seconds.
	TOTPPeriod = 30 * time.Second
	// TOTPDigits is the length of a code.
	TOTPDigits = 6
	// TOTPSkew is how many steps a code may be early or late by, for clocks
	// that drift: a code is accepted for about a minute and a half around
	// its own 30 seconds.
	TOTPSkew = 1

	// totpSecretSize is the length of a secret in bytes: 160 bits, the
	// size RFC 4226 recommends for HMAC-SHA-1.
	totpSecretSize = 20
	// qrCodeSize is the width and height of the enrolment QR code, in
	// pixels: large enough for a phone's camera from a laptop's screen.
	qrCodeSize = 256
)

// TOTPEnrolment is what a user needs to add the account to an authenticator
// app. Show it once, at enrolment, and keep it nowhere else: the secret is
// the factor.
type TOTPEnrolment struct {
	// Secret is the shared secret in unpadded base32 (32 characters), for
	// typing into an app that cannot scan the QR code.
	Secret string
	// URL is the otpauth://totp/ URI that the QR code holds, labelled with
	// Options.Issuer and the user name.
	URL string
	// QRCode is a PNG image of URL, rendered here so that the secret never
	// goes to a third-party service.
	QRCode []byte
}

// BeginTOTP starts enrolling an authenticator app for the user: it stores a
// new secret, which counts only once ConfirmTOTP has seen a code from it. A
// secret begun earlier and not confirmed is replaced; a confirmed one stays
// in use until the new one is confirmed, so that a user can move to a new
// app without being left without one. It returns ErrNotFound for a missing
// user.
func (s *Store) BeginTOTP(ctx context.Context, user string) (TOTPEnrolment, error) {
	norm, err := NormalizeName(user)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      s.opts.Issuer,
		AccountName: norm,
		Period:      uint(TOTPPeriod / time.Second),
		SecretSize:  totpSecretSize,
		Digits:      TOTPDigits,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("account: new authenticator secret: %w", err)
	}
	img, err := key.Image(qrCodeSize, qrCodeSize)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("account: authenticator QR code: %w", err)
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return TOTPEnrolment{}, fmt.Errorf("account: authenticator QR code: %w", err)
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("account: begin authenticator enrolment of %s: %w", norm, err)
	}
	defer tx.Rollback()
	if err := s.lockUser(ctx, tx, norm); err != nil {
		return TOTPEnrolment{}, err
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO account_totp (name, pending_secret, pending_since) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET pending_secret = excluded.pending_secret, pending_since = excluded.pending_since`),
		norm, key.Secret(), s.opts.Clock().UnixNano()); err != nil {
		return TOTPEnrolment{}, fmt.Errorf("account: begin authenticator enrolment of %s: %w", norm, err)
	}
	if err := tx.Commit(); err != nil {
		return TOTPEnrolment{}, fmt.Errorf("account: begin authenticator enrolment of %s: %w", norm, err)
	}
	return TOTPEnrolment{Secret: key.Secret(), URL: key.URL(), QRCode: qr.Bytes()}, nil
}

// ConfirmTOTP completes the enrolment begun by BeginTOTP with a code from
// the app, proving that the app holds the secret. From then on the secret is
// the user's authenticator app, replacing any earlier one, and the code
// counts as used: VerifyTOTP refuses it. It returns ErrNoTOTPEnrolment if
// no enrolment is in progress, and ErrWrongCode for a wrong code or when a
// concurrent call confirmed (or BeginTOTP replaced) the enrolment first.
func (s *Store) ConfirmTOTP(ctx context.Context, user, code string) error {
	norm, err := NormalizeName(user)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var secret string
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT pending_secret FROM account_totp WHERE name = ? AND pending_secret IS NOT NULL`),
		norm).Scan(&secret)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNoTOTPEnrolment
	case err != nil:
		return fmt.Errorf("account: confirm authenticator of %s: %w", norm, err)
	}
	steps := matchingSteps(secret, code, s.opts.Clock())
	if len(steps) == 0 {
		return ErrWrongCode
	}
	// The latest step the code matches, so that no later code is refused
	// as a replay and no earlier one is accepted.
	step := steps[len(steps)-1]
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE account_totp
		SET secret = pending_secret, confirmed_at = ?, last_step = ?, pending_secret = NULL, pending_since = 0
		WHERE name = ? AND pending_secret = ?`),
		s.opts.Clock().UnixNano(), step, norm, secret)
	n, err := rowsAffected(res, err)
	switch {
	case err != nil:
		return fmt.Errorf("account: confirm authenticator of %s: %w", norm, err)
	case n == 0:
		return fmt.Errorf("%w: the enrolment changed while it was being confirmed", ErrWrongCode)
	}
	return nil
}

// VerifyTOTP checks a code from the user's confirmed authenticator app, and
// uses it up. Each code is accepted once (RFC 6238 section 5.2): the Store
// remembers the last time step a code was accepted for and refuses codes of
// that step or any earlier one, in one conditional update, so that of two
// concurrent calls with the same code, on any processes sharing the
// database, exactly one succeeds. Codes up to TOTPSkew steps early or late
// are accepted. Spaces and dashes in the code are ignored.
//
// It returns ErrWrongCode for a wrong, malformed, expired or replayed code,
// and for a user with no confirmed authenticator app; a replay's error says
// so, for the log, and still matches ErrWrongCode.
func (s *Store) VerifyTOTP(ctx context.Context, user, code string) error {
	norm, err := NormalizeName(user)
	if err != nil {
		return ErrWrongCode
	}
	var secret string
	var lastStep int64
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT secret, last_step FROM account_totp WHERE name = ? AND secret IS NOT NULL`),
		norm).Scan(&secret, &lastStep)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrWrongCode
	case err != nil:
		return fmt.Errorf("account: verify authenticator code of %s: %w", norm, err)
	}
	steps := matchingSteps(secret, code, s.opts.Clock())
	for _, step := range steps {
		if step <= lastStep {
			continue
		}
		// Another call may have used this step, or a later one, since the
		// SELECT; the condition decides, atomically.
		res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE account_totp SET last_step = ?
			WHERE name = ? AND secret = ? AND last_step < ?`), step, norm, secret, step)
		n, err := rowsAffected(res, err)
		if err != nil {
			return fmt.Errorf("account: verify authenticator code of %s: %w", norm, err)
		}
		if n == 1 {
			return nil
		}
	}
	if len(steps) > 0 {
		return fmt.Errorf("%w: the code was used already", ErrWrongCode)
	}
	return ErrWrongCode
}

// RemoveTOTP removes the user's authenticator app, and any enrolment in
// progress. It returns ErrNoTOTP if the user had no confirmed app (an
// enrolment in progress is removed all the same).
func (s *Store) RemoveTOTP(ctx context.Context, user string) error {
	norm, err := NormalizeName(user)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var secret sql.NullString
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`DELETE FROM account_totp WHERE name = ? RETURNING secret`), norm).Scan(&secret)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNoTOTP
	case err != nil:
		return fmt.Errorf("account: remove authenticator of %s: %w", norm, err)
	case !secret.Valid:
		return ErrNoTOTP
	}
	return nil
}

// matchingSteps returns the time steps, in increasing order, within TOTPSkew
// of now's whose code is code (after parseTOTPCode), none if code is
// malformed. Every step's code is computed and compared in constant time,
// so the time taken does not tell which one matched.
func matchingSteps(secret, code string, now time.Time) []int64 {
	code, ok := parseTOTPCode(code)
	if !ok {
		return nil
	}
	current := totpStep(now)
	var steps []int64
	for step := current - TOTPSkew; step <= current+TOTPSkew; step++ {
		if step < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: TOTPDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			// Only a corrupt stored secret gets here; it matches nothing.
			return nil
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			steps = append(steps, step)
		}
	}
	return steps
}

// totpStep returns the number of the RFC 6238 time step that t falls in.
func totpStep(t time.Time) int64 {
	period := int64(TOTPPeriod / time.Second)
	u := t.Unix()
	step := u / period
	if u%period < 0 {
		step--
	}
	return step
}

// maxTypedCode bounds the length of a typed code, separators included, so
// that a long paste costs nothing.
const maxTypedCode = 64

// parseTOTPCode returns code as TOTPDigits ASCII digits, with the spaces and
// dashes a person may type or paste between them removed, and reports
// whether it is one.
func parseTOTPCode(code string) (string, bool) {
	if len(code) > maxTypedCode {
		return "", false
	}
	digits := make([]byte, 0, TOTPDigits)
	for _, r := range code {
		switch {
		case '0' <= r && r <= '9':
			if len(digits) == TOTPDigits {
				return "", false
			}
			digits = append(digits, byte(r))
		case isCodeSeparator(r):
		default:
			return "", false
		}
	}
	if len(digits) != TOTPDigits {
		return "", false
	}
	return string(digits), true
}

// isCodeSeparator reports whether r is a character to ignore in a typed
// code: a space (including the non-breaking ones that copying from a page
// brings along) or a dash of any kind.
func isCodeSeparator(r rune) bool {
	return unicode.IsSpace(r) || unicode.Is(unicode.Pd, r)
}

// rowsAffected returns the number of rows an ExecContext changed, or its
// error.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
