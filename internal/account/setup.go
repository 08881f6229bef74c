package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// DefaultSetupTTL is how long a setup token is valid unless told otherwise.
const DefaultSetupTTL = time.Hour

// ErrInvalidSetupToken is returned by SetupToken.Use for a token that is
// wrong, expired or already used.
var ErrInvalidSetupToken = errors.New("account: the setup link is invalid, expired or already used")

// setupMigrations are the steps of the "account_setup" component: the
// setup tokens that are valid, by the SHA-256 of their secret (hex), so
// that a link printed by one instance works on every instance on the same
// database, and the secret itself is never stored.
var setupMigrations = []sqldb.Migration{{
	Name: "setup tokens",
	SQL: `CREATE TABLE account_setup_tokens (
		token_hash TEXT   NOT NULL PRIMARY KEY,
		expires_at BIGINT NOT NULL
	)`,
}}

// SetupToken is the one-time secret of the link that creates the first
// administrator of a server with no accounts (there is never a default
// password). Its hash and expiry are kept in the Store's database, so the
// link works on any instance that shares it, whichever printed it; every
// instance that starts with no accounts issues a token of its own, and each
// is valid until it expires or the first administrator exists. It is safe
// for concurrent use.
type SetupToken struct {
	db      *sqldb.DB
	now     func() time.Time
	log     *slog.Logger
	expires time.Time

	// mu serialises Use within this process; between processes, the one
	// transaction of CreateFirstAdmin lets one creation through.
	mu sync.Mutex
}

// NewSetupToken issues a setup token, valid for ttl (DefaultSetupTTL if ttl
// <= 0) by the Store's clock, and returns it with its secret: 256 random
// bits in unpadded base64url, 43 characters, fit for a URL. Tokens that have
// expired are deleted on the way.
func (s *Store) NewSetupToken(ctx context.Context, ttl time.Duration) (*SetupToken, string, error) {
	if ttl <= 0 {
		ttl = DefaultSetupTTL
	}
	now := s.opts.Clock()
	t := &SetupToken{db: s.db, now: s.opts.Clock, log: s.opts.Logger, expires: now.Add(ttl)}
	var b [32]byte
	rand.Read(b[:])
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM account_setup_tokens WHERE expires_at <= ?`), now.UnixNano()); err != nil {
		return nil, "", fmt.Errorf("account: setup token: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO account_setup_tokens (token_hash, expires_at) VALUES (?, ?)`),
		setupHash(secret), t.expires.UnixNano()); err != nil {
		return nil, "", fmt.Errorf("account: setup token: %w", err)
	}
	return t, secret, nil
}

// setupHash is what the database keeps of a setup token. The lookup by hash
// takes time that depends on the hash, which tells a guesser nothing about
// the secret.
func setupHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// ExpiresAt returns the instant from which the token is refused.
func (t *SetupToken) ExpiresAt() time.Time { return t.expires }

// Valid reports whether token is the secret of a setup token issued by any
// instance on the database, unused and unexpired: whether to show the setup
// form. An error means the database did not answer.
func (t *SetupToken) Valid(ctx context.Context, token string) (bool, error) {
	var expires int64
	err := t.db.QueryRowContext(ctx, t.db.Rebind(`SELECT expires_at FROM account_setup_tokens WHERE token_hash = ?`),
		setupHash(token)).Scan(&expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("account: setup token: %w", err)
	}
	return t.now().UnixNano() < expires, nil
}

// Use runs create (typically Store.CreateFirstAdmin) if token is valid, and
// if create succeeds uses up every setup token on the database: there is an
// administrator now. If create fails (a password too short, say) the token
// stays valid, so the form can be filled in again. Of two concurrent calls
// with a valid token, one creates the administrator; in this process the
// other then gets ErrInvalidSetupToken, and in another process
// CreateFirstAdmin's ErrAccountsExist.
func (t *SetupToken) Use(ctx context.Context, token string, create func() error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ok, err := t.Valid(ctx, token); {
	case err != nil:
		return err
	case !ok:
		return ErrInvalidSetupToken
	}
	if err := create(); err != nil {
		return err
	}
	// Were this to fail, the links would still lead nowhere: the setup
	// page and CreateFirstAdmin refuse once an account exists.
	if _, err := t.db.ExecContext(ctx, `DELETE FROM account_setup_tokens`); err != nil {
		t.log.WarnContext(ctx, "account: the first administrator exists, but the setup tokens could not be deleted", "err", err)
	}
	return nil
}
