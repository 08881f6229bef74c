package account

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ThrottleScope says what a ThrottledError limits.
type ThrottleScope string

// The scopes of throttling.
const (
	// ScopeAccount: too many failed sign-ins for this user name.
	ScopeAccount ThrottleScope = "account"
	// ScopeIP: too many failed sign-ins from this client address.
	ScopeIP ThrottleScope = "ip"
	// ScopeBusy: too many sign-ins are being checked at once, server-wide.
	ScopeBusy ThrottleScope = "busy"
)

// ThrottledError refuses a sign-in or re-authentication without checking the
// password, because of earlier failures or load. Answer it with 429 Too Many
// Requests and a Retry-After header (RetryAfterSeconds). Its Scope is for
// logs and metrics; telling the client which limit it hit helps attackers
// more than users.
type ThrottledError struct {
	// RetryAfter is how long to wait before the next attempt can be
	// checked; always positive.
	RetryAfter time.Duration
	// Scope is the limit that refused the attempt.
	Scope ThrottleScope
}

// Error says that the attempt was throttled and for how long, without the
// user name or address.
func (e *ThrottledError) Error() string {
	if e.Scope == ScopeBusy {
		return fmt.Sprintf("account: too many sign-ins in progress; try again in %v", e.RetryAfter)
	}
	return fmt.Sprintf("account: too many failed sign-ins (%s); try again in %v", e.Scope, e.RetryAfter)
}

// RetryAfterSeconds returns RetryAfter in whole seconds, rounded up, for a
// Retry-After header; at least 1.
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// ThrottlePolicy limits failed attempts for one key (a user name or a client
// address). Failures are counted in a window that opens at the first one;
// the Failures-th failure within it locks the key for Lockout. After a
// lockout one more failure locks it again, for twice as long each time up to
// MaxLockout, so that guessing slows to a trickle; the key is forgotten (and
// the lockouts start again from Lockout) once Window passes after a lockout
// ends with no further failure. A successful sign-in forgets the account key
// at once; it does not reset the address key, or an attacker with an account
// of their own could reset their address's count between guesses.
type ThrottlePolicy struct {
	// Failures is how many failures within Window lock the key.
	Failures int
	// Window is how long failures are counted from the first one.
	Window time.Duration
	// Lockout is the length of the first lockout.
	Lockout time.Duration
	// MaxLockout caps the doubling lockouts.
	MaxLockout time.Duration
}

// DefaultAccountThrottle allows 5 failed sign-ins per user name in 15
// minutes, then locks it for 1, 2, 4 ... minutes up to an hour: at most a few
// dozen guesses a day, and a user who mistypes five times waits one minute.
// The lockout is short and bounded because anyone can lock an account by
// failing on purpose; NIST SP 800-63B-4 §3.2.2 caps consecutive failures at
// 100, which this stays far below.
var DefaultAccountThrottle = ThrottlePolicy{Failures: 5, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}

// DefaultIPThrottle allows 20 failed sign-ins per client address (or IPv6 /64
// network) a minute, then locks it for 1, 2, 4 ... minutes up to 15: enough
// for an office behind one NAT address, too few to try one password against
// many accounts.
var DefaultIPThrottle = ThrottlePolicy{Failures: 20, Window: time.Minute, Lockout: time.Minute, MaxLockout: 15 * time.Minute}

func (p ThrottlePolicy) validate(what string) error {
	if p.Failures < 1 || p.Window <= 0 || p.Lockout <= 0 || p.MaxLockout < p.Lockout {
		return fmt.Errorf("account: %s throttle needs Failures >= 1, positive Window and Lockout, and MaxLockout >= Lockout", what)
	}
	return nil
}

// pendingRetry is the Retry-After of an attempt refused because attempts in
// flight could already lock the key: they finish within a hash or two.
const pendingRetry = time.Second

// limiter throttles failures per key under a ThrottlePolicy, keeping at most
// maxKeys keys.
//
// An attempt reserves its place (begin) before its password is checked and
// settles it after (fail, succeed or cancel). Counting attempts in flight
// closes the gap in which many concurrent guesses would all pass the check
// before the first failure was recorded.
type limiter struct {
	policy  ThrottlePolicy
	scope   ThrottleScope
	maxKeys int

	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	failures    int       // counted toward the next lockout
	pending     int       // attempts begun and not settled
	windowEnd   time.Time // when failures reset, if there has been no lockout
	lockouts    int       // since the key was last forgotten
	lockedUntil time.Time
}

// forgetAt returns when the entry holds nothing worth keeping.
func (e *entry) forgetAt(p ThrottlePolicy) time.Time {
	switch {
	case e.lockouts > 0:
		return e.lockedUntil.Add(p.Window)
	case e.failures > 0:
		return e.windowEnd
	}
	return time.Time{}
}

func newLimiter(p ThrottlePolicy, scope ThrottleScope, maxKeys int) *limiter {
	return &limiter{policy: p, scope: scope, maxKeys: maxKeys, keys: make(map[string]*entry)}
}

// get returns key's entry, up to date at now, creating it if needed.
func (l *limiter) get(key string, now time.Time) *entry {
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= l.maxKeys {
			l.evict(now)
		}
		e = &entry{}
		l.keys[key] = e
	}
	if at := e.forgetAt(l.policy); !at.IsZero() && !at.After(now) {
		*e = entry{pending: e.pending} // the window or the lockouts are over
	}
	return e
}

// evict makes room for a key: it drops every entry that can be forgotten at
// now, and if none can, the one that could be forgotten soonest (the least
// harm: the shortest remaining lockout). Entries with attempts in flight
// stay; they are bounded by the hash gate.
func (l *limiter) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, e := range l.keys {
		if e.pending > 0 {
			continue
		}
		at := e.forgetAt(l.policy)
		if !at.After(now) {
			delete(l.keys, k)
			continue
		}
		if oldest == "" || at.Before(oldestAt) {
			oldest, oldestAt = k, at
		}
	}
	if len(l.keys) >= l.maxKeys && oldest != "" {
		delete(l.keys, oldest)
	}
}

// begin reserves an attempt for key, or refuses it with a ThrottledError.
func (l *limiter) begin(key string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(key, now)
	if now.Before(e.lockedUntil) {
		return &ThrottledError{RetryAfter: e.lockedUntil.Sub(now), Scope: l.scope}
	}
	if e.failures+e.pending >= l.policy.Failures {
		return &ThrottledError{RetryAfter: pendingRetry, Scope: l.scope}
	}
	e.pending++
	return nil
}

// fail settles an attempt as a failure, locking key if it was one too many.
func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(key, now)
	if e.pending > 0 {
		e.pending--
	}
	if e.failures == 0 && e.lockouts == 0 {
		e.windowEnd = now.Add(l.policy.Window)
	}
	e.failures++
	if e.failures >= l.policy.Failures {
		e.lockouts++
		e.lockedUntil = now.Add(l.lockout(e.lockouts))
		// One more failure after the lockout locks the key again.
		e.failures = l.policy.Failures - 1
	}
}

// lockout returns the length of the n-th lockout: Lockout doubled n-1 times,
// at most MaxLockout.
func (l *limiter) lockout(n int) time.Duration {
	d := l.policy.Lockout
	for i := 1; i < n && d < l.policy.MaxLockout; i++ {
		d *= 2
	}
	return min(d, l.policy.MaxLockout)
}

// succeed settles an attempt as a success; reset forgets key's failures.
func (l *limiter) succeed(key string, reset bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		return
	}
	if e.pending > 0 {
		e.pending--
	}
	if reset {
		*e = entry{pending: e.pending}
	}
	if *e == (entry{}) {
		delete(l.keys, key)
	}
}

// cancel settles an attempt that was not decided (the request was cancelled,
// the server was busy or failed), counting nothing.
func (l *limiter) cancel(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		return
	}
	if e.pending > 0 {
		e.pending--
	}
	if *e == (entry{}) {
		delete(l.keys, key)
	}
}

// len returns the number of keys tracked.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// ipKey returns the throttling key of a client address: the address itself
// for IPv4, its /64 network for IPv6 (one subscriber commonly holds a whole
// /64, so single addresses cost an attacker nothing), and for anything that
// does not parse, the text itself, bounded in length.
func ipKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(ip); err2 == nil {
			addr, err = ap.Addr(), nil
		}
	}
	if err != nil {
		if len(ip) > 64 {
			ip = ip[:64]
		}
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}

// hashGate bounds the password hashes computed at once (each costs its
// memory parameter, 19 MiB by default, and a core for tens of milliseconds)
// and the callers waiting for one.
type hashGate struct {
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
}

func newHashGate(concurrent, waiting int) *hashGate {
	return &hashGate{slots: make(chan struct{}, concurrent), maxWaiting: int64(waiting)}
}

// busyRetry is the Retry-After of an attempt refused because the queue of
// hashes is full: it drains in a fraction of a second.
const busyRetry = time.Second

// acquire takes a slot, waiting behind at most maxWaiting others; beyond
// that it fails at once with a ThrottledError of ScopeBusy. It returns
// ctx.Err() if ctx ends first.
func (g *hashGate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	if g.waiting.Add(1) > g.maxWaiting {
		g.waiting.Add(-1)
		return &ThrottledError{RetryAfter: busyRetry, Scope: ScopeBusy}
	}
	defer g.waiting.Add(-1)
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *hashGate) release() { <-g.slots }
