package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
)

// RecoveryCodeCount is how many recovery codes NewRecoveryCodes issues.
const RecoveryCodeCount = 10

// A recovery code is 80 random bits, written as 16 characters of Crockford's
// base32 in four groups: "7kqm-x2cd-9vhe-t4nb". At 80 bits, one SHA-256 is
// as safe a way to store it as a slow password hash would be (no guessing
// gets through 2^80), and it lets a code be found, and used up, with one
// conditional DELETE.
const (
	recoveryCodeBytes = 10
	recoveryCodeChars = 16
	recoveryGroup     = 4
)

// recoveryAlphabet is Crockford's base32 in lower case: no i, l, o or u, so
// no two characters look alike.
const recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

var recoveryEncoding = base32.NewEncoding(recoveryAlphabet).WithPadding(base32.NoPadding)

// NewRecoveryCodes issues RecoveryCodeCount new recovery codes for the user,
// replacing all earlier ones (used or not), and returns them to be shown
// once: only their hashes are kept. It returns ErrNotFound for a missing
// user.
func (s *Store) NewRecoveryCodes(ctx context.Context, user string) ([]string, error) {
	norm, err := NormalizeName(user)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	codes := make([]string, RecoveryCodeCount)
	for i := range codes {
		var b [recoveryCodeBytes]byte
		rand.Read(b[:])
		codes[i] = formatRecoveryCode(recoveryEncoding.EncodeToString(b[:]))
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("account: new recovery codes for %s: %w", norm, err)
	}
	defer tx.Rollback()
	// The user's row is held so that two regenerations at once leave one
	// set of codes, not both.
	if err := s.lockUser(ctx, tx, norm); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM account_recovery_codes WHERE name = ?`), norm); err != nil {
		return nil, fmt.Errorf("account: new recovery codes for %s: %w", norm, err)
	}
	now := s.opts.Clock().UnixNano()
	for _, code := range codes {
		canonical, _ := parseRecoveryCode(code)
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO account_recovery_codes (name, code_hash, created_at) VALUES (?, ?, ?)`),
			norm, recoveryHash(norm, canonical), now); err != nil {
			return nil, fmt.Errorf("account: new recovery codes for %s: %w", norm, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("account: new recovery codes for %s: %w", norm, err)
	}
	return codes, nil
}

// UseRecoveryCode checks one of the user's recovery codes and uses it up, in
// one conditional DELETE, so that of concurrent calls with the same code,
// on any processes sharing the database, exactly one succeeds. Letter case,
// spaces and dashes do not matter, and the look-alikes o, i and l are read
// as 0, 1 and 1. It returns ErrWrongCode for a wrong, malformed or used
// code, and for a user with no codes.
func (s *Store) UseRecoveryCode(ctx context.Context, user, code string) error {
	norm, err := NormalizeName(user)
	if err != nil {
		return ErrWrongCode
	}
	canonical, ok := parseRecoveryCode(code)
	if !ok {
		return ErrWrongCode
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM account_recovery_codes WHERE name = ? AND code_hash = ?`),
		norm, recoveryHash(norm, canonical))
	n, err := rowsAffected(res, err)
	switch {
	case err != nil:
		return fmt.Errorf("account: use recovery code of %s: %w", norm, err)
	case n == 0:
		return ErrWrongCode
	}
	return nil
}

// formatRecoveryCode splits a canonical code into dash-separated groups.
func formatRecoveryCode(canonical string) string {
	var b strings.Builder
	for i := 0; i < len(canonical); i += recoveryGroup {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(canonical[i:min(i+recoveryGroup, len(canonical))])
	}
	return b.String()
}

// parseRecoveryCode returns a typed code in its canonical form, lower case
// without separators, and reports whether it is one.
func parseRecoveryCode(code string) (string, bool) {
	if len(code) > maxTypedCode {
		return "", false
	}
	canonical := make([]byte, 0, recoveryCodeChars)
	for _, r := range code {
		if isCodeSeparator(r) {
			continue
		}
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		switch r {
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		if !strings.ContainsRune(recoveryAlphabet, r) || len(canonical) == recoveryCodeChars {
			return "", false
		}
		canonical = append(canonical, byte(r))
	}
	if len(canonical) != recoveryCodeChars {
		return "", false
	}
	return string(canonical), true
}

// recoveryHash is what the database keeps of a canonical recovery code. The
// user's name is hashed with it, so that equal hashes never link two users.
func recoveryHash(norm, canonical string) string {
	h := sha256.Sum256([]byte(norm + "\x00" + canonical))
	return hex.EncodeToString(h[:])
}
