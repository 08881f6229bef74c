package account

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// DefaultSetupTTL is how long a setup token is valid unless told otherwise.
const DefaultSetupTTL = time.Hour

// ErrInvalidSetupToken is returned by SetupToken.Use for a token that is
// wrong, expired or already used.
var ErrInvalidSetupToken = errors.New("account: the setup link is invalid, expired or already used")

// SetupToken is the one-time secret of the link that creates the first
// administrator of a server with no accounts (there is never a default
// password). It lives in memory only: a restart makes a new one, and the old
// link stops working. It is safe for concurrent use.
type SetupToken struct {
	mu      sync.Mutex
	hash    [sha256.Size]byte // of the token; the token itself is not kept
	expires time.Time
	used    bool
	now     func() time.Time
}

// NewSetupToken returns a new setup token, valid for ttl (DefaultSetupTTL if
// ttl <= 0) by clock (time.Now if nil), and its secret: 256 random bits in
// unpadded base64url, 43 characters, fit for a URL.
func NewSetupToken(ttl time.Duration, clock func() time.Time) (*SetupToken, string) {
	if ttl <= 0 {
		ttl = DefaultSetupTTL
	}
	if clock == nil {
		clock = time.Now
	}
	var b [32]byte
	rand.Read(b[:])
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	return &SetupToken{hash: sha256.Sum256([]byte(secret)), expires: clock().Add(ttl), now: clock}, secret
}

// ExpiresAt returns the instant from which the token is refused.
func (t *SetupToken) ExpiresAt() time.Time { return t.expires }

// Valid reports whether token is this setup token's secret, unused and
// unexpired: whether to show the setup form.
func (t *SetupToken) Valid(token string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.valid(token)
}

func (t *SetupToken) valid(token string) bool {
	// Comparing hashes takes the same time wherever the guess differs, and
	// whatever its length.
	h := sha256.Sum256([]byte(token))
	match := subtle.ConstantTimeCompare(h[:], t.hash[:]) == 1
	return match && !t.used && t.now().Before(t.expires)
}

// Use runs create (typically Store.CreateFirstAdmin) if token is valid, and
// uses the token up if create succeeds. If create fails (a password too
// short, say) the token stays valid, so the form can be filled in again. Uses
// are serialised: of two concurrent calls with the right token, one runs
// create and, if it succeeds, the other gets ErrInvalidSetupToken.
func (t *SetupToken) Use(token string, create func() error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.valid(token) {
		return ErrInvalidSetupToken
	}
	if err := create(); err != nil {
		return err
	}
	t.used = true
	return nil
}
