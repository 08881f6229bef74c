package account

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidCredentials is the one answer to a sign-in that failed because of
// what was typed: an unknown user, a wrong password or a disabled account.
// Telling them apart would tell an attacker which names exist.
var ErrInvalidCredentials = errors.New("account: invalid user name or password")

// AuthOptions configure an Authenticator. A zero field takes its documented
// default.
type AuthOptions struct {
	// AccountThrottle limits failures per user name (from clients that are
	// not its known devices), per known device, and per session
	// re-authenticating, each key on its own. The default is
	// DefaultAccountThrottle.
	AccountThrottle ThrottlePolicy

	// IPThrottle limits failures per client address. The default is
	// DefaultIPThrottle.
	IPThrottle ThrottlePolicy

	// MaxCachedLocks bounds the locks each process remembers in memory, so
	// that a locked key is refused without a query: about 100 bytes each.
	// Beyond it, locks are still enforced, by the database. The default
	// (0) is 10000.
	MaxCachedLocks int

	// Observer receives every lock and unlock (the audit log: *audit.Log
	// satisfies it). Each is also logged to the Store's Logger. The
	// default (nil) only logs them.
	Observer ThrottleObserver

	// Clock tells the time for throttling. The default is the Store's clock.
	Clock func() time.Time
}

// ThrottleEventKind says what happened to a throttled key.
type ThrottleEventKind string

// The kinds of ThrottleEvent.
const (
	// ThrottleLocked: a failure was one too many; the key is locked until
	// the event's Until.
	ThrottleLocked ThrottleEventKind = "locked"
	// ThrottleUnlocked: a success after a lockout (which had ended) cleared
	// the key's failures and lockouts, so the next lockout is again the
	// shortest. Addresses are never cleared this way (see ThrottlePolicy).
	ThrottleUnlocked ThrottleEventKind = "unlocked"
)

// ThrottleEvent is a lock or an unlock, for the audit log and alerts.
type ThrottleEvent struct {
	Kind  ThrottleEventKind
	Scope ThrottleScope // any but ScopeBusy

	// User is the user name the key is about: the name typed, which may
	// not exist (ScopeAccount), or the known client's or the session's
	// user. It is empty for ScopeIP.
	User string
	// Session is the public ID of the session (ScopeSession only).
	Session string
	// IP is the client address of the attempt that caused the event; for
	// ScopeIP, the address (or IPv6 /64) the key stands for.
	IP string

	// Time is when it happened.
	Time time.Time
	// Until is when the lock ends (ThrottleLocked only).
	Until time.Time
	// Lockouts counts the lockouts in a row, 1 for the first
	// (ThrottleLocked only).
	Lockouts int
}

// ThrottleObserver receives the throttle's lock and unlock events. It is
// called after the event is stored, on the goroutine of the attempt that
// caused it, and cannot fail it.
type ThrottleObserver interface {
	ThrottleEvent(ctx context.Context, e ThrottleEvent)
}

// Attempt is one password check as the server received it.
type Attempt struct {
	// Name is the user name typed at sign-in, or the signed-in user's for
	// Verify.
	Name string

	// Password is the password typed.
	Password string

	// IP is the client's address as the server sees it (after any trusted
	// proxy's header; it may hold a port). Authenticate counts failures
	// against it; an empty IP (no client, as from a command line) skips the
	// address throttle. Events name it.
	IP string

	// Device is the device token the client presented (see
	// RememberClient), or empty. When it is a known device of Name,
	// Authenticate counts the attempt against that device alone: a lock on
	// the name or the address, which anyone can cause by failing on
	// purpose, does not hold the user's own devices back. Verify ignores
	// it.
	Device string

	// Session is the public ID of the signed-in session that asks Verify:
	// its failures count against that session alone, never against the
	// name, so that nobody else's failures can stop a signed-in user from
	// re-authenticating. Authenticate ignores it.
	Session string
}

// Authenticator checks passwords for sign-in and re-authentication, with
// throttling (see the package documentation). It is safe for concurrent use,
// also by several processes: failure counts and locks live in the Store's
// database, so N servers on one database allow no more guesses than one.
type Authenticator struct {
	store    *Store
	opts     AuthOptions // with the defaults filled in
	throttle *throttle
}

// withDefaults returns o with its zero fields set to their defaults, the
// clock being store's.
func (o AuthOptions) withDefaults(store *Store) AuthOptions {
	if o.AccountThrottle == (ThrottlePolicy{}) {
		o.AccountThrottle = DefaultAccountThrottle
	}
	if o.IPThrottle == (ThrottlePolicy{}) {
		o.IPThrottle = DefaultIPThrottle
	}
	if o.MaxCachedLocks == 0 {
		o.MaxCachedLocks = 10000
	}
	if o.Clock == nil {
		o.Clock = store.opts.Clock
	}
	return o
}

// NewAuthenticator returns an Authenticator for the users of store.
func NewAuthenticator(store *Store, opts AuthOptions) (*Authenticator, error) {
	if opts.MaxCachedLocks < 0 {
		return nil, fmt.Errorf("account: AuthOptions.MaxCachedLocks must be positive or zero (the default), got %d", opts.MaxCachedLocks)
	}
	opts = opts.withDefaults(store)
	if err := errors.Join(opts.AccountThrottle.validate("account"), opts.IPThrottle.validate("ip")); err != nil {
		return nil, err
	}
	return &Authenticator{
		store: store,
		opts:  opts,
		throttle: &throttle{
			db:        store.db,
			now:       opts.Clock,
			log:       store.opts.Logger,
			observer:  opts.Observer,
			admitWait: admitWait,
			locks:     lockCache{max: opts.MaxCachedLocks},
		},
	}, nil
}

// Authenticate checks a sign-in. It returns the user, or:
//
//   - ErrInvalidCredentials for an unknown or malformed name, a wrong
//     password or a disabled account, after the same work in every case;
//   - a *ThrottledError (find it with errors.As) when the name, the address
//     or the known client has failed too often, even if the password is
//     right; or, with ScopeBusy, when the attempt could not be checked in
//     time because too many are being checked at once;
//   - ctx.Err(), or a database error, when nothing could be decided; such
//     attempts count for nothing.
//
// Only failures count. Attempts beyond what a key's remaining budget allows
// wait for those in flight (a few at most, each a hash) rather than being
// refused, so that a burst of correct sign-ins is never told it failed.
//
// What a failure counts against depends on the client (see RememberClient):
// from a known device of the user, that device alone; from a known address,
// the address and the pair of name and address; from anywhere else, the
// address and the name. A success forgets the failures of all but the
// address. A stored hash with other parameters than the Store's is replaced
// on success.
func (a *Authenticator) Authenticate(ctx context.Context, at Attempt) (User, error) {
	// Names that cannot exist are not throttled per name (they would only
	// fill the table), but cost the same work and answer the same.
	name, nameErr := NormalizeName(at.Name)
	address := ""
	if at.IP != "" {
		address = AddressKey(at.IP)
	}
	var known knownClient
	if nameErr == nil {
		var err error
		if known, err = a.known(ctx, name, at.Device, address); err != nil {
			return User{}, err
		}
	}
	var keys []throttleKey
	if known.device {
		keys = append(keys, throttleKey{scope: ScopeDevice, subject: deviceHash(at.Device), policy: a.opts.AccountThrottle, user: name})
	} else {
		if address != "" {
			keys = append(keys, throttleKey{scope: ScopeIP, subject: address, policy: a.opts.IPThrottle})
		}
		switch {
		case known.address:
			keys = append(keys, throttleKey{scope: ScopeKnownAddress, subject: name + " " + address, policy: a.opts.AccountThrottle, user: name})
		case nameErr == nil:
			keys = append(keys, throttleKey{scope: ScopeAccount, subject: name, policy: a.opts.AccountThrottle, user: name})
		}
	}
	return a.check(ctx, keys, name, nameErr == nil, at)
}

// maxSessionKey bounds the session ID Verify stores: public IDs are 22
// characters.
const maxSessionKey = 64

// Verify checks the password of a signed-in user (at.Name) before a
// sensitive action (changing the password, ending sessions,
// administration). It returns nil, ErrInvalidCredentials, a
// *ThrottledError or a context or database error, as Authenticate does.
// Failures count against the session at.Session alone: a stolen session
// cannot be used to guess the password, and failures on the user name by
// anyone else never stop the signed-in user from proving who they are
// (and so from ending the thief's sessions).
func (a *Authenticator) Verify(ctx context.Context, at Attempt) error {
	if at.Session == "" {
		return errors.New("account: Verify needs the session that asks (Attempt.Session)")
	}
	name, nameErr := NormalizeName(at.Name)
	session := at.Session
	if len(session) > maxSessionKey {
		session = session[:maxSessionKey]
	}
	keys := []throttleKey{{scope: ScopeSession, subject: session, policy: a.opts.AccountThrottle, user: name}}
	_, err := a.check(ctx, keys, name, nameErr == nil, at)
	return err
}

// check counts an attempt against keys and checks its password against the
// user called name (normalised; nameOK false for a name that cannot exist).
func (a *Authenticator) check(ctx context.Context, keys []throttleKey, name string, nameOK bool, at Attempt) (User, error) {
	if a.store.gate.saturated() {
		// A flood: refuse it before it writes to the database.
		return User{}, &ThrottledError{RetryAfter: busyRetry, Scope: ScopeBusy}
	}
	res, err := a.throttle.begin(ctx, keys, at.IP)
	if err != nil {
		return User{}, err
	}
	var u User
	var hash string
	if nameOK {
		u, hash, err = a.store.get(ctx, name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			res.cancel(ctx)
			return User{}, err
		}
	}
	if err := a.store.gate.acquire(ctx); err != nil {
		res.cancel(ctx)
		return User{}, err
	}
	ok := func() bool {
		defer a.store.gate.release()
		return a.verify(ctx, u, hash, at.Password)
	}()
	if !ok {
		if err := res.fail(ctx); err != nil {
			// Uncounted, the verdict would be a free guess.
			return User{}, err
		}
		return User{}, ErrInvalidCredentials
	}
	res.succeed(ctx)
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
		a.store.opts.Logger.ErrorContext(ctx, "account: stored password hash is unusable; reset the password", "user", u.Name, "err", err)
		CheckPasswordHash(a.store.dummyHash, password)
		return false
	}
	if ok && NeedsRehash(hash, a.store.opts.Params) {
		a.store.rehash(ctx, u.Name, hash, password)
	}
	return ok
}
