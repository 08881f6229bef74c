package account

import (
	"context"
	"errors"
	"time"
)

// ErrInvalidCredentials is the one answer to a sign-in that failed because of
// what was typed: an unknown user, a wrong password or a disabled account.
// Telling them apart would tell an attacker which names exist.
var ErrInvalidCredentials = errors.New("account: invalid user name or password")

// AuthOptions configure an Authenticator. The zero value gives the documented
// defaults.
type AuthOptions struct {
	// AccountThrottle limits failures per user name. The default is
	// DefaultAccountThrottle.
	AccountThrottle ThrottlePolicy

	// IPThrottle limits failures per client address. The default is
	// DefaultIPThrottle.
	IPThrottle ThrottlePolicy

	// MaxTrackedKeys bounds the user names and the client addresses whose
	// failures are remembered (each separately), and so the memory
	// throttling uses: about 100 bytes a key. When full, keys whose window
	// has passed are dropped, then the one closest to being dropped. The
	// default is 10000.
	MaxTrackedKeys int

	// Clock tells the time for throttling. The default is the Store's clock.
	Clock func() time.Time
}

// Authenticator checks passwords for sign-in and re-authentication, with
// throttling (see the package documentation). It is safe for concurrent use.
// Its throttling state is in memory: per process, and forgotten on restart.
type Authenticator struct {
	store    *Store
	accounts *limiter
	ips      *limiter
	now      func() time.Time
}

// NewAuthenticator returns an Authenticator for the users of store.
func NewAuthenticator(store *Store, opts AuthOptions) (*Authenticator, error) {
	if opts.AccountThrottle == (ThrottlePolicy{}) {
		opts.AccountThrottle = DefaultAccountThrottle
	}
	if opts.IPThrottle == (ThrottlePolicy{}) {
		opts.IPThrottle = DefaultIPThrottle
	}
	if err := errors.Join(opts.AccountThrottle.validate("account"), opts.IPThrottle.validate("ip")); err != nil {
		return nil, err
	}
	if opts.MaxTrackedKeys <= 0 {
		opts.MaxTrackedKeys = 10000
	}
	if opts.Clock == nil {
		opts.Clock = store.now
	}
	return &Authenticator{
		store:    store,
		accounts: newLimiter(opts.AccountThrottle, ScopeAccount, opts.MaxTrackedKeys),
		ips:      newLimiter(opts.IPThrottle, ScopeIP, opts.MaxTrackedKeys),
		now:      opts.Clock,
	}, nil
}

// Authenticate checks a sign-in from the client at address ip (as the server
// sees it, after any trusted proxy's header; it may hold a port). It returns
// the user, or:
//
//   - ErrInvalidCredentials for an unknown or malformed name, a wrong
//     password or a disabled account, after the same work in every case;
//   - a *ThrottledError (find it with errors.As) when the account or the
//     address has failed too often, even if the password is right, or when
//     too many sign-ins are being checked at once;
//   - ctx.Err(), or a database error, when nothing could be decided; such
//     attempts count for nothing.
//
// A failure counts against the name and the address; a success forgets the
// name's failures. An empty ip (no client, as from a command line) skips the
// address throttle. A stored hash with other parameters than the Store's is
// replaced on success.
func (a *Authenticator) Authenticate(ctx context.Context, name, password, ip string) (User, error) {
	return a.check(ctx, name, password, ip)
}

// Verify checks the password of a signed-in user before a sensitive action
// (changing the password, ending sessions, administration). It returns nil,
// ErrInvalidCredentials, a *ThrottledError or a context or database error,
// as Authenticate does, and counts failures against the name, so that a
// stolen session cannot be used to guess the password.
func (a *Authenticator) Verify(ctx context.Context, name, password string) error {
	_, err := a.check(ctx, name, password, "")
	return err
}

func (a *Authenticator) check(ctx context.Context, name, password, ip string) (User, error) {
	// Names that cannot exist are not throttled per name (they would only
	// fill the table), but cost the same work and answer the same.
	nameKey, nameErr := NormalizeName(name)
	addrKey := ""
	if ip != "" {
		addrKey = ipKey(ip)
	}

	now := a.now()
	if addrKey != "" {
		if err := a.ips.begin(addrKey, now); err != nil {
			return User{}, err
		}
	}
	if nameErr == nil {
		if err := a.accounts.begin(nameKey, now); err != nil {
			if addrKey != "" {
				a.ips.cancel(addrKey)
			}
			return User{}, err
		}
	}
	settle := func(outcome func(l *limiter, key string, isName bool)) {
		if addrKey != "" {
			outcome(a.ips, addrKey, false)
		}
		if nameErr == nil {
			outcome(a.accounts, nameKey, true)
		}
	}
	cancel := func(l *limiter, key string, _ bool) { l.cancel(key) }

	var u User
	var hash string
	if nameErr == nil {
		var err error
		u, hash, err = a.store.get(ctx, nameKey)
		if err != nil && !errors.Is(err, ErrNotFound) {
			settle(cancel)
			return User{}, err
		}
	}
	if err := a.store.gate.acquire(ctx); err != nil {
		settle(cancel)
		return User{}, err
	}
	ok := func() bool {
		defer a.store.gate.release()
		return a.verify(ctx, u, hash, password)
	}()

	if !ok {
		now := a.now()
		settle(func(l *limiter, key string, _ bool) { l.fail(key, now) })
		return User{}, ErrInvalidCredentials
	}
	// Success resets the name's count, not the address's: see ThrottlePolicy.
	settle(func(l *limiter, key string, isName bool) { l.succeed(key, isName) })
	return u, nil
}

// verify does the password work for a user (the zero User when there is
// none), and reports whether they may sign in. The caller holds a gate slot.
func (a *Authenticator) verify(ctx context.Context, u User, hash, password string) bool {
	if u.Name == "" || u.Disabled {
		CheckPasswordHash(a.store.dummyHash, password)
		return false
	}
	ok, err := CheckPasswordHash(hash, password)
	if err != nil {
		// The stored hash is damaged: the user cannot sign in until an
		// administrator sets a new password. Answer as for a wrong
		// password, after the same work, and tell the operator.
		a.store.log.ErrorContext(ctx, "account: stored password hash is unusable; reset the password", "user", u.Name, "err", err)
		CheckPasswordHash(a.store.dummyHash, password)
		return false
	}
	if ok && NeedsRehash(hash, a.store.params) {
		a.store.rehash(ctx, u.Name, hash, password)
	}
	return ok
}

// Tracked returns how many user names and client addresses the throttles
// remember, for metrics.
func (a *Authenticator) Tracked() (names, addresses int) {
	return a.accounts.len(), a.ips.len()
}
